//! Schema migrations, as SQL files in `store/migrations/<backend>/`, applied in order
//! and recorded in `schema_migrations`; each in its own transaction.

use rusqlite::Connection;

use crate::StoreError;

/// A migration: its version (the file's number), name and SQL.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// SQLite's migrations, oldest first.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "triggers",
        sql: include_str!("../migrations/sqlite/0002_triggers.sql"),
    },
    Migration {
        version: 3,
        name: "alerts",
        sql: include_str!("../migrations/sqlite/0003_alerts.sql"),
    },
];

/// The newest schema this program knows.
pub fn latest(migrations: &[Migration]) -> i64 {
    migrations.last().map_or(0, |m| m.version)
}

/// Applies the migrations the database has not seen; refuses a database migrated by
/// a newer program.
pub fn apply_sqlite(conn: &mut Connection) -> Result<(), StoreError> {
    let db = |e: rusqlite::Error| StoreError::Database(e.to_string());
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_ms INTEGER NOT NULL
         )",
    )
    .map_err(db)?;
    let current: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |row| row.get(0),
        )
        .map_err(db)?;
    let supported = latest(SQLITE);
    if current > supported {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    for migration in SQLITE.iter().filter(|m| m.version > current) {
        let tx = conn.transaction().map_err(db)?;
        tx.execute_batch(migration.sql).map_err(|e| {
            StoreError::Database(format!(
                "migration {} ({}): {e}",
                migration.version, migration.name
            ))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?1, ?2, ?3)",
            rusqlite::params![migration.version, migration.name, crate::now_ms()],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        tracing::debug!(
            version = migration.version,
            name = migration.name,
            "store migrated"
        );
    }
    Ok(())
}

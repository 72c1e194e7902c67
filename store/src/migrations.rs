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
    Migration {
        version: 4,
        name: "tenant_config",
        sql: include_str!("../migrations/sqlite/0004_tenant_config.sql"),
    },
    Migration {
        version: 5,
        name: "live_type_counts",
        sql: include_str!("../migrations/sqlite/0005_live_type_counts.sql"),
    },
];

/// PostgreSQL's migrations, oldest first: the same versions and names as SQLite's, so
/// both schemas move together (a test checks it).
pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "triggers",
        sql: include_str!("../migrations/postgres/0002_triggers.sql"),
    },
    Migration {
        version: 3,
        name: "alerts",
        sql: include_str!("../migrations/postgres/0003_alerts.sql"),
    },
    Migration {
        version: 4,
        name: "tenant_config",
        sql: include_str!("../migrations/postgres/0004_tenant_config.sql"),
    },
    Migration {
        version: 5,
        name: "live_type_counts",
        sql: include_str!("../migrations/postgres/0005_live_type_counts.sql"),
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

/// A number of our own for `pg_advisory_lock`: workers that start together migrate one
/// at a time, and the later ones find nothing left to do.
const POSTGRES_MIGRATION_LOCK: i64 = 0x6a31_6d69_6772_6174; // "j1migrat"

/// PostgreSQL's version of [`apply_sqlite`]: the same bookkeeping, under an advisory
/// lock held by one connection for the whole run.
pub async fn apply_postgres(pool: &sqlx::PgPool) -> Result<(), StoreError> {
    let db = |e: sqlx::Error| StoreError::Database(e.to_string());
    let mut conn = pool.acquire().await.map_err(db)?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(POSTGRES_MIGRATION_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let result = apply_postgres_locked(&mut conn).await;
    // Unlocked whatever happened; a dropped connection would free it too.
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(POSTGRES_MIGRATION_LOCK)
        .execute(&mut *conn)
        .await;
    result?;
    unlocked.map_err(db)?;
    Ok(())
}

async fn apply_postgres_locked(conn: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    use sqlx::Connection as _;
    let db = |e: sqlx::Error| StoreError::Database(e.to_string());
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_ms BIGINT NOT NULL
         )",
    )
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    let current: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations")
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
    let supported = latest(POSTGRES);
    if current > supported {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    for migration in POSTGRES.iter().filter(|m| m.version > current) {
        let mut tx = conn.begin().await.map_err(db)?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(migration.sql))
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::Database(format!(
                    "migration {} ({}): {e}",
                    migration.version, migration.name
                ))
            })?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(crate::now_ms())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        tracing::debug!(
            version = migration.version,
            name = migration.name,
            "store migrated"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migrations() {
        let names = |list: &[Migration]| -> Vec<(i64, &str)> {
            list.iter().map(|m| (m.version, m.name)).collect()
        };
        assert_eq!(names(SQLITE), names(POSTGRES));
        let versions: Vec<i64> = SQLITE.iter().map(|m| m.version).collect();
        let expected: Vec<i64> = (1..=SQLITE.len() as i64).collect();
        assert_eq!(versions, expected, "versions are 1, 2, 3, ... without gaps");
    }
}

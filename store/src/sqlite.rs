//! The embedded store: one SQLite file (bundled SQLite, WAL), so a fresh machine needs
//! no server. One writer connection; readers get connections of their own, so queries
//! and the console read the previous graph while a run is persisted.
//!
//! A persist stages the run's objects in a temporary table and computes the change set
//! with set-based SQL against the current graph; only updated objects are compared in
//! Rust, property by property. The run's graph is streamed, never held whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};
use serde_json::{Map, Value};

use crate::model::*;
use crate::{ObjectSource, ObjectStream, PersistReport, Store, StoreError, migrations};

/// How long a writer waits for another process's transaction (a CLI `run` beside
/// `serve`) before giving up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Objects per batch of `stream_objects`.
const STREAM_BATCH: usize = 1000;

/// The SQLite backend.
pub struct SqliteStore {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

fn db(error: rusqlite::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// Properties as canonical JSON: sorted by name, whatever the map's order, so that
/// text equality is property equality.
fn canonical_properties(properties: &Map<String, Value>) -> String {
    let sorted: BTreeMap<&String, &Value> = properties.iter().collect();
    json_text(&sorted)
}

fn open_connection(path: &Path, create: bool) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| StoreError::Open {
        location: path.display().to_string(),
        reason: e.to_string(),
    })?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    // WAL: readers see the last committed graph while a persist runs, and a crash
    // (kill -9) loses at most the transaction in flight. NORMAL is durable against a
    // process crash; only a power cut can lose the newest commit.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = FILE;
         PRAGMA cache_size = -32000;",
    )
    .map_err(db)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens or creates the store file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let path = path.to_owned();
        let opened = tokio::task::spawn_blocking(move || -> Result<SqliteStore, StoreError> {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::Open {
                    location: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
            let mut writer = open_connection(&path, true)?;
            migrations::apply_sqlite(&mut writer)?;
            Ok(SqliteStore {
                path,
                writer: Arc::new(Mutex::new(writer)),
                readers: Arc::new(Mutex::new(Vec::new())),
            })
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))??;
        Ok(opened)
    }

    /// Runs `work` on the writer connection, off the async threads.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer
                .lock()
                .map_err(|_| StoreError::Worker("the writer connection is poisoned".into()))?;
            work(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    fn take_reader(&self) -> Result<Connection, StoreError> {
        let pooled = self.readers.lock().ok().and_then(|mut pool| pool.pop());
        match pooled {
            Some(conn) => Ok(conn),
            None => open_connection(&self.path, false),
        }
    }

    /// Runs `work` on a reader connection, off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.take_reader()?;
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let result = work(&conn);
            if let Ok(mut pool) = readers.lock() {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
    }
}

const RUN_COLUMNS: &str = "run_id, tenant, trigger, status, started_ms, finished_ms, baseline, \
     persisted, entities, relationships, entities_created, entities_updated, entities_deleted, \
     relationships_created, relationships_updated, relationships_deleted, partial_types, error";

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let trigger: String = row.get(2)?;
    let status: String = row.get(3)?;
    let partial: String = row.get(16)?;
    let count = |i: usize| -> rusqlite::Result<u64> { Ok(row.get::<_, i64>(i)?.max(0) as u64) };
    Ok(RunRecord {
        id: row.get(0)?,
        tenant: row.get(1)?,
        trigger: Trigger::parse(&trigger).unwrap_or(Trigger::Manual),
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Failure),
        started_at_ms: row.get(4)?,
        finished_at_ms: row.get(5)?,
        baseline: row.get(6)?,
        persisted: row.get(7)?,
        entities: count(8)?,
        relationships: count(9)?,
        changes: ChangeCounts {
            entities: Counts {
                created: count(10)?,
                updated: count(11)?,
                deleted: count(12)?,
            },
            relationships: Counts {
                created: count(13)?,
                updated: count(14)?,
                deleted: count(15)?,
            },
        },
        partial_types: serde_json::from_str(&partial).unwrap_or_default(),
        error: row.get(17)?,
        summary: None,
    })
}

fn settings_from_row(row: &Row<'_>) -> rusqlite::Result<TenantSettings> {
    let interval: String = row.get(3)?;
    Ok(TenantSettings {
        tenant: row.get(0)?,
        account_name: row.get(1)?,
        description: row.get(2)?,
        polling_interval: PollingInterval::parse(&interval).unwrap_or(PollingInterval::DEFAULT),
        tag_with_account_name: row.get(4)?,
    })
}

fn load_run(conn: &Connection, run: RunId, with_summary: bool) -> Result<RunRecord, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS}, summary FROM runs WHERE run_id = ?1");
    let (mut record, summary) = conn
        .query_row(&sql, [run], |row| {
            Ok((run_from_row(row)?, row.get::<_, Option<String>>(18)?))
        })
        .optional()
        .map_err(db)?
        .ok_or_else(|| StoreError::UnknownRun {
            tenant: String::new(),
            run,
        })?;
    if with_summary {
        record.summary = summary.and_then(|s| serde_json::from_str(&s).ok());
    }
    Ok(record)
}

fn load_tenant(conn: &Connection, tenant: &str) -> Result<TenantState, StoreError> {
    let (settings, next_due_ms, fence, trigger_requested_ms) = conn
        .query_row(
            "SELECT tenant, account_name, description, polling_interval, tag_with_account_name, \
             next_due_ms, fence, trigger_requested_ms FROM tenants WHERE tenant = ?1",
            [tenant],
            |row| {
                Ok((
                    settings_from_row(row)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                ))
            },
        )
        .optional()
        .map_err(db)?
        .ok_or_else(|| StoreError::UnknownTenant(tenant.to_owned()))?;
    let runs: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE tenant = ?1",
            [tenant],
            |r| r.get(0),
        )
        .map_err(db)?;
    let sql =
        format!("SELECT {RUN_COLUMNS} FROM runs WHERE tenant = ?1 ORDER BY run_id DESC LIMIT 1");
    let last_run = conn
        .query_row(&sql, [tenant], run_from_row)
        .optional()
        .map_err(db)?;
    Ok(TenantState {
        settings,
        next_due_ms,
        runs: runs.max(0) as u64,
        last_run,
        fence,
        trigger_requested_ms,
    })
}

fn stored_from_row(row: &Row<'_>) -> rusqlite::Result<StoredObject> {
    let kind: String = row.get(1)?;
    let classes: String = row.get(3)?;
    let properties: String = row.get(6)?;
    Ok(StoredObject {
        object: NewObject {
            step: row.get(14)?,
            kind: ObjectKind::parse(&kind).unwrap_or(ObjectKind::Entity),
            key: row.get(0)?,
            object_type: row.get(2)?,
            classes: serde_json::from_str(&classes).unwrap_or_default(),
            from_key: row.get(4)?,
            to_key: row.get(5)?,
            properties: serde_json::from_str(&properties).unwrap_or_default(),
            raw_data: row.get(7)?,
        },
        metadata: Metadata {
            created_on: row.get(8)?,
            begin_on: row.get(9)?,
            end_on: row.get(10)?,
            version: row.get(11)?,
            deleted: row.get(12)?,
        },
    })
}

const OBJECT_COLUMNS: &str = "key, kind, type, classes, from_key, to_key, properties, raw_data, \
     created_ms, begin_ms, end_ms, version, deleted, run_id, step";

/// Waits here, before the commit, when the failpoint is set (crash tests only).
fn failpoint(name: &str) {
    if crate::failpoint_active(name) {
        eprintln!("failpoint {name}: waiting to be killed");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// The persist transaction; see the module docs.
fn persist(
    conn: &mut Connection,
    run: RunId,
    outcome: RunOutcome,
    objects: ObjectSource,
) -> Result<PersistReport, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let (tenant, status): (String, String) = tx
        .query_row(
            "SELECT tenant, status FROM runs WHERE run_id = ?1",
            [run],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(db)?
        .ok_or_else(|| StoreError::UnknownRun {
            tenant: String::new(),
            run,
        })?;
    if status != RunStatus::Running.as_str() {
        return Err(StoreError::RunNotRunning(run));
    }
    if let Some(fence) = outcome.fence {
        let current: i64 = tx
            .query_row(
                "SELECT fence FROM tenants WHERE tenant = ?1",
                [&tenant],
                |r| r.get(0),
            )
            .map_err(db)?;
        if fence < current {
            return Err(StoreError::StaleFence {
                tenant,
                run,
                fence,
                current,
            });
        }
        tx.execute(
            "UPDATE tenants SET fence = ?2 WHERE tenant = ?1",
            params![tenant, fence],
        )
        .map_err(db)?;
    }
    let baseline: bool = !tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE tenant = ?1 AND persisted = 1)",
            [&tenant],
            |r| r.get::<_, bool>(0),
        )
        .map_err(db)?;
    let now = outcome.finished_at_ms;

    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS staged (
             key TEXT PRIMARY KEY, kind TEXT NOT NULL, type TEXT NOT NULL, classes TEXT NOT NULL,
             from_key TEXT, to_key TEXT, properties TEXT NOT NULL, raw_data TEXT, step TEXT);
         CREATE TEMP TABLE IF NOT EXISTS partial_types (type TEXT PRIMARY KEY);
         CREATE TEMP TABLE IF NOT EXISTS updated (key TEXT PRIMARY KEY);
         DELETE FROM temp.staged; DELETE FROM temp.partial_types; DELETE FROM temp.updated;",
    )
    .map_err(db)?;
    {
        let mut insert = tx
            .prepare_cached("INSERT INTO temp.partial_types (type) VALUES (?1)")
            .map_err(db)?;
        for partial in &outcome.partial_types {
            insert.execute([partial]).map_err(db)?;
        }
    }
    let (mut entities, mut relationships) = (0u64, 0u64);
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO temp.staged (key, kind, type, classes, from_key, to_key, properties, raw_data, step)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(db)?;
        for object in objects {
            let object = object?;
            match object.kind {
                ObjectKind::Entity => entities += 1,
                ObjectKind::Relationship => relationships += 1,
            }
            insert
                .execute(params![
                    object.key,
                    object.kind.as_str(),
                    object.object_type,
                    json_text(&object.classes),
                    object.from_key,
                    object.to_key,
                    canonical_properties(&object.properties),
                    object.raw_data,
                    object.step,
                ])
                .map_err(|e| match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation) => {
                        StoreError::Database(format!("the run emitted _key {} twice", object.key))
                    }
                    _ => db(e),
                })?;
        }
    }

    // Created: keys the current graph does not hold (tombstones come back as new).
    tx.execute(
        "INSERT INTO changes (run_id, tenant, change, kind, key, type, from_key, to_key)
         SELECT ?1, ?2, 'created', s.kind, s.key, s.type, s.from_key, s.to_key
         FROM temp.staged s LEFT JOIN objects o ON o.tenant = ?2 AND o.key = s.key
         WHERE o.key IS NULL OR o.deleted = 1
         ORDER BY s.kind, s.type, s.key",
        params![run, tenant],
    )
    .map_err(db)?;

    // Updated: compared in SQL by canonical text, then property by property.
    {
        let mut candidates = tx
            .prepare(
                "SELECT s.key, s.kind, s.type, s.from_key, s.to_key,
                        o.classes, s.classes, o.properties, s.properties,
                        o.type, o.from_key, o.to_key
                 FROM temp.staged s JOIN objects o ON o.tenant = ?1 AND o.key = s.key
                 WHERE o.deleted = 0 AND (o.properties <> s.properties OR o.classes <> s.classes
                       OR o.type <> s.type OR o.kind <> s.kind
                       OR o.from_key IS NOT s.from_key OR o.to_key IS NOT s.to_key)
                 ORDER BY s.kind, s.type, s.key",
            )
            .map_err(db)?;
        let mut insert_change = tx
            .prepare_cached(
                "INSERT INTO changes (run_id, tenant, change, kind, key, type, from_key, to_key, diff)
                 VALUES (?1, ?2, 'updated', ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(db)?;
        let mut mark_updated = tx
            .prepare_cached("INSERT INTO temp.updated (key) VALUES (?1)")
            .map_err(db)?;
        let mut rows = candidates.query([&tenant]).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            let text = |i: usize| row.get::<_, String>(i);
            let maybe = |i: usize| row.get::<_, Option<String>>(i);
            let key = text(0).map_err(db)?;
            let parse_map = |s: String| serde_json::from_str::<Map<String, Value>>(&s);
            let parse_list = |s: String| serde_json::from_str::<Vec<String>>(&s);
            let (Ok(old_classes), Ok(new_classes), Ok(old_props), Ok(new_props)) = (
                parse_list(text(5).map_err(db)?),
                parse_list(text(6).map_err(db)?),
                parse_map(text(7).map_err(db)?),
                parse_map(text(8).map_err(db)?),
            ) else {
                return Err(StoreError::Database(format!(
                    "{key}: stored JSON is unreadable"
                )));
            };
            let mut changes =
                crate::diff::property_changes(&old_classes, &new_classes, &old_props, &new_props);
            for (name, old, new) in [
                (
                    "_type",
                    Some(text(9).map_err(db)?),
                    Some(text(2).map_err(db)?),
                ),
                (
                    "_fromEntityKey",
                    maybe(10).map_err(db)?,
                    maybe(3).map_err(db)?,
                ),
                (
                    "_toEntityKey",
                    maybe(11).map_err(db)?,
                    maybe(4).map_err(db)?,
                ),
            ] {
                if old != new {
                    changes.push(PropertyChange {
                        name: name.into(),
                        old: old.map(Value::from),
                        new: new.map(Value::from),
                    });
                }
            }
            if changes.is_empty() {
                continue;
            }
            insert_change
                .execute(params![
                    run,
                    tenant,
                    text(1).map_err(db)?,
                    key,
                    text(2).map_err(db)?,
                    maybe(3).map_err(db)?,
                    maybe(4).map_err(db)?,
                    json_text(&changes),
                ])
                .map_err(db)?;
            mark_updated.execute([&key]).map_err(db)?;
        }
    }

    // Deleted: current keys the run did not emit, except partial types; a run that
    // failed as a whole deletes nothing.
    if !outcome.failed_whole {
        const MISSING: &str = "o.tenant = ?2 AND o.deleted = 0
             AND NOT EXISTS (SELECT 1 FROM temp.staged s WHERE s.key = o.key)
             AND o.type NOT IN (SELECT type FROM temp.partial_types)";
        tx.execute(
            &format!(
                "INSERT INTO changes (run_id, tenant, change, kind, key, type, from_key, to_key)
                 SELECT ?1, ?2, 'deleted', o.kind, o.key, o.type, o.from_key, o.to_key
                 FROM objects o WHERE {MISSING} ORDER BY o.kind, o.type, o.key"
            ),
            params![run, tenant],
        )
        .map_err(db)?;
        tx.execute(
            &format!(
                "UPDATE objects AS o SET deleted = 1, end_ms = ?3, run_id = ?1 WHERE {MISSING}"
            ),
            params![run, tenant, now],
        )
        .map_err(db)?;
    }

    // The new versions; unchanged rows are only rewritten when their raw data moved.
    tx.execute(
        "INSERT INTO objects (tenant, key, kind, type, classes, from_key, to_key, properties,
                              raw_data, created_ms, begin_ms, end_ms, version, deleted, run_id, step)
         SELECT ?2, key, kind, type, classes, from_key, to_key, properties, raw_data,
                ?3, ?3, NULL, 1, 0, ?1, step
         FROM temp.staged WHERE true
         ON CONFLICT (tenant, key) DO UPDATE SET
             kind = excluded.kind, type = excluded.type, classes = excluded.classes,
             from_key = excluded.from_key, to_key = excluded.to_key,
             properties = excluded.properties, raw_data = excluded.raw_data,
             step = excluded.step, run_id = excluded.run_id,
             created_ms = CASE WHEN objects.deleted = 1 THEN excluded.created_ms
                               ELSE objects.created_ms END,
             begin_ms = CASE WHEN objects.deleted = 1
                                  OR objects.key IN (SELECT key FROM temp.updated)
                             THEN excluded.begin_ms ELSE objects.begin_ms END,
             version = CASE WHEN objects.deleted = 1 THEN 1
                            WHEN objects.key IN (SELECT key FROM temp.updated)
                            THEN objects.version + 1 ELSE objects.version END,
             end_ms = NULL, deleted = 0
         WHERE objects.deleted = 1 OR objects.key IN (SELECT key FROM temp.updated)
            OR objects.raw_data IS NOT excluded.raw_data OR objects.step IS NOT excluded.step
            OR objects.properties <> excluded.properties OR objects.classes <> excluded.classes",
        params![run, tenant, now],
    )
    .map_err(db)?;

    let mut counts = ChangeCounts::default();
    {
        let mut stmt = tx
            .prepare("SELECT kind, change, COUNT(*) FROM changes WHERE run_id = ?1 GROUP BY kind, change")
            .map_err(db)?;
        let mut rows = stmt.query([run]).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            let kind: String = row.get(0).map_err(db)?;
            let change: String = row.get(1).map_err(db)?;
            let n: i64 = row.get(2).map_err(db)?;
            let bucket = match ObjectKind::parse(&kind) {
                Some(ObjectKind::Relationship) => &mut counts.relationships,
                _ => &mut counts.entities,
            };
            match ChangeKind::parse(&change) {
                Some(ChangeKind::Created) => bucket.created = n as u64,
                Some(ChangeKind::Updated) => bucket.updated = n as u64,
                Some(ChangeKind::Deleted) => bucket.deleted = n as u64,
                None => {}
            }
        }
    }
    tx.execute(
        "UPDATE runs SET status = ?2, finished_ms = ?3, baseline = ?4, persisted = 1,
             entities = ?5, relationships = ?6,
             entities_created = ?7, entities_updated = ?8, entities_deleted = ?9,
             relationships_created = ?10, relationships_updated = ?11, relationships_deleted = ?12,
             partial_types = ?13, error = ?14, summary = ?15
         WHERE run_id = ?1",
        params![
            run,
            outcome.status.as_str(),
            now,
            baseline,
            entities as i64,
            relationships as i64,
            counts.entities.created as i64,
            counts.entities.updated as i64,
            counts.entities.deleted as i64,
            counts.relationships.created as i64,
            counts.relationships.updated as i64,
            counts.relationships.deleted as i64,
            json_text(&outcome.partial_types),
            outcome.error,
            outcome.summary.as_ref().map(json_text),
        ],
    )
    .map_err(db)?;
    tx.execute_batch("DELETE FROM temp.staged; DELETE FROM temp.updated;")
        .map_err(db)?;
    failpoint("persist-before-commit");
    tx.commit().map_err(db)?;
    let run = load_run(conn, run, false)?;
    Ok(PersistReport {
        run,
        changes: counts,
    })
}

const EVALUATION_COLUMNS: &str = "evaluation_id, tenant, rule, run_id, evaluated_ms, transition, \
     condition_met, alert_level, partial, baseline, results, totals, added, removed, error, \
     deliveries, alert_id";

fn evaluation_from_row(row: &Row<'_>) -> rusqlite::Result<EvaluationRecord> {
    let transition: String = row.get(5)?;
    let json = |i: usize| -> rusqlite::Result<Value> {
        let text: String = row.get(i)?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    };
    let removed: Option<String> = row.get(13)?;
    Ok(EvaluationRecord {
        id: row.get(0)?,
        tenant: row.get(1)?,
        rule: row.get(2)?,
        run: row.get(3)?,
        evaluated_at_ms: row.get(4)?,
        transition: AlertTransition::parse(&transition).unwrap_or(AlertTransition::Error),
        condition_met: row.get(6)?,
        alert_level: row.get(7)?,
        partial: row.get(8)?,
        baseline: row.get(9)?,
        results: row.get::<_, i64>(10)?.max(0) as u64,
        totals: json(11)?,
        added: serde_json::from_value(json(12)?).unwrap_or_default(),
        removed: removed.and_then(|r| serde_json::from_str(&r).ok()),
        error: row.get(14)?,
        deliveries: json(15)?,
        alert_id: row.get(16)?,
    })
}

const ALERT_COLUMNS: &str = "alert_id, tenant, rule, description, level, status, opened_ms, \
     opened_run, resolved_ms, resolved_run, last_evaluated_ms, results, result_ids";

fn alert_from_row(row: &Row<'_>) -> rusqlite::Result<AlertRecord> {
    let status: String = row.get(5)?;
    let ids: String = row.get(12)?;
    Ok(AlertRecord {
        id: row.get(0)?,
        tenant: row.get(1)?,
        rule: row.get(2)?,
        description: row.get(3)?,
        level: row.get(4)?,
        status: if status == "active" {
            AlertStatus::Active
        } else {
            AlertStatus::Resolved
        },
        opened_at_ms: row.get(6)?,
        opened_run: row.get(7)?,
        resolved_at_ms: row.get(8)?,
        resolved_run: row.get(9)?,
        last_evaluated_at_ms: row.get(10)?,
        results: row.get::<_, i64>(11)?.max(0) as u64,
        result_ids: serde_json::from_str(&ids).unwrap_or_default(),
    })
}

/// The evaluation, its alert's lifecycle step and the rule's state, in one transaction.
fn record_evaluation(
    conn: &mut Connection,
    e: NewEvaluation,
) -> Result<EvaluationRecord, StoreError> {
    let tx = conn.transaction().map_err(db)?;
    let results = e.result_ids.len() as i64;
    let kept_ids: Vec<&String> = e.result_ids.iter().take(ALERT_RESULT_IDS).collect();
    let active: Option<i64> = tx
        .query_row(
            "SELECT alert_id FROM alerts WHERE tenant = ?1 AND rule = ?2 AND status = 'active'
             ORDER BY alert_id DESC LIMIT 1",
            params![e.tenant, e.rule],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    let alert_id = match (e.transition, active) {
        (AlertTransition::Opened, None) => {
            tx.execute(
                "INSERT INTO alerts (tenant, rule, description, level, status, opened_ms, opened_run,
                                     last_evaluated_ms, results, result_ids)
                 VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?6, ?5, ?7, ?8)",
                params![
                    e.tenant,
                    e.rule,
                    e.description,
                    e.alert_level,
                    e.evaluated_at_ms,
                    e.run,
                    results,
                    json_text(&kept_ids)
                ],
            )
            .map_err(db)?;
            Some(tx.last_insert_rowid())
        }
        (AlertTransition::Opened | AlertTransition::StillActive, Some(id)) => {
            tx.execute(
                "UPDATE alerts SET level = COALESCE(?2, level), last_evaluated_ms = ?3,
                     results = ?4, result_ids = ?5 WHERE alert_id = ?1",
                params![
                    id,
                    e.alert_level,
                    e.evaluated_at_ms,
                    results,
                    json_text(&kept_ids)
                ],
            )
            .map_err(db)?;
            Some(id)
        }
        (AlertTransition::Resolved, Some(id)) => {
            tx.execute(
                "UPDATE alerts SET status = 'resolved', resolved_ms = ?2, resolved_run = ?3,
                     last_evaluated_ms = ?2, results = ?4, result_ids = ?5 WHERE alert_id = ?1",
                params![id, e.evaluated_at_ms, e.run, results, json_text(&kept_ids)],
            )
            .map_err(db)?;
            Some(id)
        }
        (_, active) => active,
    };
    tx.execute(
        "INSERT INTO rule_evaluations (tenant, rule, run_id, evaluated_ms, transition, condition_met,
             alert_level, partial, baseline, results, added, removed, totals, error, deliveries,
             alert_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            e.tenant,
            e.rule,
            e.run,
            e.evaluated_at_ms,
            e.transition.as_str(),
            e.condition_met,
            e.alert_level,
            e.partial,
            e.baseline,
            results,
            json_text(&e.added),
            e.removed.as_ref().map(json_text),
            json_text(&e.totals),
            e.error,
            json_text(&e.deliveries),
            alert_id,
        ],
    )
    .map_err(db)?;
    let evaluation_id = tx.last_insert_rowid();
    if e.transition != AlertTransition::Error {
        tx.execute(
            "INSERT INTO rule_state (tenant, rule, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant, rule) DO UPDATE SET state = excluded.state",
            params![e.tenant, e.rule, json_text(&e.state)],
        )
        .map_err(db)?;
    }
    let record = tx
        .query_row(
            &format!("SELECT {EVALUATION_COLUMNS} FROM rule_evaluations WHERE evaluation_id = ?1"),
            [evaluation_id],
            evaluation_from_row,
        )
        .map_err(db)?;
    tx.commit().map_err(db)?;
    Ok(record)
}

#[async_trait]
impl Store for SqliteStore {
    fn location(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    async fn upsert_tenant(&self, settings: &TenantSettings) -> Result<(), StoreError> {
        let s = settings.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO tenants (tenant, account_name, description, polling_interval,
                                      tag_with_account_name, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant) DO UPDATE SET account_name = excluded.account_name,
                     description = excluded.description,
                     polling_interval = excluded.polling_interval,
                     tag_with_account_name = excluded.tag_with_account_name,
                     updated_ms = excluded.updated_ms",
                params![
                    s.tenant,
                    s.account_name,
                    s.description,
                    s.polling_interval.as_str(),
                    s.tag_with_account_name,
                    crate::now_ms()
                ],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn put_tenant_config(
        &self,
        settings: &TenantSettings,
        config: &Value,
    ) -> Result<(i64, ConfigChange), StoreError> {
        let s = settings.clone();
        // serde_json's maps are sorted: equal documents have equal text.
        let text =
            serde_json::to_string(config).map_err(|e| StoreError::Database(e.to_string()))?;
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let before: Option<(Option<String>, i64)> = tx
                .query_row(
                    "SELECT config, config_revision FROM tenants WHERE tenant = ?1",
                    [&s.tenant],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            let (revision, change) = match &before {
                Some((Some(old), revision)) if *old == text => (*revision, ConfigChange::Unchanged),
                Some((Some(_), revision)) => (revision + 1, ConfigChange::Changed),
                Some((None, revision)) => (revision + 1, ConfigChange::Created),
                None => (1, ConfigChange::Created),
            };
            tx.execute(
                "INSERT INTO tenants (tenant, account_name, description, polling_interval,
                                      tag_with_account_name, updated_ms, config, config_revision)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (tenant) DO UPDATE SET account_name = excluded.account_name,
                     description = excluded.description,
                     polling_interval = excluded.polling_interval,
                     tag_with_account_name = excluded.tag_with_account_name,
                     updated_ms = excluded.updated_ms,
                     config = excluded.config,
                     config_revision = excluded.config_revision",
                params![
                    s.tenant,
                    s.account_name,
                    s.description,
                    s.polling_interval.as_str(),
                    s.tag_with_account_name,
                    crate::now_ms(),
                    text,
                    revision
                ],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok((revision, change))
        })
        .await
    }

    async fn remove_tenant_config(&self, tenant: &str) -> Result<bool, StoreError> {
        let tenant = tenant.to_owned();
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE tenants SET config = NULL, config_revision = config_revision + 1,
                 polling_interval = 'DISABLED', next_due_ms = NULL, updated_ms = ?2
             WHERE tenant = ?1",
                    params![tenant, crate::now_ms()],
                )
                .map_err(db)?;
            Ok(changed > 0)
        })
        .await
    }

    async fn tenant_config(&self, tenant: &str) -> Result<Option<TenantConfigRecord>, StoreError> {
        let tenant = tenant.to_owned();
        self.read(move |conn| {
            let row: Option<(Option<String>, i64)> = conn
                .query_row(
                    "SELECT config, config_revision FROM tenants WHERE tenant = ?1",
                    [&tenant],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            match row {
                Some((Some(text), revision)) => {
                    let config = serde_json::from_str(&text).map_err(|e| {
                        StoreError::Database(format!("tenant {tenant:?} config: {e}"))
                    })?;
                    Ok(Some(TenantConfigRecord {
                        tenant,
                        revision,
                        config,
                    }))
                }
                _ => Ok(None),
            }
        })
        .await
    }

    async fn tenants(&self) -> Result<Vec<TenantState>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare("SELECT tenant FROM tenants ORDER BY tenant")
                .map_err(db)?;
            let ids: Vec<String> = stmt
                .query_map([], |r| r.get(0))
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?;
            ids.iter().map(|id| load_tenant(conn, id)).collect()
        })
        .await
    }

    async fn tenant(&self, tenant: &str) -> Result<TenantState, StoreError> {
        let tenant = tenant.to_owned();
        self.read(move |conn| load_tenant(conn, &tenant)).await
    }

    async fn request_trigger(&self, tenant: &str) -> Result<(), StoreError> {
        let tenant = tenant.to_owned();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE tenants SET trigger_requested_ms = COALESCE(trigger_requested_ms, ?2)
                     WHERE tenant = ?1",
                    params![tenant, crate::now_ms()],
                )
                .map_err(db)?;
            if n == 0 {
                return Err(StoreError::UnknownTenant(tenant));
            }
            Ok(())
        })
        .await
    }

    async fn take_trigger(&self, tenant: &str) -> Result<bool, StoreError> {
        let tenant = tenant.to_owned();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE tenants SET trigger_requested_ms = NULL
                     WHERE tenant = ?1 AND trigger_requested_ms IS NOT NULL",
                    [tenant],
                )
                .map_err(db)?;
            Ok(n > 0)
        })
        .await
    }

    async fn pending_triggers(&self) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT tenant FROM tenants WHERE trigger_requested_ms IS NOT NULL
                     ORDER BY trigger_requested_ms, tenant",
                )
                .map_err(db)?;
            let tenants = stmt
                .query_map([], |r| r.get(0))
                .map_err(db)?
                .collect::<Result<Vec<String>, _>>()
                .map_err(db)?;
            Ok(tenants)
        })
        .await
    }

    async fn reset_tenant(&self, tenant: &str) -> Result<(), StoreError> {
        let tenant = tenant.to_owned();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(db)?;
            for sql in [
                "DELETE FROM rule_evaluations WHERE tenant = ?1",
                "DELETE FROM alerts WHERE tenant = ?1",
                "DELETE FROM rule_state WHERE tenant = ?1",
                "DELETE FROM changes WHERE tenant = ?1",
                "DELETE FROM objects WHERE tenant = ?1",
                "DELETE FROM runs WHERE tenant = ?1",
                "UPDATE tenants SET next_due_ms = NULL, trigger_requested_ms = NULL WHERE tenant = ?1",
            ] {
                tx.execute(sql, [&tenant]).map_err(db)?;
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn set_next_due(&self, tenant: &str, due_ms: Option<i64>) -> Result<(), StoreError> {
        let tenant = tenant.to_owned();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE tenants SET next_due_ms = ?2 WHERE tenant = ?1",
                    params![tenant, due_ms],
                )
                .map_err(db)?;
            if n == 0 {
                return Err(StoreError::UnknownTenant(tenant));
            }
            Ok(())
        })
        .await
    }

    async fn begin_run(
        &self,
        tenant: &str,
        trigger: Trigger,
        started_at_ms: i64,
    ) -> Result<RunId, StoreError> {
        let tenant = tenant.to_owned();
        self.write(move |conn| {
            let known: bool = conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant = ?1)",
                    [&tenant],
                    |r| r.get(0),
                )
                .map_err(db)?;
            if !known {
                return Err(StoreError::UnknownTenant(tenant));
            }
            conn.execute(
                "INSERT INTO runs (tenant, trigger, status, started_ms) VALUES (?1, ?2, 'running', ?3)",
                params![tenant, trigger.as_str(), started_at_ms],
            )
            .map_err(db)?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    async fn end_run(&self, run: RunId, outcome: RunOutcome) -> Result<RunRecord, StoreError> {
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE runs SET status = ?2, finished_ms = ?3, partial_types = ?4, error = ?5,
                         summary = ?6
                     WHERE run_id = ?1 AND status = 'running'",
                    params![
                        run,
                        outcome.status.as_str(),
                        outcome.finished_at_ms,
                        json_text(&outcome.partial_types),
                        outcome.error,
                        outcome.summary.as_ref().map(json_text),
                    ],
                )
                .map_err(db)?;
            if n == 0 {
                return Err(StoreError::RunNotRunning(run));
            }
            load_run(conn, run, false)
        })
        .await
    }

    async fn abandon_running(&self) -> Result<u64, StoreError> {
        self.write(|conn| {
            let n = conn
                .execute(
                    "UPDATE runs SET status = 'abandoned', finished_ms = ?1,
                         error = COALESCE(error, 'the host stopped before the run was persisted')
                     WHERE status = 'running'",
                    [crate::now_ms()],
                )
                .map_err(db)?;
            Ok(n as u64)
        })
        .await
    }

    async fn persist_run(
        &self,
        run: RunId,
        outcome: RunOutcome,
        objects: ObjectSource,
    ) -> Result<PersistReport, StoreError> {
        self.write(move |conn| persist(conn, run, outcome, objects))
            .await
    }

    async fn runs(&self, tenant: &str, limit: u64) -> Result<Vec<RunRecord>, StoreError> {
        let tenant = tenant.to_owned();
        self.read(move |conn| {
            load_tenant(conn, &tenant)?;
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE tenant = ?1 ORDER BY run_id DESC LIMIT ?2"
            );
            let mut stmt = conn.prepare(&sql).map_err(db)?;
            let runs = stmt
                .query_map(
                    params![tenant, limit.min(i64::MAX as u64) as i64],
                    run_from_row,
                )
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            Ok(runs)
        })
        .await
    }

    async fn run(&self, tenant: &str, run: RunId) -> Result<RunRecord, StoreError> {
        let tenant = tenant.to_owned();
        self.read(move |conn| {
            let record = load_run(conn, run, true).map_err(|_| StoreError::UnknownRun {
                tenant: tenant.clone(),
                run,
            })?;
            if record.tenant != tenant {
                return Err(StoreError::UnknownRun { tenant, run });
            }
            Ok(record)
        })
        .await
    }

    async fn changes(
        &self,
        tenant: &str,
        run: Option<RunId>,
        filter: &ChangeFilter,
    ) -> Result<ChangeSet, StoreError> {
        let tenant = tenant.to_owned();
        let filter = filter.clone();
        self.read(move |conn| {
            load_tenant(conn, &tenant)?;
            let run_id = match run {
                Some(run) => run,
                None => conn
                    .query_row(
                        "SELECT MAX(run_id) FROM runs WHERE tenant = ?1 AND persisted = 1",
                        [&tenant],
                        |r| r.get::<_, Option<i64>>(0),
                    )
                    .map_err(db)?
                    .ok_or_else(|| StoreError::NoRuns(tenant.clone()))?,
            };
            let record = load_run(conn, run_id, false).map_err(|_| StoreError::UnknownRun {
                tenant: tenant.clone(),
                run: run_id,
            })?;
            if record.tenant != tenant {
                return Err(StoreError::UnknownRun {
                    tenant,
                    run: run_id,
                });
            }
            let where_clause =
                "run_id = ?1 AND (?2 IS NULL OR type = ?2) AND (?3 IS NULL OR change = ?3)";
            let type_filter = filter.object_type.clone();
            let change_filter = filter.change.map(ChangeKind::as_str);
            let total: i64 = conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM changes WHERE {where_clause}"),
                    params![run_id, type_filter, change_filter],
                    |r| r.get(0),
                )
                .map_err(db)?;
            let limit = filter.limit.map_or(-1, |l| l.min(i64::MAX as u64) as i64);
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT change, kind, key, type, from_key, to_key, diff FROM changes
                     WHERE {where_clause} ORDER BY change_id LIMIT ?4 OFFSET ?5"
                ))
                .map_err(db)?;
            let changes = stmt
                .query_map(
                    params![
                        run_id,
                        type_filter,
                        change_filter,
                        limit,
                        filter.offset.min(i64::MAX as u64) as i64
                    ],
                    |row| {
                        let change: String = row.get(0)?;
                        let kind: String = row.get(1)?;
                        let diff: Option<String> = row.get(6)?;
                        Ok(Change {
                            change: ChangeKind::parse(&change).unwrap_or(ChangeKind::Updated),
                            kind: ObjectKind::parse(&kind).unwrap_or(ObjectKind::Entity),
                            key: row.get(2)?,
                            object_type: row.get(3)?,
                            from_key: row.get(4)?,
                            to_key: row.get(5)?,
                            properties: diff
                                .and_then(|d| serde_json::from_str(&d).ok())
                                .unwrap_or_default(),
                        })
                    },
                )
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            Ok(ChangeSet {
                run: record,
                changes,
                total: total.max(0) as u64,
            })
        })
        .await
    }

    async fn stream_objects(
        &self,
        tenant: &str,
        include_deleted: bool,
    ) -> Result<ObjectStream, StoreError> {
        let tenant = tenant.to_owned();
        let conn = self.take_reader()?;
        load_tenant(&conn, &tenant)?;
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let result = (|| -> Result<(), StoreError> {
                // Entities first, so a consumer can resolve endpoints as edges arrive.
                let sql = format!(
                    "SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant = ?1 AND (?2 OR deleted = 0)
                     ORDER BY kind, type, key"
                );
                let mut stmt = conn.prepare(&sql).map_err(db)?;
                let mut rows = stmt.query(params![tenant, include_deleted]).map_err(db)?;
                let mut batch = Vec::with_capacity(STREAM_BATCH);
                while let Some(row) = rows.next().map_err(db)? {
                    batch.push(stored_from_row(row).map_err(db)?);
                    if batch.len() == STREAM_BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(STREAM_BATCH));
                        if sender.blocking_send(Ok(full)).is_err() {
                            return Ok(()); // the consumer went away
                        }
                    }
                }
                if !batch.is_empty() {
                    let _ = sender.blocking_send(Ok(batch));
                }
                Ok(())
            })();
            if let Err(error) = result {
                let _ = sender.blocking_send(Err(error));
            }
            if let Ok(mut pool) = readers.lock() {
                pool.push(conn);
            }
        });
        Ok(receiver)
    }

    async fn rule_state(&self, tenant: &str, rule: &str) -> Result<Option<Value>, StoreError> {
        let (tenant, rule) = (tenant.to_owned(), rule.to_owned());
        self.read(move |conn| {
            let state: Option<String> = conn
                .query_row(
                    "SELECT state FROM rule_state WHERE tenant = ?1 AND rule = ?2",
                    params![tenant, rule],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            Ok(state.and_then(|s| serde_json::from_str(&s).ok()))
        })
        .await
    }

    async fn record_evaluation(
        &self,
        evaluation: NewEvaluation,
    ) -> Result<EvaluationRecord, StoreError> {
        self.write(move |conn| record_evaluation(conn, evaluation))
            .await
    }

    async fn record_deliveries(
        &self,
        evaluation: i64,
        deliveries: Value,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE rule_evaluations SET deliveries = ?2 WHERE evaluation_id = ?1",
                params![evaluation, json_text(&deliveries)],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn evaluations(
        &self,
        tenant: &str,
        run: Option<RunId>,
    ) -> Result<Vec<EvaluationRecord>, StoreError> {
        let tenant = tenant.to_owned();
        self.read(move |conn| {
            load_tenant(conn, &tenant)?;
            let sql = format!(
                "SELECT {EVALUATION_COLUMNS} FROM rule_evaluations
                 WHERE tenant = ?1 AND (?2 IS NULL OR run_id = ?2) ORDER BY evaluation_id"
            );
            let mut stmt = conn.prepare(&sql).map_err(db)?;
            let records = stmt
                .query_map(params![tenant, run], evaluation_from_row)
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            Ok(records)
        })
        .await
    }

    async fn alerts(
        &self,
        tenant: &str,
        status: Option<AlertStatus>,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let tenant = tenant.to_owned();
        self.read(move |conn| {
            load_tenant(conn, &tenant)?;
            let sql = format!(
                "SELECT {ALERT_COLUMNS} FROM alerts
                 WHERE tenant = ?1 AND (?2 IS NULL OR status = ?2) ORDER BY alert_id DESC"
            );
            let mut stmt = conn.prepare(&sql).map_err(db)?;
            let records = stmt
                .query_map(
                    params![tenant, status.map(AlertStatus::as_str)],
                    alert_from_row,
                )
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            Ok(records)
        })
        .await
    }

    async fn relationships_of(
        &self,
        tenant: &str,
        key: &str,
        include_deleted: bool,
        limit: u64,
    ) -> Result<Vec<StoredObject>, StoreError> {
        let (tenant, key) = (tenant.to_owned(), key.to_owned());
        self.read(move |conn| {
            // Round robin over the relationship types (each type's first, then each
            // one's second, ...), so a limit cuts the most numerous types, never a
            // type of a few (a user's groups beside its 400 systems).
            let sql = format!(
                "SELECT {OBJECT_COLUMNS} FROM (
                     SELECT {OBJECT_COLUMNS},
                            ROW_NUMBER() OVER (PARTITION BY type ORDER BY key) AS type_rank
                     FROM (SELECT {OBJECT_COLUMNS} FROM objects
                           WHERE tenant = ?1 AND from_key = ?2 AND (?3 OR deleted = 0)
                           UNION ALL
                           SELECT {OBJECT_COLUMNS} FROM objects
                           WHERE tenant = ?1 AND to_key = ?2 AND from_key <> ?2
                             AND (?3 OR deleted = 0)))
                 ORDER BY type_rank, type, key
                 LIMIT ?4"
            );
            let mut stmt = conn.prepare(&sql).map_err(db)?;
            let objects = stmt
                .query_map(
                    params![
                        tenant,
                        key,
                        include_deleted,
                        limit.min(i64::MAX as u64) as i64
                    ],
                    stored_from_row,
                )
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            Ok(objects)
        })
        .await
    }

    async fn search(
        &self,
        tenant: &str,
        text: &str,
        limit: u64,
    ) -> Result<Vec<StoredObject>, StoreError> {
        let tenant = tenant.to_owned();
        let pattern = crate::contains_pattern(text);
        self.read(move |conn| {
            let sql = format!(
                "SELECT {OBJECT_COLUMNS} FROM objects
                 WHERE tenant = ?1 AND kind = 'entity' AND deleted = 0 AND (
                     key LIKE ?2 ESCAPE '\\'
                     OR properties ->> '$.name' LIKE ?2 ESCAPE '\\'
                     OR properties ->> '$.displayName' LIKE ?2 ESCAPE '\\'
                     OR properties ->> '$.email' LIKE ?2 ESCAPE '\\'
                     OR properties ->> '$.username' LIKE ?2 ESCAPE '\\')
                 ORDER BY type, key LIMIT ?3"
            );
            let mut stmt = conn.prepare(&sql).map_err(db)?;
            let objects = stmt
                .query_map(
                    params![tenant, pattern, limit.min(i64::MAX as u64) as i64],
                    stored_from_row,
                )
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            Ok(objects)
        })
        .await
    }

    async fn type_counts(
        &self,
        tenant: &str,
    ) -> Result<Vec<(ObjectKind, String, u64)>, StoreError> {
        let tenant = tenant.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT kind, type, COUNT(*) FROM objects WHERE tenant = ?1 AND deleted = 0
                     GROUP BY kind, type ORDER BY kind, type",
                )
                .map_err(db)?;
            let counts = stmt
                .query_map([tenant], |row| {
                    let kind: String = row.get(0)?;
                    Ok((
                        ObjectKind::parse(&kind).unwrap_or(ObjectKind::Entity),
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?.max(0) as u64,
                    ))
                })
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            Ok(counts)
        })
        .await
    }

    async fn object(&self, tenant: &str, key: &str) -> Result<Option<StoredObject>, StoreError> {
        let tenant = tenant.to_owned();
        let key = key.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant = ?1 AND key = ?2"),
                params![tenant, key],
                stored_from_row,
            )
            .optional()
            .map_err(db)
        })
        .await
    }
}

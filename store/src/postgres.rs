//! The fleet's store: one PostgreSQL database shared by every worker and scheduler.
//! The same tables, change semantics and transactions as the SQLite backend, in
//! PostgreSQL's types (`jsonb` properties, `BIGINT` times, identity columns).
//!
//! A persist locks the tenant's row first (`SELECT ... FOR UPDATE`), so two workers'
//! persists of one tenant run one after the other and the second sees the first's
//! fence; it then stages the run's objects in a temporary table, many rows a round
//! trip (`UNNEST` of arrays), while a blocking thread reads them from the run's output,
//! and computes created and deleted objects set-based. Updated objects are compared in
//! Rust, property by property, read through a cursor. Nothing of the run's graph is
//! held whole in memory, and everything happens in one transaction.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};

use crate::model::*;
use crate::{ObjectSource, ObjectStream, PersistReport, Store, StoreError, migrations};

/// Objects staged per round trip, and per batch of `stream_objects`.
const BATCH: usize = 2000;

/// How a process uses the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections per process: a worker's concurrent persists plus readers.
    pub max_connections: u32,
    /// How long an operation waits for a connection before it fails with
    /// [`StoreError::Unavailable`] (the database is down or every connection is busy).
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> PoolSettings {
        PoolSettings {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// The PostgreSQL backend.
pub struct PostgresStore {
    location: String,
    pool: PgPool,
}

/// A sqlx error as ours: a database that cannot be reached is [`StoreError::Unavailable`]
/// (worth retrying later); anything else is [`StoreError::Database`].
fn db(error: sqlx::Error) -> StoreError {
    let unreachable = match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exception; 57P: the server is shutting down or starting.
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    };
    if unreachable {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Database(error.to_string())
    }
}

/// The URL without its password, for messages and logs.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn count(row: &PgRow, index: usize) -> Result<u64, sqlx::Error> {
    Ok(row.try_get::<i64, _>(index)?.max(0) as u64)
}

/// A jsonb column as `T`, its default when it holds something else.
fn json_column<T: serde::de::DeserializeOwned + Default>(
    row: &PgRow,
    index: usize,
) -> Result<T, sqlx::Error> {
    let value: Option<Value> = row.try_get(index)?;
    Ok(value
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

const RUN_COLUMNS: &str = "run_id, tenant, trigger, status, started_ms, finished_ms, baseline, \
     persisted, entities, relationships, entities_created, entities_updated, entities_deleted, \
     relationships_created, relationships_updated, relationships_deleted, partial_types, error";

/// A run from `RUN_COLUMNS` starting at column `at`.
fn run_from_row(row: &PgRow, at: usize) -> Result<RunRecord, sqlx::Error> {
    let trigger: String = row.try_get(at + 2)?;
    let status: String = row.try_get(at + 3)?;
    Ok(RunRecord {
        id: row.try_get(at)?,
        tenant: row.try_get(at + 1)?,
        trigger: Trigger::parse(&trigger).unwrap_or(Trigger::Manual),
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Failure),
        started_at_ms: row.try_get(at + 4)?,
        finished_at_ms: row.try_get(at + 5)?,
        baseline: row.try_get(at + 6)?,
        persisted: row.try_get(at + 7)?,
        entities: count(row, at + 8)?,
        relationships: count(row, at + 9)?,
        changes: ChangeCounts {
            entities: Counts {
                created: count(row, at + 10)?,
                updated: count(row, at + 11)?,
                deleted: count(row, at + 12)?,
            },
            relationships: Counts {
                created: count(row, at + 13)?,
                updated: count(row, at + 14)?,
                deleted: count(row, at + 15)?,
            },
        },
        partial_types: json_column(row, at + 16)?,
        error: row.try_get(at + 17)?,
        summary: None,
    })
}

/// Tenants with their run count and last run, in one query.
const TENANT_SELECT: &str = "SELECT t.tenant, t.account_name, t.description, t.polling_interval,
        t.tag_with_account_name, t.next_due_ms, t.fence, t.trigger_requested_ms,
        (SELECT COUNT(*) FROM runs c WHERE c.tenant = t.tenant), r.*
     FROM tenants t
     LEFT JOIN LATERAL (
         SELECT run_id, tenant, trigger, status, started_ms, finished_ms, baseline, persisted,
                entities, relationships, entities_created, entities_updated, entities_deleted,
                relationships_created, relationships_updated, relationships_deleted,
                partial_types, error
         FROM runs WHERE runs.tenant = t.tenant ORDER BY run_id DESC LIMIT 1) r ON true
     WHERE $1::text IS NULL OR t.tenant = $1
     ORDER BY t.tenant";

fn tenant_from_row(row: &PgRow) -> Result<TenantState, sqlx::Error> {
    let interval: String = row.try_get(3)?;
    let last_run_id: Option<i64> = row.try_get(9)?;
    Ok(TenantState {
        settings: TenantSettings {
            tenant: row.try_get(0)?,
            account_name: row.try_get(1)?,
            description: row.try_get(2)?,
            polling_interval: PollingInterval::parse(&interval).unwrap_or(PollingInterval::DEFAULT),
            tag_with_account_name: row.try_get(4)?,
        },
        next_due_ms: row.try_get(5)?,
        fence: row.try_get(6)?,
        trigger_requested_ms: row.try_get(7)?,
        runs: count(row, 8)?,
        last_run: match last_run_id {
            Some(_) => Some(run_from_row(row, 9)?),
            None => None,
        },
    })
}

const OBJECT_COLUMNS: &str = "key, kind, type, classes, from_key, to_key, properties, raw_data, \
     created_ms, begin_ms, end_ms, version, deleted, run_id, step";

fn stored_from_row(row: &PgRow) -> Result<StoredObject, sqlx::Error> {
    let kind: String = row.try_get(1)?;
    Ok(StoredObject {
        object: NewObject {
            step: row.try_get(14)?,
            kind: ObjectKind::parse(&kind).unwrap_or(ObjectKind::Entity),
            key: row.try_get(0)?,
            object_type: row.try_get(2)?,
            classes: json_column(row, 3)?,
            from_key: row.try_get(4)?,
            to_key: row.try_get(5)?,
            properties: json_column(row, 6)?,
            raw_data: row.try_get(7)?,
        },
        metadata: Metadata {
            created_on: row.try_get(8)?,
            begin_on: row.try_get(9)?,
            end_on: row.try_get(10)?,
            version: row.try_get(11)?,
            deleted: row.try_get(12)?,
        },
    })
}

const EVALUATION_COLUMNS: &str = "evaluation_id, tenant, rule, run_id, evaluated_ms, transition, \
     condition_met, alert_level, partial, baseline, results, totals, added, removed, error, \
     deliveries, alert_id";

fn evaluation_from_row(row: &PgRow) -> Result<EvaluationRecord, sqlx::Error> {
    let transition: String = row.try_get(5)?;
    let removed: Option<Value> = row.try_get(13)?;
    Ok(EvaluationRecord {
        id: row.try_get(0)?,
        tenant: row.try_get(1)?,
        rule: row.try_get(2)?,
        run: row.try_get(3)?,
        evaluated_at_ms: row.try_get(4)?,
        transition: AlertTransition::parse(&transition).unwrap_or(AlertTransition::Error),
        condition_met: row.try_get(6)?,
        alert_level: row.try_get(7)?,
        partial: row.try_get(8)?,
        baseline: row.try_get(9)?,
        results: count(row, 10)?,
        totals: row.try_get(11)?,
        added: json_column(row, 12)?,
        removed: removed.and_then(|r| serde_json::from_value(r).ok()),
        error: row.try_get(14)?,
        deliveries: row.try_get(15)?,
        alert_id: row.try_get(16)?,
    })
}

const ALERT_COLUMNS: &str = "alert_id, tenant, rule, description, level, status, opened_ms, \
     opened_run, resolved_ms, resolved_run, last_evaluated_ms, results, result_ids";

fn alert_from_row(row: &PgRow) -> Result<AlertRecord, sqlx::Error> {
    let status: String = row.try_get(5)?;
    Ok(AlertRecord {
        id: row.try_get(0)?,
        tenant: row.try_get(1)?,
        rule: row.try_get(2)?,
        description: row.try_get(3)?,
        level: row.try_get(4)?,
        status: if status == "active" {
            AlertStatus::Active
        } else {
            AlertStatus::Resolved
        },
        opened_at_ms: row.try_get(6)?,
        opened_run: row.try_get(7)?,
        resolved_at_ms: row.try_get(8)?,
        resolved_run: row.try_get(9)?,
        last_evaluated_at_ms: row.try_get(10)?,
        results: count(row, 11)?,
        result_ids: json_column(row, 12)?,
    })
}

/// A run by id, with or without its summary.
async fn load_run(
    conn: &mut PgConnection,
    run: RunId,
    with_summary: bool,
) -> Result<RunRecord, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS}, summary FROM runs WHERE run_id = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(run)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::UnknownRun {
            tenant: String::new(),
            run,
        })?;
    let mut record = run_from_row(&row, 0).map_err(db)?;
    if with_summary {
        record.summary = row.try_get(18).map_err(db)?;
    }
    Ok(record)
}

/// Fails with `UnknownTenant` when the tenant is not in the store.
async fn require_tenant(conn: &mut PgConnection, tenant: &str) -> Result<(), StoreError> {
    let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant = $1)")
        .bind(tenant)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    if known {
        Ok(())
    } else {
        Err(StoreError::UnknownTenant(tenant.to_owned()))
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/db`,
    /// with libpq's parameters such as `sslmode`) and brings its schema up to date.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::open_with(url, PoolSettings::default()).await
    }

    /// [`PostgresStore::open`] with pool settings of its own.
    pub async fn open_with(url: &str, settings: PoolSettings) -> Result<PostgresStore, StoreError> {
        let location = redact(url);
        let open_error = |reason: String| StoreError::Open {
            location: location.clone(),
            reason,
        };
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| open_error(e.to_string()))?
            .application_name("integration-host");
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(|e| open_error(e.to_string()))?;
        migrations::apply_postgres(&pool).await?;
        Ok(PostgresStore { location, pool })
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, StoreError> {
        self.pool.acquire().await.map_err(db)
    }
}

/// One batch of staged objects, column by column (bound as arrays).
#[derive(Default)]
struct StagedBatch {
    keys: Vec<String>,
    kinds: Vec<&'static str>,
    types: Vec<String>,
    classes: Vec<String>,
    from_keys: Vec<Option<String>>,
    to_keys: Vec<Option<String>>,
    properties: Vec<String>,
    raw_data: Vec<Option<String>>,
    steps: Vec<Option<String>>,
    entities: u64,
    relationships: u64,
}

impl StagedBatch {
    fn push(&mut self, object: NewObject) -> Result<(), StoreError> {
        // PostgreSQL's text cannot hold NUL, nor jsonb the escape `\u0000`; say so by
        // key rather than fail with the server's "invalid byte sequence".
        let properties = json_text(&object.properties);
        let nul_in = [
            ("_key", object.key.contains('\0')),
            ("_type", object.object_type.contains('\0')),
            (
                "_fromEntityKey",
                object.from_key.as_deref().is_some_and(|k| k.contains('\0')),
            ),
            (
                "_toEntityKey",
                object.to_key.as_deref().is_some_and(|k| k.contains('\0')),
            ),
            ("_class", object.classes.iter().any(|c| c.contains('\0'))),
            ("properties", properties.contains("\\u0000")),
        ]
        .into_iter()
        .find_map(|(field, nul)| nul.then_some(field));
        if let Some(field) = nul_in {
            return Err(StoreError::Database(format!(
                "object {:?}: {field} holds a NUL character, which PostgreSQL cannot store",
                object.key.replace('\0', "\\0")
            )));
        }
        match object.kind {
            ObjectKind::Entity => self.entities += 1,
            ObjectKind::Relationship => self.relationships += 1,
        }
        self.kinds.push(object.kind.as_str());
        self.classes.push(json_text(&object.classes));
        self.keys.push(object.key);
        self.types.push(object.object_type);
        self.from_keys.push(object.from_key);
        self.to_keys.push(object.to_key);
        self.properties.push(properties);
        self.raw_data.push(object.raw_data);
        self.steps.push(object.step);
        Ok(())
    }

    fn len(&self) -> usize {
        self.keys.len()
    }
}

/// Reads the run's objects on a blocking thread (they come from files) and hands them
/// over in batches, so reading overlaps the inserts.
fn read_batches(
    objects: ObjectSource,
) -> tokio::sync::mpsc::Receiver<Result<StagedBatch, StoreError>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let mut batch = StagedBatch::default();
        for object in objects {
            let pushed = object
                .map_err(StoreError::from)
                .and_then(|object| batch.push(object));
            if let Err(error) = pushed {
                let _ = sender.blocking_send(Err(error));
                return;
            }
            if batch.len() == BATCH {
                let full = std::mem::take(&mut batch);
                if sender.blocking_send(Ok(full)).is_err() {
                    return; // the persist failed and went away
                }
            }
        }
        if batch.len() > 0 {
            let _ = sender.blocking_send(Ok(batch));
        }
    });
    receiver
}

/// The staged key a unique violation names, from the server's detail
/// (`Key (key)=(X) already exists.`).
fn duplicate_key(error: &sqlx::Error) -> Option<String> {
    let e = error.as_database_error()?;
    if e.code().as_deref() != Some("23505") {
        return None;
    }
    let detail = e
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?
        .detail()?;
    let start = detail.find(")=(")? + 3;
    let end = detail.rfind(") already exists")?;
    Some(detail.get(start..end)?.to_owned())
}

async fn stage(tx: &mut PgConnection, objects: ObjectSource) -> Result<(u64, u64), StoreError> {
    let mut batches = read_batches(objects);
    let (mut entities, mut relationships) = (0u64, 0u64);
    while let Some(batch) = batches.recv().await {
        let batch = batch?;
        entities += batch.entities;
        relationships += batch.relationships;
        sqlx::query(
            "INSERT INTO staged (key, kind, type, classes, from_key, to_key, properties, raw_data, step)
             SELECT key, kind, type, classes::jsonb, from_key, to_key, properties::jsonb, raw_data, step
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::text[], $9::text[])
                  AS t (key, kind, type, classes, from_key, to_key, properties, raw_data, step)",
        )
        .bind(&batch.keys)
        .bind(&batch.kinds)
        .bind(&batch.types)
        .bind(&batch.classes)
        .bind(&batch.from_keys)
        .bind(&batch.to_keys)
        .bind(&batch.properties)
        .bind(&batch.raw_data)
        .bind(&batch.steps)
        .execute(&mut *tx)
        .await
        .map_err(|e| match duplicate_key(&e) {
            Some(key) => StoreError::Database(format!("the run emitted _key {key} twice")),
            None => db(e),
        })?;
    }
    Ok((entities, relationships))
}

/// Updated objects: candidates found in SQL (jsonb or endpoint inequality), compared
/// property by property in Rust, read through a cursor so that a run that changed
/// everything is never held whole.
async fn record_updates(tx: &mut PgConnection, run: RunId, tenant: &str) -> Result<(), StoreError> {
    sqlx::query(
        "DECLARE candidates NO SCROLL CURSOR FOR
         SELECT s.key, s.kind, s.type, s.from_key, s.to_key,
                o.classes, s.classes, o.properties, s.properties, o.type, o.from_key, o.to_key
         FROM staged s JOIN objects o ON o.tenant = $1 AND o.key = s.key
         WHERE NOT o.deleted AND (o.properties <> s.properties OR o.classes <> s.classes
               OR o.type <> s.type OR o.kind <> s.kind
               OR o.from_key IS DISTINCT FROM s.from_key OR o.to_key IS DISTINCT FROM s.to_key)
         ORDER BY s.kind, s.type, s.key",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    loop {
        let rows = sqlx::query(AssertSqlSafe(format!("FETCH {BATCH} FROM candidates")))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        if rows.is_empty() {
            break;
        }
        let (mut keys, mut kinds, mut types, mut froms, mut tos, mut diffs) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for row in &rows {
            let text = |i: usize| row.try_get::<String, _>(i).map_err(db);
            let maybe = |i: usize| row.try_get::<Option<String>, _>(i).map_err(db);
            let list = |i: usize| json_column::<Vec<String>>(row, i).map_err(db);
            let map = |i: usize| json_column::<Map<String, Value>>(row, i).map_err(db);
            let mut changes =
                crate::diff::property_changes(&list(5)?, &list(6)?, &map(7)?, &map(8)?);
            for (name, old, new) in [
                ("_type", Some(text(9)?), Some(text(2)?)),
                ("_fromEntityKey", maybe(10)?, maybe(3)?),
                ("_toEntityKey", maybe(11)?, maybe(4)?),
            ] {
                if old != new {
                    changes.push(PropertyChange {
                        name: name.into(),
                        old: old.map(Value::from),
                        new: new.map(Value::from),
                    });
                }
            }
            // jsonb compares numbers by value (1.0 = 1) where serde does not: only
            // differences both agree on are changes.
            if changes.is_empty() {
                continue;
            }
            keys.push(text(0)?);
            kinds.push(text(1)?);
            types.push(text(2)?);
            froms.push(maybe(3)?);
            tos.push(maybe(4)?);
            diffs.push(json_text(&changes));
        }
        if keys.is_empty() {
            continue;
        }
        sqlx::query(
            "INSERT INTO changes (run_id, tenant, change, kind, key, type, from_key, to_key, diff)
             SELECT $1, $2, 'updated', kind, key, type, from_key, to_key, diff::jsonb
             FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
                  AS t (key, kind, type, from_key, to_key, diff)",
        )
        .bind(run)
        .bind(tenant)
        .bind(&keys)
        .bind(&kinds)
        .bind(&types)
        .bind(&froms)
        .bind(&tos)
        .bind(&diffs)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query("INSERT INTO updated (key) SELECT * FROM UNNEST($1::text[])")
            .bind(&keys)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    sqlx::query("CLOSE candidates")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// Waits forever, before the commit, when the failpoint is set (crash tests only).
async fn failpoint(name: &str) {
    if crate::failpoint_active(name) {
        eprintln!("failpoint {name}: waiting to be killed");
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
}

/// The persist transaction; see the module docs.
async fn persist(
    conn: &mut PgConnection,
    run: RunId,
    outcome: RunOutcome,
    objects: ObjectSource,
) -> Result<PersistReport, StoreError> {
    use sqlx::Connection as _;
    let mut tx = conn.begin().await.map_err(db)?;
    let tenant: String = sqlx::query_scalar("SELECT tenant FROM runs WHERE run_id = $1")
        .bind(run)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::UnknownRun {
            tenant: String::new(),
            run,
        })?;
    // The tenant's row is the lock that orders two persists of one tenant: the second
    // waits here, then sees the first's fence and graph.
    let current: i64 = sqlx::query_scalar("SELECT fence FROM tenants WHERE tenant = $1 FOR UPDATE")
        .bind(&tenant)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    let status: String = sqlx::query_scalar("SELECT status FROM runs WHERE run_id = $1")
        .bind(run)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    if status != RunStatus::Running.as_str() {
        return Err(StoreError::RunNotRunning(run));
    }
    if let Some(fence) = outcome.fence {
        if fence < current {
            return Err(StoreError::StaleFence {
                tenant,
                run,
                fence,
                current,
            });
        }
        sqlx::query("UPDATE tenants SET fence = $2 WHERE tenant = $1")
            .bind(&tenant)
            .bind(fence)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    let baseline: bool = sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM runs WHERE tenant = $1 AND persisted)",
    )
    .bind(&tenant)
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    let now = outcome.finished_at_ms;

    sqlx::raw_sql(
        "CREATE TEMP TABLE staged (
             key TEXT COLLATE \"C\" PRIMARY KEY, kind TEXT NOT NULL, type TEXT COLLATE \"C\" NOT NULL,
             classes JSONB NOT NULL, from_key TEXT, to_key TEXT, properties JSONB NOT NULL,
             raw_data TEXT, step TEXT) ON COMMIT DROP;
         CREATE TEMP TABLE updated (key TEXT COLLATE \"C\" PRIMARY KEY) ON COMMIT DROP;",
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    let (entities, relationships) = stage(&mut tx, objects).await?;
    // A temporary table has no statistics until analyzed; without them the joins
    // below are planned for an empty table.
    sqlx::raw_sql("ANALYZE staged")
        .execute(&mut *tx)
        .await
        .map_err(db)?;

    // Created: keys the current graph does not hold (tombstones come back as new).
    sqlx::query(
        "INSERT INTO changes (run_id, tenant, change, kind, key, type, from_key, to_key)
         SELECT $1, $2, 'created', s.kind, s.key, s.type, s.from_key, s.to_key
         FROM staged s LEFT JOIN objects o ON o.tenant = $2 AND o.key = s.key
         WHERE o.key IS NULL OR o.deleted
         ORDER BY s.kind, s.type, s.key",
    )
    .bind(run)
    .bind(&tenant)
    .execute(&mut *tx)
    .await
    .map_err(db)?;

    record_updates(&mut tx, run, &tenant).await?;

    // Deleted: current keys the run did not emit, except partial types; a run that
    // failed as a whole deletes nothing.
    if !outcome.failed_whole {
        let partial: Vec<&str> = outcome.partial_types.iter().map(String::as_str).collect();
        sqlx::query(
            "WITH gone AS (
                 UPDATE objects o SET deleted = true, end_ms = $3, run_id = $1
                 WHERE o.tenant = $2 AND NOT o.deleted
                   AND NOT EXISTS (SELECT 1 FROM staged s WHERE s.key = o.key)
                   AND o.type <> ALL ($4::text[])
                 RETURNING o.kind, o.key, o.type, o.from_key, o.to_key)
             INSERT INTO changes (run_id, tenant, change, kind, key, type, from_key, to_key)
             SELECT $1, $2, 'deleted', kind, key, type, from_key, to_key FROM gone
             ORDER BY kind, type, key",
        )
        .bind(run)
        .bind(&tenant)
        .bind(now)
        .bind(&partial)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }

    // The new versions; unchanged rows are only rewritten when their raw data moved.
    sqlx::query(
        "INSERT INTO objects AS o (tenant, key, kind, type, classes, from_key, to_key, properties,
                                   raw_data, created_ms, begin_ms, end_ms, version, deleted, run_id, step)
         SELECT $2, key, kind, type, classes, from_key, to_key, properties, raw_data,
                $3, $3, NULL, 1, false, $1, step
         FROM staged
         ON CONFLICT (tenant, key) DO UPDATE SET
             kind = excluded.kind, type = excluded.type, classes = excluded.classes,
             from_key = excluded.from_key, to_key = excluded.to_key,
             properties = excluded.properties, raw_data = excluded.raw_data,
             step = excluded.step, run_id = excluded.run_id,
             created_ms = CASE WHEN o.deleted THEN excluded.created_ms ELSE o.created_ms END,
             begin_ms = CASE WHEN o.deleted OR EXISTS (SELECT 1 FROM updated u WHERE u.key = o.key)
                             THEN excluded.begin_ms ELSE o.begin_ms END,
             version = CASE WHEN o.deleted THEN 1
                            WHEN EXISTS (SELECT 1 FROM updated u WHERE u.key = o.key)
                            THEN o.version + 1 ELSE o.version END,
             end_ms = NULL, deleted = false
         WHERE o.deleted OR EXISTS (SELECT 1 FROM updated u WHERE u.key = o.key)
            OR o.raw_data IS DISTINCT FROM excluded.raw_data
            OR o.step IS DISTINCT FROM excluded.step
            OR o.properties <> excluded.properties OR o.classes <> excluded.classes",
    )
    .bind(run)
    .bind(&tenant)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db)?;

    let mut counts = ChangeCounts::default();
    let rows = sqlx::query(
        "SELECT kind, change, COUNT(*) FROM changes WHERE run_id = $1 GROUP BY kind, change",
    )
    .bind(run)
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    for row in rows {
        let kind: String = row.try_get(0).map_err(db)?;
        let change: String = row.try_get(1).map_err(db)?;
        let n = count(&row, 2).map_err(db)?;
        let bucket = match ObjectKind::parse(&kind) {
            Some(ObjectKind::Relationship) => &mut counts.relationships,
            _ => &mut counts.entities,
        };
        match ChangeKind::parse(&change) {
            Some(ChangeKind::Created) => bucket.created = n,
            Some(ChangeKind::Updated) => bucket.updated = n,
            Some(ChangeKind::Deleted) => bucket.deleted = n,
            None => {}
        }
    }
    sqlx::query(
        "UPDATE runs SET status = $2, finished_ms = $3, baseline = $4, persisted = true,
             entities = $5, relationships = $6,
             entities_created = $7, entities_updated = $8, entities_deleted = $9,
             relationships_created = $10, relationships_updated = $11, relationships_deleted = $12,
             partial_types = $13, error = $14, summary = $15
         WHERE run_id = $1",
    )
    .bind(run)
    .bind(outcome.status.as_str())
    .bind(now)
    .bind(baseline)
    .bind(entities as i64)
    .bind(relationships as i64)
    .bind(counts.entities.created as i64)
    .bind(counts.entities.updated as i64)
    .bind(counts.entities.deleted as i64)
    .bind(counts.relationships.created as i64)
    .bind(counts.relationships.updated as i64)
    .bind(counts.relationships.deleted as i64)
    .bind(Json(&outcome.partial_types))
    .bind(&outcome.error)
    .bind(outcome.summary.as_ref().map(Json))
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    failpoint("persist-before-commit").await;
    tx.commit().await.map_err(db)?;
    let run = load_run(conn, run, false).await?;
    Ok(PersistReport {
        run,
        changes: counts,
    })
}

/// The evaluation, its alert's lifecycle step and the rule's state, in one transaction.
async fn record_evaluation(
    conn: &mut PgConnection,
    e: NewEvaluation,
) -> Result<EvaluationRecord, StoreError> {
    use sqlx::Connection as _;
    let mut tx = conn.begin().await.map_err(db)?;
    // One evaluation of a rule at a time, so two cannot both open its alert.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))")
        .bind(&e.tenant)
        .bind(&e.rule)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let results = e.result_ids.len() as i64;
    let kept_ids: Vec<&String> = e.result_ids.iter().take(ALERT_RESULT_IDS).collect();
    let active: Option<i64> = sqlx::query_scalar(
        "SELECT alert_id FROM alerts WHERE tenant = $1 AND rule = $2 AND status = 'active'
         ORDER BY alert_id DESC LIMIT 1",
    )
    .bind(&e.tenant)
    .bind(&e.rule)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let alert_id = match (e.transition, active) {
        (AlertTransition::Opened, None) => Some(
            sqlx::query_scalar(
                "INSERT INTO alerts (tenant, rule, description, level, status, opened_ms, opened_run,
                                     last_evaluated_ms, results, result_ids)
                 VALUES ($1, $2, $3, $4, 'active', $5, $6, $5, $7, $8) RETURNING alert_id",
            )
            .bind(&e.tenant)
            .bind(&e.rule)
            .bind(&e.description)
            .bind(&e.alert_level)
            .bind(e.evaluated_at_ms)
            .bind(e.run)
            .bind(results)
            .bind(Json(&kept_ids))
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?,
        ),
        (AlertTransition::Opened | AlertTransition::StillActive, Some(id)) => {
            sqlx::query(
                "UPDATE alerts SET level = COALESCE($2, level), last_evaluated_ms = $3,
                     results = $4, result_ids = $5 WHERE alert_id = $1",
            )
            .bind(id)
            .bind(&e.alert_level)
            .bind(e.evaluated_at_ms)
            .bind(results)
            .bind(Json(&kept_ids))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            Some(id)
        }
        (AlertTransition::Resolved, Some(id)) => {
            sqlx::query(
                "UPDATE alerts SET status = 'resolved', resolved_ms = $2, resolved_run = $3,
                     last_evaluated_ms = $2, results = $4, result_ids = $5 WHERE alert_id = $1",
            )
            .bind(id)
            .bind(e.evaluated_at_ms)
            .bind(e.run)
            .bind(results)
            .bind(Json(&kept_ids))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            Some(id)
        }
        (_, active) => active,
    };
    let sql = format!(
        "INSERT INTO rule_evaluations (tenant, rule, run_id, evaluated_ms, transition, condition_met,
             alert_level, partial, baseline, results, added, removed, totals, error, deliveries,
             alert_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         RETURNING {EVALUATION_COLUMNS}"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(&e.tenant)
        .bind(&e.rule)
        .bind(e.run)
        .bind(e.evaluated_at_ms)
        .bind(e.transition.as_str())
        .bind(e.condition_met)
        .bind(&e.alert_level)
        .bind(e.partial)
        .bind(e.baseline)
        .bind(results)
        .bind(Json(&e.added))
        .bind(e.removed.as_ref().map(Json))
        .bind(Json(&e.totals))
        .bind(&e.error)
        .bind(Json(&e.deliveries))
        .bind(alert_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    let record = evaluation_from_row(&row).map_err(db)?;
    if e.transition != AlertTransition::Error {
        sqlx::query(
            "INSERT INTO rule_state (tenant, rule, state) VALUES ($1, $2, $3)
             ON CONFLICT (tenant, rule) DO UPDATE SET state = excluded.state",
        )
        .bind(&e.tenant)
        .bind(&e.rule)
        .bind(Json(&e.state))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(record)
}

#[async_trait]
impl Store for PostgresStore {
    fn location(&self) -> String {
        self.location.clone()
    }

    async fn upsert_tenant(&self, settings: &TenantSettings) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tenants (tenant, account_name, description, polling_interval,
                                  tag_with_account_name, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant) DO UPDATE SET account_name = excluded.account_name,
                 description = excluded.description,
                 polling_interval = excluded.polling_interval,
                 tag_with_account_name = excluded.tag_with_account_name,
                 updated_ms = excluded.updated_ms",
        )
        .bind(&settings.tenant)
        .bind(&settings.account_name)
        .bind(&settings.description)
        .bind(settings.polling_interval.as_str())
        .bind(settings.tag_with_account_name)
        .bind(crate::now_ms())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn put_tenant_config(
        &self,
        settings: &TenantSettings,
        config: &Value,
    ) -> Result<(i64, ConfigChange), StoreError> {
        use sqlx::Connection as _;
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        // The row lock orders two imports of one tenant.
        let before: Option<(Option<Json<Value>>, i64)> = sqlx::query_as(
            "SELECT config, config_revision FROM tenants WHERE tenant = $1 FOR UPDATE",
        )
        .bind(&settings.tenant)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let (revision, change) = match &before {
            Some((Some(Json(old)), revision)) if old == config => {
                (*revision, ConfigChange::Unchanged)
            }
            Some((Some(_), revision)) => (revision + 1, ConfigChange::Changed),
            Some((None, revision)) => (revision + 1, ConfigChange::Created),
            None => (1, ConfigChange::Created),
        };
        sqlx::query(
            "INSERT INTO tenants (tenant, account_name, description, polling_interval,
                                  tag_with_account_name, updated_ms, config, config_revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (tenant) DO UPDATE SET account_name = excluded.account_name,
                 description = excluded.description,
                 polling_interval = excluded.polling_interval,
                 tag_with_account_name = excluded.tag_with_account_name,
                 updated_ms = excluded.updated_ms,
                 config = excluded.config,
                 config_revision = excluded.config_revision",
        )
        .bind(&settings.tenant)
        .bind(&settings.account_name)
        .bind(&settings.description)
        .bind(settings.polling_interval.as_str())
        .bind(settings.tag_with_account_name)
        .bind(crate::now_ms())
        .bind(Json(config))
        .bind(revision)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok((revision, change))
    }

    async fn remove_tenant_config(&self, tenant: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tenants SET config = NULL, config_revision = config_revision + 1,
                 polling_interval = 'DISABLED', next_due_ms = NULL, updated_ms = $2
             WHERE tenant = $1",
        )
        .bind(tenant)
        .bind(crate::now_ms())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn tenant_config(&self, tenant: &str) -> Result<Option<TenantConfigRecord>, StoreError> {
        let row: Option<(Option<Json<Value>>, i64)> =
            sqlx::query_as("SELECT config, config_revision FROM tenants WHERE tenant = $1")
                .bind(tenant)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        Ok(match row {
            Some((Some(Json(config)), revision)) => Some(TenantConfigRecord {
                tenant: tenant.to_owned(),
                revision,
                config,
            }),
            _ => None,
        })
    }

    async fn tenants(&self) -> Result<Vec<TenantState>, StoreError> {
        let rows = sqlx::query(TENANT_SELECT)
            .bind(None::<String>)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| tenant_from_row(row).map_err(db))
            .collect()
    }

    async fn tenant(&self, tenant: &str) -> Result<TenantState, StoreError> {
        let row = sqlx::query(TENANT_SELECT)
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::UnknownTenant(tenant.to_owned()))?;
        tenant_from_row(&row).map_err(db)
    }

    async fn request_trigger(&self, tenant: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE tenants SET trigger_requested_ms = COALESCE(trigger_requested_ms, $2)
             WHERE tenant = $1",
        )
        .bind(tenant)
        .bind(crate::now_ms())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownTenant(tenant.to_owned()));
        }
        Ok(())
    }

    async fn take_trigger(&self, tenant: &str) -> Result<bool, StoreError> {
        // A row lock makes the second of two concurrent takers see NULL and take nothing.
        let done = sqlx::query(
            "UPDATE tenants SET trigger_requested_ms = NULL
             WHERE tenant = $1 AND trigger_requested_ms IS NOT NULL",
        )
        .bind(tenant)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn pending_triggers(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT tenant FROM tenants WHERE trigger_requested_ms IS NOT NULL
             ORDER BY trigger_requested_ms, tenant",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    async fn reset_tenant(&self, tenant: &str) -> Result<(), StoreError> {
        use sqlx::Connection as _;
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        for sql in [
            "DELETE FROM rule_evaluations WHERE tenant = $1",
            "DELETE FROM alerts WHERE tenant = $1",
            "DELETE FROM rule_state WHERE tenant = $1",
            "DELETE FROM changes WHERE tenant = $1",
            "DELETE FROM objects WHERE tenant = $1",
            "DELETE FROM runs WHERE tenant = $1",
            "UPDATE tenants SET next_due_ms = NULL, trigger_requested_ms = NULL WHERE tenant = $1",
        ] {
            sqlx::query(sql)
                .bind(tenant)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn set_next_due(&self, tenant: &str, due_ms: Option<i64>) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE tenants SET next_due_ms = $2 WHERE tenant = $1")
            .bind(tenant)
            .bind(due_ms)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownTenant(tenant.to_owned()));
        }
        Ok(())
    }

    async fn begin_run(
        &self,
        tenant: &str,
        trigger: Trigger,
        started_at_ms: i64,
    ) -> Result<RunId, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO runs (tenant, trigger, status, started_ms)
             SELECT $1, $2, 'running', $3 WHERE EXISTS (SELECT 1 FROM tenants WHERE tenant = $1)
             RETURNING run_id",
        )
        .bind(tenant)
        .bind(trigger.as_str())
        .bind(started_at_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::UnknownTenant(tenant.to_owned()))
    }

    async fn end_run(&self, run: RunId, outcome: RunOutcome) -> Result<RunRecord, StoreError> {
        let mut conn = self.conn().await?;
        let done = sqlx::query(
            "UPDATE runs SET status = $2, finished_ms = $3, partial_types = $4, error = $5,
                 summary = $6
             WHERE run_id = $1 AND status = 'running'",
        )
        .bind(run)
        .bind(outcome.status.as_str())
        .bind(outcome.finished_at_ms)
        .bind(Json(&outcome.partial_types))
        .bind(&outcome.error)
        .bind(outcome.summary.as_ref().map(Json))
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::RunNotRunning(run));
        }
        load_run(&mut conn, run, false).await
    }

    async fn abandon_running(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET status = 'abandoned', finished_ms = $1,
                 error = COALESCE(error, 'the host stopped before the run was persisted')
             WHERE status = 'running'",
        )
        .bind(crate::now_ms())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn persist_run(
        &self,
        run: RunId,
        outcome: RunOutcome,
        objects: ObjectSource,
    ) -> Result<PersistReport, StoreError> {
        let mut conn = self.conn().await?;
        persist(&mut conn, run, outcome, objects).await
    }

    async fn runs(&self, tenant: &str, limit: u64) -> Result<Vec<RunRecord>, StoreError> {
        let mut conn = self.conn().await?;
        require_tenant(&mut conn, tenant).await?;
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE tenant = $1 ORDER BY run_id DESC LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant)
            .bind(limit.min(i64::MAX as u64) as i64)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| run_from_row(row, 0).map_err(db))
            .collect()
    }

    async fn run(&self, tenant: &str, run: RunId) -> Result<RunRecord, StoreError> {
        let mut conn = self.conn().await?;
        let unknown = || StoreError::UnknownRun {
            tenant: tenant.to_owned(),
            run,
        };
        let record = match load_run(&mut conn, run, true).await {
            Ok(record) => record,
            Err(StoreError::UnknownRun { .. }) => return Err(unknown()),
            Err(other) => return Err(other),
        };
        if record.tenant != tenant {
            return Err(unknown());
        }
        Ok(record)
    }

    async fn changes(
        &self,
        tenant: &str,
        run: Option<RunId>,
        filter: &ChangeFilter,
    ) -> Result<ChangeSet, StoreError> {
        let mut conn = self.conn().await?;
        require_tenant(&mut conn, tenant).await?;
        let run_id = match run {
            Some(run) => run,
            None => sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(run_id) FROM runs WHERE tenant = $1 AND persisted",
            )
            .bind(tenant)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::NoRuns(tenant.to_owned()))?,
        };
        let unknown = || StoreError::UnknownRun {
            tenant: tenant.to_owned(),
            run: run_id,
        };
        let record = match load_run(&mut conn, run_id, false).await {
            Ok(record) if record.tenant == tenant => record,
            Ok(_) | Err(StoreError::UnknownRun { .. }) => return Err(unknown()),
            Err(other) => return Err(other),
        };
        const WHERE: &str =
            "run_id = $1 AND ($2::text IS NULL OR type = $2) AND ($3::text IS NULL OR change = $3)";
        let type_filter = filter.object_type.as_deref();
        let change_filter = filter.change.map(ChangeKind::as_str);
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM changes WHERE {WHERE}"
        )))
        .bind(run_id)
        .bind(type_filter)
        .bind(change_filter)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT change, kind, key, type, from_key, to_key, diff FROM changes
             WHERE {WHERE} ORDER BY change_id LIMIT $4 OFFSET $5"
        )))
        .bind(run_id)
        .bind(type_filter)
        .bind(change_filter)
        .bind(filter.limit.map(|l| l.min(i64::MAX as u64) as i64))
        .bind(filter.offset.min(i64::MAX as u64) as i64)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        let changes = rows
            .iter()
            .map(|row| -> Result<Change, sqlx::Error> {
                let change: String = row.try_get(0)?;
                let kind: String = row.try_get(1)?;
                Ok(Change {
                    change: ChangeKind::parse(&change).unwrap_or(ChangeKind::Updated),
                    kind: ObjectKind::parse(&kind).unwrap_or(ObjectKind::Entity),
                    key: row.try_get(2)?,
                    object_type: row.try_get(3)?,
                    from_key: row.try_get(4)?,
                    to_key: row.try_get(5)?,
                    properties: json_column(row, 6)?,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(ChangeSet {
            run: record,
            changes,
            total: total.max(0) as u64,
        })
    }

    async fn stream_objects(
        &self,
        tenant: &str,
        include_deleted: bool,
    ) -> Result<ObjectStream, StoreError> {
        let mut conn = self.conn().await?;
        require_tenant(&mut conn, tenant).await?;
        let tenant = tenant.to_owned();
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            // Entities first, so a consumer can resolve endpoints as edges arrive. The
            // rows come off the socket as the batches are taken: the channel's bound is
            // the backpressure.
            let sql = format!(
                "SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant = $1 AND ($2 OR NOT deleted)
                 ORDER BY kind, type, key"
            );
            let result = async {
                let mut rows = sqlx::query(AssertSqlSafe(sql))
                    .bind(&tenant)
                    .bind(include_deleted)
                    .fetch(&mut *conn);
                let mut batch = Vec::with_capacity(BATCH);
                while let Some(row) = rows.try_next().await.map_err(db)? {
                    batch.push(stored_from_row(&row).map_err(db)?);
                    if batch.len() == BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        if sender.send(Ok(full)).await.is_err() {
                            return Ok(()); // the consumer went away
                        }
                    }
                }
                if !batch.is_empty() {
                    let _ = sender.send(Ok(batch)).await;
                }
                Ok::<(), StoreError>(())
            }
            .await;
            if let Err(error) = result {
                let _ = sender.send(Err(error)).await;
            }
        });
        Ok(receiver)
    }

    async fn rule_state(&self, tenant: &str, rule: &str) -> Result<Option<Value>, StoreError> {
        sqlx::query_scalar("SELECT state FROM rule_state WHERE tenant = $1 AND rule = $2")
            .bind(tenant)
            .bind(rule)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn record_evaluation(
        &self,
        evaluation: NewEvaluation,
    ) -> Result<EvaluationRecord, StoreError> {
        let mut conn = self.conn().await?;
        record_evaluation(&mut conn, evaluation).await
    }

    async fn record_deliveries(
        &self,
        evaluation: i64,
        deliveries: Value,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE rule_evaluations SET deliveries = $2 WHERE evaluation_id = $1")
            .bind(evaluation)
            .bind(Json(&deliveries))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn evaluations(
        &self,
        tenant: &str,
        run: Option<RunId>,
    ) -> Result<Vec<EvaluationRecord>, StoreError> {
        let mut conn = self.conn().await?;
        require_tenant(&mut conn, tenant).await?;
        let sql = format!(
            "SELECT {EVALUATION_COLUMNS} FROM rule_evaluations
             WHERE tenant = $1 AND ($2::bigint IS NULL OR run_id = $2) ORDER BY evaluation_id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant)
            .bind(run)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| evaluation_from_row(row).map_err(db))
            .collect()
    }

    async fn alerts(
        &self,
        tenant: &str,
        status: Option<AlertStatus>,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let mut conn = self.conn().await?;
        require_tenant(&mut conn, tenant).await?;
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts
             WHERE tenant = $1 AND ($2::text IS NULL OR status = $2) ORDER BY alert_id DESC"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant)
            .bind(status.map(AlertStatus::as_str))
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| alert_from_row(row).map_err(db))
            .collect()
    }

    async fn relationships_of(
        &self,
        tenant: &str,
        key: &str,
        include_deleted: bool,
        limit: u64,
    ) -> Result<Vec<StoredObject>, StoreError> {
        // Two index scans (by either endpoint); an edge from the entity to itself once.
        // Round robin over the relationship types, so a limit cuts the most numerous
        // types, never a type of a few (a user's groups beside its 400 systems).
        let sql = format!(
            "SELECT {OBJECT_COLUMNS} FROM (
                 SELECT {OBJECT_COLUMNS},
                        ROW_NUMBER() OVER (PARTITION BY type ORDER BY key) AS type_rank
                 FROM ((SELECT {OBJECT_COLUMNS} FROM objects
                        WHERE tenant = $1 AND from_key = $2 AND ($3 OR NOT deleted))
                       UNION ALL
                       (SELECT {OBJECT_COLUMNS} FROM objects
                        WHERE tenant = $1 AND to_key = $2 AND from_key <> $2
                          AND ($3 OR NOT deleted))) AS edges) AS ranked
             ORDER BY type_rank, type, key
             LIMIT $4"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant)
            .bind(key)
            .bind(include_deleted)
            .bind(limit.min(i64::MAX as u64) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| stored_from_row(row).map_err(db))
            .collect()
    }

    async fn search(
        &self,
        tenant: &str,
        text: &str,
        limit: u64,
    ) -> Result<Vec<StoredObject>, StoreError> {
        let pattern = crate::contains_pattern(text);
        let sql = format!(
            "SELECT {OBJECT_COLUMNS} FROM objects
             WHERE tenant = $1 AND kind = 'entity' AND NOT deleted AND (
                 key ILIKE $2
                 OR properties ->> 'name' ILIKE $2
                 OR properties ->> 'displayName' ILIKE $2
                 OR properties ->> 'email' ILIKE $2
                 OR properties ->> 'username' ILIKE $2)
             ORDER BY type, key LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant)
            .bind(pattern)
            .bind(limit.min(i64::MAX as u64) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| stored_from_row(row).map_err(db))
            .collect()
    }

    async fn type_counts(
        &self,
        tenant: &str,
    ) -> Result<Vec<(ObjectKind, String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, type, COUNT(*) FROM objects WHERE tenant = $1 AND NOT deleted
             GROUP BY kind, type ORDER BY kind, type",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| -> Result<(ObjectKind, String, u64), sqlx::Error> {
                let kind: String = row.try_get(0)?;
                Ok((
                    ObjectKind::parse(&kind).unwrap_or(ObjectKind::Entity),
                    row.try_get(1)?,
                    count(row, 2)?,
                ))
            })
            .collect::<Result<_, _>>()
            .map_err(db)
    }

    async fn object(&self, tenant: &str, key: &str) -> Result<Option<StoredObject>, StoreError> {
        let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant = $1 AND key = $2");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref()
            .map(|row| stored_from_row(row).map_err(db))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_the_location() {
        assert_eq!(
            redact("postgres://fleet:s3cret@db.internal:5432/graph?sslmode=require"),
            "postgres://fleet@db.internal:5432/graph?sslmode=require"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:5432/x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(redact("postgres://h/x"), "postgres://h/x");
    }

    #[test]
    fn a_nul_character_is_refused_by_key_and_field() {
        let mut batch = StagedBatch::default();
        let mut properties = Map::new();
        properties.insert("name".into(), Value::from("a\0b"));
        let error = batch
            .push(NewObject {
                step: None,
                kind: ObjectKind::Entity,
                key: "u1".into(),
                object_type: "user".into(),
                classes: vec!["User".into()],
                from_key: None,
                to_key: None,
                properties,
                raw_data: None,
            })
            .expect_err("refused");
        assert_eq!(
            error.to_string(),
            "store: object \"u1\": properties holds a NUL character, which PostgreSQL cannot store"
        );
        assert_eq!(batch.len(), 0);
    }
}

//! `graph-store`: each tenant's graph kept between runs.
//!
//! A store holds, per tenant: its monitoring settings and schedule, its runs (trigger,
//! status, summary), its current graph (every entity and relationship with properties,
//! raw data and J1's metadata `_createdOn`, `_beginOn`, `_version`, `_deleted`/`_endOn`),
//! and the change set of every persisted run.
//!
//! Change semantics (J1's, made explicit; see `MONITORING.md`), identity being `_key`
//! within a tenant:
//! - **created**: a key the current graph does not hold (tombstones are not held);
//! - **updated**: same key, and `_class`, the endpoints or a property other than
//!   `_rawData` differ; the change names each property with old and new values;
//! - **deleted**: a current key the run did not emit, unless its `_type` was partial in
//!   the run; a run that failed as a whole deletes nothing;
//! - the tenant's first persisted run is the **baseline**.
//!
//! A run is persisted in one transaction: a crash at any point leaves the previous graph
//! whole. [`Store`] is the one interface; [`sqlite::SqliteStore`] is the embedded
//! backend, [`postgres::PostgresStore`] the fleet's shared one, and [`open`] picks one
//! by URL. Nothing here knows wasmtime or JumpCloud.

pub mod diff;
pub mod model;
pub mod postgres;
pub mod sdk;
pub mod sqlite;

mod migrations;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

pub use model::*;

/// Why the store refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A store URL that names no backend we have.
    #[error("unsupported store URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE")]
    UnsupportedUrl(String),
    #[error("cannot open the store at {location}: {reason}")]
    Open { location: String, reason: String },
    /// The database answered with an error.
    #[error("store: {0}")]
    Database(String),
    /// The database cannot be reached (down, restarting, or every connection busy):
    /// nothing was written, and the same call may work later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store's schema is newer than this program.
    #[error(
        "the store has schema version {found}, newer than this program's {supported}: upgrade integration-host"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("no tenant {0:?} in the store")]
    UnknownTenant(String),
    #[error("no run {run} of tenant {tenant:?} in the store")]
    UnknownRun { tenant: String, run: RunId },
    #[error("tenant {0:?} has no runs yet")]
    NoRuns(String),
    /// A persist under a lease older than the tenant's last (a stalled worker).
    #[error("refused: run {run} of {tenant} holds lease {fence}, but the tenant is at {current}")]
    StaleFence {
        tenant: String,
        run: RunId,
        fence: i64,
        current: i64,
    },
    /// The run was already persisted or ended.
    #[error("run {0} is not running")]
    RunNotRunning(RunId),
    /// The objects to persist could not be read.
    #[error(transparent)]
    Input(#[from] sdk::ReadError),
    /// The store's worker thread went away.
    #[error("store worker failed: {0}")]
    Worker(String),
}

/// The objects of a run, read one at a time.
pub type ObjectSource = Box<dyn Iterator<Item = Result<NewObject, sdk::ReadError>> + Send>;

/// Batches of stored objects, as `stream_objects` reads them.
pub type ObjectStream = tokio::sync::mpsc::Receiver<Result<Vec<StoredObject>, StoreError>>;

/// What `persist_run` did.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistReport {
    pub run: RunRecord,
    pub changes: ChangeCounts,
}

/// The tenant graphs, runs and change sets. Every method is one transaction.
#[async_trait]
pub trait Store: Send + Sync {
    /// Where it is, for messages (`sqlite:///path/store.db`).
    fn location(&self) -> String;

    /// Adds a tenant or updates its settings; its schedule and graph are kept.
    async fn upsert_tenant(&self, settings: &TenantSettings) -> Result<(), StoreError>;

    /// Stores a tenant's settings and configuration together, in one transaction; the
    /// configuration's revision grows only when the document differs from the stored
    /// one. Returns the revision and what changed.
    async fn put_tenant_config(
        &self,
        settings: &TenantSettings,
        config: &Value,
    ) -> Result<(i64, ConfigChange), StoreError>;

    /// Takes a tenant out of the fleet: its configuration dropped (the revision grows)
    /// and its polling interval `DISABLED`, so no scheduler runs it again; its graph,
    /// runs and alerts stay for reading. `false`: no such tenant.
    async fn remove_tenant_config(&self, tenant: &str) -> Result<bool, StoreError>;

    /// The tenant's stored configuration (`None`: the tenant has none, or is unknown).
    async fn tenant_config(&self, tenant: &str) -> Result<Option<TenantConfigRecord>, StoreError>;

    /// Every tenant, with schedule and last run, by id.
    async fn tenants(&self) -> Result<Vec<TenantState>, StoreError>;

    async fn tenant(&self, tenant: &str) -> Result<TenantState, StoreError>;

    /// Asks the scheduler (of this or another process) to run the tenant now.
    async fn request_trigger(&self, tenant: &str) -> Result<(), StoreError>;

    /// Takes the tenant's pending manual trigger, if any (cleared atomically, so two
    /// schedulers cannot both take it).
    async fn take_trigger(&self, tenant: &str) -> Result<bool, StoreError>;

    /// Tenants with a manual trigger waiting, oldest request first.
    async fn pending_triggers(&self) -> Result<Vec<String>, StoreError>;

    /// Removes a tenant's runs, graph and changes (the demo starts afresh); its
    /// settings stay.
    async fn reset_tenant(&self, tenant: &str) -> Result<(), StoreError>;

    /// Records when the tenant is due next (epoch ms).
    async fn set_next_due(&self, tenant: &str, due_ms: Option<i64>) -> Result<(), StoreError>;

    /// Opens a run (`running`); the tenant must exist.
    async fn begin_run(
        &self,
        tenant: &str,
        trigger: Trigger,
        started_at_ms: i64,
    ) -> Result<RunId, StoreError>;

    /// Ends a run without touching the graph (abandoned, or failed before any output).
    async fn end_run(&self, run: RunId, outcome: RunOutcome) -> Result<RunRecord, StoreError>;

    /// Marks every `running` run `abandoned`: after a crash or restart nothing of them
    /// was persisted. Returns how many there were.
    async fn abandon_running(&self) -> Result<u64, StoreError>;

    /// Replaces the tenant's current graph with the run's objects, records the change
    /// set and ends the run, in one transaction.
    async fn persist_run(
        &self,
        run: RunId,
        outcome: RunOutcome,
        objects: ObjectSource,
    ) -> Result<PersistReport, StoreError>;

    /// The tenant's runs, newest first.
    async fn runs(&self, tenant: &str, limit: u64) -> Result<Vec<RunRecord>, StoreError>;

    /// One run, with its summary.
    async fn run(&self, tenant: &str, run: RunId) -> Result<RunRecord, StoreError>;

    /// A run's change set (`None`: the newest persisted run).
    async fn changes(
        &self,
        tenant: &str,
        run: Option<RunId>,
        filter: &ChangeFilter,
    ) -> Result<ChangeSet, StoreError>;

    /// The tenant's current graph in batches, entities first; tombstones only when
    /// asked. The batches are read as they are consumed, so a large graph is never
    /// held whole by the store.
    async fn stream_objects(
        &self,
        tenant: &str,
        include_deleted: bool,
    ) -> Result<ObjectStream, StoreError>;

    /// The tenant's current graph, collected (for small graphs and tests).
    async fn objects(
        &self,
        tenant: &str,
        include_deleted: bool,
    ) -> Result<Vec<StoredObject>, StoreError> {
        let mut stream = self.stream_objects(tenant, include_deleted).await?;
        let mut objects = Vec::new();
        while let Some(batch) = stream.recv().await {
            objects.extend(batch?);
        }
        Ok(objects)
    }

    /// What the rule's last evaluation left for the next one.
    async fn rule_state(&self, tenant: &str, rule: &str) -> Result<Option<Value>, StoreError>;

    /// Records an evaluation, the alert it opened, kept or resolved, and the rule's
    /// state, in one transaction.
    async fn record_evaluation(
        &self,
        evaluation: NewEvaluation,
    ) -> Result<EvaluationRecord, StoreError>;

    /// Replaces an evaluation's deliveries once they are done.
    async fn record_deliveries(&self, evaluation: i64, deliveries: Value)
    -> Result<(), StoreError>;

    /// Evaluations of a run (`None`: every run), oldest first.
    async fn evaluations(
        &self,
        tenant: &str,
        run: Option<RunId>,
    ) -> Result<Vec<EvaluationRecord>, StoreError>;

    /// Alerts, newest first; `None`: open and resolved.
    async fn alerts(
        &self,
        tenant: &str,
        status: Option<AlertStatus>,
    ) -> Result<Vec<AlertRecord>, StoreError>;

    /// The relationships from or to an entity (current ones, tombstones when asked),
    /// at most `limit`.
    async fn relationships_of(
        &self,
        tenant: &str,
        key: &str,
        include_deleted: bool,
        limit: u64,
    ) -> Result<Vec<StoredObject>, StoreError>;

    /// Current entities whose key, name, display name, email or username contains
    /// `text` (case-insensitive), at most `limit`.
    async fn search(
        &self,
        tenant: &str,
        text: &str,
        limit: u64,
    ) -> Result<Vec<StoredObject>, StoreError>;

    /// Current objects by kind and `_type`.
    async fn type_counts(&self, tenant: &str)
    -> Result<Vec<(ObjectKind, String, u64)>, StoreError>;

    /// One object by key (tombstones included).
    async fn object(&self, tenant: &str, key: &str) -> Result<Option<StoredObject>, StoreError>;
}

/// Whether a store URL names a PostgreSQL database (the fleet's shared store).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A SQLite store URL: `sqlite://PATH` (or a bare path). `postgres://` URLs are for
/// [`open`], not paths.
pub fn parse_url(url: &str) -> Result<PathBuf, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        }
        return Ok(PathBuf::from(path));
    }
    if url.contains("://") {
        return Err(StoreError::UnsupportedUrl(url.to_owned()));
    }
    Ok(PathBuf::from(url))
}

/// Opens (creating when missing) the store at `url`, migrating its schema.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres_url(url) {
        return Ok(Arc::new(postgres::PostgresStore::open(url).await?));
    }
    let path = parse_url(url)?;
    Ok(Arc::new(sqlite::SqliteStore::open(&path).await?))
}

/// Set `GRAPH_STORE_FAILPOINT=persist-before-commit` to make a persist stop just before
/// its commit and wait to be killed: the crash tests use it to kill a real process in
/// the middle of a persist.
const FAILPOINT_VAR: &str = "GRAPH_STORE_FAILPOINT";

/// Whether the failpoint `name` is set (crash tests only).
pub(crate) fn failpoint_active(name: &str) -> bool {
    std::env::var(FAILPOINT_VAR).is_ok_and(|v| v == name)
}

/// A LIKE pattern matching values that contain `text` literally (`%`, `_` and `\`
/// escaped with `\`, which both backends take as `ESCAPE '\'`).
pub(crate) fn contains_pattern(text: &str) -> String {
    format!(
        "%{}%",
        text.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// The default store of an output folder.
pub fn default_path(output_dir: &Path) -> PathBuf {
    output_dir.join("store.db")
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

//! What the store holds: tenants and their schedule, runs, graph objects with J1's
//! metadata, and change sets. Plain data, shared by every backend.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A run's number in its store; grows with every run of every tenant.
pub type RunId = i64;

/// J1's integration polling intervals (`IntegrationPollingInterval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PollingInterval {
    /// Runs only when triggered.
    Disabled,
    ThirtyMinutes,
    OneHour,
    FourHours,
    EightHours,
    TwelveHours,
    OneDay,
    OneWeek,
}

impl PollingInterval {
    pub const ALL: [PollingInterval; 8] = [
        PollingInterval::Disabled,
        PollingInterval::ThirtyMinutes,
        PollingInterval::OneHour,
        PollingInterval::FourHours,
        PollingInterval::EightHours,
        PollingInterval::TwelveHours,
        PollingInterval::OneDay,
        PollingInterval::OneWeek,
    ];

    /// J1's default for an integration instance.
    pub const DEFAULT: PollingInterval = PollingInterval::OneDay;

    pub fn as_str(self) -> &'static str {
        match self {
            PollingInterval::Disabled => "DISABLED",
            PollingInterval::ThirtyMinutes => "THIRTY_MINUTES",
            PollingInterval::OneHour => "ONE_HOUR",
            PollingInterval::FourHours => "FOUR_HOURS",
            PollingInterval::EightHours => "EIGHT_HOURS",
            PollingInterval::TwelveHours => "TWELVE_HOURS",
            PollingInterval::OneDay => "ONE_DAY",
            PollingInterval::OneWeek => "ONE_WEEK",
        }
    }

    /// Parses J1's spelling; the error lists the allowed values.
    pub fn parse(text: &str) -> Result<PollingInterval, String> {
        PollingInterval::ALL
            .into_iter()
            .find(|interval| interval.as_str() == text)
            .ok_or_else(|| {
                let allowed: Vec<&str> = PollingInterval::ALL.iter().map(|i| i.as_str()).collect();
                format!(
                    "unknown polling interval {text:?}; allowed: {}",
                    allowed.join(", ")
                )
            })
    }

    /// Time between two scheduled runs; `None` for `DISABLED`.
    pub fn period(self) -> Option<Duration> {
        const MINUTE: u64 = 60;
        const HOUR: u64 = 60 * MINUTE;
        let seconds = match self {
            PollingInterval::Disabled => return None,
            PollingInterval::ThirtyMinutes => 30 * MINUTE,
            PollingInterval::OneHour => HOUR,
            PollingInterval::FourHours => 4 * HOUR,
            PollingInterval::EightHours => 8 * HOUR,
            PollingInterval::TwelveHours => 12 * HOUR,
            PollingInterval::OneDay => 24 * HOUR,
            PollingInterval::OneWeek => 7 * 24 * HOUR,
        };
        Some(Duration::from_secs(seconds))
    }
}

impl fmt::Display for PollingInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant's monitoring settings, from its tenant file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantSettings {
    pub tenant: String,
    /// J1's "Account Name".
    pub account_name: Option<String>,
    pub description: Option<String>,
    pub polling_interval: PollingInterval,
    /// Whether every entity gets `tag.AccountName`.
    pub tag_with_account_name: bool,
}

impl TenantSettings {
    /// Settings with J1's defaults.
    pub fn new(tenant: impl Into<String>) -> TenantSettings {
        TenantSettings {
            tenant: tenant.into(),
            account_name: None,
            description: None,
            polling_interval: PollingInterval::DEFAULT,
            tag_with_account_name: false,
        }
    }
}

/// A tenant's configuration as the fleet keeps it (`tenants import`): an opaque
/// document the host writes and reads (the store does not interpret it), with a
/// revision that grows each time the document changes, so a worker knows when the
/// tenant it prepared is out of date.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantConfigRecord {
    pub tenant: String,
    pub revision: i64,
    pub config: serde_json::Value,
}

/// What storing a tenant's configuration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigChange {
    /// The tenant was new, or had no configuration before.
    Created,
    /// The configuration differed: its revision grew.
    Changed,
    /// The same configuration: the revision stays.
    Unchanged,
}

/// A tenant as the store knows it: settings, schedule, last run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantState {
    #[serde(flatten)]
    pub settings: TenantSettings,
    /// When the scheduler runs it next (epoch ms); `None` before its first schedule.
    pub next_due_ms: Option<i64>,
    pub runs: u64,
    pub last_run: Option<RunRecord>,
    /// The highest lease number a persist has used (fleet fencing).
    pub fence: i64,
    /// A manual trigger not yet taken by a scheduler (epoch ms of the request).
    pub trigger_requested_ms: Option<i64>,
}

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Its polling interval came round.
    Schedule,
    /// `trigger`, the console's "run now", or the HTTP API.
    Manual,
    /// `run` or `demo` on the command line.
    Cli,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Cli => "cli",
        }
    }

    pub fn parse(text: &str) -> Option<Trigger> {
        [Trigger::Schedule, Trigger::Manual, Trigger::Cli]
            .into_iter()
            .find(|t| t.as_str() == text)
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Success,
    /// Some steps failed; what the others collected is kept.
    Partial,
    Failure,
    /// Stopped (shutdown, a lost lease) before it was persisted; changed nothing.
    Abandoned,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Partial => "partial",
            RunStatus::Failure => "failure",
            RunStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Success,
            RunStatus::Partial,
            RunStatus::Failure,
            RunStatus::Abandoned,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Created, updated and deleted objects of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.created + self.updated + self.deleted
    }
}

/// The size of a change set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    pub entities: Counts,
    pub relationships: Counts,
}

impl ChangeCounts {
    pub fn total(&self) -> u64 {
        self.entities.total() + self.relationships.total()
    }
}

impl fmt::Display for ChangeCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (e, r) = (&self.entities, &self.relationships);
        write!(
            f,
            "entities +{} ~{} -{}, relationships +{} ~{} -{}",
            e.created, e.updated, e.deleted, r.created, r.updated, r.deleted
        )
    }
}

/// One run of one tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub id: RunId,
    pub tenant: String,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// The tenant's first persisted run: its changes are the initial graph, not news.
    pub baseline: bool,
    /// Whether its graph went into the store.
    pub persisted: bool,
    pub entities: u64,
    pub relationships: u64,
    pub changes: ChangeCounts,
    pub partial_types: Vec<String>,
    pub error: Option<String>,
    /// The run's `summary.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Value>,
}

/// Entity or relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Entity,
    Relationship,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Entity => "entity",
            ObjectKind::Relationship => "relationship",
        }
    }

    pub fn parse(text: &str) -> Option<ObjectKind> {
        match text {
            "entity" => Some(ObjectKind::Entity),
            "relationship" => Some(ObjectKind::Relationship),
            _ => None,
        }
    }
}

/// An object a run emitted, as it goes into the store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewObject {
    /// The step that emitted it: the folder `export` writes it to.
    pub step: Option<String>,
    pub kind: ObjectKind,
    pub key: String,
    pub object_type: String,
    pub classes: Vec<String>,
    /// Relationships only.
    pub from_key: Option<String>,
    pub to_key: Option<String>,
    /// Every property but `_key`, `_type`, `_class`, the endpoints and `_rawData`.
    pub properties: Map<String, Value>,
    /// `_rawData` as JSON text; kept, but a change to it alone is not an update.
    pub raw_data: Option<String>,
}

/// J1's metadata of a stored object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// `_createdOn`: when the key was first seen (epoch ms).
    pub created_on: i64,
    /// `_beginOn`: when the current version was made.
    pub begin_on: i64,
    /// `_endOn`: when it was deleted.
    pub end_on: Option<i64>,
    /// `_version`: 1 when created, +1 for every captured change.
    pub version: i64,
    /// `_deleted`: a tombstone.
    pub deleted: bool,
}

/// An object of a tenant's current graph (or a tombstone).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    pub object: NewObject,
    pub metadata: Metadata,
}

impl StoredObject {
    /// J1's JSON form: `_key`, `_type`, `_class`, endpoints, properties, metadata,
    /// and `_rawData` when `with_raw`.
    pub fn to_json(&self, with_raw: bool) -> Value {
        let o = &self.object;
        let m = &self.metadata;
        let mut map = Map::new();
        map.insert("_key".into(), o.key.clone().into());
        map.insert("_type".into(), o.object_type.clone().into());
        match o.kind {
            ObjectKind::Entity => {
                map.insert("_class".into(), o.classes.clone().into());
            }
            ObjectKind::Relationship => {
                let class = o.classes.first().cloned().unwrap_or_default();
                map.insert("_class".into(), class.into());
                map.insert(
                    "_fromEntityKey".into(),
                    o.from_key.clone().unwrap_or_default().into(),
                );
                map.insert(
                    "_toEntityKey".into(),
                    o.to_key.clone().unwrap_or_default().into(),
                );
            }
        }
        for (name, value) in &o.properties {
            map.insert(name.clone(), value.clone());
        }
        map.insert("_createdOn".into(), m.created_on.into());
        map.insert("_beginOn".into(), m.begin_on.into());
        if let Some(end) = m.end_on {
            map.insert("_endOn".into(), end.into());
        }
        map.insert("_version".into(), m.version.into());
        map.insert("_deleted".into(), m.deleted.into());
        if with_raw && let Some(raw) = &o.raw_data {
            let raw: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
            map.insert(
                "_rawData".into(),
                serde_json::json!([{"name": "default", "rawData": raw}]),
            );
        }
        Value::Object(map)
    }
}

/// What happened to a key in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<ChangeKind> {
        match text {
            "created" => Some(ChangeKind::Created),
            "updated" => Some(ChangeKind::Updated),
            "deleted" => Some(ChangeKind::Deleted),
            _ => None,
        }
    }
}

/// One property of an updated object: its value before and after (`None`: absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyChange {
    pub name: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// One entry of a change set.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub change: ChangeKind,
    pub kind: ObjectKind,
    pub key: String,
    #[serde(rename = "type")]
    pub object_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_key: Option<String>,
    /// Updates only: the properties that differ (`_class` included).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<PropertyChange>,
}

/// A run's changes, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeSet {
    pub run: RunRecord,
    pub changes: Vec<Change>,
    /// Changes matching the filter, beyond those returned.
    pub total: u64,
}

/// Which changes of a run to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeFilter {
    pub object_type: Option<String>,
    pub change: Option<ChangeKind>,
    pub limit: Option<u64>,
    pub offset: u64,
}

/// How a run ended, as the store records it with its graph.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub finished_at_ms: i64,
    /// `_type`s the run did not collect completely (J1's `partialDatasets.types`):
    /// never deleted by it.
    pub partial_types: BTreeSet<String>,
    /// The run failed as a whole (bad key, egress denied, a limit): it deletes nothing.
    pub failed_whole: bool,
    pub error: Option<String>,
    pub summary: Option<Value>,
    /// The lease number the run holds (fleet); a persist below the tenant's last is
    /// refused.
    pub fence: Option<i64>,
}

/// How an evaluation changed its rule's alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertTransition {
    Opened,
    StillActive,
    Resolved,
    Inactive,
    /// The evaluation failed (a query or template error): nothing changed.
    Error,
}

impl AlertTransition {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertTransition::Opened => "opened",
            AlertTransition::StillActive => "still_active",
            AlertTransition::Resolved => "resolved",
            AlertTransition::Inactive => "inactive",
            AlertTransition::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<AlertTransition> {
        [
            AlertTransition::Opened,
            AlertTransition::StillActive,
            AlertTransition::Resolved,
            AlertTransition::Inactive,
            AlertTransition::Error,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}

/// An evaluation of a rule, as the host hands it to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvaluation {
    pub tenant: String,
    pub rule: String,
    pub description: Option<String>,
    pub run: Option<RunId>,
    pub evaluated_at_ms: i64,
    pub transition: AlertTransition,
    pub condition_met: bool,
    pub alert_level: Option<String>,
    pub partial: bool,
    pub baseline: bool,
    pub result_ids: Vec<String>,
    pub added: Vec<String>,
    pub removed: Option<Vec<String>>,
    pub totals: Value,
    pub error: Option<String>,
    /// Planned webhook deliveries (updated by `record_deliveries`).
    pub deliveries: Value,
    /// What the next evaluation of the rule compares with.
    pub state: Value,
}

/// A stored evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationRecord {
    pub id: i64,
    pub tenant: String,
    pub rule: String,
    pub run: Option<RunId>,
    pub evaluated_at_ms: i64,
    pub transition: AlertTransition,
    pub condition_met: bool,
    pub alert_level: Option<String>,
    pub partial: bool,
    pub baseline: bool,
    pub results: u64,
    pub totals: Value,
    pub added: Vec<String>,
    pub removed: Option<Vec<String>>,
    pub error: Option<String>,
    pub deliveries: Value,
    pub alert_id: Option<i64>,
}

/// Open or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Active,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Active => "active",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// An alert: opened when its rule's condition started to hold, resolved when it stopped.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRecord {
    pub id: i64,
    pub tenant: String,
    pub rule: String,
    pub description: Option<String>,
    pub level: Option<String>,
    pub status: AlertStatus,
    pub opened_at_ms: i64,
    pub opened_run: Option<RunId>,
    pub resolved_at_ms: Option<i64>,
    pub resolved_run: Option<RunId>,
    pub last_evaluated_at_ms: i64,
    /// Results of the latest evaluation.
    pub results: u64,
    /// The first result ids of the latest evaluation.
    pub result_ids: Vec<String>,
}

/// Result ids kept on an alert.
pub const ALERT_RESULT_IDS: usize = 100;

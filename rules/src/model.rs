//! The checked rule model: what a rules file turns into once it has loaded.
//!
//! The file shape is J1's alert rule (`name`, `question.queries`, `operations[].when` and
//! `actions`, ...); see [`crate::load`] for the accepted fields. Everything here has passed
//! the load-time checks: templates parse and name known variables, queries passed the query
//! engine's check, actions are of a supported type.

use serde::{Deserialize, Serialize};

use crate::template::{Expr, TextTemplate};

/// J1's alert levels, set with `SET_PROPERTY {targetProperty: "alertLevel"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertLevel {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl AlertLevel {
    pub const ALL: [AlertLevel; 5] = [
        AlertLevel::Info,
        AlertLevel::Low,
        AlertLevel::Medium,
        AlertLevel::High,
        AlertLevel::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertLevel::Info => "INFO",
            AlertLevel::Low => "LOW",
            AlertLevel::Medium => "MEDIUM",
            AlertLevel::High => "HIGH",
            AlertLevel::Critical => "CRITICAL",
        }
    }

    pub fn parse(text: &str) -> Option<AlertLevel> {
        AlertLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == text)
    }
}

impl std::fmt::Display for AlertLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// J1's rule polling intervals (`SchedulerPollingInterval`). Rules here are evaluated after
/// every persisted run; the interval is kept so a scheduler can honour it and so files
/// written for J1 load unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PollingInterval {
    Disabled,
    FifteenMinutes,
    ThirtyMinutes,
    OneHour,
    FourHours,
    EightHours,
    TwelveHours,
    #[default]
    OneDay,
    OneWeek,
}

/// A `labels` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Label {
    pub label_name: String,
    pub label_value: String,
}

/// One query of a rule's question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleQuery {
    /// `query0`, `query1`, ... by position unless the file names it.
    pub name: String,
    pub query: String,
    /// Also match tombstones (J1's `includeDeleted`).
    pub include_deleted: bool,
}

/// A `when` condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `"{{ expr }}"`, true when the value is truthy; or one comparison of the JSON form.
    Expr(Expr),
    /// `["AND", c1, c2, ...]`
    All(Vec<Condition>),
    /// `["OR", c1, c2, ...]`
    Any(Vec<Condition>),
}

impl Condition {
    fn reads_data(&self, query: &str) -> bool {
        match self {
            Condition::Expr(expr) => expr.reads_data(query),
            Condition::All(terms) | Condition::Any(terms) => {
                terms.iter().any(|t| t.reads_data(query))
            }
        }
    }
}

/// HTTP methods J1 allows for `WEBHOOK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WebhookMethod {
    #[default]
    Post,
    Put,
    Get,
    Head,
    Patch,
    Delete,
}

impl WebhookMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookMethod::Post => "POST",
            WebhookMethod::Put => "PUT",
            WebhookMethod::Get => "GET",
            WebhookMethod::Head => "HEAD",
            WebhookMethod::Patch => "PATCH",
            WebhookMethod::Delete => "DELETE",
        }
    }
}

/// A webhook body: JSON whose strings may hold templates.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyTemplate {
    /// A string (rendered as text, or as the value of a lone `{{ }}`).
    Text(TextTemplate),
    /// Numbers, booleans, null: sent as written.
    Literal(serde_json::Value),
    Array(Vec<BodyTemplate>),
    /// Keys are literal; values are templates.
    Object(Vec<(String, BodyTemplate)>),
}

impl BodyTemplate {
    fn reads_data(&self, query: &str) -> bool {
        match self {
            BodyTemplate::Text(text) => text.reads_data(query),
            BodyTemplate::Literal(_) => false,
            BodyTemplate::Array(items) => items.iter().any(|i| i.reads_data(query)),
            BodyTemplate::Object(entries) => entries.iter().any(|(_, v)| v.reads_data(query)),
        }
    }
}

/// A `WEBHOOK` action.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookAction {
    /// Literal URL (http or https), checked at load time; the host's egress policy decides
    /// whether it may be called.
    pub endpoint: String,
    pub method: WebhookMethod,
    /// Header name -> template of its value.
    pub headers: Vec<(String, TextTemplate)>,
    pub body: Option<BodyTemplate>,
}

/// A supported action.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `SET_PROPERTY {targetProperty: "alertLevel", targetValue}`.
    SetAlertLevel(AlertLevel),
    /// `CREATE_ALERT`: the rule keeps an alert open while this operation's `when` holds.
    CreateAlert,
    Webhook(WebhookAction),
}

/// One `operations[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// None: always (J1 runs an operation without `when` on every evaluation).
    pub when: Option<Condition>,
    pub actions: Vec<Action>,
}

/// A loaded, checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub description: String,
    pub polling_interval: PollingInterval,
    pub queries: Vec<RuleQuery>,
    pub operations: Vec<Operation>,
    /// `outputs` (e.g. `queries.query0.total`, `alertLevel`), evaluated after the actions.
    pub outputs: Vec<(String, Expr)>,
    pub trigger_actions_on_new_entities_only: bool,
    pub labels: Vec<Label>,
    pub remediation_steps: Option<String>,
}

impl Rule {
    /// The query names, in order.
    pub fn query_names(&self) -> Vec<&str> {
        self.queries.iter().map(|q| q.name.as_str()).collect()
    }

    /// Whether a template of the rule (condition, webhook, output) reads
    /// `queries.<query>.data`; when none does, the rows need not be built.
    pub fn reads_data(&self, query: &str) -> bool {
        let action_reads = |action: &Action| match action {
            Action::Webhook(webhook) => {
                webhook.headers.iter().any(|(_, t)| t.reads_data(query))
                    || webhook.body.as_ref().is_some_and(|b| b.reads_data(query))
            }
            Action::SetAlertLevel(_) | Action::CreateAlert => false,
        };
        self.operations.iter().any(|op| {
            op.when.as_ref().is_some_and(|c| c.reads_data(query))
                || op.actions.iter().any(action_reads)
        }) || self.outputs.iter().any(|(_, expr)| expr.reads_data(query))
    }

    /// Whether some operation creates an alert (a rule with only webhooks keeps no alert).
    pub fn creates_alerts(&self) -> bool {
        self.operations
            .iter()
            .any(|op| op.actions.contains(&Action::CreateAlert))
    }
}

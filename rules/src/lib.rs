//! Alert rules in J1's shape: loading and checking a rules file ([`load`]), the `{{ }}`
//! templates ([`template`]), evaluating a rule after a run with its alert lifecycle
//! ([`evaluate`]), and delivering webhooks with retries ([`webhook`]).
//!
//! No wasmtime and no store here: the query engine comes in through [`QueryRunner`]
//! ([`J1qlRunner`] runs the `j1ql` engine over a tenant graph), the
//! previous evaluation and the run's facts as values, and the HTTP client through
//! [`WebhookTransport`], so all of it is plain Rust, tested on its own.

pub mod evaluate;
mod j1ql_runner;
pub mod load;
pub mod model;
pub mod query;
pub mod template;
pub mod webhook;

pub use evaluate::{
    AlertTransition, Evaluation, EvaluationContext, PlannedAction, PreviousEvaluation, evaluate,
};
pub use j1ql_runner::{J1qlChecker, J1qlRunner};
pub use load::{Format, LoadError, LoadErrorKind, RuleRef, load_rules_file, parse_rules};
pub use model::{AlertLevel, PollingInterval, Rule};
pub use query::{QueryCheckError, QueryChecker, QueryOutput, QueryRunner};
pub use webhook::{
    DeliveryOutcome, DeliveryRecord, RetryPolicy, TransportError, WebhookRequest, WebhookResponse,
    WebhookTransport, deliver,
};

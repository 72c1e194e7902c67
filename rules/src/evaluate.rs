//! Evaluating a rule after a run: its queries, its conditions, the alert lifecycle, and the
//! webhooks to send. Pure: the query engine comes in as a [`QueryRunner`], the previous
//! evaluation and the run's facts as arguments, and nothing is sent here (see
//! [`crate::webhook::deliver`]).
//!
//! Lifecycle, as J1's ACTIVE/INACTIVE: an alert opens when a `CREATE_ALERT` operation's
//! `when` starts to hold, stays one alert while it holds, and resolves when it stops. A rule
//! without `CREATE_ALERT` keeps no alert; its webhooks still fire.
//!
//! Our decisions where J1 says nothing:
//! - **Added/removed.** Each evaluation lists the result ids (entity `_key`s) that appeared
//!   and left since the previous evaluation of the rule.
//! - **Partial.** When a query touched a type that was partial in the run (or a partial type
//!   is missing from the graph altogether, so nobody can tell who would read it), the
//!   evaluation is partial: a missing id may only be missing from the failed step, so it reports no
//!   `removed`, it never resolves an alert (an open alert stays open), and the ids the next
//!   evaluation compares with keep the previous ones (so an id hidden by the partial run is
//!   not "new" when it comes back).
//! - **Baseline.** On a tenant's first run, and on a rule's first evaluation (nothing to
//!   compare with), a `triggerActionsOnNewEntitiesOnly` rule stays quiet: it records its
//!   result ids but neither opens an alert nor fires actions, so only what appears later
//!   counts as new. Other rules open alerts and fire on the baseline as J1 does.
//! - **New only.** A `triggerActionsOnNewEntitiesOnly` rule fires its webhooks only when ids
//!   absent from the previous evaluation appear; removals alone fire nothing. Its alert
//!   follows its condition like any rule's.
//! - **Errors.** A query or template error makes the evaluation an error: no actions, the
//!   alert state and the compared ids stay as they were.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::model::{Action, AlertLevel, BodyTemplate, Condition, Rule};
use crate::query::{QueryOutput, QueryRunner};
use crate::template::{EvalError, Scope, truthy};
use crate::webhook::WebhookRequest;

/// What the store keeps of a rule's last evaluation, for the next one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct PreviousEvaluation {
    pub alert_active: bool,
    pub result_ids: BTreeSet<String>,
}

/// The run a rule is evaluated after.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EvaluationContext {
    /// The tenant's first run.
    pub baseline: bool,
    /// `_type`s that were partial in the run (failed steps and their dependents).
    pub partial_types: BTreeSet<String>,
    /// The evaluation time, epoch milliseconds.
    pub now_ms: i64,
}

/// How the rule's alert changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AlertTransition {
    /// Not active before, active now.
    Opened,
    /// Active before and now: the same alert.
    StillActive,
    /// Active before, not now.
    Resolved,
    /// Neither.
    Inactive,
}

impl AlertTransition {
    fn between(before: bool, now: bool) -> AlertTransition {
        match (before, now) {
            (false, true) => AlertTransition::Opened,
            (true, true) => AlertTransition::StillActive,
            (true, false) => AlertTransition::Resolved,
            (false, false) => AlertTransition::Inactive,
        }
    }

    /// Whether the alert is active after this evaluation.
    pub fn is_active(self) -> bool {
        matches!(self, AlertTransition::Opened | AlertTransition::StillActive)
    }
}

/// An action to carry out after the evaluation, already rendered.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PlannedAction {
    Webhook(WebhookRequest),
}

/// The outcome of one evaluation of one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    pub rule_name: String,
    pub evaluated_at_ms: i64,
    /// Some operation's `when` held.
    pub condition_met: bool,
    pub transition: AlertTransition,
    /// The level set by `SET_PROPERTY` in the operations that ran.
    pub alert_level: Option<AlertLevel>,
    /// This evaluation's result ids (all queries together).
    pub result_ids: BTreeSet<String>,
    /// Ids not in the previous evaluation (all of them on a rule's first evaluation).
    pub added: Vec<String>,
    /// Ids of the previous evaluation that left; None when the evaluation is partial.
    pub removed: Option<Vec<String>>,
    pub partial: bool,
    /// No previous evaluation to compare with (the tenant's or the rule's first).
    pub baseline: bool,
    /// Query name -> total.
    pub totals: BTreeMap<String, usize>,
    /// `outputs` entry -> value.
    pub outputs: BTreeMap<String, Value>,
    /// Webhooks to deliver (CREATE_ALERT and SET_PROPERTY are applied in the fields above).
    pub actions: Vec<PlannedAction>,
    /// A query or template failed; nothing else in the evaluation is meaningful then.
    pub error: Option<String>,
    /// What the next evaluation compares with ([`Evaluation::next_previous`]).
    #[serde(skip)]
    carried: PreviousEvaluation,
}

impl Evaluation {
    /// The state to store for the next evaluation of this rule.
    pub fn next_previous(&self) -> PreviousEvaluation {
        self.carried.clone()
    }
}

/// Evaluates `rule` on the graph behind `runner`.
pub fn evaluate(
    rule: &Rule,
    runner: &dyn QueryRunner,
    previous: Option<&PreviousEvaluation>,
    ctx: &EvaluationContext,
) -> Evaluation {
    let was_active = previous.is_some_and(|p| p.alert_active);
    let baseline = ctx.baseline || previous.is_none();
    let mut evaluation = Evaluation {
        rule_name: rule.name.clone(),
        evaluated_at_ms: ctx.now_ms,
        condition_met: false,
        transition: AlertTransition::between(was_active, was_active),
        alert_level: None,
        result_ids: BTreeSet::new(),
        added: Vec::new(),
        removed: None,
        partial: false,
        baseline,
        totals: BTreeMap::new(),
        outputs: BTreeMap::new(),
        actions: Vec::new(),
        error: None,
        carried: previous.cloned().unwrap_or_default(),
    };

    // Queries.
    let mut outputs: Vec<QueryOutput> = Vec::with_capacity(rule.queries.len());
    for query in &rule.queries {
        let result = if rule.reads_data(&query.name) {
            runner.run(&query.query, query.include_deleted)
        } else {
            runner.run_without_data(&query.query, query.include_deleted)
        };
        match result {
            Ok(output) => outputs.push(output),
            Err(message) => {
                evaluation.error = Some(format!("query {}: {message}", query.name));
                return evaluation;
            }
        }
    }
    let mut scope = Scope {
        queries: rule
            .queries
            .iter()
            .zip(&outputs)
            .map(|(q, out)| (q.name.as_str(), (out.total, &out.data)))
            .collect(),
        alert_level: None,
        rule_name: &rule.name,
        rule_description: &rule.description,
    };

    // Operations, in order; actions in order, so a webhook sees the alertLevel set before it.
    let mut condition_met = false;
    let mut wants_alert = false;
    let mut webhooks = Vec::new();
    let outcome: Result<(), String> = (|| {
        for (i, operation) in rule.operations.iter().enumerate() {
            let holds = match &operation.when {
                None => true,
                Some(condition) => check_condition(condition, &scope)
                    .map_err(|e| format!("operations[{i}].when: {e}"))?,
            };
            if !holds {
                continue;
            }
            condition_met = true;
            for (j, action) in operation.actions.iter().enumerate() {
                match action {
                    Action::SetAlertLevel(level) => scope.alert_level = Some(level.as_str()),
                    Action::CreateAlert => wants_alert = true,
                    Action::Webhook(webhook) => webhooks.push(
                        WebhookRequest::render(webhook, &scope)
                            .map_err(|e| format!("operations[{i}].actions[{j}]: {e}"))?,
                    ),
                }
            }
        }
        for (name, expr) in &rule.outputs {
            let value = expr
                .eval(&scope)
                .map_err(|e| format!("outputs {name:?}: {e}"))?;
            evaluation.outputs.insert(name.clone(), value);
        }
        Ok(())
    })();
    if let Err(message) = outcome {
        evaluation.error = Some(message);
        evaluation.outputs.clear();
        return evaluation;
    }

    // Result identity, added/removed, partial.
    let result_ids: BTreeSet<String> = outputs.iter().flat_map(|o| o.ids.iter().cloned()).collect();
    let partial = outputs
        .iter()
        .any(|o| !o.touched_types.is_disjoint(&ctx.partial_types))
        || ctx.partial_types.iter().any(|t| !runner.holds_type(t));
    let empty = BTreeSet::new();
    let before = previous.map_or(&empty, |p| &p.result_ids);
    let added: Vec<String> = result_ids.difference(before).cloned().collect();
    let removed = (!partial).then(|| before.difference(&result_ids).cloned().collect());

    // The alert.
    let quiet = rule.trigger_actions_on_new_entities_only && baseline;
    let active = if partial && was_active {
        true // a partial evaluation never resolves
    } else {
        // Quiet: a new-only rule cannot open on a baseline, but keeps an alert already open.
        wants_alert && (!quiet || was_active)
    };
    let fire = !quiet && (!rule.trigger_actions_on_new_entities_only || !added.is_empty());

    evaluation.carried = PreviousEvaluation {
        alert_active: active,
        result_ids: if partial {
            result_ids.union(before).cloned().collect()
        } else {
            result_ids.clone()
        },
    };
    evaluation.condition_met = condition_met;
    evaluation.transition = AlertTransition::between(was_active, active);
    evaluation.alert_level = scope.alert_level.and_then(AlertLevel::parse);
    evaluation.totals = rule
        .queries
        .iter()
        .zip(&outputs)
        .map(|(q, o)| (q.name.clone(), o.total))
        .collect();
    evaluation.result_ids = result_ids;
    evaluation.added = added;
    evaluation.removed = removed;
    evaluation.partial = partial;
    if fire {
        evaluation.actions = webhooks.into_iter().map(PlannedAction::Webhook).collect();
    }
    evaluation
}

fn check_condition(condition: &Condition, scope: &Scope<'_>) -> Result<bool, EvalError> {
    Ok(match condition {
        Condition::Expr(expr) => truthy(&expr.eval(scope)?),
        Condition::All(terms) => {
            for term in terms {
                if !check_condition(term, scope)? {
                    return Ok(false);
                }
            }
            true
        }
        Condition::Any(terms) => {
            for term in terms {
                if check_condition(term, scope)? {
                    return Ok(true);
                }
            }
            false
        }
    })
}

/// Renders a webhook body: strings through their templates, the rest as written.
pub(crate) fn render_body(body: &BodyTemplate, scope: &Scope<'_>) -> Result<Value, EvalError> {
    Ok(match body {
        BodyTemplate::Text(template) => template.render_value(scope)?,
        BodyTemplate::Literal(value) => value.clone(),
        BodyTemplate::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render_body(item, scope))
                .collect::<Result<_, _>>()?,
        ),
        BodyTemplate::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, value)| Ok((key.clone(), render_body(value, scope)?)))
                .collect::<Result<_, EvalError>>()?,
        ),
    })
}

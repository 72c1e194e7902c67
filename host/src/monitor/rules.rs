//! Alert rules after a persisted run: the tenant's graph loaded from the store for the
//! J1QL engine, every rule evaluated (crate `alert-rules`), each evaluation and its
//! alert's lifecycle stored, webhooks delivered and their outcome recorded.

use std::collections::BTreeSet;
use std::path::Path;

use alert_rules::{
    DeliveryRecord, Evaluation, EvaluationContext, J1qlChecker, J1qlRunner, PlannedAction,
    PreviousEvaluation, RetryPolicy, Rule, WebhookTransport,
};
use graph_store::{
    AlertTransition, EvaluationRecord, NewEvaluation, ObjectKind, RunRecord, Store, StoreError,
};
use serde_json::Value;

use crate::sandbox::text::Untrusted;

/// Loads and checks a rules file: every query parsed, every template's variables
/// known. Errors name the file, the rule and the field, with line and column.
pub fn load(path: &Path) -> Result<Vec<Rule>, alert_rules::LoadError> {
    alert_rules::load_rules_file(path, &J1qlChecker)
}

/// The tenant's current graph (tombstones included: queries may ask for them), as
/// the J1QL engine holds it. Objects are streamed from the store into the builder.
pub async fn load_graph(store: &dyn Store, tenant: &str) -> Result<j1ql::Graph, StoreError> {
    let mut stream = store.stream_objects(tenant, true).await?;
    let mut builder = j1ql::GraphBuilder::new();
    while let Some(batch) = stream.recv().await {
        for stored in batch? {
            let metadata = stored.metadata;
            let object = stored.object;
            let mut properties = object.properties;
            properties.insert("_createdOn".into(), metadata.created_on.into());
            properties.insert("_beginOn".into(), metadata.begin_on.into());
            properties.insert("_version".into(), metadata.version.into());
            properties.insert("_deleted".into(), metadata.deleted.into());
            if let Some(end) = metadata.end_on {
                properties.insert("_endOn".into(), end.into());
            }
            match object.kind {
                ObjectKind::Entity => builder.add_entity(j1ql::Entity {
                    key: object.key,
                    entity_type: object.object_type,
                    classes: object.classes,
                    properties,
                    deleted: metadata.deleted,
                }),
                ObjectKind::Relationship => builder.add_relationship(j1ql::Relationship {
                    key: object.key,
                    relationship_type: object.object_type,
                    class: object.classes.into_iter().next().unwrap_or_default(),
                    from_key: object.from_key.unwrap_or_default(),
                    to_key: object.to_key.unwrap_or_default(),
                    properties,
                    deleted: metadata.deleted,
                }),
            }
        }
    }
    Ok(builder.build())
}

/// Evaluates every rule on the tenant's graph after `run`, stores each evaluation and
/// its alert step, then delivers the webhooks and records how each went. Returns the
/// stored evaluations.
pub async fn evaluate_after_run(
    store: &dyn Store,
    run: &RunRecord,
    rules: &[Rule],
    transport: &impl WebhookTransport,
    retry: &RetryPolicy,
) -> Result<Vec<EvaluationRecord>, StoreError> {
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let graph = load_graph(store, &run.tenant).await?;
    evaluate_on(store, run, rules, &graph, transport, retry).await
}

/// [`evaluate_after_run`] on the graph `graphs` keeps for the run (built once, then
/// also used by the console until the next run).
pub async fn evaluate_after_run_kept(
    store: &dyn Store,
    graphs: &super::graphs::GraphCache,
    run: &RunRecord,
    rules: &[Rule],
    transport: &impl WebhookTransport,
    retry: &RetryPolicy,
) -> Result<Vec<EvaluationRecord>, StoreError> {
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let graph = graphs
        .get_or_build(store, &run.tenant, Some(run.id))
        .await?;
    evaluate_on(store, run, rules, &graph, transport, retry).await
}

async fn evaluate_on(
    store: &dyn Store,
    run: &RunRecord,
    rules: &[Rule],
    graph: &j1ql::Graph,
    transport: &impl WebhookTransport,
    retry: &RetryPolicy,
) -> Result<Vec<EvaluationRecord>, StoreError> {
    let now_ms = graph_store::now_ms();
    let context = EvaluationContext {
        baseline: run.baseline,
        partial_types: run.partial_types.iter().cloned().collect::<BTreeSet<_>>(),
        now_ms,
    };
    let mut planned = Vec::with_capacity(rules.len());
    {
        let runner = J1qlRunner::new(graph, now_ms);
        for rule in rules {
            let previous: Option<PreviousEvaluation> = store
                .rule_state(&run.tenant, &rule.name)
                .await?
                .and_then(|state| serde_json::from_value(state).ok());
            let evaluation = alert_rules::evaluate(rule, &runner, previous.as_ref(), &context);
            planned.push((rule, evaluation));
        }
    }
    let mut records = Vec::with_capacity(planned.len());
    for (rule, evaluation) in planned {
        let record = store
            .record_evaluation(to_new_evaluation(run, rule, &evaluation))
            .await?;
        log_evaluation(&run.tenant, &record);
        if !evaluation.actions.is_empty() {
            let deliveries = alert_rules::deliver(&evaluation.actions, transport, retry).await;
            for delivery in &deliveries {
                log_delivery(&run.tenant, &rule.name, delivery);
            }
            let deliveries = serde_json::to_value(&deliveries).unwrap_or(Value::Null);
            store
                .record_deliveries(record.id, deliveries.clone())
                .await?;
            records.push(EvaluationRecord {
                deliveries,
                ..record
            });
        } else {
            records.push(record);
        }
    }
    Ok(records)
}

/// What the store keeps of an evaluation; webhooks start out pending.
fn to_new_evaluation(run: &RunRecord, rule: &Rule, e: &Evaluation) -> NewEvaluation {
    let transition = match (&e.error, e.transition) {
        (Some(_), _) => AlertTransition::Error,
        (None, alert_rules::AlertTransition::Opened) => AlertTransition::Opened,
        (None, alert_rules::AlertTransition::StillActive) => AlertTransition::StillActive,
        (None, alert_rules::AlertTransition::Resolved) => AlertTransition::Resolved,
        (None, alert_rules::AlertTransition::Inactive) => AlertTransition::Inactive,
    };
    let pending: Vec<Value> = e
        .actions
        .iter()
        .map(|action| match action {
            PlannedAction::Webhook(request) => serde_json::json!({
                "endpoint": request.endpoint,
                "method": request.method,
                "outcome": "pending",
            }),
        })
        .collect();
    NewEvaluation {
        tenant: run.tenant.clone(),
        rule: rule.name.clone(),
        description: Some(rule.description.clone()).filter(|d| !d.is_empty()),
        run: Some(run.id),
        evaluated_at_ms: e.evaluated_at_ms,
        transition,
        condition_met: e.condition_met,
        alert_level: e
            .alert_level
            .and_then(|level| serde_json::to_value(level).ok())
            .and_then(|value| value.as_str().map(str::to_owned)),
        partial: e.partial,
        baseline: e.baseline,
        result_ids: e.result_ids.iter().cloned().collect(),
        added: e.added.clone(),
        removed: e.removed.clone(),
        totals: serde_json::to_value(&e.totals).unwrap_or(Value::Null),
        error: e.error.clone(),
        deliveries: Value::Array(pending),
        state: serde_json::to_value(e.next_previous()).unwrap_or(Value::Null),
    }
}

fn log_evaluation(tenant: &str, record: &EvaluationRecord) {
    match record.transition {
        AlertTransition::Opened => tracing::warn!(
            tenant,
            rule = %record.rule,
            level = record.alert_level.as_deref().unwrap_or("-"),
            results = record.results,
            "alert opened"
        ),
        AlertTransition::Resolved => {
            tracing::info!(tenant, rule = %record.rule, "alert resolved")
        }
        AlertTransition::Error => tracing::error!(
            tenant,
            rule = %record.rule,
            "rule evaluation failed: {}",
            Untrusted(record.error.as_deref().unwrap_or(""))
        ),
        AlertTransition::StillActive | AlertTransition::Inactive => tracing::debug!(
            tenant,
            rule = %record.rule,
            transition = record.transition.as_str(),
            results = record.results,
            "rule evaluated"
        ),
    }
}

fn log_delivery(tenant: &str, rule: &str, delivery: &DeliveryRecord) {
    match &delivery.outcome {
        alert_rules::DeliveryOutcome::Delivered => tracing::info!(
            tenant,
            rule,
            endpoint = %delivery.endpoint,
            status = delivery.status,
            attempts = delivery.attempts,
            "webhook delivered"
        ),
        alert_rules::DeliveryOutcome::Failed { reason } => tracing::error!(
            tenant,
            rule,
            endpoint = %delivery.endpoint,
            status = delivery.status,
            attempts = delivery.attempts,
            "webhook failed: {}",
            Untrusted(reason)
        ),
    }
}

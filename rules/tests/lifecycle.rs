//! Evaluation and the alert lifecycle, with the J1QL engine over small tenant graphs: opens,
//! stays open, resolves; added/removed; partial evaluations; baseline and new-only rules;
//! errors.

mod support;

use std::collections::BTreeSet;

use alert_rules::{
    AlertLevel, AlertTransition, Evaluation, EvaluationContext, Format, J1qlChecker, J1qlRunner,
    PlannedAction, PreviousEvaluation, Rule, evaluate, parse_rules,
};
use j1ql::Graph;
use serde_json::{Value, json};
use support::{Tenant, users_without_mfa};

const QUERY: &str = "FIND jumpcloud_user WITH mfaEnabled != true";

fn rule(new_only: bool) -> Rule {
    let text = json!([{
        "name": "no mfa",
        "description": "Users without MFA",
        "question": {"queries": [{"query": QUERY}]},
        "operations": [{
            "when": {"type": "FILTER", "condition": "{{queries.query0.total > 0}}"},
            "actions": [
                {"type": "SET_PROPERTY", "targetProperty": "alertLevel", "targetValue": "HIGH"},
                {"type": "CREATE_ALERT"},
                {"type": "WEBHOOK", "endpoint": "http://127.0.0.1:9/hook",
                 "body": {"rule": "{{alertRuleName}}", "level": "{{alertLevel}}", "total": "{{queries.query0.total}}",
                          "text": "{{queries.query0.total}} users", "users": "{{queries.query0.data}}"}}
            ]
        }],
        "outputs": ["queries.query0.total", "alertLevel"],
        "triggerActionsOnNewEntitiesOnly": new_only
    }])
    .to_string();
    parse_rules(&text, Format::Json, "test.json", &J1qlChecker)
        .unwrap()
        .remove(0)
}

fn ctx(baseline: bool) -> EvaluationContext {
    EvaluationContext {
        baseline,
        partial_types: BTreeSet::new(),
        now_ms: 1_700_000_000_000,
    }
}

/// Runs evaluations in sequence, carrying the previous state as the store would.
struct Sequence {
    rule: Rule,
    previous: Option<PreviousEvaluation>,
}

impl Sequence {
    fn new(rule: Rule) -> Self {
        Sequence {
            rule,
            previous: None,
        }
    }

    /// Evaluates on a graph where exactly the users `keys` lack MFA.
    fn run(&mut self, keys: &[&str], ctx: &EvaluationContext) -> Evaluation {
        self.run_on(&users_without_mfa(keys), ctx)
    }

    fn run_on(&mut self, graph: &Graph, ctx: &EvaluationContext) -> Evaluation {
        let runner = J1qlRunner::new(graph, ctx.now_ms);
        let evaluation = evaluate(&self.rule, &runner, self.previous.as_ref(), ctx);
        self.previous = Some(evaluation.next_previous());
        evaluation
    }
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn webhook_bodies(evaluation: &Evaluation) -> Vec<Value> {
    evaluation
        .actions
        .iter()
        .map(|PlannedAction::Webhook(request)| {
            serde_json::from_str(request.body.as_deref().unwrap()).unwrap()
        })
        .collect()
}

#[test]
fn alert_opens_stays_open_and_resolves() {
    let mut seq = Sequence::new(rule(false));

    let first = seq.run(&[], &ctx(true));
    assert_eq!(first.transition, AlertTransition::Inactive);
    assert!(!first.condition_met && first.actions.is_empty());
    assert!(first.baseline);

    let opened = seq.run(&["u1", "u2"], &ctx(false));
    assert_eq!(opened.transition, AlertTransition::Opened);
    assert_eq!(opened.alert_level, Some(AlertLevel::High));
    assert_eq!(opened.added, ids(&["u1", "u2"]));
    assert_eq!(opened.removed, Some(vec![]));
    assert_eq!(opened.totals["query0"], 2);
    assert_eq!(opened.outputs["alertLevel"], json!("HIGH"));
    assert_eq!(opened.outputs["queries.query0.total"], json!(2));

    let still = seq.run(&["u2", "u3"], &ctx(false));
    assert_eq!(still.transition, AlertTransition::StillActive);
    assert_eq!(still.added, ids(&["u3"]));
    assert_eq!(still.removed, Some(ids(&["u1"])));
    assert_eq!(still.result_ids, ids(&["u2", "u3"]).into_iter().collect());

    let resolved = seq.run(&[], &ctx(false));
    assert_eq!(resolved.transition, AlertTransition::Resolved);
    assert!(!resolved.condition_met);
    assert_eq!(resolved.removed, Some(ids(&["u2", "u3"])));
    assert!(resolved.actions.is_empty());

    let quiet = seq.run(&[], &ctx(false));
    assert_eq!(quiet.transition, AlertTransition::Inactive);
}

#[test]
fn webhooks_are_rendered_with_the_level_and_the_data() {
    let mut seq = Sequence::new(rule(false));
    let evaluation = seq.run(&["u1", "u2"], &ctx(true));
    let PlannedAction::Webhook(request) = &evaluation.actions[0];
    assert_eq!(request.endpoint, "http://127.0.0.1:9/hook");
    assert_eq!(request.method.as_str(), "POST");
    assert!(
        request
            .headers
            .contains(&("content-type".to_owned(), "application/json".to_owned()))
    );
    let body = &webhook_bodies(&evaluation)[0];
    assert_eq!(body["rule"], json!("no mfa"));
    assert_eq!(
        body["level"],
        json!("HIGH"),
        "SET_PROPERTY ran before the webhook"
    );
    assert_eq!(
        body["total"],
        json!(2),
        "a whole-string template keeps the number"
    );
    assert_eq!(body["text"], json!("2 users"));
    assert_eq!(
        body["users"].as_array().map(Vec::len),
        Some(2),
        "the data array, not its text"
    );
    assert_eq!(body["users"][0]["entity"]["_key"], json!("u1"));
}

#[test]
fn rules_without_new_only_fire_on_every_evaluation_where_the_condition_holds() {
    let mut seq = Sequence::new(rule(false));
    assert_eq!(
        seq.run(&["u1"], &ctx(true)).actions.len(),
        1,
        "the baseline fires too (J1's default)"
    );
    assert_eq!(
        seq.run(&["u1"], &ctx(false)).actions.len(),
        1,
        "nothing new, still fires"
    );
    assert_eq!(
        seq.run(&[], &ctx(false)).actions.len(),
        0,
        "condition false"
    );
}

#[test]
fn new_only_rule_is_quiet_on_the_baseline_and_fires_on_new_ids_only() {
    let mut seq = Sequence::new(rule(true));

    let baseline = seq.run(&["u1", "u2"], &ctx(true));
    assert!(baseline.condition_met);
    assert!(baseline.actions.is_empty(), "quiet on the baseline");
    assert_eq!(
        baseline.transition,
        AlertTransition::Inactive,
        "does not open on the baseline"
    );
    assert_eq!(baseline.added, ids(&["u1", "u2"]));

    let same = seq.run(&["u1", "u2"], &ctx(false));
    assert!(same.actions.is_empty(), "nothing new");
    assert_eq!(
        same.transition,
        AlertTransition::Opened,
        "the condition holds after the baseline"
    );
    assert!(same.added.is_empty());

    let new_user = seq.run(&["u1", "u2", "u3"], &ctx(false));
    assert_eq!(new_user.added, ids(&["u3"]));
    assert_eq!(new_user.actions.len(), 1, "a new id appeared");
    assert_eq!(new_user.transition, AlertTransition::StillActive);

    let removal = seq.run(&["u1", "u3"], &ctx(false));
    assert_eq!(removal.removed, Some(ids(&["u2"])));
    assert!(removal.actions.is_empty(), "removals alone fire nothing");

    let back = seq.run(&["u1", "u2", "u3"], &ctx(false));
    assert_eq!(
        back.added,
        ids(&["u2"]),
        "absent from the previous evaluation: new again"
    );
    assert_eq!(back.actions.len(), 1);
}

#[test]
fn new_only_rule_opens_when_a_new_id_appears_after_a_quiet_baseline() {
    // The demo: baseline with no user matching, then a user without MFA is added.
    let mut seq = Sequence::new(rule(true));
    let baseline = seq.run(&[], &ctx(true));
    assert_eq!(baseline.transition, AlertTransition::Inactive);
    let second = seq.run(&["new-user"], &ctx(false));
    assert_eq!(second.transition, AlertTransition::Opened);
    assert_eq!(second.added, ids(&["new-user"]));
    assert_eq!(second.actions.len(), 1);
}

#[test]
fn a_rules_first_evaluation_counts_as_its_baseline() {
    // A rule added to a tenant that already has runs: nothing to compare with.
    let mut seq = Sequence::new(rule(true));
    let first = seq.run(&["u1"], &ctx(false));
    assert!(first.baseline);
    assert!(first.actions.is_empty());
    assert_eq!(first.transition, AlertTransition::Inactive);
}

#[test]
fn partial_evaluation_reports_no_removed_and_never_resolves() {
    let mut seq = Sequence::new(rule(true));
    seq.run(&["u1", "u2"], &ctx(true));
    assert_eq!(
        seq.run(&["u1", "u2"], &ctx(false)).transition,
        AlertTransition::Opened
    );

    let mut partial = ctx(false);
    partial.partial_types.insert("jumpcloud_user".to_owned());
    let evaluation = seq.run(&[], &partial);
    assert!(evaluation.partial);
    assert_eq!(evaluation.removed, None, "no removed on partial data");
    assert!(!evaluation.condition_met);
    assert_eq!(
        evaluation.transition,
        AlertTransition::StillActive,
        "a partial evaluation never resolves"
    );
    assert!(seq.previous.as_ref().unwrap().alert_active);

    // Back to complete data: the ids hidden by the partial run are not new.
    let evaluation = seq.run(&["u1", "u2", "u3"], &ctx(false));
    assert!(!evaluation.partial);
    assert_eq!(evaluation.added, ids(&["u3"]));
    assert_eq!(evaluation.actions.len(), 1);

    // A complete evaluation resolves as usual.
    let evaluation = seq.run(&[], &ctx(false));
    assert_eq!(evaluation.transition, AlertTransition::Resolved);
    assert_eq!(evaluation.removed, Some(ids(&["u1", "u2", "u3"])));
}

#[test]
fn partial_types_the_queries_did_not_touch_leave_the_evaluation_complete() {
    let mut seq = Sequence::new(rule(false));
    let mut other = ctx(false);
    other
        .partial_types
        .insert("jumpcloud_application".to_owned());
    let mut tenant = Tenant::default();
    tenant.user("u1", 0, json!({"mfaEnabled": false}));
    tenant.entity("a1", "jumpcloud_application", "Application", json!({}));
    let evaluation = seq.run_on(&tenant.build(), &other);
    assert!(!evaluation.partial);
    assert_eq!(evaluation.removed, Some(vec![]));

    // A partial type the graph does not hold at all cannot be traced: partial.
    let evaluation = seq.run(&["u1"], &other);
    assert!(evaluation.partial);
    assert_eq!(evaluation.removed, None);
}

#[test]
fn partial_evaluation_may_open_an_alert() {
    let mut seq = Sequence::new(rule(false));
    seq.run(&[], &ctx(true));
    let mut partial = ctx(false);
    partial.partial_types.insert("jumpcloud_user".to_owned());
    let evaluation = seq.run(&["u1"], &partial);
    assert_eq!(
        evaluation.transition,
        AlertTransition::Opened,
        "what is there shows the condition"
    );
    assert_eq!(evaluation.added, ids(&["u1"]));
}

#[test]
fn query_error_is_recorded_and_leaves_the_alert_as_it_was() {
    let mut seq = Sequence::new(rule(false));
    seq.run(&["u1"], &ctx(true));
    let before = seq.previous.clone().unwrap();
    assert!(before.alert_active);

    // The engine refuses the query at run time (here: a query the load check never saw).
    let good = seq.rule.queries[0].query.clone();
    seq.rule.queries[0].query = "FIND jumpcloud_user WITH".to_owned();
    let evaluation = seq.run(&[], &ctx(false));
    let error = evaluation.error.clone().expect("an error");
    assert!(error.starts_with("query query0: 1:"), "{error}");
    assert_eq!(evaluation.transition, AlertTransition::StillActive);
    assert!(evaluation.actions.is_empty());
    assert_eq!(evaluation.removed, None);
    assert_eq!(evaluation.next_previous(), before, "state unchanged");

    seq.rule.queries[0].query = good;
    let evaluation = seq.run(&[], &ctx(false));
    assert_eq!(evaluation.transition, AlertTransition::Resolved);
    assert_eq!(
        evaluation.removed,
        Some(ids(&["u1"])),
        "compared with the last good evaluation"
    );
}

#[test]
fn template_error_at_evaluation_is_an_error() {
    let text = json!([{
        "name": "bad math",
        "question": {"queries": [{"query": QUERY}]},
        "operations": [{"when": "{{queries.query0.total / 0 > 1}}", "actions": [{"type": "CREATE_ALERT"}]}]
    }])
    .to_string();
    let rule = parse_rules(&text, Format::Json, "t.json", &J1qlChecker)
        .unwrap()
        .remove(0);
    let mut seq = Sequence::new(rule);
    let evaluation = seq.run(&["u1"], &ctx(false));
    let error = evaluation.error.expect("division by zero");
    assert!(
        error.contains("operations[0].when") && error.contains("/ by zero"),
        "{error}"
    );
    assert_eq!(evaluation.transition, AlertTransition::Inactive);
}

#[test]
fn json_when_form_and_several_queries() {
    let text = json!([{
        "name": "two queries",
        "question": {"queries": [{"query": QUERY}, {"name": "apps", "query": "FIND jumpcloud_application"}]},
        "operations": [
            {"when": ["AND", ["queries.query0.total", ">", 0], ["queries.apps.total", "=", 0]],
             "actions": [{"type": "SET_PROPERTY", "targetProperty": "alertLevel", "targetValue": "LOW"}, {"type": "CREATE_ALERT"}]},
            {"when": ["OR", ["queries.apps.total", ">=", 1]],
             "actions": [{"type": "WEBHOOK", "endpoint": "http://127.0.0.1:9/apps", "body": "{{queries.apps.total}} apps"}]}
        ]
    }])
    .to_string();
    let rule = parse_rules(&text, Format::Json, "t.json", &J1qlChecker)
        .unwrap()
        .remove(0);
    let mut seq = Sequence::new(rule);

    let mut tenant = Tenant::default();
    tenant.user("u1", 0, json!({"mfaEnabled": false}));
    let evaluation = seq.run_on(&tenant.build(), &ctx(false));
    assert_eq!(evaluation.transition, AlertTransition::Opened);
    assert_eq!(evaluation.alert_level, Some(AlertLevel::Low));
    assert!(
        evaluation.actions.is_empty(),
        "the second operation's when is false"
    );

    tenant.entity("a1", "jumpcloud_application", "Application", json!({}));
    let evaluation = seq.run_on(&tenant.build(), &ctx(false));
    assert_eq!(
        evaluation.transition,
        AlertTransition::Resolved,
        "apps.total = 0 no longer holds"
    );
    assert!(
        evaluation.condition_met,
        "the webhook operation's when holds"
    );
    assert_eq!(
        evaluation.result_ids,
        ["a1", "u1"].map(String::from).into_iter().collect()
    );
    let PlannedAction::Webhook(request) = &evaluation.actions[0];
    assert_eq!(request.body.as_deref(), Some("1 apps"));
    assert!(request.headers.contains(&(
        "content-type".to_owned(),
        "text/plain; charset=utf-8".to_owned()
    )));
    assert_eq!(evaluation.totals.get("apps"), Some(&1));
}

#[test]
fn webhook_only_rule_keeps_no_alert() {
    let text = json!([{
        "name": "notify",
        "question": {"queries": [{"query": QUERY}]},
        "operations": [{"when": "{{queries.query0.total > 0}}",
                        "actions": [{"type": "WEBHOOK", "endpoint": "http://127.0.0.1:9/n"}]}]
    }])
    .to_string();
    let rule = parse_rules(&text, Format::Json, "t.json", &J1qlChecker)
        .unwrap()
        .remove(0);
    assert!(!rule.creates_alerts());
    let mut seq = Sequence::new(rule);
    let evaluation = seq.run(&["u1"], &ctx(false));
    assert_eq!(evaluation.transition, AlertTransition::Inactive);
    assert_eq!(evaluation.actions.len(), 1);
    let PlannedAction::Webhook(request) = &evaluation.actions[0];
    assert_eq!(request.body, None);
}

#[test]
fn rows_are_built_for_the_templates_that_read_them() {
    let text = json!([{
        "name": "reads rows",
        "question": {"queries": [{"query": QUERY}, {"name": "apps", "query": "FIND jumpcloud_application"}]},
        "operations": [{"when": "{{queries.query0.data.length > 1}}", "actions": [{"type": "CREATE_ALERT"}]}],
        "outputs": ["queries.query0.data[0].entity._key", "queries.apps.total"]
    }])
    .to_string();
    let rule = parse_rules(&text, Format::Json, "t.json", &J1qlChecker)
        .unwrap()
        .remove(0);
    assert!(rule.reads_data("query0"));
    assert!(!rule.reads_data("apps"));
    assert!(!self::rule(false).reads_data("apps"));
    let mut seq = Sequence::new(rule);
    let evaluation = seq.run(&["u1", "u2"], &ctx(false));
    assert!(evaluation.condition_met, "data.length read from the rows");
    assert_eq!(evaluation.transition, AlertTransition::Opened);
    assert_eq!(
        evaluation.outputs["queries.query0.data[0].entity._key"],
        json!("u1")
    );
    assert_eq!(
        seq.run(&["u1"], &ctx(false)).transition,
        AlertTransition::Resolved
    );
}

//! The shipped JumpCloud rules file: every query passes the J1QL engine's check, and every
//! rule finds exactly the entities its intent names on a small hand-built tenant, run by the
//! real engine. Also the demo: a second run that adds a user without MFA opens the
//! new-user alert.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use alert_rules::model::Action;
use alert_rules::{
    AlertLevel, AlertTransition, Evaluation, EvaluationContext, J1qlChecker, J1qlRunner,
    PreviousEvaluation, Rule, evaluate, load_rules_file,
};
use serde_json::json;
use support::Tenant;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// The baseline run's time: every entity is first seen then.
const T0: i64 = 1_750_000_000_000;

fn shipped() -> Vec<Rule> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("jumpcloud-rules.json");
    load_rules_file(&path, &J1qlChecker).unwrap_or_else(|e| panic!("{e}"))
}

fn level(rule: &Rule) -> Option<AlertLevel> {
    rule.operations
        .iter()
        .flat_map(|op| &op.actions)
        .find_map(|action| match action {
            Action::SetAlertLevel(level) => Some(*level),
            _ => None,
        })
}

/// A JumpCloud tenant with one case for each question:
/// - alice: active, MFA, in eng, assigned slack, a Person;
/// - bob: active, no MFA (false), in eng, a Person;
/// - carol: active, MFA missing but excluded, a Person;
/// - dave: suspended (so not active), MFA, in ops, assigned jira (and ops is too), a Person;
/// - svc: active service account with MFA and no email: no Person;
/// - erin: staged (not active, not suspended), no MFA, no group, no email: no Person;
/// - groups eng, ops, and empty (no members); applications slack, jira, unused.
fn tenant() -> Tenant {
    tenant_with_members(true)
}

/// The tenant; without group members when the membership step failed.
fn tenant_with_members(members: bool) -> Tenant {
    let mut t = Tenant::default();
    t.entity("acct", "jumpcloud_account", "Account", json!({}));
    t.user("alice", T0, json!({"active": true, "suspended": false, "mfaEnabled": true, "mfaExclusion": false, "email": "alice@example.com"}));
    t.user("bob", T0, json!({"active": true, "suspended": false, "mfaEnabled": false, "mfaExclusion": false, "email": "bob@example.com"}));
    t.user("carol", T0, json!({"active": true, "suspended": false, "mfaExclusion": true, "email": "carol@example.com"}));
    t.user("dave", T0, json!({"active": false, "suspended": true, "mfaEnabled": true, "mfaExclusion": false, "email": "dave@example.com"}));
    t.user("svc", T0, json!({"active": true, "suspended": false, "mfaEnabled": true, "mfaExclusion": false, "employeeType": "service"}));
    t.user("erin", T0, json!({"active": false, "suspended": false, "mfaEnabled": false, "mfaExclusion": false, "state": "staged"}));
    for person in ["alice", "bob", "carol", "dave"] {
        t.entity(
            &format!("employee:{person}@example.com"),
            "employee",
            "Person",
            json!({"email": format!("{person}@example.com")}),
        );
        t.edge(person, "IS", &format!("employee:{person}@example.com"));
    }
    for group in ["eng", "ops", "empty"] {
        t.entity(group, "jumpcloud_group", "Group", json!({}));
        t.edge("acct", "HAS", group);
    }
    for app in ["slack", "jira", "unused"] {
        t.entity(app, "jumpcloud_application", "Application", json!({}));
        t.edge("acct", "HAS", app);
    }
    for user in ["alice", "bob", "carol", "dave", "svc", "erin"] {
        t.edge("acct", "HAS", user);
    }
    if members {
        t.edge("eng", "HAS", "alice")
            .edge("eng", "HAS", "bob")
            .edge("ops", "HAS", "dave");
    }
    t.edge("alice", "ASSIGNED", "slack")
        .edge("dave", "ASSIGNED", "jira")
        .edge("ops", "ASSIGNED", "jira");
    t
}

fn ctx(baseline: bool, now_ms: i64) -> EvaluationContext {
    EvaluationContext {
        baseline,
        partial_types: BTreeSet::new(),
        now_ms,
    }
}

/// Evaluates every rule; returns the evaluations by rule name.
fn evaluate_all(
    rules: &[Rule],
    tenant: &Tenant,
    previous: &BTreeMap<String, PreviousEvaluation>,
    ctx: &EvaluationContext,
) -> BTreeMap<String, Evaluation> {
    let graph = tenant.build();
    let runner = J1qlRunner::new(&graph, ctx.now_ms);
    rules
        .iter()
        .map(|rule| {
            let evaluation = evaluate(rule, &runner, previous.get(&rule.name), ctx);
            assert_eq!(evaluation.error, None, "{}", rule.name);
            (rule.name.clone(), evaluation)
        })
        .collect()
}

fn next(evaluations: &BTreeMap<String, Evaluation>) -> BTreeMap<String, PreviousEvaluation> {
    evaluations
        .iter()
        .map(|(name, e)| (name.clone(), e.next_previous()))
        .collect()
}

fn ids(evaluation: &Evaluation) -> Vec<&str> {
    evaluation.result_ids.iter().map(String::as_str).collect()
}

#[test]
fn shipped_rules_load_with_the_real_engine() {
    let rules = shipped();
    let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "jumpcloud-users-without-mfa",
            "jumpcloud-new-user-without-mfa",
            "jumpcloud-inactive-users-in-groups",
            "jumpcloud-suspended-users-with-applications",
            "jumpcloud-users-not-mapped-to-a-person",
            "jumpcloud-empty-groups",
            "jumpcloud-applications-assigned-to-nobody",
        ]
    );
    for rule in &rules {
        assert!(rule.creates_alerts(), "{} opens alerts", rule.name);
        assert!(level(rule).is_some(), "{} sets a level", rule.name);
        assert!(
            rule.description.len() > 80,
            "{} explains its intent",
            rule.name
        );
        assert!(
            !rule.queries[0].query.contains("UserGroup"),
            "our groups are class Group"
        );
    }
    let new_only: Vec<&str> = rules
        .iter()
        .filter(|r| r.trigger_actions_on_new_entities_only)
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(new_only, ["jumpcloud-new-user-without-mfa"]);
}

#[test]
fn each_shipped_rule_finds_what_its_intent_names() {
    let rules = shipped();
    let evaluations = evaluate_all(&rules, &tenant(), &BTreeMap::new(), &ctx(true, T0));
    let expect = |name: &str, expected: &[&str], transition: AlertTransition| {
        let evaluation = &evaluations[name];
        assert_eq!(ids(evaluation), expected, "{name}");
        assert_eq!(evaluation.transition, transition, "{name}");
        assert_eq!(evaluation.totals["query0"], expected.len(), "{name}");
    };
    // Not alice (MFA), carol (excluded), dave and erin (not active), svc (MFA): the fixed
    // logic. J1's OR version would also return carol, dave, erin.
    expect(
        "jumpcloud-users-without-mfa",
        &["bob"],
        AlertTransition::Opened,
    );
    // On the baseline everyone is new; the new-only rule stays quiet.
    expect(
        "jumpcloud-new-user-without-mfa",
        &["bob", "erin"],
        AlertTransition::Inactive,
    );
    // erin is inactive but in no group.
    expect(
        "jumpcloud-inactive-users-in-groups",
        &["dave"],
        AlertTransition::Opened,
    );
    expect(
        "jumpcloud-suspended-users-with-applications",
        &["dave"],
        AlertTransition::Opened,
    );
    expect(
        "jumpcloud-users-not-mapped-to-a-person",
        &["erin", "svc"],
        AlertTransition::Opened,
    );
    expect(
        "jumpcloud-empty-groups",
        &["empty"],
        AlertTransition::Opened,
    );
    expect(
        "jumpcloud-applications-assigned-to-nobody",
        &["unused"],
        AlertTransition::Opened,
    );

    let no_mfa = &evaluations["jumpcloud-users-without-mfa"];
    assert_eq!(no_mfa.alert_level, Some(AlertLevel::High));
    assert_eq!(no_mfa.outputs["queries.query0.total"], json!(1));
    assert_eq!(no_mfa.outputs["alertLevel"], json!("HIGH"));
}

#[test]
fn the_demo_second_run_opens_the_new_user_without_mfa_alert() {
    let rules = shipped();
    let baseline = evaluate_all(&rules, &tenant(), &BTreeMap::new(), &ctx(true, T0));
    let new_user = &baseline["jumpcloud-new-user-without-mfa"];
    assert_eq!(
        new_user.transition,
        AlertTransition::Inactive,
        "quiet on the baseline"
    );
    assert!(new_user.actions.is_empty());

    // Minutes later: a new active user without MFA.
    let later = T0 + 5 * 60 * 1000;
    let mut second = tenant();
    second.user("frank", later, json!({"active": true, "suspended": false, "mfaEnabled": false, "mfaExclusion": false, "email": "frank@example.com"}));
    second.entity(
        "employee:frank@example.com",
        "employee",
        "Person",
        json!({"email": "frank@example.com"}),
    );
    second
        .edge("frank", "IS", "employee:frank@example.com")
        .edge("acct", "HAS", "frank");
    let run2 = evaluate_all(&rules, &second, &next(&baseline), &ctx(false, later));

    let new_user = &run2["jumpcloud-new-user-without-mfa"];
    assert_eq!(new_user.transition, AlertTransition::Opened);
    assert_eq!(new_user.added, ["frank"]);
    assert_eq!(new_user.removed, Some(vec![]));
    assert_eq!(new_user.alert_level, Some(AlertLevel::High));
    let inventory = &run2["jumpcloud-users-without-mfa"];
    assert_eq!(inventory.transition, AlertTransition::StillActive);
    assert_eq!(inventory.added, ["frank"]);
    for (name, evaluation) in &run2 {
        if !name.contains("without-mfa") {
            assert!(
                evaluation.added.is_empty(),
                "{name}: {:?}",
                evaluation.added
            );
            assert_eq!(
                evaluation.transition,
                AlertTransition::StillActive,
                "{name}"
            );
        }
    }

    // A day and more later, with nothing new: the first-day accounts age out and the
    // new-user alert resolves; the inventory alert stays.
    let day_later = later + 2 * DAY_MS;
    let run3 = evaluate_all(&rules, &second, &next(&run2), &ctx(false, day_later));
    let new_user = &run3["jumpcloud-new-user-without-mfa"];
    assert_eq!(new_user.transition, AlertTransition::Resolved);
    assert_eq!(
        new_user.removed,
        Some(vec![
            "bob".to_owned(),
            "erin".to_owned(),
            "frank".to_owned()
        ])
    );
    assert_eq!(
        run3["jumpcloud-users-without-mfa"].transition,
        AlertTransition::StillActive
    );
}

#[test]
fn a_partial_group_membership_step_makes_only_the_rules_that_read_it_partial() {
    let rules = shipped();
    let baseline = evaluate_all(&rules, &tenant(), &BTreeMap::new(), &ctx(true, T0));
    // fetch-group-members failed: the store kept the memberships it had (a partial type is
    // not deleted), so the graph is the same, but it may be stale.
    let mut ctx2 = ctx(false, T0 + 60_000);
    ctx2.partial_types
        .insert("jumpcloud_group_has_user".to_owned());
    let run2 = evaluate_all(&rules, &tenant(), &next(&baseline), &ctx2);
    for (name, evaluation) in &run2 {
        let reads_membership = matches!(
            name.as_str(),
            "jumpcloud-inactive-users-in-groups" | "jumpcloud-empty-groups"
        );
        assert_eq!(evaluation.partial, reads_membership, "{name}");
        assert_eq!(evaluation.removed.is_none(), reads_membership, "{name}");
    }

    // Later the memberships are gone in a complete run: resolved.
    let run3 = evaluate_all(
        &rules,
        &tenant_with_members(false),
        &next(&run2),
        &ctx(false, T0 + 120_000),
    );
    let inactive = &run3["jumpcloud-inactive-users-in-groups"];
    assert_eq!(inactive.transition, AlertTransition::Resolved);
    assert_eq!(inactive.removed, Some(vec!["dave".to_owned()]));
}

#[test]
fn a_partial_run_missing_a_type_keeps_alerts_open() {
    let rules = shipped();
    let baseline = evaluate_all(&rules, &tenant(), &BTreeMap::new(), &ctx(true, T0));
    // The memberships are missing from the graph altogether while their step is partial.
    let mut ctx2 = ctx(false, T0 + 60_000);
    ctx2.partial_types
        .insert("jumpcloud_group_has_user".to_owned());
    let run2 = evaluate_all(&rules, &tenant_with_members(false), &next(&baseline), &ctx2);
    let inactive = &run2["jumpcloud-inactive-users-in-groups"];
    assert!(inactive.partial);
    assert!(inactive.result_ids.is_empty() && !inactive.condition_met);
    assert_eq!(
        inactive.transition,
        AlertTransition::StillActive,
        "a partial evaluation never resolves"
    );
    assert_eq!(inactive.removed, None);
    assert!(
        inactive.next_previous().result_ids.contains("dave"),
        "carried for the next run"
    );
    // No query can be traced to a type the graph lacks: every evaluation is partial.
    assert!(run2.values().all(|e| e.partial && e.removed.is_none()));
}

//! Two runs of the real component against one simulator with a mutation in between:
//! the second graph differs from the first by exactly what the mutation report says
//! (the ground truth change-set tests build on).

use std::collections::{BTreeMap, BTreeSet};

use integration_tests::{Setup, run, small_spec};
use jumpcloud_simulator::Mutation;
use serde_json::{Value, json};

/// Keys whose object differs between two graphs (same key, other content).
fn changed(before: &BTreeMap<String, Value>, after: &BTreeMap<String, Value>) -> BTreeSet<String> {
    before
        .iter()
        .filter(|(key, value)| after.get(*key).is_some_and(|v| v != *value))
        .map(|(key, _)| key.clone())
        .collect()
}

fn keys_only_in(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> BTreeSet<String> {
    a.keys().filter(|k| !b.contains_key(*k)).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_run_sees_exactly_the_reported_changes() {
    let first = run(Setup::generated(small_spec(160, 10, 6))).await;
    first.assert_success();
    let before = first.normalized_graph();
    let account = first.org().id().to_owned();
    let report = first
        .simulator
        .apply_mutation(Mutation::Standard)
        .expect("the tenant mutates");
    let second = first.rerun().await;
    second.assert_success();
    let after = second.normalized_graph();

    // Updated: the suspended user and the system that lost its disk encryption, and
    // nothing else.
    let suspended = &report.suspended_users[0];
    let unencrypted = &report.unencrypted_systems[0];
    assert_eq!(
        changed(&before, &after),
        BTreeSet::from([suspended.clone(), unencrypted.clone()])
    );
    assert_eq!(before[unencrypted]["encrypted"], true);
    assert_eq!(after[unencrypted]["encrypted"], false);
    let user = &after[suspended];
    assert_eq!(user["suspended"], true);
    assert_eq!(user["active"], false);
    assert_eq!(user["state"], "suspended");

    // Created: the new user with its account edge and employee mapping, the employee,
    // the new application assignment.
    let added = &report.added_users[0];
    let assignment = &report.added_assignments[0];
    let expected_created = BTreeSet::from([
        added.id.clone(),
        format!("{account}|has|{}", added.id),
        format!("{}|is|{}", added.id, added.employee_key),
        added.employee_key.clone(),
        format!(
            "{}|assigned|{}",
            assignment.user_id, assignment.application_id
        ),
    ]);
    assert_eq!(keys_only_in(&after, &before), expected_created);
    assert_eq!(after[&added.id]["mfaEnabled"], false);
    assert_eq!(after[&added.employee_key]["email"], json!([added.email]));
    let edge = &after[&format!(
        "{}|assigned|{}",
        assignment.user_id, assignment.application_id
    )];
    assert_eq!(edge["direct"], true);

    // Deleted: the removed membership, the deleted group with its account edge and
    // every membership it had.
    let removed = &report.removed_members[0];
    let deleted = &report.deleted_groups[0];
    let mut expected_deleted = BTreeSet::from([
        format!("{}|has|{}", removed.group_id, removed.user_id),
        deleted.id.clone(),
        format!("{account}|has|{}", deleted.id),
    ]);
    expected_deleted.extend(
        deleted
            .member_ids
            .iter()
            .map(|user| format!("{}|has|{user}", deleted.id)),
    );
    assert!(!deleted.member_ids.is_empty());
    assert_eq!(keys_only_in(&before, &after), expected_deleted);
}

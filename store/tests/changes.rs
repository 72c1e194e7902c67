//! Change-set semantics, run by run, against the real stores (SQLite, and PostgreSQL
//! when a server is configured: see `common`): created, updated (property-level,
//! `_rawData` alone not counted), deleted (never a partial type, never by a run that
//! failed as a whole), the baseline, relationships, tombstones, metadata, fencing.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::TestStore;
use graph_store::*;
use serde_json::{Value, json};

store_suite!(
    the_first_run_is_a_baseline_of_creations,
    an_unchanged_run_has_an_empty_change_set_and_keeps_versions,
    an_update_names_each_property_with_old_and_new_values_and_bumps_the_version,
    raw_data_alone_is_not_an_update_but_is_kept,
    a_class_change_is_an_update,
    a_missing_key_is_deleted_as_a_tombstone_hidden_from_the_current_graph,
    a_partial_type_is_never_deleted,
    a_run_that_failed_as_a_whole_deletes_nothing,
    a_deleted_key_that_comes_back_is_created_again_at_version_one,
    relationship_property_changes_are_updates,
    a_persist_under_an_older_lease_is_refused_and_changes_nothing,
    a_run_persists_once,
    a_bad_object_aborts_the_persist_and_keeps_the_previous_graph,
    a_key_emitted_twice_is_refused_by_name,
    runs_are_listed_newest_first_with_their_counts,
    change_sets_filter_by_type_and_kind,
    a_store_reopens_with_its_graph_and_a_newer_schema_is_refused,
    a_trigger_is_taken_once,
    a_reset_tenant_starts_again_from_a_baseline,
    running_runs_are_abandoned_after_a_restart,
    two_persists_of_one_tenant_run_one_after_the_other,
    a_newer_lease_committed_first_refuses_the_older_one_waiting_behind_it,
    a_large_run_streams_back_in_order,
    neighbours_search_and_type_counts_read_the_current_graph,
    a_tenant_configuration_is_stored_with_a_revision_that_grows_on_change,
    a_limit_on_neighbours_cuts_the_most_numerous_types_first,
);

struct Fixture {
    _store: TestStore,
    store: Arc<dyn Store>,
}

async fn fixture(s: TestStore) -> Fixture {
    s.store
        .upsert_tenant(&TenantSettings::new("acme"))
        .await
        .expect("tenant");
    Fixture {
        store: s.store.clone(),
        _store: s,
    }
}

fn entity(key: &str, object_type: &str, class: &str, props: Value) -> NewObject {
    NewObject {
        step: Some("fetch".into()),
        kind: ObjectKind::Entity,
        key: key.into(),
        object_type: object_type.into(),
        classes: vec![class.into()],
        from_key: None,
        to_key: None,
        properties: props.as_object().cloned().unwrap_or_default(),
        raw_data: None,
    }
}

fn user(key: &str, props: Value) -> NewObject {
    entity(key, "jumpcloud_user", "User", props)
}

fn member(group: &str, user: &str) -> NewObject {
    NewObject {
        step: Some("fetch".into()),
        kind: ObjectKind::Relationship,
        key: format!("{group}|has|{user}"),
        object_type: "jumpcloud_group_has_user".into(),
        classes: vec!["HAS".into()],
        from_key: Some(group.into()),
        to_key: Some(user.into()),
        properties: Default::default(),
        raw_data: None,
    }
}

fn group(key: &str) -> NewObject {
    entity(key, "jumpcloud_group", "Group", json!({"name": key}))
}

fn success() -> RunOutcome {
    outcome(RunStatus::Success, &[], false)
}

fn outcome(status: RunStatus, partial: &[&str], failed_whole: bool) -> RunOutcome {
    RunOutcome {
        status,
        finished_at_ms: now_ms(),
        partial_types: partial.iter().map(|s| s.to_string()).collect(),
        failed_whole,
        error: None,
        summary: None,
        fence: None,
    }
}

impl Fixture {
    async fn persist(&self, objects: Vec<NewObject>, outcome: RunOutcome) -> PersistReport {
        let run = self
            .store
            .begin_run("acme", Trigger::Cli, now_ms())
            .await
            .expect("run begins");
        self.store
            .persist_run(run, outcome, Box::new(objects.into_iter().map(Ok)))
            .await
            .expect("persist")
    }

    async fn changes(&self) -> Vec<Change> {
        self.store
            .changes("acme", None, &ChangeFilter::default())
            .await
            .expect("changes")
            .changes
    }

    async fn current_keys(&self) -> BTreeSet<String> {
        self.store
            .objects("acme", false)
            .await
            .expect("objects")
            .into_iter()
            .map(|o| o.object.key)
            .collect()
    }

    async fn get(&self, key: &str) -> StoredObject {
        self.store
            .object("acme", key)
            .await
            .expect("read")
            .expect("object exists")
    }
}

fn summary(changes: &[Change]) -> Vec<(ChangeKind, String)> {
    changes.iter().map(|c| (c.change, c.key.clone())).collect()
}

const U1: &str = "user-000000001";
const U2: &str = "user-000000002";
const U3: &str = "user-000000003";
const G1: &str = "group-00000001";

async fn the_first_run_is_a_baseline_of_creations(s: TestStore) {
    let f = fixture(s).await;
    let report = f
        .persist(
            vec![user(U1, json!({"active": true})), group(G1), member(G1, U1)],
            success(),
        )
        .await;
    assert!(report.run.baseline);
    assert_eq!(report.changes.entities.created, 2);
    assert_eq!(report.changes.relationships.created, 1);
    assert!(
        f.changes()
            .await
            .iter()
            .all(|c| c.change == ChangeKind::Created)
    );
    let stored = f.get(U1).await;
    assert_eq!(stored.metadata.version, 1);
    assert_eq!(stored.metadata.created_on, stored.metadata.begin_on);
    assert!(!stored.metadata.deleted);

    let second = f
        .persist(vec![user(U1, json!({"active": true}))], success())
        .await;
    assert!(
        !second.run.baseline,
        "only the first persisted run is the baseline"
    );
}

async fn an_unchanged_run_has_an_empty_change_set_and_keeps_versions(s: TestStore) {
    let f = fixture(s).await;
    let objects = || {
        vec![
            user(U1, json!({"active": true, "email": "a@x.io"})),
            group(G1),
        ]
    };
    f.persist(objects(), success()).await;
    let before = f.get(U1).await;
    let report = f.persist(objects(), success()).await;
    assert_eq!(report.changes.total(), 0);
    assert!(f.changes().await.is_empty());
    assert_eq!(f.get(U1).await.metadata, before.metadata);
}

async fn an_update_names_each_property_with_old_and_new_values_and_bumps_the_version(s: TestStore) {
    let f = fixture(s).await;
    f.persist(
        vec![user(
            U1,
            json!({"active": true, "email": "a@x.io", "old": 1}),
        )],
        success(),
    )
    .await;
    let first = f.get(U1).await;
    std::thread::sleep(std::time::Duration::from_millis(5));
    let report = f
        .persist(
            vec![user(
                U1,
                json!({"active": false, "email": "a@x.io", "new": [1, 2]}),
            )],
            success(),
        )
        .await;
    assert_eq!(report.changes.entities.updated, 1);
    let changes = f.changes().await;
    assert_eq!(
        summary(&changes),
        vec![(ChangeKind::Updated, U1.to_owned())]
    );
    let names: Vec<(&str, Option<&Value>, Option<&Value>)> = changes[0]
        .properties
        .iter()
        .map(|p| (p.name.as_str(), p.old.as_ref(), p.new.as_ref()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("active", Some(&json!(true)), Some(&json!(false))),
            ("new", None, Some(&json!([1, 2]))),
            ("old", Some(&json!(1)), None),
        ]
    );
    let second = f.get(U1).await;
    assert_eq!(second.metadata.version, 2);
    assert_eq!(second.metadata.created_on, first.metadata.created_on);
    assert!(second.metadata.begin_on > first.metadata.begin_on);
}

async fn raw_data_alone_is_not_an_update_but_is_kept(s: TestStore) {
    let f = fixture(s).await;
    let mut first = user(U1, json!({"active": true}));
    first.raw_data = Some(r#"{"id":"1","lastSeen":"monday"}"#.into());
    f.persist(vec![first], success()).await;
    let mut second = user(U1, json!({"active": true}));
    second.raw_data = Some(r#"{"id":"1","lastSeen":"tuesday"}"#.into());
    let report = f.persist(vec![second], success()).await;
    assert_eq!(report.changes.total(), 0);
    let stored = f.get(U1).await;
    assert_eq!(stored.metadata.version, 1);
    assert_eq!(
        stored.object.raw_data.as_deref(),
        Some(r#"{"id":"1","lastSeen":"tuesday"}"#)
    );
}

async fn a_class_change_is_an_update(s: TestStore) {
    let f = fixture(s).await;
    f.persist(vec![user(U1, json!({}))], success()).await;
    let mut changed = user(U1, json!({}));
    changed.classes.push("Person".into());
    f.persist(vec![changed], success()).await;
    let changes = f.changes().await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].properties[0].name, "_class");
}

async fn a_missing_key_is_deleted_as_a_tombstone_hidden_from_the_current_graph(s: TestStore) {
    let f = fixture(s).await;
    f.persist(
        vec![
            user(U1, json!({})),
            user(U2, json!({})),
            group(G1),
            member(G1, U2),
        ],
        success(),
    )
    .await;
    let report = f
        .persist(vec![user(U1, json!({})), group(G1)], success())
        .await;
    assert_eq!(report.changes.entities.deleted, 1);
    assert_eq!(report.changes.relationships.deleted, 1);
    let mut deleted: Vec<(ObjectKind, String)> = f
        .changes()
        .await
        .into_iter()
        .filter(|c| c.change == ChangeKind::Deleted)
        .map(|c| (c.kind, c.key))
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        vec![
            (ObjectKind::Entity, U2.to_owned()),
            (ObjectKind::Relationship, format!("{G1}|has|{U2}")),
        ]
    );
    assert_eq!(
        f.current_keys().await,
        BTreeSet::from([U1.to_owned(), G1.to_owned()])
    );
    let tombstone = f.get(U2).await;
    assert!(tombstone.metadata.deleted);
    assert!(tombstone.metadata.end_on.is_some());
    let with_deleted = f.store.objects("acme", true).await.expect("objects");
    assert_eq!(with_deleted.len(), 4);
}

async fn a_partial_type_is_never_deleted(s: TestStore) {
    let f = fixture(s).await;
    f.persist(
        vec![
            user(U1, json!({})),
            user(U2, json!({})),
            group(G1),
            member(G1, U1),
        ],
        success(),
    )
    .await;
    // Users failed to collect this time: none of them, nor the member edge, is deleted;
    // the group (not partial) would be.
    let report = f
        .persist(
            vec![user(U1, json!({"active": false}))],
            outcome(
                RunStatus::Partial,
                &["jumpcloud_user", "jumpcloud_group_has_user"],
                false,
            ),
        )
        .await;
    assert_eq!(
        report.changes.entities.updated, 1,
        "what was collected still updates"
    );
    assert_eq!(report.changes.entities.deleted, 1);
    assert_eq!(report.changes.relationships.deleted, 0);
    let deleted: Vec<String> = f
        .changes()
        .await
        .into_iter()
        .filter(|c| c.change == ChangeKind::Deleted)
        .map(|c| c.key)
        .collect();
    assert_eq!(deleted, vec![G1.to_owned()]);
    assert!(f.current_keys().await.contains(U2));
    assert!(f.current_keys().await.contains(&format!("{G1}|has|{U1}")));
}

async fn a_run_that_failed_as_a_whole_deletes_nothing(s: TestStore) {
    let f = fixture(s).await;
    f.persist(
        vec![user(U1, json!({})), user(U2, json!({})), group(G1)],
        success(),
    )
    .await;
    let report = f
        .persist(
            vec![user(U3, json!({}))],
            outcome(RunStatus::Failure, &[], true),
        )
        .await;
    assert_eq!(report.changes.entities.deleted, 0);
    assert_eq!(report.changes.entities.created, 1);
    assert_eq!(
        f.current_keys().await,
        BTreeSet::from([U1.to_owned(), U2.to_owned(), U3.to_owned(), G1.to_owned()])
    );
}

async fn a_deleted_key_that_comes_back_is_created_again_at_version_one(s: TestStore) {
    let f = fixture(s).await;
    f.persist(vec![user(U1, json!({})), user(U2, json!({}))], success())
        .await;
    f.persist(vec![user(U1, json!({}))], success()).await;
    let report = f
        .persist(
            vec![user(U1, json!({})), user(U2, json!({"back": true}))],
            success(),
        )
        .await;
    assert_eq!(report.changes.entities.created, 1);
    assert_eq!(
        summary(&f.changes().await),
        vec![(ChangeKind::Created, U2.to_owned())]
    );
    let revived = f.get(U2).await;
    assert!(!revived.metadata.deleted);
    assert_eq!(revived.metadata.end_on, None);
    assert_eq!(revived.metadata.version, 1);
}

async fn relationship_property_changes_are_updates(s: TestStore) {
    let f = fixture(s).await;
    let mut edge = member(G1, U1);
    f.persist(
        vec![user(U1, json!({})), group(G1), edge.clone()],
        success(),
    )
    .await;
    edge.properties.insert("direct".into(), json!(false));
    let report = f
        .persist(vec![user(U1, json!({})), group(G1), edge], success())
        .await;
    assert_eq!(report.changes.relationships.updated, 1);
    let change = &f.changes().await[0];
    assert_eq!(change.kind, ObjectKind::Relationship);
    assert_eq!(change.from_key.as_deref(), Some(G1));
    assert_eq!(change.to_key.as_deref(), Some(U1));
}

async fn a_persist_under_an_older_lease_is_refused_and_changes_nothing(s: TestStore) {
    let f = fixture(s).await;
    let mut first = success();
    first.fence = Some(5);
    f.persist(vec![user(U1, json!({}))], first).await;
    let run = f
        .store
        .begin_run("acme", Trigger::Schedule, now_ms())
        .await
        .expect("run");
    let mut stale = success();
    stale.fence = Some(4);
    let error = f
        .store
        .persist_run(run, stale, Box::new(std::iter::empty()))
        .await
        .expect_err("a lower fence is refused");
    assert!(matches!(
        error,
        StoreError::StaleFence {
            fence: 4,
            current: 5,
            ..
        }
    ));
    assert_eq!(f.current_keys().await, BTreeSet::from([U1.to_owned()]));
    let record = f.store.run("acme", run).await.expect("run");
    assert_eq!(
        record.status,
        RunStatus::Running,
        "the stale run did not end"
    );
}

async fn a_run_persists_once(s: TestStore) {
    let f = fixture(s).await;
    let run = f
        .store
        .begin_run("acme", Trigger::Cli, now_ms())
        .await
        .expect("run");
    f.store
        .persist_run(run, success(), Box::new(std::iter::empty()))
        .await
        .expect("first persist");
    let again = f
        .store
        .persist_run(run, success(), Box::new(std::iter::empty()))
        .await;
    assert!(matches!(again, Err(StoreError::RunNotRunning(_))));
}

async fn a_bad_object_aborts_the_persist_and_keeps_the_previous_graph(s: TestStore) {
    let f = fixture(s).await;
    f.persist(vec![user(U1, json!({})), user(U2, json!({}))], success())
        .await;
    let run = f
        .store
        .begin_run("acme", Trigger::Cli, now_ms())
        .await
        .expect("run");
    let objects: Vec<Result<NewObject, graph_store::sdk::ReadError>> = vec![
        Ok(user(U3, json!({}))),
        Err(graph_store::sdk::ReadError::Invalid {
            path: "graph/x.json".into(),
            reason: "truncated".into(),
        }),
    ];
    let error = f
        .store
        .persist_run(run, success(), Box::new(objects.into_iter()))
        .await;
    assert!(error.is_err());
    assert_eq!(
        f.current_keys().await,
        BTreeSet::from([U1.to_owned(), U2.to_owned()])
    );
}

async fn runs_are_listed_newest_first_with_their_counts(s: TestStore) {
    let f = fixture(s).await;
    f.persist(vec![user(U1, json!({}))], success()).await;
    f.persist(vec![user(U1, json!({})), user(U2, json!({}))], success())
        .await;
    let runs = f.store.runs("acme", 10).await.expect("runs");
    assert_eq!(runs.len(), 2);
    assert!(runs[0].id > runs[1].id);
    assert_eq!(runs[0].changes.entities.created, 1);
    assert!(runs[1].baseline && !runs[0].baseline);
    let tenant = f.store.tenant("acme").await.expect("tenant");
    assert_eq!(tenant.runs, 2);
    assert_eq!(tenant.last_run.map(|r| r.id), Some(runs[0].id));
}

async fn change_sets_filter_by_type_and_kind(s: TestStore) {
    let f = fixture(s).await;
    f.persist(vec![user(U1, json!({})), group(G1)], success())
        .await;
    let filtered = f
        .store
        .changes(
            "acme",
            None,
            &ChangeFilter {
                object_type: Some("jumpcloud_group".into()),
                ..ChangeFilter::default()
            },
        )
        .await
        .expect("changes");
    assert_eq!(filtered.total, 1);
    assert_eq!(filtered.changes[0].key, G1);
}

async fn a_store_reopens_with_its_graph_and_a_newer_schema_is_refused(s: TestStore) {
    s.store
        .upsert_tenant(&TenantSettings::new("acme"))
        .await
        .expect("tenant");
    let reopened = s.reopen().await.expect("reopen");
    assert_eq!(reopened.tenants().await.expect("tenants").len(), 1);
    drop(reopened);
    s.record_future_migration().await;
    let refused = s.reopen().await;
    assert!(matches!(refused, Err(StoreError::SchemaTooNew { .. })));
}

async fn a_trigger_is_taken_once(s: TestStore) {
    let f = fixture(s).await;
    assert!(!f.store.take_trigger("acme").await.expect("take"));
    f.store.request_trigger("acme").await.expect("request");
    f.store
        .request_trigger("acme")
        .await
        .expect("a second request joins the first");
    let state = f.store.tenant("acme").await.expect("tenant");
    assert!(state.trigger_requested_ms.is_some());
    assert!(f.store.take_trigger("acme").await.expect("take"));
    assert!(!f.store.take_trigger("acme").await.expect("taken already"));
    assert!(matches!(
        f.store.request_trigger("nobody").await,
        Err(StoreError::UnknownTenant(_))
    ));
}

async fn a_reset_tenant_starts_again_from_a_baseline(s: TestStore) {
    let f = fixture(s).await;
    f.persist(vec![user(U1, json!({}))], success()).await;
    f.store.reset_tenant("acme").await.expect("reset");
    assert!(f.current_keys().await.is_empty());
    assert!(f.store.runs("acme", 10).await.expect("runs").is_empty());
    let report = f.persist(vec![user(U1, json!({}))], success()).await;
    assert!(report.run.baseline);
}

async fn running_runs_are_abandoned_after_a_restart(s: TestStore) {
    let f = fixture(s).await;
    let run = f
        .store
        .begin_run("acme", Trigger::Schedule, now_ms())
        .await
        .expect("run");
    assert_eq!(f.store.abandon_running().await.expect("abandon"), 1);
    let record = f.store.run("acme", run).await.expect("run");
    assert_eq!(record.status, RunStatus::Abandoned);
    assert!(!record.persisted);
    let late = f
        .store
        .persist_run(run, success(), Box::new(std::iter::empty()))
        .await;
    assert!(matches!(late, Err(StoreError::RunNotRunning(_))));
}

async fn a_key_emitted_twice_is_refused_by_name(s: TestStore) {
    let f = fixture(s).await;
    f.persist(vec![user(U1, json!({}))], success()).await;
    let run = f
        .store
        .begin_run("acme", Trigger::Cli, now_ms())
        .await
        .expect("run");
    let twice = vec![user(U2, json!({})), user(U2, json!({"again": true}))];
    let error = f
        .store
        .persist_run(run, success(), Box::new(twice.into_iter().map(Ok)))
        .await
        .expect_err("a duplicate key is refused");
    assert!(
        error
            .to_string()
            .contains(&format!("emitted _key {U2} twice")),
        "{error}"
    );
    assert_eq!(f.current_keys().await, BTreeSet::from([U1.to_owned()]));
}

/// Objects handed over one by one; the source stops after the first until the test
/// opens the gate, and says when it got there.
fn gated(
    objects: Vec<NewObject>,
) -> (
    ObjectSource,
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Sender<()>,
) {
    let (reached_tx, reached_rx) = std::sync::mpsc::channel();
    let (open_tx, open_rx) = std::sync::mpsc::channel::<()>();
    let mut handed = 0;
    let source = objects.into_iter().map(move |object| {
        if handed == 1 {
            let _ = reached_tx.send(());
            let _ = open_rx.recv();
        }
        handed += 1;
        Ok(object)
    });
    (Box::new(source), reached_rx, open_tx)
}

/// Waits (off the async threads) until a gated source got to its gate.
async fn reached(gate: std::sync::mpsc::Receiver<()>) {
    tokio::task::spawn_blocking(move || gate.recv_timeout(Duration::from_secs(30)))
        .await
        .expect("join")
        .expect("the first persist reached its gate");
}

fn fenced(fence: i64) -> RunOutcome {
    let mut outcome = success();
    outcome.fence = Some(fence);
    outcome
}

async fn two_persists_of_one_tenant_run_one_after_the_other(s: TestStore) {
    let f = fixture(s).await;
    let first = f
        .store
        .begin_run("acme", Trigger::Schedule, now_ms())
        .await
        .expect("run");
    let second = f
        .store
        .begin_run("acme", Trigger::Schedule, now_ms())
        .await
        .expect("run");
    let (source, at_gate, gate) = gated(vec![user(U1, json!({})), user(U2, json!({}))]);
    let store = f.store.clone();
    let a = tokio::spawn(async move { store.persist_run(first, fenced(5), source).await });
    reached(at_gate).await;
    // The first persist holds the tenant while it stages; the second must wait for it
    // and then see its graph: it emits only U1, so it deletes U2.
    let store = f.store.clone();
    let b = tokio::spawn(async move {
        let objects = vec![user(U1, json!({}))];
        store
            .persist_run(second, fenced(6), Box::new(objects.into_iter().map(Ok)))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!b.is_finished(), "the second persist waits for the first");
    gate.send(()).expect("open the gate");
    let a = a.await.expect("join").expect("first persist");
    let b = b.await.expect("join").expect("second persist");
    assert!(a.run.baseline);
    assert_eq!(a.changes.entities.created, 2);
    assert!(!b.run.baseline, "the second saw the first's run");
    assert_eq!(b.changes.entities.created, 0);
    assert_eq!(b.changes.entities.deleted, 1);
    assert_eq!(f.current_keys().await, BTreeSet::from([U1.to_owned()]));
    assert_eq!(f.store.tenant("acme").await.expect("tenant").fence, 6);
}

async fn a_newer_lease_committed_first_refuses_the_older_one_waiting_behind_it(s: TestStore) {
    let f = fixture(s).await;
    let zombie = f
        .store
        .begin_run("acme", Trigger::Schedule, now_ms())
        .await
        .expect("run");
    let newer = f
        .store
        .begin_run("acme", Trigger::Schedule, now_ms())
        .await
        .expect("run");
    let (source, at_gate, gate) = gated(vec![user(U1, json!({})), group(G1)]);
    let store = f.store.clone();
    let b = tokio::spawn(async move { store.persist_run(newer, fenced(7), source).await });
    reached(at_gate).await;
    let store = f.store.clone();
    let a = tokio::spawn(async move {
        let objects = vec![user(U3, json!({}))];
        store
            .persist_run(zombie, fenced(5), Box::new(objects.into_iter().map(Ok)))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.send(()).expect("open the gate");
    b.await.expect("join").expect("the newer lease commits");
    let refused = a.await.expect("join");
    assert!(
        matches!(
            refused,
            Err(StoreError::StaleFence {
                fence: 5,
                current: 7,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        f.current_keys().await,
        BTreeSet::from([U1.to_owned(), G1.to_owned()])
    );
    assert_eq!(
        f.store.run("acme", zombie).await.expect("run").status,
        RunStatus::Running,
        "the refused run is left for its worker to end"
    );
}

async fn a_large_run_streams_back_in_order(s: TestStore) {
    let f = fixture(s).await;
    // More objects than one staging batch, one cursor page and one stream batch.
    let users = |n: usize, active: bool| -> Vec<NewObject> {
        (0..n)
            .map(|i| user(&format!("user-{i:06}"), json!({"active": active, "n": i})))
            .collect()
    };
    let mut first = users(4500, true);
    first.push(group(G1));
    first.extend((0..4500).map(|i| member(G1, &format!("user-{i:06}"))));
    let report = f.persist(first, success()).await;
    assert_eq!(report.run.entities, 4501);
    assert_eq!(report.run.relationships, 4500);

    // Every user updated but the last 500, which are gone with their edges.
    let mut second = users(4000, false);
    second.push(group(G1));
    second.extend((0..4000).map(|i| member(G1, &format!("user-{i:06}"))));
    let report = f.persist(second, success()).await;
    assert_eq!(report.changes.entities.updated, 4000);
    assert_eq!(report.changes.entities.deleted, 500);
    assert_eq!(report.changes.relationships.deleted, 500);
    assert_eq!(report.changes.relationships.updated, 0);

    let objects = f.store.objects("acme", false).await.expect("objects");
    assert_eq!(objects.len(), 8001);
    let order: Vec<(ObjectKind, &str, &str)> = objects
        .iter()
        .map(|o| {
            (
                o.object.kind,
                o.object.object_type.as_str(),
                o.object.key.as_str(),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert!(order == sorted, "entities first, then by type and key");
    assert_eq!(
        objects[0].object.key, G1,
        "jumpcloud_group < jumpcloud_user"
    );
    assert_eq!(objects[1].metadata.version, 2);
    assert_eq!(objects[1].object.properties["active"], json!(false));
    let with_deleted = f.store.objects("acme", true).await.expect("objects");
    assert_eq!(with_deleted.len(), 9001);
}

async fn neighbours_search_and_type_counts_read_the_current_graph(s: TestStore) {
    let f = fixture(s).await;
    f.persist(
        vec![
            user(U1, json!({"name": "Ada Lovelace", "email": "ada@x.io"})),
            user(U2, json!({"name": "Alan_Turing", "email": "alan@x.io"})),
            group(G1),
            member(G1, U1),
        ],
        success(),
    )
    .await;
    let edges = f
        .store
        .relationships_of("acme", U1, false, 10)
        .await
        .expect("edges");
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0].object.from_key.as_deref(), Some(G1));
    let found = f
        .store
        .search("acme", "LOVELACE", 10)
        .await
        .expect("search");
    assert_eq!(found.len(), 1, "case-insensitive on name");
    assert_eq!(found[0].object.key, U1);
    assert_eq!(
        f.store
            .search("acme", "alan@", 10)
            .await
            .expect("search")
            .len(),
        1
    );
    // `_` is a literal, not a LIKE wildcard.
    assert_eq!(
        f.store
            .search("acme", "n_T", 10)
            .await
            .expect("search")
            .len(),
        1
    );
    assert_eq!(
        f.store
            .search("acme", "a_a", 10)
            .await
            .expect("search")
            .len(),
        0
    );
    let counts = f.store.type_counts("acme").await.expect("counts");
    assert!(counts.contains(&(ObjectKind::Entity, "jumpcloud_user".into(), 2)));
    assert!(counts.contains(&(
        ObjectKind::Relationship,
        "jumpcloud_group_has_user".into(),
        1
    )));
}

async fn a_tenant_configuration_is_stored_with_a_revision_that_grows_on_change(s: TestStore) {
    let store = s.store.clone();
    assert_eq!(store.tenant_config("acme").await.expect("read"), None);
    let mut settings = TenantSettings::new("acme");
    settings.polling_interval = PollingInterval::parse("ONE_HOUR").expect("interval");
    let first = json!({"integration": {"apiKey": {"env": "ACME_KEY"}}, "sandbox": {}});
    assert_eq!(
        store
            .put_tenant_config(&settings, &first)
            .await
            .expect("put"),
        (1, ConfigChange::Created)
    );
    // Settings and configuration land together.
    let state = store.tenant("acme").await.expect("tenant");
    assert_eq!(state.settings, settings);
    assert_eq!(
        store
            .put_tenant_config(&settings, &first)
            .await
            .expect("again"),
        (1, ConfigChange::Unchanged)
    );
    let second = json!({"integration": {"apiKey": {"file": "/run/secrets/acme"}}, "sandbox": {}});
    assert_eq!(
        store
            .put_tenant_config(&settings, &second)
            .await
            .expect("changed"),
        (2, ConfigChange::Changed)
    );
    let stored = store
        .tenant_config("acme")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.revision, 2);
    assert_eq!(stored.config, second);
    // A tenant registered without a configuration (by a plain `serve`) gets one.
    store
        .upsert_tenant(&TenantSettings::new("beta"))
        .await
        .expect("tenant");
    assert_eq!(store.tenant_config("beta").await.expect("read"), None);
    assert_eq!(
        store
            .put_tenant_config(&TenantSettings::new("beta"), &first)
            .await
            .expect("put"),
        (1, ConfigChange::Created)
    );
    // Upserting settings alone keeps the configuration.
    store.upsert_tenant(&settings).await.expect("settings");
    assert_eq!(
        store
            .tenant_config("acme")
            .await
            .expect("read")
            .map(|c| c.revision),
        Some(2)
    );
    // Removed: no configuration, disabled, never due; importing again brings it back.
    assert!(store.remove_tenant_config("acme").await.expect("remove"));
    assert!(!store.remove_tenant_config("nobody").await.expect("remove"));
    assert_eq!(store.tenant_config("acme").await.expect("read"), None);
    let state = store.tenant("acme").await.expect("still known");
    assert_eq!(state.settings.polling_interval, PollingInterval::Disabled);
    assert_eq!(state.next_due_ms, None);
    assert_eq!(
        store
            .put_tenant_config(&settings, &first)
            .await
            .expect("again"),
        (4, ConfigChange::Created)
    );
}

async fn a_limit_on_neighbours_cuts_the_most_numerous_types_first(s: TestStore) {
    let f = fixture(s).await;
    let mut objects = vec![user(U1, json!({"name": "Ada"})), group("g1"), group("g2")];
    objects.push(member("g1", U1));
    objects.push(member("g2", U1));
    for i in 0..30 {
        let system = format!("s{i:02}");
        objects.push(entity(&system, "jumpcloud_system", "Host", json!({})));
        objects.push(NewObject {
            step: Some("fetch".into()),
            kind: ObjectKind::Relationship,
            key: format!("{U1}|assigned|{system}"),
            object_type: "jumpcloud_user_assigned_system".into(),
            classes: vec!["ASSIGNED".into()],
            from_key: Some(U1.into()),
            to_key: Some(system),
            properties: Default::default(),
            raw_data: None,
        });
    }
    f.persist(objects, success()).await;
    let edges = f
        .store
        .relationships_of("acme", U1, false, 6)
        .await
        .expect("edges");
    let count = |t: &str| edges.iter().filter(|e| e.object.object_type == t).count();
    assert_eq!(edges.len(), 6);
    assert_eq!(count("jumpcloud_group_has_user"), 2, "both groups kept");
    assert_eq!(count("jumpcloud_user_assigned_system"), 4);
    let all = f
        .store
        .relationships_of("acme", U1, false, 100)
        .await
        .expect("edges");
    assert_eq!(all.len(), 32);
}

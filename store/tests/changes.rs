//! Change-set semantics, run by run, against the real SQLite store: created, updated
//! (property-level, `_rawData` alone not counted), deleted (never a partial type, never
//! by a run that failed as a whole), the baseline, relationships, tombstones, metadata.

use std::collections::BTreeSet;
use std::sync::Arc;

use graph_store::*;
use serde_json::{Value, json};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    ))
    .await
    .expect("store opens");
    store
        .upsert_tenant(&TenantSettings::new("acme"))
        .await
        .expect("tenant");
    Fixture { _dir: dir, store }
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

#[tokio::test]
async fn the_first_run_is_a_baseline_of_creations() {
    let f = fixture().await;
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

#[tokio::test]
async fn an_unchanged_run_has_an_empty_change_set_and_keeps_versions() {
    let f = fixture().await;
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

#[tokio::test]
async fn an_update_names_each_property_with_old_and_new_values_and_bumps_the_version() {
    let f = fixture().await;
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

#[tokio::test]
async fn raw_data_alone_is_not_an_update_but_is_kept() {
    let f = fixture().await;
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

#[tokio::test]
async fn a_class_change_is_an_update() {
    let f = fixture().await;
    f.persist(vec![user(U1, json!({}))], success()).await;
    let mut changed = user(U1, json!({}));
    changed.classes.push("Person".into());
    f.persist(vec![changed], success()).await;
    let changes = f.changes().await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].properties[0].name, "_class");
}

#[tokio::test]
async fn a_missing_key_is_deleted_as_a_tombstone_hidden_from_the_current_graph() {
    let f = fixture().await;
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

#[tokio::test]
async fn a_partial_type_is_never_deleted() {
    let f = fixture().await;
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

#[tokio::test]
async fn a_run_that_failed_as_a_whole_deletes_nothing() {
    let f = fixture().await;
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

#[tokio::test]
async fn a_deleted_key_that_comes_back_is_created_again_at_version_one() {
    let f = fixture().await;
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

#[tokio::test]
async fn relationship_property_changes_are_updates() {
    let f = fixture().await;
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

#[tokio::test]
async fn a_persist_under_an_older_lease_is_refused_and_changes_nothing() {
    let f = fixture().await;
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

#[tokio::test]
async fn a_run_persists_once() {
    let f = fixture().await;
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

#[tokio::test]
async fn a_bad_object_aborts_the_persist_and_keeps_the_previous_graph() {
    let f = fixture().await;
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

#[tokio::test]
async fn runs_are_listed_newest_first_with_their_counts() {
    let f = fixture().await;
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

#[tokio::test]
async fn change_sets_filter_by_type_and_kind() {
    let f = fixture().await;
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

#[tokio::test]
async fn a_store_reopens_with_its_graph_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    {
        let store = open(&url).await.expect("open");
        store
            .upsert_tenant(&TenantSettings::new("acme"))
            .await
            .expect("tenant");
    }
    let store = open(&url).await.expect("reopen");
    assert_eq!(store.tenants().await.expect("tenants").len(), 1);
    drop(store);
    // A newer program recorded a migration this one does not know.
    rusqlite::Connection::open(dir.path().join("s.db"))
        .and_then(|c| {
            c.execute(
                "INSERT INTO schema_migrations VALUES (9999, 'future', 0)",
                [],
            )
        })
        .expect("bump the schema");
    let refused = open(&url).await;
    assert!(matches!(refused, Err(StoreError::SchemaTooNew { .. })));
}

#[tokio::test]
async fn a_trigger_is_taken_once() {
    let f = fixture().await;
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

#[tokio::test]
async fn a_reset_tenant_starts_again_from_a_baseline() {
    let f = fixture().await;
    f.persist(vec![user(U1, json!({}))], success()).await;
    f.store.reset_tenant("acme").await.expect("reset");
    assert!(f.current_keys().await.is_empty());
    assert!(f.store.runs("acme", 10).await.expect("runs").is_empty());
    let report = f.persist(vec![user(U1, json!({}))], success()).await;
    assert!(report.run.baseline);
}

#[tokio::test]
async fn running_runs_are_abandoned_after_a_restart() {
    let f = fixture().await;
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

#[tokio::test]
async fn neighbours_search_and_type_counts_read_the_current_graph() {
    let f = fixture().await;
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

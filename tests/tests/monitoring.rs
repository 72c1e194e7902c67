//! The graph kept between runs: the real component in the real host against the
//! simulator, persisted to a real SQLite store, with the simulator's mutation between
//! runs. The change set must be exactly what the mutation did; a failing step must
//! delete nothing of its types; alert rules open, stay open and resolve, and a webhook
//! receiver on 127.0.0.1 gets exactly the expected deliveries.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use alert_rules::{Format, J1qlChecker, RetryPolicy, Rule};
use graph_store::{
    AlertStatus, AlertTransition, ChangeFilter, ChangeKind, ChangeSet, EvaluationRecord,
    ObjectKind, Store, Trigger,
};
use integration_host::config::TenantConfig;
use integration_host::job::{self, Mode};
use integration_host::monitor::{self, MonitoredRun, rules, webhook::EgressTransport};
use integration_host::services::NoProgress;
use integration_tests::{loaded, small_spec, tenant_file};
use jumpcloud_simulator::{
    Dataset, Fault, FaultRule, Mutation, MutationReport, Simulator, SimulatorConfig, TenantSpec,
};
use serde_json::{Value, json};

/// A tenant monitored run after run: simulator, store, rules.
struct Monitored {
    simulator: Simulator,
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
    tenant: TenantConfig,
    rules: Vec<Rule>,
    runs: usize,
}

impl Monitored {
    /// `head` goes before the tenant file's tables (monitoring fields).
    async fn start(spec: TenantSpec, head: &str, rules: Vec<Rule>) -> Monitored {
        let simulator = Simulator::start(SimulatorConfig {
            dataset: Dataset::Generated(spec),
            ..SimulatorConfig::default()
        })
        .await
        .expect("simulator");
        let text = format!(
            "{head}\n{}",
            tenant_file(simulator.api_key(), &simulator.base_url())
        );
        let tenant = TenantConfig::parse(Path::new("tenant.toml"), &text).expect("tenant file");
        let dir = tempfile::tempdir().expect("dir");
        let store = graph_store::open(dir.path().join("store.db").to_str().expect("utf-8"))
            .await
            .expect("store");
        store
            .upsert_tenant(&tenant.monitoring)
            .await
            .expect("tenant");
        Monitored {
            simulator,
            store,
            dir,
            tenant,
            rules,
            runs: 0,
        }
    }

    /// One run: the sandboxed job, persisted, then the rules.
    async fn run(&mut self) -> (MonitoredRun, Vec<EvaluationRecord>) {
        self.runs += 1;
        let loaded = loaded().await;
        let output = self.dir.path().join(format!("run-{}", self.runs));
        let spec = job::prepare(
            &self.tenant,
            &loaded.info,
            &[],
            Mode::Local,
            &output,
            Arc::new(NoProgress),
        )
        .expect("job");
        let monitored = monitor::run_and_persist(
            &loaded.plugin,
            &loaded.info,
            spec,
            &*self.store,
            Trigger::Cli,
        )
        .await
        .expect("the run persists");
        let transport = EgressTransport::for_rules(&self.rules);
        let retry = RetryPolicy {
            initial_backoff: std::time::Duration::from_millis(10),
            ..RetryPolicy::default()
        };
        let evaluations = rules::evaluate_after_run(
            &*self.store,
            &monitored.run,
            &self.rules,
            &transport,
            &retry,
        )
        .await
        .expect("rules evaluated");
        (monitored, evaluations)
    }

    async fn changes(&self, run: i64) -> ChangeSet {
        self.store
            .changes(&self.tenant.tenant, Some(run), &ChangeFilter::default())
            .await
            .expect("changes")
    }

    async fn current_keys(&self, object_type: &str) -> BTreeSet<String> {
        self.store
            .objects(&self.tenant.tenant, false)
            .await
            .expect("objects")
            .into_iter()
            .filter(|o| o.object.object_type == object_type)
            .map(|o| o.object.key)
            .collect()
    }
}

/// The changes of a set, as (change, kind, key).
fn entries(set: &ChangeSet) -> BTreeSet<(ChangeKind, ObjectKind, String)> {
    set.changes
        .iter()
        .map(|c| (c.change, c.kind, c.key.clone()))
        .collect()
}

/// The change set the standard mutation must produce, from its report.
fn expected_change_set(
    report: &MutationReport,
    account: &str,
    memberships_of_deleted_group: &BTreeSet<String>,
) -> BTreeSet<(ChangeKind, ObjectKind, String)> {
    use ChangeKind::*;
    use ObjectKind::*;
    let added = &report.added_users[0];
    let assignment = &report.added_assignments[0];
    let removed = &report.removed_members[0];
    let group = &report.deleted_groups[0];
    let mut expected = BTreeSet::from([
        (Updated, Entity, report.suspended_users[0].clone()),
        (Updated, Entity, report.unencrypted_systems[0].clone()),
        (Created, Entity, added.id.clone()),
        (Created, Entity, added.employee_key.clone()),
        (Created, Relationship, format!("{account}|has|{}", added.id)),
        (
            Created,
            Relationship,
            format!("{}|is|{}", added.id, added.employee_key),
        ),
        (
            Created,
            Relationship,
            format!(
                "{}|assigned|{}",
                assignment.user_id, assignment.application_id
            ),
        ),
        (
            Deleted,
            Relationship,
            format!("{}|has|{}", removed.group_id, removed.user_id),
        ),
        (Deleted, Entity, group.id.clone()),
        (Deleted, Relationship, format!("{account}|has|{}", group.id)),
    ]);
    for membership in memberships_of_deleted_group {
        expected.insert((Deleted, Relationship, membership.clone()));
    }
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_run_persists_exactly_the_mutation_as_its_change_set() {
    let mut m = Monitored::start(small_spec(160, 10, 6), "", Vec::new()).await;
    let (first, _) = m.run().await;
    assert!(first.run.baseline);
    assert!(first.run.persisted);
    assert_eq!(first.changes.entities.created, first.summary.run.entities);
    assert_eq!(
        first.changes.relationships.created,
        first.summary.run.relationships
    );
    let account = m.simulator.tenant().organizations()[0].id().to_owned();
    let report = m
        .simulator
        .apply_mutation(Mutation::Standard)
        .expect("mutation");
    let group = &report.deleted_groups[0];
    let memberships: BTreeSet<String> = group
        .member_ids
        .iter()
        .map(|user| format!("{}|has|{user}", group.id))
        .collect();

    let (second, _) = m.run().await;
    assert!(!second.run.baseline);
    let set = m.changes(second.run.id).await;
    assert_eq!(
        entries(&set),
        expected_change_set(&report, &account, &memberships)
    );

    // The update names exactly the properties that changed, old and new.
    let update = set
        .changes
        .iter()
        .find(|c| c.change == ChangeKind::Updated && c.key == report.suspended_users[0])
        .expect("an update");
    let changed: Vec<(&str, Option<&Value>, Option<&Value>)> = update
        .properties
        .iter()
        .map(|p| (p.name.as_str(), p.old.as_ref(), p.new.as_ref()))
        .collect();
    assert!(changed.contains(&("suspended", Some(&json!(false)), Some(&json!(true)))));
    assert!(changed.contains(&("active", Some(&json!(true)), Some(&json!(false)))));
    assert!(
        changed.iter().all(|(name, _, _)| *name != "_rawData"),
        "raw data is not a property change"
    );
    // The system that lost its disk encryption changes in exactly that.
    let system = set
        .changes
        .iter()
        .find(|c| c.change == ChangeKind::Updated && c.key == report.unencrypted_systems[0])
        .expect("the system's update");
    let changed: Vec<(&str, Option<&Value>, Option<&Value>)> = system
        .properties
        .iter()
        .map(|p| (p.name.as_str(), p.old.as_ref(), p.new.as_ref()))
        .collect();
    assert!(changed.contains(&("encrypted", Some(&json!(true)), Some(&json!(false)))));

    // Metadata: the suspended user is at version 2, the new one at 1, the deleted
    // group is a tombstone.
    let tenant = &m.tenant.tenant;
    let suspended = m
        .store
        .object(tenant, &report.suspended_users[0])
        .await
        .expect("read")
        .expect("present");
    assert_eq!(suspended.metadata.version, 2);
    let added = m
        .store
        .object(tenant, &report.added_users[0].id)
        .await
        .expect("read")
        .expect("present");
    assert_eq!(added.metadata.version, 1);
    let deleted = m
        .store
        .object(tenant, &group.id)
        .await
        .expect("read")
        .expect("tombstone");
    assert!(deleted.metadata.deleted && deleted.metadata.end_on.is_some());

    // A third run of the unchanged tenant changes nothing.
    let (third, _) = m.run().await;
    assert_eq!(
        third.changes.total(),
        0,
        "{:?}",
        m.changes(third.run.id).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_fails_in_the_second_run_deletes_none_of_its_types() {
    let mut m = Monitored::start(small_spec(120, 8, 4), "", Vec::new()).await;
    m.run().await;
    let groups_before = m.current_keys("jumpcloud_group").await;
    let members_before = m.current_keys("jumpcloud_group_has_user").await;
    assert!(!groups_before.is_empty() && !members_before.is_empty());
    m.simulator
        .apply_mutation(Mutation::Standard)
        .expect("mutation");
    // Groups cannot be read this time: fetch-groups fails, its dependents are partial.
    m.simulator.set_faults(vec![
        FaultRule::new(Fault::ServerError(500)).with_path_prefix("/api/v2/usergroups"),
    ]);
    let (second, _) = m.run().await;
    assert_eq!(second.run.status, graph_store::RunStatus::Partial);
    for partial in [
        "jumpcloud_group",
        "jumpcloud_account_has_group",
        "jumpcloud_group_has_user",
    ] {
        assert!(
            second.run.partial_types.iter().any(|t| t == partial),
            "{partial} partial: {:?}",
            second.run.partial_types
        );
    }
    let set = m.changes(second.run.id).await;
    let deleted_partial: Vec<&str> = set
        .changes
        .iter()
        .filter(|c| c.change == ChangeKind::Deleted)
        .filter(|c| second.run.partial_types.contains(&c.object_type))
        .map(|c| c.key.as_str())
        .collect();
    assert!(deleted_partial.is_empty(), "{deleted_partial:?}");
    assert_eq!(m.current_keys("jumpcloud_group").await, groups_before);
    assert_eq!(
        m.current_keys("jumpcloud_group_has_user").await,
        members_before
    );
    // What the other steps saw still counts: the new user was created.
    assert!(
        set.changes
            .iter()
            .any(|c| c.change == ChangeKind::Created && c.object_type == "jumpcloud_user")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_name_tag_is_on_every_stored_entity_only_when_asked() {
    let head = "accountName = \"Acme IdP\"\ntagWithAccountName = true";
    let mut tagged = Monitored::start(small_spec(30, 3, 2), head, Vec::new()).await;
    tagged.run().await;
    let objects = tagged
        .store
        .objects(&tagged.tenant.tenant, false)
        .await
        .expect("objects");
    let (entities, relationships): (Vec<_>, Vec<_>) = objects
        .iter()
        .partition(|o| o.object.kind == ObjectKind::Entity);
    assert!(entities.iter().any(|o| o.object.object_type == "employee"));
    for entity in &entities {
        assert_eq!(
            entity.object.properties.get("tag.AccountName"),
            Some(&json!("Acme IdP")),
            "{}",
            entity.object.key
        );
    }
    assert!(
        relationships
            .iter()
            .all(|r| !r.object.properties.contains_key("tag.AccountName"))
    );

    let mut untagged = Monitored::start(
        small_spec(30, 3, 2),
        "accountName = \"Acme IdP\"",
        Vec::new(),
    )
    .await;
    untagged.run().await;
    let objects = untagged
        .store
        .objects(&untagged.tenant.tenant, false)
        .await
        .expect("objects");
    assert!(
        objects
            .iter()
            .all(|o| !o.object.properties.contains_key("tag.AccountName"))
    );
}

/// A webhook receiver on 127.0.0.1 that records every request body by path.
struct Receiver {
    address: std::net::SocketAddr,
    received: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        use http_body_util::BodyExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let received: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let log = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let log = log.clone();
                            async move {
                                let path = request.uri().path().to_owned();
                                let body = request.into_body().collect().await?.to_bytes();
                                let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                                log.lock().expect("log").push((path, value));
                                Ok::<_, hyper::Error>(hyper::Response::new(
                                    http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                                ))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { address, received }
    }

    fn deliveries(&self, path: &str) -> Vec<Value> {
        self.received
            .lock()
            .expect("log")
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, body)| body.clone())
            .collect()
    }
}

fn rules_for(receiver: &Receiver, group_id: &str) -> Vec<Rule> {
    let hook = |path: &str| format!("http://{}{path}", receiver.address);
    let text = json!({"rules": [
        {
            "name": "group-exists",
            "description": "resolves when the group is deleted",
            "question": {"queries": [{"query": format!("FIND jumpcloud_group WITH _key = '{group_id}'")}]},
            "operations": [{"when": "{{queries.query0.total > 0}}",
                "actions": [{"type": "SET_PROPERTY", "targetProperty": "alertLevel", "targetValue": "LOW"},
                            {"type": "CREATE_ALERT"}]}]
        },
        {
            "name": "new-user-without-mfa",
            "description": "opens when a user without MFA appears",
            "triggerActionsOnNewEntitiesOnly": true,
            "question": {"queries": [{"query": "FIND jumpcloud_user WITH mfaEnabled != true"}]},
            "operations": [{"when": {"type": "FILTER", "condition": "{{queries.query0.total > 0}}"},
                "actions": [{"type": "SET_PROPERTY", "targetProperty": "alertLevel", "targetValue": "HIGH"},
                            {"type": "CREATE_ALERT"},
                            {"type": "WEBHOOK", "endpoint": hook("/new-user"), "method": "POST",
                             "body": {"rule": "{{alertRuleName}}", "total": "{{queries.query0.total}}"}}]}]
        },
        {
            "name": "suspended-with-apps",
            "description": "fires on every evaluation while it holds",
            "question": {"queries": [{"query": "FIND jumpcloud_user WITH suspended = true THAT ASSIGNED jumpcloud_application"}]},
            "operations": [{"when": ["AND", ["queries.query0.total", ">", 0]],
                "actions": [{"type": "CREATE_ALERT"},
                            {"type": "WEBHOOK", "endpoint": hook("/suspended"), "method": "POST",
                             "body": {"level": "{{alertLevel}}", "total": "{{queries.query0.total}}"}}]}]
        }
    ]});
    alert_rules::parse_rules(&text.to_string(), Format::Json, "rules.json", &J1qlChecker)
        .expect("rules load")
}

fn transition(evaluations: &[EvaluationRecord], rule: &str) -> AlertTransition {
    evaluations
        .iter()
        .find(|e| e.rule == rule)
        .unwrap_or_else(|| panic!("no evaluation of {rule}"))
        .transition
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_open_stay_open_and_resolve_and_webhooks_arrive_exactly() {
    let receiver = Receiver::start().await;
    let spec = small_spec(120, 8, 4);
    // The group the standard mutation deletes is chosen deterministically: find it on
    // a throwaway simulator of the same spec.
    let probe = Simulator::start(SimulatorConfig {
        dataset: Dataset::Generated(spec.clone()),
        ..SimulatorConfig::default()
    })
    .await
    .expect("probe");
    let doomed = probe
        .apply_mutation(Mutation::Standard)
        .expect("mutation")
        .deleted_groups[0]
        .id
        .clone();
    probe.shutdown().await;

    let mut m = Monitored::start(spec, "", rules_for(&receiver, &doomed)).await;
    let (_, first) = m.run().await;
    assert_eq!(transition(&first, "group-exists"), AlertTransition::Opened);
    assert_eq!(
        transition(&first, "new-user-without-mfa"),
        AlertTransition::Inactive,
        "a new-only rule is quiet on the baseline"
    );
    assert_eq!(
        transition(&first, "suspended-with-apps"),
        AlertTransition::Opened
    );
    assert_eq!(receiver.deliveries("/new-user").len(), 0);
    assert_eq!(receiver.deliveries("/suspended").len(), 1);

    let report = m
        .simulator
        .apply_mutation(Mutation::Standard)
        .expect("mutation");
    assert_eq!(report.deleted_groups[0].id, doomed);
    let (_, second) = m.run().await;
    assert_eq!(
        transition(&second, "group-exists"),
        AlertTransition::Resolved
    );
    assert_eq!(
        transition(&second, "new-user-without-mfa"),
        AlertTransition::Opened
    );
    let new_user = second
        .iter()
        .find(|e| e.rule == "new-user-without-mfa")
        .expect("evaluated");
    assert_eq!(new_user.added, vec![report.added_users[0].id.clone()]);
    assert_eq!(
        transition(&second, "suspended-with-apps"),
        AlertTransition::StillActive
    );
    let new_user_hooks = receiver.deliveries("/new-user");
    assert_eq!(new_user_hooks.len(), 1);
    assert_eq!(new_user_hooks[0]["rule"], "new-user-without-mfa");
    assert_eq!(receiver.deliveries("/suspended").len(), 2);

    let (_, third) = m.run().await;
    assert_eq!(
        transition(&third, "new-user-without-mfa"),
        AlertTransition::StillActive
    );
    assert_eq!(
        receiver.deliveries("/new-user").len(),
        1,
        "no new user, no new delivery"
    );
    assert_eq!(receiver.deliveries("/suspended").len(), 3);
    assert_eq!(
        transition(&third, "group-exists"),
        AlertTransition::Inactive
    );

    let tenant = &m.tenant.tenant;
    let open: BTreeSet<String> = m
        .store
        .alerts(tenant, Some(AlertStatus::Active))
        .await
        .expect("alerts")
        .into_iter()
        .map(|a| a.rule)
        .collect();
    assert_eq!(
        open,
        BTreeSet::from(["new-user-without-mfa".into(), "suspended-with-apps".into()])
    );
    let resolved = m
        .store
        .alerts(tenant, Some(AlertStatus::Resolved))
        .await
        .expect("alerts");
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].rule, "group-exists");
    // Every delivery is recorded on its evaluation.
    let delivered: usize = m
        .store
        .evaluations(tenant, None)
        .await
        .expect("evaluations")
        .iter()
        .filter_map(|e| e.deliveries.as_array())
        .flatten()
        .filter(|d| d["outcome"] == "delivered")
        .count();
    assert_eq!(delivered, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_to_the_metadata_address_is_refused_and_recorded() {
    let text = json!({"rules": [{
        "name": "exfiltrate",
        "question": {"queries": [{"query": "FIND jumpcloud_user"}]},
        "operations": [{"when": "{{queries.query0.total > 0}}",
            "actions": [{"type": "WEBHOOK", "endpoint": "http://169.254.169.254/latest/meta-data/", "method": "POST", "body": {"n": "{{queries.query0.total}}"}}]}]
    }]});
    let rules =
        alert_rules::parse_rules(&text.to_string(), Format::Json, "rules.json", &J1qlChecker)
            .expect("rules load");
    let mut m = Monitored::start(small_spec(10, 2, 1), "", rules).await;
    let (_, evaluations) = m.run().await;
    let deliveries = evaluations[0].deliveries.as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["outcome"], "failed");
    assert_eq!(deliveries[0]["attempts"], 1, "a denial is not retried");
    assert!(
        deliveries[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("egress denied")),
        "{deliveries:?}"
    );
}

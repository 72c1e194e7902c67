//! The rest of the directory end to end: Apple MDM and devices, systems, system
//! groups, who can log into which system with sudo, administrators and policies,
//! checked edge by edge against what the simulator served; paging past 100 on every
//! long list; objects deleted mid-run; several organizations; a 403 on administrators.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use integration_tests::{Run, Setup, object_id, run};
use jumpcloud_simulator::{Fault, FaultRule, Organization, TenantSpec};
use serde_json::Value;

/// Every list long enough to need a second page: 264 systems (88 Macs, 108 Apple
/// devices), 110 system groups, 105 policies, 104 administrators, a system group of
/// 150 members, system-group bindings and system users over 100.
fn big_spec() -> TenantSpec {
    TenantSpec {
        users: 220,
        groups: 8,
        applications: 3,
        system_groups: Some(110),
        policies: 105,
        administrators: 104,
        ..TenantSpec::default()
    }
}

fn ids(objects: impl Iterator<Item = Value>) -> BTreeSet<String> {
    objects.map(|o| object_id(&o).to_owned()).collect()
}

fn flag(object: &Value, pointer: &str) -> bool {
    object.pointer(pointer).and_then(Value::as_bool) == Some(true)
}

/// A property value as JSON text (comparable and orderable).
fn js(value: impl Into<Value>) -> String {
    value.into().to_string()
}

/// `(from, to)` plus the named properties (as JSON text) of every edge of a type.
fn edges_with(run: &Run, kind: &str, props: &[&str]) -> BTreeSet<(String, String, Vec<String>)> {
    run.graph
        .relationships_of_type(kind)
        .into_iter()
        .map(|edge| {
            let values = props
                .iter()
                .map(|p| js(edge.get(p).cloned().unwrap_or(Value::Null)))
                .collect();
            (edge.from_key().to_owned(), edge.to_key().to_owned(), values)
        })
        .collect()
}

/// The serial of an object as the IS join compares it.
fn serial(object: &Value) -> Option<String> {
    let serial = object.get("serialNumber")?.as_str()?.trim().to_uppercase();
    (!serial.is_empty()).then_some(serial)
}

/// The expected `system IS apple_device` pairs, computed independently of the
/// component: serials unique on both sides.
fn expected_links(org: &Organization) -> BTreeSet<(String, String)> {
    let index = |objects: Vec<Value>| {
        let mut by: HashMap<String, Vec<String>> = HashMap::new();
        for object in objects {
            if let Some(s) = serial(&object) {
                by.entry(s).or_default().push(object_id(&object).to_owned());
            }
        }
        by
    };
    let systems = index(org.systems().collect());
    let devices = index(org.apple_devices().collect());
    systems
        .iter()
        .filter_map(|(s, sys)| {
            let dev = devices.get(s)?;
            (sys.len() == 1 && dev.len() == 1).then(|| (sys[0].clone(), dev[0].clone()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_graph_is_exactly_what_the_simulator_served() {
    let run = run(Setup::generated(big_spec())).await;
    run.assert_success();
    let org = run.org();
    let account = org.id().to_owned();
    let users = ids(org.users());
    let groups = ids(org.groups());
    let systems: Vec<Value> = org.systems().collect();
    let system_ids = ids(systems.iter().cloned());

    // Entities, one per object, each hanging from the account.
    let mdm_ids = ids(org.apple_mdms());
    for (kind, edge, expected) in [
        (
            "jumpcloud_system",
            "jumpcloud_account_has_system",
            system_ids.clone(),
        ),
        (
            "jumpcloud_system_group",
            "jumpcloud_account_has_system_group",
            ids(org.system_groups()),
        ),
        (
            "jumpcloud_policy",
            "jumpcloud_account_has_policy",
            ids(org.policies()),
        ),
        (
            "jumpcloud_administrator",
            "jumpcloud_account_has_administrator",
            ids(org.administrators()),
        ),
        (
            "jumpcloud_apple_mdm",
            "jumpcloud_account_has_apple_mdm",
            mdm_ids.clone(),
        ),
    ] {
        assert!(!expected.is_empty(), "{kind}");
        assert_eq!(run.graph.entity_keys(kind), expected, "{kind}");
        let has: BTreeSet<(String, String)> = expected
            .iter()
            .map(|id| (account.clone(), id.clone()))
            .collect();
        assert_eq!(run.graph.edges(edge), has, "{edge}");
    }
    let mdm = mdm_ids.iter().next().unwrap().clone();
    let devices = ids(org.apple_devices());
    assert!(devices.len() > 100);
    assert_eq!(run.graph.entity_keys("jumpcloud_apple_device"), devices);
    assert_eq!(
        run.graph.edges("jumpcloud_apple_device_has_mdm"),
        devices.iter().map(|d| (d.clone(), mdm.clone())).collect()
    );

    // System group members: systems only, none deleted.
    let mut members = BTreeSet::new();
    let mut user_bindings = BTreeSet::new();
    let mut group_bindings = BTreeSet::new();
    for group in org.system_groups() {
        let id = object_id(&group).to_owned();
        for item in org
            .served_items(&format!("/api/v2/systemgroups/{id}/members"), None)
            .unwrap()
        {
            let target = item["to"]["id"].as_str().unwrap().to_owned();
            if item["to"]["type"] == "system" && system_ids.contains(&target) {
                members.insert((id.clone(), target));
            }
        }
        for (target, known, into) in [
            ("user", &users, &mut user_bindings),
            ("user_group", &groups, &mut group_bindings),
        ] {
            let path = format!("/api/v2/systemgroups/{id}/associations");
            for item in org.served_items(&path, Some(target)).unwrap() {
                let bound = item["to"]["id"].as_str().unwrap().to_owned();
                if known.contains(&bound) {
                    let sudo = flag(&item, "/attributes/sudo/enabled");
                    let nopass = sudo && flag(&item, "/attributes/sudo/withoutPassword");
                    into.insert((bound, id.clone(), vec![js(true), js(sudo), js(nopass)]));
                }
            }
        }
    }
    assert!(members.len() > 150);
    assert_eq!(
        run.graph.edges("jumpcloud_system_group_has_system"),
        members
    );
    let props = ["direct", "sudo", "passwordlessSudo"];
    assert!(user_bindings.len() > 100);
    assert_eq!(
        edges_with(&run, "jumpcloud_user_assigned_system_group", &props),
        user_bindings
    );
    assert!(!group_bindings.is_empty());
    assert_eq!(
        edges_with(&run, "jumpcloud_group_assigned_system_group", &props),
        group_bindings
    );

    // Who can log into which system, with which rights; which group grants it.
    let mut user_access = BTreeSet::new();
    let mut group_access = BTreeSet::new();
    let mut owners = BTreeSet::new();
    for system in &systems {
        let id = object_id(system).to_owned();
        if let Some(owner) = system
            .pointer("/primarySystemUser/id")
            .and_then(Value::as_str)
            && users.contains(owner)
        {
            owners.insert((owner.to_owned(), id.clone()));
        }
        for item in org
            .served_items(&format!("/api/v2/systems/{id}/users"), None)
            .unwrap()
        {
            let user = item["id"].as_str().unwrap().to_owned();
            if !users.contains(&user) {
                continue;
            }
            let paths = item["paths"].as_array().unwrap();
            let direct = paths.iter().any(|p| p.as_array().unwrap().len() == 1);
            let sudo = flag(&item, "/compiledAttributes/sudo/enabled");
            let nopass = sudo && flag(&item, "/compiledAttributes/sudo/withoutPassword");
            user_access.insert((user, id.clone(), vec![js(direct), js(sudo), js(nopass)]));
            for path in paths {
                let first = &path[0];
                if first["to"]["type"] == "user_group" {
                    let sudo = flag(first, "/attributes/sudo/enabled");
                    let nopass = sudo && flag(first, "/attributes/sudo/withoutPassword");
                    group_access.insert((
                        first["to"]["id"].as_str().unwrap().to_owned(),
                        id.clone(),
                        vec![js(true), js(sudo), js(nopass)],
                    ));
                }
            }
        }
    }
    assert!(user_access.iter().any(|(_, _, p)| p[1] == "true"));
    assert!(
        user_access.iter().any(|(_, _, p)| p[2] == "true"),
        "passwordless sudo somewhere"
    );
    assert!(
        user_access.iter().any(|(_, _, p)| p[0] == "false"),
        "access through groups"
    );
    assert_eq!(
        edges_with(&run, "jumpcloud_user_assigned_system", &props),
        user_access
    );
    assert_eq!(
        edges_with(&run, "jumpcloud_group_assigned_system", &props),
        group_access
    );
    assert!(!owners.is_empty());
    assert_eq!(run.graph.edges("jumpcloud_user_owns_system"), owners);
    // The empty user group bound to the jump host grants nothing, so it has no edge.
    let empty_group = org.group_id(org.group_count() - 1).unwrap();
    assert!(group_access.iter().all(|(g, _, _)| *g != empty_group));

    // Systems and Apple devices sharing a unique serial.
    let links = expected_links(&org);
    assert!(links.len() > 50);
    assert_eq!(run.graph.edges("jumpcloud_system_is_apple_device"), links);
    let shared = object_id(&systems[3]).to_owned();
    assert!(
        links.iter().all(|(s, _)| *s != shared),
        "a serial two devices share links nothing"
    );

    // Policies: every bound system with its latest status, every bound system group.
    let mut enforced = BTreeSet::new();
    let mut enforced_groups = BTreeSet::new();
    for policy in org.policies() {
        let id = object_id(&policy).to_owned();
        let mut latest: HashMap<String, Value> = HashMap::new();
        for status in org
            .served_items(&format!("/api/v2/policies/{id}/policystatuses"), None)
            .unwrap()
        {
            let system = status["systemID"].as_str().unwrap().to_owned();
            let key = |s: &Value| {
                (
                    s["endedAt"].as_str().map(str::to_owned),
                    s["startedAt"].as_str().map(str::to_owned),
                )
            };
            if latest
                .get(&system)
                .is_none_or(|held| key(&status) > key(held))
            {
                latest.insert(system, status);
            }
        }
        for item in org
            .served_items(&format!("/api/v2/policies/{id}/systems"), None)
            .unwrap()
        {
            let system = item["id"].as_str().unwrap().to_owned();
            let direct = item["paths"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p.as_array().unwrap().len() == 1);
            let status = latest.get(&system);
            let state = status.map_or(Value::Null, |s| {
                s["state"].as_str().unwrap().to_lowercase().into()
            });
            enforced.insert((id.clone(), system, vec![js(direct), js(state)]));
        }
        for item in org
            .served_items(
                &format!("/api/v2/policies/{id}/associations"),
                Some("system_group"),
            )
            .unwrap()
        {
            enforced_groups.insert((id.clone(), item["to"]["id"].as_str().unwrap().to_owned()));
        }
    }
    assert!(enforced.len() > 150);
    assert!(
        enforced.iter().any(|(_, _, p)| p[1] == "null"),
        "a system without status"
    );
    assert_eq!(
        edges_with(
            &run,
            "jumpcloud_policy_enforces_system",
            &["direct", "status"]
        ),
        enforced
    );
    assert_eq!(
        run.graph.edges("jumpcloud_policy_enforces_system_group"),
        enforced_groups
    );
    for edge in run
        .graph
        .relationships_of_type("jumpcloud_policy_enforces_system")
    {
        if edge.get("status").is_some() {
            assert!(
                edge.get("lastAppliedOn").is_some_and(Value::is_i64),
                "{}",
                edge.key()
            );
        }
        assert!(edge.get("stdOut").is_none());
    }

    // Administrators map to employees; the one sharing user 0's email takes its names.
    let admin_maps = run
        .graph
        .relationships_of_type("jumpcloud_administrator_is_person");
    let with_email = org
        .administrators()
        .filter(|a| a.get("email").is_some_and(|e| e != ""))
        .count();
    assert_eq!(admin_maps.len(), with_email);
    let user0 = org.user(0).unwrap();
    let email = user0["email"].as_str().unwrap().to_lowercase();
    let employee = run
        .graph
        .entity(&format!("employee:{email}"))
        .expect("user 0's employee");
    assert_eq!(employee.get("firstName"), user0.get("firstname"));

    // Paging: every long list was read past its first page, per-parent routes unsorted.
    let requests = run.requests();
    let long_lists = [
        "/api/systems",
        "/api/users",
        "/api/v2/systemgroups",
        "/api/v2/policies",
        &format!("/api/v2/applemdms/{mdm}/devices"),
        &format!(
            "/api/v2/systemgroups/{}/members",
            object_id(&org.system_groups().next().unwrap())
        ),
        &format!("/api/v2/systems/{}/users", object_id(&systems[0])),
        &format!(
            "/api/v2/policies/{}/systems",
            object_id(&org.policies().next().unwrap())
        ),
        &format!(
            "/api/v2/policies/{}/policystatuses",
            object_id(&org.policies().next().unwrap())
        ),
    ];
    for path in long_lists {
        let skips: BTreeSet<String> = requests
            .iter()
            .filter(|r| r.path == path)
            .filter_map(|r| r.query_param("skip"))
            .collect();
        assert!(skips.contains("100"), "{path}: {skips:?}");
    }
    for request in &requests {
        let sort = request.query_param("sort");
        let limit = request.query_param("limit");
        // `validate`'s one cheap request reads a single organization.
        let validation = request.path == "/api/organizations" && limit.as_deref() == Some("1");
        assert_eq!(
            limit.as_deref(),
            Some(if validation { "1" } else { "100" }),
            "{}",
            request.path
        );
        let expected = match request.path.as_str() {
            "/api/systems" | "/api/organizations" | "/api/systemusers" | "/api/applications" => {
                Some("_id")
            }
            "/api/v2/systemgroups" | "/api/v2/policies" | "/api/v2/usergroups" => Some("id"),
            path if path.ends_with("/devices") => Some("id"),
            _ => None,
        };
        assert_eq!(sort.as_deref(), expected, "{}", request.path);
    }
    assert_eq!(run.simulator.never_called(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_deleted_mid_run_are_skipped_and_counted() {
    let spec = TenantSpec {
        users: 60,
        groups: 5,
        applications: 2,
        ..TenantSpec::default()
    };
    let probe = jumpcloud_simulator::Tenant::generate(&spec);
    let org = &probe.organizations()[0];
    let system = object_id(&org.systems().nth(4).unwrap()).to_owned();
    let group = object_id(&org.system_groups().nth(2).unwrap()).to_owned();
    let policy = object_id(&org.policies().nth(1).unwrap()).to_owned();
    // Each parent "vanishes" between the list that named it and its own list.
    let gone = |path: String| FaultRule::new(Fault::ServerError(404)).with_path_prefix(path);
    let faults = vec![
        gone(format!("/api/v2/systems/{system}/users")),
        gone(format!("/api/v2/systemgroups/{group}/members")),
        gone(format!("/api/v2/policies/{policy}/systems")),
    ];
    let run = run(Setup::generated(spec).with_faults(faults)).await;
    run.assert_success();
    for (step, at_least) in [
        ("fetch-system-users", 1 + 2),
        ("fetch-system-group-members", 1 + 1),
        ("fetch-policy-assignments", 1 + 1),
    ] {
        // The vanished parent, plus the dangling ids the tenant holds (a deleted user
        // bound to a system and owning another; a deleted system in "All Systems"; a
        // status of a deleted system).
        assert!(
            run.step(step).skipped_records >= at_least,
            "{step}: {}",
            run.step(step).skipped_records
        );
    }
    let gone_requests = run
        .requests()
        .iter()
        .filter(|r| r.status == Some(404))
        .count();
    assert_eq!(gone_requests, 3, "a 404 is not retried");
    assert!(
        run.graph
            .relationships_of_type("jumpcloud_user_assigned_system")
            .iter()
            .all(|e| e.to_key() != system)
    );
    assert!(
        run.graph.entity(&system).is_some(),
        "the system itself was collected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_of_several_organizations_are_one_entity_with_a_has_each() {
    let spec = TenantSpec {
        organizations: 2,
        users: 40,
        groups: 4,
        applications: 2,
        ..TenantSpec::default()
    };
    let run = run(Setup::generated(spec)).await;
    run.assert_success();
    let tenant = run.simulator.tenant();
    let [a, b] = tenant.organizations() else {
        panic!("two organizations")
    };
    let (ids_a, ids_b) = (ids(a.administrators()), ids(b.administrators()));
    let shared: BTreeSet<String> = ids_a.intersection(&ids_b).cloned().collect();
    assert_eq!(shared.len(), 2);
    let all: BTreeSet<String> = ids_a.union(&ids_b).cloned().collect();
    assert_eq!(run.graph.entity_keys("jumpcloud_administrator"), all);
    let has = run.graph.edges("jumpcloud_account_has_administrator");
    for admin in &shared {
        let from: BTreeSet<&str> = has
            .iter()
            .filter(|(_, to)| to == admin)
            .map(|(f, _)| f.as_str())
            .collect();
        assert_eq!(from, BTreeSet::from([a.id(), b.id()]), "{admin}");
        let maps = run
            .graph
            .relationships_of_type("jumpcloud_administrator_is_person")
            .into_iter()
            .filter(|e| e.from_key() == admin)
            .count();
        assert_eq!(maps, 1, "{admin}");
    }
    assert_eq!(has.len(), ids_a.len() + ids_b.len());
    // Nothing links across organizations: every system edge joins objects of one org.
    let owner: BTreeMap<String, &str> = [a, b]
        .into_iter()
        .flat_map(|org| {
            org.users()
                .chain(org.groups())
                .chain(org.systems())
                .chain(org.system_groups())
                .chain(org.policies())
                .map(move |o| (object_id(&o).to_owned(), org.id()))
        })
        .collect();
    for kind in [
        "jumpcloud_user_assigned_system",
        "jumpcloud_group_assigned_system",
        "jumpcloud_user_owns_system",
        "jumpcloud_system_group_has_system",
        "jumpcloud_user_assigned_system_group",
        "jumpcloud_group_assigned_system_group",
        "jumpcloud_policy_enforces_system",
        "jumpcloud_policy_enforces_system_group",
    ] {
        let edges = run.graph.relationships_of_type(kind);
        assert!(!edges.is_empty(), "{kind}");
        for edge in edges {
            assert_eq!(
                owner.get(edge.from_key()),
                owner.get(edge.to_key()),
                "{}",
                edge.key()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_on_administrators_fails_that_step_only_and_says_why() {
    let spec = TenantSpec {
        users: 40,
        groups: 4,
        applications: 2,
        ..TenantSpec::default()
    };
    let forbidden = FaultRule::new(Fault::Forbidden).with_path_prefix("/api/users");
    let run = run(Setup::generated(spec).with_faults(vec![forbidden])).await;
    assert_eq!(run.summary.exit_code(), 1);
    for step in &run.summary.integration_step_results {
        let expected = if step.id == "fetch-administrators" {
            "Failure"
        } else {
            "Success"
        };
        assert_eq!(format!("{:?}", step.status), expected, "{}", step.id);
    }
    let error = run
        .step("fetch-administrators")
        .error
        .as_ref()
        .expect("an error");
    assert_eq!(error.kind, "authorization");
    assert!(error.message.contains("/api/users"), "{}", error.message);
    assert!(
        error.message.contains("only fetch-administrators"),
        "{}",
        error.message
    );
    let partial: BTreeSet<&str> = run
        .summary
        .metadata
        .partial_datasets
        .types
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        partial,
        BTreeSet::from([
            "jumpcloud_administrator",
            "jumpcloud_account_has_administrator",
            "jumpcloud_administrator_is_person",
        ])
    );
    assert!(!run.graph.entity_keys("jumpcloud_system").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_lists_give_no_entities_and_the_steps_succeed() {
    let spec = TenantSpec {
        users: 30,
        groups: 3,
        applications: 2,
        systems: Some(0),
        system_groups: Some(0),
        policies: 0,
        administrators: 0,
        apple_mdm: false,
        ..TenantSpec::default()
    };
    let run = run(Setup::generated(spec)).await;
    run.assert_success();
    for kind in [
        "jumpcloud_system",
        "jumpcloud_system_group",
        "jumpcloud_policy",
        "jumpcloud_administrator",
        "jumpcloud_apple_mdm",
        "jumpcloud_apple_device",
    ] {
        assert!(run.graph.entity_keys(kind).is_empty(), "{kind}");
    }
    assert_eq!(run.graph.entity_keys("jumpcloud_user").len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorded_mdm_and_mac_link_to_the_account_that_listed_them() {
    let run = run(Setup::recorded()).await;
    run.assert_success();
    let account = run.org().id().to_owned();
    let mdm = "6516cf109f533600018db6e7";
    let mac = "6516e83947496b0001ae196f";
    assert_eq!(
        run.graph.edges("jumpcloud_account_has_apple_mdm"),
        BTreeSet::from([(account, mdm.to_owned())])
    );
    assert_eq!(
        run.graph.edges("jumpcloud_apple_device_has_mdm"),
        BTreeSet::from([(mac.to_owned(), mdm.to_owned())])
    );
    let entity = run.graph.entity(mac).unwrap();
    assert_eq!(entity.get("osDetails"), Some(&Value::from("macOS 13.5.1")));
    assert_eq!(
        entity.get("deviceId"),
        Some(&serde_json::json!(["00000000-1111-2222-3333-444444444444"]))
    );
    assert_eq!(
        run.graph.entity(mdm).unwrap().get("name"),
        Some(&Value::from("Apple MDM"))
    );
}

//! The rest of the directory over real loopback HTTP: systems, system groups and their
//! members and bindings, system users, policies and statuses, administrators, Apple MDM
//! and devices; envelopes, paging past 100, the never-call routes and the recorded MDM.

mod support;

use std::collections::BTreeSet;

use jumpcloud_simulator::{Dataset, Simulator, SimulatorConfig, TenantSpec};
use serde_json::Value;
use support::{Client, ids, start};

fn spec() -> TenantSpec {
    TenantSpec {
        users: 220,
        groups: 8,
        system_groups: Some(110),
        policies: 105,
        administrators: 104,
        ..TenantSpec::default()
    }
}

#[tokio::test]
async fn every_list_pages_past_100_with_the_right_envelope() {
    let sim = start(spec()).await;
    let client = Client::new(&sim);
    let tenant = sim.tenant();
    let org = &tenant.organizations()[0];

    // v1 lists: `{totalCount, results}`, no header.
    for (path, expected) in [
        ("/api/systems", ids(&org.systems().collect::<Vec<_>>())),
        ("/api/users", ids(&org.administrators().collect::<Vec<_>>())),
    ] {
        let page = client.get(&format!("{path}?limit=100&skip=0")).await;
        assert_eq!(page.header("x-total-count"), None, "{path}");
        assert!(page.json()["totalCount"].is_number(), "{path}");
        let (items, totals) = client.all(path, "&sort=_id").await;
        assert!(items.len() > 100, "{path}: {}", items.len());
        assert_eq!(ids(&items), expected, "{path}");
        assert!(totals.iter().all(|&t| t == expected.len()), "{path}");
    }
    assert_eq!(org.system_count(), 264, "1.2 systems per user");

    // v2 lists: bare arrays with `x-total-count`.
    let mdm = org.apple_mdms().next().expect("an MDM")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (path, expected) in [
        (
            "/api/v2/systemgroups".to_owned(),
            ids(&org.system_groups().collect::<Vec<_>>()),
        ),
        (
            "/api/v2/policies".to_owned(),
            ids(&org.policies().collect::<Vec<_>>()),
        ),
        (
            format!("/api/v2/applemdms/{mdm}/devices"),
            ids(&org.apple_devices().collect::<Vec<_>>()),
        ),
    ] {
        let (items, totals) = client.all(&path, "&sort=id").await;
        assert!(items.len() > 100, "{path}: {}", items.len());
        assert_eq!(ids(&items), expected, "{path}");
        assert!(totals.iter().all(|&t| t == expected.len()), "{path}");
    }
    // Per-parent lists longer than a page.
    let systems: Vec<Value> = org.systems().collect();
    let groups: Vec<Value> = org.system_groups().collect();
    let policies: Vec<Value> = org.policies().collect();
    let (all_systems, jump_hosts) = (id_of(&groups[0]), id_of(&groups[1]));
    for (path, target) in [
        (format!("/api/v2/systemgroups/{all_systems}/members"), None),
        (
            format!("/api/v2/systemgroups/{jump_hosts}/associations"),
            Some("user"),
        ),
        (
            format!("/api/v2/systems/{}/users", id_of(&systems[0])),
            None,
        ),
        (
            format!("/api/v2/policies/{}/systems", id_of(&policies[0])),
            None,
        ),
        (
            format!("/api/v2/policies/{}/policystatuses", id_of(&policies[0])),
            None,
        ),
    ] {
        let extra = target.map_or(String::new(), |t| format!("&targets={t}"));
        let (items, _) = client.all(&path, &extra).await;
        assert!(items.len() > 100, "{path}: {}", items.len());
        assert_eq!(Some(items), org.served_items(&path, target), "{path}");
    }
}

fn id_of(object: &Value) -> String {
    object
        .get("id")
        .or_else(|| object.get("_id"))
        .and_then(Value::as_str)
        .expect("an id")
        .to_owned()
}

#[tokio::test]
async fn apple_mdms_default_to_one_item_a_page() {
    let sim = start(TenantSpec::default()).await;
    let client = Client::new(&sim);
    let page = client.get("/api/v2/applemdms").await;
    assert_eq!(page.total_count(), Some(1));
    assert_eq!(page.json().as_array().map(Vec::len), Some(1));
    let none = start(TenantSpec {
        apple_mdm: false,
        systems: Some(0),
        policies: 0,
        administrators: 0,
        system_groups: Some(0),
        ..TenantSpec::default()
    })
    .await;
    let client = Client::new(&none);
    for path in [
        "/api/v2/applemdms",
        "/api/v2/systemgroups",
        "/api/v2/policies",
    ] {
        let page = client.get(&format!("{path}?limit=100")).await;
        assert_eq!(page.json(), Value::Array(vec![]), "{path}");
        assert_eq!(page.total_count(), Some(0), "{path}");
    }
    let systems = client.get("/api/systems?limit=100").await.json();
    assert_eq!(systems["totalCount"], 0);
}

#[tokio::test]
async fn associations_need_one_target_and_unknown_parents_are_404() {
    let sim = start(TenantSpec::default()).await;
    let client = Client::new(&sim);
    let tenant = sim.tenant();
    let org = &tenant.organizations()[0];
    let group = id_of(&org.system_groups().next().unwrap());
    let missing = client
        .get(&format!("/api/v2/systemgroups/{group}/associations"))
        .await;
    assert_eq!(missing.status, 400);
    for path in [
        "/api/v2/systemgroups/000000000000000000000000/members",
        "/api/v2/systems/000000000000000000000000/users",
        "/api/v2/policies/000000000000000000000000/systems",
        "/api/v2/policies/000000000000000000000000/policystatuses",
        "/api/v2/applemdms/000000000000000000000000/devices",
    ] {
        let reply = client.get(path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.json()["status"], "NOT_FOUND");
    }
}

#[tokio::test]
async fn never_call_routes_are_served_counted_and_hold_marked_secrets() {
    let sim = start(TenantSpec::default()).await;
    let client = Client::new(&sim);
    let tenant = sim.tenant();
    let org = &tenant.organizations()[0];
    let system = id_of(&org.systems().next().unwrap());
    let policy = id_of(&org.policies().next().unwrap());
    assert!(sim.never_called().is_empty());
    let fde = client
        .get(&format!("/api/v2/systems/{system}/fdekey"))
        .await;
    assert_eq!(fde.status, 200);
    assert!(String::from_utf8_lossy(&fde.body).contains(jumpcloud_simulator::FAKE_SECRET_MARKER));
    let detail = client.get(&format!("/api/v2/policies/{policy}")).await;
    assert!(
        detail.json()["values"][0]["value"]
            .as_str()
            .unwrap()
            .contains(jumpcloud_simulator::FAKE_SECRET_MARKER)
    );
    let results = client.get("/api/v2/policyresults?limit=100").await;
    assert!(results.json().as_array().is_some_and(|r| !r.is_empty()));
    assert_eq!(
        sim.never_called(),
        [
            format!("/api/v2/systems/{system}/fdekey"),
            format!("/api/v2/policies/{policy}"),
            "/api/v2/policyresults".to_owned(),
        ]
    );
    // The routes an integration does read are not on that list.
    client
        .get(&format!("/api/v2/policies/{policy}/policystatuses"))
        .await;
    assert_eq!(sim.never_called().len(), 3);
}

#[tokio::test]
async fn seeded_secrets_and_edge_cases_are_where_documented() {
    let sim = start(TenantSpec::default()).await;
    let tenant = sim.tenant();
    let org = &tenant.organizations()[0];
    let systems: Vec<Value> = org.systems().collect();
    assert!(systems.iter().all(|s| {
        s["remoteIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("198.51.100."))
            || s.get("remoteIP").is_none()
    }));
    assert!(systems[1].get("id").is_none() && systems[1].get("hostname").is_none());
    assert!(systems[1]["lastContact"].is_null());
    assert_eq!(systems[2]["hostname"], "Ada's MacBook");
    assert_eq!(systems[6]["serialNumber"], systems[9]["serialNumber"]);
    let admins: Vec<Value> = org.administrators().collect();
    assert!(admins.iter().all(|a| {
        a["apiKeyHash"]["prefix"]
            .as_str()
            .unwrap()
            .contains(jumpcloud_simulator::FAKE_SECRET_MARKER)
    }));
    assert!(admins[2].get("email").is_none());
    let user0 = org.user(0).unwrap();
    assert_eq!(
        admins[0]["email"].as_str().unwrap().to_lowercase(),
        user0["email"].as_str().unwrap().to_lowercase()
    );
    // Statuses carry stdOut with the marker.
    let policy = id_of(&org.policies().next().unwrap());
    let statuses = org
        .served_items(&format!("/api/v2/policies/{policy}/policystatuses"), None)
        .unwrap();
    assert!(statuses.iter().all(|s| {
        s["stdOut"]
            .as_str()
            .unwrap()
            .contains(jumpcloud_simulator::FAKE_SECRET_MARKER)
    }));
    // Who may sudo where: the jump host is reached by more than a page of users, some
    // with sudo; a Mac's owner is bound directly.
    let jump = org.system_users(&id_of(&systems[0])).unwrap();
    assert!(jump.len() > 100);
    assert!(jump.iter().any(|b| b.sudo.0));
    assert!(jump.iter().any(|b| !b.via_groups.is_empty()));
    let mac_owner = systems[3]["primarySystemUser"]["id"].as_str().unwrap();
    let mac = org.system_users(&id_of(&systems[3])).unwrap();
    assert!(mac.iter().any(|b| b.user_id == mac_owner && b.direct));
}

#[tokio::test]
async fn administrators_shared_by_organizations_keep_their_id() {
    let sim = start(TenantSpec {
        organizations: 2,
        ..TenantSpec::default()
    })
    .await;
    let tenant = sim.tenant();
    let [a, b] = tenant.organizations() else {
        panic!("two organizations")
    };
    let ids_a: BTreeSet<String> = ids(&a.administrators().collect::<Vec<_>>())
        .into_iter()
        .collect();
    let ids_b: BTreeSet<String> = ids(&b.administrators().collect::<Vec<_>>())
        .into_iter()
        .collect();
    assert_eq!(ids_a.intersection(&ids_b).count(), 2);
    assert_eq!(ids_a.len(), 6);
}

#[tokio::test]
async fn the_recorded_mdm_and_device_are_served() {
    let sim = Simulator::start(SimulatorConfig {
        dataset: Dataset::Recorded,
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let client = Client::new(&sim);
    let (mdms, _) = client.all("/api/v2/applemdms", "").await;
    assert_eq!(ids(&mdms), ["6516cf109f533600018db6e7"]);
    let (devices, _) = client
        .all("/api/v2/applemdms/6516cf109f533600018db6e7/devices", "")
        .await;
    assert_eq!(ids(&devices), ["6516e83947496b0001ae196f"]);
    assert_eq!(devices[0]["securityInfo"], serde_json::json!({}));
    let (systems, _) = client.all("/api/systems", "").await;
    assert!(systems.is_empty());
}

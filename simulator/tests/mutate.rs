//! Mutations of a running simulator: what the report says changed is exactly what the
//! API serves differently afterwards, the choices are deterministic, and the HTTP
//! endpoint does the same as the Rust API.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use jumpcloud_simulator::{
    Dataset, Mutation, MutationError, Simulator, SimulatorConfig, TenantSpec,
};
use serde_json::Value;
use support::{Client, raw, start};

/// Everything the API serves for one organization: users, groups, members per group
/// and application users per application, by id.
#[derive(Debug, PartialEq)]
struct Served {
    users: BTreeMap<String, Value>,
    groups: BTreeSet<String>,
    members: BTreeMap<String, BTreeSet<String>>,
    app_users: BTreeMap<String, BTreeMap<String, bool>>,
}

async fn served(client: &Client) -> Served {
    let (users, _) = client.all("/api/systemusers", "&sort=_id").await;
    let users: BTreeMap<String, Value> = users
        .into_iter()
        .map(|u| (u["_id"].as_str().unwrap().to_owned(), u))
        .collect();
    let (groups, _) = client.all("/api/v2/usergroups", "").await;
    let mut members = BTreeMap::new();
    let mut group_ids = BTreeSet::new();
    for group in groups {
        let id = group["id"].as_str().unwrap().to_owned();
        let (items, _) = client
            .all(&format!("/api/v2/usergroups/{id}/members"), "")
            .await;
        let ids = items
            .iter()
            .map(|m| m["to"]["id"].as_str().unwrap().to_owned())
            .collect();
        members.insert(id.clone(), ids);
        group_ids.insert(id);
    }
    let (apps, _) = client.all("/api/applications", "").await;
    let mut app_users = BTreeMap::new();
    for app in apps {
        let id = app["_id"].as_str().unwrap().to_owned();
        let (items, _) = client
            .all(&format!("/api/v2/applications/{id}/users"), "")
            .await;
        let users = items
            .iter()
            .map(|item| {
                let direct = item["paths"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p.as_array().unwrap().len() == 1);
                (item["id"].as_str().unwrap().to_owned(), direct)
            })
            .collect();
        app_users.insert(id, users);
    }
    Served {
        users,
        groups: group_ids,
        members,
        app_users,
    }
}

fn spec() -> TenantSpec {
    TenantSpec {
        users: 160,
        groups: 10,
        applications: 6,
        ..TenantSpec::default()
    }
}

#[tokio::test]
async fn the_standard_mutation_changes_exactly_what_it_reports() {
    let sim = start(spec()).await;
    let client = Client::new(&sim);
    let before = served(&client).await;
    let before_systems: BTreeMap<String, Value> = sim.tenant().organizations()[0]
        .systems()
        .map(|s| (s["_id"].as_str().unwrap().to_owned(), s))
        .collect();
    let report = sim
        .apply_mutation(Mutation::Standard)
        .expect("a generated tenant mutates");
    let after = served(&client).await;

    assert_eq!(report.generation, 1);
    assert_eq!(report.organization_id, sim.tenant().organizations()[0].id());
    assert_eq!(report.suspended_users.len(), 1);
    assert_eq!(report.added_users.len(), 1);
    assert_eq!(report.removed_members.len(), 1);
    assert_eq!(report.deleted_groups.len(), 1);
    assert_eq!(report.added_assignments.len(), 1);
    assert_eq!(report.unencrypted_systems.len(), 1);

    // Users: one suspended (it was active), one added without MFA; the rest as before.
    let suspended = &report.suspended_users[0];
    let was = &before.users[suspended];
    assert_eq!(was["state"], "ACTIVATED");
    assert_eq!(was["suspended"], false);
    let now = &after.users[suspended];
    assert_eq!(now["state"], "SUSPENDED");
    assert_eq!(now["suspended"], true);
    let added = &report.added_users[0];
    assert!(!before.users.contains_key(&added.id));
    let new_user = &after.users[&added.id];
    assert_eq!(new_user["email"], added.email.as_str());
    assert_eq!(added.employee_key, format!("employee:{}", added.email));
    assert_eq!(added.email, added.email.to_lowercase());
    assert_eq!(new_user["mfa"]["configured"], false);
    assert_eq!(new_user["totp_enabled"], false);
    assert_eq!(new_user["mfaEnrollment"]["overallStatus"], "NOT_ENROLLED");
    assert_eq!(new_user["state"], "ACTIVATED");
    assert_eq!(
        after.users.keys().last(),
        Some(&added.id),
        "its id sorts last"
    );
    for (id, user) in &before.users {
        if id != suspended {
            assert_eq!(&after.users[id], user, "user {id} unchanged");
        }
    }
    assert_eq!(after.users.len(), before.users.len() + 1);

    // Groups: one deleted with its members; one member removed elsewhere.
    let deleted = &report.deleted_groups[0];
    assert!(before.groups.contains(&deleted.id));
    assert!(!after.groups.contains(&deleted.id));
    assert_eq!(
        before.members[&deleted.id],
        deleted.member_ids.iter().cloned().collect()
    );
    let path = format!("/api/v2/usergroups/{}/members", deleted.id);
    assert_eq!(
        client.get(&path).await.status,
        404,
        "a deleted group's members"
    );
    let removed = &report.removed_members[0];
    assert_ne!(removed.group_id, deleted.id);
    let mut expected_members = before.members.clone();
    expected_members.remove(&deleted.id);
    assert!(
        expected_members
            .get_mut(&removed.group_id)
            .unwrap()
            .remove(&removed.user_id)
    );
    assert_eq!(after.members, expected_members);

    // Applications: exactly one new direct binding, no other access changed.
    let assignment = &report.added_assignments[0];
    let mut expected_apps = before.app_users.clone();
    let users = expected_apps.get_mut(&assignment.application_id).unwrap();
    assert_eq!(users.insert(assignment.user_id.clone(), true), None);
    assert_eq!(after.app_users, expected_apps);

    // One encrypted Windows system lost its encryption; no other system changed.
    let unencrypted = &report.unencrypted_systems[0];
    let tenant = sim.tenant();
    let after_systems: BTreeMap<String, Value> = tenant.organizations()[0]
        .systems()
        .map(|s| (s["_id"].as_str().unwrap().to_owned(), s))
        .collect();
    for (id, system) in &before_systems {
        if id == unencrypted {
            assert_eq!(system["osFamily"], "windows");
            assert_eq!(system["fde"]["active"], true);
            assert_eq!(after_systems[id]["fde"]["active"], false);
        } else {
            assert_eq!(&after_systems[id], system, "system {id} unchanged");
        }
    }

    // Four different users are involved.
    let involved: BTreeSet<&String> = [suspended, &added.id, &removed.user_id, &assignment.user_id]
        .into_iter()
        .collect();
    assert_eq!(involved.len(), 4);
}

#[tokio::test]
async fn mutations_are_deterministic_and_cumulative() {
    let a = start(spec()).await;
    let b = start(spec()).await;
    let first_a = a.apply_mutation(Mutation::Standard).unwrap();
    let first_b = b.apply_mutation(Mutation::Standard).unwrap();
    assert_eq!(first_a, first_b, "same tenant, same change");
    let second = a.apply_mutation(Mutation::Standard).unwrap();
    assert_eq!(second.generation, 2);
    assert_ne!(second.suspended_users, first_a.suspended_users);
    assert_ne!(second.added_users, first_a.added_users);
    assert_ne!(second.deleted_groups, first_a.deleted_groups);
    // The first mutation's changes are still there.
    let tenant = a.tenant();
    let org = &tenant.organizations()[0];
    let users: BTreeMap<String, Value> = org
        .users()
        .map(|u| (u["_id"].as_str().unwrap().to_owned(), u))
        .collect();
    assert_eq!(users[&first_a.suspended_users[0]]["suspended"], true);
    assert!(users.contains_key(&first_a.added_users[0].id));
    assert!(users.contains_key(&second.added_users[0].id));
    assert_eq!(org.user_count(), 162);
    let group_ids: BTreeSet<String> = org
        .groups()
        .map(|g| g["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!group_ids.contains(&first_a.deleted_groups[0].id));
    assert!(!group_ids.contains(&second.deleted_groups[0].id));
    assert_eq!(org.group_count(), 8);
}

#[tokio::test]
async fn a_snapshot_taken_before_a_mutation_stays_as_it_was() {
    let sim = start(spec()).await;
    let before = sim.tenant();
    let report = sim.apply_mutation(Mutation::Standard).unwrap();
    assert_eq!(before.organizations()[0].user_count(), 160);
    assert_eq!(sim.tenant().organizations()[0].user_count(), 161);
    assert!(
        before.organizations()[0]
            .users()
            .all(|u| u["_id"] != report.added_users[0].id.as_str())
    );
}

#[tokio::test]
async fn retitling_changes_one_user_in_a_hundred_and_nothing_else() {
    let sim = start(TenantSpec {
        users: 1000,
        ..spec()
    })
    .await;
    let before: Vec<Value> = sim.tenant().organizations()[0].users().collect();
    let report = sim
        .apply_mutation(Mutation::RetitleUsers { percent: 1 })
        .unwrap();
    assert_eq!(report.retitled_users.len(), 10);
    let after: Vec<Value> = sim.tenant().organizations()[0].users().collect();
    assert_eq!(before.len(), after.len());
    let mut changed = Vec::new();
    for (old, new) in before.iter().zip(&after) {
        if old != new {
            let mut unchanged = new.clone();
            unchanged["jobTitle"] = old["jobTitle"].clone();
            assert_eq!(&unchanged, old, "only jobTitle changes");
            changed.push(new["_id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(changed, report.retitled_users);
}

#[tokio::test]
async fn the_http_endpoint_applies_a_mutation_and_answers_its_report() {
    let sim = start(spec()).await;
    let key = sim.api_key().to_owned();
    let addr = sim.local_addr();
    let headers = [("x-api-key", key.as_str()), ("content-length", "0")];

    let reply = raw(addr, "POST", "/_sim/mutate?mutation=standard", &headers)
        .await
        .unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    assert_eq!(body["generation"], 1);
    let added = body["addedUsers"][0]["id"].as_str().unwrap().to_owned();
    assert!(
        sim.tenant().organizations()[0]
            .users()
            .any(|u| u["_id"] == added.as_str())
    );
    // Same change as the Rust API would have made on a fresh simulator.
    let twin = start(spec()).await;
    assert_eq!(
        twin.apply_mutation(Mutation::Standard).unwrap().to_json(),
        body
    );
    assert!(
        sim.requests().is_empty(),
        "admin calls are not API requests"
    );

    let wrong_key = raw(addr, "POST", "/_sim/mutate", &[("content-length", "0")])
        .await
        .unwrap();
    assert_eq!(wrong_key.status, 401);
    let get = raw(addr, "GET", "/_sim/mutate", &headers).await.unwrap();
    assert_eq!(get.status, 405);
    let unknown = raw(addr, "POST", "/_sim/mutate?mutation=chaos", &headers)
        .await
        .unwrap();
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.json()["message"]
            .as_str()
            .unwrap()
            .contains("unknown mutation")
    );
}

#[tokio::test]
async fn the_recorded_tenant_does_not_mutate() {
    let sim = Simulator::start(SimulatorConfig {
        dataset: Dataset::Recorded,
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(
        sim.apply_mutation(Mutation::Standard),
        Err(MutationError::NotGenerated)
    );
    assert_eq!(
        Mutation::parse("retitle-users:5"),
        Ok(Mutation::RetitleUsers { percent: 5 })
    );
    assert!(Mutation::parse("retitle-users:0").is_err());
}

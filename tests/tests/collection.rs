//! What a fault-free run collects, checked object by object against the simulator's
//! own data: users and paging, group members, the employee mapping, application
//! assignments, several organizations, and the recorded JumpCloud answers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use integration_tests::{
    GraphObject, Run, Setup, expected_employee_email, object_id, run, small_spec,
};
use jumpcloud_simulator::{FAKE_SECRET_MARKER, RecordedRequest, TenantSpec};
use serde_json::Value;

/// The decoded query parameter, which must be present.
fn param(request: &RecordedRequest, name: &str) -> String {
    request
        .query_param(name)
        .unwrap_or_else(|| panic!("{} {:?} has no {name}", request.path, request.query))
}

/// The `direct` property of an ASSIGNED edge.
fn direct(edge: &GraphObject) -> bool {
    edge.get("direct")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| panic!("{} has no boolean `direct`", edge.key()))
}

/// `(from, to, direct)` of the relationships of a `_type`.
fn assigned(run: &Run, relationship_type: &str) -> BTreeSet<(String, String, bool)> {
    run.graph
        .relationships_of_type(relationship_type)
        .into_iter()
        .map(|edge| {
            (
                edge.from_key().to_owned(),
                edge.to_key().to_owned(),
                direct(edge),
            )
        })
        .collect()
}

/// Every simulator user is one `jumpcloud_user` keyed by its id, each with an account
/// HAS edge; users are read 100 at a time (skip 0, 100, 200) sorted by `_id`, and every
/// request carries the API key and JSON accept/content-type headers, while
/// `/api/organizations` is asked without `x-org-id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_across_three_pages_become_one_entity_each_under_the_account() {
    let run = run(Setup::generated(small_spec(250, 4, 3))).await;
    run.assert_success();
    let org = run.org();

    let expected: BTreeSet<String> = org.users().map(|u| object_id(&u).to_owned()).collect();
    assert_eq!(
        expected.len(),
        250,
        "the simulator serves 250 distinct users"
    );
    let users = run.graph.entities_of_type("jumpcloud_user");
    assert_eq!(users.len(), 250, "one entity per user, none twice");
    assert_eq!(run.graph.entity_keys("jumpcloud_user"), expected);
    for user in &users {
        assert_eq!(user.str("id"), user.key());
        assert_eq!(user.step, "fetch-users");
    }
    assert_eq!(
        run.step("fetch-users").encountered_type_counts["jumpcloud_user"],
        250
    );

    assert_eq!(
        run.graph.entity_keys("jumpcloud_account"),
        BTreeSet::from([org.id().to_owned()])
    );
    let expected_edges: BTreeSet<(String, String)> = expected
        .iter()
        .map(|id| (org.id().to_owned(), id.clone()))
        .collect();
    assert_eq!(
        run.graph.edges("jumpcloud_account_has_user"),
        expected_edges
    );
    for edge in run
        .graph
        .relationships_of_type("jumpcloud_account_has_user")
    {
        assert_eq!(
            edge.key(),
            format!("{}|has|{}", edge.from_key(), edge.to_key())
        );
        assert_eq!(edge.classes(), ["HAS"]);
    }

    let requests = run.requests();
    let user_pages: Vec<&RecordedRequest> = requests
        .iter()
        .filter(|r| r.path == "/api/systemusers")
        .collect();
    let mut skips: Vec<u64> = user_pages
        .iter()
        .map(|r| param(r, "skip").parse().expect("skip is a number"))
        .collect();
    skips.sort_unstable();
    assert_eq!(skips, [0, 100, 200], "three pages, each asked once");
    for page in &user_pages {
        assert_eq!(param(page, "limit"), "100");
        assert_eq!(param(page, "sort"), "_id");
        assert_eq!(page.status, Some(200));
    }
    for request in &requests {
        assert_eq!(request.method, "GET", "{}", request.path);
        assert!(request.api_key_valid, "{} without the key", request.path);
        assert_eq!(
            request.accept.as_deref(),
            Some("application/json"),
            "{}",
            request.path
        );
        assert_eq!(
            request.content_type.as_deref(),
            Some("application/json"),
            "{}",
            request.path
        );
    }
    let org_requests: Vec<&RecordedRequest> = requests
        .iter()
        .filter(|r| r.path == "/api/organizations")
        .collect();
    assert!(!org_requests.is_empty(), "the organizations were asked for");
    for request in org_requests {
        assert_eq!(request.org_id, None, "x-org-id sent to /api/organizations");
        assert_eq!(request.status, Some(200));
    }
}

/// Group 0 with more than 100 members gets an edge for every member that is a user;
/// the empty group is an entity without edges; the dangling member ids produce no edge
/// and are counted in `droppedRelationships` of fetch-group-members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_are_complete_across_pages_and_dangling_ids_are_dropped() {
    let spec = TenantSpec {
        dangling_members: 2,
        ..small_spec(120, 4, 3)
    };
    let run = run(Setup::generated(spec)).await;
    run.assert_success();
    let org = run.org();
    let user_ids: BTreeSet<String> = org.users().map(|u| object_id(&u).to_owned()).collect();
    let dangling: BTreeSet<String> = org.dangling_member_ids().iter().cloned().collect();
    assert_eq!(dangling.len(), 2);

    let group_ids: Vec<String> = org.groups().map(|g| object_id(&g).to_owned()).collect();
    assert_eq!(
        run.graph.entity_keys("jumpcloud_group"),
        group_ids.iter().cloned().collect::<BTreeSet<_>>()
    );
    let mut expected = BTreeSet::new();
    let mut members_by_group: HashMap<&str, Vec<String>> = HashMap::new();
    for group_id in &group_ids {
        let members = org.group_members(group_id).expect("a served group");
        for member in &members {
            if user_ids.contains(member) {
                expected.insert((group_id.clone(), member.clone()));
            } else {
                assert!(
                    dangling.contains(member),
                    "{member} is neither user nor dangling"
                );
            }
        }
        members_by_group.insert(group_id, members);
    }
    let edges = run.graph.edges("jumpcloud_group_has_user");
    assert_eq!(edges, expected);

    let big = &group_ids[0];
    assert!(
        members_by_group[big.as_str()].len() > 100,
        "group 0 spans two pages of members"
    );
    let big_edges = edges.iter().filter(|(from, _)| from == big).count();
    assert_eq!(
        big_edges,
        members_by_group[big.as_str()].len() - dangling.len()
    );

    let empty = group_ids.last().expect("groups");
    assert!(members_by_group[empty.as_str()].is_empty());
    assert!(run.graph.entity(empty).is_some(), "the empty group exists");
    assert!(
        edges.iter().all(|(from, _)| from != empty),
        "the empty group has no member edges"
    );

    for id in &dangling {
        assert!(run.graph.entity(id).is_none());
        assert!(
            run.graph
                .relationships
                .iter()
                .all(|r| r.to_key() != id && r.from_key() != id),
            "an edge to the dangling member {id}"
        );
    }
    let step = run.step_json("fetch-group-members");
    assert_eq!(step["droppedRelationships"], dangling.len());
    assert_eq!(
        run.step("fetch-group-members").dropped_relationships,
        dangling.len() as u64
    );
    let member_pages = run
        .requests()
        .iter()
        .filter(|r| r.path == format!("/api/v2/usergroups/{big}/members"))
        .count();
    assert!(member_pages >= 2, "group 0's members were paged");
}

/// One `employee` per distinct normalized email; users whose emails differ only in
/// case share it; users without email or of employeeType service/bot/generic have no
/// IS edge; every IS edge goes from a user to the employee of the user's email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_map_to_one_employee_per_normalized_email() {
    let run = run(Setup::generated(small_spec(40, 3, 3))).await;
    run.assert_success();
    let org = run.org();
    let users: Vec<Value> = org.users().collect();

    let expected_email: BTreeMap<String, Option<String>> = users
        .iter()
        .map(|u| (object_id(u).to_owned(), expected_employee_email(u)))
        .collect();
    let distinct: BTreeSet<&String> = expected_email.values().flatten().collect();
    // Console administrators map by email too, whatever users there are.
    let admin_emails: BTreeSet<String> = org
        .administrators()
        .filter_map(|a| a["email"].as_str().map(|e| e.trim().to_lowercase()))
        .filter(|e| !e.is_empty())
        .collect();
    assert!(!admin_emails.is_empty());
    let employee_keys: BTreeSet<String> = distinct
        .iter()
        .map(|e| e.as_str())
        .chain(admin_emails.iter().map(String::as_str))
        .map(|e| format!("employee:{e}"))
        .collect();
    assert_eq!(run.graph.entity_keys("employee"), employee_keys);
    for employee in run.graph.entities_of_type("employee") {
        assert_eq!(employee.classes(), ["Person"]);
        let email = employee.key().trim_start_matches("employee:");
        assert_eq!(employee.get("email"), Some(&serde_json::json!([email])));
    }

    // The simulator's documented edge cases: 8 and 9 differ only in case; 6 has no
    // email, 7 an empty one; 10, 11 and 19 are service, bot and "Service" accounts.
    let raw_email = |i: usize| users[i]["email"].as_str().expect("an email").to_owned();
    assert_ne!(raw_email(8), raw_email(9));
    assert_eq!(raw_email(8).to_lowercase(), raw_email(9).to_lowercase());
    let is_edges: Vec<&GraphObject> = run.graph.relationships_of_type("jumpcloud_user_is_person");
    let target_of = |user_id: &str| -> Vec<String> {
        is_edges
            .iter()
            .filter(|e| e.from_key() == user_id)
            .map(|e| e.to_key().to_owned())
            .collect()
    };
    let (u8_targets, u9_targets) = (
        target_of(object_id(&users[8])),
        target_of(object_id(&users[9])),
    );
    assert_eq!(u8_targets.len(), 1);
    assert_eq!(
        u8_targets, u9_targets,
        "same email but for case, same employee"
    );
    for i in [6, 7, 10, 11, 19] {
        assert!(
            target_of(object_id(&users[i])).is_empty(),
            "user {i} must not map to an employee"
        );
    }

    for (user_id, email) in &expected_email {
        let targets = target_of(user_id);
        match email {
            Some(email) => assert_eq!(targets, [format!("employee:{email}")], "user {user_id}"),
            None => assert!(targets.is_empty(), "user {user_id} maps to {targets:?}"),
        }
    }
    let entities = run.graph.entity_index();
    for edge in &is_edges {
        let user = entities[edge.from_key()];
        let employee = entities[edge.to_key()];
        assert_eq!(user.type_(), "jumpcloud_user");
        assert_eq!(employee.type_(), "employee");
        assert_eq!(edge.classes(), ["IS"]);
        assert_eq!(
            edge.key(),
            format!("{}|is|{}", edge.from_key(), edge.to_key())
        );
        let user_email = user.get("email").expect("a mapped user has an email");
        assert_eq!(
            user_email,
            employee.get("email").expect("an employee email")
        );
    }
}

/// User ASSIGNED edges match the simulator's bindings, `direct` included (direct vs via
/// a group); bound groups get group ASSIGNED edges; and the fake IdP secrets of the
/// application `config` appear nowhere in the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_assignments_carry_direct_and_secrets_stay_out() {
    let run = run(Setup::generated(small_spec(30, 4, 4))).await;
    run.assert_success();
    let org = run.org();

    let app_ids: Vec<String> = org
        .applications()
        .map(|a| object_id(&a).to_owned())
        .collect();
    assert_eq!(
        run.graph.entity_keys("jumpcloud_application"),
        app_ids.iter().cloned().collect::<BTreeSet<_>>()
    );
    let mut expected_users = BTreeSet::new();
    let mut expected_groups = BTreeSet::new();
    for app_id in &app_ids {
        for binding in org.application_users(app_id).expect("a served application") {
            expected_users.insert((binding.user_id, app_id.clone(), binding.direct));
        }
        for group_id in org
            .application_groups(app_id)
            .expect("a served application")
        {
            expected_groups.insert((group_id, app_id.clone(), true));
        }
    }
    assert!(
        expected_users.iter().any(|b| b.2) && expected_users.iter().any(|b| !b.2),
        "the tenant has both direct and group-inherited bindings"
    );
    assert_eq!(
        assigned(&run, "jumpcloud_user_assigned_application"),
        expected_users
    );
    assert!(!expected_groups.is_empty());
    assert_eq!(
        assigned(&run, "jumpcloud_group_assigned_application"),
        expected_groups
    );
    let unbound = app_ids.last().expect("applications");
    assert!(
        run.graph
            .relationships
            .iter()
            .filter(|r| r.to_key() == unbound)
            .all(|r| r.type_() == "jumpcloud_account_has_application"),
        "the unbound application has no assignments"
    );

    let served = org.application(0).expect("application 0").to_string();
    assert!(
        served.contains(FAKE_SECRET_MARKER),
        "the simulator serves fake secrets"
    );
    for app in run.graph.entities_of_type("jumpcloud_application") {
        let raw = &app.get("_rawData").expect("raw data")[0]["rawData"];
        assert_eq!(raw["id"], app.key());
        assert!(
            raw.get("config").is_none(),
            "{} keeps its config",
            app.key()
        );
    }
    integration_tests::assert_no_file_contains(run.output.path(), FAKE_SECRET_MARKER);
}

/// With two organizations there is one account per organization, every user, group
/// and application hangs from its own organization's account, and every data request
/// carried the `x-org-id` of the organization whose data it asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_organizations_are_two_accounts_each_read_with_its_org_header() {
    let spec = TenantSpec {
        organizations: 2,
        ..small_spec(30, 3, 3)
    };
    let run = run(Setup::generated(spec)).await;
    run.assert_success();
    let tenant = run.simulator.tenant();
    let organizations = tenant.organizations();
    assert_eq!(organizations.len(), 2);

    let org_ids: BTreeSet<String> = organizations.iter().map(|o| o.id().to_owned()).collect();
    assert_eq!(run.graph.entity_keys("jumpcloud_account"), org_ids);

    let mut owner: HashMap<String, String> = HashMap::new();
    let mut expected: BTreeMap<&str, BTreeSet<(String, String)>> = BTreeMap::new();
    for org in organizations {
        let collections: [(&str, Vec<Value>); 3] = [
            ("jumpcloud_account_has_user", org.users().collect()),
            ("jumpcloud_account_has_group", org.groups().collect()),
            (
                "jumpcloud_account_has_application",
                org.applications().collect(),
            ),
        ];
        for (edge_type, objects) in collections {
            for object in objects {
                let id = object_id(&object).to_owned();
                owner.insert(id.clone(), org.id().to_owned());
                expected
                    .entry(edge_type)
                    .or_default()
                    .insert((org.id().to_owned(), id));
            }
        }
    }
    for (edge_type, edges) in &expected {
        assert_eq!(&run.graph.edges(edge_type), edges, "{edge_type}");
    }
    assert_eq!(run.graph.entities_of_type("jumpcloud_user").len(), 60);

    let requests = run.requests();
    for request in &requests {
        assert_eq!(
            request.status,
            Some(200),
            "{} {:?}",
            request.path,
            request.org_id
        );
        if request.path == "/api/organizations" {
            assert_eq!(request.org_id, None);
            continue;
        }
        let org_id = request
            .org_id
            .as_deref()
            .unwrap_or_else(|| panic!("{} without x-org-id", request.path));
        assert!(
            org_ids.contains(org_id),
            "{} with x-org-id {org_id}",
            request.path
        );
        // Routes naming an object (members, application traversals) must ask the
        // organization that owns it.
        let segments: Vec<&str> = request.path.split('/').collect();
        if let ["", "api", "v2", "usergroups" | "applications", id, _] = segments.as_slice() {
            assert_eq!(owner[*id], org_id, "{}", request.path);
        }
    }
    for org in &org_ids {
        assert!(
            requests
                .iter()
                .any(|r| r.path == "/api/systemusers" && r.org_id.as_deref() == Some(org)),
            "the users of {org} were read with its header"
        );
    }
}

/// The recorded JumpCloud answers become the recorded organization, user, both
/// groups and the application, the group membership implied by the recording, and
/// the user's ASSIGNED edge to the application with `direct` false (via a group).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_dataset_becomes_the_recorded_graph() {
    let run = run(Setup::recorded()).await;
    run.assert_success();
    let org = run.org();

    assert_eq!(
        run.graph.entity_keys("jumpcloud_account"),
        BTreeSet::from([org.id().to_owned()])
    );
    let ids = |objects: Vec<Value>| -> BTreeSet<String> {
        objects.iter().map(|o| object_id(o).to_owned()).collect()
    };
    let users = ids(org.users().collect());
    let groups = ids(org.groups().collect());
    let apps = ids(org.applications().collect());
    assert_eq!((users.len(), groups.len(), apps.len()), (1, 2, 1));
    assert_eq!(run.graph.entity_keys("jumpcloud_user"), users);
    assert_eq!(run.graph.entity_keys("jumpcloud_group"), groups);
    assert_eq!(run.graph.entity_keys("jumpcloud_application"), apps);

    let app_id = apps.first().expect("one application");
    let bindings = org
        .application_users(app_id)
        .expect("the recorded application");
    assert_eq!(bindings.len(), 1);
    assert!(
        !bindings[0].direct,
        "the recording binds the user via a group"
    );
    assert_eq!(
        assigned(&run, "jumpcloud_user_assigned_application"),
        BTreeSet::from([(bindings[0].user_id.clone(), app_id.clone(), false)])
    );
    let bound_groups = org
        .application_groups(app_id)
        .expect("the recorded application");
    assert_eq!(
        assigned(&run, "jumpcloud_group_assigned_application"),
        bound_groups
            .iter()
            .map(|g| (g.clone(), app_id.clone(), true))
            .collect()
    );
    let mut members = BTreeSet::new();
    for group in &groups {
        for member in org.group_members(group).expect("a recorded group") {
            members.insert((group.clone(), member));
        }
    }
    assert_eq!(
        members.len(),
        1,
        "one membership is implied by the recording"
    );
    assert_eq!(run.graph.edges("jumpcloud_group_has_user"), members);

    let user = run.graph.entity(&bindings[0].user_id).expect("the user");
    let served = org.user(0).expect("the recorded user");
    assert_eq!(
        user.get("_rawData").expect("raw data")[0]["rawData"],
        served
    );
    let app = run.graph.entity(app_id).expect("the application");
    assert!(
        app.get("_rawData").expect("raw data")[0]["rawData"]
            .get("config")
            .is_none(),
        "the recorded `config` is not passed on"
    );
}

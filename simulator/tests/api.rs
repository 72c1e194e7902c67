//! The simulator's API over real loopback HTTP: auth, envelopes, paging, sorting,
//! organization selection, the recorded dataset, determinism and the request log.

mod support;

use std::time::{Duration, Instant};

use jumpcloud_simulator::{
    DEFAULT_API_KEY, Dataset, ORG_HEADER_FORBIDDEN_MESSAGE, Simulator, SimulatorConfig, Tenant,
    TenantSpec,
};
use serde_json::{Value, json};
use support::{Client, ids, raw, start};

#[tokio::test]
async fn wrong_or_missing_api_key_is_401() {
    let sim = start(TenantSpec::default()).await;
    let wrong = Client {
        api_key: "not-the-key".into(),
        ..Client::new(&sim)
    };
    for path in [
        "/api/systemusers",
        "/api/organizations",
        "/api/v2/usergroups",
    ] {
        let reply = wrong.get(path).await;
        assert_eq!(reply.status, 401, "{path}");
        assert_eq!(reply.json(), json!({"message": "Unauthorized"}));
    }
    let missing = raw(sim.local_addr(), "GET", "/api/systemusers", &[])
        .await
        .expect("answer");
    assert_eq!(missing.status, 401);
    assert!(sim.requests().iter().all(|r| !r.api_key_valid));
    assert_eq!(sim.api_key(), DEFAULT_API_KEY);
}

#[tokio::test]
async fn v1_envelopes_and_v2_bare_arrays() {
    let sim = start(TenantSpec::default()).await;
    let client = Client::new(&sim);

    let users = client.get("/api/systemusers").await;
    assert_eq!(users.status, 200);
    assert_eq!(
        users.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        users.header("x-total-count"),
        None,
        "v1 reports its total in the body"
    );
    let body = users.json();
    assert_eq!(body["totalCount"], 150);
    assert_eq!(
        body["results"].as_array().unwrap().len(),
        10,
        "default limit"
    );
    let first = &body["results"][0];
    assert_eq!(first["_id"], first["id"]);
    for field in [
        "displayname",
        "account_locked",
        "password_expiration_date",
        "employeeIdentifier",
        "mfa",
    ] {
        assert!(first.get(field).is_some(), "user field {field}");
    }

    let apps = client.get("/api/applications").await.json();
    assert!(apps.get("name").is_some() && apps.get("totalCount").is_some());
    let app = &apps["results"][0];
    for field in [
        "displayLabel",
        "sso",
        "ssoUrl",
        "active",
        "created",
        "config",
    ] {
        assert!(app.get(field).is_some(), "application field {field}");
    }
    assert!(
        app["config"]
            .to_string()
            .contains(jumpcloud_simulator::FAKE_SECRET_MARKER)
    );

    let groups = client.get("/api/v2/usergroups").await;
    assert_eq!(groups.total_count(), Some(10));
    let groups = groups.json();
    assert_eq!(groups.as_array().unwrap().len(), 10);
    assert_eq!(groups[0]["type"], "user_group");
    assert!(groups[1]["attributes"]["sudo"]["enabled"].is_boolean());
    assert!(groups[1].get("membershipMethod").is_some());

    let org = sim.tenant().organizations()[0].clone();
    let group0 = org.group_id(0).unwrap();
    let members = client
        .get(&format!("/api/v2/usergroups/{group0}/members?limit=2"))
        .await;
    assert_eq!(
        members.total_count(),
        Some(151),
        "150 users and one deleted member"
    );
    let user0 = org.user_id(0).unwrap();
    assert_eq!(
        members.json()[0],
        json!({"attributes": null, "to": {"attributes": null, "id": user0, "type": "user"}})
    );

    // Application 0 is bound to group 0 and directly to users 0..3: two paths each.
    let app0 = org.application_id(0).unwrap();
    let app_users = client
        .get(&format!("/api/v2/applications/{app0}/users?limit=1"))
        .await;
    assert_eq!(app_users.total_count(), Some(150));
    let item = &app_users.json()[0];
    assert_eq!(item["id"], user0.as_str());
    assert_eq!(item["type"], "user");
    assert!(item.get("compiledAttributes").is_some());
    let hops: Vec<usize> = item["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_array().unwrap().len())
        .collect();
    assert_eq!(hops, [1, 2]);
    assert_eq!(item["paths"][1][0]["to"]["type"], "user_group");
    assert_eq!(item["paths"][1][0]["to"]["id"], group0.as_str());

    let app_groups = client
        .get(&format!("/api/v2/applications/{app0}/usergroups"))
        .await;
    assert_eq!(app_groups.total_count(), Some(1));
    assert_eq!(app_groups.json()[0]["id"], group0.as_str());
    assert_eq!(
        app_groups.json()[0]["paths"][0].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn paging_reaches_the_end_and_empty_pages_keep_the_total() {
    let spec = TenantSpec {
        users: 257,
        groups: 5,
        ..TenantSpec::default()
    };
    let sim = start(spec).await;
    let client = Client::new(&sim);
    let org = sim.tenant().organizations()[0].clone();

    let (users, totals) = client.all("/api/systemusers", "").await;
    assert_eq!(users.len(), 257);
    assert_eq!(
        totals,
        [257, 257, 257, 257],
        "three pages and an empty one, all with the total"
    );
    assert_eq!(
        users,
        org.users().collect::<Vec<_>>(),
        "served exactly the tenant's users"
    );

    let past = client.get("/api/systemusers?skip=5000").await.json();
    assert_eq!(past, json!({"totalCount": 257, "results": []}));
    let past_v2 = client.get("/api/v2/usergroups?skip=99").await;
    assert_eq!(
        (past_v2.total_count(), past_v2.json()),
        (Some(5), json!([]))
    );

    // Group 0 has more than a page of members, including the dangling id.
    let group0 = org.group_id(0).unwrap();
    let (members, _) = client
        .all(&format!("/api/v2/usergroups/{group0}/members"), "")
        .await;
    let member_ids: Vec<String> = members
        .iter()
        .map(|m| m["to"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(member_ids.len() > 100);
    assert_eq!(member_ids, org.group_members(&group0).unwrap());
    let dangling = org.dangling_member_ids();
    assert_eq!(dangling.len(), 1);
    assert!(member_ids.contains(&dangling[0]));
    assert!(
        org.users().all(|u| u["id"] != dangling[0].as_str()),
        "dangling id is not a user"
    );

    // The last group is empty.
    let last = org.group_id(org.group_count() - 1).unwrap();
    let empty = client
        .get(&format!("/api/v2/usergroups/{last}/members"))
        .await;
    assert_eq!((empty.total_count(), empty.json()), (Some(0), json!([])));

    // Every application's users, paged, match the published bindings.
    for a in 0..org.application_count() {
        let app = org.application_id(a).unwrap();
        let (items, _) = client
            .all(&format!("/api/v2/applications/{app}/users"), "")
            .await;
        let expected = org.application_users(&app).unwrap();
        assert_eq!(
            ids(&items),
            expected
                .iter()
                .map(|b| b.user_id.clone())
                .collect::<Vec<_>>()
        );
        for (item, binding) in items.iter().zip(&expected) {
            let paths = item["paths"].as_array().unwrap();
            assert_eq!(
                paths.iter().any(|p| p.as_array().unwrap().len() == 1),
                binding.direct
            );
            assert_eq!(
                paths.len(),
                usize::from(binding.direct) + binding.via_groups.len()
            );
        }
    }
}

#[tokio::test]
async fn limit_is_capped_at_100() {
    let sim = start(TenantSpec {
        users: 250,
        ..TenantSpec::default()
    })
    .await;
    let client = Client::new(&sim);
    let body = client.get("/api/systemusers?limit=500").await.json();
    assert_eq!(body["results"].as_array().unwrap().len(), 100);
    let groups = client.get("/api/v2/usergroups?limit=1000").await.json();
    assert_eq!(groups.as_array().unwrap().len(), 10);
    let bad = client.get("/api/systemusers?limit=lots").await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["message"].is_string());
}

fn field(v: &Value, name: &str) -> String {
    v.get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn sort_follows_v1_and_v2_syntax() {
    let sim = start(TenantSpec {
        users: 230,
        ..TenantSpec::default()
    })
    .await;
    let client = Client::new(&sim);
    let org = sim.tenant().organizations()[0].clone();
    let all_users: Vec<Value> = org.users().collect();

    let (by_username, _) = client.all("/api/systemusers", "&sort=username").await;
    let mut expected: Vec<String> = all_users.iter().map(|u| field(u, "username")).collect();
    expected.sort();
    assert_eq!(
        by_username
            .iter()
            .map(|u| field(u, "username"))
            .collect::<Vec<_>>(),
        expected
    );

    // v1: space-separated, `-` descending; missing emails sort first ascending, so last here.
    let (by_email, _) = client
        .all("/api/systemusers", "&sort=-email%20username")
        .await;
    let emails: Vec<Option<&str>> = by_email
        .iter()
        .map(|u| u.get("email").and_then(Value::as_str))
        .collect();
    assert!(emails.windows(2).all(|w| w[0] >= w[1]));
    assert!(emails.last().unwrap().is_none(), "user 6 has no email key");

    let (by_id_desc, _) = client.all("/api/systemusers", "&sort=-_id").await;
    let mut ids_desc = ids(&all_users);
    ids_desc.reverse();
    assert_eq!(ids(&by_id_desc), ids_desc);

    // v2: comma-separated.
    let groups = client
        .get("/api/v2/usergroups?sort=-name,id&limit=100")
        .await
        .json();
    let names: Vec<String> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| field(g, "name"))
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(names, sorted);

    // Applications default to `name` order.
    let apps = client.get("/api/applications?limit=100").await.json();
    let names: Vec<String> = apps["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| field(a, "name"))
        .collect();
    assert!(names.windows(2).all(|w| w[0] <= w[1]));

    // `/members` has no sort: it is ignored.
    let group = org.group_id(1).unwrap();
    let plain = client
        .get(&format!("/api/v2/usergroups/{group}/members?limit=100"))
        .await
        .json();
    let sorted = client
        .get(&format!(
            "/api/v2/usergroups/{group}/members?limit=100&sort=-id"
        ))
        .await
        .json();
    assert_eq!(plain, sorted);
}

#[tokio::test]
async fn multi_org_requires_x_org_id_and_serves_that_org_only() {
    let sim = start(TenantSpec {
        organizations: 3,
        users: 30,
        ..TenantSpec::default()
    })
    .await;
    let tenant = sim.tenant();
    assert!(tenant.is_multi_org());
    let client = Client::new(&sim);

    let orgs = client.get("/api/organizations").await.json();
    assert_eq!(orgs["totalCount"], 3);
    let org_ids: Vec<String> = ids(orgs["results"].as_array().unwrap());
    assert_eq!(
        org_ids,
        tenant
            .organizations()
            .iter()
            .map(|o| o.id().to_owned())
            .collect::<Vec<_>>()
    );
    assert!(
        orgs["results"][2]["displayName"].is_null(),
        "last org has no display name"
    );

    let forbidden = client
        .clone_with_org(&org_ids[0])
        .get("/api/organizations")
        .await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(
        forbidden.json(),
        json!({"message": ORG_HEADER_FORBIDDEN_MESSAGE, "error": ORG_HEADER_FORBIDDEN_MESSAGE})
    );
    assert_eq!(
        ORG_HEADER_FORBIDDEN_MESSAGE,
        "Forbidden: organization selection not allowed via header"
    );
    // An empty x-org-id is no selection (JupiterOne's connector sent one).
    assert_eq!(
        client
            .clone_with_org("")
            .get("/api/organizations")
            .await
            .status,
        200
    );

    for path in [
        "/api/systemusers",
        "/api/applications",
        "/api/v2/usergroups",
    ] {
        let unselected = client.get(path).await;
        assert_eq!(unselected.status, 401, "{path}");
        assert_eq!(
            unselected.json(),
            json!({"message": "Unauthorized: no organization selected"})
        );
        let unknown = client
            .clone_with_org("ffffffffffffffffffffffff")
            .get(path)
            .await;
        assert_eq!(unknown.status, 404, "{path}");
    }

    for (k, org) in tenant.organizations().iter().enumerate() {
        let scoped = client.clone_with_org(org.id());
        let (users, _) = scoped.all("/api/systemusers", "").await;
        assert_eq!(
            ids(&users),
            ids(&org.users().collect::<Vec<_>>()),
            "org {k}"
        );
        assert!(users.iter().all(|u| u["organization"] == org.id()));
        let (groups, _) = scoped.all("/api/v2/usergroups", "").await;
        assert_eq!(ids(&groups), ids(&org.groups().collect::<Vec<_>>()));
        // Another org's group is unknown here.
        let other = &tenant.organizations()[(k + 1) % 3];
        let foreign = scoped
            .get(&format!(
                "/api/v2/usergroups/{}/members",
                other.group_id(0).unwrap()
            ))
            .await;
        assert_eq!(foreign.status, 404);
    }
    let logged = sim.requests();
    assert!(
        logged
            .iter()
            .any(|r| r.org_id.as_deref() == Some(org_ids[1].as_str()))
    );
}

#[tokio::test]
async fn single_org_x_org_id_is_optional_but_must_match() {
    let sim = start(TenantSpec::default()).await;
    let client = Client::new(&sim);
    let org_id = sim.tenant().organizations()[0].id().to_owned();
    assert_eq!(client.get("/api/systemusers").await.status, 200);
    assert_eq!(
        client
            .clone_with_org(&org_id)
            .get("/api/systemusers")
            .await
            .status,
        200
    );
    assert_eq!(
        client
            .clone_with_org("")
            .get("/api/systemusers")
            .await
            .status,
        200
    );
    let wrong = client
        .clone_with_org("000000000000000000000000")
        .get("/api/systemusers")
        .await;
    assert_eq!(wrong.status, 404);
    assert!(wrong.json()["message"].is_string());
}

#[tokio::test]
async fn unknown_routes_ids_and_methods() {
    let sim = start(TenantSpec::default()).await;
    let client = Client::new(&sim);
    let unknown = client.get("/api/v2/nothing").await;
    assert_eq!(
        (unknown.status, unknown.json()),
        (404, json!({"message": "Not Found"}))
    );

    for path in [
        "/api/v2/usergroups/ffffffffffffffffffffffff/members",
        "/api/v2/applications/ffffffffffffffffffffffff/users",
        "/api/v2/applications/ffffffffffffffffffffffff/usergroups",
    ] {
        let reply = client.get(path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.json()["code"], 404);
        assert!(reply.json()["message"].is_string());
    }

    let post = raw(
        sim.local_addr(),
        "POST",
        "/api/systemusers",
        &[("x-api-key", DEFAULT_API_KEY), ("content-length", "0")],
    )
    .await
    .expect("answer");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET"));
    assert!(post.json()["message"].is_string());
}

#[tokio::test]
async fn recorded_dataset_serves_the_recordings() {
    let sim = Simulator::start(SimulatorConfig {
        dataset: Dataset::Recorded,
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let client = Client::new(&sim);
    let fixture = |name: &str| -> Vec<Value> {
        let path = format!(
            "{}/../fixtures/jumpcloud-recorded/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let recorded = fixture("fetchApplications.json");
    let body_of = |path: &str, skip: &str| -> Value {
        recorded
            .iter()
            .find(|e| e["path"] == path && e["query"]["skip"] == skip)
            .map(|e| e["body"].clone())
            .unwrap_or_else(|| panic!("recorded {path} skip {skip}"))
    };

    let orgs = client.get("/api/organizations").await.json();
    assert_eq!(orgs, fixture("fetchOrgs.json")[0]["body"]);
    let users = client.get("/api/systemusers?limit=100&skip=0").await.json();
    assert_eq!(users, body_of("/api/systemusers", "0"));
    assert_eq!(
        client.get("/api/systemusers?limit=100&skip=1").await.json(),
        body_of("/api/systemusers", "1")
    );
    let groups = client.get("/api/v2/usergroups?limit=100&skip=0").await;
    assert_eq!(groups.total_count(), Some(2));
    assert_eq!(groups.json(), body_of("/api/v2/usergroups", "0"));
    let apps = client
        .get("/api/applications?limit=100&skip=0")
        .await
        .json();
    assert_eq!(
        apps["results"],
        body_of("/api/applications", "0")["results"]
    );
    assert_eq!(apps["results"][0]["config"], "[REDACTED]");

    let app = "617c3664e6f8ae27f7e1201e";
    for route in ["users", "usergroups"] {
        let path = format!("/api/v2/applications/{app}/{route}");
        let reply = client.get(&format!("{path}?limit=100&skip=0")).await;
        assert_eq!(reply.total_count(), Some(1));
        assert_eq!(reply.json(), body_of(&path, "0"), "{route} served verbatim");
    }

    // Members implied by the traversal path: "My Test Group" holds the user.
    let members = client
        .get("/api/v2/usergroups/6026da081f24755306c2ee0d/members")
        .await
        .json();
    assert_eq!(members[0]["to"]["id"], "6026bec6b8207255280d5981");
    let all_users = client
        .get("/api/v2/usergroups/60259a3cb544065d1eaf2760/members")
        .await;
    assert_eq!(
        (all_users.total_count(), all_users.json()),
        (Some(0), json!([]))
    );
}

#[tokio::test]
async fn same_seed_same_tenant() {
    let spec = TenantSpec {
        users: 120,
        seed: 42,
        ..TenantSpec::default()
    };
    let (a, b) = (start(spec.clone()).await, start(spec.clone()).await);
    for path in [
        "/api/systemusers?limit=100&skip=20",
        "/api/v2/usergroups?limit=100",
        "/api/applications?limit=100",
    ] {
        assert_eq!(
            Client::new(&a).get(path).await.json(),
            Client::new(&b).get(path).await.json(),
            "{path}"
        );
    }
    let (ta, tb) = (Tenant::generate(&spec), Tenant::generate(&spec));
    let (oa, ob) = (&ta.organizations()[0], &tb.organizations()[0]);
    assert!(oa.users().eq(ob.users()));
    let other = Tenant::generate(&TenantSpec { seed: 43, ..spec });
    assert!(
        !oa.users().eq(other.organizations()[0].users()),
        "another seed, another tenant"
    );
}

#[tokio::test]
async fn generated_users_cover_the_edge_cases() {
    let tenant = Tenant::generate(&TenantSpec {
        users: 400,
        ..TenantSpec::default()
    });
    let users: Vec<Value> = tenant.organizations()[0].users().collect();
    let count = |pred: &dyn Fn(&Value) -> bool| users.iter().filter(|u| pred(u)).count();
    for state in ["ACTIVATED", "STAGED", "SUSPENDED"] {
        assert!(count(&|u| u["state"] == state) > 0, "{state}");
    }
    assert!(count(&|u| u.get("state").is_none()) > 0);
    assert!(count(&|u| u.get("mfa") == Some(&Value::Null)) > 0);
    assert!(count(&|u| u.get("mfa").is_none()) > 0);
    assert!(count(&|u| u["mfa"]["configured"] == true) > 0);
    assert!(count(&|u| u["totp_enabled"] == true) > 0);
    assert!(count(&|u| u["mfaEnrollment"]["overallStatus"] == "ENROLLED") > 0);
    assert!(count(&|u| u.get("email").is_none()) > 0);
    assert!(count(&|u| u["email"] == "") > 0);
    assert!(count(&|u| u["employeeType"] == "service") > 0);
    assert!(count(&|u| u["employeeType"] == "bot") > 0);
    assert!(
        count(&|u| !field(u, "displayname").is_ascii()) > 0,
        "unicode names"
    );
    let mut lower: Vec<String> = users
        .iter()
        .map(|u| field(u, "email").to_lowercase())
        .filter(|e| !e.is_empty())
        .collect();
    let distinct_exact: std::collections::HashSet<String> =
        users.iter().map(|u| field(u, "email")).collect();
    lower.sort();
    lower.dedup();
    assert!(
        lower.len() < distinct_exact.len() - 1,
        "two emails differ only in case"
    );
}

#[tokio::test]
async fn a_hundred_thousand_users_are_cheap() {
    let started = Instant::now();
    let sim = start(TenantSpec {
        users: 100_000,
        groups: 50,
        applications: 20,
        ..TenantSpec::default()
    })
    .await;
    let client = Client::new(&sim);
    let last = client
        .get("/api/systemusers?limit=100&skip=99950")
        .await
        .json();
    assert_eq!(last["totalCount"], 100_000);
    assert_eq!(last["results"].as_array().unwrap().len(), 50);
    let newest = client
        .get("/api/systemusers?limit=1&sort=-_id")
        .await
        .json();
    assert_eq!(
        newest["results"][0]["id"],
        sim.tenant().organizations()[0]
            .user_id(99_999)
            .unwrap()
            .as_str()
    );
    let group = sim.tenant().organizations()[0].group_id(7).unwrap();
    let members = client
        .get(&format!(
            "/api/v2/usergroups/{group}/members?limit=100&skip=3000"
        ))
        .await;
    assert!(members.total_count().unwrap() > 3000);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn request_log_records_headers_status_and_query() {
    let sim = start(TenantSpec::default()).await;
    let client = Client::new(&sim);
    client
        .get("/api/systemusers?limit=100&skip=0&sort=_id")
        .await;
    raw(
        sim.local_addr(),
        "GET",
        "/api/v2/usergroups",
        &[("x-api-key", "bad"), ("x-org-id", "")],
    )
    .await;
    let log = sim.requests();
    assert_eq!(sim.request_count(), 2);
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].path, "/api/systemusers");
    assert_eq!(log[0].query_param("sort").as_deref(), Some("_id"));
    assert_eq!(log[0].accept.as_deref(), Some("application/json"));
    assert_eq!(log[0].content_type.as_deref(), Some("application/json"));
    assert!(log[0].api_key_valid);
    assert_eq!(log[0].status, Some(200));
    assert!(log[0].faults.is_empty());
    assert_eq!(log[1].org_id.as_deref(), Some(""));
    assert_eq!((log[1].api_key_valid, log[1].status), (false, Some(401)));
    sim.clear_requests();
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let sim = start(TenantSpec::default()).await;
    let addr = sim.local_addr();
    assert!(sim.base_url().starts_with("http://127.0.0.1:"));
    sim.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    let sim = start(TenantSpec::default()).await;
    let addr = sim.local_addr();
    drop(sim);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "port still open after drop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn binds_the_requested_port() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let sim = Simulator::start(SimulatorConfig {
        port: Some(port),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(sim.base_url(), format!("http://127.0.0.1:{port}"));
    // The port is taken now.
    let again = Simulator::start(SimulatorConfig {
        port: Some(port),
        ..SimulatorConfig::default()
    })
    .await;
    assert!(again.is_err());
}

#[tokio::test]
async fn keep_alive_and_concurrent_clients() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = start(TenantSpec::default()).await;

    // Two requests on one connection: each answer is delimited by its content-length.
    let mut stream = tokio::net::TcpStream::connect(sim.local_addr())
        .await
        .unwrap();
    let mut buffer = Vec::new();
    for skip in [0, 10] {
        let request = format!(
            "GET /api/systemusers?skip={skip} HTTP/1.1\r\nhost: x\r\nx-api-key: {DEFAULT_API_KEY}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let body = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .expect("content-length");
                if buffer.len() >= end + 4 + length {
                    let body: Value =
                        serde_json::from_slice(&buffer[end + 4..end + 4 + length]).unwrap();
                    buffer.drain(..end + 4 + length);
                    break body;
                }
            }
            let mut chunk = [0u8; 65536];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed early");
            buffer.extend_from_slice(&chunk[..n]);
        };
        assert_eq!(body["results"].as_array().unwrap().len(), 10);
    }

    let client = std::sync::Arc::new(Client::new(&sim));
    let tasks: Vec<_> = (0..16)
        .map(|k| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .get(&format!("/api/systemusers?limit=5&skip={}", k * 5))
                    .await
                    .status
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(sim.request_count(), 18);
}

//! Every fault kind over real loopback HTTP, plus how rules count, cap and switch.

mod support;

use std::time::{Duration, Instant};

use jumpcloud_simulator::{Fault, FaultRule, RetryAfter, Simulator, SimulatorConfig, TenantSpec};
use serde_json::{Value, json};
use support::{Client, start};

async fn with_faults(rules: Vec<FaultRule>) -> (Simulator, Client) {
    let sim = start(TenantSpec::default()).await;
    sim.set_faults(rules);
    let client = Client::new(&sim);
    (sim, client)
}

/// Seconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn parse_http_date(text: &str) -> u64 {
    let parts: Vec<&str> = text.split([' ', ':']).collect();
    let [_, day, month, year, h, m, s, "GMT"] = parts.as_slice() else {
        panic!("not an IMF-fixdate: {text}")
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|x| x == month).expect("month") as i64 + 1;
    let (year, day): (i64, i64) = (year.parse().unwrap(), day.parse().unwrap());
    // days_from_civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs: i64 = h.parse::<i64>().unwrap() * 3600
        + m.parse::<i64>().unwrap() * 60
        + s.parse::<i64>().unwrap();
    (days * 86_400 + secs) as u64
}

#[tokio::test]
async fn too_many_requests_with_and_without_retry_after() {
    let (sim, client) = with_faults(vec![
        FaultRule::new(Fault::TooManyRequests { retry_after: None }).with_limit(1),
        FaultRule::new(Fault::TooManyRequests {
            retry_after: Some(RetryAfter::Seconds(7)),
        })
        .with_limit(1),
        FaultRule::new(Fault::TooManyRequests {
            retry_after: Some(RetryAfter::HttpDate),
        })
        .with_limit(1),
    ])
    .await;
    let bare = client.get("/api/systemusers").await;
    assert_eq!(bare.status, 429);
    assert_eq!(bare.header("retry-after"), None);
    assert_eq!(bare.json(), json!({"message": "Too Many Requests"}));

    let seconds = client.get("/api/systemusers").await;
    assert_eq!(
        (seconds.status, seconds.header("retry-after")),
        (429, Some("7"))
    );

    let dated = client.get("/api/systemusers").await;
    assert_eq!(dated.status, 429);
    let at = parse_http_date(dated.header("retry-after").expect("retry-after"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 1..=now + 4).contains(&at),
        "date {at} is a couple of seconds after {now}"
    );

    assert_eq!(
        client.get("/api/systemusers").await.status,
        200,
        "all three rules are spent"
    );
    let faults: Vec<Vec<Fault>> = sim.requests().into_iter().map(|r| r.faults).collect();
    assert_eq!(
        faults[1],
        [Fault::TooManyRequests {
            retry_after: Some(RetryAfter::Seconds(7))
        }]
    );
    assert!(faults[3].is_empty());
}

#[tokio::test]
async fn server_errors_and_forbidden() {
    let (sim, client) = with_faults(vec![
        FaultRule::new(Fault::ServerError(503)).with_limit(1),
        FaultRule::new(Fault::ServerError(9999)).with_limit(1),
        FaultRule::new(Fault::Forbidden).with_limit(1),
    ])
    .await;
    let unavailable = client.get("/api/v2/usergroups").await;
    assert_eq!(
        (unavailable.status, unavailable.json()),
        (503, json!({"message": "Service Unavailable"}))
    );
    assert_eq!(
        client.get("/api/v2/usergroups").await.status,
        500,
        "invalid status falls back to 500"
    );
    let forbidden = client.get("/api/v2/usergroups").await;
    assert_eq!(
        (forbidden.status, forbidden.json()),
        (403, json!({"message": "Forbidden"}))
    );
    assert_eq!(sim.requests()[0].status, Some(503));
}

#[tokio::test]
async fn latency_per_rule_and_global() {
    let (sim, client) = with_faults(vec![
        FaultRule::new(Fault::Latency(Duration::from_millis(300))).with_path_prefix("/api/v2"),
    ])
    .await;
    let started = Instant::now();
    assert_eq!(client.get("/api/v2/usergroups").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    client.get("/api/systemusers").await;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "other paths are not delayed"
    );
    assert_eq!(
        sim.requests()[0].faults,
        [Fault::Latency(Duration::from_millis(300))]
    );

    sim.clear_faults();
    sim.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    client.get("/api/systemusers").await;
    assert!(started.elapsed() >= Duration::from_millis(200));

    let slow = Simulator::start(SimulatorConfig {
        latency: Duration::from_millis(250),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    assert_eq!(
        Client::new(&slow).get("/api/organizations").await.status,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn dropped_connection_sends_nothing() {
    let (sim, client) =
        with_faults(vec![FaultRule::new(Fault::DropConnection).with_limit(1)]).await;
    assert!(client.try_get("/api/systemusers").await.is_none());
    assert_eq!(
        client.get("/api/systemusers").await.status,
        200,
        "the next request is served"
    );
    let first = &sim.requests()[0];
    assert_eq!(
        (first.status, first.faults.as_slice()),
        (None, &[Fault::DropConnection][..])
    );
}

#[tokio::test]
async fn truncated_body_promises_more_than_it_sends() {
    let (sim, client) = with_faults(vec![FaultRule::new(Fault::TruncatedBody).with_limit(1)]).await;
    let cut = client.get("/api/systemusers?limit=100").await;
    assert_eq!(cut.status, 200);
    let announced: usize = cut.header("content-length").unwrap().parse().unwrap();
    assert!(
        !cut.body.is_empty() && cut.body.len() < announced,
        "{} of {announced} bytes",
        cut.body.len()
    );
    assert!(serde_json::from_slice::<Value>(&cut.body).is_err());
    let whole = client.get("/api/systemusers?limit=100").await;
    assert_eq!(whole.body.len(), announced, "same answer, whole this time");
    assert_eq!(&whole.body[..cut.body.len()], &cut.body[..]);
    assert_eq!(sim.requests()[0].faults, [Fault::TruncatedBody]);
}

#[tokio::test]
async fn html_body_with_status_200() {
    let (_sim, client) = with_faults(vec![FaultRule::new(Fault::HtmlBody)]).await;
    let page = client.get("/api/systemusers").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.body.starts_with(b"<!DOCTYPE html>"));
    assert!(serde_json::from_slice::<Value>(&page.body).is_err());
}

#[tokio::test]
async fn wrong_envelope_swaps_object_and_array() {
    let (sim, client) = with_faults(vec![FaultRule::new(Fault::WrongEnvelope)]).await;
    let users = client.get("/api/systemusers").await.json();
    assert_eq!(
        users.as_array().map(Vec::len),
        Some(10),
        "v1 answered with a bare array"
    );
    let groups = client.get("/api/v2/usergroups").await;
    assert_eq!(groups.total_count(), None);
    let groups = groups.json();
    assert_eq!(groups["totalCount"], 10);
    assert!(groups["results"].is_array(), "v2 answered with an envelope");
    // Errors are not lists: nothing to swap, and the log says no fault happened.
    let unknown = client
        .get("/api/v2/usergroups/ffffffffffffffffffffffff/members")
        .await;
    assert_eq!(unknown.status, 404);
    assert!(sim.requests()[2].faults.is_empty());
}

#[tokio::test]
async fn wrong_field_types() {
    let (sim, client) = with_faults(vec![FaultRule::new(Fault::WrongFieldType)]).await;
    let org = sim.tenant().organizations()[0].clone();
    let users = client.get("/api/systemusers?limit=3").await.json();
    assert!(
        users["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["email"].is_number())
    );
    let apps = client.get("/api/applications").await.json();
    assert!(apps["results"].is_string(), "results as a string");
    let groups = client.get("/api/v2/usergroups").await.json();
    assert!(groups[0]["id"].is_number());
    let members = client
        .get(&format!(
            "/api/v2/usergroups/{}/members",
            org.group_id(0).unwrap()
        ))
        .await
        .json();
    assert!(members[0]["to"]["id"].is_number());
}

#[tokio::test]
async fn rules_count_their_own_requests_and_can_be_switched() {
    let (sim, client) = with_faults(vec![
        FaultRule::new(Fault::ServerError(502))
            .with_path_prefix("/api/v2/")
            .with_every(2)
            .with_limit(2),
        FaultRule::new(Fault::Forbidden)
            .with_path_prefix("/api/systemusers")
            .with_every(3),
    ])
    .await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(client.get("/api/v2/usergroups").await.status);
        statuses.push(client.get("/api/systemusers").await.status);
    }
    // Groups: 2nd and 4th fail (then the cap); users: every 3rd.
    assert_eq!(
        statuses,
        [200, 200, 502, 200, 200, 403, 502, 200, 200, 200, 200, 403]
    );

    sim.set_faults(vec![FaultRule::new(Fault::ServerError(500))]);
    assert_eq!(client.get("/api/organizations").await.status, 500);
    sim.clear_faults();
    assert_eq!(client.get("/api/organizations").await.status, 200);

    // Faults sit in front of the API: they hit even a request with a bad key.
    sim.set_faults(vec![FaultRule::new(Fault::TooManyRequests {
        retry_after: None,
    })]);
    let bad_key = Client {
        api_key: "nope".into(),
        ..Client::new(&sim)
    };
    assert_eq!(bad_key.get("/api/systemusers").await.status, 429);
}

#[tokio::test]
async fn faults_from_the_config_apply_from_the_first_request() {
    let sim = Simulator::start(SimulatorConfig {
        faults: vec![FaultRule::new(Fault::ServerError(504)).with_limit(1)],
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let client = Client::new(&sim);
    assert_eq!(client.get("/api/organizations").await.status, 504);
    assert_eq!(client.get("/api/organizations").await.status, 200);
}

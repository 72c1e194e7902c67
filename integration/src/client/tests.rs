//! Unit tests of paging, retries and error mapping, over a scripted transport.

use super::*;
use crate::transport::Level;

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::json;

// ---------------------------------------------------------------------------------
// A scripted transport and a recording logger
// ---------------------------------------------------------------------------------

type Reply = Result<HttpResponse, TransportError>;

/// Answers each request from a queue kept per path and query; an unscripted
/// request fails the test. Time only moves when the client sleeps.
struct FakeTransport {
    replies: HashMap<String, VecDeque<Reply>>,
    /// Every request, with the fake time at which it was sent.
    sent: Vec<(Duration, HttpRequest)>,
    /// Requests started back to back, between two waits for a response: the client's
    /// "rounds" of sending.
    batches: Vec<Vec<String>>,
    /// Started and not yet answered, in order.
    in_flight: VecDeque<(u64, Reply)>,
    /// The most requests in flight at once.
    max_in_flight: usize,
    /// Whether the next start opens a new batch.
    new_batch: bool,
    clock: Duration,
    sleeps: Vec<Duration>,
    random: f64,
}

impl FakeTransport {
    fn new() -> Self {
        FakeTransport {
            replies: HashMap::new(),
            sent: Vec::new(),
            batches: Vec::new(),
            in_flight: VecDeque::new(),
            max_in_flight: 0,
            new_batch: true,
            clock: Duration::ZERO,
            sleeps: Vec::new(),
            random: 0.5,
        }
    }

    /// Queues one reply for `path_and_query`.
    fn on(&mut self, path_and_query: &str, reply: Reply) -> &mut Self {
        self.replies
            .entry(path_and_query.to_owned())
            .or_default()
            .push_back(reply);
        self
    }

    fn paths(&self) -> Vec<String> {
        self.sent
            .iter()
            .map(|(_, r)| r.path_and_query.clone())
            .collect()
    }

    fn count(&self, path_and_query: &str) -> usize {
        self.sent
            .iter()
            .filter(|(_, r)| r.path_and_query == path_and_query)
            .count()
    }

    fn times_of(&self, path_and_query: &str) -> Vec<Duration> {
        self.sent
            .iter()
            .filter(|(_, r)| r.path_and_query == path_and_query)
            .map(|(t, _)| *t)
            .collect()
    }

    fn unanswered(&self) -> Vec<&String> {
        self.replies
            .iter()
            .filter(|(_, queue)| !queue.is_empty())
            .map(|(path, _)| path)
            .collect()
    }
}

impl Transport for FakeTransport {
    fn start(&mut self, id: u64, request: &HttpRequest) {
        if self.new_batch {
            self.batches.push(Vec::new());
            self.new_batch = false;
        }
        if let Some(batch) = self.batches.last_mut() {
            batch.push(request.path_and_query.clone());
        }
        self.sent.push((self.clock, request.clone()));
        let reply = self
            .replies
            .get_mut(&request.path_and_query)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| panic!("unscripted request {}", request.path_and_query));
        self.in_flight.push_back((id, reply));
        self.max_in_flight = self.max_in_flight.max(self.in_flight.len());
    }

    fn next_response(&mut self) -> Option<(u64, Reply)> {
        self.new_batch = true;
        self.in_flight.pop_front()
    }

    fn cancel_all(&mut self) {
        self.in_flight.clear();
    }

    fn now(&mut self) -> Duration {
        self.clock
    }

    fn sleep(&mut self, duration: Duration) {
        self.sleeps.push(duration);
        self.clock += duration;
    }

    fn random_unit(&mut self) -> f64 {
        self.random
    }
}

#[derive(Default)]
struct RecordingLog {
    lines: RefCell<Vec<String>>,
}

impl Logger for RecordingLog {
    fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        let mut line = format!("{level:?} {message}");
        for (name, value) in fields {
            line.push_str(&format!(" {name}={value}"));
        }
        self.lines.borrow_mut().push(line);
    }
}

impl RecordingLog {
    fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }
}

// ---------------------------------------------------------------------------------
// Responses and requests
// ---------------------------------------------------------------------------------

const KEY: &str = "jca_S3cretTestKey0123456789abcdef";

fn config(org: Option<&str>) -> Config {
    let mut entries = vec![
        ("apiKey", KEY),
        ("baseUrl", "https://console.jumpcloud.com"),
    ];
    if let Some(org) = org {
        entries.push(("orgId", org));
    }
    Config::from_entries(entries).unwrap()
}

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
    Ok(HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.as_bytes().to_vec(),
    })
}

fn ids(prefix: &str, range: std::ops::Range<u64>) -> Vec<Value> {
    range
        .map(|i| json!({ "_id": format!("{prefix}{i}"), "id": format!("{prefix}{i}") }))
        .collect()
}

/// A v1 page: `{"totalCount": total, "results": [...]}`.
fn v1(total: Option<u64>, range: std::ops::Range<u64>) -> Reply {
    let mut body = json!({ "results": ids("u", range) });
    if let Some(total) = total {
        body["totalCount"] = json!(total);
    }
    response(
        200,
        &[("content-type", "application/json")],
        &body.to_string(),
    )
}

/// A v2 page: a bare array, the total in `x-total-count` when given.
fn v2(prefix: &str, total: Option<u64>, range: std::ops::Range<u64>) -> Reply {
    let body = Value::Array(ids(prefix, range)).to_string();
    let total = total.map(|t| t.to_string());
    let mut headers = vec![("content-type", "application/json")];
    if let Some(total) = &total {
        headers.push(("x-total-count", total.as_str()));
    }
    response(200, &headers, &body)
}

fn status(code: u16, body: &str) -> Reply {
    response(code, &[("content-type", "application/json")], body)
}

fn users_at(skip: u64) -> String {
    format!("/api/systemusers?limit=100&skip={skip}&sort=_id")
}

fn groups_at(skip: u64) -> String {
    format!("/api/v2/usergroups?limit=100&skip={skip}&sort=id")
}

fn members_at(group: &str, skip: u64) -> String {
    format!("/api/v2/usergroups/{group}/members?limit=100&skip={skip}")
}

/// Pages through one list, returning the ids seen, the totals reported and the result.
fn collect(
    transport: &mut FakeTransport,
    log: &RecordingLog,
    config: &Config,
    list: &ListRequest,
    policy: Option<RetryPolicy>,
) -> (
    Vec<String>,
    Vec<Option<u64>>,
    RequestStats,
    Result<(), IntegrationError>,
) {
    let mut client = Client::new(config, transport, log);
    if let Some(policy) = policy {
        client = client.with_retry_policy(policy);
    }
    let mut seen = Vec::new();
    let mut totals = Vec::new();
    let result = client.for_each_page(list, |page| {
        totals.push(page.total);
        for item in page.items {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        Ok(())
    });
    let stats = client.stats();
    (seen, totals, stats, result)
}

fn fast_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(30),
        max_retry_after: Duration::from_secs(60),
    }
}

fn expect_invalid_response(result: Result<(), IntegrationError>) -> (String, String) {
    match result {
        Err(IntegrationError::InvalidResponse { endpoint, message }) => (endpoint, message),
        other => panic!("expected invalid-response, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------
// Paging
// ---------------------------------------------------------------------------------

#[test]
fn v1_paging_stops_when_skip_reaches_the_total() {
    let mut t = FakeTransport::new();
    t.on(&users_at(0), v1(Some(250), 0..100))
        .on(&users_at(100), v1(Some(250), 100..200))
        .on(&users_at(200), v1(Some(250), 200..250));
    let log = RecordingLog::default();
    let (seen, totals, stats, result) =
        collect(&mut t, &log, &config(None), &ListRequest::users(None), None);
    result.unwrap();
    let expected: Vec<String> = (0..250).map(|i| format!("u{i}")).collect();
    let mut sorted = seen.clone();
    sorted.sort_by_key(|id| id[1..].parse::<u32>().unwrap());
    assert_eq!(sorted, expected);
    assert_eq!(seen.len(), 250, "each item once");
    assert_eq!(totals, vec![Some(250); 3]);
    // No request for skip=300: the total was reached.
    assert_eq!(t.sent.len(), 3);
    assert_eq!(
        stats,
        RequestStats {
            requests: 3,
            retries: 0
        }
    );
}

#[test]
fn total_reached_on_a_page_boundary_needs_no_empty_page() {
    let mut t = FakeTransport::new();
    t.on(&users_at(0), v1(Some(200), 0..100))
        .on(&users_at(100), v1(Some(200), 100..200));
    let log = RecordingLog::default();
    let (seen, _, _, result) =
        collect(&mut t, &log, &config(None), &ListRequest::users(None), None);
    result.unwrap();
    assert_eq!(seen.len(), 200);
    assert_eq!(t.paths(), vec![users_at(0), users_at(100)]);
}

#[test]
fn short_last_page_below_the_total_still_ends_the_list() {
    // 250 announced, but dangling records were dropped: the last page is short.
    let mut t = FakeTransport::new();
    t.on(&users_at(0), v1(Some(250), 0..100))
        .on(&users_at(100), v1(Some(250), 100..170))
        .on(&users_at(200), v1(Some(250), 200..230));
    let log = RecordingLog::default();
    let (seen, _, _, result) =
        collect(&mut t, &log, &config(None), &ListRequest::users(None), None);
    result.unwrap();
    assert_eq!(seen.len(), 200);
    assert_eq!(t.sent.len(), 3);
}

#[test]
fn v2_paging_uses_the_x_total_count_header() {
    let mut t = FakeTransport::new();
    t.on(&groups_at(0), v2("g", Some(150), 0..100))
        .on(&groups_at(100), v2("g", Some(150), 100..150));
    let log = RecordingLog::default();
    let (seen, totals, _, result) = collect(
        &mut t,
        &log,
        &config(None),
        &ListRequest::user_groups(None),
        None,
    );
    result.unwrap();
    assert_eq!(seen.len(), 150);
    assert_eq!(seen[149], "g149");
    assert_eq!(totals, vec![Some(150), Some(150)]);
    assert_eq!(t.paths(), vec![groups_at(0), groups_at(100)]);
}

#[test]
fn without_a_total_a_short_page_does_not_stop_paging_only_an_empty_one_does() {
    let mut t = FakeTransport::new();
    t.on(&members_at("g1", 0), v2("m", None, 0..100))
        .on(&members_at("g1", 100), v2("m", None, 100..140))
        .on(&members_at("g1", 200), v2("m", None, 200..300))
        .on(&members_at("g1", 300), v2("m", None, 0..0));
    let log = RecordingLog::default();
    let (seen, totals, stats, result) = collect(
        &mut t,
        &log,
        &config(None),
        &ListRequest::group_members("g1", None),
        None,
    );
    result.unwrap();
    assert_eq!(seen.len(), 240, "the page after the short one was read");
    assert!(seen.contains(&"m299".to_owned()));
    assert_eq!(
        totals,
        vec![None, None, None],
        "the empty page is not handed on"
    );
    assert_eq!(
        t.paths(),
        vec![
            members_at("g1", 0),
            members_at("g1", 100),
            members_at("g1", 200),
            members_at("g1", 300)
        ]
    );
    // Without a total, one page at a time.
    assert!(t.batches.iter().all(|b| b.len() == 1), "{:?}", t.batches);
    assert_eq!(stats.requests, 4);
}

#[test]
fn v1_without_total_count_pages_until_an_empty_page() {
    let mut t = FakeTransport::new();
    t.on(&users_at(0), v1(None, 0..30))
        .on(&users_at(100), v1(None, 0..0));
    let log = RecordingLog::default();
    let (seen, _, _, result) =
        collect(&mut t, &log, &config(None), &ListRequest::users(None), None);
    result.unwrap();
    assert_eq!(seen.len(), 30);
    assert_eq!(t.sent.len(), 2);
}

#[test]
fn empty_first_page_ends_the_list_without_a_callback() {
    let mut t = FakeTransport::new();
    t.on(&users_at(0), v1(Some(0), 0..0));
    let log = RecordingLog::default();
    let (seen, totals, _, result) =
        collect(&mut t, &log, &config(None), &ListRequest::users(None), None);
    result.unwrap();
    assert!(seen.is_empty());
    assert!(totals.is_empty());
    assert_eq!(t.sent.len(), 1);
}

#[test]
fn later_pages_are_fetched_concurrently_once_the_total_is_known() {
    let mut t = FakeTransport::new();
    t.on(&users_at(0), v1(Some(550), 0..100));
    for skip in (100..550).step_by(100) {
        t.on(&users_at(skip), v1(Some(550), skip..(skip + 100).min(550)));
    }
    let log = RecordingLog::default();
    let conf = config(None);
    let mut seen = 0;
    let mut client = Client::new(&conf, &mut t, &log).with_concurrency(3);
    client
        .for_each_page(&ListRequest::users(None), |page| {
            seen += page.items.len();
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, 550);
    // The first page alone (for the total), then three at once, then one more each
    // time a slot frees up: never more than three in flight.
    assert_eq!(
        t.batches,
        vec![
            vec![users_at(0)],
            vec![users_at(100), users_at(200), users_at(300)],
            vec![users_at(400)],
            vec![users_at(500)],
        ]
    );
    assert_eq!(t.max_in_flight, 3);
}

#[test]
fn default_concurrency_sends_all_known_pages_together() {
    let mut t = FakeTransport::new();
    t.on(&groups_at(0), v2("g", Some(450), 0..100));
    for skip in (100..450).step_by(100) {
        t.on(
            &groups_at(skip),
            v2("g", Some(450), skip..(skip + 100).min(450)),
        );
    }
    let log = RecordingLog::default();
    let (seen, _, _, result) = collect(
        &mut t,
        &log,
        &config(None),
        &ListRequest::user_groups(None),
        None,
    );
    result.unwrap();
    assert_eq!(seen.len(), 450);
    assert_eq!(t.batches.len(), 2);
    // Four remaining pages, within the default bound of eight.
    assert_eq!(t.batches[1].len(), 4.min(DEFAULT_CONCURRENCY));
}

#[test]
fn many_lists_are_fetched_side_by_side_within_the_concurrency_bound() {
    let mut t = FakeTransport::new();
    let groups = ["g1", "g2", "g3", "g4", "g5"];
    for (n, group) in groups.iter().enumerate() {
        t.on(&members_at(group, 0), v2(group, None, 0..(n as u64 + 1)))
            .on(&members_at(group, 100), v2(group, None, 0..0));
    }
    let log = RecordingLog::default();
    let conf = config(None);
    let lists: Vec<ListRequest> = groups
        .iter()
        .map(|g| ListRequest::group_members(g, None))
        .collect();
    let mut per_list = vec![0usize; groups.len()];
    let mut client = Client::new(&conf, &mut t, &log).with_concurrency(2);
    let outcomes = client
        .for_each_page_of_many(&lists, |index, page| {
            per_list[index] += page.items.len();
            Ok(())
        })
        .unwrap();
    assert!(outcomes.iter().all(Result::is_ok));
    assert_eq!(per_list, vec![1, 2, 3, 4, 5]);
    assert_eq!(t.sent.len(), 10);
    assert_eq!(t.max_in_flight, 2);
    assert_eq!(t.batches[0], vec![members_at("g1", 0), members_at("g2", 0)]);
}

// ---------------------------------------------------------------------------------
// Requests: headers and query
// ---------------------------------------------------------------------------------

fn header<'r>(request: &'r HttpRequest, name: &str) -> Vec<&'r str> {
    request
        .headers
        .iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn requests_carry_the_key_json_headers_and_the_org_only_when_set() {
    let mut t = FakeTransport::new();
    t.on(&users_at(0), v1(Some(1), 0..1));
    let log = RecordingLog::default();
    let conf = config(Some("60259a2ad81e1a474d4e7c83"));
    let (_, _, _, result) = collect(
        &mut t,
        &log,
        &conf,
        &ListRequest::users(conf.org_id.as_deref()),
        None,
    );
    result.unwrap();
    let request = &t.sent[0].1;
    assert_eq!(request.scheme, "https");
    assert_eq!(request.authority, "console.jumpcloud.com");
    assert_eq!(
        request.path_and_query,
        "/api/systemusers?limit=100&skip=0&sort=_id"
    );
    assert_eq!(header(request, "x-api-key"), vec![KEY]);
    assert_eq!(header(request, "accept"), vec!["application/json"]);
    assert_eq!(header(request, "content-type"), vec!["application/json"]);
    assert_eq!(
        header(request, "x-org-id"),
        vec!["60259a2ad81e1a474d4e7c83"]
    );

    let mut t = FakeTransport::new();
    t.on(&users_at(0), v1(Some(1), 0..1));
    let (_, _, _, result) = collect(&mut t, &log, &config(None), &ListRequest::users(None), None);
    result.unwrap();
    assert!(header(&t.sent[0].1, "x-org-id").is_empty());
    assert_eq!(header(&t.sent[0].1, "x-api-key"), vec![KEY]);
}

#[test]
fn organizations_are_never_read_with_an_org_header() {
    let mut t = FakeTransport::new();
    t.on(
        "/api/organizations?limit=100&skip=0&sort=_id",
        v1(Some(2), 0..2),
    );
    let log = RecordingLog::default();
    // Even with an organization configured.
    let (seen, _, _, result) = collect(
        &mut t,
        &log,
        &config(Some("60259a2ad81e1a474d4e7c83")),
        &ListRequest::organizations(),
        None,
    );
    result.unwrap();
    assert_eq!(seen.len(), 2);
    assert!(header(&t.sent[0].1, "x-org-id").is_empty());
    assert_eq!(header(&t.sent[0].1, "x-api-key"), vec![KEY]);
}

#[test]
fn query_has_limit_skip_and_sort_where_the_endpoint_takes_one() {
    assert_eq!(ListRequest::users(None).sort, Some("_id"));
    assert_eq!(ListRequest::applications(None).sort, Some("_id"));
    assert_eq!(ListRequest::user_groups(None).sort, Some("id"));
    assert_eq!(ListRequest::group_members("g", None).sort, None);
    assert_eq!(ListRequest::application_users("a", None).sort, None);
    assert_eq!(ListRequest::application_groups("a", None).sort, None);

    let mut t = FakeTransport::new();
    for (path, reply) in [
        (
            "/api/applications?limit=100&skip=0&sort=_id",
            v1(None, 0..0),
        ),
        (
            "/api/v2/usergroups?limit=100&skip=0&sort=id",
            v2("g", None, 0..0),
        ),
        (
            "/api/v2/applications/a1/users?limit=100&skip=0",
            v2("u", None, 0..0),
        ),
        (
            "/api/v2/applications/a1/usergroups?limit=100&skip=0",
            v2("g", None, 0..0),
        ),
    ] {
        t.on(path, reply);
    }
    let log = RecordingLog::default();
    let conf = config(None);
    let lists = [
        ListRequest::applications(Some("org1")),
        ListRequest::user_groups(Some("org1")),
        ListRequest::application_users("a1", Some("org1")),
        ListRequest::application_groups("a1", Some("org1")),
    ];
    let mut client = Client::new(&conf, &mut t, &log);
    let outcomes = client.for_each_page_of_many(&lists, |_, _| Ok(())).unwrap();
    assert!(outcomes.iter().all(Result::is_ok));
    assert!(t.unanswered().is_empty(), "{:?}", t.unanswered());
    for (_, request) in &t.sent {
        assert_eq!(header(request, "x-org-id"), vec!["org1"]);
    }
}

#[test]
fn probe_reads_one_organization_only() {
    let mut t = FakeTransport::new();
    t.on(
        "/api/organizations?limit=1&skip=0&sort=_id",
        v1(Some(40), 0..1),
    );
    let log = RecordingLog::default();
    let conf = config(Some("60259a2ad81e1a474d4e7c83"));
    let mut client = Client::new(&conf, &mut t, &log);
    client.probe().unwrap();
    assert_eq!(client.stats().requests, 1);
    assert_eq!(t.sent.len(), 1, "no further pages although the total is 40");
    assert!(header(&t.sent[0].1, "x-org-id").is_empty());
}

// ---------------------------------------------------------------------------------
// Error statuses
// ---------------------------------------------------------------------------------

#[test]
fn unauthorized_is_an_authentication_error_naming_the_field_and_not_retried() {
    let mut t = FakeTransport::new();
    t.on(&users_at(0), status(401, r#"{"message":"Unauthorized"}"#));
    let log = RecordingLog::default();
    let (_, _, stats, result) =
        collect(&mut t, &log, &config(None), &ListRequest::users(None), None);
    let message = match result {
        Err(IntegrationError::Authentication(message)) => message,
        other => panic!("expected authentication, got {other:?}"),
    };
    assert!(message.contains("apiKey"), "{message}");
    assert!(message.contains("/api/systemusers"), "{message}");
    assert!(message.contains("Unauthorized"), "{message}");
    assert!(!message.contains(KEY), "{message}");
    assert_eq!(t.sent.len(), 1);
    assert_eq!(
        stats,
        RequestStats {
            requests: 1,
            retries: 0
        }
    );
    assert!(t.sleeps.is_empty());
}

#[test]
fn unauthorized_in_one_of_many_lists_aborts_them_all() {
    let mut t = FakeTransport::new();
    t.on(
        &members_at("g1", 0),
        status(401, r#"{"message":"Unauthorized"}"#),
    )
    .on(&members_at("g2", 0), v2("m", None, 0..1));
    let log = RecordingLog::default();
    let conf = config(None);
    let lists = [
        ListRequest::group_members("g1", None),
        ListRequest::group_members("g2", None),
    ];
    let mut client = Client::new(&conf, &mut t, &log);
    let result = client.for_each_page_of_many(&lists, |_, _| Ok(()));
    assert!(
        matches!(result, Err(IntegrationError::Authentication(_))),
        "{result:?}"
    );
    assert_eq!(t.count(&members_at("g2", 100)), 0);
}

#[test]
fn forbidden_is_an_authorization_error_with_the_endpoint() {
    let mut t = FakeTransport::new();
    t.on(
        &groups_at(0),
        status(403, r#"{"message":"Forbidden: insufficient role"}"#),
    );
    let log = RecordingLog::default();
    let (_, _, _, result) = collect(
        &mut t,
        &log,
        &config(None),
        &ListRequest::user_groups(None),
        None,
    );
    match result {
        Err(IntegrationError::Authorization { endpoint, message }) => {
            assert_eq!(endpoint, "/api/v2/usergroups");
            assert!(message.contains("403"), "{message}");
            assert!(message.contains("insufficient role"), "{message}");
        }
        other => panic!("expected authorization, got {other:?}"),
    }
    assert_eq!(t.sent.len(), 1);
}

#[test]
fn not_found_on_one_of_many_lists_fails_only_that_list() {
    let mut t = FakeTransport::new();
    t.on(&members_at("g1", 0), v2("a", None, 0..3))
        .on(&members_at("g1", 100), v2("a", None, 0..0))
        .on(
            &members_at("gone", 0),
            status(404, r#"{"message":"Not Found"}"#),
        )
        .on(&members_at("g3", 0), v2("c", Some(2), 0..2));
    let log = RecordingLog::default();
    let conf = config(None);
    let lists = [
        ListRequest::group_members("g1", None),
        ListRequest::group_members("gone", None),
        ListRequest::group_members("g3", None),
    ];
    let mut per_list = vec![0usize; 3];
    let mut client = Client::new(&conf, &mut t, &log);
    let outcomes = client
        .for_each_page_of_many(&lists, |index, page| {
            per_list[index] += page.items.len();
            Ok(())
        })
        .unwrap();
    assert!(outcomes[0].is_ok());
    assert!(outcomes[2].is_ok());
    assert_eq!(
        outcomes[1],
        Err(IntegrationError::ProviderApi {
            status: 404,
            endpoint: "/api/v2/usergroups/gone/members".to_owned(),
            message: "Not Found".to_owned(),
        })
    );
    assert_eq!(per_list, vec![3, 0, 2]);
    assert_eq!(t.count(&members_at("gone", 0)), 1, "a 404 is not retried");
    assert!(t.unanswered().is_empty());
}

#[test]
fn too_many_requests_honours_retry_after() {
    let mut t = FakeTransport::new();
    t.on(
        &users_at(0),
        response(
            429,
            &[("retry-after", "2")],
            r#"{"message":"Too Many Requests"}"#,
        ),
    )
    .on(&users_at(0), v1(Some(3), 0..3));
    let log = RecordingLog::default();
    let (seen, _, stats, result) =
        collect(&mut t, &log, &config(None), &ListRequest::users(None), None);
    result.unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(t.sleeps, vec![Duration::from_secs(2)]);
    assert_eq!(
        t.times_of(&users_at(0)),
        vec![Duration::ZERO, Duration::from_secs(2)]
    );
    assert_eq!(
        stats,
        RequestStats {
            requests: 2,
            retries: 1
        }
    );
    let lines = log.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("Warn retrying a request"), "{lines:?}");
    assert!(lines[0].contains("endpoint=/api/systemusers"), "{lines:?}");
    assert!(lines[0].contains("reason=HTTP 429"), "{lines:?}");
    assert!(lines[0].contains("delay=2000ms"), "{lines:?}");
}

#[test]
fn too_many_requests_without_retry_after_backs_off_exponentially() {
    let mut t = FakeTransport::new();
    t.on(&users_at(0), status(429, "{}"))
        .on(&users_at(0), status(429, "{}"))
        .on(&users_at(0), v1(Some(1), 0..1));
    t.random = 0.5;
    let log = RecordingLog::default();
    let policy = fast_policy(6);
    let (seen, _, stats, result) = collect(
        &mut t,
        &log,
        &config(None),
        &ListRequest::users(None),
        Some(policy.clone()),
    );
    result.unwrap();
    assert_eq!(seen, vec!["u0"]);
    // 1 s then 2 s steps, at 75% with a jitter of 0.5.
    assert_eq!(
        t.sleeps,
        vec![Duration::from_millis(750), Duration::from_millis(1500)]
    );
    assert_eq!(t.sleeps[0], policy.backoff(1, 0.5));
    assert_eq!(
        t.times_of(&users_at(0)),
        vec![
            Duration::ZERO,
            Duration::from_millis(750),
            Duration::from_millis(2250)
        ]
    );
    assert_eq!(
        stats,
        RequestStats {
            requests: 3,
            retries: 2
        }
    );
}

#[test]
fn service_unavailable_then_success() {
    let mut t = FakeTransport::new();
    t.on(&groups_at(0), status(503, r#"{"message":"down"}"#))
        .on(&groups_at(0), v2("g", Some(2), 0..2));
    let log = RecordingLog::default();
    let (seen, _, stats, result) = collect(
        &mut t,
        &log,
        &config(None),
        &ListRequest::user_groups(None),
        None,
    );
    result.unwrap();
    assert_eq!(seen, vec!["g0", "g1"]);
    assert_eq!(
        stats,
        RequestStats {
            requests: 2,
            retries: 1
        }
    );
    assert_eq!(t.sleeps.len(), 1);
}

#[test]
fn persistent_too_many_requests_ends_rate_limited_after_max_attempts() {
    let mut t = FakeTransport::new();
    for _ in 0..4 {
        t.on(&users_at(0), response(429, &[("retry-after", "1")], "{}"));
    }
    let log = RecordingLog::default();
    let (seen, _, stats, result) = collect(
        &mut t,
        &log,
        &config(None),
        &ListRequest::users(None),
        Some(fast_policy(3)),
    );
    assert!(seen.is_empty());
    match result {
        Err(IntegrationError::RateLimited { endpoint, message }) => {
            assert_eq!(endpoint, "/api/systemusers");
            assert!(message.contains("3 attempts"), "{message}");
        }
        other => panic!("expected rate-limited, got {other:?}"),
    }
    assert_eq!(t.count(&users_at(0)), 3);
    assert_eq!(
        stats,
        RequestStats {
            requests: 3,
            retries: 2
        }
    );
    assert_eq!(t.sleeps, vec![Duration::from_secs(1); 2]);
}

#[test]
fn persistent_server_error_ends_as_a_provider_error() {
    let mut t = FakeTransport::new();
    for _ in 0..2 {
        t.on(&users_at(0), status(500, r#"{"message":"boom"}"#));
    }
    let log = RecordingLog::default();
    let (_, _, _, result) = collect(
        &mut t,
        &log,
        &config(None),
        &ListRequest::users(None),
        Some(fast_policy(2)),
    );
    match result {
        Err(IntegrationError::ProviderApi {
            status,
            endpoint,
            message,
        }) => {
            assert_eq!(status, 500);
            assert_eq!(endpoint, "/api/systemusers");
            assert!(message.contains("boom"), "{message}");
            assert!(message.contains("after 2 attempts"), "{message}");
        }
        other => panic!("expected provider-api, got {other:?}"),
    }
    assert_eq!(t.sent.len(), 2);
}

#[test]
fn a_retried_page_does_not_hold_up_the_others() {
    let mut t = FakeTransport::new();
    t.on(&users_at(0), v1(Some(300), 0..100))
        .on(&users_at(100), response(429, &[("retry-after", "3")], "{}"))
        .on(&users_at(100), v1(Some(300), 100..200))
        .on(&users_at(200), v1(Some(300), 200..300));
    let log = RecordingLog::default();
    let (seen, _, stats, result) =
        collect(&mut t, &log, &config(None), &ListRequest::users(None), None);
    result.unwrap();
    assert_eq!(seen.len(), 300);
    assert_eq!(t.batches[1], vec![users_at(100), users_at(200)]);
    assert_eq!(t.batches[2], vec![users_at(100)]);
    assert_eq!(t.times_of(&users_at(100))[1], Duration::from_secs(3));
    assert_eq!(
        stats,
        RequestStats {
            requests: 4,
            retries: 1
        }
    );
}

// ---------------------------------------------------------------------------------
// Transport failures
// ---------------------------------------------------------------------------------

#[test]
fn connection_errors_are_retried() {
    let mut t = FakeTransport::new();
    t.on(
        &users_at(0),
        Err(TransportError::Connection("reset by peer".into())),
    )
    .on(
        &users_at(0),
        Err(TransportError::Timeout("first byte".into())),
    )
    .on(&users_at(0), v1(Some(1), 0..1));
    let log = RecordingLog::default();
    let (seen, _, stats, result) = collect(
        &mut t,
        &log,
        &config(None),
        &ListRequest::users(None),
        Some(fast_policy(5)),
    );
    result.unwrap();
    assert_eq!(seen, vec!["u0"]);
    assert_eq!(
        stats,
        RequestStats {
            requests: 3,
            retries: 2
        }
    );
    assert_eq!(t.sleeps.len(), 2);
    assert!(
        log.lines()[0].contains("reset by peer"),
        "{:?}",
        log.lines()
    );
}

#[test]
fn connection_errors_that_persist_end_as_a_transport_error() {
    let mut t = FakeTransport::new();
    for _ in 0..2 {
        t.on(
            &users_at(0),
            Err(TransportError::Connection("refused".into())),
        );
    }
    let log = RecordingLog::default();
    let (_, _, _, result) = collect(
        &mut t,
        &log,
        &config(None),
        &ListRequest::users(None),
        Some(fast_policy(2)),
    );
    match result {
        Err(IntegrationError::Transport { endpoint, message }) => {
            assert_eq!(endpoint, "/api/systemusers");
            assert!(message.contains("refused"), "{message}");
            assert!(message.contains("after 2 attempts"), "{message}");
        }
        other => panic!("expected transport, got {other:?}"),
    }
}

#[test]
fn egress_denial_is_not_retried() {
    let mut t = FakeTransport::new();
    t.on(
        &users_at(0),
        Err(TransportError::Denied {
            authority: "console.jumpcloud.com".into(),
        }),
    );
    let log = RecordingLog::default();
    let (_, _, stats, result) =
        collect(&mut t, &log, &config(None), &ListRequest::users(None), None);
    assert_eq!(
        result,
        Err(IntegrationError::EgressDenied(
            "console.jumpcloud.com".into()
        ))
    );
    assert_eq!(
        stats,
        RequestStats {
            requests: 1,
            retries: 0
        }
    );
    assert!(t.sleeps.is_empty());
}

#[test]
fn oversized_bodies_are_not_retried() {
    let mut t = FakeTransport::new();
    t.on(
        &users_at(0),
        Err(TransportError::TooLarge("more than 64 MiB".into())),
    );
    let log = RecordingLog::default();
    let (_, _, _, result) = collect(&mut t, &log, &config(None), &ListRequest::users(None), None);
    match result {
        Err(IntegrationError::Transport { endpoint, message }) => {
            assert_eq!(endpoint, "/api/systemusers");
            assert!(message.contains("too large"), "{message}");
        }
        other => panic!("expected transport, got {other:?}"),
    }
    assert_eq!(t.sent.len(), 1);
}

// ---------------------------------------------------------------------------------
// Unreadable bodies
// ---------------------------------------------------------------------------------

fn invalid_body(list: ListRequest, path: &str, reply: Reply) -> (String, String) {
    let mut t = FakeTransport::new();
    t.on(path, reply);
    let log = RecordingLog::default();
    let (seen, _, _, result) = collect(&mut t, &log, &config(None), &list, None);
    assert!(seen.is_empty());
    assert_eq!(t.sent.len(), 1, "an unreadable body is not retried");
    expect_invalid_response(result)
}

#[test]
fn malformed_json_names_the_endpoint() {
    let (endpoint, message) = invalid_body(
        ListRequest::users(None),
        &users_at(0),
        status(200, r#"{"totalCount": 3, "results": [{"_id": "u"#),
    );
    assert_eq!(endpoint, "/api/systemusers");
    assert!(message.contains("malformed or truncated JSON"), "{message}");
}

#[test]
fn html_body_names_its_content_type() {
    let (endpoint, message) = invalid_body(
        ListRequest::user_groups(None),
        &groups_at(0),
        response(
            200,
            &[("content-type", "text/html; charset=utf-8")],
            "<html><body>Maintenance</body></html>",
        ),
    );
    assert_eq!(endpoint, "/api/v2/usergroups");
    assert!(message.contains("text/html"), "{message}");
    assert!(message.contains("<html>"), "{message}");
}

#[test]
fn wrong_envelopes_are_named() {
    let (endpoint, message) = invalid_body(
        ListRequest::users(None),
        &users_at(0),
        status(200, r#"[{"_id": "u1"}]"#),
    );
    assert_eq!(endpoint, "/api/systemusers");
    assert!(message.contains("expected an object"), "{message}");
    assert!(message.contains("found an array"), "{message}");

    let (_, message) = invalid_body(
        ListRequest::users(None),
        &users_at(0),
        status(200, r#"{"totalCount": 1, "data": []}"#),
    );
    assert!(message.contains("no `results`"), "{message}");

    let (_, message) = invalid_body(
        ListRequest::users(None),
        &users_at(0),
        status(200, r#"{"totalCount": 1, "results": {"_id": "u1"}}"#),
    );
    assert!(message.contains("`results` is an object"), "{message}");

    let (_, message) = invalid_body(
        ListRequest::users(None),
        &users_at(0),
        status(200, r#"{"totalCount": -1, "results": []}"#),
    );
    assert!(message.contains("totalCount"), "{message}");

    let (endpoint, message) = invalid_body(
        ListRequest::user_groups(None),
        &groups_at(0),
        status(200, r#"{"totalCount": 1, "results": []}"#),
    );
    assert_eq!(endpoint, "/api/v2/usergroups");
    assert!(
        message.contains("expected an array, found an object"),
        "{message}"
    );

    let (_, message) = invalid_body(
        ListRequest::user_groups(None),
        &groups_at(0),
        response(200, &[("x-total-count", "lots")], "[]"),
    );
    assert!(message.contains("x-total-count"), "{message}");
}

#[test]
fn non_object_items_are_named_by_position() {
    let (endpoint, message) = invalid_body(
        ListRequest::group_members("g1", None),
        &members_at("g1", 0),
        status(200, r#"[{"id": "a"}, 42]"#),
    );
    assert_eq!(endpoint, "/api/v2/usergroups/g1/members");
    assert!(message.contains("item 1 is a number"), "{message}");
}

#[test]
fn error_from_the_page_handler_aborts_paging() {
    let mut t = FakeTransport::new();
    t.on(&users_at(0), v1(None, 0..100));
    let log = RecordingLog::default();
    let conf = config(None);
    let mut client = Client::new(&conf, &mut t, &log);
    let result = client.for_each_page(&ListRequest::users(None), |_| {
        Err(IntegrationError::Internal("handler failed".into()))
    });
    assert_eq!(
        result,
        Err(IntegrationError::Internal("handler failed".into()))
    );
    assert_eq!(t.sent.len(), 1, "no page after the failing one");
}

// ---------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------

#[test]
fn the_api_key_never_reaches_a_log_line_or_an_error() {
    let mut t = FakeTransport::new();
    let conf = config(Some("60259a2ad81e1a474d4e7c83"));
    t.on(&users_at(0), response(429, &[("retry-after", "1")], "{}"))
        .on(
            &users_at(0),
            Err(TransportError::Connection("reset".into())),
        )
        .on(&users_at(0), status(503, "{}"))
        .on(&users_at(0), v1(Some(150), 0..100))
        .on(&users_at(100), status(500, "{}"))
        .on(&users_at(100), v1(Some(150), 100..150))
        .on(&groups_at(0), status(401, r#"{"message":"Unauthorized"}"#));
    let log = RecordingLog::default();
    let mut errors = Vec::new();
    {
        let mut client = Client::new(&conf, &mut t, &log);
        client
            .for_each_page(&ListRequest::users(conf.org_id.as_deref()), |_| Ok(()))
            .unwrap();
        errors.push(
            client
                .for_each_page(&ListRequest::user_groups(None), |_| Ok(()))
                .unwrap_err(),
        );
    }
    let lines = log.lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    for line in &lines {
        assert!(!line.contains(KEY), "{line}");
        assert!(!line.contains("S3cret"), "{line}");
    }
    for error in &errors {
        assert!(!error.to_string().contains(KEY), "{error}");
        assert!(!format!("{error:?}").contains(KEY), "{error:?}");
    }
    // The key did go out, in its header only.
    assert!(
        t.sent
            .iter()
            .all(|(_, r)| header(r, "x-api-key") == vec![KEY])
    );
    assert!(t.sent.iter().all(|(_, r)| !r.path_and_query.contains(KEY)));
}

#[test]
fn parse_time_counts_only_bodies_that_were_parsed() {
    let mut t = FakeTransport::new();
    t.on(&users_at(0), status(503, r#"{"message":"down"}"#))
        .on(&users_at(0), status(404, r#"{"message":"gone"}"#));
    let log = RecordingLog::default();
    let conf = config(None);
    let mut client = Client::new(&conf, &mut t, &log);
    assert!(
        client
            .for_each_page(&ListRequest::users(None), |_| Ok(()))
            .is_err()
    );
    assert_eq!(
        client.parse_time(),
        Duration::ZERO,
        "error bodies are not pages"
    );

    let mut t = FakeTransport::new();
    t.on(&users_at(0), v1(Some(100), 0..100));
    let mut client = Client::new(&conf, &mut t, &log);
    client
        .for_each_page(&ListRequest::users(None), |_| Ok(()))
        .unwrap();
    assert!(client.parse_time() > Duration::ZERO);
}

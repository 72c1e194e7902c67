//! The JumpCloud API client: endpoints, headers, paging, organization selection,
//! retries and concurrency.
//!
//! Paging follows `jumpcloud-api.md`: `limit=100` with `skip`, sorted by id where the
//! endpoint allows, and a list ends only on an empty page or when `skip` reaches the
//! total (a short page proves nothing: JumpCloud drops dangling associations after
//! paging). Once a list's total is known, its remaining pages are fetched concurrently;
//! many lists (the members of many groups) are fetched side by side, up to the
//! configured number of requests in flight. Each response is handled as it lands while
//! the others stay in flight, so converting one page overlaps waiting for the next.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use serde_json::value::RawValue;

use crate::config::Config;
use crate::convert::Object;
use crate::error::IntegrationError;
use crate::retry::{RetryPolicy, is_transient_status};
use crate::transport::{HttpRequest, HttpResponse, Logger, Transport, TransportError};

/// Page size: the API's maximum.
pub const PAGE_SIZE: u64 = 100;

/// Requests in flight at once unless configured otherwise.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// How a list endpoint wraps its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// v1: `{"totalCount": N, "results": [...]}`.
    V1,
    /// v2: a bare array, the total in the `x-total-count` header (optional).
    V2,
}

/// One list endpoint to page through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// The path without query, e.g. `/api/systemusers`.
    pub path: String,
    pub envelope: Envelope,
    /// A stable sort on a unique field, where the endpoint accepts one.
    pub sort: Option<&'static str>,
    /// The organization to read (`x-org-id`), for multi-organization keys.
    pub org_id: Option<String>,
    /// More query parameters, e.g. `targets=user_group` (one target per call).
    pub params: Option<&'static str>,
}

impl ListRequest {
    /// `GET /api/organizations`: never with `x-org-id` (the API answers 403).
    pub fn organizations() -> Self {
        ListRequest {
            path: "/api/organizations".into(),
            envelope: Envelope::V1,
            sort: Some("_id"),
            org_id: None,
            params: None,
        }
    }

    pub fn users(org_id: Option<&str>) -> Self {
        Self::v1("/api/systemusers".into(), org_id)
    }

    pub fn applications(org_id: Option<&str>) -> Self {
        Self::v1("/api/applications".into(), org_id)
    }

    pub fn user_groups(org_id: Option<&str>) -> Self {
        Self::v2_sorted("/api/v2/usergroups".into(), org_id)
    }

    /// `GET /api/v2/applemdms`: no sort; its default limit is 1, the client always
    /// sends 100.
    pub fn apple_mdms(org_id: Option<&str>) -> Self {
        Self::v2_unsorted("/api/v2/applemdms".into(), org_id)
    }

    /// The devices enrolled in one Apple MDM (documented as sortable by `id`).
    pub fn apple_devices(mdm_id: &str, org_id: Option<&str>) -> Self {
        Self::v2_sorted(format!("/api/v2/applemdms/{mdm_id}/devices"), org_id)
    }

    /// `GET /api/systems`, the agent-managed devices.
    pub fn systems(org_id: Option<&str>) -> Self {
        Self::v1("/api/systems".into(), org_id)
    }

    /// `GET /api/v2/systemgroups` (`sort=id` is undocumented there, but accepted).
    pub fn system_groups(org_id: Option<&str>) -> Self {
        Self::v2_sorted("/api/v2/systemgroups".into(), org_id)
    }

    /// `GET /api/v2/policies` (`sort=id` is undocumented there, but accepted).
    pub fn policies(org_id: Option<&str>) -> Self {
        Self::v2_sorted("/api/v2/policies".into(), org_id)
    }

    /// `GET /api/users`: console administrators. Undocumented route: no sort.
    pub fn administrators(org_id: Option<&str>) -> Self {
        ListRequest {
            sort: None,
            ..Self::v1("/api/users".into(), org_id)
        }
    }

    /// Direct members of a system group.
    pub fn system_group_members(group_id: &str, org_id: Option<&str>) -> Self {
        Self::v2_unsorted(format!("/api/v2/systemgroups/{group_id}/members"), org_id)
    }

    /// Direct bindings of a system group to one kind of target (`user`, `user_group`).
    pub fn system_group_associations(group_id: &str, target: Target, org_id: Option<&str>) -> Self {
        ListRequest {
            params: Some(target.param()),
            ..Self::v2_unsorted(
                format!("/api/v2/systemgroups/{group_id}/associations"),
                org_id,
            )
        }
    }

    /// The users who can log into a system, directly or through groups.
    pub fn system_users(system_id: &str, org_id: Option<&str>) -> Self {
        Self::v2_unsorted(format!("/api/v2/systems/{system_id}/users"), org_id)
    }

    /// The systems a policy applies to, directly or through system groups.
    pub fn policy_systems(policy_id: &str, org_id: Option<&str>) -> Self {
        Self::v2_unsorted(format!("/api/v2/policies/{policy_id}/systems"), org_id)
    }

    /// The system groups bound to a policy.
    pub fn policy_system_groups(policy_id: &str, org_id: Option<&str>) -> Self {
        ListRequest {
            params: Some(Target::SystemGroup.param()),
            ..Self::v2_unsorted(format!("/api/v2/policies/{policy_id}/associations"), org_id)
        }
    }

    /// The results of a policy on its systems (never `/api/v2/policyresults`).
    pub fn policy_statuses(policy_id: &str, org_id: Option<&str>) -> Self {
        Self::v2_unsorted(
            format!("/api/v2/policies/{policy_id}/policystatuses"),
            org_id,
        )
    }

    /// The same list without its sort (for an API that refuses it).
    pub fn unsorted(&self) -> Self {
        ListRequest {
            sort: None,
            ..self.clone()
        }
    }

    /// Direct members of a user group. The endpoint takes no sort: edges are
    /// de-duplicated by the caller.
    pub fn group_members(group_id: &str, org_id: Option<&str>) -> Self {
        Self::v2_unsorted(format!("/api/v2/usergroups/{group_id}/members"), org_id)
    }

    /// Users bound to an application, directly or through a group.
    pub fn application_users(app_id: &str, org_id: Option<&str>) -> Self {
        Self::v2_unsorted(format!("/api/v2/applications/{app_id}/users"), org_id)
    }

    /// User groups bound to an application.
    pub fn application_groups(app_id: &str, org_id: Option<&str>) -> Self {
        Self::v2_unsorted(format!("/api/v2/applications/{app_id}/usergroups"), org_id)
    }

    fn v1(path: String, org_id: Option<&str>) -> Self {
        ListRequest {
            path,
            envelope: Envelope::V1,
            sort: Some("_id"),
            org_id: org_id.map(str::to_owned),
            params: None,
        }
    }

    fn v2_sorted(path: String, org_id: Option<&str>) -> Self {
        ListRequest {
            sort: Some("id"),
            ..Self::v2_unsorted(path, org_id)
        }
    }

    fn v2_unsorted(path: String, org_id: Option<&str>) -> Self {
        ListRequest {
            path,
            envelope: Envelope::V2,
            sort: None,
            org_id: org_id.map(str::to_owned),
            params: None,
        }
    }
}

/// The kind of object an `associations` call lists (one per call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    User,
    UserGroup,
    SystemGroup,
}

impl Target {
    fn param(self) -> &'static str {
        match self {
            Target::User => "targets=user",
            Target::UserGroup => "targets=user_group",
            Target::SystemGroup => "targets=system_group",
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Object>,
    /// Each item's JSON text as received, in the same order.
    pub raw: Vec<Box<RawValue>>,
    /// The list's total, when the API reported one.
    pub total: Option<u64>,
}

/// Requests made and retried, for the step report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestStats {
    pub requests: u32,
    pub retries: u32,
}

/// A JumpCloud API client over some [`Transport`].
pub struct Client<'a, T: Transport> {
    config: &'a Config,
    transport: &'a mut T,
    log: &'a dyn Logger,
    policy: RetryPolicy,
    concurrency: usize,
    stats: RequestStats,
    /// Time spent parsing response bodies.
    parse_time: Duration,
}

/// One page request waiting to be sent (or re-sent).
struct PendingPage {
    list: usize,
    skip: u64,
    limit: u64,
    /// Attempts made so far.
    attempts: u32,
    /// Monotonic time before which it must not be sent (retry delay).
    not_before: Duration,
}

/// Paging state of one list.
#[derive(Default)]
struct ListProgress {
    /// The next `skip` not yet scheduled.
    next_skip: u64,
    total: Option<u64>,
    in_flight: usize,
    finished: bool,
    error: Option<IntegrationError>,
}

/// What became of one attempt.
enum Attempt {
    Page {
        items: Vec<Object>,
        raw: Vec<Box<RawValue>>,
        total: Option<u64>,
    },
    Retry {
        delay: Duration,
        reason: String,
    },
    Failed(IntegrationError),
}

impl<'a, T: Transport> Client<'a, T> {
    pub fn new(config: &'a Config, transport: &'a mut T, log: &'a dyn Logger) -> Self {
        Client {
            config,
            transport,
            log,
            policy: RetryPolicy::default(),
            concurrency: DEFAULT_CONCURRENCY,
            stats: RequestStats::default(),
            parse_time: Duration::ZERO,
        }
    }

    /// Sets how many requests may be in flight at once (at least one).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn stats(&self) -> RequestStats {
        self.stats
    }

    /// Time spent parsing response bodies (a CPU cost, for the step report).
    pub fn parse_time(&self) -> Duration {
        self.parse_time
    }

    /// Checks the credentials with the cheapest authenticated call: one organization.
    pub fn probe(&mut self) -> Result<(), IntegrationError> {
        let list = ListRequest::organizations();
        let mut results =
            self.page_lists(std::slice::from_ref(&list), 1, true, &mut |_, _| Ok(()))?;
        results.pop().unwrap_or(Ok(()))
    }

    /// Pages through one list, handing each page to `on_page` as it arrives.
    pub fn for_each_page(
        &mut self,
        list: &ListRequest,
        mut on_page: impl FnMut(Page) -> Result<(), IntegrationError>,
    ) -> Result<(), IntegrationError> {
        let mut results = self.page_lists(
            std::slice::from_ref(list),
            PAGE_SIZE,
            false,
            &mut |_, page| on_page(page),
        )?;
        results.pop().unwrap_or(Ok(()))
    }

    /// Pages through many lists concurrently, handing each page to `on_page` with the
    /// index of its list. The outer error aborts everything (a fatal API error, or an
    /// error from `on_page`); the inner results say how each list ended, so that one
    /// missing group does not cost the others.
    pub fn for_each_page_of_many(
        &mut self,
        lists: &[ListRequest],
        mut on_page: impl FnMut(usize, Page) -> Result<(), IntegrationError>,
    ) -> Result<Vec<Result<(), IntegrationError>>, IntegrationError> {
        self.page_lists(lists, PAGE_SIZE, false, &mut on_page)
    }

    fn page_lists(
        &mut self,
        lists: &[ListRequest],
        limit: u64,
        first_page_only: bool,
        on_page: &mut dyn FnMut(usize, Page) -> Result<(), IntegrationError>,
    ) -> Result<Vec<Result<(), IntegrationError>>, IntegrationError> {
        let result = self.drive(lists, limit, first_page_only, on_page);
        // An early exit (a fatal error) leaves requests in flight: they belong to
        // nobody now.
        self.transport.cancel_all();
        result
    }

    /// The paging loop: keeps up to `concurrency` requests in flight and handles each
    /// response as it lands, so converting one page overlaps waiting for the others.
    fn drive(
        &mut self,
        lists: &[ListRequest],
        limit: u64,
        first_page_only: bool,
        on_page: &mut dyn FnMut(usize, Page) -> Result<(), IntegrationError>,
    ) -> Result<Vec<Result<(), IntegrationError>>, IntegrationError> {
        let mut progress: Vec<ListProgress> =
            lists.iter().map(|_| ListProgress::default()).collect();
        let mut queue: VecDeque<PendingPage> = VecDeque::new();
        for (index, state) in progress.iter_mut().enumerate() {
            queue.push_back(PendingPage {
                list: index,
                skip: 0,
                limit,
                attempts: 0,
                not_before: Duration::ZERO,
            });
            state.next_skip = limit;
            state.in_flight = 1;
        }
        let mut sent: HashMap<u64, PendingPage> = HashMap::new();
        let mut next_id: u64 = 0;

        loop {
            self.fill(lists, &mut queue, &mut progress, &mut sent, &mut next_id);
            if sent.is_empty() {
                match self.earliest_retry(&queue) {
                    Some(wait) => {
                        self.transport.sleep(wait);
                        continue;
                    }
                    None => break,
                }
            }
            let Some((id, response)) = self.transport.next_response() else {
                return Err(IntegrationError::Internal(
                    "the transport lost requests in flight".into(),
                ));
            };
            let Some(mut page) = sent.remove(&id) else {
                continue;
            };
            page.attempts += 1;
            self.stats.requests += 1;
            let list = &lists[page.list];
            match self.judge(list, &page, response) {
                Attempt::Page { items, raw, total } => {
                    let state = &mut progress[page.list];
                    state.in_flight -= 1;
                    if total.is_some() {
                        state.total = total;
                    }
                    let empty = items.is_empty();
                    if !state.finished && !empty {
                        on_page(
                            page.list,
                            Page {
                                items,
                                raw,
                                total: state.total,
                            },
                        )?;
                    }
                    if empty || first_page_only {
                        state.finished = true;
                    }
                    self.schedule_more(page.list, state, limit, &mut queue);
                }
                Attempt::Retry { delay, reason } => {
                    self.stats.retries += 1;
                    self.log.retrying(&list.path, page.attempts, delay, &reason);
                    page.not_before = self.transport.now() + delay;
                    queue.push_back(page);
                }
                Attempt::Failed(error) => {
                    if error.is_fatal() {
                        return Err(error);
                    }
                    let state = &mut progress[page.list];
                    state.in_flight -= 1;
                    state.finished = true;
                    state.error.get_or_insert(error);
                }
            }
        }

        Ok(progress
            .into_iter()
            .map(|state| state.error.map_or(Ok(()), Err))
            .collect())
    }

    /// Starts queued pages while slots are free: those whose retry delay has passed, in
    /// queue order. Pages of finished lists are dropped.
    fn fill(
        &mut self,
        lists: &[ListRequest],
        queue: &mut VecDeque<PendingPage>,
        progress: &mut [ListProgress],
        sent: &mut HashMap<u64, PendingPage>,
        next_id: &mut u64,
    ) {
        if sent.len() >= self.concurrency || queue.is_empty() {
            return;
        }
        let now = self.transport.now();
        let mut waiting = VecDeque::new();
        while let Some(page) = queue.pop_front() {
            let state = &mut progress[page.list];
            if state.finished {
                state.in_flight -= 1;
                continue;
            }
            if page.not_before <= now {
                let request = self.page_request(&lists[page.list], page.skip, page.limit);
                self.transport.start(*next_id, &request);
                sent.insert(*next_id, page);
                *next_id += 1;
                if sent.len() >= self.concurrency {
                    break;
                }
            } else {
                waiting.push_back(page);
            }
        }
        // Pages still waiting for their retry delay go back in front, in order.
        while let Some(page) = waiting.pop_back() {
            queue.push_front(page);
        }
    }

    /// How long until the first queued page may be sent, when none may be now.
    fn earliest_retry(&mut self, queue: &VecDeque<PendingPage>) -> Option<Duration> {
        let now = self.transport.now();
        queue
            .iter()
            .map(|page| page.not_before.saturating_sub(now))
            .min()
    }

    /// Queues the next pages of a list: all of them up to the total once it is known,
    /// otherwise one at a time.
    fn schedule_more(
        &self,
        list: usize,
        state: &mut ListProgress,
        limit: u64,
        queue: &mut VecDeque<PendingPage>,
    ) {
        if state.finished {
            return;
        }
        let mut push = |state: &mut ListProgress| {
            queue.push_back(PendingPage {
                list,
                skip: state.next_skip,
                limit,
                attempts: 0,
                not_before: Duration::ZERO,
            });
            state.next_skip += limit;
            state.in_flight += 1;
        };
        match state.total {
            Some(total) => {
                while state.next_skip < total {
                    push(state);
                }
                if state.in_flight == 0 {
                    state.finished = true;
                }
            }
            None if state.in_flight == 0 => push(state),
            None => {}
        }
    }

    fn page_request(&self, list: &ListRequest, skip: u64, limit: u64) -> HttpRequest {
        let mut path_and_query = format!("{}?limit={limit}&skip={skip}", list.path);
        if let Some(sort) = list.sort {
            path_and_query.push_str("&sort=");
            path_and_query.push_str(sort);
        }
        if let Some(params) = list.params {
            path_and_query.push('&');
            path_and_query.push_str(params);
        }
        let mut headers = vec![
            ("x-api-key", self.config.api_key.clone()),
            ("accept", "application/json".to_owned()),
            ("content-type", "application/json".to_owned()),
        ];
        if let Some(org) = &list.org_id {
            headers.push(("x-org-id", org.clone()));
        }
        HttpRequest {
            scheme: self.config.scheme.clone(),
            authority: self.config.authority.clone(),
            path_and_query,
            headers,
        }
    }

    /// Decides what one attempt's outcome means: a page, a retry, or a failure.
    fn judge(
        &mut self,
        list: &ListRequest,
        page: &PendingPage,
        response: Result<HttpResponse, TransportError>,
    ) -> Attempt {
        let endpoint = list.path.as_str();
        let out_of_attempts = page.attempts >= self.policy.max_attempts;
        let response = match response {
            Ok(response) => response,
            Err(TransportError::Denied { authority }) => {
                return Attempt::Failed(IntegrationError::EgressDenied(authority));
            }
            Err(error) if error.is_transient() && !out_of_attempts => {
                let delay = self
                    .policy
                    .backoff(page.attempts, self.transport.random_unit());
                return Attempt::Retry {
                    delay,
                    reason: error.to_string(),
                };
            }
            Err(error) => {
                return Attempt::Failed(IntegrationError::Transport {
                    endpoint: endpoint.to_owned(),
                    message: match error.is_transient() {
                        true => format!("{error} (after {} attempts)", page.attempts),
                        false => error.to_string(),
                    },
                });
            }
        };

        let status = response.status;
        if (200..300).contains(&status) {
            let parsing = std::time::Instant::now();
            let parsed = parse_page(list.envelope, &response);
            self.parse_time += parsing.elapsed();
            return match parsed {
                Ok(page) => Attempt::Page {
                    items: page.objects,
                    raw: page.raw,
                    total: page.total,
                },
                Err(message) => {
                    Attempt::Failed(IntegrationError::invalid_response(endpoint, message))
                }
            };
        }
        if is_transient_status(status) && !out_of_attempts {
            let delay = self
                .policy
                .retry_after(response.header("retry-after"), SystemTime::now())
                .unwrap_or_else(|| {
                    self.policy
                        .backoff(page.attempts, self.transport.random_unit())
                });
            return Attempt::Retry {
                delay,
                reason: format!("HTTP {status}"),
            };
        }
        let message = error_message(&response);
        Attempt::Failed(match status {
            401 => IntegrationError::Authentication(format!(
                "JumpCloud rejected the API key (config field `apiKey`) with HTTP 401 on {endpoint}: {message}"
            )),
            403 => IntegrationError::Authorization {
                endpoint: endpoint.to_owned(),
                message: format!("HTTP 403: {message}"),
            },
            429 => IntegrationError::RateLimited {
                endpoint: endpoint.to_owned(),
                message: format!("still HTTP 429 after {} attempts", page.attempts),
            },
            _ if is_transient_status(status) => IntegrationError::ProviderApi {
                status,
                endpoint: endpoint.to_owned(),
                message: format!("{message} (after {} attempts)", page.attempts),
            },
            _ => IntegrationError::ProviderApi {
                status,
                endpoint: endpoint.to_owned(),
                message,
            },
        })
    }
}

/// Items and total of a list response, or what is wrong with it.
/// A v1 list body, read without building a tree of its records.
#[derive(serde::Deserialize)]
struct V1Page {
    #[serde(rename = "totalCount", default)]
    total_count: Option<u64>,
    results: Vec<Box<RawValue>>,
}

/// Records, their JSON text as received (kept for raw data, never re-serialized),
/// and the total of a list response; or what is wrong with it.
fn parse_page(envelope: Envelope, response: &HttpResponse) -> Result<ParsedPage, String> {
    let fast = match envelope {
        Envelope::V1 => serde_json::from_slice::<V1Page>(&response.body)
            .ok()
            .map(|page| (page.results, page.total_count)),
        Envelope::V2 => serde_json::from_slice::<Vec<Box<RawValue>>>(&response.body)
            .ok()
            .map(|items| (items, None)),
    };
    // Anything unexpected takes the slow path, which says what is wrong.
    let Some((raw, v1_total)) = fast else {
        return Err(diagnose_page(envelope, response)
            .err()
            .unwrap_or_else(|| "unreadable list response".to_owned()));
    };
    let total = match envelope {
        Envelope::V1 => v1_total,
        Envelope::V2 => match response.header("x-total-count") {
            None => None,
            Some(value) => Some(
                value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| format!("x-total-count {value:?} is not a number"))?,
            ),
        },
    };
    let mut objects = Vec::with_capacity(raw.len());
    for (index, item) in raw.iter().enumerate() {
        match serde_json::from_str::<Value>(item.get()) {
            Ok(Value::Object(object)) => objects.push(object),
            Ok(other) => {
                return Err(format!(
                    "item {index} is {}, expected an object",
                    kind(&other)
                ));
            }
            Err(error) => return Err(format!("item {index} is not JSON ({error})")),
        }
    }
    Ok(ParsedPage {
        objects,
        raw,
        total,
    })
}

/// A list response, read.
struct ParsedPage {
    objects: Vec<Object>,
    raw: Vec<Box<RawValue>>,
    total: Option<u64>,
}

/// Reads a list response the slow way, to say precisely what is wrong with it.
fn diagnose_page(
    envelope: Envelope,
    response: &HttpResponse,
) -> Result<(Vec<Object>, Option<u64>), String> {
    let body: Value = serde_json::from_slice(&response.body).map_err(|error| {
        let content_type = response.header("content-type").unwrap_or("no content type");
        if content_type.contains("json") {
            format!("malformed or truncated JSON ({error})")
        } else {
            format!(
                "expected JSON, got {content_type} starting with {:?}",
                snippet(&response.body)
            )
        }
    })?;
    let (items, total) = match (envelope, body) {
        (Envelope::V1, Value::Object(mut object)) => {
            let total = match object.get("totalCount") {
                None | Some(Value::Null) => None,
                Some(value) => Some(
                    value
                        .as_u64()
                        .ok_or("`totalCount` is not a non-negative integer")?,
                ),
            };
            match object.remove("results") {
                Some(Value::Array(items)) => (items, total),
                Some(other) => {
                    return Err(format!("`results` is {}, expected an array", kind(&other)));
                }
                None => return Err("the object has no `results` array".into()),
            }
        }
        (Envelope::V1, other) => {
            return Err(format!(
                "expected an object with `totalCount` and `results`, found {}",
                kind(&other)
            ));
        }
        (Envelope::V2, Value::Array(items)) => {
            let total = match response.header("x-total-count") {
                None => None,
                Some(value) => Some(
                    value
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| format!("x-total-count {value:?} is not a number"))?,
                ),
            };
            (items, total)
        }
        (Envelope::V2, other) => return Err(format!("expected an array, found {}", kind(&other))),
    };
    let objects = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::Object(object) => Ok(object),
            other => Err(format!(
                "item {index} is {}, expected an object",
                kind(&other)
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((objects, total))
}

/// The message of a JumpCloud error body (`{"message": ...}` in v1 and v2), or the
/// start of the body.
fn error_message(response: &HttpResponse) -> String {
    if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&response.body) {
        for field in ["message", "error"] {
            if let Some(Value::String(message)) = body.get(field)
                && !message.is_empty()
            {
                return message.clone();
            }
        }
    }
    match response.body.is_empty() {
        true => "(empty body)".to_owned(),
        false => snippet(&response.body),
    }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(80)]);
    text.trim().to_owned()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;

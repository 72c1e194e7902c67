//! A JumpCloud API simulator: a real HTTP/1.1 server on `127.0.0.1` that answers
//! like `https://console.jumpcloud.com/api`, for the host's `demo`/`simulate`
//! commands and for end-to-end tests (where a WebAssembly component talks to it over
//! real sockets).
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use jumpcloud_simulator::{Dataset, Fault, FaultRule, Simulator, SimulatorConfig, TenantSpec};
//!
//! let sim = Simulator::start(SimulatorConfig {
//!     dataset: Dataset::Generated(TenantSpec { users: 1000, ..TenantSpec::default() }),
//!     ..SimulatorConfig::default()
//! })
//! .await?;
//! // Point the integration at sim.base_url() with sim.api_key(); then, mid-run:
//! sim.set_faults(vec![FaultRule::new(Fault::TooManyRequests { retry_after: None }).with_limit(3)]);
//! let users = sim.tenant().organizations()[0].user_count();
//! # let _ = users;
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! ## What it serves (all `GET`)
//! | path | shape |
//! |---|---|
//! | `/api/organizations` | v1 `{totalCount, results}`; refuses `x-org-id` (403) |
//! | `/api/systemusers` | v1 envelope |
//! | `/api/applications` | v1 envelope plus `name`; default sort `name` |
//! | `/api/v2/usergroups` | bare array, `x-total-count` |
//! | `/api/v2/usergroups/{id}/members` | `GraphConnection`s, bare array, `x-total-count` |
//! | `/api/v2/applications/{id}/users` | `GraphObjectWithPaths`, one hop direct, two via a group |
//! | `/api/v2/applications/{id}/usergroups` | `GraphObjectWithPaths` of bound groups |
//!
//! ## Rules
//! - **Checks, in order**: unknown path 404 `{"message":"Not Found"}`; not `GET` 405
//!   (`allow: GET`); `x-api-key` not the configured key 401 `{"message":"Unauthorized"}`;
//!   then `x-org-id`; then the query (400); then ids in the path (404 in the v2 error
//!   shape `{"code":404,"message":..,"status":"NOT_FOUND"}`).
//! - **`x-org-id`**: `/api/organizations` answers 403 with
//!   [`ORG_HEADER_FORBIDDEN_MESSAGE`] as `message` and `error` when it is present. With
//!   several organizations every data route needs it: missing is 401
//!   `{"message":"Unauthorized: no organization selected"}`, unknown is 404; each
//!   organization sees only its own data. With one organization it is optional, but
//!   if sent it must match (else 404). An empty header counts as absent (JupiterOne's
//!   connector sent one and JumpCloud accepted it).
//! - **Paging**: `limit` defaults to 10 and is **capped** at 100 (larger values are
//!   served as 100, not rejected); `limit=0` means the default; `skip` past the end
//!   gives an empty page that still carries the total (`totalCount` or
//!   `x-total-count`); a non-numeric `limit`/`skip` is a 400.
//! - **Sort**: v1 routes take a space-separated list, v2 a comma-separated one, `-field`
//!   descending, any (dotted) field; objects lacking the field come first, ties keep
//!   natural order. The graph routes (`/members`, the application traversals) have no
//!   `sort` in JumpCloud's API, so there it is **ignored** (natural order, like any
//!   unknown parameter); the request log shows whether a client sent one. Natural
//!   order is id order for generated data. The first sort of a generated collection by
//!   a field other than the id renders every object once (about 1.5 s per 100k users
//!   in release, 8 s in debug), then it is cached.
//! - Accept and Content-Type are not enforced, only recorded ([`RecordedRequest`]).
//!
//! ## Data
//! - [`Dataset::Generated`]: [`TenantSpec`] counts are per organization. Objects are
//!   pure functions of `(seed, organization, index)` and built only when served, so
//!   100k users cost nothing up front. The first users of every organization are
//!   fixed edge cases: 1 and 2 have no `state` (`activated` true / false), 3 `STAGED`,
//!   4 `SUSPENDED`, 5 `ACTIVATED` with `activated: false`, 6 no `email`, 7 `email: ""`,
//!   8 and 9 emails equal but for case, 10 `employeeType` `service`, 11 `bot`,
//!   19 `Service`, 12 a unicode name, 13 `mfa: null`, 14 no `mfa`, 15 an MFA exclusion,
//!   16 enrolled only by `mfaEnrollment.overallStatus`, 17 locked with an expired
//!   password, 18 TOTP only, 20 no names, 21 `ACTIVATED` but `suspended`; later users
//!   mix the same traits at random. Group 0 "All Users" holds the first
//!   `min(users, 150)` users plus [`TenantSpec::dangling_members`] ids that are not users;
//!   the last group (of at least 2) is empty; application 0 is bound to group 0 and
//!   directly to users 0..3; application 1 to the empty group; the last application (of
//!   at least 3) to nothing. Every application `config` holds fake certificate and key
//!   text containing [`FAKE_SECRET_MARKER`].
//! - [`Dataset::Recorded`]: the objects of `fixtures/jumpcloud-recorded/` (one
//!   organization, one user in its newest 2021-11 form, two groups, one application
//!   with `config: "[REDACTED]"`); the application traversals are served verbatim. No
//!   `/members` answer was recorded: a group's members are those implied by the
//!   traversal paths (`[group, user]`), so "My Test Group" has the user and "All
//!   Users" has none.
//! - [`Simulator::tenant`] exposes all of it (objects as served, members including
//!   dangling ids, application bindings direct or via group) to compute the expected
//!   graph.
//!
//! ## Faults
//! [`FaultRule`]s (at start in [`SimulatorConfig::faults`], or any time with
//! [`Simulator::set_faults`]) inject a [`Fault`] on every nth request matching a path
//! prefix, optionally at most k times: 429 with or without `Retry-After` (seconds or
//! an HTTP date), any 5xx, 403, extra latency, a dropped connection, a truncated body,
//! an HTML page with status 200, a swapped envelope, a field of the wrong type. They
//! act in front of the API (before authentication), like a proxy or rate limiter
//! would; the body corruptions rewrite the API's own answer.
//! [`SimulatorConfig::latency`] / [`Simulator::set_latency`] delay every request.
//!
//! ## Mutations
//! [`Simulator::apply_mutation`] (or `POST /_sim/mutate?mutation=standard` with the
//! API key; not logged as an API request, no faults or latency) changes the served
//! tenant in a known, deterministic way and returns a [`MutationReport`] naming every
//! object changed: see [`Mutation`]. Requests in flight finish on the old data; a
//! [`Simulator::tenant`] snapshot taken before stays as it was.
//!
//! ## Modules
//! - `tenant`: the data model ([`Tenant`], [`Organization`]) both datasets share.
//! - `generate`: deterministic generation of any size; `recorded`: the fixtures.
//! - `routes`: endpoints, auth, `x-org-id`, paging; `query`: query parsing, sorting.
//! - `faults`: fault rules; `server`: sockets, hyper, fault injection, request log.
//! - `mutate`: known changes to a running tenant.

mod directory;
mod faults;
mod generate;
mod mutate;
mod query;
mod recorded;
mod rng;
mod routes;
mod server;
mod tenant;
mod time;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use directory::SystemUserBinding;
pub use faults::{Fault, FaultRule, RetryAfter};
pub use mutate::{
    AddedAssignment, AddedUser, DeletedGroup, Mutation, MutationError, MutationReport,
    RemovedMember,
};
pub use tenant::{AppUserBinding, Organization, Tenant, TenantSpec};

use faults::FaultSet;
use server::{Shared, lock};

/// The API key a simulator accepts unless [`SimulatorConfig::api_key`] says otherwise.
/// Forty characters, like a legacy JumpCloud key, and obviously fake.
pub const DEFAULT_API_KEY: &str = "simulator-api-key-0000000000000000000000";

/// Text inside every fake certificate and private key of generated application
/// `config` objects: if it shows up in an integration's output, secrets leaked.
pub const FAKE_SECRET_MARKER: &str = "SIMULATOR-FAKE";

/// The exact message (and `error`) of the 403 JumpCloud answers when
/// `/api/organizations` receives an `x-org-id` header.
pub const ORG_HEADER_FORBIDDEN_MESSAGE: &str = routes::ORG_HEADER_FORBIDDEN;

/// Which data a simulator serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dataset {
    /// A deterministic tenant generated from a spec.
    Generated(TenantSpec),
    /// The real recorded answers in `fixtures/jumpcloud-recorded/`.
    Recorded,
}

impl Default for Dataset {
    fn default() -> Self {
        Dataset::Generated(TenantSpec::default())
    }
}

/// How to start a [`Simulator`].
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// The data to serve.
    pub dataset: Dataset,
    /// The only `x-api-key` accepted; anything else gets a 401.
    pub api_key: String,
    /// Delay added to every request (before faults and routing).
    pub latency: Duration,
    /// Fault rules active from the start (see [`Simulator::set_faults`]).
    pub faults: Vec<FaultRule>,
    /// Port on 127.0.0.1; `None` picks a free one.
    pub port: Option<u16>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            dataset: Dataset::default(),
            api_key: DEFAULT_API_KEY.to_owned(),
            latency: Duration::ZERO,
            faults: Vec::new(),
            port: None,
        }
    }
}

/// One request as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without query (`/api/v2/usergroups`).
    pub path: String,
    /// The raw query string, without `?`, if any.
    pub query: Option<String>,
    /// The `x-org-id` header as sent (an empty one is `Some("")`).
    pub org_id: Option<String>,
    /// True when `x-api-key` equalled the configured key.
    pub api_key_valid: bool,
    /// The `accept` header.
    pub accept: Option<String>,
    /// The `content-type` header.
    pub content_type: Option<String>,
    /// The status sent; `None` when the connection was dropped without an answer.
    pub status: Option<u16>,
    /// The faults applied to this request, in rule order (latencies, then at most one
    /// other fault).
    pub faults: Vec<Fault>,
    /// When the request arrived, measured from the simulator's start.
    pub elapsed: Duration,
}

impl RecordedRequest {
    /// The decoded value of query parameter `name` (the last one if repeated).
    pub fn query_param(&self, name: &str) -> Option<String> {
        let pairs = query::pairs(self.query.as_deref().unwrap_or(""));
        pairs
            .into_iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// A running simulator. Dropping it starts a graceful shutdown in the background;
/// [`Simulator::shutdown`] waits for it.
#[derive(Debug)]
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Builds the dataset, binds 127.0.0.1 and starts serving on the caller's tokio
    /// runtime. Fails only if the port cannot be bound.
    pub async fn start(config: SimulatorConfig) -> std::io::Result<Simulator> {
        let tenant = match &config.dataset {
            Dataset::Generated(spec) => Tenant::generate(spec),
            Dataset::Recorded => Tenant::recorded(),
        };
        // Loopback only: the simulator is for this machine's tests and demos.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port.unwrap_or(0))).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            tenant: RwLock::new(Arc::new(tenant)),
            generation: Mutex::new(0),
            api_key: config.api_key,
            started: Instant::now(),
            latency: Mutex::new(config.latency),
            faults: Mutex::new(FaultSet::new(config.faults)),
            log: Mutex::new(Vec::new()),
            never_called: Mutex::new(Vec::new()),
        });
        let (shutdown, receiver) = watch::channel(false);
        let task = tokio::spawn(server::accept_loop(listener, shared.clone(), receiver));
        tracing::info!(%addr, "JumpCloud simulator listening");
        Ok(Simulator {
            shared,
            addr,
            shutdown,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, the value for the integration's `baseUrl`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The accepted `x-api-key`.
    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// The data served now, to compute what an integration should produce. A
    /// [`Simulator::apply_mutation`] replaces it; a snapshot taken before stays as it was.
    pub fn tenant(&self) -> Arc<Tenant> {
        self.shared.tenant()
    }

    /// Changes the served tenant in a known, deterministic way (see [`Mutation`]) and
    /// says exactly what changed. Requests already in flight finish on the old data.
    /// Also reachable over HTTP: `POST /_sim/mutate?mutation=standard` with the API key.
    pub fn apply_mutation(&self, mutation: Mutation) -> Result<MutationReport, MutationError> {
        self.shared.mutate(mutation)
    }

    /// Replaces the fault rules; their counters start from zero.
    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        *lock(&self.shared.faults) = FaultSet::new(rules);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.set_faults(Vec::new());
    }

    /// Changes the delay added to every request.
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
    }

    /// The requests answered (or dropped) so far, in completion order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log).clone()
    }

    /// How many requests were answered (or dropped) so far.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.log).len()
    }

    /// Paths of the routes no integration may call that were requested anyway
    /// (`/api/v2/systems/{id}/fdekey`, `/api/v2/policies/{id}`, `/api/v2/policyresults`):
    /// they are served (with marked fake secrets) so a leak shows in the output too,
    /// logged at error level, and listed here for tests to assert on.
    pub fn never_called(&self) -> Vec<String> {
        lock(&self.shared.never_called).clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s) and waits for
    /// every connection to close.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        // The accept loop sees this (or the sender going away) and winds down.
        let _ = self.shutdown.send(true);
    }
}

//! The HTTP side: the loopback listener, one hyper HTTP/1.1 connection task per
//! client, fault injection around the routes, the request log, and graceful
//! shutdown.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::RecordedRequest;
use crate::faults::{Decision, Fault, FaultSet, RetryAfter};
use crate::mutate::{Mutation, MutationError, MutationReport};
use crate::routes::{self, ApiRequest, ListKind, Page, Reply};
use crate::tenant::Tenant;
use crate::time::{http_date, now_unix_secs};

const JSON: &str = "application/json; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const X_TOTAL_COUNT: HeaderName = HeaderName::from_static("x-total-count");
/// How long shutdown waits for in-flight requests before cutting connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long a truncated body pauses after its first half, so that half is flushed
/// to the socket before the connection is cut.
const TRUNCATION_PAUSE: Duration = Duration::from_millis(50);

/// State shared by the [`crate::Simulator`] handle and every connection task.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The data served; replaced whole by a mutation (requests in flight keep theirs).
    pub(crate) tenant: RwLock<Arc<Tenant>>,
    /// Mutations applied so far; its lock also serializes mutations.
    pub(crate) generation: Mutex<u64>,
    pub(crate) api_key: String,
    pub(crate) started: Instant,
    pub(crate) latency: Mutex<Duration>,
    pub(crate) faults: Mutex<FaultSet>,
    pub(crate) log: Mutex<Vec<RecordedRequest>>,
    /// Paths of never-call routes that were requested (see [`crate::Simulator::never_called`]).
    pub(crate) never_called: Mutex<Vec<String>>,
}

impl Shared {
    /// The tenant as it is now.
    pub(crate) fn tenant(&self) -> Arc<Tenant> {
        self.tenant
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies a mutation: computes the changed tenant from the current one and
    /// swaps it in.
    pub(crate) fn mutate(&self, mutation: Mutation) -> Result<MutationReport, MutationError> {
        let mut generation = lock(&self.generation);
        let current = self.tenant();
        let (tenant, report) = crate::mutate::apply(&current, mutation, *generation + 1)?;
        *self.tenant.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(tenant);
        *generation += 1;
        tracing::info!(%report, "simulator tenant mutated");
        Ok(report)
    }
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves its data
/// consistent, so a panic elsewhere is no reason to stop serving.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accepts connections until `shutdown` fires (or its sender is dropped), then lets
/// open connections finish their current request for up to [`SHUTDOWN_GRACE`].
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, shared.clone(), shutdown.clone()));
                }
                Err(error) => {
                    // Usually out of file descriptors; back off instead of spinning.
                    tracing::warn!(%error, "simulator accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Small JSON answers: do not let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| handle(shared.clone(), request));
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = shutdown.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        // Expected for DropConnection and TruncatedBody faults and for clients that hang up.
        tracing::debug!(%peer, %error, "simulator connection ended with an error");
    }
}

/// Returned by the service to make hyper close the connection without answering.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by a simulated fault")
    }
}

impl StdError for DropConnection {}

fn header(request: &Request<Incoming>, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Serves one request: faults first, then the API.
async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<SimBody>, DropConnection> {
    let elapsed = shared.started.elapsed();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let api_key_valid = request
        .headers()
        .get("x-api-key")
        .is_some_and(|key| key.as_bytes() == shared.api_key.as_bytes());
    if path.starts_with(ADMIN_PREFIX) {
        return Ok(admin(
            &shared,
            &request,
            &path,
            query.as_deref(),
            api_key_valid,
        ));
    }
    let mut record = RecordedRequest {
        method: request.method().to_string(),
        path: path.clone(),
        query: query.clone(),
        org_id: header(&request, "x-org-id"),
        api_key_valid,
        accept: header(&request, "accept"),
        content_type: header(&request, "content-type"),
        status: None,
        faults: Vec::new(),
        elapsed,
    };

    if routes::is_never_call(&path) {
        // Loud on purpose: these routes disclose secrets an integration must not read.
        tracing::error!(%path, "an integration called a route it must never call");
        lock(&shared.never_called).push(path.clone());
    }
    let Decision {
        latency,
        fault,
        fired,
    } = lock(&shared.faults).decide(&path);
    let delay = *lock(&shared.latency) + latency;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let (response, fault_applied) = match &fault {
        Some(Fault::DropConnection) => {
            record.faults = fired;
            tracing::debug!(path = %record.path, "simulator drops the connection");
            lock(&shared.log).push(record);
            return Err(DropConnection);
        }
        Some(f) if f.replaces_answer() => (fault_response(f), true),
        _ => {
            let shared = shared.clone();
            let method = request.method().clone();
            let (path, query, org_id) = (path.clone(), query.clone(), record.org_id.clone());
            // Building a page (and, once per sort, sorting a big collection) is CPU
            // work: keep it off the async workers that the caller's tasks share.
            tokio::task::spawn_blocking(move || {
                let api_request = ApiRequest {
                    method: &method,
                    path: &path,
                    query: query.as_deref(),
                    api_key_valid,
                    org_id: org_id.as_deref(),
                };
                render(
                    routes::answer(&shared.tenant(), &api_request),
                    fault.as_ref(),
                )
            })
            .await
            .unwrap_or_else(|error| {
                tracing::error!(%error, "simulator request handler panicked");
                (fault_response(&Fault::ServerError(500)), false)
            })
        }
    };
    record.faults = fired;
    if !fault_applied {
        // A body corruption that found nothing to corrupt (an error answer) did not happen.
        record.faults.retain(|f| matches!(f, Fault::Latency(_)));
    }
    record.status = Some(response.status().as_u16());
    tracing::debug!(method = %record.method, path = %record.path, status = response.status().as_u16(), "simulator request");
    lock(&shared.log).push(record);
    Ok(response)
}

/// Where the simulator's own endpoints live (not JumpCloud's API).
pub(crate) const ADMIN_PREFIX: &str = "/_sim/";

/// The simulator's own endpoints, for tests and demos driving a running simulator:
/// `POST /_sim/mutate?mutation=standard` applies a [`Mutation`] and answers its
/// report. They need the API key, skip faults and latency, and are not logged as API
/// requests.
fn admin(
    shared: &Shared,
    request: &Request<Incoming>,
    path: &str,
    query: Option<&str>,
    api_key_valid: bool,
) -> Response<SimBody> {
    let answer =
        |status: StatusCode, body: Value| respond(status, JSON, json_bytes(&body), vec![], false);
    let error =
        |status: StatusCode, text: String| answer(status, serde_json::json!({"message": text}));
    if path != "/_sim/mutate" {
        return error(StatusCode::NOT_FOUND, "Not Found".into());
    }
    if request.method() != http::Method::POST {
        let body = json_bytes(&serde_json::json!({"message": "Method Not Allowed"}));
        let allow = vec![(ALLOW, HeaderValue::from_static("POST"))];
        return respond(StatusCode::METHOD_NOT_ALLOWED, JSON, body, allow, false);
    }
    if !api_key_valid {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized".into());
    }
    let name = crate::query::pairs(query.unwrap_or(""))
        .into_iter()
        .rev()
        .find(|(name, _)| name == "mutation")
        .map_or_else(|| "standard".to_owned(), |(_, value)| value);
    let result = Mutation::parse(&name).and_then(|mutation| shared.mutate(mutation));
    match result {
        Ok(report) => answer(StatusCode::OK, report.to_json()),
        Err(e @ MutationError::Unknown(_)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

/// Builds a response; `truncate` sends only the first half of `body` after
/// announcing all of it.
fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
    headers: Vec<(HeaderName, HeaderValue)>,
    truncate: bool,
) -> Response<SimBody> {
    let announced = body.len();
    let body = if truncate {
        SimBody::truncated(body)
    } else {
        SimBody::full(body)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let map = response.headers_mut();
    map.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    map.insert(
        CONTENT_LENGTH,
        HeaderValue::from(announced.max(usize::from(truncate))),
    );
    for (name, value) in headers {
        map.insert(name, value);
    }
    response
}

fn json_bytes(value: &Value) -> Bytes {
    // Serializing a `Value` cannot fail (its keys are strings).
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// The answer of a fault that replaces the API's answer.
fn fault_response(fault: &Fault) -> Response<SimBody> {
    let error = |status: StatusCode, headers| {
        let text = status.canonical_reason().unwrap_or("Server Error");
        respond(
            status,
            JSON,
            json_bytes(&serde_json::json!({"message": text})),
            headers,
            false,
        )
    };
    match fault {
        Fault::TooManyRequests { retry_after } => {
            let value = retry_after.as_ref().map(|r| match r {
                RetryAfter::Seconds(s) => s.to_string(),
                // +3 s, floored to the second by the format: 2 to 3 seconds ahead.
                RetryAfter::HttpDate => http_date(now_unix_secs() + 3),
            });
            let headers = value
                .and_then(|v| HeaderValue::from_str(&v).ok())
                .map(|v| vec![(RETRY_AFTER, v)])
                .unwrap_or_default();
            error(StatusCode::TOO_MANY_REQUESTS, headers)
        }
        Fault::ServerError(code) => error(
            StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            vec![],
        ),
        Fault::Forbidden => error(StatusCode::FORBIDDEN, vec![]),
        Fault::HtmlBody => respond(
            StatusCode::OK,
            HTML,
            Bytes::from_static(MAINTENANCE_PAGE.as_bytes()),
            vec![],
            false,
        ),
        // Not answer-replacing faults; never routed here.
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, vec![]),
    }
}

/// What a proxy in front of an API serves during maintenance: status 200, HTML.
const MAINTENANCE_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>JumpCloud - Scheduled Maintenance</title></head>\n<body>\n<h1>We&rsquo;ll be right back</h1>\n<p>The JumpCloud console is undergoing scheduled maintenance. Please try again shortly.</p>\n</body>\n</html>\n";

/// Serializes the API's reply; `fault` may corrupt it. Returns whether a corrupting
/// fault actually changed something.
fn render(reply: Reply, fault: Option<&Fault>) -> (Response<SimBody>, bool) {
    let truncate = matches!(fault, Some(Fault::TruncatedBody));
    match reply {
        Reply::MethodNotAllowed => {
            let body = json_bytes(&serde_json::json!({"message": "Method Not Allowed"}));
            let allow = vec![(ALLOW, HeaderValue::from_static("GET"))];
            (
                respond(StatusCode::METHOD_NOT_ALLOWED, JSON, body, allow, truncate),
                truncate,
            )
        }
        Reply::Object(body) => (
            respond(StatusCode::OK, JSON, json_bytes(&body), vec![], truncate),
            truncate,
        ),
        Reply::Error { status, body } => (
            respond(status, JSON, json_bytes(&body), vec![], truncate),
            truncate,
        ),
        Reply::List(page) => {
            let (body, total_header, corrupted) = render_page(page, fault);
            let headers = total_header
                .map(|total| vec![(X_TOTAL_COUNT, HeaderValue::from(total))])
                .unwrap_or_default();
            (
                respond(StatusCode::OK, JSON, json_bytes(&body), headers, truncate),
                truncate || corrupted,
            )
        }
    }
}

/// The body of a list page and its `x-total-count` (v2 only), applying
/// [`Fault::WrongEnvelope`] and [`Fault::WrongFieldType`].
fn render_page(page: Page, fault: Option<&Fault>) -> (Value, Option<usize>, bool) {
    let Page {
        kind,
        total,
        mut items,
    } = page;
    let wrong_envelope = matches!(fault, Some(Fault::WrongEnvelope));
    let mut corrupted = wrong_envelope;
    let mut results_as_text = false;
    if matches!(fault, Some(Fault::WrongFieldType)) {
        match kind {
            ListKind::Organizations | ListKind::Applications => results_as_text = true,
            ListKind::Users => set_number(&mut items, &["email"]),
            ListKind::Members => set_number(&mut items, &["to", "id"]),
            ListKind::Groups
            | ListKind::AppUsers
            | ListKind::AppGroups
            | ListKind::V2Objects
            | ListKind::V2Items => set_number(&mut items, &["id"]),
            ListKind::Connections => set_number(&mut items, &["to", "id"]),
            ListKind::Systems | ListKind::Administrators => set_number(&mut items, &["_id"]),
        }
        corrupted = results_as_text || !items.is_empty();
    }
    let results = if results_as_text {
        Value::String(Value::Array(items).to_string())
    } else {
        Value::Array(items)
    };
    let as_envelope = kind.is_v1() != wrong_envelope;
    if !as_envelope {
        let total_header = (!kind.is_v1()).then_some(total);
        return (results, total_header, corrupted);
    }
    let mut envelope = Map::new();
    if kind == ListKind::Applications {
        // JumpCloud's `/applications` envelope also carries a `name`.
        envelope.insert("name".into(), "applications".into());
    }
    envelope.insert("totalCount".into(), total.into());
    envelope.insert("results".into(), results);
    (Value::Object(envelope), None, corrupted)
}

/// Replaces the field at `path` of every item by a number.
fn set_number(items: &mut [Value], path: &[&str]) {
    for (n, item) in items.iter_mut().enumerate() {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let target = parents
            .iter()
            .try_fold(&mut *item, |v, key| v.get_mut(*key));
        if let Some(Value::Object(map)) = target {
            map.insert((*last).to_owned(), (424_242 + n).into());
        }
    }
}

/// The response body: whole, or cut in the middle.
pub(crate) enum SimBody {
    Full(Option<Bytes>),
    Truncated {
        head: Option<Bytes>,
        announced: u64,
        pause: Option<Pin<Box<tokio::time::Sleep>>>,
    },
}

impl SimBody {
    fn full(bytes: Bytes) -> SimBody {
        SimBody::Full(Some(bytes))
    }

    fn truncated(bytes: Bytes) -> SimBody {
        let announced = bytes.len().max(1) as u64;
        let head = bytes.slice(..bytes.len() / 2);
        SimBody::Truncated {
            head: Some(head),
            announced,
            pause: None,
        }
    }
}

/// Ends a truncated body: hyper aborts the connection when a body errors.
#[derive(Debug)]
pub(crate) struct BodyCut;

impl fmt::Display for BodyCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("body truncated by a simulated fault")
    }
}

impl StdError for BodyCut {}

impl Body for SimBody {
    type Data = Bytes;
    type Error = BodyCut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyCut>>> {
        match self.get_mut() {
            SimBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            SimBody::Truncated { head, pause, .. } => {
                if let Some(head) = head.take().filter(|h| !h.is_empty()) {
                    return Poll::Ready(Some(Ok(Frame::data(head))));
                }
                // Pending here lets hyper flush the first half before the cut.
                let sleep =
                    pause.get_or_insert_with(|| Box::pin(tokio::time::sleep(TRUNCATION_PAUSE)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyCut))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, SimBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SimBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            SimBody::Truncated { announced, .. } => SizeHint::with_exact(*announced),
        }
    }
}

//! What the JumpCloud client needs from the outside world: HTTP, time, randomness,
//! and a log. In the component these are wasi:http, wasi:clocks, wasi:random and the
//! host's `log` import (`http.rs`, `component.rs`); natively, tests supply their own.

use std::time::Duration;

/// One GET request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`.
    pub authority: String,
    /// Path and query, e.g. `/api/systemusers?limit=100&skip=0`.
    pub path_and_query: String,
    /// Request headers (names lowercase).
    pub headers: Vec<(&'static str, String)>,
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Response headers, names lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header (name lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The host's egress policy refused it; nothing was sent. Never retried.
    Denied { authority: String },
    /// Connect, first byte or between bytes took longer than allowed.
    Timeout(String),
    /// Refused, reset or dropped connection, truncated body: worth a retry.
    Connection(String),
    /// The response body passed the host's size cap. Never retried.
    TooLarge(String),
    /// Anything else the HTTP layer reports. Never retried.
    Other(String),
}

impl TransportError {
    /// Transient failures that a retry may cure.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TransportError::Timeout(_) | TransportError::Connection(_)
        )
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Denied { authority } => {
                write!(f, "egress to {authority} denied by the host")
            }
            TransportError::Timeout(what) => write!(f, "timed out: {what}"),
            TransportError::Connection(what) => write!(f, "connection failed: {what}"),
            TransportError::TooLarge(what) => write!(f, "response too large: {what}"),
            TransportError::Other(what) => f.write_str(what),
        }
    }
}

/// Severity of a log line (WIT `log.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Structured logging, and the one event the host counts: a retry.
pub trait Logger {
    fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]);

    /// A request failed transiently and will be retried after `delay`.
    fn retrying(&self, endpoint: &str, attempt: u32, delay: std::time::Duration, reason: &str) {
        let attempt = attempt.to_string();
        let delay = format!("{}ms", delay.as_millis());
        self.log(
            Level::Warn,
            "retrying a request",
            &[
                ("endpoint", endpoint),
                ("reason", reason),
                ("attempt", &attempt),
                ("delay", &delay),
            ],
        );
    }
}

/// HTTP, clocks and randomness.
pub trait Transport {
    /// Starts a request, named `id` by the caller; it stays in flight until
    /// [`Transport::next_response`] hands back its outcome. The caller bounds how many
    /// are in flight at once.
    fn start(&mut self, id: u64, request: &HttpRequest);
    /// Waits until any request in flight is done and returns its id and outcome;
    /// `None` when nothing is in flight.
    fn next_response(&mut self) -> Option<(u64, Result<HttpResponse, TransportError>)>;
    /// Abandons every request still in flight.
    fn cancel_all(&mut self);
    /// Time since an arbitrary fixed point (monotonic).
    fn now(&mut self) -> Duration;
    /// Blocks for `duration`.
    fn sleep(&mut self, duration: Duration);
    /// A random number in `[0, 1)`, for retry jitter.
    fn random_unit(&mut self) -> f64;
}

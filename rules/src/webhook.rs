//! Webhooks: rendering a `WEBHOOK` action into a request, and delivering requests with
//! retries. The HTTP client is the host's ([`WebhookTransport`]), so every call goes through
//! its egress policy; this module decides what to retry and records every outcome.
//!
//! Retried: transport errors (connect, timeout, reset), 429 and 5xx, with exponential backoff
//! and jitter, or after `Retry-After` seconds when the server sends it (capped). Not retried:
//! other statuses (4xx, 3xx: redirects are not followed) and egress denial, which no retry can
//! change. Every request gets a [`DeliveryRecord`]; a failure is recorded with its last status,
//! never dropped.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::evaluate::{PlannedAction, render_body};
use crate::model::{BodyTemplate, WebhookAction, WebhookMethod};
use crate::template::{EvalError, Scope};

/// A rendered webhook call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookRequest {
    pub endpoint: String,
    pub method: WebhookMethod,
    /// Name and value; `content-type` is set when there is a body and the rule set none.
    pub headers: Vec<(String, String)>,
    /// The body text: JSON, or the text of a body that rendered to a plain string.
    pub body: Option<String>,
}

impl WebhookRequest {
    pub(crate) fn render(
        action: &WebhookAction,
        scope: &Scope<'_>,
    ) -> Result<WebhookRequest, EvalError> {
        let mut headers = Vec::with_capacity(action.headers.len() + 1);
        for (name, template) in &action.headers {
            let value = template.render_text(scope)?;
            // A rendered value is data from the graph: it must not split the header.
            if http::HeaderValue::from_str(&value).is_err() {
                return Err(EvalError {
                    column: 1,
                    message: format!(
                        "header {name}: the rendered value is not a valid header value"
                    ),
                });
            }
            headers.push((name.clone(), value));
        }
        let body = match &action.body {
            None => None,
            Some(template) => {
                let (text, content_type) = match (template, render_body(template, scope)?) {
                    (BodyTemplate::Text(_), Value::String(text)) => {
                        (text, "text/plain; charset=utf-8")
                    }
                    (_, value) => (value.to_string(), "application/json"),
                };
                if !headers
                    .iter()
                    .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
                {
                    headers.push(("content-type".to_owned(), content_type.to_owned()));
                }
                Some(text)
            }
        };
        Ok(WebhookRequest {
            endpoint: action.endpoint.clone(),
            method: action.method,
            headers,
            body,
        })
    }
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookResponse {
    pub status: u16,
    /// The `Retry-After` header as sent, if any.
    pub retry_after: Option<String>,
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The host's egress policy refused the destination: never retried.
    #[error("egress denied: {0}")]
    EgressDenied(String),
    #[error("timed out")]
    Timeout,
    /// Connect, reset, TLS, protocol errors.
    #[error("{0}")]
    Failed(String),
}

/// The host's HTTP client, egress-checked.
pub trait WebhookTransport: Sync {
    fn send(
        &self,
        request: &WebhookRequest,
    ) -> impl Future<Output = Result<WebhookResponse, TransportError>> + Send;
}

/// How hard to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The first backoff; doubled after each failed attempt.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// `Retry-After` is honoured up to this; a longer one is cut to it.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after `failed` failed attempts (1-based): exponential with "equal jitter"
    /// (half fixed, half random), so many alerts retrying at once spread out.
    fn backoff(&self, failed: u32) -> Duration {
        let base = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(failed.saturating_sub(1)))
            .min(self.max_backoff);
        let half = base / 2;
        let jitter_ms = fastrand::u64(0..=half.as_millis().try_into().unwrap_or(u64::MAX));
        half + Duration::from_millis(jitter_ms)
    }
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum DeliveryOutcome {
    Delivered,
    Failed { reason: String },
}

/// One webhook's delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub endpoint: String,
    pub method: WebhookMethod,
    pub attempts: u32,
    /// The last HTTP status, None when no attempt got one.
    pub status: Option<u16>,
    #[serde(flatten)]
    pub outcome: DeliveryOutcome,
    /// The waits between attempts, in milliseconds.
    pub waits_ms: Vec<u64>,
}

/// Whether a status is worth another attempt.
fn retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// `Retry-After` in seconds (the HTTP-date form is not honoured; backoff applies then).
fn retry_after(response: &WebhookResponse) -> Option<Duration> {
    response
        .retry_after
        .as_deref()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Delivers the webhooks of `actions`, one after another, each retried per `policy`.
pub async fn deliver<T: WebhookTransport + ?Sized>(
    actions: &[PlannedAction],
    transport: &T,
    policy: &RetryPolicy,
) -> Vec<DeliveryRecord> {
    let mut records = Vec::with_capacity(actions.len());
    for action in actions {
        let PlannedAction::Webhook(request) = action;
        records.push(deliver_one(request, transport, policy).await);
    }
    records
}

async fn deliver_one<T: WebhookTransport + ?Sized>(
    request: &WebhookRequest,
    transport: &T,
    policy: &RetryPolicy,
) -> DeliveryRecord {
    let mut record = DeliveryRecord {
        endpoint: request.endpoint.clone(),
        method: request.method,
        attempts: 0,
        status: None,
        outcome: DeliveryOutcome::Delivered,
        waits_ms: Vec::new(),
    };
    let max_attempts = policy.max_attempts.max(1);
    loop {
        record.attempts += 1;
        let (reason, wait) = match transport.send(request).await {
            Ok(response) if (200..300).contains(&response.status) => {
                record.status = Some(response.status);
                return record;
            }
            Ok(response) => {
                record.status = Some(response.status);
                let reason = format!("HTTP {}", response.status);
                if !retryable(response.status) {
                    record.outcome = DeliveryOutcome::Failed { reason };
                    return record;
                }
                let wait = retry_after(&response)
                    .map(|after| after.min(policy.max_retry_after))
                    .unwrap_or_else(|| policy.backoff(record.attempts));
                (reason, wait)
            }
            Err(error @ TransportError::EgressDenied(_)) => {
                record.outcome = DeliveryOutcome::Failed {
                    reason: error.to_string(),
                };
                return record;
            }
            Err(error) => {
                record.status = None;
                (error.to_string(), policy.backoff(record.attempts))
            }
        };
        if record.attempts >= max_attempts {
            record.outcome = DeliveryOutcome::Failed {
                reason: format!("{reason} after {} attempts", record.attempts),
            };
            return record;
        }
        record
            .waits_ms
            .push(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
        tokio::time::sleep(wait).await;
    }
}

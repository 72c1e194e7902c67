//! Webhook delivery against a real HTTP server on 127.0.0.1: retries on 5xx, 429 and
//! transport errors with backoff, Retry-After honoured and capped, no retry on 4xx or egress
//! denial, every failure recorded with its status.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alert_rules::model::WebhookMethod;
use alert_rules::{
    DeliveryOutcome, DeliveryRecord, PlannedAction, RetryPolicy, TransportError, WebhookRequest,
    WebhookResponse, WebhookTransport, deliver,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// What the receiver saw.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    content_type: Option<String>,
    header: Option<String>,
    body: String,
}

/// A scripted answer: status and Retry-After.
type Answer = (u16, Option<&'static str>);

/// A receiver answering from a script of (status, Retry-After), then 200 once it runs out.
#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<VecDeque<Answer>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(script: &[Answer]) -> (Receiver, SocketAddr) {
        let receiver = Receiver {
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            ..Receiver::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| server.clone().handle(request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (receiver, addr)
    }

    async fn handle(
        self,
        request: hyper::Request<Incoming>,
    ) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let mut seen = Received {
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
            content_type: header("content-type"),
            header: header("x-rule"),
            body: String::new(),
        };
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        seen.body = String::from_utf8_lossy(&body).into_owned();
        self.received.lock().unwrap().push(seen);
        let (status, retry_after) = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or((200, None));
        let mut response = hyper::Response::builder().status(status);
        if let Some(after) = retry_after {
            response = response.header("retry-after", after);
        }
        Ok(response.body(Full::new(Bytes::from_static(b"ok"))).unwrap())
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// A small transport on hyper-util's client. Endpoints on `denied_host` are refused the way
/// the host's egress check refuses them: before any connection.
struct HyperTransport {
    client: Client<HttpConnector, Full<Bytes>>,
    denied_host: Option<&'static str>,
}

impl HyperTransport {
    fn new() -> Self {
        HyperTransport {
            client: Client::builder(TokioExecutor::new()).build_http(),
            denied_host: None,
        }
    }
}

impl WebhookTransport for HyperTransport {
    async fn send(&self, request: &WebhookRequest) -> Result<WebhookResponse, TransportError> {
        let uri: hyper::Uri = request
            .endpoint
            .parse()
            .map_err(|e| TransportError::Failed(format!("{e}")))?;
        if self
            .denied_host
            .is_some_and(|host| uri.host() == Some(host))
        {
            return Err(TransportError::EgressDenied(format!(
                "{} is not an allowed host",
                uri.host().unwrap_or("")
            )));
        }
        let mut builder = hyper::Request::builder()
            .method(request.method.as_str())
            .uri(uri);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let body = Full::new(Bytes::from(request.body.clone().unwrap_or_default()));
        let http_request = builder
            .body(body)
            .map_err(|e| TransportError::Failed(e.to_string()))?;
        let response =
            tokio::time::timeout(Duration::from_secs(10), self.client.request(http_request))
                .await
                .map_err(|_| TransportError::Timeout)?
                .map_err(|e| TransportError::Failed(e.to_string()))?;
        Ok(WebhookResponse {
            status: response.status().as_u16(),
            retry_after: response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    }
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(2),
    }
}

/// Starts a receiver with `script` and delivers one POST of `{"n":1}` to it.
async fn deliver_one(script: &[Answer], policy: &RetryPolicy) -> (Receiver, DeliveryRecord) {
    let (receiver, addr) = Receiver::start(script).await;
    let actions = [webhook(
        format!("http://{addr}/hook"),
        WebhookMethod::Post,
        r#"{"n":1}"#,
    )];
    let mut records = deliver(&actions, &HyperTransport::new(), policy).await;
    assert_eq!(records.len(), 1);
    (receiver, records.remove(0))
}

fn webhook(endpoint: String, method: WebhookMethod, body: &str) -> PlannedAction {
    PlannedAction::Webhook(WebhookRequest {
        endpoint,
        method,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("x-rule".to_owned(), "no mfa".to_owned()),
        ],
        body: Some(body.to_owned()),
    })
}

#[tokio::test]
async fn server_errors_are_retried_until_delivered() {
    let (receiver, record) = deliver_one(&[(503, None), (500, None)], &fast_policy()).await;
    assert_eq!(record.outcome, DeliveryOutcome::Delivered);
    assert_eq!(record.attempts, 3);
    assert_eq!(record.status, Some(200));
    assert_eq!(receiver.count(), 3, "two failures, then the delivery");
    // Exponential with equal jitter: [base/2, base] with base 10 ms, then 20 ms.
    assert_eq!(record.waits_ms.len(), 2);
    assert!(
        (5..=10).contains(&record.waits_ms[0]),
        "{:?}",
        record.waits_ms
    );
    assert!(
        (10..=20).contains(&record.waits_ms[1]),
        "{:?}",
        record.waits_ms
    );
    let seen = receiver.received();
    assert!(
        seen.iter()
            .all(|r| r.body == r#"{"n":1}"# && r.method == "POST" && r.path == "/hook")
    );
    assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(seen[0].header.as_deref(), Some("no mfa"));
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let (receiver, addr) = Receiver::start(&[(429, Some("1"))]).await;
    let actions = [webhook(
        format!("http://{addr}/hook"),
        WebhookMethod::Put,
        "{}",
    )];
    let records = deliver(&actions, &HyperTransport::new(), &fast_policy()).await;
    assert_eq!(records[0].outcome, DeliveryOutcome::Delivered);
    assert_eq!(records[0].attempts, 2);
    assert_eq!(
        records[0].waits_ms,
        [1000],
        "Retry-After: 1 second, not the 10 ms backoff"
    );
    assert_eq!(receiver.count(), 2);
    assert_eq!(receiver.received()[1].method, "PUT");
}

#[tokio::test]
async fn retry_after_is_capped() {
    let policy = RetryPolicy {
        max_retry_after: Duration::from_millis(30),
        ..fast_policy()
    };
    let (receiver, record) =
        deliver_one(&[(503, Some("3600")), (429, Some("soon"))], &policy).await;
    assert_eq!(record.outcome, DeliveryOutcome::Delivered);
    assert_eq!(record.waits_ms[0], 30, "an hour cut to the cap");
    assert!(
        (10..=20).contains(&record.waits_ms[1]),
        "unparsable Retry-After: backoff, {:?}",
        record.waits_ms
    );
    assert_eq!(receiver.count(), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_are_recorded_with_their_status() {
    let (receiver, record) = deliver_one(&[(400, None)], &fast_policy()).await;
    assert_eq!(record.attempts, 1);
    assert_eq!(record.status, Some(400));
    assert_eq!(
        record.outcome,
        DeliveryOutcome::Failed {
            reason: "HTTP 400".to_owned()
        }
    );
    assert!(record.waits_ms.is_empty());
    assert_eq!(receiver.count(), 1);
}

#[tokio::test]
async fn exhausted_retries_are_recorded_with_the_last_status() {
    let script = [(502, None), (503, None), (500, None), (500, None)];
    let (receiver, record) = deliver_one(&script, &fast_policy()).await;
    assert_eq!(record.attempts, 3);
    assert_eq!(record.status, Some(500));
    assert_eq!(
        record.outcome,
        DeliveryOutcome::Failed {
            reason: "HTTP 500 after 3 attempts".to_owned()
        }
    );
    assert_eq!(receiver.count(), 3, "max_attempts in all");
    let json = serde_json::to_value(record).unwrap();
    assert_eq!(json["outcome"], "failed");
    assert_eq!(json["status"], 500);
}

#[tokio::test]
async fn connection_errors_are_retried_then_recorded() {
    // A port that was free a moment ago: connections are refused.
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let actions = [webhook(
        format!("http://{addr}/hook"),
        WebhookMethod::Post,
        "{}",
    )];
    let records = deliver(&actions, &HyperTransport::new(), &fast_policy()).await;
    let record = &records[0];
    assert_eq!(record.attempts, 3);
    assert_eq!(record.status, None);
    assert!(
        matches!(&record.outcome, DeliveryOutcome::Failed { reason } if reason.ends_with("after 3 attempts")),
        "{record:?}"
    );
}

#[tokio::test]
async fn egress_denial_is_not_retried() {
    let (receiver, addr) = Receiver::start(&[]).await;
    let transport = HyperTransport {
        denied_host: Some("169.254.169.254"),
        ..HyperTransport::new()
    };
    let actions = [
        webhook(
            "http://169.254.169.254/latest/meta-data".to_owned(),
            WebhookMethod::Get,
            "{}",
        ),
        webhook(
            format!("http://{addr}/after"),
            WebhookMethod::Post,
            r#"{"second":true}"#,
        ),
    ];
    let records = deliver(&actions, &transport, &fast_policy()).await;
    assert_eq!(
        records.len(),
        2,
        "one record per webhook, the denied one included"
    );
    assert_eq!(records[0].attempts, 1);
    assert_eq!(records[0].status, None);
    assert!(
        matches!(&records[0].outcome, DeliveryOutcome::Failed { reason } if reason.starts_with("egress denied")),
        "{:?}",
        records[0]
    );
    assert_eq!(records[1].outcome, DeliveryOutcome::Delivered);
    let seen = receiver.received();
    assert_eq!(seen.len(), 1, "only the allowed webhook reached a server");
    assert_eq!(seen[0].path, "/after");
    assert_eq!(seen[0].body, r#"{"second":true}"#);
}

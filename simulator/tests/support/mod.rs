//! A deliberately dumb HTTP/1.1 client over a raw `TcpStream`: one request per
//! connection (`connection: close`), read to EOF. Being raw lets the tests see what a
//! real client cannot hide: a dropped connection, a body shorter than its
//! `content-length`.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::time::Duration;

use jumpcloud_simulator::{Dataset, Simulator, SimulatorConfig, TenantSpec};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back on the socket.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Lowercased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn total_count(&self) -> Option<usize> {
        self.header("x-total-count").and_then(|v| v.parse().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends one request and reads the whole answer. `None` when the server closed the
/// connection without sending a byte.
pub async fn raw(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Option<Reply> {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to simulator");
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut bytes))
        .await
        .expect("simulator answered within 20 s");
    // A reset after a drop is as good as EOF: what matters is what arrived.
    if read.is_err() && bytes.is_empty() {
        return None;
    }
    if bytes.is_empty() {
        return None;
    }
    Some(parse(&bytes))
}

fn parse(bytes: &[u8]) -> Reply {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("complete response head");
    let head = String::from_utf8_lossy(&bytes[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: bytes[split + 4..].to_vec(),
    }
}

/// An authenticated JSON client for one simulator, optionally bound to one organization.
pub struct Client {
    pub addr: SocketAddr,
    pub api_key: String,
    pub org_id: Option<String>,
}

impl Client {
    pub fn new(sim: &Simulator) -> Client {
        Client {
            addr: sim.local_addr(),
            api_key: sim.api_key().to_owned(),
            org_id: None,
        }
    }

    /// The same client sending `x-org-id: <org_id>`.
    pub fn clone_with_org(&self, org_id: &str) -> Client {
        Client {
            addr: self.addr,
            api_key: self.api_key.clone(),
            org_id: Some(org_id.to_owned()),
        }
    }

    pub async fn try_get(&self, target: &str) -> Option<Reply> {
        let mut headers = vec![
            ("x-api-key", self.api_key.as_str()),
            ("accept", "application/json"),
            ("content-type", "application/json"),
        ];
        if let Some(org) = &self.org_id {
            headers.push(("x-org-id", org.as_str()));
        }
        raw(self.addr, "GET", target, &headers).await
    }

    pub async fn get(&self, target: &str) -> Reply {
        self.try_get(target)
            .await
            .expect("an answer, not a dropped connection")
    }

    /// Pages through a list with `limit=100` until an empty page; returns every item
    /// and the totals each page reported.
    pub async fn all(&self, path: &str, extra: &str) -> (Vec<Value>, Vec<usize>) {
        let mut items = Vec::new();
        let mut totals = Vec::new();
        loop {
            let target = format!("{path}?limit=100&skip={}{extra}", items.len());
            let reply = self.get(&target).await;
            assert_eq!(
                reply.status,
                200,
                "{target}: {}",
                String::from_utf8_lossy(&reply.body)
            );
            let body = reply.json();
            let (page, total) = match body {
                Value::Object(mut envelope) => {
                    let total = envelope["totalCount"].as_u64().expect("totalCount") as usize;
                    let Some(Value::Array(results)) = envelope.remove("results") else {
                        panic!("results array")
                    };
                    (results, total)
                }
                Value::Array(page) => (page, reply.total_count().expect("x-total-count")),
                other => panic!("unexpected body {other}"),
            };
            totals.push(total);
            if page.is_empty() {
                return (items, totals);
            }
            items.extend(page);
        }
    }
}

/// A simulator with a generated tenant.
pub async fn start(spec: TenantSpec) -> Simulator {
    Simulator::start(SimulatorConfig {
        dataset: Dataset::Generated(spec),
        ..SimulatorConfig::default()
    })
    .await
    .expect("simulator starts")
}

pub fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|v| {
            v.get("id")
                .or_else(|| v.get("_id"))
                .and_then(Value::as_str)
                .expect("id")
                .to_owned()
        })
        .collect()
}

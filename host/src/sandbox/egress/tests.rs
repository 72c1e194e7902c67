//! Unit tests of the send hook: the destination checks, and that a request goes to the
//! address that was checked, whatever a second DNS answer would say.

use super::*;
use crate::sandbox::policy::HostPattern;

use std::sync::Mutex;

use http_body_util::{BodyExt, Empty};

fn policy(hosts: &[&str], allow_private: bool) -> SandboxPolicy {
    SandboxPolicy {
        allowed_hosts: hosts
            .iter()
            .map(|h| HostPattern::parse(h).unwrap())
            .collect(),
        allow_private_when_listed: allow_private,
        ..SandboxPolicy::default()
    }
}

async fn check(policy: &SandboxPolicy, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    check_destination(policy, &SystemResolver, host, port).await
}

#[tokio::test]
async fn unlisted_hosts_are_refused_without_resolving() {
    let policy = policy(&["console.jumpcloud.com"], false);
    let resolver = Answers::new(vec![]);
    let error = check_destination(&policy, &resolver, "does-not-resolve.invalid", 443)
        .await
        .unwrap_err();
    assert_eq!(error, "not on the tenant's allowlist");
    assert!(
        resolver.asked().is_empty(),
        "no DNS query for an unlisted host"
    );
}

#[tokio::test]
async fn metadata_address_is_refused_even_when_listed() {
    let policy = policy(&["169.254.169.254"], true);
    let error = check(&policy, "169.254.169.254", 80).await.unwrap_err();
    assert!(error.contains("metadata"), "{error}");
}

#[tokio::test]
async fn private_addresses_need_a_literal_listing_in_multi_tenant_mode() {
    // `localhost` resolves to loopback: refused unless the address itself is listed.
    let by_name = policy(&["localhost"], false);
    let error = check(&by_name, "localhost", 80).await.unwrap_err();
    assert!(error.contains("loopback or private"), "{error}");

    let literal = policy(&["127.0.0.1"], false);
    assert_eq!(
        check(&literal, "127.0.0.1", 80).await,
        Ok(vec!["127.0.0.1:80".parse().unwrap()])
    );

    let local_run = policy(&["localhost"], true);
    let addresses = check(&local_run, "localhost", 80).await.unwrap();
    assert!(
        addresses
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 80)
    );
}

#[tokio::test]
async fn port_must_match_when_given() {
    let policy = policy(&["127.0.0.1:8080"], true);
    assert!(check(&policy, "127.0.0.1", 8080).await.is_ok());
    assert!(check(&policy, "127.0.0.1", 8081).await.is_err());
}

#[tokio::test]
async fn a_name_with_one_refused_address_is_refused_whole() {
    let policy = policy(&["mixed.test"], true);
    let resolver = Answers::new(vec![vec![
        "127.0.0.1".parse().unwrap(),
        "169.254.169.254".parse().unwrap(),
    ]]);
    let error = check_destination(&policy, &resolver, "mixed.test", 80)
        .await
        .unwrap_err();
    assert!(error.contains("169.254.169.254"), "{error}");
}

/// A resolver that gives its answers in turn (the last one again when they run out),
/// and records every question: a DNS server that rebinds.
struct Answers {
    answers: Mutex<Vec<Vec<IpAddr>>>,
    asked: Mutex<Vec<String>>,
}

impl Answers {
    fn new(mut answers: Vec<Vec<IpAddr>>) -> Answers {
        answers.reverse();
        Answers {
            answers: Mutex::new(answers),
            asked: Mutex::new(Vec::new()),
        }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Resolve for Answers {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        _port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>> {
        self.asked.lock().unwrap().push(host.to_owned());
        let mut answers = self.answers.lock().unwrap();
        let answer = if answers.len() > 1 {
            answers.pop().unwrap()
        } else {
            answers.last().cloned().unwrap_or_default()
        };
        Box::pin(async move { Ok(answer) })
    }
}

/// A server on 127.0.0.1 that answers every request with `body`; returns its port.
async fn server(body: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request| async move {
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        http_body_util::Full::new(Bytes::from_static(body.as_bytes())),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

fn request(url: &str) -> http::Request<WasiBody> {
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    http::Request::builder()
        .uri(url)
        .header(http::header::HOST, authority)
        .body(Empty::new().map_err(|never| match never {}).boxed_unsync())
        .unwrap()
}

fn hooks(policy: SandboxPolicy, resolver: Arc<dyn Resolve>, deadline: Instant) -> EgressHooks {
    EgressHooks::new(
        Arc::new(policy),
        Arc::new(EgressMeter::default()),
        Arc::from("test"),
        Arc::new(Semaphore::new(4)),
        deadline,
    )
    .with_resolver(resolver)
}

/// Sends a request through the hook and reads the whole answer.
async fn fetch(hooks: &mut EgressHooks, url: &str) -> Result<String, HttpError> {
    let future = hooks.send_request(request(url), None, Box::new(async { Ok(()) }));
    let (response, io) = Box::into_pin(future).await?;
    tokio::spawn(Box::into_pin(io));
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn the_connection_goes_to_the_checked_address_not_to_a_second_answer() {
    let port = server("from the checked address").await;
    // The first answer passes the check; any later one would lead to the metadata
    // service. The hook must connect with the first and never ask again.
    let resolver = Arc::new(Answers::new(vec![
        vec!["127.0.0.1".parse().unwrap()],
        vec!["169.254.169.254".parse().unwrap()],
    ]));
    let mut hooks = hooks(
        policy(&["rebind.test"], true),
        resolver.clone(),
        Instant::now() + Duration::from_secs(30),
    );
    let body = fetch(&mut hooks, &format!("http://rebind.test:{port}/api"))
        .await
        .expect("the request reaches the checked address");
    assert_eq!(body, "from the checked address");
    assert_eq!(
        resolver.asked(),
        vec!["rebind.test"],
        "resolved exactly once"
    );

    // The next request resolves again, gets the rebound answer, and is refused.
    let error = fetch(&mut hooks, &format!("http://rebind.test:{port}/api"))
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::HttpRequestDenied), "{error:?}");
    assert_eq!(hooks.meter.denied.load(Ordering::Relaxed), 1);
    assert_eq!(hooks.meter.requests.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_request_that_is_never_answered_ends_at_the_run_deadline() {
    // A listener that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let mut hooks = hooks(
        policy(&["127.0.0.1"], true),
        Arc::new(SystemResolver),
        Instant::now() + Duration::from_millis(300),
    );
    // The request's own timeouts are ten minutes: only the deadline can end it.
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        fetch(&mut hooks, &format!("http://127.0.0.1:{port}/")),
    )
    .await
    .expect("the hook gave up by itself");
    assert!(
        matches!(outcome, Err(HttpError::ConnectionTimeout)),
        "{outcome:?}"
    );
    held.abort();
}

//! The wasi-http send hook: the only way a guest reaches the network.
//!
//! Every request is checked against the tenant's allowlist before anything is sent
//! (not even a DNS query for a host that is not listed); names are resolved and each
//! address checked too, so an allowed name cannot lead to the cloud metadata service
//! or, in the multi-tenant mode, into the private network. Allowed requests wait for a
//! slot under the concurrency cap, and response bodies are cut off at the size cap.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::policy::{SandboxPolicy, is_always_refused, is_private};

/// Counters of one run's outgoing traffic.
#[derive(Debug, Default)]
pub struct EgressMeter {
    /// Requests sent (allowed by the policy).
    pub requests: AtomicU64,
    /// Requests refused by the policy.
    pub denied: AtomicU64,
    /// Response body bytes received.
    pub bytes_received: AtomicU64,
}

/// The send hook of one tenant run.
pub struct EgressHooks {
    policy: Arc<SandboxPolicy>,
    meter: Arc<EgressMeter>,
    slots: Arc<Semaphore>,
    tenant: Arc<str>,
}

impl EgressHooks {
    /// `slots` bounds the requests in flight; every store of a run shares it.
    pub fn new(
        policy: Arc<SandboxPolicy>,
        meter: Arc<EgressMeter>,
        tenant: Arc<str>,
        slots: Arc<Semaphore>,
    ) -> Self {
        EgressHooks {
            policy,
            meter,
            slots,
            tenant,
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub authority: String,
    pub reason: String,
}

/// Checks a destination against the policy, resolving its name. Returns the reason
/// for a refusal.
pub async fn check_destination(
    policy: &SandboxPolicy,
    host: &str,
    port: u16,
) -> Result<(), String> {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let literal: Option<IpAddr> = host.parse().ok();
    if let Some(ip) = literal
        && is_always_refused(ip)
    {
        return Err(format!("{ip} is a link-local or metadata address"));
    }
    let Some(pattern) = policy.allowing(&host, port) else {
        return Err("not on the tenant's allowlist".into());
    };
    // Private addresses pass when the policy allows them for listed hosts (local runs),
    // or when the operator listed the address itself.
    let private_ok = policy.allow_private_when_listed
        || (pattern.is_exact() && pattern.host().parse::<IpAddr>().is_ok());
    let addresses: Vec<IpAddr> = match literal {
        Some(ip) => vec![ip],
        None => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|error| format!("cannot resolve: {error}"))?
            .map(|addr| addr.ip())
            .collect(),
    };
    for ip in addresses {
        if is_always_refused(ip) {
            return Err(format!(
                "resolves to {ip}, a link-local or metadata address"
            ));
        }
        if is_private(ip) && !private_ok {
            return Err(format!("resolves to {ip}, a loopback or private address"));
        }
    }
    Ok(())
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let policy = self.policy.clone();
        let meter = self.meter.clone();
        let slots = self.slots.clone();
        let tenant = self.tenant.clone();
        Box::new(async move {
            let uri = request.uri();
            let host = uri.host().unwrap_or_default().to_owned();
            let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            if let Err(reason) = check_destination(&policy, &host, port).await {
                meter.denied.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(tenant = %tenant, host = %host, port, %reason, "egress denied");
                return Err(HttpError::HttpRequestDenied);
            }
            // Wait for a slot; it is held until the response body is done with.
            let permit = slots
                .acquire_owned()
                .await
                .map_err(|_| HttpError::InternalError(Some("egress slots closed".into())))?;
            meter.requests.fetch_add(1, Ordering::Relaxed);
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let limit = policy.max_response_bytes;
            // A declared length over the cap fails the request itself, with the precise
            // error code; bodies without one are cut off while streaming.
            let declared = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(length) = declared
                && length > limit
            {
                tracing::warn!(tenant = %tenant, host = %host, length, limit, "response over the size cap");
                return Err(HttpError::HttpResponseBodySize(Some(length)));
            }
            let response = response.map(|body| {
                http_body_util::BodyExt::boxed_unsync(CappedBody {
                    inner: body,
                    remaining: limit,
                    meter,
                    _permit: permit,
                })
            });
            Ok((
                response,
                Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}

/// A response body that fails once it passes the size cap, counts bytes, and holds a
/// concurrency slot until it is dropped.
struct CappedBody<B> {
    inner: B,
    remaining: u64,
    meter: Arc<EgressMeter>,
    _permit: OwnedSemaphorePermit,
}

impl<B> Body for CappedBody<B>
where
    B: Body<Data = Bytes, Error = HttpError> + Unpin,
{
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let len = data.len() as u64;
            self.meter.bytes_received.fetch_add(len, Ordering::Relaxed);
            if len > self.remaining {
                self.remaining = 0;
                return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(None))));
            }
            self.remaining -= len;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::HostPattern;

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

    #[tokio::test]
    async fn unlisted_hosts_are_refused_without_resolving() {
        let policy = policy(&["console.jumpcloud.com"], false);
        let error = check_destination(&policy, "does-not-resolve.invalid", 443)
            .await
            .unwrap_err();
        assert_eq!(error, "not on the tenant's allowlist");
    }

    #[tokio::test]
    async fn metadata_address_is_refused_even_when_listed() {
        let policy = policy(&["169.254.169.254"], true);
        let error = check_destination(&policy, "169.254.169.254", 80)
            .await
            .unwrap_err();
        assert!(error.contains("metadata"), "{error}");
    }

    #[tokio::test]
    async fn private_addresses_need_a_literal_listing_in_multi_tenant_mode() {
        // `localhost` resolves to loopback: refused unless the address itself is listed.
        let by_name = policy(&["localhost"], false);
        let error = check_destination(&by_name, "localhost", 80)
            .await
            .unwrap_err();
        assert!(error.contains("loopback or private"), "{error}");

        let literal = policy(&["127.0.0.1"], false);
        assert_eq!(check_destination(&literal, "127.0.0.1", 80).await, Ok(()));

        let local_run = policy(&["localhost"], true);
        assert_eq!(check_destination(&local_run, "localhost", 80).await, Ok(()));
    }

    #[tokio::test]
    async fn port_must_match_when_given() {
        let policy = policy(&["127.0.0.1:8080"], true);
        assert_eq!(check_destination(&policy, "127.0.0.1", 8080).await, Ok(()));
        assert!(check_destination(&policy, "127.0.0.1", 8081).await.is_err());
    }
}

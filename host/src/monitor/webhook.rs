//! Webhooks of alert rules, sent through the same egress checks as a plugin's requests:
//! a rules file cannot make the host call the metadata address, nor (in a multi-tenant
//! host) a private address it did not name literally.
//!
//! The allowlist is the set of endpoints the rules file names: the operator wrote them.

use std::collections::BTreeSet;
use std::time::Duration;

use alert_rules::{Rule, TransportError, WebhookRequest, WebhookResponse, WebhookTransport};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::sandbox::egress::{SystemResolver, check_destination, connect_checked};
use crate::sandbox::policy::{HostPattern, SandboxPolicy};

/// How long one webhook attempt may take, connect to last byte.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP client for webhooks, checked against an allowlist of the rules' endpoints.
pub struct EgressTransport {
    policy: SandboxPolicy,
}

impl EgressTransport {
    /// Allows the hosts of the endpoints these rules name; private addresses only when
    /// named literally (`http://127.0.0.1:9000/hook`), link-local and metadata never.
    pub fn for_rules(rules: &[Rule]) -> EgressTransport {
        let endpoints: BTreeSet<String> = rules
            .iter()
            .flat_map(|rule| rule.webhook_endpoints())
            .collect();
        EgressTransport::for_endpoints(endpoints.iter().map(String::as_str))
    }

    /// Allows the hosts of these endpoints, as [`EgressTransport::for_rules`] does.
    pub fn for_endpoints<'a>(endpoints: impl IntoIterator<Item = &'a str>) -> EgressTransport {
        let mut policy = SandboxPolicy {
            allowed_hosts: Vec::new(),
            allow_private_when_listed: false,
            ..SandboxPolicy::default()
        };
        for endpoint in endpoints {
            let Ok(uri) = endpoint.parse::<http::Uri>() else {
                continue;
            };
            let Some(authority) = uri.authority() else {
                continue;
            };
            let port = authority.port_u16().unwrap_or(match uri.scheme_str() {
                Some("https") => 443,
                _ => 80,
            });
            if let Ok(pattern) = HostPattern::parse(&format!("{}:{port}", authority.host())) {
                policy.allowed_hosts.push(pattern);
            }
        }
        EgressTransport { policy }
    }
}

impl WebhookTransport for EgressTransport {
    async fn send(&self, request: &WebhookRequest) -> Result<WebhookResponse, TransportError> {
        let uri: http::Uri = request
            .endpoint
            .parse()
            .map_err(|e| TransportError::Failed(format!("bad endpoint: {e}")))?;
        let https = uri.scheme_str() == Some("https");
        if !https && uri.scheme_str() != Some("http") {
            return Err(TransportError::Failed("the endpoint is not http(s)".into()));
        }
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        // The connection goes to the addresses checked here: no second resolution.
        let addresses = check_destination(&self.policy, &SystemResolver, &host, port)
            .await
            .map_err(TransportError::EgressDenied)?;
        let attempt = async {
            // The plugin's path: TCP to a checked address, TLS verified against the webpki
            // roots for the endpoint's name.
            let tls_name = https.then_some(host.trim_start_matches('[').trim_end_matches(']'));
            let stream = connect_checked(&addresses, tls_name, ATTEMPT_TIMEOUT)
                .await
                .map_err(|e| TransportError::Failed(format!("connect: {e}")))?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| TransportError::Failed(format!("handshake: {e}")))?;
            tokio::spawn(connection);
            let mut builder = http::Request::builder()
                .method(request.method.as_str())
                .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
                .header(
                    http::header::HOST,
                    uri.authority().map_or("", |a| a.as_str()),
                )
                .header(http::header::USER_AGENT, "integration-host-webhook");
            for (name, value) in &request.headers {
                builder = builder.header(name.as_str(), value.as_str());
            }
            let body = Full::new(Bytes::from(request.body.clone().unwrap_or_default()));
            let http_request = builder
                .body(body)
                .map_err(|e| TransportError::Failed(format!("request: {e}")))?;
            let response = sender
                .send_request(http_request)
                .await
                .map_err(|e| TransportError::Failed(format!("send: {e}")))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            // Drain (bounded) so the server is not cut off mid-answer.
            let _ = http_body_util::Limited::new(response.into_body(), 64 << 10)
                .collect()
                .await;
            Ok(WebhookResponse {
                status,
                retry_after,
            })
        };
        tokio::time::timeout(ATTEMPT_TIMEOUT, attempt)
            .await
            .map_err(|_| TransportError::Timeout)?
    }
}

/// The webhook endpoints a rule names.
trait WebhookEndpoints {
    fn webhook_endpoints(&self) -> Vec<String>;
}

impl WebhookEndpoints for Rule {
    fn webhook_endpoints(&self) -> Vec<String> {
        self.operations
            .iter()
            .flat_map(|operation| operation.actions.iter())
            .filter_map(|action| match action {
                alert_rules::model::Action::Webhook(webhook) => Some(webhook.endpoint.clone()),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alert_rules::model::WebhookMethod;
    use tokio::io::AsyncReadExt;

    fn post(endpoint: &str) -> WebhookRequest {
        WebhookRequest {
            endpoint: endpoint.to_owned(),
            method: WebhookMethod::Post,
            headers: Vec::new(),
            body: Some("{}".into()),
        }
    }

    /// An https endpoint is reached over TLS, at the checked address: the listener on
    /// 127.0.0.1 sees a TLS handshake record, not plain HTTP, and (no certificate of
    /// the webpki roots answering) the attempt fails as a TLS failure.
    #[tokio::test]
    async fn https_webhooks_speak_tls_to_the_checked_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut first = [0u8; 3];
            stream.read_exact(&mut first).await.unwrap();
            first
        });
        let endpoint = format!("https://127.0.0.1:{port}/hook");
        let transport = EgressTransport::for_endpoints([endpoint.as_str()]);
        let error = transport.send(&post(&endpoint)).await.unwrap_err();
        let first = server.await.unwrap();
        // A TLS record of type handshake (22), protocol 3.x.
        assert_eq!((first[0], first[1]), (0x16, 0x03), "{first:?}");
        assert!(
            matches!(&error, TransportError::Failed(text) if text.starts_with("connect:")),
            "{error:?}"
        );
    }

    /// Endpoints a rules file does not name, and the metadata address even when named,
    /// are refused before any connection.
    #[tokio::test]
    async fn webhooks_are_egress_checked() {
        let transport = EgressTransport::for_endpoints(["http://169.254.169.254/hook"]);
        let error = transport
            .send(&post("http://169.254.169.254/hook"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, TransportError::EgressDenied(_)),
            "{error:?}"
        );
        let error = transport
            .send(&post("http://127.0.0.1:9/other"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, TransportError::EgressDenied(_)),
            "{error:?}"
        );
    }
}

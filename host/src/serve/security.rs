//! Who may talk to `serve`, and what its answers allow a browser to do.
//!
//! - **Listening**: loopback needs nothing; any other address needs an access token
//!   ([`AccessPolicy::for_listener`] refuses to start without one).
//! - **Token**: from `--token-file` or `INTEGRATION_HOST_TOKEN`; presented as
//!   `Authorization: Bearer <token>` (scripts, the CLI) or as the `ih_token` cookie the
//!   login form sets (the console). Compared in constant time, over SHA-256 digests so
//!   that not even the length leaks.
//! - **Host**: on loopback, a request must name a loopback host (`127.0.0.1`,
//!   `localhost`, `[::1]`): a page of another site that rebinds its DNS name to
//!   127.0.0.1 must not read the API.
//! - **Origin**: a request carrying an `Origin` of another site is refused, whatever its
//!   method: no CORS, ever. A state-changing request (not GET/HEAD) needs the bearer
//!   token or proof that it comes from the console's own pages (`Origin` equal to the
//!   host, or `Sec-Fetch-Site: same-origin`); a cookie alone never suffices, since a
//!   browser sends cookies with forged requests too.
//! - **Headers**: every answer forbids framing, sniffing and scripts from anywhere but
//!   the host (a Content-Security-Policy of `'self'`); API answers are not cached.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The environment variable that holds the access token when no file is given.
pub const TOKEN_ENV: &str = "INTEGRATION_HOST_TOKEN";
/// The cookie the login form sets; HttpOnly, SameSite=Strict.
pub const TOKEN_COOKIE: &str = "ih_token";
/// Shorter tokens are refused: a token guards a network-reachable API.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why `serve` will not start with the access settings it was given.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(
        "{addr} is not a loopback address: give an access token with --token-file or {TOKEN_ENV}"
    )]
    TokenRequired { addr: SocketAddr },
    #[error("cannot read the token file {}: {source}", path.display())]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the access token from {origin} is {problem}")]
    BadToken { origin: String, problem: String },
}

/// An access token. Its `Debug` never shows it.
#[derive(Clone)]
pub struct AccessToken {
    digest: [u8; 32],
    text: Arc<str>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(..)")
    }
}

impl AccessToken {
    /// Checks a token's text. `origin` names where it came from, for the error.
    pub fn new(text: &str, origin: &str) -> Result<AccessToken, SecurityError> {
        let text = text.trim();
        let bad = |problem: String| SecurityError::BadToken {
            origin: origin.to_owned(),
            problem,
        };
        if text.len() < MIN_TOKEN_LEN {
            return Err(bad(format!(
                "{} characters long; at least {MIN_TOKEN_LEN} are needed",
                text.len()
            )));
        }
        // The token travels in a cookie and a header: keep to characters both carry
        // unquoted (RFC 6265 cookie-octets, minus the few that need care in headers).
        if let Some(c) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~+/=!#$%&*^|".contains(*c)))
        {
            return Err(bad(format!(
                "not usable: {c:?} is not allowed (use letters, digits and -._~+/=)"
            )));
        }
        Ok(AccessToken {
            digest: Sha256::digest(text.as_bytes()).into(),
            text: Arc::from(text),
        })
    }

    /// Constant-time comparison with a presented token. Both sides are hashed first,
    /// so neither the content nor the length of the real token shows in the timing.
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digest.ct_eq(&presented).into()
    }

    /// The token's text, for the login cookie.
    fn text(&self) -> &str {
        &self.text
    }
}

/// The access token of `serve`: the file's content when `token_file` is given, else the
/// environment variable [`TOKEN_ENV`] when set and non-empty, else none.
pub fn load_token(token_file: Option<&Path>) -> Result<Option<AccessToken>, SecurityError> {
    if let Some(path) = token_file {
        let text = std::fs::read_to_string(path).map_err(|source| SecurityError::TokenFile {
            path: path.to_owned(),
            source,
        })?;
        return AccessToken::new(&text, &format!("the file {}", path.display())).map(Some);
    }
    match std::env::var(TOKEN_ENV) {
        Ok(text) if !text.trim().is_empty() => AccessToken::new(&text, TOKEN_ENV).map(Some),
        _ => Ok(None),
    }
}

/// The access rules of one listener.
#[derive(Clone, Debug)]
pub struct AccessPolicy {
    token: Option<AccessToken>,
    /// Bound to a loopback address: Host headers must name loopback.
    loopback: bool,
}

impl AccessPolicy {
    /// The policy for a listener on `addr`: a non-loopback address without a token is
    /// refused, so that `serve` does not start.
    pub fn for_listener(
        addr: SocketAddr,
        token: Option<AccessToken>,
    ) -> Result<AccessPolicy, SecurityError> {
        let loopback = addr.ip().is_loopback();
        if !loopback && token.is_none() {
            return Err(SecurityError::TokenRequired { addr });
        }
        Ok(AccessPolicy { token, loopback })
    }

    /// True when requests must carry the token.
    pub fn token_required(&self) -> bool {
        self.token.is_some()
    }
}

/// Wraps `router` (the API and the console) in the access rules and adds the login
/// form (`GET`/`POST /login`), which sets the token cookie for the console.
pub fn protect(router: Router, policy: AccessPolicy) -> Router {
    let policy = Arc::new(policy);
    router
        .route(
            LOGIN_PATH,
            axum::routing::get(login_form).post(login_submit),
        )
        .layer(middleware::from_fn_with_state(policy.clone(), check))
        .layer(axum::Extension(policy))
}

const LOGIN_PATH: &str = "/login";

/// Paths served without the token: the login form and the console's static assets
/// (public code, no data).
fn is_public(path: &str) -> bool {
    path == LOGIN_PATH || path.starts_with("/assets/")
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// The middleware: refuses what the rules refuse, then sets the security headers.
async fn check(State(policy): State<Arc<AccessPolicy>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let path = request.uri().path().to_owned();
    let is_api = path.starts_with("/api/") || path == "/api";
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if policy.loopback && !host.as_deref().is_some_and(is_loopback_host) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers only to a loopback host name (127.0.0.1, localhost, [::1])",
        );
    }
    let origin = Provenance::of(headers, host.as_deref());
    if origin == Provenance::OtherSite {
        return refuse(
            StatusCode::FORBIDDEN,
            "cross-origin requests are refused (no CORS)",
        );
    }
    let bearer =
        bearer_token(headers).is_some_and(|t| policy.token.as_ref().is_some_and(|k| k.matches(t)));
    let authenticated = match &policy.token {
        None => true,
        Some(token) => bearer || cookie_token(headers).is_some_and(|t| token.matches(t)),
    };
    if !authenticated && !is_public(&path) {
        if !is_api && is_safe(request.method()) {
            return Redirect::to(LOGIN_PATH).into_response();
        }
        return refuse(
            StatusCode::UNAUTHORIZED,
            "an access token is required: Authorization: Bearer <token>",
        );
    }
    if !is_safe(request.method()) && !bearer {
        let allowed = match origin {
            Provenance::SameOrigin => true,
            // No Origin and no Sec-Fetch-Site: not a browser page (browsers send Origin
            // on every POST), so not a forgery. With a token, such clients use Bearer.
            Provenance::Unknown => policy.token.is_none(),
            Provenance::OtherSite => false,
        };
        if !allowed {
            return refuse(
                StatusCode::FORBIDDEN,
                "a state-changing request needs the access token or must come from the console's own pages",
            );
        }
    }
    let mut response = next.run(request).await;
    set_security_headers(response.headers_mut(), is_api);
    response
}

/// Where a request says it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Provenance {
    /// `Origin` equal to `http://<Host>`, or `Sec-Fetch-Site: same-origin`.
    SameOrigin,
    /// An `Origin` of another scheme/host/port, or `Sec-Fetch-Site` cross-site/same-site.
    OtherSite,
    /// Neither header (a non-browser client, or a navigation the user typed).
    Unknown,
}

impl Provenance {
    fn of(headers: &HeaderMap, host: Option<&str>) -> Provenance {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let same = match (origin.to_str(), host) {
                (Ok(origin), Some(host)) => {
                    origin.eq_ignore_ascii_case(&format!("http://{host}"))
                        || origin.eq_ignore_ascii_case(&format!("https://{host}"))
                }
                _ => false,
            };
            return if same {
                Provenance::SameOrigin
            } else {
                Provenance::OtherSite
            };
        }
        match headers
            .get(HeaderName::from_static("sec-fetch-site"))
            .and_then(|v| v.to_str().ok())
        {
            Some("same-origin") => Provenance::SameOrigin,
            // "none" is a navigation the user started (typed URL, bookmark).
            Some("none") | None => Provenance::Unknown,
            Some(_) => Provenance::OtherSite,
        }
    }
}

/// `127.0.0.1:8080`, `localhost`, `[::1]:80`: a Host header naming this machine.
fn is_loopback_host(host: &str) -> bool {
    let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    let name = authority.host();
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == TOKEN_COOKIE)
        .map(|(_, value)| value)
}

fn set_security_headers(headers: &mut HeaderMap, is_api: bool) {
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        content_security_policy(),
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    if is_api {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    // Never a CORS grant, whatever a handler set.
    headers.remove(header::ACCESS_CONTROL_ALLOW_ORIGIN);
    headers.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
}

/// Scripts, styles, images and connections from the host only. The one inline style
/// allowed is the rule cytoscape.js injects into the page (by its hash).
fn content_security_policy() -> &'static str {
    static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CSP.get_or_init(|| {
        format!(
            "default-src 'self'; script-src 'self'; style-src 'self' 'sha256-{}'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            base64_digest(CYTOSCAPE_INLINE_STYLE)
        )
    })
}

/// The `<style>` text cytoscape.js adds to the document head (vendored 3.35.0).
const CYTOSCAPE_INLINE_STYLE: &str = ".__________cytoscape_container { position: relative; }";

/// Standard base64 of a SHA-256 digest, as CSP hash sources want it.
fn base64_digest(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({"error": {"message": message}});
    let mut response = (status, axum::Json(body)).into_response();
    set_security_headers(response.headers_mut(), true);
    response
}

async fn login_form(axum::Extension(policy): axum::Extension<Arc<AccessPolicy>>) -> Response {
    crate::serve::console::login_page(policy.token_required(), None)
}

async fn login_submit(
    axum::Extension(policy): axum::Extension<Arc<AccessPolicy>>,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let Some(token) = &policy.token else {
        return Redirect::to("/").into_response();
    };
    if !token.matches(form.token.trim()) {
        let mut page = crate::serve::console::login_page(true, Some("That token is not right."));
        *page.status_mut() = StatusCode::UNAUTHORIZED;
        return page;
    }
    let cookie = format!(
        "{TOKEN_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
        token.text()
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    const TOKEN: &str = "s3cret-token-0123456789";

    fn make_app(policy: AccessPolicy) -> Router {
        let inner = Router::new()
            .route("/api/tenants", get(|| async { "tenants" }))
            .route("/api/tenants/{t}/trigger", post(|| async { "queued" }))
            .route("/tenants", get(|| async { "page" }))
            .route("/assets/app.js", get(|| async { "js" }));
        protect(inner, policy)
    }

    fn loopback() -> AccessPolicy {
        AccessPolicy::for_listener("127.0.0.1:7000".parse().unwrap(), None).unwrap()
    }

    fn with_token(addr: &str) -> AccessPolicy {
        let token = AccessToken::new(TOKEN, "test").unwrap();
        AccessPolicy::for_listener(addr.parse().unwrap(), Some(token)).unwrap()
    }

    async fn send(app: &Router, method: Method, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        app.clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[test]
    fn a_non_loopback_address_without_a_token_does_not_start() {
        let error = AccessPolicy::for_listener("0.0.0.0:8080".parse().unwrap(), None).unwrap_err();
        assert!(matches!(error, SecurityError::TokenRequired { .. }));
        assert!(error.to_string().contains("--token-file"));
        let token = AccessToken::new(TOKEN, "test").unwrap();
        assert!(AccessPolicy::for_listener("0.0.0.0:8080".parse().unwrap(), Some(token)).is_ok());
        assert!(AccessPolicy::for_listener("[::1]:8080".parse().unwrap(), None).is_ok());
    }

    #[test]
    fn tokens_are_checked_and_compared_whole() {
        assert!(matches!(
            AccessToken::new("short", "the file t"),
            Err(SecurityError::BadToken { .. })
        ));
        let error = AccessToken::new("has space in the middle!", "X").unwrap_err();
        assert!(error.to_string().contains("' '"), "{error}");
        let token = AccessToken::new(&format!("  {TOKEN}\n"), "t").unwrap();
        assert!(token.matches(TOKEN));
        assert!(!token.matches(&TOKEN[..TOKEN.len() - 1]));
        assert!(!token.matches(&format!("{TOKEN}x")));
        assert!(!token.matches(""));
        assert_eq!(format!("{token:?}"), "AccessToken(..)");
    }

    #[test]
    fn the_token_comes_from_the_file_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        let token = load_token(Some(&path)).unwrap().unwrap();
        assert!(token.matches(TOKEN));
        let missing = load_token(Some(&dir.path().join("nope"))).unwrap_err();
        assert!(matches!(missing, SecurityError::TokenFile { .. }));
    }

    #[tokio::test]
    async fn loopback_answers_only_to_loopback_host_names() {
        let app = make_app(loopback());
        for host in [
            "127.0.0.1:7000",
            "localhost:7000",
            "[::1]:7000",
            "localhost",
        ] {
            let response = send(&app, Method::GET, "/api/tenants", &[("host", host)]).await;
            assert_eq!(response.status(), StatusCode::OK, "{host}");
        }
        for host in [
            "evil.example:7000",
            "127.0.0.1.evil.example",
            "10.0.0.1:7000",
        ] {
            let response = send(&app, Method::GET, "/api/tenants", &[("host", host)]).await;
            assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST, "{host}");
        }
        let response = send(&app, Method::GET, "/api/tenants", &[]).await;
        assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);
    }

    #[tokio::test]
    async fn other_origins_are_refused_and_never_granted_cors() {
        let app = make_app(loopback());
        let host = ("host", "127.0.0.1:7000");
        let response = send(
            &app,
            Method::GET,
            "/api/tenants",
            &[host, ("origin", "http://evil.example")],
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
        // Another port of the same machine is another origin.
        let response = send(
            &app,
            Method::POST,
            "/api/tenants/a/trigger",
            &[host, ("origin", "http://127.0.0.1:7001")],
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let response = send(
            &app,
            Method::OPTIONS,
            "/api/tenants/a/trigger",
            &[host, ("origin", "http://evil.example")],
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let response = send(
            &app,
            Method::GET,
            "/api/tenants",
            &[host, ("origin", "http://127.0.0.1:7000")],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    }

    #[tokio::test]
    async fn state_changing_requests_need_same_origin_or_the_token() {
        let app = make_app(loopback());
        let host = ("host", "127.0.0.1:7000");
        let trigger = "/api/tenants/a/trigger";
        let cross = send(
            &app,
            Method::POST,
            trigger,
            &[host, ("sec-fetch-site", "cross-site")],
        )
        .await;
        assert_eq!(cross.status(), StatusCode::FORBIDDEN);
        let same_site = send(
            &app,
            Method::POST,
            trigger,
            &[host, ("sec-fetch-site", "same-site")],
        )
        .await;
        assert_eq!(same_site.status(), StatusCode::FORBIDDEN);
        let same = send(
            &app,
            Method::POST,
            trigger,
            &[host, ("origin", "http://127.0.0.1:7000")],
        )
        .await;
        assert_eq!(same.status(), StatusCode::OK);
        let fetch_meta = send(
            &app,
            Method::POST,
            trigger,
            &[host, ("sec-fetch-site", "same-origin")],
        )
        .await;
        assert_eq!(fetch_meta.status(), StatusCode::OK);
        // curl on loopback: no browser, no forgery.
        let script = send(&app, Method::POST, trigger, &[host]).await;
        assert_eq!(script.status(), StatusCode::OK);

        let app = make_app(with_token("0.0.0.0:7000"));
        let host = ("host", "console.internal:7000");
        let cookie = format!("{TOKEN_COOKIE}={TOKEN}");
        let bearer = format!("Bearer {TOKEN}");
        // A cookie is sent with forged requests too: it needs same-origin proof.
        let forged = send(&app, Method::POST, trigger, &[host, ("cookie", &cookie)]).await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        let console = send(
            &app,
            Method::POST,
            trigger,
            &[
                host,
                ("cookie", &cookie),
                ("origin", "http://console.internal:7000"),
            ],
        )
        .await;
        assert_eq!(console.status(), StatusCode::OK);
        let script = send(
            &app,
            Method::POST,
            trigger,
            &[host, ("authorization", &bearer)],
        )
        .await;
        assert_eq!(script.status(), StatusCode::OK);
        let same_origin_no_token = send(
            &app,
            Method::POST,
            trigger,
            &[host, ("origin", "http://console.internal:7000")],
        )
        .await;
        assert_eq!(same_origin_no_token.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn with_a_token_everything_but_login_and_assets_needs_it() {
        let app = make_app(with_token("0.0.0.0:7000"));
        let host = ("host", "console.internal:7000");
        let api = send(&app, Method::GET, "/api/tenants", &[host]).await;
        assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
        let wrong = send(
            &app,
            Method::GET,
            "/api/tenants",
            &[host, ("authorization", "Bearer wrong-token-0123456789")],
        )
        .await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let bearer = format!("Bearer {TOKEN}");
        let ok = send(
            &app,
            Method::GET,
            "/api/tenants",
            &[host, ("authorization", &bearer)],
        )
        .await;
        assert_eq!(ok.status(), StatusCode::OK);
        let cookie = format!("theme=dark; {TOKEN_COOKIE}={TOKEN}");
        let ok = send(
            &app,
            Method::GET,
            "/api/tenants",
            &[host, ("cookie", &cookie)],
        )
        .await;
        assert_eq!(ok.status(), StatusCode::OK);
        let page = send(&app, Method::GET, "/tenants", &[host]).await;
        assert_eq!(page.status(), StatusCode::SEE_OTHER);
        assert_eq!(page.headers()["location"], "/login");
        let asset = send(&app, Method::GET, "/assets/app.js", &[host]).await;
        assert_eq!(asset.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn the_login_form_sets_the_cookie_only_for_the_right_token() {
        let app = make_app(with_token("0.0.0.0:7000"));
        let host = ("host", "console.internal:7000");
        let origin = ("origin", "http://console.internal:7000");
        let form = ("content-type", "application/x-www-form-urlencoded");
        let post = |body: String| {
            let app = app.clone();
            async move {
                let request = Request::post(LOGIN_PATH)
                    .header(host.0, host.1)
                    .header(origin.0, origin.1)
                    .header(form.0, form.1)
                    .body(Body::from(body))
                    .unwrap();
                app.oneshot(request).await.unwrap()
            }
        };
        let wrong = post("token=nope-nope-nope-nope".into()).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert!(wrong.headers().get("set-cookie").is_none());
        let right = post(format!("token={TOKEN}")).await;
        assert_eq!(right.status(), StatusCode::SEE_OTHER);
        let cookie = right.headers()["set-cookie"].to_str().unwrap();
        assert!(
            cookie.starts_with(&format!("{TOKEN_COOKIE}={TOKEN};")),
            "{cookie}"
        );
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        // Login CSRF: a form of another site cannot log the browser in.
        let request = Request::post(LOGIN_PATH)
            .header(host.0, host.1)
            .header("origin", "http://evil.example")
            .header(form.0, form.1)
            .body(Body::from(format!("token={TOKEN}")))
            .unwrap();
        assert_eq!(
            app.clone().oneshot(request).await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn every_answer_carries_the_security_headers() {
        let app = make_app(loopback());
        let response = send(&app, Method::GET, "/tenants", &[("host", "127.0.0.1:7000")]).await;
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let api = send(
            &app,
            Method::GET,
            "/api/tenants",
            &[("host", "127.0.0.1:7000")],
        )
        .await;
        assert_eq!(api.headers()["cache-control"], "no-store");
    }

    #[test]
    fn the_csp_allows_exactly_the_style_the_vendored_cytoscape_injects() {
        // If a new cytoscape.js injects another rule, the page would lose it silently.
        let library = include_str!("../../console/vendor/cytoscape.min.js");
        assert!(library.contains(r#"u.textContent="."+s+" { position: relative; }""#));
        assert!(library.contains(r#"s="__________cytoscape_container""#));
        // sha256("") in standard base64, then the hash the CSP carries.
        assert_eq!(
            base64_digest(""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        let csp = content_security_policy();
        assert!(csp.contains(&format!(
            "'sha256-{}'",
            base64_digest(CYTOSCAPE_INLINE_STYLE)
        )));
    }
}

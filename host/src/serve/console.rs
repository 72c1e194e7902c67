//! The web console: HTML page shells (askama templates, compiled in) and the static
//! assets they load (our JS and CSS, the vendored cytoscape.js), all embedded in the
//! binary. Pages hold no data: their scripts read it from the JSON API (`/api/...`),
//! the same API scripts and the CLI use, so the console can show nothing the API
//! does not.
//!
//! Page map: `/` tenants; `/tenants/{t}` a tenant's runs and "Run now";
//! `/tenants/{t}/runs/{run}` a run's steps; `/tenants/{t}/changes?run=` a change set;
//! `/tenants/{t}/alerts`; `/tenants/{t}/graph` the graph view; `/query` the query box.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// The console's routes. Stateless, so they merge into a `Router` of any state:
/// `api_router.merge(console::router())`.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(tenants_page))
        .route("/query", get(query_page))
        .route("/tenants/{tenant}", get(tenant_page))
        .route("/tenants/{tenant}/runs/{run}", get(run_page))
        .route("/tenants/{tenant}/changes", get(changes_page))
        .route("/tenants/{tenant}/alerts", get(alerts_page))
        .route("/tenants/{tenant}/graph", get(graph_page))
        .route("/assets/{*path}", get(asset))
        .fallback(not_found)
}

/// What every page shell carries: which page it is and, as `data-` attributes on
/// `<main>`, the tenant and run its script reads.
struct Shell {
    page: &'static str,
    tenant: String,
    run: String,
}

impl Shell {
    fn new(page: &'static str, tenant: Option<String>, run: Option<String>) -> Shell {
        Shell {
            page,
            tenant: tenant.unwrap_or_default(),
            run: run.unwrap_or_default(),
        }
    }
}

macro_rules! page_template {
    ($name:ident, $file:literal) => {
        #[derive(Template)]
        #[template(path = $file)]
        struct $name {
            page: &'static str,
            tenant: String,
            run: String,
        }

        impl From<Shell> for $name {
            fn from(shell: Shell) -> $name {
                $name {
                    page: shell.page,
                    tenant: shell.tenant,
                    run: shell.run,
                }
            }
        }
    };
}

page_template!(TenantsPage, "tenants.html");
page_template!(TenantPage, "tenant.html");
page_template!(RunPage, "run.html");
page_template!(ChangesPage, "changes.html");
page_template!(AlertsPage, "alerts.html");
page_template!(GraphPage, "graph.html");
page_template!(QueryPage, "query.html");
page_template!(NotFoundPage, "not_found.html");

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    page: &'static str,
    tenant: String,
    run: String,
    token_required: bool,
    message: Option<&'a str>,
}

fn render(template: impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "console template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

async fn tenants_page() -> Response {
    render(TenantsPage::from(Shell::new("tenants", None, None)))
}

#[derive(serde::Deserialize)]
struct TenantParam {
    tenant: Option<String>,
}

async fn query_page(Query(params): Query<TenantParam>) -> Response {
    render(QueryPage::from(Shell::new("query", params.tenant, None)))
}

async fn tenant_page(Path(tenant): Path<String>) -> Response {
    render(TenantPage::from(Shell::new("tenant", Some(tenant), None)))
}

async fn run_page(Path((tenant, run)): Path<(String, String)>) -> Response {
    render(RunPage::from(Shell::new("run", Some(tenant), Some(run))))
}

#[derive(serde::Deserialize)]
struct RunParam {
    run: Option<String>,
}

async fn changes_page(Path(tenant): Path<String>, Query(params): Query<RunParam>) -> Response {
    render(ChangesPage::from(Shell::new(
        "changes",
        Some(tenant),
        params.run,
    )))
}

async fn alerts_page(Path(tenant): Path<String>) -> Response {
    render(AlertsPage::from(Shell::new("alerts", Some(tenant), None)))
}

async fn graph_page(Path(tenant): Path<String>) -> Response {
    render(GraphPage::from(Shell::new("graph", Some(tenant), None)))
}

async fn not_found() -> Response {
    let mut response = render(NotFoundPage::from(Shell::new("not-found", None, None)));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// The login form (served by `security::protect`, which owns the token).
pub(crate) fn login_page(token_required: bool, message: Option<&str>) -> Response {
    render(LoginPage {
        page: "login",
        tenant: String::new(),
        run: String::new(),
        token_required,
        message,
    })
}

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $dir:literal, $type:literal;)*) => {
        &[$(Asset {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $dir, "/", $path)),
        }),*]
    };
}

/// Every file the pages load, embedded at compile time (a test checks that every file
/// under `console/assets` and `console/vendor` is listed).
const ASSETS: &[Asset] = assets! {
    "console.css" => "assets", "text/css; charset=utf-8";
    "favicon.svg" => "assets", "image/svg+xml";
    "js/api.js" => "assets", "text/javascript; charset=utf-8";
    "js/graph.js" => "assets", "text/javascript; charset=utf-8";
    "js/graph-page.js" => "assets", "text/javascript; charset=utf-8";
    "js/tenants.js" => "assets", "text/javascript; charset=utf-8";
    "js/tenant.js" => "assets", "text/javascript; charset=utf-8";
    "js/run.js" => "assets", "text/javascript; charset=utf-8";
    "js/changes.js" => "assets", "text/javascript; charset=utf-8";
    "js/alerts.js" => "assets", "text/javascript; charset=utf-8";
    "js/query.js" => "assets", "text/javascript; charset=utf-8";
    "vendor/cytoscape.min.js" => "", "text/javascript; charset=utf-8";
    "vendor/cytoscape.LICENSE" => "", "text/plain; charset=utf-8";
};

fn find_asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Serves an embedded asset with an ETag (its content hash): browsers revalidate and
/// get `304` until the binary changes.
async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = find_asset(&path) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let etag = format!("\"{:x}\"", Sha256::digest(asset.bytes));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.bytes,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get_page(path: &str) -> (StatusCode, HeaderMap, String) {
        let app: Router = router();
        let response = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[test]
    fn every_file_under_assets_and_vendor_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut on_disk = Vec::new();
        for (dir, prefix) in [("assets", ""), ("vendor", "vendor/")] {
            let mut stack = vec![root.join(dir)];
            while let Some(folder) = stack.pop() {
                for entry in std::fs::read_dir(&folder).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        stack.push(path);
                        continue;
                    }
                    let rel = path.strip_prefix(root.join(dir)).unwrap();
                    let rel = format!("{prefix}{}", rel.to_string_lossy());
                    if rel != "vendor/README.md" {
                        on_disk.push(rel);
                    }
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
    }

    #[tokio::test]
    async fn pages_escape_what_the_address_puts_in_them() {
        let (status, _, body) = get_page("/tenants/%3Cscript%3Ex/graph").await;
        assert_eq!(status, StatusCode::OK);
        assert!(!body.contains("<script>x"), "{body}");
        assert!(body.contains("data-tenant=\"&#60;script&#62;x\""), "{body}");
        assert!(body.contains("/tenants/%3Cscript%3Ex/alerts"), "{body}");
    }

    #[tokio::test]
    async fn each_page_loads_its_own_script_from_the_host() {
        for (path, script) in [
            ("/", "/assets/js/tenants.js"),
            ("/tenants/acme", "/assets/js/tenant.js"),
            ("/tenants/acme/runs/7", "/assets/js/run.js"),
            ("/tenants/acme/changes?run=7", "/assets/js/changes.js"),
            ("/tenants/acme/alerts", "/assets/js/alerts.js"),
            ("/tenants/acme/graph", "/assets/js/graph-page.js"),
            ("/query?tenant=acme", "/assets/js/query.js"),
        ] {
            let (status, _, body) = get_page(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(
                body.contains(&format!("src=\"{script}\"")),
                "{path}: {body}"
            );
            assert!(
                !body.contains("src=\"http"),
                "{path} loads a script from elsewhere"
            );
            let src = script.trim_start_matches("/assets/");
            assert!(find_asset(src).is_some(), "{src} is not embedded");
        }
        let (_, _, body) = get_page("/tenants/acme/changes?run=7").await;
        assert!(body.contains("data-run=\"7\""));
    }

    #[tokio::test]
    async fn assets_are_served_with_their_type_and_revalidated() {
        let (status, headers, body) = get_page("/assets/vendor/cytoscape.min.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
        assert!(body.contains("Cytoscape Consortium"));
        let etag = headers["etag"].to_str().unwrap().to_owned();
        let app: Router = router();
        let response = app
            .oneshot(
                Request::get("/assets/vendor/cytoscape.min.js")
                    .header("if-none-match", &etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        let (status, _, _) = get_page("/assets/../Cargo.toml").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, body) = get_page("/no/such/page").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("Not found"));
    }
}

//! `serve`'s JSON API: tenants, runs, change sets, alerts, evaluations, J1QL queries,
//! entities with their neighbours, search, and the manual trigger. The console is a
//! client of it; so is anything else that speaks HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use graph_store::{
    AlertStatus, ChangeFilter, ChangeKind, ObjectKind, RunRecord, StoreError, TenantState,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::state::AppState;

/// Neighbours returned with an entity, at most.
const MAX_NEIGHBOURS: u64 = 500;

/// The API's routes, under `/api`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/tenants", get(tenants))
        .route("/api/tenants/{tenant}", get(tenant))
        .route("/api/tenants/{tenant}/runs", get(runs))
        .route("/api/tenants/{tenant}/runs/{run}", get(run))
        .route("/api/tenants/{tenant}/changes", get(changes))
        .route("/api/tenants/{tenant}/trigger", post(trigger))
        .route("/api/tenants/{tenant}/progress", get(progress))
        .route("/api/tenants/{tenant}/alerts", get(alerts))
        .route("/api/tenants/{tenant}/evaluations", get(evaluations))
        .route("/api/tenants/{tenant}/entities/{key}", get(entity))
        .route("/api/tenants/{tenant}/search", get(search))
        .route("/api/tenants/{tenant}/types", get(types))
        .route("/api/tenants/{tenant}/names", post(names))
        .route("/api/query", post(query))
        .with_state(state)
}

/// An error answer: a status and `{"error": {"message": ...}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl std::fmt::Display) -> ApiError {
        ApiError {
            status,
            body: json!({"error": {"message": message.to_string()}}),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let status = match &error {
            StoreError::UnknownTenant(_)
            | StoreError::UnknownRun { .. }
            | StoreError::NoRuns(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("API: {error}");
        }
        ApiError::new(status, error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// A tenant as the console lists it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    #[serde(flatten)]
    pub state: TenantState,
    /// A run of it is in flight in this process.
    pub running: bool,
    /// Served (scheduled, triggerable) by this process.
    pub served: bool,
    pub open_alerts: usize,
}

/// A run of the tenant is in flight here, or anywhere the store knows of (a fleet's
/// worker, `run --store`).
fn in_flight(state: &AppState, tenant: &TenantState) -> bool {
    state.scheduler.is_running(&tenant.settings.tenant)
        || tenant
            .last_run
            .as_ref()
            .is_some_and(|run| run.status == graph_store::RunStatus::Running)
}

async fn view(state: &AppState, tenant: TenantState) -> Result<TenantView, ApiError> {
    let open_alerts = state
        .store
        .alerts(&tenant.settings.tenant, Some(AlertStatus::Active))
        .await?
        .len();
    let id = tenant.settings.tenant.clone();
    Ok(TenantView {
        running: in_flight(state, &tenant),
        served: state.tenants.contains(&id),
        open_alerts,
        state: tenant,
    })
}

async fn tenants(State(state): State<Arc<AppState>>) -> ApiResult<Vec<TenantView>> {
    let mut views = Vec::new();
    for tenant in state.store.tenants().await? {
        views.push(view(&state, tenant).await?);
    }
    Ok(Json(views))
}

async fn tenant(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
) -> ApiResult<TenantView> {
    let tenant = state.store.tenant(&tenant).await?;
    Ok(Json(view(&state, tenant).await?))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<u64>,
}

async fn runs(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(limit): Query<Limit>,
) -> ApiResult<Vec<RunRecord>> {
    Ok(Json(
        state
            .store
            .runs(&tenant, limit.limit.unwrap_or(50).min(1000))
            .await?,
    ))
}

async fn run(
    State(state): State<Arc<AppState>>,
    Path((tenant, run)): Path<(String, i64)>,
) -> ApiResult<RunRecord> {
    Ok(Json(state.store.run(&tenant, run).await?))
}

#[derive(Deserialize)]
struct ChangesQuery {
    run: Option<i64>,
    #[serde(rename = "type")]
    object_type: Option<String>,
    change: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
}

async fn changes(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(query): Query<ChangesQuery>,
) -> ApiResult<Value> {
    let change = match query.change.as_deref() {
        None | Some("") => None,
        Some(text) => Some(ChangeKind::parse(text).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("change: {text:?} is not created, updated or deleted"),
            )
        })?),
    };
    let filter = ChangeFilter {
        object_type: query.object_type.filter(|t| !t.is_empty()),
        change,
        limit: Some(query.limit.unwrap_or(500).min(10_000)),
        offset: query.offset.unwrap_or(0),
    };
    let set = state.store.changes(&tenant, query.run, &filter).await?;
    let names = change_names(&state, &tenant, &set).await?;
    let mut body = serde_json::to_value(&set).map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("change set: {error}"),
        )
    })?;
    if let Some(object) = body.as_object_mut() {
        object.insert("names".into(), json!(names));
    }
    Ok(Json(body))
}

/// Keys of one page of changes (entities, and both ends of relationships) named more
/// readably than by key, at most this many per page.
const MAX_NAMED: usize = 3_000;

/// The human name of each entity a page of changes mentions (`displayName`, `name`,
/// the first `email`, or `username`), from the current graph, tombstones included: an
/// updated user whose name did not change is still shown by name, not by key.
async fn change_names(
    state: &AppState,
    tenant: &str,
    set: &graph_store::ChangeSet,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut keys = std::collections::BTreeSet::new();
    for change in &set.changes {
        match change.kind {
            ObjectKind::Entity => {
                keys.insert(change.key.as_str());
            }
            ObjectKind::Relationship => {
                keys.extend(change.from_key.as_deref());
                keys.extend(change.to_key.as_deref());
            }
        }
    }
    let mut names = BTreeMap::new();
    for key in keys.into_iter().take(MAX_NAMED) {
        if let Some(found) = state.store.object(tenant, key).await?
            && let Some(name) = display_name(&found.object.properties)
        {
            names.insert(key.to_owned(), name);
        }
    }
    Ok(names)
}

/// Keys one `names` request may ask about, at most.
const MAX_NAME_KEYS: usize = 1_000;
/// The longest key a `names` request may ask about (bytes).
const MAX_KEY_BYTES: usize = 1_024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamesRequest {
    keys: Vec<String>,
}

/// `POST {"keys": [...]}`: the human name of each entity that has one (`displayName`,
/// `name`, email, username), for pages that list bare keys (an alert's results).
async fn names(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Json(request): Json<NamesRequest>,
) -> ApiResult<BTreeMap<String, String>> {
    if request.keys.len() > MAX_NAME_KEYS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("keys: at most {MAX_NAME_KEYS} per request"),
        ));
    }
    let mut names = BTreeMap::new();
    for key in &request.keys {
        if key.len() > MAX_KEY_BYTES || names.contains_key(key) {
            continue;
        }
        if let Some(found) = state.store.object(&tenant, key).await?
            && let Some(name) = display_name(&found.object.properties)
        {
            names.insert(key.clone(), name);
        }
    }
    Ok(Json(names))
}

/// An entity's name for people: `displayName`, `name`, the (first) `email`, `username`.
fn display_name(properties: &serde_json::Map<String, Value>) -> Option<String> {
    ["displayName", "name", "email", "username"]
        .iter()
        .filter_map(|field| match properties.get(*field)? {
            Value::String(text) => Some(text.clone()),
            Value::Array(list) => list.first()?.as_str().map(str::to_owned),
            _ => None,
        })
        .find(|text| !text.trim().is_empty())
}

async fn trigger(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !state.tenants.contains(&tenant) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("tenant {tenant:?} is not run by this serve"),
        ));
    }
    state.scheduler.trigger(&tenant).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"queued": true}))))
}

async fn progress(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
) -> ApiResult<Value> {
    let steps: Vec<Value> = state
        .progress
        .snapshot(&tenant)
        .unwrap_or_default()
        .into_iter()
        .map(|(step, done, total)| json!({"step": step, "done": done, "total": total}))
        .collect();
    let running = in_flight(&state, &state.store.tenant(&tenant).await?);
    Ok(Json(json!({
        "running": running,
        "steps": steps,
    })))
}

#[derive(Deserialize)]
struct AlertsQuery {
    status: Option<String>,
}

async fn alerts(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(query): Query<AlertsQuery>,
) -> ApiResult<Vec<graph_store::AlertRecord>> {
    let status = match query.status.as_deref() {
        None | Some("active") => Some(AlertStatus::Active),
        Some("resolved") => Some(AlertStatus::Resolved),
        Some("all") => None,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("status: {other:?} is not active, resolved or all"),
            ));
        }
    };
    Ok(Json(state.store.alerts(&tenant, status).await?))
}

#[derive(Deserialize)]
struct EvaluationsQuery {
    run: Option<i64>,
}

async fn evaluations(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(query): Query<EvaluationsQuery>,
) -> ApiResult<Vec<graph_store::EvaluationRecord>> {
    Ok(Json(state.store.evaluations(&tenant, query.run).await?))
}

async fn entity(
    State(state): State<Arc<AppState>>,
    Path((tenant, key)): Path<(String, String)>,
) -> ApiResult<Value> {
    let Some(object) = state.store.object(&tenant, &key).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no object {key:?} in {tenant:?}"),
        ));
    };
    let relationships = state
        .store
        .relationships_of(&tenant, &key, object.metadata.deleted, MAX_NEIGHBOURS)
        .await?;
    let mut linked = Vec::new();
    for relationship in &relationships {
        let other = match (&relationship.object.from_key, &relationship.object.to_key) {
            (Some(from), Some(to)) if *from == key => to,
            (Some(from), _) => from,
            _ => continue,
        };
        let neighbour = state.store.object(&tenant, other).await?;
        let rank = neighbour
            .as_ref()
            .map_or(u8::MAX, |found| identity_rank(&found.object.classes));
        linked.push((rank, relationship, neighbour));
    }
    // Who someone is and belongs to before what they may use: a user's groups, account
    // and person come before the hundreds of systems its groups let it log into, so a
    // client that draws the first N shows them. Stable: the store's order within a rank.
    linked.sort_by_key(|(rank, _, _)| *rank);
    let mut neighbours = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (_, _, neighbour) in &linked {
        if let Some(found) = neighbour
            && seen.insert(found.object.key.as_str())
        {
            neighbours.push(found.to_json(false));
        }
    }
    Ok(Json(json!({
        "entity": object.to_json(false),
        "relationships": linked.iter().map(|(_, r, _)| r.to_json(false)).collect::<Vec<_>>(),
        "neighbours": neighbours,
    })))
}

/// The order in which an entity's neighbours are listed, by their classes: identities and
/// their memberships first (0), then applications (1), then the rest (devices, hosts,
/// policies, configurations: 2).
fn identity_rank(classes: &[String]) -> u8 {
    const IDENTITY: [&str; 6] = [
        "Group",
        "UserGroup",
        "Account",
        "Organization",
        "Person",
        "User",
    ];
    if classes.iter().any(|c| IDENTITY.contains(&c.as_str())) {
        0
    } else if classes.iter().any(|c| c == "Application") {
        1
    } else {
        2
    }
}

#[derive(Deserialize)]
struct SearchQuery {
    q: String,
    limit: Option<u64>,
}

async fn search(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(query): Query<SearchQuery>,
) -> ApiResult<Vec<Value>> {
    let found = state
        .store
        .search(&tenant, &query.q, query.limit.unwrap_or(25).min(500))
        .await?;
    Ok(Json(found.iter().map(|o| o.to_json(false)).collect()))
}

async fn types(State(state): State<Arc<AppState>>, Path(tenant): Path<String>) -> ApiResult<Value> {
    let mut entities = BTreeMap::new();
    let mut relationships = BTreeMap::new();
    for (kind, object_type, count) in state.store.type_counts(&tenant).await? {
        match kind {
            ObjectKind::Entity => entities.insert(object_type, count),
            ObjectKind::Relationship => relationships.insert(object_type, count),
        };
    }
    Ok(Json(
        json!({"entities": entities, "relationships": relationships}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QueryRequest {
    tenant: String,
    query: String,
    #[serde(default)]
    include_deleted: bool,
    limit: Option<usize>,
}

async fn query(
    State(state): State<Arc<AppState>>,
    Json(request): Json<QueryRequest>,
) -> Result<Json<Value>, ApiError> {
    let parsed = j1ql::parse(&request.query).map_err(|e| query_error(&request.query, &e))?;
    let graph = state.graph(&request.tenant).await?;
    let options = j1ql::ExecOptions {
        limit: request.limit,
        include_deleted: request.include_deleted,
        now_ms: graph_store::now_ms(),
    };
    let text = request.query.clone();
    // Evaluation and rendering are CPU work: off the async threads.
    let answer = tokio::task::spawn_blocking(move || {
        parsed.execute(&graph, &options).map(|result| {
            let mut answer = result.to_j1_json();
            if let Value::Object(map) = &mut answer {
                map.insert("total".into(), result.total().into());
            }
            answer
        })
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?
    .map_err(|e| query_error(&text, &e))?;
    Ok(Json(answer))
}

/// A query error with where it is and what was expected.
fn query_error(text: &str, error: &j1ql::QueryError) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        body: json!({"error": {
            "message": error.message,
            "line": error.line,
            "column": error.column,
            "expected": error.expected,
            "rendered": error.render(text),
        }}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(value: Value) -> serde_json::Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_display_name_prefers_display_name_then_name_email_username() {
        let both = props(json!({"displayName": "Ken 佐藤", "name": "ken", "email": "k@x"}));
        assert_eq!(display_name(&both).as_deref(), Some("Ken 佐藤"));
        let blank = props(json!({"displayName": "  ", "name": "Finance 4"}));
        assert_eq!(display_name(&blank).as_deref(), Some("Finance 4"));
        // A JumpCloud user's `email` is a list, its primary address first.
        let listed = props(json!({"email": ["a@x", "b@x"], "username": "a"}));
        assert_eq!(display_name(&listed).as_deref(), Some("a@x"));
        let none = props(json!({"id": "5e5a", "displayName": 7}));
        assert_eq!(display_name(&none), None);
    }

    #[test]
    fn identities_and_memberships_rank_before_applications_and_devices() {
        let rank = |classes: &[&str]| {
            identity_rank(&classes.iter().map(|c| c.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(rank(&["Group"]), 0);
        assert_eq!(rank(&["Account", "Organization"]), 0);
        assert_eq!(rank(&["Person"]), 0);
        assert_eq!(rank(&["Application"]), 1);
        assert_eq!(rank(&["Host", "Device"]), 2);
        assert_eq!(rank(&["ControlPolicy"]), 2);
        assert!(rank(&["User"]) < rank(&["Application"]));
    }
}

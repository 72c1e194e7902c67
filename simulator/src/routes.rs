//! The API surface: which paths exist, the `x-api-key` check, organization selection
//! by `x-org-id`, and paging. Produces a [`Reply`] (not yet bytes) so that faults can
//! rewrite a list answer before it is serialized.
//!
//! Checks run in this order: route (404), method (405), API key (401), `x-org-id`
//! (403 on `/api/organizations`; 401/404 on data routes), query (400), path ids (404).
//!
//! An empty `x-org-id` counts as absent: JupiterOne's connector always sent an empty
//! one, including to `/api/organizations`, and JumpCloud answered normally.
//!
//! Sorting: `/api/organizations`, `/api/systemusers`, `/api/applications` (default
//! `name`, as JumpCloud documents) and `/api/v2/usergroups` honour `sort`. The graph
//! routes (`/members`, and the application traversals) have no `sort` parameter in
//! JumpCloud's API; like any unknown parameter it is **ignored** there, and items come
//! in their natural (id) order. The request log shows whether a client sent it.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::query::{Api, ListParams, Order, SortField, compute_order};
use crate::tenant::{Collection, Organization, Tenant, Traversal};

/// The exact body JumpCloud sends when `/api/organizations` receives an `x-org-id`.
pub(crate) const ORG_HEADER_FORBIDDEN: &str =
    "Forbidden: organization selection not allowed via header";

/// What the routes need to know about a request.
#[derive(Debug)]
pub(crate) struct ApiRequest<'a> {
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) api_key_valid: bool,
    pub(crate) org_id: Option<&'a str>,
}

/// Which list a page belongs to; decides the envelope and how faults corrupt it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    Organizations,
    Users,
    Applications,
    Groups,
    Members,
    AppUsers,
    AppGroups,
    Systems,
    Administrators,
    /// v2 object lists: system groups, policies, Apple MDMs and devices.
    V2Objects,
    /// v2 `GraphConnection` lists: system group members, associations.
    Connections,
    /// v2 traversals (`GraphObjectWithPaths`) and policy statuses.
    V2Items,
}

impl ListKind {
    /// v1 lists answer `{"totalCount", "results"}`; v2 lists a bare array.
    pub(crate) fn is_v1(self) -> bool {
        matches!(
            self,
            ListKind::Organizations
                | ListKind::Users
                | ListKind::Applications
                | ListKind::Systems
                | ListKind::Administrators
        )
    }
}

/// One page of a list.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) kind: ListKind,
    /// The grand total (`totalCount` / `x-total-count`), also on empty pages.
    pub(crate) total: usize,
    pub(crate) items: Vec<Value>,
}

/// The API's answer, before serialization.
#[derive(Debug)]
pub(crate) enum Reply {
    List(Page),
    /// One object (the never-call detail routes).
    Object(Value),
    Error {
        status: StatusCode,
        body: Value,
    },
    MethodNotAllowed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Organizations,
    Users,
    Applications,
    Groups,
    GroupMembers(&'a str),
    AppUsers(&'a str),
    AppGroups(&'a str),
    Systems,
    SystemGroups,
    Policies,
    Administrators,
    AppleMdms,
    AppleDevices(&'a str),
    SystemGroupMembers(&'a str),
    SystemGroupAssociations(&'a str),
    SystemUsers(&'a str),
    /// Never to be called: a system's disk recovery key.
    SystemFdeKey(&'a str),
    /// Never to be called: a policy with its `values`.
    PolicyDetail(&'a str),
    PolicySystems(&'a str),
    PolicyAssociations(&'a str),
    PolicyStatuses(&'a str),
    /// Never to be called: every policy result of the organization, with output.
    PolicyResults,
}

impl<'a> Route<'a> {
    fn parse(path: &'a str) -> Option<Route<'a>> {
        let segments: Vec<&str> = path.split('/').collect();
        Some(match segments.as_slice() {
            ["", "api", "organizations"] => Route::Organizations,
            ["", "api", "systemusers"] => Route::Users,
            ["", "api", "applications"] => Route::Applications,
            ["", "api", "v2", "usergroups"] => Route::Groups,
            ["", "api", "v2", "usergroups", id, "members"] if !id.is_empty() => {
                Route::GroupMembers(id)
            }
            ["", "api", "v2", "applications", id, "users"] if !id.is_empty() => Route::AppUsers(id),
            ["", "api", "v2", "applications", id, "usergroups"] if !id.is_empty() => {
                Route::AppGroups(id)
            }
            ["", "api", "systems"] => Route::Systems,
            ["", "api", "users"] => Route::Administrators,
            ["", "api", "v2", "systemgroups"] => Route::SystemGroups,
            ["", "api", "v2", "policies"] => Route::Policies,
            ["", "api", "v2", "policyresults"] => Route::PolicyResults,
            ["", "api", "v2", "applemdms"] => Route::AppleMdms,
            ["", "api", "v2", "applemdms", id, "devices"] if !id.is_empty() => {
                Route::AppleDevices(id)
            }
            ["", "api", "v2", "systemgroups", id, "members"] if !id.is_empty() => {
                Route::SystemGroupMembers(id)
            }
            ["", "api", "v2", "systemgroups", id, "associations"] if !id.is_empty() => {
                Route::SystemGroupAssociations(id)
            }
            ["", "api", "v2", "systems", id, "users"] if !id.is_empty() => Route::SystemUsers(id),
            ["", "api", "v2", "systems", id, "fdekey"] if !id.is_empty() => Route::SystemFdeKey(id),
            ["", "api", "v2", "policies", id] if !id.is_empty() => Route::PolicyDetail(id),
            ["", "api", "v2", "policies", id, "systems"] if !id.is_empty() => {
                Route::PolicySystems(id)
            }
            ["", "api", "v2", "policies", id, "associations"] if !id.is_empty() => {
                Route::PolicyAssociations(id)
            }
            ["", "api", "v2", "policies", id, "policystatuses"] if !id.is_empty() => {
                Route::PolicyStatuses(id)
            }
            _ => return None,
        })
    }

    fn api(self) -> Api {
        match self {
            Route::Organizations
            | Route::Users
            | Route::Applications
            | Route::Systems
            | Route::Administrators => Api::V1,
            _ => Api::V2,
        }
    }

    /// The page size when the request names none: 10, but 1 on `/applemdms`
    /// (JumpCloud documents that default there).
    fn default_limit(self) -> usize {
        match self {
            Route::AppleMdms => 1,
            _ => crate::query::DEFAULT_LIMIT,
        }
    }
}

/// Whether `path` is one of the routes an integration must never call (they disclose
/// disk recovery keys, policy values, or every policy run's output).
pub(crate) fn is_never_call(path: &str) -> bool {
    matches!(
        Route::parse(path),
        Some(Route::SystemFdeKey(_) | Route::PolicyDetail(_) | Route::PolicyResults)
    )
}

fn message(status: StatusCode, text: &str) -> Reply {
    Reply::Error {
        status,
        body: json!({"message": text}),
    }
}

/// v2 routes answer errors in the v2 spec's `Error` shape.
fn v2_error(status: StatusCode, text: &str, code_name: &str) -> Reply {
    Reply::Error {
        status,
        body: json!({"code": status.as_u16(), "message": text, "status": code_name}),
    }
}

/// Answers one request.
pub(crate) fn answer(tenant: &Tenant, req: &ApiRequest<'_>) -> Reply {
    let Some(route) = Route::parse(req.path) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    if req.method != Method::GET {
        return Reply::MethodNotAllowed;
    }
    if !req.api_key_valid {
        return message(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let org_header = req.org_id.map(str::trim).filter(|id| !id.is_empty());

    if route == Route::Organizations {
        if org_header.is_some() {
            return Reply::Error {
                status: StatusCode::FORBIDDEN,
                body: json!({"message": ORG_HEADER_FORBIDDEN, "error": ORG_HEADER_FORBIDDEN}),
            };
        }
        return match list_params(req.query, Api::V1, crate::query::DEFAULT_LIMIT) {
            Ok(params) => organizations(tenant, &params),
            Err(reply) => reply,
        };
    }
    let org = match select_organization(tenant, org_header) {
        Ok(org) => org,
        Err(reply) => return reply,
    };
    let params = match list_params(req.query, route.api(), route.default_limit()) {
        Ok(params) => params,
        Err(reply) => return reply,
    };
    match route {
        // Answered above; listed for exhaustiveness.
        Route::Organizations => organizations(tenant, &params),
        Route::Users => collection(
            org,
            Collection::Users,
            ListKind::Users,
            &params,
            &params.sort,
        ),
        Route::Applications => {
            let default = [SortField {
                path: "name".into(),
                descending: false,
            }];
            let sort = if params.sort.is_empty() {
                &default[..]
            } else {
                &params.sort
            };
            collection(
                org,
                Collection::Applications,
                ListKind::Applications,
                &params,
                sort,
            )
        }
        Route::Groups => collection(
            org,
            Collection::Groups,
            ListKind::Groups,
            &params,
            &params.sort,
        ),
        Route::GroupMembers(id) => match org.group_position(id) {
            Some(g) => page(ListKind::Members, org.member_count(g), &params, |pos| {
                org.member_item(g, pos)
            }),
            None => v2_error(
                StatusCode::NOT_FOUND,
                &format!("Not Found: user group {id}"),
                "NOT_FOUND",
            ),
        },
        Route::AppUsers(id) => traversal(org, id, Traversal::Users, ListKind::AppUsers, &params),
        Route::AppGroups(id) => {
            traversal(org, id, Traversal::UserGroups, ListKind::AppGroups, &params)
        }
        Route::Systems => collection(
            org,
            Collection::Systems,
            ListKind::Systems,
            &params,
            &params.sort,
        ),
        Route::Administrators => collection(
            org,
            Collection::Administrators,
            ListKind::Administrators,
            &params,
            &params.sort,
        ),
        Route::SystemGroups => collection(
            org,
            Collection::SystemGroups,
            ListKind::V2Objects,
            &params,
            &params.sort,
        ),
        Route::Policies => collection(
            org,
            Collection::Policies,
            ListKind::V2Objects,
            &params,
            &params.sort,
        ),
        Route::AppleMdms => collection(
            org,
            Collection::AppleMdms,
            ListKind::V2Objects,
            &params,
            &params.sort,
        ),
        Route::AppleDevices(id) => match org.find(Collection::AppleMdms, id) {
            Some(_) => collection(
                org,
                Collection::AppleDevices,
                ListKind::V2Objects,
                &params,
                &params.sort,
            ),
            None => not_found("apple mdm", id),
        },
        Route::SystemGroupMembers(id) => match org.find(Collection::SystemGroups, id) {
            Some(g) => items(
                ListKind::Connections,
                org.system_group_member_items(g),
                &params,
            ),
            None => not_found("system group", id),
        },
        Route::SystemGroupAssociations(id) => {
            match (org.find(Collection::SystemGroups, id), targets(req.query)) {
                (_, Err(reply)) => reply,
                (Some(g), Ok(target)) => items(
                    ListKind::Connections,
                    org.system_group_association_items(g, &target),
                    &params,
                ),
                (None, Ok(_)) => not_found("system group", id),
            }
        }
        Route::SystemUsers(id) => match org.find(Collection::Systems, id) {
            Some(s) => items(ListKind::V2Items, org.system_user_items(s), &params),
            None => not_found("system", id),
        },
        Route::SystemFdeKey(id) => match org
            .find(Collection::Systems, id)
            .and_then(|s| org.fde_key(s))
        {
            Some(key) => Reply::Object(key),
            None => not_found("system", id),
        },
        Route::PolicyDetail(id) => match org
            .find(Collection::Policies, id)
            .and_then(|p| org.policy_detail(p))
        {
            Some(detail) => Reply::Object(detail),
            None => not_found("policy", id),
        },
        Route::PolicySystems(id) => match org.find(Collection::Policies, id) {
            Some(p) => items(ListKind::V2Items, org.policy_system_items(p), &params),
            None => not_found("policy", id),
        },
        Route::PolicyAssociations(id) => {
            match (org.find(Collection::Policies, id), targets(req.query)) {
                (_, Err(reply)) => reply,
                (Some(p), Ok(target)) => items(
                    ListKind::Connections,
                    org.policy_association_items(p, &target),
                    &params,
                ),
                (None, Ok(_)) => not_found("policy", id),
            }
        }
        Route::PolicyStatuses(id) => match org.find(Collection::Policies, id) {
            Some(p) => items(ListKind::V2Items, org.policy_status_items(p), &params),
            None => not_found("policy", id),
        },
        Route::PolicyResults => {
            let all: Vec<Value> = (0..org.slots(Collection::Policies))
                .flat_map(|p| org.policy_status_items(p))
                .collect();
            items(ListKind::V2Items, all, &params)
        }
    }
}

fn not_found(kind: &str, id: &str) -> Reply {
    v2_error(
        StatusCode::NOT_FOUND,
        &format!("Not Found: {kind} {id}"),
        "NOT_FOUND",
    )
}

/// The one `targets` an `associations` call must name.
fn targets(query: Option<&str>) -> Result<String, Reply> {
    crate::query::pairs(query.unwrap_or(""))
        .into_iter()
        .rev()
        .find(|(name, _)| name == "targets")
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            v2_error(
                StatusCode::BAD_REQUEST,
                "Bad Request: targets is required",
                "INVALID_ARGUMENT",
            )
        })
}

/// One page of a list computed whole (per-parent lists are small).
fn items(kind: ListKind, all: Vec<Value>, params: &ListParams) -> Reply {
    let total = all.len();
    let window = params.window(total);
    let items = all
        .into_iter()
        .skip(window.start)
        .take(window.len())
        .collect();
    Reply::List(Page { kind, total, items })
}

/// Parses paging parameters; a malformed one is a 400 in the API family's error shape.
fn list_params(query: Option<&str>, api: Api, default_limit: usize) -> Result<ListParams, Reply> {
    ListParams::parse(query, api, default_limit).map_err(|text| match api {
        Api::V1 => message(StatusCode::BAD_REQUEST, &text),
        Api::V2 => v2_error(StatusCode::BAD_REQUEST, &text, "INVALID_ARGUMENT"),
    })
}

/// Picks the organization a data request reads, per the `x-org-id` rules.
fn select_organization<'t>(
    tenant: &'t Tenant,
    header: Option<&str>,
) -> Result<&'t Organization, Reply> {
    let not_found = || message(StatusCode::NOT_FOUND, "Not Found: organization not found");
    match (header, tenant.organizations()) {
        // A single-organization key may omit it; if sent, it must name that organization.
        (None, [only]) => Ok(only.as_ref()),
        (Some(id), [only]) => (only.id() == id)
            .then_some(only.as_ref())
            .ok_or_else(not_found),
        (None, _) => Err(message(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: no organization selected",
        )),
        (Some(id), _) => tenant.organization(id).ok_or_else(not_found),
    }
}

/// Slices one page out of `total` positions; `item(pos)` renders position `pos`.
fn page(
    kind: ListKind,
    total: usize,
    params: &ListParams,
    item: impl FnMut(usize) -> Option<Value>,
) -> Reply {
    let items = params.window(total).filter_map(item).collect();
    Reply::List(Page { kind, total, items })
}

fn organizations(tenant: &Tenant, params: &ListParams) -> Reply {
    let orgs = tenant.organizations();
    // A handful of organizations: sorting on each request is cheaper than caching.
    let order = if params.sort.is_empty() {
        Order::Natural
    } else {
        Order::Permutation(
            compute_order(orgs.len(), &params.sort, |i| orgs[i].record().clone()).into(),
        )
    };
    page(ListKind::Organizations, orgs.len(), params, |pos| {
        orgs.get(order.index(pos, orgs.len()))
            .map(|org| org.record().clone())
    })
}

fn collection(
    org: &Organization,
    collection: Collection,
    kind: ListKind,
    params: &ListParams,
    sort: &[SortField],
) -> Reply {
    let total = org.len(collection);
    let order = org.order(collection, sort);
    page(kind, total, params, |pos| {
        org.object(collection, order.index(pos, total))
    })
}

fn traversal(
    org: &Organization,
    app_id: &str,
    traversal: Traversal,
    kind: ListKind,
    params: &ListParams,
) -> Reply {
    match org.app_position(app_id) {
        Some(a) => page(kind, org.traversal_len(a, traversal), params, |pos| {
            org.traversal_item(a, traversal, pos)
        }),
        None => v2_error(
            StatusCode::NOT_FOUND,
            &format!("Not Found: application {app_id}"),
            "NOT_FOUND",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_routes() {
        assert_eq!(Route::parse("/api/systemusers"), Some(Route::Users));
        assert_eq!(
            Route::parse("/api/v2/usergroups/abc/members"),
            Some(Route::GroupMembers("abc"))
        );
        assert_eq!(Route::parse("/api/v2/usergroups//members"), None);
        assert_eq!(Route::parse("/api/systemusers/"), None);
        assert_eq!(
            Route::parse("/api/v2/applications/x/usergroups"),
            Some(Route::AppGroups("x"))
        );
    }
}

//! The tenant model: organizations and, per organization, users, groups,
//! applications, group members and application bindings. Both datasets (generated
//! and recorded) end up in this one shape, and the server's paging handlers read only
//! through it.
//!
//! Objects are handed out as `serde_json::Value`s exactly as the API serves them, so
//! tests can compute the graph an integration should build from the same data. For a
//! generated tenant they are produced on demand (see [`crate::generate`]), so
//! iterating 100k users is fine but not free: each call builds fresh values.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use serde_json::{Value, json};

use crate::generate::Generator;
use crate::query::{Order, SortField, compute_order, sort_key_text};

/// The size and seed of a generated tenant. Counts are **per organization**.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSpec {
    /// Organizations (at least 1; at most 4096, the id layout's limit). With more than
    /// one, every data request needs an `x-org-id`.
    pub organizations: usize,
    /// Users per organization.
    pub users: usize,
    /// User groups per organization.
    pub groups: usize,
    /// Applications per organization.
    pub applications: usize,
    /// Seed of the deterministic generator: same spec, same tenant.
    pub seed: u64,
    /// Member ids of group 0 that are not users (deleted users), per organization;
    /// none when there are no groups.
    pub dangling_members: usize,
}

impl Default for TenantSpec {
    /// One organization of 150 users (so group 0 has more than a page of members),
    /// 10 groups, 6 applications, one dangling member.
    fn default() -> Self {
        TenantSpec {
            organizations: 1,
            users: 150,
            groups: 10,
            applications: 6,
            seed: 0x5EED,
            dangling_members: 1,
        }
    }
}

/// All the data a simulator serves: one or more organizations.
#[derive(Debug)]
pub struct Tenant {
    organizations: Vec<Organization>,
}

impl Tenant {
    /// Generates a tenant deterministically from `spec` (cheap even for 100k users:
    /// objects are produced when asked for).
    pub fn generate(spec: &TenantSpec) -> Tenant {
        let count = spec.organizations.clamp(1, 4096);
        let organizations = (0..count as u32)
            .map(|org| {
                let generator = Generator::new(spec, org);
                let graph = generator.graph();
                Organization::new(
                    generator.organization(),
                    Objects::Generated(generator),
                    graph,
                    HashMap::new(),
                )
            })
            .collect();
        Tenant { organizations }
    }

    /// The tenant recorded in `fixtures/jumpcloud-recorded/` (one organization, one
    /// user, two groups, one application); see the crate documentation.
    pub fn recorded() -> Tenant {
        Tenant {
            organizations: vec![crate::recorded::organization()],
        }
    }

    /// The organizations, in the order `/api/organizations` lists them by default.
    pub fn organizations(&self) -> &[Organization] {
        &self.organizations
    }

    /// The organization with this id.
    pub fn organization(&self, id: &str) -> Option<&Organization> {
        self.organizations.iter().find(|org| org.id == id)
    }

    /// True when data requests need an `x-org-id` (more than one organization).
    pub fn is_multi_org(&self) -> bool {
        self.organizations.len() > 1
    }
}

/// An application's user as `/api/v2/applications/{id}/users` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUserBinding {
    /// The user's id.
    pub user_id: String,
    /// True when the user is bound to the application directly (a one-hop path).
    pub direct: bool,
    /// Ids of the bound groups through which the user reaches the application
    /// (two-hop paths), in group order.
    pub via_groups: Vec<String>,
}

/// The collections that list endpoints page through and can sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Collection {
    Users,
    Groups,
    Applications,
}

/// The two application traversal routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Traversal {
    /// `/api/v2/applications/{id}/users`.
    Users,
    /// `/api/v2/applications/{id}/usergroups`.
    UserGroups,
}

/// Where an organization's objects come from.
pub(crate) enum Objects {
    /// Produced on demand.
    Generated(Generator),
    /// Held as values (the recorded dataset).
    Stored {
        users: Vec<Value>,
        groups: Vec<Value>,
        applications: Vec<Value>,
    },
}

/// Group members and application bindings, as storage indices.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    /// Per group, the members in served order, ascending: user indices, then
    /// `user_count + k` for `dangling[k]`.
    pub(crate) members: Vec<Vec<u32>>,
    /// Member ids that are not users (deleted users).
    pub(crate) dangling: Vec<String>,
    /// Per application, users bound directly (ascending).
    pub(crate) app_direct_users: Vec<Vec<u32>>,
    /// Per application, groups bound (ascending).
    pub(crate) app_groups: Vec<Vec<u32>>,
}

/// Computed sort orders by (collection, canonical sort text).
type SortCache = HashMap<(Collection, String), Arc<Vec<u32>>>;

/// Sort orders kept per organization; bounded because `sort` comes from requests.
const SORT_CACHE_ENTRIES: usize = 64;

/// One organization and its data.
pub struct Organization {
    id: String,
    record: Value,
    objects: Objects,
    graph: Graph,
    group_index: HashMap<String, u32>,
    app_index: HashMap<String, u32>,
    /// Per application, the users reaching it (direct or via a group), computed on
    /// first use because a big group makes the list big.
    app_users: Vec<OnceLock<Vec<u32>>>,
    /// Recorded traversal answers, served verbatim instead of computed ones.
    traversal_items: HashMap<(u32, Traversal), Vec<Value>>,
    sort_cache: Mutex<SortCache>,
}

impl fmt::Debug for Organization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Organization")
            .field("id", &self.id)
            .field("users", &self.user_count())
            .field("groups", &self.group_count())
            .field("applications", &self.application_count())
            .field("dangling_members", &self.graph.dangling.len())
            .finish()
    }
}

/// The `id` (v2) or `_id` (v1) of an object.
pub(crate) fn object_id(value: &Value) -> Option<&str> {
    value
        .get("id")
        .or_else(|| value.get("_id"))
        .and_then(Value::as_str)
}

/// A `GraphConnection` whose target is `(id, type)`, as `/members` and traversal paths use.
fn connection(id: &str, kind: &str) -> Value {
    json!({"attributes": null, "to": {"attributes": null, "id": id, "type": kind}})
}

impl Organization {
    pub(crate) fn new(
        record: Value,
        objects: Objects,
        graph: Graph,
        traversal_items: HashMap<(u32, Traversal), Vec<Value>>,
    ) -> Organization {
        let id = object_id(&record).unwrap_or_default().to_owned();
        let mut org = Organization {
            id,
            record,
            objects,
            graph,
            group_index: HashMap::new(),
            app_index: HashMap::new(),
            app_users: Vec::new(),
            traversal_items,
            sort_cache: Mutex::new(HashMap::new()),
        };
        org.group_index = (0..org.group_count())
            .map(|g| (org.group_id(g).unwrap_or_default(), g as u32))
            .collect();
        org.app_index = (0..org.application_count())
            .map(|a| (org.application_id(a).unwrap_or_default(), a as u32))
            .collect();
        org.app_users = (0..org.application_count())
            .map(|_| OnceLock::new())
            .collect();
        org
    }

    /// The organization id (what `x-org-id` must carry).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The record `/api/organizations` lists.
    pub fn record(&self) -> &Value {
        &self.record
    }

    /// Number of users.
    pub fn user_count(&self) -> usize {
        match &self.objects {
            Objects::Generated(g) => g.user_count(),
            Objects::Stored { users, .. } => users.len(),
        }
    }

    /// User `index` (storage order), as `/api/systemusers` serves it.
    pub fn user(&self, index: usize) -> Option<Value> {
        match &self.objects {
            Objects::Generated(g) => (index < g.user_count()).then(|| g.user(index)),
            Objects::Stored { users, .. } => users.get(index).cloned(),
        }
    }

    /// The id of user `index`, without building the whole user.
    pub fn user_id(&self, index: usize) -> Option<String> {
        match &self.objects {
            Objects::Generated(g) => (index < g.user_count()).then(|| g.user_id(index)),
            Objects::Stored { users, .. } => {
                users.get(index).and_then(object_id).map(str::to_owned)
            }
        }
    }

    /// All users, in storage order (built one by one).
    pub fn users(&self) -> impl Iterator<Item = Value> + '_ {
        (0..self.user_count()).filter_map(|i| self.user(i))
    }

    /// Number of user groups.
    pub fn group_count(&self) -> usize {
        match &self.objects {
            Objects::Generated(g) => g.group_count(),
            Objects::Stored { groups, .. } => groups.len(),
        }
    }

    /// Group `index`, as `/api/v2/usergroups` serves it.
    pub fn group(&self, index: usize) -> Option<Value> {
        match &self.objects {
            Objects::Generated(g) => (index < g.group_count()).then(|| g.group(index)),
            Objects::Stored { groups, .. } => groups.get(index).cloned(),
        }
    }

    /// The id of group `index`.
    pub fn group_id(&self, index: usize) -> Option<String> {
        match &self.objects {
            Objects::Generated(g) => (index < g.group_count()).then(|| g.group_id(index)),
            Objects::Stored { groups, .. } => {
                groups.get(index).and_then(object_id).map(str::to_owned)
            }
        }
    }

    /// All groups, in storage order.
    pub fn groups(&self) -> impl Iterator<Item = Value> + '_ {
        (0..self.group_count()).filter_map(|i| self.group(i))
    }

    /// Number of applications.
    pub fn application_count(&self) -> usize {
        match &self.objects {
            Objects::Generated(g) => g.application_count(),
            Objects::Stored { applications, .. } => applications.len(),
        }
    }

    /// Application `index`, as `/api/applications` serves it (with its `config`).
    pub fn application(&self, index: usize) -> Option<Value> {
        match &self.objects {
            Objects::Generated(g) => (index < g.application_count()).then(|| g.application(index)),
            Objects::Stored { applications, .. } => applications.get(index).cloned(),
        }
    }

    /// The id of application `index`.
    pub fn application_id(&self, index: usize) -> Option<String> {
        match &self.objects {
            Objects::Generated(g) => {
                (index < g.application_count()).then(|| g.application_id(index))
            }
            Objects::Stored { applications, .. } => applications
                .get(index)
                .and_then(object_id)
                .map(str::to_owned),
        }
    }

    /// All applications, in storage order.
    pub fn applications(&self) -> impl Iterator<Item = Value> + '_ {
        (0..self.application_count()).filter_map(|i| self.application(i))
    }

    /// The member ids `/api/v2/usergroups/{group_id}/members` lists, in served order,
    /// including dangling ones; `None` for an unknown group.
    pub fn group_members(&self, group_id: &str) -> Option<Vec<String>> {
        let g = self.group_position(group_id)?;
        Some(
            (0..self.graph.members[g].len())
                .filter_map(|pos| self.member_id(g, pos))
                .collect(),
        )
    }

    /// Member ids that are not users (deleted users); they appear in group 0's members.
    pub fn dangling_member_ids(&self) -> &[String] {
        &self.graph.dangling
    }

    /// The users reaching an application (directly or via a bound group), in served
    /// order; `None` for an unknown application.
    pub fn application_users(&self, app_id: &str) -> Option<Vec<AppUserBinding>> {
        let a = self.app_position(app_id)?;
        Some(
            self.effective_users(a)
                .iter()
                .filter_map(|&u| {
                    Some(AppUserBinding {
                        user_id: self.user_id(u as usize)?,
                        direct: self.graph.app_direct_users[a].binary_search(&u).is_ok(),
                        via_groups: self
                            .groups_reaching(a, u)
                            .filter_map(|g| self.group_id(g as usize))
                            .collect(),
                    })
                })
                .collect(),
        )
    }

    /// The ids of the groups bound to an application; `None` for an unknown application.
    pub fn application_groups(&self, app_id: &str) -> Option<Vec<String>> {
        let a = self.app_position(app_id)?;
        Some(
            self.graph.app_groups[a]
                .iter()
                .filter_map(|&g| self.group_id(g as usize))
                .collect(),
        )
    }

    // ----- crate-internal access for the routes -----

    pub(crate) fn group_position(&self, id: &str) -> Option<usize> {
        self.group_index.get(id).map(|&g| g as usize)
    }

    pub(crate) fn app_position(&self, id: &str) -> Option<usize> {
        self.app_index.get(id).map(|&a| a as usize)
    }

    pub(crate) fn len(&self, collection: Collection) -> usize {
        match collection {
            Collection::Users => self.user_count(),
            Collection::Groups => self.group_count(),
            Collection::Applications => self.application_count(),
        }
    }

    pub(crate) fn object(&self, collection: Collection, index: usize) -> Option<Value> {
        match collection {
            Collection::Users => self.user(index),
            Collection::Groups => self.group(index),
            Collection::Applications => self.application(index),
        }
    }

    /// The order a `sort` asks for; computed once per (collection, sort) and cached.
    pub(crate) fn order(&self, collection: Collection, sort: &[SortField]) -> Order {
        let Some(first) = sort.first() else {
            return Order::Natural;
        };
        // Generated ids grow with the index, so sorting by id needs no work. (v2 groups
        // have no `_id`: sorting by it is a no-op, handled by the general path.)
        let id_field =
            first.path == "id" || (first.path == "_id" && collection != Collection::Groups);
        if matches!(self.objects, Objects::Generated(_)) && id_field {
            return if first.descending {
                Order::Reversed
            } else {
                Order::Natural
            };
        }
        let key = (collection, sort_key_text(sort));
        if let Some(order) = self.sort_cache().get(&key).cloned() {
            return Order::Permutation(order);
        }
        // Computed outside the lock: sorting 100k users takes a while and other
        // requests should not wait for it.
        let len = self.len(collection);
        let order = Arc::new(compute_order(len, sort, |i| {
            self.object(collection, i).unwrap_or(Value::Null)
        }));
        let mut cache = self.sort_cache();
        if cache.len() < SORT_CACHE_ENTRIES {
            cache.insert(key, order.clone());
        }
        Order::Permutation(order)
    }

    fn sort_cache(&self) -> MutexGuard<'_, SortCache> {
        // A poisoned lock only means another request panicked mid-insert; the map is
        // still consistent.
        self.sort_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn member_count(&self, g: usize) -> usize {
        self.graph.members.get(g).map_or(0, Vec::len)
    }

    fn member_id(&self, g: usize, pos: usize) -> Option<String> {
        let m = *self.graph.members.get(g)?.get(pos)? as usize;
        let users = self.user_count();
        if m < users {
            self.user_id(m)
        } else {
            self.graph.dangling.get(m - users).cloned()
        }
    }

    /// Member `pos` of group `g` as a `GraphConnection`.
    pub(crate) fn member_item(&self, g: usize, pos: usize) -> Option<Value> {
        self.member_id(g, pos).map(|id| connection(&id, "user"))
    }

    /// Users reaching application `a`, ascending.
    fn effective_users(&self, a: usize) -> &[u32] {
        self.app_users[a].get_or_init(|| {
            let users = self.user_count() as u32;
            let mut all = self.graph.app_direct_users[a].clone();
            for &g in &self.graph.app_groups[a] {
                let members = self
                    .graph
                    .members
                    .get(g as usize)
                    .map_or(&[][..], Vec::as_slice);
                // Dangling members (>= users) are not users and reach nothing.
                all.extend(members.iter().copied().filter(|&m| m < users));
            }
            all.sort_unstable();
            all.dedup();
            all
        })
    }

    /// Bound groups of application `a` that contain user `u`.
    fn groups_reaching(&self, a: usize, u: u32) -> impl Iterator<Item = u32> + '_ {
        self.graph.app_groups[a].iter().copied().filter(move |&g| {
            self.graph
                .members
                .get(g as usize)
                .is_some_and(|m| m.binary_search(&u).is_ok())
        })
    }

    pub(crate) fn traversal_len(&self, a: usize, traversal: Traversal) -> usize {
        if let Some(items) = self.traversal_items.get(&(a as u32, traversal)) {
            return items.len();
        }
        match traversal {
            Traversal::Users => self.effective_users(a).len(),
            Traversal::UserGroups => self.graph.app_groups[a].len(),
        }
    }

    /// Item `pos` of a traversal answer, a `GraphObjectWithPaths`.
    pub(crate) fn traversal_item(
        &self,
        a: usize,
        traversal: Traversal,
        pos: usize,
    ) -> Option<Value> {
        if let Some(items) = self.traversal_items.get(&(a as u32, traversal)) {
            return items.get(pos).cloned();
        }
        match traversal {
            Traversal::Users => {
                let u = *self.effective_users(a).get(pos)?;
                let user_id = self.user_id(u as usize)?;
                let hop = connection(&user_id, "user");
                let mut paths = Vec::new();
                if self.graph.app_direct_users[a].binary_search(&u).is_ok() {
                    paths.push(json!([hop]));
                }
                for g in self.groups_reaching(a, u) {
                    let group_id = self.group_id(g as usize)?;
                    paths.push(json!([connection(&group_id, "user_group"), hop]));
                }
                Some(
                    json!({"id": user_id, "type": "user", "compiledAttributes": {}, "paths": paths}),
                )
            }
            Traversal::UserGroups => {
                let g = *self.graph.app_groups[a].get(pos)?;
                let group_id = self.group_id(g as usize)?;
                let paths = json!([[connection(&group_id, "user_group")]]);
                Some(
                    json!({"id": group_id, "type": "user_group", "compiledAttributes": {}, "paths": paths}),
                )
            }
        }
    }
}

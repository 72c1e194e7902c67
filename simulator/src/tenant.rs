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

use serde_json::{Map, Value, json};

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
    /// Systems (agent-managed devices) per organization; `None`: 1.2 per user. A
    /// third of them are Macs enrolled in Apple MDM.
    pub systems: Option<usize>,
    /// System groups per organization; `None`: a quarter of the user groups, at
    /// least 6 (the documented ones).
    pub system_groups: Option<usize>,
    /// Policies per organization.
    pub policies: usize,
    /// Console administrators per organization; with several organizations the
    /// first two are the same administrators in every one.
    pub administrators: usize,
    /// Whether each organization has an Apple MDM configuration (and devices).
    pub apple_mdm: bool,
}

impl TenantSpec {
    /// Systems per organization (see [`TenantSpec::systems`]).
    pub fn system_count(&self) -> usize {
        self.systems.unwrap_or(self.users * 6 / 5)
    }

    /// System groups per organization (see [`TenantSpec::system_groups`]).
    pub fn system_group_count(&self) -> usize {
        self.system_groups.unwrap_or((self.groups / 4).max(6))
    }
}

impl Default for TenantSpec {
    /// One organization of 150 users (so group 0 has more than a page of members),
    /// 10 groups, 6 applications, one dangling member; 180 systems, 6 system groups,
    /// 12 policies, 6 administrators, an Apple MDM.
    fn default() -> Self {
        TenantSpec {
            organizations: 1,
            users: 150,
            groups: 10,
            applications: 6,
            seed: 0x5EED,
            dangling_members: 1,
            systems: None,
            system_groups: None,
            policies: 12,
            administrators: 6,
            apple_mdm: true,
        }
    }
}

/// All the data a simulator serves: one or more organizations.
#[derive(Debug)]
pub struct Tenant {
    organizations: Vec<Arc<Organization>>,
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
                Arc::new(Organization::new(
                    generator.organization(),
                    Objects::Generated(generator),
                    graph,
                    HashMap::new(),
                    Overlay::default(),
                ))
            })
            .collect();
        Tenant { organizations }
    }

    /// The tenant recorded in `fixtures/jumpcloud-recorded/` (one organization, one
    /// user, two groups, one application); see the crate documentation.
    pub fn recorded() -> Tenant {
        Tenant {
            organizations: vec![Arc::new(crate::recorded::organization())],
        }
    }

    /// The organizations, in the order `/api/organizations` lists them by default.
    pub fn organizations(&self) -> &[Arc<Organization>] {
        &self.organizations
    }

    /// The organization with this id.
    pub fn organization(&self, id: &str) -> Option<&Organization> {
        self.organizations
            .iter()
            .find(|org| org.id == id)
            .map(Arc::as_ref)
    }

    /// This tenant with organization `position` replaced (the others are shared).
    pub(crate) fn with_organization(&self, position: usize, org: Organization) -> Tenant {
        let mut organizations = self.organizations.clone();
        organizations[position] = Arc::new(org);
        Tenant { organizations }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Collection {
    Users,
    Groups,
    Applications,
    Systems,
    SystemGroups,
    Policies,
    Administrators,
    AppleMdms,
    AppleDevices,
}

impl Collection {
    /// Collections whose objects are looked up by id (per-parent routes).
    const INDEXED: [Collection; 6] = [
        Collection::Groups,
        Collection::Applications,
        Collection::Systems,
        Collection::SystemGroups,
        Collection::Policies,
        Collection::AppleMdms,
    ];
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
#[derive(Debug, Clone)]
pub(crate) enum Objects {
    /// Produced on demand.
    Generated(Generator),
    /// Held as values (the recorded dataset), per collection.
    Stored(HashMap<Collection, Vec<Value>>),
}

impl Objects {
    fn count(&self, collection: Collection) -> usize {
        match self {
            Objects::Generated(g) => g.count(collection),
            Objects::Stored(lists) => lists.get(&collection).map_or(0, Vec::len),
        }
    }

    fn object(&self, collection: Collection, index: usize) -> Option<Value> {
        match self {
            Objects::Generated(g) => {
                (index < g.count(collection)).then(|| g.object(collection, index))
            }
            Objects::Stored(lists) => lists.get(&collection)?.get(index).cloned(),
        }
    }

    fn id(&self, collection: Collection, index: usize) -> Option<String> {
        match self {
            Objects::Generated(g) => (index < g.count(collection)).then(|| g.id(collection, index)),
            Objects::Stored(lists) => lists
                .get(&collection)?
                .get(index)
                .and_then(object_id)
                .map(str::to_owned),
        }
    }
}

/// Marks a member id that is not a user: `DANGLING | k` stands for `dangling[k]`.
/// Kept above every user index, so member lists stay sorted with dangling ids last.
pub(crate) const DANGLING: u32 = 0x8000_0000;

/// Group members and application bindings, as storage indices.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    /// Per group, the members in served order, ascending: user indices, then
    /// `DANGLING | k` for `dangling[k]`.
    pub(crate) members: Vec<Vec<u32>>,
    /// Member ids that are not users (deleted users).
    pub(crate) dangling: Vec<String>,
    /// Per application, users bound directly (ascending).
    pub(crate) app_direct_users: Vec<Vec<u32>>,
    /// Per application, groups bound (ascending).
    pub(crate) app_groups: Vec<Vec<u32>>,
    /// Systems, system groups, policies and their bindings.
    pub(crate) directory: crate::directory::Directory,
}

/// Changes applied to an organization after it was generated (see
/// [`crate::Mutation`]): replaced fields, added objects, deleted objects. Generated
/// objects stay pure functions of their index; the overlay is applied when they are
/// served.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overlay {
    /// Fields replaced on an object, by (collection, storage index).
    pub(crate) patches: HashMap<(Collection, u32), Map<String, Value>>,
    /// Objects added after the original ones, per collection (their ids sort last).
    pub(crate) added: HashMap<Collection, Vec<Value>>,
    /// Storage indices no longer served, per collection, ascending.
    pub(crate) deleted: HashMap<Collection, Vec<u32>>,
}

impl Overlay {
    fn is_deleted(&self, collection: Collection, index: usize) -> bool {
        self.deleted
            .get(&collection)
            .is_some_and(|d| d.binary_search(&(index as u32)).is_ok())
    }

    fn added(&self, collection: Collection) -> &[Value] {
        self.added.get(&collection).map_or(&[], Vec::as_slice)
    }
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
    overlay: Overlay,
    /// Storage index by id, for the collections that per-parent routes look up.
    index: HashMap<Collection, HashMap<String, u32>>,
    /// Served position -> storage index, for collections with deleted objects.
    served: HashMap<Collection, Vec<u32>>,
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
        overlay: Overlay,
    ) -> Organization {
        let id = object_id(&record).unwrap_or_default().to_owned();
        let mut org = Organization {
            id,
            record,
            objects,
            graph,
            overlay,
            index: HashMap::new(),
            served: HashMap::new(),
            app_users: Vec::new(),
            traversal_items,
            sort_cache: Mutex::new(HashMap::new()),
        };
        for collection in Collection::INDEXED {
            let ids = (0..org.slots(collection))
                .filter_map(|i| Some((org.slot_id(collection, i)?, i as u32)))
                .collect();
            org.index.insert(collection, ids);
        }
        for (&collection, deleted) in &org.overlay.deleted {
            if deleted.is_empty() {
                continue;
            }
            let served = (0..org.slots(collection) as u32)
                .filter(|i| deleted.binary_search(i).is_err())
                .collect();
            org.served.insert(collection, served);
        }
        org.app_users = (0..org.slots(Collection::Applications))
            .map(|_| OnceLock::new())
            .collect();
        org
    }

    /// A copy of this organization with another graph and overlay (caches start empty).
    pub(crate) fn rebuilt(&self, graph: Graph, overlay: Overlay) -> Organization {
        Organization::new(
            self.record.clone(),
            self.objects.clone(),
            graph,
            self.traversal_items.clone(),
            overlay,
        )
    }

    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }

    pub(crate) fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    pub(crate) fn generator(&self) -> Option<&Generator> {
        match &self.objects {
            Objects::Generated(g) => Some(g),
            Objects::Stored(_) => None,
        }
    }

    /// The organization id (what `x-org-id` must carry).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The record `/api/organizations` lists.
    pub fn record(&self) -> &Value {
        &self.record
    }

    // ----- storage: original objects, then added ones; deleted ones read as None -----

    /// Storage slots of a collection: original objects, then added ones.
    pub(crate) fn slots(&self, collection: Collection) -> usize {
        self.objects.count(collection) + self.overlay.added(collection).len()
    }

    /// The object in storage slot `index` as served, or `None` (out of range, deleted).
    pub(crate) fn slot_object(&self, collection: Collection, index: usize) -> Option<Value> {
        if self.overlay.is_deleted(collection, index) {
            return None;
        }
        let original = self.objects.count(collection);
        let mut object = if index >= original {
            self.overlay
                .added(collection)
                .get(index - original)
                .cloned()?
        } else {
            self.objects.object(collection, index)?
        };
        if let (Some(patch), Value::Object(fields)) = (
            self.overlay.patches.get(&(collection, index as u32)),
            &mut object,
        ) {
            fields.extend(patch.clone());
        }
        Some(object)
    }

    /// The id of the object in storage slot `index`, without building it.
    pub(crate) fn slot_id(&self, collection: Collection, index: usize) -> Option<String> {
        if self.overlay.is_deleted(collection, index) {
            return None;
        }
        let original = self.objects.count(collection);
        if index >= original {
            let added = self.overlay.added(collection).get(index - original)?;
            return object_id(added).map(str::to_owned);
        }
        self.objects.id(collection, index)
    }

    /// The storage slot of the object with this id (indexed collections only).
    pub(crate) fn find(&self, collection: Collection, id: &str) -> Option<usize> {
        self.index.get(&collection)?.get(id).map(|&i| i as usize)
    }

    // ----- public views -----

    /// Number of users served.
    pub fn user_count(&self) -> usize {
        self.len(Collection::Users)
    }

    /// User `index` (storage order), as `/api/systemusers` serves it.
    pub fn user(&self, index: usize) -> Option<Value> {
        self.slot_object(Collection::Users, index)
    }

    /// The id of user `index`, without building the whole user.
    pub fn user_id(&self, index: usize) -> Option<String> {
        self.slot_id(Collection::Users, index)
    }

    /// All users, in storage order (built one by one).
    pub fn users(&self) -> impl Iterator<Item = Value> + '_ {
        self.all(Collection::Users)
    }

    /// Number of user groups served.
    pub fn group_count(&self) -> usize {
        self.len(Collection::Groups)
    }

    /// Group `index` (storage order), as `/api/v2/usergroups` serves it; `None` when
    /// it was deleted.
    pub fn group(&self, index: usize) -> Option<Value> {
        self.slot_object(Collection::Groups, index)
    }

    /// The id of group `index`.
    pub fn group_id(&self, index: usize) -> Option<String> {
        self.slot_id(Collection::Groups, index)
    }

    /// All groups served, in storage order.
    pub fn groups(&self) -> impl Iterator<Item = Value> + '_ {
        self.all(Collection::Groups)
    }

    /// Number of applications.
    pub fn application_count(&self) -> usize {
        self.len(Collection::Applications)
    }

    /// Application `index`, as `/api/applications` serves it (with its `config`).
    pub fn application(&self, index: usize) -> Option<Value> {
        self.slot_object(Collection::Applications, index)
    }

    /// The id of application `index`.
    pub fn application_id(&self, index: usize) -> Option<String> {
        self.slot_id(Collection::Applications, index)
    }

    /// All applications, in storage order.
    pub fn applications(&self) -> impl Iterator<Item = Value> + '_ {
        self.all(Collection::Applications)
    }

    /// Number of systems.
    pub fn system_count(&self) -> usize {
        self.len(Collection::Systems)
    }

    /// All systems (`/api/systems`), in storage order.
    pub fn systems(&self) -> impl Iterator<Item = Value> + '_ {
        self.all(Collection::Systems)
    }

    /// All system groups (`/api/v2/systemgroups`).
    pub fn system_groups(&self) -> impl Iterator<Item = Value> + '_ {
        self.all(Collection::SystemGroups)
    }

    /// All policies (`/api/v2/policies`).
    pub fn policies(&self) -> impl Iterator<Item = Value> + '_ {
        self.all(Collection::Policies)
    }

    /// All console administrators (`/api/users`).
    pub fn administrators(&self) -> impl Iterator<Item = Value> + '_ {
        self.all(Collection::Administrators)
    }

    /// The Apple MDM configurations (`/api/v2/applemdms`): none or one.
    pub fn apple_mdms(&self) -> impl Iterator<Item = Value> + '_ {
        self.all(Collection::AppleMdms)
    }

    /// The devices of the organization's Apple MDM.
    pub fn apple_devices(&self) -> impl Iterator<Item = Value> + '_ {
        self.all(Collection::AppleDevices)
    }

    /// Every item a per-parent list route serves, in order (all pages), or `None` for
    /// a route that is not a per-parent list or a parent that does not exist: the
    /// members of a system group (`/api/v2/systemgroups/{id}/members`), its
    /// `associations?targets=user|user_group`, the users of a system
    /// (`/api/v2/systems/{id}/users`), the systems, system-group associations and
    /// statuses of a policy (`/api/v2/policies/{id}/systems`,
    /// `/associations?targets=system_group`, `/policystatuses`). For tests that compute
    /// the expected graph from exactly what was served.
    pub fn served_items(&self, path: &str, target: Option<&str>) -> Option<Vec<Value>> {
        let segments: Vec<&str> = path.split('/').collect();
        let find = |collection, id: &str| self.find(collection, id);
        Some(match (segments.as_slice(), target) {
            (["", "api", "v2", "systemgroups", id, "members"], None) => {
                self.system_group_member_items(find(Collection::SystemGroups, id)?)
            }
            (["", "api", "v2", "systemgroups", id, "associations"], Some(t)) => {
                self.system_group_association_items(find(Collection::SystemGroups, id)?, t)
            }
            (["", "api", "v2", "systems", id, "users"], None) => {
                self.system_user_items(find(Collection::Systems, id)?)
            }
            (["", "api", "v2", "policies", id, "systems"], None) => {
                self.policy_system_items(find(Collection::Policies, id)?)
            }
            (["", "api", "v2", "policies", id, "associations"], Some(t)) => {
                self.policy_association_items(find(Collection::Policies, id)?, t)
            }
            (["", "api", "v2", "policies", id, "policystatuses"], None) => {
                self.policy_status_items(find(Collection::Policies, id)?)
            }
            _ => return None,
        })
    }

    fn all(&self, collection: Collection) -> impl Iterator<Item = Value> + '_ {
        (0..self.slots(collection)).filter_map(move |i| self.slot_object(collection, i))
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
        self.find(Collection::Groups, id)
    }

    pub(crate) fn app_position(&self, id: &str) -> Option<usize> {
        self.find(Collection::Applications, id)
    }

    /// Objects served by a collection's list route.
    pub(crate) fn len(&self, collection: Collection) -> usize {
        match self.served.get(&collection) {
            Some(served) => served.len(),
            None => self.slots(collection),
        }
    }

    /// The object at served position `pos` of a collection (natural order).
    pub(crate) fn object(&self, collection: Collection, pos: usize) -> Option<Value> {
        let index = match self.served.get(&collection) {
            Some(served) => *served.get(pos)? as usize,
            None => pos,
        };
        self.slot_object(collection, index)
    }

    /// The order a `sort` asks for; computed once per (collection, sort) and cached.
    pub(crate) fn order(&self, collection: Collection, sort: &[SortField]) -> Order {
        let Some(first) = sort.first() else {
            return Order::Natural;
        };
        // Generated ids grow with the index (added objects get larger ones), so
        // sorting by id needs no work. (v2 groups have no `_id`: sorting by it is a
        // no-op, handled by the general path.)
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
        let m = *self.graph.members.get(g)?.get(pos)?;
        if m & DANGLING != 0 {
            self.graph.dangling.get((m & !DANGLING) as usize).cloned()
        } else {
            self.user_id(m as usize)
        }
    }

    /// Member `pos` of group `g` as a `GraphConnection`.
    pub(crate) fn member_item(&self, g: usize, pos: usize) -> Option<Value> {
        self.member_id(g, pos).map(|id| connection(&id, "user"))
    }

    /// Users reaching application `a`, ascending.
    pub(crate) fn effective_users(&self, a: usize) -> &[u32] {
        self.app_users[a].get_or_init(|| {
            let mut all = self.graph.app_direct_users[a].clone();
            for &g in &self.graph.app_groups[a] {
                let members = self
                    .graph
                    .members
                    .get(g as usize)
                    .map_or(&[][..], Vec::as_slice);
                // Dangling members are not users and reach nothing.
                all.extend(members.iter().copied().filter(|&m| m & DANGLING == 0));
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

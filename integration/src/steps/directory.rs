//! The steps of the rest of the directory (`data-model-directory.md`): Apple MDM and
//! its devices, systems, system groups and their members, who may log into which
//! system (with sudo), administrators, and policies with where they apply.
//!
//! Per-parent lists (the devices of an MDM, the users of each system, ...) are fetched
//! side by side up to the concurrency limit, like group members. A parent that vanished
//! mid-run (404) is skipped with a warning and counted; the step still succeeds. An id
//! that does not belong to the organization being read (deleted, newer than the list,
//! or another organization's) gives no edge: it is logged at debug and counted.
//!
//! Never called: `/api/v2/systems/{id}/fdekey` (disk recovery keys),
//! `/api/v2/policies/{id}` (policy `values`) and `/api/v2/policyresults`.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{AccountRef, Batch, GROUP_IDS, StepRun, USER_IDS, convert_failure, timed};
use crate::client::{Client, ListRequest, Page, Target};
use crate::convert::policy::PolicyStatus;
use crate::convert::{account, administrator, apple, employee, policy, system};
use crate::error::IntegrationError;
use crate::host::Host;
use crate::model::Relationship;
use crate::transport::{Level, Transport};

/// Step data: the Apple MDM ids of an organization.
const APPLE_MDM_IDS: &str = "apple-mdms";
/// Step data: an organization's Apple devices, `[id, serial]`.
const APPLE_DEVICES: &str = "apple-devices";
/// Step data: an organization's systems, `[id, serial, owner]`, in chunks of
/// [`SYSTEM_CHUNK`] (`systems/<org>/<n>`), so later steps hold one chunk at a time.
const SYSTEMS: &str = "systems";
/// Step data: how many chunks of systems an organization has.
const SYSTEM_CHUNKS: &str = "system-chunks";
/// Systems per chunk of step data (and per batch of per-system lists).
const SYSTEM_CHUNK: usize = 1000;
/// Step data: the system group ids of an organization.
const SYSTEM_GROUP_IDS: &str = "system-groups";
/// Step data: the policy ids of an organization.
const POLICY_IDS: &str = "policies";

/// Relationships added per host call when a step builds many without paging.
const EDGE_BATCH: usize = 1000;

/// A system as later steps need it: its key, its serial number as the IS join
/// compares it, and its primary user's id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SystemRef(String, Option<String>, Option<String>);

/// An Apple device as the IS join needs it: its key and serial number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct DeviceRef(String, Option<String>);

/// The ids of one kind of object in one organization: what may be linked there.
/// `None` means "not known, do not check" (users of a single organization: the host
/// drops an edge to a user that was not collected anyway).
struct Members(Option<HashSet<String>>);

impl Members {
    fn contains(&self, id: &str) -> bool {
        self.0.as_ref().is_none_or(|ids| ids.contains(id))
    }
}

impl<H: Host> StepRun<'_, H> {
    pub(super) fn fetch_apple_mdm<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        let log = self.log;
        self.fetch_owned(
            client,
            APPLE_MDM_IDS,
            ListRequest::apple_mdms,
            |item, raw, _config, account_id| {
                let entity = apple::apple_mdm_entity(item, raw)?;
                // graph-jumpcloud linked the MDM only when `organization` named a
                // collected org; the org whose `x-org-id` read it owns it.
                if let Some(org) = item.get("organization").and_then(|o| o.as_str())
                    && org != account_id
                {
                    log.log(
                        Level::Debug,
                        "Apple MDM names another organization; linked to the one that listed it",
                        &[("mdm", entity.key.as_str()), ("organization", org)],
                    );
                }
                Ok(entity)
            },
        )
    }

    pub(super) fn fetch_apple_devices<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        let accounts = self.accounts()?;
        let mut lists = Vec::new();
        let mut parents = Vec::new();
        for (a, account) in accounts.iter().enumerate() {
            for mdm_id in self.load_ids(APPLE_MDM_IDS, &account.id)? {
                lists.push(ListRequest::apple_devices(&mdm_id, account.org_header()));
                parents.push((a, mdm_id));
            }
        }
        let mut devices: Vec<Vec<DeviceRef>> = vec![Vec::new(); accounts.len()];
        let mut done = 0;
        let outcomes = client.for_each_page_of_many(&lists, |index, page| {
            let (a, mdm_id) = &parents[index];
            let converted = self.convert_page(&lists[index].path, &page, |item, raw| {
                Ok((
                    apple::apple_device_entity(item, raw, mdm_id)?,
                    system::join_serial(item, "serialNumber"),
                ))
            })?;
            let mut batch = Batch::default();
            for (entity, serial) in converted {
                if self.is_known(&entity.key, &batch) {
                    continue;
                }
                devices[*a].push(DeviceRef(entity.key.clone(), serial));
                batch
                    .relationships
                    .push(apple::apple_device_has_mdm(&entity.key, mdm_id));
                batch.entities.push(entity);
            }
            done += page.items.len() as u64;
            self.add(batch)?;
            self.host.progress(self.step_id, done, None);
            Ok(())
        })?;
        for (account, devices) in accounts.iter().zip(&devices) {
            self.store_json(APPLE_DEVICES, &account.id, devices)?;
        }
        self.settle(&lists, outcomes)
    }

    pub(super) fn fetch_systems<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        for account in self.accounts()? {
            let list = ListRequest::systems(account.org_header());
            let mut chunk: Vec<SystemRef> = Vec::new();
            let mut chunks = 0;
            let mut done = 0;
            self.page_through(client, &list, &mut |run: &mut Self, page: Page| {
                let console = run.config.base_url.as_str();
                let converted = run.convert_page(&list.path, &page, |item, _raw| {
                    Ok((
                        system::system_entity(item, console)?,
                        system::join_serial(item, "serialNumber"),
                        system::primary_user_id(item)?,
                    ))
                })?;
                let mut batch = Batch::default();
                for (entity, serial, owner) in converted {
                    if run.is_known(&entity.key, &batch) {
                        continue;
                    }
                    chunk.push(SystemRef(entity.key.clone(), serial, owner));
                    batch
                        .relationships
                        .push(account::account_has(&account.id, &entity));
                    batch.entities.push(entity);
                }
                run.add(batch)?;
                done += page.items.len() as u64;
                run.host.progress(run.step_id, done, page.total);
                if chunk.len() >= SYSTEM_CHUNK {
                    run.store_json(SYSTEMS, &chunk_key(&account.id, chunks), &chunk)?;
                    chunks += 1;
                    chunk.clear();
                }
                Ok(())
            })?;
            if !chunk.is_empty() {
                self.store_json(SYSTEMS, &chunk_key(&account.id, chunks), &chunk)?;
                chunks += 1;
            }
            self.store_json(SYSTEM_CHUNKS, &account.id, &chunks)?;
        }
        Ok(())
    }

    pub(super) fn fetch_system_groups<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        self.fetch_owned(
            client,
            SYSTEM_GROUP_IDS,
            ListRequest::system_groups,
            |item, raw, _config, _account| system::system_group_entity(item, raw),
        )
    }

    pub(super) fn fetch_system_group_members<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        let accounts = self.accounts()?;
        let mut systems = Vec::new();
        let mut lists = Vec::new();
        let mut parents = Vec::new();
        for (a, account) in accounts.iter().enumerate() {
            systems.push(self.system_ids(account, accounts.len())?);
            for group_id in self.load_ids(SYSTEM_GROUP_IDS, &account.id)? {
                lists.push(ListRequest::system_group_members(
                    &group_id,
                    account.org_header(),
                ));
                parents.push((a, group_id));
            }
        }
        let mut pages = 0;
        let outcomes = client.for_each_page_of_many(&lists, |index, page| {
            let (a, group_id) = &parents[index];
            let mut edges = Vec::new();
            for item in &page.items {
                let member = system::connection_target(item, "system")
                    .map_err(|e| convert_failure(&lists[index].path, e))?;
                let Some(system_id) = member else { continue };
                if !systems[*a].contains(&system_id) {
                    self.dangling("system group member", &system_id);
                    continue;
                }
                edges.push(system::system_group_has_system(group_id, &system_id));
            }
            self.add_edges(edges)?;
            pages += 1;
            self.host.progress(self.step_id, pages, None);
            Ok(())
        })?;
        self.settle(&lists, outcomes)
    }

    pub(super) fn fetch_system_group_bindings<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        let accounts = self.accounts()?;
        let mut users = Vec::new();
        let mut groups = Vec::new();
        let mut lists = Vec::new();
        let mut parents = Vec::new();
        for (a, account) in accounts.iter().enumerate() {
            users.push(self.user_ids(account, accounts.len())?);
            groups.push(self.group_ids(account)?);
            for group_id in self.load_ids(SYSTEM_GROUP_IDS, &account.id)? {
                for target in [Target::UserGroup, Target::User] {
                    lists.push(ListRequest::system_group_associations(
                        &group_id,
                        target,
                        account.org_header(),
                    ));
                    parents.push((a, group_id.clone(), target));
                }
            }
        }
        let mut pages = 0;
        let outcomes = client.for_each_page_of_many(&lists, |index, page| {
            let (a, group_id, target) = &parents[index];
            let mut edges = Vec::new();
            for item in &page.items {
                let (kind, known) = match target {
                    Target::UserGroup => ("user_group", &groups[*a]),
                    _ => ("user", &users[*a]),
                };
                let bound = system::association(item, kind)
                    .map_err(|e| convert_failure(&lists[index].path, e))?;
                let Some((id, sudo)) = bound else { continue };
                if !known.contains(&id) {
                    self.dangling("system group binding", &id);
                    continue;
                }
                edges.push(match target {
                    Target::UserGroup => system::group_assigned_system_group(&id, group_id, sudo),
                    _ => system::user_assigned_system_group(&id, group_id, sudo),
                });
            }
            self.add_edges(edges)?;
            pages += 1;
            self.host.progress(self.step_id, pages, None);
            Ok(())
        })?;
        self.settle(&lists, outcomes)
    }

    /// One batch of per-system lists per chunk of systems, so memory does not grow
    /// with the number of systems.
    pub(super) fn fetch_system_users<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        let accounts = self.accounts()?;
        let mut first_error = None;
        let mut pages = 0;
        for account in &accounts {
            let users = self.user_ids(account, accounts.len())?;
            let groups = self.group_ids(account)?;
            for chunk in 0..self.system_chunks(account)? {
                let systems: Vec<SystemRef> =
                    self.load_json(SYSTEMS, &chunk_key(&account.id, chunk))?;
                // Ownership needs no request: `primarySystemUser` came with the system.
                let mut owned = Vec::new();
                for SystemRef(system_id, _, owner) in &systems {
                    let Some(owner) = owner else { continue };
                    if users.contains(owner) {
                        owned.push(system::user_owns_system(owner, system_id));
                    } else {
                        self.dangling("system owner", owner);
                    }
                }
                self.add_edges(owned)?;
                let lists: Vec<ListRequest> = systems
                    .iter()
                    .map(|SystemRef(id, _, _)| ListRequest::system_users(id, account.org_header()))
                    .collect();
                let outcomes = client.for_each_page_of_many(&lists, |index, page| {
                    let system_id = &systems[index].0;
                    let (read, spent) = timed(|| {
                        page.items
                            .iter()
                            .map(system::system_access)
                            .collect::<Result<Vec<_>, _>>()
                    });
                    self.convert_time += spent;
                    let accesses = read.map_err(|e| convert_failure(&lists[index].path, e))?;
                    let mut edges = Vec::new();
                    for access in accesses.into_iter().flatten() {
                        if !users.contains(&access.user_id) {
                            self.dangling("system user", &access.user_id);
                            continue;
                        }
                        edges.push(system::user_assigned_system(&access, system_id));
                        for (group_id, sudo) in &access.via_groups {
                            if groups.contains(group_id) {
                                edges.push(system::group_assigned_system(
                                    group_id, system_id, *sudo,
                                ));
                            } else {
                                self.dangling("system user group", group_id);
                            }
                        }
                    }
                    self.add_edges(edges)?;
                    pages += 1;
                    self.host.progress(self.step_id, pages, None);
                    Ok(())
                })?;
                if let Err(error) = self.settle(&lists, outcomes) {
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// `system IS apple_device` where the serial number, trimmed and upper-cased, is
    /// unique among the organization's systems and among its Apple devices (shared VM
    /// placeholder serials never link). An inferred join: the APIs share no id.
    pub(super) fn link_systems_to_apple_devices(&mut self) -> Result<(), IntegrationError> {
        for account in self.accounts()? {
            let mut systems: Vec<SystemRef> = Vec::new();
            for chunk in 0..self.system_chunks(&account)? {
                let refs: Vec<SystemRef> =
                    self.load_json(SYSTEMS, &chunk_key(&account.id, chunk))?;
                // Only serials take part in the join.
                systems.extend(refs.into_iter().filter(|r| r.1.is_some()));
            }
            let devices: Vec<DeviceRef> = self.load_json(APPLE_DEVICES, &account.id)?;
            let by_system = unique_by_serial(
                systems
                    .iter()
                    .filter_map(|SystemRef(key, serial, _)| Some((serial.as_ref()?, key))),
            );
            let by_device = unique_by_serial(
                devices
                    .iter()
                    .filter_map(|DeviceRef(key, serial)| Some((serial.as_ref()?, key))),
            );
            let mut edges: Vec<Relationship> = by_system
                .iter()
                .filter_map(|(serial, system_key)| {
                    let device_key = (*by_device.get(serial)?)?;
                    Some(system::system_is_apple_device((*system_key)?, device_key))
                })
                .collect();
            edges.sort_by(|a, b| a.key.cmp(&b.key));
            for batch in edges.chunks(EDGE_BATCH) {
                self.add_edges(batch.to_vec())?;
            }
        }
        Ok(())
    }

    pub(super) fn fetch_administrators<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        let mut done = 0;
        for account in self.accounts()? {
            let list = ListRequest::administrators(account.org_header());
            let result = client.for_each_page(&list, |page| {
                done += page.items.len() as u64;
                let entities = self.convert_page(&list.path, &page, |item, _raw| {
                    administrator::administrator_entity(item)
                })?;
                let mut batch = Batch::default();
                for entity in entities {
                    // An administrator of several organizations is one entity with a
                    // HAS edge from each; its employee mapping comes with the entity.
                    batch
                        .relationships
                        .push(account::account_has(&account.id, &entity));
                    if self.is_known(&entity.key, &batch) {
                        continue;
                    }
                    if let Some(mapping) = employee::employee_mapping(&entity) {
                        batch.mapped.push(mapping);
                    }
                    batch.entities.push(entity);
                }
                batch.relationships = self.unseen_edges(batch.relationships);
                self.add(batch)?;
                self.host.progress(self.step_id, done, page.total);
                Ok(())
            });
            result.map_err(|error| match error {
                IntegrationError::Authorization { endpoint, message } => {
                    IntegrationError::Authorization {
                        endpoint,
                        message: format!(
                            "{message}; listing console administrators needs a key whose role may read them \
                             (only fetch-administrators is affected)"
                        ),
                    }
                }
                other => other,
            })?;
        }
        Ok(())
    }

    pub(super) fn fetch_policies<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        self.fetch_owned(
            client,
            POLICY_IDS,
            ListRequest::policies,
            |item, raw, config, _account| policy::policy_entity(item, raw, &config.base_url),
        )
    }

    /// Two passes over every policy: first its statuses (the latest per system), then
    /// its systems and system groups, each system edge carrying that status. Memory
    /// holds one status per bound system, not the history.
    pub(super) fn fetch_policy_assignments<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        let accounts = self.accounts()?;
        let mut policies = Vec::new();
        let mut systems = Vec::new();
        let mut system_groups = Vec::new();
        for (a, account) in accounts.iter().enumerate() {
            systems.push(self.system_ids(account, accounts.len())?);
            system_groups.push(Members(Some(
                self.load_ids(SYSTEM_GROUP_IDS, &account.id)?
                    .into_iter()
                    .collect(),
            )));
            for policy_id in self.load_ids(POLICY_IDS, &account.id)? {
                policies.push((a, policy_id));
            }
        }
        let org = |a: usize| accounts[a].org_header();

        let status_lists: Vec<ListRequest> = policies
            .iter()
            .map(|(a, id)| ListRequest::policy_statuses(id, org(*a)))
            .collect();
        let mut statuses: Vec<HashMap<String, PolicyStatus>> = vec![HashMap::new(); policies.len()];
        let outcomes = client.for_each_page_of_many(&status_lists, |index, page| {
            for item in &page.items {
                let status = policy::policy_status(item)
                    .map_err(|e| convert_failure(&status_lists[index].path, e))?;
                let Some(status) = status else { continue };
                let held = &mut statuses[index];
                let newer = held
                    .get(&status.system_id)
                    .is_none_or(|old| status.is_newer_than(old));
                if newer {
                    held.insert(status.system_id.clone(), status);
                }
            }
            Ok(())
        })?;
        let statuses_failed = self.settle(&status_lists, outcomes);

        let mut lists = Vec::new();
        let mut parents = Vec::new();
        for (p, (a, id)) in policies.iter().enumerate() {
            lists.push(ListRequest::policy_systems(id, org(*a)));
            parents.push((p, true));
            lists.push(ListRequest::policy_system_groups(id, org(*a)));
            parents.push((p, false));
        }
        let mut used: Vec<HashSet<String>> = vec![HashSet::new(); policies.len()];
        let mut pages = 0;
        let outcomes = client.for_each_page_of_many(&lists, |index, page| {
            let (p, to_systems) = parents[index];
            let (a, policy_id) = &policies[p];
            let mut edges = Vec::new();
            for item in &page.items {
                let failed = |e| convert_failure(&lists[index].path, e);
                if to_systems {
                    let Some((system_id, direct)) = policy::policy_system(item).map_err(failed)?
                    else {
                        continue;
                    };
                    if !systems[*a].contains(&system_id) {
                        self.dangling("policy system", &system_id);
                        continue;
                    }
                    let status = statuses[p].get(&system_id);
                    used[p].insert(system_id.clone());
                    edges.push(policy::policy_enforces_system(
                        policy_id, &system_id, direct, status,
                    ));
                } else {
                    let Some(group_id) =
                        system::connection_target(item, "system_group").map_err(failed)?
                    else {
                        continue;
                    };
                    if !system_groups[*a].contains(&group_id) {
                        self.dangling("policy system group", &group_id);
                        continue;
                    }
                    edges.push(policy::policy_enforces_system_group(policy_id, &group_id));
                }
            }
            self.add_edges(edges)?;
            pages += 1;
            self.host.progress(self.step_id, pages, None);
            Ok(())
        })?;
        // A status for a system the policy is not bound to (or that was not
        // collected) describes no edge.
        for (p, held) in statuses.iter().enumerate() {
            for system_id in held.keys().filter(|id| !used[p].contains(*id)) {
                self.dangling("policy status", system_id);
            }
        }
        let assignments = self.settle(&lists, outcomes);
        statuses_failed.and(assignments)
    }

    /// The key guard: true (and counted) when an entity with this key is already in
    /// the graph or in the batch being built.
    fn is_known(&mut self, key: &str, batch: &Batch) -> bool {
        let known = self.host.has_key(key) || batch.entities.iter().any(|e| e.key == key);
        if known {
            self.skip_duplicate(key);
        }
        known
    }

    /// Adds edges the graph does not hold yet.
    fn add_edges(&mut self, edges: Vec<Relationship>) -> Result<(), IntegrationError> {
        let relationships = self.unseen_edges(edges);
        self.add(Batch {
            relationships,
            ..Batch::default()
        })
    }

    /// An id that names nothing of this organization: no edge, logged and counted.
    fn dangling(&mut self, what: &str, id: &str) {
        self.skipped += 1;
        self.log.log(
            Level::Debug,
            "skipped a link to an object not collected in this organization",
            &[("link", what), ("id", id)],
        );
    }

    /// The organization's system ids when there are several organizations; with one,
    /// any collected system belongs to it (and the host drops edges to the others).
    fn system_ids(
        &self,
        account: &AccountRef,
        accounts: usize,
    ) -> Result<Members, IntegrationError> {
        if accounts < 2 {
            return Ok(Members(None));
        }
        let mut ids = HashSet::new();
        for chunk in 0..self.system_chunks(account)? {
            let refs: Vec<SystemRef> = self.load_json(SYSTEMS, &chunk_key(&account.id, chunk))?;
            ids.extend(refs.into_iter().map(|SystemRef(id, _, _)| id));
        }
        Ok(Members(Some(ids)))
    }

    fn system_chunks(&self, account: &AccountRef) -> Result<usize, IntegrationError> {
        self.load_json(SYSTEM_CHUNKS, &account.id)
    }

    fn group_ids(&self, account: &AccountRef) -> Result<Members, IntegrationError> {
        Ok(Members(Some(
            self.load_ids(GROUP_IDS, &account.id)?.into_iter().collect(),
        )))
    }

    /// The organization's user ids when there are several organizations (stored by
    /// `fetch-users`); with one, any collected user belongs to it.
    fn user_ids(&self, account: &AccountRef, accounts: usize) -> Result<Members, IntegrationError> {
        if accounts < 2 {
            return Ok(Members(None));
        }
        Ok(Members(Some(
            self.load_ids(USER_IDS, &account.id)?.into_iter().collect(),
        )))
    }
}

/// Per serial number, the one key that has it, or `None` when several share it.
fn unique_by_serial<'a>(
    pairs: impl Iterator<Item = (&'a String, &'a String)>,
) -> HashMap<&'a String, Option<&'a String>> {
    let mut seen: HashMap<&String, Option<&String>> = HashMap::new();
    for (serial, key) in pairs {
        seen.entry(serial)
            .and_modify(|only| *only = None)
            .or_insert(Some(key));
    }
    seen
}

/// The step-data key of chunk `n` of an organization's systems: `<org>/<n>`.
fn chunk_key(org_id: &str, n: usize) -> String {
    format!("{org_id}/{n}")
}

#[cfg(test)]
mod tests {
    //! The directory steps over a scripted API and an in-memory host: the key guard,
    //! a refused sort, vanished parents, dangling ids, several organizations, the
    //! chunked hand-off of systems, and the serial join.

    use std::cell::RefCell;
    use std::collections::{BTreeMap, BTreeSet, VecDeque};
    use std::time::Duration;

    use serde_json::{Value, json};

    use crate::config::Config;
    use crate::error::GraphError;
    use crate::host::{BatchOutcome, Host};
    use crate::model::{Entity, MappedRelationship, Relationship};
    use crate::steps::{self, StepContext, StepReport};
    use crate::transport::{HttpRequest, HttpResponse, Level, Logger, Transport, TransportError};

    /// Answers by path (query ignored but `skip`, `limit` and `targets` honoured):
    /// each route holds every item; pages are sliced like the API does.
    #[derive(Default)]
    struct Api {
        lists: BTreeMap<String, (bool, Vec<Value>)>,
        statuses: BTreeMap<String, u16>,
        done: VecDeque<(u64, Result<HttpResponse, TransportError>)>,
        seen: Vec<String>,
    }

    impl Api {
        /// A v1 (`true`) or v2 list at `path` (`path?targets=x` for associations).
        fn list(&mut self, path: &str, v1: bool, items: Vec<Value>) -> &mut Self {
            self.lists.insert(path.to_owned(), (v1, items));
            self
        }

        fn fail(&mut self, path: &str, status: u16) -> &mut Self {
            self.statuses.insert(path.to_owned(), status);
            self
        }

        fn answer(&self, path_and_query: &str) -> HttpResponse {
            let (path, query) = path_and_query
                .split_once('?')
                .unwrap_or((path_and_query, ""));
            let param = |name: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .map(str::to_owned)
            };
            let key = match param("targets") {
                Some(t) => format!("{path}?targets={t}"),
                None => path.to_owned(),
            };
            let json = |status: u16, body: String, total: Option<usize>| HttpResponse {
                status,
                headers: total
                    .map(|t| vec![("x-total-count".to_owned(), t.to_string())])
                    .unwrap_or_default(),
                body: body.into_bytes(),
            };
            if let Some(&status) = self.statuses.get(&key) {
                return json(status, r#"{"message":"scripted"}"#.into(), None);
            }
            if param("sort").is_some() && self.statuses.contains_key(&format!("{key}#sort")) {
                return json(400, r#"{"message":"bad sort"}"#.into(), None);
            }
            let Some((v1, items)) = self.lists.get(&key) else {
                return json(404, r#"{"message":"Not Found"}"#.into(), None);
            };
            let skip: usize = param("skip").and_then(|s| s.parse().ok()).unwrap_or(0);
            let limit: usize = param("limit").and_then(|s| s.parse().ok()).unwrap_or(10);
            let page: Vec<&Value> = items.iter().skip(skip).take(limit).collect();
            if *v1 {
                json(
                    200,
                    json!({"totalCount": items.len(), "results": page}).to_string(),
                    None,
                )
            } else {
                json(200, json!(page).to_string(), Some(items.len()))
            }
        }
    }

    impl Transport for Api {
        fn start(&mut self, id: u64, request: &HttpRequest) {
            self.seen.push(request.path_and_query.clone());
            let response = self.answer(&request.path_and_query);
            self.done.push_back((id, Ok(response)));
        }
        fn next_response(&mut self) -> Option<(u64, Result<HttpResponse, TransportError>)> {
            self.done.pop_front()
        }
        fn cancel_all(&mut self) {
            self.done.clear();
        }
        fn now(&mut self) -> Duration {
            Duration::ZERO
        }
        fn sleep(&mut self, _: Duration) {}
        fn random_unit(&mut self) -> f64 {
            0.5
        }
    }

    /// The graph and the step data, as the host keeps them; drops dangling edges.
    #[derive(Default)]
    struct Graph {
        entities: BTreeMap<String, Entity>,
        relationships: BTreeMap<String, Relationship>,
        mapped: BTreeMap<String, MappedRelationship>,
        data: BTreeMap<String, String>,
    }

    impl Host for Graph {
        fn add_entities(&mut self, entities: Vec<Entity>) -> Result<BatchOutcome, GraphError> {
            for entity in entities {
                if self.entities.contains_key(&entity.key) {
                    return Err(GraphError::DuplicateKey(entity.key));
                }
                self.entities.insert(entity.key.clone(), entity);
            }
            Ok(BatchOutcome::default())
        }
        fn add_relationships(
            &mut self,
            relationships: Vec<Relationship>,
        ) -> Result<BatchOutcome, GraphError> {
            let mut outcome = BatchOutcome::default();
            for edge in relationships {
                if self.relationships.contains_key(&edge.key) {
                    return Err(GraphError::DuplicateKey(edge.key));
                }
                if !self.entities.contains_key(&edge.from_key)
                    || !self.entities.contains_key(&edge.to_key)
                {
                    outcome.dropped += 1;
                    continue;
                }
                outcome.accepted += 1;
                self.relationships.insert(edge.key.clone(), edge);
            }
            Ok(outcome)
        }
        fn add_mapped_relationships(
            &mut self,
            relationships: Vec<MappedRelationship>,
        ) -> Result<BatchOutcome, GraphError> {
            for mapped in relationships {
                if self
                    .mapped
                    .insert(mapped.key.clone(), mapped.clone())
                    .is_some()
                {
                    return Err(GraphError::DuplicateKey(mapped.key));
                }
            }
            Ok(BatchOutcome::default())
        }
        fn has_key(&self, key: &str) -> bool {
            self.entities.contains_key(key)
                || self.relationships.contains_key(key)
                || self.mapped.contains_key(key)
        }
        fn set_data(&mut self, key: &str, value: &str) {
            self.data.insert(key.to_owned(), value.to_owned());
        }
        fn get_data(&self, key: &str) -> Option<String> {
            self.data.get(key).cloned()
        }
        fn progress(&self, _: &str, _: u64, _: Option<u64>) {}
    }

    #[derive(Default)]
    struct Lines(RefCell<Vec<String>>);

    impl Logger for Lines {
        fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
            self.0
                .borrow_mut()
                .push(format!("{level:?} {message} {fields:?}"));
        }
    }

    fn config() -> Config {
        Config::from_entries(vec![
            ("apiKey", "k"),
            ("baseUrl", "https://console.jumpcloud.com"),
        ])
        .unwrap()
    }

    fn run_step(
        step: &str,
        api: &mut Api,
        graph: &mut Graph,
        log: &Lines,
    ) -> Result<StepReport, crate::error::IntegrationError> {
        let config = config();
        steps::execute_step(
            step,
            StepContext {
                config: &config,
                transport: api,
                host: graph,
                log,
                concurrency: 8,
            },
        )
    }

    /// Runs the steps in order; each must succeed.
    fn run_steps(ids: &[&str], api: &mut Api, graph: &mut Graph) -> BTreeMap<String, StepReport> {
        let log = Lines::default();
        ids.iter()
            .map(|id| {
                let report = run_step(id, api, graph, &log)
                    .unwrap_or_else(|e| panic!("{id}: {e}\n{:#?}", log.0.borrow()));
                ((*id).to_owned(), report)
            })
            .collect()
    }

    fn org(id: &str) -> Value {
        json!({"_id": id, "id": id, "displayName": id})
    }

    fn system(id: &str, serial: Option<&str>, owner: Option<&str>) -> Value {
        let mut s = json!({"_id": id, "displayName": id, "os": "Mac OS X", "osFamily": "darwin"});
        if let Some(serial) = serial {
            s["serialNumber"] = json!(serial);
        }
        if let Some(owner) = owner {
            s["primarySystemUser"] = json!({"id": owner});
        }
        s
    }

    fn user(id: &str) -> Value {
        json!({"_id": id, "id": id, "username": id, "email": format!("{id}@example.com"),
               "firstname": "F", "lastname": id, "state": "ACTIVATED"})
    }

    fn keys_of(graph: &Graph, kind: &str) -> BTreeSet<String> {
        graph
            .relationships
            .values()
            .filter(|r| r.relationship_type == kind)
            .map(|r| r.key.clone())
            .collect()
    }

    fn one_org(api: &mut Api) {
        api.list("/api/organizations", true, vec![org("org-00000001")]);
    }

    #[test]
    fn systems_repeated_across_pages_are_kept_once_and_handed_on_in_chunks() {
        let mut api = Api::default();
        one_org(&mut api);
        let mut systems: Vec<Value> = (0..2150)
            .map(|i| system(&format!("sys-{i:06}"), Some(&format!("SER{i}")), None))
            .collect();
        // A list that shifts while it is paged hands out a record twice.
        systems.insert(150, systems[20].clone());
        api.list("/api/systems", true, systems);
        let mut graph = Graph::default();
        let reports = run_steps(&["fetch-accounts", "fetch-systems"], &mut api, &mut graph);
        let systems: BTreeSet<_> = graph
            .entities
            .values()
            .filter(|e| e.entity_type == "jumpcloud_system")
            .map(|e| e.key.clone())
            .collect();
        assert_eq!(systems.len(), 2150);
        assert_eq!(
            reports["fetch-systems"].skipped_records, 1,
            "the repeat is counted"
        );
        assert_eq!(keys_of(&graph, "jumpcloud_account_has_system").len(), 2150);
        assert_eq!(
            graph
                .data
                .get("system-chunks/org-00000001")
                .map(String::as_str),
            Some("3")
        );
        assert!(graph.data.contains_key("systems/org-00000001/2"));
        assert!(api.seen.iter().all(|p| !p.contains("fdekey")));
    }

    #[test]
    fn system_users_give_access_ownership_and_group_edges_with_sudo() {
        let mut api = Api::default();
        one_org(&mut api);
        api.list(
            "/api/systemusers",
            true,
            vec![user("u1"), user("u2"), user("u3")],
        );
        api.list(
            "/api/v2/usergroups",
            false,
            vec![
                json!({"id": "g1", "name": "Admins"}),
                json!({"id": "g-empty", "name": "Empty"}),
            ],
        );
        api.list(
            "/api/systems",
            true,
            vec![
                system("s1", None, Some("u1")),
                system("s2", None, Some("u-deleted")),
                system("s3", None, None),
            ],
        );
        let sudo = |e: bool, w: bool| json!({"sudo": {"enabled": e, "withoutPassword": w}});
        let hop = |id: &str, kind: &str, attrs: Value| json!({"attributes": attrs, "to": {"id": id, "type": kind}});
        api.list("/api/v2/systems/s1/users", false, vec![
            json!({"id": "u1", "type": "user", "compiledAttributes": sudo(true, true),
                   "paths": [[hop("u1", "user", sudo(true, true))]]}),
            json!({"id": "u2", "type": "user", "compiledAttributes": sudo(true, false),
                   "paths": [[hop("g1", "user_group", sudo(true, false)), hop("u2", "user", Value::Null)]]}),
            json!({"id": "u3", "type": "user", "compiledAttributes": null,
                   "paths": [[hop("g1", "user_group", sudo(true, false)), hop("u3", "user", Value::Null)],
                             [hop("sg1", "system_group", Value::Null), hop("u3", "user", Value::Null)]]}),
            // Deleted after the list was read: no edge, counted.
            json!({"id": "u-deleted", "type": "user", "compiledAttributes": null,
                   "paths": [[hop("u-deleted", "user", Value::Null)]]}),
        ]);
        api.list("/api/v2/systems/s2/users", false, vec![]);
        // s3 vanished between the systems list and its users list.
        api.fail("/api/v2/systems/s3/users", 404);
        let mut graph = Graph::default();
        let reports = run_steps(
            &[
                "fetch-accounts",
                "fetch-users",
                "fetch-groups",
                "fetch-systems",
                "fetch-system-users",
            ],
            &mut api,
            &mut graph,
        );
        let edge = |key: &str| {
            graph
                .relationships
                .get(key)
                .unwrap_or_else(|| panic!("no {key}"))
        };
        let props = |key: &str| {
            let e = edge(key);
            ["direct", "sudo", "passwordlessSudo"].map(|p| e.property(p).cloned())
        };
        use crate::model::Value as V;
        assert_eq!(
            props("u1|assigned|s1"),
            [
                Some(V::Bool(true)),
                Some(V::Bool(true)),
                Some(V::Bool(true))
            ]
        );
        assert_eq!(
            props("u2|assigned|s1"),
            [
                Some(V::Bool(false)),
                Some(V::Bool(true)),
                Some(V::Bool(false))
            ]
        );
        assert_eq!(
            props("u3|assigned|s1"),
            [
                Some(V::Bool(false)),
                Some(V::Bool(false)),
                Some(V::Bool(false))
            ]
        );
        assert_eq!(
            props("g1|assigned|s1"),
            [
                Some(V::Bool(true)),
                Some(V::Bool(true)),
                Some(V::Bool(false))
            ]
        );
        assert_eq!(
            keys_of(&graph, "jumpcloud_group_assigned_system").len(),
            1,
            "one edge for two paths"
        );
        assert_eq!(
            keys_of(&graph, "jumpcloud_user_owns_system"),
            BTreeSet::from(["u1|owns|s1".to_owned()])
        );
        // Counted: the deleted user's access, the deleted owner, the vanished system.
        assert_eq!(reports["fetch-system-users"].skipped_records, 3);
        assert_eq!(
            api.seen
                .iter()
                .filter(|p| p.starts_with("/api/v2/systems/s3/users"))
                .count(),
            1,
            "no retry of a 404"
        );
    }

    #[test]
    fn a_refused_sort_is_dropped_once_and_policies_carry_their_latest_status() {
        let mut api = Api::default();
        one_org(&mut api);
        api.list(
            "/api/systems",
            true,
            vec![system("s1", None, None), system("s2", None, None)],
        );
        api.list(
            "/api/v2/systemgroups",
            false,
            vec![json!({"id": "sg1", "name": "Fleet"})],
        );
        api.fail("/api/v2/policies#sort", 400);
        api.list(
            "/api/v2/policies",
            false,
            vec![json!({"id": "p1", "name": "FileVault"})],
        );
        let hop =
            |id: &str, kind: &str| json!({"attributes": null, "to": {"id": id, "type": kind}});
        api.list("/api/v2/policies/p1/systems", false, vec![
            json!({"id": "s1", "type": "system", "paths": [[hop("s1", "system")]]}),
            json!({"id": "s2", "type": "system", "paths": [[hop("sg1", "system_group"), hop("s2", "system")]]}),
        ]);
        api.list(
            "/api/v2/policies/p1/associations?targets=system_group",
            false,
            vec![hop("sg1", "system_group"), hop("sg-gone", "system_group")],
        );
        api.list("/api/v2/policies/p1/policystatuses", false, vec![
            json!({"systemID": "s1", "state": "FAILED", "success": false, "exitStatus": 1,
                   "startedAt": "2024-01-01T00:00:00Z", "endedAt": "2024-01-01T00:00:10Z", "stdOut": "SECRET"}),
            json!({"systemID": "s1", "state": "SUCCESS", "success": true, "exitStatus": 0,
                   "startedAt": "2024-01-02T00:00:00Z", "endedAt": "2024-01-02T00:00:10Z", "stdOut": "SECRET"}),
            json!({"systemID": "s-unbound", "state": "SUCCESS"}),
        ]);
        let mut graph = Graph::default();
        let reports = run_steps(
            &[
                "fetch-accounts",
                "fetch-systems",
                "fetch-system-groups",
                "fetch-policies",
                "fetch-policy-assignments",
            ],
            &mut api,
            &mut graph,
        );
        assert!(graph.entities.contains_key("p1"));
        let sorted = api
            .seen
            .iter()
            .filter(|p| p.starts_with("/api/v2/policies?") && p.contains("sort="))
            .count();
        let unsorted = api
            .seen
            .iter()
            .filter(|p| p.starts_with("/api/v2/policies?") && !p.contains("sort="))
            .count();
        assert_eq!((sorted, unsorted), (1, 1));
        use crate::model::Value as V;
        let s1 = &graph.relationships["p1|enforces|s1"];
        assert_eq!(s1.property("status"), Some(&V::from("success")));
        assert_eq!(s1.property("direct"), Some(&V::Bool(true)));
        assert_eq!(
            s1.property("lastAppliedOn"),
            Some(&V::Int(1_704_153_610_000))
        );
        let s2 = &graph.relationships["p1|enforces|s2"];
        assert_eq!(s2.property("direct"), Some(&V::Bool(false)));
        assert_eq!(s2.property("status"), None);
        assert!(graph.relationships.contains_key("p1|enforces|sg1"));
        assert!(
            graph
                .relationships
                .values()
                .all(|r| r.properties.iter().all(|(_, v)| *v != V::from("SECRET")))
        );
        // The unbound status and the unknown system group are counted.
        assert_eq!(reports["fetch-policy-assignments"].skipped_records, 2);
        assert!(
            api.seen
                .iter()
                .all(|p| !p.starts_with("/api/v2/policyresults")
                    && !p.starts_with("/api/v2/policies/p1?"))
        );
    }

    #[test]
    fn systems_link_to_apple_devices_only_on_a_unique_serial() {
        let mut api = Api::default();
        one_org(&mut api);
        api.list(
            "/api/systems",
            true,
            vec![
                system("s-unique", Some(" c02aaa "), None),
                system("s-dup-1", Some("C02DUP"), None),
                system("s-dup-2", Some("C02DUP"), None),
                system("s-shared-device", Some("C02SHARED"), None),
                system("s-none", None, None),
            ],
        );
        api.list(
            "/api/v2/applemdms",
            false,
            vec![json!({"id": "mdm1", "name": ""})],
        );
        api.list(
            "/api/v2/applemdms/mdm1/devices",
            false,
            vec![
                json!({"id": "d-unique", "serialNumber": "C02AAA"}),
                json!({"id": "d-dup", "serialNumber": "C02DUP"}),
                json!({"id": "d-shared-1", "serialNumber": "C02SHARED"}),
                json!({"id": "d-shared-2", "serialNumber": "c02shared"}),
                json!({"id": "d-unique"}),
            ],
        );
        let mut graph = Graph::default();
        let reports = run_steps(
            &[
                "fetch-accounts",
                "fetch-systems",
                "fetch-apple-mdm",
                "fetch-apple-devices",
                "link-systems-to-apple-devices",
            ],
            &mut api,
            &mut graph,
        );
        assert_eq!(
            keys_of(&graph, "jumpcloud_system_is_apple_device"),
            BTreeSet::from(["s-unique|is|d-unique".to_owned()])
        );
        assert_eq!(
            reports["fetch-apple-devices"].skipped_records, 1,
            "a device id repeated"
        );
        assert_eq!(keys_of(&graph, "jumpcloud_apple_device_has_mdm").len(), 4);
        assert!(api.seen.iter().any(|p| p.starts_with("/api/v2/applemdms?limit=100&skip=0") && !p.contains("sort")));
    }

    #[test]
    fn administrators_of_two_organizations_are_one_entity_with_two_has_edges() {
        let mut api = Api::default();
        api.list(
            "/api/organizations",
            true,
            vec![org("org-0000000a"), org("org-0000000b")],
        );
        api.list("/api/systemusers", true, vec![]);
        let admin = |id: &str, email: Option<&str>| {
            let mut a = json!({"_id": id, "firstname": "A", "lastname": id, "apiKeyHash": {"prefix": "jca_SECRET"}});
            if let Some(email) = email {
                a["email"] = json!(email);
            }
            a
        };
        // The same scripted answer for both organizations: the MSP admin is in both.
        api.list(
            "/api/users",
            true,
            vec![
                admin("msp-admin", Some("MSP@example.com")),
                admin("no-mail", None),
                admin("msp-admin", Some("msp@example.com")),
            ],
        );
        let mut graph = Graph::default();
        let reports = run_steps(
            &["fetch-accounts", "fetch-users", "fetch-administrators"],
            &mut api,
            &mut graph,
        );
        let admins: Vec<&Entity> = graph
            .entities
            .values()
            .filter(|e| e.entity_type == "jumpcloud_administrator")
            .collect();
        assert_eq!(admins.len(), 2);
        assert_eq!(
            keys_of(&graph, "jumpcloud_account_has_administrator").len(),
            4
        );
        assert_eq!(
            graph.mapped.len(),
            1,
            "one mapping, for the admin with an email"
        );
        assert_eq!(
            graph.mapped.keys().next().unwrap(),
            "msp-admin|is|employee:msp@example.com"
        );
        // The repeat within the first organization, and all three in the second.
        assert_eq!(reports["fetch-administrators"].skipped_records, 4);
        assert!(
            admins
                .iter()
                .all(|a| !a.raw_data.as_deref().unwrap_or("").contains("jca_"))
        );
        assert!(
            api.seen
                .iter()
                .filter(|p| p.starts_with("/api/users?"))
                .all(|p| !p.contains("sort"))
        );
    }

    #[test]
    fn a_403_on_administrators_says_which_step_it_costs() {
        let mut api = Api::default();
        one_org(&mut api);
        api.list("/api/systemusers", true, vec![]);
        api.fail("/api/users", 403);
        let mut graph = Graph::default();
        let log = Lines::default();
        for id in ["fetch-accounts", "fetch-users"] {
            run_step(id, &mut api, &mut graph, &log).unwrap();
        }
        let error = run_step("fetch-administrators", &mut api, &mut graph, &log).unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(error, crate::error::IntegrationError::Authorization { .. }),
            "{text}"
        );
        assert!(
            text.contains("/api/users") && text.contains("only fetch-administrators"),
            "{text}"
        );
    }
}

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
/// Step data: an organization's systems, `[id, serial, owner]`.
const SYSTEMS: &str = "systems";
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
            let mut systems: Vec<SystemRef> = Vec::new();
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
                    systems.push(SystemRef(entity.key.clone(), serial, owner));
                    batch
                        .relationships
                        .push(account::account_has(&account.id, &entity));
                    batch.entities.push(entity);
                }
                run.add(batch)?;
                run.host
                    .progress(run.step_id, systems.len() as u64, page.total);
                Ok(())
            })?;
            self.store_json(SYSTEMS, &account.id, &systems)?;
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
            systems.push(self.system_ids(account)?);
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

    pub(super) fn fetch_system_users<T: Transport>(
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
            let systems: Vec<SystemRef> = self.load_json(SYSTEMS, &account.id)?;
            // Ownership needs no request: `primarySystemUser` came with the system.
            let mut owned = Vec::new();
            for SystemRef(system_id, _, owner) in &systems {
                let Some(owner) = owner else { continue };
                if users[a].contains(owner) {
                    owned.push(system::user_owns_system(owner, system_id));
                } else {
                    self.dangling("system owner", owner);
                }
            }
            for chunk in owned.chunks(EDGE_BATCH) {
                self.add_edges(chunk.to_vec())?;
            }
            for SystemRef(system_id, _, _) in systems {
                lists.push(ListRequest::system_users(&system_id, account.org_header()));
                parents.push((a, system_id));
            }
        }
        let mut pages = 0;
        let outcomes = client.for_each_page_of_many(&lists, |index, page| {
            let (a, system_id) = &parents[index];
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
                if !users[*a].contains(&access.user_id) {
                    self.dangling("system user", &access.user_id);
                    continue;
                }
                edges.push(system::user_assigned_system(&access, system_id));
                for (group_id, sudo) in &access.via_groups {
                    if groups[*a].contains(group_id) {
                        edges.push(system::group_assigned_system(group_id, system_id, *sudo));
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
        self.settle(&lists, outcomes)
    }

    /// `system IS apple_device` where the serial number, trimmed and upper-cased, is
    /// unique among the organization's systems and among its Apple devices (shared VM
    /// placeholder serials never link). An inferred join: the APIs share no id.
    pub(super) fn link_systems_to_apple_devices(&mut self) -> Result<(), IntegrationError> {
        for account in self.accounts()? {
            let systems: Vec<SystemRef> = self.load_json(SYSTEMS, &account.id)?;
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
            for chunk in edges.chunks(EDGE_BATCH) {
                self.add_edges(chunk.to_vec())?;
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
            systems.push(self.system_ids(account)?);
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

    fn system_ids(&self, account: &AccountRef) -> Result<Members, IntegrationError> {
        let systems: Vec<SystemRef> = self.load_json(SYSTEMS, &account.id)?;
        Ok(Members(Some(
            systems.into_iter().map(|SystemRef(id, _, _)| id).collect(),
        )))
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

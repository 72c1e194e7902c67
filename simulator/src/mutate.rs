//! Mutations: known changes to a running simulator's tenant, applied between two runs
//! of an integration so that tests, demos and benchmarks of change detection know
//! exactly what changed.
//!
//! A mutation never edits a generated object in place: it returns a new tenant whose
//! changed organization carries an [`Overlay`] (replaced fields, added and deleted
//! objects) and an edited membership graph; requests already in flight finish on the
//! old tenant. Choices are deterministic: the same tenant, the same sequence of
//! mutations, the same objects changed. Each choice is made so that it changes only
//! what the [`MutationReport`] lists (for instance the group a member leaves is bound
//! to no application, so nobody's application access changes with it).

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value, json};

use crate::rng::Rng;
use crate::tenant::{Collection, DANGLING, Graph, Organization, Overlay, Tenant};

/// Users below this index are the documented edge cases; mutations leave them alone.
const FIRST_ORDINARY_USER: usize = 22;

/// A known change to a simulated tenant (applied to its first organization).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// The change set of the monitoring demo, in one step: one active user suspended,
    /// one new user without MFA (with an email, so it maps to a new `employee`), one
    /// member removed from a group, one group deleted (with its memberships), and one
    /// user newly assigned to an application directly. Each part that the tenant is
    /// too small for is left out of the report.
    Standard,
    /// `percent`% of the users (every `100 / percent`-th, from the first ordinary
    /// one) get a new `jobTitle`: a change set of property updates only, for
    /// benchmarks of change detection.
    RetitleUsers {
        /// 1 to 100.
        percent: u8,
    },
}

impl Mutation {
    /// Parses the name the HTTP endpoint and the CLI take: `standard`, or
    /// `retitle-users:<percent>`.
    pub fn parse(text: &str) -> Result<Mutation, MutationError> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("standard") {
            return Ok(Mutation::Standard);
        }
        if let Some(percent) = text.strip_prefix("retitle-users:") {
            return match percent.trim().parse::<u8>() {
                Ok(p @ 1..=100) => Ok(Mutation::RetitleUsers { percent: p }),
                _ => Err(MutationError::Unknown(text.to_owned())),
            };
        }
        Err(MutationError::Unknown(text.to_owned()))
    }
}

/// Why a mutation was not applied; the tenant is then unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MutationError {
    /// Mutations change generated tenants only (the recorded one is a fixture).
    NotGenerated,
    /// The name is not a known mutation.
    Unknown(String),
    /// The tenant has nothing this mutation could change.
    NothingToChange(&'static str),
}

impl fmt::Display for MutationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MutationError::NotGenerated => {
                f.write_str("mutations apply to generated tenants, not the recorded one")
            }
            MutationError::Unknown(name) => write!(
                f,
                "unknown mutation {name:?} (known: standard, retitle-users:<percent 1-100>)"
            ),
            MutationError::NothingToChange(what) => write!(f, "nothing to change: {what}"),
        }
    }
}

impl std::error::Error for MutationError {}

/// A user the mutation added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedUser {
    pub id: String,
    /// The user's email as served (already lower-case).
    pub email: String,
    /// The `_key` of the `employee` the user maps to: `employee:<email>`.
    pub employee_key: String,
}

/// A membership the mutation removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedMember {
    pub group_id: String,
    pub user_id: String,
}

/// A group the mutation deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedGroup {
    pub id: String,
    /// The users that were its members (their memberships went with it).
    pub member_ids: Vec<String>,
}

/// A direct application binding the mutation added (the user reached the application
/// neither directly nor through a group before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedAssignment {
    pub application_id: String,
    pub user_id: String,
}

/// Exactly what a mutation changed, by id, so tests can compute the expected change
/// set of the next run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MutationReport {
    /// The organization changed.
    pub organization_id: String,
    /// 1 for the first mutation of this simulator, 2 for the second, ...
    pub generation: u64,
    /// Users now `state: SUSPENDED`, `suspended: true` (they were active).
    pub suspended_users: Vec<String>,
    pub added_users: Vec<AddedUser>,
    pub removed_members: Vec<RemovedMember>,
    pub deleted_groups: Vec<DeletedGroup>,
    pub added_assignments: Vec<AddedAssignment>,
    /// Systems whose `fde.active` (and `keyPresent`) turned false; each is a Windows
    /// system, so no Apple device changes with it.
    pub unencrypted_systems: Vec<String>,
    /// Users whose `jobTitle` changed ([`Mutation::RetitleUsers`]).
    pub retitled_users: Vec<String>,
}

impl MutationReport {
    /// The report as JSON (what `POST /_sim/mutate` answers).
    pub fn to_json(&self) -> Value {
        json!({
            "organizationId": self.organization_id,
            "generation": self.generation,
            "suspendedUsers": self.suspended_users,
            "addedUsers": self.added_users.iter().map(|u| json!({
                "id": u.id, "email": u.email, "employeeKey": u.employee_key,
            })).collect::<Vec<_>>(),
            "removedMembers": self.removed_members.iter().map(|m| json!({
                "groupId": m.group_id, "userId": m.user_id,
            })).collect::<Vec<_>>(),
            "deletedGroups": self.deleted_groups.iter().map(|g| json!({
                "id": g.id, "memberIds": g.member_ids,
            })).collect::<Vec<_>>(),
            "addedAssignments": self.added_assignments.iter().map(|a| json!({
                "applicationId": a.application_id, "userId": a.user_id,
            })).collect::<Vec<_>>(),
            "unencryptedSystems": self.unencrypted_systems,
            "retitledUsers": self.retitled_users,
        })
    }
}

impl fmt::Display for MutationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mutation {} of organization {}:",
            self.generation, self.organization_id
        )?;
        for id in &self.suspended_users {
            write!(f, " user {id} suspended;")?;
        }
        for user in &self.added_users {
            write!(f, " user {} added ({}, no MFA);", user.id, user.email)?;
        }
        for m in &self.removed_members {
            write!(f, " user {} removed from group {};", m.user_id, m.group_id)?;
        }
        for g in &self.deleted_groups {
            write!(
                f,
                " group {} deleted ({} members);",
                g.id,
                g.member_ids.len()
            )?;
        }
        for a in &self.added_assignments {
            write!(
                f,
                " user {} assigned application {};",
                a.user_id, a.application_id
            )?;
        }
        for id in &self.unencrypted_systems {
            write!(f, " system {id} encryption turned off;")?;
        }
        if !self.retitled_users.is_empty() {
            write!(f, " {} users retitled;", self.retitled_users.len())?;
        }
        Ok(())
    }
}

/// Applies `mutation` to the first organization of `tenant`: the new tenant and what
/// changed. `generation` numbers this mutation (1 for the first).
pub(crate) fn apply(
    tenant: &Tenant,
    mutation: Mutation,
    generation: u64,
) -> Result<(Tenant, MutationReport), MutationError> {
    let org = tenant
        .organizations()
        .first()
        .ok_or(MutationError::NothingToChange("no organization"))?;
    let mut edit = Edit::new(org, generation)?;
    match mutation {
        Mutation::Standard => edit.standard(),
        Mutation::RetitleUsers { percent } => edit.retitle_users(percent),
    }
    if edit.report == MutationReport::default_for(&edit.report) {
        return Err(MutationError::NothingToChange(
            "the tenant is too small for this mutation",
        ));
    }
    let Edit {
        org,
        graph,
        overlay,
        report,
        ..
    } = edit;
    let changed = org.rebuilt(graph, overlay);
    Ok((tenant.with_organization(0, changed), report))
}

impl MutationReport {
    /// An empty report with the same header (to tell "changed nothing").
    fn default_for(other: &MutationReport) -> MutationReport {
        MutationReport {
            organization_id: other.organization_id.clone(),
            generation: other.generation,
            ..MutationReport::default()
        }
    }
}

/// A mutation being built on a copy of one organization's graph and overlay.
struct Edit<'a> {
    org: &'a Organization,
    graph: Graph,
    overlay: Overlay,
    rng: Rng,
    report: MutationReport,
    /// Users this mutation already touched (each change picks a different one).
    touched: BTreeSet<u32>,
}

impl<'a> Edit<'a> {
    fn new(org: &'a Organization, generation: u64) -> Result<Edit<'a>, MutationError> {
        let generator = org.generator().ok_or(MutationError::NotGenerated)?;
        Ok(Edit {
            org,
            graph: org.graph().clone(),
            overlay: org.overlay().clone(),
            rng: Rng::for_object(generator.seed(), &[0x4D55_5441, generation]),
            report: MutationReport {
                organization_id: org.id().to_owned(),
                generation,
                ..MutationReport::default()
            },
            touched: BTreeSet::new(),
        })
    }

    fn standard(&mut self) {
        self.suspend_a_user();
        self.add_a_user_without_mfa();
        self.remove_a_member_and_delete_a_group();
        self.assign_an_application();
        self.turn_off_encryption();
    }

    /// An encrypted Windows system (past the documented edge cases) loses its disk
    /// encryption.
    fn turn_off_encryption(&mut self) {
        const FIRST_ORDINARY_SYSTEM: usize = 12;
        let systems = self.org.slots(Collection::Systems);
        if systems <= FIRST_ORDINARY_SYSTEM {
            return;
        }
        let span = systems - FIRST_ORDINARY_SYSTEM;
        let start = self.rng.below(span as u64) as usize;
        let patched = |s: usize| {
            self.overlay
                .patches
                .contains_key(&(Collection::Systems, s as u32))
        };
        let found = (0..span)
            .map(|k| FIRST_ORDINARY_SYSTEM + (start + k) % span)
            .find(|&s| {
                !patched(s)
                    && self
                        .org
                        .slot_object(Collection::Systems, s)
                        .is_some_and(|system| {
                            system["osFamily"] == "windows" && system["fde"]["active"] == true
                        })
            });
        let Some(s) = found else { return };
        self.overlay.patches.insert(
            (Collection::Systems, s as u32),
            Map::from_iter([(
                "fde".to_owned(),
                json!({"active": false, "keyPresent": false}),
            )]),
        );
        if let Some(id) = self.org.slot_id(Collection::Systems, s) {
            self.report.unencrypted_systems.push(id);
        }
    }

    /// The user in slot `u` with this edit's patches applied.
    fn user(&self, u: usize) -> Option<Value> {
        let mut user = self.org.slot_object(Collection::Users, u)?;
        if let (Some(patch), Value::Object(fields)) = (
            self.overlay.patches.get(&(Collection::Users, u as u32)),
            &mut user,
        ) {
            fields.extend(patch.clone());
        }
        Some(user)
    }

    /// An active person with an email, not an edge case, not touched yet.
    fn is_ordinary_active_user(&self, u: usize) -> bool {
        if u < FIRST_ORDINARY_USER || self.touched.contains(&(u as u32)) {
            return false;
        }
        let Some(user) = self.user(u) else {
            return false;
        };
        let text = |field: &str| user.get(field).and_then(Value::as_str).unwrap_or("");
        let flag = |field: &str| user.get(field).and_then(Value::as_bool).unwrap_or(false);
        let person = !["service", "bot", "generic"]
            .iter()
            .any(|kind| text("employeeType").eq_ignore_ascii_case(kind));
        text("state") == "ACTIVATED"
            && flag("activated")
            && !flag("suspended")
            && !text("email").trim().is_empty()
            && person
    }

    /// The first user from a seeded start (wrapping) that `accept`s.
    fn pick_user(&mut self, accept: impl Fn(&Self, usize) -> bool) -> Option<usize> {
        let users = self.org.slots(Collection::Users);
        if users <= FIRST_ORDINARY_USER {
            return None;
        }
        let span = users - FIRST_ORDINARY_USER;
        let start = self.rng.below(span as u64) as usize;
        (0..span)
            .map(|k| FIRST_ORDINARY_USER + (start + k) % span)
            .find(|&u| accept(self, u))
    }

    fn patch_user(&mut self, u: usize, fields: Value) {
        let Value::Object(fields) = fields else {
            return;
        };
        self.overlay
            .patches
            .entry((Collection::Users, u as u32))
            .or_default()
            .extend(fields);
        self.touched.insert(u as u32);
    }

    fn suspend_a_user(&mut self) {
        let Some(u) = self.pick_user(|edit, u| edit.is_ordinary_active_user(u)) else {
            return;
        };
        self.patch_user(u, json!({"state": "SUSPENDED", "suspended": true}));
        if let Some(id) = self.org.slot_id(Collection::Users, u) {
            self.report.suspended_users.push(id);
        }
    }

    fn add_a_user_without_mfa(&mut self) {
        let Some(generator) = self.org.generator() else {
            return;
        };
        // Generated users are pure functions of their index: the next index past
        // every user so far gives a fresh one whose id sorts last.
        let index = generator.count(Collection::Users)
            + self
                .overlay
                .added
                .get(&Collection::Users)
                .map_or(0, Vec::len);
        let mut user = generator.object(Collection::Users, index);
        let Value::Object(fields) = &mut user else {
            return;
        };
        let username = fields
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or("new.user")
            .to_owned();
        let email = format!("{username}@{}", generator.domain()).to_lowercase();
        let not_enrolled = json!({"overallStatus": "NOT_ENROLLED", "totpStatus": "NOT_ENROLLED",
                                  "webAuthnStatus": "NOT_ENROLLED", "pushStatus": "NOT_ENROLLED"});
        for (key, value) in [
            ("email", Value::from(email.clone())),
            ("state", "ACTIVATED".into()),
            ("activated", true.into()),
            ("suspended", false.into()),
            ("account_locked", false.into()),
            ("account_locked_date", Value::Null),
            ("employeeType", "Full-Time".into()),
            ("mfa", json!({"configured": false, "exclusion": false})),
            ("mfaEnrollment", not_enrolled),
            ("totp_enabled", false.into()),
            ("enable_user_portal_multifactor", false.into()),
        ] {
            fields.insert(key.to_owned(), value);
        }
        let id = generator.id(Collection::Users, index);
        self.overlay
            .added
            .entry(Collection::Users)
            .or_default()
            .push(user);
        self.report.added_users.push(AddedUser {
            id,
            employee_key: format!("employee:{email}"),
            email,
        });
    }

    /// Groups bound to nothing, with at least two user members, highest index first:
    /// changing them changes no application or system access.
    fn quiet_groups(&self) -> Vec<usize> {
        let bound: BTreeSet<u32> = self
            .graph
            .app_groups
            .iter()
            .flatten()
            .copied()
            .chain(self.graph.directory.bound_user_groups())
            .collect();
        let groups = self.org.slots(Collection::Groups);
        (0..groups)
            .rev()
            .filter(|&g| {
                self.org.slot_id(Collection::Groups, g).is_some()
                    && !bound.contains(&(g as u32))
                    && self.graph.members.get(g).is_some_and(|members| {
                        members.iter().filter(|&&m| m & DANGLING == 0).count() >= 2
                    })
            })
            .collect()
    }

    fn remove_a_member_and_delete_a_group(&mut self) {
        let quiet = self.quiet_groups();
        if let Some(&g) = quiet.first() {
            let members = &self.graph.members[g];
            let users: Vec<u32> = members
                .iter()
                .copied()
                .filter(|&m| m & DANGLING == 0 && !self.touched.contains(&m))
                .collect();
            if !users.is_empty() {
                let u = users[self.rng.below(users.len() as u64) as usize];
                self.graph.members[g].retain(|&m| m != u);
                self.touched.insert(u);
                if let (Some(group_id), Some(user_id)) = (
                    self.org.slot_id(Collection::Groups, g),
                    self.org.slot_id(Collection::Users, u as usize),
                ) {
                    self.report
                        .removed_members
                        .push(RemovedMember { group_id, user_id });
                }
            }
        }
        if let Some(&g) = quiet.get(1) {
            let member_ids = self.graph.members[g]
                .iter()
                .filter(|&&m| m & DANGLING == 0)
                .filter_map(|&m| self.org.slot_id(Collection::Users, m as usize))
                .collect();
            let Some(id) = self.org.slot_id(Collection::Groups, g) else {
                return;
            };
            self.graph.members[g].clear();
            let deleted = self.overlay.deleted.entry(Collection::Groups).or_default();
            deleted.push(g as u32);
            deleted.sort_unstable();
            self.report
                .deleted_groups
                .push(DeletedGroup { id, member_ids });
        }
    }

    fn assign_an_application(&mut self) {
        let apps = self.graph.app_direct_users.len();
        if apps == 0 {
            return;
        }
        let start = self.rng.below(apps as u64) as usize;
        for k in 0..apps {
            let a = (start + k) % apps;
            let reaching: BTreeSet<u32> = self.graph.app_direct_users[a]
                .iter()
                .copied()
                .chain(self.graph.app_groups[a].iter().flat_map(|&g| {
                    self.graph
                        .members
                        .get(g as usize)
                        .into_iter()
                        .flatten()
                        .copied()
                }))
                .collect();
            let Some(u) = self.pick_user(|edit, u| {
                !reaching.contains(&(u as u32)) && edit.is_ordinary_active_user(u)
            }) else {
                continue;
            };
            let direct = &mut self.graph.app_direct_users[a];
            direct.push(u as u32);
            direct.sort_unstable();
            self.touched.insert(u as u32);
            if let (Some(application_id), Some(user_id)) = (
                self.org.slot_id(Collection::Applications, a),
                self.org.slot_id(Collection::Users, u),
            ) {
                self.report.added_assignments.push(AddedAssignment {
                    application_id,
                    user_id,
                });
            }
            return;
        }
    }

    fn retitle_users(&mut self, percent: u8) {
        let step = (100 / usize::from(percent.clamp(1, 100))).max(1);
        let users = self.org.slots(Collection::Users);
        let title = format!("Retitled in mutation {}", self.report.generation);
        let mut u = FIRST_ORDINARY_USER.min(users);
        while u < users {
            self.patch_user(u, json!({"jobTitle": title}));
            if let Some(id) = self.org.slot_id(Collection::Users, u) {
                self.report.retitled_users.push(id);
            }
            u += step;
        }
    }
}

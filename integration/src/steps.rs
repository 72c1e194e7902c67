//! The step table (what `describe()` declares) and the step bodies: users, groups and
//! applications here, the rest of the directory (Apple MDM, systems, system groups,
//! administrators, policies) in `directory`.
//!
//! Steps hand data to later steps through the host's key-value store: the accounts
//! found, and per organization the ids of its groups and applications. Every page is
//! converted and handed to the host as it arrives, so the guest holds one page at a time.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::client::{Client, ListRequest, Page};
use crate::config::Config;
use crate::convert::{ConvertError, Object, account, application, employee, group, user};
use crate::error::IntegrationError;
use crate::host::Host;
use crate::model::{Entity, MappedRelationship, Relationship};
use crate::transport::{Level, Logger, Transport};

mod directory;

pub const FETCH_ACCOUNTS: &str = "fetch-accounts";
pub const FETCH_USERS: &str = "fetch-users";
pub const FETCH_GROUPS: &str = "fetch-groups";
pub const FETCH_GROUP_MEMBERS: &str = "fetch-group-members";
pub const FETCH_APPLICATIONS: &str = "fetch-applications";
pub const FETCH_APPLICATION_ASSIGNMENTS: &str = "fetch-application-assignments";
pub const FETCH_APPLE_MDM: &str = "fetch-apple-mdm";
pub const FETCH_APPLE_DEVICES: &str = "fetch-apple-devices";
pub const FETCH_SYSTEMS: &str = "fetch-systems";
pub const FETCH_SYSTEM_GROUPS: &str = "fetch-system-groups";
pub const FETCH_SYSTEM_GROUP_MEMBERS: &str = "fetch-system-group-members";
pub const FETCH_SYSTEM_GROUP_BINDINGS: &str = "fetch-system-group-bindings";
pub const FETCH_SYSTEM_USERS: &str = "fetch-system-users";
pub const LINK_SYSTEMS_TO_APPLE_DEVICES: &str = "link-systems-to-apple-devices";
pub const FETCH_ADMINISTRATORS: &str = "fetch-administrators";
pub const FETCH_POLICIES: &str = "fetch-policies";
pub const FETCH_POLICY_ASSIGNMENTS: &str = "fetch-policy-assignments";

/// Whether a declared type is an entity or a relationship type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Entity,
    Relationship,
}

/// A type a step emits: `_type`, `_class`, kind.
pub type DeclaredType = (&'static str, &'static str, Kind);

/// One step of the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepSpec {
    pub id: &'static str,
    pub name: &'static str,
    pub depends_on: &'static [&'static str],
    pub declared_types: &'static [DeclaredType],
}

/// The steps, in an order that respects their dependencies (`data-model.md`).
pub const STEPS: &[StepSpec] = &[
    StepSpec {
        id: FETCH_ACCOUNTS,
        name: "Fetch Accounts",
        depends_on: &[],
        declared_types: &[("jumpcloud_account", "Account", Kind::Entity)],
    },
    StepSpec {
        id: FETCH_USERS,
        name: "Fetch Users",
        depends_on: &[FETCH_ACCOUNTS],
        declared_types: &[
            ("jumpcloud_user", "User", Kind::Entity),
            ("jumpcloud_account_has_user", "HAS", Kind::Relationship),
            ("jumpcloud_user_is_person", "IS", Kind::Relationship),
        ],
    },
    StepSpec {
        id: FETCH_GROUPS,
        name: "Fetch User Groups",
        depends_on: &[FETCH_ACCOUNTS],
        declared_types: &[
            ("jumpcloud_group", "Group", Kind::Entity),
            ("jumpcloud_account_has_group", "HAS", Kind::Relationship),
        ],
    },
    StepSpec {
        id: FETCH_GROUP_MEMBERS,
        name: "Fetch User Group Members",
        depends_on: &[FETCH_GROUPS, FETCH_USERS],
        declared_types: &[("jumpcloud_group_has_user", "HAS", Kind::Relationship)],
    },
    StepSpec {
        id: FETCH_APPLICATIONS,
        name: "Fetch Applications",
        depends_on: &[FETCH_ACCOUNTS],
        declared_types: &[
            ("jumpcloud_application", "Application", Kind::Entity),
            (
                "jumpcloud_account_has_application",
                "HAS",
                Kind::Relationship,
            ),
        ],
    },
    StepSpec {
        id: FETCH_APPLICATION_ASSIGNMENTS,
        name: "Fetch Application Assignments",
        depends_on: &[FETCH_APPLICATIONS, FETCH_USERS, FETCH_GROUPS],
        declared_types: &[
            (
                "jumpcloud_user_assigned_application",
                "ASSIGNED",
                Kind::Relationship,
            ),
            (
                "jumpcloud_group_assigned_application",
                "ASSIGNED",
                Kind::Relationship,
            ),
        ],
    },
    StepSpec {
        id: FETCH_APPLE_MDM,
        name: "Fetch Apple MDM",
        depends_on: &[FETCH_ACCOUNTS],
        declared_types: &[
            ("jumpcloud_apple_mdm", "Configuration", Kind::Entity),
            ("jumpcloud_account_has_apple_mdm", "HAS", Kind::Relationship),
        ],
    },
    StepSpec {
        id: FETCH_APPLE_DEVICES,
        name: "Fetch Apple Devices",
        depends_on: &[FETCH_APPLE_MDM],
        declared_types: &[
            ("jumpcloud_apple_device", "Device", Kind::Entity),
            ("jumpcloud_apple_device_has_mdm", "HAS", Kind::Relationship),
        ],
    },
    StepSpec {
        id: FETCH_SYSTEMS,
        name: "Fetch Systems",
        depends_on: &[FETCH_ACCOUNTS],
        declared_types: &[
            ("jumpcloud_system", "Host", Kind::Entity),
            ("jumpcloud_account_has_system", "HAS", Kind::Relationship),
        ],
    },
    StepSpec {
        id: FETCH_SYSTEM_GROUPS,
        name: "Fetch System Groups",
        depends_on: &[FETCH_ACCOUNTS],
        declared_types: &[
            ("jumpcloud_system_group", "Group", Kind::Entity),
            (
                "jumpcloud_account_has_system_group",
                "HAS",
                Kind::Relationship,
            ),
        ],
    },
    StepSpec {
        id: FETCH_SYSTEM_GROUP_MEMBERS,
        name: "Fetch System Group Members",
        depends_on: &[FETCH_SYSTEM_GROUPS, FETCH_SYSTEMS],
        declared_types: &[(
            "jumpcloud_system_group_has_system",
            "HAS",
            Kind::Relationship,
        )],
    },
    StepSpec {
        id: FETCH_SYSTEM_GROUP_BINDINGS,
        name: "Fetch System Group Bindings",
        depends_on: &[FETCH_SYSTEM_GROUPS, FETCH_USERS, FETCH_GROUPS],
        declared_types: &[
            (
                "jumpcloud_group_assigned_system_group",
                "ASSIGNED",
                Kind::Relationship,
            ),
            (
                "jumpcloud_user_assigned_system_group",
                "ASSIGNED",
                Kind::Relationship,
            ),
        ],
    },
    StepSpec {
        id: FETCH_SYSTEM_USERS,
        name: "Fetch System Users",
        depends_on: &[FETCH_SYSTEMS, FETCH_USERS, FETCH_GROUPS],
        declared_types: &[
            (
                "jumpcloud_user_assigned_system",
                "ASSIGNED",
                Kind::Relationship,
            ),
            (
                "jumpcloud_group_assigned_system",
                "ASSIGNED",
                Kind::Relationship,
            ),
            ("jumpcloud_user_owns_system", "OWNS", Kind::Relationship),
        ],
    },
    StepSpec {
        id: LINK_SYSTEMS_TO_APPLE_DEVICES,
        name: "Link Systems to Apple Devices",
        depends_on: &[FETCH_SYSTEMS, FETCH_APPLE_DEVICES],
        declared_types: &[("jumpcloud_system_is_apple_device", "IS", Kind::Relationship)],
    },
    StepSpec {
        id: FETCH_ADMINISTRATORS,
        name: "Fetch Administrators",
        // `fetch-users` too (the addendum names only accounts): user mappings are
        // resolved first, so an email shared by a user and an administrator gives the
        // employee the user's names, even when steps run side by side.
        depends_on: &[FETCH_ACCOUNTS, FETCH_USERS],
        declared_types: &[
            ("jumpcloud_administrator", "User", Kind::Entity),
            (
                "jumpcloud_account_has_administrator",
                "HAS",
                Kind::Relationship,
            ),
            (
                "jumpcloud_administrator_is_person",
                "IS",
                Kind::Relationship,
            ),
        ],
    },
    StepSpec {
        id: FETCH_POLICIES,
        name: "Fetch Policies",
        depends_on: &[FETCH_ACCOUNTS],
        declared_types: &[
            ("jumpcloud_policy", "ControlPolicy", Kind::Entity),
            ("jumpcloud_account_has_policy", "HAS", Kind::Relationship),
        ],
    },
    StepSpec {
        id: FETCH_POLICY_ASSIGNMENTS,
        name: "Fetch Policy Assignments",
        depends_on: &[FETCH_POLICIES, FETCH_SYSTEMS, FETCH_SYSTEM_GROUPS],
        declared_types: &[
            (
                "jumpcloud_policy_enforces_system",
                "ENFORCES",
                Kind::Relationship,
            ),
            (
                "jumpcloud_policy_enforces_system_group",
                "ENFORCES",
                Kind::Relationship,
            ),
        ],
    },
];

/// What a finished step reports besides its objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepReport {
    pub http_requests: u32,
    pub http_retries: u32,
    pub skipped_records: u32,
    /// Parsing and converting provider data, in nanoseconds.
    pub convert_nanos: u64,
}

/// An organization the job reads, as handed from `fetch-accounts` to later steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRef {
    /// Organization id, also the account's `_key`.
    pub id: String,
    /// Whether its data is read with `x-org-id` (multi-organization keys, or an
    /// explicitly selected organization).
    pub select_with_header: bool,
}

impl AccountRef {
    fn org_header(&self) -> Option<&str> {
        self.select_with_header.then_some(self.id.as_str())
    }
}

const ACCOUNTS_DATA: &str = "accounts";
/// Step data: the group ids of an organization (`groups/<org id>`).
const GROUP_IDS: &str = "groups";
/// Step data: the application ids of an organization.
const APPLICATION_IDS: &str = "applications";
/// Step data: the user ids of an organization (only with several organizations).
const USER_IDS: &str = "users";

fn ids_data_key(kind: &str, org_id: &str) -> String {
    format!("{kind}/{org_id}")
}

/// Everything a step body needs.
pub struct StepContext<'a, T: Transport, H: Host> {
    pub config: &'a Config,
    pub transport: &'a mut T,
    pub host: &'a mut H,
    pub log: &'a dyn Logger,
    /// Requests in flight at once.
    pub concurrency: usize,
}

/// Checks configuration and credentials with one cheap request.
pub fn validate<T: Transport>(
    config: &Config,
    transport: &mut T,
    log: &dyn Logger,
) -> Result<(), IntegrationError> {
    Client::new(config, transport, log).probe()
}

/// Runs one step by id.
pub fn execute_step<T: Transport, H: Host>(
    step_id: &str,
    cx: StepContext<'_, T, H>,
) -> Result<StepReport, IntegrationError> {
    let StepContext {
        config,
        transport,
        host,
        log,
        concurrency,
    } = cx;
    let mut client = Client::new(config, transport, log).with_concurrency(concurrency);
    let mut run = StepRun {
        step_id,
        config,
        host,
        log,
        skipped: 0,
        convert_time: Duration::ZERO,
    };
    let result = match step_id {
        FETCH_ACCOUNTS => run.fetch_accounts(&mut client),
        FETCH_USERS => run.fetch_users(&mut client),
        FETCH_GROUPS => run.fetch_groups(&mut client),
        FETCH_GROUP_MEMBERS => run.fetch_group_members(&mut client),
        FETCH_APPLICATIONS => run.fetch_applications(&mut client),
        FETCH_APPLICATION_ASSIGNMENTS => run.fetch_application_assignments(&mut client),
        FETCH_APPLE_MDM => run.fetch_apple_mdm(&mut client),
        FETCH_APPLE_DEVICES => run.fetch_apple_devices(&mut client),
        FETCH_SYSTEMS => run.fetch_systems(&mut client),
        FETCH_SYSTEM_GROUPS => run.fetch_system_groups(&mut client),
        FETCH_SYSTEM_GROUP_MEMBERS => run.fetch_system_group_members(&mut client),
        FETCH_SYSTEM_GROUP_BINDINGS => run.fetch_system_group_bindings(&mut client),
        FETCH_SYSTEM_USERS => run.fetch_system_users(&mut client),
        LINK_SYSTEMS_TO_APPLE_DEVICES => run.link_systems_to_apple_devices(),
        FETCH_ADMINISTRATORS => run.fetch_administrators(&mut client),
        FETCH_POLICIES => run.fetch_policies(&mut client),
        FETCH_POLICY_ASSIGNMENTS => run.fetch_policy_assignments(&mut client),
        other => Err(IntegrationError::Internal(format!(
            "unknown step `{other}`"
        ))),
    };
    let stats = client.stats();
    let parse = client.parse_time();
    result.map(|()| StepReport {
        http_requests: stats.requests,
        http_retries: stats.retries,
        skipped_records: run.skipped,
        convert_nanos: u64::try_from((parse + run.convert_time).as_nanos()).unwrap_or(u64::MAX),
    })
}

/// The state of one running step.
struct StepRun<'a, H: Host> {
    step_id: &'a str,
    config: &'a Config,
    host: &'a mut H,
    log: &'a dyn Logger,
    skipped: u32,
    /// Time spent converting records (not in host calls).
    convert_time: Duration,
}

/// Objects converted from one page, added to the graph together.
#[derive(Default)]
struct Batch {
    entities: Vec<Entity>,
    relationships: Vec<Relationship>,
    mapped: Vec<MappedRelationship>,
}

impl<H: Host> StepRun<'_, H> {
    fn fetch_accounts<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        let mut organizations: Vec<Object> = Vec::new();
        // Organizations are few (one per customer of an MSP); collect them so the
        // choice of `x-org-id` can depend on how many there are.
        client.for_each_page(&ListRequest::organizations(), |page| {
            organizations.extend(page.items);
            Ok(())
        })?;
        if let Some(wanted) = &self.config.org_id {
            organizations.retain(|org| record_id(org).as_deref() == Some(wanted.as_str()));
            if organizations.is_empty() {
                return Err(IntegrationError::invalid_config(
                    crate::config::ORG_ID,
                    "the API key cannot see this organization",
                ));
            }
        }
        let select_with_header = self.config.org_id.is_some() || organizations.len() > 1;
        let mut batch = Batch::default();
        let mut accounts = Vec::new();
        for org in &organizations {
            let entity = account::account_entity(org, &self.config.base_url)
                .map_err(|e| convert_failure("/api/organizations", e))?;
            if self.host.has_key(&entity.key)
                || accounts.iter().any(|a: &AccountRef| a.id == entity.key)
            {
                self.skip_duplicate(&entity.key);
                continue;
            }
            accounts.push(AccountRef {
                id: entity.key.clone(),
                select_with_header,
            });
            batch.entities.push(entity);
        }
        self.add(batch)?;
        let accounts = serde_json::to_string(&accounts)
            .map_err(|e| IntegrationError::Internal(e.to_string()))?;
        self.host.set_data(ACCOUNTS_DATA, &accounts);
        Ok(())
    }

    fn fetch_users<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        let mut done = 0;
        let accounts = self.accounts()?;
        // With several organizations, later steps check that a user they link belongs
        // to the organization they read (nothing is linked across organizations).
        let keep_ids = accounts.len() > 1;
        for account in accounts {
            let list = ListRequest::users(account.org_header());
            let mut ids = Vec::new();
            client.for_each_page(&list, |page| {
                done += page.items.len() as u64;
                let config = self.config;
                let entities = self.convert_page(&list.path, &page, |item, raw| {
                    user::user_entity_from(item, raw, &config.base_url)
                })?;
                let entities = self.unseen(entities);
                let (batch, spent) = timed(|| {
                    let mut batch = Batch::default();
                    for entity in entities {
                        if keep_ids {
                            ids.push(entity.key.clone());
                        }
                        batch
                            .relationships
                            .push(account::account_has(&account.id, &entity));
                        if let Some(mapping) = employee::employee_mapping(&entity) {
                            batch.mapped.push(mapping);
                        }
                        batch.entities.push(entity);
                    }
                    batch
                });
                self.convert_time += spent;
                self.add(batch)?;
                self.host.progress(self.step_id, done, page.total);
                Ok(())
            })?;
            if keep_ids {
                self.store_ids(USER_IDS, &account.id, &ids)?;
            }
        }
        Ok(())
    }

    fn fetch_groups<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        self.fetch_owned(
            client,
            GROUP_IDS,
            ListRequest::user_groups,
            |item, raw, config, _account| group::group_entity_from(item, raw, &config.base_url),
        )
    }

    /// Pages through a list of objects owned by each account (groups, applications,
    /// system groups, policies, Apple MDMs): adds them with their account's `HAS`
    /// edge, and keeps their ids for later steps.
    fn fetch_owned<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
        kind: &str,
        list_for: fn(Option<&str>) -> ListRequest,
        convert: impl Fn(&Object, &str, &Config, &str) -> Result<Entity, ConvertError>,
    ) -> Result<(), IntegrationError> {
        for account in self.accounts()? {
            let list = list_for(account.org_header());
            let mut ids = Vec::new();
            self.page_through(client, &list, &mut |run: &mut Self, page: Page| {
                let config = run.config;
                let entities = run.convert_page(&list.path, &page, |item, raw| {
                    convert(item, raw, config, &account.id)
                })?;
                let entities = run.unseen(entities);
                let (batch, spent) = timed(|| account_batch(&account.id, entities, &mut ids));
                run.convert_time += spent;
                run.add(batch)?;
                run.host.progress(run.step_id, ids.len() as u64, page.total);
                Ok(())
            })?;
            self.store_ids(kind, &account.id, &ids)?;
        }
        Ok(())
    }

    /// Pages through one list. A sort the API refuses (400 before any page: `sort=id`
    /// is undocumented on some v2 lists) is dropped once; de-duplication then covers
    /// what an unsorted list may repeat.
    fn page_through<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
        list: &ListRequest,
        on_page: &mut dyn FnMut(&mut Self, Page) -> Result<(), IntegrationError>,
    ) -> Result<(), IntegrationError> {
        let mut delivered = false;
        let result = client.for_each_page(list, |page| {
            delivered = true;
            on_page(self, page)
        });
        match result {
            Err(IntegrationError::ProviderApi { status: 400, .. })
                if !delivered && list.sort.is_some() =>
            {
                self.log.log(
                    Level::Warn,
                    "the API refused the sort; reading the list unsorted",
                    &[("endpoint", list.path.as_str())],
                );
                client.for_each_page(&list.unsorted(), |page| on_page(self, page))
            }
            other => other,
        }
    }

    fn fetch_group_members<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        let mut lists = Vec::new();
        let mut group_ids = Vec::new();
        for account in self.accounts()? {
            for group_id in self.load_ids(GROUP_IDS, &account.id)? {
                lists.push(ListRequest::group_members(&group_id, account.org_header()));
                group_ids.push(group_id);
            }
        }
        let mut pages = 0;
        let outcomes = client.for_each_page_of_many(&lists, |index, page| {
            let group_id = &group_ids[index];
            let (edges, spent) = timed(|| {
                let mut seen = HashSet::new();
                let mut edges = Vec::new();
                for item in &page.items {
                    let member = group::member_user_id(item)
                        .map_err(|e| convert_failure(&lists[index].path, e))?;
                    // The members route cannot be sorted, so a member may show up twice.
                    if let Some(user_id) = member
                        && seen.insert(user_id.clone())
                    {
                        edges.push(group::group_has_user(group_id, &user_id));
                    }
                }
                Ok::<_, IntegrationError>(edges)
            });
            self.convert_time += spent;
            let batch = Batch {
                relationships: self.unseen_edges(edges?),
                ..Batch::default()
            };
            self.add(batch)?;
            pages += 1;
            self.host.progress(self.step_id, pages, None);
            Ok(())
        })?;
        self.settle(&lists, outcomes)
    }

    fn fetch_applications<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        // Applications are rebuilt, not passed through: their `config` (IdP keys) must go.
        self.fetch_owned(
            client,
            APPLICATION_IDS,
            ListRequest::applications,
            |item, _raw, config, _account| application::application_entity(item, &config.base_url),
        )
    }

    fn fetch_application_assignments<T: Transport>(
        &mut self,
        client: &mut Client<'_, T>,
    ) -> Result<(), IntegrationError> {
        // Two lists per application: its users and its groups.
        let mut lists = Vec::new();
        let mut targets = Vec::new();
        for account in self.accounts()? {
            for app_id in self.load_ids(APPLICATION_IDS, &account.id)? {
                lists.push(ListRequest::application_users(
                    &app_id,
                    account.org_header(),
                ));
                targets.push((app_id.clone(), Assignee::User));
                lists.push(ListRequest::application_groups(
                    &app_id,
                    account.org_header(),
                ));
                targets.push((app_id, Assignee::Group));
            }
        }
        let mut pages = 0;
        let outcomes = client.for_each_page_of_many(&lists, |index, page: Page| {
            let (app_id, assignee) = &targets[index];
            let (edges, spent) = timed(|| {
                let mut seen = HashSet::new();
                let mut edges = Vec::new();
                for item in &page.items {
                    let binding = application::binding(item)
                        .map_err(|e| convert_failure(&lists[index].path, e))?;
                    let Some(binding) = binding else {
                        continue;
                    };
                    if !seen.insert(binding.id.clone()) {
                        continue;
                    }
                    edges.push(match assignee {
                        Assignee::User => application::user_assigned_application(
                            &binding.id,
                            app_id,
                            binding.direct,
                        ),
                        Assignee::Group => application::group_assigned_application(
                            &binding.id,
                            app_id,
                            binding.direct,
                        ),
                    });
                }
                Ok::<_, IntegrationError>(edges)
            });
            self.convert_time += spent;
            let batch = Batch {
                relationships: self.unseen_edges(edges?),
                ..Batch::default()
            };
            self.add(batch)?;
            pages += 1;
            self.host.progress(self.step_id, pages, None);
            Ok(())
        })?;
        self.settle(&lists, outcomes)
    }

    /// Converts a page's records, timing only the conversion. A record that cannot be
    /// read fails the step (see [`convert_failure`]).
    fn convert_page<T>(
        &mut self,
        endpoint: &str,
        page: &Page,
        convert: impl Fn(&Object, &str) -> Result<T, ConvertError>,
    ) -> Result<Vec<T>, IntegrationError> {
        let (converted, spent) = timed(|| {
            page.items
                .iter()
                .zip(&page.raw)
                .map(|(item, raw)| convert(item, raw.get()))
                .collect::<Result<Vec<_>, _>>()
        });
        self.convert_time += spent;
        converted.map_err(|e| convert_failure(endpoint, e))
    }

    /// Entities not in the graph yet (the key guard): a list that shifts while it is
    /// paged can hand out a record twice, on two pages or on one.
    fn unseen(&mut self, entities: Vec<Entity>) -> Vec<Entity> {
        let mut fresh: Vec<Entity> = Vec::with_capacity(entities.len());
        let mut batch = HashSet::new();
        for entity in entities {
            if self.host.has_key(&entity.key) || !batch.insert(entity.key.clone()) {
                self.skip_duplicate(&entity.key);
            } else {
                fresh.push(entity);
            }
        }
        fresh
    }

    /// Edges not in the graph yet, each once (an unsortable list can repeat an item
    /// across pages, and many paths can name the same binding).
    fn unseen_edges(&self, edges: Vec<Relationship>) -> Vec<Relationship> {
        let mut batch = HashSet::new();
        edges
            .into_iter()
            .filter(|edge| !self.host.has_key(&edge.key) && batch.insert(edge.key.clone()))
            .collect()
    }

    /// Adds one page's objects; counts relationships the host dropped as skipped.
    fn add(&mut self, batch: Batch) -> Result<(), IntegrationError> {
        if !batch.entities.is_empty() {
            self.host
                .add_entities(batch.entities)
                .map_err(IntegrationError::Graph)?;
        }
        if !batch.relationships.is_empty() {
            let outcome = self
                .host
                .add_relationships(batch.relationships)
                .map_err(IntegrationError::Graph)?;
            self.skipped += outcome.dropped;
        }
        if !batch.mapped.is_empty() {
            self.host
                .add_mapped_relationships(batch.mapped)
                .map_err(IntegrationError::Graph)?;
        }
        Ok(())
    }

    /// Ends a step over many lists: a list that vanished (404, e.g. a group deleted
    /// during the run) is skipped with a warning; any other failure fails the step,
    /// after every other list was collected.
    fn settle(
        &mut self,
        lists: &[ListRequest],
        outcomes: Vec<Result<(), IntegrationError>>,
    ) -> Result<(), IntegrationError> {
        let mut first_error = None;
        for (list, outcome) in lists.iter().zip(outcomes) {
            match outcome {
                Ok(()) => {}
                Err(IntegrationError::ProviderApi { status: 404, .. }) => {
                    self.skipped += 1;
                    self.log.log(
                        Level::Warn,
                        "skipped a list that no longer exists",
                        &[("endpoint", list.path.as_str())],
                    );
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn skip_duplicate(&mut self, key: &str) {
        self.skipped += 1;
        self.log.log(
            Level::Debug,
            "skipped a record already collected",
            &[("key", key)],
        );
    }

    fn accounts(&self) -> Result<Vec<AccountRef>, IntegrationError> {
        match self.host.get_data(ACCOUNTS_DATA) {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| IntegrationError::Internal(format!("stored accounts: {e}"))),
            None => {
                self.log.log(
                    Level::Warn,
                    "no accounts were collected; nothing to read",
                    &[],
                );
                Ok(Vec::new())
            }
        }
    }

    fn store_ids(
        &mut self,
        kind: &str,
        org_id: &str,
        ids: &[String],
    ) -> Result<(), IntegrationError> {
        self.store_json(kind, org_id, &ids)
    }

    fn load_ids(&self, kind: &str, org_id: &str) -> Result<Vec<String>, IntegrationError> {
        self.load_json(kind, org_id)
    }

    /// Hands `value` to later steps under `<kind>/<org id>`.
    fn store_json<T: Serialize + ?Sized>(
        &mut self,
        kind: &str,
        org_id: &str,
        value: &T,
    ) -> Result<(), IntegrationError> {
        let json =
            serde_json::to_string(value).map_err(|e| IntegrationError::Internal(e.to_string()))?;
        self.host.set_data(&ids_data_key(kind, org_id), &json);
        Ok(())
    }

    /// What an earlier step stored under `<kind>/<org id>`; empty when it stored
    /// nothing (it failed before, or found nothing).
    fn load_json<T: serde::de::DeserializeOwned + Default>(
        &self,
        kind: &str,
        org_id: &str,
    ) -> Result<T, IntegrationError> {
        match self.host.get_data(&ids_data_key(kind, org_id)) {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| IntegrationError::Internal(format!("stored {kind}: {e}"))),
            None => Ok(T::default()),
        }
    }
}

/// Runs `f` and measures it.
fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let started = Instant::now();
    let result = f();
    (result, started.elapsed())
}

/// Entities of one account and their `HAS` edges; records their ids.
fn account_batch(account_id: &str, entities: Vec<Entity>, ids: &mut Vec<String>) -> Batch {
    let mut batch = Batch::default();
    for entity in entities {
        ids.push(entity.key.clone());
        batch
            .relationships
            .push(account::account_has(account_id, &entity));
        batch.entities.push(entity);
    }
    batch
}

#[derive(Debug, Clone, Copy)]
enum Assignee {
    User,
    Group,
}

/// A record the converters cannot read makes the response invalid: fail the step
/// loudly (its types become partial) rather than emit a silently thinner graph.
fn convert_failure(endpoint: &str, error: ConvertError) -> IntegrationError {
    IntegrationError::invalid_response(endpoint, error.to_string())
}

fn record_id(object: &Object) -> Option<String> {
    ["id", "_id"]
        .iter()
        .find_map(|field| object.get(*field)?.as_str().map(str::to_owned))
}

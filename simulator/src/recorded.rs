//! The recorded dataset: real JumpCloud answers from `fixtures/jumpcloud-recorded/`
//! (compiled in), turned back into objects and served through the same paging
//! handlers as generated data.
//!
//! - Organizations, users, groups and applications are the `results` (v1) or array
//!   items (v2) of the recorded list answers. The same object recorded more than once
//!   is kept once, in first-seen position, with its **latest** version: the user is
//!   served as recorded in 2021-11 (`state: "ACTIVATED"` with `activated: false`),
//!   not in its 2021-02 form without `state`.
//! - `/api/v2/applications/{id}/users` and `/usergroups` serve the recorded items
//!   verbatim (including their `compiledAttributes` and path attributes).
//! - There is no recorded `/api/v2/usergroups/{id}/members` answer. Members are
//!   **implied by the traversal paths**: a path `[group, user]` makes the user a
//!   member of the group. So "My Test Group" has the one user and "All Users" has
//!   none. Bindings likewise: a one-hop user path is a direct binding, the groups of
//!   `/usergroups` are bound groups.
//! - Application `config` stays as recorded: the string `"[REDACTED]"`.
//! - The Apple MDM (`fetch-apple-mdm.json`) and its one device
//!   (`fetch-apple-devices.json`) are served under the recorded organization, though
//!   they were recorded in another one (their `organization` says so): the integration
//!   must link an MDM to the organization that listed it. The recordings hold no
//!   systems, system groups, policies or administrators: those lists are empty.

use std::collections::HashMap;

use serde_json::Value;

use crate::tenant::{Collection, Graph, Objects, Organization, Overlay, Traversal, object_id};

/// The recordings, oldest first, so later versions of an object win.
const RECORDINGS: &[(&str, &str)] = &[
    (
        "fetchOrgs.json",
        include_str!("../../fixtures/jumpcloud-recorded/fetchOrgs.json"),
    ),
    (
        "fetchUsers.json",
        include_str!("../../fixtures/jumpcloud-recorded/fetchUsers.json"),
    ),
    (
        "fetchGroups.json",
        include_str!("../../fixtures/jumpcloud-recorded/fetchGroups.json"),
    ),
    (
        "fetchApplications.json",
        include_str!("../../fixtures/jumpcloud-recorded/fetchApplications.json"),
    ),
    (
        "fetch-apple-mdm.json",
        include_str!("../../fixtures/jumpcloud-recorded/fetch-apple-mdm.json"),
    ),
    (
        "fetch-apple-devices.json",
        include_str!("../../fixtures/jumpcloud-recorded/fetch-apple-devices.json"),
    ),
];

/// Objects keyed by id, in first-seen order, later versions replacing earlier ones.
#[derive(Default)]
struct Keyed {
    items: Vec<Value>,
    index: HashMap<String, usize>,
}

impl Keyed {
    fn upsert(&mut self, value: &Value) {
        let Some(id) = object_id(value) else { return };
        match self.index.get(id) {
            Some(&i) => self.items[i] = value.clone(),
            None => {
                self.index.insert(id.to_owned(), self.items.len());
                self.items.push(value.clone());
            }
        }
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }
}

/// The recorded organization with everything recorded for it.
pub(crate) fn organization() -> Organization {
    let mut orgs = Keyed::default();
    let mut users = Keyed::default();
    let mut groups = Keyed::default();
    let mut apps = Keyed::default();
    let mut mdms = Keyed::default();
    let mut devices = Keyed::default();
    let mut traversals: HashMap<(String, Traversal), Keyed> = HashMap::new();

    for (name, text) in RECORDINGS {
        // The fixtures are compiled in; a broken one is a build defect caught by tests.
        let entries: Vec<Value> = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("recorded fixture {name} is not a JSON array: {e}"));
        for entry in &entries {
            let path = entry
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let body = entry.get("body").unwrap_or(&Value::Null);
            let v1_results = body.get("results").and_then(Value::as_array);
            let v2_items = body.as_array();
            let segments: Vec<&str> = path.split('/').collect();
            match segments.as_slice() {
                ["", "api", "organizations"] => v1_results
                    .into_iter()
                    .flatten()
                    .for_each(|v| orgs.upsert(v)),
                ["", "api", "systemusers"] => v1_results
                    .into_iter()
                    .flatten()
                    .for_each(|v| users.upsert(v)),
                ["", "api", "applications"] => v1_results
                    .into_iter()
                    .flatten()
                    .for_each(|v| apps.upsert(v)),
                ["", "api", "v2", "usergroups"] => v2_items
                    .into_iter()
                    .flatten()
                    .for_each(|v| groups.upsert(v)),
                ["", "api", "v2", "applemdms"] => {
                    v2_items.into_iter().flatten().for_each(|v| mdms.upsert(v))
                }
                // One MDM per organization: its devices are the organization's.
                ["", "api", "v2", "applemdms", _, "devices"] => v2_items
                    .into_iter()
                    .flatten()
                    .for_each(|v| devices.upsert(v)),
                [
                    "",
                    "api",
                    "v2",
                    "applications",
                    id,
                    route @ ("users" | "usergroups"),
                ] => {
                    let traversal = if *route == "users" {
                        Traversal::Users
                    } else {
                        Traversal::UserGroups
                    };
                    let keyed = traversals.entry(((*id).to_owned(), traversal)).or_default();
                    v2_items.into_iter().flatten().for_each(|v| keyed.upsert(v));
                }
                _ => {}
            }
        }
    }

    let mut graph = Graph {
        members: vec![Vec::new(); groups.items.len()],
        dangling: Vec::new(),
        app_direct_users: vec![Vec::new(); apps.items.len()],
        app_groups: vec![Vec::new(); apps.items.len()],
        directory: Default::default(),
    };
    let mut traversal_items = HashMap::new();
    for ((app_id, traversal), keyed) in traversals {
        let Some(a) = apps.position(&app_id) else {
            continue;
        };
        for item in &keyed.items {
            match traversal {
                Traversal::UserGroups => {
                    if let Some(g) = object_id(item).and_then(|id| groups.position(id)) {
                        graph.app_groups[a].push(g as u32);
                    }
                }
                Traversal::Users => {
                    let Some(u) = object_id(item).and_then(|id| users.position(id)) else {
                        continue;
                    };
                    for path in item
                        .get("paths")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let hops: Vec<(&str, &str)> = path
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|hop| {
                                let to = hop.get("to")?;
                                Some((to.get("type")?.as_str()?, to.get("id")?.as_str()?))
                            })
                            .collect();
                        match hops.as_slice() {
                            [("user", _)] => graph.app_direct_users[a].push(u as u32),
                            [("user_group", group_id), ("user", _)] => {
                                if let Some(g) = groups.position(group_id) {
                                    graph.members[g].push(u as u32);
                                    graph.app_groups[a].push(g as u32);
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        traversal_items.insert((a as u32, traversal), keyed.items);
    }
    for list in graph
        .members
        .iter_mut()
        .chain(&mut graph.app_direct_users)
        .chain(&mut graph.app_groups)
    {
        list.sort_unstable();
        list.dedup();
    }

    // The first organization recorded (the MDM recordings' own organization comes
    // later); everything above is served as its data.
    let record = orgs.items.into_iter().next().unwrap_or(Value::Null);
    let objects = Objects::Stored(HashMap::from([
        (Collection::Users, users.items),
        (Collection::Groups, groups.items),
        (Collection::Applications, apps.items),
        (Collection::AppleMdms, mdms.items),
        (Collection::AppleDevices, devices.items),
    ]));
    Organization::new(record, objects, graph, traversal_items, Overlay::default())
}

#[cfg(test)]
mod tests {
    use crate::tenant::Tenant;

    #[test]
    fn extracts_the_recorded_tenant() {
        let tenant = Tenant::recorded();
        let [org] = tenant.organizations() else {
            panic!("one recorded organization")
        };
        assert_eq!(org.id(), "60259a2ad81e1a474d4e7c83");
        assert_eq!(org.user_count(), 1);
        assert_eq!(
            org.user(0).unwrap()["state"],
            "ACTIVATED",
            "latest version wins"
        );
        assert_eq!(org.group_count(), 2);
        assert_eq!(org.application_count(), 1);
        let mdms: Vec<_> = org.apple_mdms().collect();
        assert_eq!(mdms.len(), 1);
        assert_eq!(mdms[0]["id"], "6516cf109f533600018db6e7");
        assert_ne!(mdms[0]["organization"], org.id(), "recorded in another org");
        assert_eq!(org.apple_devices().count(), 1);
        assert_eq!(org.systems().count(), 0);
        let app = "617c3664e6f8ae27f7e1201e";
        assert_eq!(
            org.application_groups(app).unwrap(),
            ["6026da081f24755306c2ee0d"]
        );
        let users = org.application_users(app).unwrap();
        assert_eq!(users.len(), 1);
        assert!(!users[0].direct);
        assert_eq!(users[0].via_groups, ["6026da081f24755306c2ee0d"]);
        assert_eq!(
            org.group_members("6026da081f24755306c2ee0d").unwrap(),
            ["6026bec6b8207255280d5981"]
        );
        assert_eq!(
            org.group_members("60259a3cb544065d1eaf2760").unwrap(),
            Vec::<String>::new()
        );
    }
}

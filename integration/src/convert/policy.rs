//! The `jumpcloud_policy` entity (from `GET /api/v2/policies`) and its `ENFORCES`
//! edges to systems (`/policies/{id}/systems` with the latest `/policystatuses`) and
//! system groups (`/policies/{id}/associations?targets=system_group`).
//!
//! Only the list item is read: `GET /api/v2/policies/{id}` (whose `values` may hold
//! secrets) and `/api/v2/policyresults` (`stdOut`/`stdErr` of every run) are never
//! called, and a status's `stdOut`, `stdErr` and `detail` are never copied.

use serde_json::Value as Json;

use super::fields::{Properties, Record, console_link};
use super::{ConvertError, ENFORCES, Object};
use crate::model::{Entity, Relationship};

/// `_type` of a policy.
pub const POLICY_TYPE: &str = "jumpcloud_policy";
/// `_class` of a policy.
pub const POLICY_CLASSES: &[&str] = &["ControlPolicy"];
/// `jumpcloud_policy` ENFORCES `jumpcloud_system`.
pub const POLICY_ENFORCES_SYSTEM_TYPE: &str = "jumpcloud_policy_enforces_system";
/// `jumpcloud_policy` ENFORCES `jumpcloud_system_group`.
pub const POLICY_ENFORCES_SYSTEM_GROUP_TYPE: &str = "jumpcloud_policy_enforces_system_group";

/// Converts a policy list item; `raw` is its JSON text as received.
pub fn policy_entity(
    policy: &Object,
    raw: &str,
    console_url: &str,
) -> Result<Entity, ConvertError> {
    let record = Record::new("policy", policy);
    let id = record.id()?;
    let name = record
        .non_empty_str("name")?
        .or(record.non_empty_str("template.displayName")?)
        .unwrap_or(id);

    let mut props = Properties::default();
    props
        .set("id", id)
        .set("name", name)
        .set("displayName", name)
        .set("category", "config")
        .set_some("templateId", record.non_empty_str("template.id")?)
        .set_some("templateName", record.non_empty_str("template.name")?)
        .set_some(
            "templateDisplayName",
            record.non_empty_str("template.displayName")?,
        )
        .set_some(
            "osMetaFamily",
            record.non_empty_str("template.osMetaFamily")?,
        )
        .set_some(
            "deliveryTypes",
            record.string_list("template.deliveryTypes")?,
        )
        .set_some("description", record.non_empty_str("template.description")?)
        .set(
            "webLink",
            console_link(console_url, &format!("/#/policies/{id}/details")),
        );

    Ok(Entity {
        key: id.to_owned(),
        entity_type: POLICY_TYPE,
        classes: POLICY_CLASSES,
        properties: props.into_vec(),
        raw_data: Some(raw.to_owned()),
    })
}

/// A system a policy applies to, from one item of `/policies/{id}/systems`
/// (`GraphObjectWithPaths`): its id and whether it is bound directly (one hop).
/// `None` for items that are not systems.
pub fn policy_system(item: &Object) -> Result<Option<(String, bool)>, ConvertError> {
    let record = Record::new("policy system", item);
    let id = record.id()?;
    if !matches!(record.str("type")?, None | Some("system")) {
        return Ok(None);
    }
    let direct = match record.array("paths")? {
        None | Some([]) => true,
        Some(paths) => paths
            .iter()
            .any(|path| path.as_array().is_some_and(|hops| hops.len() == 1)),
    };
    Ok(Some((id.to_owned(), direct)))
}

/// The latest result of a policy on one system (`/policies/{id}/policystatuses`).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyStatus {
    pub system_id: String,
    /// `state` lower-cased.
    pub status: Option<String>,
    pub success: Option<bool>,
    pub exit_status: Option<i64>,
    /// `endedAt`, else `startedAt`, in epoch ms.
    pub last_applied_on: Option<i64>,
    /// (`endedAt`, `startedAt`) in ms, to pick the latest of several.
    order: (Option<i64>, Option<i64>),
}

impl PolicyStatus {
    /// Whether this result is more recent than `other`: later `endedAt`, then later
    /// `startedAt` (a missing time is older than any).
    pub fn is_newer_than(&self, other: &PolicyStatus) -> bool {
        self.order > other.order
    }
}

/// Reads one status; `None` without a `systemID` to match it on. Never reads
/// `stdOut`, `stdErr` or `detail`.
pub fn policy_status(item: &Object) -> Result<Option<PolicyStatus>, ConvertError> {
    let record = Record::new("policy status", item);
    let Some(system_id) = record.non_empty_str("systemID")? else {
        return Ok(None);
    };
    let ended = record.timestamp("endedAt");
    let started = record.timestamp("startedAt");
    Ok(Some(PolicyStatus {
        system_id: system_id.to_owned(),
        status: record.non_empty_str("state")?.map(str::to_lowercase),
        success: record.maybe_bool("success"),
        exit_status: record.lenient("exitStatus").and_then(Json::as_i64),
        last_applied_on: ended.or(started),
        order: (ended, started),
    }))
}

/// The `ENFORCES` edge from a policy to a system, with its latest status when known.
pub fn policy_enforces_system(
    policy_key: &str,
    system_key: &str,
    direct: bool,
    status: Option<&PolicyStatus>,
) -> Relationship {
    let mut edge = Relationship::direct(
        POLICY_ENFORCES_SYSTEM_TYPE,
        ENFORCES,
        policy_key,
        system_key,
    )
    .with("direct", direct);
    if let Some(status) = status {
        if let Some(state) = &status.status {
            edge = edge.with("status", state.clone());
        }
        if let Some(success) = status.success {
            edge = edge.with("success", success);
        }
        if let Some(exit) = status.exit_status {
            edge = edge.with("exitStatus", exit);
        }
        if let Some(at) = status.last_applied_on {
            edge = edge.with("lastAppliedOn", at);
        }
    }
    edge
}

/// The `ENFORCES` edge from a policy to a system group bound to it (always direct).
pub fn policy_enforces_system_group(policy_key: &str, group_key: &str) -> Relationship {
    Relationship::direct(
        POLICY_ENFORCES_SYSTEM_GROUP_TYPE,
        ENFORCES,
        policy_key,
        group_key,
    )
    .with("direct", true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::test_support::object;
    use crate::model::Value;
    use serde_json::json;

    const CONSOLE: &str = "https://console.jumpcloud.com";

    #[test]
    fn a_policy_from_its_list_item() {
        let item = object(json!({"id": "p1", "name": "Disk encryption",
            "template": {"id": "t1", "name": "encrypted_disk_mac", "displayName": "FileVault",
                         "osMetaFamily": "darwin", "deliveryTypes": ["agent", "mdm"],
                         "description": "Turns on FileVault", "activation": "x"}}));
        let entity = policy_entity(&item, "{}", CONSOLE).unwrap();
        assert_eq!(entity.entity_type, "jumpcloud_policy");
        assert_eq!(entity.classes, ["ControlPolicy"]);
        let expect = [
            ("name", Value::from("Disk encryption")),
            ("category", Value::from("config")),
            ("templateId", Value::from("t1")),
            ("templateName", Value::from("encrypted_disk_mac")),
            ("templateDisplayName", Value::from("FileVault")),
            ("osMetaFamily", Value::from("darwin")),
            (
                "deliveryTypes",
                Value::TextList(vec!["agent".into(), "mdm".into()]),
            ),
            ("description", Value::from("Turns on FileVault")),
            (
                "webLink",
                Value::from("https://console.jumpcloud.com/#/policies/p1/details"),
            ),
        ];
        for (name, value) in expect {
            assert_eq!(entity.property(name), Some(&value), "{name}");
        }
        for absent in ["values", "configFields", "notes"] {
            assert_eq!(entity.property(absent), None);
        }
        let unnamed =
            object(json!({"id": "p2", "name": "", "template": {"displayName": "Lock screen"}}));
        let entity = policy_entity(&unnamed, "{}", CONSOLE).unwrap();
        assert_eq!(entity.property("name"), Some(&Value::from("Lock screen")));
        let bare = object(json!({"id": "p3"}));
        let entity = policy_entity(&bare, "{}", CONSOLE).unwrap();
        assert_eq!(entity.property("name"), Some(&Value::from("p3")));
    }

    #[test]
    fn policy_systems_direct_or_through_a_group() {
        let direct = object(
            json!({"id": "s1", "type": "system", "paths": [[{"to": {"id": "s1", "type": "system"}}]]}),
        );
        assert_eq!(policy_system(&direct), Ok(Some(("s1".into(), true))));
        let via = object(json!({"id": "s2", "type": "system", "paths": [[
            {"to": {"id": "sg1", "type": "system_group"}}, {"to": {"id": "s2", "type": "system"}}]]}));
        assert_eq!(policy_system(&via), Ok(Some(("s2".into(), false))));
        let other = object(json!({"id": "x", "type": "policy_group"}));
        assert_eq!(policy_system(&other), Ok(None));
    }

    #[test]
    fn statuses_are_read_without_their_output() {
        let item = object(json!({"id": "r1", "policyID": "p1", "systemID": "s1",
            "state": "SUCCESS", "success": true, "exitStatus": 0,
            "startedAt": "2024-01-01T00:00:00Z", "endedAt": "2024-01-01T00:00:05Z",
            "stdOut": "SIMULATOR-FAKE secret", "stdErr": "", "detail": "x"}));
        let status = policy_status(&item).unwrap().unwrap();
        assert_eq!(status.status.as_deref(), Some("success"));
        assert_eq!(status.success, Some(true));
        assert_eq!(status.exit_status, Some(0));
        assert_eq!(status.last_applied_on, Some(1_704_067_205_000));
        let edge = policy_enforces_system("p1", "s1", true, Some(&status));
        assert_eq!(edge.relationship_type, "jumpcloud_policy_enforces_system");
        assert_eq!(edge.key, "p1|enforces|s1");
        assert_eq!(edge.property("status"), Some(&Value::from("success")));
        assert_eq!(
            edge.property("lastAppliedOn"),
            Some(&Value::Int(1_704_067_205_000))
        );
        assert!(
            edge.properties
                .iter()
                .all(|(_, v)| !format!("{v:?}").contains("SIMULATOR"))
        );

        let pending = object(
            json!({"systemID": "s1", "state": "PENDING", "startedAt": "2024-01-02T00:00:00Z"}),
        );
        let pending = policy_status(&pending).unwrap().unwrap();
        assert_eq!(pending.last_applied_on, Some(1_704_153_600_000));
        assert!(status.is_newer_than(&pending), "an end time beats none");
        let later = object(json!({"systemID": "s1", "endedAt": "2024-02-01T00:00:00Z"}));
        assert!(
            policy_status(&later)
                .unwrap()
                .unwrap()
                .is_newer_than(&status)
        );
        assert_eq!(policy_status(&object(json!({"state": "x"}))), Ok(None));

        let none = policy_enforces_system("p1", "s2", false, None);
        assert_eq!(
            none.properties,
            vec![
                ("displayName", Value::from("ENFORCES")),
                ("direct", Value::Bool(false))
            ]
        );
        let group = policy_enforces_system_group("p1", "sg1");
        assert_eq!(group.key, "p1|enforces|sg1");
        assert_eq!(group.property("direct"), Some(&Value::Bool(true)));
    }
}

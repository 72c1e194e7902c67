//! The `jumpcloud_group` entity (from `GET /api/v2/usergroups`) and its `HAS` edges to
//! member users (from `GET /api/v2/usergroups/{id}/members`).

use super::fields::{Properties, Record, console_link, raw_json};
use super::{ConvertError, HAS, Object};
use crate::model::{Entity, Relationship};

/// `_type` of a user group.
pub const GROUP_TYPE: &str = "jumpcloud_group";
/// `_class` of a user group.
pub const GROUP_CLASSES: &[&str] = &["Group"];
/// `jumpcloud_group` HAS `jumpcloud_user`.
pub const GROUP_HAS_USER_TYPE: &str = "jumpcloud_group_has_user";

/// Converts a user group. `console_url` is the configured base URL, for `webLink`.
pub fn group_entity(group: &Object, console_url: &str) -> Result<Entity, ConvertError> {
    let mut entity = group_entity_from(group, "", console_url)?;
    entity.raw_data = raw_json(group);
    Ok(entity)
}

/// [`group_entity`] with the raw data given as the JSON text the API sent.
pub fn group_entity_from(
    group: &Object,
    raw: &str,
    console_url: &str,
) -> Result<Entity, ConvertError> {
    let record = Record::new("group", group);
    let id = record.id()?;
    // Every entity needs a name; JumpCloud requires one, the id covers a record without.
    let name = record.non_empty_str("name")?.unwrap_or(id);
    // `attributes` holds sudo, LDAP, POSIX and RADIUS settings; no flat shape fits all.
    let attributes = record
        .object_field("attributes")?
        .and_then(|attributes| serde_json::to_string(attributes).ok());

    let mut props = Properties::default();
    props
        .set("id", id)
        .set("name", name)
        .set("displayName", name)
        .set_some("description", record.str("description")?)
        .set_some("email", record.non_empty_str("email")?)
        .set_some("membershipMethod", record.str("membershipMethod")?)
        .set_some("attributes", attributes)
        .set("sudoEnabled", record.flag("attributes.sudo.enabled")?)
        .set(
            "webLink",
            console_link(console_url, &format!("/#/groups/user/{id}/details")),
        );

    Ok(Entity {
        key: id.to_owned(),
        entity_type: GROUP_TYPE,
        classes: GROUP_CLASSES,
        properties: props.into_vec(),
        raw_data: Some(raw.to_owned()),
    })
}

/// The user id of one item of `GET /api/v2/usergroups/{id}/members`
/// (`{"to": {"id": ..., "type": "user"}, ...}`); `None` for members of other types.
pub fn member_user_id(member: &Object) -> Result<Option<String>, ConvertError> {
    // A membership edge has no id of its own; its target's id is what identifies it.
    let label = member
        .get("to")
        .and_then(|to| to.get("id"))
        .and_then(serde_json::Value::as_str);
    let record = Record::with_label("group member", member, label);
    if record.required_str("to.type")? != "user" {
        return Ok(None);
    }
    Ok(Some(record.required_str("to.id")?.to_owned()))
}

/// The `HAS` edge from a group to one of its member users.
pub fn group_has_user(group_key: &str, user_key: &str) -> Relationship {
    Relationship::direct(GROUP_HAS_USER_TYPE, HAS, group_key, user_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::test_support::{object, recorded};
    use crate::model::Value;
    use serde_json::{Value as Json, json};

    const CONSOLE: &str = "https://console.jumpcloud.com";

    fn convert(value: Json) -> Entity {
        group_entity(&object(value), CONSOLE).expect("converts")
    }

    #[test]
    fn every_recorded_group_converts() {
        let groups = recorded("/api/v2/usergroups");
        assert_eq!(groups.len(), 4, "two groups in two recordings");
        for group in &groups {
            let entity = group_entity(group, CONSOLE).expect("recorded group converts");
            assert_eq!(entity.entity_type, "jumpcloud_group");
            assert_eq!(entity.classes, ["Group"]);
            assert_eq!(
                entity.property("id"),
                Some(&Value::from(entity.key.as_str()))
            );
            assert_eq!(entity.property("email"), None, "empty email is left out");
            assert_eq!(entity.property("attributes"), None, "null attributes");
            assert_eq!(entity.property("sudoEnabled"), Some(&Value::Bool(false)));
            assert_eq!(entity.property("membershipMethod"), None);
            assert!(entity.raw_data.is_some());
        }
    }

    #[test]
    fn recorded_group_values() {
        let groups = recorded("/api/v2/usergroups");
        let group = groups
            .iter()
            .find(|g| g["id"] == "6026da081f24755306c2ee0d")
            .expect("My Test Group");
        let entity = group_entity(group, CONSOLE).expect("converts");
        assert_eq!(entity.key, "6026da081f24755306c2ee0d");
        assert_eq!(entity.property("name"), Some(&Value::from("My Test Group")));
        assert_eq!(
            entity.property("displayName"),
            Some(&Value::from("My Test Group"))
        );
        assert_eq!(
            entity.property("description"),
            Some(&Value::from("Testing!"))
        );
        assert_eq!(
            entity.property("webLink"),
            Some(&Value::from(
                "https://console.jumpcloud.com/#/groups/user/6026da081f24755306c2ee0d/details"
            ))
        );
    }

    #[test]
    fn attributes_are_json_encoded_and_sudo_flattened() {
        let entity = convert(json!({
            "id": "6026da081f24755306c2ee0d", "name": "Admins", "email": "admins@example.com",
            "membershipMethod": "DYNAMIC_AUTOMATED",
            "attributes": {"sudo": {"enabled": true, "withoutPassword": false}}
        }));
        assert_eq!(entity.property("sudoEnabled"), Some(&Value::Bool(true)));
        assert_eq!(
            entity.property("attributes"),
            Some(&Value::from(
                r#"{"sudo":{"enabled":true,"withoutPassword":false}}"#
            ))
        );
        assert_eq!(
            entity.property("email"),
            Some(&Value::from("admins@example.com"))
        );
        assert_eq!(
            entity.property("membershipMethod"),
            Some(&Value::from("DYNAMIC_AUTOMATED"))
        );
    }

    #[test]
    fn a_group_without_a_name_is_named_by_its_id() {
        let entity = convert(json!({"id": "6026da081f24755306c2ee0d", "name": ""}));
        assert_eq!(
            entity.property("name"),
            Some(&Value::from("6026da081f24755306c2ee0d"))
        );
    }

    #[test]
    fn wrong_types_are_errors_naming_the_field() {
        let cases = [
            (
                json!({"id": "g1", "attributes": []}),
                "attributes",
                "expected an object, found an array",
            ),
            (
                json!({"id": "g1", "attributes": {"sudo": {"enabled": "yes"}}}),
                "attributes.sudo.enabled",
                "expected a boolean, found a string",
            ),
            (
                json!({"id": "g1", "name": {"en": "x"}}),
                "name",
                "expected a string, found an object",
            ),
            (
                json!({"name": "x"}),
                "id",
                "missing (neither `id` nor `_id` is set)",
            ),
        ];
        for (group, field, problem) in cases {
            let err = group_entity(&object(group.clone()), CONSOLE).unwrap_err();
            assert_eq!(err.record_kind, "group", "{group}");
            assert_eq!(err.field, field, "{group}");
            assert_eq!(err.problem, problem, "{group}");
        }
    }

    #[test]
    fn user_members_give_their_id() {
        let member = object(json!({
            "attributes": null,
            "to": {"attributes": null, "id": "6026bec6b8207255280d5981", "type": "user"}
        }));
        assert_eq!(
            member_user_id(&member),
            Ok(Some("6026bec6b8207255280d5981".to_owned()))
        );
    }

    #[test]
    fn members_of_other_types_are_skipped() {
        for kind in ["user_group", "system", "application"] {
            let member = object(json!({"to": {"id": "6026da081f24755306c2ee0d", "type": kind}}));
            assert_eq!(member_user_id(&member), Ok(None), "{kind}");
        }
    }

    #[test]
    fn malformed_members_are_errors() {
        let err = member_user_id(&object(json!({"to": {"type": "user"}}))).unwrap_err();
        assert_eq!(err.record_kind, "group member");
        assert_eq!(err.field, "to.id");
        let err = member_user_id(&object(json!({"to": {"id": "u1"}}))).unwrap_err();
        assert_eq!(err.field, "to.type");
        assert_eq!(err.record_id.as_deref(), Some("u1"));
        let err = member_user_id(&object(json!({"to": "u1"}))).unwrap_err();
        assert_eq!(err.field, "to");
        assert_eq!(err.problem, "expected an object, found a string");
        let err = member_user_id(&object(json!({"to": {"id": 5, "type": "user"}}))).unwrap_err();
        assert_eq!(err.problem, "expected a string, found a number");
    }

    #[test]
    fn group_has_user_follows_the_key_convention() {
        let edge = group_has_user("6026da081f24755306c2ee0d", "6026bec6b8207255280d5981");
        assert_eq!(edge.relationship_type, "jumpcloud_group_has_user");
        assert_eq!(edge.class, "HAS");
        assert_eq!(
            edge.key,
            "6026da081f24755306c2ee0d|has|6026bec6b8207255280d5981"
        );
        assert_eq!(edge.from_key, "6026da081f24755306c2ee0d");
        assert_eq!(edge.to_key, "6026bec6b8207255280d5981");
        assert_eq!(edge.properties, vec![("displayName", Value::from("HAS"))]);
    }
}

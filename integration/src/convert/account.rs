//! The `jumpcloud_account` entity (one per organization the API key may read) and the
//! `HAS` edges that hang every other entity from its account.

use super::administrator::ADMINISTRATOR_TYPE;
use super::apple::APPLE_MDM_TYPE;
use super::application::APPLICATION_TYPE;
use super::fields::{Properties, Record, console_link, raw_json};
use super::group::GROUP_TYPE;
use super::policy::POLICY_TYPE;
use super::system::{SYSTEM_GROUP_TYPE, SYSTEM_TYPE};
use super::user::USER_TYPE;
use super::{ConvertError, HAS, Object};
use crate::model::{Entity, Relationship};

/// `_type` of an organization.
pub const ACCOUNT_TYPE: &str = "jumpcloud_account";
/// `_class` of an organization.
pub const ACCOUNT_CLASSES: &[&str] = &["Account", "Organization"];
/// `jumpcloud_account` HAS `jumpcloud_user`.
pub const ACCOUNT_HAS_USER_TYPE: &str = "jumpcloud_account_has_user";
/// `jumpcloud_account` HAS `jumpcloud_group`.
pub const ACCOUNT_HAS_GROUP_TYPE: &str = "jumpcloud_account_has_group";
/// `jumpcloud_account` HAS `jumpcloud_application`.
pub const ACCOUNT_HAS_APPLICATION_TYPE: &str = "jumpcloud_account_has_application";
/// `jumpcloud_account` HAS `jumpcloud_apple_mdm`.
pub const ACCOUNT_HAS_APPLE_MDM_TYPE: &str = "jumpcloud_account_has_apple_mdm";
/// `jumpcloud_account` HAS `jumpcloud_system`.
pub const ACCOUNT_HAS_SYSTEM_TYPE: &str = "jumpcloud_account_has_system";
/// `jumpcloud_account` HAS `jumpcloud_system_group`.
pub const ACCOUNT_HAS_SYSTEM_GROUP_TYPE: &str = "jumpcloud_account_has_system_group";
/// `jumpcloud_account` HAS `jumpcloud_administrator`.
pub const ACCOUNT_HAS_ADMINISTRATOR_TYPE: &str = "jumpcloud_account_has_administrator";
/// `jumpcloud_account` HAS `jumpcloud_policy`.
pub const ACCOUNT_HAS_POLICY_TYPE: &str = "jumpcloud_account_has_policy";
/// What [`account_has`] calls an edge the data model does not declare (a caller bug).
pub const ACCOUNT_HAS_OTHER_TYPE: &str = "jumpcloud_account_has_undeclared";

/// The vendor named on every account (`Account` requires `vendor`).
const VENDOR: &str = "JumpCloud";

/// Converts an item of `GET /api/organizations`. `console_url` is the configured base URL
/// (e.g. `https://console.jumpcloud.com`), used for `webLink` and `accessURL`.
pub fn account_entity(org: &Object, console_url: &str) -> Result<Entity, ConvertError> {
    let record = Record::new("organization", org);
    let id = record.id()?;
    // Single-tenant orgs often have a null `displayName`; the id is the only other name.
    let name = record.non_empty_str("displayName")?.unwrap_or(id);
    let console = console_link(console_url, "");

    let mut props = Properties::default();
    props
        .set("id", id)
        .set("name", name)
        .set("displayName", name)
        .set("vendor", VENDOR)
        .set_some("createdOn", record.timestamp("created"))
        .set_some("logoUrl", record.str("logoUrl")?)
        .set("webLink", console.clone())
        .set("accessURL", console);

    Ok(Entity {
        key: id.to_owned(),
        entity_type: ACCOUNT_TYPE,
        classes: ACCOUNT_CLASSES,
        properties: props.into_vec(),
        raw_data: raw_json(org),
    })
}

/// The `HAS` edge from an account to an entity read with its organization's
/// `x-org-id`: a user, group, application, Apple MDM, system, system group,
/// administrator or policy.
///
/// The data model declares no other `HAS` edge from an account; passing any other entity
/// is a bug in the caller, caught by a debug assertion and otherwise emitted with
/// [`ACCOUNT_HAS_OTHER_TYPE`] so that it stands out instead of taking a wrong type.
pub fn account_has(account_key: &str, child: &Entity) -> Relationship {
    let relationship_type = match child.entity_type {
        USER_TYPE => ACCOUNT_HAS_USER_TYPE,
        GROUP_TYPE => ACCOUNT_HAS_GROUP_TYPE,
        APPLICATION_TYPE => ACCOUNT_HAS_APPLICATION_TYPE,
        APPLE_MDM_TYPE => ACCOUNT_HAS_APPLE_MDM_TYPE,
        SYSTEM_TYPE => ACCOUNT_HAS_SYSTEM_TYPE,
        SYSTEM_GROUP_TYPE => ACCOUNT_HAS_SYSTEM_GROUP_TYPE,
        ADMINISTRATOR_TYPE => ACCOUNT_HAS_ADMINISTRATOR_TYPE,
        POLICY_TYPE => ACCOUNT_HAS_POLICY_TYPE,
        other => {
            debug_assert!(false, "no HAS edge from an account to a {other}");
            ACCOUNT_HAS_OTHER_TYPE
        }
    };
    Relationship::direct(relationship_type, HAS, account_key, &child.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::test_support::{object, recorded};
    use crate::convert::{application, group, user};
    use crate::model::Value;
    use serde_json::json;

    const CONSOLE: &str = "https://console.jumpcloud.com";

    fn text(entity: &Entity, name: &str) -> Option<String> {
        match entity.property(name) {
            Some(Value::Text(text)) => Some(text.clone()),
            _ => None,
        }
    }

    #[test]
    fn every_recorded_organization_converts() {
        let orgs = recorded("/api/organizations");
        // One per recording: all six start by listing organizations.
        assert_eq!(orgs.len(), 6);
        for org in &orgs {
            let entity = account_entity(org, CONSOLE).expect("recorded org converts");
            assert_eq!(entity.entity_type, ACCOUNT_TYPE);
            assert_eq!(entity.classes, ["Account", "Organization"]);
            assert_eq!(
                Some(entity.key.clone()),
                org["id"].as_str().map(str::to_owned)
            );
            assert_eq!(entity.property("vendor"), Some(&Value::from("JumpCloud")));
            assert_eq!(entity.property("webLink"), Some(&Value::from(CONSOLE)));
            assert_eq!(entity.property("accessURL"), Some(&Value::from(CONSOLE)));
            assert!(entity.raw_data.is_some());
        }
    }

    #[test]
    fn recorded_org_without_display_name_is_named_by_its_id() {
        let orgs = recorded("/api/organizations");
        let org = orgs
            .iter()
            .find(|o| o["id"] == "60259a2ad81e1a474d4e7c83")
            .expect("recorded org");
        let entity = account_entity(org, CONSOLE).expect("converts");
        assert_eq!(entity.key, "60259a2ad81e1a474d4e7c83");
        assert_eq!(
            text(&entity, "name").as_deref(),
            Some("60259a2ad81e1a474d4e7c83")
        );
        assert_eq!(
            text(&entity, "displayName").as_deref(),
            Some("60259a2ad81e1a474d4e7c83")
        );
        assert_eq!(
            entity.property("createdOn"),
            Some(&Value::Int(1_613_077_034_837))
        );
        assert_eq!(entity.property("logoUrl"), None, "null logoUrl is left out");
    }

    #[test]
    fn recorded_org_with_display_name_uses_it() {
        let orgs = recorded("/api/organizations");
        let org = orgs
            .iter()
            .find(|o| o["id"] == "6516be7eac1f57664752c607")
            .expect("recorded org");
        let entity = account_entity(org, "https://console.eu.jumpcloud.com/").expect("converts");
        assert_eq!(text(&entity, "name").as_deref(), Some("Howdy"));
        assert_eq!(text(&entity, "displayName").as_deref(), Some("Howdy"));
        assert_eq!(
            entity.property("createdOn"),
            Some(&Value::Int(1_695_989_374_825))
        );
        assert_eq!(
            text(&entity, "webLink").as_deref(),
            Some("https://console.eu.jumpcloud.com"),
            "a trailing slash on the base URL is dropped"
        );
    }

    #[test]
    fn v1_org_with_only_underscore_id_and_a_logo() {
        let org = object(
            json!({"_id": "5f0c1a2b3c4d5e6f7a8b9c0d", "displayName": "Acme ☃",
                                "logoUrl": "https://example.com/logo.png", "created": "garbage"}),
        );
        let entity = account_entity(&org, CONSOLE).expect("converts");
        assert_eq!(entity.key, "5f0c1a2b3c4d5e6f7a8b9c0d");
        assert_eq!(text(&entity, "name").as_deref(), Some("Acme ☃"));
        assert_eq!(
            text(&entity, "logoUrl").as_deref(),
            Some("https://example.com/logo.png")
        );
        assert_eq!(
            entity.property("createdOn"),
            None,
            "unparsable timestamp left out"
        );
    }

    #[test]
    fn wrong_types_are_errors_naming_the_field() {
        let org = object(json!({"id": "5f0c1a2b3c4d5e6f7a8b9c0d", "displayName": ["x"]}));
        let err = account_entity(&org, CONSOLE).unwrap_err();
        assert_eq!(err.record_kind, "organization");
        assert_eq!(err.field, "displayName");
        assert_eq!(err.problem, "expected a string, found an array");
        let err = account_entity(&object(json!({"displayName": "x"})), CONSOLE).unwrap_err();
        assert_eq!(err.field, "id");
    }

    #[test]
    fn account_has_picks_the_type_from_the_child() {
        let org = recorded("/api/organizations").remove(0);
        let account = account_entity(&org, CONSOLE).expect("converts");
        let user = user::user_entity(&recorded("/api/systemusers")[0], CONSOLE).expect("user");
        let group =
            group::group_entity(&recorded("/api/v2/usergroups")[0], CONSOLE).expect("group");
        let app = application::application_entity(&recorded("/api/applications")[0], CONSOLE)
            .expect("application");

        let has_user = account_has(&account.key, &user);
        assert_eq!(has_user.relationship_type, "jumpcloud_account_has_user");
        assert_eq!(has_user.class, "HAS");
        assert_eq!(
            has_user.key,
            "60259a2ad81e1a474d4e7c83|has|6026bec6b8207255280d5981"
        );
        assert_eq!(has_user.from_key, "60259a2ad81e1a474d4e7c83");
        assert_eq!(has_user.to_key, "6026bec6b8207255280d5981");
        assert_eq!(
            has_user.properties,
            vec![("displayName", Value::from("HAS"))]
        );

        let has_group = account_has(&account.key, &group);
        assert_eq!(has_group.relationship_type, "jumpcloud_account_has_group");
        assert_eq!(
            has_group.key,
            "60259a2ad81e1a474d4e7c83|has|60259a3cb544065d1eaf2760"
        );
        let has_app = account_has(&account.key, &app);
        assert_eq!(
            has_app.relationship_type,
            "jumpcloud_account_has_application"
        );
        assert_eq!(has_app.to_key, "617c3664e6f8ae27f7e1201e");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "no HAS edge from an account to a jumpcloud_account")]
    fn account_has_nothing_but_users_groups_and_applications() {
        let org = recorded("/api/organizations").remove(0);
        let account = account_entity(&org, CONSOLE).expect("converts");
        account_has("another-account", &account);
    }
}

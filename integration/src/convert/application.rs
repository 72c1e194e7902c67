//! The `jumpcloud_application` entity (from `GET /api/applications`) and the `ASSIGNED`
//! edges from users and groups bound to it (from `GET /api/v2/applications/{id}/users`
//! and `/usergroups`).
//!
//! An application's `config` holds IdP certificates and keys: it is dropped before the
//! object becomes raw data and is never read.

use serde_json::Value as Json;

use super::fields::{Properties, Record, console_link, raw_json, type_name};
use super::{ASSIGNED, ConvertError, Object};
use crate::model::{Entity, Relationship};

/// `_type` of an SSO application.
pub const APPLICATION_TYPE: &str = "jumpcloud_application";
/// `_class` of an SSO application.
pub const APPLICATION_CLASSES: &[&str] = &["Application"];
/// `jumpcloud_user` ASSIGNED `jumpcloud_application`.
pub const USER_ASSIGNED_APPLICATION_TYPE: &str = "jumpcloud_user_assigned_application";
/// `jumpcloud_group` ASSIGNED `jumpcloud_application`.
pub const GROUP_ASSIGNED_APPLICATION_TYPE: &str = "jumpcloud_group_assigned_application";

/// The field that carries the application's secrets.
const SECRET_FIELD: &str = "config";

/// Converts an application. `console_url` is the configured base URL, for `webLink`.
pub fn application_entity(app: &Object, console_url: &str) -> Result<Entity, ConvertError> {
    let record = Record::new("application", app);
    let id = record.id()?;
    let catalog_name = record.str("name")?;
    // `displayLabel` is what the admin named it; `name` is only the connector.
    let name = first_non_empty(&record, &["displayLabel", "displayName", "name"])?.unwrap_or(id);

    let mut props = Properties::default();
    props
        .set("id", id)
        .set("name", name)
        .set("displayName", name)
        .set_some("catalogName", catalog_name)
        .set_some("description", record.str("description")?)
        .set_some("ssoUrl", record.str("ssoUrl")?)
        .set_some("active", record.bool("active")?)
        .set_some("ssoType", record.str("sso.type")?)
        .set_some("createdOn", record.timestamp("created"))
        .set("webLink", console_link(console_url, "/#/applications"));

    Ok(Entity {
        key: id.to_owned(),
        entity_type: APPLICATION_TYPE,
        classes: APPLICATION_CLASSES,
        properties: props.into_vec(),
        raw_data: raw_json(&without_secrets(app)),
    })
}

/// The first of `fields` that is a non-blank string.
fn first_non_empty<'a>(
    record: &Record<'a>,
    fields: &[&str],
) -> Result<Option<&'a str>, ConvertError> {
    for field in fields {
        if let Some(value) = record.non_empty_str(field)? {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// A copy of the application without its secrets.
fn without_secrets(app: &Object) -> Object {
    let mut copy = app.clone();
    copy.remove(SECRET_FIELD);
    copy
}

/// Who an application is bound to: the user or group id, and whether the binding is
/// direct (one hop) rather than inherited through a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The user or group id (`id` of the item).
    pub id: String,
    /// True when some path reaches the application in one hop.
    pub direct: bool,
}

/// Reads one item of `GET /api/v2/applications/{id}/users` or `/usergroups`
/// (`{id, type, compiledAttributes, paths}`). `None` for items that are neither a user
/// nor a user group.
pub fn binding(item: &Object) -> Result<Option<Binding>, ConvertError> {
    let record = Record::new("application binding", item);
    let id = record.id()?;
    if !matches!(record.str("type")?, None | Some("user" | "user_group")) {
        return Ok(None);
    }
    // Without paths the API is describing the binding itself, which is direct.
    let direct = match record.array("paths")? {
        None | Some([]) => true,
        Some(paths) => has_one_hop_path(&record, paths)?,
    };
    Ok(Some(Binding {
        id: id.to_owned(),
        direct,
    }))
}

/// Whether some path reaches the application in one hop. Checks every path's shape.
fn has_one_hop_path(record: &Record, paths: &[Json]) -> Result<bool, ConvertError> {
    paths
        .iter()
        .enumerate()
        .try_fold(false, |direct, (index, path)| match path.as_array() {
            Some(hops) => Ok(direct || hops.len() == 1),
            None => Err(record.error(
                "paths",
                format!(
                    "expected an array of paths, found {} at index {index}",
                    type_name(path)
                ),
            )),
        })
}

/// The `ASSIGNED` edge from a user to an application it may use.
pub fn user_assigned_application(user_key: &str, app_key: &str, direct: bool) -> Relationship {
    Relationship::direct(USER_ASSIGNED_APPLICATION_TYPE, ASSIGNED, user_key, app_key)
        .with("direct", direct)
}

/// The `ASSIGNED` edge from a group to an application its members may use.
pub fn group_assigned_application(group_key: &str, app_key: &str, direct: bool) -> Relationship {
    Relationship::direct(
        GROUP_ASSIGNED_APPLICATION_TYPE,
        ASSIGNED,
        group_key,
        app_key,
    )
    .with("direct", direct)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::test_support::{object, recorded};
    use crate::model::Value;
    use serde_json::json;

    const CONSOLE: &str = "https://console.jumpcloud.com";
    const APP: &str = "617c3664e6f8ae27f7e1201e";
    const ADA: &str = "6026bec6b8207255280d5981";
    const TEST_GROUP: &str = "6026da081f24755306c2ee0d";

    fn text<'a>(entity: &'a Entity, name: &str) -> Option<&'a str> {
        match entity.property(name) {
            Some(Value::Text(text)) => Some(text),
            _ => None,
        }
    }

    #[test]
    fn every_recorded_application_converts() {
        let apps = recorded("/api/applications");
        assert_eq!(apps.len(), 1);
        let entity = application_entity(&apps[0], CONSOLE).expect("recorded app converts");
        assert_eq!(entity.key, APP);
        assert_eq!(entity.entity_type, "jumpcloud_application");
        assert_eq!(entity.classes, ["Application"]);
        assert_eq!(text(&entity, "id"), Some(APP));
        assert_eq!(text(&entity, "name"), Some("AWS SSO"));
        assert_eq!(text(&entity, "displayName"), Some("AWS SSO"));
        assert_eq!(text(&entity, "catalogName"), Some("aws-sso"));
        assert_eq!(text(&entity, "description"), Some(""));
        assert_eq!(
            text(&entity, "ssoUrl"),
            Some("https://sso.jumpcloud.com/saml2/aws-sso")
        );
        assert_eq!(entity.property("active"), Some(&Value::Bool(true)));
        assert_eq!(text(&entity, "ssoType"), Some("saml"));
        assert_eq!(
            entity.property("createdOn"),
            Some(&Value::Int(1_635_530_340_448))
        );
        assert_eq!(
            text(&entity, "webLink"),
            Some("https://console.jumpcloud.com/#/applications")
        );
    }

    #[test]
    fn recorded_application_raw_data_has_no_config() {
        let app = recorded("/api/applications").remove(0);
        assert!(app.contains_key("config"), "the recording has one");
        let entity = application_entity(&app, CONSOLE).expect("converts");
        let raw = entity.raw_data.as_deref().expect("raw data");
        let raw: Object = serde_json::from_str(raw).expect("JSON");
        assert!(!raw.contains_key("config"));
        assert!(
            !entity
                .raw_data
                .as_deref()
                .unwrap_or_default()
                .contains("REDACTED")
        );
        let mut expected = app.clone();
        expected.remove("config");
        assert_eq!(raw, expected, "everything else is kept");
    }

    #[test]
    fn secret_config_never_reaches_the_output() {
        let app = object(json!({
            "_id": APP, "name": "saml", "displayLabel": "Payroll",
            "config": {"idpPrivateKey": {"value": "-----BEGIN PRIVATE KEY-----SECRET"},
                       "idpCertificate": {"value": "CERT-SECRET"}}
        }));
        let entity = application_entity(&app, CONSOLE).expect("converts");
        let everything = format!("{entity:?}");
        assert!(!everything.contains("SECRET"), "{everything}");
        assert!(!everything.contains("config"), "{everything}");
    }

    #[test]
    fn name_falls_back_from_label_to_display_name_to_name_to_id() {
        let cases = [
            (
                json!({"id": APP, "displayLabel": "L", "displayName": "D", "name": "n"}),
                "L",
            ),
            (
                json!({"id": APP, "displayLabel": "", "displayName": "D", "name": "n"}),
                "D",
            ),
            (json!({"id": APP, "displayLabel": null, "name": "n"}), "n"),
            (json!({"id": APP}), APP),
        ];
        for (app, name) in cases {
            let entity = application_entity(&object(app.clone()), CONSOLE).expect("converts");
            assert_eq!(text(&entity, "name"), Some(name), "{app}");
            assert_eq!(text(&entity, "displayName"), Some(name), "{app}");
        }
    }

    #[test]
    fn wrong_types_are_errors_naming_the_field() {
        let cases = [
            (
                json!({"id": APP, "active": "yes"}),
                "active",
                "expected a boolean, found a string",
            ),
            (
                json!({"id": APP, "sso": "saml"}),
                "sso",
                "expected an object, found a string",
            ),
            (
                json!({"id": APP, "displayLabel": 3}),
                "displayLabel",
                "expected a string, found a number",
            ),
        ];
        for (app, field, problem) in cases {
            let err = application_entity(&object(app.clone()), CONSOLE).unwrap_err();
            assert_eq!(err.record_kind, "application", "{app}");
            assert_eq!(err.record_id.as_deref(), Some(APP), "{app}");
            assert_eq!(err.field, field, "{app}");
            assert_eq!(err.problem, problem, "{app}");
        }
    }

    #[test]
    fn recorded_user_binding_is_through_a_group() {
        let items = recorded(&format!("/api/v2/applications/{APP}/users"));
        assert_eq!(items.len(), 1);
        let found = binding(&items[0]).expect("reads");
        assert_eq!(
            found,
            Some(Binding {
                id: ADA.to_owned(),
                direct: false
            })
        );
    }

    #[test]
    fn recorded_group_binding_is_direct() {
        let items = recorded(&format!("/api/v2/applications/{APP}/usergroups"));
        assert_eq!(items.len(), 1);
        let found = binding(&items[0]).expect("reads");
        assert_eq!(
            found,
            Some(Binding {
                id: TEST_GROUP.to_owned(),
                direct: true
            })
        );
    }

    #[test]
    fn one_direct_path_among_indirect_ones_makes_a_direct_binding() {
        let hop = json!({"to": {"id": ADA, "type": "user"}});
        let via_group = json!([{"to": {"id": TEST_GROUP, "type": "user_group"}}, hop]);
        let item = object(json!({"id": ADA, "type": "user", "paths": [via_group, [hop]]}));
        assert_eq!(binding(&item).map(|b| b.map(|b| b.direct)), Ok(Some(true)));
        let item = object(json!({"id": ADA, "type": "user", "paths": [via_group]}));
        assert_eq!(binding(&item).map(|b| b.map(|b| b.direct)), Ok(Some(false)));
    }

    #[test]
    fn bindings_without_paths_are_direct() {
        for item in [
            json!({"id": ADA, "type": "user"}),
            json!({"id": ADA, "type": "user", "paths": null}),
            json!({"id": ADA, "paths": []}),
        ] {
            let found = binding(&object(item.clone())).expect("reads");
            assert_eq!(found.map(|b| b.direct), Some(true), "{item}");
        }
    }

    #[test]
    fn bindings_of_other_types_are_skipped() {
        let item = object(json!({"id": "sys1", "type": "system", "paths": [[{}]]}));
        assert_eq!(binding(&item), Ok(None));
    }

    #[test]
    fn malformed_bindings_are_errors() {
        let err = binding(&object(json!({"id": ADA, "paths": [[], "x"]}))).unwrap_err();
        assert_eq!(err.record_kind, "application binding");
        assert_eq!(err.field, "paths");
        assert_eq!(
            err.problem,
            "expected an array of paths, found a string at index 1"
        );
        let err = binding(&object(json!({"id": ADA, "paths": {}}))).unwrap_err();
        assert_eq!(err.problem, "expected an array, found an object");
        let err = binding(&object(json!({"type": "user", "paths": []}))).unwrap_err();
        assert_eq!(err.field, "id");
    }

    #[test]
    fn assigned_edges_carry_direct() {
        let edge = user_assigned_application(ADA, APP, false);
        assert_eq!(
            edge.relationship_type,
            "jumpcloud_user_assigned_application"
        );
        assert_eq!(edge.class, "ASSIGNED");
        assert_eq!(edge.key, format!("{ADA}|assigned|{APP}"));
        assert_eq!(edge.from_key, ADA);
        assert_eq!(edge.to_key, APP);
        assert_eq!(
            edge.properties,
            vec![
                ("displayName", Value::from("ASSIGNED")),
                ("direct", Value::Bool(false))
            ]
        );
        let edge = group_assigned_application(TEST_GROUP, APP, true);
        assert_eq!(
            edge.relationship_type,
            "jumpcloud_group_assigned_application"
        );
        assert_eq!(edge.key, format!("{TEST_GROUP}|assigned|{APP}"));
        assert_eq!(edge.properties[1], ("direct", Value::Bool(true)));
    }
}

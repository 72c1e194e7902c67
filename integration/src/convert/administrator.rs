//! The `jumpcloud_administrator` entity: a console administrator, from an item of
//! `GET /api/users` (a v1 envelope of `UserReturn`; the route is undocumented but
//! works). Administrators are not system users: they sign in to the admin console.
//!
//! `apiKeyHash` is dropped before the object becomes raw data: its `prefix` is the
//! start of the administrator's API key.

use super::employee::normalize_email;
use super::fields::{Properties, Record, full_name, one_item_list};
use super::{ConvertError, Object};
use crate::model::{Entity, Value};

/// `_type` of a console administrator.
pub const ADMINISTRATOR_TYPE: &str = "jumpcloud_administrator";
/// `_class` of a console administrator.
pub const ADMINISTRATOR_CLASSES: &[&str] = &["User"];

/// The field that carries part of the administrator's API key.
const SECRET_FIELD: &str = "apiKeyHash";

/// Converts a console administrator.
pub fn administrator_entity(admin: &Object) -> Result<Entity, ConvertError> {
    let record = Record::new("administrator", admin);
    let id = record.id()?;
    let email = record.str("email")?.and_then(normalize_email);
    let (local, domain) = match email.as_deref().and_then(|e| e.rsplit_once('@')) {
        Some((local, domain)) => (
            (!local.is_empty()).then(|| local.to_owned()),
            (!domain.is_empty()).then(|| domain.to_owned()),
        ),
        None => (email.clone(), None),
    };
    let first = record.non_empty_str("firstname")?;
    let last = record.non_empty_str("lastname")?;
    let name = full_name(first, last)
        .or_else(|| email.clone())
        .unwrap_or_else(|| id.to_owned());
    let suspended = record.maybe_bool("suspended") == Some(true);
    let mfa_required = record.maybe_bool("enableMultiFactor") == Some(true);
    let totp_enrolled = record.maybe_bool("totpEnrolled") == Some(true);
    // Strict on purpose: an admin required to use MFA who never enrolled has none.
    let mfa = mfa_required && totp_enrolled;
    let role_names = record
        .string_list("roleNames")?
        .filter(|names| !names.is_empty());

    let mut props = Properties::default();
    props
        .set("id", id)
        .set("name", name.clone())
        .set("displayName", name)
        .set("email", one_item_list(email.clone()))
        .set("emailDomain", one_item_list(domain))
        .set("username", one_item_list(email))
        .set("shortLoginId", one_item_list(local))
        .set("firstName", Value::opt_text(first))
        .set("lastName", Value::opt_text(last))
        .set("isAdmin", true)
        .set("suspended", suspended)
        .set("active", !suspended)
        .set("isActive", !suspended)
        .set("mfaRequired", mfa_required)
        .set("totpEnrolled", totp_enrolled)
        .set("mfaEnabled", mfa)
        .set("isMfaEnabled", mfa)
        .set_some("roleName", record.non_empty_str("roleName")?)
        .set_some("roleNames", role_names)
        .set_some("apiKeyAllowed", record.maybe_bool("apiKeyAllowed"))
        .set_some("apiKeySet", record.maybe_bool("apiKeySet"))
        .set_some("apiKeyUpdatedOn", record.timestamp("apiKeyUpdatedAt"))
        .set_some("apiKeyExpiresOn", record.timestamp("apiKeyHash.expireAt"))
        .set_some("createdOn", record.timestamp("created"))
        .set_some("passwordChangedOn", record.timestamp("passwordUpdatedAt"))
        .set_some("totpUpdatedOn", record.timestamp("totpUpdatedAt"));

    let mut raw = admin.clone();
    raw.remove(SECRET_FIELD);
    Ok(Entity {
        key: id.to_owned(),
        entity_type: ADMINISTRATOR_TYPE,
        classes: ADMINISTRATOR_CLASSES,
        properties: props.into_vec(),
        raw_data: serde_json::to_string(&raw).ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::test_support::object;
    use serde_json::json;

    fn prop<'a>(entity: &'a Entity, name: &str) -> Option<&'a Value> {
        entity.property(name)
    }

    fn list(item: &str) -> Value {
        Value::TextList(vec![item.to_owned()])
    }

    #[test]
    fn an_administrator_with_every_field() {
        let admin = object(json!({
            "_id": "5f0000000000000000000a01", "email": " Grace.Hopper@Example.COM ",
            "firstname": "Grace", "lastname": "Hopper", "enableMultiFactor": true,
            "totpEnrolled": true, "suspended": false, "roleName": "Administrator with Billing",
            "roleNames": ["Administrator with Billing", "Help Desk"], "apiKeyAllowed": true,
            "apiKeySet": true, "apiKeyUpdatedAt": "2024-01-02T00:00:00Z",
            "apiKeyHash": {"prefix": "jca_SIMULATOR-FAKE", "expireAt": "2025-01-02T00:00:00Z"},
            "created": "2020-05-01T00:00:00Z", "passwordUpdatedAt": "2023-03-04T00:00:00Z",
            "totpUpdatedAt": "2021-07-08T00:00:00Z", "organization": "org1"
        }));
        let entity = administrator_entity(&admin).unwrap();
        assert_eq!(entity.key, "5f0000000000000000000a01");
        assert_eq!(entity.entity_type, "jumpcloud_administrator");
        assert_eq!(entity.classes, ["User"]);
        let expect = [
            ("name", Value::from("Grace Hopper")),
            ("displayName", Value::from("Grace Hopper")),
            ("email", list("grace.hopper@example.com")),
            ("emailDomain", list("example.com")),
            ("username", list("grace.hopper@example.com")),
            ("shortLoginId", list("grace.hopper")),
            ("firstName", Value::from("Grace")),
            ("lastName", Value::from("Hopper")),
            ("isAdmin", Value::Bool(true)),
            ("suspended", Value::Bool(false)),
            ("active", Value::Bool(true)),
            ("isActive", Value::Bool(true)),
            ("mfaRequired", Value::Bool(true)),
            ("totpEnrolled", Value::Bool(true)),
            ("mfaEnabled", Value::Bool(true)),
            ("isMfaEnabled", Value::Bool(true)),
            ("roleName", Value::from("Administrator with Billing")),
            (
                "roleNames",
                Value::TextList(vec![
                    "Administrator with Billing".into(),
                    "Help Desk".into(),
                ]),
            ),
            ("apiKeyAllowed", Value::Bool(true)),
            ("apiKeySet", Value::Bool(true)),
            ("apiKeyUpdatedOn", Value::Int(1_704_153_600_000)),
            ("apiKeyExpiresOn", Value::Int(1_735_776_000_000)),
            ("createdOn", Value::Int(1_588_291_200_000)),
            ("passwordChangedOn", Value::Int(1_677_888_000_000)),
            ("totpUpdatedOn", Value::Int(1_625_702_400_000)),
        ];
        for (name, value) in expect {
            assert_eq!(prop(&entity, name), Some(&value), "{name}");
        }
        let raw = entity.raw_data.unwrap();
        assert!(!raw.contains("apiKeyHash") && !raw.contains("SIMULATOR-FAKE"));
        assert!(raw.contains("Grace"));
    }

    #[test]
    fn mfa_needs_both_the_requirement_and_enrollment() {
        for (required, enrolled, mfa) in [
            (true, false, false),
            (false, true, false),
            (true, true, true),
        ] {
            let admin = object(json!({"_id": "a1", "email": "a@example.com",
                "enableMultiFactor": required, "totpEnrolled": enrolled}));
            let entity = administrator_entity(&admin).unwrap();
            assert_eq!(prop(&entity, "mfaEnabled"), Some(&Value::Bool(mfa)));
            assert_eq!(prop(&entity, "isMfaEnabled"), Some(&Value::Bool(mfa)));
        }
    }

    #[test]
    fn an_administrator_without_email_or_names() {
        let admin = object(json!({"_id": "5f0000000000000000000a02", "email": "",
            "firstname": "", "suspended": true, "roleNames": []}));
        let entity = administrator_entity(&admin).unwrap();
        for null in [
            "email",
            "emailDomain",
            "username",
            "shortLoginId",
            "firstName",
            "lastName",
        ] {
            assert_eq!(prop(&entity, null), Some(&Value::Null), "{null}");
        }
        assert_eq!(
            prop(&entity, "name"),
            Some(&Value::from("5f0000000000000000000a02"))
        );
        assert_eq!(prop(&entity, "active"), Some(&Value::Bool(false)));
        assert_eq!(prop(&entity, "suspended"), Some(&Value::Bool(true)));
        assert_eq!(prop(&entity, "roleNames"), None);
        assert_eq!(prop(&entity, "mfaEnabled"), Some(&Value::Bool(false)));
        let by_email = object(json!({"_id": "a3", "email": "Ops@Example.com"}));
        let entity = administrator_entity(&by_email).unwrap();
        assert_eq!(prop(&entity, "name"), Some(&Value::from("ops@example.com")));
    }

    #[test]
    fn wrong_types_are_errors_naming_the_field() {
        let err = administrator_entity(&object(json!({"_id": "a4", "email": 5}))).unwrap_err();
        assert_eq!(err.record_kind, "administrator");
        assert_eq!(err.field, "email");
        let err =
            administrator_entity(&object(json!({"_id": "a4", "roleNames": [1]}))).unwrap_err();
        assert_eq!(err.field, "roleNames");
    }
}

//! Pure conversions from JumpCloud JSON objects to graph objects (`data-model.md`).
//!
//! Every function here is plain Rust over `serde_json` values: no HTTP, no bindings, so
//! they are unit-tested and benchmarked natively. They never panic on odd input: a field
//! of the wrong type is a [`ConvertError`] naming the record and field; a missing
//! optional field is simply absent.

pub mod account;
pub mod administrator;
pub mod apple;
pub mod application;
pub mod device;
pub mod employee;
pub mod fields;
pub mod group;
pub mod policy;
pub mod system;
pub mod user;

use std::fmt;

/// A JSON object as received from the API.
pub type Object = serde_json::Map<String, serde_json::Value>;

/// Relationship class `HAS` (`fixtures/j1-data-model/relationship-classes.json`).
pub const HAS: &str = "HAS";
/// Relationship class `ASSIGNED`.
pub const ASSIGNED: &str = "ASSIGNED";
/// Relationship class `IS`.
pub const IS: &str = "IS";
/// Relationship class `OWNS`.
pub const OWNS: &str = "OWNS";
/// Relationship class `ENFORCES`.
pub const ENFORCES: &str = "ENFORCES";

/// A source record that cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError {
    /// What kind of record (`user`, `group`, ...).
    pub record_kind: &'static str,
    /// Its id, when it has a readable one.
    pub record_id: Option<String>,
    /// The offending field (dotted path for nested fields, e.g. `mfa.configured`).
    pub field: String,
    /// What was wrong, e.g. "expected a string, found a number".
    pub problem: String,
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.record_id {
            Some(id) => write!(
                f,
                "{} {id}: field `{}`: {}",
                self.record_kind, self.field, self.problem
            ),
            None => write!(
                f,
                "{}: field `{}`: {}",
                self.record_kind, self.field, self.problem
            ),
        }
    }
}

impl std::error::Error for ConvertError {}

/// Shared by the converters' tests: the recorded API responses.
#[cfg(test)]
pub(crate) mod test_support {
    use super::Object;
    use serde_json::Value as Json;

    /// Every recording in `fixtures/jumpcloud-recorded/`, by file name.
    pub const RECORDINGS: [(&str, &str); 6] = [
        (
            "fetchOrgs.json",
            include_str!("../../../fixtures/jumpcloud-recorded/fetchOrgs.json"),
        ),
        (
            "fetchUsers.json",
            include_str!("../../../fixtures/jumpcloud-recorded/fetchUsers.json"),
        ),
        (
            "fetchGroups.json",
            include_str!("../../../fixtures/jumpcloud-recorded/fetchGroups.json"),
        ),
        (
            "fetchApplications.json",
            include_str!("../../../fixtures/jumpcloud-recorded/fetchApplications.json"),
        ),
        (
            "fetch-apple-mdm.json",
            include_str!("../../../fixtures/jumpcloud-recorded/fetch-apple-mdm.json"),
        ),
        (
            "fetch-apple-devices.json",
            include_str!("../../../fixtures/jumpcloud-recorded/fetch-apple-devices.json"),
        ),
    ];

    /// The items of every recorded response to `path`, across all recordings: the
    /// `results` of a v1 envelope or the elements of a v2 array.
    pub fn recorded(path: &str) -> Vec<Object> {
        RECORDINGS
            .iter()
            .flat_map(|(name, text)| {
                let exchanges: Vec<Json> = serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
                exchanges
                    .into_iter()
                    .filter(|exchange| exchange["path"] == path)
                    .flat_map(|exchange| items(&exchange["body"]))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn items(body: &Json) -> Vec<Object> {
        let list = body.get("results").unwrap_or(body);
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item.as_object().cloned())
            .collect()
    }

    /// A JSON literal that must be an object.
    pub fn object(value: Json) -> Object {
        match value {
            Json::Object(object) => object,
            other => panic!("not an object: {other}"),
        }
    }
}

/// Arbitrary JSON fed to every converter: they must answer (entity or error), never panic.
///
/// Two kinds of input: random objects over the field names the converters read, and
/// recorded objects with some fields replaced, which mostly convert and so also exercise
/// the success paths (and the employee mapping) with odd values.
#[cfg(test)]
mod no_panic_tests {
    use super::*;
    use crate::model::{Entity, Value};
    use proptest::prelude::*;
    use serde_json::{Value as Json, json};

    /// Fields the converters read as strings (or timestamps), at any depth.
    #[rustfmt::skip]
    const STRING_FIELDS: &[&str] = &[
        "username", "email", "firstname", "lastname", "displayname", "displayName",
        "displayLabel", "name", "state", "overallStatus", "created", "exclusionUntil",
        "password_expiration_date", "employeeIdentifier", "employeeType", "company",
        "department", "jobTitle", "costCenter", "location", "manager", "description",
        "membershipMethod", "logoUrl", "ssoUrl", "type",
    ];

    /// Fields the converters read as booleans.
    #[rustfmt::skip]
    const FLAG_FIELDS: &[&str] = &[
        "activated", "suspended", "account_locked", "totp_enabled", "configured", "exclusion",
        "password_expired", "password_never_expires", "externally_managed",
        "ldap_binding_user", "samba_service_user", "sudo", "passwordless_sudo", "enabled",
        "active",
    ];

    /// Ids, objects, arrays and the secret `config`.
    #[rustfmt::skip]
    const OTHER_FIELDS: &[&str] = &[
        "id", "_id", "mfa", "mfaEnrollment", "sso", "attributes", "to", "paths", "tags",
        "config",
    ];

    /// Strings the converters treat specially.
    #[rustfmt::skip]
    const STRINGS: &[&str] = &[
        "", " ", "user", "user_group", "system", "ACTIVATED", "activated", "SUSPENDED",
        "STAGED", "ENROLLED", "service", "BOT", "Generic", "2021-02-12T17:45:42.369Z",
        "2021-10-24", "not a date", "Ada@Example.COM ", "@", "a@", "ünï@cødé.example",
        "6026bec6b8207255280d5981",
    ];

    fn string() -> impl Strategy<Value = Json> {
        prop_oneof![
            prop::sample::select(STRINGS).prop_map(Json::from),
            "\\PC{0,12}".prop_map(Json::String),
        ]
    }

    fn leaf() -> impl Strategy<Value = Json> {
        prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i64>().prop_map(Json::from),
            any::<f64>().prop_map(Json::from),
            string(),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            2 => prop::sample::select(STRING_FIELDS).prop_map(str::to_owned),
            1 => prop::sample::select(FLAG_FIELDS).prop_map(str::to_owned),
            1 => prop::sample::select(OTHER_FIELDS).prop_map(str::to_owned),
            1 => "[a-z_]{1,8}",
        ]
    }

    fn object_of(values: impl Strategy<Value = Json>) -> impl Strategy<Value = Object> {
        prop::collection::vec((key(), values), 0..24).prop_map(|pairs| pairs.into_iter().collect())
    }

    fn json() -> impl Strategy<Value = Json> {
        leaf().prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                object_of(inner).prop_map(Json::Object),
            ]
        })
    }

    /// A random object whose id is usually a usable string, so conversion gets past it.
    fn random_record() -> impl Strategy<Value = Object> {
        let id = prop_oneof![
            3 => "[0-9a-f]{24}".prop_map(Json::String),
            1 => json(),
        ];
        (object_of(json()), id).prop_map(|(mut object, id)| {
            object.insert("id".to_owned(), id);
            object
        })
    }

    /// `base` with a few string and flag fields replaced by well-typed odd values, and
    /// now and then any field by anything.
    fn mutated(base: Object) -> impl Strategy<Value = Object> {
        let strings = (prop::sample::select(STRING_FIELDS), string());
        let flags = (
            prop::sample::select(FLAG_FIELDS),
            prop_oneof![Just(Json::Null), any::<bool>().prop_map(Json::Bool)],
        );
        let anything = (key(), json());
        (
            prop::collection::vec(strings, 0..6),
            prop::collection::vec(flags, 0..4),
            prop::collection::vec(anything, 0..2),
        )
            .prop_map(move |(strings, flags, anything)| {
                let mut object = base.clone();
                let typed = strings.into_iter().chain(flags);
                let replacements = typed.map(|(k, v)| (k.to_owned(), v)).chain(anything);
                object.extend(replacements);
                object
            })
    }

    /// Random objects, or the first recorded item of `path` with fields replaced.
    fn input(path: &str) -> impl Strategy<Value = Object> {
        let base = test_support::recorded(path).swap_remove(0);
        prop_oneof![random_record(), mutated(base)]
    }

    /// A group-members item: `to` with an odd type and id, or anything at all.
    fn member() -> impl Strategy<Value = Object> {
        let kind = prop_oneof![Just(Json::from("user")), string()];
        let id = prop_oneof![3 => string(), 1 => json()];
        let edge = (kind, id).prop_map(|(kind, id)| {
            test_support::object(json!({"attributes": null, "to": {"id": id, "type": kind}}))
        });
        prop_oneof![edge, object_of(json())]
    }

    fn check_error(error: &ConvertError) -> Result<(), TestCaseError> {
        prop_assert!(!error.field.is_empty());
        prop_assert!(!error.problem.is_empty());
        prop_assert!(error.to_string().contains(&error.field));
        Ok(())
    }

    /// What holds for every converted entity, whatever the input.
    fn check_entity(entity: &Entity) -> Result<(), TestCaseError> {
        prop_assert!(!entity.key.is_empty());
        for name in ["name", "displayName"] {
            let value = entity.property(name);
            prop_assert!(
                matches!(value, Some(Value::Text(text)) if !text.is_empty()),
                "{} {name} = {:?}",
                entity.entity_type,
                value
            );
        }
        let mut names: Vec<&str> = entity.properties.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        let total = names.len();
        names.dedup();
        prop_assert_eq!(names.len(), total, "a property is set twice");
        prop_assert!(entity.raw_data.is_some());
        Ok(())
    }

    fn check<T>(
        result: Result<T, ConvertError>,
        ok: impl FnOnce(&T) -> Result<(), TestCaseError>,
    ) -> Result<(), TestCaseError> {
        match result {
            Ok(value) => ok(&value),
            Err(error) => check_error(&error),
        }
    }

    const CONSOLE: &str = "https://console.jumpcloud.com";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn account_never_panics(org in input("/api/organizations")) {
            check(account::account_entity(&org, CONSOLE), check_entity)?;
        }

        #[test]
        fn user_never_panics(user in input("/api/systemusers")) {
            check(user::user_entity(&user, CONSOLE), |entity| {
                check_entity(entity)?;
                for required in ["firstName", "lastName", "email", "shortLoginId", "username"] {
                    prop_assert!(entity.property(required).is_some(), "{required} missing");
                }
                if let Some(mapped) = employee::employee_mapping(entity) {
                    let email = mapped.target.key.strip_prefix("employee:").unwrap_or_default();
                    prop_assert!(!email.is_empty());
                    prop_assert_eq!(email, email.trim().to_lowercase());
                    prop_assert_eq!(&mapped.source_key, &entity.key);
                }
                let edge = account::account_has("org-key-0000", entity);
                prop_assert_eq!(edge.relationship_type, account::ACCOUNT_HAS_USER_TYPE);
                prop_assert_eq!(&edge.to_key, &entity.key);
                Ok(())
            })?;
        }

        #[test]
        fn group_never_panics(group in input("/api/v2/usergroups"), member in member()) {
            check(group::group_entity(&group, CONSOLE), check_entity)?;
            check(group::member_user_id(&member), |id| {
                prop_assert!(id.as_ref().is_none_or(|id| !id.is_empty()));
                Ok(())
            })?;
        }

        #[test]
        fn application_never_panics(
            app in input("/api/applications"),
            item in input("/api/v2/applications/617c3664e6f8ae27f7e1201e/users"),
        ) {
            check(application::application_entity(&app, CONSOLE), |entity| {
                check_entity(entity)?;
                let raw: Object = serde_json::from_str(entity.raw_data.as_deref().unwrap_or("{}"))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(!raw.contains_key("config"));
                Ok(())
            })?;
            check(application::binding(&item), |found| {
                prop_assert!(found.as_ref().is_none_or(|b| !b.id.is_empty()));
                Ok(())
            })?;
        }

        #[test]
        fn normalize_email_never_panics(raw in "\\PC{0,40}") {
            if let Some(email) = employee::normalize_email(&raw) {
                prop_assert!(!email.is_empty());
                prop_assert_eq!(email.trim(), email.as_str());
            }
        }
    }
}

//! The `jumpcloud_user` entity, from an item of `GET /api/systemusers`.
//!
//! The `User` class requires `firstName`, `lastName`, `email`, `shortLoginId` and
//! `username`, so those are always set (null when unknown). The other properties are
//! grouped below by concern, as in `data-model.md`.

use super::employee::normalize_email;
use super::fields::{Properties, Record, console_link, full_name, one_item_list, raw_json};
use super::{ConvertError, Object};
use crate::model::{Entity, Value};

/// `_type` of a system user.
pub const USER_TYPE: &str = "jumpcloud_user";
/// `_class` of a system user.
pub const USER_CLASSES: &[&str] = &["User"];

/// Converts a system user. `console_url` is the configured base URL, for `webLink`.
pub fn user_entity(user: &Object, console_url: &str) -> Result<Entity, ConvertError> {
    let mut entity = user_entity_from(user, "", console_url)?;
    entity.raw_data = raw_json(user);
    Ok(entity)
}

/// [`user_entity`] with the raw data given as the JSON text the API sent (no
/// re-serialization: the client keeps each record's text).
pub fn user_entity_from(
    user: &Object,
    raw: &str,
    console_url: &str,
) -> Result<Entity, ConvertError> {
    let record = Record::new("user", user);
    let id = record.id()?;
    let mut props = Properties::default();
    props.set("id", id);
    identity(&record, id, &mut props)?;
    lifecycle(&record, &mut props)?;
    mfa(&record, &mut props)?;
    password(&record, &mut props)?;
    employment(&record, &mut props)?;
    privileges(&record, &mut props)?;
    props.set(
        "webLink",
        console_link(console_url, &format!("/#/users/{id}/details")),
    );

    Ok(Entity {
        key: id.to_owned(),
        entity_type: USER_TYPE,
        classes: USER_CLASSES,
        properties: props.into_vec(),
        raw_data: Some(raw.to_owned()),
    })
}

/// Names, login ids and email.
fn identity(record: &Record, id: &str, props: &mut Properties) -> Result<(), ConvertError> {
    let username = record.non_empty_str("username")?;
    let email = record.str("email")?.and_then(normalize_email);
    let email_domain = email.as_deref().and_then(domain_of);
    let first = record.non_empty_str("firstname")?;
    let last = record.non_empty_str("lastname")?;
    let display = record.non_empty_str("displayname")?;

    // Every entity needs a name; the id is the last resort when the user has none.
    let name = full_name(first, last)
        .or_else(|| display.or(username).map(str::to_owned))
        .unwrap_or_else(|| id.to_owned());
    let display_name = display.map_or_else(|| name.clone(), str::to_owned);

    props
        .set("name", name)
        .set("displayName", display_name)
        .set("username", one_item_list(username))
        .set("shortLoginId", one_item_list(username))
        .set("email", one_item_list(email))
        .set("emailDomain", one_item_list(email_domain))
        .set("firstName", Value::opt_text(first))
        .set("lastName", Value::opt_text(last));
    Ok(())
}

/// The part after the last `@`, when there is one.
fn domain_of(email: &str) -> Option<String> {
    email
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .filter(|domain| !domain.is_empty())
        .map(str::to_owned)
}

/// State, activity, suspension, lock, creation.
fn lifecycle(record: &Record, props: &mut Properties) -> Result<(), ConvertError> {
    let suspended = record.flag("suspended")?;
    let state = record.non_empty_str("state")?;
    // `state` is authoritative when present: recorded users carry `state: "ACTIVATED"`
    // with `activated: false`. Older records have only the `activated` flag.
    let active = match state {
        Some(state) => state.eq_ignore_ascii_case("ACTIVATED") && !suspended,
        None => record.flag("activated")? && !suspended,
    };
    props
        .set_some("state", state.map(str::to_ascii_lowercase))
        .set("active", active)
        .set("isActive", active)
        .set("suspended", suspended)
        .set("locked", record.flag("account_locked")?)
        .set_some("createdOn", record.timestamp("created"));
    Ok(())
}

/// MFA: enabled by TOTP, by a configured `mfa`, or by a completed enrollment.
fn mfa(record: &Record, props: &mut Properties) -> Result<(), ConvertError> {
    // Read every field before combining, so a bad one is reported whatever the others say.
    let totp = record.flag("totp_enabled")?;
    let configured = record.flag("mfa.configured")?;
    let enrolled = record.str("mfaEnrollment.overallStatus")? == Some("ENROLLED");
    let enabled = totp || configured || enrolled;
    props
        .set("mfaEnabled", enabled)
        .set("isMfaEnabled", enabled)
        .set("mfaConfigured", configured)
        .set("mfaExclusion", record.flag("mfa.exclusion")?)
        .set_some("mfaExclusionUntil", record.timestamp("mfa.exclusionUntil"));
    Ok(())
}

/// Password expiry.
fn password(record: &Record, props: &mut Properties) -> Result<(), ConvertError> {
    props
        .set("passwordExpired", record.flag("password_expired")?)
        .set_some(
            "passwordExpirationOn",
            record.timestamp("password_expiration_date"),
        )
        .set(
            "passwordNeverExpires",
            record.flag("password_never_expires")?,
        );
    Ok(())
}

/// HR attributes, copied as JumpCloud holds them.
fn employment(record: &Record, props: &mut Properties) -> Result<(), ConvertError> {
    props
        .set_some("employeeId", record.non_empty_str("employeeIdentifier")?)
        .set_some("employeeType", record.str("employeeType")?)
        .set_some("company", record.str("company")?)
        .set_some("department", record.str("department")?)
        .set_some("jobTitle", record.str("jobTitle")?)
        .set_some("costCenter", record.str("costCenter")?)
        .set_some("location", record.str("location")?)
        .set_some("managerId", record.str("manager")?);
    Ok(())
}

/// Directory and host privileges, and tags.
fn privileges(record: &Record, props: &mut Properties) -> Result<(), ConvertError> {
    props
        .set("externallyManaged", record.flag("externally_managed")?)
        .set("ldapBindingUser", record.flag("ldap_binding_user")?)
        .set("sambaServiceUser", record.flag("samba_service_user")?)
        .set("sudo", record.flag("sudo")?)
        .set("passwordlessSudo", record.flag("passwordless_sudo")?)
        .set_some("userTags", record.string_list("tags")?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::test_support::{object, recorded};
    use serde_json::{Value as Json, json};

    const CONSOLE: &str = "https://console.jumpcloud.com";
    const ADA: &str = "6026bec6b8207255280d5981";

    fn list(items: &[&str]) -> Value {
        Value::TextList(items.iter().map(|s| (*s).to_owned()).collect())
    }

    fn convert(value: Json) -> Entity {
        user_entity(&object(value), CONSOLE).expect("converts")
    }

    fn prop<'a>(entity: &'a Entity, name: &str) -> &'a Value {
        entity
            .property(name)
            .unwrap_or_else(|| panic!("{name} is not set"))
    }

    /// The recorded user of 2021-11, which has `state`.
    fn recorded_with_state() -> Object {
        recorded("/api/systemusers")
            .into_iter()
            .find(|u| u.contains_key("state"))
            .expect("a recorded user with state")
    }

    #[test]
    fn every_recorded_user_converts() {
        let users = recorded("/api/systemusers");
        assert_eq!(users.len(), 3, "the same user in three recordings");
        for user in &users {
            let entity = user_entity(user, CONSOLE).expect("recorded user converts");
            assert_eq!(entity.key, ADA);
            assert_eq!(entity.entity_type, "jumpcloud_user");
            assert_eq!(entity.classes, ["User"]);
            assert_eq!(prop(&entity, "id"), &Value::from(ADA));
            assert_eq!(prop(&entity, "name"), &Value::from("Ada Lovelace"));
            assert_eq!(prop(&entity, "displayName"), &Value::from("Ada L"));
            assert_eq!(prop(&entity, "username"), &list(&["adalovelacetest"]));
            assert_eq!(prop(&entity, "shortLoginId"), &list(&["adalovelacetest"]));
            assert_eq!(
                prop(&entity, "email"),
                &list(&["ada.lovelace+testjc@example.com"])
            );
            assert_eq!(prop(&entity, "emailDomain"), &list(&["example.com"]));
            assert_eq!(prop(&entity, "firstName"), &Value::from("Ada"));
            assert_eq!(prop(&entity, "lastName"), &Value::from("Lovelace"));
            assert_eq!(prop(&entity, "createdOn"), &Value::Int(1_613_151_942_369));
            assert_eq!(prop(&entity, "suspended"), &Value::Bool(false));
            assert_eq!(prop(&entity, "locked"), &Value::Bool(false));
            assert_eq!(prop(&entity, "mfaEnabled"), &Value::Bool(false));
            assert_eq!(prop(&entity, "isMfaEnabled"), &Value::Bool(false));
            assert_eq!(prop(&entity, "mfaConfigured"), &Value::Bool(false));
            assert_eq!(prop(&entity, "mfaExclusion"), &Value::Bool(false));
            assert_eq!(prop(&entity, "passwordExpired"), &Value::Bool(false));
            assert_eq!(prop(&entity, "passwordNeverExpires"), &Value::Bool(false));
            assert_eq!(entity.property("employeeId"), None, "null identifier");
            assert_eq!(prop(&entity, "employeeType"), &Value::from(""));
            assert_eq!(prop(&entity, "sudo"), &Value::Bool(false));
            assert_eq!(prop(&entity, "externallyManaged"), &Value::Bool(false));
            assert_eq!(
                prop(&entity, "webLink"),
                &Value::from(
                    "https://console.jumpcloud.com/#/users/6026bec6b8207255280d5981/details"
                )
            );
            let raw: Object =
                serde_json::from_str(entity.raw_data.as_deref().expect("raw data")).expect("JSON");
            assert_eq!(&raw, user, "raw data is the source object");
        }
    }

    #[test]
    fn recorded_user_without_state_follows_activated() {
        let user = recorded("/api/systemusers")
            .into_iter()
            .find(|u| !u.contains_key("state"))
            .expect("a recorded user without state");
        let entity = user_entity(&user, CONSOLE).expect("converts");
        assert_eq!(entity.property("state"), None);
        assert_eq!(prop(&entity, "active"), &Value::Bool(false));
        assert_eq!(prop(&entity, "isActive"), &Value::Bool(false));
    }

    #[test]
    fn recorded_state_activated_wins_over_activated_false() {
        let user = recorded_with_state();
        assert_eq!(user["activated"], false);
        let entity = user_entity(&user, CONSOLE).expect("converts");
        assert_eq!(prop(&entity, "state"), &Value::from("activated"));
        assert_eq!(prop(&entity, "active"), &Value::Bool(true));
        assert_eq!(prop(&entity, "isActive"), &Value::Bool(true));
    }

    #[test]
    fn suspended_users_are_inactive_whatever_the_state() {
        let mut user = recorded_with_state();
        user.insert("suspended".to_owned(), json!(true));
        let entity = user_entity(&user, CONSOLE).expect("converts");
        assert_eq!(prop(&entity, "active"), &Value::Bool(false));
        assert_eq!(prop(&entity, "suspended"), &Value::Bool(true));

        let entity = convert(json!({"id": ADA, "activated": true, "suspended": true}));
        assert_eq!(prop(&entity, "active"), &Value::Bool(false));

        let entity = convert(json!({"id": ADA, "state": "SUSPENDED", "suspended": true}));
        assert_eq!(prop(&entity, "state"), &Value::from("suspended"));
        assert_eq!(prop(&entity, "isActive"), &Value::Bool(false));
    }

    #[test]
    fn staged_users_are_inactive_even_if_activated() {
        let entity = convert(json!({"id": ADA, "state": "STAGED", "activated": true}));
        assert_eq!(prop(&entity, "state"), &Value::from("staged"));
        assert_eq!(prop(&entity, "active"), &Value::Bool(false));
    }

    #[test]
    fn without_state_activated_decides() {
        let entity = convert(json!({"id": ADA, "activated": true}));
        assert_eq!(prop(&entity, "active"), &Value::Bool(true));
        let entity = convert(json!({"id": ADA, "state": null, "activated": true}));
        assert_eq!(entity.property("state"), None);
        assert_eq!(prop(&entity, "active"), &Value::Bool(true));
        let entity = convert(json!({"id": ADA}));
        assert_eq!(prop(&entity, "active"), &Value::Bool(false));
    }

    #[test]
    fn null_or_missing_mfa_is_false() {
        for user in [json!({"id": ADA, "mfa": null}), json!({"id": ADA})] {
            let entity = convert(user);
            assert_eq!(prop(&entity, "mfaEnabled"), &Value::Bool(false));
            assert_eq!(prop(&entity, "isMfaEnabled"), &Value::Bool(false));
            assert_eq!(prop(&entity, "mfaConfigured"), &Value::Bool(false));
            assert_eq!(prop(&entity, "mfaExclusion"), &Value::Bool(false));
            assert_eq!(entity.property("mfaExclusionUntil"), None);
        }
    }

    #[test]
    fn any_of_totp_mfa_or_enrollment_enables_mfa() {
        let cases = [
            json!({"id": ADA, "totp_enabled": true}),
            json!({"id": ADA, "mfa": {"configured": true}}),
            json!({"id": ADA, "mfaEnrollment": {"overallStatus": "ENROLLED"}}),
        ];
        for user in cases {
            let entity = convert(user.clone());
            assert_eq!(prop(&entity, "mfaEnabled"), &Value::Bool(true), "{user}");
            assert_eq!(prop(&entity, "isMfaEnabled"), &Value::Bool(true), "{user}");
        }
        let pending =
            convert(json!({"id": ADA, "mfaEnrollment": {"overallStatus": "PENDING_ACTIVATION"}}));
        assert_eq!(prop(&pending, "mfaEnabled"), &Value::Bool(false));
    }

    #[test]
    fn mfa_exclusion_details() {
        let entity = convert(json!({"id": ADA, "mfa": {
            "configured": false, "exclusion": true, "exclusionUntil": "2021-10-24T00:00:00Z"
        }}));
        assert_eq!(prop(&entity, "mfaExclusion"), &Value::Bool(true));
        assert_eq!(
            prop(&entity, "mfaExclusionUntil"),
            &Value::Int(1_635_033_600_000)
        );
        assert_eq!(prop(&entity, "mfaConfigured"), &Value::Bool(false));
    }

    #[test]
    fn missing_or_empty_email_is_null() {
        for user in [
            json!({"id": ADA}),
            json!({"id": ADA, "email": null}),
            json!({"id": ADA, "email": ""}),
            json!({"id": ADA, "email": "   "}),
        ] {
            let entity = convert(user.clone());
            assert_eq!(prop(&entity, "email"), &Value::Null, "{user}");
            assert_eq!(prop(&entity, "emailDomain"), &Value::Null, "{user}");
        }
    }

    #[test]
    fn email_is_trimmed_and_lowercased() {
        let entity = convert(json!({"id": ADA, "email": "  Ada.Lovelace@Example.COM "}));
        assert_eq!(prop(&entity, "email"), &list(&["ada.lovelace@example.com"]));
        assert_eq!(prop(&entity, "emailDomain"), &list(&["example.com"]));
        let entity = convert(json!({"id": ADA, "email": "no-at-sign"}));
        assert_eq!(prop(&entity, "email"), &list(&["no-at-sign"]));
        assert_eq!(prop(&entity, "emailDomain"), &Value::Null);
    }

    #[test]
    fn required_user_properties_are_null_when_unknown() {
        let entity = convert(json!({"_id": ADA}));
        for name in ["firstName", "lastName", "email", "shortLoginId", "username"] {
            assert_eq!(prop(&entity, name), &Value::Null, "{name}");
        }
        assert_eq!(
            prop(&entity, "name"),
            &Value::from(ADA),
            "the id is the last resort"
        );
        assert_eq!(prop(&entity, "displayName"), &Value::from(ADA));
    }

    #[test]
    fn name_falls_back_to_displayname_then_username() {
        let entity = convert(json!({"id": ADA, "firstname": "", "lastname": "Lovelace"}));
        assert_eq!(prop(&entity, "name"), &Value::from("Lovelace"));
        assert_eq!(prop(&entity, "firstName"), &Value::Null);

        let entity = convert(json!({"id": ADA, "displayname": "The Countess", "username": "ada"}));
        assert_eq!(prop(&entity, "name"), &Value::from("The Countess"));
        assert_eq!(prop(&entity, "displayName"), &Value::from("The Countess"));

        let entity = convert(json!({"id": ADA, "displayname": "", "username": "ada"}));
        assert_eq!(prop(&entity, "name"), &Value::from("ada"));
        assert_eq!(prop(&entity, "displayName"), &Value::from("ada"));
    }

    #[test]
    fn unicode_names_are_kept() {
        let entity = convert(json!({
            "id": ADA, "firstname": "Zoë", "lastname": "Ñúñez 李", "username": "zoë",
            "email": "ZOË@Exämple.org"
        }));
        assert_eq!(prop(&entity, "name"), &Value::from("Zoë Ñúñez 李"));
        assert_eq!(prop(&entity, "displayName"), &Value::from("Zoë Ñúñez 李"));
        assert_eq!(prop(&entity, "username"), &list(&["zoë"]));
        assert_eq!(prop(&entity, "email"), &list(&["zoë@exämple.org"]));
        assert_eq!(prop(&entity, "emailDomain"), &list(&["exämple.org"]));
    }

    #[test]
    fn employment_password_and_privilege_fields() {
        let entity = convert(json!({
            "id": ADA, "employeeIdentifier": "E-42", "employeeType": "contractor",
            "company": "Analytical Engines", "department": "R&D", "jobTitle": "Programmer",
            "costCenter": "CC1", "location": "London", "manager": "5f0c1a2b3c4d5e6f7a8b9c0d",
            "password_expired": true, "password_never_expires": false,
            "password_expiration_date": "2021-10-24", "account_locked": true,
            "externally_managed": true, "ldap_binding_user": true, "samba_service_user": true,
            "sudo": true, "passwordless_sudo": true, "tags": ["eng", "admins"]
        }));
        assert_eq!(prop(&entity, "employeeId"), &Value::from("E-42"));
        assert_eq!(prop(&entity, "employeeType"), &Value::from("contractor"));
        assert_eq!(prop(&entity, "company"), &Value::from("Analytical Engines"));
        assert_eq!(prop(&entity, "department"), &Value::from("R&D"));
        assert_eq!(prop(&entity, "jobTitle"), &Value::from("Programmer"));
        assert_eq!(prop(&entity, "costCenter"), &Value::from("CC1"));
        assert_eq!(prop(&entity, "location"), &Value::from("London"));
        assert_eq!(
            prop(&entity, "managerId"),
            &Value::from("5f0c1a2b3c4d5e6f7a8b9c0d")
        );
        assert_eq!(prop(&entity, "passwordExpired"), &Value::Bool(true));
        assert_eq!(
            prop(&entity, "passwordExpirationOn"),
            &Value::Int(1_635_033_600_000)
        );
        assert_eq!(prop(&entity, "locked"), &Value::Bool(true));
        for flag in [
            "externallyManaged",
            "ldapBindingUser",
            "sambaServiceUser",
            "sudo",
            "passwordlessSudo",
        ] {
            assert_eq!(prop(&entity, flag), &Value::Bool(true), "{flag}");
        }
        assert_eq!(prop(&entity, "userTags"), &list(&["eng", "admins"]));
    }

    #[test]
    fn unparsable_timestamps_are_left_out() {
        let entity = convert(json!({
            "id": ADA, "created": "last tuesday", "password_expiration_date": 17
        }));
        assert_eq!(entity.property("createdOn"), None);
        assert_eq!(entity.property("passwordExpirationOn"), None);
    }

    #[test]
    fn wrong_field_types_are_errors_naming_the_field() {
        let cases = [
            (
                json!({"id": ADA, "email": 42}),
                "email",
                "expected a string, found a number",
            ),
            (
                json!({"id": ADA, "mfa": "yes"}),
                "mfa",
                "expected an object, found a string",
            ),
            (
                json!({"id": ADA, "mfa": {"configured": "true"}}),
                "mfa.configured",
                "expected a boolean, found a string",
            ),
            (
                json!({"id": ADA, "suspended": 1}),
                "suspended",
                "expected a boolean, found a number",
            ),
            (
                json!({"id": ADA, "state": true}),
                "state",
                "expected a string, found a boolean",
            ),
            (
                json!({"id": ADA, "tags": "eng"}),
                "tags",
                "expected an array, found a string",
            ),
            (json!({"id": 7}), "id", "expected a string, found a number"),
        ];
        for (user, field, problem) in cases {
            let err = user_entity(&object(user.clone()), CONSOLE).unwrap_err();
            assert_eq!(err.record_kind, "user", "{user}");
            assert_eq!(err.field, field, "{user}");
            assert_eq!(err.problem, problem, "{user}");
        }
    }
}

//! The user → employee mapping: a mapped `IS` relationship from each person-like
//! `jumpcloud_user` to the `employee` (Person) with the same email, which the host
//! resolves against Person entities from other integrations or creates.

use super::IS;
use super::administrator::ADMINISTRATOR_TYPE;
use super::user::USER_TYPE;
use crate::model::{Entity, MappedRelationship, TargetEntity, Value};

/// `_type` of the Person created when no other integration has one for the email.
pub const EMPLOYEE_TYPE: &str = "employee";
/// `_class` of an employee.
pub const EMPLOYEE_CLASSES: &[&str] = &["Person"];
/// `jumpcloud_user` IS `employee`.
pub const USER_IS_PERSON_TYPE: &str = "jumpcloud_user_is_person";
/// `jumpcloud_administrator` IS `employee`.
pub const ADMINISTRATOR_IS_PERSON_TYPE: &str = "jumpcloud_administrator_is_person";

/// `employeeType` values of accounts that are not people (compared case-insensitively).
const NON_PERSON_TYPES: [&str; 3] = ["generic", "service", "bot"];

/// An email as the graph compares it: trimmed and lowercased. `None` when blank.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim();
    (!email.is_empty()).then(|| email.to_lowercase())
}

/// The mapped `IS` relationship for a converted `jumpcloud_user` or
/// `jumpcloud_administrator`, or `None` when it has no email, is a user that is not a
/// person (`employeeType` generic, service or bot; administrators have no
/// `employeeType`), or is another kind of entity.
pub fn employee_mapping(entity: &Entity) -> Option<MappedRelationship> {
    let relationship_type = match entity.entity_type {
        USER_TYPE => USER_IS_PERSON_TYPE,
        ADMINISTRATOR_TYPE => ADMINISTRATOR_IS_PERSON_TYPE,
        _ => return None,
    };
    if !is_person(entity) {
        return None;
    }
    let email = primary_email(entity)?;
    let target_key = format!("employee:{email}");
    Some(MappedRelationship {
        key: format!("{}|is|{target_key}", entity.key),
        relationship_type,
        class: IS,
        source_key: entity.key.clone(),
        target_filter_keys: vec![vec!["_class", "email"]],
        target: TargetEntity {
            key: target_key,
            entity_type: EMPLOYEE_TYPE,
            classes: EMPLOYEE_CLASSES,
            properties: person_properties(entity, email),
        },
        properties: vec![("displayName", Value::from(IS))],
    })
}

fn is_person(user: &Entity) -> bool {
    match user.property("employeeType") {
        Some(Value::Text(kind)) => !NON_PERSON_TYPES
            .iter()
            .any(|excluded| kind.trim().eq_ignore_ascii_case(excluded)),
        _ => true,
    }
}

/// The user's first email, normalized (the converter already did; this keeps the
/// mapping right for entities built elsewhere).
fn primary_email(user: &Entity) -> Option<String> {
    match user.property("email")? {
        Value::TextList(emails) => emails.iter().find_map(|email| normalize_email(email)),
        Value::Text(email) => normalize_email(email),
        _ => None,
    }
}

/// The Person's properties. `Person` requires `firstName` and `lastName` as strings, so
/// a missing one is "", and the name falls back to the email.
fn person_properties(user: &Entity, email: String) -> Vec<(&'static str, Value)> {
    let first = text(user, "firstName");
    let last = text(user, "lastName");
    let full = [first, last]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let name = if full.is_empty() { email.clone() } else { full };
    vec![
        ("email", Value::TextList(vec![email])),
        ("firstName", Value::from(first)),
        ("lastName", Value::from(last)),
        ("name", Value::from(name.clone())),
        ("displayName", Value::from(name)),
    ]
}

/// A text property of the entity, trimmed; "" when missing or not text.
fn text<'a>(entity: &'a Entity, name: &str) -> &'a str {
    match entity.property(name) {
        Some(Value::Text(text)) => text.trim(),
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::test_support::{object, recorded};
    use crate::convert::user::user_entity;
    use serde_json::{Value as Json, json};

    const CONSOLE: &str = "https://console.jumpcloud.com";

    fn user(value: Json) -> Entity {
        user_entity(&object(value), CONSOLE).expect("converts")
    }

    fn target_property<'a>(mapped: &'a MappedRelationship, name: &str) -> Option<&'a Value> {
        mapped
            .target
            .properties
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    #[test]
    fn normalize_email_trims_and_lowercases() {
        assert_eq!(
            normalize_email("  Ada.Lovelace@Example.COM\t").as_deref(),
            Some("ada.lovelace@example.com")
        );
        assert_eq!(
            normalize_email("ÉMILE@EXAMPLE.FR").as_deref(),
            Some("émile@example.fr")
        );
        assert_eq!(normalize_email(""), None);
        assert_eq!(normalize_email(" \n "), None);
    }

    #[test]
    fn recorded_user_maps_to_an_employee() {
        let entity = user_entity(&recorded("/api/systemusers")[0], CONSOLE).expect("converts");
        let mapped = employee_mapping(&entity).expect("a person with an email");
        let email = "ada.lovelace+testjc@example.com";
        assert_eq!(
            mapped.key,
            format!("6026bec6b8207255280d5981|is|employee:{email}")
        );
        assert_eq!(mapped.relationship_type, "jumpcloud_user_is_person");
        assert_eq!(mapped.class, "IS");
        assert_eq!(mapped.source_key, "6026bec6b8207255280d5981");
        assert_eq!(mapped.target_filter_keys, vec![vec!["_class", "email"]]);
        assert_eq!(mapped.properties, vec![("displayName", Value::from("IS"))]);
        assert_eq!(mapped.target.key, format!("employee:{email}"));
        assert_eq!(mapped.target.entity_type, "employee");
        assert_eq!(mapped.target.classes, ["Person"]);
        assert_eq!(
            mapped.target.properties,
            vec![
                ("email", Value::TextList(vec![email.to_owned()])),
                ("firstName", Value::from("Ada")),
                ("lastName", Value::from("Lovelace")),
                ("name", Value::from("Ada Lovelace")),
                ("displayName", Value::from("Ada Lovelace")),
            ]
        );
    }

    #[test]
    fn users_without_email_are_not_mapped() {
        for value in [
            json!({"id": "u1", "firstname": "Ada"}),
            json!({"id": "u1", "email": null}),
            json!({"id": "u1", "email": "  "}),
        ] {
            assert_eq!(employee_mapping(&user(value.clone())), None, "{value}");
        }
    }

    #[test]
    fn non_person_accounts_are_not_mapped() {
        for kind in ["generic", "Service", "BOT", " bot "] {
            let entity =
                user(json!({"id": "u1", "email": "build@example.com", "employeeType": kind}));
            assert_eq!(employee_mapping(&entity), None, "{kind}");
        }
        for kind in ["", "employee", "contractor", "robotics"] {
            let entity =
                user(json!({"id": "u1", "email": "ada@example.com", "employeeType": kind}));
            assert!(employee_mapping(&entity).is_some(), "{kind:?}");
        }
    }

    #[test]
    fn suspended_and_inactive_people_are_still_mapped() {
        let entity = user(json!({"id": "u1", "email": "ada@example.com", "suspended": true}));
        assert_eq!(entity.property("active"), Some(&Value::Bool(false)));
        let mapped = employee_mapping(&entity).expect("mapped");
        assert_eq!(mapped.target.key, "employee:ada@example.com");
    }

    #[test]
    fn emails_differing_in_case_map_to_one_employee() {
        let first = user(json!({"id": "u1", "email": "Ada@Example.com"}));
        let second = user(json!({"id": "u2", "email": " ADA@example.COM "}));
        let first = employee_mapping(&first).expect("mapped");
        let second = employee_mapping(&second).expect("mapped");
        assert_eq!(first.target.key, "employee:ada@example.com");
        assert_eq!(first.target.key, second.target.key);
        assert_ne!(first.key, second.key, "one edge per user");
    }

    #[test]
    fn nameless_users_give_an_employee_named_by_email() {
        let entity = user(json!({"id": "u1", "email": "ada@example.com", "username": "ada"}));
        let mapped = employee_mapping(&entity).expect("mapped");
        assert_eq!(
            target_property(&mapped, "firstName"),
            Some(&Value::from(""))
        );
        assert_eq!(target_property(&mapped, "lastName"), Some(&Value::from("")));
        assert_eq!(
            target_property(&mapped, "name"),
            Some(&Value::from("ada@example.com"))
        );
        assert_eq!(
            target_property(&mapped, "displayName"),
            Some(&Value::from("ada@example.com"))
        );
    }

    #[test]
    fn unicode_names_reach_the_employee() {
        let entity = user(json!({
            "id": "u1", "email": "Zoë@Example.org", "firstname": "Zoë", "lastname": "李"
        }));
        let mapped = employee_mapping(&entity).expect("mapped");
        assert_eq!(mapped.target.key, "employee:zoë@example.org");
        assert_eq!(
            target_property(&mapped, "name"),
            Some(&Value::from("Zoë 李"))
        );
    }

    #[test]
    fn only_users_are_mapped() {
        let mut entity = user(json!({"id": "u1", "email": "ada@example.com"}));
        entity.entity_type = "jumpcloud_group";
        assert_eq!(employee_mapping(&entity), None);
    }
}

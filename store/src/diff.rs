//! What changed in an object between two versions: J1's "captured change".
//!
//! An object is updated when its `_class`, its endpoints or any property other than
//! `_rawData` differs; raw data alone never makes a version (the API's own
//! bookkeeping fields would otherwise version every object on every run).

use serde_json::{Map, Value};

use crate::model::PropertyChange;

/// The differing properties of two versions, by name; `_class`, `_fromEntityKey` and
/// `_toEntityKey` are compared like properties. Empty when nothing that counts differs.
pub fn property_changes(
    old_classes: &[String],
    new_classes: &[String],
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Vec<PropertyChange> {
    let mut changes = Vec::new();
    if old_classes != new_classes {
        changes.push(PropertyChange {
            name: "_class".into(),
            old: Some(old_classes.into()),
            new: Some(new_classes.into()),
        });
    }
    // Both maps are sorted by name (serde_json's default map): one merge pass.
    let mut old_iter = old.iter().peekable();
    let mut new_iter = new.iter().peekable();
    loop {
        match (old_iter.peek(), new_iter.peek()) {
            (None, None) => break,
            (Some((name, value)), None) => {
                changes.push(removed(name, value));
                old_iter.next();
            }
            (None, Some((name, value))) => {
                changes.push(added(name, value));
                new_iter.next();
            }
            (Some((old_name, old_value)), Some((new_name, new_value))) => {
                match old_name.cmp(new_name) {
                    std::cmp::Ordering::Less => {
                        changes.push(removed(old_name, old_value));
                        old_iter.next();
                    }
                    std::cmp::Ordering::Greater => {
                        changes.push(added(new_name, new_value));
                        new_iter.next();
                    }
                    std::cmp::Ordering::Equal => {
                        if old_value != new_value {
                            changes.push(PropertyChange {
                                name: (*old_name).clone(),
                                old: Some((*old_value).clone()),
                                new: Some((*new_value).clone()),
                            });
                        }
                        old_iter.next();
                        new_iter.next();
                    }
                }
            }
        }
    }
    changes
}

fn removed(name: &str, value: &Value) -> PropertyChange {
    PropertyChange {
        name: name.to_owned(),
        old: Some(value.clone()),
        new: None,
    }
}

fn added(name: &str, value: &Value) -> PropertyChange {
    PropertyChange {
        name: name.to_owned(),
        old: None,
        new: Some(value.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn equal_versions_have_no_changes() {
        let props = map(json!({"a": 1, "b": [1, 2], "c": null}));
        let classes = vec!["User".to_owned()];
        assert!(property_changes(&classes, &classes, &props, &props).is_empty());
    }

    #[test]
    fn added_removed_and_changed_properties_are_named_with_both_values() {
        let old = map(json!({"active": true, "email": "a@x.io", "gone": 1}));
        let new = map(json!({"active": false, "email": "a@x.io", "mfa": true}));
        let classes = vec!["User".to_owned()];
        let changes = property_changes(&classes, &classes, &old, &new);
        assert_eq!(
            changes,
            vec![
                PropertyChange {
                    name: "active".into(),
                    old: Some(json!(true)),
                    new: Some(json!(false))
                },
                PropertyChange {
                    name: "gone".into(),
                    old: Some(json!(1)),
                    new: None
                },
                PropertyChange {
                    name: "mfa".into(),
                    old: None,
                    new: Some(json!(true))
                },
            ]
        );
    }

    #[test]
    fn a_class_change_is_a_change() {
        let props = map(json!({}));
        let changes = property_changes(
            &["User".to_owned()],
            &["User".to_owned(), "Person".to_owned()],
            &props,
            &props,
        );
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].name, "_class");
    }

    #[test]
    fn a_type_change_of_a_value_is_a_change() {
        let old = map(json!({"n": 1}));
        let new = map(json!({"n": "1"}));
        assert_eq!(property_changes(&[], &[], &old, &new).len(), 1);
    }
}

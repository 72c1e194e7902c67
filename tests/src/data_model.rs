//! The J1 data model (`fixtures/j1-data-model/`, `@jupiterone/data-model` 0.64.2):
//! draft-07 class schemas and the relationship classes.
//!
//! The class schemas name each other by location-independent ids (`"$id": "#Entity"`,
//! `"$ref": "#GraphObject"`). They are put into one document under `definitions`, with
//! every `#Name` reference rewritten to `#/definitions/Name` and the `$id`s dropped, so
//! the references resolve inside that document whatever the validator's handling of
//! plain-name fragments. One validator per class refers to its definition.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// The data-model fixtures folder.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/j1-data-model")
}

/// Compiled class schemas and the relationship classes.
pub struct DataModel {
    validators: BTreeMap<String, jsonschema::Validator>,
    relationship_classes: BTreeSet<String>,
}

static DATA_MODEL: OnceLock<DataModel> = OnceLock::new();

/// The data model of `fixtures/j1-data-model`, loaded once.
pub fn data_model() -> &'static DataModel {
    DATA_MODEL.get_or_init(|| DataModel::load(&fixtures_dir()))
}

impl DataModel {
    /// Loads every `class_schemas/*.json` and `relationship-classes.json` of `dir`.
    pub fn load(dir: &Path) -> DataModel {
        let schemas_dir = dir.join("class_schemas");
        let mut definitions = Map::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&schemas_dir)
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", schemas_dir.display()))
            .map(|entry| entry.expect("a readable directory entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        entries.sort();
        for path in entries {
            let schema = read_json(&path);
            let id = schema
                .get("$id")
                .and_then(Value::as_str)
                .and_then(|id| id.strip_prefix('#'))
                .unwrap_or_else(|| panic!("{} has no `$id` of the form #Name", path.display()))
                .to_owned();
            definitions.insert(id, rewrite(schema, true));
        }
        let names: Vec<String> = definitions.keys().cloned().collect();
        let mut validators = BTreeMap::new();
        for name in names {
            let document = json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "definitions": Value::Object(definitions.clone()),
                "allOf": [{"$ref": format!("#/definitions/{name}")}],
            });
            let validator = jsonschema::draft7::options()
                .should_validate_formats(true)
                .build(&document)
                .unwrap_or_else(|error| panic!("the schema of class {name} compiles: {error}"));
            validators.insert(name, validator);
        }

        let path = dir.join("relationship-classes.json");
        let relationship_classes = match read_json(&path) {
            Value::Array(classes) => classes
                .iter()
                .map(|c| {
                    c.as_str()
                        .unwrap_or_else(|| panic!("{} lists a non-string", path.display()))
                        .to_owned()
                })
                .collect(),
            _ => panic!("{} is not an array", path.display()),
        };
        DataModel {
            validators,
            relationship_classes,
        }
    }

    /// The classes with a schema.
    pub fn classes(&self) -> impl Iterator<Item = &str> {
        self.validators.keys().map(String::as_str)
    }

    /// Whether `class` is a valid relationship `_class`.
    pub fn is_relationship_class(&self, class: &str) -> bool {
        self.relationship_classes.contains(class)
    }

    /// What is wrong with `entity` as an instance of `class`; empty when it is valid.
    /// A class without a schema is an error too.
    pub fn errors(&self, class: &str, entity: &Value) -> Vec<String> {
        match self.validators.get(class) {
            None => vec![format!("no schema for class {class}")],
            Some(validator) => validator
                .iter_errors(entity)
                .map(|error| format!("{}: {error}", error.instance_path()))
                .collect(),
        }
    }

    /// What is wrong with `entity` against the schema of each of its `_class` values
    /// (`class: problem` lines); empty when it validates against all of them.
    pub fn entity_errors(&self, entity: &Value) -> Vec<String> {
        let classes: Vec<&str> = match entity.get("_class") {
            Some(Value::String(class)) => vec![class.as_str()],
            Some(Value::Array(classes)) => classes.iter().filter_map(Value::as_str).collect(),
            _ => return vec!["no _class".to_owned()],
        };
        if classes.is_empty() {
            return vec!["an empty _class".to_owned()];
        }
        classes
            .into_iter()
            .flat_map(|class| {
                self.errors(class, entity)
                    .into_iter()
                    .map(move |error| format!("{class}: {error}"))
            })
            .collect()
    }
}

/// Drops `$id` and `$schema` (of the class documents) and turns `#Name` references
/// into `#/definitions/Name`.
fn rewrite(value: Value, top: bool) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(key, _)| !(top && (key == "$id" || key == "$schema")))
                .map(|(key, value)| {
                    let value = match (key.as_str(), value) {
                        ("$ref", Value::String(target)) => {
                            Value::String(match target.strip_prefix('#') {
                                Some(name) if !name.starts_with('/') && !name.is_empty() => {
                                    format!("#/definitions/{name}")
                                }
                                _ => target,
                            })
                        }
                        (_, value) => rewrite(value, false),
                    };
                    (key, value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| rewrite(v, false)).collect()),
        other => other,
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()))
}

//! The graph a job wrote, read back from the J1 integration-SDK layout:
//! `DIR/graph/<step>/entities/*.json` (`{"entities": [...]}`) and
//! `DIR/graph/<step>/relationships/*.json` (`{"relationships": [...]}`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Entity or relationship file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Entity,
    Relationship,
}

impl ObjectKind {
    /// The folder and the document's array field.
    pub fn dir(self) -> &'static str {
        match self {
            ObjectKind::Entity => "entities",
            ObjectKind::Relationship => "relationships",
        }
    }
}

/// One object of the graph and where it was found.
#[derive(Debug, Clone)]
pub struct GraphObject {
    /// The step folder it was written under.
    pub step: String,
    /// The file it was read from.
    pub file: PathBuf,
    pub object: Map<String, Value>,
}

impl GraphObject {
    /// A property that must be a string.
    pub fn str(&self, name: &str) -> &str {
        self.object
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{} has no string {name}: {:?}", self.key(), self.object))
    }

    pub fn key(&self) -> &str {
        self.object
            .get("_key")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("an object without a string _key: {:?}", self.object))
    }

    pub fn type_(&self) -> &str {
        self.str("_type")
    }

    /// `_class` as a list (entities have an array, relationships a string).
    pub fn classes(&self) -> Vec<&str> {
        match self.object.get("_class") {
            Some(Value::String(class)) => vec![class.as_str()],
            Some(Value::Array(classes)) => classes.iter().filter_map(Value::as_str).collect(),
            other => panic!("{} has a _class of {other:?}", self.key()),
        }
    }

    pub fn from_key(&self) -> &str {
        self.str("_fromEntityKey")
    }

    pub fn to_key(&self) -> &str {
        self.str("_toEntityKey")
    }

    /// A property, `None` when absent.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.object.get(name)
    }

    /// The object as one JSON value.
    pub fn to_value(&self) -> Value {
        Value::Object(self.object.clone())
    }
}

/// One file of the output.
#[derive(Debug, Clone)]
pub struct GraphFile {
    pub step: String,
    pub kind: ObjectKind,
    pub path: PathBuf,
    /// Objects in the file.
    pub objects: usize,
    /// The distinct `_type`s in the file.
    pub types: BTreeSet<String>,
}

/// Everything under `DIR/graph`.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub entities: Vec<GraphObject>,
    pub relationships: Vec<GraphObject>,
    pub files: Vec<GraphFile>,
}

impl Graph {
    /// Reads `output_dir/graph`; panics (naming the file) on anything unreadable or
    /// not in the SDK layout. A missing `graph` folder is an empty graph.
    pub fn load(output_dir: &Path) -> Graph {
        let mut graph = Graph::default();
        let graph_dir = output_dir.join("graph");
        if !graph_dir.exists() {
            return graph;
        }
        for step_dir in sorted_entries(&graph_dir) {
            let step = step_dir
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or_else(|| panic!("odd step folder {}", step_dir.display()))
                .to_owned();
            assert!(
                step_dir.is_dir(),
                "{} is not a step folder",
                step_dir.display()
            );
            for kind_dir in sorted_entries(&step_dir) {
                let kind = match kind_dir.file_name().and_then(|name| name.to_str()) {
                    Some("entities") => ObjectKind::Entity,
                    Some("relationships") => ObjectKind::Relationship,
                    _ => panic!("unexpected {} in the graph output", kind_dir.display()),
                };
                for path in sorted_entries(&kind_dir) {
                    graph.read_file(&step, kind, path);
                }
            }
        }
        graph
    }

    fn read_file(&mut self, step: &str, kind: ObjectKind, path: PathBuf) {
        assert_eq!(
            path.extension().and_then(|e| e.to_str()),
            Some("json"),
            "{} is not a .json file",
            path.display()
        );
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        let document: Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()));
        let Value::Object(mut document) = document else {
            panic!("{} is not a JSON object", path.display());
        };
        let objects = match document.remove(kind.dir()) {
            Some(Value::Array(objects)) => objects,
            _ => panic!("{} has no `{}` array", path.display(), kind.dir()),
        };
        assert!(
            document.is_empty(),
            "{} has fields besides `{}`: {:?}",
            path.display(),
            kind.dir(),
            document.keys().collect::<Vec<_>>()
        );
        let mut types = BTreeSet::new();
        let count = objects.len();
        for object in objects {
            let Value::Object(object) = object else {
                panic!("{} holds a non-object", path.display());
            };
            let found = GraphObject {
                step: step.to_owned(),
                file: path.clone(),
                object,
            };
            types.insert(found.type_().to_owned());
            match kind {
                ObjectKind::Entity => self.entities.push(found),
                ObjectKind::Relationship => self.relationships.push(found),
            }
        }
        self.files.push(GraphFile {
            step: step.to_owned(),
            kind,
            path,
            objects: count,
            types,
        });
    }

    /// Entities of a `_type`.
    pub fn entities_of_type(&self, entity_type: &str) -> Vec<&GraphObject> {
        self.entities
            .iter()
            .filter(|e| e.type_() == entity_type)
            .collect()
    }

    /// Relationships of a `_type`.
    pub fn relationships_of_type(&self, relationship_type: &str) -> Vec<&GraphObject> {
        self.relationships
            .iter()
            .filter(|r| r.type_() == relationship_type)
            .collect()
    }

    /// Entities by `_key` (the last one wins if a key repeats; see [`Graph::duplicate_keys`]).
    pub fn entity_index(&self) -> HashMap<&str, &GraphObject> {
        self.entities.iter().map(|e| (e.key(), e)).collect()
    }

    /// The entity with this `_key`.
    pub fn entity(&self, key: &str) -> Option<&GraphObject> {
        self.entities.iter().find(|e| e.key() == key)
    }

    /// The `_key`s of the entities of a `_type`.
    pub fn entity_keys(&self, entity_type: &str) -> BTreeSet<String> {
        self.entities_of_type(entity_type)
            .into_iter()
            .map(|e| e.key().to_owned())
            .collect()
    }

    /// `(from, to)` of the relationships of a `_type`.
    pub fn edges(&self, relationship_type: &str) -> BTreeSet<(String, String)> {
        self.relationships_of_type(relationship_type)
            .into_iter()
            .map(|r| (r.from_key().to_owned(), r.to_key().to_owned()))
            .collect()
    }

    /// Every `_key`, entities and relationships.
    pub fn keys(&self) -> BTreeSet<String> {
        self.entities
            .iter()
            .chain(&self.relationships)
            .map(|o| o.key().to_owned())
            .collect()
    }

    /// `_key`s that occur more than once, entities and relationships together.
    pub fn duplicate_keys(&self) -> Vec<String> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for object in self.entities.iter().chain(&self.relationships) {
            *counts.entry(object.key()).or_default() += 1;
        }
        counts
            .into_iter()
            .filter(|&(_, n)| n > 1)
            .map(|(key, _)| key.to_owned())
            .collect()
    }

    /// Every object by `_key`, with `base_url` replaced by `BASE_URL` in all strings
    /// (web links name the simulator's port).
    pub fn normalized(&self, base_url: &str) -> BTreeMap<String, Value> {
        self.entities
            .iter()
            .chain(&self.relationships)
            .map(|o| {
                (
                    o.key().to_owned(),
                    replace_in_strings(o.to_value(), base_url),
                )
            })
            .collect()
    }
}

fn replace_in_strings(value: Value, base_url: &str) -> Value {
    match value {
        Value::String(text) => Value::String(text.replace(base_url, "BASE_URL")),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| replace_in_strings(v, base_url))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, replace_in_strings(v, base_url)))
                .collect(),
        ),
        other => other,
    }
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
                .path()
        })
        .collect();
    entries.sort();
    entries
}

//! The graph objects this plugin emits, as plain Rust.
//!
//! They mirror the WIT `types` records but carry no bindings, so the converters that
//! build them compile and test natively. `lib.rs` turns them into the WIT types at the
//! boundary.

/// A property value (the WIT `property-value`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    TextList(Vec<String>),
}

impl Value {
    /// `Text` for `Some`, `Null` for `None`.
    pub fn opt_text(value: Option<impl Into<String>>) -> Value {
        value.map_or(Value::Null, |v| Value::Text(v.into()))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Self {
        Value::TextList(v)
    }
}

/// A named property. Names are fixed by the data model, hence `&'static str`.
pub type Property = (&'static str, Value);

/// A graph node (the WIT `entity`).
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub key: String,
    pub entity_type: &'static str,
    pub classes: &'static [&'static str],
    pub properties: Vec<Property>,
    /// The source object as JSON text, secrets removed.
    pub raw_data: Option<String>,
}

impl Entity {
    /// The value of a property, if set.
    pub fn property(&self, name: &str) -> Option<&Value> {
        self.properties
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

/// A graph edge between two entities of this job (the WIT `relationship`).
#[derive(Debug, Clone, PartialEq)]
pub struct Relationship {
    pub key: String,
    pub relationship_type: &'static str,
    pub class: &'static str,
    pub from_key: String,
    pub to_key: String,
    pub properties: Vec<Property>,
}

impl Relationship {
    /// A relationship following the data-model key convention:
    /// `<from>|<class lowercased>|<to>`, with `displayName` = the class.
    pub fn direct(
        relationship_type: &'static str,
        class: &'static str,
        from_key: &str,
        to_key: &str,
    ) -> Relationship {
        Relationship {
            key: format!("{from_key}|{}|{to_key}", class.to_ascii_lowercase()),
            relationship_type,
            class,
            from_key: from_key.to_owned(),
            to_key: to_key.to_owned(),
            properties: vec![("displayName", Value::Text(class.to_owned()))],
        }
    }

    /// The value of a property, if set.
    pub fn property(&self, name: &str) -> Option<&Value> {
        self.properties
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// Adds a property (builder style).
    pub fn with(mut self, name: &'static str, value: impl Into<Value>) -> Relationship {
        self.properties.push((name, value.into()));
        self
    }
}

/// The entity a mapped relationship points at (the WIT `target-entity`).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetEntity {
    pub key: String,
    pub entity_type: &'static str,
    pub classes: &'static [&'static str],
    pub properties: Vec<Property>,
}

/// A relationship to an entity found by matching properties (the WIT `mapped-relationship`).
#[derive(Debug, Clone, PartialEq)]
pub struct MappedRelationship {
    pub key: String,
    pub relationship_type: &'static str,
    pub class: &'static str,
    pub source_key: String,
    /// Sets of property names to match the target on.
    pub target_filter_keys: Vec<Vec<&'static str>>,
    pub target: TargetEntity,
    pub properties: Vec<Property>,
}

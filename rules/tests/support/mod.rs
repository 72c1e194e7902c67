//! Small hand-built tenant graphs for the rule tests, queried by the real J1QL engine.

#![allow(dead_code)] // each test file uses part of it

use j1ql::{Entity, Graph, GraphBuilder, Relationship};
use serde_json::{Map, Value, json};

/// Entities and relationships, built into a [`Graph`] at the end.
#[derive(Default, Clone)]
pub struct Tenant {
    entities: Vec<Entity>,
    relationships: Vec<Relationship>,
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("properties must be an object, got {other}"),
    }
}

impl Tenant {
    pub fn entity(
        &mut self,
        key: &str,
        entity_type: &str,
        class: &str,
        properties: Value,
    ) -> &mut Self {
        let mut properties = object(properties);
        properties.entry("name").or_insert_with(|| json!(key));
        self.entities.push(Entity {
            key: key.to_owned(),
            entity_type: entity_type.to_owned(),
            classes: vec![class.to_owned()],
            properties,
            deleted: false,
        });
        self
    }

    /// A `jumpcloud_user` first seen at `created_ms` (`_createdOn`, as the store sets it).
    pub fn user(&mut self, key: &str, created_ms: i64, properties: Value) -> &mut Self {
        let mut properties = object(properties);
        properties.insert("_createdOn".to_owned(), json!(created_ms));
        properties.insert("_version".to_owned(), json!(1));
        self.entity(key, "jumpcloud_user", "User", Value::Object(properties))
    }

    /// `from VERB to`, typed as the data model names it: `<from type>_<verb>_<to type>`.
    pub fn edge(&mut self, from: &str, verb: &str, to: &str) -> &mut Self {
        let type_of = |key: &str| {
            self.entities
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.entity_type.clone())
                .unwrap_or_else(|| panic!("no entity {key}"))
        };
        let (from_type, to_type) = (type_of(from), type_of(to));
        let to_short = to_type.strip_prefix("jumpcloud_").unwrap_or(&to_type);
        let relationship_type = match to_type.as_str() {
            "employee" => format!("{from_type}_{}_person", verb.to_lowercase()),
            _ => format!("{from_type}_{}_{to_short}", verb.to_lowercase()),
        };
        self.relationships.push(Relationship {
            key: format!("{from}|{}|{to}", verb.to_lowercase()),
            relationship_type,
            class: verb.to_owned(),
            from_key: from.to_owned(),
            to_key: to.to_owned(),
            properties: Map::new(),
            deleted: false,
        });
        self
    }

    pub fn build(&self) -> Graph {
        let mut builder = GraphBuilder::new();
        for entity in &self.entities {
            builder.add_entity(entity.clone());
        }
        for relationship in &self.relationships {
            builder.add_relationship(relationship.clone());
        }
        builder.build()
    }
}

/// A graph whose users `keys` have no MFA, beside one user that has it.
pub fn users_without_mfa(keys: &[&str]) -> Graph {
    let mut tenant = Tenant::default();
    tenant.user("with-mfa", 0, json!({"mfaEnabled": true, "active": true}));
    for key in keys {
        tenant.user(key, 0, json!({"mfaEnabled": false, "active": true}));
    }
    tenant.build()
}

//! Unit tests of the graph store.

use super::*;
use serde_json::value::RawValue;

use std::path::PathBuf;
use std::sync::Mutex;

use std::time::Instant;

use crate::output::FileSink;
use crate::sandbox::limits::{Budget, Budgets, GRAPH_BYTES_PER_OBJECT, LimitExceeded};
use crate::services::Redactor;

// ---------------------------------------------------------------------------------
// A sink that records every write (and keeps the objects readable through a real
// `FileSink` on a temporary directory, since `Location` is opaque outside `output`).
// ---------------------------------------------------------------------------------

/// One object the store handed to its sink.
#[derive(Debug, Clone)]
struct Written {
    step: String,
    kind: ObjectKind,
    object_type: String,
    object: Map<String, Value>,
}

type Log = Arc<Mutex<Vec<Written>>>;

struct RecordingSink {
    inner: FileSink,
    log: Log,
}

impl GraphSink for RecordingSink {
    fn write(
        &mut self,
        step: &str,
        kind: ObjectKind,
        object_type: &str,
        object: Box<RawValue>,
    ) -> std::io::Result<Location> {
        self.log.lock().unwrap().push(Written {
            step: step.to_owned(),
            kind,
            object_type: object_type.to_owned(),
            object: serde_json::from_str(object.get()).expect("the store writes JSON objects"),
        });
        self.inner.write(step, kind, object_type, object)
    }

    fn read(&mut self, location: Location) -> std::io::Result<Option<Map<String, Value>>> {
        self.inner.read(location)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Removes the temporary output directory when the test ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Fixture {
    store: GraphStore,
    log: Log,
    _dir: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Self::with_objects_per_file(crate::output::OBJECTS_PER_FILE)
    }

    fn with_objects_per_file(per_file: usize) -> Fixture {
        Self::build(per_file, Redactor::default())
    }

    fn with_secrets(secrets: &[&str]) -> Fixture {
        Self::build(
            crate::output::OBJECTS_PER_FILE,
            Redactor::new(secrets.iter().map(|s| (*s).to_owned())),
        )
    }

    fn build(per_file: usize, redactor: Redactor) -> Fixture {
        let dir = std::env::temp_dir().join(format!("graph-test-{}", uuid::Uuid::new_v4()));
        let inner = FileSink::create(&dir)
            .unwrap()
            .with_objects_per_file(per_file);
        let log: Log = Arc::default();
        let sink = RecordingSink {
            inner,
            log: log.clone(),
        };
        let mut store = GraphStore::new(Box::new(sink)).with_redactor(redactor);
        store.begin_step("step-one");
        Fixture {
            store,
            log,
            _dir: TempDir(dir),
        }
    }

    fn written(&self) -> Vec<Written> {
        self.log.lock().unwrap().clone()
    }

    fn written_keys(&self) -> Vec<String> {
        self.written()
            .iter()
            .map(|w| w.object["_key"].as_str().unwrap().to_owned())
            .collect()
    }

    fn relationship(&self, key: &str) -> Map<String, Value> {
        self.written()
            .into_iter()
            .find(|w| w.kind == ObjectKind::Relationship && w.object["_key"] == key)
            .unwrap_or_else(|| panic!("relationship {key} was not written"))
            .object
    }

    fn add_entities(&mut self, entities: Vec<Entity>) -> Result<BatchOutcome, GraphError> {
        self.store.add_entities(entities).expect("no I/O error")
    }

    fn add_relationships(
        &mut self,
        relationships: Vec<Relationship>,
    ) -> Result<BatchOutcome, GraphError> {
        self.store
            .add_relationships(relationships)
            .expect("no I/O error")
    }

    fn add_mapped(
        &mut self,
        relationships: Vec<MappedRelationship>,
    ) -> Result<BatchOutcome, GraphError> {
        self.store
            .add_mapped_relationships(relationships)
            .expect("no I/O error")
    }
}

// ---------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------

fn prop(name: &str, value: PropertyValue) -> Property {
    Property {
        name: name.to_owned(),
        value,
    }
}

fn text(name: &str, value: &str) -> Property {
    prop(name, PropertyValue::Text(value.to_owned()))
}

fn entity(key: &str, entity_type: &str, classes: &[&str]) -> Entity {
    Entity {
        key: key.to_owned(),
        type_: entity_type.to_owned(),
        classes: classes.iter().map(|c| (*c).to_owned()).collect(),
        properties: vec![text("name", key)],
        raw_data: None,
    }
}

fn user(key: &str) -> Entity {
    entity(key, "jumpcloud_user", &["User"])
}

fn relationship(key: &str, from: &str, to: &str) -> Relationship {
    Relationship {
        key: key.to_owned(),
        type_: "jumpcloud_account_has_user".to_owned(),
        class: "HAS".to_owned(),
        from_key: from.to_owned(),
        to_key: to.to_owned(),
        properties: vec![text("displayName", "HAS")],
    }
}

/// The mapped relationship the JumpCloud component emits for a user with `email`.
fn mapped(source: &str, email: &str) -> MappedRelationship {
    let normalized = email.to_lowercase();
    MappedRelationship {
        key: format!("{source}|is|employee:{email}"),
        type_: "jumpcloud_user_is_person".to_owned(),
        class: "IS".to_owned(),
        source_key: source.to_owned(),
        direction: MappingDirection::Forward,
        target_filter_keys: vec![vec!["_class".to_owned(), "email".to_owned()]],
        target_entity: TargetEntity {
            key: format!("employee:{normalized}"),
            type_: "employee".to_owned(),
            classes: vec!["Person".to_owned()],
            properties: vec![
                text("email", email),
                text("firstName", "Ada"),
                text("lastName", "Lovelace"),
                text("displayName", "Ada Lovelace"),
            ],
        },
        properties: vec![text("displayName", "IS")],
    }
}

use crate::bindings::TargetEntity;

fn duplicate_key(result: Result<BatchOutcome, GraphError>) -> String {
    match result {
        Err(GraphError::DuplicateKey(key)) => key,
        other => panic!("expected duplicate-key, got {other:?}"),
    }
}

fn invalid_reason(result: Result<BatchOutcome, GraphError>) -> String {
    match result {
        Err(GraphError::InvalidObject(reason)) => reason,
        other => panic!("expected invalid-object, got {other:?}"),
    }
}

fn outcome(accepted: u32, dropped: u32) -> BatchOutcome {
    BatchOutcome { accepted, dropped }
}

fn property<'e>(entity: &'e Entity, name: &str) -> &'e PropertyValue {
    &entity
        .properties
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("property {name} missing from {entity:?}"))
        .value
}

// ---------------------------------------------------------------------------------
// Entities, duplicates
// ---------------------------------------------------------------------------------

#[test]
fn stores_a_batch_of_entities_and_hands_them_to_the_sink() {
    let mut f = Fixture::new();
    let result = f.add_entities(vec![user("user-000001"), user("user-000002")]);
    assert_eq!(result.unwrap(), outcome(2, 0));
    assert!(f.store.has_key("user-000001"));
    assert!(f.store.has_key("user-000002"));
    assert_eq!(f.store.object_count(), 2);

    let written = f.written();
    assert_eq!(written.len(), 2);
    assert!(written.iter().all(|w| w.step == "step-one"
        && w.kind == ObjectKind::Entity
        && w.object_type == "jumpcloud_user"));
    let first = &written[0].object;
    assert_eq!(first["_key"], "user-000001");
    assert_eq!(first["_type"], "jumpcloud_user");
    assert_eq!(first["_class"], serde_json::json!(["User"]));
    assert_eq!(first["name"], "user-000001");
}

#[test]
fn entity_key_used_before_rejects_the_whole_later_batch() {
    let mut f = Fixture::new();
    f.add_entities(vec![user("user-000001")]).unwrap();
    let result = f.add_entities(vec![user("user-000002"), user("user-000001")]);
    assert_eq!(duplicate_key(result), "user-000001");
    assert!(
        !f.store.has_key("user-000002"),
        "nothing of the batch is kept"
    );
    assert_eq!(f.store.object_count(), 1);
    assert_eq!(f.written_keys(), vec!["user-000001"]);
    assert_eq!(
        f.store.step_stats("step-one").entities["jumpcloud_user"],
        1,
        "the rejected batch is not counted"
    );
}

#[test]
fn duplicate_inside_one_batch_rejects_it() {
    let mut f = Fixture::new();
    let result = f.add_entities(vec![
        user("user-000001"),
        user("user-000002"),
        user("user-000001"),
    ]);
    assert_eq!(duplicate_key(result), "user-000001");
    assert_eq!(f.store.object_count(), 0);
    assert!(f.written().is_empty());
    assert!(f.store.step_stats("step-one").entities.is_empty());
}

#[test]
fn relationship_reusing_an_entity_key_is_a_duplicate_and_rejects_its_batch() {
    let mut f = Fixture::new();
    f.add_entities(vec![user("user-000001"), user("user-000002")])
        .unwrap();
    let good = relationship("user-000001|has|user-000002", "user-000001", "user-000002");
    let clash = relationship("user-000002", "user-000001", "user-000002");
    let result = f.add_relationships(vec![good, clash]);
    assert_eq!(duplicate_key(result), "user-000002");
    assert!(!f.store.has_key("user-000001|has|user-000002"));
    assert_eq!(f.store.object_count(), 2);
    assert!(f.store.step_stats("step-one").relationships.is_empty());
}

#[test]
fn entity_reusing_a_relationship_key_is_a_duplicate() {
    let mut f = Fixture::new();
    f.add_entities(vec![user("user-000001"), user("user-000002")])
        .unwrap();
    f.add_relationships(vec![relationship(
        "user-000001|has|user-000002",
        "user-000001",
        "user-000002",
    )])
    .unwrap();
    let result = f.add_entities(vec![
        user("user-000003"),
        user("user-000001|has|user-000002"),
    ]);
    assert_eq!(duplicate_key(result), "user-000001|has|user-000002");
    assert!(!f.store.has_key("user-000003"));
}

#[test]
fn duplicate_relationships_are_rejected_across_and_inside_batches() {
    let mut f = Fixture::new();
    f.add_entities(vec![user("user-000001"), user("user-000002")])
        .unwrap();
    let rel = || relationship("user-000001|has|user-000002", "user-000001", "user-000002");
    let other = relationship("user-000002|has|user-000001", "user-000002", "user-000001");

    let inside = f.add_relationships(vec![rel(), other.clone(), rel()]);
    assert_eq!(duplicate_key(inside), "user-000001|has|user-000002");
    assert_eq!(
        f.store.object_count(),
        2,
        "no relationship of the batch stored"
    );

    assert_eq!(f.add_relationships(vec![rel()]).unwrap(), outcome(1, 0));
    let across = f.add_relationships(vec![other, rel()]);
    assert_eq!(duplicate_key(across), "user-000001|has|user-000002");
    assert!(!f.store.has_key("user-000002|has|user-000001"));
    assert_eq!(
        f.store.step_stats("step-one").relationships["jumpcloud_account_has_user"],
        1
    );
}

// ---------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------

#[test]
fn invalid_entities_are_rejected_naming_the_key_and_the_rule() {
    let base = || user("user-000001");
    let with_props = |props: Vec<Property>| {
        let mut e = base();
        e.properties = props;
        e
    };
    let cases: Vec<(&str, Entity, &str, &str)> = vec![
        ("short key", user("user-0001"), "user-0001", "_key"),
        (
            "short key counted in characters, not bytes",
            user("ééééé"),
            "ééééé",
            "_key",
        ),
        (
            "short type",
            entity("user-000001", "jc", &["User"]),
            "user-000001",
            "_type",
        ),
        (
            "no class",
            entity("user-000001", "jumpcloud_user", &[]),
            "user-000001",
            "_class",
        ),
        (
            "one-letter class",
            entity("user-000001", "jumpcloud_user", &["User", "X"]),
            "user-000001",
            "_class",
        ),
        (
            "empty class name",
            entity("user-000001", "jumpcloud_user", &[""]),
            "user-000001",
            "_class",
        ),
        (
            "reserved property name",
            with_props(vec![text("_secret", "x")]),
            "user-000001",
            "_secret",
        ),
        (
            "slash in a property name",
            with_props(vec![text("bad/name", "x")]),
            "user-000001",
            "bad/name",
        ),
        (
            "dollar in a property name",
            with_props(vec![text("cost$", "x")]),
            "user-000001",
            "cost$",
        ),
        (
            "empty property name",
            with_props(vec![text("", "x")]),
            "user-000001",
            "property name",
        ),
        (
            "property set twice",
            with_props(vec![text("email", "a"), text("email", "b")]),
            "user-000001",
            "set twice",
        ),
        (
            "NaN",
            with_props(vec![prop("score", PropertyValue::Float(f64::NAN))]),
            "user-000001",
            "finite",
        ),
        (
            "infinity",
            with_props(vec![prop("score", PropertyValue::Float(f64::INFINITY))]),
            "user-000001",
            "finite",
        ),
        (
            "raw data not JSON",
            Entity {
                raw_data: Some("{\"id\": ".to_owned()),
                ..base()
            },
            "user-000001",
            "raw-data",
        ),
    ];
    for (what, bad, key, rule) in cases {
        let mut f = Fixture::new();
        // A valid entity in the same batch is not stored either.
        let result = f.add_entities(vec![user("valid-000001"), bad]);
        let reason = invalid_reason(result);
        assert!(reason.starts_with(&format!("{key}:")), "{what}: {reason}");
        assert!(reason.contains(rule), "{what}: {reason}");
        assert_eq!(f.store.object_count(), 0, "{what}");
        assert!(f.written().is_empty(), "{what}");
    }
}

#[test]
fn boundary_values_are_accepted() {
    let mut f = Fixture::new();
    let mut e = entity("0123456789", "abc", &["Ab"]);
    e.properties = vec![
        text("tag.Owner", "x"),
        text("a.b-c d", "x"),
        prop("score", PropertyValue::Float(0.5)),
    ];
    e.raw_data = Some("{\"id\": 1}".to_owned());
    // Ten characters, twenty bytes.
    let wide = user("éééééééééé");
    assert_eq!(f.add_entities(vec![e, wide]).unwrap(), outcome(2, 0));
}

#[test]
fn invalid_relationships_are_rejected_naming_the_key() {
    let make = |key: &str, class: &str, props: Vec<Property>| Relationship {
        class: class.to_owned(),
        properties: props,
        ..relationship(key, "user-000001", "user-000002")
    };
    let mut short_type = make("user-000001|has|user-000002", "HAS", vec![]);
    short_type.type_ = "hs".to_owned();
    let cases = vec![
        (make("a|has|b", "HAS", vec![]), "a|has|b", "_key"),
        (short_type, "user-000001|has|user-000002", "_type"),
        (
            make("user-000001|has|user-000002", "", vec![]),
            "user-000001|has|user-000002",
            "_class",
        ),
        (
            make("user-000001|has|user-000002", "H", vec![]),
            "user-000001|has|user-000002",
            "_class",
        ),
        (
            make(
                "user-000001|has|user-000002",
                "HAS",
                vec![text("_fromEntityKey", "x")],
            ),
            "user-000001|has|user-000002",
            "_fromEntityKey",
        ),
        (
            make(
                "user-000001|has|user-000002",
                "HAS",
                vec![prop("weight", PropertyValue::Float(f64::NAN))],
            ),
            "user-000001|has|user-000002",
            "finite",
        ),
    ];
    for (bad, key, rule) in cases {
        let mut f = Fixture::new();
        f.add_entities(vec![user("user-000001"), user("user-000002")])
            .unwrap();
        let good = relationship("user-000002|has|user-000001", "user-000002", "user-000001");
        let reason = invalid_reason(f.add_relationships(vec![good, bad]));
        assert!(reason.starts_with(&format!("{key}:")), "{reason}");
        assert!(reason.contains(rule), "{reason}");
        assert!(!f.store.has_key("user-000002|has|user-000001"));
    }
}

// ---------------------------------------------------------------------------------
// Dangling relationships
// ---------------------------------------------------------------------------------

#[test]
fn dangling_relationships_are_dropped_and_counted_while_valid_ones_are_stored() {
    let mut f = Fixture::new();
    f.add_entities(vec![user("user-000001"), user("user-000002")])
        .unwrap();
    let good = relationship("user-000001|has|user-000002", "user-000001", "user-000002");
    let no_to = relationship(
        "user-000001|has|missing-00001",
        "user-000001",
        "missing-00001",
    );
    let no_from = relationship(
        "missing-00001|has|user-000002",
        "missing-00001",
        "user-000002",
    );
    let result = f.add_relationships(vec![no_to, good, no_from]);
    assert_eq!(result.unwrap(), outcome(1, 2));

    assert!(f.store.has_key("user-000001|has|user-000002"));
    assert!(!f.store.has_key("user-000001|has|missing-00001"));
    assert!(!f.store.has_key("missing-00001|has|user-000002"));
    assert_eq!(f.store.object_count(), 3);

    let stats = f.store.step_stats("step-one");
    assert_eq!(stats.dropped_relationships, 2);
    assert_eq!(stats.relationships["jumpcloud_account_has_user"], 1);

    let stored = f.relationship("user-000001|has|user-000002");
    assert_eq!(stored["_fromEntityKey"], "user-000001");
    assert_eq!(stored["_toEntityKey"], "user-000002");
    assert_eq!(stored["_class"], "HAS");
    assert_eq!(stored["_type"], "jumpcloud_account_has_user");
    assert_eq!(stored["displayName"], "HAS");

    // Dropped counts add up over batches.
    let again = relationship(
        "user-000002|has|missing-00002",
        "user-000002",
        "missing-00002",
    );
    assert_eq!(f.add_relationships(vec![again]).unwrap(), outcome(0, 1));
    assert_eq!(f.store.step_stats("step-one").dropped_relationships, 3);
}

#[test]
fn a_relationship_cannot_point_at_a_relationship() {
    let mut f = Fixture::new();
    f.add_entities(vec![user("user-000001"), user("user-000002")])
        .unwrap();
    f.add_relationships(vec![relationship(
        "user-000001|has|user-000002",
        "user-000001",
        "user-000002",
    )])
    .unwrap();
    let result = f.add_relationships(vec![relationship(
        "user-000001|has|rel-endpoint",
        "user-000001",
        "user-000001|has|user-000002",
    )]);
    assert_eq!(result.unwrap(), outcome(0, 1));
    assert!(!f.store.has_key("user-000001|has|rel-endpoint"));
}

// ---------------------------------------------------------------------------------
// Mapped relationships
// ---------------------------------------------------------------------------------

#[test]
fn mapped_target_found_by_email_reuses_the_existing_person() {
    let mut f = Fixture::new();
    let mut person = entity("hr-person-0001", "hr_employee", &["Person"]);
    person.properties.push(text("email", "Ada@Example.COM"));
    f.add_entities(vec![user("user-000001"), person]).unwrap();

    let result = f.add_mapped(vec![mapped("user-000001", "ada@example.com")]);
    assert_eq!(result.unwrap(), outcome(1, 0));

    assert!(
        !f.store.has_key("employee:ada@example.com"),
        "no new entity"
    );
    assert_eq!(f.store.object_count(), 3);
    let edge = f.relationship("user-000001|is|employee:ada@example.com");
    assert_eq!(edge["_fromEntityKey"], "user-000001");
    assert_eq!(edge["_toEntityKey"], "hr-person-0001");
    assert_eq!(edge["_class"], "IS");
    assert_eq!(edge["_type"], "jumpcloud_user_is_person");
    assert_eq!(edge["displayName"], "IS");

    let stats = f.store.step_stats("step-one");
    assert_eq!(stats.mapped_to_existing, 1);
    assert_eq!(stats.mapped_to_created, 0);
    assert_eq!(stats.entities.get("employee"), None);
    assert_eq!(stats.relationships["jumpcloud_user_is_person"], 1);
}

#[test]
fn mapped_target_found_in_a_text_list_email() {
    let mut f = Fixture::new();
    let mut person = entity("hr-person-0001", "hr_employee", &["Person"]);
    person.properties.push(prop(
        "email",
        PropertyValue::TextList(vec!["other@example.com".into(), "ADA@example.com".into()]),
    ));
    f.add_entities(vec![user("user-000001"), person]).unwrap();

    // The target's email is itself a list (as a User's `email` is).
    let mut m = mapped("user-000001", "ada@example.com");
    m.target_entity.properties[0] = prop(
        "email",
        PropertyValue::TextList(vec!["Ada@Example.com".into()]),
    );
    assert_eq!(f.add_mapped(vec![m]).unwrap(), outcome(1, 0));
    assert_eq!(
        f.relationship("user-000001|is|employee:ada@example.com")["_toEntityKey"],
        "hr-person-0001"
    );
    assert!(!f.store.has_key("employee:ada@example.com"));
}

#[test]
fn mapped_target_must_have_the_class_when_class_is_a_filter_key() {
    let mut f = Fixture::new();
    // The user itself carries the email, but it is a User, not a Person.
    let mut source = user("user-000001");
    source.properties.push(prop(
        "email",
        PropertyValue::TextList(vec!["ada@example.com".into()]),
    ));
    f.add_entities(vec![source]).unwrap();

    assert_eq!(
        f.add_mapped(vec![mapped("user-000001", "ada@example.com")])
            .unwrap(),
        outcome(1, 0)
    );
    assert!(f.store.has_key("employee:ada@example.com"));
    assert_eq!(
        f.relationship("user-000001|is|employee:ada@example.com")["_toEntityKey"],
        "employee:ada@example.com"
    );
}

#[test]
fn unmatched_target_is_created_once_and_shared_by_users_with_the_same_email() {
    let mut f = Fixture::new();
    f.add_entities(vec![user("user-000001"), user("user-000002")])
        .unwrap();

    assert_eq!(
        f.add_mapped(vec![mapped("user-000001", "ada@example.com")])
            .unwrap(),
        outcome(1, 0)
    );
    let created: Vec<Written> = f
        .written()
        .into_iter()
        .filter(|w| w.kind == ObjectKind::Entity && w.object_type == "employee")
        .collect();
    assert_eq!(created.len(), 1);
    let employee = &created[0].object;
    assert_eq!(employee["_key"], "employee:ada@example.com");
    assert_eq!(employee["_class"], serde_json::json!(["Person"]));
    assert_eq!(employee["email"], "ada@example.com");
    assert_eq!(employee["firstName"], "Ada");
    assert_eq!(employee["displayName"], "Ada Lovelace");
    assert!(employee.get("_rawData").is_none());

    // Another user, same address in another case, in a later batch.
    assert_eq!(
        f.add_mapped(vec![mapped("user-000002", "ADA@Example.com")])
            .unwrap(),
        outcome(1, 0)
    );
    let employees = f
        .written()
        .iter()
        .filter(|w| w.object_type == "employee")
        .count();
    assert_eq!(employees, 1, "the second user maps to the same entity");
    assert_eq!(
        f.relationship("user-000002|is|employee:ADA@Example.com")["_toEntityKey"],
        "employee:ada@example.com"
    );
    assert_eq!(
        f.store.entity_keys("employee", 0, 10),
        vec!["employee:ada@example.com"]
    );

    let stats = f.store.step_stats("step-one");
    assert_eq!(stats.mapped_to_created, 1);
    assert_eq!(stats.mapped_to_existing, 1);
    assert_eq!(stats.entities["employee"], 1);
    assert_eq!(stats.relationships["jumpcloud_user_is_person"], 2);
}

#[test]
fn users_with_the_same_email_in_one_batch_share_one_created_target() {
    let mut f = Fixture::new();
    f.add_entities(vec![user("user-000001"), user("user-000002")])
        .unwrap();
    let result = f.add_mapped(vec![
        mapped("user-000001", "ada@example.com"),
        mapped("user-000002", "Ada@Example.com"),
    ]);
    assert_eq!(result.unwrap(), outcome(2, 0));
    assert_eq!(
        f.store.entity_keys("employee", 0, 10),
        vec!["employee:ada@example.com"]
    );
    for key in [
        "user-000001|is|employee:ada@example.com",
        "user-000002|is|employee:Ada@Example.com",
    ] {
        assert_eq!(
            f.relationship(key)["_toEntityKey"],
            "employee:ada@example.com"
        );
    }
}

#[test]
fn reverse_mapping_points_from_the_target_to_the_source() {
    let mut f = Fixture::new();
    let mut person = entity("hr-person-0001", "hr_employee", &["Person"]);
    person.properties.push(text("email", "ada@example.com"));
    f.add_entities(vec![user("user-000001"), user("user-000002"), person])
        .unwrap();

    let mut to_existing = mapped("user-000001", "ada@example.com");
    to_existing.direction = MappingDirection::Reverse;
    let mut to_created = mapped("user-000002", "bob@example.com");
    to_created.direction = MappingDirection::Reverse;
    assert_eq!(
        f.add_mapped(vec![to_existing, to_created]).unwrap(),
        outcome(2, 0)
    );

    let existing = f.relationship("user-000001|is|employee:ada@example.com");
    assert_eq!(existing["_fromEntityKey"], "hr-person-0001");
    assert_eq!(existing["_toEntityKey"], "user-000001");
    let created = f.relationship("user-000002|is|employee:bob@example.com");
    assert_eq!(created["_fromEntityKey"], "employee:bob@example.com");
    assert_eq!(created["_toEntityKey"], "user-000002");
}

#[test]
fn mapped_target_by_key_filter() {
    let mut f = Fixture::new();
    let existing = entity("employee:ada@example.com", "employee", &["Person"]);
    f.add_entities(vec![user("user-000001"), existing]).unwrap();
    let mut m = mapped("user-000001", "ada@example.com");
    m.target_filter_keys = vec![vec!["_key".to_owned()]];
    assert_eq!(f.add_mapped(vec![m]).unwrap(), outcome(1, 0));
    assert_eq!(f.store.step_stats("step-one").mapped_to_existing, 1);
    assert_eq!(
        f.relationship("user-000001|is|employee:ada@example.com")["_toEntityKey"],
        "employee:ada@example.com"
    );
}

#[test]
fn mapped_relationship_without_its_source_is_dropped_and_creates_nothing() {
    let mut f = Fixture::new();
    f.add_entities(vec![user("user-000001")]).unwrap();
    let result = f.add_mapped(vec![
        mapped("missing-00001", "ghost@example.com"),
        mapped("user-000001", "ada@example.com"),
    ]);
    assert_eq!(result.unwrap(), outcome(1, 1));
    assert!(
        !f.store
            .has_key("missing-00001|is|employee:ghost@example.com")
    );
    assert!(
        !f.store.has_key("employee:ghost@example.com"),
        "no target created for a dropped mapping"
    );
    assert!(f.store.has_key("employee:ada@example.com"));
    let stats = f.store.step_stats("step-one");
    assert_eq!(stats.dropped_relationships, 1);
    assert_eq!(stats.mapped_to_created, 1);
}

#[test]
fn unsupported_or_incomplete_filter_keys_are_rejected() {
    let filters: Vec<(Vec<Vec<&str>>, &str)> = vec![
        (vec![vec!["_class", "name"]], "\"name\" is not supported"),
        (vec![vec!["email"], vec!["_type", "email"]], "\"_type\""),
        (vec![vec!["_class"]], "needs `email` or `_key`"),
        (vec![], "target-filter-keys is empty"),
    ];
    for (filter, rule) in filters {
        let mut f = Fixture::new();
        f.add_entities(vec![user("user-000001"), user("user-000002")])
            .unwrap();
        let mut bad = mapped("user-000002", "bob@example.com");
        bad.target_filter_keys = filter
            .iter()
            .map(|set| set.iter().map(|s| (*s).to_owned()).collect())
            .collect();
        let reason =
            invalid_reason(f.add_mapped(vec![mapped("user-000001", "ada@example.com"), bad]));
        assert!(
            reason.starts_with("user-000002|is|employee:bob@example.com:"),
            "{reason}"
        );
        assert!(reason.contains(rule), "{reason}");
        assert!(!f.store.has_key("user-000001|is|employee:ada@example.com"));
        assert!(!f.store.has_key("employee:ada@example.com"));
    }
}

#[test]
fn invalid_mapped_target_is_rejected_naming_the_target_key() {
    let mut f = Fixture::new();
    f.add_entities(vec![user("user-000001")]).unwrap();
    let mut bad = mapped("user-000001", "ada@example.com");
    bad.target_entity.key = "e:a@b.c".to_owned();
    let reason = invalid_reason(f.add_mapped(vec![bad]));
    assert!(reason.starts_with("e:a@b.c:"), "{reason}");

    let mut no_class = mapped("user-000001", "ada@example.com");
    no_class.target_entity.classes.clear();
    let reason = invalid_reason(f.add_mapped(vec![no_class]));
    assert!(reason.contains("_class"), "{reason}");
    assert_eq!(f.store.object_count(), 1);
}

#[test]
fn mapped_duplicate_keys_are_rejected() {
    let mut f = Fixture::new();
    f.add_entities(vec![user("user-000001")]).unwrap();
    let m = || mapped("user-000001", "ada@example.com");
    assert_eq!(
        duplicate_key(f.add_mapped(vec![m(), m()])),
        "user-000001|is|employee:ada@example.com"
    );
    assert!(!f.store.has_key("employee:ada@example.com"));
    f.add_mapped(vec![m()]).unwrap();
    assert_eq!(
        duplicate_key(f.add_mapped(vec![m()])),
        "user-000001|is|employee:ada@example.com"
    );
}

#[test]
fn target_key_taken_by_a_non_matching_object_rejects_the_whole_batch() {
    let mut f = Fixture::new();
    // An entity that holds the target key but has no email: it does not match.
    let squatter = entity("employee:bob@example.com", "employee", &["Person"]);
    f.add_entities(vec![user("user-000001"), user("user-000002"), squatter])
        .unwrap();
    let result = f.add_mapped(vec![
        mapped("user-000001", "ada@example.com"),
        mapped("user-000002", "bob@example.com"),
    ]);
    assert_eq!(duplicate_key(result), "employee:bob@example.com");
    assert!(
        !f.store.has_key("user-000001|is|employee:ada@example.com"),
        "a rejected batch stores nothing"
    );
    assert!(!f.store.has_key("employee:ada@example.com"));
    assert_eq!(f.store.object_count(), 3);
}

// ---------------------------------------------------------------------------------
// Steps and stats
// ---------------------------------------------------------------------------------

#[test]
fn stats_follow_begin_step() {
    let mut f = Fixture::new();
    f.add_entities(vec![
        entity("account-0001", "jumpcloud_account", &["Account"]),
        user("user-000001"),
    ])
    .unwrap();

    f.store.begin_step("step-two");
    assert_eq!(f.store.step_stats("step-two"), StepGraphStats::default());
    f.add_entities(vec![user("user-000002")]).unwrap();
    f.add_relationships(vec![
        relationship(
            "account-0001|has|user-000002",
            "account-0001",
            "user-000002",
        ),
        relationship(
            "account-0001|has|missing-0001",
            "account-0001",
            "missing-0001",
        ),
    ])
    .unwrap();

    let one = f.store.step_stats("step-one");
    assert_eq!(
        one.entities,
        BTreeMap::from([
            ("jumpcloud_account".to_owned(), 1),
            ("jumpcloud_user".to_owned(), 1)
        ])
    );
    assert!(one.relationships.is_empty());
    assert_eq!(one.dropped_relationships, 0);
    assert_eq!(
        one.encountered_types(),
        vec!["jumpcloud_account", "jumpcloud_user"]
    );

    let two = f.store.step_stats("step-two");
    assert_eq!(
        two.entities,
        BTreeMap::from([("jumpcloud_user".to_owned(), 1)])
    );
    assert_eq!(
        two.relationships,
        BTreeMap::from([("jumpcloud_account_has_user".to_owned(), 1)])
    );
    assert_eq!(two.dropped_relationships, 1);
    assert_eq!(
        two.encountered_types(),
        vec!["jumpcloud_account_has_user", "jumpcloud_user"]
    );

    // The sink learns the step of each object.
    let steps: Vec<(String, String)> = f
        .written()
        .iter()
        .map(|w| {
            (
                w.object["_key"].as_str().unwrap().to_owned(),
                w.step.clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("account-0001".to_owned(), "step-one".to_owned()),
            ("user-000001".to_owned(), "step-one".to_owned()),
            ("user-000002".to_owned(), "step-two".to_owned()),
            (
                "account-0001|has|user-000002".to_owned(),
                "step-two".to_owned()
            ),
        ]
    );
    assert_eq!(f.store.step_stats("never-run"), StepGraphStats::default());
}

#[test]
fn entities_created_by_mapping_count_in_the_current_step() {
    let mut f = Fixture::new();
    f.add_entities(vec![user("user-000001")]).unwrap();
    f.store.begin_step("fetch-users");
    f.add_mapped(vec![mapped("user-000001", "ada@example.com")])
        .unwrap();
    let stats = f.store.step_stats("fetch-users");
    assert_eq!(
        stats.encountered_types(),
        vec!["employee", "jumpcloud_user_is_person"]
    );
    assert_eq!(stats.mapped_to_created, 1);
    assert!(
        !f.store
            .step_stats("step-one")
            .entities
            .contains_key("employee")
    );
}

#[test]
fn encountered_types_are_sorted_and_unique() {
    let stats = StepGraphStats {
        entities: BTreeMap::from([("b_type".to_owned(), 1), ("same".to_owned(), 2)]),
        relationships: BTreeMap::from([("a_type".to_owned(), 1), ("same".to_owned(), 1)]),
        ..StepGraphStats::default()
    };
    assert_eq!(stats.encountered_types(), vec!["a_type", "b_type", "same"]);
}

// ---------------------------------------------------------------------------------
// Reading back
// ---------------------------------------------------------------------------------

fn rich_entity() -> Entity {
    Entity {
        key: "user-000001".to_owned(),
        type_: "jumpcloud_user".to_owned(),
        classes: vec!["User".to_owned(), "Person".to_owned()],
        properties: vec![
            text("name", "Ada Lovelace"),
            prop("active", PropertyValue::Boolean(true)),
            prop("createdOn", PropertyValue::Integer(1_700_000_000_123)),
            prop("negative", PropertyValue::Integer(-42)),
            prop("score", PropertyValue::Float(0.25)),
            prop("whole", PropertyValue::Float(2.0)),
            prop("manager", PropertyValue::Null),
            prop(
                "email",
                PropertyValue::TextList(vec!["ada@example.com".into()]),
            ),
            prop("ports", PropertyValue::IntegerList(vec![22, 443])),
            prop("flags", PropertyValue::BooleanList(vec![true, false])),
        ],
        raw_data: Some(
            r#"{"_id":"u1","mfa":{"configured":false},"tags":["a","b"],"n":3}"#.to_owned(),
        ),
    }
}

fn assert_round_trip(found: &Entity) {
    let expected = rich_entity();
    assert_eq!(found.key, expected.key);
    assert_eq!(found.type_, expected.type_);
    assert_eq!(found.classes, expected.classes);
    assert_eq!(found.properties.len(), expected.properties.len());
    for wanted in &expected.properties {
        assert_eq!(
            format!("{:?}", property(found, &wanted.name)),
            format!("{:?}", wanted.value),
            "property {}",
            wanted.name
        );
    }
    let raw: Value =
        serde_json::from_str(found.raw_data.as_deref().expect("raw data kept")).unwrap();
    let wanted: Value = serde_json::from_str(expected.raw_data.as_deref().unwrap()).unwrap();
    assert_eq!(raw, wanted);
}

#[test]
fn find_entity_round_trips_typed_properties_and_raw_data() {
    let mut f = Fixture::new();
    f.add_entities(vec![rich_entity(), user("user-000002")])
        .unwrap();

    // While the object is still buffered.
    let found = f.store.find_entity("user-000001").unwrap().expect("stored");
    assert_round_trip(&found);

    // And once it is on disk.
    f.store.flush().unwrap();
    let found = f.store.find_entity("user-000001").unwrap().expect("stored");
    assert_round_trip(&found);

    let other = f.store.find_entity("user-000002").unwrap().expect("stored");
    assert_eq!(other.key, "user-000002");
    assert!(other.raw_data.is_none());
}

#[test]
fn raw_data_is_written_in_the_j1_shape() {
    let mut f = Fixture::new();
    f.add_entities(vec![rich_entity()]).unwrap();
    let object = &f.written()[0].object;
    assert_eq!(
        object["_rawData"],
        serde_json::json!([{
            "name": "default",
            "rawData": {"_id": "u1", "mfa": {"configured": false}, "tags": ["a", "b"], "n": 3}
        }])
    );
    assert_eq!(
        object["createdOn"],
        serde_json::json!(1_700_000_000_123_i64)
    );
    assert_eq!(object["email"], serde_json::json!(["ada@example.com"]));
    assert_eq!(object["manager"], Value::Null);
}

#[test]
fn find_entity_reads_from_files_written_in_several_parts() {
    let mut f = Fixture::with_objects_per_file(2);
    let keys: Vec<String> = (0..5).map(|i| format!("user-{i:06}")).collect();
    f.add_entities(keys.iter().map(|k| user(k)).collect())
        .unwrap();
    for key in &keys {
        let found = f.store.find_entity(key).unwrap().expect("stored");
        assert_eq!(&found.key, key);
        assert_eq!(
            format!("{:?}", property(&found, "name")),
            format!("{:?}", PropertyValue::Text(key.clone()))
        );
    }
}

#[test]
fn find_entity_answers_none_for_relationships_and_unknown_keys() {
    let mut f = Fixture::new();
    f.add_entities(vec![user("user-000001"), user("user-000002")])
        .unwrap();
    f.add_relationships(vec![relationship(
        "user-000001|has|user-000002",
        "user-000001",
        "user-000002",
    )])
    .unwrap();
    assert!(
        f.store
            .find_entity("user-000001|has|user-000002")
            .unwrap()
            .is_none()
    );
    assert!(f.store.find_entity("nobody-00001").unwrap().is_none());
}

#[test]
fn null_sink_keeps_keys_but_reads_nothing() {
    let mut store = GraphStore::new(Box::new(crate::output::NullSink));
    store.begin_step("describe");
    assert_eq!(
        store
            .add_entities(vec![user("user-000001")])
            .unwrap()
            .unwrap(),
        outcome(1, 0)
    );
    assert!(store.has_key("user-000001"));
    assert!(store.find_entity("user-000001").unwrap().is_none());
    // Duplicates are still caught: the keys live in the store, not the sink.
    assert_eq!(
        duplicate_key(store.add_entities(vec![user("user-000001")]).unwrap()),
        "user-000001"
    );
}

#[test]
fn entity_keys_page_by_type_in_insertion_order() {
    let mut f = Fixture::new();
    let mut batch = Vec::new();
    for i in 0..5 {
        batch.push(user(&format!("user-{i:06}")));
        if i % 2 == 0 {
            batch.push(entity(
                &format!("group-{i:05}"),
                "jumpcloud_group",
                &["Group"],
            ));
        }
    }
    f.add_entities(batch).unwrap();
    f.add_relationships(vec![relationship(
        "user-000000|has|user-000001",
        "user-000000",
        "user-000001",
    )])
    .unwrap();

    assert_eq!(
        f.store.entity_keys("jumpcloud_user", 0, 2),
        vec!["user-000000", "user-000001"]
    );
    assert_eq!(
        f.store.entity_keys("jumpcloud_user", 2, 2),
        vec!["user-000002", "user-000003"]
    );
    assert_eq!(
        f.store.entity_keys("jumpcloud_user", 4, 100),
        vec!["user-000004"]
    );
    assert!(f.store.entity_keys("jumpcloud_user", 5, 100).is_empty());
    assert!(f.store.entity_keys("jumpcloud_user", 0, 0).is_empty());
    assert_eq!(
        f.store.entity_keys("jumpcloud_group", 0, 100),
        vec!["group-00000", "group-00002", "group-00004"]
    );
    assert!(
        f.store
            .entity_keys("jumpcloud_account_has_user", 0, 100)
            .is_empty()
    );
    assert!(f.store.entity_keys("no_such_type", 0, 100).is_empty());
}

#[test]
fn set_data_and_get_data() {
    let mut f = Fixture::new();
    assert_eq!(f.store.get_data("accounts"), None);
    f.store
        .set_data("accounts".into(), "[\"org1\"]".into())
        .unwrap();
    assert_eq!(f.store.get_data("accounts").as_deref(), Some("[\"org1\"]"));
    f.store.set_data("accounts".into(), "[]".into()).unwrap();
    assert_eq!(f.store.get_data("accounts").as_deref(), Some("[]"));
    assert_eq!(f.store.get_data("Accounts"), None);
    // Job data is not a graph object.
    assert_eq!(f.store.object_count(), 0);
    assert!(!f.store.has_key("accounts"));
}

// ---------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------

const SECRET: &str = "jca_0123456789abcdefSECRET";

#[test]
fn secrets_are_scrubbed_from_stored_properties_and_raw_data() {
    let mut f = Fixture::with_secrets(&[SECRET]);
    let mut leaky = user("user-000001");
    leaky.properties = vec![
        text("description", &format!("key is {SECRET}!")),
        prop(
            "notes",
            PropertyValue::TextList(vec!["fine".into(), format!("{SECRET}{SECRET}")]),
        ),
        prop("count", PropertyValue::Integer(7)),
    ];
    leaky.raw_data = Some(format!(
        r#"{{"_id":"u1","apiKey":"{SECRET}","nested":{{"list":["x {SECRET} y"]}}}}"#
    ));
    f.add_entities(vec![leaky, user("user-000002")]).unwrap();
    f.add_relationships(vec![Relationship {
        properties: vec![text("reason", &format!("via {SECRET}"))],
        ..relationship("user-000001|has|user-000002", "user-000001", "user-000002")
    }])
    .unwrap();

    let everything =
        serde_json::to_string(&f.written().iter().map(|w| &w.object).collect::<Vec<_>>()).unwrap();
    assert!(!everything.contains(SECRET), "{everything}");

    let entity = &f.written()[0].object;
    assert_eq!(entity["description"], "key is [REDACTED]!");
    assert_eq!(
        entity["notes"],
        serde_json::json!(["fine", "[REDACTED][REDACTED]"])
    );
    assert_eq!(entity["count"], 7);
    assert_eq!(
        entity["_rawData"][0]["rawData"],
        serde_json::json!({"_id": "u1", "apiKey": "[REDACTED]", "nested": {"list": ["x [REDACTED] y"]}})
    );
    assert_eq!(
        f.relationship("user-000001|has|user-000002")["reason"],
        "via [REDACTED]"
    );
    let found = f.store.find_entity("user-000001").unwrap().unwrap();
    assert!(!format!("{found:?}").contains(SECRET));
}

#[test]
fn secrets_written_with_json_escapes_are_scrubbed_from_raw_data() {
    let mut f = Fixture::with_secrets(&["jca_escaped/secret"]);
    let mut leaky = user("user-000001");
    // `\/` is how some encoders write a slash: the text does not contain the secret.
    leaky.raw_data = Some(r#"{"apiKey":"jca_escaped\/secret"}"#.to_owned());
    f.add_entities(vec![leaky]).unwrap();
    assert_eq!(
        f.written()[0].object["_rawData"][0]["rawData"],
        serde_json::json!({"apiKey": "[REDACTED]"})
    );
}

#[test]
fn secrets_are_scrubbed_from_created_mapping_targets() {
    let mut f = Fixture::with_secrets(&[SECRET]);
    f.add_entities(vec![user("user-000001")]).unwrap();
    let mut m = mapped("user-000001", "ada@example.com");
    m.target_entity.properties.push(text("note", SECRET));
    m.properties.push(text("note", SECRET));
    f.add_mapped(vec![m]).unwrap();
    let everything = format!("{:?}", f.written());
    assert!(!everything.contains(SECRET), "{everything}");
    assert!(f.store.has_key("employee:ada@example.com"));
}

// ---------------------------------------------------------------------------------
// Host-set entity tags
// ---------------------------------------------------------------------------------

#[test]
fn entity_tags_reach_every_entity_including_mapped_targets_and_override_the_plugin() {
    let mut f = Fixture::new();
    f.store = std::mem::replace(
        &mut f.store,
        GraphStore::new(Box::new(crate::output::NullSink)),
    )
    .with_entity_tags(vec![("tag.AccountName".into(), "Acme IdP".into())]);
    let mut forged = user("user-000001");
    forged
        .properties
        .push(text("tag.AccountName", "someone else"));
    f.add_entities(vec![forged]).unwrap();
    f.add_mapped(vec![mapped("user-000001", "new@example.com")])
        .unwrap();
    let entities: Vec<Written> = f
        .written()
        .into_iter()
        .filter(|w| w.kind == ObjectKind::Entity)
        .collect();
    assert_eq!(entities.len(), 2, "the user and the created employee");
    for entity in &entities {
        assert_eq!(entity.object["tag.AccountName"], "Acme IdP", "{entity:?}");
    }
    let relationships: Vec<Written> = f
        .written()
        .into_iter()
        .filter(|w| w.kind == ObjectKind::Relationship)
        .collect();
    assert!(
        relationships
            .iter()
            .all(|r| !r.object.contains_key("tag.AccountName")),
        "tags are for entities"
    );
}

// ---------------------------------------------------------------------------------
// Budgets and the deadline
// ---------------------------------------------------------------------------------

fn limited(budgets: Budgets) -> Fixture {
    let mut f = Fixture::new();
    f.store = std::mem::replace(
        &mut f.store,
        GraphStore::new(Box::new(crate::output::NullSink)),
    )
    .with_budgets(budgets);
    f.store.begin_step("step-one");
    f
}

fn limit_of(result: StoreResult<BatchOutcome>) -> LimitExceeded {
    match result {
        Err(StoreFailure::Limit(limit)) => limit,
        other => panic!("expected a limit, got {other:?}"),
    }
}

fn users(from: usize, count: usize) -> Vec<Entity> {
    (from..from + count)
        .map(|i| user(&format!("user-{i:06}")))
        .collect()
}

#[test]
fn objects_past_the_object_budget_end_the_run_and_what_came_before_stays() {
    let mut f = limited(Budgets {
        graph_objects: 5,
        ..Budgets::unlimited()
    });
    assert_eq!(f.add_entities(users(0, 3)).unwrap(), outcome(3, 0));
    let limit = limit_of(f.store.add_entities(users(3, 3)));
    assert_eq!(limit.budget, Budget::GraphObjects);
    assert_eq!(limit.limit, 5);
    // Charged object by object: the run stops at the limit, not a batch before it.
    assert_eq!(f.store.object_count(), 5);
    assert_eq!(f.written_keys().len(), 5);
    assert_eq!(f.store.spent().graph_objects, 5);
}

#[test]
fn entities_created_by_mapped_relationships_spend_the_object_budget() {
    let mut f = limited(Budgets {
        graph_objects: 2,
        ..Budgets::unlimited()
    });
    f.add_entities(vec![user("user-000001")]).unwrap();
    // The mapping creates an employee (2 objects) before its relationship (3).
    let limit = limit_of(
        f.store
            .add_mapped_relationships(vec![mapped("user-000001", "ada@example.com")]),
    );
    assert_eq!(limit.budget, Budget::GraphObjects);
    assert!(f.store.has_key("employee:ada@example.com"));
    assert!(!f.store.has_key("user-000001|is|employee:ada@example.com"));
}

#[test]
fn the_index_budget_counts_keys_emails_and_each_object() {
    let mut f = limited(Budgets::unlimited());
    let mut ada = user("user-000001");
    ada.properties.push(text("email", "ada@example.com"));
    f.add_entities(vec![ada]).unwrap();
    let spent = f.store.spent().graph_bytes;
    let at_least = "user-000001".len() + "ada@example.com".len();
    assert!(spent >= at_least as u64 + GRAPH_BYTES_PER_OBJECT, "{spent}");

    let mut f = limited(Budgets {
        graph_bytes: 4096,
        ..Budgets::unlimited()
    });
    let long_key = Entity {
        key: "k".repeat(5000),
        ..user("unused-key")
    };
    let limit = limit_of(f.store.add_entities(vec![long_key]));
    assert_eq!(limit.budget, Budget::Graph);
    assert_eq!(f.store.object_count(), 0);
    assert!(f.written().is_empty());
}

#[test]
fn the_output_budget_counts_the_bytes_of_every_object() {
    let mut f = limited(Budgets {
        output_bytes: 10_000,
        ..Budgets::unlimited()
    });
    let mut big = user("user-000001");
    big.properties.push(text("notes", &"n".repeat(6000)));
    f.add_entities(vec![big.clone()]).unwrap();
    assert!(f.store.spent().output_bytes > 6000);
    big.key = "user-000002".into();
    let limit = limit_of(f.store.add_entities(vec![big]));
    assert_eq!(limit.budget, Budget::Output);
    assert_eq!(f.written_keys(), vec!["user-000001"]);
}

#[test]
fn job_data_is_charged_by_bytes_and_entries_and_replacing_gives_back() {
    let mut f = limited(Budgets {
        job_data_bytes: 1000,
        job_data_entries: 3,
        ..Budgets::unlimited()
    });
    f.store.set_data("a".into(), "x".repeat(500)).unwrap();
    // Replacing a value frees the old one first.
    f.store.set_data("a".into(), "y".repeat(800)).unwrap();
    assert_eq!(f.store.spent().job_data_entries, 1);
    let limit = f.store.set_data("b".into(), "z".repeat(200)).unwrap_err();
    assert_eq!(limit.budget, Budget::JobData);
    assert_eq!(f.store.get_data("b"), None, "a refused value is not kept");
    f.store.set_data("a".into(), String::new()).unwrap();
    f.store.set_data("b".into(), String::new()).unwrap();
    f.store.set_data("c".into(), String::new()).unwrap();
    let limit = f.store.set_data("d".into(), String::new()).unwrap_err();
    assert_eq!(limit.budget, Budget::JobDataEntries);
    assert_eq!(
        limit.to_string(),
        "limit exceeded: job data entries 3 (sandbox.maxJobDataEntries)"
    );
}

#[test]
fn a_batch_still_running_at_the_deadline_stops() {
    let mut f = Fixture::new();
    f.store = std::mem::replace(
        &mut f.store,
        GraphStore::new(Box::new(crate::output::NullSink)),
    )
    .with_deadline(Instant::now());
    match f.store.add_entities(users(0, 1000)) {
        Err(StoreFailure::Deadline) => {}
        other => panic!("expected the deadline, got {other:?}"),
    }
    assert_eq!(f.store.object_count(), 0);
}

#[test]
fn begin_output_forgets_the_objects_but_keeps_budgets_and_deadline() {
    let mut f = limited(Budgets {
        graph_objects: 2,
        ..Budgets::unlimited()
    });
    f.add_entities(users(0, 2)).unwrap();
    f.store.begin_output(
        Box::new(crate::output::NullSink),
        Redactor::default(),
        Vec::new(),
    );
    assert_eq!(f.store.object_count(), 0);
    assert_eq!(f.store.spent().graph_objects, 0);
    f.store.begin_step("step-one");
    f.add_entities(users(0, 2)).unwrap();
    limit_of(f.store.add_entities(users(2, 1)));
}

#[test]
fn types_with_paths_and_raw_data_nested_too_deep_are_invalid() {
    let mut f = Fixture::new();
    let climbing = entity("climb-000001", "../../../escaped_type", &["Resource"]);
    let reason = invalid_reason(f.add_entities(vec![climbing]));
    assert!(
        reason.contains("_type") && reason.contains("must match"),
        "{reason}"
    );

    let mut deep = user("user-000001");
    deep.raw_data = Some(format!("{}{}", "[".repeat(65), "]".repeat(65)));
    let reason = invalid_reason(f.add_entities(vec![deep.clone()]));
    assert!(reason.contains("nests deeper than 64"), "{reason}");
    // Brackets inside strings do not count.
    deep.raw_data = Some(format!("[\"{}\"]", "[".repeat(1000)));
    f.add_entities(vec![deep]).unwrap();
    assert!(f.store.find_entity("user-000001").unwrap().is_some());
    assert!(
        f.written()
            .iter()
            .all(|w| w.object_type != "../../../escaped_type")
    );
}

//! The output against the J1 contract: entities validate against the data-model
//! class schemas, relationship classes are known, and `summary.json` and the graph
//! files have the integration-SDK shape.

use std::collections::{BTreeMap, BTreeSet};

use integration_tests::data_model::data_model;
use integration_tests::graph::ObjectKind;
use integration_tests::{Run, STEP_IDS, Setup, loaded, run, small_spec};
use jumpcloud_simulator::TenantSpec;
use serde_json::{Value, json};

/// The classes the JumpCloud component emits entities of.
const ENTITY_CLASSES: [&str; 10] = [
    "Account",
    "Organization",
    "User",
    "Group",
    "Application",
    "Person",
    "Configuration",
    "Device",
    "Host",
    "ControlPolicy",
];

/// What the recorded answers hold: no systems and no policies.
const RECORDED_CLASSES: [&str; 8] = [
    "Account",
    "Organization",
    "User",
    "Group",
    "Application",
    "Person",
    "Configuration",
    "Device",
];

/// Asserts every entity validates against the schema of each of its classes, every
/// relationship has one known class and existing endpoints, and `_key`s are unique
/// and at least 10 characters; exactly the classes `expected` occur.
fn assert_graph_follows_the_data_model(run: &Run, expected: &[&str]) {
    let model = data_model();
    let graph = &run.graph;
    assert!(!graph.entities.is_empty());
    let mut problems = Vec::new();
    let mut classes_seen = BTreeSet::new();
    for entity in &graph.entities {
        classes_seen.extend(entity.classes().into_iter().map(str::to_owned));
        for error in model.entity_errors(&entity.to_value()) {
            problems.push(format!("{} ({}): {error}", entity.key(), entity.type_()));
        }
    }
    let entities = graph.entity_index();
    for relationship in &graph.relationships {
        let key = relationship.key();
        match relationship.get("_class") {
            Some(Value::String(class)) if model.is_relationship_class(class) => {}
            other => problems.push(format!("{key}: relationship _class {other:?}")),
        }
        for end in [relationship.from_key(), relationship.to_key()] {
            if !entities.contains_key(end) {
                problems.push(format!("{key}: endpoint {end} is not an entity"));
            }
        }
    }
    for object in graph.entities.iter().chain(&graph.relationships) {
        if object.key().chars().count() < 10 {
            problems.push(format!("{}: _key shorter than 10", object.key()));
        }
    }
    for key in graph.duplicate_keys() {
        problems.push(format!("{key}: emitted more than once"));
    }
    let shown: Vec<&String> = problems.iter().take(20).collect();
    assert!(
        problems.is_empty(),
        "{} problems, the first: {shown:#?}",
        problems.len()
    );
    let expected: BTreeSet<String> = expected.iter().map(|c| c.to_string()).collect();
    assert_eq!(classes_seen, expected, "the classes emitted");
}

/// The validator is not vacuous: references to `#Entity` and `#GraphObject` resolve
/// (their required properties and key length are enforced through `User`), formats are
/// checked, and relationship classes are looked up.
#[test]
fn the_data_model_validator_rejects_what_the_schemas_forbid() {
    let model = data_model();
    let classes: BTreeSet<&str> = model.classes().collect();
    for class in ENTITY_CLASSES {
        assert!(classes.contains(class), "a schema for {class}");
    }
    let user = json!({
        "_key": "user-0000000001",
        "_type": "jumpcloud_user",
        "_class": ["User"],
        "name": "Ada Lovelace",
        "displayName": "Ada Lovelace",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": ["ada@example.com"],
        "username": ["ada"],
        "shortLoginId": ["ada"],
    });
    assert_eq!(model.entity_errors(&user), Vec::<String>::new());

    let broken = |change: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut object = user.as_object().expect("an object").clone();
        change(&mut object);
        model.entity_errors(&Value::Object(object))
    };
    // User's own requirements.
    assert!(
        !broken(&|u| {
            u.remove("username");
        })
        .is_empty()
    );
    assert!(
        !broken(&|u| {
            u.insert("email".into(), json!("ada@example.com"));
        })
        .is_empty()
    );
    // Entity's, through `#Entity`.
    assert!(
        !broken(&|u| {
            u.remove("displayName");
        })
        .is_empty()
    );
    // GraphObject's, through `#Entity` and `#GraphObject`.
    assert!(
        !broken(&|u| {
            u.insert("_key".into(), json!("short"));
        })
        .is_empty()
    );
    // Formats.
    assert!(
        !broken(&|u| {
            u.insert("email".into(), json!(["not an email"]));
        })
        .is_empty()
    );
    // Every class is checked: a null email suits User but not Person.
    assert!(
        broken(&|u| {
            u.insert("email".into(), Value::Null);
        })
        .is_empty()
    );
    assert!(
        !broken(&|u| {
            u.insert("email".into(), Value::Null);
            u.insert("_class".into(), json!(["User", "Person"]));
        })
        .is_empty()
    );
    // An unknown class is an error.

    assert!(
        !broken(&|u| {
            u.insert("_class".into(), json!(["User", "Unicorn"]));
        })
        .is_empty()
    );

    // Device and Host: all 18 properties present (null allowed), no null `status`.
    let device = json!({
        "_key": "system-0000000001", "_type": "jumpcloud_system", "_class": ["Host", "Device"],
        "name": "web-01", "displayName": "web-01", "category": "server",
        "ipv4Addresses": ["10.0.0.1"], "ipv6Addresses": null, "macAddresses": null,
        "publicIpAddresses": null, "privateIpAddresses": ["10.0.0.1"], "hostname": "web-01",
        "fqdn": ["web-01.example.com"], "serial": null, "deviceId": null, "lastSeenOn": null,
        "make": null, "model": null, "osName": "Ubuntu", "osType": "linux",
        "osDetails": "Ubuntu 22.04", "osVersion": "22.04",
    });
    assert_eq!(model.entity_errors(&device), Vec::<String>::new());
    let changed = |name: &str, value: Option<Value>| {
        let mut object = device.as_object().expect("an object").clone();
        match value {
            Some(value) => object.insert(name.into(), value),
            None => object.remove(name),
        };
        model.entity_errors(&Value::Object(object))
    };
    assert!(
        !changed("hostname", None).is_empty(),
        "a required property missing"
    );
    assert!(!changed("hostname", Some(json!("web_01"))).is_empty());
    assert!(!changed("status", Some(Value::Null)).is_empty());
    assert!(!changed("deviceId", Some(json!("one-udid"))).is_empty());
    assert!(!changed("macAddresses", Some(json!(["02-00-00-00-00-01"]))).is_empty());
    assert!(!changed("fqdn", Some(json!(["laptop.local."]))).is_empty());
    assert!(!changed("osType", Some(json!("macos"))).is_empty());
    assert!(!changed("encrypted", Some(Value::Null)).is_empty());

    assert!(model.is_relationship_class("HAS"));
    assert!(model.is_relationship_class("ASSIGNED"));
    assert!(model.is_relationship_class("IS"));
    assert!(model.is_relationship_class("OWNS"));
    assert!(model.is_relationship_class("ENFORCES"));
    assert!(!model.is_relationship_class("has"));
    assert!(!model.is_relationship_class("MEMBER_OF"));
}

/// Every entity of a demo-size generated tenant (250 users, 12 groups, 300 systems,
/// Apple MDM devices, administrators, policies, edge cases included) validates against the schema of each of its classes, and every
/// relationship `_class` is a data-model relationship class.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_size_tenant_follows_the_data_model() {
    let run = run(Setup::generated(TenantSpec {
        users: 250,
        groups: 12,
        ..TenantSpec::default()
    }))
    .await;
    assert_eq!(run.summary.exit_code(), 0);
    assert_graph_follows_the_data_model(&run, &ENTITY_CLASSES);
    // Every new entity type is there to be checked.
    for kind in [
        "jumpcloud_system",
        "jumpcloud_system_group",
        "jumpcloud_apple_mdm",
        "jumpcloud_apple_device",
        "jumpcloud_administrator",
        "jumpcloud_policy",
    ] {
        assert!(!run.graph.entities_of_type(kind).is_empty(), "{kind}");
    }
}

/// Every entity built from the recorded JumpCloud answers validates against the
/// schema of each of its classes, and every relationship class is known.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorded_dataset_follows_the_data_model() {
    let run = run(Setup::recorded()).await;
    assert_eq!(run.summary.exit_code(), 0);
    assert_graph_follows_the_data_model(&run, &RECORDED_CLASSES);
}

/// `summary.json` has the SDK fields (id, name, declaredTypes, partialTypes,
/// encounteredTypes, a known status; metadata.partialDatasets.types) consistent with
/// the plugin's step table and the files written; entity files hold at most 500
/// objects of one `_type` each, in the folder of the step that emitted them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_and_graph_files_have_the_sdk_shape() {
    let users = 1001;
    let run = run(Setup::generated(small_spec(users, 3, 3))).await;
    assert_eq!(run.summary.exit_code(), 0);
    let info = &loaded().await.info;

    let steps = run.summary_json["integrationStepResults"]
        .as_array()
        .expect("integrationStepResults is an array");
    let ids: Vec<&str> = steps
        .iter()
        .map(|s| s["id"].as_str().expect("a step id"))
        .collect();
    assert_eq!(
        ids.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from(STEP_IDS)
    );
    let strings = |value: &Value, field: &str| -> BTreeSet<String> {
        value[field]
            .as_array()
            .unwrap_or_else(|| panic!("{field} is an array: {value}"))
            .iter()
            .map(|t| {
                t.as_str()
                    .unwrap_or_else(|| panic!("{field} holds strings"))
                    .to_owned()
            })
            .collect()
    };
    for step in steps {
        let id = step["id"].as_str().expect("a step id");
        let declared = info
            .steps
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("{id} is a declared step"));
        assert_eq!(step["name"], declared.name.as_str());
        assert_eq!(
            strings(step, "declaredTypes"),
            declared
                .declared_types
                .iter()
                .map(|t| t.type_.clone())
                .collect()
        );
        assert!(strings(step, "partialTypes").is_empty(), "{id}");
        let status = step["status"].as_str().expect("a status");
        assert!(
            [
                "success",
                "failure",
                "partial_success_due_to_dependency_failure",
                "disabled"
            ]
            .contains(&status),
            "{id}: status {status}"
        );
        assert_eq!(status, "success", "{id}");

        // encounteredTypes and their counts are what the step's folder holds.
        let mut found: BTreeMap<String, u64> = BTreeMap::new();
        for object in run.graph.entities.iter().chain(&run.graph.relationships) {
            if object.step == id {
                *found.entry(object.type_().to_owned()).or_default() += 1;
            }
        }
        assert_eq!(
            strings(step, "encounteredTypes"),
            found.keys().cloned().collect(),
            "{id}"
        );
        let counts: BTreeMap<String, u64> = step["encounteredTypeCounts"]
            .as_object()
            .expect("encounteredTypeCounts")
            .iter()
            .map(|(t, n)| (t.clone(), n.as_u64().expect("a count")))
            .collect();
        assert_eq!(counts, found, "{id}");
    }
    assert_eq!(
        run.summary_json["metadata"]["partialDatasets"]["types"],
        json!([])
    );

    for file in &run.graph.files {
        assert!(
            file.objects <= 500,
            "{} holds {}",
            file.path.display(),
            file.objects
        );
        assert!(file.objects >= 1, "{} is empty", file.path.display());
        assert_eq!(file.types.len(), 1, "{} mixes types", file.path.display());
        let parent = file
            .path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str());
        assert_eq!(parent, Some(file.kind.dir()));
    }
    let user_files: Vec<usize> = run
        .graph
        .files
        .iter()
        .filter(|f| f.kind == ObjectKind::Entity && f.types.contains("jumpcloud_user"))
        .map(|f| f.objects)
        .collect();
    assert_eq!(user_files.len(), users.div_ceil(500), "{user_files:?}");
    assert_eq!(user_files.iter().sum::<usize>(), users);
    for file in &run.graph.files {
        let expected_step = info
            .steps
            .iter()
            .find(|s| {
                s.declared_types
                    .iter()
                    .any(|t| file.types.contains(&t.type_))
            })
            .map(|s| s.id.as_str());
        // Mapped targets (`employee`) are not declared; they belong to the step whose
        // mapping created them: fetch-users, or fetch-administrators for an email no
        // user has.
        match expected_step {
            Some(step) => assert_eq!(file.step, step, "{}", file.path.display()),
            None => {
                assert_eq!(file.types, BTreeSet::from(["employee".to_owned()]));
                assert!(
                    ["fetch-users", "fetch-administrators"].contains(&file.step.as_str()),
                    "{}",
                    file.path.display()
                );
            }
        }
    }
}

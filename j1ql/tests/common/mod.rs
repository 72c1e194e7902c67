//! The conformance tests' graph: a hand-made JumpCloud-shaped graph (data-model.md),
//! kept as data in tests/fixture.json and loaded here.
//!
//! Entities, in graph order:
//! - `acct` (jumpcloud_account: Account, Organization)
//! - users (jumpcloud_user: User), with `mfaEnabled`, `department` (scalar), `userTags`
//!   (array), `loginCount` (number), `role`, `tag.AccountName`, metadata:
//!
//!   | key | active | suspended | mfaEnabled | mfaConf. | mfaExcl. | department | userTags | login | created | v |
//!   |---|---|---|---|---|---|---|---|---|---|---|
//!   | u-alice | T | F | T | T | F | Engineering | [admin, eng] | 42 | -400 d | 3 |
//!   | u-bob | T | F | F | F | F | Engineering | [eng] | 7 | -10 h | 1 |
//!   | u-carol | F | T | F | T | F | Sales | [] | 0 | -100 d | 2 |
//!   | u-dave | T | F | - | - | - | - | - | 3 | -2 d | 1 |
//!   | u-erin | T | F | T | T | T | Sales | [sales, admin] | 12 | -40 d | 1 |
//!   | u-frank (tombstone) | T | F | F | - | - | Engineering | [eng] | - | -5 d | 2 |
//!   | u-gina | F | F | F | F | F | Support | [support] | 1 | -20 d | 1 |
//!
//! - employees (employee: Person) p-alice, p-bob, p-carol, p-dave, p-gina (created -30 d,
//!   no department) and p-zed (created -400 d, department HR, no user)
//! - groups (jumpcloud_group: Group): g-eng "Engineering" {alice, bob, frank; dave by a
//!   deleted edge}, g-sales "Sales" {carol, erin}, g-all "Everyone" {alice, bob, carol,
//!   dave, erin, gina}, g-empty "Empty" {}
//! - applications (jumpcloud_application: Application): app-slack "Slack", app-aws
//!   "AWS", app-unused "Unused"
//!
//! Relationships: acct HAS every user, group and application; group HAS user as above;
//! u-alice ASSIGNED app-slack (direct), u-bob ASSIGNED app-slack (not direct), u-carol
//! ASSIGNED app-aws (direct); g-eng ASSIGNED app-aws, g-sales ASSIGNED app-slack;
//! user IS person for alice, bob, carol, dave, gina (erin is a service account); and one
//! dangling ASSIGNED to a missing application. Relationship keys are
//! `<from>|<verb lowercased>|<to>`.

#![allow(dead_code)]

use j1ql::{Entity, Graph, GraphBuilder, Relationship};
use serde_json::{Map, Value, json};

/// 2024-06-15T00:00:00Z: the clock of every conformance query.
pub const NOW: i64 = 1_718_409_600_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 86_400_000;

/// Timestamps are written relative to [`NOW`] in the fixture: `"-400d"`, `"-10h"`.
fn timestamp(v: &Value) -> Value {
    let Some(text) = v.as_str() else {
        return v.clone();
    };
    let (n, unit) = text.split_at(text.len() - 1);
    let n: i64 = n.parse().expect("a relative timestamp like -3d");
    json!(NOW + n * if unit == "d" { DAY } else { HOUR })
}

fn props(v: &Value) -> Map<String, Value> {
    let mut m = v.as_object().cloned().expect("properties object");
    for k in ["_createdOn", "_beginOn", "_endOn"] {
        if let Some(t) = m.get(k).map(timestamp) {
            m.insert(k.into(), t);
        }
    }
    m
}

pub fn fixture() -> Graph {
    let data: Value =
        serde_json::from_str(include_str!("../fixture.json")).expect("fixture.json is JSON");
    let mut b = GraphBuilder::new();
    for e in data["entities"].as_array().expect("entities") {
        b.add_entity(Entity {
            key: e["key"].as_str().expect("key").into(),
            entity_type: e["type"].as_str().expect("type").into(),
            classes: e["classes"]
                .as_array()
                .expect("classes")
                .iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect(),
            properties: props(&e["properties"]),
            deleted: e["deleted"] == json!(true),
        });
    }
    for r in data["relationships"].as_array().expect("relationships") {
        let (from, verb, to) = (
            r[0].as_str().expect("from"),
            r[1].as_str().expect("verb"),
            r[2].as_str().expect("to"),
        );
        let mut properties = props(&r[4]);
        properties.insert("displayName".into(), json!(verb));
        b.add_relationship(Relationship {
            key: format!("{from}|{}|{to}", verb.to_lowercase()),
            relationship_type: r[3].as_str().expect("type").into(),
            class: verb.into(),
            from_key: from.into(),
            to_key: to.into(),
            properties,
            deleted: r[5] == json!(true),
        });
    }
    b.build()
}

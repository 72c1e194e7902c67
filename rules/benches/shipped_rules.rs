//! Evaluation time of the shipped JumpCloud rules on generated 10k- and 100k-user tenants,
//! with the real J1QL engine: `cargo bench -p alert-rules`. Prints the median of several
//! runs per rule, the result count, and the time beyond the engine's own (J1's JSON of the
//! rows when a template reads `queries.<name>.data`, the evaluation itself). The last row
//! is the no-MFA rule with a webhook that sends the rows, to show what `data` costs.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use alert_rules::{
    EvaluationContext, Format, J1qlChecker, J1qlRunner, evaluate, load_rules_file, parse_rules,
};
use j1ql::{Entity, GraphBuilder, Relationship};
use serde_json::{Map, Value, json};

const NOW: i64 = 1_750_000_000_000;

fn entity(key: String, entity_type: &str, class: &str, properties: Value) -> Entity {
    let Value::Object(properties) = properties else {
        unreachable!("object literal")
    };
    Entity {
        key,
        entity_type: entity_type.to_owned(),
        classes: vec![class.to_owned()],
        properties,
        deleted: false,
    }
}

fn relationship(from: &str, verb: &str, to: &str, relationship_type: &str) -> Relationship {
    Relationship {
        key: format!("{from}|{}|{to}", verb.to_lowercase()),
        relationship_type: relationship_type.to_owned(),
        class: verb.to_owned(),
        from_key: from.to_owned(),
        to_key: to.to_owned(),
        properties: Map::new(),
        deleted: false,
    }
}

/// A tenant shaped like the simulator's: 1 in 5 users without MFA, 1 in 8 not active, 1 in
/// 25 suspended, 1 in 30 without email; one group per 20 users (each user in two groups, one
/// group in 10 empty), one application per 100 users (assigned to users and groups, one in 10
/// unused).
fn tenant(users: usize) -> j1ql::Graph {
    let mut b = GraphBuilder::new();
    b.add_entity(entity(
        "acct".into(),
        "jumpcloud_account",
        "Account",
        json!({"name": "acct"}),
    ));
    let groups = users / 20;
    let apps = users / 100;
    for g in 0..groups {
        b.add_entity(entity(
            format!("g{g}"),
            "jumpcloud_group",
            "Group",
            json!({"name": format!("group {g}")}),
        ));
        b.add_relationship(relationship(
            "acct",
            "HAS",
            &format!("g{g}"),
            "jumpcloud_account_has_group",
        ));
    }
    for a in 0..apps {
        b.add_entity(entity(
            format!("a{a}"),
            "jumpcloud_application",
            "Application",
            json!({"name": format!("app {a}")}),
        ));
        b.add_relationship(relationship(
            "acct",
            "HAS",
            &format!("a{a}"),
            "jumpcloud_account_has_application",
        ));
        if !a.is_multiple_of(10) {
            let g = (a * 7) % groups;
            if !g.is_multiple_of(10) {
                b.add_relationship(relationship(
                    &format!("g{g}"),
                    "ASSIGNED",
                    &format!("a{a}"),
                    "jumpcloud_group_assigned_application",
                ));
            }
        }
    }
    for u in 0..users {
        let key = format!("u{u}");
        let suspended = u.is_multiple_of(25);
        let active = !suspended && !u.is_multiple_of(8);
        let email = (!u.is_multiple_of(30)).then(|| format!("user{u}@example.com"));
        b.add_entity(entity(
            key.clone(),
            "jumpcloud_user",
            "User",
            json!({"name": format!("User {u}"), "username": format!("user{u}"), "email": email,
                   "active": active, "suspended": suspended, "mfaEnabled": !u.is_multiple_of(5), "mfaExclusion": u.is_multiple_of(50),
                   "_createdOn": NOW - ((u as i64 + 5) % 400) * 86_400_000, "_version": 1}),
        ));
        b.add_relationship(relationship(
            "acct",
            "HAS",
            &key,
            "jumpcloud_account_has_user",
        ));
        for g in [u % groups, (u * 13 + 5) % groups] {
            if !g.is_multiple_of(10) {
                b.add_relationship(relationship(
                    &format!("g{g}"),
                    "HAS",
                    &key,
                    "jumpcloud_group_has_user",
                ));
            }
        }
        if u.is_multiple_of(3) {
            let a = u % apps;
            if !a.is_multiple_of(10) {
                b.add_relationship(relationship(
                    &key,
                    "ASSIGNED",
                    &format!("a{a}"),
                    "jumpcloud_user_assigned_application",
                ));
            }
        }
        if let Some(email) = email {
            let person = format!("employee:{email}");
            b.add_entity(entity(
                person.clone(),
                "employee",
                "Person",
                json!({"email": email}),
            ));
            b.add_relationship(relationship(
                &key,
                "IS",
                &person,
                "jumpcloud_user_is_person",
            ));
        }
    }
    b.build()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("jumpcloud-rules.json");
    let mut rules = load_rules_file(&path, &J1qlChecker).expect("shipped rules load");
    let with_data = json!([{
        "name": "users-without-mfa, webhook with the rows",
        "question": {"queries": [{"query": rules[0].queries[0].query}]},
        "operations": [{"when": "{{queries.query0.total > 0}}", "actions": [
            {"type": "WEBHOOK", "endpoint": "http://127.0.0.1:9/", "body": {"users": "{{queries.query0.data}}"}}]}]
    }]);
    rules.extend(
        parse_rules(&with_data.to_string(), Format::Json, "bench", &J1qlChecker).expect("loads"),
    );
    let ctx = EvaluationContext {
        baseline: false,
        partial_types: BTreeSet::new(),
        now_ms: NOW,
    };
    for users in [10_000, 100_000] {
        let graph = tenant(users);
        let runner = J1qlRunner::new(&graph, NOW);
        println!(
            "\n{users} users ({} entities, {} relationships)",
            graph.entity_count(),
            graph.relationship_count()
        );
        println!(
            "{:<46} {:>8} {:>12} {:>14}",
            "rule", "results", "evaluate", "beyond engine"
        );
        let mut total = Duration::ZERO;
        for rule in &rules {
            let runs = if users > 50_000 { 5 } else { 11 };
            let mut times = Vec::new();
            let mut results = 0;
            for _ in 0..runs {
                let start = Instant::now();
                let evaluation = evaluate(rule, &runner, None, &ctx);
                times.push(start.elapsed());
                assert_eq!(evaluation.error, None, "{}", rule.name);
                results = evaluation.totals["query0"];
            }
            // The engine alone, for the time spent beyond it.
            let query = j1ql::parse(&rule.queries[0].query).expect("checked");
            let mut engine = Vec::new();
            for _ in 0..runs {
                let start = Instant::now();
                let result = query
                    .execute(&graph, &j1ql::ExecOptions::unlimited(NOW))
                    .expect("runs");
                std::hint::black_box(result.entity_ids());
                engine.push(start.elapsed());
            }
            let (whole, engine) = (median(times), median(engine));
            total += whole;
            println!(
                "{:<46} {:>8} {:>10.1}ms {:>12.1}ms",
                rule.name,
                results,
                whole.as_secs_f64() * 1e3,
                whole.saturating_sub(engine).as_secs_f64() * 1e3
            );
        }
        println!(
            "{:<46} {:>8} {:>10.1}ms",
            "all rules",
            "",
            total.as_secs_f64() * 1e3
        );
    }
}

//! J1QL conformance: each row is a query, its expected result on the fixture graph
//! (tests/common/mod.rs), and the J1 rule it checks, cited by section of
//! /work/shared/j1ql-and-alerts.md ("§1 Arrays and undefined", "§2 #5", ...).
//!
//! Every row runs twice, through the planner and through the naive reference evaluator,
//! and both must give the expected result.

mod common;

use common::{NOW, fixture};
use j1ql::{ExecOptions, Graph, GraphBuilder, QueryResult, parse};
use serde_json::{Value, json};

#[derive(Clone, Copy)]
enum Opts {
    Interactive,
    Deleted,
}

enum Expect {
    /// An entity list: these `_key`s in this order.
    Keys(Vec<String>),
    /// A table: exactly these rows.
    Rows(Value),
    /// A table whose only row holds at least these columns.
    RowHas(Value),
    /// A table of this many rows.
    RowCount(usize),
    /// A tree: vertex keys and edge keys, in order.
    Tree(Vec<String>, Vec<String>),
}

use Expect::*;

struct Case {
    query: String,
    opts: Opts,
    expect: Expect,
    rule: String,
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// The records of tests/conformance.txt (its header explains the format).
fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for block in include_str!("conformance.txt").split("\n\n") {
        let (mut query, mut rule, mut opts, mut expect) =
            (None, String::new(), Opts::Interactive, None);
        for line in block.lines().filter(|l| !l.starts_with('#')) {
            let (tag, rest) = line.split_once(':').expect("`tag: value` lines");
            let rest = rest.trim();
            let json = || serde_json::from_str::<Value>(rest).expect("JSON expectation");
            match tag {
                "rule" => rule = rest.to_owned(),
                "query" => query = Some(rest.to_owned()),
                "options" if rest == "include_deleted" => opts = Opts::Deleted,
                "keys" => expect = Some(Keys(words(rest))),
                "rows" => expect = Some(Rows(json())),
                "row-has" => expect = Some(RowHas(json())),
                "row-count" => expect = Some(RowCount(rest.parse().expect("a count"))),
                "tree" => {
                    let (v, e) = rest.split_once('|').expect("vertices | edges");
                    expect = Some(Tree(words(v), words(e)));
                }
                other => panic!("unknown tag {other:?} in conformance.txt"),
            }
        }
        if let Some(query) = query {
            let expect = expect.unwrap_or_else(|| panic!("no expectation for {query}"));
            out.push(Case {
                query,
                opts,
                expect,
                rule,
            });
        }
    }
    out
}

fn options(o: Opts) -> ExecOptions {
    ExecOptions {
        limit: None,
        include_deleted: matches!(o, Opts::Deleted),
        now_ms: NOW,
    }
}

fn interactive<'g>(g: &'g Graph, text: &str) -> QueryResult<'g> {
    parse(text)
        .expect("parses")
        .execute(g, &options(Opts::Interactive))
        .expect("runs")
}

fn check(result: &QueryResult, expect: &Expect) -> Result<(), String> {
    match (expect, result) {
        (Keys(keys), QueryResult::Entities(rows)) => {
            let got: Vec<&str> = rows.iter().map(|r| r.id()).collect();
            (got == *keys)
                .then_some(())
                .ok_or(format!("got {got:?}, expected {keys:?}"))
        }
        (Rows(want), QueryResult::Table { rows, .. }) => {
            let got = Value::Array(rows.iter().cloned().map(Value::Object).collect());
            (got == *want)
                .then_some(())
                .ok_or(format!("got {got}, expected {want}"))
        }
        (RowHas(want), QueryResult::Table { rows, .. }) => {
            let [row] = rows.as_slice() else {
                return Err(format!("expected one row, got {}", rows.len()));
            };
            for (k, v) in want.as_object().expect("object") {
                if row.get(k) != Some(v) {
                    return Err(format!("column {k}: got {:?}, expected {v}", row.get(k)));
                }
            }
            Ok(())
        }
        (RowCount(n), QueryResult::Table { rows, .. }) => (rows.len() == *n)
            .then_some(())
            .ok_or(format!("got {} rows, expected {n}", rows.len())),
        (Tree(vs, es), QueryResult::Tree { vertices, edges }) => {
            let gv: Vec<&str> = vertices.iter().map(|v| v.id()).collect();
            let ge: Vec<String> = edges.iter().map(|e| e.id()).collect();
            (gv == *vs && ge == *es).then_some(()).ok_or(format!(
                "got vertices {gv:?} edges {ge:?}, expected {vs:?} {es:?}"
            ))
        }
        (_, other) => Err(format!("wrong result shape: {}", other.to_j1_json())),
    }
}

#[test]
fn conformance_table() {
    let g = fixture();
    let mut failures = Vec::new();
    let cases = cases();
    assert_eq!(
        cases.len(),
        include_str!("conformance.txt").matches("\nquery: ").count(),
        "every record is read"
    );
    for c in cases {
        let q = match parse(&c.query) {
            Ok(q) => q,
            Err(e) => {
                failures.push(format!(
                    "{}\n  [{}]\n{}",
                    c.query,
                    c.rule,
                    e.render(&c.query)
                ));
                continue;
            }
        };
        let opts = options(c.opts);
        for (how, result) in [
            ("planned", q.execute(&g, &opts)),
            ("naive", q.execute_naive(&g, &opts)),
        ] {
            let outcome = result
                .map_err(|e| e.to_string())
                .and_then(|r| check(&r, &c.expect));
            if let Err(msg) = outcome {
                failures.push(format!("{}\n  [{}] ({how}): {msg}", c.query, c.rule));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing rows:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A graph of `n` users with nothing else.
fn users(n: usize) -> Graph {
    let mut b = GraphBuilder::new();
    for i in 0..n {
        b.add_entity(j1ql::Entity {
            key: format!("user-{i:04}"),
            entity_type: "jumpcloud_user".into(),
            classes: vec!["User".into()],
            properties: json!({"i": i}).as_object().cloned().unwrap_or_default(),
            deleted: false,
        });
    }
    b.build()
}

#[test]
fn limit_defaults_to_250_for_interactive_queries() {
    let g = users(300);
    let run = |text: &str, limit: Option<usize>| {
        let q = parse(text).expect("parses");
        let opts = ExecOptions {
            limit,
            include_deleted: false,
            now_ms: NOW,
        };
        q.execute(&g, &opts).expect("runs").total()
    };
    assert_eq!(
        run("FIND jumpcloud_user", None),
        250,
        "§1 without LIMIT at most 250 results"
    );
    assert_eq!(
        run("FIND jumpcloud_user", Some(usize::MAX)),
        300,
        "rules lift the cap"
    );
    assert_eq!(
        run("FIND jumpcloud_user LIMIT 260", None),
        260,
        "a LIMIT of the query wins"
    );
    assert_eq!(run("FIND jumpcloud_user LIMIT 10", Some(usize::MAX)), 10);
    assert_eq!(
        run("FIND jumpcloud_user AS u RETURN u.i", None),
        250,
        "tables too"
    );
    assert_eq!(
        run("FIND jumpcloud_user AS u RETURN count(u) AS n", None),
        1
    );
}

#[test]
fn json_shapes_are_j1s() {
    let g = fixture();
    let run = |text: &str| interactive(&g, text);
    let list = run("FIND jumpcloud_user WITH username = 'bob'").to_j1_json();
    assert_eq!(list["type"], "list");
    let row = &list["data"][0];
    assert_eq!(row["id"], "u-bob");
    assert_eq!(row["entity"]["_key"], "u-bob");
    assert_eq!(row["entity"]["_type"], "jumpcloud_user");
    assert_eq!(row["entity"]["_class"], json!(["User"]));
    assert_eq!(row["entity"]["_createdOn"], json!(NOW - 10 * common::HOUR));
    assert_eq!(row["entity"]["_version"], json!(1));
    assert_eq!(row["entity"]["_deleted"], json!(false));
    assert_eq!(row["entity"]["displayName"], "Bob Baker");
    assert_eq!(row["properties"]["username"], "bob");
    assert_eq!(row["properties"]["userTags"], json!(["eng"]));
    assert!(
        row["properties"].get("_version").is_none(),
        "metadata stays out of properties"
    );

    let table = run("FIND jumpcloud_user WITH username = 'bob' AS u RETURN u.username");
    assert_eq!(
        table.to_j1_json(),
        json!({"type": "table", "data": [{"u.username": "bob"}]})
    );

    let tree =
        run("FIND jumpcloud_user WITH username = 'bob' THAT IS Person RETURN TREE").to_j1_json();
    assert_eq!(tree["type"], "tree");
    assert_eq!(tree["data"]["vertices"][1]["id"], "p-bob");
    let edge = &tree["data"]["edges"][0];
    assert_eq!(edge["id"], "u-bob|is|p-bob");
    assert_eq!(edge["fromVertexId"], "u-bob");
    assert_eq!(edge["toVertexId"], "p-bob");
    assert_eq!(edge["relationship"]["_class"], "IS");
    assert_eq!(edge["relationship"]["_type"], "jumpcloud_user_is_person");
}

#[test]
fn entity_ids_are_the_rows_start_entities() {
    let g = fixture();
    let run = |text: &str| interactive(&g, text);
    assert_eq!(
        run("FIND jumpcloud_group THAT !HAS jumpcloud_user").entity_ids(),
        vec!["g-empty"]
    );
    // A table's identity is the FIND entities of its rows, not its values.
    let r = run(
        "FIND jumpcloud_user AS u THAT HAS << jumpcloud_group AS g WHERE g.name = 'Sales' RETURN g.name",
    );
    assert_eq!(r.entity_ids(), vec!["u-carol", "u-erin"]);
    let r =
        run("FIND jumpcloud_user AS u THAT HAS << jumpcloud_group AS g RETURN g.name, count(u)");
    assert_eq!(
        r.entity_ids(),
        vec!["u-alice", "u-bob", "u-carol", "u-dave", "u-erin", "u-gina"]
    );
}

#[test]
fn text_table_has_headers_in_return_order() {
    let g = fixture();
    let r = parse("FIND jumpcloud_user WITH username = 'alice' AS u RETURN u.username AS login, u.userTags, u.mfaEnabled")
        .expect("parses")
        .execute(&g, &options(Opts::Interactive))
        .expect("runs");
    let (headers, rows) = r.to_text_table();
    assert_eq!(headers, vec!["login", "u.userTags", "u.mfaEnabled"]);
    assert_eq!(rows, vec![vec!["alice", "admin, eng", "true"]]);
    let (headers, rows) = parse("FIND jumpcloud_group WITH name = 'Empty'")
        .expect("parses")
        .execute(&g, &options(Opts::Interactive))
        .expect("runs")
        .to_text_table();
    assert_eq!(headers, vec!["_key", "_type", "_class", "displayName"]);
    assert_eq!(
        rows,
        vec![vec!["g-empty", "jumpcloud_group", "Group", "Empty"]]
    );
}

#[test]
fn touched_types_cover_classes_verbs_and_negations() {
    let g = fixture();
    let t = |text: &str| {
        parse(text)
            .expect("parses")
            .touched_types(&g)
            .into_iter()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        t("FIND User THAT !IS Person"),
        vec!["employee", "jumpcloud_user", "jumpcloud_user_is_person"]
    );
    assert_eq!(
        t("FIND jumpcloud_user THAT HAS << jumpcloud_group"),
        vec![
            "jumpcloud_account_has_application",
            "jumpcloud_account_has_group",
            "jumpcloud_account_has_user",
            "jumpcloud_group",
            "jumpcloud_group_has_user",
            "jumpcloud_user"
        ]
    );
    // A named type counts even when the graph holds none of it (a failed first run).
    assert_eq!(t("FIND okta_user"), vec!["okta_user"]);
}

#[test]
fn the_planner_starts_from_the_selective_side() {
    let g = fixture();
    let q = parse("FIND jumpcloud_user THAT HAS << jumpcloud_group WITH name = 'Sales'")
        .expect("parses");
    assert!(
        q.explain(&g, &options(Opts::Interactive))
            .starts_with("start at node 1"),
        "{}",
        q.explain(&g, &options(Opts::Interactive))
    );
    let q = parse("FIND jumpcloud_user WITH _key = 'u-bob' THAT IS Person").expect("parses");
    assert!(
        q.explain(&g, &options(Opts::Interactive))
            .starts_with("start at node 0"),
        "{}",
        q.explain(&g, &options(Opts::Interactive))
    );
}

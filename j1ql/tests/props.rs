//! Property-based tests: the parser never panics; AND is intersection and OR is union;
//! every negated operator is the complement of its positive form; and the planner
//! returns exactly what the naive left-to-right evaluation returns, on random small
//! graphs and random queries.

mod common;

use j1ql::{Entity, ExecOptions, Graph, GraphBuilder, Relationship, parse};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

const TOKENS: &[&str] = &[
    "FIND",
    "find",
    "UNIQUE",
    "WITH",
    "with",
    "AS",
    "THAT",
    "that",
    "WHERE",
    "RETURN",
    "TREE",
    "ORDER",
    "BY",
    "SKIP",
    "LIMIT",
    "AND",
    "OR",
    "RELATES",
    "TO",
    "ASC",
    "DESC",
    "User",
    "jumpcloud_user",
    "Group",
    "Person",
    "HAS",
    "IS",
    "ASSIGNED",
    "*",
    "u",
    "g",
    "u.name",
    "g.*",
    "count(u)",
    "min(u.n)",
    "(",
    ")",
    "|",
    ",",
    "!",
    ">>",
    "<<",
    "=",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "~=",
    "^=",
    "$=",
    "!~=",
    "!^=",
    "!$=",
    "'a'",
    "\"b\"",
    "1",
    "-2",
    "3.5",
    "true",
    "false",
    "undefined",
    "null",
    "date.now",
    "date.now - 1 day",
    "date.now-12months",
    "date(2024-01-01)",
    "date(",
    "/re/i",
    "/[/",
    "[tag.x-y]",
    "tag.AccountName",
    "/*",
    "*/",
    "/* c */",
    "?",
    "#",
    "${p}",
    "{{q}}",
    "'",
    "\"",
    ".",
    "-",
    "+",
    "\n",
    "é",
    "名前",
    "\u{0}",
];

/// Near-valid token soup: J1QL tokens in random order, with or without spaces.
fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec((select(TOKENS), any::<bool>()), 0..24).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(t, space)| if space { format!("{t} ") } else { t.to_owned() })
            .collect()
    })
}

// ---- random graphs

const TYPES: &[(&str, &str)] = &[
    ("jumpcloud_user", "User"),
    ("jumpcloud_group", "Group"),
    ("employee", "Person"),
    ("jumpcloud_application", "Application"),
];
const WORDS: &[&str] = &["alpha", "beta", "gamma", "alphabet", "Beta"];
const VERBS: &[&str] = &["HAS", "IS", "ASSIGNED"];

#[derive(Debug, Clone)]
struct GenEntity {
    ty: usize,
    name: Option<usize>,
    email: Option<Vec<usize>>,
    active: Option<bool>,
    n: Option<i8>,
    deleted: bool,
}

#[derive(Debug, Clone)]
struct GenRel {
    from: usize,
    to: usize,
    verb: usize,
    weight: Option<i8>,
    deleted: bool,
}

fn gen_entity() -> impl Strategy<Value = GenEntity> {
    (
        0..TYPES.len(),
        prop::option::of(0..WORDS.len()),
        prop::option::of(prop::collection::vec(0..WORDS.len(), 0..3)),
        prop::option::of(any::<bool>()),
        prop::option::of(-3i8..6),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(ty, name, email, active, n, deleted)| GenEntity {
            ty,
            name,
            email,
            active,
            n,
            deleted,
        })
}

fn gen_graph() -> impl Strategy<Value = (Vec<GenEntity>, Vec<GenRel>)> {
    prop::collection::vec(gen_entity(), 1..14).prop_flat_map(|ents| {
        // `to` may point one past the last entity: a dangling relationship.
        let n = ents.len();
        let rel = (
            0..n,
            0..=n,
            0..VERBS.len(),
            prop::option::of(-2i8..3),
            prop::bool::weighted(0.1),
        )
            .prop_map(|(from, to, verb, weight, deleted)| GenRel {
                from,
                to,
                verb,
                weight,
                deleted,
            });
        (Just(ents), prop::collection::vec(rel, 0..30))
    })
}

fn build((ents, rels): &(Vec<GenEntity>, Vec<GenRel>)) -> Graph {
    let mut b = GraphBuilder::new();
    for (i, e) in ents.iter().enumerate() {
        let mut p = Map::new();
        if let Some(w) = e.name {
            p.insert("name".into(), json!(WORDS[w]));
        }
        match e.email.as_deref() {
            // A one-element list is stored as a scalar, so both shapes occur.
            Some([one]) => {
                p.insert("email".into(), json!(WORDS[*one]));
            }
            Some(list) => {
                p.insert(
                    "email".into(),
                    Value::Array(list.iter().map(|&w| json!(WORDS[w])).collect()),
                );
            }
            None => {}
        }
        if let Some(a) = e.active {
            p.insert("active".into(), json!(a));
        }
        if let Some(n) = e.n {
            p.insert("n".into(), json!(n));
        }
        p.insert(
            "_createdOn".into(),
            json!(common::NOW - i as i64 * common::HOUR * 7),
        );
        b.add_entity(Entity {
            key: format!("k{i}"),
            entity_type: TYPES[e.ty].0.into(),
            classes: vec![TYPES[e.ty].1.into()],
            properties: p,
            deleted: e.deleted,
        });
    }
    for (i, r) in rels.iter().enumerate() {
        let mut p = Map::new();
        if let Some(w) = r.weight {
            p.insert("w".into(), json!(w));
        }
        // Half the keys follow J1's `<from>|<verb>|<to>` (and may repeat: the later wins).
        let key = if i % 2 == 0 {
            format!("k{}|{}|k{}", r.from, VERBS[r.verb].to_lowercase(), r.to)
        } else {
            format!("r{i}")
        };
        b.add_relationship(Relationship {
            key,
            relationship_type: format!("t_{}", VERBS[r.verb].to_lowercase()),
            class: VERBS[r.verb].into(),
            from_key: format!("k{}", r.from),
            to_key: format!("k{}", r.to),
            properties: p,
            deleted: r.deleted,
        });
    }
    b.build()
}

// ---- random queries

/// A comparison valid for the static checks, over the random graphs' properties.
fn leaf() -> impl Strategy<Value = String> {
    let word = || select(WORDS).prop_map(|w| format!("'{w}'"));
    let string_prop = select(&["name", "email", "_key", "_type", "_class", "missing"][..]);
    let string_op = select(&["=", "!=", "~=", "!~=", "^=", "!^=", "$=", "!$="][..]);
    prop_oneof![
        (string_prop.clone(), string_op, word()).prop_map(|(p, o, w)| format!("{p} {o} {w}")),
        (
            string_prop.clone(),
            select(&["=", "!="][..]),
            word(),
            word(),
            any::<bool>()
        )
            .prop_map(|(p, o, a, b, all)| format!(
                "{p} {o} ({a} {} {b})",
                if all { "AND" } else { "OR" }
            )),
        (
            string_prop.clone(),
            select(&["= /^a/", "!= /A/i", "= undefined", "!= undefined"][..])
        )
            .prop_map(|(p, r)| format!("{p} {r}")),
        (select(
            &[
                "_key = 'k1'",
                "_key = 'k3'",
                "email = 'alpha'",
                "name = 'beta'",
                "_type = 'employee'",
                "_class = 'User'"
            ][..]
        ))
        .prop_map(String::from),
        (
            select(&["=", "!="][..]),
            select(&["true", "false", "undefined"][..])
        )
            .prop_map(|(o, v)| format!("active {o} {v}")),
        (select(&["=", "!=", "<", ">", "<=", ">="][..]), -3i8..6)
            .prop_map(|(o, v)| format!("n {o} {v}")),
        select(
            &[
                "_createdOn > date.now - 1 day",
                "_createdOn <= date.now - 2 days",
                "_createdOn < date(2024-06-14)"
            ][..]
        )
        .prop_map(String::from),
    ]
}

fn filter() -> impl Strategy<Value = String> {
    leaf().prop_recursive(2, 6, 2, |inner| {
        (inner.clone(), select(&["AND", "OR"][..]), inner)
            .prop_map(|(a, op, b)| format!("({a}) {op} ({b})"))
    })
}

fn selector() -> impl Strategy<Value = String> {
    select(
        &[
            "*",
            "User",
            "jumpcloud_group",
            "employee",
            "(User|jumpcloud_application)",
            "Person",
            "(Group|Person)",
        ][..],
    )
    .prop_map(String::from)
}

fn verbs() -> impl Strategy<Value = String> {
    (
        any::<bool>().prop_map(|neg| if neg { "!" } else { "" }),
        select(&["HAS", "is", "ASSIGNED", "(HAS|IS)", "RELATES TO"][..]),
        select(&["", " >>", " <<"][..]),
    )
        .prop_map(|(n, v, d)| format!("{n}{v}{d}"))
}

fn node(alias: &'static str) -> impl Strategy<Value = String> {
    (selector(), prop::option::of(filter())).prop_map(move |(s, f)| match f {
        Some(f) => format!("{s} WITH {f} AS {alias}"),
        None => format!("{s} AS {alias}"),
    })
}

/// A chain of up to three hops, each maybe negated, and one of the RETURN forms.
fn query() -> impl Strategy<Value = String> {
    let hops = (
        prop::collection::vec(verbs(), 0..3),
        node("a"),
        node("b"),
        node("c"),
        node("d"),
    );
    (hops, 0usize..8, any::<bool>()).prop_map(|((vs, a, b, c, d), ret, with_where)| {
        let mut q = format!("FIND {a}");
        let targets = [b, c, d];
        // Aliases a query can read: those of the FIND node and of positive hops.
        let mut bound = vec!["a"];
        for (i, v) in vs.iter().enumerate() {
            q.push_str(&format!(" THAT {v} {}", targets[i]));
            if !v.starts_with('!') {
                bound.push(["b", "c", "d"][i]);
            }
        }
        let last = bound[bound.len() - 1];
        if with_where && bound.len() > 1 {
            q.push_str(&format!(" WHERE a.name = {last}.name OR {last}.n > 1"));
        }
        let r = match ret {
            0 => String::new(),
            1 => format!(" RETURN {last}"),
            2 => format!(" RETURN a.name, {last}.email AS e ORDER BY e DESC"),
            3 => format!(" RETURN a.name AS k, count({last}) AS c, sum({last}.n) AS s ORDER BY c"),
            4 => {
                format!(" RETURN count(a), count({last}.email), min({last}.n), max(a.n), avg(a.n)")
            }
            5 => " RETURN TREE".into(),
            6 => " ORDER BY a.n DESC SKIP 1 LIMIT 3".into(),
            _ => format!(" RETURN a.*, {last}.n"),
        };
        q + &r
    })
}

fn unlimited() -> ExecOptions {
    ExecOptions::unlimited(common::NOW)
}

fn keys(g: &Graph, q: &str, include_deleted: bool) -> BTreeSet<String> {
    let q = parse(q).unwrap_or_else(|e| panic!("{q}: {}", e.render(q)));
    let opts = ExecOptions {
        include_deleted,
        ..unlimited()
    };
    q.execute(g, &opts)
        .expect("runs")
        .entity_ids()
        .into_iter()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = parse(&text);
    }

    #[test]
    fn the_parser_never_panics_on_token_soup(text in soup()) {
        // Whatever parses also runs, and a rendered error never panics either.
        match parse(&text) {
            Ok(q) => {
                let g = common::fixture();
                let _ = q.execute(&g, &ExecOptions::interactive(common::NOW));
            }
            Err(e) => {
                let _ = e.render(&text);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn and_is_intersection_and_or_is_union(g in gen_graph(), a in filter(), b in filter(), del in any::<bool>()) {
        let g = build(&g);
        let ka = keys(&g, &format!("FIND * WITH {a}"), del);
        let kb = keys(&g, &format!("FIND * WITH {b}"), del);
        let and = keys(&g, &format!("FIND * WITH ({a}) AND ({b})"), del);
        let or = keys(&g, &format!("FIND * WITH ({a}) OR ({b})"), del);
        prop_assert_eq!(and, ka.intersection(&kb).cloned().collect::<BTreeSet<_>>());
        prop_assert_eq!(or, ka.union(&kb).cloned().collect::<BTreeSet<_>>());
    }

    #[test]
    fn negated_operators_are_complements(g in gen_graph(), a in leaf()) {
        // Every negated form is true exactly where the positive one is false (J1's
        // truth tables: `!=` is true on undefined), for scalars, arrays and missing.
        let Some(neg) = ["!=", "!~=", "!^=", "!$="].iter().zip(["=", "~=", "^=", "$="]).find_map(|(n, p)| {
            a.contains(&format!(" {p} ")).then(|| a.replacen(&format!(" {p} "), &format!(" {n} "), 1))
        }) else { return Ok(()) };
        if a.contains('(') || a.contains('<') || a.contains('>') { return Ok(()) }
        let g = build(&g);
        let all = keys(&g, "FIND *", false);
        let pos = keys(&g, &format!("FIND * WITH {a}"), false);
        let negs = keys(&g, &format!("FIND * WITH {neg}"), false);
        prop_assert_eq!(negs, all.difference(&pos).cloned().collect::<BTreeSet<_>>());
    }

    #[test]
    fn planned_and_naive_evaluation_agree(g in gen_graph(), q in query(), del in any::<bool>(), cap in prop::option::of(0usize..5)) {
        let g = build(&g);
        let query = parse(&q).unwrap_or_else(|e| panic!("{q}: {}", e.render(&q)));
        let opts = ExecOptions { limit: cap, include_deleted: del, now_ms: common::NOW };
        let planned = query.execute(&g, &opts).map(|r| r.to_j1_json());
        let naive = query.execute_naive(&g, &opts).map(|r| r.to_j1_json());
        prop_assert_eq!(planned, naive, "{} (plan: {})", q, query.explain(&g, &opts));
    }
}

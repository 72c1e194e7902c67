//! A J1QL engine: the JupiterOne query language subset our monitoring needs, over a
//! tenant's graph held in memory. Plain Rust: no wasmtime, no host, no I/O.
//!
//! # Use
//! ```
//! use j1ql::{Entity, ExecOptions, GraphBuilder, QueryResult, Relationship};
//!
//! let mut b = GraphBuilder::new();
//! let user = |key: &str, mfa: bool| Entity {
//!     key: key.into(),
//!     entity_type: "jumpcloud_user".into(),
//!     classes: vec!["User".into()],
//!     properties: serde_json::json!({"username": key, "mfaEnabled": mfa}).as_object().unwrap().clone(),
//!     deleted: false,
//! };
//! b.add_entity(user("alice", true));
//! b.add_entity(user("bob", false));
//! let graph = b.build();
//!
//! let query = j1ql::parse("FIND jumpcloud_user WITH mfaEnabled != true")?;
//! let result = query.execute(&graph, &ExecOptions::interactive(0))?;
//! assert_eq!(result.entity_ids(), vec!["bob"]);
//! # Ok::<(), j1ql::QueryError>(())
//! ```
//!
//! # Public API
//! - [`GraphBuilder`] takes [`Entity`] and [`Relationship`] values (endpoints by `_key`;
//!   dangling relationships are dropped at [`GraphBuilder::build`]) and builds a
//!   [`Graph`]: immutable, compact (interned strings, 8-byte values, shared property
//!   shapes) and indexed (by `_type`, `_class`, `_key`, [`INDEXED_PROPERTIES`], and
//!   adjacency per entity sorted by verb). Share it between threads freely.
//! - [`parse`] checks a query: syntax, aliases, comparison types where known, and the
//!   subset (unsupported features are refused by name). Errors are [`QueryError`]s with
//!   line, column, span and what was expected; [`QueryError::render`] prints them like
//!   rustc. A [`Query`] is `Send + Sync` and can be run many times.
//! - [`Query::execute`] runs it with [`ExecOptions`] (result cap, tombstones, the clock
//!   for `date.now`) and returns a [`QueryResult`]: J1's entity list, table or tree, with
//!   [`QueryResult::to_j1_json`], [`QueryResult::entity_ids`] (alert identity),
//!   [`QueryResult::total`] and [`QueryResult::to_text_table`]. A table carries its
//!   column names in RETURN order and, per row, the FIND-node entities it came from.
//! - [`Query::explain`] shows the plan: per traversal node the estimated matches (from
//!   its index or a sample) and the work of starting there.
//! - [`Query::touched_types`] lists the entity and relationship `_type`s a query reads,
//!   so an alert evaluation can be marked partial when one of them was partial in a run.
//!
//! # The J1QL subset
//! The grammar is in [`ast`]. Semantics follow J1's documentation:
//! - `FIND` a class (TitleCase word), a type (snake_case) or `*`, alternation
//!   `(User|jumpcloud_group)`, `UNIQUE` (dedupes RETURN rows; needs RETURN).
//! - `WITH`: `= != < > <= >=`, `~= ^= $=` and `!~= !^= !$=` (case-sensitive), regex
//!   `/re/i`, `undefined`, `AND`/`OR`/parentheses (AND binds tighter), value lists
//!   `= ('a' OR 'b')`, `= ('a' AND 'b')`, De Morgan for negated lists
//!   (`!= ('a' OR 'b')` is `!= 'a' AND != 'b'`), `date.now`, `date.now - N unit`
//!   (hour/hr/hours/hrs, day/days, month/mo/months/mos, year/yr/years/yrs; calendar
//!   months), `date(ISO-8601)`, `[tag.special-name]`, dotted names as one property.
//! - Truth tables: on arrays `=` and the string operators are true when *any* element
//!   matches; every negated operator is the exact negation, so `!=` is true when no
//!   element matches *and when the property is undefined*. A `null` value counts as
//!   undefined. Comparing different types is false (`'1'` is not `1`).
//! - `THAT` verbs (case-insensitive), `(HAS|ASSIGNED)`, `RELATES TO`, `>>`/`<<`
//!   (bidirectional by default), `TO` filler, many hops each with WITH; `THAT !VERB`
//!   keeps the previous node when it has no such neighbour in either direction (a
//!   negated hop binds nothing; the next hop continues from the previous node).
//! - `AS` aliases for entities and relationships, and J1's implicit aliases (class,
//!   type and verb names: `RETURN COUNT(User)`, `WHERE ASSIGNED.direct = true`).
//! - `WHERE` over aliases, incl. alias against alias and relationship properties.
//! - `RETURN` entities (`u`, `u, g`: distinct entities), properties with labels
//!   (`u.email AS "Email"`), `u.*`, `count/min/max/avg/sum` (count of distinct values;
//!   non-aggregate items are grouping keys; an all-aggregate RETURN is one row over the
//!   whole traversal), `TREE`. `ORDER BY` several keys `ASC`/`DESC` (missing values
//!   last), `SKIP`, `LIMIT` (default 250, see [`ExecOptions::limit`]).
//! - Metadata is queryable: `_createdOn`, `_beginOn`, `_endOn`, `_version`, `_deleted`,
//!   `_key`, `_type`, `_class`. Tombstones are invisible unless
//!   [`ExecOptions::include_deleted`].
//!
//! Refused by name: full-text search, optional traversals `(...)?`, `count(*)`, smart
//! classes `#X`, parameters `${...}`, placeholders `{{...}}`, other functions, math in
//! RETURN, aggregates in WHERE, `null` (use `undefined`), regex flags other than `i`.

pub mod ast;
mod date;
mod error;
mod exec;
mod graph;
mod lexer;
mod parser;
mod plan;
mod query;
mod result;

pub use error::{ErrorKind, QueryError};
pub use graph::{Entity, Graph, GraphBuilder, INDEXED_PROPERTIES, Relationship};
pub use query::{Query, parse};
pub use result::{EdgeRow, EntityRow, QueryResult};

use std::collections::BTreeSet;

/// J1's cap on results when a query has no LIMIT.
pub const DEFAULT_LIMIT: usize = 250;

/// How a query runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOptions {
    /// The cap when the query has no `LIMIT` of its own: `None` is J1's 250 for
    /// interactive queries; alert rules pass `Some(usize::MAX)`. A query's `LIMIT` wins.
    pub limit: Option<usize>,
    /// Tombstones (`deleted` entities and relationships) are visible only with this.
    pub include_deleted: bool,
    /// "Now" for `date.now`, in epoch milliseconds.
    pub now_ms: i64,
}

impl ExecOptions {
    /// An interactive query at `now_ms`: at most 250 results unless the query says.
    pub fn interactive(now_ms: i64) -> Self {
        ExecOptions {
            limit: None,
            include_deleted: false,
            now_ms,
        }
    }

    /// An alert-rule evaluation at `now_ms`: no cap.
    pub fn unlimited(now_ms: i64) -> Self {
        ExecOptions {
            limit: Some(usize::MAX),
            include_deleted: false,
            now_ms,
        }
    }
}

impl Query {
    fn effective_limit(&self, opts: &ExecOptions) -> usize {
        self.limit.or(opts.limit).unwrap_or(DEFAULT_LIMIT)
    }

    /// Runs the query over `graph`, with the planner (see [`Query::explain`]).
    pub fn execute<'g>(
        &self,
        graph: &'g Graph,
        opts: &ExecOptions,
    ) -> Result<QueryResult<'g>, QueryError> {
        self.run(graph, opts, false)
    }

    /// Runs the query by the naive reference strategy (every entity tested for the FIND
    /// node, paths extended left to right, no index). For tests and benchmarks: results
    /// are identical to [`Query::execute`]'s.
    #[doc(hidden)]
    pub fn execute_naive<'g>(
        &self,
        graph: &'g Graph,
        opts: &ExecOptions,
    ) -> Result<QueryResult<'g>, QueryError> {
        self.run(graph, opts, true)
    }

    fn run<'g>(
        &self,
        graph: &'g Graph,
        opts: &ExecOptions,
        naive: bool,
    ) -> Result<QueryResult<'g>, QueryError> {
        let mut ctx = exec::Ctx::new(graph, self, opts.now_ms, opts.include_deleted);
        let mut paths: Box<dyn exec::Paths> = if naive {
            Box::new(exec::Naive::new())
        } else {
            Box::new(exec::Planned::new(&mut ctx))
        };
        result::shape(self, &mut ctx, paths.as_mut(), self.effective_limit(opts))
    }

    /// The plan [`Query::execute`] would follow: for each traversal node, its estimated
    /// matches and the estimated work of starting there; evaluation starts at the cheapest.
    pub fn explain(&self, graph: &Graph, opts: &ExecOptions) -> String {
        let mut ctx = exec::Ctx::new(graph, self, opts.now_ms, opts.include_deleted);
        let p = exec::Planned::new(&mut ctx);
        let nodes: Vec<String> = p
            .estimates
            .iter()
            .enumerate()
            .map(|(i, (est, cost))| format!("node {i}: ~{est:.0} matches, cost ~{cost:.0}"))
            .collect();
        format!("start at node {} ({})", p.anchor, nodes.join("; "))
    }

    /// Entity and relationship `_type`s this query can read on `graph`: the types it
    /// names, the types of the classes it names (as found in the graph), every entity
    /// type for `*`, and the relationship types of its verbs (all for `RELATES TO`),
    /// negated hops included.
    pub fn touched_types(&self, graph: &Graph) -> BTreeSet<String> {
        use ast::{Selector, TermKind, Verbs};
        let mut out = BTreeSet::new();
        let selector = |s: &Selector, out: &mut BTreeSet<String>| match s {
            Selector::Any(_) => out.extend(graph.entity_types().map(|t| graph.str(t).to_owned())),
            Selector::Terms(terms) => {
                for t in terms {
                    match t.kind {
                        TermKind::Type => {
                            out.insert(t.name.text.clone());
                        }
                        TermKind::Class => {
                            if let Some(c) = graph.sym(&t.name.text) {
                                out.extend(graph.class_types(c).map(|t| graph.str(t).to_owned()));
                            }
                        }
                    }
                }
            }
        };
        let verbs = |v: &Verbs, out: &mut BTreeSet<String>| {
            for verb in graph.verbs() {
                let hit = match v {
                    Verbs::Any(_) => true,
                    Verbs::Some(names) => names
                        .iter()
                        .any(|n| n.text.eq_ignore_ascii_case(graph.str(verb))),
                };
                if hit {
                    out.extend(
                        graph
                            .verb_types(verb)
                            .iter()
                            .map(|&t| graph.str(t).to_owned()),
                    );
                }
            }
        };
        for node in &self.nodes {
            selector(&node.selector, &mut out);
            for neg in &node.negations {
                selector(&neg.selector, &mut out);
                verbs(&neg.verbs, &mut out);
            }
        }
        for hop in &self.hops {
            verbs(&hop.verbs, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn graphs_queries_and_results_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::Graph>();
        send_sync::<crate::Query>();
        send_sync::<crate::QueryResult<'static>>();
        send_sync::<crate::QueryError>();
    }
}

//! The J1QL engine (crate `j1ql`) as the rules' query checker and runner.

use std::cell::OnceCell;
use std::collections::BTreeSet;

use crate::query::{QueryCheckError, QueryChecker, QueryOutput, QueryRunner};

/// Checks rule queries with the J1QL parser (no graph needed: used when a rules file loads).
#[derive(Debug, Clone, Copy, Default)]
pub struct J1qlChecker;

impl QueryChecker for J1qlChecker {
    fn check(&self, query: &str) -> Result<(), QueryCheckError> {
        j1ql::parse(query)
            .map(|_| ())
            .map_err(|error| QueryCheckError {
                message: error.message,
                line: error.line,
                column: error.column,
            })
    }
}

/// Runs rule queries over one tenant's graph, with no result cap.
pub struct J1qlRunner<'g> {
    pub graph: &'g j1ql::Graph,
    /// "Now" for `date.now`, epoch milliseconds: the evaluation time.
    pub now_ms: i64,
    /// Every entity and relationship type of the graph, found on first use.
    types: OnceCell<BTreeSet<String>>,
}

impl<'g> J1qlRunner<'g> {
    pub fn new(graph: &'g j1ql::Graph, now_ms: i64) -> Self {
        J1qlRunner {
            graph,
            now_ms,
            types: OnceCell::new(),
        }
    }
}

impl J1qlRunner<'_> {
    fn execute(
        &self,
        query: &str,
        include_deleted: bool,
        with_data: bool,
    ) -> Result<QueryOutput, String> {
        let parsed = j1ql::parse(query).map_err(|e| e.to_string())?;
        let options = j1ql::ExecOptions {
            include_deleted,
            ..j1ql::ExecOptions::unlimited(self.now_ms)
        };
        let result = parsed
            .execute(self.graph, &options)
            .map_err(|e| e.to_string())?;
        // Rules see J1's `data`: the rows of a list or table, the vertices and edges of a tree.
        let data = match with_data.then(|| result.to_j1_json()) {
            Some(serde_json::Value::Object(mut shaped)) => shaped
                .remove("data")
                .unwrap_or(serde_json::Value::Array(Vec::new())),
            Some(other) => other,
            None => serde_json::Value::Null,
        };
        Ok(QueryOutput {
            total: result.total(),
            data,
            ids: result.entity_ids(),
            touched_types: parsed.touched_types(self.graph),
        })
    }
}

impl QueryChecker for J1qlRunner<'_> {
    fn check(&self, query: &str) -> Result<(), QueryCheckError> {
        J1qlChecker.check(query)
    }
}

impl QueryRunner for J1qlRunner<'_> {
    fn run(&self, query: &str, include_deleted: bool) -> Result<QueryOutput, String> {
        self.execute(query, include_deleted, true)
    }

    fn run_without_data(&self, query: &str, include_deleted: bool) -> Result<QueryOutput, String> {
        self.execute(query, include_deleted, false)
    }

    fn holds_type(&self, type_name: &str) -> bool {
        self.types
            .get_or_init(|| {
                // `*` touches every entity type and `RELATES TO` every relationship type.
                j1ql::parse("FIND * THAT RELATES TO *")
                    .map(|all| all.touched_types(self.graph))
                    .unwrap_or_default()
            })
            .contains(type_name)
    }
}

//! The query engine as rules see it: a checker used when a rules file loads, and a runner used
//! when rules are evaluated. The J1QL engine implements both (see `J1qlRunner`); tests may
//! script them.

use std::collections::BTreeSet;

/// A query the engine refuses (syntax, unknown alias, type mismatch).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct QueryCheckError {
    pub message: String,
    /// 1-based, within the query text.
    pub line: usize,
    /// 1-based, within the query text.
    pub column: usize,
}

/// Checks a query without running it (at load time, before any graph is at hand).
pub trait QueryChecker {
    fn check(&self, query: &str) -> Result<(), QueryCheckError>;
}

/// Runs queries over one tenant's graph.
pub trait QueryRunner: QueryChecker {
    /// Runs a query with no result limit (rules see every result, unlike interactive queries).
    fn run(&self, query: &str, include_deleted: bool) -> Result<QueryOutput, String>;

    /// Runs a query whose rows no template reads: `data` may be left `Null`, which saves
    /// most of the cost of a large result. The default runs it whole.
    fn run_without_data(&self, query: &str, include_deleted: bool) -> Result<QueryOutput, String> {
        self.run(query, include_deleted)
    }

    /// Whether the graph holds any entity or relationship of this `_type`. A query's touched
    /// types come from what the graph holds (a verb's relationship types, a class's entity
    /// types), so a partial type the graph does not hold at all cannot be traced to the
    /// queries that would read it; evaluations then count as partial. The default says
    /// every type is held.
    fn holds_type(&self, _type_name: &str) -> bool {
        true
    }
}

/// One query's result, as a rule needs it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryOutput {
    /// `queries.<name>.total`.
    pub total: usize,
    /// `queries.<name>.data`: J1's JSON of the result rows (an array); `Null` from
    /// [`QueryRunner::run_without_data`].
    pub data: serde_json::Value,
    /// Result identity: the `_key`s of the result entities, for added/removed and
    /// `triggerActionsOnNewEntitiesOnly`.
    pub ids: Vec<String>,
    /// Every entity and relationship `_type` the query read; an evaluation is partial when
    /// one of them was partial in the run.
    pub touched_types: BTreeSet<String>,
}

//! What the plugin asks of the host while a step runs, as plain Rust: the graph and
//! progress. The component implements it over the WIT imports (`component.rs`).

use crate::error::GraphError;
use crate::model::{Entity, MappedRelationship, Relationship};

/// What the host did with a batch (WIT `graph.batch-outcome`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub accepted: u32,
    /// Relationships dropped because an endpoint is not in the graph.
    pub dropped: u32,
}

/// The job's graph and progress reporting.
pub trait Host {
    fn add_entities(&mut self, entities: Vec<Entity>) -> Result<BatchOutcome, GraphError>;
    fn add_relationships(
        &mut self,
        relationships: Vec<Relationship>,
    ) -> Result<BatchOutcome, GraphError>;
    fn add_mapped_relationships(
        &mut self,
        relationships: Vec<MappedRelationship>,
    ) -> Result<BatchOutcome, GraphError>;
    fn has_key(&self, key: &str) -> bool;
    fn set_data(&mut self, key: &str, value: &str);
    fn get_data(&self, key: &str) -> Option<String>;
    fn progress(&self, step_id: &str, done: u64, total: Option<u64>);
}

//! The fleet: `serve --queue` schedules, `worker` runs, on an existing distributed
//! engine (NATS JetStream, see [`queue`]) and a shared store (PostgreSQL).
//!
//! The scheduler publishes one job per due tenant; any number of workers take them,
//! run the tenant in the sandbox, persist the run under the tenant's lease number
//! (the fence), evaluate its rules and ack only then. A worker that dies leaves its
//! job unacked: it comes back after the lease time and another worker runs it. A
//! worker that stalls past its lease and wakes up finds its persist refused.
//! Tenants live in the store ([`tenants`]): imported once, read by every worker.

pub mod queue;
pub mod scheduler;
pub mod tenants;
pub mod worker;

use crate::run_all::RunAllError;

/// Why a fleet role did not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The default component does not load.
    #[error(transparent)]
    Prepare(#[from] RunAllError),
    #[error(transparent)]
    Queue(#[from] queue::QueueError),
    #[error(transparent)]
    Store(#[from] graph_store::StoreError),
}

impl FleetError {
    /// 2 for bad input, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            FleetError::Prepare(_) => 2,
            FleetError::Queue(queue::QueueError::Namespace(_)) => 2,
            _ => 1,
        }
    }
}

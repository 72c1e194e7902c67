//! What the HTTP handlers share: the store, the scheduler, live progress, and the
//! J1QL graphs of tenants, loaded once per persisted run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use graph_store::{Store, StoreError};

use crate::monitor::graphs::GraphCache;
use crate::monitor::scheduler::SchedulerHandle;
use crate::services::ProgressSink;

/// Done and total (when known) of one step.
type StepProgress = (u64, Option<u64>);

/// Progress of the runs in flight, by tenant and step, for the console.
#[derive(Default)]
pub struct LiveProgress {
    runs: Mutex<HashMap<String, BTreeMap<String, StepProgress>>>,
}

impl LiveProgress {
    /// Forgets the tenant's previous run.
    pub fn begin(&self, tenant: &str) {
        if let Ok(mut runs) = self.runs.lock() {
            runs.insert(tenant.to_owned(), BTreeMap::new());
        }
    }

    pub fn end(&self, tenant: &str) {
        if let Ok(mut runs) = self.runs.lock() {
            runs.remove(tenant);
        }
    }

    /// Replaces the tenant's steps with what a fleet worker reported.
    pub fn replace(&self, tenant: &str, steps: Vec<(String, u64, Option<u64>)>) {
        if let Ok(mut runs) = self.runs.lock() {
            let steps = steps
                .into_iter()
                .map(|(step, done, total)| (step, (done, total)))
                .collect();
            runs.insert(tenant.to_owned(), steps);
        }
    }

    /// The tenants with a run in flight.
    pub fn in_flight(&self) -> Vec<String> {
        self.runs
            .lock()
            .map(|runs| runs.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Steps of the tenant's run in flight: `(step, done, total)`.
    pub fn snapshot(&self, tenant: &str) -> Option<Vec<(String, u64, Option<u64>)>> {
        let runs = self.runs.lock().ok()?;
        runs.get(tenant).map(|steps| {
            steps
                .iter()
                .map(|(step, (done, total))| (step.clone(), *done, *total))
                .collect()
        })
    }
}

impl ProgressSink for LiveProgress {
    fn report(&self, tenant: &str, step: &str, done: u64, total: Option<u64>) {
        if let Ok(mut runs) = self.runs.lock()
            && let Some(steps) = runs.get_mut(tenant)
        {
            steps.insert(step.to_owned(), (done, total));
        }
    }
}

/// Shared by every handler.
/// Which tenants a `serve` schedules.
pub enum ServedTenants {
    /// The tenants of its tenants file.
    Listed(BTreeSet<String>),
    /// Every tenant in the store (`serve --queue`: tenants are imported into the
    /// shared store, also while it runs).
    Store,
}

impl ServedTenants {
    pub fn contains(&self, tenant: &str) -> bool {
        match self {
            ServedTenants::Listed(names) => names.contains(tenant),
            ServedTenants::Store => true,
        }
    }
}

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub scheduler: SchedulerHandle,
    /// The tenants this `serve` runs (triggers for others are refused).
    pub tenants: ServedTenants,
    pub progress: Arc<LiveProgress>,
    /// The tenants' query graphs, shared with the runs' rules evaluation.
    pub graphs: Arc<GraphCache>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        scheduler: SchedulerHandle,
        tenants: ServedTenants,
        progress: Arc<LiveProgress>,
        graphs: Arc<GraphCache>,
    ) -> AppState {
        AppState {
            store,
            scheduler,
            tenants,
            progress,
            graphs,
        }
    }

    /// The tenant's graph as of its newest persisted run: from the cache when that run
    /// is the one cached, else loaded from the store.
    pub async fn graph(&self, tenant: &str) -> Result<Arc<j1ql::Graph>, StoreError> {
        let state = self.store.tenant(tenant).await?;
        let newest = state
            .last_run
            .as_ref()
            .filter(|run| run.persisted)
            .map(|run| run.id);
        // The last run may be in flight or failed: the newest persisted one counts.
        let newest = match newest {
            Some(run) => Some(run),
            None => self
                .store
                .runs(tenant, 20)
                .await?
                .into_iter()
                .find(|run| run.persisted)
                .map(|run| run.id),
        };
        self.graphs.get_or_build(&*self.store, tenant, newest).await
    }
}

//! The loop around a run: its graph persisted in the tenant's store as a change set,
//! the tenant's alert rules evaluated on the result, and the schedule that starts the
//! next run (`serve`).
//!
//! The change semantics themselves (what counts as created, updated, deleted) live in
//! the `graph-store` crate, which knows nothing of wasmtime.

pub mod graphs;
pub mod rules;
pub mod scheduler;
pub mod webhook;

use graph_store::{
    ChangeCounts, PersistReport, RunOutcome, RunRecord, RunStatus, Store, StoreError, Trigger,
    now_ms, sdk::OutputReader,
};

use crate::bindings::PluginInfo;
use crate::runtime::Plugin;
use crate::steps::{self, JobError, JobSpec, JobStatus, Summary};

/// A run that went through the store.
#[derive(Debug)]
pub struct MonitoredRun {
    pub summary: Summary,
    /// The run as stored, persisted.
    pub run: RunRecord,
    pub changes: ChangeCounts,
}

/// Why a monitored run produced no persisted graph.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The run itself failed before its summary (bad configuration, output unwritable);
    /// the store records the run as failed.
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs the tenant's job, then persists the graph it wrote in one transaction: the
/// phases of [`steps::TenantRun`], then the store. The run is recorded in the store
/// from its start, so a crash leaves a `running` run that the next `serve` marks
/// abandoned, and the previous graph whole.
pub async fn run_and_persist(
    plugin: &Plugin,
    info: &PluginInfo,
    spec: JobSpec,
    store: &dyn Store,
    trigger: Trigger,
) -> Result<MonitoredRun, MonitorError> {
    run_and_persist_fenced(plugin, info, spec, store, trigger, None).await
}

/// [`run_and_persist`] under a fleet lease: the persist carries the lease's fencing
/// token, and the store refuses it when a newer lease of the tenant persisted first.
pub async fn run_and_persist_fenced(
    plugin: &Plugin,
    info: &PluginInfo,
    spec: JobSpec,
    store: &dyn Store,
    trigger: Trigger,
    fence: Option<i64>,
) -> Result<MonitoredRun, MonitorError> {
    let tenant = spec.tenant.to_string();
    let output_dir = spec.output_dir.clone();
    let run = store.begin_run(&tenant, trigger, now_ms()).await?;
    let summary = match steps::run_job(plugin, info, spec).await {
        Ok(summary) => summary,
        Err(error) => {
            store
                .end_run(
                    run,
                    RunOutcome {
                        status: RunStatus::Failure,
                        finished_at_ms: now_ms(),
                        partial_types: Default::default(),
                        failed_whole: true,
                        error: Some(error.to_string()),
                        summary: None,
                        fence: None,
                    },
                )
                .await?;
            return Err(error.into());
        }
    };
    let outcome = outcome_of(&summary, fence);
    let objects = OutputReader::open(&output_dir).map_err(StoreError::from)?;
    let PersistReport { run, changes } = store.persist_run(run, outcome, Box::new(objects)).await?;
    tracing::info!(
        tenant = %tenant,
        run = run.id,
        status = %run.status,
        baseline = run.baseline,
        "persisted: {changes}"
    );
    Ok(MonitoredRun {
        summary,
        run,
        changes,
    })
}

/// How the store records a run that produced `summary`. A run that failed as a whole
/// (no step succeeded, or the run stopped: a rejected key, a denied request, a limit)
/// deletes nothing; otherwise the partial types of the summary are spared.
pub fn outcome_of(summary: &Summary, fence: Option<i64>) -> RunOutcome {
    let status = match summary.run.status {
        JobStatus::Success => RunStatus::Success,
        JobStatus::Partial => RunStatus::Partial,
        JobStatus::Failure => RunStatus::Failure,
    };
    RunOutcome {
        status,
        finished_at_ms: now_ms(),
        partial_types: summary
            .metadata
            .partial_datasets
            .types
            .iter()
            .cloned()
            .collect(),
        failed_whole: status == RunStatus::Failure || summary.run.error.is_some(),
        error: summary
            .run
            .error
            .as_ref()
            .map(|e| format!("{}: {}", e.kind, e.message)),
        summary: serde_json::to_value(summary).ok(),
        fence,
    }
}

//! The fleet's scheduler: publishes a job for every due or triggered tenant. It runs
//! nothing itself, keeps no state of its own (the schedule is in the store), and any
//! number of them may run at once: a slot's message id makes their publishes one job,
//! and the stream holds at most one job per tenant.

use std::sync::Arc;
use std::time::Duration;

use graph_store::{RunRecord, RunStatus, Store, StoreError};
use tokio::sync::watch;

use super::queue::{Job, MAX_PROGRESS_NOTE_BYTES, ProgressNote, Published, Queue, QueueError};
use crate::config::check_tenant_id;
use crate::monitor::scheduler::next_due;
use crate::serve::state::LiveProgress;

/// Why a pass of the scheduler failed (it goes on with the next pass).
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// The start of the newest run that counts for the schedule (abandoned runs do not).
fn last_counted_start(last_run: Option<&RunRecord>) -> Option<i64> {
    last_run
        .filter(|run| run.status != RunStatus::Abandoned)
        .map(|run| run.started_at_ms)
}

/// What one pass published.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub published: usize,
    pub duplicates: usize,
    pub pending: usize,
}

/// One pass over every tenant in the store: a triggered one is published at once,
/// any other when it is due.
pub async fn pass(store: &dyn Store, queue: &Queue, now_ms: i64) -> Result<PassReport, PassError> {
    let mut report = PassReport::default();
    for state in store.tenants().await? {
        let settings = &state.settings;
        let running = state
            .last_run
            .as_ref()
            .is_some_and(|run| run.status == RunStatus::Running);
        let job = if let Some(requested) = state.trigger_requested_ms {
            Job {
                tenant: settings.tenant.clone(),
                trigger: "manual".into(),
                due_ms: requested,
            }
        } else {
            let due = next_due(
                &settings.tenant,
                settings.polling_interval,
                last_counted_start(state.last_run.as_ref()),
                now_ms,
            );
            if due != state.next_due_ms {
                store.set_next_due(&settings.tenant, due).await?;
            }
            match due {
                Some(due) if due <= now_ms && !running => Job {
                    tenant: settings.tenant.clone(),
                    trigger: "schedule".into(),
                    due_ms: due,
                },
                _ => continue,
            }
        };
        match queue.publish(&job).await? {
            Published::New => {
                tracing::info!(tenant = %job.tenant, trigger = %job.trigger, "job published");
                report.published += 1;
            }
            Published::Duplicate => report.duplicates += 1,
            Published::AlreadyPending => {
                report.pending += 1;
                continue; // a manual trigger waits until the tenant's job is done
            }
        }
        if job.trigger == "manual" {
            store.take_trigger(&job.tenant).await?;
        }
    }
    Ok(report)
}

/// Passes every `poll` until `shutdown`; tenants imported meanwhile are scheduled from
/// the next pass. A pass that fails (store or queue away) is logged and retried.
pub async fn run(
    store: Arc<dyn Store>,
    queue: Queue,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), StoreError> {
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        if let Err(error) = pass(&*store, &queue, graph_store::now_ms()).await {
            tracing::error!("scheduler pass failed (retrying): {error}");
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Steps a progress note may list, and the length of a step id in one.
const MAX_NOTE_STEPS: usize = 256;
const MAX_NOTE_STEP_ID: usize = 128;

/// Feeds the workers' progress notes into the console's `progress` until the
/// subscription ends. Notes are checked as anything read off the network: too large,
/// not JSON of a note, or naming no valid tenant, they are dropped.
pub async fn follow_progress(mut notes: async_nats::Subscriber, progress: Arc<LiveProgress>) {
    use futures_util::StreamExt;
    while let Some(message) = notes.next().await {
        if message.payload.len() > MAX_PROGRESS_NOTE_BYTES {
            continue;
        }
        let Ok(note) = serde_json::from_slice::<ProgressNote>(&message.payload) else {
            continue;
        };
        if check_tenant_id(&note.tenant).is_err() {
            continue;
        }
        if note.running {
            let steps = note
                .steps
                .into_iter()
                .filter(|(step, ..)| step.len() <= MAX_NOTE_STEP_ID)
                .take(MAX_NOTE_STEPS)
                .collect();
            progress.replace(&note.tenant, steps);
        } else {
            progress.end(&note.tenant);
        }
    }
}

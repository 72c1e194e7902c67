//! The fleet's worker: takes jobs from the queue, runs each tenant in the sandbox
//! under the tenant's lease, persists the run fenced by the lease, evaluates the
//! tenant's rules, and acks the job only after the store's commit.
//!
//! While a run goes on, the worker renews the lease and sends progress acks every
//! third of the lease time. When a renewal finds the lease gone (the worker stalled
//! past it), the run is not persisted; if the persist starts anyway, the store refuses
//! it (its fence is older than the new holder's, or its run was abandoned by it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alert_rules::{RetryPolicy, Rule};
use graph_store::{RunOutcome, RunStatus, Store, StoreError};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;

use super::FleetError;
use super::queue::{Job, Lease, ProgressNote, Queue, QueueSettings, Taken};
use super::tenants::{self, LoadError};
use crate::bindings::PluginInfo;
use crate::config::TenantConfig;
use crate::job::{self, Mode};
use crate::monitor::webhook::EgressTransport;
use crate::monitor::{self, MonitorError, rules};
use crate::run_all::{DefaultComponent, PluginCache};
use crate::runtime::{Plugin, Runtime};
use crate::sandbox::text::Untrusted;
use crate::serve::state::LiveProgress;

/// What `worker` was asked to do.
pub struct WorkerOptions {
    pub store_url: String,
    pub queue_url: String,
    pub queue: QueueSettings,
    /// Runs write their files under `OUTPUT/<name>/<tenant>/`.
    pub output: PathBuf,
    /// Jobs run side by side.
    pub concurrency: usize,
    /// This worker's name in leases and logs.
    pub name: String,
}

/// A tenant as a worker runs it: read from the store at one revision.
struct WorkerTenant {
    revision: i64,
    config: TenantConfig,
    plugin: Plugin,
    info: Arc<PluginInfo>,
    rules: Arc<Vec<Rule>>,
    transport: Arc<EgressTransport>,
}

/// What every job slot of a worker shares.
struct Shared {
    store: Arc<dyn Store>,
    queue: Queue,
    name: String,
    output: PathBuf,
    runtime: Arc<Runtime>,
    default_component: DefaultComponent<'static>,
    /// Tenants prepared so far, by id; replaced when the store has a newer revision.
    tenants: Mutex<HashMap<String, Arc<WorkerTenant>>>,
    plugins: Mutex<PluginCache>,
    progress: Arc<LiveProgress>,
}

/// How a job ended, for the log.
#[derive(Debug, PartialEq, Eq)]
enum Handled {
    /// Persisted (or recorded as failed) and acked.
    Done,
    /// Its slot had been run already (a redelivery after the ack was lost).
    Stale,
    /// Another worker holds the lease: redelivered later.
    Busy,
    /// The lease was lost mid-run: nothing persisted, not acked.
    LostLease,
    /// The store is unavailable: redelivered later.
    Retry,
    /// Failed for good: on the dead-letter subject, and recorded as a failed run.
    Dead,
}

/// Connects, and takes jobs until `shutdown`; jobs in flight then finish (their
/// leases keep them safe if the process is killed instead). Tenants are read from the
/// store (`tenants import`) when their first job comes.
pub async fn run(
    runtime: Arc<Runtime>,
    options: WorkerOptions,
    default_component: DefaultComponent<'static>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), FleetError> {
    let store = graph_store::open(&options.store_url).await?;
    let queue = Queue::connect(&options.queue_url, options.queue.clone()).await?;
    let consumer = queue.consumer().await?;
    // The default component compiled before the first job, so a broken build fails
    // at start, not on every job.
    let mut plugins = PluginCache::default();
    plugins.get(&runtime, default_component, None).await?;
    println!(
        "worker {} ready: {} slot(s); tenants from the store {}; queue {}",
        options.name,
        options.concurrency.max(1),
        store.location(),
        options.queue_url
    );
    let shared = Arc::new(Shared {
        store,
        queue,
        name: options.name.clone(),
        output: options.output.join(&options.name),
        runtime,
        default_component,
        tenants: Mutex::new(HashMap::new()),
        plugins: Mutex::new(plugins),
        progress: Arc::new(LiveProgress::default()),
    });
    // The steps of the runs in flight, for the consoles, twice a second.
    let publisher = {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROGRESS_EVERY).await;
                for tenant in shared.progress.in_flight() {
                    let steps = shared.progress.snapshot(&tenant).unwrap_or_default();
                    publish_progress(&shared, &tenant, true, steps).await;
                }
            }
        })
    };
    let mut slots = JoinSet::new();
    for _ in 0..options.concurrency.max(1) {
        let shared = shared.clone();
        let consumer = consumer.clone();
        let mut stop = shutdown.clone();
        slots.spawn(async move {
            while !*stop.borrow() {
                let taken = tokio::select! {
                    taken = shared.queue.take(&consumer, Duration::from_secs(1)) => taken,
                    _ = stop.changed() => break,
                };
                match taken {
                    Ok(Some(taken)) => {
                        let tenant = taken.job.tenant.clone();
                        let handled = handle(&shared, taken).await;
                        tracing::debug!(tenant = %tenant, ?handled, "job handled");
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!("taking a job failed: {error}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }
    let _ = shutdown.wait_for(|stop| *stop).await;
    while slots.join_next().await.is_some() {}
    publisher.abort();
    Ok(())
}

/// How often a worker tells the consoles where its runs are.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

async fn publish_progress(
    shared: &Shared,
    tenant: &str,
    running: bool,
    steps: Vec<(String, u64, Option<u64>)>,
) {
    let note = ProgressNote {
        tenant: tenant.to_owned(),
        worker: shared.name.clone(),
        running,
        steps,
    };
    if let Err(error) = shared.queue.publish_progress(&note).await {
        tracing::debug!(tenant, "progress not published: {error}");
    }
}

/// How long a job waits before it is offered again while its tenant's lease is held.
fn busy_delay(settings: &QueueSettings) -> Duration {
    (settings.lease / 3).clamp(Duration::from_millis(500), Duration::from_secs(10))
}

/// Why a job's tenant is not ready to run.
enum NotReady {
    /// The store is away: try again later.
    Retry(String),
    /// It will not get better by itself (no configuration, a bad one, a component
    /// that does not load).
    Dead(String),
}

/// The job's tenant at the store's current revision: the one prepared before when
/// the revision is the same, else read and prepared again.
async fn ready(shared: &Shared, tenant: &str) -> Result<Arc<WorkerTenant>, NotReady> {
    let record = match shared.store.tenant_config(tenant).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            return Err(NotReady::Dead(
                LoadError::NotImported(tenant.into()).to_string(),
            ));
        }
        Err(StoreError::Unavailable(reason)) => return Err(NotReady::Retry(reason)),
        Err(error) => return Err(NotReady::Dead(error.to_string())),
    };
    if let Some(prepared) = shared.tenants.lock().await.get(tenant)
        && prepared.revision == record.revision
    {
        return Ok(prepared.clone());
    }
    let stored = tenants::from_record(record).map_err(|e| NotReady::Dead(e.to_string()))?;
    let (plugin, info) = shared
        .plugins
        .lock()
        .await
        .get(
            &shared.runtime,
            shared.default_component,
            stored.config.component.as_deref(),
        )
        .await
        .map_err(|e| NotReady::Dead(e.to_string()))?;
    let rules = Arc::new(stored.rules);
    let prepared = Arc::new(WorkerTenant {
        revision: stored.revision,
        config: stored.config,
        plugin,
        info,
        transport: Arc::new(EgressTransport::for_rules(&rules)),
        rules,
    });
    tracing::info!(
        tenant,
        revision = prepared.revision,
        "tenant read from the store"
    );
    shared
        .tenants
        .lock()
        .await
        .insert(tenant.to_owned(), prepared.clone());
    Ok(prepared)
}

async fn handle(shared: &Shared, taken: Taken) -> Handled {
    let job = taken.job.clone();
    let settings = shared.queue.settings().clone();
    let tenant = match ready(shared, &job.tenant).await {
        Ok(tenant) => tenant,
        Err(NotReady::Retry(reason)) => {
            tracing::warn!(tenant = %job.tenant, "store unavailable, job retried: {reason}");
            let _ = taken.nak(Duration::from_secs(5)).await;
            return Handled::Retry;
        }
        Err(NotReady::Dead(error)) => return dead(shared, &taken, &error).await,
    };
    let lease = match shared.queue.acquire(&job.tenant, &shared.name).await {
        Ok(Some(lease)) => lease,
        Ok(None) => {
            let _ = taken.nak(busy_delay(&settings)).await;
            return Handled::Busy;
        }
        Err(error) => {
            tracing::warn!(tenant = %job.tenant, "lease: {error}");
            let _ = taken.nak(busy_delay(&settings)).await;
            return Handled::Retry;
        }
    };
    let handled = run_leased(shared, &taken, &tenant, lease).await;
    if handled != Handled::LostLease
        && let Err(error) = shared.queue.release(&job.tenant, lease).await
    {
        tracing::warn!(tenant = %job.tenant, "releasing the lease: {error}");
    }
    handled
}

/// Under the lease: abandon what a dead holder left, skip a slot already run, run,
/// persist, rules, ack.
async fn run_leased(
    shared: &Shared,
    taken: &Taken,
    tenant: &WorkerTenant,
    lease: Lease,
) -> Handled {
    let job = &taken.job;
    let store = &*shared.store;
    match abandon_left_over(store, &job.tenant).await {
        Ok(()) => {}
        Err(error) => return retry_or_dead(shared, taken, error).await,
    }
    // A slot a run already started after (its ack was lost, or a duplicate).
    match store.tenant(&job.tenant).await {
        Ok(state) => {
            let counted = state
                .last_run
                .filter(|run| run.status != RunStatus::Abandoned)
                .map(|run| run.started_at_ms);
            if counted.is_some_and(|started| started >= job.due_ms) {
                let _ = taken.ack().await;
                return Handled::Stale;
            }
        }
        Err(error) => return retry_or_dead(shared, taken, error).await,
    }

    // Heartbeat: progress acks and lease renewal; `lost` turns true when the lease
    // is gone.
    let (lost_tx, lost) = watch::channel(false);
    let heartbeat = {
        let queue = shared.queue.clone();
        let tenant_id = job.tenant.clone();
        let name = shared.name.clone();
        let every = shared.queue.settings().lease / 3;
        let message = taken.clone();
        tokio::spawn(async move {
            let mut held = lease;
            loop {
                tokio::time::sleep(every).await;
                let _ = message.progress().await;
                match queue.renew(&tenant_id, &name, held).await {
                    Ok(Some(renewed)) => held = renewed,
                    Ok(None) => {
                        tracing::warn!(tenant = %tenant_id, "lease lost: this run will not be persisted");
                        let _ = lost_tx.send(true);
                        return;
                    }
                    Err(error) => tracing::warn!(tenant = %tenant_id, "lease renewal: {error}"),
                }
            }
        })
    };

    let trigger = job.store_trigger();
    // Secret references are read now, on this machine, for this run.
    let spec = match job::prepare(
        &tenant.config,
        &tenant.info,
        &[],
        Mode::MultiTenant,
        &shared.output.join(&job.tenant),
        shared.progress.clone(),
    ) {
        Ok(spec) => spec,
        Err(error) => {
            heartbeat.abort();
            return dead(shared, taken, &error.to_string()).await;
        }
    };
    let fence = i64::try_from(lease.fence).unwrap_or(i64::MAX);
    // A lost lease stops the run where it is: nothing of it is persisted (a persist
    // in progress rolls back), and the lease's next holder abandons its run record.
    let mut lost_wait = lost.clone();
    shared.progress.begin(&job.tenant);
    let result = tokio::select! {
        result = monitor::run_and_persist_fenced(
            &tenant.plugin,
            &tenant.info,
            spec,
            store,
            trigger,
            Some(fence),
        ) => Some(result),
        _ = lost_wait.wait_for(|lost| *lost) => None,
    };
    heartbeat.abort();
    shared.progress.end(&job.tenant);
    publish_progress(shared, &job.tenant, false, Vec::new()).await;
    let lost_lease = *lost.borrow();
    match result {
        Some(Ok(monitored)) => {
            if let Err(error) = rules::evaluate_after_run(
                store,
                &monitored.run,
                &tenant.rules,
                &*tenant.transport,
                &RetryPolicy::default(),
            )
            .await
            {
                tracing::error!(tenant = %job.tenant, "rules not evaluated: {}", Untrusted(&error.to_string()));
            }
            if let Err(error) = taken.ack().await {
                // Redelivered later and then skipped as already run.
                tracing::warn!(tenant = %job.tenant, "ack after persist failed: {error}");
            }
            tracing::info!(
                tenant = %job.tenant,
                run = monitored.run.id,
                fence,
                worker = %shared.name,
                "run persisted: {}",
                monitored.changes
            );
            Handled::Done
        }
        // The run failed before its summary; the store recorded it as failed.
        Some(Err(MonitorError::Job(error))) => {
            tracing::error!(tenant = %job.tenant, "run failed: {}", Untrusted(&error.to_string()));
            let _ = taken.ack().await;
            Handled::Done
        }
        Some(Err(MonitorError::Store(StoreError::StaleFence {
            run,
            fence,
            current,
            ..
        }))) => {
            tracing::warn!(
                tenant = %job.tenant,
                run,
                fence,
                current,
                "persist refused: a newer lease of the tenant persisted"
            );
            abandon(store, run, "refused: the worker's lease was taken over").await;
            Handled::LostLease
        }
        Some(Err(MonitorError::Store(StoreError::RunNotRunning(run)))) => {
            tracing::warn!(
                tenant = %job.tenant,
                run,
                "persist refused: the run was abandoned by the lease's next holder"
            );
            Handled::LostLease
        }
        Some(Err(MonitorError::Store(error))) if lost_lease => {
            tracing::warn!(tenant = %job.tenant, "lease lost, run not persisted: {error}");
            Handled::LostLease
        }
        Some(Err(MonitorError::Store(error))) => retry_or_dead(shared, taken, error).await,
        None => Handled::LostLease,
    }
}

/// Marks the tenant's `running` runs abandoned: we hold the lease, so their worker
/// stopped, stalled past its lease, or could not reach the store to end them.
async fn abandon_left_over(store: &dyn Store, tenant: &str) -> Result<(), StoreError> {
    for run in store.runs(tenant, 10).await? {
        if run.status == RunStatus::Running {
            tracing::warn!(tenant, run = run.id, "abandoning a run left unfinished");
            abandon(
                store,
                run.id,
                "abandoned: left unfinished (its worker stopped, stalled past its lease, \
                 or could not reach the store)",
            )
            .await;
        }
    }
    Ok(())
}

async fn abandon(store: &dyn Store, run: graph_store::RunId, why: &str) {
    let outcome = RunOutcome {
        status: RunStatus::Abandoned,
        finished_at_ms: graph_store::now_ms(),
        partial_types: Default::default(),
        failed_whole: true,
        error: Some(why.to_owned()),
        summary: None,
        fence: None,
    };
    match store.end_run(run, outcome).await {
        Ok(_) | Err(StoreError::RunNotRunning(_)) => {}
        Err(error) => tracing::warn!(run, "abandoning: {error}"),
    }
}

/// The store away: offered again in a few seconds. Anything else: dead letter.
async fn retry_or_dead(shared: &Shared, taken: &Taken, error: StoreError) -> Handled {
    if let StoreError::Unavailable(reason) = &error {
        tracing::warn!(tenant = %taken.job.tenant, "store unavailable, job retried: {reason}");
        let _ = taken.nak(Duration::from_secs(5)).await;
        return Handled::Retry;
    }
    dead(shared, taken, &error.to_string()).await
}

/// Fails the job for good: its error on the dead-letter subject and, when the tenant
/// is in the store, as a failed run (so `runs` and the console show it), then `term`.
async fn dead(shared: &Shared, taken: &Taken, error: &str) -> Handled {
    let job = &taken.job;
    let subject = shared.queue.dead_letter_subject(&job.tenant);
    tracing::error!(tenant = %job.tenant, "job failed for good ({subject}): {}", Untrusted(error));
    if let Err(publish) = shared.queue.dead_letter(job, error).await {
        tracing::error!("dead letter not published: {publish}");
        let _ = taken.nak(Duration::from_secs(5)).await;
        return Handled::Retry;
    }
    record_dead_letter(&*shared.store, job, &subject, error).await;
    let _ = taken.term().await;
    Handled::Dead
}

/// A failed run saying where the dead letter went.
async fn record_dead_letter(store: &dyn Store, job: &Job, subject: &str, error: &str) {
    let trigger = job.store_trigger();
    let now = graph_store::now_ms();
    let run = match store.begin_run(&job.tenant, trigger, now).await {
        Ok(run) => run,
        Err(StoreError::UnknownTenant(_)) => return,
        Err(failure) => {
            tracing::warn!(tenant = %job.tenant, "dead letter not recorded as a run: {failure}");
            return;
        }
    };
    let outcome = RunOutcome {
        status: RunStatus::Failure,
        finished_at_ms: now,
        partial_types: Default::default(),
        failed_whole: true,
        error: Some(format!("dead letter ({subject}): {error}")),
        summary: None,
        fence: None,
    };
    if let Err(failure) = store.end_run(run, outcome).await {
        tracing::warn!(tenant = %job.tenant, "dead letter not recorded as a run: {failure}");
    }
}

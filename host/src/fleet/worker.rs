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
use graph_store::{RunOutcome, RunStatus, Store, StoreError, Trigger};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::FleetError;
use super::queue::{Lease, Queue, QueueSettings, Taken};
use crate::config::TenantsConfig;
use crate::monitor::webhook::EgressTransport;
use crate::monitor::{self, MonitorError, rules};
use crate::run_all::{DefaultComponent, PreparedTenant, prepare_all};
use crate::runtime::Runtime;
use crate::sandbox::text::Untrusted;
use crate::serve::state::LiveProgress;

/// What `worker` was asked to do.
pub struct WorkerOptions {
    pub tenants_file: PathBuf,
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

/// A tenant as a worker runs it.
struct WorkerTenant {
    prepared: PreparedTenant,
    rules: Arc<Vec<Rule>>,
    transport: Arc<EgressTransport>,
}

/// What every job slot of a worker shares.
struct Shared {
    store: Arc<dyn Store>,
    queue: Queue,
    tenants: HashMap<String, Arc<WorkerTenant>>,
    name: String,
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
    /// Failed for good: on the dead-letter subject.
    Dead,
}

/// Loads and checks the tenants, connects, and takes jobs until `shutdown`; jobs in
/// flight then finish (their leases keep them safe if the process is killed instead).
pub async fn run(
    runtime: &Runtime,
    options: WorkerOptions,
    default_component: DefaultComponent<'_>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), FleetError> {
    let config = TenantsConfig::load(&options.tenants_file)?;
    let mut rules_by_file: HashMap<PathBuf, Arc<Vec<Rule>>> = HashMap::new();
    for tenant in &config.tenants {
        if let Some(path) = &tenant.rules
            && !rules_by_file.contains_key(path)
        {
            let loaded = rules::load(path).map_err(|e| FleetError::Rules(e.to_string()))?;
            rules_by_file.insert(path.clone(), Arc::new(loaded));
        }
    }
    let output = options.output.join(&options.name);
    let prepared = prepare_all(
        runtime,
        &config,
        default_component,
        &output,
        Arc::new(LiveProgress::default()),
    )
    .await?;
    let mut tenants = HashMap::new();
    for (tenant, prepared) in config.tenants.iter().zip(prepared) {
        let rules = tenant
            .rules
            .as_ref()
            .and_then(|path| rules_by_file.get(path).cloned())
            .unwrap_or_default();
        let transport = Arc::new(EgressTransport::for_rules(&rules));
        tenants.insert(
            tenant.tenant.clone(),
            Arc::new(WorkerTenant {
                prepared,
                rules,
                transport,
            }),
        );
    }
    let store = graph_store::open(&options.store_url).await?;
    let queue = Queue::connect(&options.queue_url, options.queue.clone()).await?;
    let consumer = queue.consumer().await?;
    println!(
        "worker {} ready: {} tenant(s), {} slot(s); store {}; queue {}",
        options.name,
        tenants.len(),
        options.concurrency.max(1),
        store.location(),
        options.queue_url
    );
    let shared = Arc::new(Shared {
        store,
        queue,
        tenants,
        name: options.name.clone(),
    });
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
    Ok(())
}

/// How long a job waits before it is offered again while its tenant's lease is held.
fn busy_delay(settings: &QueueSettings) -> Duration {
    (settings.lease / 3).clamp(Duration::from_millis(500), Duration::from_secs(10))
}

async fn handle(shared: &Shared, taken: Taken) -> Handled {
    let job = taken.job.clone();
    let settings = shared.queue.settings().clone();
    let Some(tenant) = shared.tenants.get(&job.tenant).cloned() else {
        let error = format!("worker {} has no tenant {:?}", shared.name, job.tenant);
        return dead(shared, &taken, &error).await;
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

    let trigger = if job.trigger == "manual" {
        Trigger::Manual
    } else {
        Trigger::Schedule
    };
    let prepared = &tenant.prepared;
    let fence = i64::try_from(lease.fence).unwrap_or(i64::MAX);
    // A lost lease stops the run where it is: nothing of it is persisted (a persist
    // in progress rolls back), and the lease's next holder abandons its run record.
    let mut lost_wait = lost.clone();
    let result = tokio::select! {
        result = monitor::run_and_persist_fenced(
            &prepared.plugin,
            &prepared.info,
            prepared.spec.clone(),
            store,
            trigger,
            Some(fence),
        ) => Some(result),
        _ = lost_wait.wait_for(|lost| *lost) => None,
    };
    heartbeat.abort();
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

/// Marks the tenant's `running` runs abandoned: their worker lost the lease we hold.
async fn abandon_left_over(store: &dyn Store, tenant: &str) -> Result<(), StoreError> {
    for run in store.runs(tenant, 10).await? {
        if run.status == RunStatus::Running {
            tracing::warn!(
                tenant,
                run = run.id,
                "abandoning a run whose worker lost its lease"
            );
            abandon(
                store,
                run.id,
                "abandoned: its worker stopped or stalled past its lease",
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

async fn dead(shared: &Shared, taken: &Taken, error: &str) -> Handled {
    tracing::error!(tenant = %taken.job.tenant, "job failed for good: {}", Untrusted(error));
    if let Err(publish) = shared.queue.dead_letter(&taken.job, error).await {
        tracing::error!("dead letter not published: {publish}");
        let _ = taken.nak(Duration::from_secs(5)).await;
        return Handled::Retry;
    }
    let _ = taken.term().await;
    Handled::Dead
}

//! `serve`'s scheduler: every tenant on its polling interval, manual triggers, never
//! two runs of one tenant at once, at most `maxConcurrentTenants` side by side.
//!
//! The schedule lives in the store, so a restarted `serve` resumes it: a tenant is due
//! at its last run's start plus its interval plus a jitter of its own; one never run is
//! due at once. An overdue tenant runs as soon as `serve` starts (never skipped), and one
//! that just ran waits for its time (never run twice). The jitter (up to a tenth of the
//! interval, at most 15 minutes, fixed per tenant) spreads tenants that share an
//! interval, so 1,000 tenants on `ONE_HOUR` do not start in the same second.
//!
//! On shutdown, runs in flight get a grace period to finish and persist; those still
//! collecting after it are abandoned (their graph is not persisted, the store marks them
//! `abandoned`). A persist is one transaction, so none is ever half written.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::sandbox::text::Untrusted;
use graph_store::{
    PollingInterval, RunOutcome, RunRecord, RunStatus, Store, StoreError, TenantSettings, Trigger,
};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

/// The longest jitter added to a tenant's interval.
const MAX_JITTER: Duration = Duration::from_secs(15 * 60);
/// How often the store is checked for triggers given to another process.
const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// Time, so that tests can move it.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        graph_store::now_ms()
    }
}

/// The fixed jitter of a tenant on an interval: up to a tenth of it, at most
/// [`MAX_JITTER`]. FNV-1a of the tenant id: stable across restarts and platforms.
pub fn jitter_ms(tenant: &str, interval: PollingInterval) -> i64 {
    let Some(period) = interval.period() else {
        return 0;
    };
    let span = (period / 10).min(MAX_JITTER).as_millis() as u64;
    if span == 0 {
        return 0;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in tenant.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % span) as i64
}

/// When a tenant is due, from its last counted run: `None` when only a trigger runs it.
/// A tenant never run (or whose last run was abandoned) is due `now`.
pub fn next_due(
    tenant: &str,
    interval: PollingInterval,
    last_run_started_ms: Option<i64>,
    now_ms: i64,
) -> Option<i64> {
    let period = interval.period()?.as_millis() as i64;
    Some(match last_run_started_ms {
        Some(started) => started + period + jitter_ms(tenant, interval),
        None => now_ms,
    })
}

/// The start of the tenant's newest run that counts for the schedule: an abandoned run
/// changed nothing, so the tenant is owed a run.
fn last_counted_start(last_run: Option<&RunRecord>) -> Option<i64> {
    last_run
        .filter(|run| run.status != RunStatus::Abandoned)
        .map(|run| run.started_at_ms)
}

/// How one run of a tenant ended, as the scheduler logs it.
pub type RunResult = Result<RunRecord, String>;

/// Runs one tenant: the sandboxed run, persist, rules. `serve` gives the real one;
/// tests give their own.
pub trait TenantRunner: Send + Sync + 'static {
    fn run(
        &self,
        tenant: String,
        trigger: Trigger,
    ) -> Pin<Box<dyn Future<Output = RunResult> + Send + 'static>>;
}

/// A tenant the scheduler runs.
#[derive(Debug, Clone)]
pub struct ScheduledTenant {
    pub settings: TenantSettings,
}

/// What the scheduler is doing, for the console and the API.
#[derive(Debug, Clone, Default)]
pub struct SchedulerStatus {
    /// Tenants with a run in flight.
    pub running: Vec<String>,
}

/// Asks a running scheduler to do something.
#[derive(Clone)]
pub struct SchedulerHandle {
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    status: watch::Receiver<SchedulerStatus>,
}

impl SchedulerHandle {
    /// A handle for a scheduler in another process (the fleet's): triggers go through
    /// the store, which that scheduler polls; nothing runs here.
    pub fn detached(store: Arc<dyn Store>) -> SchedulerHandle {
        let (_, status) = watch::channel(SchedulerStatus::default());
        SchedulerHandle {
            store,
            wake: Arc::new(Notify::new()),
            status,
        }
    }

    /// Records a manual trigger and wakes the scheduler.
    pub async fn trigger(&self, tenant: &str) -> Result<(), StoreError> {
        self.store.request_trigger(tenant).await?;
        self.wake.notify_one();
        Ok(())
    }

    pub fn status(&self) -> SchedulerStatus {
        self.status.borrow().clone()
    }

    pub fn is_running(&self, tenant: &str) -> bool {
        self.status.borrow().running.iter().any(|t| t == tenant)
    }
}

/// The scheduler of one `serve`.
pub struct Scheduler {
    store: Arc<dyn Store>,
    tenants: BTreeMap<String, ScheduledTenant>,
    runner: Arc<dyn TenantRunner>,
    clock: Arc<dyn Clock>,
    max_concurrent: usize,
    grace: Duration,
    poll: Duration,
    wake: Arc<Notify>,
    status: watch::Sender<SchedulerStatus>,
}

/// A run the scheduler started.
struct InFlight {
    tenant: String,
    task: tokio::task::Id,
}

impl Scheduler {
    pub fn new(
        store: Arc<dyn Store>,
        tenants: Vec<ScheduledTenant>,
        runner: Arc<dyn TenantRunner>,
        max_concurrent: usize,
    ) -> Scheduler {
        let (status, _) = watch::channel(SchedulerStatus::default());
        Scheduler {
            store,
            tenants: tenants
                .into_iter()
                .map(|t| (t.settings.tenant.clone(), t))
                .collect(),
            runner,
            clock: Arc::new(SystemClock),
            max_concurrent: max_concurrent.max(1),
            grace: Duration::from_secs(10),
            poll: DEFAULT_POLL,
            wake: Arc::new(Notify::new()),
            status,
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Scheduler {
        self.clock = clock;
        self
    }

    /// How long runs in flight may go on after a shutdown request.
    pub fn with_grace(mut self, grace: Duration) -> Scheduler {
        self.grace = grace;
        self
    }

    /// How often the store is checked for triggers recorded by other processes.
    pub fn with_poll_interval(mut self, poll: Duration) -> Scheduler {
        self.poll = poll;
        self
    }

    pub fn handle(&self) -> SchedulerHandle {
        SchedulerHandle {
            store: self.store.clone(),
            wake: self.wake.clone(),
            status: self.status.subscribe(),
        }
    }

    /// Registers the tenants, marks runs left `running` by a previous process as
    /// abandoned, and computes every tenant's next run from the store.
    async fn start(&self) -> Result<HashMap<String, Option<i64>>, StoreError> {
        let abandoned = self.store.abandon_running().await?;
        if abandoned > 0 {
            tracing::warn!(abandoned, "runs of a previous process were never persisted");
        }
        let now = self.clock.now_ms();
        let mut due = HashMap::new();
        for (id, tenant) in &self.tenants {
            self.store.upsert_tenant(&tenant.settings).await?;
            let state = self.store.tenant(id).await?;
            let next = next_due(
                id,
                tenant.settings.polling_interval,
                last_counted_start(state.last_run.as_ref()),
                now,
            );
            self.store.set_next_due(id, next).await?;
            due.insert(id.clone(), next);
        }
        Ok(due)
    }

    /// Runs until `shutdown` turns true, then lets runs in flight finish within the
    /// grace period and abandons the rest.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), StoreError> {
        let mut due = self.start().await?;
        let mut in_flight: JoinSet<RunResult> = JoinSet::new();
        let mut running: HashMap<String, InFlight> = HashMap::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Launch what is due or triggered, oldest due first.
            let now = self.clock.now_ms();
            let triggered = self.store.pending_triggers().await?;
            let mut candidates: Vec<(i64, String, Trigger)> = Vec::new();
            for id in self.tenants.keys() {
                if running.contains_key(id) {
                    continue;
                }
                if triggered.contains(id) {
                    candidates.push((i64::MIN, id.clone(), Trigger::Manual));
                } else if let Some(Some(at)) = due.get(id)
                    && *at <= now
                {
                    candidates.push((*at, id.clone(), Trigger::Schedule));
                }
            }
            candidates.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            for (_, id, trigger) in candidates {
                if running.len() >= self.max_concurrent {
                    break;
                }
                if trigger == Trigger::Manual && !self.store.take_trigger(&id).await? {
                    continue; // another scheduler took it
                }
                tracing::info!(tenant = %id, trigger = trigger.as_str(), "run started");
                let task = in_flight.spawn(self.runner.run(id.clone(), trigger));
                running.insert(
                    id.clone(),
                    InFlight {
                        tenant: id,
                        task: task.id(),
                    },
                );
            }
            self.publish(&running);

            let sleep_for = self.sleep_time(&due, &running);
            tokio::select! {
                joined = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                    if let Some(joined) = joined {
                        self.finished(joined, &mut running, &mut due).await?;
                    }
                }
                _ = tokio::time::sleep(sleep_for) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
        self.shut_down(in_flight, running, &mut due).await
    }

    /// Until the next due tenant, but at least every poll interval for triggers
    /// recorded by other processes.
    fn sleep_time(
        &self,
        due: &HashMap<String, Option<i64>>,
        running: &HashMap<String, InFlight>,
    ) -> Duration {
        let now = self.clock.now_ms();
        let next = due
            .iter()
            .filter(|(id, _)| !running.contains_key(*id))
            .filter_map(|(_, at)| *at)
            .min();
        match next {
            Some(at) if at > now => Duration::from_millis((at - now) as u64).min(self.poll),
            Some(_) => Duration::from_millis(10),
            None => self.poll,
        }
    }

    fn publish(&self, running: &HashMap<String, InFlight>) {
        let mut names: Vec<String> = running.values().map(|r| r.tenant.clone()).collect();
        names.sort();
        self.status.send_replace(SchedulerStatus { running: names });
    }

    /// Logs a finished run and schedules the tenant's next one.
    async fn finished(
        &self,
        joined: Result<(tokio::task::Id, RunResult), tokio::task::JoinError>,
        running: &mut HashMap<String, InFlight>,
        due: &mut HashMap<String, Option<i64>>,
    ) -> Result<(), StoreError> {
        let (task, result) = match joined {
            Ok((task, result)) => (task, result),
            Err(error) => (error.id(), Err(format!("the run task failed: {error}"))),
        };
        let Some(tenant) = running
            .iter()
            .find(|(_, flight)| flight.task == task)
            .map(|(tenant, _)| tenant.clone())
        else {
            return Ok(());
        };
        running.remove(&tenant);
        let Some(scheduled) = self.tenants.get(&tenant) else {
            return Ok(());
        };
        let state = self.store.tenant(&tenant).await?;
        let next = next_due(
            &tenant,
            scheduled.settings.polling_interval,
            last_counted_start(state.last_run.as_ref()).or(Some(self.clock.now_ms())),
            self.clock.now_ms(),
        );
        self.store.set_next_due(&tenant, next).await?;
        due.insert(tenant.clone(), next);
        let next_text = next.map_or_else(|| "on trigger only".to_owned(), format_time);
        match result {
            Ok(run) => tracing::info!(
                tenant = %tenant,
                run = run.id,
                status = %run.status,
                duration_ms = run.finished_at_ms.unwrap_or(run.started_at_ms) - run.started_at_ms,
                next = %next_text,
                "run finished: {}",
                run.changes
            ),
            Err(error) => {
                tracing::error!(tenant = %tenant, next = %next_text, "run failed: {}", Untrusted(&error.to_string()))
            }
        }
        self.publish(running);
        Ok(())
    }

    async fn shut_down(
        &self,
        mut in_flight: JoinSet<RunResult>,
        mut running: HashMap<String, InFlight>,
        due: &mut HashMap<String, Option<i64>>,
    ) -> Result<(), StoreError> {
        if !in_flight.is_empty() {
            tracing::info!(
                runs = in_flight.len(),
                grace_seconds = self.grace.as_secs(),
                "stopping: waiting for runs in flight"
            );
        }
        let deadline = tokio::time::Instant::now() + self.grace;
        while !in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, in_flight.join_next_with_id()).await {
                Ok(Some(joined)) => self.finished(joined, &mut running, due).await?,
                Ok(None) => break,
                Err(_) => break,
            }
        }
        // Still collecting after the grace: stop them. Their runs were never persisted
        // (a persist in progress completes or rolls back as one transaction).
        in_flight.abort_all();
        while in_flight.join_next().await.is_some() {}
        for tenant in running.keys() {
            tracing::warn!(tenant = %tenant, "run abandoned at shutdown, nothing persisted");
        }
        if !running.is_empty() {
            self.abandon_unfinished(running.keys()).await?;
        }
        self.publish(&HashMap::new());
        Ok(())
    }

    /// Marks the `running` runs of these tenants abandoned.
    async fn abandon_unfinished<'a>(
        &self,
        tenants: impl Iterator<Item = &'a String>,
    ) -> Result<(), StoreError> {
        for tenant in tenants {
            let runs = self.store.runs(tenant, 5).await?;
            for run in runs.iter().filter(|r| r.status == RunStatus::Running) {
                let outcome = RunOutcome {
                    status: RunStatus::Abandoned,
                    finished_at_ms: self.clock.now_ms(),
                    partial_types: Default::default(),
                    failed_whole: true,
                    error: Some("abandoned: the host stopped before the run was persisted".into()),
                    summary: None,
                    fence: None,
                };
                match self.store.end_run(run.id, outcome).await {
                    Ok(_) | Err(StoreError::RunNotRunning(_)) => {}
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(())
    }
}

/// An epoch-ms time as RFC 3339, UTC, to the second.
pub fn format_time(ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests;

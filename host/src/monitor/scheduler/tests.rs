//! The scheduler against a real SQLite store, a clock the test moves, and a runner that
//! records runs in the store the way the real one does (the sandboxed run itself is
//! tested end to end elsewhere).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use graph_store::{NewObject, ObjectKind};

use super::*;

const HOUR_MS: i64 = 3_600_000;
const START_MS: i64 = 1_800_000_000_000;

struct ManualClock(AtomicI64);

impl ManualClock {
    fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Records each run in the store (begin, persist one entity) at the clock's time and
/// notes who ran; `hold` keeps runs going until released.
struct RecordingRunner {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    runs: Mutex<Vec<(String, Trigger)>>,
    active: Arc<AtomicUsize>,
    peak: AtomicUsize,
    hold: watch::Receiver<bool>,
}

impl TenantRunner for RecordingRunner {
    fn run(
        &self,
        tenant: String,
        trigger: Trigger,
    ) -> Pin<Box<dyn Future<Output = RunResult> + Send + 'static>> {
        self.runs.lock().unwrap().push((tenant.clone(), trigger));
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let store = self.store.clone();
        let started = self.clock.now_ms();
        let mut hold = self.hold.clone();
        let active = self.active.clone();
        Box::pin(async move {
            let run = store
                .begin_run(&tenant, trigger, started)
                .await
                .map_err(|e| e.to_string())?;
            while *hold.borrow() {
                if hold.changed().await.is_err() {
                    break;
                }
            }
            let object = NewObject {
                step: None,
                kind: ObjectKind::Entity,
                key: format!("{tenant}-entity-1"),
                object_type: "test_entity".into(),
                classes: vec!["Resource".into()],
                from_key: None,
                to_key: None,
                properties: Default::default(),
                raw_data: None,
            };
            let outcome = RunOutcome {
                status: RunStatus::Success,
                finished_at_ms: started + 1000,
                partial_types: Default::default(),
                failed_whole: false,
                error: None,
                summary: None,
                fence: None,
            };
            let report = store
                .persist_run(run, outcome, Box::new(std::iter::once(Ok(object))))
                .await
                .map_err(|e| e.to_string());
            active.fetch_sub(1, Ordering::SeqCst);
            report.map(|r| r.run)
        })
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    runner: Arc<RecordingRunner>,
    release: watch::Sender<bool>,
}

impl Harness {
    async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = graph_store::open(dir.path().join("store.db").to_str().unwrap())
            .await
            .unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(START_MS)));
        let (release, hold) = watch::channel(false);
        let runner = Arc::new(RecordingRunner {
            store: store.clone(),
            clock: clock.clone(),
            runs: Mutex::new(Vec::new()),
            active: Arc::new(AtomicUsize::new(0)),
            peak: AtomicUsize::new(0),
            hold,
        });
        Harness {
            _dir: dir,
            store,
            clock,
            runner,
            release,
        }
    }

    fn scheduler(&self, tenants: &[(&str, PollingInterval)], max: usize) -> Scheduler {
        let tenants = tenants
            .iter()
            .map(|(id, interval)| ScheduledTenant {
                settings: TenantSettings {
                    polling_interval: *interval,
                    ..TenantSettings::new(*id)
                },
            })
            .collect();
        Scheduler::new(self.store.clone(), tenants, self.runner.clone(), max)
            .with_clock(self.clock.clone())
            .with_poll_interval(Duration::from_millis(10))
            .with_grace(Duration::from_millis(200))
    }

    fn runs(&self) -> Vec<(String, Trigger)> {
        self.runner.runs.lock().unwrap().clone()
    }

    /// Starts the scheduler; returns its handle, the stop switch and the task.
    fn start(
        &self,
        scheduler: Scheduler,
    ) -> (
        SchedulerHandle,
        watch::Sender<bool>,
        tokio::task::JoinHandle<Result<(), StoreError>>,
    ) {
        let handle = scheduler.handle();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(scheduler.run(stopped));
        (handle, stop, task)
    }

    async fn persisted_runs(&self, tenant: &str) -> usize {
        // Before the scheduler registered the tenant, it has no runs.
        self.store
            .runs(tenant, 100)
            .await
            .map_or(0, |runs| runs.iter().filter(|r| r.persisted).count())
    }
}

/// Waits (in real time, briefly) until `check` holds.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn tenants_never_run_run_at_start_and_disabled_ones_only_when_triggered() {
    let h = Harness::new().await;
    let scheduler = h.scheduler(
        &[
            ("alpha", PollingInterval::OneHour),
            ("beta", PollingInterval::OneDay),
            ("manual", PollingInterval::Disabled),
        ],
        4,
    );
    let (handle, stop, task) = h.start(scheduler);
    eventually("alpha and beta persisted", async || {
        h.persisted_runs("alpha").await == 1 && h.persisted_runs("beta").await == 1
    })
    .await;
    assert_eq!(h.persisted_runs("manual").await, 0);
    handle.trigger("manual").await.unwrap();
    eventually("manual persisted", async || {
        h.persisted_runs("manual").await == 1
    })
    .await;
    let manual_runs: Vec<Trigger> = h
        .runs()
        .into_iter()
        .filter(|(t, _)| t == "manual")
        .map(|(_, trigger)| trigger)
        .collect();
    assert_eq!(manual_runs, vec![Trigger::Manual]);
    stop.send_replace(true);
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_tenant_runs_again_after_its_interval_and_jitter_not_before() {
    let h = Harness::new().await;
    let (_, stop, task) = h.start(h.scheduler(&[("alpha", PollingInterval::OneHour)], 1));
    eventually("first run", async || h.persisted_runs("alpha").await == 1).await;
    let next = h.store.tenant("alpha").await.unwrap().next_due_ms.unwrap();
    let expected = START_MS + HOUR_MS + jitter_ms("alpha", PollingInterval::OneHour);
    assert_eq!(next, expected);
    h.clock.advance(next - START_MS - 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.runs().len(), 1, "not due yet: one ms early");
    h.clock.advance(1);
    eventually("second run", async || h.persisted_runs("alpha").await == 2).await;
    assert_eq!(h.runs()[1], ("alpha".to_owned(), Trigger::Schedule));
    stop.send_replace(true);
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_restart_resumes_the_schedule_without_double_or_skipped_runs() {
    let h = Harness::new().await;
    let tenants = [
        ("fresh", PollingInterval::OneHour),
        ("overdue", PollingInterval::OneHour),
    ];
    let (_, stop, task) = h.start(h.scheduler(&tenants, 2));
    eventually("both ran once", async || {
        h.persisted_runs("fresh").await == 1 && h.persisted_runs("overdue").await == 1
    })
    .await;
    stop.send_replace(true);
    task.await.unwrap().unwrap();

    // Down for a while: "overdue" is past its time when serve comes back, "fresh"
    // is given one more (persisted) run just before the restart.
    h.clock.advance(2 * HOUR_MS);
    let run = h
        .store
        .begin_run("fresh", Trigger::Cli, h.clock.now_ms())
        .await
        .unwrap();
    h.store
        .persist_run(
            run,
            RunOutcome {
                status: RunStatus::Success,
                finished_at_ms: h.clock.now_ms(),
                partial_types: BTreeSet::new(),
                failed_whole: false,
                error: None,
                summary: None,
                fence: None,
            },
            Box::new(std::iter::empty()),
        )
        .await
        .unwrap();
    let before = h.runs().len();
    let (_, stop, task) = h.start(h.scheduler(&tenants, 2));
    eventually("overdue ran at restart", async || {
        h.persisted_runs("overdue").await == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after: Vec<String> = h.runs()[before..].iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(
        after,
        vec!["overdue".to_owned()],
        "fresh just ran: not again"
    );
    let fresh_next = h.store.tenant("fresh").await.unwrap().next_due_ms.unwrap();
    assert_eq!(
        fresh_next,
        h.clock.now_ms() + HOUR_MS + jitter_ms("fresh", PollingInterval::OneHour)
    );
    stop.send_replace(true);
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_run_left_running_by_a_crash_is_abandoned_and_the_tenant_runs_again() {
    let h = Harness::new().await;
    h.store
        .upsert_tenant(&TenantSettings::new("crashed"))
        .await
        .unwrap();
    // A previous serve died in the middle of this run.
    h.store
        .begin_run("crashed", Trigger::Schedule, START_MS - 60_000)
        .await
        .unwrap();
    let (_, stop, task) = h.start(h.scheduler(&[("crashed", PollingInterval::OneDay)], 1));
    eventually("ran again", async || h.persisted_runs("crashed").await == 1).await;
    let runs = h.store.runs("crashed", 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].status, RunStatus::Abandoned);
    stop.send_replace(true);
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn never_two_runs_of_one_tenant_and_never_more_than_the_cap() {
    let h = Harness::new().await;
    h.release.send_replace(true); // hold every run
    let tenants: Vec<(String, PollingInterval)> = (0..6)
        .map(|i| (format!("t{i}"), PollingInterval::ThirtyMinutes))
        .collect();
    let refs: Vec<(&str, PollingInterval)> =
        tenants.iter().map(|(t, i)| (t.as_str(), *i)).collect();
    let (handle, stop, task) = h.start(h.scheduler(&refs, 2));
    eventually("two runs in flight", async || h.runs().len() == 2).await;
    // A trigger for a tenant in flight waits for its run to end.
    let busy = h.runs()[0].0.clone();
    handle.trigger(&busy).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        h.runs().len(),
        2,
        "nothing starts while both slots are busy"
    );
    h.release.send_replace(false);
    eventually("all six ran and the trigger was served", async || {
        h.runs().len() == 7
    })
    .await;
    assert!(h.runner.peak.load(Ordering::SeqCst) <= 2);
    let busy_runs = h.runs().iter().filter(|(t, _)| *t == busy).count();
    assert_eq!(busy_runs, 2, "the trigger ran once, after the first run");
    stop.send_replace(true);
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_abandons_runs_still_collecting_after_the_grace() {
    let h = Harness::new().await;
    h.release.send_replace(true);
    let (_, stop, task) = h.start(h.scheduler(&[("slow", PollingInterval::OneHour)], 1));
    eventually("run in flight", async || h.runs().len() == 1).await;
    eventually("run recorded", async || {
        h.store
            .runs("slow", 1)
            .await
            .is_ok_and(|runs| runs.len() == 1)
    })
    .await;
    stop.send_replace(true);
    task.await.unwrap().unwrap();
    let runs = h.store.runs("slow", 10).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Abandoned);
    assert!(!runs[0].persisted);
    assert!(h.store.objects("slow", true).await.unwrap().is_empty());
}

#[test]
fn jitter_spreads_a_thousand_tenants_on_one_interval() {
    let seconds: BTreeSet<i64> = (0..1000)
        .map(|i| jitter_ms(&format!("tenant-{i}"), PollingInterval::OneHour) / 1000)
        .collect();
    // Up to six minutes of spread for ONE_HOUR: a thousand tenants land in hundreds of
    // different seconds, not one.
    assert!(
        seconds.len() > 250,
        "only {} distinct seconds",
        seconds.len()
    );
    assert!(seconds.iter().all(|s| *s < 360));
    assert_eq!(jitter_ms("a", PollingInterval::Disabled), 0);
    assert_eq!(
        jitter_ms("tenant-7", PollingInterval::OneWeek),
        jitter_ms("tenant-7", PollingInterval::OneWeek),
        "stable per tenant"
    );
    assert!(jitter_ms("tenant-7", PollingInterval::OneWeek) < 15 * 60 * 1000);
}

#[test]
fn next_due_is_now_for_a_tenant_never_run_and_none_when_disabled() {
    assert_eq!(next_due("a", PollingInterval::OneDay, None, 42), Some(42));
    assert_eq!(next_due("a", PollingInterval::Disabled, Some(1), 42), None);
    assert_eq!(
        next_due("a", PollingInterval::OneDay, Some(1000), 42),
        Some(1000 + 24 * HOUR_MS + jitter_ms("a", PollingInterval::OneDay))
    );
}

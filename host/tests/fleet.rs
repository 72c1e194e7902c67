//! The fleet on real servers: `serve --queue` and `worker`s as real processes, a real
//! nats-server (JetStream) and a real PostgreSQL, a real simulator. Workers are killed
//! (`kill -9`) and frozen (`SIGSTOP`) mid-run; the store must end up with exactly one
//! persisted run per job and nothing of the dead or stale worker.
//!
//! Needs `GRAPH_STORE_TEST_POSTGRES` and `FLEET_TEST_NATS` (`scripts/fleet-servers.sh
//! start`; `.ci/run` always sets them); without them each test says so and passes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use graph_store::{RunRecord, RunStatus, Store};
use jumpcloud_simulator::{Dataset, Simulator, SimulatorConfig, TenantSpec};
use sqlx::Connection;

const USERS: usize = 30;
/// Every simulator response waits this long, so a run lasts seconds: long enough to
/// kill or freeze its worker in the middle.
const LATENCY: Duration = Duration::from_millis(300);
/// Short leases: a dead worker's job comes back after this.
const LEASE_SECONDS: u64 = 3;
const DEADLINE: Duration = Duration::from_secs(180);

struct Servers {
    postgres: String,
    nats: String,
}

fn servers(test: &str) -> Option<Servers> {
    match (
        std::env::var("GRAPH_STORE_TEST_POSTGRES"),
        std::env::var("FLEET_TEST_NATS"),
    ) {
        (Ok(postgres), Ok(nats)) if !postgres.is_empty() && !nats.is_empty() => {
            Some(Servers { postgres, nats })
        }
        _ => {
            eprintln!(
                "skipped {test}: GRAPH_STORE_TEST_POSTGRES and FLEET_TEST_NATS are not set \
                 (scripts/fleet-servers.sh start, then source its env file)"
            );
            None
        }
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A name no other test (or earlier run) uses: databases and queue namespaces.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A fresh database on the test server; its URL.
async fn fresh_database(server: &str) -> String {
    let name = unique("fleet");
    let mut conn = sqlx::PgConnection::connect(server)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server, String::new()),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let end = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    format!("{}/{name}{query}", &base[..end])
}

/// A scratch folder per test, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique(&format!("fleet-{name}")));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The tenants' secret: the store holds a reference to this variable, and only the
/// workers' environment holds its value.
const API_KEY_VAR: &str = "FLEET_TEST_JUMPCLOUD_API_KEY";

/// `integration-host ARGS` with the test's component cache and `api_key` in
/// [`API_KEY_VAR`] (none when empty).
fn host(args: &[&str], api_key: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_integration-host"));
    command
        .args(args)
        .env(
            "INTEGRATION_HOST_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"),
        )
        .env("RUST_LOG", "info")
        .env_remove(API_KEY_VAR);
    if !api_key.is_empty() {
        command.env(API_KEY_VAR, api_key);
    }
    command
}

/// A child process, killed (by its PID) when dropped; its output in a file.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn start(name: &str, args: &[&str], scratch: &Scratch, api_key: &str) -> Process {
        let log = scratch.0.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = host(args, api_key)
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start integration-host");
        Process { child, log }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {}", self.pid());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A path `scripts/fleet-servers.sh start` exports, or `None` after saying the test is
/// skipped without it.
fn path_from_env(test: &str, var: &str) -> Option<PathBuf> {
    let value = std::env::var(var).ok().filter(|v| !v.is_empty());
    if value.is_none() {
        eprintln!("skipped {test}: {var} is not set (scripts/fleet-servers.sh start)");
    }
    value.map(PathBuf::from)
}

/// Waits for `check` to give something, failing the test after [`DEADLINE`].
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn runs_of(store: &dyn Store, tenant: &str) -> Vec<RunRecord> {
    runs(store, tenant).await
}

async fn runs(store: &dyn Store, tenant: &str) -> Vec<RunRecord> {
    store.runs(tenant, 50).await.unwrap_or_default()
}

async fn simulator() -> Simulator {
    Simulator::start(SimulatorConfig {
        dataset: Dataset::Generated(TenantSpec {
            users: USERS,
            groups: 3,
            applications: 2,
            ..TenantSpec::default()
        }),
        latency: LATENCY,
        ..SimulatorConfig::default()
    })
    .await
    .expect("start simulator")
}

/// A tenants file: each tenant's API key a reference to `key_var` (the fleet's
/// tenants are stored; their secrets are not).
fn tenants_file(scratch: &Scratch, sim: &Simulator, tenants: &[(&str, &str)]) -> PathBuf {
    let authority = sim.base_url().replace("http://", "");
    let mut text = String::from("maxConcurrentTenants = 4\n");
    for (tenant, key_var) in tenants {
        text.push_str(&format!(
            "[[tenant]]\ntenant = \"{tenant}\"\npollingInterval = \"ONE_DAY\"\n\
             [tenant.integration]\napiKey = {{ env = \"{key_var}\" }}\nbaseUrl = \"{}\"\n\
             [tenant.sandbox]\nallowedHosts = [\"{authority}\"]\n",
            sim.base_url()
        ));
    }
    let path = scratch.0.join("tenants.toml");
    std::fs::write(&path, text).expect("tenants file");
    path
}

struct Fleet {
    scratch: Scratch,
    store_url: String,
    nats: String,
    namespace: String,
    store: Arc<dyn Store>,
    api_key: String,
    _sim: Simulator,
}

impl Fleet {
    /// A fresh store with `tenants` imported into it (`tenants import`).
    async fn new(name: &str, servers: &Servers, tenants: &[&str]) -> Fleet {
        let keyed: Vec<(&str, &str)> = tenants.iter().map(|t| (*t, API_KEY_VAR)).collect();
        Fleet::with_tenants(name, servers, &keyed).await
    }

    /// As [`Fleet::new`], each tenant's key read from the variable named beside it.
    async fn with_tenants(name: &str, servers: &Servers, tenants: &[(&str, &str)]) -> Fleet {
        let scratch = Scratch::new(name);
        let sim = simulator().await;
        let file = tenants_file(&scratch, &sim, tenants);
        let store_url = fresh_database(&servers.postgres).await;
        let api_key = sim.api_key().to_owned();
        let imported = host(
            &[
                "tenants",
                "import",
                file.to_str().expect("utf-8"),
                "--store",
                &store_url,
            ],
            &api_key,
        )
        .output()
        .expect("run tenants import");
        assert!(
            imported.status.success(),
            "tenants import: {}{}",
            String::from_utf8_lossy(&imported.stdout),
            String::from_utf8_lossy(&imported.stderr)
        );
        let store = graph_store::open(&store_url).await.expect("open store");
        Fleet {
            scratch,
            store_url,
            nats: servers.nats.clone(),
            namespace: unique("t"),
            store,
            api_key,
            _sim: sim,
        }
    }

    /// The same fleet on another NATS server.
    fn with_nats(mut self, nats: &str) -> Fleet {
        self.nats = nats.to_owned();
        self
    }

    fn common<'a>(&'a self, args: &mut Vec<&'a str>) {
        args.extend([
            "--store",
            &self.store_url,
            "--queue",
            &self.nats,
            "--queue-namespace",
            &self.namespace,
        ]);
    }

    fn scheduler(&self, name: &str) -> Process {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--lease-seconds", "3"];
        self.common(&mut args);
        // The scheduler runs nothing: it never needs a tenant's secret.
        Process::start(name, &args, &self.scratch, "")
    }

    fn worker(&self, name: &str, concurrency: usize) -> Process {
        let output = self.scratch.0.join("out");
        let concurrency = concurrency.to_string();
        let lease = LEASE_SECONDS.to_string();
        let mut args = vec![
            "worker",
            "--name",
            name,
            "--output",
            output.to_str().expect("utf-8"),
            "--concurrency",
            &concurrency,
            "--lease-seconds",
            &lease,
        ];
        self.common(&mut args);
        // The args borrow locals: start before they go.
        Process::start(name, &args, &self.scratch, &self.api_key)
    }

    /// Waits until the tenant has a run in flight; returns it.
    async fn running(&self, tenant: &str) -> RunRecord {
        let store = self.store.clone();
        wait_for(&format!("a run of {tenant} in flight"), || {
            let store = store.clone();
            async move {
                runs(&*store, tenant)
                    .await
                    .into_iter()
                    .find(|r| r.status == RunStatus::Running)
            }
        })
        .await
    }

    /// Waits until the tenant has a persisted run; returns its runs.
    async fn persisted(&self, tenant: &str) -> Vec<RunRecord> {
        let store = self.store.clone();
        wait_for(&format!("a persisted run of {tenant}"), || {
            let store = store.clone();
            async move {
                let runs = runs(&*store, tenant).await;
                runs.iter().any(|r| r.persisted).then_some(runs)
            }
        })
        .await
    }

    /// What the test left, counted (for the record: printed, and appended to
    /// `fleet-outcomes.txt` in the test's target folder): each tenant's runs by status,
    /// persisted runs, users and entities in its graph; jobs left in the queue.
    async fn record_outcome(&self, test: &str, tenants: &[&str]) {
        let mut line = format!("{test}:");
        for tenant in tenants {
            let runs = runs_of(&*self.store, tenant).await;
            let count = |status: RunStatus| runs.iter().filter(|r| r.status == status).count();
            let objects = self.store.objects(tenant, false).await.expect("objects");
            let entities = objects
                .iter()
                .filter(|o| o.object.kind == graph_store::ObjectKind::Entity)
                .count();
            let users = objects
                .iter()
                .filter(|o| o.object.object_type == "jumpcloud_user")
                .count();
            line.push_str(&format!(
                " {tenant}: {} runs ({} success, {} abandoned, {} failed), {} persisted, graph {users} users / {entities} entities;",
                runs.len(),
                count(RunStatus::Success),
                count(RunStatus::Abandoned),
                count(RunStatus::Failure),
                runs.iter().filter(|r| r.persisted).count(),
            ));
        }
        line.push_str(&format!(" jobs left {}", self.jobs_left().await));
        eprintln!("fleet outcome: {line}");
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Path::new(env!("CARGO_TARGET_TMPDIR")).join("fleet-outcomes.txt"))
        {
            let _ = writeln!(file, "{line}");
        }
    }

    /// Jobs still in the queue's stream.
    async fn jobs_left(&self) -> u64 {
        let client = async_nats::connect(&self.nats).await.expect("connect");
        let js = async_nats::jetstream::new(client);
        let mut stream = js
            .get_stream(format!("{}_runs", self.namespace))
            .await
            .expect("stream");
        stream.info().await.expect("stream info").state.messages
    }
}

/// Exactly one run persisted, the newest, successful; the stalled or killed worker's
/// run `lost` abandoned, and so is any other (a run whose lease lapsed on a loaded
/// machine is retried, never persisted twice).
fn assert_persisted_once(runs: &[RunRecord], lost: graph_store::RunId, context: &str) {
    let persisted: Vec<_> = runs.iter().filter(|r| r.persisted).collect();
    assert_eq!(
        persisted.len(),
        1,
        "one persisted run: {runs:#?}\n{context}"
    );
    assert_eq!(runs[0].id, persisted[0].id, "the newest: {runs:#?}");
    assert_eq!(runs[0].status, RunStatus::Success, "{runs:#?}\n{context}");
    let stalled = runs.iter().find(|r| r.id == lost).expect("the lost run");
    assert_eq!(stalled.status, RunStatus::Abandoned, "{runs:#?}\n{context}");
    assert!(
        runs[1..].iter().all(|r| r.status == RunStatus::Abandoned),
        "{runs:#?}\n{context}"
    );
}

/// Two workers and a scheduler; the worker running both tenants is killed with
/// `kill -9` in the middle of the runs. The other worker takes each job once the dead
/// one's lease is gone, abandons the dead run, and persists exactly one run per
/// tenant; the queue ends empty and nothing runs twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_worker_s_tenants_are_run_once_by_another() {
    let Some(servers) = servers("a_killed_worker_s_tenants_are_run_once_by_another") else {
        return;
    };
    let fleet = Fleet::new("kill", &servers, &["alpha", "beta"]).await;
    let _scheduler = fleet.scheduler("scheduler");
    let doomed = fleet.worker("doomed", 2);
    let doomed_alpha = fleet.running("alpha").await;
    let doomed_beta = fleet.running("beta").await;
    let survivor = fleet.worker("survivor", 2);
    // Let the survivor connect (it then only finds held leases), then kill.
    tokio::time::sleep(Duration::from_millis(500)).await;
    doomed.signal("KILL");

    for (tenant, doomed_run) in [("alpha", &doomed_alpha), ("beta", &doomed_beta)] {
        let runs = fleet.persisted(tenant).await;
        assert_persisted_once(
            &runs,
            doomed_run.id,
            &format!("{tenant}; survivor:\n{}", survivor.log()),
        );
        assert!(runs[0].started_at_ms > doomed_run.started_at_ms);
        let users = fleet
            .store
            .objects(tenant, false)
            .await
            .expect("objects")
            .iter()
            .filter(|o| o.object.object_type == "jumpcloud_user")
            .count();
        assert_eq!(users, USERS, "{tenant}: one run's graph");
    }
    let log = survivor.log();
    assert!(log.contains("abandoning a run left unfinished"), "{log}");
    // Nothing left to run, and nothing runs again (ONE_DAY interval).
    assert_eq!(fleet.jobs_left().await, 0);
    let counts = [
        runs(&*fleet.store, "alpha").await.len(),
        runs(&*fleet.store, "beta").await.len(),
    ];
    tokio::time::sleep(Duration::from_secs(LEASE_SECONDS + 1)).await;
    for (tenant, count) in ["alpha", "beta"].into_iter().zip(counts) {
        assert_eq!(
            runs(&*fleet.store, tenant).await.len(),
            count,
            "{tenant}: no run after"
        );
    }
    // The reading commands take the shared store too.
    let listed = Command::new(env!("CARGO_BIN_EXE_integration-host"))
        .args([
            "runs",
            "--tenant",
            "alpha",
            "--json",
            "--store",
            &fleet.store_url,
        ])
        .output()
        .expect("runs");
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap_or_else(|e| {
        panic!(
            "runs --json: {e}: {}",
            String::from_utf8_lossy(&listed.stderr)
        )
    });
    let statuses: Vec<&str> = listed
        .as_array()
        .map(|runs| runs.iter().filter_map(|r| r["status"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(statuses.first(), Some(&"success"), "{listed}");
    assert!(statuses[1..].iter().all(|s| *s == "abandoned"), "{listed}");
    fleet
        .record_outcome("kill -9 mid-run", &["alpha", "beta"])
        .await;
    eprintln!("doomed:\n{}\nsurvivor:\n{}", doomed.log(), survivor.log());
}

/// A worker frozen (`SIGSTOP`) mid-run past its lease: another worker takes the job
/// and persists it; the frozen one, resumed (`SIGCONT`), persists nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_frozen_past_its_lease_persists_nothing_when_it_wakes() {
    let Some(servers) = servers("a_worker_frozen_past_its_lease_persists_nothing_when_it_wakes")
    else {
        return;
    };
    let fleet = Fleet::new("freeze", &servers, &["gamma"]).await;
    let _scheduler = fleet.scheduler("scheduler");
    let frozen = fleet.worker("frozen", 1);
    let frozen_run = fleet.running("gamma").await;
    frozen.signal("STOP");
    let other = fleet.worker("other", 1);
    let runs_after = fleet.persisted("gamma").await;
    frozen.signal("CONT");
    // The woken worker notices within a heartbeat; give it two leases.
    let log = wait_for("the woken worker to give up its run", || {
        let log = frozen.log();
        async move {
            (log.contains("lease lost") || log.contains("persist refused")).then_some(log)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(LEASE_SECONDS)).await;
    let runs = runs(&*fleet.store, "gamma").await;
    assert_persisted_once(
        &runs,
        frozen_run.id,
        &format!("frozen:\n{log}\nother:\n{}", other.log()),
    );
    assert!(runs_after.len() <= runs.len());
    assert_eq!(fleet.jobs_left().await, 0);
    fleet
        .record_outcome("SIGSTOP past the lease", &["gamma"])
        .await;
    eprintln!("frozen:\n{log}\nother:\n{}", other.log());
}

/// A nats-server of the test's own (so the test can restart it): the binary
/// `scripts/fleet-servers.sh` installed, on a free loopback port, its JetStream data
/// in a folder that outlives restarts. Stopped by PID when dropped.
struct OwnNats {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnNats {
    fn start(binary: PathBuf, dir: PathBuf) -> OwnNats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut nats = OwnNats {
            binary,
            port,
            dir,
            child: None,
        };
        nats.up();
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn up(&mut self) {
        let log =
            std::fs::File::create(self.dir.join(format!("nats-{}.log", graph_store::now_ms())))
                .expect("nats log");
        let child = Command::new(&self.binary)
            .args(["-js", "-sd"])
            .arg(self.dir.join("js"))
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Two schedulers and three workers on four tenants; the NATS server is restarted in
/// the middle of the runs. Workers and schedulers reconnect, every tenant ends with
/// exactly one persisted run (one graph), and no job is left or run twice.
#[tokio::test(flavor = "multi_thread")]
async fn two_schedulers_three_workers_and_a_nats_restart_lose_and_double_nothing() {
    let test = "two_schedulers_three_workers_and_a_nats_restart_lose_and_double_nothing";
    let Some(servers) = servers(test) else {
        return;
    };
    let Some(binary) = path_from_env(test, "FLEET_NATS_SERVER") else {
        return;
    };
    let tenants = ["t1", "t2", "t3", "t4"];
    let fleet = Fleet::new("restart", &servers, &tenants).await;
    let mut nats = OwnNats::start(binary, fleet.scratch.0.clone());
    let fleet = fleet.with_nats(&nats.url());
    let schedulers = [
        fleet.scheduler("scheduler-1"),
        fleet.scheduler("scheduler-2"),
    ];
    let workers = [
        fleet.worker("w1", 1),
        fleet.worker("w2", 1),
        fleet.worker("w3", 1),
    ];
    // Everyone connected (and the components compiled) before the restart.
    for process in workers.iter().chain(schedulers.iter()) {
        wait_for("every process to be ready", || {
            let log = process.log();
            async move {
                (log.contains(" ready: ") || log.contains("scheduling the store's tenants (4 now)"))
                    .then_some(())
            }
        })
        .await;
    }
    let store = fleet.store.clone();
    wait_for("a run in flight", || {
        let store = store.clone();
        async move {
            for tenant in tenants {
                if runs(&*store, tenant)
                    .await
                    .iter()
                    .any(|r| r.status == RunStatus::Running)
                {
                    return Some(());
                }
            }
            None
        }
    })
    .await;
    nats.down();
    tokio::time::sleep(Duration::from_secs(1)).await;
    nats.up();

    let logs = || {
        workers
            .iter()
            .chain(schedulers.iter())
            .map(|p| p.log())
            .collect::<Vec<_>>()
            .join("\n-----\n")
    };
    for tenant in tenants {
        fleet.persisted(tenant).await;
    }
    tokio::time::sleep(Duration::from_secs(LEASE_SECONDS + 1)).await;
    for tenant in tenants {
        let runs = runs(&*fleet.store, tenant).await;
        let persisted = runs.iter().filter(|r| r.persisted).count();
        assert_eq!(persisted, 1, "{tenant}: {runs:#?}\n{}", logs());
        assert!(
            runs.iter()
                .all(|r| r.persisted || r.status == RunStatus::Abandoned),
            "{tenant}: {runs:#?}"
        );
        let users = fleet
            .store
            .objects(tenant, false)
            .await
            .expect("objects")
            .iter()
            .filter(|o| o.object.object_type == "jumpcloud_user")
            .count();
        assert_eq!(users, USERS, "{tenant}: one run's graph");
    }
    assert_eq!(fleet.jobs_left().await, 0, "{}", logs());
    // The restart was seen (and survived) by the processes.
    assert!(
        workers
            .iter()
            .all(|w| w.log().contains("event: disconnected")),
        "{}",
        logs()
    );
    fleet
        .record_outcome("two schedulers, three workers, NATS restarted", &tenants)
        .await;
    eprintln!("{}", logs());
}

/// A PostgreSQL server of the test's own (so the test can stop it): Debian's binaries
/// from `FLEET_PG_BINDIR`, run as the `postgres` user when the test runs as root
/// (`initdb` refuses root), TCP on loopback only. Stopped by PID when dropped.
struct OwnPostgres {
    bindir: PathBuf,
    data: PathBuf,
    port: u16,
    root: bool,
    _dir: tempfile::TempDir,
}

impl OwnPostgres {
    fn start(bindir: PathBuf) -> OwnPostgres {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        // Under the system temp folder: the postgres user must reach it.
        let dir = tempfile::Builder::new()
            .prefix("fleet-pg-")
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let pg = OwnPostgres {
            bindir,
            data,
            port,
            root,
            _dir: dir,
        };
        if root {
            assert!(
                Command::new("chmod")
                    .arg("755")
                    .arg(pg._dir.path())
                    .status()
                    .is_ok_and(|s| s.success())
                    && Command::new("chown")
                        .arg("postgres:postgres")
                        .arg(pg._dir.path())
                        .status()
                        .is_ok_and(|s| s.success()),
                "hand the folder to postgres"
            );
        }
        let status = pg
            .tool("initdb")
            .arg("-D")
            .arg(&pg.data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .status()
            .expect("initdb");
        assert!(status.success(), "initdb");
        pg.up();
        pg
    }

    /// A PostgreSQL tool, as the postgres user when we are root.
    fn tool(&self, name: &str) -> Command {
        let path = self.bindir.join(name);
        if self.root {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn up(&self) {
        let status = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.data.join("server.log"))
            .args(["-w", "-t", "30", "-o"])
            .arg(format!(
                "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off",
                self.port
            ))
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl start");
        assert!(status.success(), "PostgreSQL did not start");
    }

    /// Fast shutdown (SIGINT to the postmaster, by its PID); waits until it is gone.
    fn down(&self) {
        let Ok(pidfile) = std::fs::read_to_string(self.data.join("postmaster.pid")) else {
            return;
        };
        let Some(pid) = pidfile.lines().next().map(str::to_owned) else {
            return;
        };
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let start = Instant::now();
        while self.data.join("postmaster.pid").exists() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "PostgreSQL did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.down();
    }
}

/// PostgreSQL stops in the middle of a run and stays down until the run's persist has
/// waited its 30 s for a connection: the worker says the store is unavailable and puts
/// the job back; once PostgreSQL is back, the tenant ends with exactly one persisted run
/// (the failed one abandoned) and one whole graph; nothing is half written and no job
/// is left.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_away_mid_run_writes_nothing_half_and_the_run_completes_once() {
    let test = "postgres_away_mid_run_writes_nothing_half_and_the_run_completes_once";
    let Some(servers) = servers(test) else {
        return;
    };
    let Some(bindir) = path_from_env(test, "FLEET_PG_BINDIR") else {
        return;
    };
    let postgres = OwnPostgres::start(bindir);
    let fleet = Fleet::new(
        "pgdown",
        &Servers {
            postgres: postgres.url(),
            nats: servers.nats.clone(),
        },
        &["delta"],
    )
    .await;
    let _scheduler = fleet.scheduler("scheduler");
    let worker = fleet.worker("worker", 1);
    fleet.running("delta").await;
    postgres.down();
    // Down until the run reaches its persist and the worker gives up waiting for a
    // connection (the pool's 30 s): it must say so and put the job back.
    wait_for("the worker to report the store unavailable", || {
        let log = worker.log();
        async move { log.contains("store unavailable, job retried").then_some(()) }
    })
    .await;
    postgres.up();
    let runs = fleet.persisted("delta").await;
    tokio::time::sleep(Duration::from_secs(LEASE_SECONDS + 1)).await;
    let runs_now = runs_of(&*fleet.store, "delta").await;
    let log = worker.log();
    assert_eq!(
        runs_now.iter().filter(|r| r.persisted).count(),
        1,
        "{runs_now:#?}\n{log}"
    );
    assert!(
        runs_now
            .iter()
            .all(|r| r.persisted || r.status == RunStatus::Abandoned),
        "{runs_now:#?}\n{log}"
    );
    assert!(runs.len() <= runs_now.len());
    let users = fleet
        .store
        .objects("delta", false)
        .await
        .expect("objects")
        .iter()
        .filter(|o| o.object.object_type == "jumpcloud_user")
        .count();
    assert_eq!(users, USERS, "one whole graph");
    assert_eq!(fleet.jobs_left().await, 0, "{log}");
    fleet
        .record_outcome("PostgreSQL down mid-run", &["delta"])
        .await;
    eprintln!("{log}");
}

/// The address a scheduler's log says its API listens on.
fn api_address(log: &str) -> Option<String> {
    let start = log.find("API and console at http://")? + "API and console at http://".len();
    let rest = &log[start..];
    Some(rest[..rest.find('/')?].to_owned())
}

/// A GET on loopback, its body.
fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the API");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}

/// A tenant whose secret is not on the worker fails for good: its job goes to the
/// dead-letter subject with the error, `runs` and the console's API show it as a failed
/// run saying so, the queue holds nothing of it, and a healthy tenant beside it runs,
/// its steps shown live by the scheduler's console API.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_fails_for_good_is_dead_lettered_and_shown_in_runs() {
    let test = "a_job_that_fails_for_good_is_dead_lettered_and_shown_in_runs";
    let Some(servers) = servers(test) else {
        return;
    };
    let missing = "FLEET_TEST_KEY_NOT_ON_ANY_WORKER";
    let fleet = Fleet::with_tenants(
        "dead",
        &servers,
        &[("echo", API_KEY_VAR), ("foxtrot", missing)],
    )
    .await;
    let scheduler = fleet.scheduler("scheduler");
    let worker = fleet.worker("worker", 2);
    // While echo runs on the worker, the scheduler's console API shows its steps (the
    // worker's progress notes over NATS).
    let address = wait_for("the scheduler's address", || {
        let log = scheduler.log();
        async move { api_address(&log) }
    })
    .await;
    let progress = wait_for("echo's steps in the scheduler's API", || {
        let body = http_get(&address, "/api/tenants/echo/progress");
        async move {
            let json: serde_json::Value =
                serde_json::from_str(body.split_once("\r\n\r\n")?.1).ok()?;
            let steps = json["steps"].as_array()?;
            (json["running"] == true && !steps.is_empty()).then_some(json)
        }
    })
    .await;
    assert!(
        progress["steps"][0]["step"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{progress}"
    );
    fleet.persisted("echo").await;
    let store = fleet.store.clone();
    let failed = wait_for("foxtrot's failed run", || {
        let store = store.clone();
        async move {
            runs(&*store, "foxtrot")
                .await
                .into_iter()
                .find(|r| r.status == RunStatus::Failure)
        }
    })
    .await;
    let log = worker.log();
    let error = failed.error.clone().unwrap_or_default();
    let subject = format!("{}.dead.foxtrot", fleet.namespace);
    assert!(
        error.starts_with(&format!("dead letter ({subject}): ")),
        "{error}\n{log}"
    );
    assert!(
        error.contains(&format!("the environment variable {missing} is not set")),
        "{error}"
    );
    assert!(!failed.persisted);

    // The dead letter itself: one message on the tenant's subject, with the error.
    let client = async_nats::connect(&fleet.nats).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut dead = js
        .get_stream(format!("{}_dead", fleet.namespace))
        .await
        .expect("dead-letter stream");
    let message = dead
        .get_last_raw_message_by_subject(&subject)
        .await
        .expect("a dead letter for foxtrot");
    let letter: serde_json::Value = serde_json::from_slice(&message.payload).expect("json");
    assert_eq!(letter["job"]["tenant"], "foxtrot");
    assert!(
        letter["error"]
            .as_str()
            .is_some_and(|e| e.contains(missing)),
        "{letter}"
    );
    assert_eq!(dead.info().await.expect("info").state.messages, 1);

    // `runs` on the operator's terminal.
    let shown = host(
        &["runs", "--tenant", "foxtrot", "--store", &fleet.store_url],
        "",
    )
    .output()
    .expect("runs");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("failure") && shown.contains(&format!("dead letter ({subject})")),
        "{shown}"
    );

    // The console reads the same run from the scheduler's API.
    let body = http_get(&address, "/api/tenants/foxtrot/runs");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("dead letter ("), "{body}");

    // Nothing of foxtrot is left to deliver, and echo ran normally.
    assert_eq!(fleet.jobs_left().await, 0, "{log}");
    let echo = runs_of(&*fleet.store, "echo").await;
    assert!(
        echo.iter()
            .any(|r| r.persisted && r.status == RunStatus::Success),
        "{echo:#?}"
    );
    fleet
        .record_outcome("dead letter", &["echo", "foxtrot"])
        .await;
}

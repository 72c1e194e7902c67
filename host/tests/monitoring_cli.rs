//! The monitoring loop from outside, with the real `integration-host` binary: a process
//! killed with SIGKILL in the middle of a persist loses nothing, and `serve` stops on
//! SIGTERM with exit 0 and resumes after a restart without running a tenant twice.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use jumpcloud_simulator::{Dataset, Mutation, Simulator, SimulatorConfig, TenantSpec};
use serde_json::Value;

/// A scratch directory per test, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("monitoring-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write scratch file");
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_integration-host"));
    command
        .args(args)
        .env(
            "INTEGRATION_HOST_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"),
        )
        .env_remove("JUMPCLOUD_API_KEY")
        .env_remove("INTEGRATION_HOST_TOKEN")
        .env_remove("GRAPH_STORE_FAILPOINT")
        .env("RUST_LOG", "warn");
    command
}

fn host(args: &[&str]) -> Output {
    command(args).output().expect("run integration-host")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

async fn simulator(users: usize) -> Simulator {
    Simulator::start(SimulatorConfig {
        dataset: Dataset::Generated(TenantSpec {
            users,
            groups: 4,
            applications: 3,
            ..TenantSpec::default()
        }),
        ..SimulatorConfig::default()
    })
    .await
    .expect("start simulator")
}

/// A child whose stdout and stderr are drained line by line (a pipe nobody reads would
/// block or break it), killed on drop so a failed assertion leaves no process behind.
struct Running {
    child: Child,
    stdout: std::sync::mpsc::Receiver<String>,
    stderr: std::sync::mpsc::Receiver<String>,
}

fn lines_of(pipe: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    lines_rx
}

impl Running {
    fn spawn(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn integration-host");
        let stdout = lines_of(child.stdout.take().expect("piped stdout"));
        let stderr = lines_of(child.stderr.take().expect("piped stderr"));
        Running {
            child,
            stdout,
            stderr,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first line of `lines` containing `needle` (or a panic at the deadline).
fn wait_for_line(
    lines: &std::sync::mpsc::Receiver<String>,
    needle: &str,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    let mut seen = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => panic!("no line with {needle:?} within {within:?}; saw:\n{seen}"),
        }
    }
}

fn runs(tenant: &str, store: &str) -> Vec<Value> {
    let output = host(&["runs", "--tenant", tenant, "--store", store, "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let value: Value = serde_json::from_slice(&output.stdout).expect("runs --json");
    value.as_array().expect("array of runs").clone()
}

/// The objects of an exported graph by kind and `_key` (file names are fresh UUIDs on
/// every export; the objects are what must not change).
type Exported = BTreeMap<(String, String), Value>;

fn exported(tenant: &str, store: &str, dir: &Path) -> Exported {
    let _ = std::fs::remove_dir_all(dir);
    let output = host(&[
        "export",
        "--tenant",
        tenant,
        "--store",
        store,
        "--output",
        s(dir),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut objects = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).expect("read export dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let file: Value =
                    serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
                for kind in ["entities", "relationships"] {
                    for object in file[kind].as_array().into_iter().flatten() {
                        let key = object["_key"].as_str().expect("_key").to_owned();
                        objects.insert((kind.to_owned(), key), object.clone());
                    }
                }
            }
        }
    }
    assert!(!objects.is_empty(), "the export holds no objects");
    objects
}

fn count(objects: &Exported, kind: &str) -> usize {
    objects.keys().filter(|(k, _)| k == kind).count()
}

/// Equal graphs, or a panic naming the objects that differ (not two whole graphs).
fn assert_same_graph(expected: &Exported, actual: &Exported) {
    let differing: Vec<_> = expected
        .keys()
        .chain(actual.keys())
        .filter(|key| expected.get(*key) != actual.get(*key))
        .take(10)
        .collect();
    assert!(differing.is_empty(), "objects differ: {differing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_in_the_middle_of_its_persist_loses_nothing() {
    let sim = simulator(40).await;
    let scratch = Scratch::new("crash");
    let config = scratch.file(
        "tenant.toml",
        &format!(
            "tenant = \"crash\"\n[integration]\napiKey = \"{}\"\nbaseUrl = \"{}\"\n",
            sim.api_key(),
            sim.base_url()
        ),
    );
    let out = scratch.path("out");
    let store = format!("sqlite://{}", s(&scratch.path("store.db")));
    let run_args = [
        "run",
        "--config",
        s(&config),
        "--output",
        s(&out),
        "--store",
        &store,
    ];

    let first = host(&run_args);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let before = exported("crash", &store, &scratch.path("before"));

    let mutation = sim.apply_mutation(Mutation::Standard).expect("mutation");
    assert!(!mutation.added_users.is_empty());

    // The second run stops just before its commit; it is killed there with SIGKILL.
    let mut second = command(&run_args);
    second.env("GRAPH_STORE_FAILPOINT", "persist-before-commit");
    let mut second = Running::spawn(second);
    wait_for_line(
        &second.stderr,
        "failpoint persist-before-commit",
        Duration::from_secs(180),
    );
    second.child.kill().expect("SIGKILL");
    let status = second.child.wait().expect("wait");
    assert!(!status.success(), "killed: {status:?}");

    // The store opens, its graph is the first run's, to the byte of every object.
    let after_crash = exported("crash", &store, &scratch.path("after-crash"));
    assert_same_graph(&before, &after_crash);
    let listed = runs("crash", &store);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let killed = &listed[0];
    assert_eq!(killed["persisted"], false, "{killed}");
    assert_ne!(killed["status"], "success", "{killed}");
    assert_eq!(listed[1]["status"], "success");
    assert_eq!(listed[1]["persisted"], true);

    // The next run persists the mutation as its change set, against the intact graph.
    let third = host(&run_args);
    assert!(third.status.success(), "{}", text(&third.stderr));
    let listed = runs("crash", &store);
    let newest = &listed[0];
    assert_eq!(newest["status"], "success", "{newest}");
    assert_eq!(newest["persisted"], true);
    assert_eq!(newest["baseline"], false);
    let created_entities = newest["changes"]["entities"]["created"].as_u64();
    // New users, each with its employee Person.
    assert_eq!(
        created_entities,
        Some(2 * mutation.added_users.len() as u64),
        "{newest}"
    );
    let deleted_entities = newest["changes"]["entities"]["deleted"].as_u64();
    assert_eq!(
        deleted_entities,
        Some(mutation.deleted_groups.len() as u64),
        "{newest}"
    );
    let after = exported("crash", &store, &scratch.path("after"));
    assert_eq!(
        count(&after, "entities"),
        count(&before, "entities") + 2 * mutation.added_users.len() - mutation.deleted_groups.len()
    );
}

/// Starts `serve` and returns it with the address it listens on.
fn start_serve(
    tenants: &Path,
    store: &str,
    out: &Path,
    failpoint: Option<&str>,
) -> (Running, String) {
    let mut command = command(&[
        "serve",
        "--tenants",
        s(tenants),
        "--store",
        store,
        "--output",
        s(out),
        "--listen",
        "127.0.0.1:0",
        "--grace-seconds",
        "30",
    ]);
    if let Some(failpoint) = failpoint {
        command.env("GRAPH_STORE_FAILPOINT", failpoint);
    }
    let serve = Running::spawn(command);
    let line = wait_for_line(&serve.stdout, "http://", Duration::from_secs(120));
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (serve, address)
}

/// GET over a plain loopback connection: the status line and the body.
fn get(address: &str, path: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(address).expect("connect to serve");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn terminate(mut serve: Running) -> std::process::ExitStatus {
    let pid = serve.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = serve.child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_survives_sigkill_and_sigterm_and_never_runs_a_tenant_twice() {
    let sim = simulator(20).await;
    let scratch = Scratch::new("serve");
    let authority = sim.base_url().replace("http://", "");
    let tenants = scratch.file(
        "tenants.toml",
        &format!(
            "maxConcurrentTenants = 2\n[[tenant]]\ntenant = \"acme\"\npollingInterval = \"ONE_DAY\"\n\
             [tenant.integration]\napiKey = \"{}\"\nbaseUrl = \"{}\"\n\
             [tenant.sandbox]\nallowedHosts = [\"{authority}\"]\n",
            sim.api_key(),
            sim.base_url()
        ),
    );
    let out = scratch.path("out");
    let store = format!("sqlite://{}", s(&scratch.path("store.db")));

    // A first serve is killed (SIGKILL) in the middle of its first persist.
    let (killed, _) = start_serve(&tenants, &store, &out, Some("persist-before-commit"));
    wait_for_line(
        &killed.stderr,
        "failpoint persist-before-commit",
        Duration::from_secs(180),
    );
    drop(killed);
    let listed = runs("acme", &store);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["persisted"], false);

    // The restarted serve marks that run abandoned and, nothing being persisted yet,
    // runs the tenant at once.
    let (serve, address) = start_serve(&tenants, &store, &out, None);
    wait_until(Duration::from_secs(180), "a persisted run", || {
        runs("acme", &store)
            .iter()
            .any(|run| run["status"] == "success" && run["persisted"] == true)
    });
    let (status, body) = get(&address, "/api/tenants/acme/runs");
    assert!(status.contains("200"), "{status}: {body}");
    let listed = runs("acme", &store);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[1]["status"], "abandoned", "{listed:?}");
    let exit = terminate(serve);
    assert_eq!(exit.code(), Some(0), "SIGTERM is a clean stop: {exit:?}");

    // Started again within the polling interval, serve resumes from the store: the
    // tenant's last run is recent, so it is not run again.
    let (serve, address) = start_serve(&tenants, &store, &out, None);
    let (status, _) = get(&address, "/api/tenants");
    assert!(status.contains("200"), "{status}");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(runs("acme", &store).len(), 2, "a second run after restart");
    let exit = terminate(serve);
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

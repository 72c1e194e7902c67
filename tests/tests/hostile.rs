//! The sandbox, tested with a plugin that misbehaves on purpose (`hostile-guest/`): each
//! misbehaviour is contained with a named error, and a benign JumpCloud tenant running
//! beside them in the same `run-all` produces its full graph.
//!
//! Two tests run in a child process, the test binary started again with an environment
//! variable naming the part to run: the egress test inside a network namespace of its
//! own (`unshare -rn`), where the addresses the plugin aims at exist on loopback with
//! canary listeners, so nothing can leave the machine even if the guard broke; and the
//! memory test, whose child's peak RSS is read from `/proc` and which is killed before
//! it could hurt the machine.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use integration_host::config::TenantsConfig;
use integration_host::run_all::{self, DefaultComponent, RunAllError, RunAllReport, TenantOutcome};
use integration_host::runtime::{Runtime, RuntimeOptions};
use integration_host::services::NoProgress;
use integration_host::steps::JobStatus;
use jumpcloud_simulator::{Dataset, Simulator, SimulatorConfig, TenantSpec};
use serde_json::Value;

const HOSTILE: &str = env!("HOSTILE_GUEST_WASM");
const CLIMB_OUT: &str = env!("HOSTILE_CLIMB_OUT_WASM");
const SECRET: &str = "hostile-secret-token-9d8c7b6a5f4e";
/// Names the part a re-executed test binary runs.
const CHILD_PART: &str = "HOSTILE_TEST_CHILD_PART";

/// Everything the process logs, to grep for secrets and terminal control.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }
}

fn capture_logs() -> Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        logs
    })
    .clone()
}

fn hostile_tenant(name: &str, behavior: &str, sandbox: &str) -> String {
    format!(
        "[[tenant]]\ntenant = \"{name}\"\ncomponent = \"{HOSTILE}\"\n[tenant.integration]\nbehavior = \"{behavior}\"\ntoken = \"{SECRET}\"\n[tenant.sandbox]\n{sandbox}\n"
    )
}

/// A simulator of a small tenant, and the `[[tenant]]` table of a benign tenant reading it.
async fn benign() -> (Simulator, String) {
    let simulator = Simulator::start(SimulatorConfig {
        dataset: Dataset::Generated(TenantSpec {
            users: 120,
            groups: 5,
            applications: 3,
            ..TenantSpec::default()
        }),
        ..SimulatorConfig::default()
    })
    .await
    .expect("start simulator");
    let authority = simulator
        .base_url()
        .trim_start_matches("http://")
        .to_owned();
    let table = format!(
        "[[tenant]]\ntenant = \"benign\"\n[tenant.integration]\napiKey = \"{}\"\nbaseUrl = \"{}\"\n[tenant.sandbox]\nallowedHosts = [\"{authority}\"]\n",
        simulator.api_key(),
        simulator.base_url()
    );
    (simulator, table)
}

async fn run_tenants(file: &str, output: &Path) -> Result<RunAllReport, RunAllError> {
    let tenants = TenantsConfig::parse(Path::new("tenants.toml"), file).expect("tenants file");
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache")),
    })
    .expect("runtime");
    run_all::run_all(
        &runtime,
        &tenants,
        DefaultComponent {
            name: "bundled",
            bytes: integration_host::BUNDLED_COMPONENT,
        },
        output,
        Arc::new(NoProgress),
    )
    .await
}

fn outcome<'a>(outcomes: &'a [TenantOutcome], tenant: &str) -> &'a TenantOutcome {
    outcomes
        .iter()
        .find(|o| o.tenant == tenant)
        .unwrap_or_else(|| panic!("no outcome for {tenant}"))
}

fn error_of(outcomes: &[TenantOutcome], tenant: &str) -> String {
    outcome(outcomes, tenant).error.clone().unwrap_or_default()
}

fn summary(output: &Path, tenant: &str) -> Value {
    let path = output.join(tenant).join("summary.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_slice(&bytes).expect("summary.json is JSON")
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(all_files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// The objects of `kind` (`entities`, `relationships`) in a tenant's output files.
fn objects_written(output: &Path, tenant: &str, kind: &str) -> usize {
    all_files(&output.join(tenant).join("graph"))
        .iter()
        .filter(|path| path.parent().is_some_and(|dir| dir.ends_with(kind)))
        .map(|path| {
            let document: Value =
                serde_json::from_slice(&std::fs::read(path).expect("read")).expect("JSON file");
            document[kind].as_array().map_or(0, Vec::len)
        })
        .sum()
}

/// The benign tenant's graph holds every user, group and application of its simulator.
fn assert_benign_whole(outcomes: &[TenantOutcome], output: &Path, simulator: &Simulator) {
    let benign = outcome(outcomes, "benign");
    assert_eq!(benign.status, JobStatus::Success, "{benign:?}");
    let org = simulator.tenant().organizations()[0].clone();
    let summary = summary(output, "benign");
    let counts = |step: usize, ty: &str| {
        summary["integrationStepResults"][step]["encounteredTypeCounts"][ty].as_u64()
    };
    assert_eq!(counts(1, "jumpcloud_user"), Some(org.user_count() as u64));
    assert_eq!(counts(2, "jumpcloud_group"), Some(org.group_count() as u64));
    assert_eq!(
        counts(4, "jumpcloud_application"),
        Some(org.application_count() as u64)
    );
}

/// Loop, memory bomb, log flood, panic, a look at files and environment, a secret leak,
/// floods of job data and entities, giant log lines, terminal control, bottomless
/// recursion, raw data nested a million deep, a `_type` with a path in it: all
/// contained, each with a named error, side by side with a benign tenant whose graph
/// comes out whole.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_plugins_are_contained_and_a_benign_neighbour_is_unharmed() {
    let logs = capture_logs();
    let (simulator, benign) = benign().await;
    let mut file = String::from("maxConcurrentTenants = 16\n");
    file.push_str(&benign);
    file.push_str(&hostile_tenant("spin", "spin", "timeoutSeconds = 2"));
    file.push_str(&hostile_tenant("bomb", "memory-bomb", "memoryMiB = 32"));
    file.push_str(&hostile_tenant("flood", "log-flood", "maxLogLines = 50"));
    file.push_str(&hostile_tenant("panic", "panic", ""));
    file.push_str(&hostile_tenant("probe", "probe-sandbox", ""));
    file.push_str(&hostile_tenant("leak", "leak-secret", ""));
    file.push_str(&hostile_tenant("data", "data-flood", "maxJobDataMiB = 8"));
    file.push_str(&hostile_tenant(
        "entities",
        "entity-flood",
        "maxGraphObjects = 20000",
    ));
    file.push_str(&hostile_tenant("giant", "log-giant", ""));
    file.push_str(&hostile_tenant("control", "control-chars", ""));
    file.push_str(&hostile_tenant("recursion", "deep-recursion", ""));
    file.push_str(&hostile_tenant("deep", "deep-json", ""));
    file.push_str(&hostile_tenant("climb", "climb-type", ""));
    let output = tempfile::tempdir().expect("temp dir");
    let report = run_tenants(&file, output.path())
        .await
        .expect("run-all starts");
    let outcomes = &report.tenants;
    assert_eq!(outcomes.len(), 14);
    assert_benign_whole(outcomes, output.path(), &simulator);

    // Each hostile tenant: contained, with a named error.
    let expect = |tenant: &str, needles: &[&str]| {
        let error = error_of(outcomes, tenant);
        for needle in needles {
            assert!(error.contains(needle), "{tenant}: {error}");
        }
        assert_eq!(
            outcome(outcomes, tenant).status,
            JobStatus::Failure,
            "{tenant}"
        );
    };
    expect("spin", &["time-limit"]);
    expect("bomb", &["memory-limit"]);
    expect("panic", &["trap"]);
    expect("leak", &["authentication"]);
    expect(
        "data",
        &["limit-exceeded: limit exceeded: job data 8 MiB (sandbox.maxJobDataMiB)"],
    );
    expect(
        "entities",
        &["limit-exceeded: limit exceeded: graph objects 20000 (sandbox.maxGraphObjects)"],
    );
    expect("recursion", &["trap"]);
    expect("deep", &["graph", "raw-data nests deeper than 64 levels"]);
    expect("climb", &["graph", "_type", "must match"]);
    let probe = error_of(outcomes, "probe");
    assert!(probe.contains("root=denied passwd=denied"), "{probe}");
    assert!(
        probe.contains("env=0"),
        "the environment leaked in: {probe}"
    );

    // What the entity flood stored before its budget ran out is kept and written.
    let entities = summary(output.path(), "entities");
    assert_eq!(
        entities["integrationStepResults"][0]["encounteredTypeCounts"]["hostile_thing"],
        20000
    );
    assert_eq!(entities["run"]["error"]["kind"], "limit-exceeded");
    assert_eq!(
        entities["metadata"]["partialDatasets"]["types"],
        serde_json::json!(["hostile_thing"])
    );
    assert_eq!(
        objects_written(output.path(), "entities", "entities"),
        20000
    );
    assert!(
        all_files(&output.path().join("climb")).len() <= 1,
        "nothing but the summary"
    );

    // The log flood ran to completion but the host kept only its budget.
    let flood = summary(output.path(), "flood");
    assert_eq!(flood["run"]["status"], "success");
    assert_eq!(flood["run"]["logLinesDropped"], 200_000 - 50);
    let text = logs.text();
    assert_eq!(text.matches("plugin: flood line").count(), 50);

    // Giant lines: every one of the 400 written, each cut to 4 KiB with a marker.
    let giant = summary(output.path(), "giant");
    assert_eq!(giant["run"]["status"], "success");
    let giant_lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("tenant=\"giant\"") && line.contains("mmmm"))
        .collect();
    assert_eq!(giant_lines.len(), 400);
    for line in &giant_lines {
        assert!(line.len() < 4096 + 300, "{} bytes", line.len());
        assert!(
            line.contains("…[truncated: 16777225 bytes in all]"),
            "{}",
            &line[line.len() - 80..]
        );
    }

    // Terminal control: printed inert, one plugin line one log line; the summary keeps
    // the plugin's text as data.
    assert!(!text.contains('\u{1b}'), "an ESC reached the log");
    assert!(!text.contains('\r'), "a carriage return reached the log");
    assert!(
        !text.contains('\u{202e}'),
        "a bidi override reached the log"
    );
    assert!(
        !text.lines().any(|line| line.starts_with("2030-01-01")),
        "a plugin forged a log line"
    );
    assert!(text.contains("\\u{1b}[2J"), "the escape is shown, escaped");
    let control = summary(output.path(), "control");
    let message = control["integrationStepResults"][0]["error"]["message"]
        .as_str()
        .expect("message");
    assert!(message.contains("\u{1b}[2J") && message.contains('\n'));

    // No secret reached a log line, a summary or the graph.
    assert!(
        text.contains("the token is [REDACTED]"),
        "the leak attempt was logged, redacted"
    );
    assert!(!text.contains(SECRET), "the secret reached the logs");
    for file in all_files(output.path()) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            !text.contains(SECRET),
            "the secret reached {}",
            file.display()
        );
    }
    let leak_graph: Vec<_> = all_files(&output.path().join("leak/graph"));
    assert!(
        !leak_graph.is_empty(),
        "the leak tenant's entity was stored (scrubbed)"
    );
    assert!(simulator.requests().iter().all(|r| r.api_key_valid));
}

/// A plugin whose `describe()` declares the step id `../../../escaped` is refused when
/// it is loaded, naming the field and the pattern; nothing is written anywhere.
#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_whose_step_id_climbs_out_of_the_output_folder_is_refused_at_load() {
    let (_simulator, benign) = benign().await;
    let root = tempfile::tempdir().expect("temp dir");
    let output = root.path().join("a/b/out");
    let file = format!(
        "{benign}[[tenant]]\ntenant = \"climber\"\ncomponent = \"{CLIMB_OUT}\"\n[tenant.integration]\nbehavior = \"leak-secret\"\n"
    );
    let error = run_tenants(&file, &output).await.unwrap_err().to_string();
    assert!(error.contains("steps[0].id"), "{error}");
    assert!(error.contains("\"../../../escaped\""), "{error}");
    assert!(error.contains("^[a-z0-9][a-z0-9_-]{0,63}$"), "{error}");
    assert!(
        all_files(root.path()).is_empty(),
        "nothing written: {:?}",
        all_files(root.path())
    );
}

// ---------------------------------------------------------------------------------
// Tests that run in a child process
// ---------------------------------------------------------------------------------

/// Runs this test binary again, only the test `name`, with `CHILD_PART` set to `name`,
/// behind `wrapper` (for example `unshare -rn`); returns its output. A watchdog kills the
/// child when its resident memory passes `kill_above_bytes`; the peak it saw is returned.
fn run_child(name: &str, wrapper: &[&str], kill_above_bytes: u64) -> (std::process::Output, u64) {
    let exe = std::env::current_exe().expect("the test binary");
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(&exe);
            command
        }
        None => Command::new(&exe),
    };
    command
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_PART, name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("start the child test");
    let pid = child.id();
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                // The wrapper (`unshare`) execs the test binary; look at the whole tree.
                for pid in process_tree(pid) {
                    let rss = proc_status_bytes(pid, "VmRSS").unwrap_or(0);
                    peak.fetch_max(
                        proc_status_bytes(pid, "VmHWM").unwrap_or(0),
                        Ordering::Relaxed,
                    );
                    if rss > kill_above_bytes {
                        eprintln!("the child uses {} MiB: killed", rss >> 20);
                        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let output = child.wait_with_output().expect("the child test ends");
    done.store(true, Ordering::Relaxed);
    watchdog.join().expect("watchdog");
    (output, peak.load(Ordering::Relaxed))
}

/// `pid` and its descendants.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut tree = vec![pid];
    let mut index = 0;
    while index < tree.len() {
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", tree[index]))
            .unwrap_or_default();
        tree.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
        index += 1;
    }
    tree
}

/// A `kB` field of `/proc/<pid>/status`, in bytes.
fn proc_status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    own_status_field(&status, field)
}

fn own_status_field(status: &str, field: &str) -> Option<u64> {
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn assert_child_passed(name: &str, output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{name} failed in its child process ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn in_child(name: &str) -> bool {
    std::env::var(CHILD_PART).is_ok_and(|part| part == name)
}

/// Egress to an address off the allowlist and to the metadata address never leaves the
/// sandbox. Run in a network namespace of the test's own, where 203.0.113.7 and
/// 169.254.169.254 sit on loopback with canary listeners: if the guard ever broke, the
/// request would land on a canary, not on the network. A tenant that lists 203.0.113.7
/// shows the canary would see it.
#[test]
fn egress_attempts_never_leave_the_sandbox() {
    const NAME: &str = "egress_attempts_never_leave_the_sandbox";
    if in_child(NAME) {
        return egress_in_namespace();
    }
    let probe = Command::new("unshare")
        .args(["-rn", "true"])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|status| status.success()) {
        eprintln!(
            "SKIPPED {NAME}: `unshare -rn` is not permitted here, and this test sends real packets only inside a namespace of its own"
        );
        return;
    }
    let (output, _) = run_child(NAME, &["unshare", "-rn"], 3 << 30);
    assert_child_passed(NAME, &output);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("egress-checked-in-namespace"),
        "the child did not run the checks"
    );
}

fn egress_in_namespace() {
    for args in [
        &["link", "set", "lo", "up"][..],
        &["addr", "add", "169.254.169.254/32", "dev", "lo"],
        &["addr", "add", "203.0.113.7/32", "dev", "lo"],
    ] {
        let status = Command::new("ip").args(args).status().expect("run ip");
        assert!(status.success(), "ip {args:?}");
    }
    tokio::runtime::Runtime::new()
        .expect("tokio")
        .block_on(async {
            let metadata = Canary::start("169.254.169.254:80").await;
            let outside = Canary::start("203.0.113.7:80").await;
            let (simulator, benign) = benign().await;
            let mut file = String::from("maxConcurrentTenants = 8\n");
            file.push_str(&benign);
            file.push_str(&hostile_tenant("outside", "egress-outside", ""));
            file.push_str(&hostile_tenant(
                "metadata",
                "egress-metadata",
                "allowedHosts = [\"169.254.169.254\"]",
            ));
            // The control: an address the operator listed is reached, and counted.
            file.push_str(&hostile_tenant(
                "listed",
                "egress-outside",
                "allowedHosts = [\"203.0.113.7\"]",
            ));
            let output = tempfile::tempdir().expect("temp dir");
            let report = run_tenants(&file, output.path())
                .await
                .expect("run-all starts");
            let outcomes = &report.tenants;
            assert_benign_whole(outcomes, output.path(), &simulator);
            for tenant in ["outside", "metadata"] {
                let error = error_of(outcomes, tenant);
                assert!(error.contains("egress-denied"), "{tenant}: {error}");
                assert_eq!(outcome(outcomes, tenant).status, JobStatus::Failure);
            }
            assert!(error_of(outcomes, "outside").contains("203.0.113.7"));
            assert!(
                error_of(outcomes, "listed").contains("the sandbox let it through"),
                "{}",
                error_of(outcomes, "listed")
            );
            assert_eq!(metadata.hits(), 0, "a request reached the metadata address");
            assert_eq!(
                outside.hits(),
                1,
                "only the listed tenant's request reached 203.0.113.7"
            );
        });
    println!("egress-checked-in-namespace");
}

/// A listener that answers every HTTP request with 200 and counts the connections.
struct Canary {
    hits: Arc<AtomicU64>,
}

impl Canary {
    async fn start(address: &str) -> Canary {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .unwrap_or_else(|error| panic!("canary on {address}: {error}"));
        let hits = Arc::new(AtomicU64::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buffer = [0u8; 4096];
                    let _ = stream.read(&mut buffer).await;
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\ncanary")
                        .await;
                });
            }
        });
        Canary { hits }
    }

    fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The floods at the default budgets (job data to 64 MiB, the graph index to 256 MiB
/// with 4 KiB keys, 400 log lines of 16 MiB), beside a benign tenant, in a child process
/// whose peak resident memory (`VmHWM`) must stay far below 1 GiB. Before the budgets,
/// the job-data flood alone took the host to 7-9 GiB. (The flood of small entities
/// reaches its default budget too slowly for a debug build: the suite above holds it at
/// `maxGraphObjects = 20000`.)
#[test]
fn hostile_floods_hold_the_host_far_below_one_gib() {
    const NAME: &str = "hostile_floods_hold_the_host_far_below_one_gib";
    const CEILING: u64 = 768 << 20;
    if in_child(NAME) {
        return floods_at_default_budgets();
    }
    let (output, watched_peak) = run_child(NAME, &[], 2 << 30);
    assert_child_passed(NAME, &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let reported: u64 = stdout
        .lines()
        .find_map(|line| Some(line.split_once("peak-rss-bytes=")?.1))
        .and_then(|n| n.trim().parse().ok())
        .expect("the child reports its peak RSS");
    let peak = reported.max(watched_peak);
    eprintln!("peak RSS of the host with the floods: {} MiB", peak >> 20);
    assert!(
        peak < CEILING,
        "peak RSS {} MiB, over {} MiB",
        peak >> 20,
        CEILING >> 20
    );
}

fn floods_at_default_budgets() {
    // Log lines go nowhere but are formatted, as they would be on a terminal.
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_writer(std::io::sink)
        .init();
    tokio::runtime::Runtime::new()
        .expect("tokio")
        .block_on(async {
            let (simulator, benign) = benign().await;
            let mut file = String::from("maxConcurrentTenants = 8\n");
            file.push_str(&benign);
            file.push_str(&hostile_tenant(
                "data",
                "data-flood",
                "timeoutSeconds = 120",
            ));
            file.push_str(&hostile_tenant("keys", "key-flood", "timeoutSeconds = 120"));
            file.push_str(&hostile_tenant(
                "giant",
                "log-giant",
                "timeoutSeconds = 120",
            ));
            let output = tempfile::tempdir().expect("temp dir");
            let report = run_tenants(&file, output.path())
                .await
                .expect("run-all starts");
            let outcomes = &report.tenants;
            assert_benign_whole(outcomes, output.path(), &simulator);
            assert!(
                error_of(outcomes, "data").contains("(sandbox.maxJobDataMiB)"),
                "{}",
                error_of(outcomes, "data")
            );
            assert!(
                error_of(outcomes, "keys").contains("(sandbox.maxGraphMiB)"),
                "{}",
                error_of(outcomes, "keys")
            );
            assert_eq!(outcome(outcomes, "giant").status, JobStatus::Success);
            for outcome in outcomes {
                println!("{}: {} ms", outcome.tenant, outcome.duration_ms);
            }
        });
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let peak = own_status_field(&status, "VmHWM").expect("VmHWM");
    println!("peak-rss-bytes={peak}");
}

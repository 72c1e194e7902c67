//! The sandbox, tested with a plugin that misbehaves on purpose (`hostile-guest/`):
//! each misbehaviour is contained with a named error, and a benign JumpCloud tenant
//! running beside them in the same `run-all` produces its full graph.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use integration_host::config::TenantsConfig;
use integration_host::run_all::{self, DefaultComponent, TenantOutcome};
use integration_host::runtime::{Runtime, RuntimeOptions};
use integration_host::services::NoProgress;
use integration_host::steps::JobStatus;
use jumpcloud_simulator::{Dataset, Simulator, SimulatorConfig, TenantSpec};

const HOSTILE: &str = env!("HOSTILE_GUEST_WASM");
const SECRET: &str = "hostile-secret-token-9d8c7b6a5f4e";

/// Everything the process logs, to grep for secrets.
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

fn outcome<'a>(outcomes: &'a [TenantOutcome], tenant: &str) -> &'a TenantOutcome {
    outcomes
        .iter()
        .find(|o| o.tenant == tenant)
        .unwrap_or_else(|| panic!("no outcome for {tenant}"))
}

fn error_of(outcomes: &[TenantOutcome], tenant: &str) -> String {
    outcome(outcomes, tenant).error.clone().unwrap_or_default()
}

fn all_files(dir: &Path) -> Vec<std::path::PathBuf> {
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

/// Loop, memory bomb, egress outside the allowlist, the metadata address, a log flood,
/// a panic, a look at files and environment, a secret leak: all contained, side by side
/// with a benign tenant whose graph comes out whole.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_plugins_are_contained_and_a_benign_neighbour_is_unharmed() {
    let logs = capture_logs();
    let spec = TenantSpec {
        users: 120,
        groups: 5,
        applications: 3,
        ..TenantSpec::default()
    };
    let simulator = Simulator::start(SimulatorConfig {
        dataset: Dataset::Generated(spec.clone()),
        ..SimulatorConfig::default()
    })
    .await
    .expect("start simulator");
    let authority = simulator
        .base_url()
        .trim_start_matches("http://")
        .to_owned();

    let mut file = String::from("maxConcurrentTenants = 9\n");
    file.push_str(&format!(
        "[[tenant]]\ntenant = \"benign\"\n[tenant.integration]\napiKey = \"{}\"\nbaseUrl = \"{}\"\n[tenant.sandbox]\nallowedHosts = [\"{authority}\"]\n",
        simulator.api_key(),
        simulator.base_url()
    ));
    file.push_str(&hostile_tenant("spin", "spin", "timeoutSeconds = 2"));
    file.push_str(&hostile_tenant("bomb", "memory-bomb", "memoryMiB = 32"));
    file.push_str(&hostile_tenant("outside", "egress-outside", ""));
    file.push_str(&hostile_tenant(
        "metadata",
        "egress-metadata",
        "allowedHosts = [\"169.254.169.254\"]",
    ));
    file.push_str(&hostile_tenant("flood", "log-flood", "maxLogLines = 50"));
    file.push_str(&hostile_tenant("panic", "panic", ""));
    file.push_str(&hostile_tenant("probe", "probe-sandbox", ""));
    file.push_str(&hostile_tenant("leak", "leak-secret", ""));
    let tenants = TenantsConfig::parse(Path::new("tenants.toml"), &file).expect("tenants file");

    let output = tempfile::tempdir().expect("temp dir");
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache")),
    })
    .expect("runtime");
    let report = run_all::run_all(
        &runtime,
        &tenants,
        DefaultComponent {
            name: "bundled",
            bytes: integration_host::BUNDLED_COMPONENT,
        },
        output.path(),
        Arc::new(NoProgress),
    )
    .await
    .expect("run-all starts");
    let outcomes = &report.tenants;
    assert_eq!(outcomes.len(), 9);

    // The benign tenant: every user, group and application of the simulator.
    let benign = outcome(outcomes, "benign");
    assert_eq!(benign.status, JobStatus::Success, "{benign:?}");
    let org = simulator.tenant().organizations()[0].clone();
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(output.path().join("benign/summary.json")).expect("benign summary"),
    )
    .expect("json");
    let counts = |step: usize, ty: &str| {
        summary["integrationStepResults"][step]["encounteredTypeCounts"][ty].as_u64()
    };
    assert_eq!(counts(1, "jumpcloud_user"), Some(org.user_count() as u64));
    assert_eq!(counts(2, "jumpcloud_group"), Some(org.group_count() as u64));
    assert_eq!(
        counts(4, "jumpcloud_application"),
        Some(org.application_count() as u64)
    );

    // Each hostile tenant: contained, with a named error.
    assert!(
        error_of(outcomes, "spin").contains("time-limit"),
        "{}",
        error_of(outcomes, "spin")
    );
    assert!(
        error_of(outcomes, "bomb").contains("memory-limit"),
        "{}",
        error_of(outcomes, "bomb")
    );
    assert!(
        error_of(outcomes, "outside").contains("egress-denied"),
        "{}",
        error_of(outcomes, "outside")
    );
    assert!(error_of(outcomes, "outside").contains("203.0.113.7"));
    assert!(
        error_of(outcomes, "metadata").contains("egress-denied"),
        "{}",
        error_of(outcomes, "metadata")
    );
    assert!(
        error_of(outcomes, "panic").contains("trap"),
        "{}",
        error_of(outcomes, "panic")
    );
    let probe = error_of(outcomes, "probe");
    assert!(probe.contains("root=denied passwd=denied"), "{probe}");
    assert!(
        probe.contains("env=0"),
        "the environment leaked in: {probe}"
    );
    for tenant in [
        "spin", "bomb", "outside", "metadata", "panic", "probe", "leak",
    ] {
        assert_eq!(
            outcome(outcomes, tenant).status,
            JobStatus::Failure,
            "{tenant}"
        );
    }

    // The log flood ran to completion but the host kept only its budget.
    let flood: serde_json::Value = serde_json::from_slice(
        &std::fs::read(output.path().join("flood/summary.json")).expect("flood summary"),
    )
    .expect("json");
    assert_eq!(flood["run"]["status"], "success");
    assert_eq!(flood["run"]["logLinesDropped"], 200_000 - 50);
    let flood_lines = String::from_utf8_lossy(&logs.0.lock().expect("logs"))
        .matches("flood line")
        .count();
    assert_eq!(flood_lines, 50);

    // Nothing escaped to the metadata address or outside: the simulator saw only the
    // benign tenant, and no secret reached a log line, a summary or the graph.
    assert!(simulator.requests().iter().all(|r| r.api_key_valid));
    let logs = String::from_utf8_lossy(&logs.0.lock().expect("logs")).into_owned();
    assert!(
        logs.contains("the token is [REDACTED]"),
        "the leak attempt was logged, redacted"
    );
    assert!(!logs.contains(SECRET), "the secret reached the logs");
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
}

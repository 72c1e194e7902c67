//! Edge case 8 of the directory addendum: the simulator seeds an administrator's API
//! key prefix (`apiKeyHash`), FDE keys, policy `values`, policy-run `stdOut` and every
//! system's `remoteIP` and connection history; none of them may reach the output or
//! the logs, and the routes that hold them are never called.
//!
//! Its own test binary: it installs a process-wide log capture at trace level.

use std::io::Write;
use std::sync::{Arc, Mutex};

use integration_tests::{Setup, assert_no_file_contains, run};
use jumpcloud_simulator::{FAKE_SECRET_MARKER, TenantSpec};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_secrets_reach_neither_output_nor_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let run = run(Setup::generated(TenantSpec {
        users: 120,
        groups: 6,
        applications: 3,
        ..TenantSpec::default()
    }))
    .await;
    run.assert_success();
    let tenant = run.simulator.tenant();
    let org = &tenant.organizations()[0];

    // The secrets are there to be leaked.
    let served = |items: Vec<serde_json::Value>| serde_json::Value::Array(items).to_string();
    assert!(served(org.administrators().collect()).contains(FAKE_SECRET_MARKER));
    assert!(served(org.systems().collect()).contains("198.51.100."));
    let policy = org.policies().next().expect("a policy");
    let statuses = org
        .served_items(
            &format!(
                "/api/v2/policies/{}/policystatuses",
                policy["id"].as_str().unwrap()
            ),
            None,
        )
        .expect("statuses");
    assert!(served(statuses).contains(FAKE_SECRET_MARKER));
    assert!(
        run.graph.entities_of_type("jumpcloud_system").len() > 100
            && !run
                .graph
                .entities_of_type("jumpcloud_administrator")
                .is_empty()
            && !run
                .graph
                .relationships_of_type("jumpcloud_policy_enforces_system")
                .is_empty()
    );

    // None of them got out.
    for needle in [
        FAKE_SECRET_MARKER,
        "198.51.100.",
        "jca_",
        "apiKeyHash",
        "remoteIP",
        "connectionHistory",
    ] {
        assert_no_file_contains(run.output.path(), needle);
    }
    let logs = String::from_utf8_lossy(&logs.0.lock().expect("logs")).into_owned();
    assert!(
        logs.contains("fetch-system-users"),
        "the capture saw the run"
    );
    for needle in [FAKE_SECRET_MARKER, "198.51.100.", "jca_"] {
        assert!(!logs.contains(needle), "{needle} reached the logs");
    }
    assert_eq!(run.simulator.never_called(), Vec::<String>::new());
}

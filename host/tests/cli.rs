//! The command-line contract, checked from outside: exit status, what goes to stdout
//! and stderr, what is (not) written. Each test runs the real `integration-host` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jumpcloud_simulator::{Dataset, Simulator, SimulatorConfig, TenantSpec};

/// A scratch directory per test, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write scratch file");
        path
    }

    fn out(&self) -> PathBuf {
        self.0.join("out")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn host(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_integration-host"))
        .args(args)
        // One compiled-code cache for every test process: compile once.
        .env(
            "INTEGRATION_HOST_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"),
        )
        .env_remove("JUMPCLOUD_API_KEY")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run integration-host")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(config: &Path, output: &Path) -> Output {
    host(&["run", "--config", path(config), "--output", path(output)])
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

async fn simulator() -> Simulator {
    Simulator::start(SimulatorConfig {
        dataset: Dataset::Generated(TenantSpec {
            users: 30,
            groups: 4,
            applications: 3,
            ..TenantSpec::default()
        }),
        ..SimulatorConfig::default()
    })
    .await
    .expect("start simulator")
}

fn tenant_file(sim: &Simulator, extra: &str) -> String {
    format!(
        "tenant = \"cli\"\n[integration]\napiKey = \"{}\"\nbaseUrl = \"{}\"\n{extra}",
        sim.api_key(),
        sim.base_url()
    )
}

/// Every file under a directory, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// A good run exits 0, prints the summary on stdout and writes graph and summary.json.
#[tokio::test(flavor = "multi_thread")]
async fn run_against_the_simulator_succeeds_and_writes_the_graph() {
    let sim = simulator().await;
    let scratch = Scratch::new("ok");
    let config = scratch.file("tenant.toml", &tenant_file(&sim, ""));
    let output = run(&config, &scratch.out());
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        text(&output.stderr)
    );
    let stdout = text(&output.stdout);
    assert!(stdout.contains("tenant cli: success"), "{stdout}");
    assert!(stdout.contains("fetch-group-members"), "{stdout}");
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(scratch.out().join("summary.json")).expect("summary.json"),
    )
    .expect("json");
    assert_eq!(summary["run"]["status"], "success");
    assert!(files_under(&scratch.out().join("graph/fetch-users/entities")).len() >= 2);
}

/// Bad configuration: exit 2, one line naming file and field, nothing written.
#[tokio::test(flavor = "multi_thread")]
async fn bad_configuration_exits_2_names_the_field_and_writes_nothing() {
    let sim = simulator().await;
    let scratch = Scratch::new("badconfig");
    let cases = [
        (
            "unknown-field",
            tenant_file(&sim, "").replace("[integration]\n", "[integration]\napikey2 = \"x\"\n"),
            "integration.apikey2",
        ),
        (
            "missing-key",
            format!(
                "tenant = \"cli\"\n[integration]\nbaseUrl = \"{}\"\n",
                sim.base_url()
            ),
            "integration.apiKey",
        ),
        (
            "non-url",
            tenant_file(&sim, "").replace(&sim.base_url(), "console.jumpcloud.com"),
            "integration.baseUrl",
        ),
        (
            "sandbox",
            tenant_file(&sim, "[sandbox]\nmemoryMiB = 0\n"),
            "sandbox.memoryMiB",
        ),
        (
            "unknown-sandbox",
            tenant_file(&sim, "[sandbox]\ncpuSeconds = 3\n"),
            "sandbox.cpuSeconds",
        ),
        ("syntax", "tenant = \n".to_owned(), "tenant.toml"),
    ];
    for (name, contents, field) in cases {
        let config = scratch.file("tenant.toml", &contents);
        let out = scratch.0.join(format!("out-{name}"));
        let output = run(&config, &out);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains("tenant.toml"),
            "{name}: names the file: {stderr}"
        );
        assert!(stderr.contains(field), "{name}: names {field}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{name}: one line: {stderr}"
        );
        assert!(!out.exists(), "{name}: nothing written");
    }
    assert_eq!(sim.request_count(), 0, "no request for a bad configuration");
}

/// A file that is no component, a core module, a component of another world: exit 2,
/// naming the file.
#[test]
fn bad_components_exit_2_naming_the_file() {
    let scratch = Scratch::new("badcomponent");
    let config = scratch.file(
        "tenant.toml",
        "tenant = \"cli\"\n[integration]\napiKey = \"k\"\n",
    );
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "text.wasm",
            b"not wasm at all",
            "not a WebAssembly component",
        ),
        (
            "core.wasm",
            b"\0asm\x01\0\0\0",
            "not a WebAssembly component",
        ),
        // An empty component: valid, but it exports nothing of our world.
        (
            "empty-component.wasm",
            b"\0asm\x0d\0\x01\0",
            "does not implement",
        ),
    ];
    for (name, bytes, expected) in cases {
        let component = scratch.0.join(name);
        std::fs::write(&component, bytes).expect("write component");
        let out = scratch.0.join("out");
        let output = host(&[
            "run",
            "--config",
            path(&config),
            "--output",
            path(&out),
            "--component",
            path(&component),
        ]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains(expected),
            "{name}: {stderr}"
        );
        assert!(!out.exists(), "{name}: nothing written");
    }
    let missing = host(&[
        "describe",
        "--component",
        path(&scratch.0.join("missing.wasm")),
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("missing.wasm"));
}

/// A rejected key fails with exit 1 and a message about the API key, and the key is
/// nowhere in what the run printed or wrote.
#[tokio::test(flavor = "multi_thread")]
async fn rejected_key_fails_fast_and_never_shows_the_key() {
    let sim = simulator().await;
    let scratch = Scratch::new("badkey");
    let secret = "wrong-key-4f1c9e2b7a6d3c8e0f5a1b2c";
    let contents = tenant_file(&sim, "").replace(sim.api_key(), secret);
    let config = scratch.file("tenant.toml", &contents);
    let output = host(&[
        "run",
        "--config",
        path(&config),
        "--output",
        path(&scratch.out()),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(stdout.contains("API key"), "{stdout}");
    assert!(
        !stdout.contains(secret) && !stderr.contains(secret),
        "the key leaked to the terminal"
    );
    for file in files_under(&scratch.out()) {
        let contents = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            !contents.contains(secret),
            "the key leaked into {}",
            file.display()
        );
    }
    // 401 is not retried: validate's one request, nothing else.
    assert_eq!(sim.request_count(), 1, "{:?}", sim.requests());

    let validate = host(&["validate", "--config", path(&config)]);
    assert_eq!(validate.status.code(), Some(1));
    assert!(text(&validate.stderr).contains("API key"));
}

/// `validate` passes for good credentials and makes one request.
#[tokio::test(flavor = "multi_thread")]
async fn validate_accepts_good_credentials() {
    let sim = simulator().await;
    let scratch = Scratch::new("validate");
    let config = scratch.file("tenant.toml", &tenant_file(&sim, ""));
    let output = host(&["validate", "--config", path(&config)]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("valid"));
    assert_eq!(sim.request_count(), 1);
}

/// An allowlist without the configured host: a named egress error, exit 1, and the
/// server never sees a request.
#[tokio::test(flavor = "multi_thread")]
async fn allowlist_without_base_url_is_denied_before_any_byte_is_sent() {
    let sim = simulator().await;
    let scratch = Scratch::new("egress");
    let config = scratch.file(
        "tenant.toml",
        &tenant_file(
            &sim,
            "[sandbox]\nallowedHosts = [\"console.jumpcloud.com\"]\n",
        ),
    );
    let output = run(&config, &scratch.out());
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("egress-denied"), "{stdout}");
    assert!(
        stdout.contains(&sim.base_url().replace("http://", "")),
        "names the host: {stdout}"
    );
    assert_eq!(sim.request_count(), 0);
}

/// The cloud metadata address is refused even as the configured base URL.
#[test]
fn metadata_address_as_base_url_is_refused() {
    let scratch = Scratch::new("metadata");
    let config = scratch.file(
        "tenant.toml",
        "tenant = \"cli\"\n[integration]\napiKey = \"k\"\nbaseUrl = \"http://169.254.169.254\"\n",
    );
    let output = run(&config, &scratch.out());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stdout).contains("egress-denied"),
        "{}",
        text(&output.stdout)
    );
}

/// `describe` prints the configuration fields and every declared type.
#[test]
fn describe_lists_fields_and_types() {
    let output = host(&["describe"]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    for expected in [
        "apiKey",
        "JUMPCLOUD_API_KEY",
        "secret",
        "jumpcloud_user_is_person",
        "fetch-application-assignments",
        "jumpcloud_user_assigned_system",
        "fetch-system-users",
        "jumpcloud_apple_device",
        "ControlPolicy",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected} missing from: {stdout}"
        );
    }
}

/// Unknown subcommands and missing arguments are usage errors (exit 2).
#[test]
fn bad_usage_exits_2() {
    assert_eq!(host(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(host(&["run"]).status.code(), Some(2));
}

/// `run-all`: tenants side by side, each under DIR/<tenant>/, one's failure not touching
/// the other's output; exit 1 when any tenant failed.
#[tokio::test(flavor = "multi_thread")]
async fn run_all_keeps_each_tenant_to_its_own_output() {
    let sim = simulator().await;
    let scratch = Scratch::new("runall");
    let authority = sim.base_url().replace("http://", "");
    let tenant = |name: &str, key: &str| {
        format!(
            "[[tenant]]\ntenant = \"{name}\"\n[tenant.integration]\napiKey = \"{key}\"\nbaseUrl = \"{}\"\n[tenant.sandbox]\nallowedHosts = [\"{authority}\"]\n",
            sim.base_url()
        )
    };
    let file = format!(
        "maxConcurrentTenants = 2\n{}{}",
        tenant("good", sim.api_key()),
        tenant("bad", "wrong-key-0123456789")
    );
    let tenants = scratch.file("tenants.toml", &file);
    let output = host(&[
        "run-all",
        "--tenants",
        path(&tenants),
        "--output",
        path(&scratch.out()),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("good") && stdout.contains("bad"),
        "{stdout}"
    );
    let read = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .expect("json")
    };
    assert_eq!(
        read(scratch.out().join("good/summary.json"))["run"]["status"],
        "success"
    );
    assert_eq!(
        read(scratch.out().join("bad/summary.json"))["run"]["status"],
        "failure"
    );
    let report = read(scratch.out().join("run-all.json"));
    assert_eq!(report["tenants"].as_array().map(Vec::len), Some(2));
}

/// A bad tenants file or a bad tenant in it: exit 2, naming file and tenant index,
/// nothing run and nothing written.
#[tokio::test(flavor = "multi_thread")]
async fn run_all_refuses_bad_input_before_running_anything() {
    let sim = simulator().await;
    let scratch = Scratch::new("runall-bad");
    let good = format!(
        "[[tenant]]\ntenant = \"a\"\n[tenant.integration]\napiKey = \"{}\"\nbaseUrl = \"{}\"\n",
        sim.api_key(),
        sim.base_url()
    );
    let cases = [
        (
            "unknown-field",
            format!(
                "{good}[[tenant]]\ntenant = \"b\"\n[tenant.integration]\napiKey = \"k\"\nbogus = \"x\"\n"
            ),
            "tenant[1].integration.bogus",
        ),
        ("duplicate", format!("{good}{good}"), "tenant[1].tenant"),
        (
            "bad-url",
            format!(
                "{good}[[tenant]]\ntenant = \"b\"\n[tenant.integration]\napiKey = \"k\"\nbaseUrl = \"nope\"\n"
            ),
            "tenant[1].integration.baseUrl",
        ),
        (
            "bad-component",
            format!("{good}[[tenant]]\ntenant = \"b\"\ncomponent = \"missing.wasm\"\n"),
            "tenant[1].component",
        ),
    ];
    for (name, contents, field) in cases {
        let tenants = scratch.file("tenants.toml", &contents);
        let out = scratch.0.join(format!("out-{name}"));
        let output = host(&[
            "run-all",
            "--tenants",
            path(&tenants),
            "--output",
            path(&out),
        ]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains("tenants.toml") && stderr.contains(field),
            "{name}: {stderr}"
        );
        assert!(!out.exists(), "{name}: nothing written");
    }
    assert_eq!(sim.request_count(), 0);
}

/// The API key may come from `JUMPCLOUD_API_KEY` instead of the tenant file.
#[tokio::test(flavor = "multi_thread")]
async fn api_key_from_the_environment() {
    let sim = simulator().await;
    let scratch = Scratch::new("envkey");
    let config = scratch.file(
        "tenant.toml",
        &format!(
            "tenant = \"cli\"\n[integration]\nbaseUrl = \"{}\"\n",
            sim.base_url()
        ),
    );
    let output = Command::new(env!("CARGO_BIN_EXE_integration-host"))
        .args(["validate", "--config", path(&config)])
        .env(
            "INTEGRATION_HOST_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"),
        )
        .env("JUMPCLOUD_API_KEY", sim.api_key())
        .output()
        .expect("run integration-host");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(sim.requests().iter().all(|r| r.api_key_valid));
    assert_eq!(sim.request_count(), 1);
}

/// `simulate --mutate-after-seconds 0` serves a generated tenant, applies the standard
/// mutation at once and prints its report as one JSON line; the API then serves the
/// added user.
#[test]
fn simulate_applies_a_mutation_on_request() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::process::Stdio;

    let mut child = Command::new(env!("CARGO_BIN_EXE_integration-host"))
        .args(["simulate", "--users", "60", "--groups", "6"])
        .args(["--mutate-after-seconds", "0", "--mutation", "standard"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the simulator");
    let stdout = child.stdout.take().expect("stdout");
    let mut base_url = None;
    let mut api_key = None;
    let mut report = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line");
        if let Some(url) = line.strip_prefix("JumpCloud simulator listening on ") {
            base_url = Some(url.trim().to_owned());
        }
        if let Some(key) = line.strip_prefix("API key: ") {
            api_key = Some(key.trim().to_owned());
        }
        if let Some(json) = line.strip_prefix("mutated: ") {
            report = Some(serde_json::from_str::<serde_json::Value>(json).expect("JSON"));
            break;
        }
    }
    let (base_url, api_key, report) = (
        base_url.expect("address"),
        api_key.expect("key"),
        report.expect("a mutation report"),
    );
    let added = report["addedUsers"][0]["id"]
        .as_str()
        .expect("an added user")
        .to_owned();
    assert_eq!(report["suspendedUsers"].as_array().map(Vec::len), Some(1));

    let addr = base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET /api/systemusers?limit=100&skip=0 HTTP/1.1\r\nhost: {addr}\r\nx-api-key: {api_key}\r\nconnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(&added), "the added user is served");
}

//! The end-to-end harness: the real JumpCloud component in the real host (wasmtime,
//! wasi-http) against the JumpCloud simulator on 127.0.0.1.
//!
//! [`run`] takes the path of the CLI: a tenant file's text goes through
//! `TenantConfig::parse`, `job::prepare(.., Mode::Local, ..)` and `steps::run_job`,
//! writing into a fresh temporary directory; the result carries the summary, the
//! graph read back from `DIR/graph`, and the simulator (its data and request log) to
//! compute what the graph should be.
//!
//! One wasm runtime and one loaded plugin are shared by all tests of a process
//! ([`loaded`]); compiled code is cached under the target directory so later test
//! processes skip the compilation.

pub mod data_model;
pub mod graph;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use integration_host::bindings::PluginInfo;
use integration_host::config::TenantConfig;
use integration_host::job::{self, Mode};
use integration_host::runtime::{Plugin, Runtime, RuntimeOptions};
use integration_host::services::NoProgress;
use integration_host::steps::{self, JobStatus, StepResult, StepStatus, Summary};
use jumpcloud_simulator::{
    Dataset, FaultRule, Organization, RecordedRequest, Simulator, SimulatorConfig, TenantSpec,
};
use serde_json::Value;
use tokio::sync::OnceCell;

pub use graph::{Graph, GraphFile, GraphObject, ObjectKind};

/// The tenant id of every run (also the name in the tenant file).
pub const TENANT: &str = "e2e";

/// The step ids of the JumpCloud component, in `data-model.md` and
/// `data-model-directory.md` order.
pub const STEP_IDS: [&str; 17] = [
    "fetch-accounts",
    "fetch-users",
    "fetch-groups",
    "fetch-group-members",
    "fetch-applications",
    "fetch-application-assignments",
    "fetch-apple-mdm",
    "fetch-apple-devices",
    "fetch-systems",
    "fetch-system-groups",
    "fetch-system-group-members",
    "fetch-system-group-bindings",
    "fetch-system-users",
    "link-systems-to-apple-devices",
    "fetch-administrators",
    "fetch-policies",
    "fetch-policy-assignments",
];

/// The process-wide runtime with the bundled component loaded and described.
pub struct Loaded {
    /// Kept alive for the plugin (it owns the epoch ticker).
    _runtime: Runtime,
    pub plugin: Plugin,
    pub info: PluginInfo,
}

static LOADED: OnceCell<Loaded> = OnceCell::const_new();

/// A component file to test instead of the bundled one (for example a locally
/// patched build of `integration/`).
pub const COMPONENT_ENV: &str = "INTEGRATION_TESTS_COMPONENT";

/// The shared runtime and plugin, loaded on first use: the bundled component, or the
/// file named by `$INTEGRATION_TESTS_COMPONENT`.
pub async fn loaded() -> &'static Loaded {
    LOADED
        .get_or_init(|| async {
            let runtime = Runtime::new(RuntimeOptions {
                cache_dir: Some(component_cache_dir()),
            })
            .expect("the wasm runtime starts");
            let plugin = match std::env::var_os(COMPONENT_ENV) {
                Some(path) => runtime
                    .load_file(Path::new(&path))
                    .unwrap_or_else(|error| panic!("{COMPONENT_ENV}: {error}")),
                None => runtime
                    .load(
                        "the bundled JumpCloud component",
                        integration_host::BUNDLED_COMPONENT,
                    )
                    .expect("the bundled component loads"),
            };
            let info = plugin
                .describe()
                .await
                .expect("the component describes itself");
            Loaded {
                _runtime: runtime,
                plugin,
                info,
            }
        })
        .await
}

/// `<target dir>/component-cache`, found from the test executable
/// (`<target>/<profile>/deps/<test>`); a folder under the system temp dir otherwise.
fn component_cache_dir() -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        let deps = exe.ancestors().find(|dir| dir.ends_with("deps"))?;
        Some(deps.parent()?.parent()?.join("component-cache"))
    });
    from_exe.unwrap_or_else(|| std::env::temp_dir().join("integration-tests-component-cache"))
}

/// What to run against: the simulator's dataset and faults, and what the tenant file says.
#[derive(Debug, Clone)]
pub struct Setup {
    pub dataset: Dataset,
    /// Fault rules active from the simulator's start.
    pub faults: Vec<FaultRule>,
    /// The `apiKey` written in the tenant file; `None`: the simulator's own key.
    pub tenant_api_key: Option<String>,
    /// TOML appended to the tenant file, after its `[integration]` table: more
    /// integration fields, or a `[sandbox]` table.
    pub tenant_extra: String,
}

impl Setup {
    /// A generated tenant of this spec, no faults, the right key.
    pub fn generated(spec: TenantSpec) -> Setup {
        Setup {
            dataset: Dataset::Generated(spec),
            faults: Vec::new(),
            tenant_api_key: None,
            tenant_extra: String::new(),
        }
    }

    /// The recorded JumpCloud answers.
    pub fn recorded() -> Setup {
        Setup {
            dataset: Dataset::Recorded,
            faults: Vec::new(),
            tenant_api_key: None,
            tenant_extra: String::new(),
        }
    }

    pub fn with_faults(mut self, faults: Vec<FaultRule>) -> Setup {
        self.faults = faults;
        self
    }

    pub fn with_tenant_api_key(mut self, key: impl Into<String>) -> Setup {
        self.tenant_api_key = Some(key.into());
        self
    }

    /// Appends TOML to the tenant file (see [`Setup::tenant_extra`]).
    pub fn with_tenant_extra(mut self, toml: impl Into<String>) -> Setup {
        self.tenant_extra.push_str(&toml.into());
        self
    }
}

/// A small generated tenant: `users` users, `groups` groups, `applications`
/// applications, the default seed and one dangling member.
pub fn small_spec(users: usize, groups: usize, applications: usize) -> TenantSpec {
    TenantSpec {
        users,
        groups,
        applications,
        ..TenantSpec::default()
    }
}

/// One finished job.
pub struct Run {
    /// The simulator it ran against, still serving: its data and request log.
    pub simulator: Simulator,
    pub summary: Summary,
    /// `summary.json` as written.
    pub summary_json: Value,
    /// Everything under `DIR/graph`.
    pub graph: Graph,
    /// The output directory (removed when the run is dropped).
    pub output: tempfile::TempDir,
    /// The tenant file it ran with.
    pub tenant_text: String,
}

impl Run {
    /// The only organization of a single-organization tenant.
    pub fn org(&self) -> Arc<Organization> {
        let tenant = self.simulator.tenant();
        let organizations = tenant.organizations();
        assert_eq!(
            organizations.len(),
            1,
            "Run::org is for single-organization tenants"
        );
        organizations[0].clone()
    }

    /// The summary line of a step.
    pub fn step(&self, id: &str) -> &StepResult {
        self.summary
            .integration_step_results
            .iter()
            .find(|step| step.id == id)
            .unwrap_or_else(|| panic!("no step {id} in the summary"))
    }

    /// The `summary.json` object of a step.
    pub fn step_json(&self, id: &str) -> &Value {
        self.summary_json["integrationStepResults"]
            .as_array()
            .and_then(|steps| steps.iter().find(|step| step["id"] == id))
            .unwrap_or_else(|| panic!("no step {id} in summary.json"))
    }

    /// Asserts every step succeeded, the run's status is success and it exits 0.
    pub fn assert_success(&self) {
        for step in &self.summary.integration_step_results {
            assert_eq!(
                step.status,
                StepStatus::Success,
                "step {}: {:?}",
                step.id,
                step.error
            );
            assert!(step.partial_types.is_empty(), "step {}", step.id);
        }
        assert_eq!(self.summary.run.status, JobStatus::Success);
        assert_eq!(self.summary.exit_code(), 0);
    }

    /// The requests the simulator saw.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.simulator.requests()
    }

    /// The graph with the simulator's base URL replaced by `BASE_URL`, by `_key`, so
    /// runs against different simulators of the same data compare equal.
    pub fn normalized_graph(&self) -> std::collections::BTreeMap<String, Value> {
        self.graph.normalized(&self.simulator.base_url())
    }
}

/// Starts a simulator for `setup`, runs the job as `integration-host run` would, and
/// reads back its output.
pub async fn run(setup: Setup) -> Run {
    let simulator = Simulator::start(SimulatorConfig {
        dataset: setup.dataset,
        faults: setup.faults,
        ..SimulatorConfig::default()
    })
    .await
    .expect("the simulator binds a port on 127.0.0.1");
    let api_key = setup
        .tenant_api_key
        .unwrap_or_else(|| simulator.api_key().to_owned());
    let text = tenant_file(&api_key, &simulator.base_url()) + &setup.tenant_extra;
    run_against(simulator, text).await
}

impl Run {
    /// Runs the same tenant file again against the same simulator (as it is now, for
    /// instance after [`Simulator::apply_mutation`]), into a fresh output directory.
    pub async fn rerun(self) -> Run {
        run_against(self.simulator, self.tenant_text).await
    }
}

/// Runs the job of tenant file `text` against `simulator` and reads back its output.
async fn run_against(simulator: Simulator, text: String) -> Run {
    let loaded = loaded().await;
    let tenant = TenantConfig::parse(Path::new("e2e-tenant.toml"), &text)
        .unwrap_or_else(|error| panic!("the tenant file is valid: {error}\n{text}"));
    let output = tempfile::Builder::new()
        .prefix("e2e-output-")
        .tempdir()
        .expect("a temporary output directory");
    let spec = job::prepare(
        &tenant,
        &loaded.info,
        &[],
        Mode::Local,
        output.path(),
        Arc::new(NoProgress),
    )
    .unwrap_or_else(|error| panic!("the job is prepared: {error}"));
    let summary = steps::run_job(&loaded.plugin, &loaded.info, spec)
        .await
        .unwrap_or_else(|error| panic!("the job produced no summary: {error}"));
    let summary_path = output.path().join("summary.json");
    let summary_text = std::fs::read_to_string(&summary_path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", summary_path.display()));
    let summary_json: Value = serde_json::from_str(&summary_text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", summary_path.display()));
    let graph = Graph::load(output.path());
    Run {
        simulator,
        summary,
        summary_json,
        graph,
        output,
        tenant_text: text,
    }
}

/// The text of a tenant file, as an operator would write it.
pub fn tenant_file(api_key: &str, base_url: &str) -> String {
    format!(
        "tenant = {}\n\n[integration]\napiKey = {}\nbaseUrl = {}\n",
        toml_string(TENANT),
        toml_string(api_key),
        toml_string(base_url)
    )
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The id of a simulator object: `id`, else `_id`.
pub fn object_id(object: &Value) -> &str {
    object
        .get("id")
        .or_else(|| object.get("_id"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("simulator object without an id: {object}"))
}

/// The email a user maps to an `employee` by, per `data-model.md`: the trimmed,
/// lowercased email, when non-empty and the user's `employeeType` is not `generic`,
/// `service` or `bot` (any case).
pub fn expected_employee_email(user: &Value) -> Option<String> {
    let non_person = user
        .get("employeeType")
        .and_then(Value::as_str)
        .is_some_and(|kind| {
            ["generic", "service", "bot"]
                .iter()
                .any(|excluded| kind.trim().eq_ignore_ascii_case(excluded))
        });
    if non_person {
        return None;
    }
    let email = user.get("email").and_then(Value::as_str)?.trim();
    (!email.is_empty()).then(|| email.to_lowercase())
}

/// Asserts that no file under `dir` contains `needle`; a failure names the file.
pub fn assert_no_file_contains(dir: &Path, needle: &str) {
    for file in files_under(dir) {
        let bytes = std::fs::read(&file)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", file.display()));
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(needle),
            "{} contains {needle:?}",
            file.display()
        );
    }
}

/// Every file under `dir`, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
            .path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use integration_host::config::ConfigValue;

    #[test]
    fn tenant_file_escapes_quotes_and_backslashes() {
        let text = tenant_file("a\"b\\c", "http://127.0.0.1:1");
        let config = TenantConfig::parse(Path::new("t.toml"), &text).expect("parses");
        assert_eq!(
            config.integration["apiKey"],
            ConfigValue::Text("a\"b\\c".into())
        );
        assert_eq!(
            config.integration["baseUrl"],
            ConfigValue::Text("http://127.0.0.1:1".into())
        );
        assert_eq!(config.tenant, TENANT);
    }

    #[test]
    fn employee_email_rule() {
        let user = |fields: Value| fields;
        assert_eq!(
            expected_employee_email(&user(serde_json::json!({"email": " A@B.example "}))),
            Some("a@b.example".to_owned())
        );
        assert_eq!(
            expected_employee_email(&user(serde_json::json!({"email": ""}))),
            None
        );
        assert_eq!(expected_employee_email(&user(serde_json::json!({}))), None);
        assert_eq!(
            expected_employee_email(&user(
                serde_json::json!({"email": "x@y.example", "employeeType": "Service"})
            )),
            None
        );
        assert_eq!(
            expected_employee_email(&user(
                serde_json::json!({"email": "x@y.example", "employeeType": "Full-Time"})
            )),
            Some("x@y.example".to_owned())
        );
    }
}

//! Running one tenant's job: configuration against the plugin's declared fields, then
//! validate, then every step in dependency order with the J1 partial-success rules,
//! then `summary.json`.
//!
//! - A failed step marks its declared types partial; what it and every other step
//!   collected is kept and written.
//! - Steps whose dependencies failed still run, and finish as
//!   `partial_success_due_to_dependency_failure` (their types are partial too).
//! - An authentication or configuration error, a trap, or a limit stops the job: the
//!   steps not yet run are reported as failed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::bindings::{
    ConfigEntry, IntegrationError, ObjectKind, PluginInfo, StepInfo, StepReport,
};
use crate::graph::{GraphStore, SharedGraph};
use crate::output::{FileSink, write_json_atomically};
use crate::policy::SandboxPolicy;
use crate::runtime::{Plugin, PluginRun, RunFailure, RunSetup, RunState};
use crate::sandbox::limits::Spending;
use crate::sandbox::text::{Untrusted, truncate};
use crate::services::{GuestLog, ProgressSink, Redactor};

/// Bytes of an error message kept in the summary: a plugin's text, shortened.
const MAX_ERROR_BYTES: usize = 4096;

/// A configuration the host refuses before running anything (exit status 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// `integration.<name>` or another dotted path.
    pub field: String,
    pub reason: String,
}

/// The plugin configuration of a run, checked against `describe()`.
#[derive(Clone)]
pub struct PluginConfig {
    pub entries: Vec<ConfigEntry>,
    /// Values of the fields marked secret, to keep out of logs and output.
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for PluginConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redactor = Redactor::new(self.secrets.clone());
        f.debug_list()
            .entries(
                self.entries
                    .iter()
                    .map(|e| (e.name.clone(), redactor.scrub(&e.value))),
            )
            .finish()
    }
}

impl PluginConfig {
    /// Applies defaults and environment variables, and refuses unknown and missing
    /// fields. `env` looks up an environment variable.
    pub fn resolve(
        info: &PluginInfo,
        given: &BTreeMap<String, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<PluginConfig, FieldError> {
        let known: Vec<&str> = info.config_fields.iter().map(|f| f.name.as_str()).collect();
        if let Some(unknown) = given.keys().find(|name| !known.contains(&name.as_str())) {
            return Err(FieldError {
                field: format!("integration.{unknown}"),
                reason: format!("unknown field; this plugin accepts {}", known.join(", ")),
            });
        }
        let mut entries = Vec::new();
        let mut secrets = Vec::new();
        for field in &info.config_fields {
            let value = given
                .get(&field.name)
                .cloned()
                .filter(|v| !v.trim().is_empty())
                .or_else(|| {
                    field
                        .env_var
                        .as_deref()
                        .and_then(&env)
                        .filter(|v| !v.trim().is_empty())
                })
                .or_else(|| field.default_value.clone());
            match value {
                Some(value) => {
                    if field.secret {
                        // Trimmed: plugins trim their values, so that is the form
                        // they send and could echo.
                        secrets.push(value.trim().to_owned());
                    }
                    entries.push(ConfigEntry {
                        name: field.name.clone(),
                        value,
                    });
                }
                None if field.required => {
                    let hint = match &field.env_var {
                        Some(var) => format!("required (or set the environment variable {var})"),
                        None => "required".to_owned(),
                    };
                    return Err(FieldError {
                        field: format!("integration.{}", field.name),
                        reason: hint,
                    });
                }
                None => {}
            }
        }
        Ok(PluginConfig { entries, secrets })
    }

    /// The http(s) URLs among the values, as `host[:port]`: the default egress
    /// allowlist of a local run.
    pub fn url_hosts(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(|entry| {
                let uri: http::Uri = entry.value.trim().parse().ok()?;
                matches!(uri.scheme_str(), Some("http" | "https"))
                    .then(|| uri.authority().map(|a| a.as_str().to_owned()))
                    .flatten()
            })
            .collect()
    }
}

/// Everything one job needs besides the plugin.
#[derive(Clone)]
pub struct JobSpec {
    pub tenant: Arc<str>,
    /// Properties every entity gets (`tag.AccountName` when the tenant asks for it).
    pub entity_tags: Vec<(String, String)>,
    pub config: PluginConfig,
    pub policy: SandboxPolicy,
    pub output_dir: PathBuf,
    pub progress: Arc<dyn ProgressSink>,
}

/// One step's line in `summary.json`: the J1 SDK fields, then ours.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StepResult {
    pub id: String,
    pub name: String,
    pub declared_types: Vec<String>,
    pub partial_types: Vec<String>,
    pub encountered_types: Vec<String>,
    pub encountered_type_counts: BTreeMap<String, u64>,
    pub status: StepStatus,
    pub depends_on: Vec<String>,
    pub duration_ms: u64,
    pub http_requests: u64,
    pub http_retries: u32,
    pub skipped_records: u32,
    pub dropped_relationships: u64,
    /// Time the plugin spent parsing and converting, as it reports it.
    pub convert_nanos: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

/// J1's step statuses.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Success,
    Failure,
    PartialSuccessDueToDependencyFailure,
    Disabled,
}

/// A failure, as the summary and the CLI report it (secrets already removed).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    /// `invalid-config`, `authentication`, `authorization`, `provider-api`,
    /// `rate-limited`, `egress-denied`, `transport`, `invalid-response`, `graph`,
    /// `internal`, or for the run itself `time-limit`, `memory-limit`, `limit-exceeded`,
    /// `trap`.
    pub kind: String,
    pub message: String,
}

impl ErrorReport {
    pub fn from_plugin(error: &IntegrationError, redactor: &Redactor) -> ErrorReport {
        let (kind, message) = describe_error(error);
        ErrorReport {
            kind: kind.into(),
            message: truncate(&redactor.scrub(&message), MAX_ERROR_BYTES).into_owned(),
        }
    }

    fn from_failure(failure: &RunFailure, redactor: &Redactor) -> ErrorReport {
        ErrorReport {
            kind: failure.kind().into(),
            message: truncate(&redactor.scrub(&failure.to_string()), MAX_ERROR_BYTES).into_owned(),
        }
    }
}

/// The kind and a sentence for each plugin error.
pub fn describe_error(error: &IntegrationError) -> (&'static str, String) {
    match error {
        IntegrationError::InvalidConfig(e) => (
            "invalid-config",
            format!("integration.{}: {}", e.field, e.reason),
        ),
        IntegrationError::Authentication(message) => ("authentication", message.clone()),
        IntegrationError::Authorization(e) => (
            "authorization",
            format!("not authorized to read {}: {}", e.endpoint, e.message),
        ),
        IntegrationError::ProviderApi(e) => (
            "provider-api",
            format!("{} answered HTTP {}: {}", e.endpoint, e.status, e.message),
        ),
        IntegrationError::RateLimited(e) => (
            "rate-limited",
            format!("rate limited on {}: {}", e.endpoint, e.message),
        ),
        IntegrationError::EgressDenied(host) => (
            "egress-denied",
            format!(
                "the sandbox refused a request to {host}: it is not on the tenant's allowlist or resolves to a refused address"
            ),
        ),
        IntegrationError::Transport(e) => (
            "transport",
            format!("request to {} failed: {}", e.endpoint, e.message),
        ),
        IntegrationError::InvalidResponse(e) => (
            "invalid-response",
            format!("invalid response from {}: {}", e.endpoint, e.message),
        ),
        IntegrationError::Graph(crate::bindings::GraphError::DuplicateKey(key)) => {
            ("graph", format!("duplicate _key {key}"))
        }
        IntegrationError::Graph(crate::bindings::GraphError::InvalidObject(reason)) => {
            ("graph", format!("invalid graph object: {reason}"))
        }
        IntegrationError::Internal(message) => ("internal", message.clone()),
    }
}

/// J1's `metadata` block.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SummaryMetadata {
    pub partial_datasets: PartialDatasets,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PartialDatasets {
    pub types: Vec<String>,
}

/// Overall outcome of a job.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Success,
    Partial,
    Failure,
}

/// Our own figures for the whole run.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub tenant: String,
    pub plugin: String,
    pub plugin_version: String,
    pub status: JobStatus,
    pub started_at_ms: u64,
    pub duration_ms: u64,
    pub entities: u64,
    pub relationships: u64,
    pub dropped_relationships: u64,
    pub http_requests: u64,
    pub http_retries: u32,
    pub egress_denied: u64,
    pub bytes_received: u64,
    pub guest_peak_memory_bytes: u64,
    pub log_lines_dropped: u32,
    /// What the plugin spent of the run's budgets.
    pub spent: Spending,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub integration_step_results: Vec<StepResult>,
    pub metadata: SummaryMetadata,
    pub run: RunReport,
}

impl Summary {
    pub fn exit_code(&self) -> i32 {
        match self.run.status {
            JobStatus::Success => 0,
            _ => 1,
        }
    }
}

/// Why a job did not produce a summary at all.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Bad configuration: nothing was written (exit status 2).
    #[error("{0}")]
    Config(FieldError),
    /// The plugin's step table is broken (unknown dependency, cycle).
    #[error("the plugin's steps are inconsistent: {0}")]
    BadPlugin(String),
    /// The output could not be written.
    #[error("cannot write the output under {dir}: {source}")]
    Output { dir: String, source: std::io::Error },
    /// The run failed before its first step (trap while instantiating).
    #[error("{0}")]
    Start(RunFailure),
}

/// Orders steps so each comes after its dependencies, keeping declaration order
/// otherwise.
pub fn step_order(steps: &[StepInfo]) -> Result<Vec<usize>, String> {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    if index.len() != steps.len() {
        return Err("two steps share an id".into());
    }
    for step in steps {
        if let Some(missing) = step
            .depends_on
            .iter()
            .find(|d| !index.contains_key(d.as_str()))
        {
            return Err(format!(
                "step {} depends on unknown step {missing}",
                step.id
            ));
        }
    }
    let mut done = vec![false; steps.len()];
    let mut order = Vec::with_capacity(steps.len());
    while order.len() < steps.len() {
        let next = (0..steps.len())
            .find(|&i| !done[i] && steps[i].depends_on.iter().all(|d| done[index[d.as_str()]]));
        let Some(next) = next else {
            return Err("the step dependencies form a cycle".into());
        };
        done[next] = true;
        order.push(next);
    }
    Ok(order)
}

/// Runs one tenant's job and writes its graph and `summary.json` under the output dir:
/// [`TenantRun::setup`], [`TenantRun::run_steps`], [`TenantRun::report`].
pub async fn run_job(
    plugin: &Plugin,
    info: &PluginInfo,
    spec: JobSpec,
) -> Result<Summary, JobError> {
    let mut run = TenantRun::setup(plugin, info, spec).await?;
    run.run_steps().await?;
    run.report()
}

/// One tenant's run, in the phases the CLI, the store and the scheduler plug into:
/// - `setup`: the step order, a first instance, the plugin's `validate`, then the
///   output (nothing is written before the plugin accepted its configuration);
/// - `run_steps`: every step in dependency order, side by side up to
///   `maxConcurrentSteps`, with J1's partial-success bookkeeping;
/// - `report`: the graph flushed, the totals, `summary.json`.
///
/// Persisting the graph (the store) comes after `report`, from the written output.
pub struct TenantRun<'p> {
    plugin: &'p Plugin,
    info: &'p PluginInfo,
    spec: JobSpec,
    started: Instant,
    started_at_ms: u64,
    order: Vec<usize>,
    redactor: Redactor,
    policy: Arc<SandboxPolicy>,
    setup: RunSetup,
    /// Instances free to run a step; the first one ran `validate`.
    idle: Vec<PluginRun>,
    /// Instances that trapped: kept for their figures, never entered again.
    retired: Vec<PluginRun>,
    /// Why `validate` refused the run, when it did.
    validate_error: Option<ErrorReport>,
    /// The first error after which no step can succeed.
    stop: Option<ErrorReport>,
    results: Vec<Option<StepResult>>,
}

impl<'p> TenantRun<'p> {
    /// Orders the steps, starts a first instance, runs the plugin's `validate` and
    /// opens the output. A configuration the plugin refuses is an error (nothing
    /// written); any other refusal stops the run before its first step.
    pub async fn setup(
        plugin: &'p Plugin,
        info: &'p PluginInfo,
        spec: JobSpec,
    ) -> Result<TenantRun<'p>, JobError> {
        let started = Instant::now();
        let started_at_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let order = step_order(&info.steps).map_err(JobError::BadPlugin)?;
        let redactor = Redactor::new(spec.config.secrets.clone());
        let policy = Arc::new(spec.policy.clone());
        // The graph starts on a null sink and gets its files after `validate`.
        let setup = run_setup(&spec, &policy);
        let mut first = plugin.start(setup.clone()).await.map_err(JobError::Start)?;
        let validate_error = match first.validate(&spec.config.entries).await {
            Ok(Ok(())) => None,
            Ok(Err(IntegrationError::InvalidConfig(e))) => {
                return Err(JobError::Config(FieldError {
                    field: format!("integration.{}", e.field),
                    reason: redactor.scrub(&e.reason),
                }));
            }
            Ok(Err(error)) => Some(ErrorReport::from_plugin(&error, &redactor)),
            Err(failure) => Some(ErrorReport::from_failure(&failure, &redactor)),
        };
        let sink = FileSink::create(&spec.output_dir).map_err(|source| JobError::Output {
            dir: spec.output_dir.display().to_string(),
            source,
        })?;
        lock(&setup.graph)?.begin_output(
            Box::new(sink),
            redactor.clone(),
            spec.entity_tags.clone(),
        );
        Ok(TenantRun {
            plugin,
            info,
            started,
            started_at_ms,
            order,
            redactor,
            policy,
            setup,
            idle: vec![first],
            retired: Vec::new(),
            stop: validate_error.clone(),
            validate_error,
            results: vec![None; info.steps.len()],
            spec,
        })
    }

    /// The tenant this run is for.
    pub fn tenant(&self) -> &str {
        &self.spec.tenant
    }

    /// Runs every step as soon as its dependencies are done, up to
    /// `maxConcurrentSteps` at a time, each in a store of its own (a store runs one
    /// call at a time); the stores share the graph, the request slots, the log budget
    /// and the deadline. Steps never started (the run stopped) are reported failed.
    pub async fn run_steps(&mut self) -> Result<(), JobError> {
        let info = self.info;
        let config = Arc::new(self.spec.config.entries.clone());
        let parallel = self.policy.max_concurrent_steps.max(1) as usize;
        let mut launched = vec![false; info.steps.len()];
        let mut running = tokio::task::JoinSet::new();
        loop {
            while self.stop.is_none() && running.len() < parallel {
                let ready = self.order.iter().copied().find(|&index| {
                    !launched[index]
                        && info.steps[index]
                            .depends_on
                            .iter()
                            .all(|dep| self.results[step_index(info, dep)].is_some())
                });
                let Some(index) = ready else {
                    break;
                };
                let mut run = match self.idle.pop() {
                    Some(run) => run,
                    None => match self.plugin.start(self.setup.clone()).await {
                        Ok(run) => run,
                        Err(failure) => {
                            self.stop = Some(ErrorReport::from_failure(&failure, &self.redactor));
                            break;
                        }
                    },
                };
                launched[index] = true;
                let step_id = info.steps[index].id.clone();
                let config = config.clone();
                tracing::info!(tenant = %self.spec.tenant, step = %step_id, "step started");
                running.spawn(async move {
                    let step_started = Instant::now();
                    let requests_before = run.state().meter.requests.load(Ordering::Relaxed);
                    let retries_before = run.state().retries;
                    let outcome = run.execute_step(&step_id, &config).await;
                    FinishedStep {
                        index,
                        duration: step_started.elapsed(),
                        requests: run.state().meter.requests.load(Ordering::Relaxed)
                            - requests_before,
                        retries: run.state().retries - retries_before,
                        outcome,
                        run,
                    }
                });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let finished = joined.map_err(|error| {
                JobError::Start(RunFailure::Trap(format!(
                    "the host failed running a step: {error}"
                )))
            })?;
            self.record_step(finished)?;
        }
        // Steps never started: the job stopped before them.
        for (index, step) in info.steps.iter().enumerate() {
            if self.results[index].is_none() {
                let mut result = new_step_result(step);
                result.status = StepStatus::Failure;
                result.partial_types = result.declared_types.clone();
                if let Some(reason) = &self.stop {
                    result.error = Some(ErrorReport {
                        kind: reason.kind.clone(),
                        message: format!("not run: the job stopped: {}", reason.message),
                    });
                }
                self.results[index] = Some(result);
            }
        }
        Ok(())
    }

    /// Books a finished step: its status under J1's rules, its figures, and whether
    /// its error stops the run.
    fn record_step(&mut self, finished: FinishedStep) -> Result<(), JobError> {
        let info = self.info;
        let step = &info.steps[finished.index];
        let dependency_failed = step.depends_on.iter().any(|dep| {
            self.results[step_index(info, dep)]
                .as_ref()
                .is_some_and(|r| r.status != StepStatus::Success)
        });
        let mut result = new_step_result(step);
        result.duration_ms = finished.duration.as_millis() as u64;
        result.http_requests = finished.requests;
        // Counted by the host from `progress.retrying`, so failed steps count too.
        result.http_retries = finished.retries as u32;
        let mut usable = true;
        match finished.outcome {
            Ok(Ok(report)) => {
                result.skipped_records = report.skipped_records;
                result.convert_nanos = report.convert_nanos;
                if dependency_failed {
                    result.status = StepStatus::PartialSuccessDueToDependencyFailure;
                }
            }
            Ok(Err(error)) => {
                let report = ErrorReport::from_plugin(&error, &self.redactor);
                tracing::error!(tenant = %self.spec.tenant, step = %step.id, kind = %report.kind, "{}", Untrusted(&report.message));
                result.status = StepStatus::Failure;
                if matches!(
                    error,
                    IntegrationError::Authentication(_) | IntegrationError::InvalidConfig(_)
                ) {
                    self.stop.get_or_insert(report.clone());
                }
                result.error = Some(report);
            }
            Err(failure) => {
                let report = ErrorReport::from_failure(&failure, &self.redactor);
                tracing::error!(tenant = %self.spec.tenant, step = %step.id, kind = %report.kind, "{}", Untrusted(&report.message));
                result.status = StepStatus::Failure;
                // A trapped instance cannot be entered again, and a limit is the run's.
                usable = false;
                self.stop.get_or_insert(report.clone());
                result.error = Some(report);
            }
        }
        let stats = lock(&self.setup.graph)?.step_stats(&step.id);
        result.encountered_types = stats.encountered_types();
        result.encountered_type_counts = stats
            .entities
            .iter()
            .chain(stats.relationships.iter())
            .map(|(t, n)| (t.clone(), *n))
            .collect();
        result.dropped_relationships = stats.dropped_relationships;
        if result.status != StepStatus::Success {
            result.partial_types = result.declared_types.clone();
        }
        tracing::info!(
            tenant = %self.spec.tenant,
            step = %step.id,
            status = ?result.status,
            duration_ms = result.duration_ms,
            "step finished"
        );
        self.results[finished.index] = Some(result);
        if usable {
            self.idle.push(finished.run);
        } else {
            self.retired.push(finished.run);
        }
        Ok(())
    }

    /// Flushes the graph, totals the run and writes `summary.json`.
    pub fn report(self) -> Result<Summary, JobError> {
        let info = self.info;
        let output_error = |source| JobError::Output {
            dir: self.spec.output_dir.display().to_string(),
            source,
        };
        lock(&self.setup.graph)?.flush().map_err(output_error)?;
        let stores: Vec<RunState> = self
            .idle
            .into_iter()
            .chain(self.retired)
            .map(PluginRun::into_state)
            .collect();
        let total = |read: fn(&RunState) -> u64| stores.iter().map(read).sum::<u64>();
        let results: Vec<StepResult> = self.results.into_iter().flatten().collect();
        let partial: BTreeSet<String> = results
            .iter()
            .flat_map(|r| r.partial_types.iter().cloned())
            .collect();
        let (entities, relationships) = object_totals(info, &results);
        let summary = Summary {
            metadata: SummaryMetadata {
                partial_datasets: PartialDatasets {
                    types: partial.into_iter().collect(),
                },
            },
            run: RunReport {
                tenant: self.spec.tenant.to_string(),
                plugin: info.id.clone(),
                plugin_version: info.version.clone(),
                status: job_status(&results),
                started_at_ms: self.started_at_ms,
                duration_ms: self.started.elapsed().as_millis() as u64,
                entities,
                relationships,
                dropped_relationships: results.iter().map(|r| r.dropped_relationships).sum(),
                http_requests: total(|s| s.meter.requests.load(Ordering::Relaxed)),
                http_retries: total(|s| s.retries) as u32,
                egress_denied: total(|s| s.meter.denied.load(Ordering::Relaxed)),
                bytes_received: total(|s| s.meter.bytes_received.load(Ordering::Relaxed)),
                guest_peak_memory_bytes: stores
                    .iter()
                    .map(RunState::guest_peak_memory)
                    .max()
                    .unwrap_or(0),
                log_lines_dropped: self.setup.log.dropped(),
                spent: Spending {
                    log_bytes: self.setup.log.bytes_written(),
                    ..lock(&self.setup.graph)?.spent()
                },
                error: self.validate_error.or(self.stop),
            },
            integration_step_results: results,
        };
        for state in &stores {
            let (stdout, stderr) = state.captured_stdio();
            for (name, bytes) in [("stdout", stdout), ("stderr", stderr)] {
                if !bytes.is_empty() {
                    let text = self.redactor.scrub(&String::from_utf8_lossy(&bytes));
                    tracing::debug!(tenant = %self.spec.tenant, stream = name, "guest output: {}", Untrusted(text.trim_end()));
                }
            }
        }
        write_json_atomically(&self.spec.output_dir.join("summary.json"), &summary)
            .map_err(output_error)?;
        Ok(summary)
    }
}

/// Success when every step succeeded, failure when none did, partial otherwise.
fn job_status(results: &[StepResult]) -> JobStatus {
    let count = |kind: fn(&StepResult) -> bool| results.iter().filter(|r| kind(r)).count();
    if count(|r| r.status == StepStatus::Success) == results.len() {
        JobStatus::Success
    } else if count(|r| r.status != StepStatus::Failure) == 0 {
        JobStatus::Failure
    } else {
        JobStatus::Partial
    }
}

/// Entities and relationships stored by the run, from the steps' type counts.
fn object_totals(info: &PluginInfo, results: &[StepResult]) -> (u64, u64) {
    let declared = || info.steps.iter().flat_map(|s| s.declared_types.iter());
    let entity_types: BTreeSet<&str> = declared()
        .filter(|t| t.kind == ObjectKind::Entity)
        .map(|t| t.type_.as_str())
        .collect();
    let relationship_types: BTreeSet<&str> = declared()
        .filter(|t| t.kind == ObjectKind::Relationship)
        .map(|t| t.type_.as_str())
        .collect();
    let (mut entities, mut relationships) = (0, 0);
    for result in results {
        for (object_type, n) in &result.encountered_type_counts {
            // Types the plugin did not declare (mapped targets such as `employee`) are
            // entities when no relationship of that type was declared either.
            if entity_types.contains(object_type.as_str())
                || !relationship_types.contains(object_type.as_str())
            {
                entities += n;
            } else {
                relationships += n;
            }
        }
    }
    (entities, relationships)
}

/// The store data of a run of `spec`, its graph on a null sink until the run has
/// somewhere to write.
fn run_setup(spec: &JobSpec, policy: &Arc<SandboxPolicy>) -> RunSetup {
    RunSetup::new(
        spec.tenant.clone(),
        policy.clone(),
        GraphStore::new(Box::new(crate::output::NullSink)),
        GuestLog::new(
            spec.tenant.clone(),
            spec.config.secrets.clone(),
            policy.max_log_lines,
        ),
        spec.progress.clone(),
    )
}

/// What a step's task hands back: its store, and how the step went.
struct FinishedStep {
    index: usize,
    run: PluginRun,
    outcome: Result<Result<StepReport, IntegrationError>, RunFailure>,
    duration: std::time::Duration,
    requests: u64,
    retries: u64,
}

/// The position of step `id` (checked to exist by `step_order`).
fn step_index(info: &PluginInfo, id: &str) -> usize {
    info.steps
        .iter()
        .position(|s| s.id == id)
        .expect("dependencies checked by step_order")
}

/// A step's summary line before it runs.
fn new_step_result(step: &StepInfo) -> StepResult {
    StepResult {
        id: step.id.clone(),
        name: step.name.clone(),
        declared_types: step
            .declared_types
            .iter()
            .map(|t| t.type_.clone())
            .collect(),
        partial_types: Vec::new(),
        encountered_types: Vec::new(),
        encountered_type_counts: BTreeMap::new(),
        status: StepStatus::Success,
        depends_on: step.depends_on.clone(),
        duration_ms: 0,
        http_requests: 0,
        http_retries: 0,
        skipped_records: 0,
        dropped_relationships: 0,
        convert_nanos: 0,
        error: None,
    }
}

/// The job's graph; a poisoned lock means a host thread panicked holding it.
fn lock(graph: &SharedGraph) -> Result<std::sync::MutexGuard<'_, GraphStore>, JobError> {
    graph.lock().map_err(|_| JobError::Output {
        dir: String::new(),
        source: std::io::Error::other("the graph store is unusable after a host failure"),
    })
}

/// Why `validate` refused a tenant.
#[derive(Debug)]
pub enum ValidateError {
    /// A configuration field is wrong (exit status 2).
    Config(FieldError),
    /// The provider or the sandbox refused: credentials, egress, a trap (exit status 1).
    Rejected(ErrorReport),
}

/// Checks a tenant's configuration and credentials (the plugin's `validate`), writing
/// nothing.
pub async fn validate_job(plugin: &Plugin, spec: JobSpec) -> Result<(), ValidateError> {
    let redactor = Redactor::new(spec.config.secrets.clone());
    let policy = Arc::new(spec.policy.clone());
    let setup = run_setup(&spec, &policy);
    let mut run = plugin.start(setup).await.map_err(|failure| {
        ValidateError::Rejected(ErrorReport::from_failure(&failure, &redactor))
    })?;
    match run.validate(&spec.config.entries).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(IntegrationError::InvalidConfig(e))) => Err(ValidateError::Config(FieldError {
            field: format!("integration.{}", e.field),
            reason: redactor.scrub(&e.reason),
        })),
        Ok(Err(error)) => Err(ValidateError::Rejected(ErrorReport::from_plugin(
            &error, &redactor,
        ))),
        Err(failure) => Err(ValidateError::Rejected(ErrorReport::from_failure(
            &failure, &redactor,
        ))),
    }
}

#[cfg(test)]
mod tests;

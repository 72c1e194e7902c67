//! Many tenants in one process (`run-all`): every tenant in its own store, side by side
//! under a concurrency cap, each writing under `DIR/<tenant>/`. One tenant's failure,
//! trap, timeout or memory blow-up stays in that tenant's summary.
//!
//! Everything that can be checked is checked before anything runs (tenants file,
//! components, each tenant's configuration), so bad input stops the whole command with
//! nothing written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::bindings::{IntegrationError, PluginInfo};
use crate::config::{ConfigError, TenantsConfig};
use crate::job::{self, Mode};
use crate::runtime::{LoadError, Plugin, Runtime};
use crate::services::{ProgressSink, Redactor};
use crate::steps::{self, JobSpec, JobStatus, Summary};

/// Why `run-all` refused to start.
#[derive(Debug, thiserror::Error)]
pub enum RunAllError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{component}: describe() failed: {reason}")]
    Describe { component: String, reason: String },
}

/// A tenant ready to run.
pub struct PreparedTenant {
    pub plugin: Plugin,
    pub info: Arc<PluginInfo>,
    pub spec: JobSpec,
}

/// How one tenant's run ended.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantOutcome {
    pub tenant: String,
    /// `success`, `partial` or `failure`.
    pub status: JobStatus,
    pub exit_code: i32,
    pub duration_ms: u64,
    pub output_dir: String,
    pub entities: u64,
    pub relationships: u64,
    /// Why the run failed, when it produced no summary or the summary names an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The result of a whole `run-all`, also written to `DIR/run-all.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunAllReport {
    pub tenants: Vec<TenantOutcome>,
    pub duration_ms: u64,
    pub max_concurrent_tenants: usize,
}

impl RunAllReport {
    pub fn exit_code(&self) -> i32 {
        if self.tenants.iter().all(|t| t.exit_code == 0) {
            0
        } else {
            1
        }
    }
}

/// A component to run when a tenant names none.
#[derive(Clone, Copy)]
pub struct DefaultComponent<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// Components loaded and described once each, by path (`None`: the default one).
#[derive(Default)]
pub struct PluginCache {
    loaded: HashMap<Option<PathBuf>, (Plugin, Arc<PluginInfo>)>,
}

impl PluginCache {
    /// The component at `path` (`None`: the default one), loaded and described.
    pub async fn get(
        &mut self,
        runtime: &Runtime,
        default_component: DefaultComponent<'_>,
        path: Option<&Path>,
    ) -> Result<(Plugin, Arc<PluginInfo>), RunAllError> {
        let key = path.map(Path::to_path_buf);
        if let Some(found) = self.loaded.get(&key) {
            return Ok(found.clone());
        }
        let (name, plugin) = match path {
            Some(path) => (path.display().to_string(), runtime.load_file(path)?),
            None => (
                default_component.name.to_owned(),
                runtime.load(default_component.name, default_component.bytes)?,
            ),
        };
        let info = plugin
            .describe()
            .await
            .map_err(|failure| RunAllError::Describe {
                component: name,
                reason: failure.to_string(),
            })?;
        let entry = (plugin, Arc::new(info));
        self.loaded.insert(key, entry.clone());
        Ok(entry)
    }
}

/// Checks every tenant, then runs them all.
pub async fn run_all(
    runtime: &Runtime,
    tenants: &TenantsConfig,
    default_component: DefaultComponent<'_>,
    output_root: &Path,
    progress: Arc<dyn ProgressSink>,
) -> Result<RunAllReport, RunAllError> {
    let prepared = prepare_all(runtime, tenants, default_component, output_root, progress).await?;
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(tenants.max_concurrent_tenants));
    let mut tasks = JoinSet::new();
    let mut names = HashMap::new();
    for (order, tenant) in prepared.into_iter().enumerate() {
        let slots = slots.clone();
        let name = tenant.spec.tenant.to_string();
        let output_dir = tenant.spec.output_dir.clone();
        let handle = tasks.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let tenant_started = Instant::now();
            let result = steps::run_job(&tenant.plugin, &tenant.info, tenant.spec).await;
            (order, outcome(&name, &output_dir, tenant_started, result))
        });
        names.insert(
            handle.id(),
            (
                order,
                tenant_name_and_dir(&tenants.tenants[order].tenant, output_root),
            ),
        );
    }
    let mut outcomes: Vec<Option<TenantOutcome>> = vec![None; names.len()];
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((_, (order, outcome))) => outcomes[order] = Some(outcome),
            Err(error) => {
                // A host panic while running one tenant: report it for that tenant only.
                if let Some((order, (tenant, dir))) = names.get(&error.id()) {
                    tracing::error!(tenant = %tenant, %error, "the tenant's run panicked");
                    outcomes[*order] = Some(TenantOutcome {
                        tenant: tenant.clone(),
                        status: JobStatus::Failure,
                        exit_code: 1,
                        duration_ms: 0,
                        output_dir: dir.display().to_string(),
                        entities: 0,
                        relationships: 0,
                        error: Some(format!(
                            "the host failed while running this tenant: {error}"
                        )),
                    });
                }
            }
        }
    }
    Ok(RunAllReport {
        tenants: outcomes.into_iter().flatten().collect(),
        duration_ms: started.elapsed().as_millis() as u64,
        max_concurrent_tenants: tenants.max_concurrent_tenants,
    })
}

fn tenant_name_and_dir(tenant: &str, root: &Path) -> (String, PathBuf) {
    (tenant.to_owned(), root.join(tenant))
}

fn outcome(
    tenant: &str,
    output_dir: &Path,
    started: Instant,
    result: Result<Summary, steps::JobError>,
) -> TenantOutcome {
    let duration_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(summary) => TenantOutcome {
            tenant: tenant.to_owned(),
            status: summary.run.status,
            exit_code: summary.exit_code(),
            duration_ms,
            output_dir: output_dir.display().to_string(),
            entities: summary.run.entities,
            relationships: summary.run.relationships,
            error: summary
                .run
                .error
                .as_ref()
                .map(|e| format!("{}: {}", e.kind, e.message))
                .or_else(|| {
                    summary.integration_step_results.iter().find_map(|s| {
                        s.error
                            .as_ref()
                            .map(|e| format!("{}: {}: {}", s.id, e.kind, e.message))
                    })
                }),
        },
        Err(error) => TenantOutcome {
            tenant: tenant.to_owned(),
            status: JobStatus::Failure,
            exit_code: 1,
            duration_ms,
            output_dir: output_dir.display().to_string(),
            entities: 0,
            relationships: 0,
            error: Some(error.to_string()),
        },
    }
}

/// Loads each distinct component once and resolves every tenant's configuration, in
/// the tenants file's order; `serve` reuses it.
pub async fn prepare_all(
    runtime: &Runtime,
    tenants: &TenantsConfig,
    default_component: DefaultComponent<'_>,
    output_root: &Path,
    progress: Arc<dyn ProgressSink>,
) -> Result<Vec<PreparedTenant>, RunAllError> {
    let mut plugins = PluginCache::default();
    let mut prepared = Vec::new();
    for (index, tenant) in tenants.tenants.iter().enumerate() {
        let (plugin, info) = plugins
            .get(runtime, default_component, tenant.component.as_deref())
            .await
            .map_err(|error| match error {
                // Name the tenants file and field too: the path came from there.
                RunAllError::Load(e) if tenant.component.is_some() => ConfigError::new(
                    &tenants.file,
                    format!("tenant[{index}].component"),
                    e.to_string(),
                )
                .into(),
                other => other,
            })?;
        let spec = job::prepare(
            tenant,
            &info,
            &[],
            Mode::MultiTenant,
            &output_root.join(&tenant.tenant),
            progress.clone(),
        )
        .map_err(|mut e| {
            e.field = format!("tenant[{index}].{}", e.field);
            e
        })?;
        // The plugin's own offline checks (formats, ranges), before anything runs.
        let redactor = Redactor::new(spec.config.secrets.clone());
        match plugin.check_config(&spec.config.entries).await {
            Ok(Ok(())) => {}
            Ok(Err(IntegrationError::InvalidConfig(e))) => {
                return Err(ConfigError::new(
                    &tenants.file,
                    format!("tenant[{index}].integration.{}", e.field),
                    redactor.scrub(&e.reason),
                )
                .into());
            }
            Ok(Err(other)) => {
                let (kind, message) = steps::describe_error(&other);
                return Err(RunAllError::Describe {
                    component: format!("tenant[{index}]"),
                    reason: redactor.scrub(&format!("check-config failed: {kind}: {message}")),
                });
            }
            Err(failure) => {
                return Err(RunAllError::Describe {
                    component: format!("tenant[{index}]"),
                    reason: format!("check-config failed: {failure}"),
                });
            }
        }
        prepared.push(PreparedTenant { plugin, info, spec });
    }
    Ok(prepared)
}

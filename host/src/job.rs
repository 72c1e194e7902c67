//! From a tenant file to a runnable job: the plugin's configuration resolved against
//! `describe()`, and the sandbox policy completed with the mode's default allowlist.
//! Shared by the CLI commands and the tests, so both take the same path.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::bindings::PluginInfo;
use crate::config::{ConfigError, TenantConfig};
use crate::policy::{HostPattern, SandboxPolicy};
use crate::services::ProgressSink;
use crate::steps::{JobSpec, PluginConfig};

/// Where a tenant runs, which decides the default egress allowlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `run`, `demo`, `validate`: one tenant on the operator's machine. The default
    /// allowlist is the hosts of the configured URLs; private addresses are allowed
    /// for listed hosts.
    Local,
    /// `run-all`: many tenants in one process. The default allowlist is the plugin's
    /// declared hosts; private addresses only when listed literally.
    MultiTenant,
}

/// Resolves the plugin configuration and policy of a tenant.
pub fn prepare(
    tenant: &TenantConfig,
    info: &PluginInfo,
    overrides: &[(String, String)],
    mode: Mode,
    output_dir: &Path,
    progress: Arc<dyn ProgressSink>,
) -> Result<JobSpec, ConfigError> {
    // Secret references are read here, on the machine that runs the tenant.
    let mut given = BTreeMap::new();
    for (name, value) in &tenant.integration {
        let value = value.resolve().map_err(|reason| {
            ConfigError::new(&tenant.file, format!("integration.{name}"), reason)
        })?;
        given.insert(name.clone(), value);
    }
    for (name, value) in overrides {
        given.insert(name.clone(), value.clone());
    }
    let config = PluginConfig::resolve(info, &given, |var| std::env::var(var).ok())
        .map_err(|e| ConfigError::new(&tenant.file, e.field, e.reason))?;
    let policy = complete_policy(tenant, info, &config, mode)?;
    let monitoring = &tenant.monitoring;
    let entity_tags = match (&monitoring.account_name, monitoring.tag_with_account_name) {
        (Some(name), true) => vec![("tag.AccountName".to_owned(), name.clone())],
        _ => Vec::new(),
    };
    Ok(JobSpec {
        tenant: Arc::from(tenant.tenant.as_str()),
        entity_tags,
        config,
        policy,
        output_dir: output_dir.to_owned(),
        progress,
    })
}

fn complete_policy(
    tenant: &TenantConfig,
    info: &PluginInfo,
    config: &PluginConfig,
    mode: Mode,
) -> Result<SandboxPolicy, ConfigError> {
    let mut policy = tenant.sandbox.clone();
    policy.allow_private_when_listed = mode == Mode::Local;
    if !tenant.allowed_hosts_given {
        let defaults = match mode {
            Mode::Local => config.url_hosts(),
            Mode::MultiTenant => info.default_egress_hosts.clone(),
        };
        policy.allowed_hosts = defaults
            .iter()
            .map(|host| {
                HostPattern::parse(host).map_err(|reason| {
                    ConfigError::new(
                        &tenant.file,
                        "sandbox.allowedHosts",
                        format!("default {host:?}: {reason}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(policy)
}

/// Parses `--set key=value`.
pub fn parse_override(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected key=value, got {text:?}")),
    }
}

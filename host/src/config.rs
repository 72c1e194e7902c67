//! `tenant.toml`: which tenant, the plugin's configuration, the sandbox policy.
//!
//! Every error names the file and the field, so an operator with a thousand tenant
//! files knows which line to fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use graph_store::{PollingInterval, TenantSettings};

use crate::policy::{HostPattern, SandboxPolicy};

/// A configuration problem: the file, the field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {field}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub field: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(file: &Path, field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            file: file.display().to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// One tenant as written, in `tenant.toml` or as a `[[tenant]]` of a tenants file (and,
/// as JSON, in a fleet's store).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct TenantTable {
    tenant: String,
    /// A component to run instead of the bundled one (relative to the file).
    #[serde(default)]
    component: Option<PathBuf>,
    #[serde(default)]
    integration: BTreeMap<String, toml::Value>,
    #[serde(default)]
    sandbox: SandboxFile,
    /// J1's "Account Name" of the integration instance.
    #[serde(default, rename = "accountName")]
    account_name: Option<String>,
    /// Whether every entity gets `tag.AccountName` (needs `accountName`).
    #[serde(default, rename = "tagWithAccountName")]
    tag_with_account_name: Option<bool>,
    #[serde(default)]
    description: Option<String>,
    /// One of J1's integration polling intervals; checked after parsing so the error
    /// can list the allowed values.
    #[serde(default, rename = "pollingInterval")]
    polling_interval: Option<String>,
    /// The tenant's alert rules file (relative to the tenant file).
    #[serde(default)]
    rules: Option<PathBuf>,
}

/// A tenants file: many tenants, run side by side by `run-all`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TenantsFile {
    #[serde(default)]
    max_concurrent_tenants: Option<usize>,
    #[serde(default)]
    tenant: Vec<TenantTable>,
}

/// `[sandbox]` as written; `None` means the default.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SandboxFile {
    pub allowed_hosts: Option<Vec<String>>,
    #[serde(rename = "memoryMiB")]
    pub memory_mib: Option<u64>,
    pub timeout_seconds: Option<u64>,
    pub max_concurrent_requests: Option<u32>,
    #[serde(rename = "maxResponseKiB")]
    pub max_response_kib: Option<u64>,
    pub max_log_lines: Option<u32>,
    pub max_concurrent_steps: Option<u32>,
    #[serde(rename = "maxJobDataMiB")]
    pub max_job_data_mib: Option<u64>,
    pub max_job_data_entries: Option<u64>,
    pub max_graph_objects: Option<u64>,
    #[serde(rename = "maxGraphMiB")]
    pub max_graph_mib: Option<u64>,
    #[serde(rename = "maxOutputMiB")]
    pub max_output_mib: Option<u64>,
    #[serde(rename = "maxLogKiB")]
    pub max_log_kib: Option<u64>,
    pub max_log_line_bytes: Option<u64>,
}

/// One tenant's configuration, as read from its file.
#[derive(Debug, Clone)]
pub struct TenantConfig {
    /// Where it came from, for error messages.
    pub file: PathBuf,
    /// Tenant id: letters, digits, `-`, `_`, `.`; used in logs and output paths.
    pub tenant: String,
    /// The plugin's configuration fields, by name: text, or where a secret is read.
    pub integration: BTreeMap<String, ConfigValue>,
    /// The sandbox as configured; hosts not given are filled in per mode.
    pub sandbox: SandboxPolicy,
    /// `[sandbox]` as written (what a fleet's store keeps).
    pub sandbox_file: SandboxFile,
    /// Whether `allowedHosts` was given.
    pub allowed_hosts_given: bool,
    /// A component to run instead of the bundled one, resolved against the file's folder.
    pub component: Option<PathBuf>,
    /// Account name, description, polling interval, account-name tag.
    pub monitoring: TenantSettings,
    /// The tenant's alert rules file, resolved against the file's folder.
    pub rules: Option<PathBuf>,
}

/// The tenants of a tenants file.
#[derive(Debug, Clone)]
pub struct TenantsConfig {
    pub file: PathBuf,
    /// Tenants run side by side at most.
    pub max_concurrent_tenants: usize,
    pub tenants: Vec<TenantConfig>,
}

/// Tenants run side by side unless the file says otherwise.
pub const DEFAULT_MAX_CONCURRENT_TENANTS: usize = 8;

impl TenantsConfig {
    /// Reads and checks a tenants file: `maxConcurrentTenants` and `[[tenant]]` tables
    /// with the fields of a tenant file. Tenant ids must be unique.
    pub fn load(path: &Path) -> Result<TenantsConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::new(path, "(file)", format!("cannot read: {error}")))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<TenantsConfig, ConfigError> {
        let file: TenantsFile = deserialize(path, text)?;
        if file.tenant.is_empty() {
            return Err(ConfigError::new(path, "tenant", "no [[tenant]] tables"));
        }
        let max_concurrent_tenants = match file.max_concurrent_tenants {
            Some(0) => {
                return Err(ConfigError::new(
                    path,
                    "maxConcurrentTenants",
                    "must be at least 1",
                ));
            }
            Some(n) => n,
            None => DEFAULT_MAX_CONCURRENT_TENANTS,
        };
        let mut seen = std::collections::HashSet::new();
        let mut tenants = Vec::new();
        for (index, table) in file.tenant.into_iter().enumerate() {
            let prefix = format!("tenant[{index}]");
            let config = TenantConfig::from_table(path, table).map_err(|mut e| {
                e.field = format!("{prefix}.{}", e.field);
                e
            })?;
            if !seen.insert(config.tenant.clone()) {
                return Err(ConfigError::new(
                    path,
                    format!("{prefix}.tenant"),
                    format!("tenant id {:?} is used twice", config.tenant),
                ));
            }
            tenants.push(config);
        }
        Ok(TenantsConfig {
            file: path.to_owned(),
            max_concurrent_tenants,
            tenants,
        })
    }
}

/// Deserializes TOML, naming the failing field by its path.
fn deserialize<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let field_path = error.path().to_string();
        let inner = error.into_inner();
        // One line, whatever the parser wrote.
        let message = inner
            .message()
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        // A missing field is named only in the message: append it to the path.
        let field = match (backticked(&message), field_path.as_str()) {
            (Some(name), ".")
                if message.starts_with("missing field") || message.starts_with("unknown field") =>
            {
                name
            }
            (Some(name), parent) if message.starts_with("missing field") => {
                format!("{parent}.{name}")
            }
            (_, ".") => "(syntax)".to_owned(),
            (_, other) => other.to_owned(),
        };
        let location = inner
            .span()
            .map(|span| {
                format!(
                    " (line {})",
                    text[..span.start.min(text.len())].lines().count().max(1)
                )
            })
            .unwrap_or_default();
        ConfigError::new(path, field, format!("{message}{location}"))
    })
}

impl TenantConfig {
    /// Reads and checks a tenant file.
    pub fn load(path: &Path) -> Result<TenantConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::new(path, "(file)", format!("cannot read: {error}")))?;
        Self::parse(path, &text)
    }

    /// Parses the text of a tenant file (`path` only names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<TenantConfig, ConfigError> {
        let table: TenantTable = deserialize(path, text)?;
        Self::from_table(path, table)
    }

    fn from_table(path: &Path, table: TenantTable) -> Result<TenantConfig, ConfigError> {
        let TenantTable {
            tenant,
            component,
            integration,
            sandbox,
            account_name,
            tag_with_account_name,
            description,
            polling_interval,
            rules,
        } = table;
        check_tenant_id(&tenant).map_err(|reason| ConfigError::new(path, "tenant", reason))?;
        let monitoring = monitoring_settings(
            path,
            &tenant,
            account_name,
            tag_with_account_name,
            description,
            polling_interval,
        )?;
        let beside_file = |c: PathBuf| match path.parent() {
            Some(dir) if c.is_relative() => dir.join(c),
            _ => c,
        };
        let integration = integration
            .into_iter()
            .map(|(name, value)| {
                let value = ConfigValue::from_toml(value, &beside_file).map_err(|reason| {
                    ConfigError::new(path, format!("integration.{name}"), reason)
                })?;
                Ok((name, value))
            })
            .collect::<Result<_, _>>()?;
        let sandbox_file = sandbox.clone();
        let (sandbox, allowed_hosts_given) = sandbox_policy(path, sandbox)?;
        Ok(TenantConfig {
            file: path.to_owned(),
            tenant,
            integration,
            sandbox,
            sandbox_file,
            allowed_hosts_given,
            component: component.map(beside_file),
            monitoring,
            rules: rules.map(beside_file),
        })
    }
}

impl TenantConfig {
    /// The tenant as a fleet's store keeps it: the tenant table as JSON, with paths made
    /// absolute (they are read on the workers) and without `rules`, which the store
    /// keeps as text beside it. Secrets stay references.
    pub fn to_stored(&self) -> serde_json::Value {
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let table = TenantTable {
            tenant: self.tenant.clone(),
            component: self.component.as_deref().map(absolute),
            integration: self
                .integration
                .iter()
                .map(|(name, value)| (name.clone(), value.to_toml(&absolute)))
                .collect(),
            sandbox: self.sandbox_file.clone(),
            account_name: self.monitoring.account_name.clone(),
            tag_with_account_name: Some(self.monitoring.tag_with_account_name),
            description: self.monitoring.description.clone(),
            polling_interval: Some(self.monitoring.polling_interval.as_str().to_owned()),
            rules: None,
        };
        serde_json::to_value(table).unwrap_or_default()
    }

    /// Reads a tenant back from a store (`source` names it in errors), with every check
    /// of a tenant file.
    pub fn from_stored(
        source: &Path,
        stored: &serde_json::Value,
    ) -> Result<TenantConfig, ConfigError> {
        let table: TenantTable = serde_path_to_error::deserialize(stored).map_err(|error| {
            ConfigError::new(source, error.path().to_string(), error.inner().to_string())
        })?;
        Self::from_table(source, table)
    }
}

/// A plugin configuration value as written: text, or where to read a secret on the
/// machine that runs the tenant, so that a shared store never holds the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigValue {
    Text(String),
    /// `{ env = "VAR" }`: the environment variable, read when a run is prepared.
    Env(String),
    /// `{ file = "PATH" }`: the file's content without its trailing line break, read
    /// when a run is prepared (relative paths are against the tenant file's folder).
    File(PathBuf),
}

/// A secret file is a key or a token, not a document.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

impl ConfigValue {
    fn from_toml(
        value: toml::Value,
        beside_file: &dyn Fn(PathBuf) -> PathBuf,
    ) -> Result<ConfigValue, String> {
        const EXPECTED: &str =
            "must be a string, number or boolean, or { env = \"VAR\" } or { file = \"PATH\" }";
        Ok(match value {
            toml::Value::String(s) => ConfigValue::Text(s),
            toml::Value::Integer(i) => ConfigValue::Text(i.to_string()),
            toml::Value::Boolean(b) => ConfigValue::Text(b.to_string()),
            toml::Value::Float(f) => ConfigValue::Text(f.to_string()),
            toml::Value::Table(table) if table.len() == 1 => {
                let (kind, target) = table.into_iter().next().ok_or(EXPECTED)?;
                let toml::Value::String(target) = target else {
                    return Err(format!("{kind}: must be a string"));
                };
                match kind.as_str() {
                    "env" if crate::sandbox::names::is_valid_env_var(&target) => {
                        ConfigValue::Env(target)
                    }
                    "env" => {
                        return Err(format!(
                            "env: {target:?} is not an environment variable name (A-Z first, then A-Z, 0-9, _)"
                        ));
                    }
                    "file" if !target.is_empty() => {
                        ConfigValue::File(beside_file(PathBuf::from(target)))
                    }
                    "file" => return Err("file: must not be empty".into()),
                    _ => return Err(EXPECTED.into()),
                }
            }
            _ => return Err(EXPECTED.into()),
        })
    }

    fn to_toml(&self, path: &dyn Fn(&Path) -> PathBuf) -> toml::Value {
        let reference = |kind: &str, target: String| {
            toml::Value::Table(toml::map::Map::from_iter([(
                kind.to_owned(),
                toml::Value::String(target),
            )]))
        };
        match self {
            ConfigValue::Text(text) => toml::Value::String(text.clone()),
            ConfigValue::Env(var) => reference("env", var.clone()),
            ConfigValue::File(file) => reference("file", path(file).display().to_string()),
        }
    }

    /// Whether the value is read elsewhere (a reference), not written here.
    pub fn is_reference(&self) -> bool {
        !matches!(self, ConfigValue::Text(_))
    }

    /// The value: the text, or the secret read from the environment or the file.
    pub fn resolve(&self) -> Result<String, String> {
        match self {
            ConfigValue::Text(text) => Ok(text.clone()),
            ConfigValue::Env(var) => match std::env::var(var) {
                Ok(value) if !value.trim().is_empty() => Ok(value),
                Ok(_) => Err(format!(
                    "the environment variable {var} is empty on this machine"
                )),
                Err(_) => Err(format!(
                    "the environment variable {var} is not set on this machine"
                )),
            },
            ConfigValue::File(file) => {
                use std::io::Read;
                let shown = file.display();
                let opened = std::fs::File::open(file)
                    .map_err(|e| format!("cannot read the secret file {shown}: {e}"))?;
                let mut text = String::new();
                opened
                    .take(MAX_SECRET_FILE_BYTES + 1)
                    .read_to_string(&mut text)
                    .map_err(|e| format!("cannot read the secret file {shown}: {e}"))?;
                if text.len() as u64 > MAX_SECRET_FILE_BYTES {
                    return Err(format!(
                        "the secret file {shown} is larger than {} KiB",
                        MAX_SECRET_FILE_BYTES / 1024
                    ));
                }
                let value = text.trim_end_matches(['\n', '\r']).to_owned();
                if value.trim().is_empty() {
                    return Err(format!("the secret file {shown} is empty"));
                }
                Ok(value)
            }
        }
    }
}

/// Checks the monitoring fields: a known polling interval, an account name where the
/// tag needs one, no control characters in text shown by the console.
fn monitoring_settings(
    path: &Path,
    tenant: &str,
    account_name: Option<String>,
    tag_with_account_name: Option<bool>,
    description: Option<String>,
    polling_interval: Option<String>,
) -> Result<TenantSettings, ConfigError> {
    let polling_interval = match polling_interval {
        Some(text) => PollingInterval::parse(&text)
            .map_err(|reason| ConfigError::new(path, "pollingInterval", reason))?,
        None => PollingInterval::DEFAULT,
    };
    for (field, text) in [
        ("accountName", &account_name),
        ("description", &description),
    ] {
        if let Some(text) = text
            && (text.chars().any(char::is_control) || text.len() > 1024)
        {
            return Err(ConfigError::new(
                path,
                field,
                "must be at most 1024 characters, without control characters",
            ));
        }
    }
    let account_name = account_name.filter(|name| !name.trim().is_empty());
    let tag_with_account_name = tag_with_account_name.unwrap_or(false);
    if tag_with_account_name && account_name.is_none() {
        return Err(ConfigError::new(
            path,
            "tagWithAccountName",
            "needs accountName: the tag's value is the account name",
        ));
    }
    Ok(TenantSettings {
        tenant: tenant.to_owned(),
        account_name,
        description,
        polling_interval,
        tag_with_account_name,
    })
}

/// Tenant ids become directory names: keep them to a safe alphabet.
pub fn check_tenant_id(tenant: &str) -> Result<(), String> {
    if tenant.is_empty() || tenant.len() > 128 {
        return Err("must have 1 to 128 characters".into());
    }
    if tenant.starts_with('.')
        || !tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(
            "may only use letters, digits, '-', '_' and '.', and not start with '.'".into(),
        );
    }
    Ok(())
}

fn sandbox_policy(path: &Path, file: SandboxFile) -> Result<(SandboxPolicy, bool), ConfigError> {
    let mut policy = SandboxPolicy::default();
    let positive = |field: &str, value: u64| {
        if value == 0 {
            Err(ConfigError::new(
                path,
                format!("sandbox.{field}"),
                "must be at least 1",
            ))
        } else {
            Ok(value)
        }
    };
    if let Some(mib) = file.memory_mib {
        policy.memory_bytes = positive("memoryMiB", mib)?
            .checked_mul(1 << 20)
            .ok_or_else(|| ConfigError::new(path, "sandbox.memoryMiB", "is too large"))?;
    }
    if let Some(seconds) = file.timeout_seconds {
        policy.timeout = Duration::from_secs(positive("timeoutSeconds", seconds)?);
    }
    if let Some(max) = file.max_concurrent_requests {
        policy.max_concurrent_requests = positive("maxConcurrentRequests", u64::from(max))? as u32;
    }
    if let Some(kib) = file.max_response_kib {
        policy.max_response_bytes = positive("maxResponseKiB", kib)?.saturating_mul(1 << 10);
    }
    if let Some(lines) = file.max_log_lines {
        policy.max_log_lines = lines;
    }
    if let Some(steps) = file.max_concurrent_steps {
        policy.max_concurrent_steps = positive("maxConcurrentSteps", u64::from(steps))? as u32;
    }
    crate::sandbox::limits::apply_budgets(&mut policy.budgets, &file)
        .map_err(|(field, reason)| ConfigError::new(path, format!("sandbox.{field}"), reason))?;
    let given = file.allowed_hosts.is_some();
    if let Some(hosts) = file.allowed_hosts {
        policy.allowed_hosts = hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                HostPattern::parse(host).map_err(|reason| {
                    ConfigError::new(path, format!("sandbox.allowedHosts[{i}]"), reason)
                })
            })
            .collect::<Result<_, _>>()?;
    }
    Ok((policy, given))
}

/// The first name in backticks of a serde message ("unknown field `foo`, expected ...").
fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TenantConfig, ConfigError> {
        TenantConfig::parse(Path::new("tenant.toml"), text)
    }

    #[test]
    fn reads_the_documented_example() {
        let config = parse(
            r#"
            tenant = "acme"
            [integration]
            apiKey = "k"
            baseUrl = "https://console.jumpcloud.com"
            [sandbox]
            allowedHosts = ["console.jumpcloud.com"]
            memoryMiB = 64
            timeoutSeconds = 1800
            maxConcurrentRequests = 8
            "#,
        )
        .unwrap();
        assert_eq!(config.tenant, "acme");
        assert_eq!(config.integration["apiKey"], ConfigValue::Text("k".into()));
        assert_eq!(config.sandbox.memory_bytes, 64 << 20);
        assert_eq!(config.sandbox.timeout, Duration::from_secs(1800));
        assert_eq!(config.sandbox.max_concurrent_requests, 8);
        assert!(config.allowed_hosts_given);
        assert!(
            config
                .sandbox
                .allowing("console.jumpcloud.com", 443)
                .is_some()
        );
    }

    #[test]
    fn errors_name_file_and_field() {
        let error = parse("tenant = \"a\"\nbogus = 1\n").unwrap_err();
        assert_eq!(
            (error.file.as_str(), error.field.as_str()),
            ("tenant.toml", "bogus")
        );

        let error = parse("[integration]\napiKey = \"k\"\n").unwrap_err();
        assert_eq!(error.field, "tenant");

        let error = parse("tenant = \"a\"\n[sandbox]\nmemoryMiB = 0\n").unwrap_err();
        assert_eq!(error.field, "sandbox.memoryMiB");

        let error = parse("tenant = \"a\"\n[sandbox]\nmemoryMB = 5\n").unwrap_err();
        assert_eq!(error.field, "sandbox.memoryMB");

        let error = parse("tenant = \"a\"\n[sandbox]\nmemoryMiB = \"lots\"\n").unwrap_err();
        assert_eq!(error.field, "sandbox.memoryMiB");

        let error =
            parse("tenant = \"a\"\n[sandbox]\nallowedHosts = [\"https://x.com\"]\n").unwrap_err();
        assert_eq!(error.field, "sandbox.allowedHosts[0]");

        let error = parse("tenant = \"../etc\"\n").unwrap_err();
        assert_eq!(error.field, "tenant");
        assert!(error.to_string().starts_with("tenant.toml: tenant: "));
    }

    #[test]
    fn monitoring_fields_default_to_j1s_values() {
        let config = parse("tenant = \"a\"\n").unwrap();
        assert_eq!(config.monitoring, TenantSettings::new("a"));
        assert_eq!(config.monitoring.polling_interval, PollingInterval::OneDay);
        let config = parse(
            "tenant = \"a\"\naccountName = \"Acme IdP\"\ntagWithAccountName = true\ndescription = \"prod\"\npollingInterval = \"EIGHT_HOURS\"\nrules = \"rules.json\"\n",
        )
        .unwrap();
        assert_eq!(config.monitoring.account_name.as_deref(), Some("Acme IdP"));
        assert!(config.monitoring.tag_with_account_name);
        assert_eq!(config.monitoring.description.as_deref(), Some("prod"));
        assert_eq!(
            config.monitoring.polling_interval,
            PollingInterval::EightHours
        );
        assert_eq!(config.rules.as_deref(), Some(Path::new("rules.json")));
    }

    #[test]
    fn monitoring_field_errors_name_the_field_and_the_allowed_values() {
        let error = parse("tenant = \"a\"\npollingInterval = \"HOURLY\"\n").unwrap_err();
        assert_eq!(error.field, "pollingInterval");
        assert!(error.reason.contains("ONE_HOUR") && error.reason.contains("DISABLED"));
        let error = parse("tenant = \"a\"\ntagWithAccountName = true\n").unwrap_err();
        assert_eq!(error.field, "tagWithAccountName");
        let error = parse("tenant = \"a\"\ntagWithAccountName = \"yes\"\n").unwrap_err();
        assert_eq!(error.field, "tagWithAccountName");
        let error = parse("tenant = \"a\"\naccountName = \"x\\u001b[2J\"\n").unwrap_err();
        assert_eq!(error.field, "accountName");
        let error = parse("tenant = \"a\"\npollingInterval = 3\n").unwrap_err();
        assert_eq!(error.field, "pollingInterval");
    }

    #[test]
    fn tenants_file_names_the_tenant_index() {
        let parse_many = |text: &str| TenantsConfig::parse(Path::new("tenants.toml"), text);
        let ok = parse_many(
            "maxConcurrentTenants = 3\n[[tenant]]\ntenant = \"a\"\n[tenant.integration]\napiKey = \"k\"\n[[tenant]]\ntenant = \"b\"\ncomponent = \"x.wasm\"\n",
        )
        .unwrap();
        assert_eq!(ok.max_concurrent_tenants, 3);
        assert_eq!(ok.tenants.len(), 2);
        assert_eq!(
            ok.tenants[1].component.as_deref(),
            Some(Path::new("x.wasm"))
        );

        let error =
            parse_many("[[tenant]]\ntenant = \"a\"\n[[tenant]]\ntenant = \"a\"\n").unwrap_err();
        assert_eq!(error.field, "tenant[1].tenant");

        let error = parse_many("[[tenant]]\ntenant = \"a\"\n[[tenant]]\ntenant = \"b\"\n[tenant.sandbox]\nmemoryMiB = 0\n").unwrap_err();
        assert_eq!(error.field, "tenant[1].sandbox.memoryMiB");

        let error = parse_many("[[tenant]]\ntenant = \"a\"\nbogus = 1\n").unwrap_err();
        assert_eq!(error.field, "tenant[0].bogus");

        assert_eq!(parse_many("").unwrap_err().field, "tenant");
    }

    #[test]
    fn secrets_may_be_references_to_an_environment_variable_or_a_file() {
        let config = TenantConfig::parse(
            Path::new("conf/tenant.toml"),
            "tenant = \"a\"\n[integration]\napiKey = { env = \"ACME_JC_KEY\" }\norgId = { file = \"secrets/org\" }\nbaseUrl = \"https://x\"\n",
        )
        .unwrap();
        assert_eq!(
            config.integration["apiKey"],
            ConfigValue::Env("ACME_JC_KEY".into())
        );
        assert_eq!(
            config.integration["orgId"],
            ConfigValue::File(PathBuf::from("conf/secrets/org")),
            "relative to the tenant file"
        );
        assert!(config.integration["apiKey"].is_reference());
        assert!(!config.integration["baseUrl"].is_reference());

        for (value, expected) in [
            ("{ env = \"lower\" }", "not an environment variable name"),
            ("{ env = \"A\", file = \"b\" }", "{ env = \"VAR\" }"),
            ("{ vault = \"x\" }", "{ file = \"PATH\" }"),
            ("{ file = \"\" }", "must not be empty"),
            ("{ env = 3 }", "env: must be a string"),
            ("[1, 2]", "must be a string, number or boolean"),
        ] {
            let error = parse(&format!(
                "tenant = \"a\"\n[integration]\napiKey = {value}\n"
            ))
            .unwrap_err();
            assert_eq!(error.field, "integration.apiKey", "{value}");
            assert!(error.reason.contains(expected), "{value}: {}", error.reason);
        }
    }

    #[test]
    fn references_resolve_on_the_machine_that_runs_the_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "jca_from_file\n").unwrap();
        assert_eq!(
            ConfigValue::File(file.clone()).resolve().unwrap(),
            "jca_from_file"
        );
        std::fs::write(&file, "\n").unwrap();
        assert!(
            ConfigValue::File(file.clone())
                .resolve()
                .unwrap_err()
                .contains("is empty")
        );
        std::fs::write(&file, vec![b'k'; 70 * 1024]).unwrap();
        assert!(
            ConfigValue::File(file)
                .resolve()
                .unwrap_err()
                .contains("larger than 64 KiB")
        );
        let missing = ConfigValue::File(dir.path().join("nope"))
            .resolve()
            .unwrap_err();
        assert!(
            missing.starts_with("cannot read the secret file"),
            "{missing}"
        );
        // PATH is set in every test process; this one is not.
        assert!(
            !ConfigValue::Env("PATH".into())
                .resolve()
                .unwrap()
                .is_empty()
        );
        let unset = ConfigValue::Env("INTEGRATION_HOST_TEST_UNSET_VARIABLE".into())
            .resolve()
            .unwrap_err();
        assert_eq!(
            unset,
            "the environment variable INTEGRATION_HOST_TEST_UNSET_VARIABLE is not set on this machine"
        );
    }

    #[test]
    fn a_tenant_reads_back_from_its_stored_form_with_absolute_paths() {
        let config = TenantConfig::parse(
            Path::new("/etc/fleet/tenants.toml"),
            "tenant = \"acme\"\ncomponent = \"c.wasm\"\naccountName = \"Acme\"\npollingInterval = \"ONE_HOUR\"\nrules = \"r.json\"\n\
             [integration]\napiKey = { file = \"keys/acme\" }\nbaseUrl = \"https://x\"\n[sandbox]\nmemoryMiB = 32\nallowedHosts = [\"x\"]\n",
        )
        .unwrap();
        let stored = config.to_stored();
        assert_eq!(
            stored["integration"]["apiKey"],
            serde_json::json!({"file": "/etc/fleet/keys/acme"})
        );
        assert_eq!(
            stored["rules"],
            serde_json::Value::Null,
            "rules are stored as text beside"
        );
        let back = TenantConfig::from_stored(Path::new("store:acme"), &stored).unwrap();
        assert_eq!(back.tenant, "acme");
        assert_eq!(back.integration, config.integration);
        assert_eq!(
            back.component.as_deref(),
            Some(Path::new("/etc/fleet/c.wasm"))
        );
        assert_eq!(back.monitoring, config.monitoring);
        assert_eq!(back.sandbox.memory_bytes, 32 << 20);
        assert!(back.allowed_hosts_given);
        assert_eq!(
            back.to_stored(),
            stored,
            "a second round trip changes nothing"
        );

        let mut broken = stored.clone();
        broken["sandbox"]["memoryMiB"] = serde_json::json!(0);
        let error = TenantConfig::from_stored(Path::new("store:acme"), &broken).unwrap_err();
        assert_eq!(error.field, "sandbox.memoryMiB");
    }
}

//! Tenants in the fleet's store. In fleet mode a tenant's configuration lives in the
//! shared store, so every scheduler and worker runs the same one: `tenants import`
//! checks a tenants file whole and stores each tenant (its table as JSON, its rules as
//! text); workers read a tenant from the store when its job comes, and again when its
//! revision changed.
//!
//! Secrets are never stored: a field the plugin marks secret must be a reference
//! (`{ env = "VAR" }` or `{ file = "PATH" }`), read on the worker when a run is
//! prepared.

use std::path::{Path, PathBuf};

use alert_rules::{Format, J1qlChecker, Rule};
use graph_store::{ConfigChange, Store, StoreError, TenantConfigRecord};
use serde::{Deserialize, Serialize};

use crate::bindings::PluginInfo;
use crate::config::{ConfigError, TenantConfig, TenantsConfig};
use crate::run_all::{DefaultComponent, PluginCache, RunAllError};
use crate::runtime::Runtime;

/// The stored document's shape; a newer program may write a newer one.
const DOCUMENT_VERSION: u32 = 1;

/// What the store keeps of a tenant.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StoredDocument {
    version: u32,
    /// The tenant table, as `TenantConfig::to_stored` writes it.
    tenant: serde_json::Value,
    rules: Option<StoredRules>,
}

/// A rules file's text, kept in the store so workers need no copy of it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StoredRules {
    /// Where it was imported from (for messages).
    file: String,
    /// `json` or `toml`.
    format: String,
    text: String,
}

/// Why an import stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Plugin(#[from] RunAllError),
    #[error("{0}")]
    Rules(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ImportError {
    /// 2 for bad input, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ImportError::Store(_) => 1,
            _ => 2,
        }
    }
}

/// One tenant as the import stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub tenant: String,
    pub revision: i64,
    pub change: ConfigChange,
}

/// Checks every tenant of the file (fields known to its component, secrets as
/// references, rules parsed), then stores them all. Bad input stores nothing.
pub async fn import(
    runtime: &Runtime,
    tenants_file: &Path,
    store: &dyn Store,
    default_component: DefaultComponent<'_>,
) -> Result<Vec<Imported>, ImportError> {
    let tenants = TenantsConfig::load(tenants_file)?;
    let mut plugins = PluginCache::default();
    let mut documents = Vec::new();
    for (index, tenant) in tenants.tenants.iter().enumerate() {
        let field = |name: &str| format!("tenant[{index}].{name}");
        let (_, info) = plugins
            .get(runtime, default_component, tenant.component.as_deref())
            .await
            .map_err(|error| match error {
                RunAllError::Load(e) => {
                    ConfigError::new(tenants_file, field("component"), e.to_string()).into()
                }
                other => ImportError::Plugin(other),
            })?;
        check_fields(tenant, &info).map_err(|(name, reason)| {
            ConfigError::new(tenants_file, field(&format!("integration.{name}")), reason)
        })?;
        let rules = match &tenant.rules {
            Some(path) => Some(read_rules(path)?),
            None => None,
        };
        let document = StoredDocument {
            version: DOCUMENT_VERSION,
            tenant: tenant.to_stored(),
            rules,
        };
        let json = serde_json::to_value(&document)
            .map_err(|e| ImportError::Store(StoreError::Database(e.to_string())))?;
        documents.push((tenant.monitoring.clone(), json));
    }
    let mut imported = Vec::new();
    for (settings, json) in documents {
        let (revision, change) = store.put_tenant_config(&settings, &json).await?;
        imported.push(Imported {
            tenant: settings.tenant,
            revision,
            change,
        });
    }
    Ok(imported)
}

/// Unknown fields, and secrets written as values: `(field, reason)`.
fn check_fields(tenant: &TenantConfig, info: &PluginInfo) -> Result<(), (String, String)> {
    for (name, value) in &tenant.integration {
        let Some(field) = info.config_fields.iter().find(|f| &f.name == name) else {
            let known: Vec<&str> = info.config_fields.iter().map(|f| f.name.as_str()).collect();
            return Err((
                name.clone(),
                format!("unknown field; this plugin accepts {}", known.join(", ")),
            ));
        };
        if field.secret && !value.is_reference() {
            return Err((
                name.clone(),
                format!(
                    "a secret is not stored in plain text: write {name} = {{ env = \"VAR\" }} \
                     or {name} = {{ file = \"PATH\" }}, read on each worker"
                ),
            ));
        }
    }
    Ok(())
}

fn read_rules(path: &Path) -> Result<StoredRules, ImportError> {
    let shown = path.display().to_string();
    let format = Format::from_path(path)
        .ok_or_else(|| ImportError::Rules(format!("{shown}: rules files end in .json or .toml")))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| ImportError::Rules(format!("{shown}: cannot read: {e}")))?;
    alert_rules::parse_rules(&text, format, &shown, &J1qlChecker)
        .map_err(|e| ImportError::Rules(e.to_string()))?;
    Ok(StoredRules {
        file: std::path::absolute(path)
            .map(|p| p.display().to_string())
            .unwrap_or(shown),
        format: match format {
            Format::Json => "json",
            Format::Toml => "toml",
        }
        .to_owned(),
        text,
    })
}

/// A tenant as a worker reads it from the store.
pub struct StoredTenant {
    pub revision: i64,
    pub config: TenantConfig,
    pub rules: Vec<Rule>,
}

/// Why a tenant could not be read from the store.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("tenant {0:?} has no configuration in the store: load it with `tenants import`")]
    NotImported(String),
    /// The stored document does not make a valid tenant (written by a newer program,
    /// or edited by hand).
    #[error("{0}")]
    Invalid(String),
}

/// A tenant from its stored record.
pub fn from_record(record: TenantConfigRecord) -> Result<StoredTenant, LoadError> {
    let source = PathBuf::from(format!("store:{}@{}", record.tenant, record.revision));
    let shown = source.display().to_string();
    let document: StoredDocument = serde_json::from_value(record.config)
        .map_err(|e| LoadError::Invalid(format!("{shown}: {e}")))?;
    if document.version != DOCUMENT_VERSION {
        return Err(LoadError::Invalid(format!(
            "{shown}: stored by a program with document version {}, this one reads {DOCUMENT_VERSION}",
            document.version
        )));
    }
    let config = TenantConfig::from_stored(&source, &document.tenant)
        .map_err(|e| LoadError::Invalid(e.to_string()))?;
    let rules = match document.rules {
        Some(rules) => {
            let format = match rules.format.as_str() {
                "toml" => Format::Toml,
                _ => Format::Json,
            };
            let file = format!("{shown} ({})", rules.file);
            alert_rules::parse_rules(&rules.text, format, &file, &J1qlChecker)
                .map_err(|e| LoadError::Invalid(e.to_string()))?
        }
        None => Vec::new(),
    };
    Ok(StoredTenant {
        revision: record.revision,
        config,
        rules,
    })
}

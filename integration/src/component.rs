//! The component's face: WIT bindings (kept private to this module), the exported
//! `plugin` interface, and the conversions between the plain-Rust model and WIT types.

use std::time::Duration;

use crate::config::{self, Config};
use crate::error::{GraphError, IntegrationError};
use crate::host::{BatchOutcome, Host};
use crate::http::{Timeouts, WasiTransport};
use crate::model::{self, Value};
use crate::steps::{self, Kind, StepContext, StepReport};
use crate::transport::{Level, Logger};

wit_bindgen::generate!({
    world: "integration",
    path: "../wit",
    with: {
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        "wasi:random/random@0.2.12": wasip2::random::random,
    },
});

use exports::secgraph::integration::plugin::Guest;
use secgraph::integration::{graph, limits, log, progress, types as wit};

/// Connecting takes no longer than this, whatever the request timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

struct Component;

export!(Component);

impl Guest for Component {
    fn describe() -> wit::PluginInfo {
        plugin_info()
    }

    fn check_config(config: Vec<wit::ConfigEntry>) -> Result<(), wit::IntegrationError> {
        parse_config(&config).map(drop)
    }

    fn validate(config: Vec<wit::ConfigEntry>) -> Result<(), wit::IntegrationError> {
        let config = parse_config(&config)?;
        steps::validate(&config, &mut transport(&config), &WitLog).map_err(to_wit_error)
    }

    fn execute_step(
        step_id: String,
        config: Vec<wit::ConfigEntry>,
    ) -> Result<wit::StepReport, wit::IntegrationError> {
        let config = parse_config(&config)?;
        let context = StepContext {
            config: &config,
            transport: &mut transport(&config),
            host: &mut WitHost,
            log: &WitLog,
            concurrency: limits::max_concurrent_requests().max(1) as usize,
        };
        let report: StepReport = steps::execute_step(&step_id, context).map_err(to_wit_error)?;
        Ok(wit::StepReport {
            skipped_records: report.skipped_records,
            convert_nanos: report.convert_nanos,
        })
    }
}

fn transport(config: &Config) -> WasiTransport {
    WasiTransport::new(Timeouts {
        connect: config.request_timeout.min(MAX_CONNECT_TIMEOUT),
        first_byte: config.request_timeout,
        between_bytes: config.request_timeout,
    })
}

fn parse_config(entries: &[wit::ConfigEntry]) -> Result<Config, wit::IntegrationError> {
    Config::from_entries(entries.iter().map(|e| (e.name.as_str(), e.value.as_str())))
        .map_err(to_wit_error)
}

fn plugin_info() -> wit::PluginInfo {
    let field = |name: &str,
                 description: &str,
                 secret,
                 required,
                 default: Option<&str>,
                 env: Option<&str>| {
        wit::ConfigField {
            name: name.into(),
            description: description.into(),
            secret,
            required,
            default_value: default.map(Into::into),
            env_var: env.map(Into::into),
        }
    };
    wit::PluginInfo {
        id: crate::PLUGIN_ID.into(),
        name: crate::PLUGIN_NAME.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        config_fields: vec![
            field(
                config::API_KEY,
                "API key of a JumpCloud administrator (read-only is enough)",
                true,
                true,
                None,
                Some(config::API_KEY_ENV),
            ),
            field(
                config::BASE_URL,
                "Console URL: https://console.jumpcloud.com (US) or https://console.eu.jumpcloud.com (EU)",
                false,
                false,
                Some(config::DEFAULT_BASE_URL),
                None,
            ),
            field(
                config::REQUEST_TIMEOUT,
                "Seconds one request may take (connect, first byte, between bytes) before it is retried",
                false,
                false,
                Some(&config::DEFAULT_REQUEST_TIMEOUT_SECONDS.to_string()),
                None,
            ),
            field(
                config::ORG_ID,
                "Organization to read with a multi-tenant key; all visible organizations when empty",
                false,
                false,
                None,
                None,
            ),
        ],
        steps: steps::STEPS
            .iter()
            .map(|step| wit::StepInfo {
                id: step.id.into(),
                name: step.name.into(),
                depends_on: step.depends_on.iter().map(|d| (*d).into()).collect(),
                declared_types: step
                    .declared_types
                    .iter()
                    .map(|(ty, class, kind)| wit::DeclaredType {
                        type_: (*ty).into(),
                        class: (*class).into(),
                        kind: match kind {
                            Kind::Entity => wit::ObjectKind::Entity,
                            Kind::Relationship => wit::ObjectKind::Relationship,
                        },
                    })
                    .collect(),
            })
            .collect(),
        default_egress_hosts: config::DEFAULT_EGRESS_HOSTS
            .iter()
            .map(|h| (*h).into())
            .collect(),
    }
}

/// The host's `graph` and `progress` imports.
struct WitHost;

impl Host for WitHost {
    fn add_entities(&mut self, entities: Vec<model::Entity>) -> Result<BatchOutcome, GraphError> {
        let entities: Vec<wit::Entity> = entities.into_iter().map(to_wit_entity).collect();
        graph::add_entities(&entities)
            .map(from_wit_outcome)
            .map_err(from_wit_graph_error)
    }

    fn add_relationships(
        &mut self,
        relationships: Vec<model::Relationship>,
    ) -> Result<BatchOutcome, GraphError> {
        let relationships: Vec<wit::Relationship> = relationships
            .into_iter()
            .map(|r| wit::Relationship {
                key: r.key,
                type_: r.relationship_type.into(),
                class: r.class.into(),
                from_key: r.from_key,
                to_key: r.to_key,
                properties: to_wit_properties(r.properties),
            })
            .collect();
        graph::add_relationships(&relationships)
            .map(from_wit_outcome)
            .map_err(from_wit_graph_error)
    }

    fn add_mapped_relationships(
        &mut self,
        relationships: Vec<model::MappedRelationship>,
    ) -> Result<BatchOutcome, GraphError> {
        let relationships: Vec<wit::MappedRelationship> = relationships
            .into_iter()
            .map(|r| wit::MappedRelationship {
                key: r.key,
                type_: r.relationship_type.into(),
                class: r.class.into(),
                source_key: r.source_key,
                direction: wit::MappingDirection::Forward,
                target_filter_keys: r
                    .target_filter_keys
                    .into_iter()
                    .map(|set| set.into_iter().map(Into::into).collect())
                    .collect(),
                target_entity: wit::TargetEntity {
                    key: r.target.key,
                    type_: r.target.entity_type.into(),
                    classes: r.target.classes.iter().map(|c| (*c).into()).collect(),
                    properties: to_wit_properties(r.target.properties),
                },
                properties: to_wit_properties(r.properties),
            })
            .collect();
        graph::add_mapped_relationships(&relationships)
            .map(from_wit_outcome)
            .map_err(from_wit_graph_error)
    }

    fn has_key(&self, key: &str) -> bool {
        graph::has_key(key)
    }

    fn set_data(&mut self, key: &str, value: &str) {
        graph::set_data(key, value);
    }

    fn get_data(&self, key: &str) -> Option<String> {
        graph::get_data(key)
    }

    fn progress(&self, step_id: &str, done: u64, total: Option<u64>) {
        progress::report(step_id, done, total);
    }
}

/// The host's `log` import.
struct WitLog;

impl Logger for WitLog {
    fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        let level = match level {
            Level::Trace => log::Level::Trace,
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        };
        let fields: Vec<log::Field> = fields
            .iter()
            .map(|(name, value)| log::Field {
                name: (*name).into(),
                value: (*value).into(),
            })
            .collect();
        log::log(level, message, &fields);
    }

    fn retrying(&self, endpoint: &str, attempt: u32, delay: Duration, reason: &str) {
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        progress::retrying(endpoint, attempt, delay_ms, reason);
    }
}

fn to_wit_entity(entity: model::Entity) -> wit::Entity {
    wit::Entity {
        key: entity.key,
        type_: entity.entity_type.into(),
        classes: entity.classes.iter().map(|c| (*c).into()).collect(),
        properties: to_wit_properties(entity.properties),
        raw_data: entity.raw_data,
    }
}

fn to_wit_properties(properties: Vec<model::Property>) -> Vec<wit::Property> {
    properties
        .into_iter()
        .map(|(name, value)| wit::Property {
            name: name.into(),
            value: match value {
                Value::Null => wit::PropertyValue::Null,
                Value::Bool(b) => wit::PropertyValue::Boolean(b),
                Value::Int(i) => wit::PropertyValue::Integer(i),
                Value::Float(f) => wit::PropertyValue::Float(f),
                Value::Text(s) => wit::PropertyValue::Text(s),
                Value::TextList(list) => wit::PropertyValue::TextList(list),
            },
        })
        .collect()
}

fn from_wit_outcome(outcome: graph::BatchOutcome) -> BatchOutcome {
    BatchOutcome {
        accepted: outcome.accepted,
        dropped: outcome.dropped,
    }
}

fn from_wit_graph_error(error: wit::GraphError) -> GraphError {
    match error {
        wit::GraphError::DuplicateKey(key) => GraphError::DuplicateKey(key),
        wit::GraphError::InvalidObject(reason) => GraphError::InvalidObject(reason),
    }
}

fn to_wit_error(error: IntegrationError) -> wit::IntegrationError {
    use wit::IntegrationError as W;
    let endpoint_error = |endpoint, message| wit::EndpointError { endpoint, message };
    match error {
        IntegrationError::InvalidConfig { field, reason } => {
            W::InvalidConfig(wit::ConfigError { field, reason })
        }
        IntegrationError::Authentication(message) => W::Authentication(message),
        IntegrationError::Authorization { endpoint, message } => {
            W::Authorization(endpoint_error(endpoint, message))
        }
        IntegrationError::ProviderApi {
            status,
            endpoint,
            message,
        } => W::ProviderApi(wit::ApiError {
            status,
            endpoint,
            message,
        }),
        IntegrationError::RateLimited { endpoint, message } => {
            W::RateLimited(endpoint_error(endpoint, message))
        }
        IntegrationError::EgressDenied(host) => W::EgressDenied(host),
        IntegrationError::Transport { endpoint, message } => {
            W::Transport(endpoint_error(endpoint, message))
        }
        IntegrationError::InvalidResponse { endpoint, message } => {
            W::InvalidResponse(endpoint_error(endpoint, message))
        }
        IntegrationError::Graph(GraphError::DuplicateKey(key)) => {
            W::Graph(wit::GraphError::DuplicateKey(key))
        }
        IntegrationError::Graph(GraphError::InvalidObject(reason)) => {
            W::Graph(wit::GraphError::InvalidObject(reason))
        }
        IntegrationError::Internal(message) => W::Internal(message),
    }
}

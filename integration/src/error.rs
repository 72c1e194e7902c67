//! The plugin's error type: the plain-Rust mirror of the WIT `integration-error`.

use std::fmt;

/// Why the host refused a graph object (WIT `graph-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    DuplicateKey(String),
    InvalidObject(String),
}

/// Every way a plugin call can fail (WIT `integration-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntegrationError {
    InvalidConfig {
        field: String,
        reason: String,
    },
    Authentication(String),
    Authorization {
        endpoint: String,
        message: String,
    },
    ProviderApi {
        status: u16,
        endpoint: String,
        message: String,
    },
    RateLimited {
        endpoint: String,
        message: String,
    },
    EgressDenied(String),
    Transport {
        endpoint: String,
        message: String,
    },
    InvalidResponse {
        endpoint: String,
        message: String,
    },
    Graph(GraphError),
    Internal(String),
}

impl IntegrationError {
    pub fn invalid_config(field: &str, reason: impl Into<String>) -> Self {
        IntegrationError::InvalidConfig {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    pub fn invalid_response(endpoint: &str, message: impl Into<String>) -> Self {
        IntegrationError::InvalidResponse {
            endpoint: endpoint.to_owned(),
            message: message.into(),
        }
    }

    /// Errors after which no further step can succeed: the host stops the job.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            IntegrationError::InvalidConfig { .. } | IntegrationError::Authentication(_)
        )
    }
}

impl fmt::Display for IntegrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntegrationError::InvalidConfig { field, reason } => {
                write!(f, "invalid config field `{field}`: {reason}")
            }
            IntegrationError::Authentication(message) => {
                write!(f, "authentication failed: {message}")
            }
            IntegrationError::Authorization { endpoint, message } => {
                write!(f, "not authorized to read {endpoint}: {message}")
            }
            IntegrationError::ProviderApi {
                status,
                endpoint,
                message,
            } => write!(f, "{endpoint} answered HTTP {status}: {message}"),
            IntegrationError::RateLimited { endpoint, message } => {
                write!(f, "rate limited on {endpoint}: {message}")
            }
            IntegrationError::EgressDenied(host) => {
                write!(f, "the host's egress policy refused a request to {host}")
            }
            IntegrationError::Transport { endpoint, message } => {
                write!(f, "request to {endpoint} failed: {message}")
            }
            IntegrationError::InvalidResponse { endpoint, message } => {
                write!(f, "invalid response from {endpoint}: {message}")
            }
            IntegrationError::Graph(GraphError::DuplicateKey(key)) => {
                write!(f, "duplicate graph key {key}")
            }
            IntegrationError::Graph(GraphError::InvalidObject(reason)) => {
                write!(f, "invalid graph object: {reason}")
            }
            IntegrationError::Internal(message) => write!(f, "internal error: {message}"),
        }
    }
}

impl std::error::Error for IntegrationError {}

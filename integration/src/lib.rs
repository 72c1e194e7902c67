//! The JumpCloud integration: fetches organizations, users, user groups, memberships
//! and SSO applications from the JumpCloud API and emits them as a JupiterOne graph.
//!
//! Everything except `http.rs` and `component.rs` is plain Rust that compiles natively:
//! the API client, the converters and the steps are unit-tested and benchmarked without
//! a WebAssembly runtime. On `wasm32` the crate is a component of the WIT world
//! `integration` (`../wit`).

pub mod client;
pub mod config;
pub mod convert;
pub mod error;
pub mod host;
pub mod model;
pub mod retry;
pub mod steps;
pub mod transport;

#[cfg(target_arch = "wasm32")]
mod component;
#[cfg(target_arch = "wasm32")]
mod http;

/// The plugin's id in `describe()`.
pub const PLUGIN_ID: &str = "jumpcloud";
/// The plugin's human-readable name.
pub const PLUGIN_NAME: &str = "JumpCloud";

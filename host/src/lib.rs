//! `integration-host`: runs integration plugins (WebAssembly components of the WIT
//! world `secgraph:integration/integration`) in a sandbox per tenant, orchestrates
//! their steps, stores the graph they emit and writes it in the J1 integration-SDK
//! layout.
//!
//! The crate knows wasmtime and nothing of JumpCloud; the JumpCloud component it runs
//! by default is built from `../integration` by `build.rs` and embedded.

pub mod bindings;
pub mod config;
pub mod fleet;
pub mod graph;
pub mod job;
pub mod monitor;
pub mod output;
pub mod run_all;
pub mod runtime;
pub mod sandbox;
pub mod serve;
pub mod services;
pub mod steps;

// The sandbox's modules kept at their old paths: `crate::policy::...`,
// `crate::egress::...`.
pub use sandbox::{egress, policy};

/// The component built from `../integration` by `build.rs`, embedded in the binary.
pub const BUNDLED_COMPONENT: &[u8] = include_bytes!(env!("JUMPCLOUD_COMPONENT_PATH"));

/// Where `build.rs` built [`BUNDLED_COMPONENT`], for tools that want the file.
pub const BUNDLED_COMPONENT_PATH: &str = env!("JUMPCLOUD_COMPONENT_PATH");

//! Host-side bindings of the WIT world `integration` (`../wit`).
//!
//! The wasi interfaces map onto wasmtime-wasi and wasmtime-wasi-http, so only our own
//! package is generated here. Our imports may trap (a host failure such as a full disk
//! is a trap, not a plugin error); exports are async because wasi-http is.

wasmtime::component::bindgen!({
    world: "integration",
    path: "../wit",
    imports: { default: trappable },
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
    },
    require_store_data_send: true,
});

pub use secgraph::integration::types::{
    ApiError, ConfigEntry, ConfigError, ConfigField, DeclaredType, EndpointError, Entity,
    GraphError, IntegrationError, MappedRelationship, MappingDirection, ObjectKind, PluginInfo,
    Property, PropertyValue, Relationship, StepInfo, StepReport, TargetEntity,
};

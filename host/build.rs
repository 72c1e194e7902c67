//! Builds the JumpCloud component (`../integration`) for `wasm32-wasip2`, so that a
//! plain `cargo build` or `cargo run` of the host has the component it runs by default.

use std::env;
use std::path::PathBuf;

mod guest_build;

const GUEST_PACKAGE: &str = "jumpcloud-integration";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir.parent().expect("host/ sits in the workspace");
    for watched in [
        "integration/src",
        "integration/Cargo.toml",
        "wit",
        "Cargo.lock",
        "Cargo.toml",
        "host/guest_build.rs",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    guest_build::ensure_wasm_target();
    let wasm =
        guest_build::build_component(workspace, GUEST_PACKAGE, &guest_build::guest_target_dir());
    println!(
        "cargo:rustc-env=JUMPCLOUD_COMPONENT_PATH={}",
        wasm.display()
    );
}

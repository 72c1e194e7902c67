//! Builds the hostile test plugin (`hostile-guest/`) once for every test of this crate,
//! and exposes its path as `HOSTILE_GUEST_WASM`.

use std::env;
use std::path::PathBuf;

#[path = "../host/guest_build.rs"]
mod guest_build;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir.parent().expect("tests/ sits in the workspace");
    for watched in [
        "tests/hostile-guest",
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
        guest_build::build_component(workspace, "hostile-guest", &guest_build::guest_target_dir());
    println!("cargo:rustc-env=HOSTILE_GUEST_WASM={}", wasm.display());
}

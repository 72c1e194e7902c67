//! Builds the hostile test plugin (`hostile-guest/`) once for every test of this crate,
//! twice in fact: as is (`HOSTILE_GUEST_WASM`), and with the feature `climb-out`, whose
//! `describe()` declares a step id that climbs out of the output folder
//! (`HOSTILE_CLIMB_OUT_WASM`).

#[path = "../host/guest_build.rs"]
mod guest_build;

use std::path::{Path, PathBuf};

fn main() {
    let plain = guest_build::build_workspace_component("hostile-guest", &["tests/hostile-guest"]);
    let plain = keep(&plain, "hostile_guest_plain.wasm");
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir.parent().expect("tests/ sits in the workspace");
    let climb = guest_build::build_component_with_features(
        workspace,
        "hostile-guest",
        &guest_build::guest_target_dir(),
        &["climb-out"],
    );
    let climb = keep(&climb, "hostile_guest_climb_out.wasm");
    println!("cargo:rustc-env=HOSTILE_GUEST_WASM={}", plain.display());
    println!("cargo:rustc-env=HOSTILE_CLIMB_OUT_WASM={}", climb.display());
}

/// Copies a build's `.wasm` next to it under `name`: the next build overwrites it.
fn keep(wasm: &Path, name: &str) -> PathBuf {
    let kept = wasm.with_file_name(name);
    std::fs::copy(wasm, &kept).unwrap_or_else(|error| {
        panic!(
            "cannot copy {} to {}: {error}",
            wasm.display(),
            kept.display()
        )
    });
    kept
}

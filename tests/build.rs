//! Builds the hostile test plugin (`hostile-guest/`) once for every test of this crate,
//! and exposes its path as `HOSTILE_GUEST_WASM`.

#[path = "../host/guest_build.rs"]
mod guest_build;

fn main() {
    let wasm = guest_build::build_workspace_component("hostile-guest", &["tests/hostile-guest"]);
    println!("cargo:rustc-env=HOSTILE_GUEST_WASM={}", wasm.display());
}

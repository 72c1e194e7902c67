//! Builds the JumpCloud component (`../integration`) for `wasm32-wasip2`, so that a
//! plain `cargo build` or `cargo run` of the host has the component it runs by default.

mod guest_build;

fn main() {
    let wasm = guest_build::build_workspace_component(
        "jumpcloud-integration",
        &["integration/src", "integration/Cargo.toml"],
    );
    println!(
        "cargo:rustc-env=JUMPCLOUD_COMPONENT_PATH={}",
        wasm.display()
    );
}

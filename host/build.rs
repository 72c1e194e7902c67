//! Builds the JumpCloud component (`../integration`) for `wasm32-wasip2`, so that a
//! plain `cargo build` or `cargo run` of the host has the component it runs by default.
//!
//! The guest is built by a nested cargo in a target directory of its own: it needs
//! another target, and the outer cargo holds the lock of the main target directory.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const GUEST_PACKAGE: &str = "jumpcloud-integration";
const GUEST_TARGET: &str = "wasm32-wasip2";
const GUEST_PROFILE: &str = "guest";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir.parent().expect("host/ sits in the workspace");
    for watched in [
        "integration/src",
        "integration/Cargo.toml",
        "wit",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo:rerun-if-env-changed=INTEGRATION_HOST_SKIP_GUEST_BUILD");

    let target_dir = guest_target_dir();
    let wasm = target_dir
        .join(GUEST_TARGET)
        .join(GUEST_PROFILE)
        .join(format!("{}.wasm", GUEST_PACKAGE.replace('-', "_")));

    if env::var_os("INTEGRATION_HOST_SKIP_GUEST_BUILD").is_none() {
        ensure_wasm_target();
        build_guest(workspace, &target_dir);
    }
    if !wasm.exists() {
        if env::var_os("INTEGRATION_HOST_SKIP_GUEST_BUILD").is_some() {
            // For `cargo check` of the host alone: an empty placeholder that fails to load.
            let placeholder =
                PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("missing.wasm");
            std::fs::write(&placeholder, b"").expect("OUT_DIR is writable");
            println!("cargo:warning=guest build skipped: the bundled component is a placeholder");
            println!(
                "cargo:rustc-env=JUMPCLOUD_COMPONENT_PATH={}",
                placeholder.display()
            );
            return;
        }
        panic!("the guest build did not produce {}", wasm.display());
    }
    println!(
        "cargo:rustc-env=JUMPCLOUD_COMPONENT_PATH={}",
        wasm.display()
    );
}

/// `<target-dir>/guest`, next to the host's own profile directories.
fn guest_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    // OUT_DIR is <target-dir>[/<triple>]/<profile>/build/<package>-<hash>/out.
    out_dir
        .ancestors()
        .nth(4)
        .map(|dir| dir.join("guest"))
        .unwrap_or_else(|| out_dir.join("guest"))
}

/// `rust-toolchain.toml` lists the target, but rustup does not install it when
/// RUSTUP_AUTO_INSTALL=0; `rustup target add` is idempotent and quick when present.
fn ensure_wasm_target() {
    let toolchain = env::var("RUSTUP_TOOLCHAIN").ok();
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", GUEST_TARGET]);
    if let Some(toolchain) = &toolchain {
        rustup.args(["--toolchain", toolchain]);
    }
    match rustup.output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => println!(
            "cargo:warning=`rustup target add {GUEST_TARGET}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => println!(
            "cargo:warning=rustup not found ({error}); assuming the {GUEST_TARGET} target is installed"
        ),
    }
}

fn build_guest(workspace: &Path, target_dir: &Path) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "--package",
            GUEST_PACKAGE,
            "--target",
            GUEST_TARGET,
        ])
        .args(["--profile", GUEST_PROFILE])
        .arg("--target-dir")
        .arg(target_dir);
    // Flags meant for the host build must not leak into the guest build, and the outer
    // jobserver is not ours to share.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_LLVM_COV",
        "CARGO_LLVM_COV_TARGET_DIR",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .unwrap_or_else(|error| panic!("cannot run cargo for the guest build: {error}"));
    if !status.success() {
        panic!("building the {GUEST_PACKAGE} component for {GUEST_TARGET} failed ({status})");
    }
}

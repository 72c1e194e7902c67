//! Building a guest component from a build script: shared by `host/build.rs` (the
//! JumpCloud component) and `tests/build.rs` (the hostile test plugin).
//!
//! The guest is built by a nested cargo in a target directory of its own: it needs
//! another target, and the outer cargo holds the lock of the main target directory.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const GUEST_TARGET: &str = "wasm32-wasip2";
pub const GUEST_PROFILE: &str = "guest";

/// Builds `package` (a member of the workspace that holds the calling crate) for
/// wasm32-wasip2, rebuilding when `sources` (paths relative to the workspace), the WIT,
/// the manifests or this helper change; returns the `.wasm` path.
pub fn build_workspace_component(package: &str, sources: &[&str]) -> PathBuf {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("the calling crate sits in the workspace");
    let shared = ["wit", "Cargo.lock", "Cargo.toml", "host/guest_build.rs"];
    for watched in sources.iter().chain(&shared) {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    ensure_wasm_target();
    build_component(workspace, package, &guest_target_dir())
}

/// `<target-dir>/guest`, next to the outer build's profile directories.
pub fn guest_target_dir() -> PathBuf {
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
pub fn ensure_wasm_target() {
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", GUEST_TARGET]);
    if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
        rustup.args(["--toolchain", &toolchain]);
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

/// Builds `package` of the workspace for wasm32-wasip2 and returns the `.wasm` path.
pub fn build_component(workspace: &Path, package: &str, target_dir: &Path) -> PathBuf {
    build_component_with_features(workspace, package, target_dir, &[])
}

/// [`build_component`] with cargo features of the package enabled. Builds with other
/// features write the same file: copy it before the next build.
pub fn build_component_with_features(
    workspace: &Path,
    package: &str,
    target_dir: &Path,
    features: &[&str],
) -> PathBuf {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--package", package, "--target", GUEST_TARGET])
        .args(["--profile", GUEST_PROFILE])
        .arg("--target-dir")
        .arg(target_dir);
    if !features.is_empty() {
        command.arg("--features").arg(features.join(","));
    }
    // Flags meant for the outer build must not leak into the guest build, and the
    // outer jobserver is not ours to share.
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
        panic!("building the {package} component for {GUEST_TARGET} failed ({status})");
    }
    let wasm = target_dir
        .join(GUEST_TARGET)
        .join(GUEST_PROFILE)
        .join(format!("{}.wasm", package.replace('-', "_")));
    if !wasm.exists() {
        panic!("the guest build did not produce {}", wasm.display());
    }
    wasm
}

//! Links libtorch so that one binary runs on CPU-only and on CUDA machines (DESIGN.md §1).
//!
//! * `--as-needed` would drop `libtorch_cuda.so` (nothing references it by symbol), and CUDA
//!   would then report unavailable: link it explicitly when the wheel ships it.
//! * An rpath to the torch `lib/` folder lets `target/release/npr` run without
//!   `LD_LIBRARY_PATH`. On a GPU machine, `LD_LIBRARY_PATH` still wins, so its own torch
//!   libraries can be used instead (shared/GPU.md).
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    git_revision();
    // Set by torch-sys (`links = "tch"`), reaching us because we depend on torch-sys directly.
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB is not set: no rpath to libtorch");
        return;
    };
    println!("cargo:rustc-link-search=native={lib}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}

/// Records the git revision for the run folders' meta.json.
fn git_revision() {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output();
    if let Ok(out) = out {
        if out.status.success() {
            let rev = String::from_utf8_lossy(&out.stdout).trim().to_string();
            println!("cargo:rustc-env=NPR_GIT_REVISION={rev}");
        }
    }
    // Rebuilt when HEAD moves (not on every `git add`, which would recompile the crate).
    // Only paths that exist are watched: a missing one would rerun this script every build.
    let mut watch = vec![".git/HEAD".to_string(), ".git/packed-refs".to_string()];
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            watch.push(format!(".git/{r}"));
        }
    }
    for path in watch.iter().filter(|p| Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
}

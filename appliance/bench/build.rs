//! Records what built this binary, for the benchmark report's environment: the
//! compiler's version, the git commit, the flags and the profile. Every value has a
//! fallback ("unknown"), so a build outside a git checkout or without `rustc` on the
//! path still works.

use std::path::Path;
use std::process::Command;

fn run(cmd: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&dir);
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = run(&rustc, &["-V"], dir).unwrap_or_else(|| "unknown".into());
    let commit = run("git", &["rev-parse", "HEAD"], dir).unwrap_or_else(|| "unknown".into());
    // Rebuild when the checked-out commit changes: HEAD (a branch switch) and the
    // worktree's reflog of HEAD (every commit, checkout and reset appends to it).
    if let Some(git_dir) = run("git", &["rev-parse", "--absolute-git-dir"], dir) {
        for f in ["HEAD", "logs/HEAD"] {
            let p = Path::new(&git_dir).join(f);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    // Space-separated flags, as a person would type them (cargo passes them 0x1f-separated).
    let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS")
        .map(|s| s.split('\x1f').collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=PROOFBOX_BENCH_RUSTC={rustc_version}");
    println!("cargo:rustc-env=PROOFBOX_BENCH_COMMIT={commit}");
    println!("cargo:rustc-env=PROOFBOX_BENCH_RUSTFLAGS={rustflags}");
    println!("cargo:rustc-env=PROOFBOX_BENCH_PROFILE={}", env("PROFILE"));
    println!(
        "cargo:rustc-env=PROOFBOX_BENCH_OPT_LEVEL={}",
        env("OPT_LEVEL")
    );
    println!("cargo:rustc-env=PROOFBOX_BENCH_TARGET={}", env("TARGET"));
}

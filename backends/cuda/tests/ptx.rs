//! CI without a GPU: every kernel source must compile to PTX with NVRTC.
//!
//! Needs only `libnvrtc` (for example from the `nvidia-cuda-nvrtc-cu12` wheel, see
//! `.ci/cuda-ptx`). Without it the test prints `skipped: ...`, and fails instead when
//! `PROOFBOX_REQUIRE_NVRTC=1`.

use std::time::Instant;

use proofbox_backend_api::FieldId;
use proofbox_backend_cuda::kernels;

/// Architectures CI compiles for: Ampere (A100), Ada (L4, RTX 40xx), Hopper (H100).
const ARCHS: &[u32] = &[80, 89, 90];

fn nvrtc_or_skip() -> Option<(i32, i32)> {
    match kernels::nvrtc_status() {
        Ok(v) => Some(v),
        Err(reason) => {
            if std::env::var("PROOFBOX_REQUIRE_NVRTC").is_ok_and(|v| v == "1") {
                panic!("PROOFBOX_REQUIRE_NVRTC=1 but NVRTC is unavailable: {reason}");
            }
            proofbox_conformance::skip(&reason);
            None
        }
    }
}

#[test]
fn kernels_compile_to_ptx() {
    let Some((major, minor)) = nvrtc_or_skip() else {
        return;
    };
    let supported = kernels::supported_archs();
    println!("NVRTC {major}.{minor}, architectures {supported:?}");
    for &arch in ARCHS {
        assert!(
            supported.is_empty() || supported.contains(&arch),
            "NVRTC {major}.{minor} cannot target compute_{arch}"
        );
        for field in FieldId::ALL {
            let source = kernels::module_source(field).unwrap();
            let start = Instant::now();
            let ptx = kernels::compile_ptx(&source, arch, &format!("proofbox_{field}.cu"))
                .unwrap_or_else(|log| panic!("{log}"));
            println!(
                "{field} compute_{arch}: {} bytes of PTX in {:.2?}",
                ptx.len(),
                start.elapsed()
            );
            assert!(
                ptx.contains(&format!(".target sm_{arch}")),
                "{field} compute_{arch}: PTX has the wrong target"
            );
            for name in kernels::KERNEL_NAMES {
                assert!(
                    ptx.contains(&format!(".entry {name}(")),
                    "{field} compute_{arch}: kernel {name} missing from the PTX"
                );
            }
        }
    }
}

/// The check above would catch a broken kernel: a compile error comes back as an error
/// carrying NVRTC's log.
#[test]
fn compile_errors_are_reported_with_the_log() {
    if nvrtc_or_skip().is_none() {
        return;
    }
    let mut source = kernels::module_source(FieldId::KoalaBear).unwrap();
    source.push_str("\nextern \"C\" __global__ void broken(u32* x) { x[0] = undefined_name; }\n");
    let err = kernels::compile_ptx(&source, 80, "broken.cu").unwrap_err();
    assert!(err.contains("undefined_name"), "{err}");
}

/// The on-disk cache returns what was compiled, and the cache file holds PTX.
#[test]
fn ptx_cache_round_trip() {
    if nvrtc_or_skip().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("proofbox-cuda-cache-{}", std::process::id()));
    // SAFETY: this test binary's other tests do not read this variable.
    unsafe { std::env::set_var("PROOFBOX_CUDA_CACHE", &dir) };
    let first = kernels::cached_ptx(FieldId::BabyBear, 80).unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "one cache file expected in {dir:?}");
    let second = kernels::cached_ptx(FieldId::BabyBear, 80).unwrap();
    assert_eq!(first, second);
    let _ = std::fs::remove_dir_all(&dir);
}

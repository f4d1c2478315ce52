//! The kernel sources, their compilation to PTX with NVRTC, and the on-disk PTX cache.
//!
//! Each field gets one module, compiled from one translation unit: the generated
//! prelude (field and Poseidon2 constants, `tables::prelude`) followed by the
//! files of `firmware/cuda/` in [`SOURCES`] order. NVRTC is loaded at run time
//! (`libnvrtc.so`, `libnvrtc.so.12`, ... on the library path), so nothing here needs
//! the CUDA toolkit at build time.

use std::path::{Path, PathBuf};

use cudarc::nvrtc::{self, CompileOptions};
use proofbox_backend_api::FieldId;

use crate::tables;

/// The kernel files, in the order they are concatenated.
pub const SOURCES: &[(&str, &str)] = &[
    ("field.h", include_str!("../../../firmware/common/field.h")),
    (
        "poseidon2.cu",
        include_str!("../../../firmware/cuda/poseidon2.cu"),
    ),
    ("ntt.cu", include_str!("../../../firmware/cuda/ntt.cu")),
    ("ext4.h", include_str!("../../../firmware/common/ext4.h")),
    (
        "reduce.cu",
        include_str!("../../../firmware/cuda/reduce.cu"),
    ),
    (
        "quotient.h",
        include_str!("../../../firmware/common/quotient.h"),
    ),
    (
        "gather.h",
        include_str!("../../../firmware/common/gather.h"),
    ),
    ("fold.h", include_str!("../../../firmware/common/fold.h")),
    ("kept.h", include_str!("../../../firmware/common/kept.h")),
];

/// The kernels every module exports.
pub const KERNEL_NAMES: &[&str] = &[
    "hash_leaves",
    "compress_pairs",
    "dif_stages",
    "lde_expand",
    "reduce_openings",
    "eval_quotient",
    "gather_words",
    "fri_fold",
    "lde_expand_groups",
    "interp_weights",
    "interp_partials",
    "interp_finish",
];

/// The whole translation unit of one field's module.
pub fn module_source(field: FieldId) -> Result<String, String> {
    let mut src = tables::prelude(field)?;
    for (name, text) in SOURCES {
        src.push_str(&format!("\n// ---- {name}\n"));
        src.push_str(text);
    }
    Ok(src)
}

/// Whether libnvrtc can be loaded, or why not. Never panics.
pub fn nvrtc_status() -> Result<(i32, i32), String> {
    // SAFETY: only tries to dlopen the candidate library names.
    let present = std::panic::catch_unwind(|| unsafe { nvrtc::sys::is_culib_present() });
    if !matches!(present, Ok(true)) {
        return Err(format!(
            "libnvrtc could not be loaded (searched for {:?} on the library path)",
            cudarc::get_lib_name_candidates("nvrtc")
                .into_iter()
                .filter(|n| n.contains(".so"))
                .take(3)
                .collect::<Vec<_>>()
        ));
    }
    let version = std::panic::catch_unwind(|| {
        let (mut major, mut minor) = (0, 0);
        // SAFETY: the library is present; the out-pointers are valid.
        let rc = unsafe { nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
        (rc == nvrtc::sys::nvrtcResult::NVRTC_SUCCESS).then_some((major, minor))
    });
    match version {
        Ok(Some(v)) => Ok(v),
        _ => Err("libnvrtc was found but nvrtcVersion failed".into()),
    }
}

/// The virtual architectures (e.g. 90 for `compute_90`) this NVRTC can target.
pub fn supported_archs() -> Vec<u32> {
    std::panic::catch_unwind(|| {
        let mut n = 0;
        // SAFETY: valid out-pointer; the library was found by `nvrtc_status`.
        if unsafe { nvrtc::sys::nvrtcGetNumSupportedArchs(&mut n) }
            != nvrtc::sys::nvrtcResult::NVRTC_SUCCESS
            || n <= 0
        {
            return Vec::new();
        }
        let mut archs = vec![0i32; n as usize];
        // SAFETY: the buffer holds the number of entries NVRTC reported.
        if unsafe { nvrtc::sys::nvrtcGetSupportedArchs(archs.as_mut_ptr()) }
            != nvrtc::sys::nvrtcResult::NVRTC_SUCCESS
        {
            return Vec::new();
        }
        archs.into_iter().map(|a| a as u32).collect()
    })
    .unwrap_or_default()
}

/// The architecture to compile for on a device of compute capability `cc` (e.g. 90):
/// the device's own if NVRTC knows it, else the newest NVRTC knows below it (the
/// driver JIT-compiles the PTX for the device).
pub fn target_arch(cc: u32, supported: &[u32]) -> Option<u32> {
    if supported.is_empty() {
        return Some(cc);
    }
    supported.iter().copied().filter(|&a| a <= cc).max()
}

/// The NVRTC options for one architecture.
pub fn compile_options(arch: u32) -> Vec<String> {
    vec![
        format!("--gpu-architecture=compute_{arch}"),
        "--std=c++17".into(),
        "-default-device".into(),
    ]
}

/// Compiles a translation unit to PTX for `compute_<arch>`; the error carries NVRTC's
/// log.
pub fn compile_ptx(source: &str, arch: u32, name: &str) -> Result<String, String> {
    let opts = CompileOptions {
        options: compile_options(arch),
        name: Some(name.to_string()),
        ..Default::default()
    };
    let result = std::panic::catch_unwind(|| nvrtc::compile_ptx_with_opts(source, opts));
    match result {
        Ok(Ok(ptx)) => Ok(ptx.to_src()),
        Ok(Err(nvrtc::CompileError::CompileError { nvrtc, log, .. })) => Err(format!(
            "NVRTC {nvrtc:?} compiling {name} for compute_{arch}:\n{}",
            log.to_string_lossy()
        )),
        Ok(Err(e)) => Err(format!("NVRTC failed on {name}: {e}")),
        Err(_) => Err(format!("NVRTC panicked compiling {name}")),
    }
}

/// FNV-1a, 64 bits: a hash that is stable across builds, for cache keys.
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separate the parts so that ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Where compiled PTX is cached: `$PROOFBOX_CUDA_CACHE`, else
/// `$XDG_CACHE_HOME/proofbox/cuda`, else `$HOME/.cache/proofbox/cuda`. `None` when
/// none is set (then nothing is cached).
pub fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("PROOFBOX_CUDA_CACHE") {
        return Some(dir);
    }
    var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .map(|base| base.join("proofbox").join("cuda"))
}

/// The cache file of a module: keyed by field, architecture and a hash of the source,
/// the options and the NVRTC version.
pub fn cache_file(
    dir: &Path,
    field: FieldId,
    arch: u32,
    source: &str,
    nvrtc: (i32, i32),
) -> PathBuf {
    let opts = compile_options(arch).join(" ");
    let version = format!("{}.{}", nvrtc.0, nvrtc.1);
    let key = fnv1a(&[source.as_bytes(), opts.as_bytes(), version.as_bytes()]);
    dir.join(format!("{field}-compute_{arch}-{key:016x}.ptx"))
}

/// The PTX of a field's module for `arch`, from the cache or compiled (and then cached;
/// a cache that cannot be written is not an error).
pub fn cached_ptx(field: FieldId, arch: u32) -> Result<String, String> {
    let nvrtc = nvrtc_status()?;
    let source = module_source(field)?;
    let file = cache_dir().map(|d| cache_file(&d, field, arch, &source, nvrtc));
    if let Some(ptx) = file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .filter(|p| p.contains(".entry"))
    {
        return Ok(ptx);
    }
    let ptx = compile_ptx(&source, arch, &format!("proofbox_{field}.cu"))?;
    if let Some(file) = file {
        store(&file, &ptx);
    }
    Ok(ptx)
}

/// Writes a cache file atomically (temporary file, then rename); failures are ignored.
fn store(file: &Path, contents: &str) {
    let Some(dir) = file.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, contents).is_ok() && std::fs::rename(&tmp, file).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_arch_falls_back_to_the_newest_known() {
        assert_eq!(target_arch(90, &[75, 80, 86, 89, 90]), Some(90));
        assert_eq!(target_arch(120, &[75, 80, 90]), Some(90));
        assert_eq!(target_arch(70, &[75, 80]), None);
        assert_eq!(target_arch(86, &[]), Some(86));
    }

    #[test]
    fn cache_key_changes_with_source_arch_and_version() {
        let dir = Path::new("/c");
        let a = cache_file(dir, FieldId::KoalaBear, 90, "x", (12, 9));
        assert_ne!(a, cache_file(dir, FieldId::KoalaBear, 90, "y", (12, 9)));
        assert_ne!(a, cache_file(dir, FieldId::KoalaBear, 80, "x", (12, 9)));
        assert_ne!(a, cache_file(dir, FieldId::KoalaBear, 90, "x", (12, 8)));
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
    }

    #[test]
    fn module_source_holds_every_kernel() {
        for f in FieldId::ALL {
            let src = module_source(f).unwrap();
            for k in KERNEL_NAMES {
                // Kernels shared with OpenCL (firmware/common) use field.h's macro.
                assert!(
                    src.contains(&format!("__global__ void {k}("))
                        || src.contains(&format!("PB_KERNEL void {k}(")),
                    "{f}: no kernel {k}"
                );
            }
        }
    }
}

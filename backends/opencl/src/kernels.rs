//! The OpenCL program: its source, assembled from the kernel files and the generated
//! per-field preludes, and the names of the kernels it exports.
//!
//! One program holds both fields. For each field (KoalaBear first, then BabyBear) the
//! source holds the generated prelude (the private `tables` module: modulus, Montgomery
//! constant, S-box degree, Poseidon2 round constants and internal diagonal as
//! `__constant` arrays, and `#define`s renaming every kernel-file symbol to
//! `<name>_<field>`), then `firmware/common/field.h`, `firmware/opencl/poseidon2.cl`,
//! `firmware/opencl/ntt.cl`, `firmware/common/ext4.h`, `firmware/opencl/reduce.cl`, `firmware/common/quotient.h`,
//! `firmware/common/gather.h`, `firmware/common/fold.h` and `firmware/common/kept.h`, then an
//! epilogue that `#undef`s the field's macros.

use proofbox_backend_api::FieldId;

use crate::tables;

/// The interface version of the kernels' names, arguments and buffer layouts
/// (documented in `firmware/README.md`). A precompiled binary must implement it.
pub const INTERFACE_VERSION: u32 = 5;

/// The kernel files, in the order they are concatenated in each field's section.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "common/field.h",
        include_str!("../../../firmware/common/field.h"),
    ),
    (
        "opencl/poseidon2.cl",
        include_str!("../../../firmware/opencl/poseidon2.cl"),
    ),
    (
        "opencl/ntt.cl",
        include_str!("../../../firmware/opencl/ntt.cl"),
    ),
    (
        "common/ext4.h",
        include_str!("../../../firmware/common/ext4.h"),
    ),
    (
        "opencl/reduce.cl",
        include_str!("../../../firmware/opencl/reduce.cl"),
    ),
    (
        "common/quotient.h",
        include_str!("../../../firmware/common/quotient.h"),
    ),
    (
        "common/gather.h",
        include_str!("../../../firmware/common/gather.h"),
    ),
    (
        "common/fold.h",
        include_str!("../../../firmware/common/fold.h"),
    ),
    (
        "common/kept.h",
        include_str!("../../../firmware/common/kept.h"),
    ),
];

/// The kernels every field's section exports (as `<name>_<field>`).
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

/// Options the program is built (or a binary is linked) with.
pub const BUILD_OPTIONS: &str = "-cl-std=CL1.2";

/// The exported name of kernel `name` for `field`, e.g. `hash_leaves_koalabear`.
pub fn kernel_name(name: &str, field: FieldId) -> String {
    format!("{name}_{field}")
}

/// The whole OpenCL C source of the program (both fields).
pub fn program_source() -> Result<String, String> {
    let mut src = format!(
        "// ProofBox OpenCL kernels, interface version {INTERFACE_VERSION}.\n\
         #define PROOFBOX_INTERFACE_VERSION {INTERFACE_VERSION}\n"
    );
    for field in FieldId::ALL {
        src.push_str(&format!("\n// ==== {field}\n"));
        src.push_str(&tables::prelude(field)?);
        for (name, text) in SOURCES {
            src.push_str(&format!("\n// ---- {name} ({field})\n"));
            src.push_str(text);
        }
        src.push_str(&tables::epilogue());
    }
    Ok(src)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_defines_every_kernel_for_both_fields() {
        let src = program_source().unwrap();
        for field in FieldId::ALL {
            assert!(src.contains(&format!("#define hash_leaves hash_leaves_{field}")));
        }
        for name in KERNEL_NAMES {
            assert!(tables::RENAMED.contains(name), "{name} is not renamed");
            assert!(src.contains(&format!("PB_KERNEL void {name}(")));
        }
    }
}

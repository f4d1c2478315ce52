//! The generated prelude of each field's section of the OpenCL program: field
//! constants and Poseidon2 round constants and internal diagonals from
//! [`proofbox_backend_api::kernel_tables`] (read from Plonky3 at run time), with
//! every kernel symbol renamed per field.

use core::fmt::Write as _;

use proofbox_backend_api::FieldId;
pub(crate) use proofbox_backend_api::kernel_tables::{coset_scale, twiddles};
use proofbox_backend_api::kernel_tables::{monty_mu, poseidon2_tables};

fn c_array(out: &mut String, name: &str, words: &[u32]) {
    let _ = write!(out, "__constant uint {name}[{}] = {{", words.len().max(1));
    if words.is_empty() {
        out.push('0');
    }
    for (i, w) in words.iter().enumerate() {
        if i % 8 == 0 {
            out.push_str("\n    ");
        }
        let _ = write!(out, "{w}u, ");
    }
    out.push_str("\n};\n");
}

/// Kernel-file symbols that the prelude renames per field (`f_add` becomes
/// `f_add_koalabear`), so that one program holds both fields' kernels.
pub(crate) const RENAMED: &[&str] = &[
    "f_add",
    "f_sub",
    "f_mul",
    "bit_reverse",
    "p2_sbox",
    "p2_mat4",
    "p2_permute16",
    "p2_permute16_external",
    "p2_permute24",
    "p2_permute24_external",
    "hash_leaves",
    "compress_pairs",
    "dif_stages",
    "lde_expand",
    "e_add",
    "e_sub",
    "e_mul",
    "e_mul_base",
    "e_inv",
    "e_load",
    "f_pow",
    "reduce_openings",
    "eval_quotient",
    "gather_words",
    "fri_fold",
    "lde_expand_groups",
    "interp_weights",
    "interp_partials",
    "interp_finish",
];

/// Macros a field's section defines and the epilogue removes again.
const FIELD_MACROS: &[&str] = &[
    "FIELD_P",
    "FIELD_MU",
    "SBOX_DEG",
    "P2_HALF_FULL",
    "P2_16_PARTIAL",
    "P2_24_PARTIAL",
    "P2_16_RC_INIT",
    "P2_16_RC_PART",
    "P2_16_RC_TERM",
    "P2_16_DIAG",
    "P2_24_RC_INIT",
    "P2_24_RC_PART",
    "P2_24_RC_TERM",
    "P2_24_DIAG",
];

/// The generated prelude of one field's section of the program: the `#define`s
/// `field.h` and `poseidon2.cl` expect, the Poseidon2 constants as `__constant`
/// arrays (named with the field as suffix), and the renaming of every kernel-file
/// symbol to `<name>_<field>`.
pub(crate) fn prelude(field: FieldId) -> Result<String, String> {
    let p = field.modulus();
    let t16 = poseidon2_tables(field, 16)?;
    let t24 = poseidon2_tables(field, 24)?;
    if t16.sbox_degree != t24.sbox_degree || t16.half_full_rounds() != t24.half_full_rounds() {
        return Err(format!(
            "{field}: Poseidon2 widths 16 and 24 differ in S-box or full rounds"
        ));
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// Generated for {field} from Plonky3's constants; do not edit."
    );
    let _ = writeln!(s, "#define FIELD_P {p}u");
    let _ = writeln!(s, "#define FIELD_MU {}u", monty_mu(p));
    let _ = writeln!(s, "#define SBOX_DEG {}", t16.sbox_degree);
    let _ = writeln!(s, "#define P2_HALF_FULL {}", t16.half_full_rounds());
    let _ = writeln!(s, "#define P2_16_PARTIAL {}", t16.partial.len());
    let _ = writeln!(s, "#define P2_24_PARTIAL {}", t24.partial.len());
    for t in [&t16, &t24] {
        let w = t.width;
        for (name, words) in [
            ("RC_INIT", &t.initial),
            ("RC_PART", &t.partial),
            ("RC_TERM", &t.terminal),
            ("DIAG", &t.diagonal),
        ] {
            let full = format!("P2_{w}_{name}");
            c_array(&mut s, &format!("{full}_{field}"), words);
            let _ = writeln!(s, "#define {full} {full}_{field}");
        }
    }
    for name in RENAMED {
        let _ = writeln!(s, "#define {name} {name}_{field}");
    }
    Ok(s)
}

/// Undoes a field section's prelude, so that the next field's section starts clean.
pub(crate) fn epilogue() -> String {
    let mut s = String::new();
    for name in FIELD_MACROS.iter().chain(RENAMED) {
        let _ = writeln!(s, "#undef {name}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prelude_defines_what_the_kernels_read() {
        let s = prelude(FieldId::BabyBear).unwrap();
        for needle in [
            "#define FIELD_P 2013265921u",
            "#define SBOX_DEG 7",
            "#define P2_16_PARTIAL 13",
            "#define hash_leaves hash_leaves_babybear",
            "#define P2_24_PARTIAL 21",
            "__constant uint P2_24_DIAG_babybear[24]",
            "__constant uint P2_16_RC_INIT_babybear[64]",
        ] {
            assert!(s.contains(needle), "prelude lacks {needle:?}");
        }
    }
}

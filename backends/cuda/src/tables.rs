//! The generated prelude every CUDA kernel module is compiled with: field constants
//! and Poseidon2 round constants and internal diagonals from
//! [`proofbox_backend_api::kernel_tables`] (read from Plonky3 at run time).

use core::fmt::Write as _;

use proofbox_backend_api::FieldId;
pub(crate) use proofbox_backend_api::kernel_tables::{coset_scale, twiddles};
use proofbox_backend_api::kernel_tables::{monty_mu, poseidon2_tables};

fn c_array(out: &mut String, name: &str, words: &[u32]) {
    let _ = write!(out, "__constant__ u32 {name}[{}] = {{", words.len().max(1));
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

/// The generated prelude of a field's kernel module: the `#define`s `field.h` and
/// `poseidon2.cu` expect and the Poseidon2 constants as `__constant__` arrays.
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
    s.push_str("typedef unsigned int u32;\n");
    for t in [&t16, &t24] {
        let w = t.width;
        c_array(&mut s, &format!("P2_{w}_RC_INIT"), &t.initial);
        c_array(&mut s, &format!("P2_{w}_RC_PART"), &t.partial);
        c_array(&mut s, &format!("P2_{w}_RC_TERM"), &t.terminal);
        c_array(&mut s, &format!("P2_{w}_DIAG"), &t.diagonal);
    }
    Ok(s)
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
            "#define P2_24_PARTIAL 21",
            "__constant__ u32 P2_24_DIAG[24]",
            "__constant__ u32 P2_16_RC_INIT[64]",
        ] {
            assert!(s.contains(needle), "prelude lacks {needle:?}");
        }
    }
}

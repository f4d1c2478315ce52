//! The WGSL preludes the kernels are compiled with: field constants and the shape of
//! each Poseidon2 instance. The tables themselves (round constants, diagonals,
//! twiddles, coset scale factors) come from [`proofbox_backend_api::kernel_tables`].

use proofbox_backend_api::FieldId;
use proofbox_backend_api::kernel_tables::monty_mu;
pub(crate) use proofbox_backend_api::kernel_tables::{
    Poseidon2Tables, coset_scale, poseidon2_tables, twiddles,
};

/// The field constants every kernel file is compiled with.
pub(crate) fn field_prelude(field: FieldId, wg_size: u32) -> String {
    let p = field.modulus();
    // 1 in Montgomery form: 2^32 mod P.
    let one = (1u64 << 32) % u64::from(p);
    format!(
        "const P: u32 = {p}u;\nconst MU: u32 = {}u;\nconst ONE: u32 = {one}u;\nconst WG_SIZE: u32 = {wg_size}u;\n",
        monty_mu(p)
    )
}

/// Constants for the WGSL prelude of one Poseidon2 instance.
pub(crate) fn poseidon2_prelude(t: &Poseidon2Tables) -> String {
    format!(
        "const WIDTH: u32 = {}u;\nconst HALF_FULL: u32 = {}u;\nconst PARTIAL: u32 = {}u;\nconst SBOX_DEG: u32 = {}u;\n",
        t.width,
        t.half_full_rounds(),
        t.partial_rounds(),
        t.sbox_degree
    )
}

#[cfg(test)]
mod tests {
    use p3_field::PrimeCharacteristicRing;
    use proofbox_backend_api::BackendField;

    use super::*;

    #[test]
    fn preludes_carry_the_field_and_instance() {
        let f = field_prelude(FieldId::KoalaBear, 64);
        assert!(f.contains("const P: u32 = 2130706433u;"), "{f}");
        assert!(f.contains("const WG_SIZE: u32 = 64u;"), "{f}");
        for (field, one) in [
            (
                FieldId::KoalaBear,
                p3_koala_bear::KoalaBear::as_monty_words(&[p3_koala_bear::KoalaBear::ONE])[0],
            ),
            (
                FieldId::BabyBear,
                p3_baby_bear::BabyBear::as_monty_words(&[p3_baby_bear::BabyBear::ONE])[0],
            ),
        ] {
            let f = field_prelude(field, 64);
            assert!(f.contains(&format!("const ONE: u32 = {one}u;")), "{f}");
        }
        let t = poseidon2_tables(FieldId::BabyBear, 24).unwrap();
        let p = poseidon2_prelude(&t);
        assert!(
            p.contains("const WIDTH: u32 = 24u;") && p.contains("const PARTIAL: u32 = 21u;"),
            "{p}"
        );
        assert!(p.contains("const SBOX_DEG: u32 = 7u;"), "{p}");
    }
}

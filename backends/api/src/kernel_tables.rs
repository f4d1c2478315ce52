//! Host-side tables every device backend's kernels read, computed once here so that
//! all backends share one source of truth, itself read from Plonky3 at run time:
//! Poseidon2 round constants and internal diagonals (Montgomery words), the
//! Montgomery reduction constant `p^-1 mod 2^32`, DFT twiddles and coset scale
//! factors. How a backend hands them to its kernels (a C prelude, WGSL
//! constants, a storage buffer) is the backend's business.

use p3_baby_bear::{
    BABYBEAR_POSEIDON2_RC_16_EXTERNAL_FINAL, BABYBEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
    BABYBEAR_POSEIDON2_RC_16_INTERNAL, BABYBEAR_POSEIDON2_RC_24_EXTERNAL_FINAL,
    BABYBEAR_POSEIDON2_RC_24_EXTERNAL_INITIAL, BABYBEAR_POSEIDON2_RC_24_INTERNAL,
    BABYBEAR_S_BOX_DEGREE, BabyBear, GenericPoseidon2LinearLayersBabyBear,
};
use p3_field::Field;
use p3_koala_bear::{
    GenericPoseidon2LinearLayersKoalaBear, KOALABEAR_POSEIDON2_RC_16_EXTERNAL_FINAL,
    KOALABEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL, KOALABEAR_POSEIDON2_RC_16_INTERNAL,
    KOALABEAR_POSEIDON2_RC_24_EXTERNAL_FINAL, KOALABEAR_POSEIDON2_RC_24_EXTERNAL_INITIAL,
    KOALABEAR_POSEIDON2_RC_24_INTERNAL, KOALABEAR_S_BOX_DEGREE, KoalaBear,
};
use p3_poseidon2::GenericPoseidon2LinearLayers;

use crate::{BackendField, FieldId};

/// `p^-1 mod 2^32` for an odd modulus (Newton iteration; each step doubles the
/// number of correct low bits).
pub fn monty_mu(p: u32) -> u32 {
    let mut inv = p; // correct to 3 bits for odd p
    for _ in 0..5 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(p.wrapping_mul(inv)));
    }
    inv
}

/// One Poseidon2 instance's constants, as Montgomery words.
#[derive(Debug, Clone)]
pub struct Poseidon2Tables {
    pub width: usize,
    pub sbox_degree: u64,
    pub initial: Vec<u32>,
    pub partial: Vec<u32>,
    pub terminal: Vec<u32>,
    pub diagonal: Vec<u32>,
}

impl Poseidon2Tables {
    /// Full rounds before (and after) the partial rounds.
    pub fn half_full_rounds(&self) -> usize {
        self.initial.len() / self.width
    }

    /// Partial rounds.
    pub fn partial_rounds(&self) -> usize {
        self.partial.len()
    }

    /// Every table back to back: `[initial | partial | terminal | diagonal]`.
    pub fn words(&self) -> Vec<u32> {
        [&self.initial, &self.partial, &self.terminal, &self.diagonal]
            .into_iter()
            .flatten()
            .copied()
            .collect()
    }
}

/// The diagonal `V` of Plonky3's internal matrix `1 + diag(V)`, read off by applying
/// the generic internal linear layer to unit vectors. Fails if the layer is not of
/// that shape (which would make the kernel's formula wrong).
fn internal_diagonal<F: Field, const W: usize>(
    layer: impl Fn(&mut [F; W]),
) -> Result<[F; W], String> {
    let mut diag = [F::ZERO; W];
    for (j, d) in diag.iter_mut().enumerate() {
        let mut e = [F::ZERO; W];
        e[j] = F::ONE;
        layer(&mut e);
        for (i, &x) in e.iter().enumerate() {
            if i != j && x != F::ONE {
                return Err(format!(
                    "internal layer of width {W} is not 1 + diag(V) (entry {i},{j})"
                ));
            }
        }
        *d = e[j] - F::ONE;
    }
    Ok(diag)
}

fn assemble<F: BackendField, const W: usize>(
    initial: &[[F; W]],
    internal: &[F],
    terminal: &[[F; W]],
    diag: [F; W],
    sbox_degree: u64,
) -> Poseidon2Tables {
    let words = |rounds: &[[F; W]]| F::as_monty_words(rounds.as_flattened()).to_vec();
    Poseidon2Tables {
        width: W,
        sbox_degree,
        initial: words(initial),
        partial: F::as_monty_words(internal).to_vec(),
        terminal: words(terminal),
        diagonal: F::as_monty_words(&diag).to_vec(),
    }
}

/// Plonky3's default Poseidon2 of the given width (16 or 24) for a field: the same
/// constants `default_*_poseidon2_{16,24}` are built from.
pub fn poseidon2_tables(field: FieldId, width: usize) -> Result<Poseidon2Tables, String> {
    fn kb<const W: usize>(s: &mut [KoalaBear; W])
    where
        GenericPoseidon2LinearLayersKoalaBear: GenericPoseidon2LinearLayers<W>,
    {
        GenericPoseidon2LinearLayersKoalaBear::internal_linear_layer(s)
    }
    fn bb<const W: usize>(s: &mut [BabyBear; W])
    where
        GenericPoseidon2LinearLayersBabyBear: GenericPoseidon2LinearLayers<W>,
    {
        GenericPoseidon2LinearLayersBabyBear::internal_linear_layer(s)
    }
    let tables = match (field, width) {
        (FieldId::KoalaBear, 16) => assemble(
            &KOALABEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
            &KOALABEAR_POSEIDON2_RC_16_INTERNAL,
            &KOALABEAR_POSEIDON2_RC_16_EXTERNAL_FINAL,
            internal_diagonal(kb::<16>)?,
            KOALABEAR_S_BOX_DEGREE,
        ),
        (FieldId::KoalaBear, 24) => assemble(
            &KOALABEAR_POSEIDON2_RC_24_EXTERNAL_INITIAL,
            &KOALABEAR_POSEIDON2_RC_24_INTERNAL,
            &KOALABEAR_POSEIDON2_RC_24_EXTERNAL_FINAL,
            internal_diagonal(kb::<24>)?,
            KOALABEAR_S_BOX_DEGREE,
        ),
        (FieldId::BabyBear, 16) => assemble(
            &BABYBEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
            &BABYBEAR_POSEIDON2_RC_16_INTERNAL,
            &BABYBEAR_POSEIDON2_RC_16_EXTERNAL_FINAL,
            internal_diagonal(bb::<16>)?,
            BABYBEAR_S_BOX_DEGREE,
        ),
        (FieldId::BabyBear, 24) => assemble(
            &BABYBEAR_POSEIDON2_RC_24_EXTERNAL_INITIAL,
            &BABYBEAR_POSEIDON2_RC_24_INTERNAL,
            &BABYBEAR_POSEIDON2_RC_24_EXTERNAL_FINAL,
            internal_diagonal(bb::<24>)?,
            BABYBEAR_S_BOX_DEGREE,
        ),
        _ => return Err(format!("no Poseidon2 of width {width} for {field}")),
    };
    if !matches!(tables.sbox_degree, 3 | 7) {
        return Err(format!("S-box degree {} has no kernel", tables.sbox_degree));
    }
    Ok(tables)
}

/// `g^j` for `j < n/2`, `g` generating the subgroup of order `n = 2^log_n` (or its
/// inverse), as Montgomery words. At least one word, so the buffer is never empty.
pub fn twiddles<F: BackendField>(log_n: usize, inverse: bool) -> Vec<u32> {
    let g = F::two_adic_generator(log_n);
    let g = if inverse { g.inverse() } else { g };
    let half = (1usize << log_n) / 2;
    let powers: Vec<F> = g.powers().take(half.max(1)).collect();
    F::as_monty_words(&powers).to_vec()
}

/// `shift^k / h` for `k < h`: the coset scaling folded with the inverse DFT's `1/h`.
pub fn coset_scale<F: BackendField>(log_h: usize, shift: F) -> Vec<u32> {
    let h = 1usize << log_h;
    let h_inv = F::from_u32(h as u32).inverse();
    let scale: Vec<F> = shift.shifted_powers(h_inv).take(h).collect();
    F::as_monty_words(&scale).to_vec()
}

#[cfg(test)]
mod tests {
    use p3_field::PrimeCharacteristicRing;

    use super::*;

    #[test]
    fn mu_inverts_the_modulus() {
        for f in FieldId::ALL {
            assert_eq!(f.modulus().wrapping_mul(monty_mu(f.modulus())), 1);
        }
    }

    #[test]
    fn tables_have_plonky3_shapes() {
        let kb = poseidon2_tables(FieldId::KoalaBear, 24).unwrap();
        assert_eq!(
            (kb.half_full_rounds(), kb.partial.len(), kb.sbox_degree),
            (4, 23, 3)
        );
        let bb = poseidon2_tables(FieldId::BabyBear, 16).unwrap();
        assert_eq!(
            (bb.half_full_rounds(), bb.partial.len(), bb.sbox_degree),
            (4, 13, 7)
        );
        for f in FieldId::ALL {
            for w in [16, 24] {
                let t = poseidon2_tables(f, w).unwrap();
                assert_eq!(t.initial.len(), t.terminal.len());
                assert_eq!(t.diagonal.len(), w);
                let all = t.initial.iter().chain(&t.partial).chain(&t.terminal);
                assert!(all.chain(&t.diagonal).all(|&x| x < f.modulus()));
            }
        }
        // The first diagonal entry of every Plonky3 Monty31 internal layer is -2.
        assert_eq!(
            KoalaBear::from_monty_words(vec![kb.diagonal[0]]).unwrap()[0],
            -KoalaBear::TWO
        );
        assert!(poseidon2_tables(FieldId::BabyBear, 32).is_err());
    }

    #[test]
    fn coset_scale_matches_definition() {
        let shift = KoalaBear::GENERATOR;
        let words = coset_scale::<KoalaBear>(3, shift);
        let got = KoalaBear::from_monty_words(words).unwrap();
        let h_inv = KoalaBear::from_u32(8).inverse();
        for (k, x) in got.iter().enumerate() {
            assert_eq!(*x, shift.exp_u64(k as u64) * h_inv);
        }
    }
}

//! The host side of FRI on the device: the arity-2 fold's reference and checks
//! ([`ResidentBackend::fri_fold`](super::ResidentBackend::fri_fold)), the scalar words its kernels take, and the check
//! of [`ResidentBackend::reshape`](super::ResidentBackend::reshape).

use p3_field::{BasedVectorSpace, PrimeCharacteristicRing};

use super::{EXT_DEGREE, Ext, ResidentField, ResidentMatrix};
use crate::BackendError;

/// Plonky3's arity-2 fold (`TwoAdicFriFolding::fold_matrix`, p3-fri 0.8) of the
/// codeword `pairs` (row `i` the pair `(lo_i, hi_i)`, rows bit-reversed) with
/// challenge `beta`, plus `c * roll` where given: the values every backend's
/// [`ResidentBackend::fri_fold`](super::ResidentBackend::fri_fold) gives.
pub fn fold_reference<F: ResidentField>(
    pairs: &[[Ext<F>; 2]],
    beta: Ext<F>,
    roll_in: Option<(&[Ext<F>], Ext<F>)>,
) -> Vec<Ext<F>> {
    let h = pairs.len();
    let log_h = h.trailing_zeros() as usize;
    let g_inv = F::two_adic_generator(log_h + 1).inverse();
    (0..h)
        .map(|i| {
            let [lo, hi] = pairs[i];
            let factor = g_inv.exp_u64(bit_reverse(i, log_h) as u64).halve();
            let mut out = (lo + hi).halve() + (lo - hi) * beta * factor;
            if let Some((roll, c)) = roll_in {
                out += c * roll[i];
            }
            out
        })
        .collect()
}

/// `i` with its low `bits` bits reversed.
pub fn bit_reverse(i: usize, bits: usize) -> usize {
    if bits == 0 {
        0
    } else {
        i.reverse_bits() >> (usize::BITS as usize - bits)
    }
}

/// Checks a [`ResidentBackend::fri_fold`](super::ResidentBackend::fri_fold) call: `m` of `2 * EXT_DEGREE` words a row,
/// a power-of-two height within the field's two-adicity, and a roll-in of
/// [`EXT_DEGREE`] words a row and the same height. Returns the height.
pub fn check_fold<F: ResidentField, M: ResidentMatrix>(
    m: &M,
    roll_in: Option<&M>,
) -> Result<usize, BackendError> {
    let h = m.height();
    if m.width() != 2 * EXT_DEGREE || !h.is_power_of_two() {
        return Err(BackendError::invalid(format!(
            "a fold takes a power-of-two number of rows of {} words, not {h} rows of {}",
            2 * EXT_DEGREE,
            m.width()
        )));
    }
    if h.trailing_zeros() as usize >= F::TWO_ADICITY {
        return Err(BackendError::invalid(format!(
            "a fold of {h} rows exceeds the field's two-adicity"
        )));
    }
    if let Some(r) = roll_in
        && (r.width() != EXT_DEGREE || r.height() != h)
    {
        return Err(BackendError::invalid(format!(
            "a fold of {h} rows adds {h} rows of {EXT_DEGREE} words, not {} rows of {}",
            r.height(),
            r.width()
        )));
    }
    Ok(h)
}

/// The scalar words a device's `fri_fold` kernel takes (`firmware/common/fold.h`), in
/// Montgomery form: `beta` and the roll-in coefficient `c` (zero without a roll-in)
/// as four words each, `1/2`, the extension's `W` and `1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoldWords {
    pub beta: [u32; EXT_DEGREE],
    pub c: [u32; EXT_DEGREE],
    pub half: u32,
    pub w: u32,
    pub one: u32,
    ginv: [u32; 32],
}

impl FoldWords {
    pub fn new<F: ResidentField>(beta: Ext<F>, c: Option<Ext<F>>) -> Self {
        let words = |e: Ext<F>| -> [u32; EXT_DEGREE] {
            F::as_monty_words(e.as_basis_coefficients_slice())
                .try_into()
                .expect("four coefficients")
        };
        let mut ginv = [0u32; 32];
        for (bits, g) in ginv
            .iter_mut()
            .enumerate()
            .take((F::TWO_ADICITY + 1).min(32))
        {
            *g = F::as_monty_words(&[F::two_adic_generator(bits).inverse()])[0];
        }
        Self {
            beta: words(beta),
            c: words(c.unwrap_or(Ext::<F>::ZERO)),
            half: F::as_monty_words(&[F::ONE.halve()])[0],
            w: F::as_monty_words(&[F::W])[0],
            one: F::as_monty_words(&[F::ONE])[0],
            ginv,
        }
    }

    /// The inverse of the two-adic generator of order `2^(log_h + 1)`, the fold's
    /// `ginv` for a codeword of `2^log_h` pairs.
    pub fn ginv(&self, log_h: usize) -> u32 {
        self.ginv[log_h + 1]
    }
}

/// Checks a [`ResidentBackend::reshape`](super::ResidentBackend::reshape) of a `height x width` matrix to `new_width`
/// words a row; returns the new height.
pub fn check_reshape(height: usize, width: usize, new_width: usize) -> Result<usize, BackendError> {
    let words = height * width;
    if new_width == 0 || !words.is_multiple_of(new_width) || !(words / new_width).is_power_of_two()
    {
        return Err(BackendError::invalid(format!(
            "{height} rows of {width} words cannot be read as a power-of-two number of rows \
             of {new_width}"
        )));
    }
    Ok(words / new_width)
}

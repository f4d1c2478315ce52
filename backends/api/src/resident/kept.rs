//! The host side of the quotient kept resident: checks of grouped extensions, the
//! interpolation's plan and weights (the barycentric formula on a coset), and the
//! host paths of [`ResidentBackend::lde_resident_groups`] and
//! [`ResidentBackend::weighted_column_sums`].

use p3_field::PrimeCharacteristicRing;
use p3_matrix::dense::RowMajorMatrix;

use super::{Ext, ResidentBackend, ResidentField, ResidentMatrix};
use crate::BackendError;

/// Checks a request to extend a matrix of `width` columns in groups, one coset shift
/// per group ([`ResidentBackend::lde_resident_groups`]), and returns the groups'
/// width.
pub fn check_groups<F>(height: usize, width: usize, shifts: &[F]) -> Result<usize, BackendError> {
    if height == 0 || !height.is_power_of_two() {
        return Err(BackendError::invalid(format!(
            "an extension of {height} rows (a power of two is needed)"
        )));
    }
    if shifts.is_empty() || width == 0 || !width.is_multiple_of(shifts.len()) {
        return Err(BackendError::invalid(format!(
            "{width} columns do not split into {} groups of one width",
            shifts.len()
        )));
    }
    Ok(width / shifts.len())
}

/// How [`ResidentBackend::interpolate_resident`] evaluates the columns at a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation<F: ResidentField> {
    /// The point is the coset point of this row (bit-reversed order): the row is the
    /// answer.
    OnCoset(usize),
    /// Off the coset: the column sums of [`ResidentBackend::weighted_column_sums`]
    /// times this factor, `(z^n - s^n) / (n s^n)`.
    Scaled(Ext<F>),
}

/// Checks an interpolation request (the first `2^log_rows` rows of a matrix of
/// `height` rows, on the coset `shift * H` of that order, rows bit-reversed) and says
/// how the value at `z` is had: the barycentric formula on a coset,
///
/// ```text
/// f(z) = (z^n - s^n) / (n s^n) * sum_r f(x_r) * x_r / (z - x_r),   x_r = s * w^bitrev(r),
/// ```
///
/// (`n = 2^log_rows`, `s = shift`, `w` of order `n`; Plonky3's `interpolate_coset`
/// computes the same sum), or, where `z` is a point of the coset (`z^n = s^n`: every
/// `n`-th root of unity of the extension lies in the base field), that point's row.
pub fn plan_interpolation<F: ResidentField>(
    height: usize,
    log_rows: usize,
    shift: F,
    z: Ext<F>,
) -> Result<Interpolation<F>, BackendError> {
    if log_rows >= usize::BITS as usize || height < 1 << log_rows {
        return Err(BackendError::invalid(format!(
            "interpolation over 2^{log_rows} rows of a matrix of {height} rows"
        )));
    }
    if shift == F::ZERO {
        return Err(BackendError::invalid(
            "interpolation on a coset of shift zero",
        ));
    }
    let n = 1usize << log_rows;
    let s_n = shift.exp_power_of_2(log_rows);
    let z_n = z.exp_power_of_2(log_rows);
    if z_n != Ext::<F>::from(s_n) {
        let denom = (s_n * F::from_usize(n)).inverse();
        return Ok(Interpolation::Scaled((z_n - s_n) * denom));
    }
    let w = F::two_adic_generator(log_rows);
    let row = w
        .powers()
        .take(n)
        .position(|p| Ext::<F>::from(p * shift) == z)
        .expect("z^n = s^n puts z on the coset");
    let rev = if log_rows == 0 {
        0
    } else {
        row.reverse_bits() >> (usize::BITS as usize - log_rows)
    };
    Ok(Interpolation::OnCoset(rev))
}

/// Checks a request for [`ResidentBackend::weighted_column_sums`]: as
/// [`plan_interpolation`], and `z` must be off the coset (a weight there would divide
/// by zero).
pub fn check_off_coset<F: ResidentField>(
    height: usize,
    log_rows: usize,
    shift: F,
    z: Ext<F>,
) -> Result<(), BackendError> {
    match plan_interpolation(height, log_rows, shift, z)? {
        Interpolation::Scaled(_) => Ok(()),
        Interpolation::OnCoset(row) => Err(BackendError::invalid(format!(
            "weighted column sums at a point of the coset (row {row}): its row is the value"
        ))),
    }
}

/// The weights of [`ResidentBackend::weighted_column_sums`] straight from their
/// definition: `x_r / (z - x_r)` for the first `2^log_rows` points
/// `x_r = shift * w^bitrev(r)` (the host path, and what device kernels compute row by
/// row). `z` must be off the coset.
pub fn interpolation_weights<F: ResidentField>(
    log_rows: usize,
    shift: F,
    z: Ext<F>,
) -> Vec<Ext<F>> {
    let n = 1usize << log_rows;
    let natural: Vec<F> = F::two_adic_generator(log_rows)
        .shifted_powers(shift)
        .take(n)
        .collect();
    let xs: Vec<F> = (0..n)
        .map(|r| {
            let rev = if log_rows == 0 {
                0
            } else {
                r.reverse_bits() >> (usize::BITS as usize - log_rows)
            };
            natural[rev]
        })
        .collect();
    let diffs: Vec<Ext<F>> = xs.iter().map(|&x| z - x).collect();
    p3_field::batch_multiplicative_inverse(&diffs)
        .into_iter()
        .zip(xs)
        .map(|(d, x)| d * x)
        .collect()
}

/// [`ResidentBackend::lde_resident_groups`] through the host: the matrix read back,
/// each group extended with [`crate::Backend::coset_lde_batch`], the result given to the
/// backend (the provided method, and the path of a device backend for matrices its
/// kernels cannot bind whole).
pub fn lde_groups_on_host<B: ResidentBackend + ?Sized, F: ResidentField>(
    backend: &B,
    m: B::Matrix<F>,
    added_bits: usize,
    shifts: &[F],
) -> Result<B::Matrix<F>, BackendError> {
    let (height, width) = (m.height(), m.width());
    let group = check_groups(height, width, shifts)?;
    let rows = backend.read_rows(&m, &(0..height).collect::<Vec<_>>())?;
    drop(m);
    let mut parts = Vec::with_capacity(shifts.len());
    for (j, &shift) in shifts.iter().enumerate() {
        let values: Vec<F> = rows
            .iter()
            .flat_map(|r| r[j * group..(j + 1) * group].iter().copied())
            .collect();
        parts.push(backend.coset_lde_batch(
            RowMajorMatrix::new(values, group),
            added_bits,
            shift,
        )?);
    }
    let out_height = height << added_bits;
    let mut values = Vec::with_capacity(out_height * width);
    for r in 0..out_height {
        for p in &parts {
            values.extend_from_slice(&p.values[r * group..(r + 1) * group]);
        }
    }
    backend.upload_matrix(RowMajorMatrix::new(values, width))
}

/// [`ResidentBackend::weighted_column_sums`] on the host: the first `2^log_rows` rows
/// read back and summed with [`interpolation_weights`] (the provided method, and the
/// path of a device backend for a matrix its kernels cannot bind whole).
pub fn column_sums_on_host<B: ResidentBackend + ?Sized, F: ResidentField>(
    backend: &B,
    m: &B::Matrix<F>,
    log_rows: usize,
    shift: F,
    z: Ext<F>,
) -> Result<Vec<Ext<F>>, BackendError> {
    check_off_coset(m.height(), log_rows, shift, z)?;
    let rows = backend.read_rows(m, &(0..1usize << log_rows).collect::<Vec<_>>())?;
    let weights = interpolation_weights(log_rows, shift, z);
    let mut sums = vec![Ext::<F>::ZERO; m.width()];
    for (row, &wt) in rows.iter().zip(&weights) {
        for (s, &f) in sums.iter_mut().zip(row) {
            *s += wt * f;
        }
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use p3_koala_bear::KoalaBear;

    use super::*;

    #[test]
    fn interpolation_finds_coset_rows_and_scales_off_them() {
        use p3_field::{Field, TwoAdicField};
        type E = Ext<KoalaBear>;
        let shift = KoalaBear::new(7);
        let w = KoalaBear::two_adic_generator(3);
        // Natural index 1 is row bitrev_3(1) = 4.
        let z = E::from(shift * w);
        assert_eq!(
            plan_interpolation(8, 3, shift, z).unwrap(),
            Interpolation::OnCoset(4)
        );
        assert!(check_off_coset(8, 3, shift, z).is_err());
        let z = E::from(KoalaBear::new(5));
        let n = KoalaBear::new(8);
        let want = (z.exp_u64(8) - E::from(shift.exp_u64(8))) * (n * shift.exp_u64(8)).inverse();
        assert_eq!(
            plan_interpolation(8, 3, shift, z).unwrap(),
            Interpolation::Scaled(want)
        );
        assert!(plan_interpolation(4, 3, shift, z).is_err());
        assert!(check_groups::<KoalaBear>(8, 12, &[shift; 3]).is_ok());
        assert!(check_groups::<KoalaBear>(8, 10, &[shift; 3]).is_err());
        assert!(check_groups::<KoalaBear>(6, 12, &[shift; 3]).is_err());
    }
}

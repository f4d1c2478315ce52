//! [`ResidentBackend`] on host memory: a resident matrix is the host matrix itself
//! and its tree's layers, moved in and never copied. The opening reduction runs on
//! all cores, one matrix-point pair at a time, with Plonky3's field types; the
//! quotient is the host interpreter of the constraint program
//! ([`proofbox_backend_api::quotient`]) on all cores, reading the LDE in place; the
//! resident quotient is a host matrix of its coefficients, extended group by group
//! with Plonky3's DFT, and the interpolation's column sums run on all cores.

use std::collections::BTreeMap;

use p3_field::{
    BasedVectorSpace, PrimeCharacteristicRing, TwoAdicField, batch_multiplicative_inverse,
};
use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrix;
use p3_maybe_rayon::prelude::*;
use proofbox_backend_api::quotient::{ConstraintProgram, QuotientShape, plan_quotient};
use proofbox_backend_api::resident::{
    self, EXT_DEGREE, Ext, OpeningClaim, ReducedOpening, ResidentBackend, ResidentField,
    ResidentMatrix, ResidentReduced,
};
use proofbox_backend_api::{Backend, BackendError, Digest, merkle_root};

use crate::CpuBackend;

/// Every digest layer of a tree, leaves' digests first.
pub type TreeLayers<F> = Vec<Vec<Digest<F>>>;

/// A matrix resident in host memory: the values and, once committed, every layer of
/// their Merkle tree (leaves' digests first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuMatrix<F: ResidentField> {
    values: RowMajorMatrix<F>,
    layers: Option<TreeLayers<F>>,
}

impl<F: ResidentField> CpuMatrix<F> {
    /// The values, in place.
    pub fn values(&self) -> &RowMajorMatrix<F> {
        &self.values
    }

    /// The tree's layers, in place, once committed.
    pub fn layers(&self) -> Option<&[Vec<Digest<F>>]> {
        self.layers.as_deref()
    }

    /// The values and layers, handed back without a copy.
    pub fn into_parts(self) -> (RowMajorMatrix<F>, Option<TreeLayers<F>>) {
        (self.values, self.layers)
    }
}

impl<F: ResidentField> ResidentMatrix for CpuMatrix<F> {
    fn height(&self) -> usize {
        self.values.height()
    }
    fn width(&self) -> usize {
        self.values.width
    }
    fn has_tree(&self) -> bool {
        self.layers.is_some()
    }
}

/// The points `shift * g_k^bitrev_k(r)` of the coset of order `2^k`, rows in
/// bit-reversed order.
pub(crate) fn bitrev_coset<F: TwoAdicField>(shift: F, log_height: usize) -> Vec<F> {
    let g = F::two_adic_generator(log_height);
    let natural: Vec<F> = g.shifted_powers(shift).take(1 << log_height).collect();
    (0..natural.len())
        .map(|r| {
            let rev = if log_height == 0 {
                0
            } else {
                r.reverse_bits() >> (usize::BITS as usize - log_height)
            };
            natural[rev]
        })
        .collect()
}

impl ResidentBackend for CpuBackend {
    type Matrix<F: ResidentField> = CpuMatrix<F>;

    fn upload_matrix<F: ResidentField>(
        &self,
        mat: RowMajorMatrix<F>,
    ) -> Result<CpuMatrix<F>, BackendError> {
        Ok(CpuMatrix {
            values: mat,
            layers: None,
        })
    }

    fn lde_resident<F: ResidentField>(
        &self,
        mat: RowMajorMatrix<F>,
        added_bits: usize,
        shift: F,
    ) -> Result<CpuMatrix<F>, BackendError> {
        let values = self.coset_lde_batch(mat, added_bits, shift)?;
        Ok(CpuMatrix {
            values,
            layers: None,
        })
    }

    fn commit<F: ResidentField>(&self, m: &mut CpuMatrix<F>) -> Result<Digest<F>, BackendError> {
        let layers = self.merkle_tree(&[&m.values])?;
        let root = merkle_root(&layers).expect("a tree has a root");
        m.layers = Some(layers);
        Ok(root)
    }

    fn read_rows<F: ResidentField>(
        &self,
        m: &CpuMatrix<F>,
        rows: &[usize],
    ) -> Result<Vec<Vec<F>>, BackendError> {
        resident::check_rows(m.height(), rows)?;
        Ok(rows
            .iter()
            .map(|&r| m.values.row_slice(r).expect("checked").to_vec())
            .collect())
    }

    fn read_nodes<F: ResidentField>(
        &self,
        m: &CpuMatrix<F>,
        nodes: &[(usize, usize)],
    ) -> Result<Vec<Digest<F>>, BackendError> {
        resident::check_nodes(m.height(), m.has_tree(), nodes)?;
        let Some(layers) = m.layers.as_ref() else {
            return Ok(Vec::new());
        };
        Ok(nodes.iter().map(|&(l, i)| layers[l][i]).collect())
    }

    fn read_layer<F: ResidentField>(
        &self,
        m: &CpuMatrix<F>,
        layer: usize,
    ) -> Result<Vec<Digest<F>>, BackendError> {
        resident::check_layer(m.height(), m.has_tree(), layer, &[])?;
        Ok(m.layers.as_ref().expect("checked")[layer].clone())
    }

    fn reduce_openings_resident<F: ResidentField>(
        &self,
        claims: &[OpeningClaim<'_, CpuMatrix<F>, F>],
        alpha: Ext<F>,
        shift: F,
    ) -> Result<Vec<ResidentReduced<CpuMatrix<F>>>, BackendError> {
        Ok(self
            .reduce_openings(claims, alpha, shift)?
            .into_iter()
            .map(|r| {
                let values = RowMajorMatrix::new(resident::ext_to_base(&r.values), EXT_DEGREE);
                ResidentReduced {
                    log_height: r.log_height,
                    matrix: CpuMatrix {
                        values,
                        layers: None,
                    },
                }
            })
            .collect())
    }

    fn fri_fold<F: ResidentField>(
        &self,
        m: &CpuMatrix<F>,
        beta: Ext<F>,
        roll_in: Option<(&CpuMatrix<F>, Ext<F>)>,
    ) -> Result<CpuMatrix<F>, BackendError> {
        let h = resident::check_fold::<F, _>(m, roll_in.map(|r| r.0))?;
        let log_h = h.trailing_zeros() as usize;
        let g_inv = F::two_adic_generator(log_h + 1).inverse();
        let natural: Vec<F> = g_inv.shifted_powers(F::ONE.halve()).take(h).collect();
        let factors: Vec<F> = (0..h)
            .map(|i| natural[resident::bit_reverse(i, log_h)])
            .collect();
        let ext = |words: &[F]| Ext::<F>::from_basis_coefficients_slice(words).expect("4 words");
        let roll = roll_in.map(|(r, c)| (&r.values.values, c));
        let values: Vec<F> = m
            .values
            .values
            .par_chunks_exact(2 * EXT_DEGREE)
            .zip(factors.par_iter())
            .enumerate()
            .flat_map_iter(|(i, (pair, &factor))| {
                let (lo, hi) = (ext(&pair[..EXT_DEGREE]), ext(&pair[EXT_DEGREE..]));
                let mut out = (lo + hi).halve() + (lo - hi) * beta * factor;
                if let Some((roll, c)) = roll {
                    out += c * ext(&roll[i * EXT_DEGREE..(i + 1) * EXT_DEGREE]);
                }
                out.as_basis_coefficients_slice().to_vec()
            })
            .collect();
        Ok(CpuMatrix {
            values: RowMajorMatrix::new(values, EXT_DEGREE),
            layers: None,
        })
    }

    fn reshape<F: ResidentField>(
        &self,
        m: CpuMatrix<F>,
        width: usize,
    ) -> Result<CpuMatrix<F>, BackendError> {
        resident::check_reshape(m.height(), m.width(), width)?;
        Ok(CpuMatrix {
            values: RowMajorMatrix::new(m.values.values, width),
            layers: None,
        })
    }

    fn reduce_openings<F: ResidentField>(
        &self,
        claims: &[OpeningClaim<'_, CpuMatrix<F>, F>],
        alpha: Ext<F>,
        shift: F,
    ) -> Result<Vec<ReducedOpening<F>>, BackendError> {
        let plans = resident::plan_reduction(alpha, claims)?;
        let mut out: BTreeMap<usize, Vec<Ext<F>>> = BTreeMap::new();
        let mut cosets: BTreeMap<usize, Vec<F>> = BTreeMap::new();
        for (claim, plan) in claims.iter().zip(&plans) {
            let k = plan.log_height;
            let mat = &claim.matrix.values;
            let xs = cosets.entry(k).or_insert_with(|| bitrev_coset(shift, k));
            // m(x) = sum_i alpha_pows[i] * f_i(x), once per matrix.
            let reduced_rows: Vec<Ext<F>> = mat
                .par_row_slices()
                .map(|row| plan.alpha_pows.iter().zip(row).map(|(&a, &f)| a * f).sum())
                .collect();
            let acc = out.entry(k).or_insert_with(|| Ext::<F>::zero_vec(1 << k));
            for point in &plan.points {
                let denoms: Vec<Ext<F>> = xs.iter().map(|&x| point.z - x).collect();
                let inv = batch_multiplicative_inverse(&denoms);
                acc.par_iter_mut()
                    .zip(reduced_rows.par_iter())
                    .zip(inv.par_iter())
                    .for_each(|((ro, &mx), &d)| {
                        *ro += (point.weighted - point.rescale * mx) * d;
                    });
            }
        }
        Ok(out
            .into_iter()
            .rev()
            .map(|(log_height, values)| ReducedOpening { log_height, values })
            .collect())
    }

    fn eval_quotient<F: ResidentField>(
        &self,
        program: &ConstraintProgram<F>,
        lde: &CpuMatrix<F>,
        shape: QuotientShape,
        alpha: Ext<F>,
        public_values: &[F],
    ) -> Result<Vec<Ext<F>>, BackendError> {
        let plan = plan_quotient(
            program,
            lde.height(),
            lde.width(),
            shape,
            alpha,
            public_values,
        )?;
        let values = &lde.values;
        let w = values.width;
        let row = |r: usize| &values.values[r * w..(r + 1) * w];
        Ok((0..plan.size())
            .into_par_iter()
            .map_init(Vec::new, |scratch, i| {
                let (r, rn) = plan.rows_of(i);
                plan.eval_point(program, i, row(r), row(rn), scratch)
            })
            .collect())
    }

    /// The values in a host matrix: each point's four coefficients written in place.
    fn eval_quotient_resident<F: ResidentField>(
        &self,
        program: &ConstraintProgram<F>,
        lde: &CpuMatrix<F>,
        shape: QuotientShape,
        alpha: Ext<F>,
        public_values: &[F],
    ) -> Result<CpuMatrix<F>, BackendError> {
        let values = self.eval_quotient(program, lde, shape, alpha, public_values)?;
        let width = EXT_DEGREE << shape.log_quotient_degree;
        let mut words = F::zero_vec(values.len() * EXT_DEGREE);
        words
            .par_chunks_exact_mut(EXT_DEGREE)
            .zip(values.par_iter())
            .for_each(|(w, e)| w.copy_from_slice(e.as_basis_coefficients_slice()));
        self.upload_matrix(RowMajorMatrix::new(words, width))
    }

    /// Each group through [`Backend::coset_lde_batch`] with its shift, the groups
    /// interleaved back row by row.
    fn lde_resident_groups<F: ResidentField>(
        &self,
        m: CpuMatrix<F>,
        added_bits: usize,
        shifts: &[F],
    ) -> Result<CpuMatrix<F>, BackendError> {
        let (height, width) = (m.height(), m.width());
        let group = resident::check_groups(height, width, shifts)?;
        let values = if shifts.len() == 1 {
            self.coset_lde_batch(m.values, added_bits, shifts[0])?
        } else {
            let parts: Vec<RowMajorMatrix<F>> = shifts
                .iter()
                .enumerate()
                .map(|(j, &shift)| {
                    self.coset_lde_batch(Self::column_group(&m.values, group, j), added_bits, shift)
                })
                .collect::<Result<_, _>>()?;
            drop(m);
            let mut values = F::zero_vec((height << added_bits) * width);
            values
                .par_chunks_exact_mut(width)
                .enumerate()
                .for_each(|(r, row)| {
                    for (j, p) in parts.iter().enumerate() {
                        row[j * group..(j + 1) * group]
                            .copy_from_slice(&p.values[r * group..(r + 1) * group]);
                    }
                });
            RowMajorMatrix::new(values, width)
        };
        self.upload_matrix(values)
    }

    /// The weights by one batch inversion, the sums over the rows in place on all
    /// cores.
    fn weighted_column_sums<F: ResidentField>(
        &self,
        m: &CpuMatrix<F>,
        log_rows: usize,
        shift: F,
        z: Ext<F>,
    ) -> Result<Vec<Ext<F>>, BackendError> {
        resident::check_off_coset(m.height(), log_rows, shift, z)?;
        let weights = resident::interpolation_weights(log_rows, shift, z);
        let w = m.width();
        let rows = &m.values.values[..w << log_rows];
        Ok(rows
            .par_chunks_exact(w)
            .zip(weights.par_iter())
            .fold(
                || Ext::<F>::zero_vec(w),
                |mut acc, (row, &wt)| {
                    for (a, &f) in acc.iter_mut().zip(row) {
                        *a += wt * f;
                    }
                    acc
                },
            )
            .reduce(
                || Ext::<F>::zero_vec(w),
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        *x += y;
                    }
                    a
                },
            ))
    }
}

impl CpuBackend {
    /// The columns `group * j .. group * (j + 1)` of `mat`.
    fn column_group<F: ResidentField>(
        mat: &RowMajorMatrix<F>,
        group: usize,
        j: usize,
    ) -> RowMajorMatrix<F> {
        let values = mat
            .par_row_slices()
            .flat_map_iter(|row| row[j * group..(j + 1) * group].iter().copied())
            .collect();
        RowMajorMatrix::new(values, group)
    }
}

#[cfg(test)]
mod tests {
    use p3_koala_bear::KoalaBear;

    use super::*;

    #[test]
    fn resident_matrices_are_the_host_matrices_themselves() {
        let cpu = CpuBackend::new();
        let mat = RowMajorMatrix::new((0..64u32).map(KoalaBear::new).collect(), 4);
        let at = mat.values.as_ptr();
        let mut m = cpu.upload_matrix(mat).unwrap();
        let root = cpu.commit(&mut m).unwrap();
        assert_eq!(m.values().values.as_ptr(), at, "the values were copied");
        let layers = m.layers().unwrap();
        assert_eq!(layers.last().unwrap()[0], root);
        assert_eq!(cpu.read_layer(&m, 0).unwrap(), layers[0]);
        let (values, _) = m.into_parts();
        assert_eq!(values.values.as_ptr(), at);
    }

    #[test]
    fn coset_points_are_in_bit_reversed_order() {
        let shift = KoalaBear::new(7);
        let g = KoalaBear::two_adic_generator(3);
        let xs = bitrev_coset(shift, 3);
        // Row 1 of 8 holds the point of natural index bitrev_3(1) = 4.
        assert_eq!(xs[1], shift * g.exp_u64(4));
        assert_eq!(bitrev_coset(shift, 0), vec![shift]);
    }
}

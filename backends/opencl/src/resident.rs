//! [`ResidentBackend`] on OpenCL: a resident matrix is a device buffer (its rows,
//! row-major) and, once committed, a second buffer holding every layer of its Merkle
//! tree (`2h - 1` digests, leaves' digests first, the root last, the layout of
//! [`proofbox_backend_api::Backend::merkle_tree`]).
//!
//! - [`ResidentBackend::lde_resident`] runs the LDE kernels of
//!   [`proofbox_backend_api::Backend::coset_lde_batch`] and keeps their output buffer; nothing is read back.
//! - [`ResidentBackend::commit`] hashes the rows where they lie and compresses layer
//!   after layer in the tree buffer; one digest (the root) is read back.
//! - Reads ([`ResidentBackend::read_rows`], [`ResidentBackend::read_digests`],
//!   [`ResidentBackend::read_nodes`]) bring everything asked for back in one copy:
//!   one read where it is one contiguous range, else `gather_words` collects the rows
//!   or digests into one buffer first (their offsets go up as a table: one write, one
//!   launch, one read); [`ResidentBackend::read_layer`] is one copy.
//! - [`ResidentBackend::reduce_openings`] launches `reduce_openings` once per claim
//!   (one work-item per row, accumulating into one buffer per height) after uploading
//!   the claim's scalars (powers of `alpha`, points; counted as tables), and reads
//!   back one extension element per row of each height.
//! - [`ResidentBackend::eval_quotient`] runs the constraint program's generated
//!   kernel (built once per program and field, [`crate::quotient`]);
//!   [`ResidentBackend::eval_quotient_resident`] keeps its output buffer as the
//!   chunks side by side, [`ResidentBackend::lde_resident_groups`] extends them
//!   there and [`ResidentBackend::weighted_column_sums`] interpolates there
//!   ([`crate::kept`]).
//! - No call splits its work: a resident matrix, its tree or a reduction buffer that
//!   does not fit the device's memory budget or largest allocation is
//!   [`BackendError::OutOfMemory`].
//! - A matrix belongs to the backend instance (OpenCL context) that made it.

use std::collections::BTreeMap;

use ocl::Buffer;
use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::quotient::{ConstraintProgram, QuotientShape};
use proofbox_backend_api::resident::{
    self, DeviceMatrix, EXT_DEGREE, Ext, OpenedRead, OpeningClaim, OpeningRead, ResidentBackend,
    ResidentField, ResidentMatrix, ResidentReduced, layer_offset,
};
use proofbox_backend_api::{BackendError, BackendField, Digest, FieldId, planner, validate};

use crate::{DIGEST_WORDS, OpenclBackend, Payload, global_size};

/// A matrix resident in an OpenCL device's global memory.
pub type OpenclMatrix<F> = DeviceMatrix<F, Buffer<u32>>;

fn word<F: BackendField>(x: F) -> u32 {
    F::as_monty_words(&[x])[0]
}

impl OpenclBackend {
    fn read_elems<F: BackendField>(
        &self,
        what: &str,
        buf: &Buffer<u32>,
        offset: usize,
        len: usize,
    ) -> Result<Vec<F>, BackendError> {
        let mut words = vec![0u32; len];
        self.read(buf, offset, &mut words)?;
        self.to_elems::<F>(what, words)
    }

    /// The `width` words at each of `starts` (word offsets into `src`), back to back:
    /// one read where they are one contiguous range, else [`Self::gather_parts`].
    /// The caller holds the call lock.
    fn gather(
        &self,
        what: &str,
        field: FieldId,
        src: &Buffer<u32>,
        starts: &[usize],
        width: usize,
    ) -> Result<Vec<u32>, BackendError> {
        if starts.is_empty() || width == 0 {
            return Ok(vec![0u32; starts.len() * width]);
        }
        if resident::gather_offsets(starts, width).is_none() {
            let mut words = vec![0u32; starts.len() * width];
            self.read(src, starts[0], &mut words)?;
            return Ok(words);
        }
        Ok(self
            .gather_parts(what, field, &[(src, starts, width)])?
            .pop()
            .expect("one part"))
    }

    /// Several gathers, each the `width` words at each of its `starts` (word offsets
    /// into its buffer): `gather_words` collects them all into one buffer on the
    /// device (one launch per part, the offsets of all parts one table) and one read
    /// brings it back. The caller holds the call lock.
    fn gather_parts(
        &self,
        what: &str,
        field: FieldId,
        parts: &[(&Buffer<u32>, &[usize], usize)],
    ) -> Result<Vec<Vec<u32>>, BackendError> {
        let total: usize = parts.iter().map(|(_, s, w)| s.len() * w).sum();
        if total == 0 {
            return Ok(parts
                .iter()
                .map(|(_, s, w)| vec![0u32; s.len() * w])
                .collect());
        }
        let offsets: Vec<u32> = parts
            .iter()
            .flat_map(|(_, starts, _)| starts.iter())
            .flat_map(|&s| [s as u32, (s as u64 >> 32) as u32])
            .collect();
        let offsets = self.upload(&offsets, Payload::Table)?;
        let dst = self.alloc(total)?;
        let (mut first, mut at) = (0u64, 0u64);
        for &(src, starts, width) in parts {
            let (width64, count64) = (width as u64, starts.len() as u64);
            if count64 * width64 > 0 {
                // `offsets` holds 2 words per start of every part, every start plus
                // `width` lies within `src` (the callers checked rows and nodes),
                // `dst` holds every part's count * width words.
                let kernel = self
                    .kernel("gather_words", field)
                    .global_work_size(global_size(count64 * width64, self.compute_units))
                    .arg(src)
                    .arg(&offsets)
                    .arg(first)
                    .arg(width64)
                    .arg(count64)
                    .arg(&dst)
                    .arg(at)
                    .build();
                self.launch(what, kernel)?;
            }
            first += count64;
            at += count64 * width64;
        }
        let mut words = vec![0u32; total];
        self.read(&dst, 0, &mut words)?;
        let mut rest = words.as_slice();
        Ok(parts
            .iter()
            .map(|(_, s, w)| {
                let (mine, tail) = rest.split_at(s.len() * w);
                rest = tail;
                mine.to_vec()
            })
            .collect())
    }

    /// Digests at `positions` (in the layer layout) of a tree buffer.
    fn gather_digests<F: BackendField>(
        &self,
        what: &str,
        layers: &Buffer<u32>,
        positions: impl Iterator<Item = usize>,
    ) -> Result<Vec<Digest<F>>, BackendError> {
        let starts: Vec<usize> = positions.map(|p| p * DIGEST_WORDS).collect();
        let words = self.gather(what, F::ID, layers, &starts, DIGEST_WORDS)?;
        proofbox_backend_api::readback::digests(&self.info.id, what, words)
    }

    /// Checks that a matrix of `words` fits one allocation and the memory budget.
    fn check_fits(&self, words: usize) -> Result<(), BackendError> {
        planner::whole(&self.limits(), "a resident matrix", words, words)
            .map_err(|e| self.unplanned(e))
    }
}

impl ResidentBackend for OpenclBackend {
    type Matrix<F: ResidentField> = OpenclMatrix<F>;

    fn upload_matrix<F: ResidentField>(
        &self,
        mat: RowMajorMatrix<F>,
    ) -> Result<OpenclMatrix<F>, BackendError> {
        let height = validate::merkle_leaves(&[&mat]).map_err(BackendError::invalid)?;
        self.check_fits(mat.values.len())?;
        let _guard = self.call.lock().expect("call lock");
        let values = self.upload(F::as_monty_words(&mat.values), Payload::Data)?;
        Ok(DeviceMatrix::new(values, height, mat.width))
    }

    fn lde_resident<F: ResidentField>(
        &self,
        mat: RowMajorMatrix<F>,
        added_bits: usize,
        shift: F,
    ) -> Result<OpenclMatrix<F>, BackendError> {
        validate::lde(&mat, added_bits).map_err(BackendError::invalid)?;
        let (h, w) = (mat.height(), mat.width);
        let log_h = h.trailing_zeros() as usize;
        let n = h << added_bits;
        let shape = planner::LdeShape {
            log_h,
            added_bits,
            width: w,
        };
        planner::whole(
            &self.limits(),
            "a resident extension",
            shape.words_needed(w),
            n * w,
        )
        .map_err(|e| self.unplanned(e))?;
        let _guard = self.call.lock().expect("call lock");
        let values =
            self.lde_on_device(F::as_monty_words(&mat.values), log_h, added_bits, w, shift)?;
        Ok(DeviceMatrix::new(values, n, w))
    }

    fn commit<F: ResidentField>(&self, m: &mut OpenclMatrix<F>) -> Result<Digest<F>, BackendError> {
        let n = m.height;
        let layer_words = (2 * n - 1) * DIGEST_WORDS;
        self.check_fits(layer_words)?;
        let _guard = self.call.lock().expect("call lock");
        let layers = self.alloc(layer_words)?;
        self.hash_on_device(F::ID, &m.values, n, m.width, &layers, 0)?;
        self.tree_on_device(F::ID, &layers, n)?;
        let root = self.read_elems::<F>(
            "merkle tree",
            &layers,
            layer_words - DIGEST_WORDS,
            DIGEST_WORDS,
        )?;
        m.layers = Some(layers);
        Ok(root.try_into().expect("one digest"))
    }

    fn read_rows<F: ResidentField>(
        &self,
        m: &OpenclMatrix<F>,
        rows: &[usize],
    ) -> Result<Vec<Vec<F>>, BackendError> {
        resident::check_rows(m.height, rows)?;
        let starts: Vec<usize> = rows.iter().map(|&r| r * m.width).collect();
        let _guard = self.call.lock().expect("call lock");
        let words = self.gather("read rows", F::ID, &m.values, &starts, m.width)?;
        let values = self.to_elems::<F>("read rows", words)?;
        if m.width == 0 {
            return Ok(vec![Vec::new(); rows.len()]);
        }
        Ok(values.chunks_exact(m.width).map(<[F]>::to_vec).collect())
    }

    fn read_nodes<F: ResidentField>(
        &self,
        m: &OpenclMatrix<F>,
        nodes: &[(usize, usize)],
    ) -> Result<Vec<Digest<F>>, BackendError> {
        let positions = resident::check_nodes(m.height, m.has_tree(), nodes)?;
        let Some(layers) = m.layers.as_ref() else {
            return Ok(Vec::new());
        };
        let _guard = self.call.lock().expect("call lock");
        self.gather_digests("read nodes", layers, positions.into_iter())
    }

    fn read_openings<F: ResidentField>(
        &self,
        reads: &[OpeningRead<'_, OpenclMatrix<F>>],
    ) -> Result<Vec<OpenedRead<F>>, BackendError> {
        let starts = resident::opening_starts(reads)?;
        let mut parts: Vec<(&Buffer<u32>, &[usize], usize)> = Vec::with_capacity(2 * reads.len());
        for (r, (rows, nodes)) in reads.iter().zip(&starts) {
            parts.push((&r.matrix.values, rows, r.matrix.width));
            if let Some(layers) = &r.matrix.layers {
                parts.push((layers, nodes, DIGEST_WORDS));
            }
        }
        let _guard = self.call.lock().expect("call lock");
        let words = self.gather_parts("read_openings", F::ID, &parts)?;
        resident::opened_reads(&self.info.id, reads, words.into_iter())
    }

    fn read_layer<F: ResidentField>(
        &self,
        m: &OpenclMatrix<F>,
        layer: usize,
    ) -> Result<Vec<Digest<F>>, BackendError> {
        let len = resident::check_layer(m.height, m.has_tree(), layer, &[])?;
        let layers = m.layers.as_ref().expect("checked");
        let at = layer_offset(m.height, layer);
        let _guard = self.call.lock().expect("call lock");
        let mut words = vec![0u32; len * DIGEST_WORDS];
        self.read(layers, at * DIGEST_WORDS, &mut words)?;
        proofbox_backend_api::readback::digests(&self.info.id, "read layer", words)
    }

    fn reduce_openings_resident<F: ResidentField>(
        &self,
        claims: &[OpeningClaim<'_, OpenclMatrix<F>, F>],
        alpha: Ext<F>,
        shift: F,
    ) -> Result<Vec<ResidentReduced<OpenclMatrix<F>>>, BackendError> {
        let plans = resident::plan_reduction(alpha, claims)?;
        let heights = resident::reduced_heights(&plans);
        let acc_words: usize = heights.iter().map(|k| EXT_DEGREE << k).sum();
        let largest = heights.iter().map(|k| EXT_DEGREE << k).max().unwrap_or(0);
        planner::whole(
            &self.limits(),
            "the opening reduction's accumulators",
            acc_words,
            largest,
        )
        .map_err(|e| self.unplanned(e))?;
        let _guard = self.call.lock().expect("call lock");
        let mut accs: BTreeMap<usize, Buffer<u32>> = BTreeMap::new();
        let (w, one, shift) = (word(F::W), word(F::ONE), word(shift));
        for (claim, plan) in claims.iter().zip(&plans) {
            let k = plan.log_height;
            if plan.first_of_height {
                accs.insert(k, self.alloc(EXT_DEGREE << k)?);
            }
            if plan.points.is_empty() && !plan.first_of_height {
                // Nothing to add (a first claim still zeroes its height).
                continue;
            }
            let acc = &accs[&k];
            let mut params = plan.alpha_pows.clone();
            for p in &plan.points {
                params.extend([p.z, p.weighted, p.rescale]);
            }
            let params = self.upload(
                F::as_monty_words(&resident::ext_to_base(&params)),
                Payload::Table,
            )?;
            let m = claim.matrix;
            let (width64, log_h32, points32, first32) = (
                m.width as u64,
                k as u32,
                plan.points.len() as u32,
                u32::from(plan.first_of_height),
            );
            let generator = word(F::two_adic_generator(k));
            // `mat` holds 2^k rows of `width` words, `params` 4 * (width + 3 * points)
            // words, `acc` 4 * 2^k words.
            let kernel = self
                .kernel("reduce_openings", F::ID)
                .global_work_size(global_size(1u64 << k, self.compute_units))
                .arg(&m.values)
                .arg(width64)
                .arg(log_h32)
                .arg(&params)
                .arg(points32)
                .arg(first32)
                .arg(acc)
                .arg(shift)
                .arg(generator)
                .arg(w)
                .arg(one)
                .build();
            self.launch("reduce_openings", kernel)?;
        }
        Ok(heights
            .into_iter()
            .map(|k| {
                let acc = accs.remove(&k).expect("one accumulator per height");
                ResidentReduced {
                    log_height: k,
                    matrix: DeviceMatrix::new(acc, 1 << k, EXT_DEGREE),
                }
            })
            .collect())
    }

    fn fri_fold<F: ResidentField>(
        &self,
        m: &OpenclMatrix<F>,
        beta: Ext<F>,
        roll_in: Option<(&OpenclMatrix<F>, Ext<F>)>,
    ) -> Result<OpenclMatrix<F>, BackendError> {
        let h = resident::check_fold::<F, _>(m, roll_in.map(|r| r.0))?;
        let log_h = h.trailing_zeros();
        planner::whole(
            &self.limits(),
            "a folded codeword",
            EXT_DEGREE * h,
            EXT_DEGREE * h,
        )
        .map_err(|e| self.unplanned(e))?;
        let _guard = self.call.lock().expect("call lock");
        let out = self.alloc(EXT_DEGREE * h)?;
        let f = resident::FoldWords::new(beta, roll_in.map(|r| r.1));
        // `pairs` holds h rows of 8 words, `roll` (or `pairs` again, unread) h rows of
        // 4, `out` h rows of 4.
        let kernel = self
            .kernel("fri_fold", F::ID)
            .global_work_size(global_size(h as u64, self.compute_units))
            .arg(&m.values)
            .arg(log_h)
            .arg(roll_in.map_or(&m.values, |r| &r.0.values))
            .arg(u32::from(roll_in.is_some()))
            .arg(&out)
            .arg(f.beta[0])
            .arg(f.beta[1])
            .arg(f.beta[2])
            .arg(f.beta[3])
            .arg(f.c[0])
            .arg(f.c[1])
            .arg(f.c[2])
            .arg(f.c[3])
            .arg(f.ginv(log_h as usize))
            .arg(f.half)
            .arg(f.w)
            .arg(f.one)
            .build();
        self.launch("fri_fold", kernel)?;
        Ok(DeviceMatrix::new(out, h, EXT_DEGREE))
    }

    fn reshape<F: ResidentField>(
        &self,
        m: OpenclMatrix<F>,
        width: usize,
    ) -> Result<OpenclMatrix<F>, BackendError> {
        m.reshape(width)
    }

    fn eval_quotient<F: ResidentField>(
        &self,
        program: &ConstraintProgram<F>,
        lde: &OpenclMatrix<F>,
        shape: QuotientShape,
        alpha: Ext<F>,
        public_values: &[F],
    ) -> Result<Vec<Ext<F>>, BackendError> {
        self.eval_quotient_on_device(program, lde, shape, alpha, public_values)
    }

    fn eval_quotient_resident<F: ResidentField>(
        &self,
        program: &ConstraintProgram<F>,
        lde: &OpenclMatrix<F>,
        shape: QuotientShape,
        alpha: Ext<F>,
        public_values: &[F],
    ) -> Result<OpenclMatrix<F>, BackendError> {
        self.eval_quotient_kept(program, lde, shape, alpha, public_values)
    }

    fn lde_resident_groups<F: ResidentField>(
        &self,
        m: OpenclMatrix<F>,
        added_bits: usize,
        shifts: &[F],
    ) -> Result<OpenclMatrix<F>, BackendError> {
        self.lde_groups_on_device(m, added_bits, shifts)
    }

    fn weighted_column_sums<F: ResidentField>(
        &self,
        m: &OpenclMatrix<F>,
        log_rows: usize,
        shift: F,
        z: Ext<F>,
    ) -> Result<Vec<Ext<F>>, BackendError> {
        self.column_sums_on_device(m, log_rows, shift, z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_degree_is_plonky3s() {
        use p3_field::BasedVectorSpace;
        assert_eq!(
            <Ext<p3_koala_bear::KoalaBear> as BasedVectorSpace<p3_koala_bear::KoalaBear>>::DIMENSION,
            EXT_DEGREE
        );
    }
}

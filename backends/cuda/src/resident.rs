//! [`ResidentBackend`] on CUDA: a resident matrix is a device allocation (its rows,
//! row-major) and, once committed, a second allocation holding every layer of its
//! Merkle tree (`2h - 1` digests, leaves' digests first, the root last, the layout of
//! [`proofbox_backend_api::Backend::merkle_tree`]).
//!
//! - [`ResidentBackend::upload_matrix`] copies the values once (through the pinned
//!   buffers) and keeps them.
//! - [`ResidentBackend::lde_resident`] runs the LDE kernels of
//!   [`proofbox_backend_api::Backend::coset_lde_batch`] (`dif_stages`, `lde_expand`)
//!   and keeps their output; nothing is read back.
//! - [`ResidentBackend::commit`] runs `hash_leaves` over the rows where they lie and
//!   `compress_pairs` layer after layer in the tree allocation; one digest (the root)
//!   is read back.
//! - Reads ([`ResidentBackend::read_rows`], [`ResidentBackend::read_digests`],
//!   [`ResidentBackend::read_nodes`]) bring everything asked for back in one copy into
//!   host memory: one copy where it is one contiguous range, else `gather_words`
//!   (`firmware/common/gather.h`) collects the rows or digests into one allocation
//!   first (their offsets go up as a table); [`ResidentBackend::read_layer`] is one copy.
//!   Words are converted only after the stream has been synchronised.
//! - [`ResidentBackend::reduce_openings`] launches `reduce_openings`
//!   (`firmware/cuda/reduce.cu`) once per claim (one thread per row, accumulating
//!   into one allocation per height) after uploading the claim's scalars
//!   ([`kernel_params`], counted as tables), and reads back one extension element per
//!   row of each height.
//! - [`ResidentBackend::eval_quotient`] uploads the constraint program's register
//!   bytecode and the plan's table in one allocation (a table), kept until the next
//!   call so that a call of the same program and shape writes only its table
//!   ([`KeptQuotient`]), launches
//!   `eval_quotient` (`firmware/common/quotient.h`, one thread per quotient point) and
//!   reads back one extension element per point;
//!   [`ResidentBackend::eval_quotient_resident`] keeps the output as the chunks side
//!   by side, [`ResidentBackend::lde_resident_groups`] extends them there and
//!   [`ResidentBackend::weighted_column_sums`] interpolates there (`crate::kept`,
//!   `firmware/common/kept.h`).
//! - No call splits its work: a resident matrix, its tree or a reduction's
//!   accumulators that do not fit the planner's budget ([`CudaBackend::limits`],
//!   checked with `planner::whole`) are [`BackendError::OutOfMemory`].
//! - Every call ends with a stream synchronisation and a context error check, so a
//!   kernel fault is reported by the call that caused it.
//! - A matrix belongs to the backend instance (CUDA context) that made it.
//!
//! **Not yet run on a GPU:** the kernel compiles to PTX with the others and runs on
//! the host in the emulation test; the host code here has still to run under the
//! resident conformance suite on an NVIDIA GPU.

use std::collections::BTreeMap;

use cudarc::driver::{CudaSlice, PushKernelArg};
use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::quotient::{
    ConstraintProgram, DeviceQuotient, KeptQuotient, QuotientShape,
};
use proofbox_backend_api::resident::{
    self, ClaimPlan, DeviceMatrix, EXT_DEGREE, Ext, OpenedRead, OpeningClaim, OpeningRead,
    ResidentBackend, ResidentField, ResidentMatrix, ResidentReduced, layer_offset,
};
use proofbox_backend_api::{BackendError, BackendField, Digest, planner, validate};

use crate::{CudaBackend, DIGEST_WORDS, stride_config};

/// A matrix resident in an NVIDIA GPU's memory.
pub type CudaMatrix<F> = DeviceMatrix<F, CudaSlice<u32>>;

fn word<F: BackendField>(x: F) -> u32 {
    F::as_monty_words(&[x])[0]
}

/// The `params` words `reduce_openings` takes for one claim (Montgomery form): the
/// claim's powers of `alpha` (one extension element per column), then `z`,
/// `weighted` and `rescale` of each point.
pub fn kernel_params<F: ResidentField>(plan: &ClaimPlan<F>) -> Vec<u32> {
    let mut params = plan.alpha_pows.clone();
    for p in &plan.points {
        params.extend([p.z, p.weighted, p.rescale]);
    }
    F::as_monty_words(&resident::ext_to_base(&params)).to_vec()
}

/// The scalar arguments of `reduce_openings` for a height of `2^log_h` rows: the
/// coset shift, the two-adic generator of order `2^log_h`, the extension's `W` and
/// the field's 1, each one Montgomery word.
pub fn kernel_scalars<F: ResidentField>(log_h: usize, shift: F) -> [u32; 4] {
    [
        word(shift),
        word(F::two_adic_generator(log_h)),
        word(F::W),
        word(F::ONE),
    ]
}

impl CudaBackend {
    /// Copies `len` words at `offset` of `src` into host memory: one copy, into
    /// pageable memory, which returns once complete. Callers convert the words only
    /// after [`CudaBackend::check`] has synchronised the stream as well.
    pub(crate) fn read_words(
        &self,
        what: &str,
        src: &CudaSlice<u32>,
        offset: usize,
        len: usize,
    ) -> Result<Vec<u32>, BackendError> {
        let mut words = vec![0u32; len];
        self.stream
            .memcpy_dtoh(&src.slice(offset..offset + len), &mut words)
            .map_err(|e| self.kernel_error(what, e))?;
        self.transfers.device_to_host(len as u64 * 4);
        self.transfers.sync_wait();
        Ok(words)
    }

    /// The `width` words at each of `starts` (word offsets into `src`), back to back:
    /// one copy where they are one contiguous range, else [`Self::gather_parts`].
    /// The caller holds the call lock and synchronises afterwards.
    fn gather(
        &self,
        what: &str,
        k: &crate::Kernels,
        src: &CudaSlice<u32>,
        starts: &[usize],
        width: usize,
    ) -> Result<Vec<u32>, BackendError> {
        if starts.is_empty() || width == 0 {
            return Ok(vec![0u32; starts.len() * width]);
        }
        if resident::gather_offsets(starts, width).is_none() {
            return self.read_words(what, src, starts[0], starts.len() * width);
        }
        Ok(self
            .gather_parts(what, k, &[(src, starts, width)])?
            .pop()
            .expect("one part"))
    }

    /// Several gathers, each the `width` words at each of its `starts` (word offsets
    /// into its allocation): `gather_words` collects them all into one allocation on
    /// the device (one launch per part, the offsets of all parts one table) and one
    /// copy brings it back. The caller holds the call lock and synchronises
    /// afterwards.
    fn gather_parts(
        &self,
        what: &str,
        k: &crate::Kernels,
        parts: &[(&CudaSlice<u32>, &[usize], usize)],
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
        let mut table = self.alloc(offsets.len())?;
        self.stream
            .memcpy_htod(&offsets, &mut table)
            .map_err(|e| self.kernel_error("gather_words offset upload", e))?;
        self.transfers.table_to_device(offsets.len() as u64 * 4);
        let mut dst = self.alloc(total)?;
        let (mut first, mut at) = (0u64, 0u64);
        for &(src, starts, width) in parts {
            let (width64, count64) = (width as u64, starts.len() as u64);
            let words = count64 * width64;
            if words > 0 {
                let cfg = stride_config(words, self.sm_count);
                let mut launch = self.stream.launch_builder(&k.gather_words);
                launch
                    .arg(src)
                    .arg(&table)
                    .arg(&first)
                    .arg(&width64)
                    .arg(&count64)
                    .arg(&mut dst)
                    .arg(&at);
                // SAFETY: the arguments match the kernel's signature; `table` holds 2
                // words per start of every part, every start plus `width` lies within
                // `src` (the callers checked the rows and nodes), `dst` holds every
                // part's count * width words.
                unsafe { self.launch(&mut launch, cfg, "gather_words") }?;
            }
            first += count64;
            at += words;
        }
        let words = self.read_words(what, &dst, 0, total)?;
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

    /// Digests at `positions` (in the layer layout) of a tree allocation.
    fn gather_digests<F: BackendField>(
        &self,
        what: &str,
        layers: &CudaSlice<u32>,
        positions: impl Iterator<Item = usize>,
    ) -> Result<Vec<Digest<F>>, BackendError> {
        let starts: Vec<usize> = positions.map(|p| p * DIGEST_WORDS).collect();
        let k = self.kernels(F::ID)?;
        let _guard = self.call.lock().expect("call lock");
        let words = self.gather(what, k, layers, &starts, DIGEST_WORDS)?;
        self.check(what)?;
        proofbox_backend_api::readback::digests(&self.info.id, what, words)
    }

    /// Checks that buffers of `words` in all, the largest `largest`, fit whole.
    pub(crate) fn check_fits(
        &self,
        what: &'static str,
        words: usize,
        largest: usize,
    ) -> Result<(), BackendError> {
        planner::whole(&self.limits()?, what, words, largest).map_err(|e| self.unplanned(e))
    }
}

impl ResidentBackend for CudaBackend {
    type Matrix<F: ResidentField> = CudaMatrix<F>;

    fn upload_matrix<F: ResidentField>(
        &self,
        mat: RowMajorMatrix<F>,
    ) -> Result<CudaMatrix<F>, BackendError> {
        let height = validate::merkle_leaves(&[&mat]).map_err(BackendError::invalid)?;
        let words = mat.values.len();
        self.check_fits("a resident matrix", words, words)?;
        let mut guard = self.call.lock().expect("call lock");
        let pinned = self.pinned(&mut guard);
        let mut values = self.alloc(words)?;
        self.upload(pinned, F::as_monty_words(&mat.values), &mut values)?;
        self.check("upload_matrix")?;
        Ok(DeviceMatrix::new(values, height, mat.width))
    }

    fn lde_resident<F: ResidentField>(
        &self,
        mat: RowMajorMatrix<F>,
        added_bits: usize,
        shift: F,
    ) -> Result<CudaMatrix<F>, BackendError> {
        validate::lde(&mat, added_bits).map_err(BackendError::invalid)?;
        let (h, w) = (mat.height(), mat.width);
        let log_h = h.trailing_zeros() as usize;
        let n = h << added_bits;
        let shape = planner::LdeShape {
            log_h,
            added_bits,
            width: w,
        };
        self.check_fits("a resident extension", shape.words_needed(w), n * w)?;
        let k = self.kernels(F::ID)?;
        let mut guard = self.call.lock().expect("call lock");
        let pinned = self.pinned(&mut guard);
        let words = F::as_monty_words(&mat.values);
        let values = self.lde_on_device(pinned, k, words, log_h, added_bits, w, shift)?;
        self.check("lde_resident")?;
        Ok(DeviceMatrix::new(values, n, w))
    }

    fn commit<F: ResidentField>(&self, m: &mut CudaMatrix<F>) -> Result<Digest<F>, BackendError> {
        let n = m.height;
        let layer_words = planner::tree_words(n);
        self.check_fits("a resident Merkle tree", layer_words, layer_words)?;
        let k = self.kernels(F::ID)?;
        let _guard = self.call.lock().expect("call lock");
        let mut layers = self.alloc(layer_words)?;
        self.hash_on_device(k, &m.values, n, m.width, &mut layers, 0)?;
        self.tree_on_device(k, &mut layers, n)?;
        let root = self.read_words("commit", &layers, layer_words - DIGEST_WORDS, DIGEST_WORDS)?;
        self.check("commit")?;
        let root = self.to_elems::<F>("commit", root)?;
        m.layers = Some(layers);
        Ok(root.try_into().expect("one digest"))
    }

    fn read_rows<F: ResidentField>(
        &self,
        m: &CudaMatrix<F>,
        rows: &[usize],
    ) -> Result<Vec<Vec<F>>, BackendError> {
        resident::check_rows(m.height, rows)?;
        let starts: Vec<usize> = rows.iter().map(|&r| r * m.width).collect();
        let k = self.kernels(F::ID)?;
        let _guard = self.call.lock().expect("call lock");
        let words = self.gather("read_rows", k, &m.values, &starts, m.width)?;
        self.check("read_rows")?;
        let values = self.to_elems::<F>("read_rows", words)?;
        if m.width == 0 {
            return Ok(vec![Vec::new(); rows.len()]);
        }
        Ok(values.chunks_exact(m.width).map(<[F]>::to_vec).collect())
    }

    fn read_nodes<F: ResidentField>(
        &self,
        m: &CudaMatrix<F>,
        nodes: &[(usize, usize)],
    ) -> Result<Vec<Digest<F>>, BackendError> {
        let positions = resident::check_nodes(m.height, m.has_tree(), nodes)?;
        let Some(layers) = m.layers.as_ref() else {
            return Ok(Vec::new());
        };
        self.gather_digests("read_nodes", layers, positions.into_iter())
    }

    fn read_openings<F: ResidentField>(
        &self,
        reads: &[OpeningRead<'_, CudaMatrix<F>>],
    ) -> Result<Vec<OpenedRead<F>>, BackendError> {
        let starts = resident::opening_starts(reads)?;
        let mut parts: Vec<(&CudaSlice<u32>, &[usize], usize)> =
            Vec::with_capacity(2 * reads.len());
        for (r, (rows, nodes)) in reads.iter().zip(&starts) {
            parts.push((&r.matrix.values, rows, r.matrix.width));
            if let Some(layers) = &r.matrix.layers {
                parts.push((layers, nodes, DIGEST_WORDS));
            }
        }
        let k = self.kernels(F::ID)?;
        let _guard = self.call.lock().expect("call lock");
        let words = self.gather_parts("read_openings", k, &parts)?;
        self.check("read_openings")?;
        resident::opened_reads(&self.info.id, reads, words.into_iter())
    }

    fn read_layer<F: ResidentField>(
        &self,
        m: &CudaMatrix<F>,
        layer: usize,
    ) -> Result<Vec<Digest<F>>, BackendError> {
        let len = resident::check_layer(m.height, m.has_tree(), layer, &[])?;
        let layers = m.layers.as_ref().expect("checked");
        let at = layer_offset(m.height, layer);
        let _guard = self.call.lock().expect("call lock");
        let words = self.read_words("read_layer", layers, at * DIGEST_WORDS, len * DIGEST_WORDS)?;
        self.check("read_layer")?;
        proofbox_backend_api::readback::digests(&self.info.id, "read_layer", words)
    }

    fn reduce_openings_resident<F: ResidentField>(
        &self,
        claims: &[OpeningClaim<'_, CudaMatrix<F>, F>],
        alpha: Ext<F>,
        shift: F,
    ) -> Result<Vec<ResidentReduced<CudaMatrix<F>>>, BackendError> {
        let plans = resident::plan_reduction(alpha, claims)?;
        let heights = resident::reduced_heights(&plans);
        let acc_words: usize = heights.iter().map(|k| EXT_DEGREE << k).sum();
        let largest = heights.iter().map(|k| EXT_DEGREE << k).max().unwrap_or(0);
        self.check_fits("the opening reduction's accumulators", acc_words, largest)?;
        if plans.is_empty() {
            return Ok(Vec::new());
        }
        let k = self.kernels(F::ID)?;
        let _guard = self.call.lock().expect("call lock");
        let mut accs: BTreeMap<usize, CudaSlice<u32>> = BTreeMap::new();
        for (claim, plan) in claims.iter().zip(&plans) {
            let log_h = plan.log_height;
            if plan.first_of_height {
                accs.insert(log_h, self.alloc(EXT_DEGREE << log_h)?);
            }
            if plan.points.is_empty() && !plan.first_of_height {
                // Nothing to add (a first claim still zeroes its height).
                continue;
            }
            let words = kernel_params(plan);
            let mut params = self.alloc(words.len())?;
            self.stream
                .memcpy_htod(&words, &mut params)
                .map_err(|e| self.kernel_error("reduce_openings parameter upload", e))?;
            self.transfers.table_to_device(words.len() as u64 * 4);
            let m = claim.matrix;
            let (width64, log_h32, points32, first32) = (
                m.width as u64,
                log_h as u32,
                plan.points.len() as u32,
                u32::from(plan.first_of_height),
            );
            let [shift_w, gen_w, w_w, one_w] = kernel_scalars(log_h, shift);
            let acc = accs
                .get_mut(&log_h)
                .expect("allocated by the height's first claim");
            let cfg = stride_config(1u64 << log_h, self.sm_count);
            let mut launch = self.stream.launch_builder(&k.reduce_openings);
            launch
                .arg(&m.values)
                .arg(&width64)
                .arg(&log_h32)
                .arg(&params)
                .arg(&points32)
                .arg(&first32)
                .arg(acc)
                .arg(&shift_w)
                .arg(&gen_w)
                .arg(&w_w)
                .arg(&one_w);
            // SAFETY: the arguments match the kernel's signature; `m.values` holds
            // 2^log_h rows of `width` words (plan_reduction checked the height),
            // `params` 4 * (width + 3 * points) words and `acc` 4 * 2^log_h words,
            // which bounds every index the kernel forms.
            unsafe { self.launch(&mut launch, cfg, "reduce_openings") }?;
        }
        // A kernel error surfaces at the next wait on the stream (the caller's read).
        Ok(heights
            .into_iter()
            .map(|log_h| {
                let acc = accs.remove(&log_h).expect("one accumulator per height");
                ResidentReduced {
                    log_height: log_h,
                    matrix: DeviceMatrix::new(acc, 1 << log_h, EXT_DEGREE),
                }
            })
            .collect())
    }

    fn fri_fold<F: ResidentField>(
        &self,
        m: &CudaMatrix<F>,
        beta: Ext<F>,
        roll_in: Option<(&CudaMatrix<F>, Ext<F>)>,
    ) -> Result<CudaMatrix<F>, BackendError> {
        let h = resident::check_fold::<F, _>(m, roll_in.map(|r| r.0))?;
        let log_h = h.trailing_zeros();
        self.check_fits("a folded codeword", EXT_DEGREE * h, EXT_DEGREE * h)?;
        let k = self.kernels(F::ID)?;
        let _guard = self.call.lock().expect("call lock");
        let mut out = self.alloc(EXT_DEGREE * h)?;
        let f = resident::FoldWords::new(beta, roll_in.map(|r| r.1));
        let has_roll = u32::from(roll_in.is_some());
        let ginv = f.ginv(log_h as usize);
        let cfg = stride_config(h as u64, self.sm_count);
        let mut launch = self.stream.launch_builder(&k.fri_fold);
        launch
            .arg(&m.values)
            .arg(&log_h)
            .arg(roll_in.map_or(&m.values, |r| &r.0.values))
            .arg(&has_roll)
            .arg(&mut out)
            .arg(&f.beta[0])
            .arg(&f.beta[1])
            .arg(&f.beta[2])
            .arg(&f.beta[3])
            .arg(&f.c[0])
            .arg(&f.c[1])
            .arg(&f.c[2])
            .arg(&f.c[3])
            .arg(&ginv)
            .arg(&f.half)
            .arg(&f.w)
            .arg(&f.one);
        // SAFETY: the arguments match the kernel's signature; `m.values` holds h rows
        // of 8 words (check_fold), the roll-in (read only with has_roll) and `out` h
        // rows of 4, which bounds every index the kernel forms.
        unsafe { self.launch(&mut launch, cfg, "fri_fold") }?;
        Ok(DeviceMatrix::new(out, h, EXT_DEGREE))
    }

    fn reshape<F: ResidentField>(
        &self,
        m: CudaMatrix<F>,
        width: usize,
    ) -> Result<CudaMatrix<F>, BackendError> {
        m.reshape(width)
    }

    fn eval_quotient<F: ResidentField>(
        &self,
        program: &ConstraintProgram<F>,
        lde: &CudaMatrix<F>,
        shape: QuotientShape,
        alpha: Ext<F>,
        public_values: &[F],
    ) -> Result<Vec<Ext<F>>, BackendError> {
        let out = self.eval_quotient_kept(program, lde, shape, alpha, public_values)?;
        let _guard = self.call.lock().expect("call lock");
        let len = out.height * out.width;
        let back = self.read_words("eval_quotient", &out.values, 0, len)?;
        self.check("eval_quotient")?;
        let coeffs = self.to_elems::<F>("eval_quotient", back)?;
        Ok(resident::ext_from_base(&coeffs))
    }

    fn eval_quotient_resident<F: ResidentField>(
        &self,
        program: &ConstraintProgram<F>,
        lde: &CudaMatrix<F>,
        shape: QuotientShape,
        alpha: Ext<F>,
        public_values: &[F],
    ) -> Result<CudaMatrix<F>, BackendError> {
        self.eval_quotient_kept(program, lde, shape, alpha, public_values)
    }

    fn lde_resident_groups<F: ResidentField>(
        &self,
        m: CudaMatrix<F>,
        added_bits: usize,
        shifts: &[F],
    ) -> Result<CudaMatrix<F>, BackendError> {
        self.lde_groups_on_device(m, added_bits, shifts)
    }

    fn weighted_column_sums<F: ResidentField>(
        &self,
        m: &CudaMatrix<F>,
        log_rows: usize,
        shift: F,
        z: Ext<F>,
    ) -> Result<Vec<Ext<F>>, BackendError> {
        self.column_sums_on_device(m, log_rows, shift, z)
    }
}

impl CudaBackend {
    /// The quotient values left on the device: `eval_quotient`'s output, 4 words per
    /// point in natural order, as a matrix of `2^log_trace_height` rows of
    /// `4 * 2^log_quotient_degree` words (the chunks side by side).
    fn eval_quotient_kept<F: ResidentField>(
        &self,
        program: &ConstraintProgram<F>,
        lde: &CudaMatrix<F>,
        shape: QuotientShape,
        alpha: Ext<F>,
        public_values: &[F],
    ) -> Result<CudaMatrix<F>, BackendError> {
        let q =
            DeviceQuotient::prepare(program, lde.height, lde.width, shape, alpha, public_values)?;
        let (size, words) = (q.points, &q.words);
        let out_words = EXT_DEGREE * size;
        self.check_fits(
            "the quotient values and their table",
            out_words + words.len(),
            out_words.max(words.len()),
        )?;
        let k = self.kernels(F::ID)?;
        let _guard = self.call.lock().expect("call lock");
        let mut kept = self.kept_quotient.lock().unwrap_or_else(|e| e.into_inner());
        let write = |dst: &mut CudaSlice<u32>, at: usize, src: &[u32]| {
            self.stream
                .memcpy_htod(src, &mut dst.slice_mut(at..at + src.len()))
                .map_err(|e| self.kernel_error("eval_quotient table upload", e))?;
            self.transfers.table_to_device(src.len() as u64 * 4);
            Ok::<_, BackendError>(())
        };
        let table = KeptQuotient::update(&mut kept, &q, write, |words| {
            let mut buffer = self.alloc(words.len())?;
            write(&mut buffer, 0, words)?;
            Ok(buffer)
        })?;
        let mut out = self.alloc(out_words)?;
        let (width64, log_size32, log_qd32, one) = (
            lde.width as u64,
            shape.log_size() as u32,
            shape.log_quotient_degree as u32,
            word(F::ONE),
        );
        let cfg = stride_config(size as u64, self.sm_count);
        let mut launch = self.stream.launch_builder(&k.eval_quotient);
        launch
            .arg(&lde.values)
            .arg(&width64)
            .arg(&log_size32)
            .arg(&log_qd32)
            .arg(table)
            .arg(&mut out)
            .arg(&one);
        // SAFETY: the arguments match the kernel's signature; `lde.values` holds at
        // least `size` rows of `width` words (checked by the plan), `table` the words
        // of `device_words` (offsets within it, registers below the kernel's limit,
        // checked by `Bytecode::compile`), `out` 4 words per point.
        unsafe { self.launch(&mut launch, cfg, "eval_quotient") }?;
        self.check("eval_quotient")?;
        let d = 1usize << shape.log_quotient_degree;
        Ok(DeviceMatrix::new(out, size / d, EXT_DEGREE * d))
    }
}

#[cfg(test)]
mod tests {
    use p3_field::PrimeCharacteristicRing;
    use p3_koala_bear::KoalaBear;

    use super::*;

    #[test]
    fn params_hold_alpha_powers_then_three_elements_a_point() {
        type E = Ext<KoalaBear>;
        let e = |x: u32| E::from(KoalaBear::new(x));
        let plan = ClaimPlan {
            log_height: 3,
            alpha_pows: vec![e(1), e(2)],
            points: vec![resident::PointTerm {
                z: e(3),
                weighted: e(4),
                rescale: e(5),
            }],
            first_of_height: true,
        };
        let words = kernel_params(&plan);
        assert_eq!(words.len(), 4 * (2 + 3));
        let coeffs = KoalaBear::from_monty_words(words).unwrap();
        let elems = resident::ext_from_base(&coeffs);
        assert_eq!(elems, vec![e(1), e(2), e(3), e(4), e(5)]);
        assert_eq!(
            kernel_scalars::<KoalaBear>(0, KoalaBear::ONE)[1],
            word(KoalaBear::ONE)
        );
    }
}

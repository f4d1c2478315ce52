//! [`ResidentBackend`] on wgpu: a resident matrix is a storage buffer (its rows,
//! row-major) and, once committed, a second one holding every layer of its Merkle
//! tree (`2h - 1` digests, leaves' digests first, the root last).
//!
//! - [`ResidentBackend::lde_resident`] records the LDE passes of
//!   [`proofbox_backend_api::Backend::coset_lde_batch`] and keeps their output
//!   buffer; nothing is read back and the host does not wait.
//! - [`ResidentBackend::commit`] hashes the rows where they lie and compresses layer
//!   after layer, in one submission; the root (one digest) is read back.
//! - Reads ([`ResidentBackend::read_rows`], [`ResidentBackend::read_digests`],
//!   [`ResidentBackend::read_nodes`], [`ResidentBackend::read_layer`]) copy every row
//!   or digest asked for into one staging buffer and map it once (one device-to-host
//!   copy, one wait, per call).
//! - [`ResidentBackend::reduce_openings`] dispatches the `reduce_openings` kernel
//!   (`firmware/wgsl/reduce.wgsl`, compiled the first time it is needed) once per
//!   claim, one thread per row, after writing the claim's scalars as a table; every
//!   height's accumulator is copied into one staging buffer and read back at once.
//! - [`ResidentBackend::eval_quotient`] dispatches the constraint program's
//!   generated kernel (built once per program and field, [`crate::quotient`]);
//!   [`ResidentBackend::eval_quotient_resident`] keeps its output buffer as the
//!   chunks side by side, [`ResidentBackend::lde_resident_groups`] extends them
//!   there and [`ResidentBackend::weighted_column_sums`] interpolates there
//!   ([`crate::kept`]).
//! - A resident matrix beyond one storage binding is one buffer (up to the device's
//!   buffer limit) bound as several windows ([`crate::windows`]): its LDE runs in
//!   column batches placed into the windows, and `hash_leaves`, `reduce_openings` and
//!   `eval_quotient` read it through variants compiled per window count; reads to the
//!   host are buffer copies, which no binding limit applies to. A matrix beyond what
//!   the windows can bind (the per-stage storage buffer limit less 3, the buffer
//!   limit, `2^32` words), a tree (its digest layers or sponge states) or an
//!   accumulator beyond one binding is [`BackendError::OutOfMemory`].

use std::collections::BTreeMap;

use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::quotient::{ConstraintProgram, QuotientShape};
use proofbox_backend_api::resident::{
    self, DeviceMatrix, EXT_DEGREE, Ext, OpenedRead, OpeningClaim, OpeningRead, ResidentBackend,
    ResidentField, ResidentMatrix, ResidentReduced, layer_offset,
};
use proofbox_backend_api::{BackendError, BackendField, Digest, FieldId, validate};

use crate::gpu::{Kernel, Recorder, Slot, kernel_source, wgsl_kernel};
use crate::windows::WindowedKind;
use crate::{DIGEST_BYTES, Messages, WgpuBackend};

const EXT4_WGSL: &str = include_str!("../../../firmware/wgsl/ext4.wgsl");
const REDUCE_WGSL: &str = include_str!("../../../firmware/wgsl/reduce.wgsl");
const FOLD_WGSL: &str = include_str!("../../../firmware/wgsl/fold.wgsl");

/// The full source of a kernel file over the degree-4 extension (`ext4.wgsl`
/// prepended) for `field`.
pub(crate) fn ext_source(field: FieldId, wg_size: u32, file: &str) -> String {
    let w = match field {
        FieldId::KoalaBear => ext_w::<p3_koala_bear::KoalaBear>(),
        FieldId::BabyBear => ext_w::<p3_baby_bear::BabyBear>(),
    };
    let body = format!("const EXT_W: u32 = {w}u;\n{EXT4_WGSL}\n{file}");
    kernel_source(field, wg_size, None, &body)
}

/// The full source of the `reduce_openings` kernel for `field`.
pub(crate) fn reduce_source(field: FieldId, wg_size: u32) -> String {
    ext_source(field, wg_size, REDUCE_WGSL)
}

fn build_fold(b: &WgpuBackend, field: FieldId) -> Kernel {
    wgsl_kernel(
        &b.gpu.device,
        "fold",
        ext_source(field, b.gpu.wg_size, FOLD_WGSL),
        "fri_fold",
        &[
            (0, Slot::Ro),
            (1, Slot::Ro),
            (2, Slot::Uniform),
            (3, Slot::Rw),
            (4, Slot::Ro),
        ],
    )
}

fn build_reduce(b: &WgpuBackend, field: FieldId) -> Kernel {
    wgsl_kernel(
        &b.gpu.device,
        "reduce",
        reduce_source(field, b.gpu.wg_size),
        "reduce_openings",
        &[
            (0, Slot::Ro),
            (1, Slot::Ro),
            (2, Slot::Uniform),
            (3, Slot::Rw),
        ],
    )
}

/// `W` and `1` of a field's degree-4 extension, as Montgomery words.
/// The extension's `W` (`X^4 = W`) in Montgomery form.
fn ext_w<F: ResidentField>() -> u32 {
    word(F::W)
}

pub(crate) fn word<F: BackendField>(x: F) -> u32 {
    F::as_monty_words(&[x])[0]
}

/// A matrix resident in a wgpu device's storage buffers.
pub type WgpuMatrix<F> = DeviceMatrix<F, wgpu::Buffer>;

impl WgpuBackend {
    /// Copies `ranges` (byte offset, bytes) of `buffer` into one staging buffer in
    /// one submission and reads it back (one copy, one wait).
    pub(crate) fn read_ranges(
        &self,
        buffer: &wgpu::Buffer,
        ranges: &[(u64, u64)],
    ) -> Result<Vec<u32>, BackendError> {
        let of: Vec<(&wgpu::Buffer, u64, u64)> =
            ranges.iter().map(|&(o, b)| (buffer, o, b)).collect();
        self.read_ranges_of(&of)
    }

    /// Copies `ranges` (buffer, byte offset, bytes) of any buffers into one staging
    /// buffer in one submission and reads it back (one copy, one wait).
    fn read_ranges_of(
        &self,
        ranges: &[(&wgpu::Buffer, u64, u64)],
    ) -> Result<Vec<u32>, BackendError> {
        let total: u64 = ranges.iter().map(|r| r.2).sum();
        if total == 0 {
            return Ok(Vec::new());
        }
        let staging = self.gpu.staging(total)?;
        let mut rec = Recorder::default();
        let mut at = 0;
        for &(buffer, offset, bytes) in ranges {
            rec.copy(buffer, offset, &staging, at, bytes);
            at += bytes;
        }
        let index = self.gpu.submit(rec)?;
        self.gpu.read(&staging, total, index)
    }

    /// Checks that one buffer of `bytes` (whole words) fits a storage binding.
    pub(crate) fn check_binding(&self, bytes: u64) -> Result<(), BackendError> {
        let words = usize::try_from(bytes.div_ceil(4)).unwrap_or(usize::MAX);
        proofbox_backend_api::planner::whole(&self.limits(), "a resident buffer", words, words)
            .map_err(|e| self.unplanned(e))
    }
}

impl ResidentBackend for WgpuBackend {
    type Matrix<F: ResidentField> = WgpuMatrix<F>;

    fn upload_matrix<F: ResidentField>(
        &self,
        mat: RowMajorMatrix<F>,
    ) -> Result<WgpuMatrix<F>, BackendError> {
        let height = validate::merkle_leaves(&[&mat]).map_err(BackendError::invalid)?;
        let bytes = mat.values.len() as u64 * 4;
        let windows = self.resident_windows(bytes)?;
        let values = self.gpu.scoped("upload_matrix", || {
            let values = match windows {
                None => self.gpu.storage("resident matrix", bytes)?,
                Some(_) => self.gpu.windowed_storage("resident matrix", bytes)?,
            };
            self.gpu.upload(&values, 0, F::as_monty_words(&mat.values));
            Ok(values)
        })?;
        Ok(DeviceMatrix::new(values, height, mat.width))
    }

    fn lde_resident<F: ResidentField>(
        &self,
        mat: RowMajorMatrix<F>,
        added_bits: usize,
        shift: F,
    ) -> Result<WgpuMatrix<F>, BackendError> {
        validate::lde(&mat, added_bits).map_err(BackendError::invalid)?;
        let (h, w) = (mat.height(), mat.width);
        let log_h = h.trailing_zeros() as usize;
        let log_n = log_h + added_bits;
        let n = 1usize << log_n;
        let windows = self.resident_windows(n as u64 * w as u64 * 4)?;
        let values = self.gpu.scoped("lde_resident", || {
            let words = F::as_monty_words(&mat.values);
            if let Some(windows) = windows {
                return self.lde_windowed(words, log_h, log_n, w, shift, windows);
            }
            let k = self.gpu.kernels(F::ID);
            let b = self.prepare_lde(words, log_h, log_n, w, shift)?;
            let mut rec = Recorder::default();
            Self::record_lde(&mut rec, k, &b, log_h, log_n, w);
            self.gpu.submit(rec)?;
            Ok(b.dst)
        })?;
        Ok(DeviceMatrix::new(values, n, w))
    }

    fn commit<F: ResidentField>(&self, m: &mut WgpuMatrix<F>) -> Result<Digest<F>, BackendError> {
        let n = m.height;
        let layer_bytes = (2 * n as u64 - 1) * DIGEST_BYTES;
        let state_bytes = n as u64 * Self::STATE_BYTES;
        self.check_binding(layer_bytes.max(state_bytes))?;
        let windows = self.resident_windows(n as u64 * m.width as u64 * 4)?;
        let hash = match windows {
            Some(w) => Some((self.windowed_kernel(WindowedKind::Hash, F::ID, w)?, w)),
            None => None,
        };
        let (layers, root) = self.gpu.scoped("commit", || {
            let k = self.gpu.kernels(F::ID);
            let layers = self.gpu.storage("digest layers", layer_bytes)?;
            let states = self.gpu.storage("sponge states", state_bytes)?;
            let staging = self.gpu.staging(DIGEST_BYTES)?;
            let mut rec = Recorder::default();
            let msgs = match &hash {
                None => Messages::Whole(&m.values),
                Some((kernel, w)) => Messages::Windows(kernel, w.bind(&m.values)),
            };
            Self::record_hash(&mut rec, k, msgs, n, m.width, &layers, &states, 0);
            Self::record_tree(&mut rec, k, &layers, n);
            rec.copy(
                &layers,
                layer_bytes - DIGEST_BYTES,
                &staging,
                0,
                DIGEST_BYTES,
            );
            let index = self.gpu.submit(rec)?;
            let root = self.gpu.read(&staging, DIGEST_BYTES, index)?;
            Ok((layers, root))
        })?;
        let root = self.digests::<F>("commit", root)?;
        m.layers = Some(layers);
        Ok(root[0])
    }

    fn read_rows<F: ResidentField>(
        &self,
        m: &WgpuMatrix<F>,
        rows: &[usize],
    ) -> Result<Vec<Vec<F>>, BackendError> {
        resident::check_rows(m.height, rows)?;
        let row_bytes = m.width as u64 * 4;
        let ranges: Vec<(u64, u64)> = rows
            .iter()
            .map(|&r| (r as u64 * row_bytes, row_bytes))
            .collect();
        let words = self
            .gpu
            .scoped("read_rows", || self.read_ranges(&m.values, &ranges))?;
        let elems = proofbox_backend_api::readback::elems::<F>(&self.info.id, "read_rows", words)?;
        Ok(elems.chunks(m.width).map(<[F]>::to_vec).collect())
    }

    fn read_nodes<F: ResidentField>(
        &self,
        m: &WgpuMatrix<F>,
        nodes: &[(usize, usize)],
    ) -> Result<Vec<Digest<F>>, BackendError> {
        let positions = resident::check_nodes(m.height, m.has_tree(), nodes)?;
        let Some(layers) = m.layers.as_ref() else {
            return Ok(Vec::new());
        };
        let ranges: Vec<(u64, u64)> = positions
            .iter()
            .map(|&p| (p as u64 * DIGEST_BYTES, DIGEST_BYTES))
            .collect();
        let words = self
            .gpu
            .scoped("read_nodes", || self.read_ranges(layers, &ranges))?;
        self.digests::<F>("read_nodes", words)
    }

    fn read_openings<F: ResidentField>(
        &self,
        reads: &[OpeningRead<'_, WgpuMatrix<F>>],
    ) -> Result<Vec<OpenedRead<F>>, BackendError> {
        let starts = resident::opening_starts(reads)?;
        // Byte ranges: each read's rows, then its digests (word offsets times 4).
        let mut ranges: Vec<(&wgpu::Buffer, u64, u64)> = Vec::new();
        let mut sizes: Vec<usize> = Vec::with_capacity(2 * reads.len());
        for (r, (rows, nodes)) in reads.iter().zip(&starts) {
            let m = r.matrix;
            let row_bytes = m.width as u64 * 4;
            ranges.extend(rows.iter().map(|&w| (&m.values, w as u64 * 4, row_bytes)));
            sizes.push(rows.len() * m.width);
            if let Some(layers) = &m.layers {
                ranges.extend(nodes.iter().map(|&w| (layers, w as u64 * 4, DIGEST_BYTES)));
                sizes.push(nodes.len() * proofbox_backend_api::DIGEST_ELEMS);
            }
        }
        let words = self
            .gpu
            .scoped("read_openings", || self.read_ranges_of(&ranges))?;
        let mut rest = words.as_slice();
        let parts = sizes.into_iter().map(|n| {
            let (mine, tail) = rest.split_at(n);
            rest = tail;
            mine.to_vec()
        });
        resident::opened_reads(&self.info.id, reads, parts)
    }

    fn read_layer<F: ResidentField>(
        &self,
        m: &WgpuMatrix<F>,
        layer: usize,
    ) -> Result<Vec<Digest<F>>, BackendError> {
        let len = resident::check_layer(m.height, m.has_tree(), layer, &[])?;
        let layers = m.layers.as_ref().expect("checked");
        let at = layer_offset(m.height, layer) as u64 * DIGEST_BYTES;
        let range = [(at, len as u64 * DIGEST_BYTES)];
        let words = self
            .gpu
            .scoped("read_layer", || self.read_ranges(layers, &range))?;
        self.digests::<F>("read_layer", words)
    }

    fn reduce_openings_resident<F: ResidentField>(
        &self,
        claims: &[OpeningClaim<'_, WgpuMatrix<F>, F>],
        alpha: Ext<F>,
        shift: F,
    ) -> Result<Vec<ResidentReduced<WgpuMatrix<F>>>, BackendError> {
        let plans = resident::plan_reduction(alpha, claims)?;
        let heights = resident::reduced_heights(&plans);
        for k in &heights {
            self.check_binding((EXT_DEGREE << k) as u64 * 4)?;
        }
        let kernel = self.reduce.get(
            &self.gpu,
            "reduce_openings (build)",
            |f| build_reduce(self, f),
            F::ID,
        )?;
        // Matrices beyond one binding are read through their windows.
        let mut windowed = Vec::with_capacity(claims.len());
        for claim in claims {
            let m = claim.matrix;
            windowed.push(
                match self.resident_windows((m.height * m.width) as u64 * 4)? {
                    Some(w) => Some((self.windowed_kernel(WindowedKind::Reduce, F::ID, w)?, w)),
                    None => None,
                },
            );
        }
        let mut accs = self.gpu.scoped("reduce_openings", || {
            let mut accs: BTreeMap<usize, wgpu::Buffer> = BTreeMap::new();
            for k in &heights {
                accs.insert(
                    *k,
                    self.gpu
                        .storage("reduced openings", (EXT_DEGREE << k) as u64 * 4)?,
                );
            }
            let mut tables = Vec::with_capacity(claims.len());
            for plan in &plans {
                let mut params = plan.alpha_pows.clone();
                for p in &plan.points {
                    params.extend([p.z, p.weighted, p.rescale]);
                }
                tables.push(self.gpu.table(
                    "opening scalars",
                    F::as_monty_words(&resident::ext_to_base(&params)),
                )?);
            }
            let mut rec = Recorder::default();
            for (((claim, plan), table), windowed) in
                claims.iter().zip(&plans).zip(&tables).zip(&windowed)
            {
                if plan.points.is_empty() && !plan.first_of_height {
                    continue;
                }
                let k = plan.log_height;
                let params = [
                    claim.matrix.width as u32,
                    k as u32,
                    plan.points.len() as u32,
                    u32::from(plan.first_of_height),
                    word(shift),
                    word(F::two_adic_generator(k)),
                ];
                match windowed {
                    None => rec.dispatch(
                        kernel,
                        vec![(0, &claim.matrix.values), (1, table), (3, &accs[&k])],
                        1u64 << k,
                        params,
                    ),
                    Some((kernel, w)) => rec.dispatch_windowed(
                        kernel,
                        vec![(1, table), (3, &accs[&k])],
                        w.bind(&claim.matrix.values),
                        1u64 << k,
                        params,
                    ),
                }
            }
            self.gpu.submit(rec)?;
            Ok(accs)
        })?;
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
        m: &WgpuMatrix<F>,
        beta: Ext<F>,
        roll_in: Option<(&WgpuMatrix<F>, Ext<F>)>,
    ) -> Result<WgpuMatrix<F>, BackendError> {
        let h = resident::check_fold::<F, _>(m, roll_in.map(|r| r.0))?;
        let log_h = h.trailing_zeros() as usize;
        for bytes in [m.height * m.width * 4, EXT_DEGREE * h * 4] {
            self.check_binding(bytes as u64)?;
        }
        let kernel = self.fold.get(
            &self.gpu,
            "fri_fold (build)",
            |f| build_fold(self, f),
            F::ID,
        )?;
        let f = resident::FoldWords::new(beta, roll_in.map(|r| r.1));
        let out = self.gpu.scoped("fri_fold", || {
            let out = self
                .gpu
                .storage("folded codeword", (EXT_DEGREE * h) as u64 * 4)?;
            let scalars = self.gpu.table("fold scalars", &[f.beta, f.c].concat())?;
            let mut rec = Recorder::default();
            rec.dispatch(
                kernel,
                vec![
                    (0, &m.values),
                    (1, &scalars),
                    (3, &out),
                    (4, roll_in.map_or(&m.values, |r| &r.0.values)),
                ],
                h as u64,
                [
                    0,
                    log_h as u32,
                    u32::from(roll_in.is_some()),
                    f.ginv(log_h),
                    f.half,
                    0,
                ],
            );
            self.gpu.submit(rec)?;
            Ok(out)
        })?;
        Ok(DeviceMatrix::new(out, h, EXT_DEGREE))
    }

    fn reshape<F: ResidentField>(
        &self,
        m: WgpuMatrix<F>,
        width: usize,
    ) -> Result<WgpuMatrix<F>, BackendError> {
        m.reshape(width)
    }

    fn eval_quotient<F: ResidentField>(
        &self,
        program: &ConstraintProgram<F>,
        lde: &WgpuMatrix<F>,
        shape: QuotientShape,
        alpha: Ext<F>,
        public_values: &[F],
    ) -> Result<Vec<Ext<F>>, BackendError> {
        self.eval_quotient_on_device(program, lde, shape, alpha, public_values)
    }

    fn eval_quotient_resident<F: ResidentField>(
        &self,
        program: &ConstraintProgram<F>,
        lde: &WgpuMatrix<F>,
        shape: QuotientShape,
        alpha: Ext<F>,
        public_values: &[F],
    ) -> Result<WgpuMatrix<F>, BackendError> {
        self.eval_quotient_kept(program, lde, shape, alpha, public_values)
    }

    fn lde_resident_groups<F: ResidentField>(
        &self,
        m: WgpuMatrix<F>,
        added_bits: usize,
        shifts: &[F],
    ) -> Result<WgpuMatrix<F>, BackendError> {
        self.lde_groups_on_device(m, added_bits, shifts)
    }

    fn weighted_column_sums<F: ResidentField>(
        &self,
        m: &WgpuMatrix<F>,
        log_rows: usize,
        shift: F,
        z: Ext<F>,
    ) -> Result<Vec<Ext<F>>, BackendError> {
        self.column_sums_on_device(m, log_rows, shift, z)
    }
}

#[cfg(test)]
mod tests {
    use proofbox_backend_api::DIGEST_ELEMS;

    use super::*;

    #[test]
    fn a_digest_is_its_words() {
        assert_eq!(DIGEST_BYTES, (DIGEST_ELEMS * 4) as u64);
    }
}

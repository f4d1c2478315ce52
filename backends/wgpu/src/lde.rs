//! The coset LDE passes (`firmware/wgsl/ntt.wgsl`): one batch of columns uploaded,
//! inverse DFT, scale and zero-pad, forward DFT; whole matrices in column batches that
//! fit the binding limit.

use std::sync::Arc;

use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::planner::{self, LdeShape};
use proofbox_backend_api::{BackendError, BackendField};

use crate::gpu::{FieldKernels, Recorder};
use crate::{WgpuBackend, tables};

/// The device buffers of one LDE batch.
pub(crate) struct LdeBuffers {
    pub(crate) src: wgpu::Buffer,
    pub(crate) dst: wgpu::Buffer,
    pub(crate) scale: wgpu::Buffer,
    pub(crate) inv: (Arc<wgpu::Buffer>, usize),
    pub(crate) fwd: (Arc<wgpu::Buffer>, usize),
}

impl WgpuBackend {
    /// Uploads one LDE batch (`2^log_h` rows of `w` columns) and its tables.
    pub(crate) fn prepare_lde<F: BackendField>(
        &self,
        words: &[u32],
        log_h: usize,
        log_n: usize,
        w: usize,
        shift: F,
    ) -> Result<LdeBuffers, BackendError> {
        let b = self.lde_buffers(log_h, log_n, w, shift)?;
        self.gpu.upload(&b.src, 0, words);
        Ok(b)
    }

    /// The buffers and tables of an LDE batch of `2^log_h` rows of up to `w` columns
    /// (the input not yet written).
    pub(crate) fn lde_buffers<F: BackendField>(
        &self,
        log_h: usize,
        log_n: usize,
        w: usize,
        shift: F,
    ) -> Result<LdeBuffers, BackendError> {
        let h = 1u64 << log_h;
        let n = 1u64 << log_n;
        let src = self.gpu.storage("lde input", h * w as u64 * 4)?;
        let dst = self.gpu.storage("lde output", n * w as u64 * 4)?;
        let scale = self
            .gpu
            .table("coset scale", &tables::coset_scale::<F>(log_h, shift))?;
        let inv = self
            .gpu
            .twiddles(F::ID, true, log_h, |l| tables::twiddles::<F>(l, true))?;
        let fwd = self
            .gpu
            .twiddles(F::ID, false, log_n, |l| tables::twiddles::<F>(l, false))?;
        Ok(LdeBuffers {
            src,
            dst,
            scale,
            inv,
            fwd,
        })
    }

    /// Records the LDE of a prepared batch; the result is left in `b.dst`.
    pub(crate) fn record_lde<'a>(
        rec: &mut Recorder<'a>,
        k: &'a FieldKernels,
        b: &'a LdeBuffers,
        log_h: usize,
        log_n: usize,
        w: usize,
    ) {
        let w32 = w as u32;
        let (inv, inv_extra) = (&*b.inv.0, b.inv.1);
        for s in (0..log_h).rev() {
            let stride = 1u32 << (log_h + inv_extra - s - 1);
            rec.dispatch(
                &k.dif,
                vec![(0, &b.src), (1, inv)],
                (1u64 << (log_h - 1)) * w as u64,
                [w32, s as u32, stride, 0, 0, 0],
            );
        }
        rec.dispatch(
            &k.scatter,
            vec![(0, &b.dst), (1, &b.scale), (3, &b.src)],
            (1u64 << log_n) * w as u64,
            [w32, log_h as u32, 0, 0, 0, 0],
        );
        let (fwd, fwd_extra) = (&*b.fwd.0, b.fwd.1);
        for s in (0..log_n).rev() {
            let stride = 1u32 << (log_n + fwd_extra - s - 1);
            rec.dispatch(
                &k.dif,
                vec![(0, &b.dst), (1, fwd)],
                (1u64 << (log_n - 1)) * w as u64,
                [w32, s as u32, stride, 0, 0, 0],
            );
        }
    }

    /// The LDE of one column batch, read back.
    pub(crate) fn lde_batch<F: BackendField>(
        &self,
        words: &[u32],
        log_h: usize,
        added_bits: usize,
        w: usize,
        shift: F,
    ) -> Result<Vec<u32>, BackendError> {
        let log_n = log_h + added_bits;
        let k = self.gpu.kernels(F::ID);
        let b = self.prepare_lde(words, log_h, log_n, w, shift)?;
        let bytes = (1u64 << log_n) * w as u64 * 4;
        let staging = self.gpu.staging(bytes)?;
        let mut rec = Recorder::default();
        Self::record_lde(&mut rec, k, &b, log_h, log_n, w);
        rec.copy(&b.dst, 0, &staging, 0, bytes);
        let index = self.gpu.submit(rec)?;
        self.gpu.read(&staging, bytes, index)
    }

    /// The LDE of a whole matrix, in column batches that fit the binding limit.
    pub(crate) fn lde_words<F: BackendField>(
        &self,
        mat: &RowMajorMatrix<F>,
        added_bits: usize,
        shift: F,
    ) -> Result<Vec<u32>, BackendError> {
        let (h, w) = (mat.height(), mat.width);
        let log_h = h.trailing_zeros() as usize;
        let n = h << added_bits;
        let shape = LdeShape {
            log_h,
            added_bits,
            width: w,
        };
        let batches = planner::lde(&self.limits(), &shape).map_err(|e| self.unplanned(e))?;
        batches.log(&self.info.id, "coset_lde_batch", "columns");
        planner::run_column_batches(F::as_monty_words(&mat.values), &batches, n, |sub, cb| {
            self.lde_batch(sub, log_h, added_bits, cb, shift)
        })
    }
}

//! [`proofbox_backend_api::ResidentBackend::eval_quotient`] on wgpu: the constraint
//! program's register bytecode ([`proofbox_backend_api::quotient::bytecode`]) runs in
//! the `eval_quotient` kernel (`firmware/wgsl/quotient.wgsl`, compiled the first time
//! it is needed); the points go in batches of at most 4096, one thread each, their
//! registers in a scratch storage buffer, and over each batch the bytecode runs in
//! slices of 4096 instructions, one dispatch each (partial sums kept in the output). A
//! call writes the header, the bytecode and the plan's table as one table buffer,
//! dispatches (split against the workgroup limit by the recorder), and reads back 4
//! words per point in one copy (or, resident, keeps the output buffer as the chunks
//! side by side). The table buffer is kept until the next call: a call
//! of the same program and shape writes only its table ([`KeptQuotient`]).

use proofbox_backend_api::quotient::{
    ConstraintProgram, DeviceQuotient, KeptQuotient, QuotientShape,
};
use proofbox_backend_api::resident::{DeviceMatrix, EXT_DEGREE, Ext, ResidentField, ext_from_base};
use proofbox_backend_api::{BackendError, FieldId};

use crate::WgpuBackend;
use crate::gpu::{Kernel, Recorder, Slot, kernel_source, wgsl_kernel};
use crate::resident::WgpuMatrix;
use crate::windows::WindowedKind;

const QUOTIENT_WGSL: &str = include_str!("../../../firmware/wgsl/quotient.wgsl");

/// The full source of the `eval_quotient` kernel for `field`.
pub(crate) fn quotient_source(field: FieldId, wg_size: u32) -> String {
    kernel_source(field, wg_size, None, QUOTIENT_WGSL)
}

fn build(b: &WgpuBackend, field: FieldId) -> Kernel {
    wgsl_kernel(
        &b.gpu.device,
        "quotient",
        quotient_source(field, b.gpu.wg_size),
        "eval_quotient",
        &[
            (0, Slot::Ro),
            (1, Slot::Ro),
            (2, Slot::Uniform),
            (3, Slot::Rw),
            (4, Slot::Rw),
        ],
    )
}

/// Instructions one dispatch runs: longer runs give wrong results on lavapipe
/// (measured: programs of about 18,000 instructions and more), so a program runs in
/// slices, the registers and the partial sums staying on the device between them.
const INSTRUCTIONS_PER_DISPATCH: usize = 4096;

/// Threads one call runs at most (each takes every `threads`-th point): bounds the
/// register scratch buffer to `threads * registers` words.
const MAX_THREADS: usize = 4096;

impl WgpuBackend {
    /// The quotient values read back: [`WgpuBackend::eval_quotient_kept`] and one copy
    /// of its buffer.
    pub(crate) fn eval_quotient_on_device<F: ResidentField>(
        &self,
        program: &ConstraintProgram<F>,
        lde: &WgpuMatrix<F>,
        shape: QuotientShape,
        alpha: Ext<F>,
        public_values: &[F],
    ) -> Result<Vec<Ext<F>>, BackendError> {
        let out = self.eval_quotient_kept(program, lde, shape, alpha, public_values)?;
        let bytes = (out.height * out.width) as u64 * 4;
        let back = self.gpu.scoped("eval_quotient", || {
            self.read_ranges(&out.values, &[(0, bytes)])
        })?;
        let coeffs =
            proofbox_backend_api::readback::elems::<F>(&self.info.id, "eval_quotient", back)?;
        Ok(ext_from_base(&coeffs))
    }

    /// The quotient values left on the device: the kernel's output buffer, 4 words per
    /// point in natural order, as a matrix of `2^log_trace_height` rows of
    /// `4 * 2^log_quotient_degree` words (the chunks side by side).
    pub(crate) fn eval_quotient_kept<F: ResidentField>(
        &self,
        program: &ConstraintProgram<F>,
        lde: &WgpuMatrix<F>,
        shape: QuotientShape,
        alpha: Ext<F>,
        public_values: &[F],
    ) -> Result<WgpuMatrix<F>, BackendError> {
        let q =
            DeviceQuotient::prepare(program, lde.height, lde.width, shape, alpha, public_values)?;
        let (size, words, instructions, registers) =
            (q.points, &q.words, q.instructions, q.registers);
        let out_bytes = (EXT_DEGREE * size) as u64 * 4;
        self.check_binding(out_bytes)?;
        self.check_binding(words.len() as u64 * 4)?;
        let threads = size.min(MAX_THREADS);
        let scratch_bytes = (threads * registers.max(1)) as u64 * 4;
        self.check_binding(scratch_bytes)?;
        let kernel = self.quotient.get(
            &self.gpu,
            "eval_quotient (build)",
            |f| build(self, f),
            F::ID,
        )?;
        // An LDE beyond one binding is read through its windows.
        let windowed = match self.resident_windows((lde.height * lde.width) as u64 * 4)? {
            Some(w) => Some((self.windowed_kernel(WindowedKind::Quotient, F::ID, w)?, w)),
            None => None,
        };
        // Held until the work is submitted: a later call's table write is queued after
        // it.
        let mut kept = self.kept_quotient.lock().unwrap_or_else(|e| e.into_inner());
        let out = self.gpu.scoped("eval_quotient", || {
            let table = KeptQuotient::update(
                &mut kept,
                &q,
                |buffer, at, table| {
                    self.gpu.write_table(buffer, at, table);
                    Ok(())
                },
                |words| self.gpu.table("quotient bytecode and table", words),
            )?;
            let out = self.gpu.storage("quotient values", out_bytes)?;
            let scratch = self.gpu.storage("quotient registers", scratch_bytes)?;
            let mut rec = Recorder::default();
            let n = instructions.max(1);
            // Batches of at most `MAX_THREADS` points, one thread each; every slice of
            // the bytecode runs over a batch before the next batch starts (its
            // registers stay in `scratch` from one slice to the next).
            for first in (0..size).step_by(MAX_THREADS) {
                let batch = (size - first).min(MAX_THREADS);
                for start in (0..n).step_by(INSTRUCTIONS_PER_DISPATCH) {
                    let params = [
                        lde.width as u32,
                        shape.log_size() as u32,
                        shape.log_quotient_degree as u32,
                        start as u32,
                        (start + INSTRUCTIONS_PER_DISPATCH).min(instructions) as u32,
                        first as u32,
                    ];
                    match &windowed {
                        None => rec.dispatch(
                            kernel,
                            vec![(0, &lde.values), (1, table), (3, &out), (4, &scratch)],
                            batch as u64,
                            params,
                        ),
                        Some((kernel, w)) => rec.dispatch_windowed(
                            kernel,
                            vec![(1, table), (3, &out), (4, &scratch)],
                            w.bind(&lde.values),
                            batch as u64,
                            params,
                        ),
                    }
                }
            }
            self.gpu.submit(rec)?;
            Ok(out)
        })?;
        let d = 1usize << shape.log_quotient_degree;
        Ok(DeviceMatrix::new(out, size / d, EXT_DEGREE * d))
    }
}

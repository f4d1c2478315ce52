//! [`proofbox_backend_api::ResidentBackend::eval_quotient`] on OpenCL: the
//! constraint program's register bytecode
//! ([`proofbox_backend_api::quotient::bytecode`]) runs in the program's
//! `eval_quotient` kernel (`firmware/common/quotient.h`), one work-item per quotient
//! point. A call uploads the header, the bytecode and the plan's table in one buffer
//! (counted as a table), launches the kernel once, and reads back 4 words per point
//! (or, resident, keeps the output buffer as the chunks side by side).
//! The buffer is kept until the next call: a call of the same program and shape
//! writes only its table ([`KeptQuotient`]), so the bytecode goes to the device once.

use proofbox_backend_api::quotient::{
    ConstraintProgram, DeviceQuotient, KeptQuotient, QuotientShape,
};
use proofbox_backend_api::resident::{DeviceMatrix, EXT_DEGREE, Ext, ResidentField, ext_from_base};
use proofbox_backend_api::{Backend, BackendError, DeviceType, planner};

use crate::resident::OpenclMatrix;
use crate::{OpenclBackend, Payload, global_size};

fn word<F: ResidentField>(x: F) -> u32 {
    F::as_monty_words(&[x])[0]
}

impl OpenclBackend {
    /// The quotient values read back: [`OpenclBackend::eval_quotient_kept`] and one
    /// read of its buffer.
    pub(crate) fn eval_quotient_on_device<F: ResidentField>(
        &self,
        program: &ConstraintProgram<F>,
        lde: &OpenclMatrix<F>,
        shape: QuotientShape,
        alpha: Ext<F>,
        public_values: &[F],
    ) -> Result<Vec<Ext<F>>, BackendError> {
        let out = self.eval_quotient_kept(program, lde, shape, alpha, public_values)?;
        let _guard = self.call.lock().expect("call lock");
        let mut back = vec![0u32; out.values.len()];
        self.read(&out.values, 0, &mut back)?;
        let coeffs = self.to_elems::<F>("eval_quotient", back)?;
        Ok(ext_from_base(&coeffs))
    }

    /// The quotient values left on the device: the kernel's output buffer, 4 words per
    /// point in natural order, as a matrix of `2^log_trace_height` rows of
    /// `4 * 2^log_quotient_degree` words (the chunks side by side).
    pub(crate) fn eval_quotient_kept<F: ResidentField>(
        &self,
        program: &ConstraintProgram<F>,
        lde: &OpenclMatrix<F>,
        shape: QuotientShape,
        alpha: Ext<F>,
        public_values: &[F],
    ) -> Result<OpenclMatrix<F>, BackendError> {
        let q =
            DeviceQuotient::prepare(program, lde.height, lde.width, shape, alpha, public_values)?;
        let (size, words) = (q.points, &q.words);
        let out_words = EXT_DEGREE * size;
        planner::whole(
            &self.limits(),
            "the quotient values and their table",
            out_words + words.len(),
            out_words.max(words.len()),
        )
        .map_err(|e| self.unplanned(e))?;
        let _guard = self.call.lock().expect("call lock");
        let mut kept = self.kept_quotient.lock().unwrap_or_else(|e| e.into_inner());
        let table = KeptQuotient::update(
            &mut kept,
            &q,
            |buffer, at, table| self.write(buffer, at, table, Payload::Table),
            |words| self.upload(words, Payload::Table),
        )?;
        let out = self.alloc(out_words)?;
        // `lde` holds at least `size` rows of `width` words (checked by the plan),
        // `table` the header, bytecode and table of `device_words` (whose offsets and
        // register numbers the kernel trusts: the bytecode's registers are below its
        // limit, checked by `Bytecode::compile`), `out` 4 words per point.
        // Each work-item keeps `QUOTIENT_MAX_REGISTERS` words of private memory (16
        // KiB). A CPU implementation (PoCL) lays a whole work-group's private memory on
        // one thread's stack, so a work-group of 1,024 items overflows it: one item per
        // work-group there; 64 on GPUs and accelerators.
        let local = if self.device().device_type == DeviceType::Cpu {
            1
        } else {
            64
        };
        let global = global_size(size as u64, self.compute_units).next_multiple_of(local);
        let kernel = self
            .kernel("eval_quotient", F::ID)
            .global_work_size(global)
            .local_work_size(local)
            .arg(&lde.values)
            .arg(lde.width as u64)
            .arg(shape.log_size() as u32)
            .arg(shape.log_quotient_degree as u32)
            .arg(table)
            .arg(&out)
            .arg(word(F::ONE))
            .build();
        self.launch("eval_quotient", kernel)?;
        let d = 1usize << shape.log_quotient_degree;
        Ok(DeviceMatrix::new(out, size / d, EXT_DEGREE * d))
    }
}

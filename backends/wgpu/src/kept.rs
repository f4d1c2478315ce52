//! The quotient kept on the device (`firmware/wgsl/kept.wgsl`, compiled the first
//! time it is needed):
//!
//! - [`WgpuBackend::lde_groups_on_device`] extends a resident matrix whose column
//!   groups each have their own coset shift: the inverse DIF stages in place in the
//!   input's buffer, `scatter_groups` (each group's scale `shift^k / h` computed on
//!   the device from one table word per group), the forward DIF stages; one
//!   submission, no wait. Only the shifts go up (a table); nothing comes back. An
//!   input or extension beyond one storage binding is extended through the host
//!   instead ([`resident::lde_groups_on_host`]: read back, extended in column
//!   batches, given back as a windowed matrix).
//! - [`WgpuBackend::column_sums_on_device`] computes the interpolation's weighted
//!   column sums: `interp_weights` (one extension element per row, in a scratch
//!   buffer), `interp_partials` (per slice of rows and column), `interp_finish` (per
//!   column), and one copy brings back 4 words per column. The point, the shift and
//!   the generator go up as a table of 6 words. A matrix beyond one binding is summed
//!   on the host ([`resident::column_sums_on_host`]).

use proofbox_backend_api::resident::{self, DeviceMatrix, EXT_DEGREE, Ext, ResidentField};
use proofbox_backend_api::{BackendError, FieldId};

use crate::gpu::{Kernel, Recorder, Slot, wgsl_kernel};
use crate::resident::{WgpuMatrix, word};
use crate::{WgpuBackend, compile, tables};

const KEPT_WGSL: &str = include_str!("../../../firmware/wgsl/kept.wgsl");

/// Row slices of the partial sums: enough threads for a device, few partials.
const SLICES: usize = 256;

/// The kept-quotient kernels, compiled on first use.
#[derive(Default)]
pub(crate) struct KeptKernels {
    scatter: compile::LazyFieldKernels,
    weights: compile::LazyFieldKernels,
    partials: compile::LazyFieldKernels,
    finish: compile::LazyFieldKernels,
}

/// The full source of the kept-quotient kernels for `field` (`ext4.wgsl` prepended).
pub(crate) fn kept_source(field: FieldId, wg_size: u32) -> String {
    crate::resident::ext_source(field, wg_size, KEPT_WGSL)
}

fn build(b: &WgpuBackend, field: FieldId, entry: &'static str, slots: &[(u32, Slot)]) -> Kernel {
    wgsl_kernel(
        &b.gpu.device,
        "kept quotient",
        kept_source(field, b.gpu.wg_size),
        entry,
        slots,
    )
}

impl WgpuBackend {
    fn kept_kernel(&self, which: &'static str, field: FieldId) -> Result<&Kernel, BackendError> {
        let (cache, slots): (&compile::LazyFieldKernels, &[(u32, Slot)]) = match which {
            "scatter_groups" => (
                &self.kept.scatter,
                &[
                    (0, Slot::Rw),
                    (1, Slot::Ro),
                    (2, Slot::Uniform),
                    (3, Slot::Ro),
                ],
            ),
            "interp_weights" => (
                &self.kept.weights,
                &[(0, Slot::Rw), (1, Slot::Ro), (2, Slot::Uniform)],
            ),
            "interp_partials" => (
                &self.kept.partials,
                &[
                    (0, Slot::Rw),
                    (2, Slot::Uniform),
                    (3, Slot::Ro),
                    (4, Slot::Ro),
                ],
            ),
            _ => (
                &self.kept.finish,
                &[(0, Slot::Rw), (2, Slot::Uniform), (3, Slot::Ro)],
            ),
        };
        cache.get(
            &self.gpu,
            "kept quotient (build)",
            |f| build(self, f, which, slots),
            field,
        )
    }

    pub(crate) fn lde_groups_on_device<F: ResidentField>(
        &self,
        m: WgpuMatrix<F>,
        added_bits: usize,
        shifts: &[F],
    ) -> Result<WgpuMatrix<F>, BackendError> {
        let (h, w) = (m.height, m.width);
        let group = resident::check_groups(h, w, shifts)?;
        let log_h = h.trailing_zeros() as usize;
        let log_n = log_h + added_bits;
        let n = 1usize << log_n;
        let out_bytes = (n * w) as u64 * 4;
        // Beyond one binding (the input or the extension), through the host.
        if self.resident_windows(out_bytes)?.is_some()
            || self.resident_windows((h * w) as u64 * 4)?.is_some()
        {
            return resident::lde_groups_on_host(self, m, added_bits, shifts);
        }
        let scatter = self.kept_kernel("scatter_groups", F::ID)?;
        let values = self.gpu.scoped("lde_resident_groups", || {
            let k = self.gpu.kernels(F::ID);
            let shift_words: Vec<u32> = shifts.iter().map(|&s| word(s)).collect();
            let table = self.gpu.table("group shifts", &shift_words)?;
            let inv = self
                .gpu
                .twiddles(F::ID, true, log_h, |l| tables::twiddles::<F>(l, true))?;
            let fwd = self
                .gpu
                .twiddles(F::ID, false, log_n, |l| tables::twiddles::<F>(l, false))?;
            let dst = self.gpu.storage("grouped extension", out_bytes)?;
            let w32 = w as u32;
            let mut rec = Recorder::default();
            let (inv_t, inv_extra) = (&*inv.0, inv.1);
            for s in (0..log_h).rev() {
                let stride = 1u32 << (log_h + inv_extra - s - 1);
                rec.dispatch(
                    &k.dif,
                    vec![(0, &m.values), (1, inv_t)],
                    (1u64 << (log_h - 1)) * w as u64,
                    [w32, s as u32, stride, 0, 0, 0],
                );
            }
            let inv_h = word(F::from_usize(h).inverse());
            rec.dispatch(
                scatter,
                vec![(0, &dst), (1, &table), (3, &m.values)],
                (1u64 << log_n) * w as u64,
                [w32, log_h as u32, group as u32, inv_h, 0, 0],
            );
            let (fwd_t, fwd_extra) = (&*fwd.0, fwd.1);
            for s in (0..log_n).rev() {
                let stride = 1u32 << (log_n + fwd_extra - s - 1);
                rec.dispatch(
                    &k.dif,
                    vec![(0, &dst), (1, fwd_t)],
                    (1u64 << (log_n - 1)) * w as u64,
                    [w32, s as u32, stride, 0, 0, 0],
                );
            }
            self.gpu.submit(rec)?;
            Ok(dst)
        })?;
        Ok(DeviceMatrix::new(values, n, w))
    }

    pub(crate) fn column_sums_on_device<F: ResidentField>(
        &self,
        m: &WgpuMatrix<F>,
        log_rows: usize,
        shift: F,
        z: Ext<F>,
    ) -> Result<Vec<Ext<F>>, BackendError> {
        resident::check_off_coset(m.height, log_rows, shift, z)?;
        if self
            .resident_windows((m.height * m.width) as u64 * 4)?
            .is_some()
        {
            return resident::column_sums_on_host(self, m, log_rows, shift, z);
        }
        let rows = 1usize << log_rows;
        let w = m.width;
        let slices = SLICES.min(rows);
        let weights_bytes = (EXT_DEGREE * rows) as u64 * 4;
        let partial_bytes = (EXT_DEGREE * slices * w) as u64 * 4;
        let out_bytes = (EXT_DEGREE * w) as u64 * 4;
        self.check_binding(weights_bytes.max(partial_bytes))?;
        let weights_k = self.kept_kernel("interp_weights", F::ID)?;
        let partials_k = self.kept_kernel("interp_partials", F::ID)?;
        let finish_k = self.kept_kernel("interp_finish", F::ID)?;
        let words = self.gpu.scoped("interpolate_resident", || {
            let mut params = vec![word(shift), word(F::two_adic_generator(log_rows))];
            params.extend_from_slice(F::as_monty_words(&resident::ext_to_base(&[z])));
            let table = self.gpu.table("interpolation point", &params)?;
            let weights = self.gpu.storage("interpolation weights", weights_bytes)?;
            let partial = self
                .gpu
                .storage("interpolation partial sums", partial_bytes)?;
            let out = self.gpu.storage("interpolation sums", out_bytes)?;
            let staging = self.gpu.staging(out_bytes)?;
            let w32 = w as u32;
            let mut rec = Recorder::default();
            rec.dispatch(
                weights_k,
                vec![(0, &weights), (1, &table)],
                rows as u64,
                [0, log_rows as u32, 0, 0, 0, 0],
            );
            rec.dispatch(
                partials_k,
                vec![(0, &partial), (3, &m.values), (4, &weights)],
                (slices * w) as u64,
                [w32, 0, rows as u32, slices as u32, 0, 0],
            );
            rec.dispatch(
                finish_k,
                vec![(0, &out), (3, &partial)],
                w as u64,
                [w32, 0, 0, slices as u32, 0, 0],
            );
            rec.copy(&out, 0, &staging, 0, out_bytes);
            let index = self.gpu.submit(rec)?;
            self.gpu.read(&staging, out_bytes, index)
        })?;
        let coeffs =
            proofbox_backend_api::readback::elems::<F>(&self.info.id, "interpolate", words)?;
        Ok(resident::ext_from_base(&coeffs))
    }
}

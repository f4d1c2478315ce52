//! The quotient kept on the device (`firmware/common/kept.h`):
//!
//! - [`OpenclBackend::lde_groups_on_device`] extends a resident matrix whose column
//!   groups each have their own coset shift: the inverse DIF in place in the input's
//!   buffer, `lde_expand_groups` (each group's scale `shift^m / h` computed on the
//!   device from one table word per group), the forward DIF stages. Only the shifts
//!   go up (a table); nothing comes back.
//! - [`OpenclBackend::column_sums_on_device`] computes the interpolation's weighted
//!   column sums: `interp_weights` (one extension element per row, in a scratch
//!   buffer), `interp_partials` (per slice of rows and column), `interp_finish`
//!   (per column); one read brings back 4 words per column. The point goes as kernel
//!   arguments: no table.

use proofbox_backend_api::resident::{self, EXT_DEGREE, Ext, ResidentField, ResidentMatrix};
use proofbox_backend_api::{BackendError, planner};

use crate::resident::OpenclMatrix;
use crate::{OpenclBackend, Payload, global_size};

/// Row slices of the partial sums: enough work-items for a device, few partials.
const SLICES: usize = 256;

fn word<F: ResidentField>(x: F) -> u32 {
    F::as_monty_words(&[x])[0]
}

impl OpenclBackend {
    pub(crate) fn lde_groups_on_device<F: ResidentField>(
        &self,
        m: OpenclMatrix<F>,
        added_bits: usize,
        shifts: &[F],
    ) -> Result<OpenclMatrix<F>, BackendError> {
        let (h, w) = (m.height, m.width);
        let group = resident::check_groups(h, w, shifts)?;
        let log_h = h.trailing_zeros() as usize;
        let log_n = log_h + added_bits;
        let n = 1usize << log_n;
        let shape = planner::LdeShape {
            log_h,
            added_bits,
            width: w,
        };
        planner::whole(
            &self.limits(),
            "a resident extension of column groups",
            shape.words_needed(w),
            n * w,
        )
        .map_err(|e| self.unplanned(e))?;
        let _guard = self.call.lock().expect("call lock");
        let inv = self.twiddles::<F>(log_h, true)?;
        let fwd = self.twiddles::<F>(log_n, false)?;
        let shift_words: Vec<u32> = shifts.iter().map(|&s| word(s)).collect();
        let shifts_buf = self.upload(&shift_words, Payload::Table)?;
        let src = m.values;
        self.dif::<F>(&src, w, log_h, log_h, &inv, log_h)?;
        let dst = self.alloc(n * w)?;
        let inv_h = word(F::from_usize(h).inverse());
        // `dst` holds n * w words, `src` h * w, `shifts_buf` one word per group of
        // `group` columns, `fwd` n / 2 (at least 1).
        let k = self
            .kernel("lde_expand_groups", F::ID)
            .global_work_size(global_size((n * w) as u64, self.compute_units))
            .arg(&dst)
            .arg(&src)
            .arg(w as u64)
            .arg(log_h as u32)
            .arg(added_bits as u32)
            .arg(group as u64)
            .arg(&shifts_buf)
            .arg(inv_h)
            .arg(&*fwd)
            .arg(word(F::ONE))
            .build();
        self.launch("lde_expand_groups", k)?;
        drop(src);
        self.dif::<F>(&dst, w, log_n, log_h, &fwd, log_n)?;
        Ok(resident::DeviceMatrix::new(dst, n, w))
    }

    pub(crate) fn column_sums_on_device<F: ResidentField>(
        &self,
        m: &OpenclMatrix<F>,
        log_rows: usize,
        shift: F,
        z: Ext<F>,
    ) -> Result<Vec<Ext<F>>, BackendError> {
        resident::check_off_coset(m.height(), log_rows, shift, z)?;
        let rows = 1usize << log_rows;
        let w = m.width;
        let slices = SLICES.min(rows);
        let scratch = EXT_DEGREE * (rows + slices * w + w);
        planner::whole(
            &self.limits(),
            "the interpolation's weights and sums",
            scratch,
            EXT_DEGREE * rows.max(slices * w),
        )
        .map_err(|e| self.unplanned(e))?;
        let _guard = self.call.lock().expect("call lock");
        let weights = self.alloc(EXT_DEGREE * rows)?;
        let partial = self.alloc(EXT_DEGREE * slices * w)?;
        let out = self.alloc(EXT_DEGREE * w)?;
        let zw = resident::ext_to_base(&[z]);
        let zw = F::as_monty_words(&zw);
        // `weights` holds 4 words per row of the 2^log_rows.
        let k = self
            .kernel("interp_weights", F::ID)
            .global_work_size(global_size(rows as u64, self.compute_units))
            .arg(&weights)
            .arg(log_rows as u32)
            .arg(word(shift))
            .arg(word(F::two_adic_generator(log_rows)))
            .arg(zw[0])
            .arg(zw[1])
            .arg(zw[2])
            .arg(zw[3])
            .arg(word(F::W))
            .arg(word(F::ONE))
            .build();
        self.launch("interp_weights", k)?;
        // `m` holds at least `rows` rows of `w` words (checked by the plan),
        // `partial` 4 words per (slice, column).
        let k = self
            .kernel("interp_partials", F::ID)
            .global_work_size(global_size((slices * w) as u64, self.compute_units))
            .arg(&m.values)
            .arg(w as u64)
            .arg(rows as u64)
            .arg(&weights)
            .arg(slices as u64)
            .arg(&partial)
            .build();
        self.launch("interp_partials", k)?;
        // `out` holds 4 words per column.
        let k = self
            .kernel("interp_finish", F::ID)
            .global_work_size(global_size(w as u64, self.compute_units))
            .arg(&partial)
            .arg(w as u64)
            .arg(slices as u64)
            .arg(&out)
            .build();
        self.launch("interp_finish", k)?;
        let mut back = vec![0u32; EXT_DEGREE * w];
        self.read(&out, 0, &mut back)?;
        let coeffs = self.to_elems::<F>("interpolate", back)?;
        Ok(resident::ext_from_base(&coeffs))
    }
}

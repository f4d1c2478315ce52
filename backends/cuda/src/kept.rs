//! The quotient kept on the device (`firmware/common/kept.h`):
//!
//! - [`CudaBackend::lde_groups_on_device`] extends a resident matrix whose column
//!   groups each have their own coset shift: `dif_stages` (inverse) in place in the
//!   input's allocation, `lde_expand_groups` (each group's scale `shift^m / h`
//!   computed on the device from one table word per group), `dif_stages` (forward).
//!   Only the shifts go up (a table); nothing comes back.
//! - [`CudaBackend::column_sums_on_device`] computes the interpolation's weighted
//!   column sums: `interp_weights` (one extension element per row, in a scratch
//!   allocation), `interp_partials` (per slice of rows and column), `interp_finish`
//!   (per column); one copy brings back 4 words per column. The point goes as kernel
//!   arguments: no table.

use cudarc::driver::PushKernelArg;
use proofbox_backend_api::resident::{
    self, DeviceMatrix, EXT_DEGREE, Ext, ResidentField, ResidentMatrix,
};
use proofbox_backend_api::{BackendError, BackendField, planner};

use crate::resident::CudaMatrix;
use crate::{CudaBackend, stride_config};

/// Row slices of the partial sums: enough threads for a device, few partials.
const SLICES: usize = 256;

fn word<F: BackendField>(x: F) -> u32 {
    F::as_monty_words(&[x])[0]
}

impl CudaBackend {
    pub(crate) fn lde_groups_on_device<F: ResidentField>(
        &self,
        m: CudaMatrix<F>,
        added_bits: usize,
        shifts: &[F],
    ) -> Result<CudaMatrix<F>, BackendError> {
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
        self.check_fits(
            "a resident extension of column groups",
            shape.words_needed(w),
            n * w,
        )?;
        let k = self.kernels(F::ID)?;
        let _guard = self.call.lock().expect("call lock");
        let inv = self.twiddles::<F>(log_h, true)?;
        let fwd = self.twiddles::<F>(log_n, false)?;
        let shift_words: Vec<u32> = shifts.iter().map(|&s| word(s)).collect();
        let mut table = self.alloc(shift_words.len())?;
        self.stream
            .memcpy_htod(&shift_words, &mut table)
            .map_err(|e| self.kernel_error("group shifts upload", e))?;
        self.transfers.table_to_device(shift_words.len() as u64 * 4);
        let mut src = m.values;
        self.dif(k, &mut src, w, log_h, log_h, &inv, log_h)?;
        let mut dst = self.alloc(n * w)?;
        {
            let (w64, log_h32, added32, group64) =
                (w as u64, log_h as u32, added_bits as u32, group as u64);
            let (inv_h, one) = (word(F::from_usize(h).inverse()), word(F::ONE));
            let mut launch = self.stream.launch_builder(&k.lde_expand_groups);
            launch
                .arg(&mut dst)
                .arg(&src)
                .arg(&w64)
                .arg(&log_h32)
                .arg(&added32)
                .arg(&group64)
                .arg(&table)
                .arg(&inv_h)
                .arg(&*fwd)
                .arg(&one);
            // SAFETY: signature matches; `dst` holds n * w words, `src` h * w, `table`
            // one word per group of `group` columns (w = groups * group), `fwd` n / 2
            // (at least 1), which bounds every index formed.
            unsafe {
                self.launch(
                    &mut launch,
                    stride_config((n * w) as u64, self.sm_count),
                    "lde_expand_groups",
                )
            }?;
        }
        drop(src);
        self.dif(k, &mut dst, w, log_n, log_h, &fwd, log_n)?;
        self.check("lde_resident_groups")?;
        Ok(DeviceMatrix::new(dst, n, w))
    }

    pub(crate) fn column_sums_on_device<F: ResidentField>(
        &self,
        m: &CudaMatrix<F>,
        log_rows: usize,
        shift: F,
        z: Ext<F>,
    ) -> Result<Vec<Ext<F>>, BackendError> {
        resident::check_off_coset(m.height(), log_rows, shift, z)?;
        let rows = 1usize << log_rows;
        let w = m.width;
        let slices = SLICES.min(rows);
        self.check_fits(
            "the interpolation's weights and sums",
            EXT_DEGREE * (rows + slices * w + w),
            EXT_DEGREE * rows.max(slices * w),
        )?;
        let k = self.kernels(F::ID)?;
        let _guard = self.call.lock().expect("call lock");
        let mut weights = self.alloc(EXT_DEGREE * rows)?;
        let mut partial = self.alloc(EXT_DEGREE * slices * w)?;
        let mut out = self.alloc(EXT_DEGREE * w)?;
        let zw = resident::ext_to_base(&[z]);
        let zw = F::as_monty_words(&zw);
        let (log_rows32, shift_w, generator, ext_w, one) = (
            log_rows as u32,
            word(shift),
            word(F::two_adic_generator(log_rows)),
            word(F::W),
            word(F::ONE),
        );
        let mut launch = self.stream.launch_builder(&k.interp_weights);
        launch
            .arg(&mut weights)
            .arg(&log_rows32)
            .arg(&shift_w)
            .arg(&generator)
            .arg(&zw[0])
            .arg(&zw[1])
            .arg(&zw[2])
            .arg(&zw[3])
            .arg(&ext_w)
            .arg(&one);
        // SAFETY: signature matches; `weights` holds 4 words per row of the 2^log_rows.
        unsafe {
            self.launch(
                &mut launch,
                stride_config(rows as u64, self.sm_count),
                "interp_weights",
            )
        }?;
        let (w64, rows64, slices64) = (w as u64, rows as u64, slices as u64);
        let mut launch = self.stream.launch_builder(&k.interp_partials);
        launch
            .arg(&m.values)
            .arg(&w64)
            .arg(&rows64)
            .arg(&weights)
            .arg(&slices64)
            .arg(&mut partial);
        // SAFETY: signature matches; `m.values` holds at least `rows` rows of `w`
        // words (checked by the plan), `weights` 4 words per row, `partial` 4 words per
        // (slice, column).
        unsafe {
            self.launch(
                &mut launch,
                stride_config((slices * w) as u64, self.sm_count),
                "interp_partials",
            )
        }?;
        let mut launch = self.stream.launch_builder(&k.interp_finish);
        launch.arg(&partial).arg(&w64).arg(&slices64).arg(&mut out);
        // SAFETY: signature matches; `partial` holds 4 words per (slice, column), `out`
        // 4 words per column.
        unsafe {
            self.launch(
                &mut launch,
                stride_config(w as u64, self.sm_count),
                "interp_finish",
            )
        }?;
        let back = self.read_words("interpolate", &out, 0, EXT_DEGREE * w)?;
        self.check("interpolate")?;
        let coeffs = self.to_elems::<F>("interpolate", back)?;
        Ok(resident::ext_from_base(&coeffs))
    }
}

//! Conformance of the calls that keep the quotient on the device: the quotient left
//! resident ([`ResidentBackend::eval_quotient_resident`]), an extension with one coset
//! shift per column group ([`ResidentBackend::lde_resident_groups`]) and the
//! evaluation of a resident extension's columns at a point
//! ([`ResidentBackend::interpolate_resident`]).
//!
//! - Values: every backend's against the CPU backend's, value for value; the CPU
//!   backend's against host references that share none of its code: Plonky3's
//!   `coset_lde_batch` (Bowers DFT) per group, Plonky3's `interpolate_coset`, and the
//!   values of [`ResidentBackend::eval_quotient`].
//! - Transfers ([`check_kept_quotient_transfers`]): the quotient and the grouped
//!   extension send no data and bring nothing back; an interpolation sends no data
//!   and brings back one extension element (16 bytes) per column.

use p3_dft::{Radix2Bowers, TwoAdicSubgroupDft};
use p3_field::{BasedVectorSpace, PrimeCharacteristicRing};
use p3_matrix::Matrix;
use p3_matrix::bitrev::BitReversibleMatrix;
use p3_matrix::dense::RowMajorMatrix;
use p3_matrix::interpolation::Interpolate;
use p3_matrix::util::reverse_matrix_index_bits;
use proofbox_backend_api::resident::{
    Ext, ResidentBackend, ResidentField, ResidentMatrix, ext_to_base,
};
use proofbox_backend_api::{BackendError, TransferStats};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::quotient::{QUOTIENT_LOG_BLOWUP, QuotientCase};
use crate::resident::{during, failed, random_ext};
use crate::{CpuBackend, Mismatch, first_difference, random_matrix};

/// Grouped extensions: `(log2 height, groups, group width, added bits)`.
pub const GROUP_CASES: &[(usize, usize, usize, usize)] = &[
    (0, 1, 4, 1),
    (3, 2, 4, 2),
    (5, 4, 4, 1),
    (6, 3, 5, 2),
    (9, 2, 4, 1),
];

/// Every row of a resident matrix, concatenated.
fn all_rows<B: ResidentBackend, F: ResidentField>(
    backend: &B,
    m: &B::Matrix<F>,
    what: &str,
) -> Result<Vec<F>, Mismatch> {
    let rows = backend
        .read_rows(m, &(0..m.height()).collect::<Vec<_>>())
        .map_err(failed(what))?;
    Ok(rows.concat())
}

/// Plonky3's extension of each group with its shift (rows bit-reversed), side by side.
pub fn reference_group_lde<F: ResidentField>(
    input: &RowMajorMatrix<F>,
    added_bits: usize,
    shifts: &[F],
) -> RowMajorMatrix<F> {
    let group = input.width / shifts.len();
    let parts: Vec<RowMajorMatrix<F>> = shifts
        .iter()
        .enumerate()
        .map(|(j, &shift)| {
            let cols: Vec<F> = input
                .row_slices()
                .flat_map(|r| r[j * group..(j + 1) * group].to_vec())
                .collect();
            Radix2Bowers
                .coset_lde_batch(RowMajorMatrix::new(cols, group), added_bits, shift)
                .bit_reverse_rows()
                .to_row_major_matrix()
        })
        .collect();
    let height = input.height() << added_bits;
    let mut values = Vec::with_capacity(height * input.width);
    for r in 0..height {
        for p in &parts {
            values.extend_from_slice(&p.values[r * group..(r + 1) * group]);
        }
    }
    RowMajorMatrix::new(values, input.width)
}

/// The shifts of the quotient's chunks as the prover extends them: `g / s_i`, `s_i`
/// the `i`-th of `d` chunk cosets of the quotient domain `g * K` (p3's
/// `split_domains`: `s_i = g * w^i`, `w` of order `n d`).
pub fn chunk_shifts<F: ResidentField>(log_height: usize, log_chunks: usize) -> Vec<F> {
    let w = F::two_adic_generator(log_height + log_chunks);
    w.powers()
        .take(1 << log_chunks)
        .map(|wi| F::GENERATOR / (F::GENERATOR * wi))
        .collect()
}

/// Checks one grouped extension on `backend` against the CPU backend's, and the CPU
/// backend's against [`reference_group_lde`]; and that a width the shifts do not
/// divide is refused.
pub fn check_group_lde<B: ResidentBackend, F: ResidentField>(
    backend: &B,
    log_height: usize,
    groups: usize,
    group_width: usize,
    added_bits: usize,
) -> Result<(), Mismatch> {
    let what = format!(
        "{} lde_resident_groups 2^{log_height} x {groups} groups of {group_width} +{added_bits} bits",
        F::ID
    );
    let input = random_matrix::<F>(
        700 + log_height as u64 * 13 + groups as u64,
        1 << log_height,
        groups * group_width,
    );
    // Shifts of both kinds: the quotient's chunk shifts, then arbitrary ones.
    let mut shifts = chunk_shifts::<F>(log_height, groups.trailing_zeros() as usize);
    shifts.truncate(groups);
    while shifts.len() < groups {
        shifts.push(F::from_u32(3 + 5 * shifts.len() as u32));
    }
    let want = reference_group_lde(&input, added_bits, &shifts);
    let cpu = CpuBackend::new();
    let cpu_in = cpu
        .upload_matrix(input.clone())
        .map_err(|e| Mismatch(format!("reference failed: {e}")))?;
    let cpu_out = cpu
        .lde_resident_groups(cpu_in, added_bits, &shifts)
        .map_err(|e| Mismatch(format!("reference failed: {e}")))?;
    first_difference(
        &format!("{what}: CPU backend vs Plonky3"),
        &cpu_out.values().values,
        &want.values,
    )?;
    let dev_in = backend
        .upload_matrix(input.clone())
        .map_err(failed(&what))?;
    let out = backend
        .lde_resident_groups(dev_in, added_bits, &shifts)
        .map_err(failed(&what))?;
    if (out.height(), out.width(), out.has_tree()) != (want.height(), want.width, false) {
        return Err(Mismatch(format!(
            "{what}: handle says {} x {} (tree {}), expected {} x {} without a tree",
            out.height(),
            out.width(),
            out.has_tree(),
            want.height(),
            want.width
        )));
    }
    first_difference(&what, &all_rows(backend, &out, &what)?, &want.values)?;
    let odd = backend
        .upload_matrix(RowMajorMatrix::new(vec![F::ONE; 6], 3))
        .map_err(failed(&what))?;
    match backend.lde_resident_groups(odd, added_bits, &[F::ONE, F::TWO]) {
        Err(BackendError::InvalidInput(_)) => Ok(()),
        other => Err(Mismatch(format!(
            "{what}: 3 columns in 2 groups gave {:?}, expected InvalidInput",
            other.map(|m| (m.height(), m.width()))
        ))),
    }
}

/// Checks [`ResidentBackend::interpolate_resident`] on `backend` against the CPU
/// backend's and both against Plonky3's `interpolate_coset`, over an extension's
/// first rows (the coset `g H`) and over a matrix given as it is on another coset:
/// at random points, at zero, and at a point of the coset (whose row is the answer).
pub fn check_interpolation<B: ResidentBackend, F: ResidentField>(
    backend: &B,
) -> Result<(), Mismatch> {
    let cpu = CpuBackend::new();
    let mut rng = StdRng::seed_from_u64(31);
    for &(log_rows, width, added_bits) in &[(0usize, 3usize, 1usize), (3, 8, 2), (6, 5, 1)] {
        for extended in [true, false] {
            let what = format!(
                "{} interpolate_resident 2^{log_rows} x {width} ({})",
                F::ID,
                if extended { "extension" } else { "uploaded" }
            );
            let input = random_matrix::<F>(800 + log_rows as u64, 1 << log_rows, width);
            let (shift, cpu_m, dev_m) = if extended {
                (
                    F::GENERATOR,
                    cpu.lde_resident(input.clone(), added_bits, F::GENERATOR),
                    backend.lde_resident(input.clone(), added_bits, F::GENERATOR),
                )
            } else {
                (
                    F::from_u32(7),
                    cpu.upload_matrix(input.clone()),
                    backend.upload_matrix(input.clone()),
                )
            };
            let cpu_m = cpu_m.map_err(|e| Mismatch(format!("reference failed: {e}")))?;
            let dev_m = dev_m.map_err(failed(&what))?;
            // The first rows in natural order, on `shift * H`.
            let mut low =
                RowMajorMatrix::new(cpu_m.values().values[..width << log_rows].to_vec(), width);
            reverse_matrix_index_bits(&mut low);
            let on_coset = Ext::<F>::from(shift * F::two_adic_generator(log_rows).exp_u64(1));
            for z in [random_ext::<F>(&mut rng), Ext::<F>::ZERO, on_coset] {
                let want = low.interpolate_coset(shift, z);
                if extended && z != on_coset {
                    // The same polynomials as the input's on the subgroup.
                    let direct = input.interpolate_coset(F::ONE, z);
                    first_difference(&format!("{what}: Plonky3 on H vs g H"), &direct, &want)?;
                }
                let got_cpu = cpu
                    .interpolate_resident(&cpu_m, log_rows, shift, z)
                    .map_err(|e| Mismatch(format!("reference failed: {e}")))?;
                first_difference(&format!("{what}: CPU backend at {z:?}"), &got_cpu, &want)?;
                let got = backend
                    .interpolate_resident(&dev_m, log_rows, shift, z)
                    .map_err(failed(&what))?;
                first_difference(&format!("{what} at {z:?}"), &got, &want)?;
            }
            if !matches!(
                backend.weighted_column_sums(&dev_m, log_rows, shift, on_coset),
                Err(BackendError::InvalidInput(_))
            ) {
                return Err(Mismatch(format!(
                    "{what}: column sums at a point of the coset were not refused as invalid"
                )));
            }
            if backend
                .interpolate_resident(
                    &dev_m,
                    dev_m.height().trailing_zeros() as usize + 1,
                    shift,
                    on_coset,
                )
                .is_ok()
            {
                return Err(Mismatch(format!(
                    "{what}: an interpolation over more rows than the matrix has was accepted"
                )));
            }
        }
    }
    Ok(())
}

/// The resident quotient of every case on `backend` against the CPU backend's
/// [`ResidentBackend::eval_quotient`] values (the chunks side by side, value for
/// value), its grouped extension with the chunk shifts against the CPU backend's,
/// and the chunks' values at a random point against the CPU backend's.
pub fn check_kept_quotients<B: ResidentBackend, F: ResidentField>(
    backend: &B,
    cases: &[QuotientCase<F>],
) -> Result<(), Mismatch> {
    let cpu = CpuBackend::new();
    let alpha = Ext::<F>::from_basis_coefficients_fn(|i| F::from_u32(29 + 300 * i as u32));
    let z = Ext::<F>::from_basis_coefficients_fn(|i| F::from_u32(1234 + 71 * i as u32));
    for c in cases {
        let what = format!(
            "eval_quotient_resident of {} over {}",
            c.program.name,
            F::ID
        );
        let fail_ref = |e| Mismatch(format!("{what}: reference failed: {e}"));
        let cpu_lde = cpu
            .lde_resident(c.trace.clone(), QUOTIENT_LOG_BLOWUP, F::GENERATOR)
            .map_err(fail_ref)?;
        let values = cpu
            .eval_quotient(&c.program, &cpu_lde, c.shape, alpha, &c.public_values)
            .map_err(fail_ref)?;
        let cpu_q = cpu
            .eval_quotient_resident(&c.program, &cpu_lde, c.shape, alpha, &c.public_values)
            .map_err(fail_ref)?;
        let want = ext_to_base(&values);
        first_difference(
            &format!("{what}: CPU backend vs eval_quotient"),
            &cpu_q.values().values,
            &want,
        )?;
        let lde = backend
            .lde_resident(c.trace.clone(), QUOTIENT_LOG_BLOWUP, F::GENERATOR)
            .map_err(failed(&what))?;
        let q = backend
            .eval_quotient_resident(&c.program, &lde, c.shape, alpha, &c.public_values)
            .map_err(failed(&what))?;
        let (n, d) = (
            1usize << c.shape.log_trace_height,
            1usize << c.shape.log_quotient_degree,
        );
        if (q.height(), q.width()) != (n, 4 * d) {
            return Err(Mismatch(format!(
                "{what}: {} x {}, expected {n} x {}",
                q.height(),
                q.width(),
                4 * d
            )));
        }
        first_difference(&what, &all_rows(backend, &q, &what)?, &want)?;
        let shifts = chunk_shifts::<F>(c.shape.log_trace_height, c.shape.log_quotient_degree);
        let cpu_ext = cpu
            .lde_resident_groups(cpu_q, QUOTIENT_LOG_BLOWUP, &shifts)
            .map_err(fail_ref)?;
        let ext = backend
            .lde_resident_groups(q, QUOTIENT_LOG_BLOWUP, &shifts)
            .map_err(failed(&what))?;
        first_difference(
            &format!("{what}: chunks extended"),
            &all_rows(backend, &ext, &what)?,
            &cpu_ext.values().values,
        )?;
        let log_rows = c.shape.log_trace_height;
        let want_at = cpu
            .interpolate_resident(&cpu_ext, log_rows, F::GENERATOR, z)
            .map_err(fail_ref)?;
        let got_at = backend
            .interpolate_resident(&ext, log_rows, F::GENERATOR, z)
            .map_err(failed(&what))?;
        first_difference(&format!("{what}: chunks at z"), &got_at, &want_at)?;
    }
    Ok(())
}

fn expect_moved(
    what: &str,
    s: &TransferStats,
    to_device: u64,
    to_host: u64,
    counted: bool,
) -> Result<(), Mismatch> {
    let (to_device, to_host) = if counted {
        (to_device, to_host)
    } else {
        (0, 0)
    };
    if s.data_to_device_bytes() != to_device || s.device_to_host_bytes != to_host {
        return Err(Mismatch(format!(
            "kept-quotient transfers, {what}: {} bytes of data to the device and {} back, expected {to_device} and {to_host} ({s:?})",
            s.data_to_device_bytes(),
            s.device_to_host_bytes
        )));
    }
    if counted && s.kernel_launches == 0 {
        return Err(Mismatch(format!(
            "kept-quotient transfers, {what}: no kernel launched ({s:?})"
        )));
    }
    if to_host > 0 && s.sync_waits == 0 {
        return Err(Mismatch(format!(
            "kept-quotient transfers, {what}: results reached the host without a wait ({s:?})"
        )));
    }
    Ok(())
}

/// Checks what the kept-quotient calls move (after a warm-up run of each, so that
/// kernels and cached tables are in place): [`ResidentBackend::eval_quotient_resident`]
/// and [`ResidentBackend::lde_resident_groups`] send no data and bring nothing back;
/// [`ResidentBackend::interpolate_resident`] sends no data and brings back 16 bytes
/// per column. A backend without counters stays at zero.
pub fn check_kept_quotient_transfers<B: ResidentBackend, F: ResidentField>(
    backend: &B,
    case: &QuotientCase<F>,
) -> Result<(), Mismatch> {
    let counted = backend.transfer_counters().is_some();
    let alpha = Ext::<F>::from_basis_coefficients_fn(|i| F::from_u32(3 + i as u32));
    let z = Ext::<F>::from_basis_coefficients_fn(|i| F::from_u32(99 + i as u32));
    let shifts = chunk_shifts::<F>(case.shape.log_trace_height, case.shape.log_quotient_degree);
    let lde = backend
        .lde_resident(case.trace.clone(), QUOTIENT_LOG_BLOWUP, F::GENERATOR)
        .map_err(failed("kept-quotient transfers: trace LDE"))?;
    let run = |measure: bool| -> Result<(), Mismatch> {
        let (q, s) = during(backend, "eval_quotient_resident", || {
            backend.eval_quotient_resident(
                &case.program,
                &lde,
                case.shape,
                alpha,
                &case.public_values,
            )
        })?;
        if measure {
            expect_moved("eval_quotient_resident", &s, 0, 0, counted)?;
        }
        let width = q.width();
        let (ext, s) = during(backend, "lde_resident_groups", || {
            backend.lde_resident_groups(q, QUOTIENT_LOG_BLOWUP, &shifts)
        })?;
        if measure {
            expect_moved("lde_resident_groups", &s, 0, 0, counted)?;
        }
        let (_, s) = during(backend, "interpolate_resident", || {
            backend.interpolate_resident(&ext, case.shape.log_trace_height, F::GENERATOR, z)
        })?;
        if measure {
            expect_moved("interpolate_resident", &s, 0, 16 * width as u64, counted)?;
        }
        Ok(())
    };
    run(false)?;
    run(true)
}

/// Runs every kept-quotient check for one field over `cases` (the first case's
/// transfers measured), panicking with the first mismatch.
pub fn run_kept_quotient_suite<B: ResidentBackend, F: ResidentField>(
    backend: &B,
    cases: &[QuotientCase<F>],
) {
    let fail =
        |m: Mismatch| -> ! { panic!("{} backend ({}): {}", B::KIND, backend.device().id, m.0) };
    for &(log_h, groups, width, added) in GROUP_CASES {
        check_group_lde::<B, F>(backend, log_h, groups, width, added).unwrap_or_else(|m| fail(m));
    }
    check_interpolation::<B, F>(backend).unwrap_or_else(|m| fail(m));
    check_kept_quotients(backend, cases).unwrap_or_else(|m| fail(m));
    check_kept_quotient_transfers(backend, &cases[0]).unwrap_or_else(|m| fail(m));
}

/// Declares the kept-quotient conformance tests for a backend that keeps the quotient
/// on the device: `$name` is the module the tests go in, `$open` an expression giving
/// `Result<impl ResidentBackend, BackendError>`.
#[macro_export]
macro_rules! kept_quotient_conformance_tests {
    ($name:ident, $open:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn kept_quotient_koalabear() {
                if let Some(b) = $crate::open_or_skip($open) {
                    let mut cases = $crate::quotient::benchmark_cases::<$crate::KoalaBear>();
                    cases.extend($crate::quotient::transition_cases());
                    $crate::kept_quotient::run_kept_quotient_suite(&b, &cases);
                }
            }

            #[test]
            fn kept_quotient_babybear() {
                if let Some(b) = $crate::open_or_skip($open) {
                    let cases = $crate::quotient::benchmark_cases::<$crate::BabyBear>();
                    $crate::kept_quotient::run_kept_quotient_suite(&b, &cases);
                }
            }
        }
    };
}

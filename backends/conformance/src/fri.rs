//! Conformance of FRI's resident calls: [`ResidentBackend::fri_fold`],
//! [`ResidentBackend::reshape`] and [`ResidentBackend::reduce_openings_resident`].
//!
//! - The CPU backend's fold equals Plonky3's own (`TwoAdicFriFolding::fold_matrix`,
//!   arity 2, p3-fri 0.8) and [`resident::fold_reference`]; every backend's fold
//!   equals the CPU backend's, with and without a roll-in, at heights from 1 row up
//!   (the packed and unpacked paths of Plonky3's fold both covered).
//! - A chain as FRI's commit phase runs it (reduced openings kept resident, read as
//!   pairs, committed, folded with the next height rolled in) gives the CPU
//!   backend's roots and final codeword.
//! - [`ResidentBackend::read_openings`] (every row and digest a query phase needs,
//!   from several matrices) gives the CPU backend's rows and digests, in one copy.
//! - Malformed calls are refused with [`BackendError::InvalidInput`].
//! - Transfers: a fold, a reshape and a resident reduction send no data and bring
//!   nothing back.

use std::marker::PhantomData;

use p3_field::{BasedVectorSpace, PrimeCharacteristicRing};
use p3_fri::{FriFoldingStrategy, TwoAdicFriFolding};
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::resident::{
    self, EXT_DEGREE, Ext, OpeningClaim, OpeningPoint, ResidentBackend, ResidentField,
    ResidentMatrix,
};
use proofbox_backend_api::{BackendError, Digest, TransferStats};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::resident::{during, failed, random_ext};
use crate::{CpuBackend, Mismatch, first_difference, random_matrix};

/// Log2 heights (pairs) of the folds checked.
pub const FOLD_LOG_HEIGHTS: &[usize] = &[0, 1, 3, 6, 10];

fn reference_failed(e: BackendError) -> Mismatch {
    Mismatch(format!("reference failed: {e}"))
}

/// A random codeword of `h` pairs as a matrix of `2 * EXT_DEGREE` words a row.
fn random_pairs<F: ResidentField>(seed: u64, h: usize) -> RowMajorMatrix<F> {
    random_matrix::<F>(seed, h, 2 * EXT_DEGREE)
}

/// Plonky3's own arity-2 fold of `pairs`.
fn plonky3_fold<F: ResidentField>(pairs: &RowMajorMatrix<F>, beta: Ext<F>) -> Vec<Ext<F>> {
    let ext = RowMajorMatrix::new(resident::ext_from_base(&pairs.values), 2);
    <TwoAdicFriFolding<(), ()> as FriFoldingStrategy<F, Ext<F>>>::fold_matrix(
        &TwoAdicFriFolding(PhantomData),
        beta,
        1,
        ext,
    )
}

fn as_pairs<F: ResidentField>(pairs: &RowMajorMatrix<F>) -> Vec<[Ext<F>; 2]> {
    resident::ext_from_base(&pairs.values)
        .chunks_exact(2)
        .map(|p| [p[0], p[1]])
        .collect()
}

fn expect_invalid<T>(what: &str, got: Result<T, BackendError>) -> Result<(), Mismatch> {
    match got {
        Err(BackendError::InvalidInput(_)) => Ok(()),
        Err(e) => Err(Mismatch(format!("{what} gave {e}, expected InvalidInput"))),
        Ok(_) => Err(Mismatch(format!(
            "{what} was accepted, expected InvalidInput"
        ))),
    }
}

/// The folds of `backend` against the CPU backend's, and the CPU backend's against
/// Plonky3's and [`resident::fold_reference`].
pub fn check_folds<B: ResidentBackend, F: ResidentField>(backend: &B) -> Result<(), Mismatch> {
    let cpu = CpuBackend::new();
    let mut rng = StdRng::seed_from_u64(31);
    for &log_h in FOLD_LOG_HEIGHTS {
        let h = 1usize << log_h;
        let pairs = random_pairs::<F>(100 + log_h as u64, h);
        let roll = random_matrix::<F>(200 + log_h as u64, h, EXT_DEGREE);
        let (beta, c) = (random_ext::<F>(&mut rng), random_ext::<F>(&mut rng));
        let what = format!("{} fri_fold of 2^{log_h} pairs", F::ID);

        let cpu_pairs = cpu.upload_matrix(pairs.clone()).map_err(reference_failed)?;
        let cpu_roll = cpu.upload_matrix(roll.clone()).map_err(reference_failed)?;
        let plain = cpu
            .fri_fold(&cpu_pairs, beta, None)
            .and_then(|m| cpu.read_ext(&m))
            .map_err(reference_failed)?;
        first_difference(
            &format!("{what}: CPU backend vs Plonky3's fold_matrix"),
            &plain,
            &plonky3_fold(&pairs, beta),
        )?;
        let rolled = cpu
            .fri_fold(&cpu_pairs, beta, Some((&cpu_roll, c)))
            .and_then(|m| cpu.read_ext(&m))
            .map_err(reference_failed)?;
        let roll_ext = resident::ext_from_base(&roll.values);
        first_difference(
            &format!("{what} with a roll-in: CPU backend vs its definition"),
            &rolled,
            &resident::fold_reference(&as_pairs(&pairs), beta, Some((&roll_ext, c))),
        )?;

        let dev_pairs = backend.upload_matrix(pairs).map_err(failed(&what))?;
        let dev_roll = backend.upload_matrix(roll).map_err(failed(&what))?;
        let got = backend
            .fri_fold(&dev_pairs, beta, None)
            .and_then(|m| backend.read_ext(&m))
            .map_err(failed(&what))?;
        first_difference(&what, &got, &plain)?;
        let got = backend
            .fri_fold(&dev_pairs, beta, Some((&dev_roll, c)))
            .and_then(|m| backend.read_ext(&m))
            .map_err(failed(&what))?;
        first_difference(&format!("{what} with a roll-in"), &got, &rolled)?;
    }
    // Malformed folds and reshapes are refused.
    let odd = backend
        .upload_matrix(random_matrix::<F>(5, 4, EXT_DEGREE))
        .map_err(failed("upload"))?;
    expect_invalid(
        "a fold of 4-word rows",
        backend.fri_fold(&odd, Ext::<F>::ONE, None),
    )?;
    let pairs = backend
        .upload_matrix(random_pairs::<F>(6, 4))
        .map_err(failed("upload"))?;
    expect_invalid(
        "a fold rolling in a height of 4 rows into 4 pairs of the wrong width",
        backend.fri_fold(&pairs, Ext::<F>::ONE, Some((&pairs, Ext::<F>::ONE))),
    )?;
    expect_invalid(
        "a reshape of 4 x 8 words into rows of 3",
        backend.reshape(pairs, 3),
    )?;
    Ok(())
}

/// FRI's commit phase on `backend` and on the CPU backend: two matrices of different
/// heights reduced at a random point into resident reduced openings, each round's
/// codeword read as pairs and committed, then folded with the next height rolled in
/// (`beta^2`), down to two elements. Roots and the final codeword must agree.
pub fn check_commit_phase<B: ResidentBackend, F: ResidentField>(
    backend: &B,
) -> Result<(), Mismatch> {
    let what = format!("{} resident FRI commit phase", F::ID);
    let cpu = CpuBackend::new();
    let mut rng = StdRng::seed_from_u64(77);
    let (big, small) = (
        random_matrix::<F>(300, 1 << 7, 3),
        random_matrix::<F>(301, 1 << 5, 2),
    );
    let z = random_ext::<F>(&mut rng);
    let alpha = random_ext::<F>(&mut rng);
    let points: Vec<Vec<OpeningPoint<F>>> = [3, 2]
        .iter()
        .map(|&w| vec![(z, (0..w).map(|_| random_ext::<F>(&mut rng)).collect())])
        .collect();
    let betas: Vec<Ext<F>> = (0..7).map(|_| random_ext::<F>(&mut rng)).collect();

    fn run<R: ResidentBackend, F: ResidentField>(
        b: &R,
        mats: [RowMajorMatrix<F>; 2],
        points: &[Vec<OpeningPoint<F>>],
        alpha: Ext<F>,
        betas: &[Ext<F>],
    ) -> Result<RootsAndFinal<F>, BackendError> {
        let [a, c] = mats;
        let (a, c) = (b.upload_matrix(a)?, b.upload_matrix(c)?);
        let claims = [
            OpeningClaim {
                matrix: &a,
                points: &points[0][..],
            },
            OpeningClaim {
                matrix: &c,
                points: &points[1][..],
            },
        ];
        let mut inputs = b
            .reduce_openings_resident(&claims, alpha, F::GENERATOR)?
            .into_iter()
            .peekable();
        let mut folded = inputs.next().expect("two heights").matrix;
        let mut roots = Vec::new();
        for &beta in betas {
            if folded.height() <= 2 {
                break;
            }
            let mut pairs = b.reshape(folded, 2 * EXT_DEGREE)?;
            roots.push(b.commit(&mut pairs)?);
            let h = pairs.height();
            let roll = inputs.next_if(|r| 1usize << r.log_height == h);
            folded = b.fri_fold(
                &pairs,
                beta,
                roll.as_ref().map(|r| (&r.matrix, beta.square())),
            )?;
        }
        Ok((roots, b.read_ext(&folded)?))
    }

    let want = run(&cpu, [big.clone(), small.clone()], &points, alpha, &betas)
        .map_err(reference_failed)?;
    let got = run(backend, [big, small], &points, alpha, &betas).map_err(failed(&what))?;
    first_difference(&format!("{what}: roots"), &got.0, &want.0)?;
    first_difference(&format!("{what}: final codeword"), &got.1, &want.1)?;
    if want.0.len() != 6 {
        return Err(Mismatch(format!(
            "{what}: {} rounds, expected 6 (2^7 elements down to 2)",
            want.0.len()
        )));
    }
    Ok(())
}

/// Each round's root and the final codeword of a commit phase.
type RootsAndFinal<F> = (Vec<Digest<F>>, Vec<Ext<F>>);

fn nothing_moved(what: &str, s: &TransferStats) -> Result<(), Mismatch> {
    if s.data_to_device_bytes() != 0 || s.device_to_host_bytes != 0 {
        return Err(Mismatch(format!(
            "resident transfers, {what}: {} bytes of data to the device and {} back, expected none ({s:?})",
            s.data_to_device_bytes(),
            s.device_to_host_bytes
        )));
    }
    Ok(())
}

/// A fold, a reshape and a resident reduction send no data (scalars are at most
/// tables) and bring nothing back.
pub fn check_fri_transfers<B: ResidentBackend, F: ResidentField>(
    backend: &B,
) -> Result<(), Mismatch> {
    let pairs = backend
        .upload_matrix(random_pairs::<F>(9, 1 << 6))
        .map_err(failed("upload"))?;
    let roll = backend
        .upload_matrix(random_matrix::<F>(10, 1 << 6, EXT_DEGREE))
        .map_err(failed("upload"))?;
    let beta = Ext::<F>::from_basis_coefficients_fn(|i| F::from_u32(i as u32 + 7));
    // Warm-up: kernels built on first use.
    backend
        .fri_fold(&pairs, beta, None)
        .map_err(failed("warm-up"))?;
    let (folded, s) = during(backend, "fri_fold", || {
        backend.fri_fold(&pairs, beta, Some((&roll, beta)))
    })?;
    nothing_moved("fri_fold", &s)?;
    if backend.transfer_counters().is_some() && s.kernel_launches == 0 {
        return Err(Mismatch(format!(
            "resident transfers, fri_fold: no kernel launched ({s:?})"
        )));
    }
    let (_, s) = during(backend, "reshape", || {
        backend.reshape(folded, 2 * EXT_DEGREE)
    })?;
    nothing_moved("reshape", &s)?;
    let z = Ext::<F>::from_basis_coefficients_fn(|i| F::from_u32(i as u32 + 3));
    let points = [(z, vec![z; 2 * EXT_DEGREE])];
    let claims = [OpeningClaim {
        matrix: &pairs,
        points: &points[..],
    }];
    let (_, s) = during(backend, "reduce_openings_resident", || {
        backend.reduce_openings_resident(&claims, z, F::GENERATOR)
    })?;
    nothing_moved("reduce_openings_resident", &s)
}

/// [`ResidentBackend::read_openings`] over three matrices (two committed, one not)
/// against the CPU backend's rows and digests, and, on a backend that counts, in one
/// copy back after at most three waits.
pub fn check_read_openings<B: ResidentBackend, F: ResidentField>(
    backend: &B,
) -> Result<(), Mismatch> {
    let what = format!("{} read_openings", F::ID);
    let cpu = CpuBackend::new();
    let shapes = [(6usize, 5usize, true), (3, 8, true), (4, 3, false)];
    let mut cpu_mats = Vec::new();
    let mut dev_mats = Vec::new();
    for (i, &(log_h, w, commit)) in shapes.iter().enumerate() {
        let m = random_matrix::<F>(400 + i as u64, 1 << log_h, w);
        let mut c = cpu.upload_matrix(m.clone()).map_err(reference_failed)?;
        let mut d = backend.upload_matrix(m).map_err(failed(&what))?;
        if commit {
            cpu.commit(&mut c).map_err(reference_failed)?;
            backend.commit(&mut d).map_err(failed(&what))?;
        }
        cpu_mats.push(c);
        dev_mats.push(d);
    }
    let rows: [&[usize]; 3] = [&[63, 0, 17, 17], &[5], &[2, 9]];
    let nodes: [&[(usize, usize)]; 3] = [&[(0, 62), (2, 3), (5, 0), (0, 1)], &[], &[]];
    let dev_reads: Vec<resident::OpeningRead<'_, _>> = (0..3)
        .map(|i| resident::OpeningRead {
            matrix: &dev_mats[i],
            rows: rows[i],
            nodes: nodes[i],
        })
        .collect();
    let before = backend.transfer_stats();
    let got = backend.read_openings(&dev_reads).map_err(failed(&what))?;
    let s = backend.transfer_stats().since(&before);
    let cpu_reads: Vec<resident::OpeningRead<'_, _>> = (0..3)
        .map(|i| resident::OpeningRead {
            matrix: &cpu_mats[i],
            rows: rows[i],
            nodes: nodes[i],
        })
        .collect();
    let want = cpu.read_openings(&cpu_reads).map_err(reference_failed)?;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        first_difference(&format!("{what}: matrix {i} rows"), &g.rows, &w.rows)?;
        first_difference(&format!("{what}: matrix {i} nodes"), &g.nodes, &w.nodes)?;
    }
    if got.len() != 3 || want[0].nodes.len() != 4 || want[2].rows.len() != 2 {
        return Err(Mismatch(format!(
            "{what}: {} reads back, expected 3",
            got.len()
        )));
    }
    if backend.transfer_counters().is_some() && (s.device_to_host_copies != 1 || s.sync_waits > 3) {
        return Err(Mismatch(format!(
            "{what}: {} copies back and {} waits, expected one copy and at most 3 waits ({s:?})",
            s.device_to_host_copies, s.sync_waits
        )));
    }
    // A node of a matrix without a tree, or a row beyond the height, is refused.
    let bad_node = [resident::OpeningRead {
        matrix: &dev_mats[2],
        rows: &[][..],
        nodes: &[(0, 0)][..],
    }];
    expect_invalid(
        "a node of a matrix without a tree",
        backend.read_openings(&bad_node),
    )?;
    let bad_row = [resident::OpeningRead {
        matrix: &dev_mats[1],
        rows: &[8][..],
        nodes: &[][..],
    }];
    expect_invalid("a row beyond the height", backend.read_openings(&bad_row))
}

/// Every FRI check for one field.
pub fn check_resident_fri<B: ResidentBackend, F: ResidentField>(
    backend: &B,
) -> Result<(), Mismatch> {
    check_folds::<B, F>(backend)?;
    check_commit_phase::<B, F>(backend)?;
    check_read_openings::<B, F>(backend)?;
    check_fri_transfers::<B, F>(backend)
}

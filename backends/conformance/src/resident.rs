//! Conformance of the device-resident calls ([`ResidentBackend`]): every value that
//! comes back equals the CPU backend's (the extension read back row by row, every tree
//! layer, single digests and Merkle paths, the opening reduction), the CPU backend's
//! reduction equals a direct evaluation of its definition, and a device backend moves
//! only what the resident path promises (the input once to the device; back, only
//! the digests, rows and reduced values asked for).

use p3_field::{BasedVectorSpace, Field, PrimeCharacteristicRing};
use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::resident::{
    Ext, OpeningClaim, OpeningPoint, ReducedOpening, ResidentBackend, ResidentField, ResidentMatrix,
};
use proofbox_backend_api::{Backend, BackendError, DIGEST_ELEMS, Digest, TransferStats};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::{CpuBackend, Mismatch, check_layers, first_difference, random_matrix};

/// Resident shapes: `(log2 height, width, added bits)` of the LDE.
pub const RESIDENT_CASES: &[(usize, usize, usize)] = &[(0, 1, 1), (3, 5, 1), (6, 17, 2), (9, 8, 1)];

/// Maps a backend's failure of `what` to a mismatch.
pub(crate) fn failed(what: &str) -> impl Fn(BackendError) -> Mismatch + '_ {
    move |e| Mismatch(format!("{what}: backend failed: {e}"))
}

/// A random extension element.
pub(crate) fn random_ext<F: ResidentField>(rng: &mut StdRng) -> Ext<F> {
    Ext::<F>::from_basis_coefficients_fn(|_| F::from_u32(rng.random_range(0..F::ORDER_U32)))
}

/// The reduced openings straight from their definition (Plonky3's `TwoAdicFriPcs::open`):
/// for each claim in order, each point in order, each column `i` in order, the next
/// power of `alpha` of that height times `(y_i - f_i(x)) / (z - x)`, with
/// `x = shift * g^bitrev(r)` computed by exponentiation for every row `r`.
pub fn reference_reduction<F: ResidentField>(
    claims: &[(&RowMajorMatrix<F>, &[OpeningPoint<F>])],
    alpha: Ext<F>,
    shift: F,
) -> Vec<ReducedOpening<F>> {
    let mut acc: std::collections::BTreeMap<usize, (Vec<Ext<F>>, u64)> = Default::default();
    for (mat, points) in claims {
        let h = mat.height();
        let k = h.trailing_zeros() as usize;
        let (values, next_power) = acc.entry(k).or_insert_with(|| (vec![Ext::<F>::ZERO; h], 0));
        let g = F::two_adic_generator(k);
        for (z, ys) in points.iter() {
            for (i, y) in ys.iter().enumerate() {
                let coef = alpha.exp_u64(*next_power);
                *next_power += 1;
                for (r, v) in values.iter_mut().enumerate() {
                    let rev = if k == 0 {
                        0
                    } else {
                        r.reverse_bits() >> (usize::BITS as usize - k)
                    };
                    let x = shift * g.exp_u64(rev as u64);
                    let f = mat.get(r, i).expect("in range");
                    *v += coef * (*y - f) * (*z - x).inverse();
                }
            }
        }
    }
    acc.into_iter()
        .rev()
        .map(|(log_height, (values, _))| ReducedOpening { log_height, values })
        .collect()
}

fn check_reduced<F: ResidentField>(
    what: &str,
    got: &[ReducedOpening<F>],
    want: &[ReducedOpening<F>],
) -> Result<(), Mismatch> {
    let heights = |r: &[ReducedOpening<F>]| r.iter().map(|o| o.log_height).collect::<Vec<_>>();
    if heights(got) != heights(want) {
        return Err(Mismatch(format!(
            "{what}: heights {:?}, expected {:?}",
            heights(got),
            heights(want)
        )));
    }
    for (g, w) in got.iter().zip(want) {
        first_difference(
            &format!("{what} height 2^{}", w.log_height),
            &g.values,
            &w.values,
        )?;
    }
    Ok(())
}

/// Checks the resident LDE, tree, reads and Merkle paths of `backend` against the CPU
/// backend's [`Backend::coset_lde_batch`] and [`Backend::merkle_tree`] at one shape,
/// and a matrix given as it is ([`ResidentBackend::upload_matrix`]).
pub fn check_resident_tree<B: ResidentBackend, F: ResidentField>(
    backend: &B,
    log_height: usize,
    width: usize,
    added_bits: usize,
) -> Result<(), Mismatch> {
    let reference = CpuBackend::new();
    let input = random_matrix::<F>(
        500 + log_height as u64 * 7 + width as u64,
        1 << log_height,
        width,
    );
    let shift = F::GENERATOR;
    let what = format!(
        "{} resident LDE+tree 2^{log_height} x {width} +{added_bits} bits",
        F::ID
    );
    let want = reference
        .coset_lde_batch(input.clone(), added_bits, shift)
        .map_err(|e| Mismatch(format!("reference failed: {e}")))?;
    let want_layers = reference
        .merkle_tree(&[&want])
        .map_err(|e| Mismatch(format!("reference failed: {e}")))?;
    let mut m = backend
        .lde_resident(input, added_bits, shift)
        .map_err(failed(&what))?;
    let n = want.height();
    if (m.height(), m.width(), m.has_tree()) != (n, width, false) {
        return Err(Mismatch(format!(
            "{what}: handle says {} x {} (tree: {}), expected {n} x {width} without a tree",
            m.height(),
            m.width(),
            m.has_tree()
        )));
    }
    let all: Vec<usize> = (0..n).collect();
    let rows = backend.read_rows(&m, &all).map_err(failed(&what))?;
    first_difference(
        &format!("{what}: rows read back"),
        &rows.concat(),
        &want.values,
    )?;
    if backend.read_layer(&m, 0).is_ok() {
        return Err(Mismatch(format!(
            "{what}: a layer was read before the tree was built"
        )));
    }
    let root = backend.commit(&mut m).map_err(failed(&what))?;
    first_difference(
        &format!("{what}: root"),
        &[root],
        &[want_layers.last().expect("a tree has a root")[0]],
    )?;
    let layers: Vec<Vec<Digest<F>>> = (0..want_layers.len())
        .map(|l| backend.read_layer(&m, l))
        .collect::<Result<_, _>>()
        .map_err(failed(&what))?;
    check_layers(&format!("{what}: read_layer"), &layers, &want_layers)?;
    // Single digests, out of order, and the path of the last leaf.
    for (l, want_layer) in want_layers.iter().enumerate() {
        let idx: Vec<usize> = (0..want_layer.len()).rev().step_by(3).collect();
        let got = backend.read_digests(&m, l, &idx).map_err(failed(&what))?;
        let expect: Vec<Digest<F>> = idx.iter().map(|&i| want_layer[i]).collect();
        first_difference(&format!("{what}: read_digests layer {l}"), &got, &expect)?;
    }
    // Nodes of every layer at once, out of order and repeated.
    let nodes: Vec<(usize, usize)> = (0..want_layers.len())
        .rev()
        .flat_map(|l| {
            let len = want_layers[l].len();
            [(l, len - 1), (l, 0), (l, len / 2)]
        })
        .chain([(0, n / 3)])
        .collect();
    let got = backend.read_nodes(&m, &nodes).map_err(failed(&what))?;
    let expect: Vec<Digest<F>> = nodes.iter().map(|&(l, i)| want_layers[l][i]).collect();
    first_difference(&format!("{what}: read_nodes"), &got, &expect)?;
    let leaf = n - 1;
    let path = backend.merkle_path(&m, leaf).map_err(failed(&what))?;
    let want_path: Vec<Digest<F>> = (0..want_layers.len() - 1)
        .map(|l| want_layers[l][(leaf >> l) ^ 1])
        .collect();
    first_difference(&format!("{what}: merkle_path"), &path, &want_path)?;
    for bad in [
        backend.read_rows(&m, &[n]).err(),
        backend.read_digests(&m, want_layers.len(), &[0]).err(),
        backend.read_digests(&m, 0, &[n]).err(),
        backend.read_nodes(&m, &[(0, 0), (1, n)]).err(),
        backend.read_nodes(&m, &[(want_layers.len(), 0)]).err(),
    ] {
        if !matches!(bad, Some(BackendError::InvalidInput(_))) {
            return Err(Mismatch(format!(
                "{what}: an out-of-range read gave {bad:?}, expected InvalidInput"
            )));
        }
    }
    backend.release(m);

    // A matrix given as it is commits to what merkle_tree gives.
    let mut up = backend.upload_matrix(want.clone()).map_err(failed(&what))?;
    backend.commit(&mut up).map_err(failed(&what))?;
    let got = backend.read_layer(&up, 0).map_err(failed(&what))?;
    first_difference(
        &format!("{what}: uploaded matrix, leaf layer"),
        &got,
        &want_layers[0],
    )
}

/// Shape of one claim in a reduction case: `(log2 height given, width, points)`.
type ClaimShape = (usize, usize, usize);

/// One reduction case: random matrices of `shapes` made resident on both backends
/// (extended by `added_bits` onto `shift * K`, or given as they are with `None`),
/// random points and openings, the reduction of `backend` against the CPU backend's
/// and both against [`reference_reduction`].
fn reduction_case<B: ResidentBackend, F: ResidentField>(
    backend: &B,
    seed: u64,
    shapes: &[ClaimShape],
    added_bits: Option<usize>,
    shift: F,
) -> Result<(), Mismatch> {
    let reference = CpuBackend::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let points: Vec<Vec<OpeningPoint<F>>> = shapes
        .iter()
        .map(|&(_, w, p)| {
            (0..p)
                .map(|_| {
                    let z = random_ext::<F>(&mut rng);
                    (z, (0..w).map(|_| random_ext::<F>(&mut rng)).collect())
                })
                .collect()
        })
        .collect();
    let alpha = random_ext::<F>(&mut rng);
    let what = format!(
        "{} opening reduction ({}, shapes {shapes:?})",
        F::ID,
        match added_bits {
            Some(b) => format!("LDEs +{b} bits"),
            None => "uploaded matrices".into(),
        }
    );
    let mut cpu_mats = Vec::new();
    let mut dev_mats = Vec::new();
    for (i, &(lh, w, _)) in shapes.iter().enumerate() {
        let m = random_matrix::<F>(seed + i as u64, 1 << lh, w);
        let (c, d) = match added_bits {
            Some(bits) => (
                reference.lde_resident(m.clone(), bits, shift),
                backend.lde_resident(m, bits, shift),
            ),
            None => (reference.upload_matrix(m.clone()), backend.upload_matrix(m)),
        };
        cpu_mats.push(c.map_err(|e| Mismatch(format!("reference failed: {e}")))?);
        dev_mats.push(d.map_err(failed(&what))?);
    }
    let naive_in: Vec<(&RowMajorMatrix<F>, &[OpeningPoint<F>])> = cpu_mats
        .iter()
        .zip(&points)
        .map(|(m, p)| (m.values(), p.as_slice()))
        .collect();
    let want = reference_reduction(&naive_in, alpha, shift);
    let cpu_claims: Vec<_> = cpu_mats
        .iter()
        .zip(&points)
        .map(|(matrix, p)| OpeningClaim {
            matrix,
            points: p.as_slice(),
        })
        .collect();
    let cpu = reference
        .reduce_openings(&cpu_claims, alpha, shift)
        .map_err(|e| Mismatch(format!("reference failed: {e}")))?;
    check_reduced(
        &format!("{what}: CPU backend vs its definition"),
        &cpu,
        &want,
    )?;
    let dev_claims: Vec<_> = dev_mats
        .iter()
        .zip(&points)
        .map(|(matrix, p)| OpeningClaim {
            matrix,
            points: p.as_slice(),
        })
        .collect();
    let got = backend
        .reduce_openings(&dev_claims, alpha, shift)
        .map_err(failed(&what))?;
    check_reduced(&what, &got, &want)?;
    // Openings that do not match the matrix's width are refused.
    let short = [(alpha, vec![alpha; shapes[0].1 + 1])];
    let bad = [OpeningClaim {
        matrix: &dev_mats[0],
        points: &short[..],
    }];
    match backend.reduce_openings(&bad, alpha, shift) {
        Err(BackendError::InvalidInput(_)) => Ok(()),
        other => Err(Mismatch(format!(
            "{what}: openings of the wrong width gave {other:?}, expected InvalidInput"
        ))),
    }
}

/// The opening reduction of `backend` against the CPU backend's and against
/// [`reference_reduction`]: LDEs of three heights onto the generator's coset (several
/// matrices per height, one to three points each, a height of 2 rows), and matrices
/// given as they are on another coset, with claims of no points (one the first of
/// its height, whose result is zero, one after others).
pub fn check_resident_reduction<B: ResidentBackend, F: ResidentField>(
    backend: &B,
) -> Result<(), Mismatch> {
    reduction_case(
        backend,
        900,
        &[(5, 3, 2), (3, 4, 1), (5, 7, 1), (3, 1, 3), (0, 2, 1)],
        Some(1),
        F::GENERATOR,
    )?;
    reduction_case(
        backend,
        950,
        &[(3, 2, 1), (2, 5, 2), (4, 3, 0), (3, 6, 0), (3, 1, 1)],
        None,
        F::GENERATOR.square(),
    )
}

/// Runs `call` and returns what the counters saw during it.
pub(crate) fn during<B: Backend, T>(
    backend: &B,
    what: &str,
    call: impl FnOnce() -> Result<T, BackendError>,
) -> Result<(T, TransferStats), Mismatch> {
    let before = backend.transfer_stats();
    let out = call().map_err(failed(what))?;
    Ok((out, backend.transfer_stats().since(&before)))
}

fn expect_moved(
    what: &str,
    s: &TransferStats,
    to_device: u64,
    to_host: u64,
) -> Result<(), Mismatch> {
    if s.data_to_device_bytes() != to_device || s.device_to_host_bytes != to_host {
        return Err(Mismatch(format!(
            "resident transfers, {what}: {} bytes of data to the device and {} back, expected {to_device} and {to_host} ({s:?})",
            s.data_to_device_bytes(),
            s.device_to_host_bytes
        )));
    }
    if to_host > 0 && s.sync_waits == 0 {
        return Err(Mismatch(format!(
            "resident transfers, {what}: results reached the host without a wait ({s:?})"
        )));
    }
    Ok(())
}

/// Checks that a read of scattered rows or digests came back in one copy, after at
/// most a few waits (a gather's offsets may go up first), on a backend that counts.
fn one_copy_back(what: &str, s: &TransferStats, counted: bool) -> Result<(), Mismatch> {
    if counted && (s.device_to_host_copies != 1 || s.sync_waits > 3) {
        return Err(Mismatch(format!(
            "resident transfers, {what}: {} copies back and {} waits, expected one copy and at most 3 waits ({s:?})",
            s.device_to_host_copies, s.sync_waits
        )));
    }
    Ok(())
}

/// Checks what the resident calls move: an LDE sends its input once and brings
/// nothing back; a commit sends nothing and brings back one digest; reads bring back
/// exactly the rows or digests asked for; a reduction sends no data (its scalars are
/// tables) and brings back one extension element (16 bytes) per row of each height;
/// scattered rows and tree nodes come back in one copy.
/// A backend without counters must be the CPU backend and stays at zero.
pub fn check_resident_transfers<B: ResidentBackend, F: ResidentField>(
    backend: &B,
) -> Result<(), Mismatch> {
    let (log_h, w, added_bits) = (7usize, 6usize, 1usize);
    let (h, n) = (1u64 << log_h, 1u64 << (log_h + added_bits));
    let input = random_matrix::<F>(77, h as usize, w);
    let digest_bytes = (DIGEST_ELEMS * 4) as u64;
    // Warm-up: resident tables.
    backend
        .lde_resident(input.clone(), added_bits, F::GENERATOR)
        .map_err(failed("warm-up"))?;
    let (mut m, s) = during(backend, "lde_resident", || {
        backend.lde_resident(input.clone(), added_bits, F::GENERATOR)
    })?;
    let counted = backend.transfer_counters().is_some();
    let counted_or_zero = |bytes: u64| if counted { bytes } else { 0 };
    let (to_dev, back) = (counted_or_zero, counted_or_zero);
    expect_moved("lde_resident", &s, to_dev(h * w as u64 * 4), 0)?;
    let (_, s) = during(backend, "commit", || backend.commit(&mut m))?;
    expect_moved("commit", &s, 0, back(digest_bytes))?;
    let (_, s) = during(backend, "read_rows", || backend.read_rows(&m, &[0, 5, 5]))?;
    expect_moved("read_rows of 3 rows", &s, 0, back(3 * w as u64 * 4))?;
    one_copy_back("read_rows of 3 rows", &s, counted)?;
    let nodes = [(0, 9), (3, 1), (1, 2), (0, 9)];
    let (_, s) = during(backend, "read_nodes", || backend.read_nodes(&m, &nodes))?;
    expect_moved("read_nodes of 4 nodes", &s, 0, back(4 * digest_bytes))?;
    one_copy_back("read_nodes of 4 nodes", &s, counted)?;
    let (_, s) = during(backend, "read_layer", || backend.read_layer(&m, 2))?;
    expect_moved("read_layer 2", &s, 0, back((n >> 2) * digest_bytes))?;
    let (_, s) = during(backend, "merkle_path", || backend.merkle_path(&m, 3))?;
    expect_moved(
        "merkle_path",
        &s,
        0,
        back((log_h + added_bits) as u64 * digest_bytes),
    )?;
    one_copy_back("merkle_path", &s, counted)?;
    let z = Ext::<F>::from_basis_coefficients_fn(|i| F::from_u32(i as u32 + 3));
    let points = [(z, vec![z; w])];
    let claims = [OpeningClaim {
        matrix: &m,
        points: &points[..],
    }];
    let (_, s) = during(backend, "reduce_openings", || {
        backend.reduce_openings(&claims, z, F::GENERATOR)
    })?;
    expect_moved("reduce_openings", &s, 0, back(n * 16))?;
    if counted && s.kernel_launches == 0 {
        return Err(Mismatch(format!(
            "resident transfers, reduce_openings: no kernel launched ({s:?})"
        )));
    }
    Ok(())
}

/// Runs every resident check for one field, panicking with the first mismatch.
pub fn run_resident_suite<B: ResidentBackend, F: ResidentField>(backend: &B) {
    let fail =
        |m: Mismatch| -> ! { panic!("{} backend ({}): {}", B::KIND, backend.device().id, m.0) };
    for &(log_h, w, added) in RESIDENT_CASES {
        check_resident_tree::<B, F>(backend, log_h, w, added).unwrap_or_else(|m| fail(m));
    }
    check_resident_reduction::<B, F>(backend).unwrap_or_else(|m| fail(m));
    check_resident_transfers::<B, F>(backend).unwrap_or_else(|m| fail(m));
    crate::fri::check_resident_fri::<B, F>(backend).unwrap_or_else(|m| fail(m));
}

/// Declares the resident conformance tests for a backend that implements
/// [`ResidentBackend`]: `$name` is the module the tests go in, `$open` an expression
/// giving `Result<impl ResidentBackend, BackendError>`.
#[macro_export]
macro_rules! resident_conformance_tests {
    ($name:ident, $open:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn resident_koalabear() {
                if let Some(b) = $crate::open_or_skip($open) {
                    $crate::resident::run_resident_suite::<_, $crate::KoalaBear>(&b);
                }
            }

            #[test]
            fn resident_babybear() {
                if let Some(b) = $crate::open_or_skip($open) {
                    $crate::resident::run_resident_suite::<_, $crate::BabyBear>(&b);
                }
            }

            #[test]
            fn quotient_koalabear() {
                if let Some(b) = $crate::open_or_skip($open) {
                    let mut cases = $crate::quotient::benchmark_cases::<$crate::KoalaBear>();
                    cases.extend($crate::quotient::transition_cases());
                    cases.extend($crate::quotient::batched_cases());
                    $crate::quotient::run_quotient_suite(&b, &cases);
                }
            }

            #[test]
            fn quotient_babybear() {
                if let Some(b) = $crate::open_or_skip($open) {
                    let cases = $crate::quotient::benchmark_cases::<$crate::BabyBear>();
                    $crate::quotient::run_quotient_suite(&b, &cases);
                }
            }
        }
    };
}

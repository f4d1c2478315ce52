//! The backend conformance suite.
//!
//! Every backend must return exactly what the CPU backend returns: the same LDE
//! values, the same digests, the same Merkle roots, hence the same commitments in a
//! proof. This crate holds the checks as generic functions, and
//! [`backend_conformance_tests!`] turns them into `#[test]`s for any backend, in the
//! manner of Plonky3's `field-testing` macros:
//!
//! ```ignore
//! proofbox_conformance::backend_conformance_tests!(my_backend, MyBackend::open(0));
//! ```
//!
//! What the checks compare is what proofs use: LDEs at several coset shifts
//! ([`lde_shifts`]: a prover extends the trace onto the generator's coset and the
//! quotient chunks onto other cosets), and every layer of every Merkle tree, not only
//! the root (openings read every layer).
//!
//! Device backends also count what they move between host and device memory
//! ([`check_transfer_accounting`]): exactly a call's input one way and its output the
//! other, with at least one wait before results reach the host.
//!
//! Backends that keep matrices on the device ([`proofbox_backend_api::ResidentBackend`])
//! are checked by [`resident`] ([`resident_conformance_tests!`]): values, every tree
//! layer, opened rows and the opening reduction against the CPU backend, and the bytes
//! each resident call moves; [`kept_quotient`] ([`kept_quotient_conformance_tests!`])
//! checks the calls that keep the quotient on the device the same way.
//!
//! The CPU backend itself is checked against references that share none of its code
//! paths (Plonky3's naive DFT, its Bowers DFT, and the stock `MerkleTreeMmcs`), in
//! this crate's own tests. [`faulty::FaultyBackend`] is the CPU backend with one fault
//! injected, for tests (here and in other crates) that show a check catches it.
//!
//! A backend that cannot open a device here (no driver, no device) makes its tests
//! print `skipped: <reason>` and return; setting `PROOFBOX_REQUIRE_<KIND>=1` (for
//! example `PROOFBOX_REQUIRE_OPENCL=1`) turns that skip into a failure, which is how CI
//! makes sure the backends it has drivers for are really tested.

pub mod faulty;
pub mod fri;
pub mod kept_quotient;
pub mod quotient;
pub mod resident;
mod transfers;

pub use transfers::check_transfer_accounting;

use p3_commit::Mmcs;
use p3_matrix::dense::RowMajorMatrix;
use p3_merkle_tree::MerkleTreeMmcs;
use proofbox_backend_api::{
    Backend, BackendError, BackendField, BackendKind, DIGEST_ELEMS, Digest, merkle_root,
};
pub use proofbox_backend_cpu::CpuBackend;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// LDE shapes the suite runs: `(log2 height, width, added bits)`. Every log height from
/// 1 to 20, widths from 1 to 256 including odd ones, blowups 2x to 8x. The total work is
/// kept small enough for a CPU-emulated device in CI.
pub const LDE_CASES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (1, 7, 3),
    (2, 3, 1),
    (3, 256, 1),
    (4, 1, 2),
    (5, 255, 1),
    (6, 16, 3),
    (7, 17, 1),
    (8, 256, 1),
    (9, 33, 2),
    (10, 1, 1),
    (11, 64, 1),
    (12, 5, 2),
    (13, 16, 1),
    (14, 9, 1),
    (15, 2, 2),
    (16, 4, 1),
    (17, 1, 1),
    (18, 3, 1),
    (19, 1, 1),
    (20, 1, 1),
];

/// LDE cases of [`run_lde_suite`] up to this many rows (log2) run at every shift of
/// [`lde_shifts`]; larger ones run at one shift each, taking the shifts in turn.
pub const ALL_SHIFTS_MAX_LOG_HEIGHT: usize = 12;

/// The coset shifts the LDE checks run at, with a name for messages: the field
/// generator (the trace's coset), one (the subgroup itself: the first quotient chunk's
/// shift), the inverse of a fourth root of unity (another quotient chunk's shift),
/// the generator squared, and a seeded random element.
pub fn lde_shifts<F: BackendField>() -> [(&'static str, F); 5] {
    let mut rng = StdRng::seed_from_u64(0x5eed_5817);
    let random = F::from_u32(rng.random_range(1..F::ORDER_U32));
    [
        ("generator", F::GENERATOR),
        ("one", F::ONE),
        (
            "inverse 4th root of unity",
            F::two_adic_generator(2).inverse(),
        ),
        ("generator squared", F::GENERATOR.square()),
        ("random", random),
    ]
}

/// Merkle shapes: `(log2 height, widths of the matrices committed together)`.
pub const MERKLE_CASES: &[(usize, &[usize])] = &[
    (0, &[1]),
    (1, &[8]),
    (2, &[1, 2]),
    (3, &[16]),
    (4, &[15, 1]),
    (5, &[17]),
    (6, &[24, 8, 3]),
    (8, &[1]),
    (10, &[32]),
    (12, &[7, 9]),
    (14, &[4]),
    (16, &[2]),
];

/// Seeded random matrix.
pub fn random_matrix<F: BackendField>(seed: u64, height: usize, width: usize) -> RowMajorMatrix<F> {
    let mut rng = StdRng::seed_from_u64(seed);
    let values = (0..height * width)
        .map(|_| F::from_u32(rng.random_range(0..F::ORDER_U32)))
        .collect();
    RowMajorMatrix::new(values, width)
}

/// A difference between a backend and the reference.
#[derive(Debug)]
pub struct Mismatch(pub String);

fn first_difference<T: PartialEq + core::fmt::Debug>(
    what: &str,
    got: &[T],
    want: &[T],
) -> Result<(), Mismatch> {
    if got.len() != want.len() {
        return Err(Mismatch(format!(
            "{what}: {} values, expected {}",
            got.len(),
            want.len()
        )));
    }
    match got.iter().zip(want).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => Err(Mismatch(format!(
            "{what}: first difference at index {i}: got {:?}, expected {:?}",
            got[i], want[i]
        ))),
    }
}

/// Checks one coset LDE against the CPU backend at every shift of [`lde_shifts`].
pub fn check_lde<B: Backend, F: BackendField>(
    backend: &B,
    log_height: usize,
    width: usize,
    added_bits: usize,
) -> Result<(), Mismatch> {
    for (name, shift) in lde_shifts::<F>() {
        check_lde_at(backend, log_height, width, added_bits, name, shift)?;
    }
    Ok(())
}

/// Checks one coset LDE against the CPU backend at `shift` (called `shift_name` in
/// messages).
pub fn check_lde_at<B: Backend, F: BackendField>(
    backend: &B,
    log_height: usize,
    width: usize,
    added_bits: usize,
    shift_name: &str,
    shift: F,
) -> Result<(), Mismatch> {
    let reference = CpuBackend::new();
    let input = random_matrix::<F>(
        log_height as u64 * 1000 + width as u64,
        1 << log_height,
        width,
    );
    let want = reference
        .coset_lde_batch(input.clone(), added_bits, shift)
        .map_err(|e| Mismatch(format!("reference failed: {e}")))?;
    let what = format!(
        "{} LDE (coset_lde_batch) 2^{log_height} x {width} +{added_bits} bits, shift {shift_name} ({shift})",
        F::ID
    );
    let got = backend
        .coset_lde_batch(input, added_bits, shift)
        .map_err(|e| Mismatch(format!("{what}: backend failed: {e}")))?;
    if got.width != want.width {
        return Err(Mismatch(format!(
            "{what}: width {} expected {}",
            got.width, want.width
        )));
    }
    first_difference(&what, &got.values, &want.values)
}

/// Every layer of `got` against `want`: the layer count, then each layer's digests.
fn check_layers<F: BackendField>(
    what: &str,
    got: &[Vec<Digest<F>>],
    want: &[Vec<Digest<F>>],
) -> Result<(), Mismatch> {
    if got.len() != want.len() {
        return Err(Mismatch(format!(
            "{what}: {} layers, expected {}",
            got.len(),
            want.len()
        )));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        first_difference(&format!("{what} layer {i} of {}", want.len()), g, w)?;
    }
    Ok(())
}

/// Checks a whole Merkle tree ([`Backend::merkle_tree`]), every layer, against the
/// CPU backend and against Plonky3's stock `MerkleTreeMmcs`.
pub fn check_merkle<B: Backend, F: BackendField>(
    backend: &B,
    log_height: usize,
    widths: &[usize],
) -> Result<(), Mismatch> {
    let reference = CpuBackend::new();
    let mats: Vec<RowMajorMatrix<F>> = widths
        .iter()
        .enumerate()
        .map(|(i, &w)| random_matrix(7 + i as u64 * 31 + log_height as u64, 1 << log_height, w))
        .collect();
    let refs: Vec<&RowMajorMatrix<F>> = mats.iter().collect();
    let what = format!("{} Merkle (merkle_tree) 2^{log_height} x {widths:?}", F::ID);
    let want = reference
        .merkle_tree(&refs)
        .map_err(|e| Mismatch(format!("reference failed: {e}")))?;
    let got = backend
        .merkle_tree(&refs)
        .map_err(|e| Mismatch(format!("{what}: backend failed: {e}")))?;
    check_layers(&what, &got, &want)?;
    check_layers(
        &format!("{what} vs stock MerkleTreeMmcs"),
        &got,
        &stock_layers(mats),
    )
}

/// Checks `hash_rows` and `compress_pairs` on batches whose sizes are not multiples of
/// any SIMD or workgroup width.
pub fn check_hash_kernels<B: Backend, F: BackendField>(backend: &B) -> Result<(), Mismatch> {
    let reference = CpuBackend::new();
    // Lengths cover one partial block, exact blocks, and the long multi-block rows of
    // real traces (hundreds to thousands of columns).
    for (count, len) in [
        (1usize, 1usize),
        (3, 16),
        (37, 24),
        (1000, 8),
        (513, 33),
        (17, 1313),
        (5, 2634),
    ] {
        let input = random_matrix::<F>(count as u64 + len as u64, count, len).values;
        let mut want = vec![[F::ZERO; DIGEST_ELEMS]; count];
        let mut got = want.clone();
        let what = format!("{} hash_rows {count} x {len}", F::ID);
        reference
            .hash_rows(&input, &mut want)
            .map_err(|e| Mismatch(format!("{what}: reference failed: {e}")))?;
        backend
            .hash_rows(&input, &mut got)
            .map_err(|e| Mismatch(format!("{what}: backend failed: {e}")))?;
        first_difference(&what, &got, &want)?;

        let pairs: Vec<[Digest<F>; 2]> = want
            .iter()
            .zip(want.iter().rev())
            .map(|(a, b)| [*a, *b])
            .collect();
        let mut want_c = vec![[F::ZERO; DIGEST_ELEMS]; count];
        let mut got_c = want_c.clone();
        let what = format!("{} compress_pairs {count}", F::ID);
        reference
            .compress_pairs(&pairs, &mut want_c)
            .map_err(|e| Mismatch(format!("{what}: reference failed: {e}")))?;
        backend
            .compress_pairs(&pairs, &mut got_c)
            .map_err(|e| Mismatch(format!("{what}: backend failed: {e}")))?;
        first_difference(&what, &got_c, &want_c)?;
    }
    Ok(())
}

/// Checks the fused LDE + Merkle call ([`Backend::lde_and_merkle_tree`]) against the
/// CPU backend's separate calls: the extension and every layer of its tree, at every
/// shift of [`lde_shifts`].
pub fn check_lde_and_merkle<B: Backend, F: BackendField>(backend: &B) -> Result<(), Mismatch> {
    let reference = CpuBackend::new();
    for (log_height, width, added_bits) in [(4usize, 3usize, 1usize), (10, 16, 1), (12, 33, 2)] {
        let input = random_matrix::<F>(99 + log_height as u64, 1 << log_height, width);
        for (name, shift) in lde_shifts::<F>() {
            let want_lde = reference
                .coset_lde_batch(input.clone(), added_bits, shift)
                .map_err(|e| Mismatch(format!("reference failed: {e}")))?;
            let want_layers = reference
                .merkle_tree(&[&want_lde])
                .map_err(|e| Mismatch(format!("reference failed: {e}")))?;
            let what = format!(
                "{} LDE+Merkle (lde_and_merkle_tree) 2^{log_height} x {width} +{added_bits} bits, shift {name}",
                F::ID
            );
            let (got_lde, got_layers) = backend
                .lde_and_merkle_tree(input.clone(), added_bits, shift)
                .map_err(|e| Mismatch(format!("{what}: backend failed: {e}")))?;
            if got_lde.width != want_lde.width {
                return Err(Mismatch(format!(
                    "{what}: width {} expected {}",
                    got_lde.width, want_lde.width
                )));
            }
            first_difference(
                &format!("{what} extension"),
                &got_lde.values,
                &want_lde.values,
            )?;
            check_layers(&what, &got_layers, &want_layers)?;
        }
    }
    Ok(())
}

/// Checks kernel timing ([`Backend::set_kernel_timing`], [`Backend::take_kernel_time`]):
/// every backend measures it; it is `None` while off; a call's kernel time is positive
/// and no longer than the call's wall time; taking it resets it; results with timing on
/// are still the CPU backend's.
pub fn check_kernel_timing<B: Backend, F: BackendField>(backend: &B) -> Result<(), Mismatch> {
    let err = |e: BackendError| Mismatch(format!("backend failed: {e}"));
    let fail = |m: String| Err(Mismatch(format!("kernel timing: {m}")));
    backend.set_kernel_timing(false);
    if backend.take_kernel_time().map_err(err)?.is_some() {
        return fail("a time while timing is off".into());
    }
    if !backend.set_kernel_timing(true) {
        return fail("the backend does not measure kernel time".into());
    }
    let input = random_matrix::<F>(7, 1 << 12, 16);
    let start = std::time::Instant::now();
    backend
        .lde_and_merkle_tree(input, 1, F::GENERATOR)
        .map_err(err)?;
    let wall = start.elapsed();
    let Some(t) = backend.take_kernel_time().map_err(err)? else {
        return fail("no time with timing on".into());
    };
    if t.is_zero() || t > wall + std::time::Duration::from_millis(1) {
        return fail(format!("{t:?} of kernels in a call of {wall:?}"));
    }
    match backend.take_kernel_time().map_err(err)? {
        Some(z) if z.is_zero() => {}
        other => return fail(format!("{other:?} after a take with no call between")),
    }
    // The timed launch paths give the same values.
    let checked =
        check_lde::<B, F>(backend, 10, 8, 2).and_then(|()| check_lde_and_merkle::<B, F>(backend));
    backend.set_kernel_timing(false);
    checked?;
    if backend.take_kernel_time().map_err(err)?.is_some() {
        return fail("a time after timing was turned off".into());
    }
    Ok(())
}

/// The root Plonky3's stock `MerkleTreeMmcs` (arity 2, cap height 0, the seam's
/// Poseidon2 hash and compression) commits the matrices to.
pub fn stock_root<F: BackendField>(mats: Vec<RowMajorMatrix<F>>) -> Digest<F> {
    let layers = stock_layers(mats);
    merkle_root(&layers).expect("a tree has a root")
}

/// Every digest layer of the tree Plonky3's stock `MerkleTreeMmcs` (arity 2, the
/// seam's Poseidon2 hash and compression) builds over the matrices, leaves' digests
/// first, root last: the layers [`Backend::merkle_tree`] returns. They are read from
/// the stock tree as its caps of every height (the cap of height `h` is the layer `h`
/// below the root).
pub fn stock_layers<F: BackendField>(mats: Vec<RowMajorMatrix<F>>) -> Vec<Vec<Digest<F>>> {
    let mmcs = MerkleTreeMmcs::<F::Packing, F::Packing, _, _, 2, DIGEST_ELEMS>::new(
        F::leaf_hasher(),
        F::node_compressor(),
        0,
    );
    let (_root, tree) = mmcs.commit(mats);
    (0..tree.num_layers())
        .rev()
        .map(|height| {
            let cap = tree.cap(height);
            let layer: &[Digest<F>] = cap.as_ref();
            layer.to_vec()
        })
        .collect()
}

/// Says that the running test is skipped and why, as one line on standard error that
/// starts with `skipped: ` and names the test.
///
/// The line is written to the process's stderr directly, not through `eprintln!`, so
/// the test harness does not capture it: a test that passes because it had nothing to
/// run on is visible in every test log (CI counts these lines).
pub fn skip(reason: impl core::fmt::Display) {
    use std::io::Write;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("test");
    let _ = writeln!(std::io::stderr().lock(), "skipped: {test}: {reason}");
}

/// Whether tests must run on `kind`: `PROOFBOX_REQUIRE_<KIND>=1` (for example
/// `PROOFBOX_REQUIRE_OPENCL=1`), which CI sets for the backends it has drivers for.
pub fn required(kind: BackendKind) -> bool {
    std::env::var(format!("PROOFBOX_REQUIRE_{}", kind.name().to_uppercase()))
        .is_ok_and(|v| v == "1")
}

/// What a test does when `kind` cannot run here: fails if [`required`], otherwise says
/// it is skipped ([`skip`]: `skipped: <test>: <what>: <reason>`).
pub fn require_or_skip(
    kind: BackendKind,
    what: impl core::fmt::Display,
    reason: impl core::fmt::Display,
) {
    if required(kind) {
        panic!(
            "PROOFBOX_REQUIRE_{}=1 but {kind} is unavailable: {what}: {reason}",
            kind.name().to_uppercase()
        );
    }
    skip(format_args!("{what}: {reason}"));
}

/// Opens a backend for a test, or says why it is skipped. With
/// `PROOFBOX_REQUIRE_<KIND>=1` set, an unavailable backend fails instead.
pub fn open_or_skip<B: Backend>(opened: Result<B, BackendError>) -> Option<B> {
    match opened {
        Ok(b) => Some(b),
        Err(e) => {
            require_or_skip(B::KIND, format_args!("{} conformance", B::KIND), e);
            None
        }
    }
}

/// Runs the whole LDE table for one field.
///
/// Cases up to [`ALL_SHIFTS_MAX_LOG_HEIGHT`] run at every shift of [`lde_shifts`];
/// each larger case runs at the next shift in turn, so the large sizes too meet
/// every shift without multiplying the suite's longest runs.
pub fn run_lde_suite<B: Backend, F: BackendField>(backend: &B) {
    let shifts = lde_shifts::<F>();
    let mut turn = shifts.iter().cycle();
    for &(log_height, width, added_bits) in LDE_CASES {
        let checked = if log_height <= ALL_SHIFTS_MAX_LOG_HEIGHT {
            check_lde::<B, F>(backend, log_height, width, added_bits)
        } else {
            let &(name, shift) = turn.next().expect("a cycle never ends");
            check_lde_at(backend, log_height, width, added_bits, name, shift)
        };
        if let Err(Mismatch(m)) = checked {
            panic!("{} backend ({}): {m}", B::KIND, backend.device().id);
        }
    }
}

/// Runs the whole Merkle table, the hash kernels and the fused call for one field.
pub fn run_merkle_suite<B: Backend, F: BackendField>(backend: &B) {
    let fail =
        |m: Mismatch| -> ! { panic!("{} backend ({}): {}", B::KIND, backend.device().id, m.0) };
    check_hash_kernels::<B, F>(backend).unwrap_or_else(|m| fail(m));
    for &(log_height, widths) in MERKLE_CASES {
        check_merkle::<B, F>(backend, log_height, widths).unwrap_or_else(|m| fail(m));
    }
    check_lde_and_merkle::<B, F>(backend).unwrap_or_else(|m| fail(m));
}

/// Runs [`check_kernel_timing`] (in KoalaBear).
pub fn run_timing_check<B: Backend>(backend: &B) {
    if let Err(Mismatch(m)) = check_kernel_timing::<B, KoalaBear>(backend) {
        panic!("{} backend ({}): {m}", B::KIND, backend.device().id);
    }
}

/// Runs [`check_transfer_accounting`] (in KoalaBear and BabyBear).
pub fn run_transfer_check<B: Backend>(backend: &B) {
    let checked = check_device_limits(backend)
        .and_then(|()| check_transfer_accounting::<B, KoalaBear>(backend))
        .and_then(|()| check_transfer_accounting::<B, BabyBear>(backend));
    if let Err(Mismatch(m)) = checked {
        panic!("{} backend ({}): {m}", B::KIND, backend.device().id);
    }
}

/// Checks [`Backend::device_limits`]: the CPU backend plans without limits; a device
/// backend reports at least one finite limit (the memory a call may use, or the
/// largest buffer), and a call's budget, where it has one, within the memory the
/// device reports.
pub fn check_device_limits<B: Backend>(backend: &B) -> Result<(), Mismatch> {
    let limits = backend
        .device_limits()
        .map_err(|e| Mismatch(format!("device_limits failed: {e}")))?;
    let unbounded = proofbox_backend_api::planner::DeviceLimits::UNBOUNDED;
    if B::KIND == BackendKind::Cpu {
        return if limits == unbounded {
            Ok(())
        } else {
            Err(Mismatch(format!(
                "the CPU backend reports limits {limits:?}, expected none"
            )))
        };
    }
    let memory = backend.device().memory_bytes;
    let budget_bytes = limits.budget_words as u128 * 4;
    let budget_reported = limits.budget_words != usize::MAX;
    if limits == unbounded || (budget_reported && memory > 0 && budget_bytes > u128::from(memory)) {
        return Err(Mismatch(format!(
            "device limits {limits:?} for a device of {memory} bytes: expected a finite limit and a budget within the memory"
        )));
    }
    Ok(())
}

/// Declares the conformance tests for a backend: `$name` is the module the tests go
/// in, `$open` an expression giving `Result<impl Backend, BackendError>`.
#[macro_export]
macro_rules! backend_conformance_tests {
    ($name:ident, $open:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn lde_koalabear() {
                if let Some(b) = $crate::open_or_skip($open) {
                    $crate::run_lde_suite::<_, $crate::KoalaBear>(&b);
                }
            }

            #[test]
            fn lde_babybear() {
                if let Some(b) = $crate::open_or_skip($open) {
                    $crate::run_lde_suite::<_, $crate::BabyBear>(&b);
                }
            }

            #[test]
            fn merkle_koalabear() {
                if let Some(b) = $crate::open_or_skip($open) {
                    $crate::run_merkle_suite::<_, $crate::KoalaBear>(&b);
                }
            }

            #[test]
            fn merkle_babybear() {
                if let Some(b) = $crate::open_or_skip($open) {
                    $crate::run_merkle_suite::<_, $crate::BabyBear>(&b);
                }
            }

            #[test]
            fn kernel_timing() {
                if let Some(b) = $crate::open_or_skip($open) {
                    $crate::run_timing_check(&b);
                }
            }

            #[test]
            fn transfer_accounting() {
                if let Some(b) = $crate::open_or_skip($open) {
                    $crate::run_transfer_check(&b);
                }
            }
        }
    };
}

pub use p3_baby_bear::BabyBear;
pub use p3_koala_bear::KoalaBear;

//! Resident matrices bound as several windows: with the window limit lowered
//! ([`KernelLimits::max_resident_window_bytes`]), small matrices span several windows
//! (boundaries inside rows), and every resident call still gives exactly the CPU
//! backend's results (the shared resident and quotient suites, and the kept-quotient
//! value checks). Every test opens
//! `wgpu:0`; without an adapter they print `skipped: ...` (or fail with
//! `PROOFBOX_REQUIRE_WGPU=1`).

use p3_field::Field;
use proofbox_backend_api::resident::ResidentBackend;
use proofbox_backend_api::{Backend, BackendError};
use proofbox_backend_wgpu::{KernelLimits, WgpuBackend};
use proofbox_conformance::kept_quotient;
use proofbox_conformance::quotient::{
    QUOTIENT_LOG_BLOWUP, QuotientCase, benchmark_cases, run_quotient_suite, transition_cases,
};
use proofbox_conformance::resident::run_resident_suite;
use proofbox_conformance::{BabyBear, KoalaBear, open_or_skip, random_matrix};

/// `wgpu:0` with resident matrices bound in windows of at most `window_bytes`.
fn windowed(window_bytes: u64) -> Option<WgpuBackend> {
    let b = open_or_skip(WgpuBackend::open(0))?;
    let limits = KernelLimits {
        max_resident_window_bytes: window_bytes,
        ..b.device_limits()
    };
    Some(b.with_kernel_limits(limits))
}

/// 4 KiB windows (1024 words): the suite's `2^6 x 17` extension (+2 bits, 4352 words)
/// spans 5 windows whose boundaries fall inside rows, `2^9 x 8` (+1 bit) 8 windows, the
/// transfer check's matrix 2.
const SUITE_WINDOW: u64 = 4096;

fn check_suite_spans_windows(b: &WgpuBackend) {
    assert_eq!(b.resident_bindings(256 * 17 * 4).unwrap(), 5);
    assert_eq!(b.resident_bindings(1024 * 8 * 4).unwrap(), 8);
    assert_eq!(b.resident_bindings(SUITE_WINDOW).unwrap(), 1);
}

#[test]
fn resident_suite_over_windows_koalabear() {
    if let Some(b) = windowed(SUITE_WINDOW) {
        check_suite_spans_windows(&b);
        run_resident_suite::<_, KoalaBear>(&b);
    }
}

#[test]
fn resident_suite_over_windows_babybear() {
    if let Some(b) = windowed(SUITE_WINDOW) {
        check_suite_spans_windows(&b);
        run_resident_suite::<_, BabyBear>(&b);
    }
}

/// 64 KiB windows: the Poseidon2 trace's LDE (32 rows of 1312 columns) spans 3 windows
/// with boundaries inside rows; the wider circuits' LDEs span more.
const QUOTIENT_WINDOW: u64 = 64 << 10;

fn lde_bytes<F>(c: &QuotientCase<F>) -> u64 {
    (c.trace.values.len() << QUOTIENT_LOG_BLOWUP) as u64 * 4
}

fn check_poseidon2_spans_windows<F>(b: &WgpuBackend, cases: &[QuotientCase<F>]) {
    let p2 = cases
        .iter()
        .find(|c| c.program.name == "poseidon2")
        .expect("a Poseidon2 case");
    let bytes = lde_bytes(p2);
    let words_per_window = QUOTIENT_WINDOW / 4;
    assert_ne!(words_per_window % p2.trace.width as u64, 0);
    assert!(b.resident_bindings(bytes).unwrap() >= 3, "{bytes} bytes");
    for c in cases {
        println!(
            "{}: LDE of {} bytes in {} bindings",
            c.program.name,
            lde_bytes(c),
            b.resident_bindings(lde_bytes(c)).unwrap()
        );
    }
}

#[test]
fn quotient_over_windows_koalabear() {
    if let Some(b) = windowed(QUOTIENT_WINDOW) {
        let mut cases = benchmark_cases::<KoalaBear>();
        cases.extend(transition_cases());
        check_poseidon2_spans_windows(&b, &cases);
        run_quotient_suite(&b, &cases);
    }
}

/// The kept quotient over windows: with 4 KiB windows the suite's grouped extensions
/// beyond one window take the host path (`lde_groups_on_host`); with 64 KiB windows
/// every circuit's quotient is kept over its windowed trace extension; both give the
/// CPU backend's values.
#[test]
fn kept_quotient_over_windows_koalabear() {
    let fail = |m: proofbox_conformance::Mismatch| -> ! { panic!("{}", m.0) };
    if let Some(b) = windowed(SUITE_WINDOW) {
        // The largest group case's input (2^9 x 8 words) spans 4 windows.
        assert_eq!(b.resident_bindings(512 * 8 * 4).unwrap(), 4);
        for &(log_h, groups, width, added) in kept_quotient::GROUP_CASES {
            kept_quotient::check_group_lde::<_, KoalaBear>(&b, log_h, groups, width, added)
                .unwrap_or_else(|m| fail(m));
        }
        kept_quotient::check_interpolation::<_, KoalaBear>(&b).unwrap_or_else(|m| fail(m));
    }
    if let Some(b) = windowed(QUOTIENT_WINDOW) {
        let mut cases = benchmark_cases::<KoalaBear>();
        cases.extend(transition_cases());
        check_poseidon2_spans_windows(&b, &cases);
        kept_quotient::check_kept_quotients(&b, &cases).unwrap_or_else(|m| fail(m));
    }
}

#[test]
fn quotient_over_windows_babybear() {
    if let Some(b) = windowed(QUOTIENT_WINDOW) {
        let cases = benchmark_cases::<BabyBear>();
        check_poseidon2_spans_windows(&b, &cases);
        run_quotient_suite(&b, &cases);
    }
}

/// A matrix needing more windows than a kernel may bind, or more than the largest
/// buffer, is refused with `OutOfMemory` naming the bytes needed and allowed.
#[test]
fn matrices_beyond_the_windows_are_refused_with_out_of_memory() {
    let Some(b) = windowed(SUITE_WINDOW) else {
        return;
    };
    let fewer_bindings = KernelLimits {
        // Two windows besides the kernels' other storage buffers.
        max_storage_buffers_per_shader_stage: 5,
        ..b.kernel_limits()
    };
    let b = b.with_kernel_limits(fewer_bindings);
    let input = random_matrix::<KoalaBear>(3, 64, 17);
    let bytes = 256 * 17 * 4;
    let refused = |r: Result<_, BackendError>| match r {
        Err(BackendError::OutOfMemory {
            needed_bytes,
            available_bytes,
            ..
        }) => (needed_bytes, available_bytes),
        Err(e) => panic!("expected OutOfMemory, got {e}"),
        Ok(_) => panic!("expected OutOfMemory, the matrix was accepted"),
    };
    assert_eq!(
        refused(b.lde_resident(input.clone(), 2, KoalaBear::GENERATOR)),
        (bytes, 2 * SUITE_WINDOW)
    );
    // Two windows are enough for a matrix of 2^6 rows.
    let m = b
        .lde_resident(input.clone(), 0, KoalaBear::GENERATOR)
        .expect("two windows");
    assert_eq!(b.read_rows(&m, &[63]).unwrap()[0].len(), 17);
    let smaller_buffers = KernelLimits {
        max_buffer_size: 3 * SUITE_WINDOW,
        ..b.device_limits()
    };
    let b = b.with_kernel_limits(KernelLimits {
        max_resident_window_bytes: SUITE_WINDOW,
        ..smaller_buffers
    });
    assert_eq!(
        refused(b.upload_matrix(random_matrix::<KoalaBear>(4, 256, 17))),
        (bytes, 3 * SUITE_WINDOW)
    );
}

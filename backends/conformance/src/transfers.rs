//! The transfer-accounting check: a device backend's counters
//! ([`Backend::transfer_stats`]) move by exactly the bytes each kernel call must move,
//! and a refused call moves nothing; the CPU backend's stay at zero.

use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::{
    Backend, BackendError, BackendField, BackendKind, DIGEST_ELEMS, TransferStats,
};

use crate::{Mismatch, random_matrix};

/// Bytes of one digest.
const DIGEST_BYTES: u64 = (DIGEST_ELEMS * 4) as u64;

/// What one call must move, in bytes of the caller's data each way.
struct Expected {
    what: &'static str,
    to_device: u64,
    to_host: u64,
}

/// Runs `call` and returns what the counters saw during it.
fn during<B: Backend>(
    backend: &B,
    call: impl FnOnce() -> Result<(), BackendError>,
) -> Result<TransferStats, Mismatch> {
    let before = backend.transfer_stats();
    call().map_err(|e| Mismatch(format!("backend failed: {e}")))?;
    Ok(backend.transfer_stats().since(&before))
}

fn expect(s: &TransferStats, e: &Expected) -> Result<(), Mismatch> {
    let fail = |m: String| Err(Mismatch(format!("transfer accounting, {}: {m}", e.what)));
    if s.data_to_device_bytes() != e.to_device {
        return fail(format!(
            "{} bytes of data to the device, expected {} ({s:?})",
            s.data_to_device_bytes(),
            e.to_device
        ));
    }
    if s.device_to_host_bytes != e.to_host {
        return fail(format!(
            "{} bytes to the host, expected {} ({s:?})",
            s.device_to_host_bytes, e.to_host
        ));
    }
    if (e.to_device > 0) != (s.data_to_device_copies() > 0)
        || (e.to_host > 0) != (s.device_to_host_copies > 0)
    {
        return fail(format!("copies do not match the bytes ({s:?})"));
    }
    if (s.table_bytes > 0) != (s.table_copies > 0) || s.table_bytes > s.host_to_device_bytes {
        return fail(format!("table counts do not add up ({s:?})"));
    }
    if e.to_host > 0 && s.sync_waits == 0 {
        return fail(format!(
            "results reached the host without a wait for the device ({s:?})"
        ));
    }
    if s.kernel_launches == 0 {
        return fail(format!("no kernel was launched ({s:?})"));
    }
    Ok(())
}

/// Checks transfer accounting: the CPU backend counts nothing; a device backend counts,
/// and each kernel call (after a warm-up call, so that cached tables are resident)
/// moves exactly its input to the device and its output to the host:
/// - `coset_lde_batch` of `h x w` with `b` added bits: `4hw` bytes there, `4hw 2^b`
///   back;
/// - `merkle_tree`: the rows there, every digest layer (`2h - 1` digests) back;
/// - `lde_and_merkle_tree`: the trace there, the extension and its layers back;
/// - `hash_rows` and `compress_pairs`: messages or pairs there, digests back.
///
/// Every call that brings results back waits for the device at least once, launches
/// at least one kernel, tables are a part of host-to-device, and a call refused as
/// invalid moves nothing. A backend without counters must be the CPU backend, and
/// its stats stay at zero through a call.
pub fn check_transfer_accounting<B: Backend, F: BackendField>(backend: &B) -> Result<(), Mismatch> {
    if backend.transfer_counters().is_none() {
        if B::KIND != BackendKind::Cpu {
            return Err(Mismatch(format!(
                "a {} backend must count its transfers (transfer_counters is None)",
                B::KIND
            )));
        }
        let m = random_matrix::<F>(41, 16, 3);
        let s = during(backend, || backend.merkle_tree(&[&m]).map(drop))?;
        return if s == TransferStats::default() {
            Ok(())
        } else {
            Err(Mismatch(format!(
                "a backend without counters reported transfers ({s:?})"
            )))
        };
    }
    let (log_h, w, added_bits) = (8usize, 5usize, 1usize);
    let (h, n) = (1u64 << log_h, 1u64 << (log_h + added_bits));
    let m = random_matrix::<F>(41, h as usize, w);
    let words = |rows: u64, cols: usize| rows * cols as u64 * 4;
    // Warm-up: twiddles and other resident tables.
    backend
        .lde_and_merkle_tree(m.clone(), added_bits, F::GENERATOR)
        .map_err(|e| Mismatch(format!("backend failed: {e}")))?;

    let s = during(backend, || {
        backend
            .coset_lde_batch(m.clone(), added_bits, F::GENERATOR)
            .map(drop)
    })?;
    expect(
        &s,
        &Expected {
            what: "coset_lde_batch",
            to_device: words(h, w),
            to_host: words(n, w),
        },
    )?;

    let s = during(backend, || backend.merkle_tree(&[&m]).map(drop))?;
    expect(
        &s,
        &Expected {
            what: "merkle_tree",
            to_device: words(h, w),
            to_host: (2 * h - 1) * DIGEST_BYTES,
        },
    )?;

    let s = during(backend, || {
        backend
            .lde_and_merkle_tree(m.clone(), added_bits, F::GENERATOR)
            .map(drop)
    })?;
    expect(
        &s,
        &Expected {
            what: "lde_and_merkle_tree",
            to_device: words(h, w),
            to_host: words(n, w) + (2 * n - 1) * DIGEST_BYTES,
        },
    )?;

    let rows = 64usize;
    let mut digests = vec![[F::ZERO; DIGEST_ELEMS]; rows];
    let s = during(backend, || {
        backend.hash_rows(&m.values[..rows * w], &mut digests)
    })?;
    expect(
        &s,
        &Expected {
            what: "hash_rows",
            to_device: words(rows as u64, w),
            to_host: rows as u64 * DIGEST_BYTES,
        },
    )?;

    let pairs = digests.as_chunks::<2>().0.to_vec();
    let mut out = vec![[F::ZERO; DIGEST_ELEMS]; pairs.len()];
    let s = during(backend, || backend.compress_pairs(&pairs, &mut out))?;
    expect(
        &s,
        &Expected {
            what: "compress_pairs",
            to_device: pairs.len() as u64 * 2 * DIGEST_BYTES,
            to_host: pairs.len() as u64 * DIGEST_BYTES,
        },
    )?;

    // A call refused before it reaches the device moves nothing.
    let odd = RowMajorMatrix::new(vec![F::ONE; 3], 1);
    let before = backend.transfer_stats();
    if backend
        .coset_lde_batch(odd, added_bits, F::GENERATOR)
        .is_ok()
    {
        return Err(Mismatch("an LDE of 3 rows was accepted".into()));
    }
    let after = backend.transfer_stats();
    if before != after {
        return Err(Mismatch(format!(
            "transfer accounting: a refused call moved {:?}",
            after.since(&before)
        )));
    }
    Ok(())
}

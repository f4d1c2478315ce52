//! A deliberately faulty backend, for tests that must show a check fails.
//!
//! A check that passes on every backend proves nothing until it has been seen to
//! fail on a wrong one. [`FaultyBackend`] is the CPU backend with one [`Fault`]
//! injected: each fault breaks one kernel in one small, deterministic way (one value
//! off by one), the kind of error a device kernel makes. Any crate's tests can wrap
//! it (in a prover, behind a registry seam) and assert that the check under test
//! catches it (the tests in `tests/faults.rs` do this for every fault):
//!
//! ```ignore
//! use proofbox_conformance::faulty::{Fault, FaultyBackend};
//! use proofbox_conformance::{KoalaBear, check_hash_kernels};
//!
//! let bad = FaultyBackend::new(Fault::CompressPairs);
//! let m = check_hash_kernels::<_, KoalaBear>(&bad).unwrap_err();
//! assert!(m.0.contains("compress_pairs"), "{}", m.0);
//! ```
//!
//! [`Fault::None`] leaves every kernel intact: the same wrapper as a control, so a
//! test can show that what fails is the fault and not the wrapper.

use core::fmt;
use std::time::Duration;

use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::{
    Backend, BackendError, BackendField, BackendKind, DIGEST_ELEMS, DeviceInfo, Digest,
};
use proofbox_backend_cpu::CpuBackend;

/// Which kernel a [`FaultyBackend`] gets wrong, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// No fault: every result is the CPU backend's.
    None,
    /// [`Backend::coset_lde_batch`] adds one to the last value of every extension.
    Lde,
    /// [`Backend::coset_lde_batch`] extends onto the coset of the field generator
    /// whatever shift it is given (right for the trace, wrong for every other coset).
    LdeFixedShift,
    /// [`Backend::hash_rows`] adds one to the last element of the last digest.
    HashRows,
    /// [`Backend::compress_pairs`] adds one to the last element of the last digest.
    CompressPairs,
    /// [`Backend::merkle_tree`] (and so [`Backend::lde_and_merkle_tree`]) returns the
    /// layer just below the root with its last digest changed, after the root was
    /// computed from the right one: the root is correct, the layer that openings read
    /// is not. Trees of one leaf have no such layer and come out right.
    TreeLayer,
    /// [`Backend::compress_pairs`] returns [`BackendError::DeviceLost`]: the device
    /// stops answering in the middle of a tree.
    DeviceLost,
}

impl Fault {
    /// Every fault that breaks something (all but [`Fault::None`]).
    pub const ALL: [Fault; 6] = [
        Self::Lde,
        Self::LdeFixedShift,
        Self::HashRows,
        Self::CompressPairs,
        Self::TreeLayer,
        Self::DeviceLost,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Lde => "lde",
            Self::LdeFixedShift => "lde-fixed-shift",
            Self::HashRows => "hash-rows",
            Self::CompressPairs => "compress-pairs",
            Self::TreeLayer => "tree-layer",
            Self::DeviceLost => "device-lost",
        }
    }

    /// The [`Backend`] method whose results this fault changes (or that fails) first:
    /// the one a check of that method alone must catch (`None` for [`Fault::None`]).
    pub const fn kernel(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Lde | Self::LdeFixedShift => Some("coset_lde_batch"),
            Self::HashRows => Some("hash_rows"),
            Self::CompressPairs | Self::DeviceLost => Some("compress_pairs"),
            Self::TreeLayer => Some("merkle_tree"),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The CPU backend with one [`Fault`] injected.
///
/// It reports itself as a CPU device with id `faulty:0` and the CPU backend's
/// fields. Its Merkle trees are built by the trait's provided methods on its own
/// (possibly faulty) [`Backend::hash_rows`] and [`Backend::compress_pairs`], as a
/// device backend that does not override them would be. Kernel timing is the CPU
/// backend's.
#[derive(Debug, Clone)]
pub struct FaultyBackend {
    inner: CpuBackend,
    fault: Fault,
    info: DeviceInfo,
}

impl FaultyBackend {
    /// The CPU backend with `fault`.
    pub fn new(fault: Fault) -> Self {
        let inner = CpuBackend::new();
        let mut info = inner.device().clone();
        info.id = "faulty:0".into();
        info.name = format!("CPU backend with fault {fault}");
        info.vendor = "proofbox-conformance".into();
        Self { inner, fault, info }
    }

    /// The fault this backend has.
    pub fn fault(&self) -> Fault {
        self.fault
    }
}

/// Adds one to the last element of the last digest.
fn corrupt_last<F: BackendField>(digests: &mut [Digest<F>]) {
    if let Some(d) = digests.last_mut() {
        d[DIGEST_ELEMS - 1] += F::ONE;
    }
}

impl Backend for FaultyBackend {
    const KIND: BackendKind = BackendKind::Cpu;

    fn probe() -> Result<Vec<DeviceInfo>, BackendError> {
        Ok(vec![Self::new(Fault::None).info])
    }

    /// Opens device 0 with [`Fault::None`] (use [`FaultyBackend::new`] for a fault).
    fn open(ordinal: usize) -> Result<Self, BackendError> {
        if ordinal == 0 {
            Ok(Self::new(Fault::None))
        } else {
            Err(BackendError::UnknownDevice {
                backend: Self::KIND,
                device: ordinal.to_string(),
                available: 1,
            })
        }
    }

    fn device(&self) -> &DeviceInfo {
        &self.info
    }

    fn coset_lde_batch<F: BackendField>(
        &self,
        mat: RowMajorMatrix<F>,
        added_bits: usize,
        shift: F,
    ) -> Result<RowMajorMatrix<F>, BackendError> {
        let shift = match self.fault {
            Fault::LdeFixedShift => F::GENERATOR,
            _ => shift,
        };
        let mut out = self.inner.coset_lde_batch(mat, added_bits, shift)?;
        if self.fault == Fault::Lde
            && let Some(v) = out.values.last_mut()
        {
            *v += F::ONE;
        }
        Ok(out)
    }

    fn hash_rows<F: BackendField>(
        &self,
        input: &[F],
        out: &mut [Digest<F>],
    ) -> Result<(), BackendError> {
        self.inner.hash_rows(input, out)?;
        if self.fault == Fault::HashRows {
            corrupt_last(out);
        }
        Ok(())
    }

    fn compress_pairs<F: BackendField>(
        &self,
        input: &[[Digest<F>; 2]],
        out: &mut [Digest<F>],
    ) -> Result<(), BackendError> {
        if self.fault == Fault::DeviceLost {
            return Err(BackendError::DeviceLost {
                device: self.info.id.clone(),
                reason: "injected fault: the device stopped answering".into(),
            });
        }
        self.inner.compress_pairs(input, out)?;
        if self.fault == Fault::CompressPairs {
            corrupt_last(out);
        }
        Ok(())
    }

    fn compress_to_root<F: BackendField>(
        &self,
        leaves: Vec<Digest<F>>,
    ) -> Result<Vec<Vec<Digest<F>>>, BackendError> {
        // The provided method's loop, on this backend's `compress_pairs`.
        let mut layers = vec![leaves];
        while layers.last().map_or(0, Vec::len) > 1 {
            let prev = layers.last().expect("non-empty");
            let (pairs, _) = prev.as_chunks::<2>();
            let mut next = vec![[F::ZERO; DIGEST_ELEMS]; pairs.len()];
            self.compress_pairs(pairs, &mut next)?;
            layers.push(next);
        }
        if self.fault == Fault::TreeLayer && layers.len() >= 2 {
            let below_root = layers.len() - 2;
            corrupt_last(&mut layers[below_root]);
        }
        Ok(layers)
    }

    fn set_kernel_timing(&self, on: bool) -> bool {
        self.inner.set_kernel_timing(on)
    }

    fn take_kernel_time(&self) -> Result<Option<Duration>, BackendError> {
        self.inner.take_kernel_time()
    }
}

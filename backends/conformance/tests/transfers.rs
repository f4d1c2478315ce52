//! The transfer-accounting check against a device emulated on the host: the CPU
//! backend's results, counted the way a device backend with fused calls must count
//! them. The honest emulation passes; each way of miscounting fails, naming what is
//! wrong (a check that cannot fail proves nothing).

use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::planner::DeviceLimits;
use proofbox_backend_api::{
    Backend, BackendError, BackendField, BackendKind, DIGEST_ELEMS, DeviceInfo, Digest, LdeAndTree,
    TransferCounters, TransferStats,
};
use proofbox_conformance::{
    BabyBear, CpuBackend, KoalaBear, check_device_limits, check_transfer_accounting,
    run_transfer_check,
};

/// How the emulation miscounts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Miscount {
    None,
    /// Has no counters at all.
    NoCounters,
    /// Brings results back without waiting for the device.
    NoWait,
    /// Leaves the root out of a tree's readback.
    TreeWithoutRoot,
    /// Counts a table upload as the caller's data.
    TableAsData,
    /// Counts the copies of a call that it then refuses.
    CountsRefusedCalls,
    /// Reports no limits, as if its memory were boundless.
    NoLimits,
    /// Plans to use more memory than the device has.
    BudgetBeyondMemory,
}

struct Emulated {
    cpu: CpuBackend,
    info: DeviceInfo,
    counters: TransferCounters,
    miscount: Miscount,
}

impl Emulated {
    fn new(miscount: Miscount) -> Self {
        let cpu = CpuBackend::new();
        let mut info = cpu.device().clone();
        info.id = "emulated:0".into();
        info.backend = BackendKind::Opencl;
        Self {
            cpu,
            info,
            counters: TransferCounters::new(),
            miscount,
        }
    }

    /// One call as a device runs it: a 64-byte table and `to_device` bytes there, one
    /// launch, one wait, `to_host` bytes back.
    fn count(&self, to_device: u64, to_host: u64) {
        if self.miscount == Miscount::TableAsData {
            self.counters.host_to_device(64);
        } else {
            self.counters.table_to_device(64);
        }
        self.counters.host_to_device(to_device);
        self.counters.kernel_launch();
        if self.miscount != Miscount::NoWait {
            self.counters.sync_wait();
        }
        self.counters.device_to_host(to_host);
    }

    fn refused<T>(&self, r: Result<T, BackendError>, to_device: u64) -> Result<T, BackendError> {
        if r.is_err() && self.miscount == Miscount::CountsRefusedCalls {
            self.counters.host_to_device(to_device);
        }
        r
    }
}

fn bytes<T>(n: usize) -> u64 {
    (n * size_of::<T>()) as u64
}

fn layer_bytes<F>(layers: &[Vec<Digest<F>>], miscount: Miscount) -> u64 {
    let digests: usize = layers.iter().map(Vec::len).sum();
    let digests = if miscount == Miscount::TreeWithoutRoot {
        digests - 1
    } else {
        digests
    };
    (digests * DIGEST_ELEMS * 4) as u64
}

impl Backend for Emulated {
    const KIND: BackendKind = BackendKind::Opencl;

    fn probe() -> Result<Vec<DeviceInfo>, BackendError> {
        Ok(vec![Self::new(Miscount::None).info])
    }

    fn open(_: usize) -> Result<Self, BackendError> {
        Ok(Self::new(Miscount::None))
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
        let input = bytes::<F>(mat.values.len());
        let lde = self.refused(self.cpu.coset_lde_batch(mat, added_bits, shift), input)?;
        self.count(input, bytes::<F>(lde.values.len()));
        Ok(lde)
    }

    fn hash_rows<F: BackendField>(
        &self,
        input: &[F],
        out: &mut [Digest<F>],
    ) -> Result<(), BackendError> {
        let sent = bytes::<F>(input.len());
        self.refused(self.cpu.hash_rows(input, out), sent)?;
        self.count(sent, bytes::<Digest<F>>(out.len()));
        Ok(())
    }

    fn compress_pairs<F: BackendField>(
        &self,
        input: &[[Digest<F>; 2]],
        out: &mut [Digest<F>],
    ) -> Result<(), BackendError> {
        let sent = bytes::<[Digest<F>; 2]>(input.len());
        self.refused(self.cpu.compress_pairs(input, out), sent)?;
        self.count(sent, bytes::<Digest<F>>(out.len()));
        Ok(())
    }

    fn merkle_tree<F: BackendField>(
        &self,
        leaves: &[&RowMajorMatrix<F>],
    ) -> Result<Vec<Vec<Digest<F>>>, BackendError> {
        let sent: u64 = leaves.iter().map(|m| bytes::<F>(m.values.len())).sum();
        let layers = self.refused(self.cpu.merkle_tree(leaves), sent)?;
        self.count(sent, layer_bytes(&layers, self.miscount));
        Ok(layers)
    }

    fn lde_and_merkle_tree<F: BackendField>(
        &self,
        mat: RowMajorMatrix<F>,
        added_bits: usize,
        shift: F,
    ) -> Result<LdeAndTree<F>, BackendError> {
        let sent = bytes::<F>(mat.values.len());
        let (lde, layers) =
            self.refused(self.cpu.lde_and_merkle_tree(mat, added_bits, shift), sent)?;
        let back = bytes::<F>(lde.values.len()) + layer_bytes(&layers, self.miscount);
        self.count(sent, back);
        Ok((lde, layers))
    }

    fn transfer_counters(&self) -> Option<&TransferCounters> {
        (self.miscount != Miscount::NoCounters).then_some(&self.counters)
    }

    fn device_limits(&self) -> Result<DeviceLimits, BackendError> {
        Ok(match self.miscount {
            Miscount::NoLimits => DeviceLimits::UNBOUNDED,
            Miscount::BudgetBeyondMemory => DeviceLimits {
                budget_words: (self.info.memory_bytes / 2) as usize,
                max_buffer_words: 1 << 20,
            },
            _ => DeviceLimits::from_device(Some(self.info.memory_bytes), None),
        })
    }
}

#[test]
fn an_honest_emulated_device_passes() {
    run_transfer_check(&Emulated::new(Miscount::None));
}

#[test]
fn a_device_without_limits_or_beyond_its_memory_is_caught() {
    for (miscount, says) in [
        (Miscount::NoLimits, "expected a finite limit"),
        (Miscount::BudgetBeyondMemory, "a budget within the memory"),
    ] {
        let err = check_device_limits(&Emulated::new(miscount))
            .expect_err(&format!("{miscount:?} passed the check"));
        assert!(err.0.contains(says), "{miscount:?}: {}", err.0);
    }
    check_device_limits(&Emulated::new(Miscount::None)).unwrap();
    check_device_limits(&CpuBackend::new()).unwrap();
}

#[test]
fn the_cpu_backend_counts_nothing_and_passes() {
    let cpu = CpuBackend::new();
    assert!(cpu.transfer_counters().is_none());
    run_transfer_check(&cpu);
    assert_eq!(cpu.transfer_stats(), TransferStats::default());
}

#[test]
fn every_miscount_is_caught_and_named() {
    for (miscount, says) in [
        (Miscount::NoCounters, "must count its transfers"),
        (
            Miscount::NoWait,
            "coset_lde_batch: results reached the host without a wait",
        ),
        (Miscount::TreeWithoutRoot, "merkle_tree: "),
        (
            Miscount::TableAsData,
            "coset_lde_batch: 5184 bytes of data to the device, expected 5120",
        ),
        (Miscount::CountsRefusedCalls, "a refused call moved"),
    ] {
        let b = Emulated::new(miscount);
        for err in [
            check_transfer_accounting::<_, KoalaBear>(&b),
            check_transfer_accounting::<_, BabyBear>(&b),
        ] {
            let err = err.expect_err(&format!("{miscount:?} passed the check"));
            assert!(err.0.contains(says), "{miscount:?}: {}", err.0);
        }
    }
}

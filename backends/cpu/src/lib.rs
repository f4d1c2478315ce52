//! The CPU backend: Plonky3's own kernels behind [`Backend`].
//!
//! - LDE: `p3_dft::Radix2DitParallel`, multi-threaded with rayon, SIMD through
//!   Plonky3's packed fields (AVX2/AVX-512/NEON when built with `-C target-cpu=native`).
//! - Merkle hashing: the Poseidon2 sponge and compression of the seam, run on packed
//!   fields (`F::Packing`, one message per SIMD lane) and spread over all cores.
//!
//! - Kernel time ([`Backend::take_kernel_time`]): the wall time during which at
//!   least one kernel call ran, measured on the host (the host is the device).
//!
//! - Resident matrices ([`proofbox_backend_api::ResidentBackend`], [`CpuMatrix`]): the
//!   host matrix and its tree layers themselves, never copied.
//!
//! This backend is the reference every other backend is checked against.

mod resident;

pub use resident::CpuMatrix;

use core::any::Any;
use std::sync::Arc;
use std::time::Duration;

use p3_baby_bear::BabyBear;
use p3_dft::{Radix2DitParallel, TwoAdicSubgroupDft};
use p3_field::PackedValue;
use p3_koala_bear::KoalaBear;
use p3_matrix::bitrev::BitReversibleMatrix;
use p3_matrix::dense::RowMajorMatrix;
use p3_maybe_rayon::prelude::*;
use p3_symmetric::{CryptographicHasher, PseudoCompressionFunction};
use proofbox_backend_api::{
    Backend, BackendError, BackendField, BackendKind, DIGEST_ELEMS, DeviceInfo, DeviceType, Digest,
    FieldId, KernelClock, validate,
};

/// Messages handed to one parallel task by [`CpuBackend::hash_rows`] and
/// [`CpuBackend::compress_pairs`]: large enough to amortise the dispatch.
const TASK_MESSAGES: usize = 256;

/// The host CPU as a backend device.
#[derive(Debug, Clone)]
pub struct CpuBackend {
    info: DeviceInfo,
    koala_dft: Radix2DitParallel<KoalaBear>,
    baby_dft: Radix2DitParallel<BabyBear>,
    /// Shared by clones.
    clock: Arc<KernelClock>,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    /// The host CPU (this backend cannot be unavailable).
    pub fn new() -> Self {
        Self {
            info: host_info(),
            koala_dft: Radix2DitParallel::default(),
            baby_dft: Radix2DitParallel::default(),
            clock: Arc::new(KernelClock::new()),
        }
    }

    fn dft<F: BackendField>(&self) -> &Radix2DitParallel<F> {
        let any: &dyn Any = match F::ID {
            FieldId::KoalaBear => &self.koala_dft,
            FieldId::BabyBear => &self.baby_dft,
        };
        any.downcast_ref().expect("field id matches its DFT")
    }
}

impl Backend for CpuBackend {
    const KIND: BackendKind = BackendKind::Cpu;

    fn probe() -> Result<Vec<DeviceInfo>, BackendError> {
        Ok(vec![host_info()])
    }

    fn open(ordinal: usize) -> Result<Self, BackendError> {
        if ordinal == 0 {
            Ok(Self::new())
        } else {
            Err(BackendError::UnknownDevice {
                backend: BackendKind::Cpu,
                device: format!("cpu:{ordinal}"),
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
        validate::lde(&mat, added_bits).map_err(BackendError::invalid)?;
        let _span = self.clock.span();
        // Radix2DitParallel produces the bit-reversed order natively; taking the view's
        // inner matrix is free.
        Ok(self
            .dft::<F>()
            .coset_lde_batch(mat, added_bits, shift)
            .bit_reverse_rows())
    }

    fn hash_rows<F: BackendField>(
        &self,
        input: &[F],
        out: &mut [Digest<F>],
    ) -> Result<(), BackendError> {
        let len = validate::hash_rows(input.len(), out.len()).map_err(BackendError::invalid)?;
        if len == 0 {
            return Ok(());
        }
        let _span = self.clock.span();
        let hasher = F::leaf_hasher();
        let lanes = F::Packing::WIDTH;
        let task = TASK_MESSAGES.div_ceil(lanes) * lanes;
        out.par_chunks_mut(task)
            .zip(input.par_chunks(task * len))
            .for_each(|(digests, messages)| {
                // Lane-interleaved copy of `lanes` messages: element j of lane l at
                // `j * lanes + l`, which reads as `len` packed values.
                let mut interleaved = vec![F::ZERO; len * lanes];
                let full = digests.len() / lanes * lanes;
                let (packed_out, rest_out) = digests.split_at_mut(full);
                for (group, group_out) in messages
                    .chunks_exact(len * lanes)
                    .zip(packed_out.chunks_exact_mut(lanes))
                {
                    for (lane, msg) in group.chunks_exact(len).enumerate() {
                        for (j, &x) in msg.iter().enumerate() {
                            interleaved[j * lanes + lane] = x;
                        }
                    }
                    let d: [F::Packing; DIGEST_ELEMS] =
                        hasher.hash_slice(F::Packing::pack_slice(&interleaved));
                    F::Packing::unpack_into(&d, group_out);
                }
                for (i, digest) in rest_out.iter_mut().enumerate() {
                    let start = (full + i) * len;
                    *digest = hasher.hash_slice(&messages[start..start + len]);
                }
            });
        Ok(())
    }

    fn compress_pairs<F: BackendField>(
        &self,
        input: &[[Digest<F>; 2]],
        out: &mut [Digest<F>],
    ) -> Result<(), BackendError> {
        validate::compress_pairs(input.len(), out.len()).map_err(BackendError::invalid)?;
        let _span = self.clock.span();
        let compressor = F::node_compressor();
        let lanes = F::Packing::WIDTH;
        let task = TASK_MESSAGES.div_ceil(lanes) * lanes;
        out.par_chunks_mut(task)
            .zip(input.par_chunks(task))
            .for_each(|(digests, pairs)| {
                let full = digests.len() / lanes * lanes;
                let (packed_out, rest_out) = digests.split_at_mut(full);
                for (group, group_out) in pairs
                    .chunks_exact(lanes)
                    .zip(packed_out.chunks_exact_mut(lanes))
                {
                    let left = F::Packing::pack_columns_fn::<DIGEST_ELEMS>(|lane| group[lane][0]);
                    let right = F::Packing::pack_columns_fn::<DIGEST_ELEMS>(|lane| group[lane][1]);
                    let d = compressor.compress([left, right]);
                    F::Packing::unpack_into(&d, group_out);
                }
                for (i, digest) in rest_out.iter_mut().enumerate() {
                    *digest = compressor.compress(pairs[full + i]);
                }
            });
        Ok(())
    }

    fn set_kernel_timing(&self, on: bool) -> bool {
        self.clock.set(on);
        true
    }

    fn take_kernel_time(&self) -> Result<Option<Duration>, BackendError> {
        Ok(self.clock.take())
    }
}

/// Describes the host CPU from `/proc` where available.
fn host_info() -> DeviceInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let name = field("model name")
        .or_else(|| field("Model"))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let vendor = field("vendor_id").unwrap_or_else(|| "unknown".into());
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    let compute_units = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    DeviceInfo {
        id: "cpu:0".into(),
        backend: BackendKind::Cpu,
        name,
        vendor,
        device_type: DeviceType::Cpu,
        memory_bytes,
        compute_units,
        fields: FieldId::ALL.to_vec(),
        driver: Some(format!(
            "rayon, {} threads",
            p3_maybe_rayon::prelude::current_num_threads()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_lists_one_device_and_open_rejects_others() {
        let devices = CpuBackend::probe().unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].id, "cpu:0");
        assert!(devices[0].compute_units >= 1);
        assert!(matches!(
            CpuBackend::open(1),
            Err(BackendError::UnknownDevice { available: 1, .. })
        ));
    }

    #[test]
    fn kernel_time_is_measured_only_when_turned_on() {
        let cpu = CpuBackend::new();
        let input = vec![KoalaBear::new(7); 16 * 1024];
        let mut out = vec![[KoalaBear::new(0); DIGEST_ELEMS]; 1024];
        cpu.hash_rows(&input, &mut out).unwrap();
        assert_eq!(cpu.take_kernel_time(), Ok(None));
        assert!(cpu.set_kernel_timing(true));
        assert_eq!(cpu.take_kernel_time(), Ok(Some(Duration::ZERO)));
        cpu.hash_rows(&input, &mut out).unwrap();
        let t = cpu.take_kernel_time().unwrap().unwrap();
        assert!(t > Duration::ZERO);
        // A clone shares the clock.
        cpu.clone().hash_rows(&input, &mut out).unwrap();
        assert!(cpu.take_kernel_time().unwrap().unwrap() > Duration::ZERO);
        cpu.set_kernel_timing(false);
        cpu.hash_rows(&input, &mut out).unwrap();
        assert_eq!(cpu.take_kernel_time(), Ok(None));
    }
}

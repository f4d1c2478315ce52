//! The wgpu backend: ProofBox's kernels as WGSL compute shaders, on any adapter wgpu
//! can drive (Vulkan, Metal, DX12; OpenGL with the `gles` feature).
//!
//! - Field arithmetic: 31-bit Montgomery form, exactly Plonky3's `MontyField31`
//!   representation, with the 64-bit products WGSL lacks built from 16-bit limbs
//!   (`firmware/wgsl/field.wgsl`).
//! - Coset LDE (`firmware/wgsl/ntt.wgsl`): inverse DFT by radix-2 decimation in
//!   frequency, a kernel that reorders, scales by `shift^k / height` and zero-pads, then
//!   the forward DFT by decimation in frequency, which leaves the rows in bit-reversed
//!   order. Twiddles and scale factors are computed on the host with Plonky3's field
//!   types.
//! - Merkle trees (`firmware/wgsl/poseidon2.wgsl`): Poseidon2 width-24 sponge over
//!   rows and width-16 truncated compression, with round constants and internal
//!   diagonals read from Plonky3 when the device is opened. Whole trees are built on
//!   the device layer by layer; [`Backend::lde_and_merkle_tree`] hashes the extension
//!   where the LDE left it.
//! - Resident matrices ([`proofbox_backend_api::ResidentBackend`], [`WgpuMatrix`]): the
//!   extension and every tree layer kept in storage buffers, rows and digests read on
//!   demand, the FRI opening reduction as a WGSL kernel; see `resident.rs`. A matrix
//!   beyond one storage binding is one buffer bound as several windows
//!   (`windows.rs`).
//! - Limits: buffers and dispatches are planned against [`KernelLimits`] (the device's
//!   own, or lower for testing): launches beyond the per-dimension workgroup limit
//!   become 2D and, if needed, several dispatches; buffers are planned by
//!   `proofbox_backend_api::planner` against the binding limit
//!   ([`WgpuBackend::limits`]): matrices beyond it are processed in column batches
//!   (LDE) or row batches (leaf hashing), trees whose layers exceed it are built layer
//!   by layer; what cannot be split is refused with [`BackendError::OutOfMemory`].
//! - Errors of a call (validation, out of memory, device lost) come back as that
//!   call's [`BackendError`], never as a process abort.
//! - Kernel time ([`Backend::take_kernel_time`]): where the adapter has
//!   `Features::TIMESTAMP_QUERY`, every compute pass writes a timestamp at its start and
//!   its end while timing is on; the time is the sum of the passes' spans (buffer
//!   copies between passes, uploads and readbacks excluded). Without the feature the
//!   backend says it does not measure kernel time.
//! - Transfers ([`Backend::transfer_stats`]): every `write_buffer` of the caller's
//!   data, every table written (twiddles, coset scale factors, Poseidon2 constants,
//!   parameter blocks) and every readback (one staging buffer mapped after one wait
//!   for the device) is counted, and every dispatch as a kernel launch; submissions
//!   themselves do not block the host.
//!
//! Devices are the adapters wgpu enumerates, in its order, as `wgpu:0`, `wgpu:1`, ...
//! `WGPU_BACKEND` (e.g. `vulkan`) restricts which APIs are enumerated.

mod compile;
mod gpu;
mod kept;
mod lde;
mod limits;
mod quotient;
mod record;
mod resident;
mod tables;
mod windows;

pub use resident::WgpuMatrix;

use std::time::Duration;

use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::planner::{
    self, Batches, DeviceLimits, Digests, FusedPlan, LdeShape, LeafHashing, PlanError, TreePlan,
};
use proofbox_backend_api::{
    Backend, BackendError, BackendField, BackendKind, DIGEST_ELEMS, DeviceInfo, DeviceType, Digest,
    FieldId, TransferCounters, readback, validate,
};

pub use gpu::KernelLimits;
use gpu::{FieldKernels, Gpu, Kernel, Recorder, Window};

/// Bytes of one digest on the device.
const DIGEST_BYTES: u64 = (DIGEST_ELEMS * 4) as u64;

/// One wgpu adapter as a ProofBox backend device.
pub struct WgpuBackend {
    info: DeviceInfo,
    adapter_info: wgpu::AdapterInfo,
    gpu: Gpu,
    /// The opening-reduction kernels, compiled on first use.
    reduce: compile::LazyFieldKernels,
    fold: compile::LazyFieldKernels,
    /// The quotient kernels, compiled on first use.
    quotient: compile::LazyFieldKernels,
    /// The last quotient call's table buffer (header, bytecode, table), kept so that
    /// the next call of the same program writes only its table; locked for the whole
    /// call.
    kept_quotient:
        std::sync::Mutex<Option<proofbox_backend_api::quotient::KeptQuotient<wgpu::Buffer>>>,
    /// Kernel variants for resident matrices bound as several windows.
    windowed: windows::WindowedKernels,
    /// The kept-quotient kernels, compiled on first use.
    kept: kept::KeptKernels,
}

impl core::fmt::Debug for WgpuBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WgpuBackend")
            .field("info", &self.info)
            .field("limits", &self.gpu.limits)
            .finish_non_exhaustive()
    }
}

impl WgpuBackend {
    /// What wgpu reports about the adapter.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.adapter_info
    }

    /// The limits the kernels currently plan against.
    pub fn kernel_limits(&self) -> KernelLimits {
        self.gpu.limits
    }

    /// The device's own limits.
    pub fn device_limits(&self) -> KernelLimits {
        self.gpu.device_limits
    }

    /// Plans against `limits` wherever they are lower than the device's (they can never
    /// be raised above them). Used to exercise the splitting paths on large devices.
    pub fn with_kernel_limits(mut self, limits: KernelLimits) -> Self {
        self.gpu.limits = self.gpu.device_limits.min(limits);
        self
    }

    fn digests<F: BackendField>(
        &self,
        kernel: &str,
        words: Vec<u32>,
    ) -> Result<Vec<Digest<F>>, BackendError> {
        readback::digests(&self.info.id, kernel, words)
    }

    fn max_storage(&self) -> u64 {
        // Word offsets in the kernels are 32-bit.
        self.gpu.limits.max_storage_bytes().min(u64::from(u32::MAX))
    }

    /// The limits calls are planned against: wgpu reports no device memory, so only
    /// the largest storage buffer the kernels may bind ([`KernelLimits`]) bounds them.
    pub fn limits(&self) -> DeviceLimits {
        DeviceLimits::from_device(None, Some(self.max_storage()))
    }

    fn unplanned(&self, e: PlanError) -> BackendError {
        e.out_of_memory(&self.info.id)
    }

    /// Records the leaf hashes of `rows` messages of `len` words (message `i` at word
    /// `i * len` of `msgs`) into digests `out_offset..` of `digests`.
    #[allow(clippy::too_many_arguments)]
    fn record_hash<'a>(
        rec: &mut Recorder<'a>,
        k: &'a FieldKernels,
        msgs: Messages<'a>,
        rows: usize,
        len: usize,
        digests: &'a wgpu::Buffer,
        states: &'a wgpu::Buffer,
        out_offset: usize,
    ) {
        // A pass of several dispatches, each absorbing at most SPONGE_BLOCKS_PER_DISPATCH
        // blocks of every message (see `hash_leaves` in poseidon2.wgsl).
        let blocks = len.div_ceil(RATE_WORDS);
        let mut first = 0;
        while first < blocks {
            let last = (first + SPONGE_BLOCKS_PER_DISPATCH).min(blocks);
            let params = [
                len as u32,
                0,
                out_offset as u32,
                first as u32,
                last as u32,
                u32::from(last == blocks),
            ];
            match &msgs {
                Messages::Whole(msgs) => rec.dispatch(
                    &k.hash,
                    vec![(0, &k.rc24), (2, msgs), (3, digests), (4, states)],
                    rows as u64,
                    params,
                ),
                Messages::Windows(hash, windows) => rec.dispatch_windowed(
                    hash,
                    vec![(0, &k.rc24), (3, digests), (4, states)],
                    windows.clone(),
                    rows as u64,
                    params,
                ),
            }
            first = last;
        }
    }

    /// Words of sponge state `hash_leaves` keeps per message between dispatches.
    const STATE_WORDS: usize = 24;
    /// Bytes of sponge state `hash_leaves` keeps per message between dispatches.
    const STATE_BYTES: u64 = Self::STATE_WORDS as u64 * 4;

    /// Records the compression layers of a tree whose `rows` leaf digests start
    /// `layers`; every layer follows the previous one.
    fn record_tree<'a>(
        rec: &mut Recorder<'a>,
        k: &'a FieldKernels,
        layers: &'a wgpu::Buffer,
        rows: usize,
    ) {
        let (mut cur, mut in_off, mut out_off) = (rows, 0usize, rows);
        while cur > 1 {
            let half = cur / 2;
            rec.dispatch(
                &k.compress,
                vec![(0, &k.rc16), (3, layers)],
                half as u64,
                [0, in_off as u32, out_off as u32, 0, 0, 0],
            );
            in_off = out_off;
            out_off += half;
            cur = half;
        }
    }

    /// Splits the words of all digest layers of a tree over `rows` leaves.
    fn split_layers<F: BackendField>(
        &self,
        words: Vec<u32>,
        rows: usize,
    ) -> Result<Vec<Vec<Digest<F>>>, BackendError> {
        readback::tree_layers(&self.info.id, words, rows)
    }

    /// The row batches of hashing `rows` messages of `len` words into a resident
    /// buffer of `digest_words`.
    fn plan_hash(
        &self,
        rows: usize,
        len: usize,
        digest_words: usize,
    ) -> Result<Batches, BackendError> {
        let job = LeafHashing {
            rows,
            len,
            state_words: Self::STATE_WORDS,
            digests: Digests::Resident {
                words: digest_words,
            },
        };
        planner::leaf_hashing(&self.limits(), &job).map_err(|e| self.unplanned(e))
    }

    /// Hashes the messages of `len` words in `words` into the first digests of
    /// `digests`, uploading the messages in the row batches `batches`.
    fn hash_into<F: BackendField>(
        &self,
        words: &[u32],
        len: usize,
        batches: &Batches,
        digests: &wgpu::Buffer,
    ) -> Result<(), BackendError> {
        let k = self.gpu.kernels(F::ID);
        let per_batch = batches.per_batch;
        let msgs = self.gpu.storage("messages", (per_batch * len) as u64 * 4)?;
        let states = self
            .gpu
            .storage("sponge states", per_batch as u64 * Self::STATE_BYTES)?;
        for rows in batches.ranges() {
            let (r0, r) = (rows.start, rows.len());
            // Ordered after the previous batch's submission on the queue.
            self.gpu.upload(&msgs, 0, &words[r0 * len..(r0 + r) * len]);
            let mut rec = Recorder::default();
            Self::record_hash(
                &mut rec,
                k,
                Messages::Whole(&msgs),
                r,
                len,
                digests,
                &states,
                r0,
            );
            self.gpu.submit(rec)?;
        }
        Ok(())
    }

    /// Digest layers of the tree over `rows` messages of `len` words, the leaves
    /// hashed in the row batches `leaf_batches`.
    fn tree_from_messages<F: BackendField>(
        &self,
        words: &[u32],
        rows: usize,
        len: usize,
        leaf_batches: &Batches,
    ) -> Result<Vec<Vec<Digest<F>>>, BackendError> {
        let k = self.gpu.kernels(F::ID);
        let layer_bytes = (2 * rows as u64 - 1) * DIGEST_BYTES;
        let layers = self.gpu.storage("digest layers", layer_bytes)?;
        self.hash_into::<F>(words, len, leaf_batches, &layers)?;
        let staging = self.gpu.staging(layer_bytes)?;
        let mut rec = Recorder::default();
        Self::record_tree(&mut rec, k, &layers, rows);
        rec.copy(&layers, 0, &staging, 0, layer_bytes);
        let index = self.gpu.submit(rec)?;
        let words = self.gpu.read(&staging, layer_bytes, index)?;
        self.split_layers::<F>(words, rows)
    }
}

/// The messages a leaf-hashing pass reads.
enum Messages<'a> {
    /// One buffer, bound whole to the field's `hash_leaves`.
    Whole(&'a wgpu::Buffer),
    /// A resident matrix's windows and the `hash_leaves` variant for them.
    Windows(&'a Kernel, Vec<Window<'a>>),
}

/// Words per sponge block (the rate of the width-24 leaf sponge).
const RATE_WORDS: usize = 16;
/// Blocks one `hash_leaves` dispatch absorbs per message: well below the iteration
/// caps some drivers put on one invocation's loops (llvmpipe: 65535 per loop).
const SPONGE_BLOCKS_PER_DISPATCH: usize = 32;

fn unavailable(reason: impl Into<String>) -> BackendError {
    BackendError::Unavailable {
        backend: BackendKind::Wgpu,
        reason: reason.into(),
    }
}

/// Every adapter wgpu finds over every API compiled in (or those `WGPU_BACKEND`
/// names), in enumeration order.
fn adapters() -> Result<Vec<wgpu::Adapter>, BackendError> {
    // `Instance::new` panics when no API is compiled in for the platform; that is an
    // unavailable backend, not a crash.
    let adapters = std::panic::catch_unwind(|| {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        pollster::block_on(instance.enumerate_adapters(backends))
    })
    .map_err(|_| unavailable("wgpu could not enumerate adapters on this platform"))?;
    if adapters.is_empty() {
        return Err(unavailable(
            "no wgpu adapter found (no Vulkan, Metal or DX12 driver or device)",
        ));
    }
    Ok(adapters)
}

/// Whether the kernels can run on an adapter.
fn supports_kernels(adapter: &wgpu::Adapter) -> bool {
    adapter
        .get_downlevel_capabilities()
        .flags
        .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        && adapter.limits().max_storage_buffers_per_shader_stage >= 3
}

fn vendor_name(id: u32) -> String {
    match id {
        0x10de => "NVIDIA".into(),
        0x1002 | 0x1022 => "AMD".into(),
        0x8086 => "Intel".into(),
        0x106b => "Apple".into(),
        0x13b5 => "ARM".into(),
        0x5143 => "Qualcomm".into(),
        0x1414 => "Microsoft".into(),
        0x10005 => "Mesa".into(),
        0 => "unknown".into(),
        other => format!("{other:#06x}"),
    }
}

fn describe(ordinal: usize, adapter: &wgpu::Adapter) -> DeviceInfo {
    let info = adapter.get_info();
    let driver = if info.driver_info.is_empty() {
        info.driver.clone()
    } else {
        format!("{} ({})", info.driver, info.driver_info)
    };
    DeviceInfo {
        id: format!("wgpu:{ordinal}"),
        backend: BackendKind::Wgpu,
        name: info.name.clone(),
        vendor: vendor_name(info.vendor),
        device_type: match info.device_type {
            wgpu::DeviceType::DiscreteGpu
            | wgpu::DeviceType::IntegratedGpu
            | wgpu::DeviceType::VirtualGpu => DeviceType::Gpu,
            wgpu::DeviceType::Cpu => DeviceType::Cpu,
            wgpu::DeviceType::Other => DeviceType::Other,
        },
        // wgpu does not report device memory.
        memory_bytes: 0,
        // Nor compute units.
        compute_units: 0,
        fields: if supports_kernels(adapter) {
            FieldId::ALL.to_vec()
        } else {
            Vec::new()
        },
        driver: Some(format!(
            "{:?} {:?}, driver {}",
            info.backend, info.device_type, driver
        )),
    }
}

impl Backend for WgpuBackend {
    const KIND: BackendKind = BackendKind::Wgpu;

    fn probe() -> Result<Vec<DeviceInfo>, BackendError> {
        Ok(adapters()?
            .iter()
            .enumerate()
            .map(|(i, a)| describe(i, a))
            .collect())
    }

    fn open(ordinal: usize) -> Result<Self, BackendError> {
        let adapters = adapters()?;
        let available = adapters.len();
        let adapter =
            adapters
                .into_iter()
                .nth(ordinal)
                .ok_or_else(|| BackendError::UnknownDevice {
                    backend: BackendKind::Wgpu,
                    device: format!("wgpu:{ordinal}"),
                    available,
                })?;
        let info = describe(ordinal, &adapter);
        if info.fields.is_empty() {
            return Err(unavailable(format!(
                "{} ({}) cannot run compute kernels",
                info.id, info.name
            )));
        }
        let gpu = Gpu::new(&adapter, info.id.clone())?;
        Ok(Self {
            info,
            adapter_info: adapter.get_info(),
            gpu,
            reduce: Default::default(),
            fold: Default::default(),
            quotient: Default::default(),
            kept_quotient: Default::default(),
            kept: Default::default(),
            windowed: Default::default(),
        })
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
        let words = self
            .gpu
            .scoped("coset_lde", || self.lde_words(&mat, added_bits, shift))?;
        let values = readback::elems(&self.info.id, "coset_lde", words)?;
        Ok(RowMajorMatrix::new(values, mat.width))
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
        let rows = out.len();
        let batches = self.plan_hash(rows, len, rows * DIGEST_ELEMS)?;
        batches.log(&self.info.id, "hash_rows", "rows");
        let words = self.gpu.scoped("hash_rows", || {
            let bytes = rows as u64 * DIGEST_BYTES;
            let digests = self.gpu.storage("digests", bytes)?;
            self.hash_into::<F>(F::as_monty_words(input), len, &batches, &digests)?;
            let staging = self.gpu.staging(bytes)?;
            let mut rec = Recorder::default();
            rec.copy(&digests, 0, &staging, 0, bytes);
            let index = self.gpu.submit(rec)?;
            self.gpu.read(&staging, bytes, index)
        })?;
        out.copy_from_slice(&self.digests::<F>("hash_rows", words)?);
        Ok(())
    }

    fn compress_pairs<F: BackendField>(
        &self,
        input: &[[Digest<F>; 2]],
        out: &mut [Digest<F>],
    ) -> Result<(), BackendError> {
        validate::compress_pairs(input.len(), out.len()).map_err(BackendError::invalid)?;
        if input.is_empty() {
            return Ok(());
        }
        let k = self.gpu.kernels(F::ID);
        let batches =
            planner::pair_batches(&self.limits(), input.len()).map_err(|e| self.unplanned(e))?;
        batches.log(&self.info.id, "compress_pairs", "pairs");
        let per_batch = batches.per_batch;
        for (pairs, outs) in input.chunks(per_batch).zip(out.chunks_mut(per_batch)) {
            let c = pairs.len();
            let words = self.gpu.scoped("compress_pairs", || {
                let buf = self.gpu.storage("pairs", 3 * c as u64 * DIGEST_BYTES)?;
                self.gpu.upload(
                    &buf,
                    0,
                    F::as_monty_words(pairs.as_flattened().as_flattened()),
                );
                let bytes = c as u64 * DIGEST_BYTES;
                let staging = self.gpu.staging(bytes)?;
                let mut rec = Recorder::default();
                rec.dispatch(
                    &k.compress,
                    vec![(0, &k.rc16), (3, &buf)],
                    c as u64,
                    [0, 0, 2 * c as u32, 0, 0, 0],
                );
                rec.copy(&buf, 2 * bytes, &staging, 0, bytes);
                let index = self.gpu.submit(rec)?;
                self.gpu.read(&staging, bytes, index)
            })?;
            outs.copy_from_slice(&self.digests::<F>("compress_pairs", words)?);
        }
        Ok(())
    }

    fn merkle_tree<F: BackendField>(
        &self,
        leaves: &[&RowMajorMatrix<F>],
    ) -> Result<Vec<Vec<Digest<F>>>, BackendError> {
        let rows = validate::merkle_leaves(leaves).map_err(BackendError::invalid)?;
        let len: usize = leaves.iter().map(|m| m.width).sum();
        let mut messages: Vec<F>;
        let elems: &[F] = if let [only] = leaves {
            &only.values[..rows * len]
        } else {
            messages = Vec::with_capacity(rows * len);
            for row in 0..rows {
                for m in leaves {
                    messages.extend_from_slice(&m.values[row * m.width..(row + 1) * m.width]);
                }
            }
            &messages
        };
        let leaf_batches = match planner::tree(&self.limits(), rows, len, Self::STATE_WORDS) {
            Ok(TreePlan::Resident { leaf_batches }) => leaf_batches,
            Ok(TreePlan::ByLayers(fallback)) => {
                fallback.log(&self.info.id, "merkle_tree");
                let mut layer = vec![[F::ZERO; DIGEST_ELEMS]; rows];
                self.hash_rows(elems, &mut layer)?;
                return self.compress_to_root(layer);
            }
            Err(e) => return Err(self.unplanned(e)),
        };
        leaf_batches.log(&self.info.id, "merkle_tree", "rows");
        let words = F::as_monty_words(elems);
        self.gpu.scoped("merkle_tree", || {
            self.tree_from_messages::<F>(words, rows, len, &leaf_batches)
        })
    }

    fn lde_and_merkle_tree<F: BackendField>(
        &self,
        mat: RowMajorMatrix<F>,
        added_bits: usize,
        shift: F,
    ) -> Result<(RowMajorMatrix<F>, Vec<Vec<Digest<F>>>), BackendError> {
        validate::lde(&mat, added_bits).map_err(BackendError::invalid)?;
        let (h, w) = (mat.height(), mat.width);
        let log_h = h.trailing_zeros() as usize;
        let log_n = log_h + added_bits;
        let n = 1usize << log_n;
        let lde_bytes = n as u64 * w as u64 * 4;
        let layer_bytes = (2 * n as u64 - 1) * DIGEST_BYTES;
        let state_bytes = n as u64 * Self::STATE_BYTES;
        let shape = LdeShape {
            log_h,
            added_bits,
            width: w,
        };
        if let FusedPlan::Separate(fallback) =
            planner::lde_and_tree(&self.limits(), &shape, Self::STATE_WORDS)
        {
            // The extension does not fit one binding: column batches, then the tree
            // over the assembled rows (uploaded again, in row batches).
            fallback.log(&self.info.id, "lde_and_merkle_tree");
            let lde = self.coset_lde_batch(mat, added_bits, shift)?;
            let layers = self.merkle_tree(&[&lde])?;
            return Ok((lde, layers));
        }
        let words = self.gpu.scoped("lde_and_merkle_tree", || {
            let k = self.gpu.kernels(F::ID);
            let b = self.prepare_lde(F::as_monty_words(&mat.values), log_h, log_n, w, shift)?;
            let layers = self.gpu.storage("digest layers", layer_bytes)?;
            let states = self.gpu.storage("sponge states", state_bytes)?;
            let staging = self.gpu.staging(lde_bytes + layer_bytes)?;
            let mut rec = Recorder::default();
            Self::record_lde(&mut rec, k, &b, log_h, log_n, w);
            Self::record_hash(
                &mut rec,
                k,
                Messages::Whole(&b.dst),
                n,
                w,
                &layers,
                &states,
                0,
            );
            Self::record_tree(&mut rec, k, &layers, n);
            rec.copy(&b.dst, 0, &staging, 0, lde_bytes);
            rec.copy(&layers, 0, &staging, lde_bytes, layer_bytes);
            let index = self.gpu.submit(rec)?;
            self.gpu.read(&staging, lde_bytes + layer_bytes, index)
        })?;
        let mut lde_words = words;
        let layer_words = lde_words.split_off(n * w);
        let values = readback::elems(&self.info.id, "lde_and_merkle_tree", lde_words)?;
        let layers = self.split_layers::<F>(layer_words, n)?;
        Ok((RowMajorMatrix::new(values, w), layers))
    }

    fn set_kernel_timing(&self, on: bool) -> bool {
        self.gpu.set_kernel_timing(on)
    }

    fn device_limits(&self) -> Result<DeviceLimits, BackendError> {
        Ok(self.limits())
    }

    fn transfer_counters(&self) -> Option<&TransferCounters> {
        Some(&self.gpu.counters)
    }

    fn take_kernel_time(&self) -> Result<Option<Duration>, BackendError> {
        if !self.gpu.clock.is_on() {
            return Ok(None);
        }
        self.gpu.scoped("kernel timing", || {
            self.gpu.collect_kernel_time()?;
            Ok(self.gpu.clock.take())
        })
    }
}

#[cfg(test)]
mod tests {
    use p3_field::PrimeCharacteristicRing;
    use p3_koala_bear::KoalaBear;
    use p3_symmetric::CryptographicHasher;

    use super::*;

    /// A wgpu validation error inside a call comes back as that call's `Kernel` error,
    /// not as a panic, and the device stays usable.
    #[test]
    fn validation_errors_become_kernel_errors() {
        let Ok(b) = WgpuBackend::open(0) else {
            proofbox_conformance::skip("no wgpu adapter");
            return;
        };
        let too_big = b.gpu.device.limits().max_buffer_size.saturating_add(4);
        let result = b.gpu.scoped("oversized buffer", || {
            let _buffer = b.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: too_big,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            Ok(())
        });
        assert!(
            matches!(&result, Err(BackendError::Kernel { kernel, .. }) if kernel == "oversized buffer"),
            "{result:?}"
        );
        let mut out = [[KoalaBear::ZERO; DIGEST_ELEMS]; 2];
        b.hash_rows(&[KoalaBear::ONE; 6], &mut out).unwrap();
        let hasher = KoalaBear::leaf_hasher();
        assert_eq!(out[0], hasher.hash_slice(&[KoalaBear::ONE; 3]));
    }
}

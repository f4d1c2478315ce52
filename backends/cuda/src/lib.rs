//! The CUDA backend: ProofBox's kernels as CUDA C (`firmware/cuda/`), compiled with
//! NVRTC at run time for the GPU's architecture, on every NVIDIA GPU the driver shows.
//!
//! **Status: not yet run on a GPU.** The kernels compile to PTX in CI (the
//! `kernels_compile_to_ptx` test) and discovery without a driver is tested; the
//! conformance suite, the resident suite and full proofs have still to be run on an
//! NVIDIA GPU.
//!
//! - Discovery: the driver (`libcuda.so`) and NVRTC (`libnvrtc.so`) are loaded at run
//!   time through cudarc's dynamic loading, so the crate builds and its tests run
//!   without the CUDA toolkit. No driver, no GPU, or no NVRTC is
//!   [`BackendError::Unavailable`] with the reason, never a panic. Devices are
//!   `cuda:0`, `cuda:1`, ... in the driver's order.
//! - Kernels ([`kernels`]): one PTX module per field, compiled for `compute_XY` of the
//!   device (or the newest architecture NVRTC knows below it) and cached on disk under
//!   `$XDG_CACHE_HOME/proofbox/cuda/`, keyed by a hash of the source, the options and
//!   the NVRTC version. Field and Poseidon2 constants are generated from Plonky3's own
//!   constants (the private `tables` module) into the module's prelude.
//! - Coset LDE: inverse DFT (radix-2 decimation in frequency, several stages per
//!   launch in shared memory), one kernel that un-reverses, scales by `shift^k / h`,
//!   zero-pads and performs the first `added_bits` stages of the forward DFT, then the
//!   remaining forward stages; the rows come out bit-reversed. Twiddles are computed
//!   on the host with Plonky3's field types and cached on the device.
//! - Merkle trees: one thread per leaf runs the width-24 sponge, one thread per node
//!   the width-16 compression, layer after layer in one device buffer.
//!   [`Backend::lde_and_merkle_tree`] hashes the extension where the LDE left it.
//! - Device-resident matrices ([`resident`]): [`CudaMatrix`] keeps the values and
//!   every tree layer in device memory for
//!   [`proofbox_backend_api::ResidentBackend`]; the FRI opening reduction is the
//!   `reduce_openings` kernel (`firmware/cuda/reduce.cu`).
//! - Transfers go through two pinned host buffers in turn, so the copy into or out of
//!   pinned memory overlaps the DMA of the previous chunk; all work of a call runs in
//!   order on the backend's stream.
//! - Memory: work is planned by `proofbox_backend_api::planner` against 90 % of the
//!   device's free memory ([`CudaBackend::limits`]). An LDE too large for it runs in
//!   column batches, leaf hashing in row batches, a tree whose layers do not fit is
//!   built layer by layer through the host; what cannot be split is
//!   [`BackendError::OutOfMemory`]. Faults that end the context (illegal address,
//!   launch failure, ECC) are [`BackendError::DeviceLost`]; other driver errors are
//!   [`BackendError::Kernel`] naming the step.
//! - Kernel time ([`Backend::take_kernel_time`]): while timing is on, every kernel
//!   launch records a CUDA event before and after it on the stream; the time is the
//!   sum of the pairs' elapsed times (launches on one stream never overlap). Transfers
//!   are not part of it.
//! - Transfers ([`Backend::transfer_stats`]): every `memcpy` to or from the device
//!   (each pinned chunk its own copy; the twiddle and coset-scale tables counted as
//!   tables) and every wait of the host: stream synchronisations, the wait for a
//!   pinned buffer's last copy, and copies into pageable host memory, which return
//!   only once complete; every kernel launch.

mod device;
mod discovery;
mod kept;
pub mod kernels;
pub mod resident;
mod tables;

pub use resident::CudaMatrix;

use discovery::{describe, describe_error, device_count, guarded, is_sticky, unavailable};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cudarc::driver::{
    CudaContext, CudaEvent, CudaFunction, CudaModule, CudaSlice, CudaStream, DriverError,
    LaunchArgs, LaunchConfig, PinnedHostSlice, sys,
};
use cudarc::nvrtc::Ptx;
use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::planner::{
    self, DeviceLimits, Digests, FusedPlan, LdeShape, LeafHashing, PlanError, TreePlan,
};
use proofbox_backend_api::quotient::KeptQuotient;
use proofbox_backend_api::{
    Backend, BackendError, BackendField, BackendKind, DIGEST_ELEMS, DeviceInfo, Digest, FieldId,
    KernelClock, TransferCounters, validate,
};

/// Words of one digest.
const DIGEST_WORDS: usize = DIGEST_ELEMS;
/// Words of one pinned transfer buffer (8 MiB).
const CHUNK_WORDS: usize = 1 << 21;
/// Words of the shared-memory tile of one `dif_stages` block (32 KiB, under the 48 KiB
/// every architecture grants without opting in).
const TILE_WORDS: usize = 1 << 13;
/// Most DIF stages one `dif_stages` launch runs.
const MAX_TILE_STAGES: usize = 11;
/// Threads per block of the element-wise and hashing kernels.
const BLOCK: u32 = 256;
/// Launch event pairs held before their times are collected (which waits for them).
const MAX_PENDING_EVENTS: usize = 4096;

/// Device twiddle tables by (field, log2 size, inverse).
type TwiddleCache = HashMap<(FieldId, usize, bool), Arc<CudaSlice<u32>>>;
/// The two pinned transfer buffers, once allocated (`None`: plain copies).
type Pinned = Option<[PinnedHostSlice<u32>; 2]>;

/// One NVIDIA GPU as a ProofBox backend device.
pub struct CudaBackend {
    info: DeviceInfo,
    /// Compute capability as `10 * major + minor`.
    compute_capability: u32,
    sm_count: u32,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    modules: [OnceLock<Result<Kernels, BackendError>>; 2],
    twiddles: Mutex<TwiddleCache>,
    /// Serialises calls: they share the stream and the pinned buffers.
    call: Mutex<Pinned>,
    /// The last quotient call's allocation (header, bytecode, table), kept so that the
    /// next call of the same program writes only its table; taken under `call`.
    kept_quotient: Mutex<Option<KeptQuotient<CudaSlice<u32>>>>,
    /// Kernel time read from launch events.
    clock: KernelClock,
    /// The start and end events of the launches since the clock was last read.
    launched: Mutex<Vec<(CudaEvent, CudaEvent)>>,
    /// Copies and waits (see `proofbox_backend_api::transfer`).
    transfers: TransferCounters,
}

impl core::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CudaBackend")
            .field("info", &self.info)
            .field("compute_capability", &self.compute_capability)
            .finish_non_exhaustive()
    }
}

/// One field's loaded module.
pub(crate) struct Kernels {
    _module: Arc<CudaModule>,
    hash_leaves: CudaFunction,
    compress_pairs: CudaFunction,
    dif_stages: CudaFunction,
    lde_expand: CudaFunction,
    reduce_openings: CudaFunction,
    eval_quotient: CudaFunction,
    gather_words: CudaFunction,
    fri_fold: CudaFunction,
    lde_expand_groups: CudaFunction,
    interp_weights: CudaFunction,
    interp_partials: CudaFunction,
    interp_finish: CudaFunction,
}

/// Grid size for a grid-stride kernel over `items` work items of `per_block` each.
fn grid(items: u64, per_block: u32, sm_count: u32) -> u32 {
    let blocks = items.div_ceil(u64::from(per_block)).max(1);
    blocks.min(u64::from(sm_count) * 32).min(i32::MAX as u64) as u32
}

/// The launch of a one-dimensional grid-stride kernel over `items` work items
/// (`BLOCK` threads a block, no shared memory).
fn stride_config(items: u64, sm_count: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (grid(items, BLOCK, sm_count), 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

impl CudaBackend {
    /// The device's compute capability as `10 * major + minor` (e.g. 90).
    pub fn compute_capability(&self) -> u32 {
        self.compute_capability
    }

    fn kernel_error(&self, kernel: &str, e: DriverError) -> BackendError {
        if e.0 == sys::cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY {
            let available = self.free_bytes().unwrap_or(0) as u64;
            return BackendError::OutOfMemory {
                device: self.info.id.clone(),
                needed_bytes: 0,
                available_bytes: available,
            };
        }
        if is_sticky(&e) {
            return BackendError::DeviceLost {
                device: self.info.id.clone(),
                reason: format!("{kernel}: {}", describe_error(&e)),
            };
        }
        BackendError::Kernel {
            device: self.info.id.clone(),
            kernel: kernel.into(),
            message: describe_error(&e),
        }
    }

    fn oom(&self, needed_bytes: u64) -> BackendError {
        BackendError::OutOfMemory {
            device: self.info.id.clone(),
            needed_bytes,
            available_bytes: self.free_bytes().unwrap_or(0) as u64,
        }
    }

    fn free_bytes(&self) -> Result<usize, DriverError> {
        self.ctx.mem_get_info().map(|(free, _total)| free)
    }

    /// The limits this call is planned against: a share of the free device memory;
    /// CUDA has no single-allocation limit below it.
    pub fn limits(&self) -> Result<DeviceLimits, BackendError> {
        let free = self
            .free_bytes()
            .map_err(|e| self.kernel_error("cuMemGetInfo", e))?;
        Ok(DeviceLimits::from_device(Some(free as u64), None))
    }

    /// A plan that cannot fit, as out of memory with the device's free memory.
    fn unplanned(&self, e: PlanError) -> BackendError {
        self.oom(e.needed_words as u64 * 4)
    }

    /// Allocates `len` words, reporting an allocation failure as out of memory.
    fn alloc(&self, len: usize) -> Result<CudaSlice<u32>, BackendError> {
        // SAFETY: every buffer is written by a copy or a kernel before it is read.
        unsafe { self.stream.alloc::<u32>(len.max(1)) }.map_err(|e| {
            if e.0 == sys::cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY {
                self.oom(len as u64 * 4)
            } else {
                self.kernel_error("cuMemAlloc", e)
            }
        })
    }

    /// The loaded module of a field, compiled (or read from the cache) on first use.
    fn kernels(&self, field: FieldId) -> Result<&Kernels, BackendError> {
        let slot = match field {
            FieldId::KoalaBear => &self.modules[0],
            FieldId::BabyBear => &self.modules[1],
        };
        slot.get_or_init(|| self.load_kernels(field))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn load_kernels(&self, field: FieldId) -> Result<Kernels, BackendError> {
        let build_error = |message: String| BackendError::Kernel {
            device: self.info.id.clone(),
            kernel: format!("{field} module"),
            message,
        };
        let supported = kernels::supported_archs();
        let arch = kernels::target_arch(self.compute_capability, &supported).ok_or_else(|| {
            build_error(format!(
                "NVRTC supports none of the architectures up to compute_{} ({supported:?})",
                self.compute_capability
            ))
        })?;
        let ptx = kernels::cached_ptx(field, arch).map_err(build_error)?;
        let module = self
            .ctx
            .load_module(Ptx::from_src(ptx))
            .map_err(|e| self.kernel_error(&format!("{field} module load"), e))?;
        let f = |name: &str| {
            module
                .load_function(name)
                .map_err(|e| self.kernel_error(name, e))
        };
        Ok(Kernels {
            hash_leaves: f("hash_leaves")?,
            compress_pairs: f("compress_pairs")?,
            dif_stages: f("dif_stages")?,
            lde_expand: f("lde_expand")?,
            reduce_openings: f("reduce_openings")?,
            eval_quotient: f("eval_quotient")?,
            gather_words: f("gather_words")?,
            fri_fold: f("fri_fold")?,
            lde_expand_groups: f("lde_expand_groups")?,
            interp_weights: f("interp_weights")?,
            interp_partials: f("interp_partials")?,
            interp_finish: f("interp_finish")?,
            _module: module,
        })
    }

    /// A twiddle table on the device, cached per (field, size, direction).
    fn twiddles<F: BackendField>(
        &self,
        log_n: usize,
        inverse: bool,
    ) -> Result<Arc<CudaSlice<u32>>, BackendError> {
        let key = (F::ID, log_n, inverse);
        if let Some(t) = self.twiddles.lock().expect("twiddle cache").get(&key) {
            return Ok(t.clone());
        }
        let words = tables::twiddles::<F>(log_n, inverse);
        let mut buf = self.alloc(words.len())?;
        self.stream
            .memcpy_htod(&words, &mut buf)
            .map_err(|e| self.kernel_error("twiddle upload", e))?;
        self.transfers.table_to_device(words.len() as u64 * 4);
        let buf = Arc::new(buf);
        self.twiddles
            .lock()
            .expect("twiddle cache")
            .insert(key, buf.clone());
        Ok(buf)
    }

    /// Copies `src` to the start of `dst` through the pinned buffers (full chunks) or
    /// directly (the last partial chunk, or when pinned memory is unavailable).
    fn upload(
        &self,
        pinned: &mut Pinned,
        src: &[u32],
        dst: &mut CudaSlice<u32>,
    ) -> Result<(), BackendError> {
        let err = |e| self.kernel_error("host to device copy", e);
        let mut done = 0;
        if let Some(bufs) = pinned.as_mut() {
            for (i, chunk) in src.chunks_exact(CHUNK_WORDS).enumerate() {
                let buf = &mut bufs[i % 2];
                // Waits until the DMA that last read this buffer has finished.
                buf.as_mut_slice().map_err(err)?.copy_from_slice(chunk);
                self.transfers.sync_wait();
                let mut view = dst.slice_mut(done..done + CHUNK_WORDS);
                self.stream.memcpy_htod(&*buf, &mut view).map_err(err)?;
                self.transfers.host_to_device(CHUNK_WORDS as u64 * 4);
                done += CHUNK_WORDS;
            }
        }
        if done < src.len() {
            let mut view = dst.slice_mut(done..src.len());
            self.stream
                .memcpy_htod(&src[done..], &mut view)
                .map_err(err)?;
            self.transfers.host_to_device((src.len() - done) as u64 * 4);
        }
        Ok(())
    }

    /// Copies the first `dst.len()` words of `src` to `dst` through the pinned buffers,
    /// copying chunk `i - 1` out while chunk `i` is in flight.
    fn download(
        &self,
        pinned: &mut Pinned,
        src: &CudaSlice<u32>,
        dst: &mut [u32],
    ) -> Result<(), BackendError> {
        let err = |e| self.kernel_error("device to host copy", e);
        let Some(bufs) = pinned.as_mut() else {
            self.stream
                .memcpy_dtoh(&src.slice(..dst.len()), dst)
                .map_err(err)?;
            // A copy into pageable memory returns once complete, then the stream.
            self.transfers.device_to_host(dst.len() as u64 * 4);
            self.transfers.sync_wait();
            self.stream.synchronize().map_err(err)?;
            self.transfers.sync_wait();
            return Ok(());
        };
        let chunks: Vec<(usize, usize)> = (0..dst.len())
            .step_by(CHUNK_WORDS)
            .map(|a| (a, CHUNK_WORDS.min(dst.len() - a)))
            .collect();
        for (i, &(at, len)) in chunks.iter().enumerate() {
            self.stream
                .memcpy_dtoh(&src.slice(at..at + len), &mut bufs[i % 2])
                .map_err(err)?;
            self.transfers.device_to_host(len as u64 * 4);
            if i > 0 {
                let (pat, plen) = chunks[i - 1];
                // Waits for the previous chunk's copy.
                let prev = bufs[(i - 1) % 2].as_slice().map_err(err)?;
                self.transfers.sync_wait();
                dst[pat..pat + plen].copy_from_slice(&prev[..plen]);
            }
        }
        if let Some(&(at, len)) = chunks.last() {
            let last = bufs[(chunks.len() - 1) % 2].as_slice().map_err(err)?;
            self.transfers.sync_wait();
            dst[at..at + len].copy_from_slice(&last[..len]);
        }
        Ok(())
    }

    /// The pinned buffers, allocated on first use; `None` (plain copies) if the driver
    /// refuses them.
    fn pinned<'a>(&self, slot: &'a mut Pinned) -> &'a mut Pinned {
        if slot.is_none() {
            // SAFETY: the buffers are only read after a copy has filled them.
            let alloc = || unsafe { self.ctx.alloc_pinned_with_flags::<u32>(CHUNK_WORDS, 0) };
            if let (Ok(a), Ok(b)) = (alloc(), alloc()) {
                *slot = Some([a, b]);
            }
        }
        slot
    }

    /// Launches a kernel, recording events around it while kernel timing is on.
    ///
    /// # Safety
    /// As [`LaunchArgs::launch`]: the arguments match the kernel's signature and every
    /// index the kernel forms lies within its buffers.
    unsafe fn launch(
        &self,
        launch: &mut LaunchArgs<'_>,
        cfg: LaunchConfig,
        name: &str,
    ) -> Result<(), BackendError> {
        if self.clock.is_on() {
            launch.record_kernel_launch(sys::CUevent_flags::CU_EVENT_DEFAULT);
        }
        // SAFETY: the caller's guarantee.
        let events = unsafe { launch.launch(cfg) }.map_err(|e| self.kernel_error(name, e))?;
        self.transfers.kernel_launch();
        if let Some(pair) = events {
            let pending = {
                let mut launched = self.launched.lock().unwrap_or_else(|e| e.into_inner());
                launched.push(pair);
                launched.len()
            };
            if pending >= MAX_PENDING_EVENTS {
                self.collect_kernel_time()?;
            }
        }
        Ok(())
    }

    /// Adds the elapsed time of every launch recorded since the last call to the
    /// clock (waiting for each). The caller holds `call`.
    fn collect_kernel_time(&self) -> Result<(), BackendError> {
        let launched =
            core::mem::take(&mut *self.launched.lock().unwrap_or_else(|e| e.into_inner()));
        let mut total_ms = 0f64;
        for (start, end) in &launched {
            total_ms += f64::from(
                start
                    .elapsed_ms(end)
                    .map_err(|e| self.kernel_error("kernel timing", e))?,
            );
        }
        self.clock
            .add(Duration::from_nanos((total_ms * 1e6).round() as u64));
        Ok(())
    }
}

impl Backend for CudaBackend {
    const KIND: BackendKind = BackendKind::Cuda;

    fn probe() -> Result<Vec<DeviceInfo>, BackendError> {
        let (count, driver) = device_count()?;
        let nvrtc = kernels::nvrtc_status().ok();
        (0..count)
            .map(|i| {
                describe(i, &driver, nvrtc)
                    .map(|(info, _, _)| info)
                    .map_err(unavailable)
            })
            .collect()
    }

    fn open(ordinal: usize) -> Result<Self, BackendError> {
        let (count, driver) = device_count()?;
        if ordinal >= count {
            return Err(BackendError::UnknownDevice {
                backend: BackendKind::Cuda,
                device: format!("cuda:{ordinal}"),
                available: count,
            });
        }
        let nvrtc = kernels::nvrtc_status()
            .map_err(|r| unavailable(format!("cannot compile kernels: {r}")))?;
        let (info, compute_capability, sm_count) =
            describe(ordinal, &driver, Some(nvrtc)).map_err(unavailable)?;
        let (ctx, stream) = guarded("context", || {
            let ctx = CudaContext::new(ordinal)?;
            let stream = ctx.new_stream()?;
            Ok((ctx, stream))
        })
        .map_err(unavailable)?;
        Ok(Self {
            info,
            compute_capability,
            sm_count,
            ctx,
            stream,
            modules: [OnceLock::new(), OnceLock::new()],
            twiddles: Mutex::new(HashMap::new()),
            call: Mutex::new(None),
            kept_quotient: Mutex::new(None),
            clock: KernelClock::new(),
            launched: Mutex::new(Vec::new()),
            transfers: TransferCounters::new(),
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
        let k = self.kernels(F::ID)?;
        let mut guard = self.call.lock().expect("call lock");
        let pinned = self.pinned(&mut guard);
        let (h, w) = (mat.height(), mat.width);
        let log_h = h.trailing_zeros() as usize;
        let n = h << added_bits;
        let words = F::as_monty_words(&mat.values);
        let shape = LdeShape {
            log_h,
            added_bits,
            width: w,
        };
        let batches = planner::lde(&self.limits()?, &shape).map_err(|e| self.unplanned(e))?;
        batches.log(&self.info.id, "coset_lde_batch", "columns");
        let out = planner::run_column_batches(words, &batches, n, |sub, cb| {
            self.lde_batch(pinned, k, sub, log_h, added_bits, cb, shift)
        })?;
        self.check("coset_lde_batch")?;
        Ok(RowMajorMatrix::new(
            self.to_elems("coset_lde_batch", out)?,
            w,
        ))
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
        let k = self.kernels(F::ID)?;
        let mut guard = self.call.lock().expect("call lock");
        let pinned = self.pinned(&mut guard);
        let rows = out.len();
        let job = LeafHashing {
            rows,
            len,
            state_words: 0,
            digests: Digests::Resident {
                words: rows * DIGEST_WORDS,
            },
        };
        let batches =
            planner::leaf_hashing(&self.limits()?, &job).map_err(|e| self.unplanned(e))?;
        batches.log(&self.info.id, "hash_rows", "rows");
        let mut digests = self.alloc(rows * DIGEST_WORDS)?;
        self.hash_from_host(
            pinned,
            k,
            F::as_monty_words(input),
            len,
            &mut digests,
            &batches,
        )?;
        let mut words = vec![0u32; rows * DIGEST_WORDS];
        self.download(pinned, &digests, &mut words)?;
        self.check("hash_rows")?;
        let elems = self.to_elems::<F>("hash_rows", words)?;
        out.as_flattened_mut().copy_from_slice(&elems);
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
        let k = self.kernels(F::ID)?;
        let mut guard = self.call.lock().expect("call lock");
        let pinned = self.pinned(&mut guard);
        let batches =
            planner::pair_batches(&self.limits()?, input.len()).map_err(|e| self.unplanned(e))?;
        batches.log(&self.info.id, "compress_pairs", "pairs");
        let per_batch = batches.per_batch;
        let mut buf = self.alloc(3 * per_batch * DIGEST_WORDS)?;
        let mut words = vec![0u32; per_batch * DIGEST_WORDS];
        for (pairs, outs) in input.chunks(per_batch).zip(out.chunks_mut(per_batch)) {
            let c = pairs.len();
            self.upload(
                pinned,
                F::as_monty_words(pairs.as_flattened().as_flattened()),
                &mut buf,
            )?;
            self.compress_on_device(k, &mut buf, 0, 2 * c, c)?;
            let results = buf.slice(2 * c * DIGEST_WORDS..3 * c * DIGEST_WORDS);
            self.stream
                .memcpy_dtoh(&results, &mut words[..c * DIGEST_WORDS])
                .map_err(|e| self.kernel_error("device to host copy", e))?;
            // Into pageable memory: returns once complete.
            self.transfers.device_to_host((c * DIGEST_WORDS * 4) as u64);
            self.transfers.sync_wait();
            self.check("compress_pairs")?;
            let elems = self.to_elems::<F>("compress_pairs", words[..c * DIGEST_WORDS].to_vec())?;
            outs.as_flattened_mut().copy_from_slice(&elems);
        }
        Ok(())
    }

    fn merkle_tree<F: BackendField>(
        &self,
        leaves: &[&RowMajorMatrix<F>],
    ) -> Result<Vec<Vec<Digest<F>>>, BackendError> {
        let rows = validate::merkle_leaves(leaves).map_err(BackendError::invalid)?;
        let len: usize = leaves.iter().map(|m| m.width).sum();
        let messages: Vec<F>;
        let elems: &[F] = if let [only] = leaves {
            &only.values[..rows * len]
        } else {
            let mut m = Vec::with_capacity(rows * len);
            for row in 0..rows {
                for mat in leaves {
                    m.extend_from_slice(&mat.values[row * mat.width..(row + 1) * mat.width]);
                }
            }
            messages = m;
            &messages
        };
        let words = F::as_monty_words(elems);
        let k = self.kernels(F::ID)?;
        let mut guard = self.call.lock().expect("call lock");
        let layer_words = planner::tree_words(rows);
        let leaf_batches = match planner::tree(&self.limits()?, rows, len, 0) {
            Ok(TreePlan::Resident { leaf_batches }) => leaf_batches,
            Ok(TreePlan::ByLayers(fallback)) => {
                // Each layer's call takes the lock itself.
                drop(guard);
                fallback.log(&self.info.id, "merkle_tree");
                let mut layer = vec![[F::ZERO; DIGEST_ELEMS]; rows];
                self.hash_rows(elems, &mut layer)?;
                return self.compress_to_root(layer);
            }
            Err(e) => return Err(self.unplanned(e)),
        };
        leaf_batches.log(&self.info.id, "merkle_tree", "rows");
        let pinned = self.pinned(&mut guard);
        let mut layers = self.alloc(layer_words)?;
        self.hash_from_host(pinned, k, words, len, &mut layers, &leaf_batches)?;
        self.tree_on_device(k, &mut layers, rows)?;
        let mut out = vec![0u32; layer_words];
        self.download(pinned, &layers, &mut out)?;
        self.check("merkle_tree")?;
        self.split_layers::<F>(out, rows)
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
        let n = h << added_bits;
        let layer_words = planner::tree_words(n);
        let shape = LdeShape {
            log_h,
            added_bits,
            width: w,
        };
        if let FusedPlan::Separate(fallback) = planner::lde_and_tree(&self.limits()?, &shape, 0) {
            // The extension and its tree do not fit together: column batches, then
            // the tree over the assembled rows, uploaded again in row batches.
            fallback.log(&self.info.id, "lde_and_merkle_tree");
            let lde = self.coset_lde_batch(mat, added_bits, shift)?;
            let layers = self.merkle_tree(&[&lde])?;
            return Ok((lde, layers));
        }
        let k = self.kernels(F::ID)?;
        let mut guard = self.call.lock().expect("call lock");
        let pinned = self.pinned(&mut guard);
        let words = F::as_monty_words(&mat.values);
        let lde = self.lde_on_device(pinned, k, words, log_h, added_bits, w, shift)?;
        let mut layers = self.alloc(layer_words)?;
        self.hash_on_device(k, &lde, n, w, &mut layers, 0)?;
        self.tree_on_device(k, &mut layers, n)?;
        let mut lde_words = vec![0u32; n * w];
        self.download(pinned, &lde, &mut lde_words)?;
        let mut layer_host = vec![0u32; layer_words];
        self.download(pinned, &layers, &mut layer_host)?;
        self.check("lde_and_merkle_tree")?;
        let values = self.to_elems::<F>("lde_and_merkle_tree", lde_words)?;
        let layers = self.split_layers::<F>(layer_host, n)?;
        Ok((RowMajorMatrix::new(values, w), layers))
    }

    fn set_kernel_timing(&self, on: bool) -> bool {
        let _guard = self.call.lock().unwrap_or_else(|e| e.into_inner());
        self.launched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.clock.set(on);
        true
    }

    fn take_kernel_time(&self) -> Result<Option<Duration>, BackendError> {
        let _guard = self.call.lock().unwrap_or_else(|e| e.into_inner());
        self.collect_kernel_time()?;
        Ok(self.clock.take())
    }

    fn device_limits(&self) -> Result<DeviceLimits, BackendError> {
        self.limits()
    }

    fn transfer_counters(&self) -> Option<&TransferCounters> {
        Some(&self.transfers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_bounded_and_non_zero() {
        assert_eq!(grid(0, 256, 132), 1);
        assert_eq!(grid(1000, 256, 132), 4);
        assert_eq!(grid(1 << 40, 256, 132), 132 * 32);
    }
}

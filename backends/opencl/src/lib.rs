//! The OpenCL backend: ProofBox's kernels as OpenCL C (`firmware/opencl/`, with the
//! field arithmetic shared with CUDA in `firmware/common/field.h`), on every device of
//! every OpenCL platform: GPUs, CPU drivers such as PoCL, and FPGA or other
//! accelerator cards.
//!
//! - Discovery: every device of every platform the ICD loader shows is
//!   `opencl:P:D` (platform `P`, device `D` within it), in the loader's order;
//!   [`Backend::open`] takes the index into that flat list. No platform, or an ICD
//!   loader that fails, is [`BackendError::Unavailable`] with the reason, never a
//!   panic. The crate links `libOpenCL.so` (the ICD loader) at build time.
//! - Program ([`kernels`]): one OpenCL program holds both fields' kernels
//!   (`hash_leaves_koalabear`, `dif_stages_babybear`, ...). It is built from source at
//!   [`OpenclBackend::open`] time ([`KernelSource::Source`]), with the field and
//!   Poseidon2 constants generated from Plonky3's own tables into each field's
//!   prelude, or loaded from a precompiled binary ([`KernelSource::Binary`]: an Intel
//!   FPGA `.aocx`, an AMD/Xilinx `.xclbin`, or any binary
//!   [`OpenclBackend::program_binary`] returned).
//! - Coset LDE: the algorithm of the CUDA backend. Inverse DFT (radix-2 decimation in
//!   frequency, several stages per launch in local memory), one kernel that
//!   un-reverses, scales by `shift^k / h`, zero-pads and performs the first
//!   `added_bits` stages of the forward DFT, then the remaining forward stages; rows
//!   come out bit-reversed. Twiddles are computed on the host with Plonky3's field
//!   types and cached on the device.
//! - Merkle trees: one work-item per leaf runs the width-24 sponge, one per node the
//!   width-16 compression, layer after layer in one device buffer.
//!   [`Backend::lde_and_merkle_tree`] hashes the extension where the LDE left it.
//! - Resident matrices ([`proofbox_backend_api::ResidentBackend`], [`OpenclMatrix`]):
//!   the extension and every tree layer kept in device buffers, rows and digests read
//!   on demand, the FRI opening reduction as the `reduce_openings` kernel; see
//!   `resident.rs`.
//! - Memory: every call is planned by `proofbox_backend_api::planner` against the
//!   device's global memory and its largest single allocation
//!   (`CL_DEVICE_MAX_MEM_ALLOC_SIZE`), optionally lowered with
//!   [`OpenclBackend::set_memory_limit`] ([`OpenclBackend::limits`]). An LDE too large runs in column
//!   batches, hashing and compression in row batches, a tree whose layers do not fit
//!   one buffer is built layer by layer through the host; what cannot be split is
//!   [`BackendError::OutOfMemory`].
//! - Kernel time ([`Backend::take_kernel_time`]): the queue is created with profiling
//!   enabled; while timing is on, every kernel launch records an event, and the time
//!   is the sum of the events' `CL_PROFILING_COMMAND_START`..`END` spans (the queue is
//!   in order, so kernels never overlap). Transfers are not part of it.
//! - Transfers ([`Backend::transfer_stats`]): every buffer write (the caller's data,
//!   and the twiddle and coset-scale tables) and every buffer read is a blocking copy,
//!   counted as one copy and one wait; every `clFinish` that ends a call is one more
//!   wait; every kernel enqueued is one launch.

mod device;
mod discovery;
mod kept;
pub mod kernels;
mod quotient;
mod resident;
mod tables;

use discovery::{DISCOVERY, describe, enumerate, guarded, unavailable};

pub use resident::OpenclMatrix;

use std::collections::HashMap;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocl::enums::{ProfilingInfo, ProgramInfo};
use ocl::{Buffer, Context, Event, Kernel, Program, Queue};
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
/// Most words of the local-memory tile of one `dif_stages` work-group.
const TILE_WORDS: usize = 1 << 13;
/// Most DIF stages one `dif_stages` launch runs.
const MAX_TILE_STAGES: usize = 11;
/// Most work-items of one `dif_stages` work-group.
const MAX_GROUP: usize = 256;
/// Kernel events held before their times are collected (which waits for the queue).
const MAX_PENDING_EVENTS: usize = 4096;

/// Where the backend's OpenCL program comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KernelSource {
    /// Built from the OpenCL C sources compiled into this crate (the default).
    #[default]
    Source,
    /// A precompiled program binary for the device (an Intel FPGA `.aocx`, an
    /// AMD/Xilinx `.xclbin`, or a binary read back with
    /// [`OpenclBackend::program_binary`]). It must export the kernels of
    /// [`kernels::KERNEL_NAMES`] for both fields.
    Binary(PathBuf),
}

/// Device twiddle tables by (field, log2 size, inverse).
type TwiddleCache = HashMap<(FieldId, usize, bool), Arc<Buffer<u32>>>;

/// One OpenCL device as a ProofBox backend device.
pub struct OpenclBackend {
    info: DeviceInfo,
    queue: Queue,
    program: Program,
    /// Largest single allocation the device allows, in bytes.
    max_alloc_bytes: u64,
    /// Global memory, in bytes.
    global_bytes: u64,
    /// Local memory per work-group, in bytes.
    local_bytes: u64,
    /// Largest work-group.
    max_group: usize,
    compute_units: u32,
    /// A lower memory limit set by the caller, in bytes.
    limit_bytes: Mutex<Option<u64>>,
    twiddles: Mutex<TwiddleCache>,
    /// Serialises calls: they share the queue.
    call: Mutex<()>,
    /// The last quotient call's buffer (header, bytecode, table), kept so that the
    /// next call of the same program writes only its table; taken under `call`.
    kept_quotient: Mutex<Option<KeptQuotient<Buffer<u32>>>>,
    /// Kernel time taken from profiling events.
    clock: KernelClock,
    /// Events of the kernels launched since the clock was last read.
    launched: Mutex<Vec<Event>>,
    /// Copies and waits (see `proofbox_backend_api::transfer`).
    transfers: TransferCounters,
}

/// What a host-to-device copy carries, for the transfer counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    /// The caller's data.
    Data,
    /// A table the backend computed (twiddles, coset scale factors).
    Table,
}

impl core::fmt::Debug for OpenclBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpenclBackend")
            .field("info", &self.info)
            .field("max_alloc_bytes", &self.max_alloc_bytes)
            .finish_non_exhaustive()
    }
}

/// Work-groups for a grid-stride kernel over `items` work items: the global size.
fn global_size(items: u64, compute_units: u32) -> usize {
    let cap = u64::from(compute_units.max(1)) * 1024;
    items.clamp(1, cap) as usize
}

impl OpenclBackend {
    /// Opens device `ordinal` of [`Backend::probe`]'s list with the program from
    /// `source`.
    pub fn open_with(ordinal: usize, source: KernelSource) -> Result<Self, BackendError> {
        let discovery = DISCOVERY.lock().unwrap_or_else(|e| e.into_inner());
        let mut found = enumerate()?;
        if ordinal >= found.len() {
            return Err(BackendError::UnknownDevice {
                backend: BackendKind::Opencl,
                device: format!("opencl device #{ordinal}"),
                available: found.len(),
            });
        }
        let f = found.swap_remove(ordinal);
        let props = describe(&f).map_err(unavailable)?;
        let id = props.info.id.clone();
        let (context, queue) = guarded("context", || {
            let context = Context::builder()
                .platform(f.platform)
                .devices(f.device)
                .build()
                .map_err(|e| e.to_string())?;
            let queue = Queue::new(&context, f.device, Some(ocl::flags::QUEUE_PROFILING_ENABLE))
                .map_err(|e| e.to_string())?;
            Ok((context, queue))
        })
        .map_err(unavailable)?;
        drop(discovery);
        let build_error = |message: String| BackendError::Kernel {
            device: id.clone(),
            kernel: "program".into(),
            message,
        };
        let program = match &source {
            KernelSource::Source => {
                let src = kernels::program_source().map_err(build_error)?;
                guarded("build from source", || {
                    Program::builder()
                        .src(src)
                        .devices(f.device)
                        .cmplr_opt(kernels::BUILD_OPTIONS)
                        .build(&context)
                        .map_err(|e| e.to_string())
                })
                .map_err(build_error)?
            }
            KernelSource::Binary(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| build_error(format!("reading {}: {e}", path.display())))?;
                guarded("load binary", || {
                    let opts = CString::new(kernels::BUILD_OPTIONS).expect("no NUL");
                    Program::with_binary(&context, &[f.device], &[&bytes[..]], &opts)
                        .map_err(|e| e.to_string())
                })
                .map_err(|e| build_error(format!("{}: {e}", path.display())))?
            }
        };
        let backend = Self {
            queue,
            program,
            max_alloc_bytes: props.max_alloc_bytes,
            global_bytes: props.global_bytes,
            local_bytes: props.local_bytes,
            max_group: props.max_group,
            compute_units: props.info.compute_units,
            info: props.info,
            limit_bytes: Mutex::new(None),
            twiddles: Mutex::new(HashMap::new()),
            call: Mutex::new(()),
            kept_quotient: Mutex::new(None),
            clock: KernelClock::new(),
            launched: Mutex::new(Vec::new()),
            transfers: TransferCounters::new(),
        };
        backend.check_kernels()?;
        Ok(backend)
    }

    /// Checks that the program exports every kernel of both fields.
    fn check_kernels(&self) -> Result<(), BackendError> {
        for field in FieldId::ALL {
            for name in kernels::KERNEL_NAMES {
                let full = kernels::kernel_name(name, field);
                ocl::core::create_kernel(&self.program, &full).map_err(|e| {
                    BackendError::Kernel {
                        device: self.info.id.clone(),
                        kernel: full.clone(),
                        message: format!("the program lacks this kernel: {e}"),
                    }
                })?;
            }
        }
        Ok(())
    }

    /// The device's binary of the built program (`CL_PROGRAM_BINARIES`), which
    /// [`KernelSource::Binary`] loads again.
    pub fn program_binary(&self) -> Result<Vec<u8>, BackendError> {
        let err = |message: String| BackendError::Kernel {
            device: self.info.id.clone(),
            kernel: "program binary".into(),
            message,
        };
        match self.program.info(ProgramInfo::Binaries) {
            Ok(ocl::enums::ProgramInfoResult::Binaries(mut bins)) if !bins.is_empty() => {
                Ok(bins.swap_remove(0))
            }
            Ok(other) => Err(err(format!("unexpected answer {other:?}"))),
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// Caps the device memory calls plan to use (bytes of global memory, and of one
    /// allocation), below what the device reports; `None` restores the device's own
    /// limits.
    pub fn set_memory_limit(&self, bytes: Option<u64>) {
        *self.limit_bytes.lock().expect("limit lock") = bytes;
    }

    /// The limits calls are planned against: the share of global memory a call may
    /// use and the largest single allocation, both lowered to the memory limit.
    pub fn limits(&self) -> DeviceLimits {
        let cap = self
            .limit_bytes
            .lock()
            .expect("limit lock")
            .unwrap_or(u64::MAX);
        DeviceLimits::from_device(
            Some(self.global_bytes.min(cap)),
            Some(self.max_alloc_bytes.min(cap)),
        )
    }

    /// Largest single allocation a call may make, in words.
    fn max_buffer_words(&self) -> usize {
        self.limits().max_buffer_words
    }

    /// Words a call may plan to allocate in all.
    fn budget_words(&self) -> usize {
        self.limits().budget_words
    }

    fn unplanned(&self, e: PlanError) -> BackendError {
        e.out_of_memory(&self.info.id)
    }

    fn cl_error(&self, what: &str, e: ocl::Error) -> BackendError {
        use ocl::core::Status;
        match e.api_status() {
            Some(Status::CL_MEM_OBJECT_ALLOCATION_FAILURE | Status::CL_OUT_OF_RESOURCES) => {
                BackendError::OutOfMemory {
                    device: self.info.id.clone(),
                    needed_bytes: 0,
                    available_bytes: self.budget_words() as u64 * 4,
                }
            }
            Some(Status::CL_DEVICE_NOT_AVAILABLE | Status::CL_DEVICE_NOT_FOUND) => {
                BackendError::DeviceLost {
                    device: self.info.id.clone(),
                    reason: format!("{what}: {e}"),
                }
            }
            _ => BackendError::Kernel {
                device: self.info.id.clone(),
                kernel: what.into(),
                message: e.to_string(),
            },
        }
    }

    /// Allocates `len` words (uninitialised), checking the single-allocation limit.
    fn alloc(&self, len: usize) -> Result<Buffer<u32>, BackendError> {
        let len = len.max(1);
        let max = self.max_buffer_words();
        if len > max {
            return Err(BackendError::OutOfMemory {
                device: self.info.id.clone(),
                needed_bytes: len as u64 * 4,
                available_bytes: max as u64 * 4,
            });
        }
        Buffer::<u32>::builder()
            .queue(self.queue.clone())
            .len(len)
            .build()
            .map_err(|e| self.cl_error("clCreateBuffer", e))
    }

    /// A buffer holding `words`.
    fn upload(&self, words: &[u32], payload: Payload) -> Result<Buffer<u32>, BackendError> {
        let buf = self.alloc(words.len())?;
        if !words.is_empty() {
            self.write(&buf, 0, words, payload)?;
        }
        Ok(buf)
    }

    /// A blocking write (counted as one copy and one wait).
    fn write(
        &self,
        buf: &Buffer<u32>,
        offset: usize,
        words: &[u32],
        payload: Payload,
    ) -> Result<(), BackendError> {
        buf.write(words)
            .offset(offset)
            .enq()
            .map_err(|e| self.cl_error("host to device copy", e))?;
        let bytes = words.len() as u64 * 4;
        match payload {
            Payload::Data => self.transfers.host_to_device(bytes),
            Payload::Table => self.transfers.table_to_device(bytes),
        }
        self.transfers.sync_wait();
        Ok(())
    }

    /// A blocking read (counted as one copy and one wait).
    fn read(&self, buf: &Buffer<u32>, offset: usize, out: &mut [u32]) -> Result<(), BackendError> {
        if out.is_empty() {
            return Ok(());
        }
        let bytes = out.len() as u64 * 4;
        buf.read(out)
            .offset(offset)
            .enq()
            .map_err(|e| self.cl_error("device to host copy", e))?;
        self.transfers.device_to_host(bytes);
        self.transfers.sync_wait();
        Ok(())
    }

    /// Waits for the queue (counted as one wait).
    fn finish(&self, what: &str) -> Result<(), BackendError> {
        self.queue.finish().map_err(|e| self.cl_error(what, e))?;
        self.transfers.sync_wait();
        Ok(())
    }

    /// A kernel builder for `name` of `field`, on the backend's queue.
    fn kernel(&self, name: &str, field: FieldId) -> ocl::builders::KernelBuilder<'_> {
        let mut b = Kernel::builder();
        b.program(&self.program)
            .name(kernels::kernel_name(name, field))
            .queue(self.queue.clone());
        b
    }

    fn launch(&self, name: &str, k: Result<Kernel, ocl::Error>) -> Result<(), BackendError> {
        let k = k.map_err(|e| self.cl_error(name, e))?;
        if !self.clock.is_on() {
            // SAFETY: each caller sets arguments matching the kernel's signature, and
            // buffers large enough for every index the kernel forms (documented at each
            // call).
            unsafe { k.enq() }.map_err(|e| self.cl_error(name, e))?;
            self.transfers.kernel_launch();
            return Ok(());
        }
        let mut event = Event::empty();
        // SAFETY: as above.
        unsafe { k.cmd().enew(&mut event).enq() }.map_err(|e| self.cl_error(name, e))?;
        self.transfers.kernel_launch();
        let pending = {
            let mut launched = self.launched.lock().unwrap_or_else(|e| e.into_inner());
            launched.push(event);
            launched.len()
        };
        if pending >= MAX_PENDING_EVENTS {
            self.collect_kernel_time()?;
        }
        Ok(())
    }

    /// Waits for the queue and adds the run time of every kernel launched since the
    /// last call to the clock. The caller holds `call`.
    fn collect_kernel_time(&self) -> Result<(), BackendError> {
        let events = core::mem::take(&mut *self.launched.lock().unwrap_or_else(|e| e.into_inner()));
        if events.is_empty() {
            return Ok(());
        }
        // Kernel timing's own wait: not a transfer-counter wait.
        self.queue
            .finish()
            .map_err(|e| self.cl_error("kernel timing", e))?;
        let mut total_ns = 0u64;
        for event in &events {
            let at = |info| {
                event
                    .profiling_info(info)
                    .and_then(|r| r.time().map_err(Into::into))
                    .map_err(|e| self.cl_error("kernel timing", e))
            };
            total_ns += at(ProfilingInfo::End)?.saturating_sub(at(ProfilingInfo::Start)?);
        }
        self.clock.add(Duration::from_nanos(total_ns));
        Ok(())
    }
}

impl Backend for OpenclBackend {
    const KIND: BackendKind = BackendKind::Opencl;

    fn probe() -> Result<Vec<DeviceInfo>, BackendError> {
        let _discovery = DISCOVERY.lock().unwrap_or_else(|e| e.into_inner());
        enumerate()?
            .iter()
            .map(|f| describe(f).map(|p| p.info).map_err(unavailable))
            .collect()
    }

    fn open(ordinal: usize) -> Result<Self, BackendError> {
        Self::open_with(ordinal, KernelSource::Source)
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
        let _guard = self.call.lock().expect("call lock");
        let (h, w) = (mat.height(), mat.width);
        let log_h = h.trailing_zeros() as usize;
        let n = h << added_bits;
        let words = F::as_monty_words(&mat.values);
        let shape = LdeShape {
            log_h,
            added_bits,
            width: w,
        };
        let batches = planner::lde(&self.limits(), &shape).map_err(|e| self.unplanned(e))?;
        batches.log(&self.info.id, "coset_lde_batch", "columns");
        let out = planner::run_column_batches(words, &batches, n, |sub, cb| {
            let dst = self.lde_on_device(sub, log_h, added_bits, cb, shift)?;
            let mut out = vec![0u32; n * cb];
            self.read(&dst, 0, &mut out)?;
            Ok(out)
        })?;
        self.finish("coset_lde_batch")?;
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
        let _guard = self.call.lock().expect("call lock");
        let rows = out.len();
        let job = LeafHashing {
            rows,
            len,
            state_words: 0,
            digests: Digests::PerBatch,
        };
        let batches = planner::leaf_hashing(&self.limits(), &job).map_err(|e| self.unplanned(e))?;
        batches.log(&self.info.id, "hash_rows", "rows");
        let mut words = vec![0u32; rows * DIGEST_WORDS];
        self.hash_from_host(
            F::ID,
            F::as_monty_words(input),
            len,
            &batches,
            None,
            &mut words,
        )?;
        self.finish("hash_rows")?;
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
        let _guard = self.call.lock().expect("call lock");
        let batches =
            planner::pair_batches(&self.limits(), input.len()).map_err(|e| self.unplanned(e))?;
        batches.log(&self.info.id, "compress_pairs", "pairs");
        let per_batch = batches.per_batch;
        let buf = self.alloc(3 * per_batch * DIGEST_WORDS)?;
        let mut words = vec![0u32; per_batch * DIGEST_WORDS];
        for (pairs, outs) in input.chunks(per_batch).zip(out.chunks_mut(per_batch)) {
            let c = pairs.len();
            self.write(
                &buf,
                0,
                F::as_monty_words(pairs.as_flattened().as_flattened()),
                Payload::Data,
            )?;
            self.compress_on_device(F::ID, &buf, 0, 2 * c, c)?;
            self.read(&buf, 2 * c * DIGEST_WORDS, &mut words[..c * DIGEST_WORDS])?;
            let elems = self.to_elems::<F>("compress_pairs", words[..c * DIGEST_WORDS].to_vec())?;
            outs.as_flattened_mut().copy_from_slice(&elems);
        }
        self.finish("compress_pairs")
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
        let layer_words = planner::tree_words(rows);
        let leaf_batches = match planner::tree(&self.limits(), rows, len, 0) {
            Ok(TreePlan::Resident { leaf_batches }) => leaf_batches,
            Ok(TreePlan::ByLayers(fallback)) => {
                fallback.log(&self.info.id, "merkle_tree");
                return self.merkle_tree_by_layers(elems, rows);
            }
            Err(e) => return Err(self.unplanned(e)),
        };
        leaf_batches.log(&self.info.id, "merkle_tree", "rows");
        let _guard = self.call.lock().expect("call lock");
        let layers = self.alloc(layer_words)?;
        self.hash_from_host(
            F::ID,
            F::as_monty_words(elems),
            len,
            &leaf_batches,
            Some(&layers),
            &mut [],
        )?;
        self.tree_on_device(F::ID, &layers, rows)?;
        let mut out = vec![0u32; layer_words];
        self.read(&layers, 0, &mut out)?;
        self.finish("merkle_tree")?;
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
        if let FusedPlan::Separate(fallback) = planner::lde_and_tree(&self.limits(), &shape, 0) {
            // The extension and its tree do not fit together: column batches, then
            // the tree over the assembled rows, uploaded again in row batches.
            fallback.log(&self.info.id, "lde_and_merkle_tree");
            let lde = self.coset_lde_batch(mat, added_bits, shift)?;
            let layers = self.merkle_tree(&[&lde])?;
            return Ok((lde, layers));
        }
        let _guard = self.call.lock().expect("call lock");
        let words = F::as_monty_words(&mat.values);
        let lde = self.lde_on_device(words, log_h, added_bits, w, shift)?;
        let layers = self.alloc(layer_words)?;
        self.hash_on_device(F::ID, &lde, n, w, &layers, 0)?;
        self.tree_on_device(F::ID, &layers, n)?;
        let mut lde_words = vec![0u32; n * w];
        self.read(&lde, 0, &mut lde_words)?;
        let mut layer_host = vec![0u32; layer_words];
        self.read(&layers, 0, &mut layer_host)?;
        self.finish("lde_and_merkle_tree")?;
        let values = self.to_elems::<F>("lde_and_merkle_tree", lde_words)?;
        let layers = self.split_layers::<F>(layer_host, n)?;
        Ok((RowMajorMatrix::new(values, w), layers))
    }

    fn set_kernel_timing(&self, on: bool) -> bool {
        let _guard = self.call.lock().expect("call lock");
        self.launched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.clock.set(on);
        true
    }

    fn take_kernel_time(&self) -> Result<Option<Duration>, BackendError> {
        let _guard = self.call.lock().expect("call lock");
        self.collect_kernel_time()?;
        Ok(self.clock.take())
    }

    fn device_limits(&self) -> Result<DeviceLimits, BackendError> {
        Ok(self.limits())
    }

    fn transfer_counters(&self) -> Option<&TransferCounters> {
        Some(&self.transfers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_size_is_bounded_and_non_zero() {
        assert_eq!(global_size(0, 4), 1);
        assert_eq!(global_size(1000, 4), 1000);
        assert_eq!(global_size(1 << 40, 4), 4096);
    }
}

//! The device side: buffers, batched dispatches (split to respect
//! the per-dimension workgroup limit), uploads and readbacks with transfer accounting,
//! and mapping of wgpu errors to [`BackendError`], and kernel timing by timestamp
//! queries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proofbox_backend_api::{BackendError, FieldId, KernelClock, TransferCounters};
use wgpu::util::DeviceExt;

use crate::compile::build_field_kernels;
pub(crate) use crate::compile::{kernel_source, wgsl_kernel};
pub use crate::limits::KernelLimits;
use crate::record::Op;
pub(crate) use crate::record::{Recorder, Window};

/// Threads per workgroup (lowered if the adapter allows fewer).
const PREFERRED_WG_SIZE: u32 = 64;
/// Bytes of one dispatch's parameter block (`Params` in `field.wgsl`).
pub(crate) const PARAMS_BYTES: u64 = 32;
/// Compute passes one timestamp query set covers (a begin and an end query each).
const PASSES_PER_QUERY_SET: u32 = wgpu::QUERY_SET_MAX_QUERIES / 2;
/// Submissions whose timestamps may wait unread before they are collected.
const MAX_PENDING_TIMESTAMPS: usize = 256;

#[derive(Clone, Copy)]
pub(crate) enum Slot {
    Ro,
    Rw,
    Uniform,
}

/// A compiled kernel: its pipeline, bind group layout and the binding of its
/// parameter block.
pub(crate) struct Kernel {
    pub(crate) name: &'static str,
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
    pub(crate) params_binding: u32,
}

/// The compiled kernels and resident constants of one field.
pub(crate) struct FieldKernels {
    pub dif: Kernel,
    pub scatter: Kernel,
    pub hash: Kernel,
    pub compress: Kernel,
    pub rc24: wgpu::Buffer,
    pub rc16: wgpu::Buffer,
}

/// An opened device with its kernels.
pub(crate) struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub device_id: String,
    pub device_limits: KernelLimits,
    pub limits: KernelLimits,
    uniform_align: u64,
    /// Alignment of a storage binding's offset, in bytes.
    pub(crate) storage_align: u64,
    pub(crate) wg_size: u32,
    koala: FieldKernels,
    baby: FieldKernels,
    lost: Arc<Mutex<Option<String>>>,
    uncaptured: Arc<Mutex<Vec<String>>>,
    /// Uploads, readbacks and waits (see `proofbox_backend_api::transfer`).
    pub counters: TransferCounters,
    /// The largest twiddle tables built so far, per field and direction: a table for
    /// order `T` serves every order dividing `T` by striding.
    twiddles: Mutex<Vec<TwiddleTable>>,
    /// Whether the device has timestamp queries (`Features::TIMESTAMP_QUERY`).
    pub timestamps: bool,
    /// Nanoseconds per timestamp tick.
    timestamp_period_ns: f64,
    /// Kernel time read from timestamps.
    pub clock: KernelClock,
    /// Timestamps of submitted work not read yet.
    pending_timestamps: Mutex<Vec<PendingTimestamps>>,
}

/// The timestamps of one query set of a submission, copied to a mappable buffer.
struct PendingTimestamps {
    buffer: wgpu::Buffer,
    queries: u32,
    submission: wgpu::SubmissionIndex,
}

/// A resident twiddle table: powers of the `2^log_order`-th root of unity of a field
/// (or of its inverse).
struct TwiddleTable {
    field: FieldId,
    inverse: bool,
    log_order: usize,
    buffer: Arc<wgpu::Buffer>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gpu {
    pub fn new(adapter: &wgpu::Adapter, device_id: String) -> Result<Self, BackendError> {
        let adapter_limits = adapter.limits();
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("proofbox"),
            required_features: if timestamps {
                wgpu::Features::TIMESTAMP_QUERY
            } else {
                wgpu::Features::empty()
            },
            required_limits: adapter_limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| BackendError::Unavailable {
            backend: proofbox_backend_api::BackendKind::Wgpu,
            reason: format!("{device_id}: device request failed: {e}"),
        })?;
        let limits = device.limits();
        if limits.max_storage_buffers_per_shader_stage < 3 {
            return Err(BackendError::Kernel {
                device: device_id,
                kernel: "setup".into(),
                message: format!(
                    "the kernels bind 3 storage buffers, the device allows {}",
                    limits.max_storage_buffers_per_shader_stage
                ),
            });
        }
        let lost = Arc::new(Mutex::new(None));
        let lost_cb = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            *lock(&lost_cb) = Some(format!("{reason:?}: {message}"));
        });
        // Errors outside an error scope are recorded instead of aborting the process.
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let uncaptured_cb = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            lock(&uncaptured_cb).push(e.to_string());
        }));
        let device_limits = KernelLimits {
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_buffer_size: limits.max_buffer_size,
            max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            max_resident_window_bytes: limits.max_storage_buffer_binding_size,
            max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
        };
        let storage_align = u64::from(limits.min_storage_buffer_offset_alignment).max(4);
        let wg_size = PREFERRED_WG_SIZE
            .min(limits.max_compute_workgroup_size_x)
            .min(limits.max_compute_invocations_per_workgroup)
            .max(1);
        let uniform_align = u64::from(limits.min_uniform_buffer_offset_alignment).max(PARAMS_BYTES);
        let build = |field| -> Result<FieldKernels, BackendError> {
            let scope = ErrorScopes::push(&device);
            let kernels = build_field_kernels(&device, field, wg_size);
            let err = scope.pop();
            match (kernels, err) {
                (_, Some(e)) | (Err(e), None) => Err(BackendError::Kernel {
                    device: device_id.clone(),
                    kernel: format!("{field} kernels"),
                    message: e,
                }),
                (Ok(k), None) => Ok(k),
            }
        };
        let koala = build(FieldId::KoalaBear)?;
        let baby = build(FieldId::BabyBear)?;
        let timestamp_period_ns = f64::from(queue.get_timestamp_period());
        let gpu = Self {
            device,
            queue,
            device_id,
            device_limits,
            limits: device_limits,
            uniform_align,
            storage_align,
            wg_size,
            koala,
            baby,
            lost,
            uncaptured,
            counters: TransferCounters::new(),
            twiddles: Mutex::new(Vec::new()),
            timestamps,
            timestamp_period_ns,
            clock: KernelClock::new(),
            pending_timestamps: Mutex::new(Vec::new()),
        };
        for k in [&gpu.koala, &gpu.baby] {
            gpu.counters.table_to_device(k.rc16.size());
            gpu.counters.table_to_device(k.rc24.size());
        }
        Ok(gpu)
    }

    pub fn kernels(&self, field: FieldId) -> &FieldKernels {
        match field {
            FieldId::KoalaBear => &self.koala,
            FieldId::BabyBear => &self.baby,
        }
    }

    pub(crate) fn oom(&self, needed_bytes: u64, available_bytes: u64) -> BackendError {
        BackendError::OutOfMemory {
            device: self.device_id.clone(),
            needed_bytes,
            available_bytes,
        }
    }

    /// Runs one backend call inside error scopes, so that validation errors, device
    /// out-of-memory and internal errors of this call become its result.
    pub fn scoped<T>(
        &self,
        kernel: &str,
        f: impl FnOnce() -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        self.check_lost()?;
        let scope = ErrorScopes::push(&self.device);
        let result = f();
        let errors = scope.pop_all();
        self.check_lost()?;
        if errors.oom.is_some() {
            // wgpu does not say how much was asked for or is left.
            return Err(self.oom(0, 0));
        }
        if let Some(message) = errors.other {
            return Err(BackendError::Kernel {
                device: self.device_id.clone(),
                kernel: kernel.into(),
                message,
            });
        }
        if let Some(message) = lock(&self.uncaptured).pop() {
            return Err(BackendError::Kernel {
                device: self.device_id.clone(),
                kernel: kernel.into(),
                message,
            });
        }
        result
    }

    fn check_lost(&self) -> Result<(), BackendError> {
        match lock(&self.lost).as_ref() {
            Some(reason) => Err(BackendError::DeviceLost {
                device: self.device_id.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// A storage buffer of `bytes` bytes (at least 4), refused with
    /// [`BackendError::OutOfMemory`] beyond the binding limit.
    pub fn storage(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer, BackendError> {
        self.storage_within(label, bytes, self.limits.max_storage_bytes())
    }

    /// A storage buffer of `bytes` bytes bound to kernels in windows (a resident
    /// matrix), refused with [`BackendError::OutOfMemory`] beyond the buffer limit.
    pub fn windowed_storage(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer, BackendError> {
        self.storage_within(label, bytes, self.limits.max_buffer_size)
    }

    /// A storage buffer of `bytes` bytes (at least 4), refused beyond `max` bytes.
    fn storage_within(
        &self,
        label: &str,
        bytes: u64,
        max: u64,
    ) -> Result<wgpu::Buffer, BackendError> {
        if bytes > max {
            return Err(self.oom(bytes, max));
        }
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        }))
    }

    /// A host-readable buffer for copies out of storage buffers.
    pub fn staging(&self, bytes: u64) -> Result<wgpu::Buffer, BackendError> {
        if bytes > self.limits.max_buffer_size {
            return Err(self.oom(bytes, self.limits.max_buffer_size));
        }
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// Writes caller data into a device buffer (counted as a host-to-device copy; the
    /// queue orders it before later submissions without the host waiting).
    pub fn upload(&self, buffer: &wgpu::Buffer, offset: u64, words: &[u32]) {
        if words.is_empty() {
            return;
        }
        self.queue
            .write_buffer(buffer, offset, bytemuck::cast_slice(words));
        self.counters.host_to_device(words.len() as u64 * 4);
    }

    /// A storage buffer holding a host-computed table (counted as a table copy).
    /// Writes `words` into a table buffer at word `offset` (counted as a table).
    pub fn write_table(&self, buffer: &wgpu::Buffer, offset: usize, words: &[u32]) {
        self.queue
            .write_buffer(buffer, offset as u64 * 4, bytemuck::cast_slice(words));
        self.counters.table_to_device(words.len() as u64 * 4);
    }

    pub fn table(&self, label: &str, words: &[u32]) -> Result<wgpu::Buffer, BackendError> {
        let buffer = self.storage(label, words.len() as u64 * 4)?;
        self.queue
            .write_buffer(&buffer, 0, bytemuck::cast_slice(words));
        self.counters.table_to_device(words.len() as u64 * 4);
        Ok(buffer)
    }

    /// Twiddles for order `2^log_n` in `field`: a resident table for order `2^log_t`
    /// (`log_t >= log_n`) and the stride `2^(log_t - log_n)` that selects them.
    pub fn twiddles(
        &self,
        field: FieldId,
        inverse: bool,
        log_n: usize,
        make: impl FnOnce(usize) -> Vec<u32>,
    ) -> Result<(Arc<wgpu::Buffer>, usize), BackendError> {
        let mut cache = lock(&self.twiddles);
        if let Some(t) = cache
            .iter()
            .find(|t| t.field == field && t.inverse == inverse && t.log_order >= log_n)
        {
            return Ok((t.buffer.clone(), t.log_order - log_n));
        }
        let buffer = Arc::new(self.table("twiddles", &make(log_n))?);
        cache.retain(|t| !(t.field == field && t.inverse == inverse));
        cache.push(TwiddleTable {
            field,
            inverse,
            log_order: log_n,
            buffer: buffer.clone(),
        });
        Ok((buffer, 0))
    }

    /// Encodes and submits the recorded work, splitting every launch into dispatches
    /// that respect the per-dimension workgroup limit.
    pub fn submit(&self, rec: Recorder<'_>) -> Result<wgpu::SubmissionIndex, BackendError> {
        let wg = u64::from(self.wg_size);
        let max_dim = u64::from(self.limits.max_compute_workgroups_per_dimension.max(1));
        let max_threads_per_dispatch = (max_dim * max_dim * wg).min(1 << 31);

        // (op index, base, end, groups x, groups y)
        let mut chunks: Vec<(usize, u64, u64, u32, u32)> = Vec::new();
        for (i, op) in rec.ops.iter().enumerate() {
            if let Op::Dispatch(d) = op {
                if d.threads > u64::from(u32::MAX) {
                    return Err(self.oom(d.threads * 4, u64::from(u32::MAX) * 4));
                }
                let mut base = 0;
                while base < d.threads {
                    let n = (d.threads - base).min(max_threads_per_dispatch);
                    let groups = n.div_ceil(wg);
                    let x = groups.min(max_dim);
                    let y = groups.div_ceil(x);
                    chunks.push((i, base, base + n, x as u32, y as u32));
                    base += n;
                }
            }
        }

        let params_buf = if chunks.is_empty() {
            None
        } else {
            let mut bytes = vec![0u8; chunks.len() * self.uniform_align as usize];
            for (c, &(i, base, end, _, _)) in chunks.iter().enumerate() {
                let Op::Dispatch(d) = &rec.ops[i] else {
                    unreachable!("chunks index dispatches")
                };
                let words = [
                    end as u32,
                    base as u32,
                    d.params[0],
                    d.params[1],
                    d.params[2],
                    d.params[3],
                    d.params[4],
                    d.params[5],
                ];
                let at = c * self.uniform_align as usize;
                bytes[at..at + PARAMS_BYTES as usize].copy_from_slice(bytemuck::cast_slice(&words));
            }
            self.counters.table_to_device(bytes.len() as u64);
            Some(
                self.device
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("params"),
                        contents: &bytes,
                        usage: wgpu::BufferUsages::UNIFORM,
                    }),
            )
        };

        let bind_groups: Vec<wgpu::BindGroup> = chunks
            .iter()
            .enumerate()
            .map(|(c, &(i, ..))| {
                let Op::Dispatch(d) = &rec.ops[i] else {
                    unreachable!("chunks index dispatches")
                };
                let params = params_buf.as_ref().expect("dispatches have parameters");
                let mut entries: Vec<wgpu::BindGroupEntry> = d
                    .bindings
                    .iter()
                    .map(|&(binding, buf)| wgpu::BindGroupEntry {
                        binding,
                        resource: buf.as_entire_binding(),
                    })
                    .collect();
                entries.extend(d.windows.iter().map(|w| wgpu::BindGroupEntry {
                    binding: w.binding,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: w.buffer,
                        offset: w.offset,
                        size: wgpu::BufferSize::new(w.size),
                    }),
                }));
                entries.push(wgpu::BindGroupEntry {
                    binding: d.kernel.params_binding,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: params,
                        offset: c as u64 * self.uniform_align,
                        size: wgpu::BufferSize::new(PARAMS_BYTES),
                    }),
                });
                self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(d.kernel.name),
                    layout: &d.kernel.layout,
                    entries: &entries,
                })
            })
            .collect();

        // With kernel timing on, every compute pass writes a timestamp at its beginning
        // and its end.
        let passes = rec
            .ops
            .iter()
            .enumerate()
            .filter(|&(i, op)| {
                matches!(op, Op::Dispatch(_))
                    && (i == 0 || !matches!(rec.ops[i - 1], Op::Dispatch(_)))
            })
            .count() as u32;
        let query_sets: Vec<(wgpu::QuerySet, u32)> = if self.timestamps && self.clock.is_on() {
            (0..passes.div_ceil(PASSES_PER_QUERY_SET))
                .map(|q| {
                    let n = (passes - q * PASSES_PER_QUERY_SET).min(PASSES_PER_QUERY_SET);
                    let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
                        label: Some("kernel timestamps"),
                        ty: wgpu::QueryType::Timestamp,
                        count: 2 * n,
                    });
                    (set, 2 * n)
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut pass_index = 0u32;

        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        let mut next_chunk = 0;
        let mut i = 0;
        while i < rec.ops.len() {
            match &rec.ops[i] {
                Op::Copy {
                    src,
                    src_offset,
                    dst,
                    dst_offset,
                    size,
                } => {
                    encoder.copy_buffer_to_buffer(src, *src_offset, dst, *dst_offset, *size);
                    i += 1;
                }
                Op::Dispatch(_) => {
                    let timestamp_writes = query_sets
                        .get((pass_index / PASSES_PER_QUERY_SET) as usize)
                        .map(|(set, _)| {
                            let at = 2 * (pass_index % PASSES_PER_QUERY_SET);
                            wgpu::ComputePassTimestampWrites {
                                query_set: set,
                                beginning_of_pass_write_index: Some(at),
                                end_of_pass_write_index: Some(at + 1),
                            }
                        });
                    pass_index += 1;
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: None,
                        timestamp_writes,
                    });
                    while let Some(Op::Dispatch(d)) = rec.ops.get(i) {
                        pass.set_pipeline(&d.kernel.pipeline);
                        while next_chunk < chunks.len() && chunks[next_chunk].0 == i {
                            let (_, _, _, x, y) = chunks[next_chunk];
                            pass.set_bind_group(0, &bind_groups[next_chunk], &[]);
                            pass.dispatch_workgroups(x, y, 1);
                            self.counters.kernel_launch();
                            next_chunk += 1;
                        }
                        i += 1;
                    }
                }
            }
        }
        let mut timestamp_buffers = Vec::with_capacity(query_sets.len());
        for (set, queries) in &query_sets {
            let bytes = u64::from(*queries) * u64::from(wgpu::QUERY_SIZE);
            let resolved = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kernel timestamps"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let readable = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kernel timestamps"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            encoder.resolve_query_set(set, 0..*queries, &resolved, 0);
            encoder.copy_buffer_to_buffer(&resolved, 0, &readable, 0, bytes);
            timestamp_buffers.push((readable, *queries));
        }
        let submission = self.queue.submit([encoder.finish()]);
        if !timestamp_buffers.is_empty() {
            let pending = {
                let mut p = lock(&self.pending_timestamps);
                p.extend(timestamp_buffers.into_iter().map(|(buffer, queries)| {
                    PendingTimestamps {
                        buffer,
                        queries,
                        submission: submission.clone(),
                    }
                }));
                p.len()
            };
            if pending >= MAX_PENDING_TIMESTAMPS {
                self.collect_kernel_time()?;
            }
        }
        Ok(submission)
    }

    /// Turns kernel timing on or off (dropping timestamps not read yet).
    pub fn set_kernel_timing(&self, on: bool) -> bool {
        lock(&self.pending_timestamps).clear();
        self.clock.set(on && self.timestamps);
        self.timestamps
    }

    /// Reads the timestamps of every submission made since the last call (waiting
    /// for them) and adds each compute pass's span to the clock.
    pub fn collect_kernel_time(&self) -> Result<(), BackendError> {
        let pending = core::mem::take(&mut *lock(&self.pending_timestamps));
        let mut ticks = 0u64;
        for p in pending {
            let bytes = u64::from(p.queries) * u64::from(wgpu::QUERY_SIZE);
            let stamps: Vec<u64> =
                self.map_read(&p.buffer, bytes, p.submission, bytemuck::pod_collect_to_vec)?;
            for pair in stamps.chunks_exact(2) {
                ticks += pair[1].saturating_sub(pair[0]);
            }
        }
        let ns = (ticks as f64 * self.timestamp_period_ns).round() as u64;
        self.clock.add(Duration::from_nanos(ns));
        Ok(())
    }

    /// Waits for `index`, maps `staging` and returns its first `bytes` bytes as words
    /// (counted as one device-to-host copy and one wait).
    pub fn read(
        &self,
        staging: &wgpu::Buffer,
        bytes: u64,
        index: wgpu::SubmissionIndex,
    ) -> Result<Vec<u32>, BackendError> {
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let words = self.map_read(
            staging,
            bytes,
            index,
            bytemuck::pod_collect_to_vec::<u8, u32>,
        )?;
        self.counters.device_to_host(bytes);
        self.counters.sync_wait();
        Ok(words)
    }

    /// Waits for `index`, maps the first `bytes` bytes of `buffer` for reading, and
    /// returns what `f` makes of them (the buffer is unmapped again).
    fn map_read<T>(
        &self,
        buffer: &wgpu::Buffer,
        bytes: u64,
        index: wgpu::SubmissionIndex,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<T, BackendError> {
        let (tx, rx) = std::sync::mpsc::channel();
        buffer.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: None,
            })
            .map_err(|e| BackendError::DeviceLost {
                device: self.device_id.clone(),
                reason: format!("waiting for the device: {e}"),
            })?;
        let mapped = rx.recv().map_err(|_| self.map_failed("callback dropped"));
        self.check_lost()?;
        mapped?.map_err(|e| self.map_failed(&e.to_string()))?;
        let out = {
            let view = buffer
                .get_mapped_range(0..bytes)
                .map_err(|e| self.map_failed(&e.to_string()))?;
            f(&view)
        };
        buffer.unmap();
        Ok(out)
    }

    fn map_failed(&self, message: &str) -> BackendError {
        BackendError::Kernel {
            device: self.device_id.clone(),
            kernel: "readback".into(),
            message: message.into(),
        }
    }
}

struct ScopeErrors {
    oom: Option<String>,
    other: Option<String>,
}

/// Out-of-memory, validation and internal error scopes, pushed together.
struct ErrorScopes {
    oom: wgpu::ErrorScopeGuard,
    validation: wgpu::ErrorScopeGuard,
    internal: wgpu::ErrorScopeGuard,
}

impl ErrorScopes {
    fn push(device: &wgpu::Device) -> Self {
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
        Self {
            oom,
            validation,
            internal,
        }
    }

    fn pop_all(self) -> ScopeErrors {
        let internal = pollster::block_on(self.internal.pop());
        let validation = pollster::block_on(self.validation.pop());
        let oom = pollster::block_on(self.oom.pop());
        ScopeErrors {
            oom: oom.map(|e| e.to_string()),
            other: validation.or(internal).map(|e| e.to_string()),
        }
    }

    /// The first error of any kind, as text.
    fn pop(self) -> Option<String> {
        let e = self.pop_all();
        e.other.or(e.oom)
    }
}

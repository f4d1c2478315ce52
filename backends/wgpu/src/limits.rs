//! The limits the kernels plan their buffers, bindings and dispatches against.

/// The limits the kernels plan their buffers and dispatches against. They start as the
/// device's own limits and can only be lowered (see
/// [`crate::WgpuBackend::with_kernel_limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelLimits {
    /// Largest storage buffer binding, in bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Largest buffer, in bytes.
    pub max_buffer_size: u64,
    /// Largest workgroup count in one dispatch dimension.
    pub max_compute_workgroups_per_dimension: u32,
    /// Largest window of a resident matrix bound to one binding, in bytes: a resident
    /// matrix larger than this (or than the binding limit) is bound to its kernels as
    /// several windows. The device's binding limit unless lowered.
    pub max_resident_window_bytes: u64,
    /// Storage buffers one kernel may bind (bounds the windows of a resident matrix).
    pub max_storage_buffers_per_shader_stage: u32,
}

impl KernelLimits {
    /// The largest storage buffer the kernels may bind, in bytes.
    pub fn max_storage_bytes(&self) -> u64 {
        self.max_storage_buffer_binding_size
            .min(self.max_buffer_size)
    }

    /// `self`, lowered to `other` wherever `other` is lower.
    pub fn min(self, other: KernelLimits) -> KernelLimits {
        KernelLimits {
            max_storage_buffer_binding_size: self
                .max_storage_buffer_binding_size
                .min(other.max_storage_buffer_binding_size),
            max_buffer_size: self.max_buffer_size.min(other.max_buffer_size),
            max_compute_workgroups_per_dimension: self
                .max_compute_workgroups_per_dimension
                .min(other.max_compute_workgroups_per_dimension)
                .max(1),
            max_resident_window_bytes: self
                .max_resident_window_bytes
                .min(other.max_resident_window_bytes),
            max_storage_buffers_per_shader_stage: self
                .max_storage_buffers_per_shader_stage
                .min(other.max_storage_buffers_per_shader_stage),
        }
    }

    /// The largest resident matrix bound as one binding, in bytes: the binding limit,
    /// the window limit and 32-bit word offsets.
    pub fn max_single_binding_bytes(&self) -> u64 {
        self.max_storage_bytes()
            .min(self.max_resident_window_bytes)
            .min(u64::from(u32::MAX))
    }
}

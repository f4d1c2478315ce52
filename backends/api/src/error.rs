use crate::info::BackendKind;

/// What a backend reports. Shape errors are the caller's to prevent; they appear here
/// only as [`BackendError::InvalidInput`] from the shared validators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The backend cannot run on this machine (no driver, no device, not compiled in).
    #[error("{backend}: unavailable: {reason}")]
    Unavailable {
        backend: BackendKind,
        reason: String,
    },
    /// A device name or ordinal that this backend does not have.
    #[error("{backend}: unknown device {device:?} ({available} available)")]
    UnknownDevice {
        backend: BackendKind,
        device: String,
        available: usize,
    },
    /// The device ran out of memory for this call.
    #[error(
        "{device}: out of device memory: needed {needed_bytes} bytes, {available_bytes} available"
    )]
    OutOfMemory {
        device: String,
        needed_bytes: u64,
        available_bytes: u64,
    },
    /// The device stopped answering or reported a fault mid-call.
    #[error("{device}: device lost: {reason}")]
    DeviceLost { device: String, reason: String },
    /// A kernel failed to build or launch.
    #[error("{device}: kernel {kernel} failed: {message}")]
    Kernel {
        device: String,
        kernel: String,
        message: String,
    },
    /// The call's arguments break the seam's contract.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl BackendError {
    /// Wraps a validation message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }
}

//! Transfer accounting: the data a device backend moves between host and device memory,
//! the times it blocks on the device, and the kernels it launches.
//!
//! Every device backend owns one [`TransferCounters`] and counts at the single place
//! each kind of event happens (its one upload, readback and wait helpers), so that no
//! path escapes the count. Callers read [`TransferStats`] snapshots through
//! [`Backend::transfer_stats`](crate::Backend::transfer_stats) and subtract two of
//! them ([`TransferStats::since`]) to get what a call, or a whole proof, moved. The
//! counters only grow; nothing resets them, so concurrent readers never disturb each
//! other.
//!
//! What counts:
//! - A *host-to-device copy*: one command that writes host memory into device memory
//!   (a buffer write, a `memcpy` from host, a buffer created with host contents),
//!   with its bytes. The part of those that are tables the backend computes itself
//!   (twiddles, coset scale factors, Poseidon2 constants, per-dispatch parameter
//!   blocks) is also counted as *table* copies and bytes: the rest is the caller's data.
//! - A *device-to-host copy*: one command that brings device memory into host memory
//!   the backend hands on (a buffer read or map, a `memcpy` to host).
//! - A *synchronous wait*: the host blocking until the device has done earlier work (a
//!   queue finish, a blocking read or write, a device poll that waits, a stream or
//!   event synchronisation).
//! - A *kernel launch*: one kernel enqueued on the device (an OpenCL NDRange, a CUDA
//!   launch, a wgpu dispatch; a wgpu kernel split into several dispatches to respect
//!   dispatch limits counts each).
//! - Not counted: what kernel timing does for itself while it is on (reading
//!   timestamps or profiling events and the waits for them), which a proof without
//!   timing does not do.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// A snapshot of a backend's transfer counters, or the difference of two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TransferStats {
    /// Bytes written from host memory into device memory, tables included.
    pub host_to_device_bytes: u64,
    /// Host-to-device copy commands, tables included.
    pub host_to_device_copies: u64,
    /// Of [`Self::host_to_device_bytes`], the bytes of tables the backend computed
    /// itself (not the caller's data).
    pub table_bytes: u64,
    /// Of [`Self::host_to_device_copies`], the copies of such tables.
    pub table_copies: u64,
    /// Bytes read from device memory into host memory.
    pub device_to_host_bytes: u64,
    /// Device-to-host copy commands.
    pub device_to_host_copies: u64,
    /// Times the host blocked until the device had finished earlier work.
    pub sync_waits: u64,
    /// Kernels launched (dispatches, for wgpu).
    pub kernel_launches: u64,
}

impl TransferStats {
    /// What was counted between `earlier` and `self` (two snapshots of the same
    /// counters, `earlier` taken first).
    pub fn since(&self, earlier: &TransferStats) -> TransferStats {
        TransferStats {
            host_to_device_bytes: self
                .host_to_device_bytes
                .saturating_sub(earlier.host_to_device_bytes),
            host_to_device_copies: self
                .host_to_device_copies
                .saturating_sub(earlier.host_to_device_copies),
            table_bytes: self.table_bytes.saturating_sub(earlier.table_bytes),
            table_copies: self.table_copies.saturating_sub(earlier.table_copies),
            device_to_host_bytes: self
                .device_to_host_bytes
                .saturating_sub(earlier.device_to_host_bytes),
            device_to_host_copies: self
                .device_to_host_copies
                .saturating_sub(earlier.device_to_host_copies),
            sync_waits: self.sync_waits.saturating_sub(earlier.sync_waits),
            kernel_launches: self.kernel_launches.saturating_sub(earlier.kernel_launches),
        }
    }

    /// Bytes of the caller's data written to the device (tables left out).
    pub fn data_to_device_bytes(&self) -> u64 {
        self.host_to_device_bytes.saturating_sub(self.table_bytes)
    }

    /// Copies of the caller's data to the device (tables left out).
    pub fn data_to_device_copies(&self) -> u64 {
        self.host_to_device_copies.saturating_sub(self.table_copies)
    }
}

/// The live counters of one backend instance: atomics, updated from any thread.
#[derive(Debug, Default)]
pub struct TransferCounters {
    host_to_device_bytes: AtomicU64,
    host_to_device_copies: AtomicU64,
    table_bytes: AtomicU64,
    table_copies: AtomicU64,
    device_to_host_bytes: AtomicU64,
    device_to_host_copies: AtomicU64,
    sync_waits: AtomicU64,
    kernel_launches: AtomicU64,
}

impl TransferCounters {
    /// Counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// One copy of `bytes` bytes of the caller's data into device memory.
    pub fn host_to_device(&self, bytes: u64) {
        self.host_to_device_copies.fetch_add(1, Ordering::Relaxed);
        self.host_to_device_bytes
            .fetch_add(bytes, Ordering::Relaxed);
    }

    /// One copy of `bytes` bytes of a table the backend computed into device memory.
    pub fn table_to_device(&self, bytes: u64) {
        self.table_copies.fetch_add(1, Ordering::Relaxed);
        self.table_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.host_to_device(bytes);
    }

    /// One copy of `bytes` bytes from device memory into host memory.
    pub fn device_to_host(&self, bytes: u64) {
        self.device_to_host_copies.fetch_add(1, Ordering::Relaxed);
        self.device_to_host_bytes
            .fetch_add(bytes, Ordering::Relaxed);
    }

    /// One time the host blocked until the device finished earlier work.
    pub fn sync_wait(&self) {
        self.sync_waits.fetch_add(1, Ordering::Relaxed);
    }

    /// One kernel launched on the device.
    pub fn kernel_launch(&self) {
        self.kernel_launches.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far. Fields are read one by one: a snapshot taken while another
    /// thread is counting may see part of that thread's event.
    pub fn snapshot(&self) -> TransferStats {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TransferStats {
            host_to_device_bytes: r(&self.host_to_device_bytes),
            host_to_device_copies: r(&self.host_to_device_copies),
            table_bytes: r(&self.table_bytes),
            table_copies: r(&self.table_copies),
            device_to_host_bytes: r(&self.device_to_host_bytes),
            device_to_host_copies: r(&self.device_to_host_copies),
            sync_waits: r(&self.sync_waits),
            kernel_launches: r(&self.kernel_launches),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_tables_are_part_of_host_to_device() {
        let c = TransferCounters::new();
        assert_eq!(c.snapshot(), TransferStats::default());
        c.host_to_device(100);
        c.table_to_device(12);
        c.device_to_host(40);
        c.device_to_host(8);
        c.sync_wait();
        c.kernel_launch();
        let s = c.snapshot();
        assert_eq!(
            s,
            TransferStats {
                host_to_device_bytes: 112,
                host_to_device_copies: 2,
                table_bytes: 12,
                table_copies: 1,
                device_to_host_bytes: 48,
                device_to_host_copies: 2,
                sync_waits: 1,
                kernel_launches: 1,
            }
        );
        assert_eq!(
            (s.data_to_device_bytes(), s.data_to_device_copies()),
            (100, 1)
        );
    }

    #[test]
    fn since_is_the_difference_of_two_snapshots() {
        let c = TransferCounters::new();
        c.host_to_device(7);
        c.sync_wait();
        let before = c.snapshot();
        c.device_to_host(32);
        c.sync_wait();
        c.sync_wait();
        let delta = c.snapshot().since(&before);
        assert_eq!(
            delta,
            TransferStats {
                device_to_host_bytes: 32,
                device_to_host_copies: 1,
                sync_waits: 2,
                ..TransferStats::default()
            }
        );
        // Snapshots in the wrong order give zero, not a wrapped count.
        assert_eq!(before.since(&c.snapshot()), TransferStats::default());
    }

    #[test]
    fn counting_from_many_threads_loses_nothing() {
        let c = TransferCounters::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        c.host_to_device(4);
                        c.sync_wait();
                    }
                });
            }
        });
        let s = c.snapshot();
        assert_eq!(
            (s.host_to_device_copies, s.host_to_device_bytes),
            (4000, 16000)
        );
        assert_eq!(s.sync_waits, 4000);
    }
}

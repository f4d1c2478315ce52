//! Kernel timing: how long the device itself spent running kernels.
//!
//! End-to-end time (what a caller measures around a backend call) includes uploads,
//! readbacks, host-side preparation and synchronisation. *Kernel time* is the part the
//! device spent executing kernels, measured by the device where it can
//! (OpenCL profiling events, wgpu timestamp queries, CUDA events). It is off until
//! [`Backend::set_kernel_timing`](crate::Backend::set_kernel_timing) turns it on,
//! because it costs an event or a query per launch.
//!
//! [`KernelClock`] is the accumulator backends share: device backends add what their
//! device reported ([`KernelClock::add`]); the CPU backend, whose kernels run on the
//! host, times its calls with [`KernelClock::span`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// An accumulator of kernel time, off until turned on.
///
/// Host spans overlapping in time (kernel calls made from several threads at once)
/// count once: the clock measures the wall time during which at least one span was
/// open.
#[derive(Debug, Default)]
pub struct KernelClock {
    state: Mutex<ClockState>,
}

#[derive(Debug, Default)]
struct ClockState {
    on: bool,
    open_spans: u32,
    since: Option<Instant>,
    total: Duration,
}

impl KernelClock {
    /// A clock that is off.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Turns measuring on or off; either way the total starts again from zero.
    pub fn set(&self, on: bool) {
        let mut s = self.state();
        s.on = on;
        s.total = Duration::ZERO;
        s.since = (on && s.open_spans > 0).then(Instant::now);
    }

    /// Whether the clock is measuring.
    pub fn is_on(&self) -> bool {
        self.state().on
    }

    /// Adds time the device reported (ignored while the clock is off).
    pub fn add(&self, elapsed: Duration) {
        let mut s = self.state();
        if s.on {
            s.total += elapsed;
        }
    }

    /// Opens a host span: the time until the returned guard drops counts as kernel
    /// time (once, however many spans are open together).
    pub fn span(&self) -> Span<'_> {
        let mut s = self.state();
        s.open_spans += 1;
        if s.open_spans == 1 && s.on {
            s.since = Some(Instant::now());
        }
        Span { clock: self }
    }

    /// The time measured since the clock was turned on or last taken, resetting it;
    /// `None` while the clock is off. Spans still open are counted up to now.
    pub fn take(&self) -> Option<Duration> {
        let mut s = self.state();
        if !s.on {
            return None;
        }
        if let Some(since) = s.since {
            let now = Instant::now();
            s.total += now - since;
            s.since = Some(now);
        }
        Some(core::mem::take(&mut s.total))
    }
}

/// An open host span of a [`KernelClock`]; closes when dropped.
#[must_use = "the span closes when the guard is dropped"]
pub struct Span<'a> {
    clock: &'a KernelClock,
}

impl Drop for Span<'_> {
    fn drop(&mut self) {
        let mut s = self.clock.state();
        s.open_spans -= 1;
        if s.open_spans == 0
            && let Some(since) = s.since.take()
        {
            s.total += since.elapsed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_clock_measures_nothing() {
        let clock = KernelClock::new();
        clock.add(Duration::from_millis(5));
        drop(clock.span());
        assert_eq!(clock.take(), None);
    }

    #[test]
    fn device_time_accumulates_and_resets_on_take() {
        let clock = KernelClock::new();
        clock.set(true);
        clock.add(Duration::from_micros(3));
        clock.add(Duration::from_micros(4));
        assert_eq!(clock.take(), Some(Duration::from_micros(7)));
        assert_eq!(clock.take(), Some(Duration::ZERO));
        clock.add(Duration::from_micros(1));
        clock.set(false);
        assert_eq!(clock.take(), None);
    }

    #[test]
    fn overlapping_spans_count_once() {
        let clock = KernelClock::new();
        clock.set(true);
        let outer = Instant::now();
        {
            let _a = clock.span();
            let _b = clock.span();
            std::thread::sleep(Duration::from_millis(20));
        }
        let wall = outer.elapsed();
        let t = clock.take().unwrap();
        assert!(t >= Duration::from_millis(20), "{t:?}");
        assert!(t <= wall, "{t:?} > {wall:?}");
        // No span open: nothing more accrues.
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.take(), Some(Duration::ZERO));
    }

    #[test]
    fn take_counts_an_open_span_up_to_now() {
        let clock = KernelClock::new();
        clock.set(true);
        let span = clock.span();
        std::thread::sleep(Duration::from_millis(30));
        let first = clock.take().unwrap();
        assert!(first >= Duration::from_millis(30));
        drop(span);
        // Only the moment between the take and the drop remains: the span is not
        // counted again from its start.
        let second = clock.take().unwrap();
        assert!(second < first, "{second:?} after {first:?}");
    }
}

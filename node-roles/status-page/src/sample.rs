//! What a status page samples over time: throughput over a sliding window of head
//! samples, and a bounded history for the chart.

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

/// Samples kept for a chart (one a second: five minutes).
pub const HISTORY: usize = 300;

/// Throughput window: rates are taken over the last ten seconds.
pub const WINDOW: Duration = Duration::from_secs(10);

/// One sample: when, the head, and the transactions counted up to it since the first
/// sample (`None` where transactions are not counted).
type Seen = (Instant, u64, Option<u64>);

/// Heads (and transactions) seen over a sliding window, from which rates are taken.
#[derive(Debug, Clone)]
pub struct Throughput {
    window: Duration,
    /// When, the head, and the transactions counted up to it since the first sample
    /// (`None` where transactions are not counted).
    seen: VecDeque<Seen>,
}

impl Default for Throughput {
    fn default() -> Self {
        Self::new(WINDOW)
    }
}

impl Throughput {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: VecDeque::new(),
        }
    }

    /// The head of the last sample: the next one counts the transactions of the
    /// blocks after it.
    pub fn last_head(&self) -> Option<u64> {
        self.seen.back().map(|(_, h, _)| *h)
    }

    /// The blocks whose transactions the next sample at `head` counts: those after
    /// [`Throughput::last_head`] (none at the first sample, or if the head went back).
    pub fn new_blocks(&self, head: u64) -> RangeInclusive<u64> {
        self.last_head().map_or(head + 1, |h| h + 1)..=head
    }

    /// Records `head` at `now`, with `txs` the transactions in
    /// [`Throughput::new_blocks`] (`None` where they are not counted); samples older
    /// than the window are dropped.
    pub fn record(&mut self, now: Instant, head: u64, txs: Option<u64>) {
        let total = match (self.seen.back(), txs) {
            (Some((_, _, Some(total))), Some(n)) => Some(total + n),
            (None, Some(n)) => Some(n),
            _ => None,
        };
        self.seen.push_back((now, head, total));
        while self
            .seen
            .front()
            .is_some_and(|(t, _, _)| now.duration_since(*t) > self.window)
        {
            self.seen.pop_front();
        }
    }

    /// Seconds between the oldest and the newest sample (at least one), if there are
    /// two.
    fn span(&self) -> Option<(f64, &Seen, &Seen)> {
        if self.seen.len() < 2 {
            return None;
        }
        let (first, last) = (self.seen.front()?, self.seen.back()?);
        Some((
            last.0.duration_since(first.0).as_secs_f64().max(1.0),
            first,
            last,
        ))
    }

    /// Blocks per second over the window (`None` before two samples).
    pub fn blocks_per_sec(&self) -> Option<f64> {
        let (secs, first, last) = self.span()?;
        Some(last.1.saturating_sub(first.1) as f64 / secs)
    }

    /// Transactions per second over the window (`None` before two samples, or where
    /// they are not counted).
    pub fn tx_per_sec(&self) -> Option<f64> {
        let (secs, first, last) = self.span()?;
        Some(last.2?.saturating_sub(first.2?) as f64 / secs)
    }
}

/// The newest [`HISTORY`] samples (or another bound), oldest first.
#[derive(Debug, Clone)]
pub struct History<T> {
    bound: usize,
    samples: VecDeque<T>,
}

impl<T> Default for History<T> {
    fn default() -> Self {
        Self::new(HISTORY)
    }
}

impl<T> History<T> {
    pub fn new(bound: usize) -> Self {
        Self {
            bound: bound.max(1),
            samples: VecDeque::new(),
        }
    }

    pub fn push(&mut self, sample: T) {
        if self.samples.len() == self.bound {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }
}

impl<T: Clone> History<T> {
    pub fn to_vec(&self) -> Vec<T> {
        self.samples.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_counts_the_blocks_within_the_window() {
        let t0 = Instant::now();
        let sec = Duration::from_secs(1);
        let mut t = Throughput::new(Duration::from_secs(10));
        assert!(
            t.new_blocks(5).is_empty(),
            "nothing counted at the first sample"
        );
        t.record(t0, 5, Some(0));
        assert_eq!(t.blocks_per_sec(), None, "one sample: no rate yet");
        assert_eq!(t.new_blocks(9), 6..=9);
        t.record(t0 + 2 * sec, 9, Some(10));
        assert_eq!(t.blocks_per_sec(), Some(2.0));
        assert_eq!(t.tx_per_sec(), Some(5.0));
        // The first sample leaves the window: rates from the second one on.
        t.record(t0 + 11 * sec, 12, Some(9));
        assert_eq!(t.blocks_per_sec(), Some(3.0 / 9.0));
        assert_eq!(t.tx_per_sec(), Some(1.0));
        // No new block within the window: rates of zero.
        t.record(t0 + 30 * sec, 12, Some(0));
        t.record(t0 + 31 * sec, 12, Some(0));
        assert_eq!(t.blocks_per_sec(), Some(0.0));
        assert_eq!(t.tx_per_sec(), Some(0.0));
        // A head that went back counts no block.
        assert!(t.new_blocks(10).is_empty());
        // Transactions not counted: no rate for them.
        let mut u = Throughput::default();
        u.record(t0, 1, None);
        u.record(t0 + sec, 3, None);
        assert_eq!((u.blocks_per_sec(), u.tx_per_sec()), (Some(2.0), None));
    }

    #[test]
    fn history_keeps_the_newest_samples() {
        let mut h = History::new(3);
        for i in 0..5 {
            h.push(i);
        }
        assert_eq!(h.to_vec(), vec![2, 3, 4]);
    }
}

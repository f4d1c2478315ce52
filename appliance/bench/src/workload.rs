//! The standard workloads: fixed and versioned, so that results from different
//! machines compare.
//!
//! A workload's id names everything that determines its work
//! (`kernels/lde/koalabear/log20/w16`, `proofs/keccak/babybear/log16`,
//! `state/apply/10k`); what the id leaves out is fixed by [`SUITE_VERSION`] (the LDE
//! blowup, the FRI preset, the size of the state before the updates, ...). Changing
//! any of it, or how inputs are drawn from the seed, changes the work measured: bump
//! [`SUITE_VERSION`] and say what changed in `docs/benchmarking.md`.

use core::fmt;

use proofbox_backend_api::FieldId;
use proofbox_prover::{CircuitId, FriPreset};
use serde::{Deserialize, Serialize};

/// The version of the workload definitions. Results compare only between runs of the
/// same suite version.
pub const SUITE_VERSION: u32 = 3;

/// The largest seed: 2^53 - 1, the largest integer a JSON reader that parses numbers
/// as doubles (JavaScript) reads exactly.
pub const MAX_SEED: u64 = (1 << 53) - 1;

/// log2 of the LDE blowup of every kernel workload (blowup 2, as Plonky3's benchmark
/// FRI parameters).
pub const LDE_ADDED_BITS: usize = 1;

/// The FRI parameters of every proof workload: the appliance's default (about 100
/// bits of conjectured security).
pub const PROOF_FRI: FriPreset = FriPreset::Standard;

/// Keys in the state tree before a state workload's updates are applied.
pub const STATE_PRESTATE_KEYS: usize = 1 << 14;

/// log2 sizes of the kernel workloads of the standard set.
pub const KERNEL_LOG_ROWS: core::ops::RangeInclusive<u8> = 16..=24;
/// Column counts of the kernel workloads of the standard set.
pub const KERNEL_WIDTHS: [usize; 3] = [1, 16, 256];
/// log2 trace heights of the proof workloads of the standard set.
pub const PROOF_LOG_ROWS: core::ops::RangeInclusive<u8> = 14..=20;
/// Updates per state workload of the standard set.
pub const STATE_UPDATES: [usize; 2] = [1_000, 10_000];

/// The groups of workloads `--suite` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// The two kernels a STARK prover spends its time in: coset LDE and Poseidon2
    /// Merkle commitment.
    Kernels,
    /// Whole proofs of the benchmark circuits, each verified.
    Proofs,
    /// The Poseidon2 state tree: batch updates and state-transition proofs.
    State,
}

impl Suite {
    pub const ALL: [Suite; 3] = [Self::Kernels, Self::Proofs, Self::State];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Kernels => "kernels",
            Self::Proofs => "proofs",
            Self::State => "state",
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for Suite {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown suite {s:?} (expected kernels, proofs, state or all)"))
    }
}

/// The kernel operations measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KernelOp {
    /// `Backend::coset_lde_batch` (blowup 2, shift the field's generator).
    #[serde(rename = "lde")]
    Lde,
    /// `Backend::merkle_tree` of the input matrix (Poseidon2 leaves and nodes).
    #[serde(rename = "commit")]
    Commit,
    /// `Backend::lde_and_merkle_tree`: the LDE, then the tree of the extension, in
    /// one call (what the prover calls; devices keep the extension resident).
    #[serde(rename = "lde-commit")]
    LdeCommit,
}

impl KernelOp {
    pub const ALL: [KernelOp; 3] = [Self::Lde, Self::Commit, Self::LdeCommit];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Lde => "lde",
            Self::Commit => "commit",
            Self::LdeCommit => "lde-commit",
        }
    }
}

/// What one workload does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spec {
    /// One kernel call on a seeded `2^log_rows x width` matrix.
    Kernel {
        op: KernelOp,
        field: FieldId,
        log_rows: u8,
        width: usize,
    },
    /// One proof (with [`PROOF_FRI`]) of a circuit whose inputs come from the seed.
    Proof {
        circuit: CircuitId,
        field: FieldId,
        log_rows: u8,
    },
    /// `StateTree::apply` of a seeded diff of `updates` updates (half changes of
    /// present keys, half new keys) to a seeded state of [`STATE_PRESTATE_KEYS`] keys,
    /// on all cores.
    StateApply { updates: usize },
    /// The proof of a state transition of `updates` updates (the seeded diff of
    /// `StateApply`), verified against the natively computed statement.
    StateTransition { updates: usize },
}

/// One workload of the suite.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Workload {
    /// Stable identifier, e.g. `kernels/lde/koalabear/log20/w16`.
    pub id: String,
    pub spec: Spec,
}

fn updates_label(updates: usize) -> String {
    if updates.is_multiple_of(1000) {
        format!("{}k", updates / 1000)
    } else {
        updates.to_string()
    }
}

impl Workload {
    pub fn kernel(op: KernelOp, field: FieldId, log_rows: u8, width: usize) -> Self {
        Self {
            id: format!("kernels/{}/{field}/log{log_rows}/w{width}", op.name()),
            spec: Spec::Kernel {
                op,
                field,
                log_rows,
                width,
            },
        }
    }

    pub fn proof(circuit: CircuitId, field: FieldId, log_rows: u8) -> Self {
        Self {
            id: format!("proofs/{circuit}/{field}/log{log_rows}"),
            spec: Spec::Proof {
                circuit,
                field,
                log_rows,
            },
        }
    }

    pub fn state_apply(updates: usize) -> Self {
        Self {
            id: format!("state/apply/{}", updates_label(updates)),
            spec: Spec::StateApply { updates },
        }
    }

    pub fn state_transition(updates: usize) -> Self {
        Self {
            id: format!("state/transition/{}", updates_label(updates)),
            spec: Spec::StateTransition { updates },
        }
    }

    pub fn suite(&self) -> Suite {
        match self.spec {
            Spec::Kernel { .. } => Suite::Kernels,
            Spec::Proof { .. } => Suite::Proofs,
            Spec::StateApply { .. } | Spec::StateTransition { .. } => Suite::State,
        }
    }

    /// The operation column of the reports.
    pub fn operation(&self) -> &'static str {
        match self.spec {
            Spec::Kernel { op, .. } => op.name(),
            Spec::Proof { .. } => "prove",
            Spec::StateApply { .. } => "apply",
            Spec::StateTransition { .. } => "prove-transition",
        }
    }

    pub fn field(&self) -> Option<FieldId> {
        match self.spec {
            Spec::Kernel { field, .. } | Spec::Proof { field, .. } => Some(field),
            // The state tree hashes over KoalaBear only.
            Spec::StateApply { .. } | Spec::StateTransition { .. } => Some(FieldId::KoalaBear),
        }
    }

    pub fn log_rows(&self) -> Option<u8> {
        match self.spec {
            Spec::Kernel { log_rows, .. } | Spec::Proof { log_rows, .. } => Some(log_rows),
            _ => None,
        }
    }

    pub fn width(&self) -> Option<usize> {
        match self.spec {
            Spec::Kernel { width, .. } => Some(width),
            _ => None,
        }
    }

    pub fn circuit(&self) -> Option<CircuitId> {
        match self.spec {
            Spec::Proof { circuit, .. } => Some(circuit),
            _ => None,
        }
    }

    pub fn updates(&self) -> Option<usize> {
        match self.spec {
            Spec::StateApply { updates } | Spec::StateTransition { updates } => Some(updates),
            _ => None,
        }
    }

    /// The size a chart puts on its x axis: log2 rows, or updates.
    pub fn size(&self) -> u64 {
        match self.spec {
            Spec::Kernel { log_rows, .. } | Spec::Proof { log_rows, .. } => 1u64 << log_rows,
            Spec::StateApply { updates } | Spec::StateTransition { updates } => updates as u64,
        }
    }

    /// The work one run does and its unit, for throughput (work / median time).
    pub fn work(&self) -> (f64, &'static str) {
        match self.spec {
            Spec::Kernel {
                op,
                log_rows,
                width,
                ..
            } => {
                let input = (1u64 << log_rows) as f64 * width as f64;
                match op {
                    // Extension elements produced.
                    KernelOp::Lde | KernelOp::LdeCommit => {
                        (input * (1u64 << LDE_ADDED_BITS) as f64, "elements/s")
                    }
                    // Elements hashed into leaves.
                    KernelOp::Commit => (input, "elements/s"),
                }
            }
            Spec::Proof {
                circuit, log_rows, ..
            } => (
                circuit.instances(log_rows) as f64,
                match circuit {
                    CircuitId::Blake3 => "compressions/s",
                    _ => "permutations/s",
                },
            ),
            Spec::StateApply { updates } | Spec::StateTransition { updates } => {
                (updates as f64, "updates/s")
            }
        }
    }

    /// This workload's inputs' seed: the run's seed mixed with the workload id (FNV-1a),
    /// so that a workload draws the same inputs whichever others run beside it. Kept
    /// below 2^53 (like [`MAX_SEED`]) so that every JSON reader reads it exactly.
    pub fn seed(&self, run_seed: u64) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.id.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        (h ^ run_seed) & MAX_SEED
    }
}

/// The standard set, in the order it runs: kernels (both fields, every width, every
/// size, each operation), proofs (every circuit, both fields, every size), state.
pub fn standard_workloads() -> Vec<Workload> {
    let mut out = Vec::new();
    for field in FieldId::ALL {
        for width in KERNEL_WIDTHS {
            for op in KernelOp::ALL {
                for log_rows in KERNEL_LOG_ROWS {
                    out.push(Workload::kernel(op, field, log_rows, width));
                }
            }
        }
    }
    // The state-transition circuit is measured by the state suite, on real diffs.
    for circuit in CircuitId::ALL
        .into_iter()
        .filter(|c| *c != CircuitId::StateTransition)
    {
        for field in FieldId::ALL {
            for log_rows in PROOF_LOG_ROWS {
                out.push(Workload::proof(circuit, field, log_rows));
            }
        }
    }
    out.extend(STATE_UPDATES.map(Workload::state_apply));
    out.extend(state_transition_workloads());
    out
}

/// The state-transition proofs of the standard set (1k and 10k updates): the seeded
/// diffs of `state/apply/*` proved with [`PROOF_FRI`] (`proofbox_prover::transition`).
pub fn state_transition_workloads() -> Vec<Workload> {
    STATE_UPDATES
        .into_iter()
        .map(Workload::state_transition)
        .collect()
}

/// log2 rows and width of the quick set's kernel workloads.
pub const QUICK_KERNEL: (u8, usize) = (12, 16);

/// The quick set (`--quick`): a small, fixed subset that runs in well under a minute
/// on a 2-core machine with CPU-emulated devices. Kernels and proofs below the
/// standard sizes (their ids say so: they compare only with quick runs); the state
/// workloads are the standard `state/apply/1k` and a state transition of
/// [`QUICK_TRANSITION_UPDATES`] updates.
pub fn quick_workloads() -> Vec<Workload> {
    let (log, width) = QUICK_KERNEL;
    let mut out: Vec<Workload> = KernelOp::ALL
        .into_iter()
        .map(|op| Workload::kernel(op, FieldId::KoalaBear, log, width))
        .collect();
    out.push(Workload::kernel(
        KernelOp::LdeCommit,
        FieldId::BabyBear,
        log,
        width,
    ));
    out.push(Workload::proof(CircuitId::Poseidon2, FieldId::KoalaBear, 8));
    out.push(Workload::proof(CircuitId::Keccak, FieldId::KoalaBear, 8));
    out.push(Workload::proof(CircuitId::Blake3, FieldId::BabyBear, 6));
    out.push(Workload::state_apply(1_000));
    out.push(Workload::state_transition(QUICK_TRANSITION_UPDATES));
    out
}

/// Updates in the quick set's state-transition proof (2^7 trace rows).
pub const QUICK_TRANSITION_UPDATES: usize = 4;

/// Whether `id` matches `pattern`, where `*` matches any run of characters (slashes
/// included) and everything else matches itself.
pub fn matches(pattern: &str, id: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == id;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !id.starts_with(first) || id.len() < first.len() + last.len() || !id.ends_with(last) {
        return false;
    }
    let mut rest = &id[first.len()..id.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_stable() {
        let all = standard_workloads();
        let mut ids: Vec<_> = all.iter().map(|w| w.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        assert_eq!(all.len(), 2 * 3 * 3 * 9 + 3 * 2 * 7 + 2 + 2);
        assert!(ids.contains(&"kernels/lde/koalabear/log20/w16"));
        assert!(ids.contains(&"kernels/lde-commit/babybear/log24/w256"));
        assert!(ids.contains(&"proofs/keccak/babybear/log14"));
        assert!(ids.contains(&"state/apply/10k"));
        assert!(ids.contains(&"state/transition/1k"));
        // The seed derivation is part of the suite version.
        assert_eq!(
            Workload::kernel(KernelOp::Lde, FieldId::KoalaBear, 16, 1).seed(0),
            Workload::kernel(KernelOp::Lde, FieldId::KoalaBear, 16, 1).seed(0)
        );
        assert_ne!(all[0].seed(1), all[1].seed(1));
    }

    #[test]
    fn patterns() {
        assert!(matches("kernels/*", "kernels/lde/koalabear/log16/w1"));
        assert!(matches("*/log16/*", "kernels/lde/koalabear/log16/w1"));
        assert!(matches(
            "kernels/lde/koalabear/log16/w1",
            "kernels/lde/koalabear/log16/w1"
        ));
        assert!(!matches(
            "kernels/lde/koalabear/log16/w1",
            "kernels/lde/koalabear/log16/w16"
        ));
        assert!(matches("*w16", "kernels/lde/koalabear/log16/w16"));
        assert!(!matches("*w16", "kernels/lde/koalabear/log16/w1"));
        assert!(!matches("proofs/*", "kernels/lde/koalabear/log16/w1"));
        assert!(matches("*", "anything"));
    }

    #[test]
    fn quick_proofs_are_valid_requests() {
        for w in quick_workloads() {
            if let Spec::Proof {
                circuit, log_rows, ..
            } = w.spec
            {
                assert!((circuit.min_log_rows()..=circuit.max_log_rows()).contains(&log_rows));
            }
        }
        for w in standard_workloads() {
            if let Spec::Proof {
                circuit, log_rows, ..
            } = w.spec
            {
                assert!((circuit.min_log_rows()..=circuit.max_log_rows()).contains(&log_rows));
            }
        }
    }
}

//! Conformance of [`ResidentBackend::eval_quotient`]: for every circuit of
//! `proofbox-circuits` (both fields where the circuit has both) on a small real trace,
//! the backend's quotient values over its own resident LDE equal the CPU backend's
//! (whose values `proofbox-constraints`' tests check against p3-uni-stark's
//! `quotient_values`), and the call moves only its tables to the device and one
//! extension element per quotient point back; a second call of the same program
//! sends its table but not its bytecode again.

use p3_air::symbolic::SymbolicAirBuilder;
use p3_air::{Air, BaseAir};
use p3_blake3_air::Blake3Air;
use p3_field::BasedVectorSpace;
use p3_keccak_air::KeccakAir;
use p3_koala_bear::KoalaBear;
use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::quotient::{ConstraintProgram, DeviceQuotient, QuotientShape};
use proofbox_backend_api::resident::{Ext, ResidentBackend, ResidentMatrix};
use proofbox_circuits::transition::{TransitionAir, seeded_input};
use proofbox_circuits::{CircuitField, CircuitId, Statement, WithStatement};
use proofbox_constraints::{compile, log_quotient_degree};

use crate::{CpuBackend, Mismatch};

/// The LDE's blowup (log2) the checks run at: the standard FRI preset's.
pub const QUOTIENT_LOG_BLOWUP: usize = 2;

/// One circuit's quotient inputs: its program, trace, public values and quotient
/// degree.
pub struct QuotientCase<F> {
    pub program: ConstraintProgram<F>,
    pub trace: RowMajorMatrix<F>,
    pub public_values: Vec<F>,
    pub shape: QuotientShape,
}

fn case<F, A>(
    air: &A,
    name: &str,
    trace: RowMajorMatrix<F>,
    public_values: Vec<F>,
) -> QuotientCase<F>
where
    F: CircuitField,
    A: BaseAir<F> + Air<SymbolicAirBuilder<F>>,
{
    let log_trace_height = trace.height().trailing_zeros() as usize;
    QuotientCase {
        program: compile::<F, A>(air, name).unwrap_or_else(|e| panic!("{e}")),
        trace,
        public_values,
        shape: QuotientShape {
            log_trace_height,
            log_quotient_degree: log_quotient_degree::<F, A>(air, log_trace_height),
        },
    }
}

/// The benchmark circuits (Poseidon2, Keccak, Blake3) over `F`, each at its smallest
/// size (`2^3` rows; Keccak `2^5`), with its statement digest as public values.
pub fn benchmark_cases<F>() -> Vec<QuotientCase<F>>
where
    F: CircuitField,
    WithStatement<F::Poseidon2Air>: BaseAir<F> + Air<SymbolicAirBuilder<F>>,
{
    let statement = |circuit: CircuitId| Statement {
        circuit,
        log_rows: circuit.min_log_rows(),
        seed: 11,
        input: Vec::new(),
    };
    let digest = |s: &Statement| s.digest::<F>().to_vec();
    let s = statement(CircuitId::Poseidon2);
    let poseidon2 = case(
        &F::poseidon2_air(),
        "poseidon2",
        s.trace::<F>(0),
        digest(&s),
    );
    let s = statement(CircuitId::Keccak);
    let keccak = case(
        &WithStatement(KeccakAir {}),
        "keccak",
        s.trace::<F>(0),
        digest(&s),
    );
    let s = statement(CircuitId::Blake3);
    let blake3 = case(
        &WithStatement(Blake3Air {}),
        "blake3",
        s.trace::<F>(0),
        digest(&s),
    );
    vec![poseidon2, keccak, blake3]
}

/// Poseidon2 at `2^12` rows: more quotient points (`2^13`) than a device runs threads at
/// once and more instructions than one slice of a device's interpreter, so a backend
/// that runs the points in batches and the bytecode in slices is checked across both.
pub fn batched_cases<F>() -> Vec<QuotientCase<F>>
where
    F: CircuitField,
    WithStatement<F::Poseidon2Air>: BaseAir<F> + Air<SymbolicAirBuilder<F>>,
{
    let s = Statement {
        circuit: CircuitId::Poseidon2,
        log_rows: 12,
        seed: 13,
        input: Vec::new(),
    };
    let digest = s.digest::<F>().to_vec();
    vec![case(
        &F::poseidon2_air(),
        "poseidon2",
        s.trace::<F>(0),
        digest,
    )]
}

/// The state-transition circuit (KoalaBear only) on a seeded diff of one update.
pub fn transition_cases() -> Vec<QuotientCase<KoalaBear>> {
    let input = seeded_input(5, 1);
    let public = input
        .chunk_statement()
        .expect("a seeded statement")
        .public_values();
    vec![case(
        &TransitionAir::new(),
        "state-transition",
        input.trace(0),
        public,
    )]
}

/// Checks every circuit's quotient on `backend` against the CPU backend's, and what
/// the call moves.
pub fn check_quotients<B: ResidentBackend, F: CircuitField>(
    backend: &B,
    cases: &[QuotientCase<F>],
) -> Result<(), Mismatch> {
    if let Some(c) = CircuitId::ALL
        .into_iter()
        .filter(|c| c.fields().contains(&F::ID))
        .find(|c| !cases.iter().any(|k| k.program.name == c.name()))
    {
        return Err(Mismatch(format!(
            "eval_quotient: no case for circuit {c} over {}",
            F::ID
        )));
    }
    let cpu = CpuBackend::new();
    let alpha = Ext::<F>::from_basis_coefficients_fn(|i| F::from_u32(17 + 1000 * i as u32));
    // The second call's: a backend that keeps the program on the device must still
    // take the new table.
    let alpha2 = Ext::<F>::from_basis_coefficients_fn(|i| F::from_u32(5 + 77 * i as u32));
    // The program and shape of the previous case: a backend may keep its bytecode.
    let mut previous: Option<(String, QuotientShape)> = None;
    for c in cases {
        let what = format!("eval_quotient of {} over {}", c.program.name, F::ID);
        let fail = |e| Mismatch(format!("{what}: backend failed: {e}"));
        let want_lde = cpu
            .lde_resident(c.trace.clone(), QUOTIENT_LOG_BLOWUP, F::GENERATOR)
            .map_err(fail)?;
        let want_first = cpu
            .eval_quotient(&c.program, &want_lde, c.shape, alpha, &c.public_values)
            .map_err(fail)?;
        let want = cpu
            .eval_quotient(&c.program, &want_lde, c.shape, alpha2, &c.public_values)
            .map_err(fail)?;
        let lde = backend
            .lde_resident(c.trace.clone(), QUOTIENT_LOG_BLOWUP, F::GENERATOR)
            .map_err(fail)?;
        // Twice: the first call may build the kernel; the second, with another
        // alpha, is measured.
        let before_first = backend.transfer_stats();
        let first = backend
            .eval_quotient(&c.program, &lde, c.shape, alpha, &c.public_values)
            .map_err(fail)?;
        let moved_first = backend.transfer_stats().since(&before_first);
        if first != want_first {
            return Err(Mismatch(format!(
                "{what}: the first call's values differ from the CPU backend's"
            )));
        }
        let before = backend.transfer_stats();
        let got = backend
            .eval_quotient(&c.program, &lde, c.shape, alpha2, &c.public_values)
            .map_err(fail)?;
        let moved = backend.transfer_stats().since(&before);
        if got.len() != want.len() {
            return Err(Mismatch(format!(
                "{what}: {} values, expected {}",
                got.len(),
                want.len()
            )));
        }
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            return Err(Mismatch(format!(
                "{what}: point {i} of {}: {:?}, expected {:?}",
                got.len(),
                got[i],
                want[i]
            )));
        }
        let new_program = previous.as_ref() != Some(&(c.program.name.clone(), c.shape));
        previous = Some((c.program.name.clone(), c.shape));
        if backend.transfer_counters().is_some() && new_program {
            // The second call of a program sends its table, not its bytecode again.
            let code_bytes = 4 * DeviceQuotient::prepare(
                &c.program,
                lde.height(),
                lde.width(),
                c.shape,
                alpha2,
                &c.public_values,
            )
            .map_err(fail)?
            .code_words() as u64;
            if moved.table_bytes + code_bytes > moved_first.table_bytes {
                return Err(Mismatch(format!(
                    "{what}: the second call sent {} bytes of tables, the first {}: the program's {code_bytes} bytes of bytecode went again",
                    moved.table_bytes, moved_first.table_bytes
                )));
            }
        }
        if backend.transfer_counters().is_some() {
            let back = (got.len() * 16) as u64;
            if moved.data_to_device_bytes() != 0
                || moved.device_to_host_bytes != back
                || moved.kernel_launches == 0
            {
                return Err(Mismatch(format!(
                    "{what}: moved {} bytes of data to the device and {} back with {} launches, expected 0, {back} and some ({moved:?})",
                    moved.data_to_device_bytes(),
                    moved.device_to_host_bytes,
                    moved.kernel_launches
                )));
            }
        }
    }
    Ok(())
}

/// [`check_quotients`], panicking with the first mismatch.
pub fn run_quotient_suite<B: ResidentBackend, F: CircuitField>(
    backend: &B,
    cases: &[QuotientCase<F>],
) {
    check_quotients(backend, cases)
        .unwrap_or_else(|m| panic!("{} backend ({}): {}", B::KIND, backend.device().id, m.0));
}

//! The compiled programs, run by the CPU backend's `eval_quotient` (the host
//! interpreter) over a real trace's LDE, give exactly the quotient values of
//! p3-uni-stark's own prover code (its public `quotient_values`, fed the trace on the
//! quotient domain the way `prove` feeds it), for every circuit and field; so does
//! their register bytecode (what the device kernels run) interpreted on the host; a
//! program with one constraint dropped does not.

use p3_air::symbolic::{AirLayout, SymbolicAirBuilder};
use p3_air::{Air, BaseAir};
use p3_baby_bear::BabyBear;
use p3_blake3_air::Blake3Air;
use p3_commit::{Pcs, PolynomialSpace, UnivariateStarkPcs};
use p3_field::{Field, PrimeCharacteristicRing};
use p3_keccak_air::KeccakAir;
use p3_koala_bear::KoalaBear;
use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrix;
use p3_uni_stark::QuotientAir;
use proofbox_backend_api::quotient::{Bytecode, ConstraintProgram, QuotientShape, plan_quotient};
use proofbox_backend_api::{Backend, Ext, ResidentBackend};
use proofbox_backend_cpu::CpuBackend;
use proofbox_circuits::transition::{TransitionAir, seeded_input};
use proofbox_circuits::{CircuitField, CircuitId, Statement, WithStatement};
use proofbox_constraints::{compile, log_quotient_degree};
use proofbox_verifier::FriPreset;
use proofbox_verifier::config::Challenger;
use proofbox_verifier::config::stock::{Config, config};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const LOG_BLOWUP: usize = 2;

fn random_ext<F: CircuitField>(rng: &mut StdRng) -> Ext<F> {
    Ext::<F>::from_basis_coefficients_fn_(|_| F::from_u32(rng.random_range(0..F::ORDER_U32)))
}

trait FromFn<F> {
    fn from_basis_coefficients_fn_(f: impl FnMut(usize) -> F) -> Self;
}
impl<F: CircuitField> FromFn<F> for Ext<F> {
    fn from_basis_coefficients_fn_(f: impl FnMut(usize) -> F) -> Self {
        <Self as p3_field::BasedVectorSpace<F>>::from_basis_coefficients_fn(f)
    }
}

/// Plonky3's quotient values for `trace` and the interpreter's, from the program.
fn both<F, A>(
    air: &A,
    program: &ConstraintProgram<F>,
    trace: RowMajorMatrix<F>,
    public_values: &[F],
    seed: u64,
) -> (Vec<Ext<F>>, Vec<Ext<F>>)
where
    F: CircuitField,
    A: BaseAir<F> + Air<SymbolicAirBuilder<F>> + QuotientAir<Config<F>>,
{
    let n = trace.height();
    let log_n = n.trailing_zeros() as usize;
    let log_qd = log_quotient_degree::<F, A>(air, log_n);
    let mut rng = StdRng::seed_from_u64(seed);
    let alpha = random_ext::<F>(&mut rng);

    // Plonky3: what `prove` does between committing the trace and the quotient.
    let cfg = config::<F>(&FriPreset::Standard.params());
    let pcs = p3_uni_stark::StarkGenericConfig::pcs(&cfg);
    let trace_domain = <_ as Pcs<Ext<F>, Challenger<F>>>::natural_domain_for_degree(pcs, n);
    let quotient_domain = trace_domain.create_disjoint_domain(n << log_qd);
    let (_, data) = <_ as Pcs<Ext<F>, Challenger<F>>>::commit(pcs, [(trace_domain, trace.clone())])
        .expect("commit");
    let on_quotient = <_ as UnivariateStarkPcs<Ext<F>, Challenger<F>>>::get_evaluations_on_domain(
        pcs,
        &data,
        0,
        quotient_domain,
    );
    let reference = p3_uni_stark::quotient_values::<Config<F>, A, _>(
        pcs,
        air,
        public_values,
        AirLayout::from_air(air),
        trace_domain,
        quotient_domain,
        &on_quotient,
        None,
        alpha,
    );

    // ProofBox: the CPU backend's `eval_quotient` (the host interpreter) over the
    // bit-reversed LDE the resident backends make, and the register bytecode the
    // device kernels run, interpreted on the host, point for point.
    let cpu = CpuBackend::new();
    let lde = cpu
        .coset_lde_batch(trace.clone(), LOG_BLOWUP, F::GENERATOR)
        .expect("lde");
    let shape = QuotientShape {
        log_trace_height: log_n,
        log_quotient_degree: log_qd,
    };
    let plan = plan_quotient(
        program,
        lde.height(),
        lde.width(),
        shape,
        alpha,
        public_values,
    )
    .expect("plan");
    let code = Bytecode::compile(program).expect("bytecode");
    let by_bytecode: Vec<Ext<F>> = (0..plan.size())
        .map(|i| {
            let (r, rn) = plan.rows_of(i);
            code.eval_point(
                &plan,
                i,
                lde.row_slice(r).unwrap().as_ref(),
                lde.row_slice(rn).unwrap().as_ref(),
            )
        })
        .collect();
    let resident = cpu
        .lde_resident(trace, LOG_BLOWUP, F::GENERATOR)
        .expect("lde");
    let ours = cpu
        .eval_quotient(program, &resident, shape, alpha, public_values)
        .expect("eval_quotient");
    assert_eq!(
        ours, by_bytecode,
        "{}: the bytecode differs from the program",
        program.name
    );
    (reference, ours)
}

/// Checks one AIR, and that dropping a constraint is caught.
fn check<F, A>(air: &A, name: &str, trace: RowMajorMatrix<F>, public_values: &[F])
where
    F: CircuitField,
    A: BaseAir<F> + Air<SymbolicAirBuilder<F>> + QuotientAir<Config<F>>,
{
    let program = compile::<F, A>(air, name).expect("compile");
    let (ops, adds, muls) = program.op_counts();
    eprintln!(
        "{name} ({}): {} constraints, {} operations ({ops} inputs and constants, {adds} additions, {muls} multiplications)",
        F::ID,
        program.constraints.len(),
        program.ops.len()
    );
    let (reference, ours) = both(air, &program, trace.clone(), public_values, 7);
    assert_eq!(reference.len(), ours.len());
    assert!(reference.iter().any(|q| *q != Ext::<F>::ZERO));
    assert_eq!(reference, ours, "{name} over {}", F::ID);

    let mut dropped = program.clone();
    let j = dropped.constraints.len() / 2;
    dropped.constraints.remove(j);
    let (reference, ours) = both(air, &dropped, trace, public_values, 7);
    assert_ne!(
        reference, ours,
        "{name}: a dropped constraint went unnoticed"
    );
}

fn statement(circuit: CircuitId, log_rows: u8) -> Statement {
    Statement {
        circuit,
        log_rows,
        seed: 3,
        input: Vec::new(),
    }
}

fn public<F: Field>(k: usize) -> Vec<F> {
    (0..k as u32).map(|i| F::from_u32(1000 + i)).collect()
}

fn benchmark_circuits<F: CircuitField>()
where
    WithStatement<F::Poseidon2Air>:
        BaseAir<F> + Air<SymbolicAirBuilder<F>> + QuotientAir<Config<F>>,
{
    let pv = public::<F>(proofbox_circuits::NUM_PUBLIC_VALUES);
    let s = statement(CircuitId::Poseidon2, 3);
    check(&F::poseidon2_air(), "poseidon2", s.trace::<F>(0), &pv);
    let s = statement(CircuitId::Keccak, 5);
    check(&WithStatement(KeccakAir {}), "keccak", s.trace::<F>(0), &pv);
    let s = statement(CircuitId::Blake3, 3);
    check(&WithStatement(Blake3Air {}), "blake3", s.trace::<F>(0), &pv);
}

#[test]
fn programs_match_plonky3_koalabear() {
    benchmark_circuits::<KoalaBear>();
}

#[test]
fn programs_match_plonky3_babybear() {
    benchmark_circuits::<BabyBear>();
}

#[test]
fn transition_program_matches_plonky3() {
    let input = seeded_input(5, 1);
    let public_values = input.chunk_statement().expect("statement").public_values();
    check(
        &TransitionAir::new(),
        "state-transition",
        input.trace(0),
        &public_values,
    );
}

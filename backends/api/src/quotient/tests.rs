use p3_field::{BasedVectorSpace, PrimeCharacteristicRing};
use p3_koala_bear::KoalaBear;

use super::*;
use crate::resident::Ext;

type F = KoalaBear;

fn f(x: u32) -> F {
    F::from_u32(x)
}

#[test]
fn builder_shares_equal_operations_and_folds_constants() {
    let mut b = ProgramBuilder::<F>::new();
    let (x, y) = (b.input(Input::Local(0)), b.input(Input::Next(1)));
    assert_eq!(b.add(x, y), b.add(y, x));
    assert_eq!(b.mul(x, y), b.mul(y, x));
    assert_ne!(b.sub(x, y), b.sub(y, x));
    let (one, zero, two) = (b.constant(F::ONE), b.constant(F::ZERO), b.constant(f(2)));
    assert_eq!(b.mul(x, one), x);
    assert_eq!(b.add(zero, x), x);
    assert_eq!(b.mul(x, zero), zero);
    assert_eq!(b.sub(x, x), zero);
    let nx = b.neg(x);
    assert_eq!(b.neg(nx), x);
    let four = b.add(two, two);
    assert_eq!(b.constant(f(4)), four);
    let p = b.finish("t", 2, 0, vec![], vec![four]);
    assert!(p.check().is_ok());
}

#[test]
fn malformed_programs_are_refused() {
    let mut p = ProgramBuilder::<F>::new().finish("t", 1, 0, vec![], vec![]);
    p.ops = vec![Op::Add(0, 0)];
    assert!(matches!(
        p.check(),
        Err(ProgramError::ForwardOperand { .. })
    ));
    p.ops = vec![Op::Input(Input::Local(1))];
    assert!(matches!(
        p.check(),
        Err(ProgramError::InputOutOfRange { .. })
    ));
    p.ops = vec![Op::Const(F::ONE)];
    p.constraints = vec![1];
    assert!(matches!(
        p.check(),
        Err(ProgramError::ConstraintOutOfRange { .. })
    ));
    p.constraints = vec![0];
    p.periodic_columns = vec![vec![F::ONE; 3]];
    assert!(matches!(p.check(), Err(ProgramError::BadPeriod { .. })));
}

/// Every input kind, a periodic column, two constraints reading the same value.
fn sample() -> ConstraintProgram<F> {
    let mut b = ProgramBuilder::<F>::new();
    let (l0, l1, n0) = (
        b.input(Input::Local(0)),
        b.input(Input::Local(1)),
        b.input(Input::Next(0)),
    );
    let (pv, per) = (b.input(Input::Public(0)), b.input(Input::Periodic(0)));
    let (first, last, trans) = (
        b.input(Input::IsFirstRow),
        b.input(Input::IsLastRow),
        b.input(Input::IsTransition),
    );
    let d = b.sub(n0, l1);
    let c0 = b.mul(trans, d);
    let e = b.sub(l0, pv);
    let c1 = b.mul(first, e);
    let m = b.mul(l0, per);
    let c2 = b.mul(last, m);
    let c3 = b.neg(c2);
    b.finish(
        "sample",
        2,
        1,
        vec![vec![f(1), f(0), f(5), f(9)]],
        vec![c0, c1, c2, c3, c0],
    )
}

fn rows(seed: u32, n: usize, w: usize) -> Vec<Vec<F>> {
    (0..n)
        .map(|r| {
            (0..w)
                .map(|c| f(seed + 1000 * r as u32 + c as u32))
                .collect()
        })
        .collect()
}

#[test]
fn bytecode_matches_the_program_on_every_point() {
    let program = sample();
    let shape = QuotientShape {
        log_trace_height: 3,
        log_quotient_degree: 1,
    };
    let alpha = Ext::<F>::from(f(7)) + Ext::<F>::from_basis_coefficients_fn(|i| f(i as u32));
    let lde = rows(3, 32, 2);
    let plan = plan_quotient(&program, 32, 2, shape, alpha, &[f(11)]).unwrap();
    assert_eq!(plan.periodic_height, 8);
    let code = Bytecode::compile(&program).unwrap();
    assert!(code.uses_x && code.registers < program.ops.len());
    let mut scratch = Vec::new();
    for i in 0..plan.size() {
        let (r, rn) = plan.rows_of(i);
        let want = plan.eval_point(&program, i, &lde[r], &lde[rn], &mut scratch);
        assert_eq!(
            code.eval_point(&plan, i, &lde[r], &lde[rn]),
            want,
            "point {i}"
        );
    }
    // The header says where the table is.
    let words = device_words(&plan, &code);
    assert_eq!(words[0] as usize, code.len());
    assert_eq!(words[1] as usize, HEADER_WORDS + code.code.len());
}

#[test]
fn a_linear_chain_needs_two_registers() {
    let mut b = ProgramBuilder::<F>::new();
    let mut acc = b.input(Input::Local(0));
    for k in 0..100 {
        let c = b.constant(f(k + 2));
        acc = b.mul(acc, c);
    }
    let p = b.finish("chain", 1, 0, vec![], vec![acc]);
    assert_eq!(Bytecode::compile(&p).unwrap().registers, 2);
}

#[test]
fn bad_calls_are_invalid_input() {
    let program = sample();
    let shape = QuotientShape {
        log_trace_height: 3,
        log_quotient_degree: 1,
    };
    let a = Ext::<F>::ONE;
    let bad = |h, w, pv: &[F]| {
        matches!(
            plan_quotient(&program, h, w, shape, a, pv),
            Err(BackendError::InvalidInput(_))
        )
    };
    assert!(
        bad(8, 2, &[F::ONE]),
        "an LDE shorter than the quotient domain"
    );
    assert!(bad(32, 3, &[F::ONE]), "another width");
    assert!(bad(32, 2, &[]), "missing public values");
    let small = QuotientShape {
        log_trace_height: 1,
        log_quotient_degree: 1,
    };
    assert!(matches!(
        plan_quotient(&program, 32, 2, small, a, &[F::ONE]),
        Err(BackendError::InvalidInput(_))
    ));
}

#[test]
fn a_kept_buffer_is_reused_for_the_same_program_and_shape_only() {
    let program = sample();
    let shape = QuotientShape {
        log_trace_height: 3,
        log_quotient_degree: 1,
    };
    let alpha = Ext::<F>::from_basis_coefficients_fn(|i| F::from_u32(i as u32 + 2));
    let prepare = |shape: QuotientShape, alpha, pv: &[F]| {
        DeviceQuotient::prepare(&program, 32, 2, shape, alpha, pv).unwrap()
    };
    let first = prepare(shape, alpha, &[F::ONE]);
    let kept = KeptQuotient::new((), &first);
    // Another proof of the same program: new alpha and public values, same code.
    let next = prepare(shape, alpha.square(), &[F::TWO]);
    assert_ne!(next.words, first.words);
    let (at, table) = kept.table_for(&next).expect("same program and shape");
    assert_eq!(at, first.code_words());
    assert_eq!(at, HEADER_WORDS + 4 * first.instructions);
    let mut patched = first.words.clone();
    patched[at..].copy_from_slice(table);
    assert_eq!(patched, next.words, "the table is all that differs");
    // A shape whose table has the same layout reuses the buffer too (the table
    // carries what differs).
    let taller = prepare(
        QuotientShape {
            log_trace_height: 4,
            log_quotient_degree: 1,
        },
        alpha,
        &[F::ONE],
    );
    let (at, table) = kept.table_for(&taller).expect("same header and code");
    let mut patched = first.words.clone();
    patched[at..].copy_from_slice(table);
    assert_eq!(patched, taller.words);
    // Another quotient degree changes the header and the table's size: a new buffer.
    let other = prepare(
        QuotientShape {
            log_trace_height: 3,
            log_quotient_degree: 2,
        },
        alpha,
        &[F::ONE],
    );
    assert!(kept.table_for(&other).is_none());

    // `update` writes only the table into a matching buffer, else uploads it all.
    let mut slot: Option<KeptQuotient<Vec<u32>>> = None;
    let mut uploads = 0;
    let mut upload = |w: &[u32]| {
        uploads += 1;
        Ok::<_, ()>(w.to_vec())
    };
    let write = |b: &mut Vec<u32>, at: usize, w: &[u32]| {
        b[at..].copy_from_slice(w);
        Ok::<_, ()>(())
    };
    assert_eq!(
        *KeptQuotient::update(&mut slot, &first, write, &mut upload).unwrap(),
        first.words
    );
    assert_eq!(
        *KeptQuotient::update(&mut slot, &next, write, &mut upload).unwrap(),
        next.words
    );
    assert_eq!(
        *KeptQuotient::update(&mut slot, &other, write, &mut upload).unwrap(),
        other.words
    );
    assert_eq!(
        uploads, 2,
        "the first and the other shape upload, the next proof writes"
    );
}

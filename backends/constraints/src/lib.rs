//! Compiles a Plonky3 AIR into a [`ConstraintProgram`], the form the backends
//! evaluate the quotient in (`proofbox_backend_api::quotient`, and
//! `ResidentBackend::eval_quotient` on every backend).
//!
//! - [`compile`] runs the AIR on Plonky3's `SymbolicAirBuilder`
//!   (`p3_air::symbolic::get_all_symbolic_constraints`), then lowers the expression
//!   trees (`Arc` trees whose subtrees repeat) into one flat SSA program: each shared
//!   node is lowered once (memoized by address), and structurally equal operations
//!   are one operation (hash-consing in `ProgramBuilder`), with trivial constant
//!   folding. Constraint `j` of the program is the AIR's `j`-th `assert_zero`, the
//!   order p3-uni-stark folds them in.
//! - [`log_quotient_degree`] is p3-uni-stark's quotient chunk count for the AIR.
//!
//! Supported: main-trace columns (this row and the next), public values, periodic
//! columns, the three selectors. Preprocessed columns and extension-field
//! (permutation) constraints are refused with a [`CompileError`]: none of ProofBox's
//! circuits uses them.

use std::collections::HashMap;

use p3_air::symbolic::{
    AirLayout, BaseEntry, BaseLeaf, SymbolicAirBuilder, SymbolicExpr, SymbolicExpression,
    get_all_symbolic_constraints,
};
use p3_air::{Air, BaseAir};
use p3_field::{Field, PrimeField32};
use proofbox_backend_api::quotient::{ConstraintProgram, Input, ProgramBuilder};

/// Why an AIR cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("AIR {air}: reads {width} preprocessed columns (not supported)")]
    Preprocessed { air: String, width: usize },
    #[error("AIR {air}: has {count} extension-field constraints (not supported)")]
    ExtensionConstraints { air: String, count: usize },
    #[error("AIR {air}: constraint {constraint} reads main row offset {offset} (only 0 and 1)")]
    RowOffset {
        air: String,
        constraint: usize,
        offset: usize,
    },
    #[error("AIR {air}: the compiled program is malformed: {reason}")]
    Malformed { air: String, reason: String },
}

/// The AIR's constraints as a [`ConstraintProgram`] named `name`.
pub fn compile<F, A>(air: &A, name: &str) -> Result<ConstraintProgram<F>, CompileError>
where
    F: Field + PrimeField32,
    A: BaseAir<F> + Air<SymbolicAirBuilder<F>>,
{
    let layout = AirLayout::from_air(air);
    if layout.preprocessed_width != 0 {
        return Err(CompileError::Preprocessed {
            air: name.into(),
            width: layout.preprocessed_width,
        });
    }
    let (base, ext) = get_all_symbolic_constraints::<F, F, A>(air, layout);
    if !ext.is_empty() {
        return Err(CompileError::ExtensionConstraints {
            air: name.into(),
            count: ext.len(),
        });
    }
    let mut b = ProgramBuilder::new();
    let mut memo: HashMap<*const SymbolicExpression<F>, u32> = HashMap::new();
    let mut outputs = Vec::with_capacity(base.len());
    for (j, c) in base.iter().enumerate() {
        outputs.push(
            lower(&mut b, &mut memo, c).map_err(|offset| CompileError::RowOffset {
                air: name.into(),
                constraint: j,
                offset,
            })?,
        );
    }
    let program = b.finish(
        name,
        layout.main_width,
        layout.num_public_values,
        air.periodic_columns().into_owned(),
        outputs,
    );
    program.check().map_err(|e| CompileError::Malformed {
        air: name.into(),
        reason: e.to_string(),
    })?;
    Ok(program)
}

/// p3-uni-stark's `log_num_quotient_chunks` for the AIR over `2^log_trace_height`
/// rows (no zero knowledge): log2 of the quotient domain's size over the trace's.
pub fn log_quotient_degree<F, A>(air: &A, log_trace_height: usize) -> usize
where
    F: Field,
    A: BaseAir<F> + Air<SymbolicAirBuilder<F>>,
{
    p3_uni_stark::get_log_num_quotient_chunks::<F, A>(
        air,
        AirLayout::from_air(air),
        1 << log_trace_height,
        0,
    )
}

/// Lowers one expression tree (iteratively: trees can be deep), each node once.
/// Fails with the row offset of a main-trace variable other than 0 or 1.
fn lower<F: Field + PrimeField32>(
    b: &mut ProgramBuilder<F>,
    memo: &mut HashMap<*const SymbolicExpression<F>, u32>,
    root: &SymbolicExpression<F>,
) -> Result<u32, usize> {
    let key = |e: &SymbolicExpression<F>| e as *const SymbolicExpression<F>;
    let mut stack: Vec<(&SymbolicExpression<F>, bool)> = vec![(root, false)];
    while let Some((node, expanded)) = stack.pop() {
        if memo.contains_key(&key(node)) {
            continue;
        }
        let value = match node {
            SymbolicExpr::Leaf(leaf) => leaf_value(b, leaf)?,
            SymbolicExpr::Add { x, y, .. }
            | SymbolicExpr::Sub { x, y, .. }
            | SymbolicExpr::Mul { x, y, .. } => {
                if !expanded {
                    stack.push((node, true));
                    stack.push((y, false));
                    stack.push((x, false));
                    continue;
                }
                let (a, c) = (memo[&key(x)], memo[&key(y)]);
                match node {
                    SymbolicExpr::Add { .. } => b.add(a, c),
                    SymbolicExpr::Sub { .. } => b.sub(a, c),
                    _ => b.mul(a, c),
                }
            }
            SymbolicExpr::Neg { x, .. } => {
                if !expanded {
                    stack.push((node, true));
                    stack.push((x, false));
                    continue;
                }
                b.neg(memo[&key(x)])
            }
        };
        memo.insert(key(node), value);
    }
    Ok(memo[&key(root)])
}

fn leaf_value<F: Field + PrimeField32>(
    b: &mut ProgramBuilder<F>,
    leaf: &BaseLeaf<F>,
) -> Result<u32, usize> {
    let input = match leaf {
        BaseLeaf::Constant(c) => return Ok(b.constant(*c)),
        BaseLeaf::IsFirstRow => Input::IsFirstRow,
        BaseLeaf::IsLastRow => Input::IsLastRow,
        BaseLeaf::IsTransition => Input::IsTransition,
        BaseLeaf::Variable(v) => {
            let i = v.index as u32;
            match v.entry {
                BaseEntry::Main { offset: 0 } => Input::Local(i),
                BaseEntry::Main { offset: 1 } => Input::Next(i),
                BaseEntry::Main { offset } => return Err(offset),
                BaseEntry::Public => Input::Public(i),
                BaseEntry::Periodic => Input::Periodic(i),
                // Refused before lowering (the layout has no preprocessed columns).
                BaseEntry::Preprocessed { offset } => return Err(offset),
            }
        }
    };
    Ok(b.input(input))
}

//! The constraint program: an AIR's constraints as one flat list of base-field
//! operations in SSA form (each operation's result is its index), shared
//! subexpressions computed once, and the constraint outputs in emission order.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use p3_field::{Field, PrimeField32};

/// A value a constraint reads at a point of the quotient domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Input {
    /// Column `c` of the point's trace row.
    Local(u32),
    /// Column `c` of the next row (the point `quotient_degree` steps on).
    Next(u32),
    /// Public value `k`.
    Public(u32),
    /// Periodic column `c` at the point.
    Periodic(u32),
    /// The first-row selector `Z_H(x) / (x - 1)`.
    IsFirstRow,
    /// The last-row selector `Z_H(x) / (x - h^-1)`.
    IsLastRow,
    /// The transition selector `x - h^-1`.
    IsTransition,
}

/// One operation; operands are indices of earlier operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<F> {
    Const(F),
    Input(Input),
    Add(u32, u32),
    Sub(u32, u32),
    Mul(u32, u32),
    Neg(u32),
}

/// An AIR's constraints as a program over one point of the quotient domain. See the
/// [module docs](super) for what it computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstraintProgram<F> {
    /// A name for logs and kernel labels (the AIR's).
    pub name: String,
    /// Trace columns.
    pub width: usize,
    /// Public values the constraints may read.
    pub num_public_values: usize,
    /// The AIR's periodic columns, one period each (a power of two dividing the trace
    /// height).
    pub periodic_columns: Vec<Vec<F>>,
    /// The operations, in an order where every operand comes first.
    pub ops: Vec<Op<F>>,
    /// The operation whose value is constraint `j`, in the AIR's emission order.
    pub constraints: Vec<u32>,
}

/// Ways a program can be malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    #[error("operation {op} reads operation {operand}, which does not come before it")]
    ForwardOperand { op: usize, operand: u32 },
    #[error("operation {op} reads {input:?}, out of range")]
    InputOutOfRange { op: usize, input: Input },
    #[error("constraint {constraint} names operation {op} of {ops}")]
    ConstraintOutOfRange {
        constraint: usize,
        op: u32,
        ops: usize,
    },
    #[error("periodic column {column} has period {period} (must be a power of two)")]
    BadPeriod { column: usize, period: usize },
}

impl<F: Field + PrimeField32> ConstraintProgram<F> {
    /// Checks operand order, input ranges and constraint indices.
    pub fn check(&self) -> Result<(), ProgramError> {
        for (column, col) in self.periodic_columns.iter().enumerate() {
            if col.is_empty() || !col.len().is_power_of_two() {
                return Err(ProgramError::BadPeriod {
                    column,
                    period: col.len(),
                });
            }
        }
        for (op, o) in self.ops.iter().enumerate() {
            let operands: &[u32] = match o {
                Op::Const(_) => &[],
                Op::Input(input) => {
                    let ok = match *input {
                        Input::Local(c) | Input::Next(c) => (c as usize) < self.width,
                        Input::Public(k) => (k as usize) < self.num_public_values,
                        Input::Periodic(c) => (c as usize) < self.periodic_columns.len(),
                        _ => true,
                    };
                    if !ok {
                        return Err(ProgramError::InputOutOfRange { op, input: *input });
                    }
                    &[]
                }
                Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) => &[*a, *b],
                Op::Neg(a) => &[*a],
            };
            if let Some(&operand) = operands.iter().find(|&&x| x as usize >= op) {
                return Err(ProgramError::ForwardOperand { op, operand });
            }
        }
        if let Some((constraint, &op)) = self
            .constraints
            .iter()
            .enumerate()
            .find(|&(_, &x)| x as usize >= self.ops.len())
        {
            return Err(ProgramError::ConstraintOutOfRange {
                constraint,
                op,
                ops: self.ops.len(),
            });
        }
        Ok(())
    }

    /// Whether the program reads `input` anywhere.
    pub fn reads(&self, input: Input) -> bool {
        self.ops.contains(&Op::Input(input))
    }

    /// The longest period of the periodic columns (`None` without any).
    pub fn max_period(&self) -> Option<usize> {
        self.periodic_columns.iter().map(Vec::len).max()
    }

    /// A digest of everything a compiled kernel depends on (the structure and the
    /// constants), to key caches of compiled kernels.
    pub fn fingerprint(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.width.hash(&mut h);
        self.num_public_values.hash(&mut h);
        for col in &self.periodic_columns {
            col.len().hash(&mut h);
            col.iter().for_each(|x| x.as_canonical_u32().hash(&mut h));
        }
        for o in &self.ops {
            match *o {
                Op::Const(c) => (0u8, c.as_canonical_u32()).hash(&mut h),
                Op::Input(i) => (1u8, i).hash(&mut h),
                Op::Add(a, b) => (2u8, a, b).hash(&mut h),
                Op::Sub(a, b) => (3u8, a, b).hash(&mut h),
                Op::Mul(a, b) => (4u8, a, b).hash(&mut h),
                Op::Neg(a) => (5u8, a).hash(&mut h),
            }
        }
        self.constraints.hash(&mut h);
        h.finish()
    }

    /// Operations per kind: constants and inputs, additions and subtractions and
    /// negations, multiplications.
    pub fn op_counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for o in &self.ops {
            match o {
                Op::Const(_) | Op::Input(_) => counts.0 += 1,
                Op::Add(..) | Op::Sub(..) | Op::Neg(_) => counts.1 += 1,
                Op::Mul(..) => counts.2 += 1,
            }
        }
        counts
    }
}

/// Structural key of an operation (constants by canonical value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Const(u32),
    Input(Input),
    Add(u32, u32),
    Sub(u32, u32),
    Mul(u32, u32),
    Neg(u32),
}

/// Builds a [`ConstraintProgram`] with hash-consing: an operation structurally equal
/// to an earlier one (commutative operands ordered) is that one, and operations on
/// constants, `x + 0`, `x - 0`, `x * 1`, `x * 0` and `--x` fold.
#[derive(Debug)]
pub struct ProgramBuilder<F> {
    ops: Vec<Op<F>>,
    index: HashMap<Key, u32>,
}

impl<F: Field + PrimeField32> Default for ProgramBuilder<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Field + PrimeField32> ProgramBuilder<F> {
    pub fn new() -> Self {
        Self {
            ops: Vec::new(),
            index: HashMap::new(),
        }
    }

    fn constant_of(&self, x: u32) -> Option<F> {
        match self.ops[x as usize] {
            Op::Const(c) => Some(c),
            _ => None,
        }
    }

    fn intern(&mut self, key: Key, op: Op<F>) -> u32 {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = u32::try_from(self.ops.len()).expect("fewer than 2^32 operations");
        self.ops.push(op);
        self.index.insert(key, i);
        i
    }

    pub fn constant(&mut self, c: F) -> u32 {
        self.intern(Key::Const(c.as_canonical_u32()), Op::Const(c))
    }

    pub fn input(&mut self, input: Input) -> u32 {
        self.intern(Key::Input(input), Op::Input(input))
    }

    pub fn add(&mut self, a: u32, b: u32) -> u32 {
        match (self.constant_of(a), self.constant_of(b)) {
            (Some(x), Some(y)) => return self.constant(x + y),
            (Some(x), _) if x.is_zero() => return b,
            (_, Some(y)) if y.is_zero() => return a,
            _ => {}
        }
        let (a, b) = (a.min(b), a.max(b));
        self.intern(Key::Add(a, b), Op::Add(a, b))
    }

    pub fn sub(&mut self, a: u32, b: u32) -> u32 {
        match (self.constant_of(a), self.constant_of(b)) {
            (Some(x), Some(y)) => return self.constant(x - y),
            (Some(x), _) if x.is_zero() => return self.neg(b),
            (_, Some(y)) if y.is_zero() => return a,
            _ => {}
        }
        if a == b {
            return self.constant(F::ZERO);
        }
        self.intern(Key::Sub(a, b), Op::Sub(a, b))
    }

    pub fn mul(&mut self, a: u32, b: u32) -> u32 {
        match (self.constant_of(a), self.constant_of(b)) {
            (Some(x), Some(y)) => return self.constant(x * y),
            (Some(x), _) | (_, Some(x)) if x.is_zero() => return self.constant(F::ZERO),
            (Some(x), _) if x.is_one() => return b,
            (_, Some(y)) if y.is_one() => return a,
            _ => {}
        }
        let (a, b) = (a.min(b), a.max(b));
        self.intern(Key::Mul(a, b), Op::Mul(a, b))
    }

    pub fn neg(&mut self, a: u32) -> u32 {
        if let Some(x) = self.constant_of(a) {
            return self.constant(-x);
        }
        if let Op::Neg(inner) = self.ops[a as usize] {
            return inner;
        }
        self.intern(Key::Neg(a), Op::Neg(a))
    }

    /// The program whose constraint `j` is operation `constraints[j]`.
    pub fn finish(
        self,
        name: impl Into<String>,
        width: usize,
        num_public_values: usize,
        periodic_columns: Vec<Vec<F>>,
        constraints: Vec<u32>,
    ) -> ConstraintProgram<F> {
        ConstraintProgram {
            name: name.into(),
            width,
            num_public_values,
            periodic_columns,
            ops: self.ops,
            constraints,
        }
    }
}

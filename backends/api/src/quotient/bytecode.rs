//! The constraint program as device code: register bytecode that one interpreter
//! kernel per device language runs (`firmware/common/quotient.h` for OpenCL C and
//! CUDA C, `firmware/wgsl/quotient.wgsl`), one thread per quotient point.
//!
//! [`Bytecode::compile`] drops unused operations and allocates registers by a
//! linear scan over the program's order (a register is free again after its
//! value's last use), so a thread holds at most [`Bytecode::registers`] values,
//! bounded by [`MAX_REGISTERS`]; each constraint is folded into the accumulator
//! right after its value is computed.
//!
//! An instruction is 4 words `[opcode, dst, a, b]` ([`opcode`]). The device buffer
//! ([`device_words`]) is an 8-word header, the instructions, then the plan's table:
//!
//! | header word | meaning |
//! |---|---|
//! | 0 | instructions |
//! | 1 | where the alpha powers start (4 words each) |
//! | 2 | where the public values start |
//! | 3 | where the periodic table starts |
//! | 4 | periodic columns |
//! | 5 | rows of the periodic table minus one (0 without) |
//! | 6 | where `1 / Z_H` starts (`d` words), then `Z_H` (`d`), `shift`, `generator`, `last_point` |
//! | 7 | whether the program reads a selector (then the thread computes `x`) |

use p3_field::PrimeCharacteristicRing;

use super::QuotientPlan;
use super::program::{ConstraintProgram, Input, Op};
use crate::BackendError;
use crate::resident::ResidentField;

/// Registers the interpreter kernels hold per thread.
pub const MAX_REGISTERS: usize = 4096;

/// Words of the header before the instructions.
pub const HEADER_WORDS: usize = 8;

/// Opcodes (`dst` is a register; `a`, `b` registers unless said otherwise).
pub mod opcode {
    /// `r[dst] = a` (a Montgomery word).
    pub const CONST: u32 = 0;
    /// `r[dst] = local[a]`.
    pub const LOCAL: u32 = 1;
    /// `r[dst] = next[a]`.
    pub const NEXT: u32 = 2;
    /// `r[dst] = public[a]`.
    pub const PUBLIC: u32 = 3;
    /// `r[dst] = periodic[a]`.
    pub const PERIODIC: u32 = 4;
    /// `r[dst] = is_first_row`.
    pub const IS_FIRST_ROW: u32 = 5;
    /// `r[dst] = is_last_row`.
    pub const IS_LAST_ROW: u32 = 6;
    /// `r[dst] = is_transition`.
    pub const IS_TRANSITION: u32 = 7;
    pub const ADD: u32 = 8;
    pub const SUB: u32 = 9;
    pub const MUL: u32 = 10;
    /// `r[dst] = -r[a]`.
    pub const NEG: u32 = 11;
    /// `acc += alpha_power[a] * r[dst]` (constraint `a`).
    pub const FOLD: u32 = 12;
}

/// A program's register bytecode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bytecode {
    /// 4 words per instruction.
    pub code: Vec<u32>,
    /// Registers a thread needs.
    pub registers: usize,
    /// Whether a selector is read.
    pub uses_x: bool,
}

impl Bytecode {
    /// Compiles `program` (which [`ConstraintProgram::check`] accepts) into bytecode.
    /// Fails when it needs more than [`MAX_REGISTERS`] registers.
    pub fn compile<F: ResidentField>(program: &ConstraintProgram<F>) -> Result<Self, BackendError> {
        let n = program.ops.len();
        // Last use of each value (an operand read or a fold), None if never used.
        let mut last: Vec<Option<usize>> = vec![None; n];
        for (i, op) in program.ops.iter().enumerate() {
            match *op {
                Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) => {
                    last[a as usize] = Some(i);
                    last[b as usize] = Some(i);
                }
                Op::Neg(a) => last[a as usize] = Some(i),
                _ => {}
            }
        }
        let mut folds: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (j, &c) in program.constraints.iter().enumerate() {
            folds[c as usize].push(j as u32);
            let l = &mut last[c as usize];
            *l = Some(l.map_or(c as usize, |x| x.max(c as usize)));
        }
        let mut reg: Vec<u32> = vec![u32::MAX; n];
        let mut free: Vec<u32> = Vec::new();
        let mut registers = 0u32;
        let mut dying: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut code = Vec::new();
        let mut uses_x = false;
        for (i, op) in program.ops.iter().enumerate() {
            let Some(end) = last[i] else {
                continue;
            };
            let r = |x: u32| reg[x as usize];
            let (opc, a, b) = match *op {
                Op::Const(c) => (opcode::CONST, F::as_monty_words(&[c])[0], 0),
                Op::Input(input) => {
                    let (opc, a) = match input {
                        Input::Local(c) => (opcode::LOCAL, c),
                        Input::Next(c) => (opcode::NEXT, c),
                        Input::Public(k) => (opcode::PUBLIC, k),
                        Input::Periodic(c) => (opcode::PERIODIC, c),
                        Input::IsFirstRow => (opcode::IS_FIRST_ROW, 0),
                        Input::IsLastRow => (opcode::IS_LAST_ROW, 0),
                        Input::IsTransition => (opcode::IS_TRANSITION, 0),
                    };
                    uses_x |= opc >= opcode::IS_FIRST_ROW;
                    (opc, a, 0)
                }
                Op::Add(x, y) => (opcode::ADD, r(x), r(y)),
                Op::Sub(x, y) => (opcode::SUB, r(x), r(y)),
                Op::Mul(x, y) => (opcode::MUL, r(x), r(y)),
                Op::Neg(x) => (opcode::NEG, r(x), 0),
            };
            // Operands whose last use this is free their registers before the
            // result takes one (the interpreter reads operands before writing).
            free.append(&mut dying[i]);
            let dst = free.pop().unwrap_or_else(|| {
                registers += 1;
                registers - 1
            });
            reg[i] = dst;
            code.extend([opc, dst, a, b]);
            for &j in &folds[i] {
                code.extend([opcode::FOLD, dst, j, 0]);
            }
            if end == i {
                free.push(dst);
            } else {
                dying[end].push(dst);
            }
        }
        let registers = registers as usize;
        if registers > MAX_REGISTERS {
            return Err(BackendError::invalid(format!(
                "constraint program {} needs {registers} registers, more than the {MAX_REGISTERS} the quotient kernels hold",
                program.name
            )));
        }
        Ok(Self {
            code,
            registers,
            uses_x,
        })
    }

    /// Instructions.
    pub fn len(&self) -> usize {
        self.code.len() / 4
    }

    pub fn is_empty(&self) -> bool {
        self.code.is_empty()
    }

    /// Runs the bytecode on the host for point `i` (what the kernels do), from the
    /// two rows the point reads.
    pub fn eval_point<F: ResidentField>(
        &self,
        plan: &QuotientPlan<F>,
        i: usize,
        local: &[F],
        next: &[F],
    ) -> crate::resident::Ext<F> {
        let mut r = vec![F::ZERO; self.registers.max(1)];
        let d_mask = (1usize << plan.shape.log_quotient_degree) - 1;
        let x = plan.shift * plan.generator.exp_u64(i as u64);
        let z = plan.vanishing[i & d_mask];
        let ncols = plan
            .periodic
            .len()
            .checked_div(plan.periodic_height)
            .unwrap_or(0);
        let per_row = i & plan.periodic_height.saturating_sub(1);
        let mut acc = crate::resident::Ext::<F>::ZERO;
        for ins in self.code.chunks_exact(4) {
            let (opc, dst, a, b) = (ins[0], ins[1] as usize, ins[2], ins[3] as usize);
            let ra = || r[a as usize];
            let v = match opc {
                opcode::CONST => F::from_monty_words(vec![a]).expect("reduced")[0],
                opcode::LOCAL => local[a as usize],
                opcode::NEXT => next[a as usize],
                opcode::PUBLIC => plan.public_values[a as usize],
                opcode::PERIODIC => plan.periodic[per_row * ncols + a as usize],
                opcode::IS_FIRST_ROW => z * (x - F::ONE).inverse(),
                opcode::IS_LAST_ROW => z * (x - plan.last_point).inverse(),
                opcode::IS_TRANSITION => x - plan.last_point,
                opcode::ADD => ra() + r[b],
                opcode::SUB => ra() - r[b],
                opcode::MUL => ra() * r[b],
                opcode::NEG => -ra(),
                opcode::FOLD => {
                    acc += plan.alpha_powers[a as usize] * r[dst];
                    continue;
                }
                _ => unreachable!("opcode {opc}"),
            };
            r[dst] = v;
        }
        acc * plan.inv_vanishing[i & d_mask]
    }
}

/// The words of the device buffer the interpreter kernels read: the header, the
/// instructions, then [`QuotientPlan::table`] (see the [module docs](self)).
pub fn device_words<F: ResidentField>(plan: &QuotientPlan<F>, code: &Bytecode) -> Vec<u32> {
    let base = HEADER_WORDS + code.code.len();
    let (public, periodic, van) = plan.table_offsets();
    let ncols = plan
        .periodic
        .len()
        .checked_div(plan.periodic_height)
        .unwrap_or(0);
    let mut words = vec![
        code.len() as u32,
        base as u32,
        (base + public) as u32,
        (base + periodic) as u32,
        ncols as u32,
        plan.periodic_height.saturating_sub(1) as u32,
        (base + van) as u32,
        u32::from(code.uses_x),
    ];
    words.extend(&code.code);
    words.extend(F::as_monty_words(&plan.table()));
    words
}

/// What a device backend's `eval_quotient` sends and runs: the call checked
/// ([`crate::quotient::plan_quotient`]), the program compiled to bytecode, and the one
/// buffer of [`device_words`].
#[derive(Debug, Clone)]
pub struct DeviceQuotient {
    /// Quotient points (`2^(log_trace_height + log_quotient_degree)`).
    pub points: usize,
    /// Header, bytecode and table, in one buffer.
    pub words: Vec<u32>,
    /// Instructions of the bytecode.
    pub instructions: usize,
    /// Registers one point uses.
    pub registers: usize,
}

impl DeviceQuotient {
    /// Words of the header and the instructions at the front of [`Self::words`]:
    /// fixed for a program and a shape, while the table after them changes with
    /// every proof (the powers of `alpha`, the public values).
    pub fn code_words(&self) -> usize {
        HEADER_WORDS + 4 * self.instructions
    }

    /// Checks the call against the program and the LDE (`lde_height` x `lde_width`)
    /// and prepares what the device receives.
    pub fn prepare<F: ResidentField>(
        program: &ConstraintProgram<F>,
        lde_height: usize,
        lde_width: usize,
        shape: crate::quotient::QuotientShape,
        alpha: crate::resident::Ext<F>,
        public_values: &[F],
    ) -> Result<Self, BackendError> {
        let plan = crate::quotient::plan_quotient(
            program,
            lde_height,
            lde_width,
            shape,
            alpha,
            public_values,
        )?;
        let code = Bytecode::compile(program)?;
        Ok(Self {
            points: plan.size(),
            words: device_words(&plan, &code),
            instructions: code.len(),
            registers: code.registers,
        })
    }
}

/// A device buffer of [`DeviceQuotient::words`] that a backend keeps between calls,
/// so that the header and bytecode of a program go to the device once: a later call
/// whose header and instructions are the same words (the same program and shape) and
/// whose buffer has the same length writes only its table.
#[derive(Debug)]
pub struct KeptQuotient<B> {
    /// The device buffer.
    pub buffer: B,
    code: Vec<u32>,
    len: usize,
}

impl<B> KeptQuotient<B> {
    /// Keeps `buffer`, which holds all of `q.words`.
    pub fn new(buffer: B, q: &DeviceQuotient) -> Self {
        Self {
            buffer,
            code: q.words[..q.code_words()].to_vec(),
            len: q.words.len(),
        }
    }

    /// Where `q` can reuse this buffer: the words to write (its table) and the word
    /// offset to write them at. `None` when the program, the shape or the size differ.
    pub fn table_for<'a>(&self, q: &'a DeviceQuotient) -> Option<(usize, &'a [u32])> {
        let code = q.code_words();
        (self.len == q.words.len() && self.code[..] == q.words[..code])
            .then(|| (code, &q.words[code..]))
    }

    /// Makes `slot` hold `q`'s words on the device and returns its buffer: a kept
    /// buffer that [`KeptQuotient::table_for`] matches gets only the table
    /// (`write(buffer, word offset, words)`); otherwise the kept buffer is dropped
    /// first (one such buffer at a time) and `upload(all words)` makes the new one.
    pub fn update<'s, E>(
        slot: &'s mut Option<Self>,
        q: &DeviceQuotient,
        write: impl FnOnce(&mut B, usize, &[u32]) -> Result<(), E>,
        upload: impl FnOnce(&[u32]) -> Result<B, E>,
    ) -> Result<&'s B, E> {
        let reuse = slot.as_ref().and_then(|k| k.table_for(q)).map(|(at, _)| at);
        match (slot.as_mut(), reuse) {
            (Some(kept), Some(at)) => write(&mut kept.buffer, at, &q.words[at..])?,
            _ => {
                *slot = None;
                *slot = Some(Self::new(upload(&q.words)?, q));
            }
        }
        Ok(&slot.as_ref().expect("kept above").buffer)
    }
}

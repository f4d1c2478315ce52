//! Compiling a [`ConstraintProgram`] into a device kernel: straight-line code, one
//! variable per operation, one thread per quotient point.
//!
//! Every dialect's kernel reads the same buffers:
//!
//! - `lde`: the bit-reversed LDE, row-major, `width` words a row (Montgomery form);
//! - `table`: [`super::QuotientPlan::table`]: the alpha powers (4 words each, from
//!   0), the public values (from `4 K`), the periodic table (from `4 K + public
//!   values`), then `1 / Z_H` and `Z_H` by `i mod d` from `van_off`, then `shift`,
//!   `generator` and `last_point`;
//! - `out`: 4 words per point, natural order.
//!
//! and takes `log_size` (log2 `N`), `log_qd` (log2 `d`), `periodic_mask` (rows of the
//! periodic table minus one) and `van_off`.

use core::fmt::Write;

use super::program::{ConstraintProgram, Input, Op};
use crate::BackendField;

/// The C dialects [`emit_c`] writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CDialect {
    /// OpenCL C 1.2 (after `firmware/common/field.h` and `ext4.h`).
    OpenCl,
    /// CUDA C++ (NVRTC, or the host emulation harness).
    Cuda,
}

fn word<F: BackendField>(c: F) -> u32 {
    F::as_monty_words(&[c])[0]
}

/// Straight-line statements computing every operation and folding the constraints,
/// in a syntax given by `var` (declares a `u32`) and the operator spellings.
struct Body<'a> {
    /// Before the variable's name (`u32 ` or `let `).
    decl: &'a str,
    /// After the variable's name (``, or `: u32`).
    annot: &'a str,
    /// Suffix of index literals.
    suffix: &'a str,
    /// Indentation of a statement.
    indent: &'a str,
    /// The inverse of `{}` (the selectors').
    inv: &'a str,
    /// The field's 1.
    one: &'a str,
}

impl Body<'_> {
    fn write<F: BackendField>(&self, program: &ConstraintProgram<F>, out: &mut String, lde: &str) {
        let k = program.constraints.len();
        let public_off = 4 * k;
        let periodic_off = public_off + program.num_public_values;
        let ncols = program.periodic_columns.len();
        let (decl, annot, sfx, ind) = (self.decl, self.annot, self.suffix, self.indent);
        let inv = |x: &str| self.inv.replace("{}", x);
        for (n, op) in program.ops.iter().enumerate() {
            let rhs = match *op {
                Op::Const(c) => format!("0x{:08x}u", word(c)),
                Op::Input(input) => match input {
                    Input::Local(c) => format!("{lde}[loc + {c}{sfx}]"),
                    Input::Next(c) => format!("{lde}[nxt + {c}{sfx}]"),
                    Input::Public(p) => format!("table[{}u]", public_off + p as usize),
                    Input::Periodic(c) => {
                        format!("table[{periodic_off}u + per_row * {ncols}u + {c}u]")
                    }
                    Input::IsFirstRow => {
                        format!("f_mul(z, {})", inv(&format!("f_sub(x, {})", self.one)))
                    }
                    Input::IsLastRow => format!("f_mul(z, {})", inv("f_sub(x, last)")),
                    Input::IsTransition => "f_sub(x, last)".into(),
                },
                Op::Add(a, b) => format!("f_add(v{a}, v{b})"),
                Op::Sub(a, b) => format!("f_sub(v{a}, v{b})"),
                Op::Mul(a, b) => format!("f_mul(v{a}, v{b})"),
                Op::Neg(a) => format!("f_sub(0u, v{a})"),
            };
            let _ = writeln!(out, "{ind}{decl}v{n}{annot} = {rhs};");
        }
        for (j, &c) in program.constraints.iter().enumerate() {
            for d in 0..4 {
                let _ = writeln!(
                    out,
                    "{ind}a{d} = f_add(a{d}, f_mul(table[{}u], v{c}));",
                    4 * j + d
                );
            }
        }
    }
}

fn uses_x<F: BackendField>(program: &ConstraintProgram<F>) -> bool {
    [Input::IsFirstRow, Input::IsLastRow, Input::IsTransition]
        .into_iter()
        .any(|i| program.reads(i))
}

/// The kernel `eval_quotient` in OpenCL C or CUDA C. The including source defines
/// `FIELD_P`, `FIELD_MU` and includes `firmware/common/field.h` first.
pub fn emit_c<F: BackendField>(program: &ConstraintProgram<F>, dialect: CDialect) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// Generated from the constraint program {:?}: {} operations, {} constraints.",
        program.name,
        program.ops.len(),
        program.constraints.len()
    );
    s.push_str(
        "PB_INLINE u32 q_pow(u32 x, u32 e, u32 one) {\n    u32 r = one;\n    while (e != 0u) {\n        if (e & 1u) { r = f_mul(r, x); }\n        x = f_mul(x, x);\n        e >>= 1;\n    }\n    return r;\n}\n\n\
         PB_INLINE u32 q_inv(u32 x, u32 one) { return q_pow(x, FIELD_P - 2u, one); }\n\n",
    );
    let (header, index, stride, lde) = match dialect {
        CDialect::OpenCl => (
            "PB_KERNEL void eval_quotient(PB_GLOBAL const u32 *restrict lde, u64 width, u32 log_size,\n                            u32 log_qd, PB_GLOBAL const u32 *restrict table, u32 periodic_mask,\n                            u32 van_off, PB_GLOBAL u32 *restrict out, u32 one) {",
            "get_global_id(0)",
            "get_global_size(0)",
            "lde",
        ),
        CDialect::Cuda => (
            "extern \"C\" __global__ void eval_quotient(const u32* __restrict__ lde, u64 width, u32 log_size,\n                                          u32 log_qd, const u32* __restrict__ table, u32 periodic_mask,\n                                          u32 van_off, u32* __restrict__ out, u32 one) {",
            "(u64)blockIdx.x * blockDim.x + threadIdx.x",
            "(u64)gridDim.x * blockDim.x",
            "lde",
        ),
    };
    let _ = writeln!(s, "{header}");
    s.push_str("    u64 size = (u64)1 << log_size;\n    u32 qd = 1u << log_qd;\n");
    let _ = writeln!(
        s,
        "    for (u64 gi = {index}; gi < size; gi += {stride}) {{"
    );
    s.push_str("        u32 i = (u32)gi;\n");
    s.push_str("        u64 loc = (u64)bit_reverse(i, log_size) * width;\n");
    s.push_str(
        "        u64 nxt = (u64)bit_reverse((u32)((gi + qd) & (size - 1)), log_size) * width;\n",
    );
    s.push_str("        u32 per_row = i & periodic_mask;\n        (void)per_row; (void)nxt;\n");
    s.push_str("        u32 inv_z = table[van_off + (i & (qd - 1u))];\n");
    if uses_x(program) {
        s.push_str("        u32 z = table[van_off + qd + (i & (qd - 1u))];\n");
        s.push_str("        u32 x = f_mul(table[van_off + 2u * qd], q_pow(table[van_off + 2u * qd + 1u], i, one));\n");
        s.push_str("        u32 last = table[van_off + 2u * qd + 2u];\n");
        s.push_str("        (void)z; (void)last;\n");
    }
    s.push_str("        u32 a0 = 0u, a1 = 0u, a2 = 0u, a3 = 0u;\n");
    Body {
        decl: "u32 ",
        annot: "",
        suffix: "",
        indent: "        ",
        inv: "q_inv({}, one)",
        one: "one",
    }
    .write(program, &mut s, lde);
    s.push_str("        out[4 * gi] = f_mul(a0, inv_z);\n        out[4 * gi + 1] = f_mul(a1, inv_z);\n        out[4 * gi + 2] = f_mul(a2, inv_z);\n        out[4 * gi + 3] = f_mul(a3, inv_z);\n    }\n}\n");
    s
}

/// The kernel `eval_quotient` in WGSL, after `firmware/wgsl/field.wgsl` (whose prelude
/// defines `P`, `MU`, `WG_SIZE`, and which the caller follows with `ONE`). Parameters:
/// `total` = `N`, `base` the dispatch's first point, `width`, `a` = `log_size`, `b` =
/// `log_qd`, `c` = `periodic_mask`, `d` = `van_off`.
pub fn emit_wgsl<F: BackendField>(program: &ConstraintProgram<F>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// Generated from the constraint program {:?}: {} operations, {} constraints.",
        program.name,
        program.ops.len(),
        program.constraints.len()
    );
    s.push_str(
        "@group(0) @binding(0) var<storage, read> lde: array<u32>;\n\
         @group(0) @binding(1) var<storage, read> table: array<u32>;\n\
         @group(0) @binding(2) var<uniform> prm: Params;\n\
         @group(0) @binding(3) var<storage, read_write> out: array<u32>;\n\n\
         fn q_pow(x0: u32, e0: u32) -> u32 {\n    var r = ONE;\n    var x = x0;\n    var e = e0;\n    while (e != 0u) {\n        if ((e & 1u) != 0u) {\n            r = f_mul(r, x);\n        }\n        x = f_mul(x, x);\n        e = e >> 1u;\n    }\n    return r;\n}\n\n\
         fn q_inv(x: u32) -> u32 {\n    return q_pow(x, P - 2u);\n}\n\n\
         fn q_rev(i: u32, bits: u32) -> u32 {\n    return select(0u, reverseBits(i) >> (32u - bits), bits > 0u);\n}\n\n\
         @compute @workgroup_size(WG_SIZE)\n\
         fn eval_quotient(\n    @builtin(workgroup_id) wid: vec3<u32>,\n    @builtin(num_workgroups) nwg: vec3<u32>,\n    @builtin(local_invocation_index) lid: u32,\n) {\n\
         \x20   let i = prm.base + thread_index(wid, nwg, lid);\n\
         \x20   if (i >= prm.total) {\n        return;\n    }\n\
         \x20   let qd = 1u << prm.b;\n\
         \x20   let loc = q_rev(i, prm.a) * prm.width;\n\
         \x20   let nxt = q_rev((i + qd) & (prm.total - 1u), prm.a) * prm.width;\n\
         \x20   let per_row = i & prm.c;\n\
         \x20   let inv_z = table[prm.d + (i & (qd - 1u))];\n",
    );
    if uses_x(program) {
        s.push_str(
            "    let z = table[prm.d + qd + (i & (qd - 1u))];\n\
             \x20   let x = f_mul(table[prm.d + 2u * qd], q_pow(table[prm.d + 2u * qd + 1u], i));\n\
             \x20   let last = table[prm.d + 2u * qd + 2u];\n",
        );
    }
    s.push_str("    var a0 = 0u;\n    var a1 = 0u;\n    var a2 = 0u;\n    var a3 = 0u;\n");
    Body {
        decl: "let ",
        annot: ": u32",
        suffix: "u",
        indent: "    ",
        inv: "q_inv({})",
        one: "ONE",
    }
    .write(program, &mut s, "lde");
    s.push_str(
        "    out[4u * i] = f_mul(a0, inv_z);\n    out[4u * i + 1u] = f_mul(a1, inv_z);\n    out[4u * i + 2u] = f_mul(a2, inv_z);\n    out[4u * i + 3u] = f_mul(a3, inv_z);\n}\n",
    );
    s
}

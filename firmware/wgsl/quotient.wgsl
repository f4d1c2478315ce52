// The quotient of a STARK at every point of the quotient domain: the WGSL twin of
// firmware/common/quotient.h, an interpreter of the register bytecode a constraint
// program compiles to (proofbox_backend_api::quotient::bytecode documents the format
// of `t`: header, instructions, table). One thread per point.
// The host prepends the field's constants (field.wgsl).
//
// Parameters: total = threads T (thread t takes point e + t, below N), width = LDE
// columns, a = log2 N, b = log2 d, c and d: the slice of instructions this dispatch
// runs ([c, d)), e: the dispatch's first point. A dispatch adds its folds to the point's partial sum in
// `out` (zero before the first slice) and the last slice divides by Z_H. A function-local array indexed at run time
// compiles badly on some drivers (lavapipe lowers it to branches), so the registers
// live in `scratch`: register k of thread t at k * T + t.

@group(0) @binding(0) var<storage, read> lde: array<u32>;
@group(0) @binding(1) var<storage, read> t: array<u32>;
@group(0) @binding(2) var<uniform> prm: Params;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
@group(0) @binding(4) var<storage, read_write> scratch: array<u32>;

fn q_rev(i: u32, bits: u32) -> u32 {
    return select(0u, reverseBits(i) >> (32u - bits), bits > 0u);
}

@compute @workgroup_size(WG_SIZE)
fn eval_quotient(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let tid = prm.base + thread_index(wid, nwg, lid);
    if (tid >= prm.total) {
        return;
    }
    // One point per thread: this dispatch's points are [e, e + total). Every slice of
    // a batch of points runs before the next batch, since the registers of a point
    // live in `scratch` between the slices.
    let i = prm.e + tid;
    if (i < (1u << prm.a)) {
        point(i, tid, prm.total);
    }
}

fn point(i: u32, tid: u32, threads: u32) {
    let size = 1u << prm.a;
    let qd = 1u << prm.b;
    let n_ins = t[0];
    let alpha = t[1];
    let pub_off = t[2];
    let ncols = t[4];
    let per = t[3] + (i & t[5]) * ncols;
    let van = t[6];
    let loc = q_rev(i, prm.a) * prm.width;
    let nxt = q_rev((i + qd) & (size - 1u), prm.a) * prm.width;
    let inv_z = t[van + (i & (qd - 1u))];
    let z = t[van + qd + (i & (qd - 1u))];
    let last = t[van + 2u * qd + 2u];
    var x = 0u;
    if (t[7] != 0u) {
        x = f_mul(t[van + 2u * qd], f_pow(t[van + 2u * qd + 1u], i));
    }
    var a0 = 0u;
    var a1 = 0u;
    var a2 = 0u;
    var a3 = 0u;
    if (prm.c != 0u) {
        a0 = out[4u * i];
        a1 = out[4u * i + 1u];
        a2 = out[4u * i + 2u];
        a3 = out[4u * i + 3u];
    }
    for (var k = prm.c; k < prm.d; k = k + 1u) {
        let op = t[8u + 4u * k];
        let dst = t[8u + 4u * k + 1u];
        let a = t[8u + 4u * k + 2u];
        let b = t[8u + 4u * k + 3u];
        if (op == 12u) {
            // Fold constraint a.
            let p = alpha + 4u * a;
            let c = scratch[dst * threads + tid];
            a0 = f_add(a0, f_mul(t[p], c));
            a1 = f_add(a1, f_mul(t[p + 1u], c));
            a2 = f_add(a2, f_mul(t[p + 2u], c));
            a3 = f_add(a3, f_mul(t[p + 3u], c));
        } else {
            var v = 0u;
            switch (op) {
                case 0u: { v = a; }
                case 1u: { v = lde[loc + a]; }
                case 2u: { v = lde[nxt + a]; }
                case 3u: { v = t[pub_off + a]; }
                case 4u: { v = t[per + a]; }
                case 5u: { v = f_mul(z, f_pow(f_sub(x, ONE), P - 2u)); }
                case 6u: { v = f_mul(z, f_pow(f_sub(x, last), P - 2u)); }
                case 7u: { v = f_sub(x, last); }
                case 8u: { v = f_add(scratch[a * threads + tid], scratch[b * threads + tid]); }
                case 9u: { v = f_sub(scratch[a * threads + tid], scratch[b * threads + tid]); }
                case 10u: { v = f_mul(scratch[a * threads + tid], scratch[b * threads + tid]); }
                default: { v = f_sub(0u, scratch[a * threads + tid]); }
            }
            scratch[dst * threads + tid] = v;
        }
    }
    if (prm.d >= n_ins) {
        a0 = f_mul(a0, inv_z);
        a1 = f_mul(a1, inv_z);
        a2 = f_mul(a2, inv_z);
        a3 = f_mul(a3, inv_z);
    }
    out[4u * i] = a0;
    out[4u * i + 1u] = a1;
    out[4u * i + 2u] = a2;
    out[4u * i + 3u] = a3;
}

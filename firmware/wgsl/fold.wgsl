// One FRI fold of arity 2 over a device-resident codeword, in the degree-4 extension
// of ext4.wgsl (which the host prepends): Plonky3's TwoAdicFriFolding::fold_matrix
// with log_arity 1, the kernel of firmware/common/fold.h.
//
// `pairs` holds h = 2^a rows of 8 words, row i the pair (lo_i, hi_i) of a
// bit-reversed codeword; `scalars` holds beta, then the roll-in coefficient c. For
// each i < h (one thread per row):
//   out[i] = (lo + hi) * half + (lo - hi) * beta * half * ginv^bitrev(i)
//            (+ c * roll[i] when b != 0)
// Parameters: a = log2 rows, b = whether to add the roll-in, c = ginv (the inverse of
// the generator of order 2h), d = half (1/2), Montgomery form. `roll` and `out` hold
// h rows of 4 words.

@group(0) @binding(0) var<storage, read> pairs: array<u32>;
@group(0) @binding(1) var<storage, read> scalars: array<u32>;
@group(0) @binding(2) var<uniform> prm: Params;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
@group(0) @binding(4) var<storage, read> roll: array<u32>;

@compute @workgroup_size(WG_SIZE)
fn fri_fold(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = prm.base + thread_index(wid, nwg, lid);
    if (i >= prm.total) {
        return;
    }
    let log_h = prm.a;
    let lo = vec4<u32>(pairs[8u * i], pairs[8u * i + 1u], pairs[8u * i + 2u], pairs[8u * i + 3u]);
    let hi = vec4<u32>(pairs[8u * i + 4u], pairs[8u * i + 5u], pairs[8u * i + 6u],
                       pairs[8u * i + 7u]);
    let beta = vec4<u32>(scalars[0], scalars[1], scalars[2], scalars[3]);
    let rev = select(0u, reverseBits(i) >> (32u - log_h), log_h > 0u);
    let factor = f_mul(prm.d, f_pow(prm.c, rev));
    var r = e_add(e_mul_base(e_add(lo, hi), prm.d), e_mul(e_mul_base(e_sub(lo, hi), factor), beta));
    if (prm.b != 0u) {
        let c = vec4<u32>(scalars[4], scalars[5], scalars[6], scalars[7]);
        let x = vec4<u32>(roll[4u * i], roll[4u * i + 1u], roll[4u * i + 2u], roll[4u * i + 3u]);
        r = e_add(r, e_mul(c, x));
    }
    out[4u * i] = r.x;
    out[4u * i + 1u] = r.y;
    out[4u * i + 2u] = r.z;
    out[4u * i + 3u] = r.w;
}

// The FRI opening reduction over a device-resident matrix, in the degree-4 binomial
// extension F[X] / (X^4 - EXT_W) (Plonky3's BinomialExtensionField<F, 4>). An
// extension element is a vec4<u32>, the coefficients of X^0..X^3 in Montgomery form.
// The host prepends, besides the field's constants:
//   const EXT_W: u32;  W in Montgomery form
//
// Parameters: width = columns, a = log2 rows, b = points, c = first (overwrite acc),
// d = coset shift, e = generator of order 2^a (Montgomery form). `table` holds the
// alpha powers (width elements), then z, weighted, rescale for each point.

@group(0) @binding(0) var<storage, read> values: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<uniform> prm: Params;
@group(0) @binding(3) var<storage, read_write> acc: array<u32>;

fn e_add(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(f_add(a.x, b.x), f_add(a.y, b.y), f_add(a.z, b.z), f_add(a.w, b.w));
}

fn e_sub(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(f_sub(a.x, b.x), f_sub(a.y, b.y), f_sub(a.z, b.z), f_sub(a.w, b.w));
}

fn e_mul(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    let hi0 = f_add(f_add(f_mul(a.y, b.w), f_mul(a.z, b.z)), f_mul(a.w, b.y));
    let hi1 = f_add(f_mul(a.z, b.w), f_mul(a.w, b.z));
    let hi2 = f_mul(a.w, b.w);
    return vec4<u32>(
        f_add(f_mul(a.x, b.x), f_mul(EXT_W, hi0)),
        f_add(f_add(f_mul(a.x, b.y), f_mul(a.y, b.x)), f_mul(EXT_W, hi1)),
        f_add(f_add(f_add(f_mul(a.x, b.z), f_mul(a.y, b.y)), f_mul(a.z, b.x)), f_mul(EXT_W, hi2)),
        f_add(f_add(f_mul(a.x, b.w), f_mul(a.y, b.z)), f_add(f_mul(a.z, b.y), f_mul(a.w, b.x))),
    );
}

fn e_mul_base(a: vec4<u32>, f: u32) -> vec4<u32> {
    return vec4<u32>(f_mul(a.x, f), f_mul(a.y, f), f_mul(a.z, f), f_mul(a.w, f));
}

// 1 / a through the norm to F[Y] / (Y^2 - W), Y = X^2 (see firmware/opencl/reduce.cl).
fn e_inv(a: vec4<u32>) -> vec4<u32> {
    let n0 = f_sub(f_add(f_mul(a.x, a.x), f_mul(EXT_W, f_mul(a.z, a.z))),
                   f_mul(EXT_W, f_add(f_mul(a.y, a.w), f_mul(a.y, a.w))));
    let n1 = f_sub(f_add(f_mul(a.x, a.z), f_mul(a.x, a.z)),
                   f_add(f_mul(a.y, a.y), f_mul(EXT_W, f_mul(a.w, a.w))));
    let norm = f_sub(f_mul(n0, n0), f_mul(EXT_W, f_mul(n1, n1)));
    let d = f_pow(norm, P - 2u);
    let conj = vec4<u32>(a.x, f_sub(0u, a.y), a.z, f_sub(0u, a.w));
    return e_mul(conj, vec4<u32>(f_mul(n0, d), 0u, f_sub(0u, f_mul(n1, d)), 0u));
}

fn e_load(at: u32) -> vec4<u32> {
    return vec4<u32>(table[at], table[at + 1u], table[at + 2u], table[at + 3u]);
}

// One row per thread: acc[r] (+)= sum_p (weighted_p - rescale_p * m) / (z_p - x), with
// m = sum_i alpha_pows[i] * mat[r][i] and x = shift * gen^bitrev(r).
@compute @workgroup_size(WG_SIZE)
fn reduce_openings(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = prm.base + thread_index(wid, nwg, lid);
    if (r >= prm.total) {
        return;
    }
    let w = prm.width;
    let log_h = prm.a;
    var m = vec4<u32>(0u, 0u, 0u, 0u);
    for (var i = 0u; i < w; i = i + 1u) {
        m = e_add(m, e_mul_base(e_load(4u * i), values[r * w + i]));
    }
    let rev = select(0u, reverseBits(r) >> (32u - log_h), log_h > 0u);
    let x = f_mul(prm.d, f_pow(prm.e, rev));
    var s = vec4<u32>(0u, 0u, 0u, 0u);
    if (prm.c == 0u) {
        s = vec4<u32>(acc[4u * r], acc[4u * r + 1u], acc[4u * r + 2u], acc[4u * r + 3u]);
    }
    let pts = 4u * w;
    for (var p = 0u; p < prm.b; p = p + 1u) {
        let z = e_load(pts + 12u * p);
        let weighted = e_load(pts + 12u * p + 4u);
        let rescale = e_load(pts + 12u * p + 8u);
        let d = vec4<u32>(f_sub(z.x, x), z.y, z.z, z.w);
        s = e_add(s, e_mul(e_sub(weighted, e_mul(rescale, m)), e_inv(d)));
    }
    acc[4u * r] = s.x;
    acc[4u * r + 1u] = s.y;
    acc[4u * r + 2u] = s.z;
    acc[4u * r + 3u] = s.w;
}

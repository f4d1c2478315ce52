// The FRI opening reduction over a device-resident matrix, in the degree-4 binomial
// extension of ext4.wgsl (which the host prepends).
//
// Parameters: width = columns, a = log2 rows, b = points, c = first (overwrite acc),
// d = coset shift, e = generator of order 2^a (Montgomery form). `table` holds the
// alpha powers (width elements), then z, weighted, rescale for each point.

@group(0) @binding(0) var<storage, read> values: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<uniform> prm: Params;
@group(0) @binding(3) var<storage, read_write> acc: array<u32>;

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

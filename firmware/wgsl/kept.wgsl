// The quotient kept on the device: the extension of column groups with one coset
// shift each (between the DIF passes of ntt.wgsl), and the evaluation of every column
// of a resident extension at a point from its first rows (the barycentric formula on
// a coset), in the degree-4 binomial extension of ext4.wgsl (which the host
// prepends).

@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<uniform> prm: Params;
@group(0) @binding(3) var<storage, read> src: array<u32>;
@group(0) @binding(4) var<storage, read> aux: array<u32>;

// ntt.wgsl's scatter_scale with one coset shift per group of `b` columns:
//   out[k][col] = src[bitrev(k)][col] * table[col / b]^k * c   for k < 2^a,
//   out[k][col] = 0                                             otherwise,
// with `src` the inverse DFT (bit-reversed), `table` one shift per group and c = 1 / 2^a.
@compute @workgroup_size(WG_SIZE)
fn scatter_groups(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = prm.base + thread_index(wid, nwg, lid);
    if (t >= prm.total) {
        return;
    }
    let w = prm.width;
    let log_h = prm.a;
    let col = t % w;
    let k = t / w;
    if (k >= (1u << log_h)) {
        out[t] = 0u;
        return;
    }
    let r = select(0u, reverseBits(k) >> (32u - log_h), log_h > 0u);
    let scale = f_mul(f_pow(table[col / prm.b], k), prm.c);
    out[t] = f_mul(src[r * w + col], scale);
}

// The barycentric weights of the first 2^a rows (bit-reversed) of an extension on the
// coset shift * H: out[r] = x_r / (z - x_r), x_r = shift * gen^bitrev(r). `table` holds
// shift, gen (of order 2^a), then z (4 words).
@compute @workgroup_size(WG_SIZE)
fn interp_weights(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = prm.base + thread_index(wid, nwg, lid);
    if (r >= prm.total) {
        return;
    }
    let log_rows = prm.a;
    let rev = select(0u, reverseBits(r) >> (32u - log_rows), log_rows > 0u);
    let x = f_mul(table[0], f_pow(table[1], rev));
    let d = vec4<u32>(f_sub(table[2], x), table[3], table[4], table[5]);
    let q = e_mul_base(e_inv(d), x);
    out[4u * r] = q.x;
    out[4u * r + 1u] = q.y;
    out[4u * r + 2u] = q.z;
    out[4u * r + 3u] = q.w;
}

// Partial column sums: for t = s * width + c (s < c_slices), out[t] = sum over rows
// r = s, s + slices, ... < b of aux[r] * src[r * width + c], with `aux` the weights
// (4 words a row), `src` the matrix, prm.b the rows and prm.c the slices.
@compute @workgroup_size(WG_SIZE)
fn interp_partials(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = prm.base + thread_index(wid, nwg, lid);
    if (t >= prm.total) {
        return;
    }
    let w = prm.width;
    let s = t / w;
    let c = t % w;
    var acc = vec4<u32>(0u, 0u, 0u, 0u);
    for (var r = s; r < prm.b; r = r + prm.c) {
        let wt = vec4<u32>(aux[4u * r], aux[4u * r + 1u], aux[4u * r + 2u], aux[4u * r + 3u]);
        acc = e_add(acc, e_mul_base(wt, src[r * w + c]));
    }
    out[4u * t] = acc.x;
    out[4u * t + 1u] = acc.y;
    out[4u * t + 2u] = acc.z;
    out[4u * t + 3u] = acc.w;
}

// out[c] = sum over s < prm.c of src[s * width + c] (4 words each, `src` the partial
// sums), for every column c.
@compute @workgroup_size(WG_SIZE)
fn interp_finish(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = prm.base + thread_index(wid, nwg, lid);
    if (c >= prm.total) {
        return;
    }
    let w = prm.width;
    var acc = vec4<u32>(0u, 0u, 0u, 0u);
    for (var s = 0u; s < prm.c; s = s + 1u) {
        let at = 4u * (s * w + c);
        acc = e_add(acc, vec4<u32>(src[at], src[at + 1u], src[at + 2u], src[at + 3u]));
    }
    out[4u * c] = acc.x;
    out[4u * c + 1u] = acc.y;
    out[4u * c + 2u] = acc.z;
    out[4u * c + 3u] = acc.w;
}

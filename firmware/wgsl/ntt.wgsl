// Coset low-degree extension kernels over row-major matrices (`width` columns).
// Every thread handles one column of one butterfly, so consecutive threads touch
// consecutive words.

@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<uniform> prm: Params;
@group(0) @binding(3) var<storage, read> src: array<u32>;

// One radix-2 decimation-in-frequency stage, in place on `data`:
//   (u, v) -> (u + v, (u - v) * w^j), for half-block size 2^a and twiddle
//   w^j = table[j * b] (table holds powers of a root of unity of the full size).
// Running the stages for a = log n - 1 down to 0 maps natural-order input to its DFT
// in bit-reversed order.
@compute @workgroup_size(WG_SIZE)
fn dif_stage(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = prm.base + thread_index(wid, nwg, lid);
    if (t >= prm.total) {
        return;
    }
    let w = prm.width;
    let log_half = prm.a;
    let col = t % w;
    let pair = t / w;
    let half = 1u << log_half;
    let j = pair & (half - 1u);
    let i0 = ((pair >> log_half) << (log_half + 1u)) + j;
    let i1 = i0 + half;
    let k0 = i0 * w + col;
    let k1 = i1 * w + col;
    let u = data[k0];
    let v = data[k1];
    data[k0] = f_add(u, v);
    data[k1] = f_mul(f_sub(u, v), table[j * prm.b]);
}

// Reorders and scales coefficients into the zero-padded extension buffer:
//   data[k][col] = src[bitrev(k)][col] * table[k]   for k < 2^a (the input height),
//   data[k][col] = 0                                 otherwise.
// `src` holds the inverse DFT in bit-reversed order; table[k] = shift^k / height.
@compute @workgroup_size(WG_SIZE)
fn scatter_scale(
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
        data[t] = 0u;
        return;
    }
    let r = select(0u, reverseBits(k) >> (32u - log_h), log_h > 0u);
    data[t] = f_mul(src[r * w + col], table[k]);
}

// Poseidon2 over a 31-bit Montgomery field, as Plonky3 defines it:
//   external linear layer; HALF_FULL full rounds; PARTIAL partial rounds;
//   HALF_FULL full rounds.
// A full round adds a constant to every element, applies the S-box x^SBOX_DEG to every
// element, then the external linear layer (the 4x4 MDS matrix on each chunk of four,
// then each element plus the sum of the elements in its position mod 4). A partial
// round adds a constant to element 0, applies the S-box to it, then the internal
// linear layer s_i <- sum(s) + diag_i * s_i.
//
// The host prepends WIDTH, HALF_FULL, PARTIAL and SBOX_DEG, and uploads `rc` laid out
// as [initial full rounds: HALF_FULL * WIDTH][partial rounds: PARTIAL]
// [terminal full rounds: HALF_FULL * WIDTH][internal diagonal: WIDTH], all in
// Montgomery form, read from Plonky3's own constants.

const RATE: u32 = 16u;
const DIGEST: u32 = 8u;

@group(0) @binding(0) var<storage, read> rc: array<u32>;
@group(0) @binding(1) var<uniform> prm: Params;
@group(0) @binding(2) var<storage, read> msgs: array<u32>;
@group(0) @binding(3) var<storage, read_write> digests: array<u32>;
// Sponge states carried between the dispatches of one `hash_leaves` pass (WIDTH
// words per message); unused by `compress`.
@group(0) @binding(4) var<storage, read_write> states: array<u32>;

var<private> st: array<u32, WIDTH>;

fn sbox(x: u32) -> u32 {
    let x2 = f_mul(x, x);
    let x3 = f_mul(x2, x);
    if (SBOX_DEG == 3u) {
        return x3;
    }
    // SBOX_DEG == 7
    let x6 = f_mul(x3, x3);
    return f_mul(x6, x);
}

// [2 3 1 1; 1 2 3 1; 1 1 2 3; 3 1 1 2] applied to st[o..o + 4].
fn mat4(o: u32) {
    let x0 = st[o];
    let x1 = st[o + 1u];
    let x2 = st[o + 2u];
    let x3 = st[o + 3u];
    let t01 = f_add(x0, x1);
    let t23 = f_add(x2, x3);
    let t0123 = f_add(t01, t23);
    let t01123 = f_add(t0123, x1);
    let t01233 = f_add(t0123, x3);
    st[o] = f_add(t01123, t01);
    st[o + 1u] = f_add(t01123, f_add(x2, x2));
    st[o + 2u] = f_add(t01233, t23);
    st[o + 3u] = f_add(t01233, f_add(x0, x0));
}

fn external_linear() {
    for (var c = 0u; c < WIDTH; c += 4u) {
        mat4(c);
    }
    var sums = array<u32, 4>(0u, 0u, 0u, 0u);
    for (var c = 0u; c < WIDTH; c += 4u) {
        for (var k = 0u; k < 4u; k++) {
            sums[k] = f_add(sums[k], st[c + k]);
        }
    }
    for (var i = 0u; i < WIDTH; i++) {
        st[i] = f_add(st[i], sums[i & 3u]);
    }
}

fn full_round(offset: u32) {
    for (var i = 0u; i < WIDTH; i++) {
        st[i] = sbox(f_add(st[i], rc[offset + i]));
    }
    external_linear();
}

fn permute() {
    external_linear();
    for (var r = 0u; r < HALF_FULL; r++) {
        full_round(r * WIDTH);
    }
    let partial_off = HALF_FULL * WIDTH;
    let terminal_off = partial_off + PARTIAL;
    let diag_off = terminal_off + HALF_FULL * WIDTH;
    for (var r = 0u; r < PARTIAL; r++) {
        st[0] = sbox(f_add(st[0], rc[partial_off + r]));
        var sum = 0u;
        for (var i = 0u; i < WIDTH; i++) {
            sum = f_add(sum, st[i]);
        }
        for (var i = 0u; i < WIDTH; i++) {
            st[i] = f_add(sum, f_mul(st[i], rc[diag_off + i]));
        }
    }
    for (var r = 0u; r < HALF_FULL; r++) {
        full_round(terminal_off + r * WIDTH);
    }
}

// Padding-free sponge (rate 16, 8 outputs) over `total` messages of `width` words:
// message t starts at word a + t * width of `msgs`; its digest goes to digest b + t.
//
// One dispatch absorbs blocks c .. d of every message (block k covers words
// 16k .. 16k + 16, the last block may be short). Between dispatches the state waits
// in `states`; the dispatch with e = 1 (the one ending at the last block) writes the
// digest. Bounding the blocks per invocation bounds the loop iterations of one
// invocation, which some drivers cap (llvmpipe stops a loop after 65535 iterations).
@compute @workgroup_size(WG_SIZE)
fn hash_leaves(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = prm.base + thread_index(wid, nwg, lid);
    if (t >= prm.total) {
        return;
    }
    let len = prm.width;
    let start = prm.a + t * len;
    let saved = t * WIDTH;
    if (prm.c == 0u) {
        for (var i = 0u; i < WIDTH; i++) {
            st[i] = 0u;
        }
    } else {
        for (var i = 0u; i < WIDTH; i++) {
            st[i] = states[saved + i];
        }
    }
    // Overwrite the rate with each block (a final short block overwrites only its
    // prefix) and permute once per block.
    for (var blk = prm.c; blk < prm.d; blk++) {
        let pos = blk * RATE;
        let take = min(RATE, len - pos);
        for (var i = 0u; i < take; i++) {
            st[i] = msgs[start + pos + i];
        }
        permute();
    }
    if (prm.e == 1u) {
        let out = (prm.b + t) * DIGEST;
        for (var k = 0u; k < DIGEST; k++) {
            digests[out + k] = st[k];
        }
    } else {
        for (var i = 0u; i < WIDTH; i++) {
            states[saved + i] = st[i];
        }
    }
}

// Truncated permutation of two digests: digests a + 2t and a + 2t + 1 fill the first
// 16 state elements (the rest are zero); the first 8 outputs become digest b + t.
@compute @workgroup_size(WG_SIZE)
fn compress(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = prm.base + thread_index(wid, nwg, lid);
    if (t >= prm.total) {
        return;
    }
    let src = (prm.a + 2u * t) * DIGEST;
    for (var i = 0u; i < WIDTH; i++) {
        st[i] = 0u;
    }
    for (var i = 0u; i < 2u * DIGEST; i++) {
        st[i] = digests[src + i];
    }
    permute();
    let out = (prm.b + t) * DIGEST;
    for (var k = 0u; k < DIGEST; k++) {
        digests[out + k] = st[k];
    }
}

// Arithmetic in a 31-bit Montgomery field (MontyField31: x is stored as x * 2^32 mod P).
//
// The host prepends the field's constants to this file:
//   const P: u32;   the modulus (< 2^31)
//   const MU: u32;  P^-1 mod 2^32
//   const ONE: u32; 1 in Montgomery form (2^32 mod P)
// WGSL has no 64-bit integers, so the 32x32 -> 64-bit product is assembled from four
// 16x16-bit partial products.

// The full 64-bit product of a and b as (low word, high word).
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = p01 + p10;
    // A carry out of `mid` is worth 2^48, i.e. 2^16 in the high word.
    let mid_carry = select(0u, 0x10000u, mid < p01);
    let lo = p00 + (mid << 16u);
    let lo_carry = select(0u, 1u, lo < p00);
    let hi = p11 + (mid >> 16u) + mid_carry + lo_carry;
    return vec2<u32>(lo, hi);
}

// Montgomery product a * b * 2^-32 mod P for canonical a, b; the result is canonical.
fn f_mul(a: u32, b: u32) -> u32 {
    let x = mul_wide(a, b);
    // t * P agrees with x in the low word, so x - t * P is a multiple of 2^32.
    let t = x.x * MU;
    let u_hi = mul_wide(t, P).y;
    let r = x.y - u_hi;
    return select(r, r + P, x.y < u_hi);
}

fn f_add(a: u32, b: u32) -> u32 {
    let s = a + b;
    return select(s, s - P, s >= P);
}

fn f_sub(a: u32, b: u32) -> u32 {
    let d = a - b;
    return select(d, d + P, a < b);
}

// x^e by square and multiply.
fn f_pow(x0: u32, e0: u32) -> u32 {
    var r = ONE;
    var x = x0;
    var e = e0;
    while (e != 0u) {
        if ((e & 1u) != 0u) {
            r = f_mul(r, x);
        }
        x = f_mul(x, x);
        e = e >> 1u;
    }
    return r;
}

// Per-dispatch parameters. `total` threads do work; `base` is the index of this
// dispatch's first thread when one launch is split into several dispatches.
struct Params {
    total: u32,
    base: u32,
    width: u32,
    a: u32,
    b: u32,
    c: u32,
    d: u32,
    e: u32,
}

// The global thread index of a 1D or 2D launch (WG_SIZE threads per workgroup).
fn thread_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG_SIZE + lid;
}

// The FRI opening reduction over a device-resident matrix, in the degree-4 binomial
// extension F[X] / (X^4 - W) of the field (Plonky3's BinomialExtensionField<F, 4>:
// W = 3 for KoalaBear, 11 for BabyBear). An extension element is 4 words, the
// coefficients of X^0..X^3, each in Montgomery form. The arithmetic is that of
// firmware/opencl/reduce.cl; field arithmetic is exact, so the result is the same field
// element however the sum is ordered. The host-emulation test checks it against the
// CPU backend.

struct ext4 {
    u32 c[4];
};

static __device__ __forceinline__ ext4 e_add(ext4 a, ext4 b) {
    ext4 r;
    for (int i = 0; i < 4; i++) { r.c[i] = f_add(a.c[i], b.c[i]); }
    return r;
}

static __device__ __forceinline__ ext4 e_sub(ext4 a, ext4 b) {
    ext4 r;
    for (int i = 0; i < 4; i++) { r.c[i] = f_sub(a.c[i], b.c[i]); }
    return r;
}

// a * b mod X^4 - w.
static __device__ __forceinline__ ext4 e_mul(ext4 a, ext4 b, u32 w) {
    ext4 r;
    u32 hi0 = f_add(f_add(f_mul(a.c[1], b.c[3]), f_mul(a.c[2], b.c[2])), f_mul(a.c[3], b.c[1]));
    u32 hi1 = f_add(f_mul(a.c[2], b.c[3]), f_mul(a.c[3], b.c[2]));
    u32 hi2 = f_mul(a.c[3], b.c[3]);
    r.c[0] = f_add(f_mul(a.c[0], b.c[0]), f_mul(w, hi0));
    r.c[1] = f_add(f_add(f_mul(a.c[0], b.c[1]), f_mul(a.c[1], b.c[0])), f_mul(w, hi1));
    r.c[2] = f_add(f_add(f_add(f_mul(a.c[0], b.c[2]), f_mul(a.c[1], b.c[1])), f_mul(a.c[2], b.c[0])),
                   f_mul(w, hi2));
    r.c[3] = f_add(f_add(f_mul(a.c[0], b.c[3]), f_mul(a.c[1], b.c[2])),
                   f_add(f_mul(a.c[2], b.c[1]), f_mul(a.c[3], b.c[0])));
    return r;
}

// a * f for a base-field f.
static __device__ __forceinline__ ext4 e_mul_base(ext4 a, u32 f) {
    ext4 r;
    for (int i = 0; i < 4; i++) { r.c[i] = f_mul(a.c[i], f); }
    return r;
}

// x^e by square and multiply; `one` is 1 in Montgomery form.
static __device__ __forceinline__ u32 f_pow(u32 x, u32 e, u32 one) {
    u32 r = one;
    while (e != 0u) {
        if (e & 1u) { r = f_mul(r, x); }
        x = f_mul(x, x);
        e >>= 1;
    }
    return r;
}

// 1 / a for a non-zero extension element. With Y = X^2 (Y^2 = w), a = A + X B for
// A = a0 + a2 Y and B = a1 + a3 Y; a * (A - X B) = A^2 - Y B^2 = n0 + n1 Y lies in
// F[Y] / (Y^2 - w), whose inverse is (n0 - n1 Y) / (n0^2 - w n1^2); the base inverse
// is Fermat's x^(p - 2).
static __device__ __forceinline__ ext4 e_inv(ext4 a, u32 w, u32 one) {
    u32 a0 = a.c[0], a1 = a.c[1], a2 = a.c[2], a3 = a.c[3];
    u32 n0 = f_sub(f_add(f_mul(a0, a0), f_mul(w, f_mul(a2, a2))),
                   f_mul(w, f_add(f_mul(a1, a3), f_mul(a1, a3))));
    u32 n1 = f_sub(f_add(f_mul(a0, a2), f_mul(a0, a2)),
                   f_add(f_mul(a1, a1), f_mul(w, f_mul(a3, a3))));
    u32 norm = f_sub(f_mul(n0, n0), f_mul(w, f_mul(n1, n1)));
    u32 d = f_pow(norm, FIELD_P - 2u, one);
    ext4 conj;
    conj.c[0] = a0;
    conj.c[1] = f_sub(0u, a1);
    conj.c[2] = a2;
    conj.c[3] = f_sub(0u, a3);
    ext4 ninv;
    ninv.c[0] = f_mul(n0, d);
    ninv.c[1] = 0u;
    ninv.c[2] = f_sub(0u, f_mul(n1, d));
    ninv.c[3] = 0u;
    return e_mul(conj, ninv, w);
}

static __device__ __forceinline__ ext4 e_load(const u32* p) {
    ext4 r;
    for (int i = 0; i < 4; i++) { r.c[i] = p[i]; }
    return r;
}

// One matrix's share of the reduced opening of its height. For each row r < 2^log_h
// of the row-major matrix `mat` (`width` words a row, rows bit-reversed), with
// x = shift * gen^bitrev(r) (gen of order 2^log_h) and m = sum_i alpha_pows[i] * f_i:
//   acc[r] (+)= sum over points p of (weighted_p - rescale_p * m) / (z_p - x)
// `params` holds alpha_pows (width elements), then for each of `points` points z_p,
// weighted_p, rescale_p (3 elements); `first` != 0 overwrites acc instead of adding.
// `w` is the extension's W and `one` the field's 1 (Montgomery form). One thread per
// row (grid-stride loop).
extern "C" __global__ void reduce_openings(const u32* __restrict__ mat, u64 width, u32 log_h,
                                           const u32* __restrict__ params, u32 points,
                                           u32 first, u32* __restrict__ acc, u32 shift,
                                           u32 gen, u32 w, u32 one) {
    const u64 h = 1ull << log_h;
    const u32* pts = params + 4 * width;
    for (u64 r = (u64)blockIdx.x * blockDim.x + threadIdx.x; r < h;
         r += (u64)gridDim.x * blockDim.x) {
        const u32* row = mat + r * width;
        ext4 m;
        for (int i = 0; i < 4; i++) { m.c[i] = 0u; }
        for (u64 i = 0; i < width; i++) {
            m = e_add(m, e_mul_base(e_load(params + 4 * i), row[i]));
        }
        u32 x = f_mul(shift, f_pow(gen, bit_reverse((u32)r, log_h), one));
        ext4 s;
        if (first != 0u) {
            for (int i = 0; i < 4; i++) { s.c[i] = 0u; }
        } else {
            s = e_load(acc + 4 * r);
        }
        for (u32 p = 0; p < points; p++) {
            ext4 z = e_load(pts + 12 * p);
            ext4 weighted = e_load(pts + 12 * p + 4);
            ext4 rescale = e_load(pts + 12 * p + 8);
            ext4 d = z;
            d.c[0] = f_sub(d.c[0], x);
            ext4 num = e_sub(weighted, e_mul(rescale, m, w));
            s = e_add(s, e_mul(num, e_inv(d, w, one), w));
        }
        for (int i = 0; i < 4; i++) { acc[4 * r + i] = s.c[i]; }
    }
}

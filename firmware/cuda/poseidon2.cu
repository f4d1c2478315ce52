// Poseidon2 over a 31-bit Montgomery field, as Plonky3 defines it:
//   external linear layer; HALF_FULL full rounds; PARTIAL partial rounds;
//   HALF_FULL full rounds.
// A full round adds a constant to every element, applies the S-box x^SBOX_DEG to every
// element, then the external linear layer (the 4x4 matrix [2 3 1 1; 1 2 3 1; 1 1 2 3;
// 3 1 1 2] on each chunk of four, then each element plus the sum of the elements in
// its position mod 4). A partial round adds a constant to element 0, applies the S-box
// to it, then the internal linear layer s_i <- sum(s) + diag_i * s_i.
//
// The generated prelude defines, from Plonky3's own constants (Montgomery words):
//   SBOX_DEG, P2_HALF_FULL, P2_16_PARTIAL, P2_24_PARTIAL
//   __constant__ u32 P2_16_RC_INIT[P2_HALF_FULL * 16], P2_16_RC_PART[P2_16_PARTIAL],
//     P2_16_RC_TERM[P2_HALF_FULL * 16], P2_16_DIAG[16]   (and the same for width 24)
//
// Every thread keeps one state in registers: all loops over state positions have
// compile-time bounds and are unrolled.

#define P2_RATE 16
#define P2_DIGEST 8

template <int W>
struct P2Consts;

template <>
struct P2Consts<16> {
    static constexpr int PARTIAL = P2_16_PARTIAL;
    static __device__ __forceinline__ u32 init(int r, int i) { return P2_16_RC_INIT[r * 16 + i]; }
    static __device__ __forceinline__ u32 part(int r) { return P2_16_RC_PART[r]; }
    static __device__ __forceinline__ u32 term(int r, int i) { return P2_16_RC_TERM[r * 16 + i]; }
    static __device__ __forceinline__ u32 diag(int i) { return P2_16_DIAG[i]; }
};

template <>
struct P2Consts<24> {
    static constexpr int PARTIAL = P2_24_PARTIAL;
    static __device__ __forceinline__ u32 init(int r, int i) { return P2_24_RC_INIT[r * 24 + i]; }
    static __device__ __forceinline__ u32 part(int r) { return P2_24_RC_PART[r]; }
    static __device__ __forceinline__ u32 term(int r, int i) { return P2_24_RC_TERM[r * 24 + i]; }
    static __device__ __forceinline__ u32 diag(int i) { return P2_24_DIAG[i]; }
};

static __device__ __forceinline__ u32 p2_sbox(u32 x) {
    u32 x2 = f_mul(x, x);
    u32 x3 = f_mul(x2, x);
#if SBOX_DEG == 3
    return x3;
#elif SBOX_DEG == 7
    u32 x6 = f_mul(x3, x3);
    return f_mul(x6, x);
#else
#error "SBOX_DEG must be 3 or 7"
#endif
}

// [2 3 1 1; 1 2 3 1; 1 1 2 3; 3 1 1 2] applied to s[o..o + 4].
template <int W>
static __device__ __forceinline__ void p2_mat4(u32 (&s)[W], int o) {
    u32 x0 = s[o], x1 = s[o + 1], x2 = s[o + 2], x3 = s[o + 3];
    u32 t01 = f_add(x0, x1);
    u32 t23 = f_add(x2, x3);
    u32 t0123 = f_add(t01, t23);
    u32 t01123 = f_add(t0123, x1);
    u32 t01233 = f_add(t0123, x3);
    s[o] = f_add(t01123, t01);
    s[o + 1] = f_add(t01123, f_add(x2, x2));
    s[o + 2] = f_add(t01233, t23);
    s[o + 3] = f_add(t01233, f_add(x0, x0));
}

template <int W>
static __device__ __forceinline__ void p2_external_linear(u32 (&s)[W]) {
#pragma unroll
    for (int c = 0; c < W; c += 4) {
        p2_mat4<W>(s, c);
    }
    u32 sums[4];
#pragma unroll
    for (int k = 0; k < 4; k++) {
        sums[k] = s[k];
#pragma unroll
        for (int c = 4; c < W; c += 4) {
            sums[k] = f_add(sums[k], s[c + k]);
        }
    }
#pragma unroll
    for (int i = 0; i < W; i++) {
        s[i] = f_add(s[i], sums[i & 3]);
    }
}

template <int W>
static __device__ __forceinline__ void p2_permute(u32 (&s)[W]) {
    typedef P2Consts<W> C;
    p2_external_linear<W>(s);
#pragma unroll 1
    for (int r = 0; r < P2_HALF_FULL; r++) {
#pragma unroll
        for (int i = 0; i < W; i++) {
            s[i] = p2_sbox(f_add(s[i], C::init(r, i)));
        }
        p2_external_linear<W>(s);
    }
#pragma unroll 1
    for (int r = 0; r < C::PARTIAL; r++) {
        s[0] = p2_sbox(f_add(s[0], C::part(r)));
        u32 sum = s[0];
#pragma unroll
        for (int i = 1; i < W; i++) {
            sum = f_add(sum, s[i]);
        }
#pragma unroll
        for (int i = 0; i < W; i++) {
            s[i] = f_add(sum, f_mul(s[i], C::diag(i)));
        }
    }
#pragma unroll 1
    for (int r = 0; r < P2_HALF_FULL; r++) {
#pragma unroll
        for (int i = 0; i < W; i++) {
            s[i] = p2_sbox(f_add(s[i], C::term(r, i)));
        }
        p2_external_linear<W>(s);
    }
}

// Padding-free sponge (width 24, rate 16, 8 outputs) over `rows` messages of `len`
// words: message t starts at word t * len of `msgs`; its digest goes to digest
// out_offset + t of `digests`. Every block of 16 words overwrites the rate (a final
// short block overwrites only its prefix) and is followed by one permutation, as
// Plonky3's PaddingFreeSponge does.
extern "C" __global__ void hash_leaves(const u32* __restrict__ msgs, u64 rows, u64 len,
                                       u32* __restrict__ digests, u64 out_offset) {
    for (u64 t = (u64)blockIdx.x * blockDim.x + threadIdx.x; t < rows;
         t += (u64)gridDim.x * blockDim.x) {
        const u32* m = msgs + t * len;
        u32 s[24];
#pragma unroll
        for (int i = 0; i < 24; i++) {
            s[i] = 0u;
        }
        for (u64 pos = 0; pos < len; pos += P2_RATE) {
            u64 left = len - pos;
            if (left >= P2_RATE) {
#pragma unroll
                for (int i = 0; i < P2_RATE; i++) {
                    s[i] = m[pos + i];
                }
            } else {
#pragma unroll
                for (int i = 0; i < P2_RATE; i++) {
                    if ((u64)i < left) {
                        s[i] = m[pos + i];
                    }
                }
            }
            p2_permute<24>(s);
        }
        u32* out = digests + (out_offset + t) * P2_DIGEST;
#pragma unroll
        for (int k = 0; k < P2_DIGEST; k++) {
            out[k] = s[k];
        }
    }
}

// Truncated width-16 permutation of digest pairs: digests in_offset + 2t and
// in_offset + 2t + 1 of `layers` fill the state; the first 8 outputs become digest
// out_offset + t. One launch builds one layer of a Merkle tree whose layers lie one
// after the other in `layers` (the input and output ranges never overlap).
extern "C" __global__ void compress_pairs(u32* layers, u64 in_offset, u64 out_offset,
                                          u64 count) {
    for (u64 t = (u64)blockIdx.x * blockDim.x + threadIdx.x; t < count;
         t += (u64)gridDim.x * blockDim.x) {
        const u32* in = layers + (in_offset + 2 * t) * P2_DIGEST;
        u32 s[16];
#pragma unroll
        for (int i = 0; i < 16; i++) {
            s[i] = in[i];
        }
        p2_permute<16>(s);
        u32* out = layers + (out_offset + t) * P2_DIGEST;
#pragma unroll
        for (int k = 0; k < P2_DIGEST; k++) {
            out[k] = s[k];
        }
    }
}

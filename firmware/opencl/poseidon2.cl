// Poseidon2 over a 31-bit Montgomery field, as Plonky3 defines it, in OpenCL C:
//   external linear layer; P2_HALF_FULL full rounds; P2_<W>_PARTIAL partial rounds;
//   P2_HALF_FULL full rounds.
// A full round adds a constant to every element, applies the S-box x^SBOX_DEG to every
// element, then the external linear layer (the 4x4 matrix [2 3 1 1; 1 2 3 1; 1 1 2 3;
// 3 1 1 2] on each chunk of four, then each element plus the sum of the elements in
// its position mod 4). A partial round adds a constant to element 0, applies the S-box
// to it, then the internal linear layer s_i <- sum(s) + diag_i * s_i.
//
// The generated prelude defines, from Plonky3's own constants (Montgomery words):
//   SBOX_DEG, P2_HALF_FULL, P2_16_PARTIAL, P2_24_PARTIAL
//   __constant u32 P2_16_RC_INIT[P2_HALF_FULL * 16], P2_16_RC_PART[P2_16_PARTIAL],
//     P2_16_RC_TERM[P2_HALF_FULL * 16], P2_16_DIAG[16]   (and the same for width 24)
//
// FPGA-friendly shape: every loop has a compile-time bound (the sponge's block loop
// is the only data-dependent one), constants live in __constant memory, and each
// work-item keeps its state in private registers.

#define P2_RATE 16
#define P2_DIGEST 8

PB_INLINE u32 p2_sbox(u32 x) {
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

// [2 3 1 1; 1 2 3 1; 1 1 2 3; 3 1 1 2] applied to s[0..4].
PB_INLINE void p2_mat4(u32 *s) {
    u32 x0 = s[0], x1 = s[1], x2 = s[2], x3 = s[3];
    u32 t01 = f_add(x0, x1);
    u32 t23 = f_add(x2, x3);
    u32 t0123 = f_add(t01, t23);
    u32 t01123 = f_add(t0123, x1);
    u32 t01233 = f_add(t0123, x3);
    s[0] = f_add(t01123, t01);
    s[1] = f_add(t01123, f_add(x2, x2));
    s[2] = f_add(t01233, t23);
    s[3] = f_add(t01233, f_add(x0, x0));
}

// One permutation of width W (16 or 24); NAME is the function defined.
#define P2_DEFINE_PERMUTE(NAME, W, RC_INIT, RC_PART, RC_TERM, DIAG, PARTIAL)             \
    PB_INLINE void NAME##_external(u32 *s) {                                          \
        _Pragma("unroll") for (int c = 0; c < W; c += 4) { p2_mat4(s + c); }            \
        u32 sums[4];                                                                  \
        _Pragma("unroll") for (int k = 0; k < 4; k++) {                                \
            sums[k] = s[k];                                                           \
            _Pragma("unroll") for (int c = 4; c < W; c += 4) {                         \
                sums[k] = f_add(sums[k], s[c + k]);                                   \
            }                                                                         \
        }                                                                             \
        _Pragma("unroll") for (int i = 0; i < W; i++) { s[i] = f_add(s[i], sums[i & 3]); } \
    }                                                                                 \
    PB_INLINE void NAME(u32 *s) {                                                     \
        NAME##_external(s);                                                           \
        for (int r = 0; r < P2_HALF_FULL; r++) {                                      \
            _Pragma("unroll") for (int i = 0; i < W; i++) {                            \
                s[i] = p2_sbox(f_add(s[i], RC_INIT[r * W + i]));                      \
            }                                                                         \
            NAME##_external(s);                                                       \
        }                                                                             \
        for (int r = 0; r < PARTIAL; r++) {                                           \
            s[0] = p2_sbox(f_add(s[0], RC_PART[r]));                                  \
            u32 sum = s[0];                                                           \
            _Pragma("unroll") for (int i = 1; i < W; i++) { sum = f_add(sum, s[i]); }  \
            _Pragma("unroll") for (int i = 0; i < W; i++) {                            \
                s[i] = f_add(sum, f_mul(s[i], DIAG[i]));                              \
            }                                                                         \
        }                                                                             \
        for (int r = 0; r < P2_HALF_FULL; r++) {                                      \
            _Pragma("unroll") for (int i = 0; i < W; i++) {                            \
                s[i] = p2_sbox(f_add(s[i], RC_TERM[r * W + i]));                      \
            }                                                                         \
            NAME##_external(s);                                                       \
        }                                                                             \
    }

P2_DEFINE_PERMUTE(p2_permute16, 16, P2_16_RC_INIT, P2_16_RC_PART, P2_16_RC_TERM, P2_16_DIAG,
                  P2_16_PARTIAL)
P2_DEFINE_PERMUTE(p2_permute24, 24, P2_24_RC_INIT, P2_24_RC_PART, P2_24_RC_TERM, P2_24_DIAG,
                  P2_24_PARTIAL)

// Padding-free sponge (width 24, rate 16, 8 outputs) over `rows` messages of `len`
// words: message t starts at word t * len of `msgs`; its digest goes to digest
// out_offset + t of `digests`. Every block of 16 words overwrites the rate (a final
// short block overwrites only its prefix) and is followed by one permutation, as
// Plonky3's PaddingFreeSponge does. One work-item per message (grid-stride loop).
PB_KERNEL void hash_leaves(PB_GLOBAL const u32 *restrict msgs, u64 rows, u64 len,
                           PB_GLOBAL u32 *restrict digests, u64 out_offset) {
    for (u64 t = get_global_id(0); t < rows; t += get_global_size(0)) {
        PB_GLOBAL const u32 *m = msgs + t * len;
        u32 s[24];
        _Pragma("unroll") for (int i = 0; i < 24; i++) { s[i] = 0u; }
        for (u64 pos = 0; pos < len; pos += P2_RATE) {
            u64 left = len - pos;
            _Pragma("unroll") for (int i = 0; i < P2_RATE; i++) {
                if ((u64)i < left) {
                    s[i] = m[pos + i];
                }
            }
            p2_permute24(s);
        }
        PB_GLOBAL u32 *out = digests + (out_offset + t) * P2_DIGEST;
        _Pragma("unroll") for (int k = 0; k < P2_DIGEST; k++) { out[k] = s[k]; }
    }
}

// Truncated width-16 permutation of digest pairs: digests in_offset + 2t and
// in_offset + 2t + 1 of `layers` fill the state; the first 8 outputs become digest
// out_offset + t. One launch builds one layer of a Merkle tree whose layers lie one
// after the other in `layers` (the input and output ranges never overlap).
PB_KERNEL void compress_pairs(PB_GLOBAL u32 *layers, u64 in_offset, u64 out_offset, u64 count) {
    for (u64 t = get_global_id(0); t < count; t += get_global_size(0)) {
        PB_GLOBAL const u32 *in = layers + (in_offset + 2 * t) * P2_DIGEST;
        u32 s[16];
        _Pragma("unroll") for (int i = 0; i < 16; i++) { s[i] = in[i]; }
        p2_permute16(s);
        PB_GLOBAL u32 *out = layers + (out_offset + t) * P2_DIGEST;
        _Pragma("unroll") for (int k = 0; k < P2_DIGEST; k++) { out[k] = s[k]; }
    }
}

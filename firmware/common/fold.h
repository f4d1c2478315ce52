// One FRI fold of arity 2 over a device-resident codeword, in the degree-4 extension
// (ext4.h): Plonky3's TwoAdicFriFolding::fold_matrix with log_arity 1. Written once
// for OpenCL C and CUDA C++ with field.h's portability macros; it follows gather.h in
// both backends' sources.
//
// `pairs` holds h = 2^log_h rows of 8 words, row i the pair (lo_i, hi_i) of extension
// elements of a bit-reversed codeword. For each i < h:
//   out[i] = (lo + hi) * inv2 + (lo - hi) * beta * inv2 * ginv^bitrev(i)
//            (+ c * roll[i] when has_roll != 0)
// with ginv the inverse of the two-adic generator of order 2h, inv2 = 1/2, beta =
// (b0..b3) and c = (c0..c3). `out` and `roll` hold h rows of 4 words. `w` is the
// extension's W and `one` the field's 1 (Montgomery form). Grid-stride loop over rows.
PB_KERNEL void fri_fold(PB_GLOBAL const u32 *PB_RESTRICT pairs, u32 log_h,
                        PB_GLOBAL const u32 *PB_RESTRICT roll, u32 has_roll,
                        PB_GLOBAL u32 *PB_RESTRICT out, u32 b0, u32 b1, u32 b2, u32 b3,
                        u32 c0, u32 c1, u32 c2, u32 c3, u32 ginv, u32 inv2, u32 w,
                        u32 one) {
    u64 h = (u64)1 << log_h;
    ext4 beta;
    beta.c[0] = b0; beta.c[1] = b1; beta.c[2] = b2; beta.c[3] = b3;
    ext4 c;
    c.c[0] = c0; c.c[1] = c1; c.c[2] = c2; c.c[3] = c3;
    for (u64 i = PB_THREAD_INDEX; i < h; i += PB_THREAD_COUNT) {
        ext4 lo = e_load(pairs + 8 * i);
        ext4 hi = e_load(pairs + 8 * i + 4);
        u32 factor = f_mul(inv2, f_pow(ginv, bit_reverse((u32)i, log_h), one));
        ext4 r = e_add(e_mul_base(e_add(lo, hi), inv2),
                       e_mul(e_mul_base(e_sub(lo, hi), factor), beta, w));
        if (has_roll != 0u) {
            r = e_add(r, e_mul(c, e_load(roll + 4 * i), w));
        }
        for (int k = 0; k < 4; k++) { out[4 * i + k] = r.c[k]; }
    }
}

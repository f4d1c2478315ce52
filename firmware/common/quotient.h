// The quotient of a STARK at every point of the quotient domain: an interpreter of
// the register bytecode a constraint program compiles to
// (proofbox_backend_api::quotient::bytecode, which documents the format), one thread
// per point. Written once for OpenCL C and CUDA C++ with field.h's portability macros;
// it follows ext4.h in both backends' sources (f_pow).
//
// Point i (natural order) of the quotient domain g * K (N = 2^log_size points, d =
// 2^log_qd over the trace) reads its trace row at LDE row bitrev(i) and the next
// row at bitrev((i + d) mod N); x = shift * generator^i. The result, 4 words at
// out + 4 i:
//   (sum_j alpha_power[j] * C_j) / Z_H(x)
// Field arithmetic is exact, so the order of the sum does not change the result.

#ifndef PB_QUOTIENT_DEFINED
#define PB_QUOTIENT_DEFINED
#define QUOTIENT_MAX_REGISTERS 4096
#if defined(__OPENCL_VERSION__)
#define PB_THREAD_INDEX ((u64)get_global_id(0))
#define PB_THREAD_COUNT ((u64)get_global_size(0))
#define PB_RESTRICT restrict
#else
#define PB_RESTRICT __restrict__
#define PB_THREAD_INDEX ((u64)blockIdx.x * blockDim.x + threadIdx.x)
#define PB_THREAD_COUNT ((u64)gridDim.x * blockDim.x)
#endif
#endif  // PB_QUOTIENT_DEFINED

// `lde`: the bit-reversed LDE, `width` words a row (at least N rows). `t`: the header,
// the instructions and the table. `out`: 4 words per point. `one`: 1 in Montgomery
// form. Grid-stride loop over the N points.
PB_KERNEL void eval_quotient(PB_GLOBAL const u32 *PB_RESTRICT lde, u64 width, u32 log_size,
                             u32 log_qd, PB_GLOBAL const u32 *PB_RESTRICT t,
                             PB_GLOBAL u32 *PB_RESTRICT out, u32 one) {
    u64 size = (u64)1 << log_size;
    u32 qd = 1u << log_qd;
    u32 n_ins = t[0], alpha = t[1], pub_off = t[2], per_off = t[3], ncols = t[4];
    u32 per_mask = t[5], van = t[6], uses_x = t[7];
    PB_GLOBAL const u32 *code = t + 8;
    u32 r[QUOTIENT_MAX_REGISTERS];
    for (u64 gi = PB_THREAD_INDEX; gi < size; gi += PB_THREAD_COUNT) {
        u32 i = (u32)gi;
        PB_GLOBAL const u32 *loc = lde + (u64)bit_reverse(i, log_size) * width;
        PB_GLOBAL const u32 *nxt =
            lde + (u64)bit_reverse((u32)((gi + qd) & (size - 1)), log_size) * width;
        PB_GLOBAL const u32 *per = t + per_off + (u64)(i & per_mask) * ncols;
        u32 inv_z = t[van + (i & (qd - 1u))];
        u32 z = t[van + qd + (i & (qd - 1u))];
        u32 x = 0u, last = t[van + 2u * qd + 2u];
        if (uses_x != 0u) {
            x = f_mul(t[van + 2u * qd], f_pow(t[van + 2u * qd + 1u], i, one));
        }
        u32 a0 = 0u, a1 = 0u, a2 = 0u, a3 = 0u;
        for (u32 k = 0; k < n_ins; k++) {
            u32 op = code[4 * k], dst = code[4 * k + 1], a = code[4 * k + 2], b = code[4 * k + 3];
            u32 v;
            switch (op) {
                case 0u: v = a; break;
                case 1u: v = loc[a]; break;
                case 2u: v = nxt[a]; break;
                case 3u: v = t[pub_off + a]; break;
                case 4u: v = per[a]; break;
                case 5u: v = f_mul(z, f_pow(f_sub(x, one), FIELD_P - 2u, one)); break;
                case 6u: v = f_mul(z, f_pow(f_sub(x, last), FIELD_P - 2u, one)); break;
                case 7u: v = f_sub(x, last); break;
                case 8u: v = f_add(r[a], r[b]); break;
                case 9u: v = f_sub(r[a], r[b]); break;
                case 10u: v = f_mul(r[a], r[b]); break;
                case 11u: v = f_sub(0u, r[a]); break;
                default: {
                    // 12: fold constraint a.
                    PB_GLOBAL const u32 *p = t + alpha + 4u * a;
                    u32 c = r[dst];
                    a0 = f_add(a0, f_mul(p[0], c));
                    a1 = f_add(a1, f_mul(p[1], c));
                    a2 = f_add(a2, f_mul(p[2], c));
                    a3 = f_add(a3, f_mul(p[3], c));
                    continue;
                }
            }
            r[dst] = v;
        }
        out[4 * gi] = f_mul(a0, inv_z);
        out[4 * gi + 1] = f_mul(a1, inv_z);
        out[4 * gi + 2] = f_mul(a2, inv_z);
        out[4 * gi + 3] = f_mul(a3, inv_z);
    }
}

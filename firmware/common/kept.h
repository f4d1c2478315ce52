// The quotient kept on the device: the extension of column groups with one coset
// shift each, and the evaluation of every column of a resident extension at a point
// from its first rows (the barycentric formula on a coset). Written once for OpenCL
// C and CUDA C++ with field.h's portability macros; it follows ext4.h, quotient.h
// and the LDE's stages (lde_expand's table layout) in both backends' sources.

// lde_expand with one coset shift per group of `group_width` columns: from `src`, the
// inverse DIF of the 2^log_h input rows (h * coefficients, bit-reversed rows),
// writes the 2^log_n rows (log_n = log_h + added_bits) of the zero-padded forward
// transform after its first added_bits DIF stages:
//   dst[t * h + m][col] = src[bitrev(m)][col] * shifts[col / group_width]^m * inv_h
//                         * w^(m * bitrev(t))
// for t < 2^added_bits, m < h; `shifts` holds one word per group, `inv_h` is 1 / h,
// `tw` as for the DIF stages with tw_log = log_n (w^e for e >= 2^(log_n - 1) is
// -w^(e - 2^(log_n - 1))). Grid-stride loop over the n * width words.
PB_KERNEL void lde_expand_groups(PB_GLOBAL u32 *PB_RESTRICT dst,
                                 PB_GLOBAL const u32 *PB_RESTRICT src, u64 width, u32 log_h,
                                 u32 added_bits, u64 group_width,
                                 PB_GLOBAL const u32 *PB_RESTRICT shifts, u32 inv_h,
                                 PB_GLOBAL const u32 *PB_RESTRICT tw, u32 one) {
    const u32 log_n = log_h + added_bits;
    const u64 total = ((u64)1 << log_n) * width;
    const u64 h_mask = ((u64)1 << log_h) - 1;
    const u64 n_mask = ((u64)1 << log_n) - 1;
    for (u64 x = PB_THREAD_INDEX; x < total; x += PB_THREAD_COUNT) {
        u64 col = x % width;
        u64 row = x / width;
        u32 m = (u32)(row & h_mask);
        u32 t = (u32)(row >> log_h);
        u32 scale = f_mul(f_pow(shifts[col / group_width], m, one), inv_h);
        u32 v = f_mul(src[(u64)bit_reverse(m, log_h) * width + col], scale);
        if (added_bits > 0u) {
            u64 e = ((u64)m * bit_reverse(t, added_bits)) & n_mask;
            if (e != 0) {
                u64 half_len = (u64)1 << (log_n - 1);
                u32 wt = e >= half_len ? f_sub(0u, tw[e - half_len]) : tw[e];
                v = f_mul(v, wt);
            }
        }
        dst[x] = v;
    }
}

// The barycentric weights of the first 2^log_rows rows (bit-reversed) of an extension
// on the coset shift * H: weights[r] = x_r / (z - x_r), x_r = shift * gen^bitrev(r),
// gen of order 2^log_rows, z = (z0, z1, z2, z3) off the coset. `w` is the extension's
// W and `one` the field's 1. Grid-stride loop over the rows.
PB_KERNEL void interp_weights(PB_GLOBAL u32 *PB_RESTRICT weights, u32 log_rows, u32 shift,
                              u32 gen, u32 z0, u32 z1, u32 z2, u32 z3, u32 w, u32 one) {
    const u64 rows = (u64)1 << log_rows;
    for (u64 r = PB_THREAD_INDEX; r < rows; r += PB_THREAD_COUNT) {
        u32 x = f_mul(shift, f_pow(gen, bit_reverse((u32)r, log_rows), one));
        ext4 d;
        d.c[0] = f_sub(z0, x);
        d.c[1] = z1;
        d.c[2] = z2;
        d.c[3] = z3;
        ext4 q = e_mul_base(e_inv(d, w, one), x);
        for (int i = 0; i < 4; i++) { weights[4 * r + i] = q.c[i]; }
    }
}

// Partial column sums of the weighted rows: for every slice s < slices and column
// c < width, partial[s * width + c] = sum over rows r = s, s + slices, ... < rows of
// weights[r] * mat[r * width + c] (4 words each). Grid-stride loop over the
// slices * width sums.
PB_KERNEL void interp_partials(PB_GLOBAL const u32 *PB_RESTRICT mat, u64 width, u64 rows,
                               PB_GLOBAL const u32 *PB_RESTRICT weights, u64 slices,
                               PB_GLOBAL u32 *PB_RESTRICT partial) {
    for (u64 t = PB_THREAD_INDEX; t < slices * width; t += PB_THREAD_COUNT) {
        u64 s = t / width;
        u64 c = t % width;
        ext4 acc;
        for (int i = 0; i < 4; i++) { acc.c[i] = 0u; }
        for (u64 r = s; r < rows; r += slices) {
            acc = e_add(acc, e_mul_base(e_load(weights + 4 * r), mat[r * width + c]));
        }
        for (int i = 0; i < 4; i++) { partial[4 * t + i] = acc.c[i]; }
    }
}

// out[c] = sum over s < slices of partial[s * width + c], 4 words each, for every
// column c < width. Grid-stride loop over the columns.
PB_KERNEL void interp_finish(PB_GLOBAL const u32 *PB_RESTRICT partial, u64 width, u64 slices,
                             PB_GLOBAL u32 *PB_RESTRICT out) {
    for (u64 c = PB_THREAD_INDEX; c < width; c += PB_THREAD_COUNT) {
        ext4 acc;
        for (int i = 0; i < 4; i++) { acc.c[i] = 0u; }
        for (u64 s = 0; s < slices; s++) {
            acc = e_add(acc, e_load(partial + 4 * (s * width + c)));
        }
        for (int i = 0; i < 4; i++) { out[4 * c + i] = acc.c[i]; }
    }
}

// Coset low-degree extension of every column of a row-major matrix (`width` words a
// row), in three steps (the same algorithm as firmware/cuda/ntt.cu):
//   1. inverse DFT of the 2^log_h input rows: radix-2 decimation in frequency (DIF)
//      with the inverse root, leaving h * coefficients in bit-reversed order;
//   2. lde_expand: un-reverses, scales coefficient m by shift^m / h, and writes the
//      first `added_bits` DIF stages of the zero-padded forward transform directly
//      (they only copy and twist, the padding being zero);
//   3. the remaining log_h DIF stages of the forward DFT over all 2^log_n rows.
// DIF maps natural-order input to its transform in bit-reversed order, the order the
// result is returned in.
//
// DIF stage s (half-block 2^s) on rows i0 and i1 = i0 + 2^s, where bit s of i0 is 0:
//   (u, v) -> (u + v, (u - v) * w^((i0 mod 2^s) * 2^(tw_log - s - 1)))
// with `tw[j]` = w^j for j < 2^(tw_log - 1), w generating the subgroup of order
// 2^tw_log. Tables come from the host, computed with Plonky3's field types.

// Runs DIF stages s_hi, s_hi - 1, ..., s_hi - k + 1 (k >= 1) over a matrix of 2^rows_log
// rows, in local memory. With s_lo = s_hi - k + 1, those stages only mix rows that
// agree outside bits s_lo..s_hi, so each work-group loads one such group of 2^k rows
// (row hi * 2^(s_hi+1) + j * 2^s_lo + lo for j < 2^k) for a tile of `cols` columns,
// runs the k stages, and writes the group back. `tile` holds 2^k * cols words.
// Work-groups loop over (group, column tile) pairs, group-major.
PB_KERNEL void dif_stages(PB_GLOBAL u32 *restrict data, u64 width, u32 rows_log, u32 s_hi,
                          u32 k, u32 cols, PB_GLOBAL const u32 *restrict tw, u32 tw_log,
                          PB_LOCAL u32 *tile) {
    const u32 s_lo = s_hi + 1u - k;
    const u32 rows = 1u << k;
    const u64 groups = (u64)1 << (rows_log - k);
    const u64 col_tiles = (width + cols - 1) / cols;
    const u32 words = rows * cols;
    const u32 lid = (u32)get_local_id(0);
    const u32 lsize = (u32)get_local_size(0);
    for (u64 b = get_group_id(0); b < groups * col_tiles; b += get_num_groups(0)) {
        const u64 g = b / col_tiles;
        const u64 c0 = (b % col_tiles) * cols;
        const u64 lo = g & (((u64)1 << s_lo) - 1);
        const u64 hi = g >> s_lo;
        const u64 base = (hi << (s_hi + 1)) + lo;
        for (u32 x = lid; x < words; x += lsize) {
            u32 r = x / cols;
            u32 c = x % cols;
            u64 col = c0 + c;
            if (col < width) {
                tile[x] = data[(base + ((u64)r << s_lo)) * width + col];
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (u32 st = s_hi + 1; st-- > s_lo;) {
            const u32 ls = st - s_lo;
            const u32 half_len = 1u << ls;
            for (u32 p = lid; p < (rows / 2) * cols; p += lsize) {
                u32 c = p % cols;
                u32 q = p / cols;
                u32 jj = q & (half_len - 1);
                u32 j0 = ((q >> ls) << (ls + 1)) + jj;
                u32 j1 = j0 + half_len;
                u64 e = ((((u64)jj) << s_lo) + lo) << (tw_log - st - 1);
                u32 u = tile[j0 * cols + c];
                u32 v = tile[j1 * cols + c];
                tile[j0 * cols + c] = f_add(u, v);
                tile[j1 * cols + c] = f_mul(f_sub(u, v), tw[e]);
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        for (u32 x = lid; x < words; x += lsize) {
            u32 r = x / cols;
            u32 c = x % cols;
            u64 col = c0 + c;
            if (col < width) {
                data[(base + ((u64)r << s_lo)) * width + col] = tile[x];
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

// From `src`, the inverse DIF of the 2^log_h input rows (h * coefficients, bit-reversed
// rows), writes the 2^log_n rows (log_n = log_h + added_bits) of the zero-padded
// forward transform after its first added_bits DIF stages:
//   dst[t * h + m] = src[bitrev(m)] * scale[m] * w^(m * bitrev(t))
// for t < 2^added_bits, m < h, where scale[m] = shift^m / h and w generates the
// subgroup of order 2^log_n (`tw` as for dif_stages with tw_log = log_n; w^e for
// e >= 2^(log_n - 1) is -w^(e - 2^(log_n - 1))).
PB_KERNEL void lde_expand(PB_GLOBAL u32 *restrict dst, PB_GLOBAL const u32 *restrict src,
                          u64 width, u32 log_h, u32 added_bits,
                          PB_GLOBAL const u32 *restrict scale, PB_GLOBAL const u32 *restrict tw) {
    const u32 log_n = log_h + added_bits;
    const u64 total = ((u64)1 << log_n) * width;
    const u64 h_mask = ((u64)1 << log_h) - 1;
    const u64 n_mask = ((u64)1 << log_n) - 1;
    for (u64 x = get_global_id(0); x < total; x += get_global_size(0)) {
        u64 col = x % width;
        u64 row = x / width;
        u32 m = (u32)(row & h_mask);
        u32 t = (u32)(row >> log_h);
        u32 v = f_mul(src[(u64)bit_reverse(m, log_h) * width + col], scale[m]);
        if (added_bits > 0u) {
            u64 e = ((u64)m * bit_reverse(t, added_bits)) & n_mask;
            if (e != 0) {
                u64 half_len = (u64)1 << (log_n - 1);
                u32 w = e >= half_len ? f_sub(0u, tw[e - half_len]) : tw[e];
                v = f_mul(v, w);
            }
        }
        dst[x] = v;
    }
}

// The FRI opening reduction over a device-resident matrix, in the degree-4 binomial
// extension of the field (firmware/common/ext4.h). Field arithmetic is exact, so the
// result is the same field element however the sum is ordered; the host checks it
// against the CPU backend.

// One matrix's share of the reduced opening of its height. For each row r < 2^log_h
// of the row-major matrix `mat` (`width` words a row, rows bit-reversed), with
// x = shift * gen^bitrev(r) (gen of order 2^log_h) and m = sum_i alpha_pows[i] * f_i:
//   acc[r] (+)= sum over points p of (weighted_p - rescale_p * m) / (z_p - x)
// `params` holds alpha_pows (width elements), then for each of `points` points z_p,
// weighted_p, rescale_p (3 elements); `first` != 0 overwrites acc instead of adding.
// `w` is the extension's W and `one` the field's 1 (Montgomery form). One work-item
// per row (grid-stride loop).
PB_KERNEL void reduce_openings(PB_GLOBAL const u32 *restrict mat, u64 width, u32 log_h,
                               PB_GLOBAL const u32 *restrict params, u32 points, u32 first,
                               PB_GLOBAL u32 *restrict acc, u32 shift, u32 gen, u32 w,
                               u32 one) {
    u64 h = (u64)1 << log_h;
    PB_GLOBAL const u32 *pts = params + 4 * width;
    for (u64 r = get_global_id(0); r < h; r += get_global_size(0)) {
        PB_GLOBAL const u32 *row = mat + r * width;
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

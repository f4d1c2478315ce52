// The degree-4 binomial extension F[X] / (X^4 - W) of a 31-bit Montgomery field
// (Plonky3's BinomialExtensionField<F, 4>: W = 3 for KoalaBear, 11 for BabyBear). An
// extension element is 4 words, the coefficients of X^0..X^3, each in Montgomery form.
// Written once for OpenCL C and CUDA C++ with field.h's portability macros; it follows
// field.h in both backends' sources (the OpenCL program includes it once per field,
// its helper names renamed per field by the generated prelude, the type defined once).

#ifndef PB_EXT4_DEFINED
#define PB_EXT4_DEFINED
typedef struct {
    u32 c[4];
} ext4;
#endif

PB_INLINE ext4 e_add(ext4 a, ext4 b) {
    ext4 r;
    for (int i = 0; i < 4; i++) { r.c[i] = f_add(a.c[i], b.c[i]); }
    return r;
}

PB_INLINE ext4 e_sub(ext4 a, ext4 b) {
    ext4 r;
    for (int i = 0; i < 4; i++) { r.c[i] = f_sub(a.c[i], b.c[i]); }
    return r;
}

// a * b mod X^4 - w.
PB_INLINE ext4 e_mul(ext4 a, ext4 b, u32 w) {
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
PB_INLINE ext4 e_mul_base(ext4 a, u32 f) {
    ext4 r;
    for (int i = 0; i < 4; i++) { r.c[i] = f_mul(a.c[i], f); }
    return r;
}

// x^e by square and multiply; `one` is 1 in Montgomery form.
PB_INLINE u32 f_pow(u32 x, u32 e, u32 one) {
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
PB_INLINE ext4 e_inv(ext4 a, u32 w, u32 one) {
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

PB_INLINE ext4 e_load(PB_GLOBAL const u32 *p) {
    ext4 r;
    for (int i = 0; i < 4; i++) { r.c[i] = p[i]; }
    return r;
}

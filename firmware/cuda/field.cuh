// Arithmetic in a 31-bit Montgomery field, exactly Plonky3's MontyField31
// representation: the element x is stored as the word x * 2^32 mod P, always reduced
// (below P).
//
// The host compiles every kernel file as one translation unit:
//   [generated prelude] field.cuh poseidon2.cu ntt.cu
// The generated prelude defines, for the field the module is built for:
//   FIELD_P   the modulus (below 2^31)
//   FIELD_MU  P^-1 mod 2^32
// and the Poseidon2 constants poseidon2.cu reads.

#ifndef PROOFBOX_FIELD_CUH
#define PROOFBOX_FIELD_CUH

typedef unsigned int u32;
typedef unsigned long long u64;

#ifndef FIELD_P
#error "FIELD_P must be defined by the generated prelude"
#endif
#ifndef FIELD_MU
#error "FIELD_MU must be defined by the generated prelude"
#endif

// a + b mod P for reduced a, b (the sum of two words below 2^31 cannot wrap).
static __device__ __forceinline__ u32 f_add(u32 a, u32 b) {
    u32 s = a + b;
    return s >= FIELD_P ? s - FIELD_P : s;
}

// a - b mod P for reduced a, b.
static __device__ __forceinline__ u32 f_sub(u32 a, u32 b) {
    u32 d = a - b;
    return a < b ? d + FIELD_P : d;
}

// The Montgomery product a * b * 2^-32 mod P of reduced a, b, reduced. With
// x = a * b and t = (x mod 2^32) * MU mod 2^32, t * P agrees with x in the low word, so
// (x - t * P) / 2^32 is exact: the difference of the high words, plus P if negative.
static __device__ __forceinline__ u32 f_mul(u32 a, u32 b) {
    u64 x = (u64)a * (u64)b;
    u32 t = (u32)x * FIELD_MU;
    u64 u = (u64)t * (u64)FIELD_P;
    u32 x_hi = (u32)(x >> 32);
    u32 u_hi = (u32)(u >> 32);
    u32 r = x_hi - u_hi;
    return x_hi < u_hi ? r + FIELD_P : r;
}

// The low `bits` bits of x (x < 2^bits) in reverse order; 0 when bits == 0.
static __device__ __forceinline__ u32 bit_reverse(u32 x, u32 bits) {
    return bits == 0 ? 0u : (__brev(x) >> (32u - bits));
}

#endif  // PROOFBOX_FIELD_CUH

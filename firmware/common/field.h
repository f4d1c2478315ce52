// Arithmetic in a 31-bit Montgomery field, exactly Plonky3's MontyField31
// representation: the element x is stored as the word x * 2^32 mod P, always reduced
// (below P).
//
// Written once for two compilers:
//   - OpenCL C 1.2 (detected through __OPENCL_VERSION__): the OpenCL backend compiles
//     this file as part of one program, firmware/opencl/*.cl;
//   - CUDA C++ (detected through __CUDACC__ or __CUDACC_RTC__; the CUDA backend's
//     host-emulation test harness defines PB_CUDA_HOST_EMULATION).
// The macros below hide the differences (function qualifiers, 64-bit type, bit
// reversal, constant address space).
//
// The including program defines, for the field it is built for:
//   FIELD_P   the modulus (below 2^31)
//   FIELD_MU  P^-1 mod 2^32
// Only the portability block is guarded: the OpenCL program includes this file once
// per field, with the helper names renamed per field by the generated prelude.

#ifndef PB_PORTABILITY_DEFINED
#define PB_PORTABILITY_DEFINED
#if defined(__OPENCL_VERSION__)
typedef uint u32;
typedef ulong u64;
#define PB_INLINE static inline
#define PB_CONSTANT __constant
#define PB_GLOBAL __global
#define PB_LOCAL __local
#define PB_KERNEL __kernel
#elif defined(__CUDACC__) || defined(__CUDACC_RTC__) || defined(PB_CUDA_HOST_EMULATION)
typedef unsigned int u32;
typedef unsigned long long u64;
#define PB_INLINE static __device__ __forceinline__
#define PB_CONSTANT __constant__
#define PB_GLOBAL
#define PB_LOCAL
#define PB_KERNEL extern "C" __global__
#else
#error "field.h compiles as OpenCL C or CUDA C only"
#endif
#endif  // PB_PORTABILITY_DEFINED

#ifndef FIELD_P
#error "FIELD_P must be defined by the generated prelude"
#endif
#ifndef FIELD_MU
#error "FIELD_MU must be defined by the generated prelude"
#endif

// a + b mod P for reduced a, b (the sum of two words below 2^31 cannot wrap).
PB_INLINE u32 f_add(u32 a, u32 b) {
    u32 s = a + b;
    return s >= FIELD_P ? s - FIELD_P : s;
}

// a - b mod P for reduced a, b.
PB_INLINE u32 f_sub(u32 a, u32 b) {
    u32 d = a - b;
    return a < b ? d + FIELD_P : d;
}

// The Montgomery product a * b * 2^-32 mod P of reduced a, b, reduced. With
// x = a * b and t = (x mod 2^32) * MU mod 2^32, t * P agrees with x in the low word, so
// (x - t * P) / 2^32 is exact: the difference of the high words, plus P if negative.
PB_INLINE u32 f_mul(u32 a, u32 b) {
    u64 x = (u64)a * (u64)b;
    u32 t = (u32)x * (u32)FIELD_MU;
    u64 u = (u64)t * (u64)FIELD_P;
    u32 x_hi = (u32)(x >> 32);
    u32 u_hi = (u32)(u >> 32);
    u32 r = x_hi - u_hi;
    return x_hi < u_hi ? r + FIELD_P : r;
}

// The low `bits` bits of x (x < 2^bits) in reverse order; 0 when bits == 0.
PB_INLINE u32 bit_reverse(u32 x, u32 bits) {
    if (bits == 0u) {
        return 0u;
    }
#if defined(__OPENCL_VERSION__)
    // OpenCL C 1.2 has no bit-reversal builtin: five fixed swap steps.
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
    x = ((x >> 8) & 0x00FF00FFu) | ((x & 0x00FF00FFu) << 8);
    x = (x >> 16) | (x << 16);
    return x >> (32u - bits);
#else
    return __brev(x) >> (32u - bits);
#endif
}

// The degree-4 binomial extension F[X] / (X^4 - EXT_W) (Plonky3's
// BinomialExtensionField<F, 4>): an extension element is a vec4<u32>, the
// coefficients of X^0..X^3 in Montgomery form. The host prepends, besides the field's
// constants:
//   const EXT_W: u32;  W in Montgomery form
// and this file precedes the kernels that use it (reduce.wgsl, fold.wgsl, kept.wgsl).

fn e_add(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(f_add(a.x, b.x), f_add(a.y, b.y), f_add(a.z, b.z), f_add(a.w, b.w));
}

fn e_sub(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(f_sub(a.x, b.x), f_sub(a.y, b.y), f_sub(a.z, b.z), f_sub(a.w, b.w));
}

fn e_mul(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    let hi0 = f_add(f_add(f_mul(a.y, b.w), f_mul(a.z, b.z)), f_mul(a.w, b.y));
    let hi1 = f_add(f_mul(a.z, b.w), f_mul(a.w, b.z));
    let hi2 = f_mul(a.w, b.w);
    return vec4<u32>(
        f_add(f_mul(a.x, b.x), f_mul(EXT_W, hi0)),
        f_add(f_add(f_mul(a.x, b.y), f_mul(a.y, b.x)), f_mul(EXT_W, hi1)),
        f_add(f_add(f_add(f_mul(a.x, b.z), f_mul(a.y, b.y)), f_mul(a.z, b.x)), f_mul(EXT_W, hi2)),
        f_add(f_add(f_mul(a.x, b.w), f_mul(a.y, b.z)), f_add(f_mul(a.z, b.y), f_mul(a.w, b.x))),
    );
}

fn e_mul_base(a: vec4<u32>, f: u32) -> vec4<u32> {
    return vec4<u32>(f_mul(a.x, f), f_mul(a.y, f), f_mul(a.z, f), f_mul(a.w, f));
}

// 1 / a through the norm to F[Y] / (Y^2 - W), Y = X^2 (see firmware/opencl/reduce.cl).
fn e_inv(a: vec4<u32>) -> vec4<u32> {
    let n0 = f_sub(f_add(f_mul(a.x, a.x), f_mul(EXT_W, f_mul(a.z, a.z))),
                   f_mul(EXT_W, f_add(f_mul(a.y, a.w), f_mul(a.y, a.w))));
    let n1 = f_sub(f_add(f_mul(a.x, a.z), f_mul(a.x, a.z)),
                   f_add(f_mul(a.y, a.y), f_mul(EXT_W, f_mul(a.w, a.w))));
    let norm = f_sub(f_mul(n0, n0), f_mul(EXT_W, f_mul(n1, n1)));
    let d = f_pow(norm, P - 2u);
    let conj = vec4<u32>(a.x, f_sub(0u, a.y), a.z, f_sub(0u, a.w));
    return e_mul(conj, vec4<u32>(f_mul(n0, d), 0u, f_sub(0u, f_mul(n1, d)), 0u));
}

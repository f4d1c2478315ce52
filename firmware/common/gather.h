// Gathers scattered runs of words into one buffer, so that a resident read of
// scattered rows or Merkle tree nodes comes back in one copy. Written once for
// OpenCL C and CUDA C++ with field.h's portability macros; it follows quotient.h in
// both backends' sources (PB_THREAD_INDEX, PB_THREAD_COUNT, PB_RESTRICT).
//
// Run k (k < count) is the `width` words of `src` from word starts[k]; the runs go
// to `dst` back to back: dst[k * width + j] = src[starts[k] + j]. `starts` holds
// 64-bit word offsets as (low, high) pairs of 32-bit words. Grid-stride loop over
// the count * width words.
PB_KERNEL void gather_words(PB_GLOBAL const u32 *PB_RESTRICT src,
                            PB_GLOBAL const u32 *PB_RESTRICT starts, u64 width, u64 count,
                            PB_GLOBAL u32 *PB_RESTRICT dst) {
    u64 total = width * count;
    for (u64 t = PB_THREAD_INDEX; t < total; t += PB_THREAD_COUNT) {
        u64 k = t / width;
        u64 start = (u64)starts[2 * k] | ((u64)starts[2 * k + 1] << 32);
        dst[t] = src[start + (t - k * width)];
    }
}

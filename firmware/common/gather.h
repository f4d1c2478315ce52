// Gathers scattered runs of words into one buffer, so that a resident read of
// scattered rows or Merkle tree nodes comes back in one copy. Written once for
// OpenCL C and CUDA C++ with field.h's portability macros; it follows quotient.h in
// both backends' sources (PB_THREAD_INDEX, PB_THREAD_COUNT, PB_RESTRICT).
//
// Run k (k < count) is the `width` words of `src` from word starts[first + k]; the
// runs go to `dst` from word `dst_offset` on, back to back:
// dst[dst_offset + k * width + j] = src[starts[first + k] + j]. `starts` holds 64-bit
// word offsets as (low, high) pairs of 32-bit words, so that several gathers (from
// several buffers) can share one offsets table and one destination. Grid-stride loop
// over the count * width words.
PB_KERNEL void gather_words(PB_GLOBAL const u32 *PB_RESTRICT src,
                            PB_GLOBAL const u32 *PB_RESTRICT starts, u64 first, u64 width,
                            u64 count, PB_GLOBAL u32 *PB_RESTRICT dst, u64 dst_offset) {
    u64 total = width * count;
    for (u64 t = PB_THREAD_INDEX; t < total; t += PB_THREAD_COUNT) {
        u64 k = t / width;
        u64 at = 2 * (first + k);
        u64 start = (u64)starts[at] | ((u64)starts[at + 1] << 32);
        dst[dst_offset + t] = src[start + (t - k * width)];
    }
}

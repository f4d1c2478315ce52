// Runs the CUDA kernels of one field's module on the CPU, for tests on machines
// without a GPU: every CUDA thread of a block is a std::thread, __syncthreads is a
// barrier, blocks run one after another. Checks the kernels' arithmetic and index
// logic, not GPU-specific behaviour (memory model, occupancy, limits).
//
// Built by tests/host_emulation.rs as: this file with MODULE_SOURCE naming the
// generated translation unit (prelude + firmware/cuda/*). Usage:
//   harness lde <log_h> <added_bits> <width> <in> <scale> <inv_tw> <fwd_tw> <out>
//   harness hash <rows> <len> <in> <out>
//   harness compress <count> <in> <out>
//   harness tree <rows> <len> <in> <out>     (all 2 * rows - 1 digests)
//   harness reduce <log_h> <width> <points> <first> <shift> <gen> <w> <one> <mat>
//                  <params> <acc>            (acc read unless first, then written)
//   harness quotient <log_size> <log_qd> <width> <one> <lde> <table> <out>
//   harness gather <width> <first> <dst_offset> <src> <starts> <out>
//   harness fold <log_h> <scalars> <pairs> <roll|-> <out>
//                (scalars: b0..b3 c0..c3 ginv inv2 w one)
//   harness groups <log_h> <added_bits> <width> <group_width> <inv_h> <one> <in> <shifts>
//                  <inv_tw> <fwd_tw> <out>
//   harness interp <log_rows> <width> <slices> <shift> <gen> <w> <one> <mat> <z> <out>
#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

struct Dim3 { unsigned x, y, z; };
thread_local Dim3 threadIdx, blockIdx;
Dim3 blockDim, gridDim;
static std::barrier<>* block_barrier;

#define __device__
#define __global__
#define __constant__
#define __shared__
#define __forceinline__ inline
static inline void __syncthreads() { block_barrier->arrive_and_wait(); }
static inline unsigned __brev(unsigned x) {
    unsigned r = 0;
    for (int i = 0; i < 32; i++) { r = (r << 1) | (x & 1); x >>= 1; }
    return r;
}

#define PB_CUDA_HOST_EMULATION 1
#include MODULE_SOURCE

u32 tile[1 << 13];

static void launch(unsigned grid, unsigned block, const std::function<void()>& kernel) {
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    for (unsigned b = 0; b < grid; b++) {
        std::barrier<> bar(block);
        block_barrier = &bar;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < block; t++) {
            threads.emplace_back([&, t, b] {
                threadIdx = {t, 0, 0};
                blockIdx = {b, 0, 0};
                kernel();
            });
        }
        for (auto& th : threads) th.join();
    }
}

static std::vector<u32> read_words(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    std::vector<u32> v;
    u32 w;
    while (fread(&w, 4, 1, f) == 1) v.push_back(w);
    fclose(f);
    return v;
}

static void write_words(const char* path, const std::vector<u32>& v) {
    FILE* f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    fwrite(v.data(), 4, v.size(), f);
    fclose(f);
}

// The same pass plan as the Rust host code: up to 11 stages a launch, tiles of
// min(width, 32) columns and at most 8192 words.
static void dif(std::vector<u32>& data, u64 width, u32 rows_log, u32 top,
                const std::vector<u32>& tw, u32 tw_log) {
    u32 cols = width < 32 ? (u32)width : 32;
    u32 max_stages = 0;
    while ((1u << (max_stages + 1)) * cols <= 8192) max_stages++;
    if (max_stages > 11) max_stages = 11;
    u32 s = top;
    while (s > 0) {
        u32 k = s < max_stages ? s : max_stages;
        u32 rows = 1u << k;
        u32 threads = rows / 2 * cols;
        threads = threads < 32 ? 32 : (threads > 256 ? 256 : threads);
        u32 s_hi = s - 1;
        launch(3, threads, [&] {
            dif_stages(data.data(), width, rows_log, s_hi, k, cols, tw.data(), tw_log);
        });
        s -= k;
    }
}

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    std::string op = argv[1];
    if (op == "lde" && argc == 10) {
        u32 log_h = atoi(argv[2]), added = atoi(argv[3]);
        u64 w = atoll(argv[4]);
        std::vector<u32> in = read_words(argv[5]);
        std::vector<u32> scale = read_words(argv[6]);
        std::vector<u32> inv = read_words(argv[7]);
        std::vector<u32> fwd = read_words(argv[8]);
        u32 log_n = log_h + added;
        dif(in, w, log_h, log_h, inv, log_h);
        std::vector<u32> out(((u64)1 << log_n) * w);
        launch(5, 64, [&] {
            lde_expand(out.data(), in.data(), w, log_h, added, scale.data(), fwd.data());
        });
        dif(out, w, log_n, log_h, fwd, log_n);
        write_words(argv[9], out);
        return 0;
    }
    if (op == "hash" && argc == 6) {
        u64 rows = atoll(argv[2]), len = atoll(argv[3]);
        std::vector<u32> in = read_words(argv[4]);
        std::vector<u32> out(rows * 8);
        launch(3, 32, [&] { hash_leaves(in.data(), rows, len, out.data(), 0); });
        write_words(argv[5], out);
        return 0;
    }
    if (op == "compress" && argc == 5) {
        u64 count = atoll(argv[2]);
        std::vector<u32> buf = read_words(argv[3]);
        buf.resize(3 * count * 8);
        launch(3, 32, [&] { compress_pairs(buf.data(), 0, 2 * count, count); });
        write_words(argv[4], std::vector<u32>(buf.begin() + 2 * count * 8, buf.end()));
        return 0;
    }
    if (op == "tree" && argc == 6) {
        u64 rows = atoll(argv[2]), len = atoll(argv[3]);
        std::vector<u32> in = read_words(argv[4]);
        std::vector<u32> layers((2 * rows - 1) * 8);
        launch(3, 32, [&] { hash_leaves(in.data(), rows, len, layers.data(), 0); });
        u64 cur = rows, in_off = 0, out_off = rows;
        while (cur > 1) {
            u64 half = cur / 2;
            launch(2, 32, [&] { compress_pairs(layers.data(), in_off, out_off, half); });
            in_off = out_off;
            out_off += half;
            cur = half;
        }
        write_words(argv[5], layers);
        return 0;
    }
    if (op == "reduce" && argc == 13) {
        u32 log_h = atoi(argv[2]);
        u64 width = atoll(argv[3]);
        u32 points = atoi(argv[4]), first = atoi(argv[5]);
        u32 shift = strtoul(argv[6], nullptr, 10), gen = strtoul(argv[7], nullptr, 10);
        u32 w = strtoul(argv[8], nullptr, 10), one = strtoul(argv[9], nullptr, 10);
        std::vector<u32> mat = read_words(argv[10]);
        std::vector<u32> params = read_words(argv[11]);
        u64 h = (u64)1 << log_h;
        if (mat.size() != h * width || params.size() != 4 * (width + 3 * (u64)points)) {
            fprintf(stderr, "reduce: matrix or parameters of the wrong size\n");
            return 2;
        }
        // Poisoned when first: the kernel must overwrite every element.
        std::vector<u32> acc = first ? std::vector<u32>(4 * h, 0xdeadbeefu) : read_words(argv[12]);
        if (acc.size() != 4 * h) {
            fprintf(stderr, "reduce: accumulator of the wrong size\n");
            return 2;
        }
        launch(3, 32, [&] {
            reduce_openings(mat.data(), width, log_h, params.data(), points, first, acc.data(),
                            shift, gen, w, one);
        });
        write_words(argv[12], acc);
        return 0;
    }
    if (op == "quotient" && argc == 9) {
        u32 log_size = atoi(argv[2]), log_qd = atoi(argv[3]);
        u64 width = atoll(argv[4]);
        u32 one = strtoul(argv[5], nullptr, 10);
        std::vector<u32> lde = read_words(argv[6]);
        std::vector<u32> table = read_words(argv[7]);
        u64 size = (u64)1 << log_size;
        if (lde.size() < size * width || table.size() < 8) {
            fprintf(stderr, "quotient: LDE or table of the wrong size\n");
            return 2;
        }
        // Poisoned: the kernel must write every element.
        std::vector<u32> out(4 * size, 0xdeadbeefu);
        launch(2, 8, [&] {
            eval_quotient(lde.data(), width, log_size, log_qd, table.data(), out.data(), one);
        });
        write_words(argv[8], out);
        return 0;
    }
    if (op == "gather" && argc == 8) {
        u64 width = atoll(argv[2]);
        u64 first = atoll(argv[3]);
        u64 dst_offset = atoll(argv[4]);
        std::vector<u32> src = read_words(argv[5]);
        std::vector<u32> starts = read_words(argv[6]);
        u64 count = starts.size() / 2 - first;
        // Poisoned: the kernel must write every word from dst_offset on, and none before.
        std::vector<u32> out(dst_offset + count * width, 0xdeadbeefu);
        launch(2, 8, [&] {
            gather_words(src.data(), starts.data(), first, width, count, out.data(), dst_offset);
        });
        write_words(argv[7], out);
        return 0;
    }
    if (op == "fold" && argc == 7) {
        u32 log_h = atoi(argv[2]);
        std::vector<u32> sc = read_words(argv[3]);
        std::vector<u32> pairs = read_words(argv[4]);
        u64 h = 1ull << log_h;
        bool has_roll = std::string(argv[5]) != "-";
        std::vector<u32> roll = has_roll ? read_words(argv[5]) : std::vector<u32>();
        if (sc.size() != 12 || pairs.size() != 8 * h || (has_roll && roll.size() != 4 * h)) {
            fprintf(stderr, "fold: inputs of the wrong size\n");
            return 2;
        }
        // Poisoned: the kernel must write every word.
        std::vector<u32> out(4 * h, 0xdeadbeefu);
        launch(2, 8, [&] {
            fri_fold(pairs.data(), log_h, has_roll ? roll.data() : pairs.data(), has_roll ? 1u : 0u,
                     out.data(), sc[0], sc[1], sc[2], sc[3], sc[4], sc[5], sc[6], sc[7], sc[8],
                     sc[9], sc[10], sc[11]);
        });
        write_words(argv[6], out);
        return 0;
    }
    if (op == "groups" && argc == 13) {
        u32 log_h = atoi(argv[2]), added = atoi(argv[3]);
        u64 w = atoll(argv[4]), group = atoll(argv[5]);
        u32 inv_h = strtoul(argv[6], nullptr, 10), one = strtoul(argv[7], nullptr, 10);
        std::vector<u32> in = read_words(argv[8]);
        std::vector<u32> shifts = read_words(argv[9]);
        std::vector<u32> inv = read_words(argv[10]);
        std::vector<u32> fwd = read_words(argv[11]);
        u32 log_n = log_h + added;
        if (in.size() != ((u64)1 << log_h) * w || shifts.size() * group != w) {
            fprintf(stderr, "groups: input or shifts of the wrong size\n");
            return 2;
        }
        dif(in, w, log_h, log_h, inv, log_h);
        // Poisoned: the kernel must write every word.
        std::vector<u32> out(((u64)1 << log_n) * w, 0xdeadbeefu);
        launch(5, 64, [&] {
            lde_expand_groups(out.data(), in.data(), w, log_h, added, group, shifts.data(), inv_h,
                              fwd.data(), one);
        });
        dif(out, w, log_n, log_h, fwd, log_n);
        write_words(argv[12], out);
        return 0;
    }
    if (op == "interp" && argc == 12) {
        u32 log_rows = atoi(argv[2]);
        u64 width = atoll(argv[3]), slices = atoll(argv[4]);
        u32 shift = strtoul(argv[5], nullptr, 10), gen = strtoul(argv[6], nullptr, 10);
        u32 w = strtoul(argv[7], nullptr, 10), one = strtoul(argv[8], nullptr, 10);
        std::vector<u32> mat = read_words(argv[9]);
        std::vector<u32> z = read_words(argv[10]);
        u64 rows = (u64)1 << log_rows;
        if (mat.size() < rows * width || z.size() != 4) {
            fprintf(stderr, "interp: matrix or point of the wrong size\n");
            return 2;
        }
        // Poisoned: every kernel must write every element.
        std::vector<u32> weights(4 * rows, 0xdeadbeefu);
        std::vector<u32> partial(4 * slices * width, 0xdeadbeefu);
        std::vector<u32> out(4 * width, 0xdeadbeefu);
        launch(3, 16, [&] {
            interp_weights(weights.data(), log_rows, shift, gen, z[0], z[1], z[2], z[3], w, one);
        });
        launch(2, 16, [&] {
            interp_partials(mat.data(), width, rows, weights.data(), slices, partial.data());
        });
        launch(2, 8, [&] { interp_finish(partial.data(), width, slices, out.data()); });
        write_words(argv[11], out);
        return 0;
    }
    fprintf(stderr, "bad arguments\n");
    return 2;
}

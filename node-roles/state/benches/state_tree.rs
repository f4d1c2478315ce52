//! State tree benchmarks: batches of 10,000 updates per second on one thread and on
//! all cores, for states of 2^14 keys up to 2^20 (set `PROOFBOX_STATE_BENCH_MAX_LOG` to
//! 24 for 2^22 and 2^24; a 2^24-key state's tables take about 10.5 GB, the process
//! about 14 GB at its peak), beside the raw Poseidon2
//! permutations per second that bound them (scalar, and packed: one permutation per
//! SIMD lane). Each state's memory per key is printed. Each run applies the batch to
//! the one state and then, untimed, the diff that undoes it.
//!
//! An update hashes its key and leaf (2 + 3 width-24 permutations, the key's in
//! `Diff::new`) and the nodes on its path below the levels the batch shares, about
//! `log2(N / 10,000)` width-16 permutations. `docs/benchmarks.md` ("State tree") has
//! the figures.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use p3_field::{Field, PrimeCharacteristicRing};
use p3_symmetric::Permutation;
use proofbox_backend_api::BackendField;
use proofbox_state::workload::{random_key, random_value};
use proofbox_state::{Diff, F, Parallelism, StateKey, StateTree, StateValue, Update};
use rand::SeedableRng;
use rand::rngs::StdRng;

const BATCH: usize = 10_000;

type P = <F as Field>::Packing;

fn permutations(c: &mut Criterion) {
    let mut g = c.benchmark_group("poseidon2_koalabear");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    let p16 = F::poseidon2_16();
    let p24 = F::poseidon2_24();
    let mut s16 = [F::ONE; 16];
    let mut s24 = [F::TWO; 24];
    g.bench_function("perm_width16", |b| {
        b.iter(|| {
            p16.permute_mut(&mut s16);
            black_box(&s16);
        })
    });
    g.bench_function("perm_width24", |b| {
        b.iter(|| {
            p24.permute_mut(&mut s24);
            black_box(&s24);
        })
    });
    // Packed: one call permutes `P::WIDTH` states, one per SIMD lane.
    let lanes = <P as p3_field::PackedValue>::WIDTH as u64;
    g.throughput(Throughput::Elements(lanes));
    let mut v16 = [P::ONE; 16];
    let mut v24 = [P::TWO; 24];
    g.bench_function(format!("perm_width16_packed_x{lanes}"), |b| {
        b.iter(|| {
            p16.permute_mut(&mut v16);
            black_box(&v16);
        })
    });
    g.bench_function(format!("perm_width24_packed_x{lanes}"), |b| {
        b.iter(|| {
            p24.permute_mut(&mut v24);
            black_box(&v24);
        })
    });
    g.finish();
}

fn max_log() -> u32 {
    std::env::var("PROOFBOX_STATE_BENCH_MAX_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// Keys are added to the state in diffs of this many (a 2^24-key state is not built
/// from one diff of all its keys, which would hold them all twice).
const BUILD_CHUNK: usize = 1 << 20;

fn updates(c: &mut Criterion) {
    for log in (14..=max_log()).step_by(2) {
        let keys = 1usize << log;
        let mut r = StdRng::seed_from_u64(7);
        let mut tree = StateTree::new();
        // Room for the whole state and a batch, as a long-running node's maps have.
        tree.reserve(keys + BATCH);
        // The first keys, kept: the batch changes half of them.
        let mut changed: Vec<(StateKey, StateValue)> = Vec::with_capacity(BATCH / 2);
        let mut added = 0;
        while added < keys {
            let n = BUILD_CHUNK.min(keys - added);
            let chunk: Vec<Update> = (0..n)
                .map(|_| {
                    let k = random_key(&mut r);
                    let v = random_value(&mut r, &k);
                    if changed.len() < BATCH / 2 {
                        changed.push((k, v));
                    }
                    Update::set(k, v)
                })
                .collect();
            let _ = tree.apply(&Diff::new(chunk).unwrap(), Parallelism::Parallel);
            added += n;
        }
        assert_eq!(tree.len(), keys, "random keys do not collide");
        println!(
            "state of 2^{log} keys: {} stored nodes, {:.0} bytes per key",
            tree.stored_nodes(),
            tree.memory_bytes() as f64 / keys as f64
        );
        // Half changes of present keys, half new keys; and the diff that undoes it.
        let mut updates: Vec<Update> = changed
            .iter()
            .map(|(k, _)| Update::set(*k, random_value(&mut r, k)))
            .collect();
        let mut undo: Vec<Update> = changed.iter().map(|&(k, v)| Update::set(k, v)).collect();
        for _ in 0..BATCH / 2 {
            let k = random_key(&mut r);
            updates.push(Update::set(k, random_value(&mut r, &k)));
            undo.push(Update::delete(k));
        }
        let diff = Diff::new(updates.iter().copied()).unwrap();
        let undo = Diff::new(undo).unwrap();
        let root = tree.root();

        // Each run applies the batch to the state and, untimed, undoes it: every run
        // starts from the same state, and no copy of it is made (two copies of a
        // 2^24-key state do not fit in memory).
        let mut g = c.benchmark_group(format!("state_tree_2^{log}_keys"));
        g.sample_size(10).measurement_time(Duration::from_secs(4));
        g.throughput(Throughput::Elements(BATCH as u64));
        let mut timed = |name: &str, mode: &str, run: &dyn Fn(&mut StateTree)| {
            g.bench_function(BenchmarkId::new(name, mode), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        run(&mut tree);
                        total += start.elapsed();
                        let back = tree.apply(&undo, Parallelism::Parallel);
                        assert_eq!(back, root, "the undo diff restores the state");
                    }
                    total
                })
            });
        };
        for (mode, par) in [
            ("1_thread", Parallelism::Sequential),
            ("all_cores", Parallelism::Parallel),
        ] {
            // The update path alone (the diff's key digests computed before).
            timed("apply", mode, &|t| {
                black_box(&t.apply(&diff, par));
            });
        }
        // What a sequencer pays per block: canonicalizing the updates (key digests)
        // and applying them.
        timed("diff_and_apply", "all_cores", &|t| {
            let d = Diff::new(updates.iter().copied()).unwrap();
            black_box(&t.apply(&d, Parallelism::Parallel));
        });
        timed("apply_with_witnesses", "all_cores", &|t| {
            black_box(&t.apply_with_witnesses(&diff, Parallelism::Parallel));
        });
        g.finish();
    }
}

criterion_group!(benches, permutations, updates);
criterion_main!(benches);

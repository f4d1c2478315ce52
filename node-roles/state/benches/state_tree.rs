//! State tree benchmarks: batches of 10,000 updates per second on one thread and on
//! all cores, for states of 2^14 keys up to 2^20 (set `PROOFBOX_STATE_BENCH_MAX_LOG` to
//! 24 for 2^22 and 2^24; a 2^24-key state holds several GiB), beside the raw Poseidon2
//! permutations per second that bound them (scalar, and packed: one permutation per
//! SIMD lane). Each state's memory per key is printed.
//!
//! An update hashes its key and leaf (2 + 3 width-24 permutations, the key's in
//! `Diff::new`) and the nodes on its path below the levels the batch shares, about
//! `log2(N / 10,000)` width-16 permutations. `docs/benchmarks.md` ("State tree") has
//! the figures.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
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

fn updates(c: &mut Criterion) {
    for log in (14..=max_log()).step_by(2) {
        let keys = 1usize << log;
        let mut r = StdRng::seed_from_u64(7);
        let entries: Vec<(StateKey, StateValue)> = (0..keys)
            .map(|_| {
                let k = random_key(&mut r);
                (k, random_value(&mut r, &k))
            })
            .collect();
        let tree = StateTree::from_entries(entries.iter().copied()).unwrap();
        // Each run starts from a copy of this tree with room for the batch's keys, as a
        // tree that has been growing has (its maps double now and then, and that
        // rehash, amortized over the keys since the last one, is not a batch's cost).
        let fresh = || {
            let mut t = tree.clone();
            t.reserve(BATCH);
            t
        };
        println!(
            "state of 2^{log} keys: {} stored nodes, {:.0} bytes per key",
            tree.stored_nodes(),
            tree.memory_bytes() as f64 / keys as f64
        );
        // Half changes of present keys, half new keys.
        let mut updates: Vec<Update> = entries[..BATCH / 2]
            .iter()
            .map(|(k, _)| Update::set(*k, random_value(&mut r, k)))
            .collect();
        for _ in 0..BATCH / 2 {
            let k = random_key(&mut r);
            updates.push(Update::set(k, random_value(&mut r, &k)));
        }
        let diff = Diff::new(updates.iter().copied()).unwrap();

        let mut g = c.benchmark_group(format!("state_tree_2^{log}_keys"));
        g.sample_size(10).measurement_time(Duration::from_secs(4));
        g.throughput(Throughput::Elements(BATCH as u64));
        for (mode, par) in [
            ("1_thread", Parallelism::Sequential),
            ("all_cores", Parallelism::Parallel),
        ] {
            // The update path alone (the diff's key digests computed before).
            g.bench_with_input(BenchmarkId::new("apply", mode), &diff, |b, d| {
                b.iter_batched(
                    fresh,
                    |mut t| black_box(t.apply(d, par)),
                    BatchSize::PerIteration,
                )
            });
        }
        // What a sequencer pays per block: canonicalizing the updates (key digests)
        // and applying them.
        g.bench_with_input(
            BenchmarkId::new("diff_and_apply", "all_cores"),
            &updates,
            |b, u| {
                b.iter_batched(
                    fresh,
                    |mut t| {
                        let d = Diff::new(u.iter().copied()).unwrap();
                        black_box(t.apply(&d, Parallelism::Parallel))
                    },
                    BatchSize::PerIteration,
                )
            },
        );
        g.bench_with_input(
            BenchmarkId::new("apply_with_witnesses", "all_cores"),
            &diff,
            |b, d| {
                b.iter_batched(
                    fresh,
                    |mut t| black_box(t.apply_with_witnesses(d, Parallelism::Parallel)),
                    BatchSize::PerIteration,
                )
            },
        );
        g.finish();
    }
}

criterion_group!(benches, permutations, updates);
criterion_main!(benches);

//! State tree benchmarks: batch updates per second on one thread and on all cores,
//! beside the raw Poseidon2 permutations per second that bound them.
//!
//! An update of a key whose leaf sits alone below depth ~log2(n) hashes its key and
//! leaf (2 + 3 width-24 permutations) and recomputes its 248 nodes (248 width-16
//! permutations); inserting a new key next to a lone leaf also recomputes that leaf's
//! chain below their split. `docs/benchmarks.md` ("State tree") has the figures.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use p3_field::PrimeCharacteristicRing;
use p3_symmetric::Permutation;
use proofbox_backend_api::BackendField;
use proofbox_state::workload::{random_key, random_value};
use proofbox_state::{Diff, F, Parallelism, StateKey, StateTree, StateValue, Update};
use rand::SeedableRng;
use rand::rngs::StdRng;

const TREE_KEYS: usize = 1 << 14;
const BATCH: usize = 1000;

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
    g.finish();
}

fn updates(c: &mut Criterion) {
    let mut r = StdRng::seed_from_u64(7);
    let entries: Vec<(StateKey, StateValue)> = (0..TREE_KEYS)
        .map(|_| {
            let k = random_key(&mut r);
            (k, random_value(&mut r, &k))
        })
        .collect();
    let tree = StateTree::from_entries(entries.iter().copied()).unwrap();
    // Changes of present keys: each rewrites one lone chain.
    let changes = Diff::new(
        entries[..BATCH]
            .iter()
            .map(|(k, _)| Update::set(*k, random_value(&mut r, k))),
    )
    .unwrap();
    // New keys: about half land next to a lone leaf and split its chain.
    let inserts = Diff::new((0..BATCH).map(|_| {
        let k = random_key(&mut r);
        Update::set(k, random_value(&mut r, &k))
    }))
    .unwrap();

    let mut g = c.benchmark_group(format!("state_tree_{}k_keys", TREE_KEYS >> 10));
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, diff) in [("change", &changes), ("insert", &inserts)] {
        for (mode, par) in [
            ("1_thread", Parallelism::Sequential),
            ("all_cores", Parallelism::Parallel),
        ] {
            g.bench_with_input(BenchmarkId::new(name, mode), diff, |b, d| {
                b.iter_batched(
                    || tree.clone(),
                    |mut t| black_box(t.apply(d, par)),
                    BatchSize::LargeInput,
                )
            });
        }
        g.bench_with_input(
            BenchmarkId::new(name, "witnesses_all_cores"),
            diff,
            |b, d| {
                b.iter_batched(
                    || tree.clone(),
                    |mut t| black_box(t.apply_with_witnesses(d, Parallelism::Parallel)),
                    BatchSize::LargeInput,
                )
            },
        );
    }
    g.finish();
}

criterion_group!(benches, permutations, updates);
criterion_main!(benches);

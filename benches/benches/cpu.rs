//! CPU benchmarks: the kernels (LDE + Merkle commit) and whole proofs, each beside
//! stock Plonky3 configured identically and measured in the same run; and the cost of
//! verifying a proof beside the cost of making it.
//!
//! `PROOFBOX_BENCH_MAX_LOG_ROWS` (default 16) caps the proof sizes; the figures in
//! `docs/benchmarks.md` say which cap they were taken with.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use p3_commit::Mmcs;
use p3_dft::{Radix2DitParallel, TwoAdicSubgroupDft};
use p3_field::Field;
use p3_koala_bear::KoalaBear;
use p3_matrix::bitrev::BitReversibleMatrix;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::{Backend, BackendField};
use proofbox_backend_cpu::CpuBackend;
use proofbox_conformance::random_matrix;
use proofbox_prover::config::{FriPreset, stock};
use proofbox_prover::{CircuitField, CircuitId, ProofRequest, Prover, Verifier};

fn max_log_rows() -> u8 {
    std::env::var("PROOFBOX_BENCH_MAX_LOG_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

/// Coset LDE (blowup 2) of 2^log x 16 columns followed by its Merkle commitment.
fn lde_and_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("lde_commit_koalabear_w16");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let cpu = CpuBackend::new();
    for log in [16usize, 18, 20] {
        let input: RowMajorMatrix<KoalaBear> = random_matrix(1, 1 << log, 16);
        g.throughput(Throughput::Elements((1u64 << (log + 1)) * 16));
        g.bench_with_input(BenchmarkId::new("proofbox_cpu", log), &input, |b, m| {
            b.iter(|| {
                black_box(
                    cpu.lde_and_merkle_tree(m.clone(), 1, KoalaBear::GENERATOR)
                        .unwrap(),
                )
            })
        });
        let dft = Radix2DitParallel::<KoalaBear>::default();
        let mmcs = stock::ValMmcs::<KoalaBear>::new(
            KoalaBear::leaf_hasher(),
            KoalaBear::node_compressor(),
            0,
        );
        g.bench_with_input(BenchmarkId::new("stock_plonky3", log), &input, |b, m| {
            b.iter(|| {
                let lde = dft
                    .coset_lde_batch(m.clone(), 1, KoalaBear::GENERATOR)
                    .bit_reverse_rows();
                black_box(mmcs.commit(vec![lde]))
            })
        });
    }
    g.finish();
}

/// Stock Plonky3 on the same trace and public values (KoalaBear).
fn stock_prove(req: &ProofRequest) -> usize {
    type F = KoalaBear;
    let statement = req.statement();
    let fri = req.fri.params();
    let trace = statement.trace::<F>(fri.log_blowup as usize);
    let public_values = statement.digest::<F>();
    let config = stock::config::<F>(&fri);
    let proof = p3_uni_stark::prove(
        &config,
        &<F as CircuitField>::poseidon2_air(),
        trace,
        &public_values,
    )
    .unwrap();
    proof.degree_bits
}

/// Whole Poseidon2 proofs (KoalaBear, Plonky3's benchmark FRI parameters).
fn proofs(c: &mut Criterion) {
    let mut g = c.benchmark_group("prove_poseidon2_koalabear_benchmark_fri");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let prover = Prover::new(CpuBackend::new());
    for log in (14..=max_log_rows()).step_by(2) {
        let mut req = ProofRequest::new(CircuitId::Poseidon2, log);
        req.fri = FriPreset::Benchmark;
        g.throughput(Throughput::Elements(
            CircuitId::Poseidon2.instances(log) as u64
        ));
        g.bench_with_input(BenchmarkId::new("proofbox_cpu", log), &req, |b, r| {
            b.iter(|| black_box(prover.prove(r, Arc::new(())).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("stock_plonky3", log), &req, |b, r| {
            b.iter(|| black_box(stock_prove(r)))
        });
    }
    g.finish();
}

/// What checking a proof before it is served costs (the service and `proofbox prove`
/// verify every proof): proving and verifying the same statement side by side, standard
/// FRI preset, every circuit.
fn prove_then_verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("prove_vs_verify_standard_fri");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let prover = Prover::new(CpuBackend::new());
    let verifier = Verifier::default();
    let cases = [
        (CircuitId::Poseidon2, 14),
        (CircuitId::Keccak, 14),
        (CircuitId::Blake3, 14),
        // 16 updates.
        (CircuitId::StateTransition, 12),
    ];
    for (circuit, log) in cases {
        let req = ProofRequest::new(circuit, log);
        let id = format!("{circuit}/{log}");
        let bytes = prover.prove(&req, Arc::new(())).unwrap().to_bytes();
        g.bench_with_input(BenchmarkId::new("prove", &id), &req, |b, r| {
            b.iter(|| black_box(prover.prove(r, Arc::new(())).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("verify", &id), &bytes, |b, bytes| {
            b.iter(|| black_box(verifier.verify_bytes(bytes).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, lde_and_commit, proofs, prove_then_verify);
criterion_main!(benches);

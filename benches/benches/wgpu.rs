//! wgpu backend benchmarks: the fused LDE + Merkle commit per adapter, beside the CPU
//! backend in the same run, with the transfers each call makes.
//!
//! Every adapter wgpu finds is measured (CPU drivers such as lavapipe too: there the
//! figures are a correctness baseline, not GPU speed). The transfer counts are printed
//! once per size: `uploads` and `readbacks` are the caller's data, `aux` the twiddle
//! and constant tables (uploaded once and kept on the device).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use p3_field::Field;
use p3_koala_bear::KoalaBear;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::Backend;
use proofbox_backend_cpu::CpuBackend;
use proofbox_backend_wgpu::WgpuBackend;
use proofbox_conformance::random_matrix;

fn lde_and_commit(c: &mut Criterion) {
    let adapters = match WgpuBackend::probe() {
        Ok(list) => list,
        Err(e) => {
            eprintln!("skipped: wgpu benchmarks: {e}");
            return;
        }
    };
    let mut g = c.benchmark_group("wgpu_lde_commit_koalabear_w16");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let cpu = CpuBackend::new();
    for log in [12usize, 14, 16] {
        let input: RowMajorMatrix<KoalaBear> = random_matrix(1, 1 << log, 16);
        g.throughput(Throughput::Elements((1u64 << (log + 1)) * 16));
        g.bench_with_input(BenchmarkId::new("cpu", log), &input, |b, m| {
            b.iter(|| {
                black_box(
                    cpu.lde_and_merkle_tree(m.clone(), 1, KoalaBear::GENERATOR)
                        .unwrap(),
                )
            })
        });
        for (ordinal, info) in adapters.iter().enumerate() {
            let gpu = WgpuBackend::open(ordinal).expect("adapter listed by probe opens");
            // One call to warm the kernels and tables, then the transfers of one call.
            gpu.lde_and_merkle_tree(input.clone(), 1, KoalaBear::GENERATOR)
                .unwrap();
            gpu.reset_transfer_stats();
            gpu.lde_and_merkle_tree(input.clone(), 1, KoalaBear::GENERATOR)
                .unwrap();
            let t = gpu.reset_transfer_stats();
            eprintln!(
                "{} ({}) 2^{log} x 16: {} uploads / {} bytes, {} readbacks / {} bytes, {} aux uploads / {} bytes per call",
                info.id,
                info.name,
                t.uploads,
                t.upload_bytes,
                t.readbacks,
                t.readback_bytes,
                t.aux_uploads,
                t.aux_upload_bytes
            );
            g.bench_with_input(
                BenchmarkId::new(info.id.replace(':', "_"), log),
                &input,
                |b, m| {
                    b.iter(|| {
                        black_box(
                            gpu.lde_and_merkle_tree(m.clone(), 1, KoalaBear::GENERATOR)
                                .unwrap(),
                        )
                    })
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, lde_and_commit);
criterion_main!(benches);

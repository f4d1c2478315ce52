//! Device backend benchmarks: the fused LDE + Merkle commit (blowup 2, KoalaBear,
//! 16 columns) on every device of every device backend built in, beside the CPU
//! backend in the same run.
//!
//! Every device found is measured, CPU drivers of device APIs (PoCL, lavapipe) too:
//! there the figures show a backend's overheads, not accelerator speed. What one call
//! moves is printed as well ([`Backend::transfer_stats`]: bytes and copies each way,
//! the part of the host-to-device bytes that are the backend's own tables, waits for
//! the device, kernel launches).

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use p3_field::Field;
use p3_koala_bear::KoalaBear;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::Backend;
use proofbox_backend_cpu::CpuBackend;
use proofbox_backend_cuda::CudaBackend;
use proofbox_backend_opencl::OpenclBackend;
use proofbox_backend_wgpu::WgpuBackend;
use proofbox_conformance::random_matrix;

const LOG_ROWS: [usize; 3] = [12, 14, 16];

fn bench_on<B: Backend>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    log: usize,
    input: &RowMajorMatrix<KoalaBear>,
) {
    let devices = match B::probe() {
        Ok(list) => list,
        Err(e) => {
            if log == LOG_ROWS[0] {
                eprintln!("skipped: {} benchmarks: {e}", B::KIND);
            }
            return;
        }
    };
    for (ordinal, info) in devices.iter().enumerate() {
        let backend = B::open(ordinal).expect("a device listed by probe opens");
        // Warm up kernels and resident tables before measuring.
        backend
            .lde_and_merkle_tree(input.clone(), 1, KoalaBear::GENERATOR)
            .unwrap();
        let before = backend.transfer_stats();
        backend
            .lde_and_merkle_tree(input.clone(), 1, KoalaBear::GENERATOR)
            .unwrap();
        let t = backend.transfer_stats().since(&before);
        eprintln!(
            "{} ({}) 2^{log} x 16 per call: to device {} copies / {} bytes ({} / {} of them tables), \
             to host {} copies / {} bytes, {} waits, {} kernel launches",
            info.id,
            info.name,
            t.host_to_device_copies,
            t.host_to_device_bytes,
            t.table_copies,
            t.table_bytes,
            t.device_to_host_copies,
            t.device_to_host_bytes,
            t.sync_waits,
            t.kernel_launches
        );
        g.bench_with_input(
            BenchmarkId::new(info.id.replace(':', "_"), log),
            input,
            |b, m| {
                b.iter(|| {
                    black_box(
                        backend
                            .lde_and_merkle_tree(m.clone(), 1, KoalaBear::GENERATOR)
                            .unwrap(),
                    )
                })
            },
        );
    }
}

fn lde_and_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("device_lde_commit_koalabear_w16");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let cpu = CpuBackend::new();
    for log in LOG_ROWS {
        let input: RowMajorMatrix<KoalaBear> = random_matrix(1, 1 << log, 16);
        g.throughput(Throughput::Elements((1u64 << (log + 1)) * 16));
        g.bench_with_input(BenchmarkId::new("cpu_0", log), &input, |b, m| {
            b.iter(|| {
                black_box(
                    cpu.lde_and_merkle_tree(m.clone(), 1, KoalaBear::GENERATOR)
                        .unwrap(),
                )
            })
        });
        bench_on::<CudaBackend>(&mut g, log, &input);
        bench_on::<WgpuBackend>(&mut g, log, &input);
        bench_on::<OpenclBackend>(&mut g, log, &input);
    }
    g.finish();
}

criterion_group!(benches, lde_and_commit);
criterion_main!(benches);

//! Times the quotient of every circuit on the first OpenCL device (PoCL's CPU device
//! in CI): `cargo run --release -p proofbox-backend-opencl --example quotient_timing`.
//! The first call includes nothing but the call (the interpreter kernel is part of
//! the program built at open); the figure is for sizing tests, not a benchmark.

use std::time::Instant;

use proofbox_backend_api::resident::{Ext, ResidentField};
use proofbox_backend_api::{Backend, ResidentBackend};
use proofbox_backend_opencl::OpenclBackend;
use proofbox_conformance::quotient::{
    QUOTIENT_LOG_BLOWUP, QuotientCase, benchmark_cases, transition_cases,
};
use proofbox_conformance::{BabyBear, KoalaBear};

fn run<F: ResidentField>(b: &OpenclBackend, c: &QuotientCase<F>) {
    let lde = b
        .lde_resident(c.trace.clone(), QUOTIENT_LOG_BLOWUP, F::GENERATOR)
        .expect("lde");
    let alpha = Ext::<F>::from(F::from_u32(7));
    let start = Instant::now();
    b.eval_quotient(&c.program, &lde, c.shape, alpha, &c.public_values)
        .expect("eval_quotient");
    println!(
        "{} {}: {} operations, 2^{} points: {:.1?}",
        c.program.name,
        F::ID,
        c.program.ops.len(),
        c.shape.log_size(),
        start.elapsed(),
    );
}

fn main() {
    let start = Instant::now();
    let b = OpenclBackend::open(0).expect("an OpenCL device");
    println!(
        "{}: opened (program built) in {:.1?}",
        b.device().id,
        start.elapsed()
    );
    for c in benchmark_cases::<KoalaBear>()
        .iter()
        .chain(&transition_cases())
    {
        run(&b, c);
    }
    for c in benchmark_cases::<BabyBear>() {
        run(&b, &c);
    }
}

//! The CUDA kernels run on the CPU: `tests/emulation/harness.cpp` compiles the real
//! module source with a C++ compiler, emulating CUDA threads with std::thread and
//! `__syncthreads` with a barrier, and its results are compared with the CPU backend.
//! This checks the kernels' arithmetic and index logic on machines without a GPU; it
//! says nothing about GPU-specific behaviour, which only the conformance suite on a
//! GPU checks.
//!
//! The kept-quotient kernels (`lde_expand_groups` between the DIF passes, the
//! interpolation's three kernels) are checked the same way.
//!
//! Needs `c++` (or `$CXX`) with C++20; without one the test prints `skipped: ...`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::kernel_tables::twiddles;
use proofbox_backend_api::quotient::{Bytecode, device_words, plan_quotient};
use proofbox_backend_api::resident::{
    self, EXT_DEGREE, Ext, OpeningClaim, OpeningPoint, ResidentField,
};
use proofbox_backend_api::{Backend, BackendField, DIGEST_ELEMS, Digest, ResidentBackend};
use proofbox_backend_cpu::CpuBackend;
use proofbox_backend_cuda::{kernels, resident as cuda_resident};
use proofbox_conformance::kept_quotient::chunk_shifts;
use proofbox_conformance::quotient::{
    QUOTIENT_LOG_BLOWUP, QuotientCase, benchmark_cases, transition_cases,
};
use proofbox_conformance::{BabyBear, KoalaBear, random_matrix};

struct Harness {
    exe: PathBuf,
    dir: PathBuf,
}

fn write_words(path: &Path, words: &[u32]) {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn read_words(path: &Path) -> Vec<u32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

impl Harness {
    /// Builds the harness for a field's module, or `None` with no C++ compiler.
    fn build<F: BackendField>() -> Option<Self> {
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
        // One directory per harness: tests run in parallel in one process.
        static HARNESSES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "proofbox-cuda-emu-{}-{}-{}",
            F::ID,
            std::process::id(),
            HARNESSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let module = dir.join("module.cu");
        std::fs::write(&module, kernels::module_source(F::ID).unwrap()).unwrap();
        let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emulation/harness.cpp");
        let exe = dir.join("harness");
        let out = match Command::new(&cxx)
            .args([
                "-std=c++20",
                "-O2",
                "-pthread",
                "-Wno-unknown-pragmas",
                "-x",
                "c++",
            ])
            .arg(format!("-DMODULE_SOURCE=\"{}\"", module.display()))
            .arg(&harness)
            .arg("-o")
            .arg(&exe)
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                proofbox_conformance::skip(format_args!("no C++ compiler ({cxx}: {e})"));
                return None;
            }
        };
        assert!(
            out.status.success(),
            "harness failed to build:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Self { exe, dir })
    }

    fn run(&self, args: &[String]) {
        let out = Command::new(&self.exe).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "harness {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn path(&self, name: &str) -> String {
        self.file(name).display().to_string()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fails with the first differing index (not the whole vectors).
fn assert_same<T: PartialEq + core::fmt::Debug>(got: &[T], want: &[T], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!(
            "{what}: first difference at {i}: got {:?}, expected {:?}",
            got[i], want[i]
        );
    }
}

fn check_lde<F: BackendField>(h: &Harness, log_h: usize, width: usize, added_bits: usize) {
    let input = random_matrix::<F>(log_h as u64 * 77 + width as u64, 1 << log_h, width);
    let shift = F::GENERATOR;
    let want = CpuBackend::new()
        .coset_lde_batch(input.clone(), added_bits, shift)
        .unwrap();
    let hgt = F::from_u32(1 << log_h);
    let scale: Vec<F> = shift
        .shifted_powers(hgt.inverse())
        .take(1 << log_h)
        .collect();
    write_words(&h.file("in"), F::as_monty_words(&input.values));
    write_words(&h.file("scale"), F::as_monty_words(&scale));
    write_words(&h.file("inv"), &twiddles::<F>(log_h, true));
    write_words(&h.file("fwd"), &twiddles::<F>(log_h + added_bits, false));
    h.run(&[
        "lde".into(),
        log_h.to_string(),
        added_bits.to_string(),
        width.to_string(),
        h.path("in"),
        h.path("scale"),
        h.path("inv"),
        h.path("fwd"),
        h.path("out"),
    ]);
    let got = F::from_monty_words(read_words(&h.file("out"))).unwrap();
    let what = format!("{} LDE 2^{log_h} x {width} +{added_bits}", F::ID);
    assert_same(&got, &want.values, &what);
}

fn check_hash<F: BackendField>(h: &Harness, rows: usize, len: usize) {
    let input = random_matrix::<F>(rows as u64 * 3 + len as u64, rows, len).values;
    let mut want = vec![[F::ZERO; DIGEST_ELEMS]; rows];
    CpuBackend::new().hash_rows(&input, &mut want).unwrap();
    write_words(&h.file("msgs"), F::as_monty_words(&input));
    h.run(&[
        "hash".into(),
        rows.to_string(),
        len.to_string(),
        h.path("msgs"),
        h.path("digests"),
    ]);
    let got = F::from_monty_words(read_words(&h.file("digests"))).unwrap();
    assert_same(
        &got,
        want.as_flattened(),
        &format!("{} hash {rows} x {len}", F::ID),
    );

    let pairs: Vec<[Digest<F>; 2]> = want
        .iter()
        .zip(want.iter().rev())
        .map(|(a, b)| [*a, *b])
        .collect();
    let mut want_c = vec![[F::ZERO; DIGEST_ELEMS]; rows];
    CpuBackend::new()
        .compress_pairs(&pairs, &mut want_c)
        .unwrap();
    write_words(
        &h.file("pairs"),
        F::as_monty_words(pairs.as_flattened().as_flattened()),
    );
    h.run(&[
        "compress".into(),
        rows.to_string(),
        h.path("pairs"),
        h.path("compressed"),
    ]);
    let got = F::from_monty_words(read_words(&h.file("compressed"))).unwrap();
    assert_same(
        &got,
        want_c.as_flattened(),
        &format!("{} compress {rows}", F::ID),
    );
}

fn check_tree<F: BackendField>(h: &Harness, log_rows: usize, width: usize) {
    let m: RowMajorMatrix<F> = random_matrix(5 + log_rows as u64, 1 << log_rows, width);
    let want = CpuBackend::new().merkle_tree(&[&m]).unwrap();
    write_words(&h.file("leaves"), F::as_monty_words(&m.values));
    h.run(&[
        "tree".into(),
        (1usize << log_rows).to_string(),
        width.to_string(),
        h.path("leaves"),
        h.path("layers"),
    ]);
    let got = F::from_monty_words(read_words(&h.file("layers"))).unwrap();
    let want_flat: Vec<F> = want.concat().into_iter().flatten().collect();
    assert_same(
        &got,
        &want_flat,
        &format!("{} tree 2^{log_rows} x {width}", F::ID),
    );
}

/// `count` extension elements from a seeded random matrix.
fn random_ext<F: ResidentField>(seed: u64, count: usize) -> Vec<Ext<F>> {
    resident::ext_from_base(&random_matrix::<F>(seed, count.max(1), 4).values)[..count].to_vec()
}

/// The opening reduction over matrices of `(log_h, width, points)`, claim by claim as
/// the CUDA host code drives the kernel (its parameter words and scalars), against the
/// CPU backend's `reduce_openings`.
fn check_reduce<F: ResidentField>(
    h: &Harness,
    seed: u64,
    shapes: &[(usize, usize, usize)],
    shift: F,
) {
    let cpu = CpuBackend::new();
    let mats: Vec<_> = shapes
        .iter()
        .enumerate()
        .map(|(i, &(log_h, w, _))| random_matrix::<F>(seed + i as u64, 1 << log_h, w))
        .collect();
    let points: Vec<Vec<OpeningPoint<F>>> = shapes
        .iter()
        .enumerate()
        .map(|(i, &(_, w, p))| {
            (0..p)
                .map(|j| {
                    let s = seed * 1000 + 10 * i as u64 + j as u64;
                    (random_ext::<F>(s, 1)[0], random_ext::<F>(s + 500, w))
                })
                .collect()
        })
        .collect();
    let resident_mats: Vec<_> = mats
        .iter()
        .map(|m| cpu.upload_matrix(m.clone()).unwrap())
        .collect();
    let claims: Vec<_> = resident_mats
        .iter()
        .zip(&points)
        .map(|(matrix, points)| OpeningClaim { matrix, points })
        .collect();
    let alpha = random_ext::<F>(seed + 7, 1)[0];
    let want = cpu.reduce_openings(&claims, alpha, shift).unwrap();
    let plans = resident::plan_reduction(alpha, &claims).unwrap();
    let mut got: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    for (i, plan) in plans.iter().enumerate() {
        let k = plan.log_height;
        if plan.points.is_empty() && !plan.first_of_height {
            continue;
        }
        let acc = h.file(&format!("acc{k}"));
        if !plan.first_of_height {
            write_words(&acc, &got[&k]);
        }
        write_words(&h.file("mat"), F::as_monty_words(&mats[i].values));
        write_words(&h.file("params"), &cuda_resident::kernel_params(plan));
        let [s, g, w, one] = cuda_resident::kernel_scalars(k, shift);
        h.run(&[
            "reduce".into(),
            k.to_string(),
            mats[i].width.to_string(),
            plan.points.len().to_string(),
            u32::from(plan.first_of_height).to_string(),
            s.to_string(),
            g.to_string(),
            w.to_string(),
            one.to_string(),
            h.path("mat"),
            h.path("params"),
            acc.display().to_string(),
        ]);
        got.insert(k, read_words(&acc));
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{} reduce {shapes:?}: heights",
        F::ID
    );
    for r in &want {
        let coeffs = F::from_monty_words(got[&r.log_height].clone()).unwrap();
        assert_same(
            &resident::ext_from_base(&coeffs),
            &r.values,
            &format!("{} reduce {shapes:?}, height 2^{}", F::ID, r.log_height),
        );
    }
}

/// `gather_words` over a random buffer: scattered, repeated and unordered runs
/// (offsets given as 64-bit low/high pairs), the first `first` offsets skipped and the
/// runs written from `dst_offset` on, against slicing on the host.
fn check_gather(h: &Harness, width: usize, starts: &[usize], first: usize, dst_offset: usize) {
    let src: Vec<u32> = (0..4096u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    write_words(&h.file("gather_src"), &src);
    let offsets: Vec<u32> = starts
        .iter()
        .flat_map(|&s| [s as u32, (s as u64 >> 32) as u32])
        .collect();
    write_words(&h.file("gather_starts"), &offsets);
    h.run(&[
        "gather".into(),
        width.to_string(),
        first.to_string(),
        dst_offset.to_string(),
        h.path("gather_src"),
        h.path("gather_starts"),
        h.path("gather_out"),
    ]);
    let want: Vec<u32> = std::iter::repeat_n(0xdead_beef, dst_offset)
        .chain(
            starts[first..]
                .iter()
                .flat_map(|&s| src[s..s + width].iter().copied()),
        )
        .collect();
    assert_same(
        &read_words(&h.file("gather_out")),
        &want,
        &format!("gather width {width}, starts {starts:?} from {first}, to {dst_offset}"),
    );
}

/// `fri_fold` over `2^log_h` random pairs, with and without a roll-in, against the
/// CPU backend's fold.
fn check_fold<F: ResidentField>(h: &Harness, log_h: usize) {
    let cpu = CpuBackend::new();
    let n = 1usize << log_h;
    let pairs = random_matrix::<F>(500 + log_h as u64, n, 2 * EXT_DEGREE);
    let roll = random_matrix::<F>(600 + log_h as u64, n, EXT_DEGREE);
    let beta = <Ext<F> as p3_field::BasedVectorSpace<F>>::from_basis_coefficients_fn(|i| {
        F::from_u32(11 + i as u32 * 7)
    });
    let c = beta * beta;
    let (cpu_pairs, cpu_roll) = (
        cpu.upload_matrix(pairs.clone()).unwrap(),
        cpu.upload_matrix(roll.clone()).unwrap(),
    );
    write_words(&h.file("fold_pairs"), F::as_monty_words(&pairs.values));
    write_words(&h.file("fold_roll"), F::as_monty_words(&roll.values));
    for with_roll in [false, true] {
        let want = cpu
            .fri_fold(&cpu_pairs, beta, with_roll.then_some((&cpu_roll, c)))
            .and_then(|m| cpu.read_ext(&m))
            .unwrap();
        let f = resident::FoldWords::new(beta, with_roll.then_some(c));
        let scalars: Vec<u32> = f
            .beta
            .iter()
            .chain(&f.c)
            .copied()
            .chain([f.ginv(log_h), f.half, f.w, f.one])
            .collect();
        write_words(&h.file("fold_scalars"), &scalars);
        h.run(&[
            "fold".into(),
            log_h.to_string(),
            h.path("fold_scalars"),
            h.path("fold_pairs"),
            if with_roll {
                h.path("fold_roll")
            } else {
                "-".into()
            },
            h.path("fold_out"),
        ]);
        let got = F::from_monty_words(read_words(&h.file("fold_out"))).unwrap();
        assert_same(
            &resident::ext_from_base(&got),
            &want,
            &format!("{} fold of 2^{log_h} pairs, roll-in {with_roll}", F::ID),
        );
    }
}

/// `lde_expand_groups` between the DIF passes, with the quotient's chunk shifts and
/// arbitrary ones, against the CPU backend's `lde_resident_groups`.
fn check_groups<F: ResidentField>(
    h: &Harness,
    log_h: usize,
    groups: usize,
    group: usize,
    added_bits: usize,
) {
    let width = groups * group;
    let input = random_matrix::<F>(log_h as u64 * 31 + width as u64, 1 << log_h, width);
    let mut shifts = chunk_shifts::<F>(log_h, groups.trailing_zeros() as usize);
    shifts.truncate(groups);
    while shifts.len() < groups {
        shifts.push(F::from_u32(5 + shifts.len() as u32));
    }
    let cpu = CpuBackend::new();
    let want = cpu
        .lde_resident_groups(
            cpu.upload_matrix(input.clone()).unwrap(),
            added_bits,
            &shifts,
        )
        .unwrap();
    write_words(&h.file("g_in"), F::as_monty_words(&input.values));
    write_words(&h.file("g_shifts"), F::as_monty_words(&shifts));
    write_words(&h.file("g_inv"), &twiddles::<F>(log_h, true));
    write_words(&h.file("g_fwd"), &twiddles::<F>(log_h + added_bits, false));
    let monty = |x: F| F::as_monty_words(&[x])[0].to_string();
    h.run(&[
        "groups".into(),
        log_h.to_string(),
        added_bits.to_string(),
        width.to_string(),
        group.to_string(),
        monty(F::from_u32(1 << log_h).inverse()),
        monty(F::ONE),
        h.path("g_in"),
        h.path("g_shifts"),
        h.path("g_inv"),
        h.path("g_fwd"),
        h.path("g_out"),
    ]);
    let got = F::from_monty_words(read_words(&h.file("g_out"))).unwrap();
    assert_same(
        &got,
        &want.values().values,
        &format!(
            "{} grouped LDE 2^{log_h} x {groups} x {group} +{added_bits}",
            F::ID
        ),
    );
}

/// `interp_weights`, `interp_partials` and `interp_finish` over an extension's first
/// rows against the CPU backend's `weighted_column_sums`.
fn check_interp<F: ResidentField>(h: &Harness, log_rows: usize, width: usize, slices: usize) {
    let cpu = CpuBackend::new();
    let m = cpu
        .lde_resident(
            random_matrix::<F>(log_rows as u64 * 5 + width as u64, 1 << log_rows, width),
            1,
            F::GENERATOR,
        )
        .unwrap();
    let z = random_ext::<F>(log_rows as u64 + 900, 1)[0];
    let want = cpu
        .weighted_column_sums(&m, log_rows, F::GENERATOR, z)
        .unwrap();
    write_words(&h.file("i_mat"), F::as_monty_words(&m.values().values));
    write_words(
        &h.file("i_z"),
        F::as_monty_words(&resident::ext_to_base(&[z])),
    );
    let monty = |x: F| F::as_monty_words(&[x])[0].to_string();
    h.run(&[
        "interp".into(),
        log_rows.to_string(),
        width.to_string(),
        slices.to_string(),
        monty(F::GENERATOR),
        monty(F::two_adic_generator(log_rows)),
        monty(F::W),
        monty(F::ONE),
        h.path("i_mat"),
        h.path("i_z"),
        h.path("i_out"),
    ]);
    let coeffs = F::from_monty_words(read_words(&h.file("i_out"))).unwrap();
    assert_same(
        &resident::ext_from_base(&coeffs),
        &want,
        &format!(
            "{} interpolation sums 2^{log_rows} x {width}, {slices} slices",
            F::ID
        ),
    );
}

fn run_all<F: ResidentField>() {
    let Some(h) = Harness::build::<F>() else {
        return;
    };
    // Shapes that cross the tile boundaries of the pass plan: widths below, at and
    // above the 32-column tile, heights needing one and two shared-memory passes.
    for (log_h, width, added_bits) in [
        (0, 3, 2),
        (1, 1, 1),
        (2, 3, 1),
        (3, 33, 3),
        (5, 7, 1),
        (8, 32, 1),
        (9, 2, 2),
        (12, 1, 1),
        (12, 5, 2),
    ] {
        check_lde::<F>(&h, log_h, width, added_bits);
    }
    for (rows, len) in [(1, 1), (3, 16), (37, 24), (70, 8), (17, 1313), (5, 2634)] {
        check_hash::<F>(&h, rows, len);
    }
    for (log_rows, width) in [(0, 1), (1, 8), (6, 17)] {
        check_tree::<F>(&h, log_rows, width);
    }
    for (log_h, groups, group, added_bits) in
        [(0, 1, 4, 1), (3, 2, 4, 2), (6, 4, 4, 1), (5, 3, 5, 1)]
    {
        check_groups::<F>(&h, log_h, groups, group, added_bits);
    }
    for (log_rows, width, slices) in [(0, 3, 1), (4, 8, 4), (7, 5, 16), (6, 2, 64)] {
        check_interp::<F>(&h, log_rows, width, slices);
    }
    check_gather(&h, 8, &[4000, 0, 8, 8, 1234, 4088], 0, 0);
    check_gather(&h, 1, &[7], 0, 0);
    check_gather(&h, 37, &[3700, 0, 37 * 9, 2000], 0, 0);
    check_gather(&h, 5, &[11, 3000, 17, 17, 2], 2, 13);
    // One pair, and more pairs than the emulated grid's threads.
    for log_h in [0, 3, 7] {
        check_fold::<F>(&h, log_h);
    }
    // Several claims per height (accumulation), a first claim without points (zeroes
    // its height), a single row, and more rows than the emulated grid's threads.
    check_reduce::<F>(
        &h,
        900,
        &[(3, 2, 1), (2, 5, 2), (4, 3, 0), (3, 6, 0), (3, 1, 1)],
        F::GENERATOR,
    );
    check_reduce::<F>(
        &h,
        950,
        &[(0, 3, 1), (8, 4, 2), (8, 33, 1), (5, 1, 3)],
        F::GENERATOR.square(),
    );
}

/// Every circuit's quotient: the constraint program's bytecode run by the emulated
/// `eval_quotient` over the CPU backend's LDE, against the CPU backend's
/// `eval_quotient`.
fn check_quotients<F: ResidentField>(h: &Harness, cases: &[QuotientCase<F>]) {
    let cpu = CpuBackend::new();
    let alpha = random_ext::<F>(77, 1)[0];
    for c in cases {
        let lde = cpu
            .lde_resident(c.trace.clone(), QUOTIENT_LOG_BLOWUP, F::GENERATOR)
            .unwrap();
        let want = cpu
            .eval_quotient(&c.program, &lde, c.shape, alpha, &c.public_values)
            .unwrap();
        let plan = plan_quotient(
            &c.program,
            lde.values().height(),
            lde.values().width,
            c.shape,
            alpha,
            &c.public_values,
        )
        .unwrap();
        let code = Bytecode::compile(&c.program).unwrap();
        write_words(&h.file("lde"), F::as_monty_words(&lde.values().values));
        write_words(&h.file("table"), &device_words(&plan, &code));
        let out = h.file("quotient");
        h.run(&[
            "quotient".into(),
            c.shape.log_size().to_string(),
            c.shape.log_quotient_degree.to_string(),
            lde.values().width.to_string(),
            F::as_monty_words(&[F::ONE])[0].to_string(),
            h.path("lde"),
            h.path("table"),
            out.display().to_string(),
        ]);
        let coeffs = F::from_monty_words(read_words(&out)).unwrap();
        assert_same(
            &resident::ext_from_base(&coeffs),
            &want,
            &format!("{} quotient of {}", F::ID, c.program.name),
        );
    }
}

#[test]
fn emulated_quotients_match_cpu_koalabear() {
    if let Some(h) = Harness::build::<KoalaBear>() {
        let mut cases = benchmark_cases::<KoalaBear>();
        cases.extend(transition_cases());
        check_quotients(&h, &cases);
    }
}

#[test]
fn emulated_quotients_match_cpu_babybear() {
    if let Some(h) = Harness::build::<BabyBear>() {
        check_quotients(&h, &benchmark_cases::<BabyBear>());
    }
}

#[test]
fn emulated_kernels_match_cpu_koalabear() {
    run_all::<KoalaBear>();
}

#[test]
fn emulated_kernels_match_cpu_babybear() {
    run_all::<BabyBear>();
}

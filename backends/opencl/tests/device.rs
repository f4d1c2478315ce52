//! Discovery, loading a precompiled program binary, and planning against a lowered
//! memory limit. Without an OpenCL platform the device tests print `skipped: ...`;
//! `PROOFBOX_REQUIRE_OPENCL=1` makes that a failure.

use p3_koala_bear::KoalaBear;
use proofbox_backend_api::planner::{self, Batches, DeviceLimits, TreePlan};
use proofbox_backend_api::{
    Backend, BackendError, BackendKind, BackendReport, DIGEST_ELEMS, DeviceType, merkle_root,
};
use proofbox_backend_cpu::CpuBackend;
use proofbox_backend_opencl::{KernelSource, OpenclBackend};
use proofbox_conformance::{open_or_skip, random_matrix};

#[test]
fn probe_lists_devices_or_says_why_not() {
    match OpenclBackend::probe() {
        Ok(devices) => {
            assert!(!devices.is_empty());
            for d in &devices {
                assert!(d.id.starts_with("opencl:"), "{d:?}");
                assert_eq!(d.id.split(':').count(), 3, "{d:?}");
                assert_eq!(d.backend, BackendKind::Opencl);
                assert!(d.memory_bytes > 0 && d.compute_units > 0, "{d:?}");
                assert!(!d.name.is_empty() && !d.vendor.is_empty(), "{d:?}");
                assert!(d.driver.as_deref().is_some_and(|s| !s.is_empty()));
                println!("{d:?}");
            }
            let report = BackendReport::from_probe(BackendKind::Opencl, Ok(devices));
            assert!(report.available);
        }
        Err(BackendError::Unavailable { backend, reason }) => {
            assert_eq!(backend, BackendKind::Opencl);
            assert!(!reason.is_empty());
            proofbox_conformance::require_or_skip(BackendKind::Opencl, "opencl probe", reason);
        }
        Err(e) => panic!("probe failed with something other than Unavailable: {e}"),
    }
}

#[test]
fn pocl_is_a_cpu_device() {
    let Ok(devices) = OpenclBackend::probe() else {
        proofbox_conformance::skip("no OpenCL platform");
        return;
    };
    for d in devices {
        if d.driver
            .as_deref()
            .unwrap_or_default()
            .contains("Portable Computing Language")
        {
            assert_eq!(d.device_type, DeviceType::Cpu, "{d:?}");
        }
    }
}

#[test]
fn unknown_ordinal_is_reported() {
    let Ok(devices) = OpenclBackend::probe() else {
        proofbox_conformance::skip("no OpenCL platform");
        return;
    };
    match OpenclBackend::open(devices.len()) {
        Err(BackendError::UnknownDevice { available, .. }) => {
            assert_eq!(available, devices.len())
        }
        other => panic!("expected UnknownDevice, got {other:?}"),
    }
}

/// Hashes, an LDE and a tree on `b`, compared with the CPU backend.
fn agrees_with_cpu(b: &OpenclBackend) {
    let cpu = CpuBackend::new();
    let mat = random_matrix::<KoalaBear>(5, 1 << 8, 12);
    let shift = KoalaBear::new(7);
    let want = cpu.coset_lde_batch(mat.clone(), 2, shift).unwrap();
    let got = b.coset_lde_batch(mat.clone(), 2, shift).unwrap();
    assert_eq!(got, want);
    let want = cpu.merkle_tree(&[&mat]).unwrap();
    let got = b.merkle_tree(&[&mat]).unwrap();
    assert_eq!(got, want);
    let long = random_matrix::<KoalaBear>(6, 3, 2634).values;
    let mut want = vec![[KoalaBear::new(0); DIGEST_ELEMS]; 3];
    let mut got = want.clone();
    cpu.hash_rows(&long, &mut want).unwrap();
    b.hash_rows(&long, &mut got).unwrap();
    assert_eq!(got, want);
}

#[test]
fn program_binary_loads_again() {
    let Some(b) = open_or_skip(OpenclBackend::open(0)) else {
        return;
    };
    let binary = b.program_binary().unwrap();
    assert!(!binary.is_empty());
    let path = std::env::temp_dir().join(format!("proofbox-opencl-{}.bin", std::process::id()));
    std::fs::write(&path, &binary).unwrap();
    let loaded = OpenclBackend::open_with(0, KernelSource::Binary(path.clone()));
    std::fs::remove_file(&path).ok();
    let loaded = loaded.unwrap();
    agrees_with_cpu(&loaded);
}

#[test]
fn a_bad_binary_is_a_kernel_error() {
    let Some(_) = open_or_skip(OpenclBackend::open(0)) else {
        return;
    };
    let path = std::env::temp_dir().join(format!("proofbox-opencl-bad-{}.bin", std::process::id()));
    std::fs::write(&path, b"not a program binary").unwrap();
    let r = OpenclBackend::open_with(0, KernelSource::Binary(path.clone()));
    std::fs::remove_file(&path).ok();
    assert!(matches!(r, Err(BackendError::Kernel { .. })), "{r:?}");
    let missing = OpenclBackend::open_with(0, KernelSource::Binary("/nonexistent.aocx".into()));
    assert!(
        matches!(missing, Err(BackendError::Kernel { .. })),
        "{missing:?}"
    );
}

#[test]
fn lowered_memory_limit_splits_work_or_reports_oom() {
    let Some(b) = open_or_skip(OpenclBackend::open(0)) else {
        return;
    };
    let cpu = CpuBackend::new();
    // 2^10 rows x 24 columns, blowup 2: one column needs (1024 + 2048) * 4 + 3 * 1024
    // words at its peak; 64 KiB lets about three columns through per batch, and one
    // extension buffer of 2048 * 4 words per allocation.
    b.set_memory_limit(Some(64 << 10));
    let mat = random_matrix::<KoalaBear>(11, 1 << 10, 24);
    let shift = KoalaBear::new(3);
    let want = cpu.coset_lde_batch(mat.clone(), 1, shift).unwrap();
    let got = b.coset_lde_batch(mat.clone(), 1, shift).unwrap();
    assert_eq!(got, want, "column-batched LDE");
    // Leaf hashing in row batches, and a tree whose layers do not fit one buffer
    // (2^13 leaves: 2^14 digests of 32 bytes).
    let tall = random_matrix::<KoalaBear>(12, 1 << 13, 40);
    let want_tree = cpu.merkle_tree(&[&tall]).unwrap();
    let got_tree = b.merkle_tree(&[&tall]).unwrap();
    assert_eq!(merkle_root(&got_tree), merkle_root(&want_tree));
    assert_eq!(got_tree, want_tree);
    let (lde, layers) = b.lde_and_merkle_tree(mat.clone(), 1, shift).unwrap();
    let (want_lde, want_layers) = cpu.lde_and_merkle_tree(mat, 1, shift).unwrap();
    assert_eq!(lde, want_lde);
    assert_eq!(layers, want_layers);
    // A single column whose extension exceeds the limit cannot be split.
    b.set_memory_limit(Some(16 << 10));
    let big = random_matrix::<KoalaBear>(13, 1 << 12, 1);
    match b.coset_lde_batch(big.clone(), 1, shift) {
        Err(BackendError::OutOfMemory { needed_bytes, .. }) => assert!(needed_bytes > 16 << 10),
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
    // Back to the device's limits: the same call succeeds.
    b.set_memory_limit(None);
    let want = cpu.coset_lde_batch(big.clone(), 1, shift).unwrap();
    assert_eq!(b.coset_lde_batch(big, 1, shift).unwrap(), want);
}

#[test]
fn lowered_memory_limit_plans_resident_and_layer_by_layer_trees() {
    let Some(b) = open_or_skip(OpenclBackend::open(0)) else {
        return;
    };
    let cpu = CpuBackend::new();
    b.set_memory_limit(Some(64 << 10));
    // 90 % of 64 KiB for a call, 64 KiB for one buffer.
    assert_eq!(
        b.limits(),
        DeviceLimits {
            budget_words: 14625,
            max_buffer_words: 16 << 10,
        }
    );
    // 2^8 leaves of 100 words: the layers (4088 words) fit one buffer, the messages go
    // in row batches of 105 beside them.
    let plan = planner::tree(&b.limits(), 1 << 8, 100, 0).unwrap();
    assert_eq!(
        plan,
        TreePlan::Resident {
            leaf_batches: Batches {
                total: 1 << 8,
                per_batch: 105
            }
        }
    );
    let mat = random_matrix::<KoalaBear>(21, 1 << 8, 100);
    let before = b.transfer_stats();
    let got = b.merkle_tree(&[&mat]).unwrap();
    let s = b.transfer_stats().since(&before);
    assert_eq!(
        (s.data_to_device_copies(), s.device_to_host_copies),
        (3, 1),
        "{s:?}"
    );
    assert_eq!(got, cpu.merkle_tree(&[&mat]).unwrap());
    // 2^13 leaves: 2^14 - 1 digests are more than one buffer, so the tree is built
    // layer by layer (hash_rows in row batches, then compress_pairs per layer).
    let plan = planner::tree(&b.limits(), 1 << 13, 40, 0).unwrap();
    assert!(matches!(plan, TreePlan::ByLayers(_)), "{plan:?}");
    let tall = random_matrix::<KoalaBear>(22, 1 << 13, 40);
    let before = b.transfer_stats();
    let got = b.merkle_tree(&[&tall]).unwrap();
    let s = b.transfer_stats().since(&before);
    // Uploads: the leaves in 27 batches of 304 rows (40 words and a scratch digest a
    // row in 14625 words), then the 13 layers' pairs in batches of 609: 7, 4, 2 and
    // ten single batches.
    assert_eq!(s.data_to_device_copies(), 27 + 7 + 4 + 2 + 10, "{s:?}");
    assert_eq!(got, cpu.merkle_tree(&[&tall]).unwrap());
}

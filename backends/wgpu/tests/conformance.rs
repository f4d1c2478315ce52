//! The shared conformance suite on the wgpu backend, plus discovery, limit-splitting
//! and transfer-accounting checks. Every test opens `wgpu:0`; without an adapter the
//! tests print `skipped: ...` (or fail with `PROOFBOX_REQUIRE_WGPU=1`).

use p3_field::{Field, PrimeCharacteristicRing};
use p3_matrix::Matrix;
use proofbox_backend_api::planner::{self, TreePlan};
use proofbox_backend_api::{
    Backend, BackendError, BackendKind, DIGEST_ELEMS, TransferStats, merkle_root,
};
use proofbox_backend_wgpu::{KernelLimits, WgpuBackend};
use proofbox_conformance::{
    BabyBear, CpuBackend, KoalaBear, check_hash_kernels, check_lde, check_lde_and_merkle,
    check_merkle, open_or_skip, random_matrix,
};

proofbox_conformance::backend_conformance_tests!(
    wgpu_backend,
    proofbox_backend_wgpu::WgpuBackend::open(0)
);

fn open() -> Option<WgpuBackend> {
    open_or_skip(WgpuBackend::open(0))
}

/// The backend's transfer counters now.
fn stats(b: &WgpuBackend) -> TransferStats {
    assert!(b.transfer_counters().is_some(), "wgpu counts its transfers");
    b.transfer_stats()
}

#[test]
fn discovery_lists_adapters_and_refuses_unknown_ordinals() {
    match WgpuBackend::probe() {
        Ok(devices) => {
            assert!(!devices.is_empty(), "probe succeeded with no devices");
            for (i, d) in devices.iter().enumerate() {
                assert_eq!(d.id, format!("wgpu:{i}"));
                assert_eq!(d.backend, BackendKind::Wgpu);
                assert!(!d.name.is_empty());
                let driver = d.driver.as_deref().unwrap_or_default();
                assert!(
                    ["Vulkan", "Metal", "Dx12", "Gl"]
                        .iter()
                        .any(|api| driver.starts_with(api)),
                    "driver string names the API: {driver}"
                );
                println!("{}: {} [{}] {driver}", d.id, d.name, d.vendor);
            }
            let n = devices.len();
            assert!(matches!(
                WgpuBackend::open(n),
                Err(BackendError::UnknownDevice { available, .. }) if available == n
            ));
            if let Some(b) = open() {
                assert_eq!(b.device(), &devices[0]);
            }
        }
        Err(BackendError::Unavailable { backend, reason }) => {
            assert_eq!(backend, BackendKind::Wgpu);
            assert!(
                open().is_none(),
                "probe found nothing but open worked: {reason}"
            );
        }
        Err(e) => panic!("probe failed with a non-availability error: {e}"),
    }
}

/// Limits small enough to force column batches, row batches and multi-dispatch launches
/// on the suite's shapes.
fn tiny_limits(storage_bytes: u64) -> KernelLimits {
    KernelLimits {
        max_storage_buffer_binding_size: storage_bytes,
        max_buffer_size: u64::MAX,
        max_compute_workgroups_per_dimension: 3,
        max_resident_window_bytes: u64::MAX,
        max_storage_buffers_per_shader_stage: u32::MAX,
    }
}

#[test]
fn lowered_limits_split_work_and_still_match_the_cpu() {
    let Some(b) = open() else { return };
    let device = b.device_limits();
    // 2^10 x 33 +1 bit: a column of the extension is 8 KiB, so 32 KiB bindings give
    // batches of 4 columns. The leaves of 2^9 rows of 24 words take 48 KiB, hashed in
    // row batches; the tree's digest layers (32 KiB - 32 bytes) fit one binding.
    let b = b.with_kernel_limits(tiny_limits(32 << 10));
    let limits = b.kernel_limits();
    assert_eq!(
        limits.max_storage_buffer_binding_size,
        (32u64 << 10).min(device.max_storage_buffer_binding_size)
    );
    assert_eq!(limits.max_compute_workgroups_per_dimension, 3);

    check_lde::<_, KoalaBear>(&b, 10, 33, 1).unwrap();
    check_lde::<_, BabyBear>(&b, 9, 7, 2).unwrap();
    check_merkle::<_, KoalaBear>(&b, 9, &[7, 9, 8]).unwrap();
    check_hash_kernels::<_, BabyBear>(&b).unwrap();

    // Row batches of the leaf hashing: 2 uploads of messages, one readback of the tree.
    let mats = [random_matrix::<BabyBear>(8, 1 << 9, 24)];
    let before = stats(&b);
    let layers = b.merkle_tree(&[&mats[0]]).unwrap();
    let s = stats(&b).since(&before);
    assert_eq!(
        (s.data_to_device_copies(), s.device_to_host_copies),
        (2, 1),
        "{s:?}"
    );
    assert_eq!(layers, CpuBackend::new().merkle_tree(&[&mats[0]]).unwrap());

    // The splits really happened: 9 column batches for 33 columns, each one upload
    // and one readback.
    let before = stats(&b);
    let m = random_matrix::<KoalaBear>(5, 1 << 10, 33);
    b.coset_lde_batch(m, 1, KoalaBear::GENERATOR).unwrap();
    let s = stats(&b).since(&before);
    assert_eq!(
        (s.data_to_device_copies(), s.device_to_host_copies),
        (9, 9),
        "{s:?}"
    );
    assert_eq!(s.data_to_device_bytes(), (1 << 10) * 33 * 4);
    assert_eq!(s.device_to_host_bytes, (2 << 10) * 33 * 4);
    // One wait per readback.
    assert_eq!(s.sync_waits, 9, "{s:?}");
}

#[test]
fn lowered_limits_fused_call_falls_back_to_batches_and_matches_the_cpu() {
    let Some(b) = open() else { return };
    // 1 MiB bindings: the suite's 2^12 x 33 +2 bits extension (2.1 MiB) is computed in
    // column batches and its tree hashed in row batches; the 2^10 x 16 +1 bit case
    // stays fused.
    let b = b.with_kernel_limits(tiny_limits(1 << 20));
    check_lde_and_merkle::<_, KoalaBear>(&b).unwrap();
    check_lde_and_merkle::<_, BabyBear>(&b).unwrap();
}

#[test]
fn lowered_limits_tree_over_one_binding_is_built_by_layers_and_matches_the_cpu() {
    let Some(b) = open() else { return };
    // 16 KiB bindings: the layers of 2^9 leaves (32 KiB - 32 bytes) do not fit one,
    // the leaf digests (16 KiB) do, so the tree goes layer by layer through the host.
    let b = b.with_kernel_limits(tiny_limits(16 << 10));
    let plan = planner::tree(&b.limits(), 1 << 9, 24, 24).unwrap();
    assert!(matches!(plan, TreePlan::ByLayers(_)), "{plan:?}");
    check_merkle::<_, KoalaBear>(&b, 9, &[7, 9, 8]).unwrap();
    check_merkle::<_, BabyBear>(&b, 9, &[24]).unwrap();
}

#[test]
fn work_that_cannot_be_split_is_refused_with_out_of_memory() {
    let Some(b) = open() else { return };
    let b = b.with_kernel_limits(tiny_limits(4 << 10));
    // One column of 2^11 rows is 8 KiB: more than a 4 KiB binding.
    let m = random_matrix::<KoalaBear>(1, 1 << 10, 1);
    assert!(matches!(
        b.coset_lde_batch(m, 1, KoalaBear::GENERATOR),
        Err(BackendError::OutOfMemory {
            needed_bytes: 8192,
            available_bytes: 4096,
            ..
        })
    ));
    // The backend stays usable after a refusal.
    check_lde::<_, KoalaBear>(&b, 5, 3, 1).unwrap();
}

#[test]
fn fused_lde_and_merkle_uploads_once_and_reads_back_lde_and_layers() {
    let Some(b) = open() else { return };
    let (log_h, width, added_bits) = (8usize, 5usize, 2usize);
    let m = random_matrix::<BabyBear>(3, 1 << log_h, width);
    let n = 1usize << (log_h + added_bits);
    let before = stats(&b);
    let (lde, layers) = b
        .lde_and_merkle_tree(m.clone(), added_bits, BabyBear::GENERATOR)
        .unwrap();
    let s = stats(&b).since(&before);
    assert_eq!(s.data_to_device_copies(), 1, "{s:?}");
    assert_eq!(s.data_to_device_bytes(), (m.values.len() * 4) as u64);
    let layer_digests: usize = layers.iter().map(Vec::len).sum();
    assert_eq!(layer_digests, 2 * n - 1);
    assert_eq!(s.device_to_host_copies, 1, "{s:?}");
    assert_eq!(
        s.device_to_host_bytes,
        (n * width * 4 + layer_digests * DIGEST_ELEMS * 4) as u64
    );
    assert_eq!(s.sync_waits, 1, "{s:?}");

    let cpu = CpuBackend::new();
    let (want_lde, want_layers) = cpu
        .lde_and_merkle_tree(m, added_bits, BabyBear::GENERATOR)
        .unwrap();
    assert_eq!(lde.width(), width);
    assert_eq!(lde.values, want_lde.values);
    assert_eq!(layers, want_layers);
    assert_eq!(merkle_root(&layers), merkle_root(&want_layers));

    // The separate calls move the extension back to the device for hashing.
    let before = stats(&b);
    let lde = b
        .coset_lde_batch(
            random_matrix::<BabyBear>(3, 1 << log_h, width),
            added_bits,
            BabyBear::GENERATOR,
        )
        .unwrap();
    b.merkle_tree(&[&lde]).unwrap();
    let s = stats(&b).since(&before);
    assert_eq!(
        (s.data_to_device_copies(), s.device_to_host_copies),
        (2, 2),
        "{s:?}"
    );
}

#[test]
fn invalid_shapes_are_refused_before_touching_the_device() {
    let Some(b) = open() else { return };
    let before = stats(&b);
    let odd = p3_matrix::dense::RowMajorMatrix::new(vec![KoalaBear::ONE; 3], 1);
    assert!(matches!(
        b.coset_lde_batch(odd.clone(), 1, KoalaBear::GENERATOR),
        Err(BackendError::InvalidInput(_))
    ));
    assert!(matches!(
        b.merkle_tree(&[&odd]),
        Err(BackendError::InvalidInput(_))
    ));
    let mut out = vec![[KoalaBear::ZERO; DIGEST_ELEMS]; 3];
    assert!(matches!(
        b.hash_rows(&[KoalaBear::ONE; 10], &mut out),
        Err(BackendError::InvalidInput(_))
    ));
    assert_eq!(stats(&b).since(&before), TransferStats::default());
}

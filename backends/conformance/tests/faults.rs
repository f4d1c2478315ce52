//! The suite against [`FaultyBackend`], one [`Fault`] at a time: each check catches the
//! fault of its kernel, names the kernel and where the first value differs, and lets
//! the other kernels pass.

use std::panic::{AssertUnwindSafe, catch_unwind};

use p3_field::Field;
use proofbox_backend_api::{Backend, merkle_root};
use proofbox_conformance::faulty::{Fault, FaultyBackend};
use proofbox_conformance::{
    BabyBear, CpuBackend, KoalaBear, check_hash_kernels, check_lde, check_lde_and_merkle,
    check_lde_at, check_merkle, lde_shifts, random_matrix, run_lde_suite, run_merkle_suite,
};

#[test]
fn an_lde_fault_is_caught_at_the_value_it_changed() {
    let bad = FaultyBackend::new(Fault::Lde);
    // 2^5 rows x 3 columns extended by 1 bit: the last of 192 values is off.
    let m = check_lde::<_, KoalaBear>(&bad, 5, 3, 1).unwrap_err().0;
    assert!(m.contains("coset_lde_batch"), "{m}");
    assert!(m.contains("first difference at index 191"), "{m}");
    let m = check_lde_and_merkle::<_, BabyBear>(&bad).unwrap_err().0;
    assert!(
        m.contains("lde_and_merkle_tree") && m.contains("extension"),
        "{m}"
    );
    // The hash kernels and trees of given matrices are untouched.
    check_hash_kernels::<_, KoalaBear>(&bad).unwrap();
    check_merkle::<_, KoalaBear>(&bad, 6, &[24, 8, 3]).unwrap();
}

#[test]
fn an_lde_that_ignores_its_shift_fails_at_every_other_shift() {
    let bad = FaultyBackend::new(Fault::LdeFixedShift);
    for (name, shift) in lde_shifts::<KoalaBear>() {
        let checked = check_lde_at(&bad, 6, 4, 2, name, shift);
        if shift == KoalaBear::GENERATOR {
            // What a suite at the generator alone would have seen.
            checked.unwrap();
        } else {
            let m = checked.unwrap_err().0;
            assert!(m.contains(&format!("shift {name}")), "{m}");
        }
    }
    assert!(check_lde::<_, BabyBear>(&bad, 3, 2, 1).is_err());
    assert!(check_lde_and_merkle::<_, KoalaBear>(&bad).is_err());
}

#[test]
fn a_hash_rows_fault_is_caught_in_the_kernel_and_in_the_leaf_layer() {
    let bad = FaultyBackend::new(Fault::HashRows);
    let m = check_hash_kernels::<_, KoalaBear>(&bad).unwrap_err().0;
    assert!(m.contains("hash_rows"), "{m}");
    let m = check_merkle::<_, BabyBear>(&bad, 4, &[3]).unwrap_err().0;
    assert!(
        m.contains("merkle_tree") && m.contains("layer 0 of 5"),
        "{m}"
    );
    // The last of 16 leaf digests is off.
    assert!(m.contains("first difference at index 15"), "{m}");
    check_lde::<_, KoalaBear>(&bad, 5, 3, 1).unwrap();
}

#[test]
fn a_compress_pairs_fault_is_caught_in_the_kernel_and_above_the_leaves() {
    let bad = FaultyBackend::new(Fault::CompressPairs);
    let m = check_hash_kernels::<_, BabyBear>(&bad).unwrap_err().0;
    assert!(
        m.contains("compress_pairs") && !m.contains("hash_rows"),
        "{m}"
    );
    let m = check_merkle::<_, KoalaBear>(&bad, 4, &[3]).unwrap_err().0;
    assert!(m.contains("layer 1 of 5"), "{m}");
    let m = check_lde_and_merkle::<_, KoalaBear>(&bad).unwrap_err().0;
    assert!(m.contains("layer 1 of"), "{m}");
}

#[test]
fn a_wrong_layer_under_a_right_root_is_caught() {
    let bad = FaultyBackend::new(Fault::TreeLayer);
    let cpu = CpuBackend::new();
    let mat = random_matrix::<KoalaBear>(3, 1 << 4, 3);
    let got = bad.merkle_tree(&[&mat]).unwrap();
    let want = cpu.merkle_tree(&[&mat]).unwrap();
    // A comparison of roots alone passes...
    assert_eq!(merkle_root(&got), merkle_root(&want));
    assert_ne!(got, want);
    // ...the layer-by-layer checks do not.
    let m = check_merkle::<_, KoalaBear>(&bad, 4, &[3]).unwrap_err().0;
    assert!(m.contains("layer 3 of 5"), "{m}");
    assert!(m.contains("first difference at index 1"), "{m}");
    let m = check_lde_and_merkle::<_, BabyBear>(&bad).unwrap_err().0;
    assert!(
        m.contains("lde_and_merkle_tree") && m.contains("layer"),
        "{m}"
    );
    // The kernels themselves are right, and a one-leaf tree has no layer to get wrong.
    check_hash_kernels::<_, KoalaBear>(&bad).unwrap();
    check_merkle::<_, KoalaBear>(&bad, 0, &[1]).unwrap();
}

#[test]
fn a_backend_error_fails_the_check_and_names_the_kernel() {
    let bad = FaultyBackend::new(Fault::DeviceLost);
    let m = check_hash_kernels::<_, KoalaBear>(&bad).unwrap_err().0;
    assert!(
        m.contains("compress_pairs") && m.contains("backend failed"),
        "{m}"
    );
    assert!(m.contains("device lost"), "{m}");
    let m = check_merkle::<_, BabyBear>(&bad, 3, &[16]).unwrap_err().0;
    assert!(
        m.contains("merkle_tree") && m.contains("device lost"),
        "{m}"
    );
    // A one-leaf tree compresses nothing.
    check_merkle::<_, BabyBear>(&bad, 0, &[1]).unwrap();
}

/// The panic message of `f`, or `None` when it returns.
fn panic_message(f: impl FnOnce()) -> Option<String> {
    let payload = catch_unwind(AssertUnwindSafe(f)).err()?;
    Some(
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    )
}

#[test]
fn the_whole_suite_fails_on_every_fault_and_names_its_kernel() {
    for fault in Fault::ALL {
        let bad = FaultyBackend::new(fault);
        let m = panic_message(|| {
            run_lde_suite::<_, KoalaBear>(&bad);
            run_merkle_suite::<_, KoalaBear>(&bad);
        })
        .unwrap_or_else(|| panic!("the suite passed a backend with fault {fault}"));
        let kernel = fault.kernel().unwrap();
        assert!(m.contains(kernel), "fault {fault}: {m}");
        assert!(m.contains("faulty:0"), "fault {fault}: {m}");
    }
}

#[test]
fn the_faulty_backend_has_one_device() {
    let devices = FaultyBackend::probe().unwrap();
    assert_eq!(devices.len(), 1);
    let b = FaultyBackend::open(0).unwrap();
    assert_eq!(b.fault(), Fault::None);
    assert_eq!(b.device(), &devices[0]);
    assert!(FaultyBackend::open(1).is_err());
    assert_eq!(Fault::None.kernel(), None);
    assert!(Fault::ALL.iter().all(|f| f.kernel().is_some()));
}

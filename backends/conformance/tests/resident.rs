//! The resident conformance suite on the CPU backend: its values against the CPU
//! backend's own non-resident calls and its opening reduction against the direct
//! evaluation of the definition
//! ([`proofbox_conformance::resident::reference_reduction`]); and the CPU backend's
//! reduction against Plonky3's own FRI verifier, which recomputes the reduced openings
//! at query indices from opened rows (`p3_fri::verifier::open_inputs`). The calls that
//! keep the quotient resident against Plonky3's DFT and `interpolate_coset`
//! ([`proofbox_conformance::kept_quotient`]).

use p3_commit::{CommitmentOpening, ExtensionMmcs, MatrixOpening, Mmcs, PointOpening};
use p3_field::{BasedVectorSpace, coset::TwoAdicMultiplicativeCoset};
use p3_fri::{BatchMultiOpening, FriParameters};
use p3_matrix::Matrix;
use p3_merkle_tree::MerkleTreeMmcs;
use proofbox_backend_api::resident::{
    Ext, OpeningClaim, OpeningPoint, ResidentBackend, ResidentField,
};
use proofbox_backend_api::{Backend, DIGEST_ELEMS};
use proofbox_conformance::{BabyBear, CpuBackend, KoalaBear, random_matrix};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

proofbox_conformance::resident_conformance_tests!(cpu, CpuBackend::open(0));
proofbox_conformance::kept_quotient_conformance_tests!(cpu_kept, CpuBackend::open(0));

fn random_ext<F: ResidentField>(rng: &mut StdRng) -> Ext<F> {
    Ext::<F>::from_basis_coefficients_fn(|_| F::from_u32(rng.random_range(0..F::ORDER_U32)))
}

/// Matrices of three heights committed in one batch (LDEs at blowup 2 on the
/// generator's coset, as Plonky3's PCS commits them), opened at one to three points;
/// at several query indices, the reduced openings Plonky3's verifier computes from
/// the opened rows equal the CPU backend's reduced vectors at those rows.
fn reduction_equals_plonky3<F: ResidentField>() {
    let cpu = CpuBackend::new();
    let log_blowup = 1;
    let mut rng = StdRng::seed_from_u64(0xf41);
    // (log2 trace height, width, points)
    let shapes = [(4usize, 3usize, 2usize), (2, 5, 1), (4, 2, 1), (3, 4, 3)];
    let ldes: Vec<_> = shapes
        .iter()
        .enumerate()
        .map(|(i, &(lh, w, _))| {
            cpu.lde_resident(
                random_matrix::<F>(70 + i as u64, 1 << lh, w),
                log_blowup,
                F::GENERATOR,
            )
            .unwrap()
        })
        .collect();
    let points: Vec<Vec<OpeningPoint<F>>> = shapes
        .iter()
        .map(|&(_, w, p)| {
            (0..p)
                .map(|_| {
                    let z = random_ext::<F>(&mut rng);
                    (z, (0..w).map(|_| random_ext::<F>(&mut rng)).collect())
                })
                .collect()
        })
        .collect();
    let alpha = random_ext::<F>(&mut rng);
    let claims: Vec<_> = ldes
        .iter()
        .zip(&points)
        .map(|(matrix, p)| OpeningClaim {
            matrix,
            points: p.as_slice(),
        })
        .collect();
    let reduced = cpu.reduce_openings(&claims, alpha, F::GENERATOR).unwrap();

    let mmcs = MerkleTreeMmcs::<F::Packing, F::Packing, _, _, 2, DIGEST_ELEMS>::new(
        F::leaf_hasher(),
        F::node_compressor(),
        0,
    );
    let (commitment, data) = mmcs.commit(ldes.iter().map(|m| m.values().clone()).collect());
    let log_max = ldes
        .iter()
        .map(|m| m.values().height().trailing_zeros() as usize)
        .max()
        .unwrap();
    let indices = [0usize, 1, 7, 18, (1 << log_max) - 1];
    let (opened_values, opening_proof) = mmcs.open_multi_batch(&indices, &data);
    let params = FriParameters {
        log_blowup,
        log_final_poly_len: 0,
        max_log_arity: 1,
        num_queries: indices.len(),
        batch_proof_of_work_bits: 0,
        commit_proof_of_work_bits: 0,
        query_proof_of_work_bits: 0,
        mmcs: ExtensionMmcs::<F, Ext<F>, _>::new(mmcs.clone()),
    };
    let claims = vec![CommitmentOpening {
        commitment,
        matrices: shapes
            .iter()
            .zip(&points)
            .map(|(&(lh, _, _), p)| MatrixOpening {
                domain: TwoAdicMultiplicativeCoset::new(F::GENERATOR, lh).unwrap(),
                points: p
                    .iter()
                    .map(|(z, ys)| PointOpening {
                        point: *z,
                        values: ys.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }];
    let openings = [BatchMultiOpening {
        opened_values,
        opening_proof,
    }];
    let fri_inputs =
        p3_fri::verifier::open_inputs(&params, log_max, &indices, &openings, alpha, &mmcs, &claims)
            .unwrap();
    assert_eq!(fri_inputs.len(), indices.len());
    for (&index, inputs) in indices.iter().zip(&fri_inputs) {
        let heights: Vec<usize> = inputs.iter().map(|&(k, _)| k).collect();
        let ours: Vec<usize> = reduced.iter().map(|r| r.log_height).collect();
        let mut sorted = heights.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(sorted, ours, "heights at query {index}");
        for &(k, value) in inputs {
            let row = index >> (log_max - k);
            let mine = reduced.iter().find(|r| r.log_height == k).unwrap();
            assert_eq!(
                mine.values[row],
                value,
                "{} height 2^{k}, query {index}",
                F::ID
            );
        }
    }
}

#[test]
fn reduction_equals_plonky3_fri_verifier_koalabear() {
    reduction_equals_plonky3::<KoalaBear>();
}

#[test]
fn reduction_equals_plonky3_fri_verifier_babybear() {
    reduction_equals_plonky3::<BabyBear>();
}

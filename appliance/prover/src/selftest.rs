//! Devices prove themselves first: a short check of a backend against the CPU
//! backend, run before the device is trusted with proofs.
//!
//! A device whose kernels return wrong values makes proofs that fail verification
//! (or, for a wrong tree layer, openings that do). [`self_test`] runs, for every
//! field the device's [`DeviceInfo::fields`](proofbox_backend_api::DeviceInfo::fields) claims, every kernel of the seam on a
//! small seeded random matrix ([`LOG_ROWS`], [`WIDTH`], [`ADDED_BITS`]) and compares
//! the results value for value with the CPU backend's:
//!
//! - [`Backend::coset_lde_batch`] at the shifts a proof extends onto
//!   ([`lde_shifts`]);
//! - [`Backend::hash_rows`] of the extension's rows and [`Backend::compress_pairs`] of
//!   their digests;
//! - [`Backend::merkle_tree`] and [`Backend::lde_and_merkle_tree`], every layer;
//! - for a prover on the resident path (`Prover::resident`), a whole small proof
//!   ([`resident_check_request`]) made there, byte for byte against the CPU backend's
//!   stock proof (which exercises every resident call: upload, extension, tree, rows,
//!   digests, opening reduction).
//!
//! The first value that differs, a backend error or a panic fails the test with a
//! [`SelfTestError`] that names the device, the field, the kernel and what differed.
//! `registry::open` with `auto` never picks a device that fails.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use p3_baby_bear::BabyBear;
use p3_field::PrimeField32;
use p3_koala_bear::KoalaBear;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::{Backend, BackendError, BackendField, DIGEST_ELEMS, Digest, FieldId};
use proofbox_backend_cpu::CpuBackend;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Rows of the test matrix (log2): 64.
pub const LOG_ROWS: usize = 6;
/// Columns of the test matrix.
pub const WIDTH: usize = 8;
/// Bits the LDE adds (blowup 4).
pub const ADDED_BITS: usize = 2;
/// Seed of the test matrix (the field's code is added, so each field gets its own).
pub const SEED: u64 = 0x5e1f_7e57;

/// A kernel of the seam, as the self-test names it: the [`Backend`] method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    CosetLde,
    HashRows,
    CompressPairs,
    MerkleTree,
    LdeAndMerkleTree,
    /// A whole small proof on the resident path ([`crate::resident`]), compared byte
    /// for byte with the CPU backend's stock proof.
    ResidentProof,
}

impl Kernel {
    /// The [`Backend`] method's name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::CosetLde => "coset_lde_batch",
            Self::HashRows => "hash_rows",
            Self::CompressPairs => "compress_pairs",
            Self::MerkleTree => "merkle_tree",
            Self::LdeAndMerkleTree => "lde_and_merkle_tree",
            Self::ResidentProof => "resident proof",
        }
    }
}

impl core::fmt::Display for Kernel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A device that passed: the fields it was tested in and how long the test took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfTestReport {
    pub device: String,
    pub fields: Vec<FieldId>,
    pub duration: Duration,
}

/// Why a device failed its self-test.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelfTestError {
    /// A value differs from the CPU backend's. `part` says where (`shift one`,
    /// `layer 3 of 9`, ...); `index` is the first differing position in it (a field
    /// element, or a digest in tree layers); values are canonical (one element, or a
    /// digest's eight).
    #[error(
        "{device}: self-test {field} {kernel}: {part}: first difference at index {index}: got {got:?}, expected {expected:?}"
    )]
    Mismatch {
        device: String,
        field: FieldId,
        kernel: Kernel,
        part: String,
        index: usize,
        got: Vec<u32>,
        expected: Vec<u32>,
    },
    /// A result has the wrong number of values, digests or layers.
    #[error("{device}: self-test {field} {kernel}: {part}: {got} {unit}, expected {expected}")]
    Shape {
        device: String,
        field: FieldId,
        kernel: Kernel,
        part: String,
        unit: &'static str,
        got: usize,
        expected: usize,
    },
    /// The backend returned an error.
    #[error("{device}: self-test {field} {kernel}: backend failed: {source}")]
    Backend {
        device: String,
        field: FieldId,
        kernel: Kernel,
        #[source]
        source: BackendError,
    },
    /// The backend panicked.
    #[error("{device}: self-test {field} {kernel}: backend panicked: {message}")]
    Panic {
        device: String,
        field: FieldId,
        kernel: Kernel,
        message: String,
    },
    /// The device claims no field, so there is nothing it could be trusted with.
    #[error("{device}: self-test: the device claims no field")]
    NoFields { device: String },
    /// The prover cannot run a self-test (see `DynProver::self_test`).
    #[error("{device}: this prover has no self-test")]
    Unsupported { device: String },
}

impl SelfTestError {
    /// The device that failed.
    pub fn device(&self) -> &str {
        match self {
            Self::Mismatch { device, .. }
            | Self::Shape { device, .. }
            | Self::Backend { device, .. }
            | Self::Panic { device, .. }
            | Self::NoFields { device }
            | Self::Unsupported { device } => device,
        }
    }

    /// The kernel that failed, where one did.
    pub fn kernel(&self) -> Option<Kernel> {
        match self {
            Self::Mismatch { kernel, .. }
            | Self::Shape { kernel, .. }
            | Self::Backend { kernel, .. }
            | Self::Panic { kernel, .. } => Some(*kernel),
            Self::NoFields { .. } | Self::Unsupported { .. } => None,
        }
    }
}

impl From<SelfTestError> for BackendError {
    /// A backend error stays itself; a wrong value, a panic or a missing test is a
    /// kernel failure of the device.
    fn from(e: SelfTestError) -> Self {
        match e {
            SelfTestError::Backend { source, .. } => source,
            other => BackendError::Kernel {
                device: other.device().to_string(),
                kernel: other
                    .kernel()
                    .map_or_else(|| "self-test".into(), |k| k.name().into()),
                message: other.to_string(),
            },
        }
    }
}

/// The shifts the self-test extends onto, with a name for messages: the field
/// generator (a trace's coset), one and the inverse of a fourth root of unity (the
/// shifts of quotient chunks).
pub fn lde_shifts<F: BackendField>() -> [(&'static str, F); 3] {
    [
        ("generator", F::GENERATOR),
        ("one", F::ONE),
        (
            "inverse 4th root of unity",
            F::two_adic_generator(2).inverse(),
        ),
    ]
}

/// The proof the self-test of a resident prover makes in `field` (Poseidon2 on 8
/// rows, seed [`SEED`]), and its FRI parameters: few queries and no grinding, so that
/// the proof is a function of the input.
pub fn resident_check_request(field: FieldId) -> (crate::ProofRequest, crate::FriParams) {
    let mut req = crate::ProofRequest::new(crate::CircuitId::Poseidon2, 3);
    req.field = field;
    req.seed = SEED;
    let fri = crate::FriParams {
        num_queries: 4,
        query_proof_of_work_bits: 0,
        ..crate::FriPreset::Standard.params()
    };
    (req, fri)
}

/// Runs the self-test of `backend` in every field its device claims.
pub fn self_test<B: Backend>(backend: &B) -> Result<SelfTestReport, SelfTestError> {
    let start = Instant::now();
    let info = backend.device();
    if info.fields.is_empty() {
        return Err(SelfTestError::NoFields {
            device: info.id.clone(),
        });
    }
    for &field in &info.fields {
        match field {
            FieldId::KoalaBear => test_field::<B, KoalaBear>(backend)?,
            FieldId::BabyBear => test_field::<B, BabyBear>(backend)?,
        }
    }
    Ok(SelfTestReport {
        device: info.id.clone(),
        fields: info.fields.clone(),
        duration: start.elapsed(),
    })
}

/// The seeded test matrix of field `F`.
pub fn test_matrix<F: BackendField>() -> RowMajorMatrix<F> {
    let mut rng = StdRng::seed_from_u64(SEED + u64::from(F::ID.code()));
    let values = (0..(WIDTH << LOG_ROWS))
        .map(|_| F::from_u32(rng.random_range(0..F::ORDER_U32)))
        .collect();
    RowMajorMatrix::new(values, WIDTH)
}

/// Runs one kernel on the device under test: its errors and panics become
/// [`SelfTestError`]s.
struct Run<'a> {
    device: &'a str,
    field: FieldId,
}

impl Run<'_> {
    fn call<T>(
        &self,
        kernel: Kernel,
        f: impl FnOnce() -> Result<T, BackendError>,
    ) -> Result<T, SelfTestError> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(SelfTestError::Backend {
                device: self.device.to_string(),
                field: self.field,
                kernel,
                source,
            }),
            Err(payload) => Err(SelfTestError::Panic {
                device: self.device.to_string(),
                field: self.field,
                kernel,
                message: payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into()),
            }),
        }
    }

    /// `got` against `want`, value for value (`canonical` writes a value for the
    /// error).
    fn compare<T: PartialEq>(
        &self,
        kernel: Kernel,
        part: &str,
        (unit, canonical): (&'static str, fn(&T) -> Vec<u32>),
        got: &[T],
        want: &[T],
    ) -> Result<(), SelfTestError> {
        if got.len() != want.len() {
            return Err(SelfTestError::Shape {
                device: self.device.to_string(),
                field: self.field,
                kernel,
                part: part.to_string(),
                unit,
                got: got.len(),
                expected: want.len(),
            });
        }
        match got.iter().zip(want).position(|(g, w)| g != w) {
            None => Ok(()),
            Some(index) => Err(SelfTestError::Mismatch {
                device: self.device.to_string(),
                field: self.field,
                kernel,
                part: part.to_string(),
                index,
                got: canonical(&got[index]),
                expected: canonical(&want[index]),
            }),
        }
    }

    /// Every layer of a tree: the layer count, then each layer's digests.
    fn compare_layers<F: BackendField>(
        &self,
        kernel: Kernel,
        got: &[Vec<Digest<F>>],
        want: &[Vec<Digest<F>>],
    ) -> Result<(), SelfTestError> {
        self.compare_len(kernel, "tree", "layers", got.len(), want.len())?;
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let part = format!("layer {i} of {}", want.len());
            self.compare(kernel, &part, ("digests", digest::<F>), g, w)?;
        }
        Ok(())
    }

    fn compare_len(
        &self,
        kernel: Kernel,
        part: &str,
        unit: &'static str,
        got: usize,
        expected: usize,
    ) -> Result<(), SelfTestError> {
        if got == expected {
            return Ok(());
        }
        Err(SelfTestError::Shape {
            device: self.device.to_string(),
            field: self.field,
            kernel,
            part: part.to_string(),
            unit,
            got,
            expected,
        })
    }
}

/// A field element as canonical `u32`s, for [`SelfTestError::Mismatch`].
fn element<F: BackendField>(v: &F) -> Vec<u32> {
    vec![v.as_canonical_u32()]
}

/// A digest as canonical `u32`s, for [`SelfTestError::Mismatch`].
fn digest<F: BackendField>(d: &Digest<F>) -> Vec<u32> {
    d.iter().map(PrimeField32::as_canonical_u32).collect()
}

/// The self-test in field `F`.
fn test_field<B: Backend, F: BackendField>(backend: &B) -> Result<(), SelfTestError> {
    let run = Run {
        device: &backend.device().id,
        field: F::ID,
    };
    // The reference cannot fail on these shapes; if it did, the device is not to blame
    // but cannot be trusted either, so its error fails the test like the device's.
    let cpu = CpuBackend::new();
    let reference_name = format!("{} (CPU reference)", backend.device().id);
    let reference = Run {
        device: &reference_name,
        field: F::ID,
    };
    let input = test_matrix::<F>();

    let mut extension = None;
    for (name, shift) in lde_shifts::<F>() {
        let want = reference.call(Kernel::CosetLde, || {
            cpu.coset_lde_batch(input.clone(), ADDED_BITS, shift)
        })?;
        let got = run.call(Kernel::CosetLde, || {
            backend.coset_lde_batch(input.clone(), ADDED_BITS, shift)
        })?;
        let part = format!("shift {name} ({shift})");
        run.compare_len(Kernel::CosetLde, &part, "columns", got.width, want.width)?;
        run.compare(
            Kernel::CosetLde,
            &part,
            ("values", element::<F>),
            &got.values,
            &want.values,
        )?;
        extension.get_or_insert(want);
    }
    let extension = extension.expect("at least one shift");
    let rows = extension.values.len() / WIDTH;

    let mut want_leaves = vec![[F::ZERO; DIGEST_ELEMS]; rows];
    reference.call(Kernel::HashRows, || {
        cpu.hash_rows(&extension.values, &mut want_leaves)
    })?;
    let mut got_leaves = vec![[F::ZERO; DIGEST_ELEMS]; rows];
    run.call(Kernel::HashRows, || {
        backend.hash_rows(&extension.values, &mut got_leaves)
    })?;
    run.compare(
        Kernel::HashRows,
        "extension rows",
        ("digests", digest::<F>),
        &got_leaves,
        &want_leaves,
    )?;

    let (pairs, _) = want_leaves.as_chunks::<2>();
    let mut want_nodes = vec![[F::ZERO; DIGEST_ELEMS]; pairs.len()];
    reference.call(Kernel::CompressPairs, || {
        cpu.compress_pairs(pairs, &mut want_nodes)
    })?;
    let mut got_nodes = vec![[F::ZERO; DIGEST_ELEMS]; pairs.len()];
    run.call(Kernel::CompressPairs, || {
        backend.compress_pairs(pairs, &mut got_nodes)
    })?;
    run.compare(
        Kernel::CompressPairs,
        "pairs of leaf digests",
        ("digests", digest::<F>),
        &got_nodes,
        &want_nodes,
    )?;

    let want_tree = reference.call(Kernel::MerkleTree, || cpu.merkle_tree(&[&extension]))?;
    let got_tree = run.call(Kernel::MerkleTree, || backend.merkle_tree(&[&extension]))?;
    run.compare_layers(Kernel::MerkleTree, &got_tree, &want_tree)?;

    let (got_lde, got_layers) = run.call(Kernel::LdeAndMerkleTree, || {
        backend.lde_and_merkle_tree(input.clone(), ADDED_BITS, F::GENERATOR)
    })?;
    let kernel = Kernel::LdeAndMerkleTree;
    run.compare_len(
        kernel,
        "extension",
        "columns",
        got_lde.width,
        extension.width,
    )?;
    run.compare(
        kernel,
        "extension",
        ("values", element::<F>),
        &got_lde.values,
        &extension.values,
    )?;
    run.compare_layers(kernel, &got_layers, &want_tree)
}

//! Device-resident matrices: the extension, its Merkle tree, the FRI opening
//! reduction and FRI's folded codewords kept in device memory, with only digests,
//! opened rows and what the caller reads back coming back.
//!
//! [`ResidentBackend`] extends [`Backend`] after wgpu-hal's `Api`: each backend names
//! its own matrix handle ([`ResidentBackend::Matrix`], a device buffer on a device
//! backend, the host matrix itself on the CPU backend), and every call takes and
//! returns such handles. The invariant, which the conformance suite checks with the
//! transfer counters:
//!
//! - **Stays on the device:** the values of an LDE made by
//!   [`ResidentBackend::lde_resident`] (or a matrix given by
//!   [`ResidentBackend::upload_matrix`]), every layer of its Merkle tree
//!   ([`ResidentBackend::commit`] builds the tree from the values in place, layers
//!   retained), every intermediate of the opening reduction and its result
//!   ([`ResidentBackend::reduce_openings_resident`]), and FRI's codewords
//!   ([`ResidentBackend::fri_fold`] folds one into the next where it lies;
//!   [`ResidentBackend::reshape`] reads a codeword as rows of pairs to commit it).
//! - **Goes to the device:** the caller's matrix once (its `h x w` words), and small
//!   parameter blocks the backend computes (twiddles, coset factors, powers of
//!   `alpha`, opening points), counted as tables.
//! - **Comes back:** only what the caller asks for: the root (one digest) from
//!   [`ResidentBackend::commit`], the rows [`ResidentBackend::read_rows`] names, the
//!   digests [`ResidentBackend::read_digests`] / [`ResidentBackend::read_layer`]
//!   name, the rows and digests of several matrices [`ResidentBackend::read_openings`]
//!   names (in one copy), and the reduced openings of
//!   [`ResidentBackend::reduce_openings`] (one extension element per row of each
//!   height) or a resident matrix [`ResidentBackend::read_ext`] reads.
//! - [`ResidentBackend::eval_quotient`] evaluates an AIR's constraints over a
//!   resident LDE ([`crate::quotient`]): its tables go to the device, one extension
//!   element per quotient point comes back.
//! - The quotient kept resident: [`ResidentBackend::eval_quotient_resident`] leaves
//!   the values where they are computed (the chunks side by side), and
//!   [`ResidentBackend::lde_resident_groups`] extends each chunk with its own coset
//!   shift there (nothing goes either way but small tables);
//!   [`ResidentBackend::interpolate_resident`] evaluates every column of a resident
//!   extension at a point from its first rows (barycentric formula on a coset,
//!   [`plan_interpolation`]): one extension element per column comes back.
//! - Freeing is dropping the handle ([`ResidentBackend::release`] says so in the
//!   call site).
//!
//! # The opening reduction
//!
//! [`ResidentBackend::reduce_openings`] computes what Plonky3's `TwoAdicFriPcs::open`
//! (p3-fri 0.8) hands to FRI, as the same field elements: for every height `2^k` of the
//! claimed matrices, the vector over the rows `r` of the committed domain
//!
//! ```text
//! reduced_k[r] = sum over (matrix M, point z) of height 2^k, in claim order,
//!                alpha^(n_M,z) * sum_i alpha^i * (y_i - f_i(x_r)) / (z - x_r)
//! ```
//!
//! with `x_r = shift * g_k^bitrev_k(r)` (rows in bit-reversed order, `g_k` the
//! two-adic generator of order `2^k`; Plonky3 uses `shift = F::GENERATOR`), `f_i` the
//! matrix's columns, `y_i = f_i(z)` the claimed openings, and `n_M,z` the number of
//! (column, point) pairs of height `2^k` before this one (matrices in order, each
//! matrix's points in order). Field arithmetic is exact, so any evaluation order gives
//! the same elements. [`plan_reduction`] computes the per-claim scalars every backend
//! applies.
//!
//! The conformance suite checks every backend's reduction against the CPU backend's,
//! and the CPU backend's against a direct evaluation of the formula above and against
//! Plonky3's FRI verifier (`p3_fri::verifier::open_inputs`), which recomputes the same
//! values at query rows.

use p3_field::extension::{BinomialExtensionField, BinomiallyExtendable};
use p3_field::{BasedVectorSpace, PrimeCharacteristicRing};
use p3_matrix::dense::RowMajorMatrix;

use crate::quotient::{ConstraintProgram, QuotientShape};
use crate::{Backend, BackendError, BackendField, Digest};

mod fri;
mod kept;
mod reads;

pub use fri::{FoldWords, bit_reverse, check_fold, check_reshape, fold_reference};
pub use kept::{
    Interpolation, check_groups, check_off_coset, column_sums_on_host, interpolation_weights,
    lde_groups_on_host, plan_interpolation,
};
pub use reads::{OpenedRead, OpeningRead, opened_reads, opening_starts};

/// The extension the openings live in: Plonky3's binomial extension of degree 4, the
/// challenge field of ProofBox's configurations.
pub type Ext<F> = BinomialExtensionField<F, 4>;

/// Degree of [`Ext`] over its base field.
pub const EXT_DEGREE: usize = 4;

/// A field with the degree-4 binomial extension resident calls use (KoalaBear and
/// BabyBear both have one: `X^4 - 3` and `X^4 - 11`).
pub trait ResidentField: BackendField + BinomiallyExtendable<4> {}

impl<F: BackendField + BinomiallyExtendable<4>> ResidentField for F {}

/// What every resident matrix handle tells about itself without touching the device.
pub trait ResidentMatrix {
    /// Rows (a power of two).
    fn height(&self) -> usize;
    /// Columns.
    fn width(&self) -> usize;
    /// Whether [`ResidentBackend::commit`] has built its tree.
    fn has_tree(&self) -> bool;
}

/// A device backend's resident matrix: its values and, once committed, every tree
/// layer, each in one device buffer `B`. The layers buffer holds the leaf digests
/// first, then each layer above, the root last ([`layer_offset`]). Backends build it
/// with [`DeviceMatrix::new`] and set `layers` when they commit it.
pub struct DeviceMatrix<F, B> {
    /// The values, row-major, as the device's words.
    pub values: B,
    /// Rows (a power of two).
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Every layer of the tree, once committed.
    pub layers: Option<B>,
    _field: core::marker::PhantomData<F>,
}

impl<F, B> DeviceMatrix<F, B> {
    /// A matrix of `height` rows and `width` columns in `values`, with no tree yet.
    pub fn new(values: B, height: usize, width: usize) -> Self {
        Self {
            values,
            height,
            width,
            layers: None,
            _field: core::marker::PhantomData,
        }
    }

    /// [`ResidentBackend::reshape`]: the same buffer as rows of `width` words, its
    /// tree dropped.
    pub fn reshape(self, width: usize) -> Result<Self, BackendError> {
        let height = check_reshape(self.height, self.width, width)?;
        Ok(Self::new(self.values, height, width))
    }
}

impl<F: ResidentField, B> core::fmt::Debug for DeviceMatrix<F, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeviceMatrix")
            .field("field", &F::ID)
            .field("height", &self.height)
            .field("width", &self.width)
            .field("has_tree", &self.layers.is_some())
            .finish()
    }
}

impl<F: ResidentField, B> ResidentMatrix for DeviceMatrix<F, B> {
    fn height(&self) -> usize {
        self.height
    }
    fn width(&self) -> usize {
        self.width
    }
    fn has_tree(&self) -> bool {
        self.layers.is_some()
    }
}

/// Digests before layer `layer` in the layers buffer of a tree over `height` leaves.
pub fn layer_offset(height: usize, layer: usize) -> usize {
    (0..layer).map(|j| height >> j).sum()
}

/// A point `z` and the claimed openings `[f_0(z), f_1(z), ...]` of every column there.
pub type OpeningPoint<F> = (Ext<F>, Vec<Ext<F>>);

/// One matrix and the points it is opened at, in Plonky3's order (a point's
/// `openings` hold `f_i(z)` for every column `i`).
#[derive(Debug)]
pub struct OpeningClaim<'a, M, F: ResidentField> {
    pub matrix: &'a M,
    /// `(z, [f_0(z), f_1(z), ...])` for each point, in order.
    pub points: &'a [OpeningPoint<F>],
}

/// The reduced opening of one height: one extension element per row (bit-reversed
/// row order, as the matrices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReducedOpening<F: ResidentField> {
    pub log_height: usize,
    pub values: Vec<Ext<F>>,
}

/// One point of a claim, as the backends apply it: row `r` gains
/// `(weighted - rescale * m(x_r)) / (z - x_r)`, where `m(x) = sum_i alpha_pows[i] *
/// f_i(x)` ([`ClaimPlan::alpha_pows`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointTerm<F: ResidentField> {
    pub z: Ext<F>,
    /// `alpha^(n_M,z) * sum_i alpha^i y_i`.
    pub weighted: Ext<F>,
    /// `alpha^(p * width)` for the matrix's `p`-th point.
    pub rescale: Ext<F>,
}

/// The reduced opening of one height kept on the device
/// ([`ResidentBackend::reduce_openings_resident`]): `2^log_height` rows of
/// [`EXT_DEGREE`] words, row `r` the coefficients of `reduced_k[r]`.
pub struct ResidentReduced<M> {
    pub log_height: usize,
    pub matrix: M,
}

/// The scalars of one claim ([`plan_reduction`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPlan<F: ResidentField> {
    pub log_height: usize,
    /// `alpha^(n_M + i)` for column `i`, `n_M` the offset of the matrix's first point.
    pub alpha_pows: Vec<Ext<F>>,
    pub points: Vec<PointTerm<F>>,
    /// Whether this is the first claim of its height (its result starts at zero).
    pub first_of_height: bool,
}

/// Checks claims against the matrices they name and computes the scalars every
/// backend applies, claim by claim, in order. Heights must be powers of two; each
/// point's openings must number the matrix's columns.
pub fn plan_reduction<M: ResidentMatrix, F: ResidentField>(
    alpha: Ext<F>,
    claims: &[OpeningClaim<'_, M, F>],
) -> Result<Vec<ClaimPlan<F>>, BackendError> {
    let mut num_reduced = [0u64; 64];
    let mut seen = [false; 64];
    let mut plans = Vec::with_capacity(claims.len());
    for (c, claim) in claims.iter().enumerate() {
        let (h, w) = (claim.matrix.height(), claim.matrix.width());
        if h == 0 || !h.is_power_of_two() || w == 0 {
            return Err(BackendError::invalid(format!(
                "opening claim {c}: matrix of {h} x {w} (height must be a power of two, width non-zero)"
            )));
        }
        let k = h.trailing_zeros() as usize;
        if let Some((p, (_, ys))) = claim
            .points
            .iter()
            .enumerate()
            .find(|(_, (_, ys))| ys.len() != w)
        {
            return Err(BackendError::invalid(format!(
                "opening claim {c}, point {p}: {} openings for {w} columns",
                ys.len()
            )));
        }
        let first_offset = alpha.exp_u64(num_reduced[k]);
        let alpha_pows: Vec<Ext<F>> = alpha.powers().take(w).map(|a| a * first_offset).collect();
        let mut points = Vec::with_capacity(claim.points.len());
        for (p, (z, ys)) in claim.points.iter().enumerate() {
            let offset = alpha.exp_u64(num_reduced[k]);
            let dot: Ext<F> = alpha.powers().zip(ys).map(|(a, &y)| a * y).sum();
            points.push(PointTerm {
                z: *z,
                weighted: offset * dot,
                rescale: alpha.exp_u64((p * w) as u64),
            });
            num_reduced[k] += w as u64;
        }
        plans.push(ClaimPlan {
            log_height: k,
            alpha_pows,
            points,
            first_of_height: !seen[k],
        });
        seen[k] = true;
    }
    Ok(plans)
}

/// The heights the reduction returns, largest first (the order FRI takes its inputs
/// in).
pub fn reduced_heights<F: ResidentField>(plans: &[ClaimPlan<F>]) -> Vec<usize> {
    let mut ks: Vec<usize> = plans.iter().map(|p| p.log_height).collect();
    ks.sort_unstable_by(|a, b| b.cmp(a));
    ks.dedup();
    ks
}

/// The base-field words of extension elements (4 per element, coefficient of `X^0`
/// first), as device kernels read them.
pub fn ext_to_base<F: ResidentField>(values: &[Ext<F>]) -> Vec<F> {
    values
        .iter()
        .flat_map(|e| e.as_basis_coefficients_slice().iter().copied())
        .collect()
}

/// Extension elements from their base-field coefficients (4 per element).
pub fn ext_from_base<F: ResidentField>(coeffs: &[F]) -> Vec<Ext<F>> {
    coeffs
        .chunks_exact(EXT_DEGREE)
        .map(|c| Ext::<F>::from_basis_coefficients_fn(|i| c[i]))
        .collect()
}

/// `count` rows of `width` values each, back to back in `values`, split into rows
/// (`count` empty rows where `width` is zero).
pub fn split_rows<F: Clone>(values: Vec<F>, width: usize, count: usize) -> Vec<Vec<F>> {
    if width == 0 {
        return vec![Vec::new(); count];
    }
    values.chunks_exact(width).map(<[F]>::to_vec).collect()
}

/// Checks a row-index request against a matrix of `height` rows.
pub fn check_rows(height: usize, rows: &[usize]) -> Result<(), BackendError> {
    match rows.iter().find(|&&r| r >= height) {
        Some(r) => Err(BackendError::invalid(format!(
            "row {r} of a matrix of {height} rows"
        ))),
        None => Ok(()),
    }
}

/// Checks a digest request against the tree of a matrix of `height` rows (layer 0
/// the leaves' digests, layer `log2(height)` the root). Returns the layer's length.
pub fn check_layer(
    height: usize,
    has_tree: bool,
    layer: usize,
    indices: &[usize],
) -> Result<usize, BackendError> {
    if !has_tree {
        return Err(BackendError::invalid(
            "the matrix has no Merkle tree yet (commit it first)",
        ));
    }
    let layers = height.trailing_zeros() as usize + 1;
    if layer >= layers {
        return Err(BackendError::invalid(format!(
            "layer {layer} of a tree of {layers} layers"
        )));
    }
    let len = height >> layer;
    match indices.iter().find(|&&i| i >= len) {
        Some(i) => Err(BackendError::invalid(format!(
            "digest {i} of layer {layer}, which has {len}"
        ))),
        None => Ok(len),
    }
}

/// How a device brings the `width`-word runs at word offsets `starts` back in one
/// copy: `None` where they are one contiguous range (one read from `starts[0]`), else
/// the offsets the `gather_words` kernels take (`firmware/common/gather.h`), each
/// start as a low and a high 32-bit word.
pub fn gather_offsets(starts: &[usize], width: usize) -> Option<Vec<u32>> {
    if starts.windows(2).all(|p| p[1] == p[0] + width) {
        return None;
    }
    Some(
        starts
            .iter()
            .flat_map(|&s| {
                let s = s as u64;
                [s as u32, (s >> 32) as u32]
            })
            .collect(),
    )
}

/// Checks a request for tree nodes (`(layer, index)` pairs) against the tree of a
/// matrix of `height` rows, and returns each node's digest position in the layout of
/// [`layer_offset`] (every layer's digests back to back, leaves first).
pub fn check_nodes(
    height: usize,
    has_tree: bool,
    nodes: &[(usize, usize)],
) -> Result<Vec<usize>, BackendError> {
    nodes
        .iter()
        .map(|&(layer, index)| {
            check_layer(height, has_tree, layer, &[index])?;
            Ok(layer_offset(height, layer) + index)
        })
        .collect()
}

/// Kernels over device-resident matrices (see the [module docs](self) for what stays
/// on the device and what comes back). A backend either keeps matrices resident or
/// does not implement this trait; the calls that keep the quotient resident
/// ([`ResidentBackend::eval_quotient_resident`],
/// [`ResidentBackend::lde_resident_groups`],
/// [`ResidentBackend::weighted_column_sums`]) have provided methods that take the
/// host path (reading the values back), which a backend overrides to keep them.
pub trait ResidentBackend: Backend {
    /// A matrix (rows in the order the call that made it says) held by this backend,
    /// with its Merkle tree once committed. Dropping it frees its memory.
    type Matrix<F: ResidentField>: ResidentMatrix + Send + Sync;

    /// Moves `mat` into a resident matrix as it is (one copy of its values on a
    /// device backend).
    fn upload_matrix<F: ResidentField>(
        &self,
        mat: RowMajorMatrix<F>,
    ) -> Result<Self::Matrix<F>, BackendError>;

    /// [`Backend::coset_lde_batch`] into a resident matrix: the input goes to the
    /// device once, the extension (bit-reversed rows) stays there.
    fn lde_resident<F: ResidentField>(
        &self,
        mat: RowMajorMatrix<F>,
        added_bits: usize,
        shift: F,
    ) -> Result<Self::Matrix<F>, BackendError>;

    /// Builds the Merkle tree of the matrix's rows where the matrix lies (the tree of
    /// [`Backend::merkle_tree`] over it alone), keeps every layer with the matrix, and
    /// returns the root, the only digest that comes back. Committing again rebuilds it.
    fn commit<F: ResidentField>(&self, m: &mut Self::Matrix<F>) -> Result<Digest<F>, BackendError>;

    /// The rows at `rows` (any order, repeats allowed), each `width` values.
    fn read_rows<F: ResidentField>(
        &self,
        m: &Self::Matrix<F>,
        rows: &[usize],
    ) -> Result<Vec<Vec<F>>, BackendError>;

    /// The digests of tree nodes `nodes` (`(layer, index)` pairs, layer 0 the leaves'
    /// digests, `log2(height)` the root; any layers, any order, repeats allowed) of a
    /// committed matrix, in the order asked: what the opening of several rows needs
    /// from every layer. A device backend brings them back in one copy.
    fn read_nodes<F: ResidentField>(
        &self,
        m: &Self::Matrix<F>,
        nodes: &[(usize, usize)],
    ) -> Result<Vec<Digest<F>>, BackendError>;

    /// The rows and tree nodes several openings need, from several committed
    /// matrices at once: for each [`OpeningRead`], [`ResidentBackend::read_rows`] of
    /// its rows and [`ResidentBackend::read_nodes`] of its nodes. A device backend
    /// brings everything back in one copy after one wait (what the query phase of a
    /// proof reads, all its commitments together).
    fn read_openings<F: ResidentField>(
        &self,
        reads: &[OpeningRead<'_, Self::Matrix<F>>],
    ) -> Result<Vec<OpenedRead<F>>, BackendError> {
        reads
            .iter()
            .map(|r| {
                Ok(OpenedRead {
                    rows: self.read_rows(r.matrix, r.rows)?,
                    nodes: self.read_nodes(r.matrix, r.nodes)?,
                })
            })
            .collect()
    }

    /// Digests `indices` of tree layer `layer` of a committed matrix:
    /// [`ResidentBackend::read_nodes`] of that layer's nodes.
    fn read_digests<F: ResidentField>(
        &self,
        m: &Self::Matrix<F>,
        layer: usize,
        indices: &[usize],
    ) -> Result<Vec<Digest<F>>, BackendError> {
        check_layer(m.height(), m.has_tree(), layer, indices)?;
        let nodes: Vec<(usize, usize)> = indices.iter().map(|&i| (layer, i)).collect();
        self.read_nodes(m, &nodes)
    }

    /// The whole tree layer `layer` of a committed matrix, in one copy.
    fn read_layer<F: ResidentField>(
        &self,
        m: &Self::Matrix<F>,
        layer: usize,
    ) -> Result<Vec<Digest<F>>, BackendError>;

    /// The reduced openings of `claims` ([module docs](self)), over the domain
    /// `shift * K` of each matrix's height, kept where they were computed: one
    /// [`ResidentReduced`] per height, largest first. Nothing comes back.
    fn reduce_openings_resident<F: ResidentField>(
        &self,
        claims: &[OpeningClaim<'_, Self::Matrix<F>, F>],
        alpha: Ext<F>,
        shift: F,
    ) -> Result<Vec<ResidentReduced<Self::Matrix<F>>>, BackendError>;

    /// [`ResidentBackend::reduce_openings_resident`] with the reduced values read
    /// back, one [`ReducedOpening`] per height, largest first.
    fn reduce_openings<F: ResidentField>(
        &self,
        claims: &[OpeningClaim<'_, Self::Matrix<F>, F>],
        alpha: Ext<F>,
        shift: F,
    ) -> Result<Vec<ReducedOpening<F>>, BackendError> {
        self.reduce_openings_resident(claims, alpha, shift)?
            .into_iter()
            .map(|r| {
                Ok(ReducedOpening {
                    log_height: r.log_height,
                    values: self.read_ext(&r.matrix)?,
                })
            })
            .collect()
    }

    /// One FRI fold of arity 2 on the device: Plonky3's
    /// `TwoAdicFriFolding::fold_matrix` with `log_arity = 1` ([`fold_reference`]).
    /// `m` holds `H` rows of `2 * EXT_DEGREE` words, row `i` the pair `(lo_i, hi_i)`
    /// of a codeword in bit-reversed order; the result holds `H` rows of
    /// [`EXT_DEGREE`] words:
    ///
    /// ```text
    /// out_i = (lo_i + hi_i) / 2 + (lo_i - hi_i) * beta * g^(-bitrev_H(i)) / 2
    ///         (+ c * roll_i with roll_in = Some((roll, c)))
    /// ```
    ///
    /// with `g` the two-adic generator of order `2H`. `roll_in` is the reduced
    /// opening of height `H` that FRI adds to the folded codeword (`c = beta^2`).
    /// Nothing comes back.
    fn fri_fold<F: ResidentField>(
        &self,
        m: &Self::Matrix<F>,
        beta: Ext<F>,
        roll_in: Option<(&Self::Matrix<F>, Ext<F>)>,
    ) -> Result<Self::Matrix<F>, BackendError>;

    /// The same values read as rows of `width` words (no copy, no transfer); a tree
    /// built over the old rows is dropped. `width` must divide the matrix's words
    /// into a power-of-two number of rows.
    fn reshape<F: ResidentField>(
        &self,
        m: Self::Matrix<F>,
        width: usize,
    ) -> Result<Self::Matrix<F>, BackendError>;

    /// Every row of a matrix of [`EXT_DEGREE`] words a row as extension elements, in
    /// one copy.
    fn read_ext<F: ResidentField>(&self, m: &Self::Matrix<F>) -> Result<Vec<Ext<F>>, BackendError> {
        if m.width() != EXT_DEGREE {
            return Err(BackendError::invalid(format!(
                "extension elements are read from matrices of {EXT_DEGREE} words a row, not {}",
                m.width()
            )));
        }
        let rows = self.read_rows(m, &(0..m.height()).collect::<Vec<_>>())?;
        Ok(ext_from_base(&rows.concat()))
    }

    /// The quotient of `program` ([`crate::quotient`]) over the resident LDE `lde`
    /// (made by [`ResidentBackend::lde_resident`] with `shift = F::GENERATOR`, at
    /// least `2^shape.log_size()` rows, the program's width): for every point `i` of
    /// the quotient domain `F::GENERATOR * K` in natural order, the alpha-folded
    /// constraints divided by the vanishing polynomial, exactly p3-uni-stark's
    /// `quotient_values`. The constraints are evaluated where the LDE lies; the small
    /// tables of [`crate::quotient::plan_quotient`] go to the device, the values (one
    /// extension element per point) come back.
    fn eval_quotient<F: ResidentField>(
        &self,
        program: &ConstraintProgram<F>,
        lde: &Self::Matrix<F>,
        shape: QuotientShape,
        alpha: Ext<F>,
        public_values: &[F],
    ) -> Result<Vec<Ext<F>>, BackendError>;

    /// [`ResidentBackend::eval_quotient`] with the values left where they were
    /// computed: a resident matrix of `2^log_trace_height` rows and
    /// `4 * 2^log_quotient_degree` columns whose row `r` holds the extension elements
    /// of points `r * d .. r * d + d` (`d = 2^log_quotient_degree`), four base words
    /// each: the quotient's `d` chunks (p3's `split_evals`) side by side, chunk `i`
    /// in columns `4i .. 4i + 4`. Nothing comes back. The provided method evaluates
    /// with [`ResidentBackend::eval_quotient`] and gives the values back to the
    /// backend ([`ResidentBackend::upload_matrix`]); a backend that keeps them where
    /// they are computed overrides it.
    fn eval_quotient_resident<F: ResidentField>(
        &self,
        program: &ConstraintProgram<F>,
        lde: &Self::Matrix<F>,
        shape: QuotientShape,
        alpha: Ext<F>,
        public_values: &[F],
    ) -> Result<Self::Matrix<F>, BackendError> {
        let values = self.eval_quotient(program, lde, shape, alpha, public_values)?;
        let width = EXT_DEGREE << shape.log_quotient_degree;
        self.upload_matrix(RowMajorMatrix::new(ext_to_base(&values), width))
    }

    /// Extends a resident matrix whose columns form `shifts.len()` groups of equal
    /// width, group `j` with its own shift: group `j` of the result is
    /// [`Backend::coset_lde_batch`] of group `j` with `shifts[j]` (the input's rows
    /// are evaluations on the subgroup, rows of the result bit-reversed), the groups
    /// side by side. The input is consumed; nothing goes to the device or comes back
    /// but small tables. The provided method reads the matrix back, extends it on the
    /// host path and gives the result to the backend; a device backend overrides it.
    fn lde_resident_groups<F: ResidentField>(
        &self,
        m: Self::Matrix<F>,
        added_bits: usize,
        shifts: &[F],
    ) -> Result<Self::Matrix<F>, BackendError> {
        lde_groups_on_host(self, m, added_bits, shifts)
    }

    /// For every column `c` of the first `2^log_rows` rows of `m`,
    /// `sum_r f_c(r) * x_r / (z - x_r)` with `x_r = shift * w^bitrev(r)` (the weights
    /// of [`interpolation_weights`]): the sums of the barycentric formula
    /// ([`plan_interpolation`]). One extension element per column comes back. `z`
    /// must be off the coset ([`ResidentBackend::interpolate_resident`] checks it).
    /// The provided method reads the rows back and sums on the host; a device backend
    /// overrides it.
    fn weighted_column_sums<F: ResidentField>(
        &self,
        m: &Self::Matrix<F>,
        log_rows: usize,
        shift: F,
        z: Ext<F>,
    ) -> Result<Vec<Ext<F>>, BackendError> {
        column_sums_on_host(self, m, log_rows, shift, z)
    }

    /// The values at `z` of the polynomials whose evaluations on the coset
    /// `shift * H` (`|H| = 2^log_rows`) are the first `2^log_rows` rows of `m` (rows
    /// bit-reversed, as an extension's first rows are), one per column: what
    /// Plonky3's `interpolate_coset` gives for the same evaluations in natural order.
    /// Off the coset, the column sums of [`ResidentBackend::weighted_column_sums`]
    /// times the factor of [`plan_interpolation`]; on it, that point's row. One
    /// extension element per column comes back (one row on the coset).
    fn interpolate_resident<F: ResidentField>(
        &self,
        m: &Self::Matrix<F>,
        log_rows: usize,
        shift: F,
        z: Ext<F>,
    ) -> Result<Vec<Ext<F>>, BackendError> {
        match plan_interpolation(m.height(), log_rows, shift, z)? {
            Interpolation::OnCoset(row) => Ok(self
                .read_rows(m, &[row])?
                .remove(0)
                .into_iter()
                .map(Ext::<F>::from)
                .collect()),
            Interpolation::Scaled(factor) => Ok(self
                .weighted_column_sums(m, log_rows, shift, z)?
                .into_iter()
                .map(|s| s * factor)
                .collect()),
        }
    }

    /// The sibling digests on the path from leaf `index` to the root, leaf level
    /// first: what an opening proof carries beside the row.
    fn merkle_path<F: ResidentField>(
        &self,
        m: &Self::Matrix<F>,
        index: usize,
    ) -> Result<Vec<Digest<F>>, BackendError> {
        check_rows(m.height(), &[index])?;
        let levels = m.height().trailing_zeros() as usize;
        let nodes: Vec<(usize, usize)> = (0..levels)
            .map(|layer| (layer, (index >> layer) ^ 1))
            .collect();
        self.read_nodes(m, &nodes)
    }

    /// Frees a resident matrix (the same as dropping it).
    fn release<F: ResidentField>(&self, m: Self::Matrix<F>) {
        drop(m);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn layer_offsets_follow_the_tree_layout() {
        assert_eq!(super::layer_offset(8, 0), 0);
        assert_eq!(super::layer_offset(8, 1), 8);
        assert_eq!(super::layer_offset(8, 3), 14);
        assert_eq!(super::layer_offset(1, 1), 1);
    }

    use p3_field::PrimeCharacteristicRing;
    use p3_koala_bear::KoalaBear;

    use super::*;

    struct Dims(usize, usize);
    impl ResidentMatrix for Dims {
        fn height(&self) -> usize {
            self.0
        }
        fn width(&self) -> usize {
            self.1
        }
        fn has_tree(&self) -> bool {
            false
        }
    }

    #[test]
    fn plan_offsets_count_columns_per_height() {
        type E = Ext<KoalaBear>;
        let alpha = E::from(KoalaBear::new(5));
        let (a, b) = (Dims(8, 2), Dims(8, 3));
        let z = E::from(KoalaBear::new(9));
        let two = vec![(z, vec![E::ONE; 2]), (z, vec![E::ONE; 2])];
        let three = vec![(z, vec![E::ONE; 3])];
        let claims = [
            OpeningClaim {
                matrix: &a,
                points: &two,
            },
            OpeningClaim {
                matrix: &b,
                points: &three,
            },
        ];
        let plans = plan_reduction(alpha, &claims).unwrap();
        assert!(plans[0].first_of_height && !plans[1].first_of_height);
        // The second matrix starts after 2 columns x 2 points.
        assert_eq!(plans[1].alpha_pows[0], alpha.exp_u64(4));
        assert_eq!(plans[0].points[1].rescale, alpha.exp_u64(2));
        assert_eq!(
            plans[0].points[1].weighted,
            alpha.exp_u64(2) * (E::ONE + alpha)
        );
        let bad = vec![(z, vec![E::ONE; 1])];
        let claims = [OpeningClaim {
            matrix: &a,
            points: &bad,
        }];
        assert!(matches!(
            plan_reduction(alpha, &claims),
            Err(BackendError::InvalidInput(_))
        ));
    }

    #[test]
    fn ext_words_round_trip() {
        let e = Ext::<KoalaBear>::from_basis_coefficients_fn(|i| KoalaBear::new(i as u32 + 1));
        let base = ext_to_base(&[e, e]);
        assert_eq!(base.len(), 8);
        assert_eq!(ext_from_base(&base), vec![e, e]);
    }

    #[test]
    fn layer_and_row_checks() {
        assert!(check_rows(4, &[0, 3]).is_ok());
        assert!(check_rows(4, &[4]).is_err());
        assert_eq!(check_layer(8, true, 3, &[0]).unwrap(), 1);
        assert!(check_layer(8, true, 4, &[]).is_err());
        assert!(check_layer(8, false, 0, &[]).is_err());
        assert!(check_layer(8, true, 1, &[4]).is_err());
    }

    #[test]
    fn gathers_are_skipped_for_contiguous_runs_only() {
        assert_eq!(gather_offsets(&[8, 12, 16], 4), None);
        assert_eq!(gather_offsets(&[5], 3), None);
        assert_eq!(
            gather_offsets(&[8, 4, (1 << 32) + 7], 4),
            Some(vec![8, 0, 4, 0, 7, 1])
        );
    }

    #[test]
    fn node_checks_give_positions_in_the_layer_layout() {
        // 8 leaves: layer 0 at 0..8, layer 1 at 8..12, layer 2 at 12..14, root at 14.
        assert_eq!(
            check_nodes(8, true, &[(0, 7), (1, 0), (2, 1), (3, 0), (0, 2)]).unwrap(),
            vec![7, 8, 13, 14, 2]
        );
        assert!(check_nodes(8, true, &[(1, 4)]).is_err());
        assert!(check_nodes(8, true, &[(4, 0)]).is_err());
        assert!(check_nodes(8, false, &[(0, 0)]).is_err());
    }
}

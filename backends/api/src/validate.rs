//! Shape checks the caller runs before handing work to a backend. Backends may assume
//! they passed.

use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrix;

/// The largest LDE (log2 of output rows) any backend accepts: the two-adicity of
/// BabyBear, the smaller of the two fields.
pub const MAX_LOG_LDE_ROWS: usize = 27;

/// Checks an LDE request: power-of-two height, non-zero width, result within the
/// field's two-adic subgroups.
pub fn lde<T: Clone + Send + Sync>(
    mat: &RowMajorMatrix<T>,
    added_bits: usize,
) -> Result<(), String> {
    let h = mat.height();
    if h == 0 || !h.is_power_of_two() {
        return Err(format!("LDE input height {h} is not a power of two"));
    }
    if mat.width == 0 {
        return Err("LDE input has no columns".into());
    }
    let log_out = h.trailing_zeros() as usize + added_bits;
    if log_out > MAX_LOG_LDE_ROWS {
        return Err(format!(
            "LDE output of 2^{log_out} rows exceeds the limit of 2^{MAX_LOG_LDE_ROWS}"
        ));
    }
    Ok(())
}

/// Checks the matrices of one Merkle tree: at least one, all of one power-of-two
/// height, at least one column in all. Returns the height.
pub fn merkle_leaves<T: Clone + Send + Sync>(
    leaves: &[&RowMajorMatrix<T>],
) -> Result<usize, String> {
    let first = leaves.first().ok_or("no matrices to commit")?;
    let h = first.height();
    if h == 0 || !h.is_power_of_two() {
        return Err(format!("Merkle leaf height {h} is not a power of two"));
    }
    if let Some(m) = leaves.iter().find(|m| m.height() != h) {
        return Err(format!(
            "Merkle leaves of different heights ({h} and {})",
            m.height()
        ));
    }
    if leaves.iter().all(|m| m.width == 0) {
        return Err("Merkle leaves have no columns".into());
    }
    Ok(h)
}

/// Checks a batch of messages for [`crate::Backend::hash_rows`]: the input splits
/// into `digests` messages of equal, non-zero length.
pub fn hash_rows(input_len: usize, digests: usize) -> Result<usize, String> {
    if digests == 0 {
        return Ok(0);
    }
    if input_len == 0 || !input_len.is_multiple_of(digests) {
        return Err(format!(
            "{input_len} elements do not split into {digests} non-empty messages"
        ));
    }
    Ok(input_len / digests)
}

/// Checks a batch for [`crate::Backend::compress_pairs`]: one output digest per pair.
pub fn compress_pairs(pairs: usize, digests: usize) -> Result<(), String> {
    if pairs != digests {
        return Err(format!("{pairs} pairs for {digests} digests"));
    }
    Ok(())
}

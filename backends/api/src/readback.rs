//! What device backends share once words come back from a device: checking that
//! they are reduced field elements, and cutting a tree's digests into layers.

use crate::{BackendError, BackendField, DIGEST_ELEMS, Digest};

/// The field elements behind `words` (Montgomery form, as the kernels write them).
/// A word that is not a reduced element means the kernel misbehaved: it is reported
/// as a [`BackendError::Kernel`] of `kernel` on `device`.
pub fn elems<F: BackendField>(
    device: &str,
    kernel: &str,
    words: Vec<u32>,
) -> Result<Vec<F>, BackendError> {
    F::from_monty_words(words).map_err(|i| BackendError::Kernel {
        device: device.into(),
        kernel: kernel.into(),
        message: format!("output word {i} is not a reduced field element"),
    })
}

/// [`elems`] grouped into digests (a trailing partial digest is dropped).
pub fn digests<F: BackendField>(
    device: &str,
    kernel: &str,
    words: Vec<u32>,
) -> Result<Vec<Digest<F>>, BackendError> {
    let elems = elems::<F>(device, kernel, words)?;
    Ok(elems.as_chunks::<DIGEST_ELEMS>().0.to_vec())
}

/// The digest layers of a tree over `rows` leaves whose digests lie back to back in
/// `words`: the leaves' layer first, then each compression layer, the root last
/// (`2 * rows - 1` digests). The layout every device backend builds trees in.
pub fn tree_layers<F: BackendField>(
    device: &str,
    words: Vec<u32>,
    rows: usize,
) -> Result<Vec<Vec<Digest<F>>>, BackendError> {
    let all = digests::<F>(device, "merkle tree", words)?;
    let mut layers = Vec::new();
    let (mut at, mut len) = (0, rows);
    loop {
        layers.push(all[at..at + len].to_vec());
        if len == 1 {
            break;
        }
        at += len;
        len /= 2;
    }
    Ok(layers)
}

//! Every device output compared with the CPU backend's reference, bit for bit.

use std::fmt::Debug;

use crate::device::{KernelOutput, Output};

pub(super) fn first_difference<T: PartialEq + Debug>(
    what: &str,
    got: &[T],
    want: &[T],
    width: usize,
) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} values, expected {}",
            got.len(),
            want.len()
        ));
    }
    match got.iter().zip(want).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: first difference at row {}, column {}: got {:?}, expected {:?}",
            i / width.max(1),
            i % width.max(1),
            got[i],
            want[i]
        )),
    }
}

fn compare_output<F: PartialEq + Debug + Copy + Send + Sync>(
    got: &Output<F>,
    want: &Output<F>,
) -> Result<(), String> {
    match (&got.lde, &want.lde) {
        (Some(g), Some(w)) => {
            if (g.width, g.values.len()) != (w.width, w.values.len()) {
                return Err(format!(
                    "LDE shape: {} values of width {}, expected {} of width {}",
                    g.values.len(),
                    g.width,
                    w.values.len(),
                    w.width
                ));
            }
            first_difference("LDE value", &g.values, &w.values, w.width)?;
        }
        (None, None) => {}
        _ => return Err("LDE missing".into()),
    }
    match (&got.layers, &want.layers) {
        (Some(g), Some(w)) => {
            if g.len() != w.len() {
                return Err(format!(
                    "Merkle tree: {} layers, expected {}",
                    g.len(),
                    w.len()
                ));
            }
            // The root first: the figure a reader cares about.
            let root = g.len() - 1;
            first_difference("Merkle root", &g[root], &w[root], 1)?;
            for (i, (gl, wl)) in g.iter().zip(w).enumerate() {
                first_difference(&format!("Merkle layer {i} digest"), gl, wl, 1)?;
            }
        }
        (None, None) => {}
        _ => return Err("Merkle tree missing".into()),
    }
    Ok(())
}

/// Compares a device's output with the reference, bit for bit.
pub fn check_kernel_output(got: &KernelOutput, want: &KernelOutput) -> Result<(), String> {
    match (got, want) {
        (KernelOutput::KoalaBear(g), KernelOutput::KoalaBear(w)) => compare_output(g, w),
        (KernelOutput::BabyBear(g), KernelOutput::BabyBear(w)) => compare_output(g, w),
        _ => Err("output in the wrong field".into()),
    }
}

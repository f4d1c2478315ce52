//! Resident matrices larger than one storage binding: the matrix is one buffer (up to
//! the device's buffer limit) bound to its kernels as several windows.
//!
//! - A window is `2^k` bytes, the largest power of two within the binding limit (and
//!   [`crate::KernelLimits::max_resident_window_bytes`]), at least the storage offset
//!   alignment; window `j` binds bytes `j * 2^k ..` (the last one may be shorter).
//! - The kernels that read or write a resident matrix get a variant per window count
//!   ([`Windows`]): the matrix's binding is replaced by one binding per window (from
//!   binding [`FIRST_WINDOW_BINDING`] up) and every access `m[i]` by `m_ld(i)` (or
//!   `m_st(i, v)`), which picks the window by `i >> log2(window words)` (WGSL cannot
//!   index bindings at run time). Variants are compiled when first needed and kept.
//! - The LDE runs in column batches whose extension fits one binding (the single-binding
//!   kernels, unchanged), each placed into the matrix's windows by `place_columns`
//!   (`firmware/wgsl/place.wgsl`).
//! - A matrix needing more windows than the kernels may bind (the per-stage storage
//!   buffer limit less [`OTHER_STORAGE_BINDINGS`]), more than the buffer limit or more
//!   than `2^32` words is [`BackendError::OutOfMemory`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use proofbox_backend_api::planner::{self, DeviceLimits, LdeShape};
use proofbox_backend_api::{BackendError, BackendField, FieldId};

use crate::WgpuBackend;
use crate::gpu::{Kernel, Recorder, Slot, Window, kernel_source, wgsl_kernel};

const PLACE_WGSL: &str = include_str!("../../../firmware/wgsl/place.wgsl");

/// The binding of a matrix's first window; window `j` is binding `FIRST_WINDOW_BINDING + j`.
pub(crate) const FIRST_WINDOW_BINDING: u32 = 8;

/// Storage buffers a windowed kernel binds besides the windows, at most (the quotient
/// interpreter's table, values and registers; the sponge's constants, digests and
/// states).
pub(crate) const OTHER_STORAGE_BINDINGS: u32 = 3;

/// How a resident matrix is bound: `count` windows of `2^log_words` words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Windows {
    pub log_words: u32,
    pub count: u32,
}

impl Windows {
    /// Bytes of one (full) window.
    pub fn bytes(&self) -> u64 {
        4u64 << self.log_words
    }

    /// The bindings of `buffer`'s windows.
    pub fn bind<'a>(&self, buffer: &'a wgpu::Buffer) -> Vec<Window<'a>> {
        let size = buffer.size();
        (0..self.count)
            .map(|j| {
                let offset = u64::from(j) * self.bytes();
                Window {
                    binding: FIRST_WINDOW_BINDING + j,
                    buffer,
                    offset,
                    size: (size - offset).min(self.bytes()),
                }
            })
            .collect()
    }

    /// The layout slots of the windows.
    fn slots(&self, slot: Slot) -> impl Iterator<Item = (u32, Slot)> {
        (0..self.count).map(move |j| (FIRST_WINDOW_BINDING + j, slot))
    }

    /// WGSL declaring the windows of matrix `name` (`name_w0`, `name_w1`, ...) and its
    /// accessors: `name_ld(i) -> u32`, and with `write` also `name_st(i, v)`.
    pub fn wgsl(&self, name: &str, write: bool) -> String {
        let access = if write { "read_write" } else { "read" };
        let mut s = String::new();
        for j in 0..self.count {
            s.push_str(&format!(
                "@group(0) @binding({}) var<storage, {access}> {name}_w{j}: array<u32>;\n",
                FIRST_WINDOW_BINDING + j
            ));
        }
        let (log, mask, last) = (self.log_words, (1u64 << self.log_words) - 1, self.count - 1);
        let cases = |body: &dyn Fn(u32) -> String| {
            let mut c = String::new();
            for j in 0..last {
                c.push_str(&format!("        case {j}u: {{ {} }}\n", body(j)));
            }
            c.push_str(&format!("        default: {{ {} }}\n", body(last)));
            c
        };
        if write {
            s.push_str(&format!(
                "fn {name}_st(i: u32, v: u32) {{\n    let j = i & {mask}u;\n    switch (i >> {log}u) {{\n{}    }}\n}}\n",
                cases(&|w| format!("{name}_w{w}[j] = v;"))
            ));
        } else {
            s.push_str(&format!(
                "fn {name}_ld(i: u32) -> u32 {{\n    let j = i & {mask}u;\n    var v = 0u;\n    switch (i >> {log}u) {{\n{}    }}\n    return v;\n}}\n",
                cases(&|w| format!("v = {name}_w{w}[j];"))
            ));
        }
        s
    }
}

/// `src` with matrix `name`'s declaration `decl` replaced by the windows of `windows`
/// and every read `name[expr]` by `name_ld(expr)`. A write to `name`, or a missing
/// declaration, is an error (the kernel would not compile as meant).
pub(crate) fn read_through_windows(
    src: &str,
    decl: &str,
    name: &str,
    windows: Windows,
) -> Result<String, String> {
    if !src.contains(decl) {
        return Err(format!("no declaration `{decl}` to window"));
    }
    let out = reads_to_loads(&src.replacen(decl, "", 1), name)?;
    Ok(format!("{}{out}", windows.wgsl(name, false)))
}

/// `src` with every read `name[expr]` as `name_ld(expr)` (reads inside `expr` too).
fn reads_to_loads(src: &str, name: &str) -> Result<String, String> {
    let open = format!("{name}[");
    let mut out = String::with_capacity(src.len() + 64);
    let mut rest = src;
    while let Some(at) = rest.find(&open) {
        let before = rest[..at].chars().next_back();
        out.push_str(&rest[..at]);
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
            // Part of a longer name.
            out.push_str(&open);
            rest = &rest[at + open.len()..];
            continue;
        }
        let inner = &rest[at + open.len()..];
        let mut depth = 1usize;
        let close = inner
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .ok_or_else(|| format!("unbalanced `{open}`"))?;
        let after = inner[close + 1..].trim_start();
        if after.starts_with('=') && !after.starts_with("==") {
            return Err(format!("`{name}` is written; only reads can be windowed"));
        }
        out.push_str(&format!(
            "{name}_ld({})",
            reads_to_loads(&inner[..close], name)?
        ));
        rest = &inner[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The kernels that touch a resident matrix and have windowed variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum WindowedKind {
    /// `place_columns`: an LDE column batch into the matrix.
    Place,
    /// `hash_leaves` over the matrix's rows.
    Hash,
    /// `reduce_openings` over the matrix's rows.
    Reduce,
    /// `eval_quotient` over the matrix (the trace's LDE).
    Quotient,
}

/// The windowed kernel variants compiled so far.
#[derive(Default)]
pub(crate) struct WindowedKernels(Mutex<HashMap<(WindowedKind, FieldId, Windows), Arc<Kernel>>>);

impl WgpuBackend {
    /// How a resident matrix of `bytes` is bound: `None` as one binding (the
    /// single-binding kernels), else in windows. Refused with
    /// [`BackendError::OutOfMemory`] where the windows exceed what a kernel may bind, the
    /// buffer limit, or `2^32` words.
    pub(crate) fn resident_windows(&self, bytes: u64) -> Result<Option<Windows>, BackendError> {
        let l = self.gpu.limits;
        let single = l.max_single_binding_bytes();
        if bytes <= single {
            return Ok(None);
        }
        let window = (1u64 << (63 - single.max(4).leading_zeros()))
            .max(self.gpu.storage_align.next_power_of_two())
            .max(4);
        let max_windows = l
            .max_storage_buffers_per_shader_stage
            .saturating_sub(OTHER_STORAGE_BINDINGS);
        let max_bytes = if window > l.max_storage_bytes() {
            0
        } else {
            (u64::from(max_windows) * window)
                .min(l.max_buffer_size)
                .min(4 << 32)
        };
        if bytes > max_bytes {
            return Err(self.gpu.oom(bytes, max_bytes));
        }
        Ok(Some(Windows {
            log_words: (window / 4).trailing_zeros(),
            count: bytes.div_ceil(window) as u32,
        }))
    }

    /// How many bindings a resident matrix of `bytes` takes under the current limits
    /// (1: one binding; more: windows), or the [`BackendError::OutOfMemory`] that
    /// refuses it.
    pub fn resident_bindings(&self, bytes: u64) -> Result<usize, BackendError> {
        Ok(self
            .resident_windows(bytes)?
            .map_or(1, |w| w.count as usize))
    }

    /// The `kind` kernel of `field` for a matrix bound as `windows`, compiled on first
    /// use (inside an error scope: a kernel that does not build is a `Kernel` error).
    pub(crate) fn windowed_kernel(
        &self,
        kind: WindowedKind,
        field: FieldId,
        windows: Windows,
    ) -> Result<Arc<Kernel>, BackendError> {
        let key = (kind, field, windows);
        if let Some(k) = self
            .windowed
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(k.clone());
        }
        let built = self.gpu.scoped(
            &format!("{kind:?} over {} windows (build)", windows.count),
            || self.build_windowed(kind, field, windows),
        )?;
        let built = Arc::new(built);
        self.windowed
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, built.clone());
        Ok(built)
    }

    fn build_windowed(
        &self,
        kind: WindowedKind,
        field: FieldId,
        windows: Windows,
    ) -> Result<Kernel, BackendError> {
        let wg = self.gpu.wg_size;
        let failed = |message: String| BackendError::Kernel {
            device: self.info.id.clone(),
            kernel: format!("{kind:?} over windows"),
            message,
        };
        let (src, entry, mut slots) = match kind {
            WindowedKind::Place => (
                kernel_source(
                    field,
                    wg,
                    None,
                    &format!("{}{PLACE_WGSL}", windows.wgsl("dst", true)),
                ),
                "place_columns",
                vec![(0, Slot::Ro), (1, Slot::Uniform)],
            ),
            WindowedKind::Hash => (
                read_through_windows(
                    &crate::compile::hash_source(field, wg).map_err(failed)?,
                    "@group(0) @binding(2) var<storage, read> msgs: array<u32>;",
                    "msgs",
                    windows,
                )
                .map_err(failed)?,
                "hash_leaves",
                vec![
                    (0, Slot::Ro),
                    (1, Slot::Uniform),
                    (3, Slot::Rw),
                    (4, Slot::Rw),
                ],
            ),
            WindowedKind::Reduce => (
                read_through_windows(
                    &crate::resident::reduce_source(field, wg),
                    "@group(0) @binding(0) var<storage, read> values: array<u32>;",
                    "values",
                    windows,
                )
                .map_err(failed)?,
                "reduce_openings",
                vec![(1, Slot::Ro), (2, Slot::Uniform), (3, Slot::Rw)],
            ),
            WindowedKind::Quotient => (
                read_through_windows(
                    &crate::quotient::quotient_source(field, wg),
                    "@group(0) @binding(0) var<storage, read> lde: array<u32>;",
                    "lde",
                    windows,
                )
                .map_err(failed)?,
                "eval_quotient",
                vec![
                    (1, Slot::Ro),
                    (2, Slot::Uniform),
                    (3, Slot::Rw),
                    (4, Slot::Rw),
                ],
            ),
        };
        let window_slot = match kind {
            WindowedKind::Place => Slot::Rw,
            _ => Slot::Ro,
        };
        slots.extend(windows.slots(window_slot));
        Ok(wgsl_kernel(&self.gpu.device, entry, src, entry, &slots))
    }

    /// The coset LDE of `words` (`2^log_h` rows of `w` columns) to `2^log_n` rows into
    /// a new matrix bound as `windows`: column batches whose extension fits one
    /// binding, each placed into the windows; one submission per batch, no wait.
    pub(crate) fn lde_windowed<F: BackendField>(
        &self,
        words: &[u32],
        log_h: usize,
        log_n: usize,
        w: usize,
        shift: F,
        windows: Windows,
    ) -> Result<wgpu::Buffer, BackendError> {
        let n = 1usize << log_n;
        let shape = LdeShape {
            log_h,
            added_bits: log_n - log_h,
            width: w,
        };
        let limits =
            DeviceLimits::from_device(None, Some(self.gpu.limits.max_single_binding_bytes()));
        let batches = planner::lde(&limits, &shape).map_err(|e| self.unplanned(e))?;
        batches.log(&self.info.id, "lde_resident", "columns");
        let place = self.windowed_kernel(WindowedKind::Place, F::ID, windows)?;
        let k = self.gpu.kernels(F::ID);
        let matrix = self
            .gpu
            .windowed_storage("resident matrix", (n * w) as u64 * 4)?;
        let b = self.lde_buffers(log_h, log_n, batches.per_batch, shift)?;
        let mut sub = Vec::with_capacity((words.len() / w.max(1)) * batches.per_batch);
        for cols in batches.ranges() {
            let cb = cols.len();
            sub.clear();
            for row in words.chunks_exact(w) {
                sub.extend_from_slice(&row[cols.clone()]);
            }
            // Ordered after the previous batch's submission on the queue.
            self.gpu.upload(&b.src, 0, &sub);
            let mut rec = Recorder::default();
            Self::record_lde(&mut rec, k, &b, log_h, log_n, cb);
            rec.dispatch_windowed(
                &place,
                vec![(0, &b.dst)],
                windows.bind(&matrix),
                (n * cb) as u64,
                [w as u32, cb as u32, cols.start as u32, 0, 0, 0],
            );
            self.gpu.submit(rec)?;
        }
        Ok(matrix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W3: Windows = Windows {
        log_words: 4,
        count: 3,
    };

    #[test]
    fn reads_are_rewritten_and_the_declaration_replaced() {
        let src = "@group(0) @binding(0) var<storage, read> lde: array<u32>;\n\
                   fn f(a: u32) -> u32 { return lde[a + t[lde[1u]]] + my_lde[0u] + x.lde[2u]; }\n";
        let out = read_through_windows(
            src,
            "@group(0) @binding(0) var<storage, read> lde: array<u32>;",
            "lde",
            W3,
        )
        .unwrap();
        assert!(
            out.contains("return lde_ld(a + t[lde_ld(1u)]) + my_lde[0u] + x.lde[2u];"),
            "{out}"
        );
        assert!(!out.contains("var<storage, read> lde:"), "{out}");
        for j in 0..3 {
            assert!(
                out.contains(&format!(
                    "@group(0) @binding({}) var<storage, read> lde_w{j}: array<u32>;",
                    FIRST_WINDOW_BINDING + j
                )),
                "{out}"
            );
        }
        assert!(out.contains("switch (i >> 4u)") && out.contains("let j = i & 15u;"));
        assert!(out.contains("case 1u: { v = lde_w1[j]; }"), "{out}");
        assert!(out.contains("default: { v = lde_w2[j]; }"), "{out}");
    }

    #[test]
    fn writes_and_missing_declarations_are_refused() {
        let decl = "@group(0) @binding(0) var<storage, read> m: array<u32>;";
        assert!(
            read_through_windows(&format!("{decl}\nfn f() {{ m[0u] = 1u; }}"), decl, "m", W3)
                .is_err()
        );
        assert!(read_through_windows("fn f() {}", decl, "m", W3).is_err());
        // A comparison is a read.
        assert!(
            read_through_windows(
                &format!("{decl}\nfn f() -> bool {{ return m[0u] == 1u; }}"),
                decl,
                "m",
                W3
            )
            .is_ok()
        );
    }

    #[test]
    fn stores_pick_the_window() {
        let s = W3.wgsl("dst", true);
        assert!(s.contains("var<storage, read_write> dst_w2"), "{s}");
        assert!(s.contains("fn dst_st(i: u32, v: u32)"), "{s}");
        assert!(s.contains("case 0u: { dst_w0[j] = v; }"), "{s}");
        assert!(s.contains("default: { dst_w2[j] = v; }"), "{s}");
    }
}

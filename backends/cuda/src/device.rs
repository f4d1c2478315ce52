//! Device work of the backend's calls: the LDE's DFT stages, leaf hashing,
//! compression and trees on the device, and their host-side assembly.

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use proofbox_backend_api::planner::Batches;
use proofbox_backend_api::{BackendError, BackendField, Digest, readback};

use crate::{BLOCK, CudaBackend, Kernels, MAX_TILE_STAGES, Pinned, TILE_WORDS, grid, tables};

impl CudaBackend {
    /// Runs DIF stages `top - 1, ..., 0` over the `2^rows_log` rows of `data` in
    /// shared-memory passes of up to `MAX_TILE_STAGES` stages.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dif(
        &self,
        k: &Kernels,
        data: &mut CudaSlice<u32>,
        width: usize,
        rows_log: usize,
        top: usize,
        tw: &CudaSlice<u32>,
        tw_log: usize,
    ) -> Result<(), BackendError> {
        let cols = width.min(32);
        let max_stages = ((TILE_WORDS / cols).ilog2() as usize).min(MAX_TILE_STAGES);
        let col_tiles = width.div_ceil(cols) as u64;
        let mut s = top;
        while s > 0 {
            let stages = max_stages.min(s);
            let rows = 1usize << stages;
            let butterflies = (rows / 2 * cols) as u32;
            let threads = butterflies.clamp(32, BLOCK);
            let blocks = (1u64 << (rows_log - stages)) * col_tiles;
            let cfg = LaunchConfig {
                grid_dim: (grid(blocks, 1, self.sm_count * 4), 1, 1),
                block_dim: (threads, 1, 1),
                shared_mem_bytes: (rows * cols * 4) as u32,
            };
            let (width64, rows_log32, s_hi, stages32, cols32, tw_log32) = (
                width as u64,
                rows_log as u32,
                (s - 1) as u32,
                stages as u32,
                cols as u32,
                tw_log as u32,
            );
            let mut launch = self.stream.launch_builder(&k.dif_stages);
            launch
                .arg(&mut *data)
                .arg(&width64)
                .arg(&rows_log32)
                .arg(&s_hi)
                .arg(&stages32)
                .arg(&cols32)
                .arg(tw)
                .arg(&tw_log32);
            // SAFETY: the arguments match the kernel's signature; every index the
            // kernel forms lies within `data` (2^rows_log rows of `width` words) and
            // `tw` (2^(tw_log - 1) words, tw_log >= every stage + 1).
            unsafe { self.launch(&mut launch, cfg, "dif_stages") }?;
            s -= stages;
        }
        Ok(())
    }

    /// The coset LDE of `2^log_h` rows of `w` columns (`words`, row-major), left on the
    /// device: `2^(log_h + added_bits)` rows in bit-reversed order.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn lde_on_device<F: BackendField>(
        &self,
        pinned: &mut Pinned,
        k: &Kernels,
        words: &[u32],
        log_h: usize,
        added_bits: usize,
        w: usize,
        shift: F,
    ) -> Result<CudaSlice<u32>, BackendError> {
        let log_n = log_h + added_bits;
        let (h, n) = (1usize << log_h, 1usize << log_n);
        let inv = self.twiddles::<F>(log_h, true)?;
        let fwd = self.twiddles::<F>(log_n, false)?;
        let scale_words = tables::coset_scale::<F>(log_h, shift);
        let mut scale = self.alloc(h)?;
        self.stream
            .memcpy_htod(&scale_words, &mut scale)
            .map_err(|e| self.kernel_error("coset scale upload", e))?;
        self.transfers.table_to_device(scale_words.len() as u64 * 4);
        let mut src = self.alloc(h * w)?;
        self.upload(pinned, words, &mut src)?;
        self.dif(k, &mut src, w, log_h, log_h, &inv, log_h)?;
        let mut dst = self.alloc(n * w)?;
        {
            let total = (n * w) as u64;
            let cfg = LaunchConfig {
                grid_dim: (grid(total, BLOCK, self.sm_count), 1, 1),
                block_dim: (BLOCK, 1, 1),
                shared_mem_bytes: 0,
            };
            let (w64, log_h32, added32) = (w as u64, log_h as u32, added_bits as u32);
            let mut launch = self.stream.launch_builder(&k.lde_expand);
            launch
                .arg(&mut dst)
                .arg(&src)
                .arg(&w64)
                .arg(&log_h32)
                .arg(&added32)
                .arg(&scale)
                .arg(&*fwd);
            // SAFETY: signature matches; `dst` holds n * w words, `src` h * w, `scale`
            // h and `fwd` n / 2 (at least 1), which bounds every index formed.
            unsafe { self.launch(&mut launch, cfg, "lde_expand") }?;
        }
        drop(src);
        drop(scale);
        self.dif(k, &mut dst, w, log_n, log_h, &fwd, log_n)?;
        Ok(dst)
    }

    /// Hashes `rows` messages of `len` words lying back to back in `msgs` into digests
    /// `out_offset..out_offset + rows` of `digests`.
    pub(crate) fn hash_on_device(
        &self,
        k: &Kernels,
        msgs: &CudaSlice<u32>,
        rows: usize,
        len: usize,
        digests: &mut CudaSlice<u32>,
        out_offset: usize,
    ) -> Result<(), BackendError> {
        let cfg = LaunchConfig {
            grid_dim: (grid(rows as u64, 128, self.sm_count), 1, 1),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        };
        let (rows64, len64, off64) = (rows as u64, len as u64, out_offset as u64);
        let mut launch = self.stream.launch_builder(&k.hash_leaves);
        launch
            .arg(msgs)
            .arg(&rows64)
            .arg(&len64)
            .arg(digests)
            .arg(&off64);
        // SAFETY: signature matches; `msgs` holds rows * len words and `digests` at
        // least (out_offset + rows) digests.
        unsafe { self.launch(&mut launch, cfg, "hash_leaves") }
    }

    /// Compresses `count` pairs: digests `in_offset + 2t, +1` into `out_offset + t`.
    pub(crate) fn compress_on_device(
        &self,
        k: &Kernels,
        layers: &mut CudaSlice<u32>,
        in_offset: usize,
        out_offset: usize,
        count: usize,
    ) -> Result<(), BackendError> {
        let cfg = LaunchConfig {
            grid_dim: (grid(count as u64, 128, self.sm_count), 1, 1),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        };
        let (a, b, c) = (in_offset as u64, out_offset as u64, count as u64);
        let mut launch = self.stream.launch_builder(&k.compress_pairs);
        launch.arg(layers).arg(&a).arg(&b).arg(&c);
        // SAFETY: signature matches; the caller's layout puts both ranges inside
        // `layers`, without overlap.
        unsafe { self.launch(&mut launch, cfg, "compress_pairs") }
    }

    /// Compression layers over `rows` leaf digests at the start of `layers`; each
    /// layer follows the previous one (2 * rows - 1 digests in all).
    pub(crate) fn tree_on_device(
        &self,
        k: &Kernels,
        layers: &mut CudaSlice<u32>,
        rows: usize,
    ) -> Result<(), BackendError> {
        let (mut cur, mut in_off, mut out_off) = (rows, 0usize, rows);
        while cur > 1 {
            let half = cur / 2;
            self.compress_on_device(k, layers, in_off, out_off, half)?;
            in_off = out_off;
            out_off += half;
            cur = half;
        }
        Ok(())
    }

    /// Hashes the messages of `len` words in `words` from the host into the first
    /// digests of `digests`, uploading them in the row batches `batches`.
    pub(crate) fn hash_from_host(
        &self,
        pinned: &mut Pinned,
        k: &Kernels,
        words: &[u32],
        len: usize,
        digests: &mut CudaSlice<u32>,
        batches: &Batches,
    ) -> Result<(), BackendError> {
        let mut msgs = self.alloc(batches.per_batch * len)?;
        for rows in batches.ranges() {
            let (r0, r) = (rows.start, rows.len());
            // Ordered on the stream after the previous batch's kernel.
            self.upload(pinned, &words[r0 * len..(r0 + r) * len], &mut msgs)?;
            self.hash_on_device(k, &msgs, r, len, digests, r0)?;
        }
        Ok(())
    }

    /// Waits for the stream (counted as one wait) and checks the context for errors.
    pub(crate) fn check(&self, what: &str) -> Result<(), BackendError> {
        self.stream
            .synchronize()
            .and_then(|()| self.ctx.check_err())
            .map_err(|e| self.kernel_error(what, e))?;
        self.transfers.sync_wait();
        Ok(())
    }

    pub(crate) fn to_elems<F: BackendField>(
        &self,
        what: &str,
        words: Vec<u32>,
    ) -> Result<Vec<F>, BackendError> {
        readback::elems(&self.info.id, what, words)
    }

    pub(crate) fn split_layers<F: BackendField>(
        &self,
        words: Vec<u32>,
        rows: usize,
    ) -> Result<Vec<Vec<Digest<F>>>, BackendError> {
        readback::tree_layers(&self.info.id, words, rows)
    }

    /// The LDE of one column batch (`words`, `w` columns), read back.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn lde_batch<F: BackendField>(
        &self,
        pinned: &mut Pinned,
        k: &Kernels,
        words: &[u32],
        log_h: usize,
        added_bits: usize,
        w: usize,
        shift: F,
    ) -> Result<Vec<u32>, BackendError> {
        let dst = self.lde_on_device(pinned, k, words, log_h, added_bits, w, shift)?;
        let mut out = vec![0u32; (1usize << (log_h + added_bits)) * w];
        self.download(pinned, &dst, &mut out)?;
        Ok(out)
    }
}

//! Device work of the backend's calls: twiddle tables, the LDE's DFT stages, leaf
//! hashing, compression and trees on the device, and their host-side assembly.

use std::sync::Arc;

use ocl::Buffer;
use proofbox_backend_api::planner::Batches;
use proofbox_backend_api::{
    Backend, BackendError, BackendField, DIGEST_ELEMS, Digest, FieldId, readback,
};

use crate::{
    DIGEST_WORDS, MAX_GROUP, MAX_TILE_STAGES, OpenclBackend, Payload, TILE_WORDS, global_size,
    tables,
};

impl OpenclBackend {
    /// A twiddle table on the device, cached per (field, size, direction).
    pub(crate) fn twiddles<F: BackendField>(
        &self,
        log_n: usize,
        inverse: bool,
    ) -> Result<Arc<Buffer<u32>>, BackendError> {
        let key = (F::ID, log_n, inverse);
        if let Some(t) = self.twiddles.lock().expect("twiddle cache").get(&key) {
            return Ok(t.clone());
        }
        let words = tables::twiddles::<F>(log_n, inverse);
        let buf = Arc::new(self.upload(&words, Payload::Table)?);
        self.twiddles
            .lock()
            .expect("twiddle cache")
            .insert(key, buf.clone());
        Ok(buf)
    }

    /// Local-memory tile size of `dif_stages`, in words.
    pub(crate) fn tile_words(&self) -> usize {
        match (self.local_bytes / 4) as usize {
            0 => TILE_WORDS,
            local => TILE_WORDS.min(1 << local.ilog2()),
        }
    }

    /// Runs DIF stages `top - 1, ..., 0` over the `2^rows_log` rows of `data` in
    /// local-memory passes of up to `MAX_TILE_STAGES` stages.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dif<F: BackendField>(
        &self,
        data: &Buffer<u32>,
        width: usize,
        rows_log: usize,
        top: usize,
        tw: &Buffer<u32>,
        tw_log: usize,
    ) -> Result<(), BackendError> {
        let cols = width.min(32);
        let max_stages = ((self.tile_words() / cols).max(2).ilog2() as usize).min(MAX_TILE_STAGES);
        let col_tiles = width.div_ceil(cols) as u64;
        let mut s = top;
        while s > 0 {
            let stages = max_stages.min(s);
            let rows = 1usize << stages;
            let butterflies = rows / 2 * cols;
            let threads = butterflies.clamp(1, MAX_GROUP.min(self.max_group));
            let blocks = (1u64 << (rows_log - stages)) * col_tiles;
            let groups = blocks.min(u64::from(self.compute_units.max(1)) * 16) as usize;
            let (width64, rows_log32, s_hi, stages32, cols32, tw_log32) = (
                width as u64,
                rows_log as u32,
                (s - 1) as u32,
                stages as u32,
                cols as u32,
                tw_log as u32,
            );
            // `data` holds 2^rows_log rows of `width` words and `tw` 2^(tw_log - 1)
            // words (at least 1), tw_log >= every stage + 1; the tile holds
            // 2^stages * cols words.
            let k = self
                .kernel("dif_stages", F::ID)
                .global_work_size(groups * threads)
                .local_work_size(threads)
                .arg(data)
                .arg(width64)
                .arg(rows_log32)
                .arg(s_hi)
                .arg(stages32)
                .arg(cols32)
                .arg(tw)
                .arg(tw_log32)
                .arg_local::<u32>(rows * cols)
                .build();
            self.launch("dif_stages", k)?;
            s -= stages;
        }
        Ok(())
    }

    /// The coset LDE of `2^log_h` rows of `w` columns (`words`, row-major), left on the
    /// device: `2^(log_h + added_bits)` rows in bit-reversed order.
    pub(crate) fn lde_on_device<F: BackendField>(
        &self,
        words: &[u32],
        log_h: usize,
        added_bits: usize,
        w: usize,
        shift: F,
    ) -> Result<Buffer<u32>, BackendError> {
        let log_n = log_h + added_bits;
        let n = 1usize << log_n;
        let inv = self.twiddles::<F>(log_h, true)?;
        let fwd = self.twiddles::<F>(log_n, false)?;
        let scale = self.upload(&tables::coset_scale::<F>(log_h, shift), Payload::Table)?;
        let src = self.upload(words, Payload::Data)?;
        self.dif::<F>(&src, w, log_h, log_h, &inv, log_h)?;
        let dst = self.alloc(n * w)?;
        let (w64, log_h32, added32) = (w as u64, log_h as u32, added_bits as u32);
        // `dst` holds n * w words, `src` h * w, `scale` h and `fwd` n / 2 (at least 1).
        let k = self
            .kernel("lde_expand", F::ID)
            .global_work_size(global_size((n * w) as u64, self.compute_units))
            .arg(&dst)
            .arg(&src)
            .arg(w64)
            .arg(log_h32)
            .arg(added32)
            .arg(&scale)
            .arg(&*fwd)
            .build();
        self.launch("lde_expand", k)?;
        self.dif::<F>(&dst, w, log_n, log_h, &fwd, log_n)?;
        Ok(dst)
    }

    /// Hashes `rows` messages of `len` words lying back to back in `msgs` into digests
    /// `out_offset..out_offset + rows` of `digests`.
    pub(crate) fn hash_on_device(
        &self,
        field: FieldId,
        msgs: &Buffer<u32>,
        rows: usize,
        len: usize,
        digests: &Buffer<u32>,
        out_offset: usize,
    ) -> Result<(), BackendError> {
        let (rows64, len64, off64) = (rows as u64, len as u64, out_offset as u64);
        // `msgs` holds rows * len words, `digests` at least out_offset + rows digests.
        let k = self
            .kernel("hash_leaves", field)
            .global_work_size(global_size(rows as u64, self.compute_units))
            .arg(msgs)
            .arg(rows64)
            .arg(len64)
            .arg(digests)
            .arg(off64)
            .build();
        self.launch("hash_leaves", k)
    }

    /// Compresses `count` pairs: digests `in_offset + 2t, +1` into `out_offset + t`.
    pub(crate) fn compress_on_device(
        &self,
        field: FieldId,
        layers: &Buffer<u32>,
        in_offset: usize,
        out_offset: usize,
        count: usize,
    ) -> Result<(), BackendError> {
        let (a, b, c) = (in_offset as u64, out_offset as u64, count as u64);
        // Both ranges lie inside `layers`, without overlap.
        let k = self
            .kernel("compress_pairs", field)
            .global_work_size(global_size(count as u64, self.compute_units))
            .arg(layers)
            .arg(a)
            .arg(b)
            .arg(c)
            .build();
        self.launch("compress_pairs", k)
    }

    /// Compression layers over `rows` leaf digests at the start of `layers`; each
    /// layer follows the previous one (2 * rows - 1 digests in all).
    pub(crate) fn tree_on_device(
        &self,
        field: FieldId,
        layers: &Buffer<u32>,
        rows: usize,
    ) -> Result<(), BackendError> {
        let (mut cur, mut in_off, mut out_off) = (rows, 0usize, rows);
        while cur > 1 {
            let half = cur / 2;
            self.compress_on_device(field, layers, in_off, out_off, half)?;
            in_off = out_off;
            out_off += half;
            cur = half;
        }
        Ok(())
    }

    /// Hashes the messages of `len` words in `words` from the host, uploaded in the
    /// row batches `batches`. With `device_out`, the digests go to its first digests;
    /// otherwise each batch's digests are read back into `host_out`.
    pub(crate) fn hash_from_host(
        &self,
        field: FieldId,
        words: &[u32],
        len: usize,
        batches: &Batches,
        device_out: Option<&Buffer<u32>>,
        host_out: &mut [u32],
    ) -> Result<(), BackendError> {
        let per_batch = batches.per_batch;
        let msgs = self.alloc(per_batch * len)?;
        let scratch = match device_out {
            Some(_) => None,
            None => Some(self.alloc(per_batch * DIGEST_WORDS)?),
        };
        for rows in batches.ranges() {
            let (r0, r) = (rows.start, rows.len());
            self.write(&msgs, 0, &words[r0 * len..(r0 + r) * len], Payload::Data)?;
            match (device_out, &scratch) {
                (Some(out), _) => self.hash_on_device(field, &msgs, r, len, out, r0)?,
                (None, Some(tmp)) => {
                    self.hash_on_device(field, &msgs, r, len, tmp, 0)?;
                    self.read(
                        tmp,
                        0,
                        &mut host_out[r0 * DIGEST_WORDS..(r0 + r) * DIGEST_WORDS],
                    )?;
                }
                (None, None) => unreachable!("scratch exists without a device output"),
            }
        }
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

    /// The tree through the host, one batched call per layer, for trees whose
    /// layers do not fit one device buffer.
    pub(crate) fn merkle_tree_by_layers<F: BackendField>(
        &self,
        words: &[F],
        rows: usize,
    ) -> Result<Vec<Vec<Digest<F>>>, BackendError> {
        let mut layer = vec![[F::ZERO; DIGEST_ELEMS]; rows];
        self.hash_rows(words, &mut layer)?;
        self.compress_to_root(layer)
    }
}

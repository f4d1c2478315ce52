//! The block log: every block appended (and synced to disk) before it is announced,
//! replayed at start; and the record framing it shares with the proving journal and
//! the pool journal.
//!
//! The file `blocks.log` is a sequence of records, each
//! `[payload length: u32 LE][checksum: first 8 bytes of SHA-256(payload)][payload]`,
//! the payload being `Block::encode`. A crash can leave a torn last record (short, or
//! complete but with a bad checksum): it is cut off at open. A bad record followed by
//! more data is corruption, and the log refuses to open.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use proofbox_chain_types::Block;
use sha2::{Digest, Sha256};

/// Length and checksum before each payload.
pub(crate) const HEADER: usize = 12;
/// No block record is larger (a full block of calldata is far smaller).
const MAX_RECORD: u32 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: corrupt record at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

fn checksum(payload: &[u8]) -> [u8; 8] {
    Sha256::digest(payload)[..8].try_into().unwrap()
}

/// `payload` framed as a record: length, checksum, payload.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER + payload.len());
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&checksum(payload));
    record.extend_from_slice(payload);
    record
}

/// A file of checksummed records (the framing above), positioned at its end: the
/// block log's, the proving journal's ([`crate::proving`]) and the pool journal's
/// ([`crate::pool_log`]).
#[derive(Debug)]
pub(crate) struct RecordFile {
    path: PathBuf,
    file: File,
}

/// A record read at open: where its payload starts in the file, and the payload.
pub(crate) type Record = (u64, Vec<u8>);

impl RecordFile {
    /// Opens (or creates) `path` and reads every record in it. A torn tail is
    /// truncated away (and synced) before returning.
    pub(crate) fn open(path: PathBuf) -> Result<(Self, Vec<Record>), LogError> {
        let io = |source| LogError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let mut records = Vec::new();
        let mut offset = 0usize;
        while offset < bytes.len() {
            let rest = &bytes[offset..];
            if rest.len() < HEADER {
                break; // torn header
            }
            let len = u32::from_le_bytes(rest[..4].try_into().unwrap());
            if len > MAX_RECORD {
                return Err(LogError::Corrupt {
                    path,
                    offset: offset as u64,
                    reason: format!("record length {len}"),
                });
            }
            let end = HEADER + len as usize;
            if rest.len() < end {
                break; // torn payload
            }
            let payload = &rest[HEADER..end];
            if checksum(payload) != rest[4..HEADER] {
                if rest.len() == end {
                    break; // a torn last record
                }
                return Err(LogError::Corrupt {
                    path,
                    offset: offset as u64,
                    reason: "checksum mismatch".into(),
                });
            }
            records.push(((offset + HEADER) as u64, payload.to_vec()));
            offset += end;
        }
        if offset < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                kept = offset,
                dropped = bytes.len() - offset,
                "cutting off a torn last record"
            );
            file.set_len(offset as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok((Self { path, file }, records))
    }

    /// Appends a record and syncs the file's data to disk; returns where its payload
    /// starts.
    pub(crate) fn append(&mut self, payload: &[u8]) -> Result<u64, LogError> {
        let record = frame(payload);
        let io = |source| LogError::Io {
            path: self.path.clone(),
            source,
        };
        let at = self.file.stream_position().map_err(io)?;
        self.file.write_all(&record).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        Ok(at + HEADER as u64)
    }

    /// Reads back the payload of `len` bytes at `offset` (as [`RecordFile::append`]
    /// or [`RecordFile::open`] gave it), checking its checksum again.
    pub(crate) fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, LogError> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; HEADER + len];
        let start = offset.checked_sub(HEADER as u64).ok_or(LogError::Corrupt {
            path: self.path.clone(),
            offset,
            reason: "not a record's payload".into(),
        })?;
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(|source| LogError::Io {
                path: self.path.clone(),
                source,
            })?;
        let (header, payload) = buf.split_at(HEADER);
        if u32::from_le_bytes(header[..4].try_into().unwrap()) as usize != len
            || checksum(payload) != header[4..]
        {
            return Err(LogError::Corrupt {
                path: self.path.clone(),
                offset: start,
                reason: "the record changed on disk (checksum mismatch)".into(),
            });
        }
        buf.drain(..HEADER);
        Ok(buf)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, positioned at its end (for a writer of its own framing).
    pub(crate) fn into_file(self) -> File {
        self.file
    }
}

/// An open block log, positioned at its end.
#[derive(Debug)]
pub struct BlockLog {
    records: RecordFile,
}

impl BlockLog {
    /// Opens (or creates) `dir/blocks.log` and reads every block in it. A torn tail is
    /// truncated away (and synced) before returning.
    pub fn open(dir: &Path) -> Result<(Self, Vec<Block>), LogError> {
        let (records, read) = RecordFile::open(dir.join("blocks.log"))?;
        let blocks = read
            .into_iter()
            .map(|(offset, payload)| {
                Block::decode(&payload).map_err(|e| LogError::Corrupt {
                    path: records.path().to_path_buf(),
                    offset: offset - HEADER as u64,
                    reason: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok((Self { records }, blocks))
    }

    /// Appends `block` and syncs the file's data to disk.
    pub fn append(&mut self, block: &Block) -> Result<(), LogError> {
        self.records.append(&block.encode()).map(|_| ())
    }

    pub fn path(&self) -> &Path {
        self.records.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks() -> Vec<Block> {
        let core = crate::chain::genesis(&crate::Config::default().alloc(), 30_000_000, 7).unwrap();
        let g = core.chain.head_block().as_ref().clone();
        (0..3)
            .map(|i| {
                let mut b = g.clone();
                b.header.number = i;
                b
            })
            .collect()
    }

    fn write(dir: &Path) -> u64 {
        let (mut log, got) = BlockLog::open(dir).unwrap();
        assert!(got.is_empty());
        for b in blocks() {
            log.append(&b).unwrap();
        }
        std::fs::metadata(log.path()).unwrap().len()
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_the_blocks_before_it_kept() {
        for torn in [3usize, HEADER + 10, 0] {
            let dir = tempfile::tempdir().unwrap();
            let len = write(dir.path());
            let path = dir.path().join("blocks.log");
            let mut bytes = std::fs::read(&path).unwrap();
            if torn == 0 {
                // A complete last record with a bad checksum.
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
            } else {
                let record = blocks()[0].encode();
                let mut tail = (record.len() as u32).to_le_bytes().to_vec();
                tail.extend_from_slice(&checksum(&record));
                tail.extend_from_slice(&record);
                bytes.extend_from_slice(&tail[..torn]);
            }
            std::fs::write(&path, &bytes).unwrap();
            let (_log, got) = BlockLog::open(dir.path()).unwrap();
            let kept = if torn == 0 { 2 } else { 3 };
            assert_eq!(got, blocks()[..kept].to_vec(), "torn {torn}");
            let now = std::fs::metadata(&path).unwrap().len();
            if torn == 0 {
                assert!(now < len, "the bad last record is cut off");
            } else {
                assert_eq!(now, len, "the torn tail is cut off");
            }
        }
    }

    #[test]
    fn a_bad_record_before_the_end_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path());
        let path = dir.path().join("blocks.log");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + 5] ^= 1; // inside the first record's payload
        std::fs::write(&path, &bytes).unwrap();
        match BlockLog::open(dir.path()) {
            Err(LogError::Corrupt {
                offset: 0, reason, ..
            }) => assert_eq!(reason, "checksum mismatch"),
            other => panic!("{other:?}"),
        }
    }
}

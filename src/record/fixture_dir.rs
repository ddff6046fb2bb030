//! A fixture directory on disk (layout and rules in `format.rs`): blobs stored by
//! content and verified when read, records written whole (temporary file, then
//! rename) and read only as regular files.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::format::{
    io, is_key, open_regular, read_record, FormatError, Record, StreamRef, MAX_STREAM_BYTES,
};
use crate::store::Digest;

/// A fixture directory.
#[derive(Debug, Clone)]
pub(crate) struct FixtureDir {
    root: PathBuf,
}

impl FixtureDir {
    pub(crate) fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn records_dir(&self) -> PathBuf {
        self.root.join("records")
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn record_path(&self, key: &str) -> PathBuf {
        self.records_dir().join(format!("{key}.json"))
    }

    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// A new temporary file in `tmp/` (unique per process, time and call).
    fn temp_file(&self) -> Result<(PathBuf, std::fs::File), FormatError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = self.tmp_dir();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{}-{nanos:x}-{n}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io(&path))?;
        Ok((path, file))
    }

    /// Move a finished temporary file to `dest` (atomic: same file system).
    fn publish(&self, temp: &Path, dest: &Path) -> Result<(), FormatError> {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::rename(temp, dest).map_err(|e| {
            let _ = std::fs::remove_file(temp);
            io(dest)(e)
        })
    }

    /// Store `bytes` as a blob; returns its reference.
    pub(crate) fn put_bytes(&self, bytes: &[u8]) -> Result<StreamRef, FormatError> {
        let digest = Digest::of_bytes(bytes);
        let dest = self.blob_path(&digest);
        if !dest.exists() {
            let (temp, mut file) = self.temp_file()?;
            file.write_all(bytes).map_err(io(&temp))?;
            drop(file);
            self.publish(&temp, &dest)?;
        }
        Ok(StreamRef {
            sha256: digest,
            size: bytes.len() as u64,
        })
    }

    /// Copy the file at `src` into a blob, hashing while copying.
    pub(crate) fn put_file(&self, src: &Path) -> Result<StreamRef, FormatError> {
        let mut input = std::fs::File::open(src).map_err(io(src))?;
        let (temp, mut file) = self.temp_file()?;
        let copied = copy_hashing(&mut input, &mut file).map_err(io(src));
        drop(file);
        let (digest, size) = match copied {
            Ok(done) => done,
            Err(err) => {
                let _ = std::fs::remove_file(&temp);
                return Err(err);
            }
        };
        self.publish(&temp, &self.blob_path(&digest))?;
        Ok(StreamRef {
            sha256: digest,
            size,
        })
    }

    /// Check that the blob exists and has the expected digest and size.
    pub(crate) fn verify_blob(&self, digest: &Digest, size: u64) -> Result<(), FormatError> {
        let path = self.blob_path(digest);
        let mut file = open_regular(&path).map_err(|e| match e {
            FormatError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                FormatError::MissingBlob {
                    digest: *digest,
                    dir: self.root.clone(),
                }
            }
            other => other,
        })?;
        let (found, found_size) =
            copy_hashing(&mut file, &mut std::io::sink()).map_err(io(&path))?;
        if found != *digest || found_size != size {
            return Err(FormatError::CorruptBlob {
                path,
                expected: *digest,
                expected_size: size,
                found,
                found_size,
            });
        }
        Ok(())
    }

    /// A stream blob's bytes, verified.
    pub(crate) fn read_stream(&self, stream: &StreamRef) -> Result<Vec<u8>, FormatError> {
        let path = self.blob_path(&stream.sha256);
        if stream.size > MAX_STREAM_BYTES {
            return Err(FormatError::TooLarge { path });
        }
        self.verify_blob(&stream.sha256, stream.size)?;
        let mut bytes = Vec::new();
        open_regular(&path)?
            .read_to_end(&mut bytes)
            .map_err(io(&path))?;
        Ok(bytes)
    }

    /// Write `record` to `records/<key>.json` (temporary file, then rename).
    pub(crate) fn put_record(&self, record: &Record) -> Result<PathBuf, FormatError> {
        let json = serde_json::to_vec_pretty(record).expect("plain structs always serialise");
        let (temp, mut file) = self.temp_file()?;
        file.write_all(&json).map_err(io(&temp))?;
        drop(file);
        let dest = self.record_path(&record.key);
        self.publish(&temp, &dest)?;
        Ok(dest)
    }

    /// The record for `key`, `Ok(None)` when there is none.
    pub(crate) fn get_record(&self, key: &str) -> Result<Option<Record>, FormatError> {
        let path = self.record_path(key);
        if !is_key(key) || std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        read_record(&path).map(Some)
    }

    /// Every record file (sorted by name), each parsed or with its error.
    pub(crate) fn records(&self) -> Vec<(PathBuf, Result<Record, FormatError>)> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.records_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|p| {
                let parsed = read_record(&p);
                (p, parsed)
            })
            .collect()
    }
}

/// Copy `from` into `to`, returning the SHA-256 and length of what was copied.
fn copy_hashing(from: &mut impl Read, to: &mut impl Write) -> std::io::Result<(Digest, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
    to.flush()?;
    let hex = hex::encode(hasher.finalize());
    Ok((hex.parse().expect("sha256 hex is a digest"), total))
}

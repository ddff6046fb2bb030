//! The fixture directory's on-disk format: versioned JSON records plus
//! content-addressed blobs.
//!
//! ```text
//! <dir>/records/<key>.json      one Record per invocation key
//! <dir>/blobs/sha256/<hex>      output files, stdout, stderr (by SHA-256)
//! <dir>/tmp/                    temporary files, renamed into place when complete
//! ```
//!
//! Compatibility rule: [`FORMAT_VERSION`] changes whenever a field changes meaning or
//! is removed; readers refuse every version they do not know (exit 65). New optional
//! fields may be added without a bump; readers ignore fields they do not know.
//!
//! [`FixtureDir`] (`fixture_dir.rs`) reads and writes such a directory.
//!
//! Concurrency: every file is written to `tmp/` and renamed into place, so readers
//! never see a partial file; blobs are named by their content, so two recorders
//! writing the same blob write the same bytes.
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub(crate) use super::fixture_dir::FixtureDir;
use crate::route::{ArgTemplate, InputSource};
use crate::store::Digest;

/// Version of the record format written by this build.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Largest record file read (a record is a few KiB; anything huge is not ours).
const MAX_RECORD_BYTES: u64 = 16 << 20;
/// Largest stdout/stderr blob read into memory for replay.
pub(crate) const MAX_STREAM_BYTES: u64 = 256 << 20;

/// One recorded invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) format_version: u32,
    /// The invocation key (`delegate::key`), also the record's file name.
    pub(crate) key: String,
    /// `delegated` (ran on the backend) or `native` (ran on the local bb).
    pub(crate) mode: Mode,
    pub(crate) generation: crate::grammar::Generation,
    pub(crate) command: String,
    /// The normalised argv: file arguments are placeholders (`{"input": n}`,
    /// `"output_dir"`), so local paths never appear.
    pub(crate) argv: Vec<ArgTemplate>,
    pub(crate) inputs: Vec<RecordInput>,
    pub(crate) outputs: Vec<RecordOutput>,
    pub(crate) stdout: StreamRef,
    pub(crate) stderr: StreamRef,
    /// bb's exit code; a death by signal n is 128+n.
    pub(crate) exit_code: i32,
    pub(crate) wall_time_ms: u64,
    /// `bb --version` of the native bb, or the executor image for delegated runs.
    pub(crate) bb_version: Option<String>,
    /// RFC 3339 time the record was written.
    pub(crate) recorded_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mode {
    Delegated,
    Native,
}

/// One input of the plan: its role, the name the caller gave, and its content digest
/// (`None` when the optional file was absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordInput {
    pub(crate) role: String,
    pub(crate) name: String,
    pub(crate) source: InputSource,
    pub(crate) sha256: Option<Digest>,
    pub(crate) size: Option<u64>,
}

/// One file bb wrote, relative to its output directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordOutput {
    pub(crate) name: String,
    pub(crate) sha256: Digest,
    pub(crate) size: u64,
}

/// A captured byte stream, stored as a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StreamRef {
    pub(crate) sha256: Digest,
    pub(crate) size: u64,
}

/// Why a fixture directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FormatError {
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a fixture record: {reason}", path = .path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "{path}: record format version {found} is not supported (this build reads version {FORMAT_VERSION}); \
         help: re-record the fixtures with this bb-remote",
        path = .path.display()
    )]
    UnknownVersion { path: PathBuf, found: u64 },
    #[error("blob sha256:{digest} is missing from {dir}", dir = .dir.display())]
    MissingBlob { digest: Digest, dir: PathBuf },
    #[error("blob {path} is corrupt: expected sha256:{expected} ({expected_size} bytes), found sha256:{found} ({found_size} bytes)", path = .path.display())]
    CorruptBlob {
        path: PathBuf,
        expected: Digest,
        expected_size: u64,
        found: Digest,
        found_size: u64,
    },
    #[error("blob {path} is larger than {MAX_STREAM_BYTES} bytes", path = .path.display())]
    TooLarge { path: PathBuf },
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FormatError + '_ {
    move |source| FormatError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Open a fixture file for reading: only a regular file, never through a symbolic
/// link, and without blocking (a FIFO planted in a fixture directory must not hang
/// replay). Anything else is [`FormatError::Malformed`].
pub(super) fn open_regular(path: &Path) -> Result<std::fs::File, FormatError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => not_regular(path),
            _ => io(path)(e),
        })?;
    let meta = file.metadata().map_err(io(path))?;
    if !meta.is_file() {
        return Err(not_regular(path));
    }
    Ok(file)
}

fn not_regular(path: &Path) -> FormatError {
    FormatError::Malformed {
        path: path.to_owned(),
        reason: "not a regular file (links, FIFOs and devices are refused)".into(),
    }
}

/// Whether `key` looks like an invocation key (64 lowercase hex digits); anything else
/// must never become a path.
pub(crate) fn is_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parse one record file, refusing unknown versions before reading any other field.
pub(crate) fn read_record(path: &Path) -> Result<Record, FormatError> {
    let malformed = |reason: String| FormatError::Malformed {
        path: path.to_owned(),
        reason,
    };
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_RECORD_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    if bytes.len() as u64 > MAX_RECORD_BYTES {
        return Err(malformed(format!("larger than {MAX_RECORD_BYTES} bytes")));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
    let version = value
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| malformed("no numeric format_version".into()))?;
    if version != u64::from(FORMAT_VERSION) {
        return Err(FormatError::UnknownVersion {
            path: path.to_owned(),
            found: version,
        });
    }
    let record: Record = serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if !is_key(&record.key) || record.key != stem {
        return Err(malformed(format!(
            "key {:?} does not match the file name",
            record.key
        )));
    }
    Ok(record)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(dir: &FixtureDir) -> Record {
        let stdout = dir.put_bytes(b"out\n").unwrap();
        let stderr = dir.put_bytes(b"err\n").unwrap();
        let proof = dir.put_bytes(b"proof").unwrap();
        Record {
            format_version: FORMAT_VERSION,
            key: "ab".repeat(32),
            mode: Mode::Native,
            generation: crate::grammar::Generation::Modern,
            command: "prove".into(),
            argv: vec![ArgTemplate::Literal("prove".into()), ArgTemplate::OutputDir],
            inputs: vec![],
            outputs: vec![RecordOutput {
                name: "proof".into(),
                sha256: proof.sha256,
                size: proof.size,
            }],
            stdout,
            stderr,
            exit_code: 0,
            wall_time_ms: 5,
            bb_version: None,
            recorded_at: "2025-01-01T00:00:00Z".into(),
        }
    }

    /// Run `f` on another thread; fail instead of hanging the suite.
    fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("blocked on a fixture file")
    }

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn fifos_and_links_in_a_fixture_directory_are_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = FixtureDir::new(tmp.path());
        let record = sample(&dir);
        dir.put_record(&record).unwrap();
        let blob = dir.blob_path(&record.outputs[0].sha256);
        std::fs::remove_file(&blob).unwrap();
        mkfifo(&blob);
        let (d, o) = (dir.clone(), record.outputs[0].clone());
        let err = within_5s(move || d.verify_blob(&o.sha256, o.size)).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        // A record that is a FIFO, and one that is a link to a valid record.
        let fifo = dir.records_dir().join(format!("{}.json", "cd".repeat(32)));
        mkfifo(&fifo);
        let link = dir.records_dir().join(format!("{}.json", "ef".repeat(32)));
        std::os::unix::fs::symlink(dir.record_path(&record.key), &link).unwrap();
        let d = dir.clone();
        let listed = within_5s(move || d.records());
        let bad: Vec<_> = listed.iter().filter(|(_, r)| r.is_err()).collect();
        assert_eq!(bad.len(), 2, "{listed:?}");
        let d = dir.clone();
        let err = within_5s(move || d.get_record(&"cd".repeat(32))).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn records_round_trip_and_blobs_verify() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = FixtureDir::new(tmp.path());
        let record = sample(&dir);
        dir.put_record(&record).unwrap();
        assert_eq!(dir.get_record(&record.key).unwrap(), Some(record.clone()));
        assert_eq!(dir.read_stream(&record.stdout).unwrap(), b"out\n");
        assert_eq!(std::fs::read_dir(dir.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn a_tampered_blob_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = FixtureDir::new(tmp.path());
        let r = dir.put_bytes(b"hello").unwrap();
        std::fs::write(dir.blob_path(&r.sha256), b"hellO").unwrap();
        let err = dir.read_stream(&r).unwrap_err();
        assert!(matches!(err, FormatError::CorruptBlob { .. }), "{err}");
        std::fs::remove_file(dir.blob_path(&r.sha256)).unwrap();
        let err = dir.verify_blob(&r.sha256, r.size).unwrap_err();
        assert!(matches!(err, FormatError::MissingBlob { .. }), "{err}");
    }

    #[test]
    fn unknown_versions_and_bad_names_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = FixtureDir::new(tmp.path());
        let record = sample(&dir);
        let path = dir.put_record(&record).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace("\"format_version\": 1", "\"format_version\": 99"),
        )
        .unwrap();
        let err = dir.get_record(&record.key).unwrap_err();
        assert!(
            matches!(err, FormatError::UnknownVersion { found: 99, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("version 99"), "{err}");
        let other = dir.records_dir().join(format!("{}.json", "cd".repeat(32)));
        std::fs::write(&other, text).unwrap();
        assert!(matches!(
            read_record(&other),
            Err(FormatError::Malformed { .. })
        ));
        assert_eq!(dir.get_record("../../etc/passwd").unwrap(), None);
    }
}

//! The seam between "what to run" and "where it runs": a [`Transport`] executes a
//! [`Job`] and returns a [`RemoteResult`]. The TES + object store transport lives in
//! `tes_transport.rs`; replay and the recording decorator live in `record/`. All go
//! through the same driver (`delegate::drive`) and output writer (`fetch.rs`).
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::route::Plan;
use crate::store::Digest;

/// One input file that exists locally and is part of the job.
#[derive(Debug, Clone)]
pub(crate) struct JobInput {
    /// Index in `plan.inputs`.
    pub(crate) index: usize,
    pub(crate) digest: Digest,
}

/// Everything a transport needs to run one command.
#[derive(Debug, Clone)]
pub(crate) struct Job<'a> {
    pub(crate) plan: &'a Plan,
    /// The invocation key (see `key.rs`).
    pub(crate) key: String,
    /// The inputs present, in plan order (absent optional candidates are left out).
    pub(crate) inputs: Vec<JobInput>,
}

/// One file the remote bb wrote into its output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteOutput {
    /// Path relative to the output directory, as the backend reported it (untrusted).
    pub(crate) name: String,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    /// Where the transport fetches it from (a store URL for TES).
    pub(crate) location: String,
    /// Its bytes, when the backend's answer carried them (`tes::inline`), already
    /// checked against `digest` and `size`.
    pub(crate) inline: Option<Vec<u8>>,
}

/// What the remote bb did: the same things a local bb would have shown the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RemoteResult {
    /// bb's exit code; a death by signal n is 128+n.
    pub(crate) exit_code: i32,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    pub(crate) outputs: Vec<RemoteOutput>,
}

/// Bytes moved to make the inputs available (for the operator line and benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UploadStats {
    pub(crate) files: usize,
    pub(crate) files_sent: usize,
    pub(crate) bytes: u64,
    pub(crate) bytes_sent: u64,
}

/// What [`Transport::fetch_output`] knows of the bytes it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fetched {
    /// Hashed as they were written: the SHA-256 and size of exactly the bytes now in
    /// the file. The caller compares them with what the backend claimed, and does not
    /// read the file again.
    Hashed { digest: Digest, size: u64 },
    /// Written without hashing: the caller hashes the file.
    Unhashed,
}

/// A place that can run bb jobs.
pub(crate) trait Transport {
    /// Hash the files and make them available to the backend; one digest per file.
    /// The default, for a transport that runs nothing remotely (replay, an answer the
    /// native bb gave): hash each file, upload nothing.
    async fn stage_inputs(
        &mut self,
        files: &[PathBuf],
    ) -> Result<(Vec<(Digest, u64)>, UploadStats), Error> {
        let mut staged = Vec::with_capacity(files.len());
        let mut stats = UploadStats::default();
        for file in files {
            let (digest, size) = crate::store::hash_file(file).await?;
            stats.files += 1;
            stats.bytes += size;
            staged.push((digest, size));
        }
        Ok((staged, stats))
    }

    /// Run the job to its end (waiting, cancelling on a signal or timeout).
    async fn execute(&mut self, job: &Job<'_>) -> Result<RemoteResult, Error>;

    /// Write the bytes of `output` to `dest` (a new temporary file the caller owns and
    /// verifies against `output`'s digest and size). Must not touch any other path.
    async fn fetch_output(&self, output: &RemoteOutput, dest: &Path) -> Result<Fetched, Error>;

    /// Cancel what this caller created on the backend, after a signal or the timeout
    /// stopped [`Transport::execute`] part way (its future was dropped). Never touches
    /// work another caller created. `Ok(true)` when something was cancelled.
    async fn abandon(&mut self) -> Result<bool, Error> {
        Ok(false)
    }
}

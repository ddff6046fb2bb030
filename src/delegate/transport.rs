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
pub struct JobInput {
    /// Index in `plan.inputs`.
    pub index: usize,
    pub local: PathBuf,
    pub digest: Digest,
    pub size: u64,
}

/// Everything a transport needs to run one command.
#[derive(Debug, Clone)]
pub struct Job<'a> {
    pub plan: &'a Plan,
    /// The invocation key (see `key.rs`).
    pub key: String,
    /// The inputs present, in plan order (absent optional candidates are left out).
    pub inputs: Vec<JobInput>,
}

/// One file the remote bb wrote into its output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOutput {
    /// Path relative to the output directory, as the backend reported it (untrusted).
    pub name: String,
    pub digest: Digest,
    pub size: u64,
    /// Where the transport fetches it from (a store URL for TES).
    pub location: String,
}

/// What the remote bb did: the same things a local bb would have shown the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteResult {
    /// bb's exit code; a death by signal n is 128+n.
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub outputs: Vec<RemoteOutput>,
}

/// Bytes moved to make the inputs available (for the operator line and benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadStats {
    pub files: usize,
    pub files_sent: usize,
    pub bytes: u64,
    pub bytes_sent: u64,
}

/// A place that can run bb jobs.
#[expect(
    async_fn_in_trait,
    reason = "used with concrete types only, never as dyn"
)]
pub trait Transport {
    /// Hash the files and make them available to the backend; one digest per file.
    async fn stage_inputs(
        &mut self,
        files: &[PathBuf],
    ) -> Result<(Vec<(Digest, u64)>, UploadStats), Error>;

    /// Run the job to its end (waiting, cancelling on a signal or timeout).
    async fn execute(&mut self, job: &Job<'_>) -> Result<RemoteResult, Error>;

    /// Write the bytes of `output` to `dest` (a new temporary file the caller owns and
    /// verifies). Must not touch any other path.
    async fn fetch_output(&self, output: &RemoteOutput, dest: &Path) -> Result<(), Error>;

    /// Cancel what this caller created on the backend, after a signal or the timeout
    /// stopped [`Transport::execute`] part way (its future was dropped). Never touches
    /// work another caller created. `Ok(true)` when something was cancelled.
    async fn abandon(&mut self) -> Result<bool, Error> {
        Ok(false)
    }
}

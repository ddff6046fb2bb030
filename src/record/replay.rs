//! Replay: answer an invocation from a fixture directory through the same driver as
//! remote execution (`delegate::drive`); only the transport differs.
//!
//! [`ReplayTransport`] hashes the local inputs (nothing is uploaded), looks the
//! invocation key up in `records/`, checks every blob the record names, and serves
//! the outputs from `blobs/`; the delegation's shared writer puts them in place
//! (temporary file, digest check, rename). A miss or an unusable fixture is kept in
//! [`ReplayTransport::failure`] so the caller can map it to exit 66 or 65.
use std::path::Path;

use super::format::{FixtureDir, FormatError, Record};
use crate::delegate::transport::{Fetched, Job, RemoteOutput, RemoteResult, Transport};
use crate::error::Error;
use crate::store::Digest;

/// Why replay could not answer.
#[derive(Debug)]
pub(crate) enum ReplayFailure {
    Miss {
        key: String,
        command: String,
        nearest: Option<String>,
    },
    Invalid(FormatError),
}

/// The fixture-directory [`Transport`].
pub(crate) struct ReplayTransport {
    pub(crate) dir: FixtureDir,
    pub(crate) failure: Option<ReplayFailure>,
}

impl ReplayTransport {
    pub(crate) fn new(dir: FixtureDir) -> Self {
        Self { dir, failure: None }
    }

    fn fail(&mut self, failure: ReplayFailure) -> Error {
        // The caller reads the failure itself (to name the nearest fixture); the
        // error is what a caller that does not look gets.
        let err = match &failure {
            ReplayFailure::Miss { key, .. } => Error::ReplayMiss {
                description: format!("replay miss for key {key}"),
            },
            ReplayFailure::Invalid(err) => Error::FixtureInvalid(err.to_string().into()),
        };
        self.failure = Some(failure);
        err
    }

    /// The recorded result, every blob verified first (so nothing is written from a
    /// corrupt fixture).
    fn result_of(&self, record: &Record) -> Result<RemoteResult, FormatError> {
        for output in &record.outputs {
            self.dir.verify_blob(&output.sha256, output.size)?;
        }
        Ok(RemoteResult {
            exit_code: record.exit_code,
            stdout: self.dir.read_stream(&record.stdout)?,
            stderr: self.dir.read_stream(&record.stderr)?,
            outputs: record
                .outputs
                .iter()
                .map(|o| RemoteOutput {
                    name: o.name.clone(),
                    digest: o.sha256,
                    size: o.size,
                    location: self.dir.blob_path(&o.sha256).display().to_string(),
                    inline: None,
                })
                .collect(),
        })
    }
}

impl Transport for ReplayTransport {
    async fn execute(&mut self, job: &Job<'_>) -> Result<RemoteResult, Error> {
        let record = match self.dir.get_record(&job.key) {
            Ok(Some(record)) => record,
            Ok(None) => {
                let nearest = nearest(&self.dir, job);
                return Err(self.fail(ReplayFailure::Miss {
                    key: job.key.clone(),
                    command: job.plan.command.clone(),
                    nearest,
                }));
            }
            Err(err) => return Err(self.fail(ReplayFailure::Invalid(err))),
        };
        match self.result_of(&record) {
            Ok(result) => Ok(result),
            Err(err) => Err(self.fail(ReplayFailure::Invalid(err))),
        }
    }

    async fn fetch_output(&self, output: &RemoteOutput, dest: &Path) -> Result<Fetched, Error> {
        // A blob was checked to be a regular file, not a link, when the record was read.
        tokio::fs::copy(&output.location, dest)
            .await
            .map(|_| Fetched::Unhashed)
            .map_err(|e| Error::local_io(format!("copying fixture blob {}", output.location), e))
    }
}

/// The recorded invocation of the same command closest to `job` (most inputs with
/// the same role and content, then the same argv), described with what differs.
fn nearest(dir: &FixtureDir, job: &Job<'_>) -> Option<String> {
    let argv: Vec<_> = job.plan.argv.clone();
    let ours: Vec<(String, Option<Digest>)> = job
        .plan
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let digest = job.inputs.iter().find(|j| j.index == i).map(|j| j.digest);
            (input.role.clone(), digest)
        })
        .collect();
    let mut best: Option<(usize, String)> = None;
    for (_, record) in dir.records() {
        let Ok(record) = record else { continue };
        if record.command != job.plan.command || record.generation != job.plan.generation {
            continue;
        }
        let mut differs = Vec::new();
        let mut same = 0;
        for (role, digest) in &ours {
            match record.inputs.iter().find(|r| &r.role == role) {
                Some(r) if r.sha256 == *digest => same += 1,
                _ => differs.push(format!("input {role}")),
            }
        }
        if record.argv != argv {
            differs.push("argv".to_owned());
        } else {
            same += 1;
        }
        let text = format!("{} (differs in: {})", record.key, differs.join(", "));
        if best.as_ref().is_none_or(|(score, _)| same > *score) {
            best = Some((same, text));
        }
    }
    best.map(|(_, text)| text)
}

/// The text of a miss: the key, the fixture directory and the nearest recorded
/// invocation of the same command, with what differs.
pub(crate) fn miss_message(miss: &ReplayFailure, dir: &Path) -> String {
    let ReplayFailure::Miss {
        key,
        command,
        nearest,
    } = miss
    else {
        return "replay: fixture unusable".to_owned();
    };
    let nearest = match nearest {
        Some(n) => format!("nearest recorded {command}: {n}"),
        None => format!("no {command} invocation is recorded there"),
    };
    format!(
        "replay: no fixture for this {command} invocation (key {key}) in {}; {nearest}",
        dir.display()
    )
}

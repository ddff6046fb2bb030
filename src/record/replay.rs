//! Replay: answer an invocation from a fixture directory through the same driver as
//! remote execution (`delegate::execute_plan`); only the transport differs.
//!
//! [`ReplayTransport`] hashes the local inputs (nothing is uploaded), looks the
//! invocation key up in `records/`, checks every blob the record names, and serves
//! the outputs from `blobs/`; the delegation's shared writer puts them in place
//! (temporary file, digest check, rename). A miss or an unusable fixture is kept in
//! [`ReplayTransport::failure`] so the caller can map it to exit 66 or 65.
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::format::{FixtureDir, FormatError, Record};
use super::plan;
use crate::config::{Env, MissPolicy, Settings};
use crate::delegate::error::DelegateError;
use crate::delegate::transport::{Job, RemoteOutput, RemoteResult, Transport, UploadStats};
use crate::delegate::{execute_plan, replay_streams};
use crate::store::{hash_file, Digest};
use crate::{env_vars, exit};

/// Why replay could not answer.
#[derive(Debug)]
pub enum ReplayFailure {
    Miss {
        key: String,
        command: String,
        nearest: Option<String>,
    },
    Invalid(FormatError),
}

/// The fixture-directory [`Transport`].
pub struct ReplayTransport {
    pub dir: FixtureDir,
    pub failure: Option<ReplayFailure>,
}

impl ReplayTransport {
    pub fn new(dir: FixtureDir) -> Self {
        Self { dir, failure: None }
    }

    fn fail(&mut self, failure: ReplayFailure) -> DelegateError {
        let text = match &failure {
            ReplayFailure::Miss { key, .. } => format!("replay miss for key {key}"),
            ReplayFailure::Invalid(err) => err.to_string(),
        };
        self.failure = Some(failure);
        DelegateError::TaskFailed(text)
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
                })
                .collect(),
        })
    }
}

impl Transport for ReplayTransport {
    async fn stage_inputs(
        &mut self,
        files: &[PathBuf],
    ) -> Result<(Vec<(Digest, u64)>, UploadStats), DelegateError> {
        let mut staged = Vec::with_capacity(files.len());
        let mut stats = UploadStats::default();
        for file in files {
            let (digest, size) = hash_file(file).await?;
            stats.files += 1;
            stats.bytes += size;
            staged.push((digest, size));
        }
        Ok((staged, stats))
    }

    async fn execute(&mut self, job: &Job<'_>) -> Result<RemoteResult, DelegateError> {
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

    async fn fetch_output(&self, output: &RemoteOutput, dest: &Path) -> Result<(), DelegateError> {
        tokio::fs::copy(&output.location, dest)
            .await
            .map(drop)
            .map_err(|e| {
                DelegateError::Io(format!("copying fixture blob {}: {e}", output.location))
            })
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

/// The shim with `BB_REMOTE_REPLAY=<dir>` set. Returns the exit code.
pub fn run(settings: &Settings, env: &Env, argv: &[OsString], dir: &Path) -> u8 {
    let policy = settings.replay_miss;
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(err) => {
            return super::report(&format!("reading the working directory: {err}"), exit::IO)
        }
    };
    let args = argv.get(1..).unwrap_or_default();
    let chosen = plan::choose(settings, env, args, &cwd);
    let runtime = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let mut transport = ReplayTransport::new(FixtureDir::new(dir));
    let outcome = runtime.block_on(execute_plan(&mut transport, &chosen.plan, &chosen.present));
    drop(runtime);
    match (outcome, transport.failure) {
        (Ok(result), _) => replay_streams(&result),
        (Err(_), Some(ReplayFailure::Invalid(err))) => super::report(
            &format!("replay: fixture unusable: {err}"),
            exit::FIXTURE_INVALID,
        ),
        (
            Err(_),
            Some(ReplayFailure::Miss {
                key,
                command,
                nearest,
            }),
        ) => {
            let shim = super::Shim {
                settings,
                env,
                argv,
            };
            on_miss(policy, &shim, dir, &key, &command, nearest)
        }
        (Err(err), None) => super::report(&err, err.exit_code()),
    }
}

fn on_miss(
    policy: MissPolicy,
    shim: &super::Shim<'_>,
    dir: &Path,
    key: &str,
    command: &str,
    nearest: Option<String>,
) -> u8 {
    let nearest = match nearest {
        Some(n) => format!("nearest recorded {command}: {n}"),
        None => format!("no {command} invocation is recorded there"),
    };
    let what = format!(
        "replay: no fixture for this {command} invocation (key {key}) in {}; {nearest}",
        dir.display()
    );
    match policy {
        MissPolicy::Fail => super::report(
            &format!(
                "{what}\nhelp: record it with {}=<dir>, or set {}=native|remote",
                env_vars::RECORD,
                env_vars::REPLAY_MISS
            ),
            exit::REPLAY_MISS,
        ),
        MissPolicy::Native => {
            eprintln!("bb-remote: warning: {what}; running bb natively");
            super::passthrough(shim.env, shim.argv)
        }
        MissPolicy::Remote if shim.settings.backend.is_some() => {
            eprintln!("bb-remote: warning: {what}; running it on the backend");
            crate::delegate::run(shim.settings, shim.env, shim.argv)
        }
        MissPolicy::Remote => super::report(
            &format!(
                "{what}; {}=remote needs {} to be set",
                env_vars::REPLAY_MISS,
                env_vars::BACKEND
            ),
            exit::CONFIG,
        ),
    }
}

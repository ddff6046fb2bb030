//! Record: the invocation runs as the shim would run it anyway (delegated or native)
//! and is also written to the fixture directory. What the caller sees is unchanged; a
//! failure to record is one warning line on stderr, after bb's own output.
//!
//! - Delegated: the shim wraps the TES transport in [`Recording`], which notes the
//!   input digests and the invocation key as they pass; after the driver has written
//!   the outputs, [`save_delegated`] copies them into blobs from the output directory.
//! - Native: [`record_native`] runs the native bb as a child (`child.rs`); outputs
//!   are the files that appeared or changed in the output location.
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use super::child;
use super::format::{
    FixtureDir, FormatError, Mode, Record, RecordInput, RecordOutput, FORMAT_VERSION,
};
use super::plan::{self, Chosen};
use crate::config::{Env, Settings};
use crate::delegate::key;
use crate::delegate::transport::{
    Fetched, Job, RemoteOutput, RemoteResult, Transport, UploadStats,
};
use crate::error::Error;
use crate::store::Digest;
use crate::{diag, env_vars, native};

/// A transport decorator that notes what passes through it.
pub(crate) struct Recording<T> {
    pub(crate) inner: T,
    pub(crate) staged: Vec<(Digest, u64)>,
    pub(crate) key: Option<String>,
}

impl<T> Recording<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner,
            staged: Vec::new(),
            key: None,
        }
    }
}

impl<T: Transport> Transport for Recording<T> {
    async fn stage_inputs(
        &mut self,
        files: &[PathBuf],
    ) -> Result<(Vec<(Digest, u64)>, UploadStats), Error> {
        let staged = self.inner.stage_inputs(files).await?;
        self.staged = staged.0.clone();
        Ok(staged)
    }

    async fn execute(&mut self, job: &Job<'_>) -> Result<RemoteResult, Error> {
        self.key = Some(job.key.clone());
        self.inner.execute(job).await
    }

    async fn fetch_output(&self, output: &RemoteOutput, dest: &Path) -> Result<Fetched, Error> {
        self.inner.fetch_output(output, dest).await
    }

    async fn abandon(&mut self) -> Result<bool, Error> {
        self.inner.abandon().await
    }
}

/// Write the fixture of a delegated run that went through `transport`.
pub(crate) fn save_delegated<T>(
    fixtures: &FixtureDir,
    chosen: &Chosen,
    result: &RemoteResult,
    transport: &Recording<T>,
    started: Instant,
    settings: &Settings,
) {
    let ran = Ran {
        mode: Mode::Delegated,
        bb_version: Some(format!("image {}", settings.image)),
        started,
    };
    save_driven(fixtures, chosen, result, transport, ran);
}

/// Who ran an invocation that went through the driver, and since when.
pub(crate) struct Ran {
    pub mode: Mode,
    pub bb_version: Option<String>,
    pub started: Instant,
}

/// Write the fixture of a run that went through the driver over `transport`: a
/// delegated one, or a msgpack request the native bb answered (`msgpack::record`).
pub(crate) fn save_driven<T>(
    fixtures: &FixtureDir,
    chosen: &Chosen,
    result: &RemoteResult,
    transport: &Recording<T>,
    ran: Ran,
) {
    let sizes = transport.staged.iter().copied();
    let present = &chosen.prepared.present;
    let done = Done {
        key: transport.key.clone().unwrap_or_default(),
        inputs: present.iter().map(|(i, _)| *i).zip(sizes).collect(),
        mode: ran.mode,
        exit_code: result.exit_code,
        stdout: &result.stdout,
        stderr: &result.stderr,
        outputs: result
            .outputs
            .iter()
            .map(|o| (o.name.clone(), o.digest))
            .collect(),
        wall_time_ms: ran.started.elapsed().as_millis() as u64,
        bb_version: ran.bb_version,
    };
    save(fixtures, chosen, &done);
}

/// Run the native bb as a child, show its streams as they come, and record the run.
/// `None` when the child cannot be run: the caller passes the call through instead.
pub(crate) async fn record_native(
    env: &Env,
    argv: &[OsString],
    chosen: &Chosen,
    fixtures: &FixtureDir,
) -> Option<u8> {
    let plan = &chosen.prepared.plan;
    let inputs = match hash_inputs(chosen) {
        Ok(inputs) => inputs,
        Err(err) => {
            diag::warning(&format_args!("not recording: {err}"));
            return None;
        }
    };
    let mut digests = vec![None; plan.inputs.len()];
    for (index, (digest, _)) in &inputs {
        digests[*index] = Some(*digest);
    }
    let key = key::invocation_key(plan, &digests);
    let out_dir = output_location(chosen);
    let before = out_dir.as_deref().map(snapshot).unwrap_or_default();
    let started = Instant::now();
    let captured = match child::run_native(argv).await {
        Ok(captured) => captured,
        Err(err) => {
            diag::warning(&format_args!(
                "not recording: running the native bb as a child: {err}"
            ));
            return None;
        }
    };
    let wall_time_ms = started.elapsed().as_millis() as u64;
    let changed = out_dir
        .as_deref()
        .map(|dir| changed_files(dir, &before, plan::single_output_name(plan)))
        .unwrap_or_default();
    let done = Done {
        key,
        inputs,
        mode: Mode::Native,
        exit_code: captured.exit_code,
        stdout: &captured.stdout,
        stderr: &captured.stderr,
        outputs: changed,
        wall_time_ms,
        bb_version: native_version(env),
    };
    save(fixtures, chosen, &done);
    Some(crate::exit::of_remote(captured.exit_code))
}

/// (plan index, (digest, size)) of every present input.
fn hash_inputs(chosen: &Chosen) -> Result<BTreeMap<usize, (Digest, u64)>, FormatError> {
    chosen
        .prepared
        .present
        .iter()
        .map(|(index, path)| {
            let bytes = std::fs::read(path).map_err(|source| FormatError::Io {
                path: path.clone(),
                source,
            })?;
            Ok((*index, (Digest::of_bytes(&bytes), bytes.len() as u64)))
        })
        .collect()
}

/// The directory whose changes are the outputs; `None` when bb has no output location.
fn output_location(chosen: &Chosen) -> Option<PathBuf> {
    let out = &chosen.prepared.plan.output_dir;
    let has_output = chosen.delegable || !out.given.is_empty();
    has_output.then(|| PathBuf::from(&out.path))
}

type Snapshot = BTreeMap<String, (u64, Option<SystemTime>)>;

/// Regular files under `dir` (a few levels deep), with size and mtime.
fn snapshot(dir: &Path) -> Snapshot {
    fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Snapshot) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".bb-remote-tmp") {
                continue;
            }
            if meta.is_dir() && depth < 4 {
                walk(root, &path, depth + 1, out);
            } else if meta.is_file() {
                let relative = path.strip_prefix(root).unwrap_or(&path);
                out.insert(
                    relative.to_string_lossy().into_owned(),
                    (meta.len(), meta.modified().ok()),
                );
            }
        }
    }
    let mut out = Snapshot::new();
    walk(dir, dir, 0, &mut out);
    out
}

/// Files that appeared or changed since `before` (only `only`, when given), hashed.
fn changed_files(dir: &Path, before: &Snapshot, only: Option<String>) -> Vec<(String, Digest)> {
    snapshot(dir)
        .into_iter()
        .filter(|(name, meta)| before.get(name) != Some(meta))
        .filter(|(name, _)| only.as_ref().is_none_or(|o| o == name))
        .filter_map(|(name, _)| {
            let bytes = std::fs::read(dir.join(&name)).ok()?;
            Some((name, Digest::of_bytes(&bytes)))
        })
        .collect()
}

/// `bb --version` of a native executable (record mode only: one extra short process).
pub(crate) fn native_version(env: &Env) -> Option<String> {
    let exe = std::env::current_exe().ok();
    match native::locate(env, exe.as_deref()).ok()? {
        native::NativeTarget::Bin { path, .. } => {
            let out = std::process::Command::new(path)
                .arg(crate::grammar::VERSION_FLAG)
                .env(env_vars::RECURSION_GUARD, "1")
                .stdin(std::process::Stdio::null())
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (out.status.success() && !text.is_empty()).then_some(text)
        }
        native::NativeTarget::Lib { path, .. } => Some(format!("library {}", path.display())),
    }
}

/// A finished invocation, ready to be written.
struct Done<'a> {
    key: String,
    inputs: BTreeMap<usize, (Digest, u64)>,
    mode: Mode,
    exit_code: i32,
    stdout: &'a [u8],
    stderr: &'a [u8],
    /// (name relative to the output directory, digest the run reported).
    outputs: Vec<(String, Digest)>,
    wall_time_ms: u64,
    bb_version: Option<String>,
}

/// Write the record, or warn: recording never changes the caller's result.
fn save(fixtures: &FixtureDir, chosen: &Chosen, done: &Done<'_>) {
    if let Err(err) = try_save(fixtures, chosen, done) {
        diag::warning(&format_args!(
            "could not record this invocation into {}: {err}",
            fixtures.root().display()
        ));
    }
}

fn try_save(fixtures: &FixtureDir, chosen: &Chosen, done: &Done<'_>) -> Result<(), FormatError> {
    let plan = &chosen.prepared.plan;
    let out_dir = Path::new(&plan.output_dir.path);
    let mut outputs = Vec::new();
    for (name, digest) in &done.outputs {
        let path = out_dir.join(name);
        let blob = fixtures.put_file(&path)?;
        if blob.sha256 != *digest {
            return Err(FormatError::Malformed {
                path,
                reason: "changed while it was being recorded".into(),
            });
        }
        outputs.push(RecordOutput {
            name: name.clone(),
            sha256: blob.sha256,
            size: blob.size,
        });
    }
    let inputs = plan
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| RecordInput {
            role: input.role.clone(),
            name: input.given.clone(),
            source: input.source,
            sha256: done.inputs.get(&i).map(|(d, _)| *d),
            size: done.inputs.get(&i).map(|(_, s)| *s),
        })
        .collect();
    let record = Record {
        format_version: FORMAT_VERSION,
        key: done.key.clone(),
        mode: done.mode,
        generation: plan.generation,
        command: plan.command.clone(),
        argv: plan.argv.clone(),
        inputs,
        outputs,
        stdout: fixtures.put_bytes(done.stdout)?,
        stderr: fixtures.put_bytes(done.stderr)?,
        exit_code: done.exit_code,
        wall_time_ms: done.wall_time_ms,
        bb_version: done.bb_version.clone(),
        recorded_at: chrono::Utc::now().to_rfc3339(),
    };
    fixtures.put_record(&record)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_files_are_new_or_modified_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kept"), b"same").unwrap();
        std::fs::write(dir.path().join("rewritten"), b"old").unwrap();
        let before = snapshot(dir.path());
        std::fs::write(dir.path().join("rewritten"), b"newer").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/vk"), b"vk").unwrap();
        std::fs::write(dir.path().join(".bb-remote-tmp-1-0"), b"x").unwrap();
        let changed = changed_files(dir.path(), &before, None);
        let names: Vec<&str> = changed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["rewritten", "sub/vk"]);
        assert_eq!(changed[1].1, Digest::of_bytes(b"vk"));
        let only = changed_files(dir.path(), &before, Some("sub/vk".into()));
        assert_eq!(only.len(), 1);
    }
}

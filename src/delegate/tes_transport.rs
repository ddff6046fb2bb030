//! The TES + object store [`Transport`]: inputs to `<store>/cas/sha256/<hex>`, one
//! task per invocation (idempotent), outputs fetched from the store.
//!
//! Idempotent submission: before creating, and again before each retry of a create
//! whose answer was lost, list the tasks tagged with our invocation key and image. A
//! live one (QUEUED, INITIALIZING, RUNNING, PAUSED) is reused; so is any task carrying
//! this invocation's own attempt tag (a create that succeeded on the server although
//! its response never arrived, even if it already finished). So a retry never runs
//! a proof twice.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};

use super::error::DelegateError;
use super::signals::Signals;
use super::task::{build_task, OUT_DIR, TAG_ATTEMPT, TAG_IMAGE, TAG_KEY};
use super::transport::{Job, RemoteOutput, RemoteResult, Transport, UploadStats};
use super::wait;
use crate::store::{Digest, Store};
use crate::tes::client::{ListQuery, TesClient};
use crate::tes::types::{Resources, State, Task, View};

/// Files hashed and uploaded at once.
const UPLOAD_PARALLELISM: usize = 4;

pub struct TesTransport {
    pub client: TesClient,
    pub store: Store,
    pub image: String,
    pub resources: Resources,
    pub timeout: Duration,
    /// Unique to this shim invocation (see `task.rs`).
    pub attempt: String,
}

impl Transport for TesTransport {
    async fn stage_inputs(
        &mut self,
        files: &[PathBuf],
    ) -> Result<(Vec<(Digest, u64)>, UploadStats), DelegateError> {
        let outcomes = self.store.upload_many(files, UPLOAD_PARALLELISM).await?;
        let mut stats = UploadStats::default();
        for o in &outcomes {
            stats.files += 1;
            stats.bytes += o.size;
            if o.uploaded {
                stats.files_sent += 1;
                stats.bytes_sent += o.size;
            }
        }
        // The operator's view of what moved; printed here, not by the driver, because
        // only this transport uploads (replay must add nothing to bb's stderr).
        eprintln!(
            "bb-remote: inputs: {} files, {} bytes; uploaded {} files, {} bytes",
            stats.files, stats.bytes, stats.files_sent, stats.bytes_sent
        );
        Ok((outcomes.iter().map(|o| (o.digest, o.size)).collect(), stats))
    }

    async fn execute(&mut self, job: &Job<'_>) -> Result<RemoteResult, DelegateError> {
        let task = build_task(
            job,
            &self.store,
            &self.image,
            &self.attempt,
            self.resources.clone(),
        )
        .map_err(|e| DelegateError::Io(format!("building the task: {e}")))?;
        // Installed before submitting, so no signal slips between submit and wait.
        let mut signals = Signals::install()
            .map_err(|e| DelegateError::Io(format!("installing signal handlers: {e}")))?;
        let started = Instant::now();
        let id = self.submit(&task, &job.key).await?;
        let waited =
            wait::until_terminal(&self.client, &id, started, self.timeout, &mut signals).await;
        let state = match waited {
            Ok(state) => state,
            Err(err) => {
                if let DelegateError::Interrupted(_) = err {
                    signals.escalate_on_second();
                }
                if !matches!(err, DelegateError::Unavailable(_)) {
                    if let Err(cancel) = self.client.cancel_task(&id).await {
                        eprintln!("bb-remote: warning: could not cancel task {id}: {cancel}");
                    }
                }
                return Err(err);
            }
        };
        let full = self.client.get_task(&id, View::Full).await?;
        result_of(&id, state, &full)
    }

    async fn fetch_output(&self, output: &RemoteOutput, dest: &Path) -> Result<(), DelegateError> {
        let (Some(dir), Some(name)) = (dest.parent(), dest.file_name().and_then(|n| n.to_str()))
        else {
            return Err(DelegateError::Io(format!(
                "bad temporary path {}",
                dest.display()
            )));
        };
        self.store
            .download_url_verified(&output.location, dir, name, &output.digest)
            .await?;
        Ok(())
    }
}

impl TesTransport {
    /// Create the task, or find the one already created for this invocation.
    async fn submit(&self, task: &Task, key: &str) -> Result<String, DelegateError> {
        if let Some(id) = self.find_existing(key).await? {
            eprintln!("bb-remote: reusing live task {id} for the same invocation");
            return Ok(id);
        }
        let policy = *self.client.retry_policy();
        let mut delays = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_attempts.saturating_sub(1))
            .with_total_delay(Some(policy.max_total_delay))
            .build();
        loop {
            let err = match self.client.create_task(task).await {
                Ok(id) => return Ok(id),
                Err(err) if err.is_retryable() => err,
                Err(err) => return Err(err.into()),
            };
            let Some(delay) = delays.next() else {
                return Err(err.into());
            };
            tracing::warn!(error = %err, ?delay, "creating the task failed; retrying");
            tokio::time::sleep(delay).await;
            // The create may have reached the server although its answer did not.
            if let Some(id) = self.find_existing(key).await? {
                return Ok(id);
            }
        }
    }

    /// A task of this invocation (our attempt tag) or a live one with the same key.
    async fn find_existing(&self, key: &str) -> Result<Option<String>, DelegateError> {
        let mut query = ListQuery {
            tags: vec![
                (TAG_KEY.to_owned(), key.to_owned()),
                (TAG_IMAGE.to_owned(), self.image.clone()),
            ],
            view: View::Basic,
            ..ListQuery::default()
        };
        loop {
            let page = self.client.list_tasks(&query).await?;
            for task in &page.tasks {
                let live = matches!(
                    task.state,
                    Some(State::Queued | State::Initializing | State::Running | State::Paused)
                );
                let ours = task.tags.get(TAG_ATTEMPT) == Some(&self.attempt);
                if live || ours {
                    if let Some(id) = &task.id {
                        return Ok(Some(id.clone()));
                    }
                }
            }
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(token) => query.page_token = Some(token),
                None => return Ok(None),
            }
        }
    }
}

/// The caller-visible result of a finished task (FULL view).
fn result_of(id: &str, state: State, task: &Task) -> Result<RemoteResult, DelegateError> {
    let log = task.logs.last();
    match state {
        State::Complete | State::ExecutorError => {}
        State::SystemError => {
            let why = log.map(|l| l.system_logs.join("; ")).unwrap_or_default();
            return Err(DelegateError::TaskFailed(format!(
                "task {id} failed on the backend (SYSTEM_ERROR): {why}"
            )));
        }
        other => {
            return Err(DelegateError::TaskFailed(format!(
                "task {id} ended {other} without running bb to completion"
            )))
        }
    }
    let bad = |why: String| DelegateError::BadOutputs(format!("task {id}: {why}"));
    let log = log.ok_or_else(|| bad("no task log".into()))?;
    let exec = log
        .logs
        .last()
        .ok_or_else(|| bad("no executor log".into()))?;
    let mut outputs = Vec::new();
    for file in &log.outputs {
        let name = file
            .path
            .strip_prefix(OUT_DIR)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| bad(format!("output {:?} is outside {OUT_DIR}", file.path)))?;
        let digest_hex = log
            .metadata
            .get(&format!("sha256:{}", file.path))
            .ok_or_else(|| bad(format!("no sha256 recorded for output {}", file.path)))?;
        let digest = digest_hex
            .parse::<Digest>()
            .map_err(|e| bad(format!("output {}: {e}", file.path)))?;
        let size = file
            .size_bytes
            .parse::<u64>()
            .map_err(|_| bad(format!("output {}: bad size_bytes", file.path)))?;
        outputs.push(RemoteOutput {
            name: name.to_owned(),
            digest,
            size,
            location: file.url.clone(),
        });
    }
    Ok(RemoteResult {
        exit_code: exec.exit_code,
        stdout: exec.stdout.clone().unwrap_or_default().into_bytes(),
        stderr: exec.stderr.clone().unwrap_or_default().into_bytes(),
        outputs,
    })
}

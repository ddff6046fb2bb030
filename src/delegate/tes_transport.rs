//! The TES + object store [`Transport`]: inputs to `<store>/cas/sha256/<hex>`, one
//! task per invocation (idempotent), outputs fetched from the store.
//!
//! Idempotent submission: before creating, and again before each retry of a create
//! whose answer was lost, list the tasks tagged with our invocation key and image. A
//! live one (QUEUED, INITIALIZING, RUNNING, PAUSED) is reused, and so is any task
//! carrying this invocation's own attempt tag (a create that succeeded on the server
//! although its response never arrived, even if it already finished), but only when
//! its full spec is exactly the task this shim would create ([`reuse`]): a task that
//! merely carries the key tag may run anything. So a retry never runs a proof twice,
//! and nobody can slip us a forged result.
//!
//! Cancellation: a caller cancels only a task it created itself (on SIGINT/SIGTERM or
//! timeout); a reused task belongs to another caller who may still wait on it. A task
//! that ends CANCELED without this caller having asked (its creator was interrupted,
//! or an operator cancelled it) is submitted again, once, as this caller's own.
mod reuse;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use backon::BackoffBuilder;

use super::signals::Signals;
use super::task::{build_task, Engine, TaskSpec, TAG_ATTEMPT, TAG_IMAGE, TAG_KEY};
use super::task_result::result_of;
use super::transport::{Fetched, Job, RemoteOutput, RemoteResult, Transport, UploadStats};
use super::wait;
use crate::config::RemoteSide;
use crate::error::Error;
use crate::store::{Digest, Store};
use crate::tes::client::{ListQuery, TesClient};
use crate::tes::types::{Resources, State, Task, View};

/// The reference worker's service-info id (see `worker/api.rs`).
const REFERENCE_WORKER_ID: &str = "dev.bb-remote.worker";

/// Files hashed and uploaded at once.
const UPLOAD_PARALLELISM: usize = 4;
/// Tasks with our key whose FULL view is fetched and compared, at most.
const MAX_REUSE_CANDIDATES: usize = 8;

pub(crate) struct TesTransport {
    pub(crate) client: TesClient,
    pub(crate) store: Store,
    pub(crate) image: String,
    pub(crate) resources: Resources,
    pub(crate) timeout: Duration,
    /// Unique to this shim invocation (see `task.rs`).
    pub(crate) attempt: String,
    /// `None`: SIGINT/SIGTERM cancel the task. `Some`: signals are the caller's
    /// business, and a `true` here cancels the task (the msgpack client went away).
    pub(crate) cancel: Option<tokio::sync::watch::Receiver<bool>>,
    /// The task this caller created (never one it reused), for [`Transport::abandon`]
    /// when a signal or the whole-call timeout drops `execute` part way.
    pub(crate) created: Option<String>,
    /// bb, CRS and forwarded variables on the remote side.
    pub(crate) side: RemoteSide,
    /// `executor.env`: the allowlisted variables that are set.
    pub(crate) env: BTreeMap<String, String>,
    /// The caller's working directory (its paths become the container's where possible).
    pub(crate) cwd: Option<PathBuf>,
    /// Which kind of engine the backend is: known at the start of `execute`.
    pub(crate) engine: Engine,
    /// The answer to that question, asked while the inputs upload (`stage_inputs`).
    pub(crate) engine_asked: Option<Result<Engine, Error>>,
}

/// The task this caller waits on, and whether it created it (only then may it cancel).
struct Submitted {
    id: String,
    created: bool,
}

impl Transport for TesTransport {
    async fn stage_inputs(
        &mut self,
        files: &[PathBuf],
    ) -> Result<(Vec<(Digest, u64)>, UploadStats), Error> {
        let began = Instant::now();
        // The backend's kind is asked meanwhile, one round trip less before the
        // create. Its answer (or error) is used by `execute`; a failed upload does
        // not wait for it.
        let (outcomes, engine) = futures::future::try_join(
            async { Ok(self.store.upload_many(files, UPLOAD_PARALLELISM).await?) },
            async { Ok::<_, Error>(self.ask_engine().await) },
        )
        .await?;
        self.engine_asked = Some(engine);
        tracing::debug!(ms = ms(began), "inputs hashed and stored");
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
        crate::diag::note(&format_args!(
            "inputs: {} files, {} bytes; uploaded {} files, {} bytes",
            stats.files, stats.bytes, stats.files_sent, stats.bytes_sent
        ));
        Ok((outcomes.iter().map(|o| (o.digest, o.size)).collect(), stats))
    }

    async fn execute(&mut self, job: &Job<'_>) -> Result<RemoteResult, Error> {
        // Installed before submitting, so no signal slips between submit and wait.
        let mut signals = match &self.cancel {
            Some(cancel) => Signals::on_cancel(cancel.clone()),
            None => {
                Signals::install().map_err(|e| Error::local_io("installing signal handlers", e))?
            }
        };
        let started = Instant::now();
        self.engine = match self.engine_asked.take() {
            Some(asked) => asked?,
            None => self.ask_engine().await?,
        };
        let out_dir = build_task(job, &self.spec(&self.attempt))
            .map_err(Error::BuildTask)?
            .1;
        let mut task = self.task_for(job, &self.attempt)?;
        let mut submitted = self.submit(job, &task, true).await?;
        tracing::debug!(
            ms = ms(started),
            created = submitted.created,
            "task submitted"
        );
        if submitted.created {
            self.created = Some(submitted.id.clone());
        }
        let mut resubmitted = false;
        let state = loop {
            let waited = wait::until_terminal(
                &self.client,
                &submitted.id,
                started,
                self.timeout,
                &mut signals,
            )
            .await;
            match waited {
                // Nobody here asked for it: the creator gave up, or an operator stepped
                // in. Run it as our own, once; a second cancellation is final.
                Ok(State::Canceled) if !resubmitted => {
                    resubmitted = true;
                    crate::diag::note(&format_args!(
                        "task {} was cancelled by someone else; submitting it again",
                        submitted.id
                    ));
                    task = self.task_for(job, &format!("{}-r", self.attempt))?;
                    submitted = self.submit(job, &task, false).await?;
                    if submitted.created {
                        self.created = Some(submitted.id.clone());
                    }
                }
                Ok(state) => break state,
                Err(err) => {
                    if let Error::Interrupted(_) = err {
                        signals.escalate_on_second();
                    }
                    // An unreachable backend cannot take a cancel either.
                    let unreachable = matches!(&err, Error::Tes(e) if e.is_retryable());
                    let cancel = submitted.created && !unreachable;
                    if cancel {
                        if let Err(e) = self.client.cancel_task(&submitted.id).await {
                            crate::diag::warning(&format_args!(
                                "could not cancel task {}: {e}",
                                submitted.id
                            ));
                        }
                    }
                    return Err(err);
                }
            }
        };
        tracing::debug!(ms = ms(started), "task ended");
        let full = self.client.get_task(&submitted.id, View::Full).await?;
        tracing::debug!(ms = ms(started), "task result read");
        result_of(
            &self.store,
            &submitted.id,
            state,
            &full,
            self.engine,
            &out_dir,
        )
        .await
    }

    async fn fetch_output(&self, output: &RemoteOutput, dest: &Path) -> Result<Fetched, Error> {
        let began = Instant::now();
        let (digest, size) = match &output.inline {
            // Hashed and checked against `digest` when the task log was read
            // (`task_result`): only written here.
            Some(bytes) => {
                write_new(dest, bytes).await?;
                (output.digest, bytes.len() as u64)
            }
            None => {
                self.store
                    .download_to(&output.location, dest, &output.digest, output.size)
                    .await?
            }
        };
        tracing::debug!(ms = ms(began), output = %output.name, "output fetched");
        Ok(Fetched::Hashed { digest, size })
    }

    async fn abandon(&mut self) -> Result<bool, Error> {
        let Some(id) = self.created.take() else {
            return Ok(false);
        };
        self.client.cancel_task(&id).await?;
        Ok(true)
    }
}

impl TesTransport {
    /// The task this shim creates for `job` under `attempt`.
    fn task_for(&self, job: &Job<'_>, attempt: &str) -> Result<Task, Error> {
        build_task(job, &self.spec(attempt))
            .map(|(task, _)| task)
            .map_err(Error::BuildTask)
    }

    fn spec<'a>(&'a self, attempt: &'a str) -> TaskSpec<'a> {
        TaskSpec {
            store: &self.store,
            image: &self.image,
            attempt,
            resources: self.resources.clone(),
            side: &self.side,
            env: self.env.clone(),
            cwd: self.cwd.as_deref(),
            engine: self.engine,
        }
    }

    /// The reference worker says so in its service-info; anything else, including a
    /// backend without service-info, is a generic engine.
    async fn ask_engine(&self) -> Result<Engine, Error> {
        match self.client.service_info().await {
            Ok(info) if info.id == REFERENCE_WORKER_ID => Ok(Engine::ReferenceWorker),
            Ok(_) => Ok(Engine::Generic),
            Err(err) if err.is_retryable() => Err(err.into()),
            Err(err) => {
                tracing::debug!(error = %err, "no usable service-info; a generic TES engine");
                Ok(Engine::Generic)
            }
        }
    }

    /// Create `task`, or find the one already created for this invocation (any
    /// caller's when `reuse_live`, else only our own lost create).
    async fn submit(
        &self,
        job: &Job<'_>,
        task: &Task,
        reuse_live: bool,
    ) -> Result<Submitted, Error> {
        let began = Instant::now();
        let found = self.find_existing(job, task, reuse_live).await?;
        tracing::debug!(ms = ms(began), "looked for a live task");
        if let Some(found) = found {
            if !found.created {
                crate::diag::note(&format_args!(
                    "reusing live task {} for the same invocation",
                    found.id
                ));
            }
            return Ok(found);
        }
        let mut delays = self.client.retry_policy().backoff().build();
        loop {
            let err = match self.client.create_task(task).await {
                Ok(id) => return Ok(Submitted { id, created: true }),
                Err(err) if err.is_retryable() => err,
                Err(err) => return Err(err.into()),
            };
            let Some(delay) = delays.next() else {
                return Err(err.into());
            };
            tracing::warn!(error = %err, ?delay, "creating the task failed; retrying");
            tokio::time::sleep(delay).await;
            // The create may have reached the server although its answer did not.
            if let Some(found) = self.find_existing(job, task, false).await? {
                return Ok(found);
            }
        }
    }

    /// A task with `ours`'s attempt tag (our own create), or, when `reuse_live`, a
    /// live one of another caller; either only if its spec is exactly what we would
    /// have created ([`reuse::same_spec`]).
    async fn find_existing(
        &self,
        job: &Job<'_>,
        ours: &Task,
        reuse_live: bool,
    ) -> Result<Option<Submitted>, Error> {
        let our_attempt = ours.tags.get(TAG_ATTEMPT);
        let query = ListQuery {
            tags: vec![
                (TAG_KEY.to_owned(), job.key.clone()),
                (TAG_IMAGE.to_owned(), self.image.clone()),
            ],
            view: lookup_view(reuse_live),
            ..ListQuery::default()
        };
        let mut kept = 0;
        let candidates = self
            .client
            .list_all_tasks(&query, |task| {
                let live = matches!(
                    task.state,
                    Some(State::Queued | State::Initializing | State::Running | State::Paused)
                );
                let mine = task.tags.get(TAG_ATTEMPT) == our_attempt;
                let wanted = (mine || reuse_live && live)
                    && task.id.is_some()
                    && kept < MAX_REUSE_CANDIDATES;
                kept += usize::from(wanted);
                wanted
            })
            .await?;
        for candidate in candidates {
            let id = candidate.id.unwrap_or_default();
            let full = self.client.get_task(&id, View::Full).await?;
            let Some(attempt) = reuse::attempt_of(&full) else {
                crate::diag::warning(&format_args!(
                    "not reusing task {id}: it has no valid attempt tag"
                ));
                continue;
            };
            let expected = self.task_for(job, attempt)?;
            match reuse::same_spec(&expected, &full) {
                Ok(()) => {
                    let created = Some(&attempt.to_owned()) == our_attempt;
                    return Ok(Some(Submitted { id, created }));
                }
                Err(why) => crate::diag::warning(&format_args!(
                    "not reusing task {id}, which carries this invocation's key: {why}"
                )),
            }
        }
        Ok(None)
    }
}

/// The view a lookup lists tasks in. Looking for a live task (the first lookup, before
/// this invocation created anything, so no task can carry its attempt tag) needs only
/// each task's id and state: MINIMAL. Why: every earlier run of the same invocation
/// stays listed under its key, and their BASIC views (inputs, outputs, tags) made the
/// list grow by a few kB per run. A lookup for our own lost create reads the tags.
fn lookup_view(reuse_live: bool) -> View {
    if reuse_live {
        View::Minimal
    } else {
        View::Basic
    }
}

/// Write `bytes` into `dest`, a file that must not exist yet.
async fn write_new(dest: &Path, bytes: &[u8]) -> Result<(), Error> {
    use tokio::io::AsyncWriteExt;
    let failed = |e| Error::local_io(format!("writing {}", dest.display()), e);
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .await
        .map_err(failed)?;
    file.write_all(bytes).await.map_err(failed)?;
    file.flush().await.map_err(failed)
}

/// Milliseconds since `since`, for the phase timings at debug level.
fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lookup_for_our_own_create_lists_tags() {
        assert_eq!(lookup_view(true), View::Minimal);
        assert_eq!(lookup_view(false), View::Basic);
    }
}

//! Running one admitted task from start to finish.
//!
//! QUEUED -> INITIALIZING (sandbox, inputs) -> RUNNING (each executor in turn: bb,
//! or the built-in `cat` of `builtin.rs`) ->
//! outputs uploaded -> COMPLETE; or EXECUTOR_ERROR (an executor exited non-zero
//! without `ignore_error`), CANCELED, or SYSTEM_ERROR (anything on the worker's side,
//! with a line in `system_logs` saying what). The sandbox is deleted at the end
//! whatever the outcome. Outputs are uploaded only when every executor succeeded
//! (a failed bb's partial files are not results). Each executor log keeps the last [`TAIL_BYTES`] of stdout
//! and of stderr; the full streams go to the executor's `stdout`/`stderr` paths if
//! the task names them.
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use super::admission::Demand;
use super::builtin;
use super::confine;
use super::db::{now_rfc3339, DbError};
use super::files;
use super::process::{self, Ended, Spawn};
use super::progress::{set_state, Pending, Steps};
use super::sandbox::Sandbox;
use super::service::{Stop, Worker};
use crate::tes::types::{ExecutorLog, State, Task, TaskLog};

/// How much of each captured stream is kept in the task log.
pub(crate) const TAIL_BYTES: u64 = 64 * 1024;

/// Run task `id` (already admitted with `demand`) and record the outcome.
pub(crate) async fn run(worker: Arc<Worker>, id: String, demand: Demand) {
    let started = Instant::now();
    let mut stop = worker.stop_receiver(&id);
    let sandbox = Sandbox::new(worker.config.sandboxes_dir.join(&id));
    let outcome = run_task(&worker, &id, &sandbox, &mut stop).await;
    let seconds = started.elapsed().as_secs_f64();
    let state = match outcome {
        Ok(state) => state,
        Err(err) => {
            tracing::error!(task = %id, "could not record the task's end: {err}");
            Some(State::SystemError)
        }
    };
    if let Some(state) = state {
        tracing::info!(task = %id, %state, seconds, "task ended");
    }
    worker.finished(&id, demand, state.map(|s| (s, seconds)));
    // The files of the sandbox set aside before the end was recorded; also the sandbox
    // itself on the paths that end early (shutdown, errors recording the state).
    let dirs = [sandbox.dir.clone(), worker.config.discard_dir.join(&id)];
    let _ = tokio::task::spawn_blocking(move || dirs.iter().for_each(remove_dir)).await;
    if let Err(err) = worker.trim_cache().await {
        tracing::warn!("{err}");
    }
}

fn remove_dir(dir: &std::path::PathBuf) {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!("removing {}: {e}", dir.display());
        }
        _ => {}
    }
}

/// Take the sandbox out of `sandboxes/` before the task's end is recorded, so a client
/// that sees the task end finds the worker done with it. One rename into the discard
/// directory does it; its files are deleted after the end is recorded (`run`): a few
/// dozen unlinks, each of which can wait milliseconds for the file system's journal
/// on a busy disk. If the rename fails, the sandbox is deleted in place.
async fn set_aside(worker: &Worker, sandbox: &Sandbox, id: &str) {
    let from = sandbox.dir.clone();
    let to = worker.config.discard_dir.join(id);
    let _ = tokio::task::spawn_blocking(move || match std::fs::rename(&from, &to) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !from.exists() => {}
        Err(_) => remove_dir(&from),
    })
    .await;
}

/// The task's final state, or None if this run did not decide it (shut down before
/// it started, so it stays QUEUED for the next start; or cancelled while queued).
async fn run_task(
    worker: &Worker,
    id: &str,
    sandbox: &Sandbox,
    stop: &mut watch::Receiver<Stop>,
) -> Result<Option<State>, DbError> {
    let mut steps = Steps::new(id);
    let initial = *stop.borrow();
    if initial == Stop::Shutdown {
        return Ok(None);
    }
    let mut log = TaskLog {
        start_time: Some(now_rfc3339()),
        ..TaskLog::default()
    };
    let first = if initial == Stop::Cancel {
        State::Canceled
    } else {
        State::Initializing
    };
    let Some(task) = set_state(worker, id, first, Some(&log), true, first.is_terminal()).await?
    else {
        return Ok(None);
    };
    if first == State::Canceled {
        return Ok(Some(State::Canceled));
    }
    steps.done("INITIALIZING recorded");
    // Keep the creation notes merged into this attempt's log in later updates.
    if let Some(stored) = task.logs.last() {
        log.system_logs.clone_from(&stored.system_logs);
    }
    let state = match execute(worker, &task, sandbox, stop, &mut log, &mut steps).await {
        Ok(state) => state,
        Err(message) => {
            let message = crate::diag::mask(&message);
            tracing::warn!(task = %id, "system error: {message}");
            log.system_logs.push(message);
            State::SystemError
        }
    };
    set_aside(worker, sandbox, id).await;
    steps.done("sandbox set aside");
    log.end_time = Some(now_rfc3339());
    set_state(worker, id, state, Some(&log), false, true).await?;
    steps.done("end recorded");
    Ok(Some(state))
}

/// Inputs, executors, outputs. An `Err` is a system error message.
async fn execute(
    worker: &Worker,
    task: &Task,
    sandbox: &Sandbox,
    stop: &mut watch::Receiver<Stop>,
    log: &mut TaskLog,
    steps: &mut Steps<'_>,
) -> Result<State, String> {
    let config = &worker.config;
    let _ = tokio::fs::remove_dir_all(&sandbox.dir).await;
    tokio::select! {
        done = files::materialize(task, sandbox, &config.store, &config.cache) => done?,
        reason = stop.wait_for(|s| *s != Stop::Keep) => {
            return stopped(reason.map(|r| *r).unwrap_or(Stop::Shutdown));
        }
    }
    steps.done("inputs staged");
    let id = task.id.as_deref().unwrap_or_default();
    // RUNNING is written durably, but its fsync overlaps building the Landlock ruleset
    // and starting bb instead of delaying them. It is awaited right after the first
    // process starts and in any case before this function returns, so no output leaves
    // the sandbox and no end state is written before RUNNING is on disk. A crash
    // before that leaves the task QUEUED (it runs again), after it SYSTEM_ERROR.
    let mut running: Option<Pending<'_>> = Some(Box::pin(set_state(
        worker,
        id,
        State::Running,
        None,
        false,
        true,
    )));
    let outcome = executors(worker, task, sandbox, stop, log, steps, &mut running).await;
    if let Some(pending) = running.take() {
        pending.await.map_err(|e| e.to_string())?;
    }
    outcome
}

/// Each executor in turn, then the outputs; `running` is the RUNNING commit, awaited
/// once the first process has started (`execute`).
async fn executors(
    worker: &Worker,
    task: &Task,
    sandbox: &Sandbox,
    stop: &mut watch::Receiver<Stop>,
    log: &mut TaskLog,
    steps: &mut Steps<'_>,
    running: &mut Option<Pending<'_>>,
) -> Result<State, String> {
    let config = &worker.config;
    let id = task.id.as_deref().unwrap_or_default();
    for (i, executor) in task.executors.iter().enumerate() {
        if builtin::is_cat(executor) {
            let mut entry = ExecutorLog {
                start_time: Some(now_rfc3339()),
                ..ExecutorLog::default()
            };
            let joined = builtin::run_cat(task, executor, sandbox).await;
            entry.end_time = Some(now_rfc3339());
            entry.exit_code = i32::from(joined.is_err());
            entry.stderr = joined.err();
            let failed = entry.exit_code != 0;
            log.logs.push(entry);
            if failed && !executor.ignore_error.unwrap_or(false) {
                return Ok(State::ExecutorError);
            }
            continue;
        }
        let bb = worker
            .rules()
            .bb_for(&executor.image)
            .ok_or_else(|| format!("image {:?} is no longer served", executor.image))?;
        let map = |path: &Option<String>, what: &str| {
            path.as_deref()
                .map(|p| sandbox.map(p, &format!("executors[{i}].{what}")))
                .transpose()
                .map_err(|e| e.to_string())
        };
        let workdir = executor.workdir.as_deref().unwrap_or("/");
        let argv = sandbox
            .rewrite_argv(&executor.command, workdir, &bb, &config.crs_dir)
            .map_err(|e| e.to_string())?;
        let spec = Spawn {
            argv: &argv,
            workdir: map(&executor.workdir, "workdir")?.unwrap_or_else(|| sandbox.root()),
            env: &executor.env,
            home: &config.home_dir,
            stdin: map(&executor.stdin, "stdin")?,
            stdout: sandbox.capture_path(&format!("stdout.{i}")),
            stderr: sandbox.capture_path(&format!("stderr.{i}")),
        };
        tokio::fs::create_dir_all(&spec.workdir)
            .await
            .map_err(|e| format!("creating workdir: {e}"))?;
        tracing::debug!(task = %id, ?argv, "starting executor {i}");
        let mut entry = ExecutorLog {
            start_time: Some(now_rfc3339()),
            ..ExecutorLog::default()
        };
        let confinement = config
            .confine
            .then(|| {
                let read = [config.crs_dir.as_path(), config.home_dir.as_path()];
                let policy = confine::Policy {
                    bb: &bb,
                    read: &read,
                    write: &sandbox.dir,
                };
                confine::ruleset(&policy).map_err(|e| e.to_string())
            })
            .transpose()?;
        steps.done("Landlock ruleset built");
        let child =
            process::spawn(&spec, confinement).map_err(|e| format!("starting {}: {e}", argv[0]))?;
        steps.done("bb started (fork, exec)");
        if let Some(pending) = running.take() {
            if let Err(err) = pending.await {
                process::kill(child).await;
                return Err(format!("recording the task as RUNNING: {err}"));
            }
            steps.done("RUNNING recorded (overlapping bb)");
        }
        let ended = process::wait(child, stop, config.kill_grace)
            .await
            .map_err(|e| format!("waiting for {}: {e}", argv[0]))?;
        steps.done("bb ran");
        entry.end_time = Some(now_rfc3339());
        let streams = [
            (spec.stdout.clone(), map(&executor.stdout, "stdout")?),
            (spec.stderr.clone(), map(&executor.stderr, "stderr")?),
        ];
        let [stdout, stderr] = tokio::task::spawn_blocking(move || streams.map(capture))
            .await
            .map_err(|e| e.to_string())?;
        entry.stdout = Some(stdout?);
        entry.stderr = Some(stderr?);
        steps.done("streams captured");
        match ended {
            Ended::Exited(code) => {
                entry.exit_code = code;
                log.logs.push(entry);
                if code != 0 && !executor.ignore_error.unwrap_or(false) {
                    // The failed run's other files are not results, but its stdout and
                    // stderr go up whole where the task asked for them: the log keeps
                    // only a tail, as text, which loses non-UTF-8 bytes.
                    let captures: Vec<&str> = [&executor.stdout, &executor.stderr]
                        .into_iter()
                        .flatten()
                        .map(String::as_str)
                        .collect();
                    let uploaded =
                        files::upload_outputs(task, sandbox, worker, log, Some(&captures)).await;
                    if let Err(err) = uploaded {
                        tracing::warn!(task = %id, "uploading a failed executor's output: {err}");
                    }
                    return Ok(State::ExecutorError);
                }
            }
            Ended::Stopped(reason) => {
                entry.exit_code = -1;
                log.logs.push(entry);
                return stopped(reason);
            }
        }
    }
    files::upload_outputs(task, sandbox, worker, log, None).await?;
    steps.done("outputs uploaded");
    Ok(State::Complete)
}

fn stopped(reason: Stop) -> Result<State, String> {
    match reason {
        Stop::Shutdown => Err("the worker shut down while this task was running".into()),
        Stop::Cancel | Stop::Keep => Ok(State::Canceled),
    }
}

/// One captured stream: its tail for the task log, after copying it whole to the
/// executor's `stdout`/`stderr` path if the task names one. Blocking (a few small
/// file calls, made in one thread hop for both streams).
fn capture(
    (captured, dest): (std::path::PathBuf, Option<std::path::PathBuf>),
) -> Result<String, String> {
    if let Some(dest) = dest {
        if let Some(parent) = dest.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::copy(&captured, &dest).map_err(|e| format!("writing {}: {e}", dest.display()))?;
    }
    Ok(process::tail(&captured, TAIL_BYTES))
}

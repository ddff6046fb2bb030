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
use super::db::now_rfc3339;
use super::files;
use super::process::{self, Ended, Spawn};
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
    // Also on the paths that end early (shutdown, errors recording the state).
    remove_sandbox(&sandbox).await;
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
    if let Err(err) = worker.trim_cache().await {
        tracing::warn!("{err}");
    }
}

async fn remove_sandbox(sandbox: &Sandbox) {
    let dir = sandbox.dir.clone();
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
}

/// The task's final state, or None if this run did not decide it (shut down before
/// it started, so it stays QUEUED for the next start; or cancelled while queued).
async fn run_task(
    worker: &Worker,
    id: &str,
    sandbox: &Sandbox,
    stop: &mut watch::Receiver<Stop>,
) -> Result<Option<State>, super::db::DbError> {
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
    // Keep the creation notes merged into this attempt's log in later updates.
    if let Some(stored) = task.logs.last() {
        log.system_logs.clone_from(&stored.system_logs);
    }
    let state = match execute(worker, &task, sandbox, stop, &mut log).await {
        Ok(state) => state,
        Err(message) => {
            let message = crate::diag::mask(&message);
            tracing::warn!(task = %id, "system error: {message}");
            log.system_logs.push(message);
            State::SystemError
        }
    };
    // Clean up before the terminal state becomes visible: a client that sees the task
    // end finds the worker done with it.
    remove_sandbox(sandbox).await;
    log.end_time = Some(now_rfc3339());
    set_state(worker, id, state, Some(&log), false, true).await?;
    Ok(Some(state))
}

/// Inputs, executors, outputs. An `Err` is a system error message.
async fn execute(
    worker: &Worker,
    task: &Task,
    sandbox: &Sandbox,
    stop: &mut watch::Receiver<Stop>,
    log: &mut TaskLog,
) -> Result<State, String> {
    let config = &worker.config;
    let _ = tokio::fs::remove_dir_all(&sandbox.dir).await;
    tokio::select! {
        done = files::materialize(task, sandbox, &config.store, &config.cache) => done?,
        reason = stop.wait_for(|s| *s != Stop::Keep) => {
            return stopped(reason.map(|r| *r).unwrap_or(Stop::Shutdown));
        }
    }
    let id = task.id.as_deref().unwrap_or_default();
    set_state(worker, id, State::Running, None, false, true)
        .await
        .map_err(|e| e.to_string())?;
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
        let child =
            process::spawn(&spec, confinement).map_err(|e| format!("starting {}: {e}", argv[0]))?;
        let ended = process::wait(child, stop, config.kill_grace)
            .await
            .map_err(|e| format!("waiting for {}: {e}", argv[0]))?;
        entry.end_time = Some(now_rfc3339());
        entry.stdout = Some(process::tail(&spec.stdout, TAIL_BYTES));
        entry.stderr = Some(process::tail(&spec.stderr, TAIL_BYTES));
        for (capture, wanted) in [(&spec.stdout, "stdout"), (&spec.stderr, "stderr")] {
            let target = if wanted == "stdout" {
                &executor.stdout
            } else {
                &executor.stderr
            };
            if let Some(dest) = map(target, wanted)? {
                copy_capture(capture, &dest).await?;
            }
        }
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
    Ok(State::Complete)
}

fn stopped(reason: Stop) -> Result<State, String> {
    match reason {
        Stop::Shutdown => Err("the worker shut down while this task was running".into()),
        Stop::Cancel | Stop::Keep => Ok(State::Canceled),
    }
}

async fn copy_capture(capture: &std::path::Path, dest: &std::path::Path) -> Result<(), String> {
    if let Some(parent) = dest.parent() {
        let _ = tokio::fs::create_dir_all(parent).await;
    }
    tokio::fs::copy(capture, dest)
        .await
        .map(drop)
        .map_err(|e| format!("writing {}: {e}", dest.display()))
}

/// Move the task to `state`, replacing the current attempt's log with `log` if given.
/// With `only_from_queued`, leaves a task that is no longer QUEUED untouched and
/// returns None. Returns the task as stored.
///
/// `durable: false` is for INITIALIZING only, which sits on every task's critical
/// path before bb starts (an fsync is several ms on a busy disk). Losing it in a
/// crash leaves the task QUEUED, so it runs again after the restart; RUNNING, the
/// end states and everything a client must be able to rely on are written durably.
async fn set_state(
    worker: &Worker,
    id: &str,
    state: State,
    log: Option<&TaskLog>,
    only_from_queued: bool,
    durable: bool,
) -> Result<Option<Task>, super::db::DbError> {
    let id = id.to_owned();
    let log = log.cloned();
    worker
        .with_db(move |db| {
            let mut applied = false;
            let change = |task: &mut Task| {
                if only_from_queued && task.state != Some(State::Queued) {
                    return false;
                }
                task.state = Some(state);
                if let Some(mut log) = log {
                    if only_from_queued {
                        // A log written at creation (no start time: system notes such as
                        // ignored backend_parameters) becomes this attempt's log.
                        match task.logs.last_mut() {
                            Some(note) if note.start_time.is_none() => {
                                log.system_logs.splice(0..0, note.system_logs.drain(..));
                                *note = log;
                            }
                            _ => task.logs.push(log),
                        }
                    } else if let Some(last) = task.logs.last_mut() {
                        *last = log;
                    } else {
                        task.logs.push(log);
                    }
                }
                applied = true;
                true
            };
            let task = match durable {
                true => db.update(&id, change)?,
                false => db.update_volatile(&id, change)?,
            };
            Ok(task.filter(|_| applied))
        })
        .await
}

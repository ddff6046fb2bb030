//! Recording a running task's progress: its state changes in the task database, and
//! how long each of its steps took (debug lines for `scripts/bench --only phases`).
use std::future::Future;
use std::time::Instant;

use super::db::DbError;
use super::service::Worker;
use crate::tes::types::{State, Task, TaskLog};

/// How long each step of a task took, as debug lines `worker step: <what> ms=<n>`
/// (`scripts/bench --only phases` prints their medians): evidence for where a tiny
/// task's fixed cost goes.
pub(crate) struct Steps<'a> {
    task: &'a str,
    last: Instant,
}

impl<'a> Steps<'a> {
    pub(crate) fn new(task: &'a str) -> Self {
        Self {
            task,
            last: Instant::now(),
        }
    }

    /// The step that just ended.
    pub(crate) fn done(&mut self, step: &str) {
        let now = Instant::now();
        let ms = (now - self.last).as_secs_f64() * 1000.0;
        tracing::debug!(task = %self.task, ms, "worker step: {step}");
        self.last = now;
    }
}

/// A state change being written (see [`set_state`]).
pub(crate) type Pending<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<Option<Task>, DbError>> + Send + 'a>>;

/// Move the task to `state`, replacing the current attempt's log with `log` if given.
/// With `only_from_queued`, leaves a task that is no longer QUEUED untouched and
/// returns None. Returns the task as stored.
///
/// `durable: false` is for INITIALIZING only, which sits on every task's critical
/// path before bb starts (an fsync is several ms on a busy disk). Losing it in a
/// crash leaves the task QUEUED, so it runs again after the restart; RUNNING, the
/// end states and everything a client must be able to rely on are written durably.
///
/// The write starts at once (on a blocking thread), before the returned future is
/// first polled, so it can overlap other work; see `execute`.
pub(crate) fn set_state<'a>(
    worker: &'a Worker,
    id: &str,
    state: State,
    log: Option<&TaskLog>,
    only_from_queued: bool,
    durable: bool,
) -> impl Future<Output = Result<Option<Task>, DbError>> + Send + 'a {
    let id = id.to_owned();
    let log = log.cloned();
    worker.start_db(move |db| {
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
}

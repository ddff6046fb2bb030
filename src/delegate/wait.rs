//! Waiting for a task: adaptive polling with the MINIMAL view, one stderr line per
//! state change, bounded by the timeout, cancelled on SIGINT/SIGTERM.
//!
//! Polling starts at tens of milliseconds (a small proof is done in well under a
//! second) and backs off to about two seconds (a root rollup takes many minutes),
//! with jitter so many shims do not poll in lockstep. `get_task` retries transient
//! errors itself, within bounds; an error that outlasts them ends the wait.
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};

use super::error::DelegateError;
use super::signals::Signals;
use crate::tes::client::TesClient;
use crate::tes::types::{State, View};

/// First and longest pause between two polls.
const FIRST_POLL: Duration = Duration::from_millis(20);
const MAX_POLL: Duration = Duration::from_secs(2);

/// Poll task `id` until it reaches a terminal state; returns that state.
pub async fn until_terminal(
    client: &TesClient,
    id: &str,
    started: Instant,
    timeout: Duration,
    signals: &mut Signals,
) -> Result<State, DelegateError> {
    let mut pauses = ExponentialBuilder::default()
        .with_min_delay(FIRST_POLL)
        .with_max_delay(MAX_POLL)
        .with_factor(1.5)
        .with_jitter()
        .without_max_times()
        .build();
    let deadline = started + timeout;
    let mut last = None;
    loop {
        let polled = tokio::select! {
            polled = client.get_task(id, View::Minimal) => polled,
            signal = signals.next() => return Err(DelegateError::Interrupted(signal)),
        };
        let state = polled?.state.unwrap_or_default();
        if last != Some(state) {
            eprintln!(
                "bb-remote: task {id} {state} after {:.1}s",
                started.elapsed().as_secs_f64()
            );
            last = Some(state);
        }
        if state.is_terminal() {
            return Ok(state);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(DelegateError::TaskFailed(format!(
                "task {id} did not finish within {}s (BB_REMOTE_TIMEOUT); it was cancelled",
                timeout.as_secs()
            )));
        }
        let pause = pauses.next().unwrap_or(MAX_POLL).min(deadline - now);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            signal = signals.next() => return Err(DelegateError::Interrupted(signal)),
        }
    }
}

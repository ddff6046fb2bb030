//! Waiting for a task: adaptive polling with the MINIMAL view, one stderr line per
//! state change, bounded by the timeout, cancelled on SIGINT/SIGTERM.
//!
//! The pause between polls is a fiftieth of the time already waited, kept between
//! 5 ms (a small proof is done in well under a second: a 20 ms floor alone cost a
//! tiny proof ~10 ms on average) and 2 s (a root rollup takes many minutes), and
//! jittered downward so shims started together spread out without ever exceeding the
//! cap. So a finished task is noticed within about 2% of its run time; a MINIMAL poll
//! is one small request, and the 5 ms floor holds only for the first 250 ms. (An exponential backoff, e.g. backon's with factor 1.5, pauses up to half the
//! time already waited, and its jitter adds up to 100% on top: a proof of 8 s was
//! noticed up to 4 s late.) `get_task` retries transient errors itself, within
//! bounds (backon); an error that outlasts them ends the wait.
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use super::signals::Signals;
use crate::error::{Error, TaskFailure};
use crate::tes::client::TesClient;
use crate::tes::types::{State, View};

/// First and longest pause between two polls.
const FIRST_POLL: Duration = Duration::from_millis(5);
const MAX_POLL: Duration = Duration::from_secs(2);

/// The pause before the next poll after `waited`; `jitter` in [0, 1) shortens it by
/// up to a quarter.
fn next_pause(waited: Duration, jitter: f64) -> Duration {
    (waited / 50)
        .clamp(FIRST_POLL, MAX_POLL)
        .mul_f64(1.0 - 0.25 * jitter)
}

/// A uniform number in [0, 1), fresh each call (std's randomly keyed hasher; jitter
/// needs no more than that).
fn jitter() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Poll task `id` until it reaches a terminal state; returns that state.
pub(crate) async fn until_terminal(
    client: &TesClient,
    id: &str,
    started: Instant,
    timeout: Duration,
    signals: &mut Signals,
) -> Result<State, Error> {
    let deadline = started + timeout;
    let mut last = None;
    let mut polls = 0u32;
    loop {
        let polled = tokio::select! {
            polled = client.get_task(id, View::Minimal) => polled,
            signal = signals.next() => return Err(Error::Interrupted(signal)),
        };
        let state = polled?.state.unwrap_or_default();
        polls += 1;
        if last != Some(state) {
            crate::diag::note(&format_args!(
                "task {id} {state} after {:.1}s",
                started.elapsed().as_secs_f64()
            ));
            // With a timestamp and the poll count, for benchmarks (scripts/bench-funnel).
            tracing::debug!(%state, polls, "task state seen");
            last = Some(state);
        }
        if state.is_terminal() {
            return Ok(state);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::TaskFailed {
                id: id.to_owned(),
                failure: TaskFailure::TimedOut {
                    secs: timeout.as_secs(),
                },
            });
        }
        let pause = next_pause(started.elapsed(), jitter()).min(deadline - now);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            signal = signals.next() => return Err(Error::Interrupted(signal)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_stay_proportional_and_bounded() {
        assert_eq!(next_pause(Duration::ZERO, 0.0), FIRST_POLL);
        assert_eq!(
            next_pause(Duration::from_secs(5), 0.0),
            Duration::from_millis(100)
        );
        assert_eq!(next_pause(Duration::from_secs(3600), 0.0), MAX_POLL);
        for waited in [0, 1, 50, 400, 10_000, 90_000] {
            let waited = Duration::from_millis(waited);
            let p = next_pause(waited, 0.999);
            assert!(
                p <= next_pause(waited, 0.0) && p >= FIRST_POLL.mul_f64(0.75),
                "{p:?}"
            );
        }
    }

    #[test]
    fn jitter_is_in_range_and_varies() {
        let samples: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(samples.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(samples.windows(2).any(|w| w[0] != w[1]));
    }
}

//! Waiting for a task: a long poll where the backend offers one, adaptive polling
//! otherwise; the MINIMAL view, one stderr line per state change, bounded by the
//! timeout, cancelled on SIGINT/SIGTERM (also while a request is held).
//!
//! Every GET asks `Prefer: wait=N` ([`crate::tes::prefer`]). A backend that honours it
//! (the reference worker) answers when the state changes, so a finished task is seen
//! as soon as its end is committed, with one request per state change. The next
//! request goes out at once only when that answer is worth it: a state not seen
//! before (at most one per state, so a backend flapping between two states cannot make
//! the shim spin) or a request the backend really held for a second or more; anything
//! else falls back to the pause below. A backend that ignores the header (any other
//! TES engine) is simply polled.
//!
//! The pause between polls is a fiftieth of the time already waited, kept between
//! 5 ms (a small proof is done in well under a second: a 20 ms floor alone cost a
//! tiny proof ~10 ms on average) and 2 s (a root rollup takes many minutes), and
//! jittered downward so shims started together spread out without ever exceeding the
//! cap. So a finished task is noticed within about 2% of its run time; a MINIMAL poll
//! is one small request, and the 5 ms floor holds only for the first 250 ms. (An exponential backoff, e.g. backon's with factor 1.5, pauses up to half the
//! time already waited, and its jitter adds up to 100% on top: a proof of 8 s was
//! noticed up to 4 s late.) `get_task_waiting` retries transient errors itself, within
//! bounds (backon); an error that outlasts them ends the wait.
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use super::signals::Signals;
use crate::error::{Error, TaskFailure};
use crate::tes::client::TesClient;
use crate::tes::types::{State, View};

/// First and longest pause between two polls.
const FIRST_POLL: Duration = Duration::from_millis(5);
const MAX_POLL: Duration = Duration::from_secs(2);
/// The longest wait asked of the backend per request (the worker caps it at 30 s by
/// default): long enough that an idle wait costs a request per 20 s, short enough that
/// a connection a middlebox silently dropped is noticed within a minute (the request's
/// deadline is this plus the client's per-request timeout).
const LONG_POLL: Duration = Duration::from_secs(20);
/// A held answer shorter than this, with no new state, gets the polling pause after it.
const HELD_ENOUGH: Duration = Duration::from_secs(1);

/// The wait to ask for with `remaining` time left: whole seconds (RFC 7240), never past
/// the deadline; zero (no wait asked) in the last second.
fn wait_to_ask(remaining: Duration) -> Duration {
    Duration::from_secs(remaining.min(LONG_POLL).as_secs())
}

/// Whether to ask again at once after an answer: the backend applied the wait, and the
/// state is new or the request was held long enough to bound the request rate.
fn ask_again_at_once(applied: Option<Duration>, new_state: bool, held: Duration) -> bool {
    applied.is_some_and(|w| w >= HELD_ENOUGH) && (new_state || held >= HELD_ENOUGH)
}

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

/// Wait for task `id` to reach a terminal state; returns that state.
pub(crate) async fn until_terminal(
    client: &TesClient,
    id: &str,
    started: Instant,
    timeout: Duration,
    signals: &mut Signals,
) -> Result<State, Error> {
    let deadline = started + timeout;
    let mut last = None;
    let mut seen = HashSet::new();
    let mut polls = 0u32;
    loop {
        let asked = Instant::now();
        let wait = wait_to_ask(deadline.saturating_duration_since(asked));
        let polled = tokio::select! {
            polled = client.get_task_waiting(id, View::Minimal, wait) => polled,
            signal = signals.next() => return Err(Error::Interrupted(signal)),
        };
        let (task, applied) = polled?;
        let state = task.state.unwrap_or_default();
        polls += 1;
        if last != Some(state) {
            crate::diag::note(&format_args!(
                "task {id} {state} after {:.1}s",
                started.elapsed().as_secs_f64()
            ));
            // With a timestamp and the poll count, for benchmarks (scripts/bench-funnel).
            tracing::debug!(%state, polls, held = ?applied, "task state seen");
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
        if ask_again_at_once(applied, seen.insert(state), now - asked) {
            continue;
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
    fn waits_asked_stay_within_the_deadline() {
        assert_eq!(wait_to_ask(Duration::from_secs(3600)), LONG_POLL);
        assert_eq!(
            wait_to_ask(Duration::from_millis(7900)),
            Duration::from_secs(7)
        );
        assert_eq!(wait_to_ask(Duration::from_millis(999)), Duration::ZERO);
    }

    #[test]
    fn only_a_held_answer_or_a_new_state_skips_the_pause() {
        let second = Some(Duration::from_secs(1));
        let short = Duration::from_millis(3);
        // A backend that ignores Prefer, or claims a wait under a second: polled.
        assert!(!ask_again_at_once(None, true, Duration::from_secs(30)));
        assert!(!ask_again_at_once(
            Some(Duration::ZERO),
            true,
            Duration::from_secs(5)
        ));
        // A new state, or a request really held: ask again at once.
        assert!(ask_again_at_once(second, true, short));
        assert!(ask_again_at_once(second, false, Duration::from_secs(1)));
        // The same state back at once despite the wait applied: pause as when polling.
        assert!(!ask_again_at_once(second, false, short));
    }

    #[test]
    fn jitter_is_in_range_and_varies() {
        let samples: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(samples.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(samples.windows(2).any(|w| w[0] != w[1]));
    }
}

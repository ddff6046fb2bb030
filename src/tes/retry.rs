//! Bounded retries of idempotent TES calls.
use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use super::error::TesError;

/// Bounded, jittered exponential backoff. Worst-case duration of a retried call is
/// `max_attempts` × the request timeout plus `max_total_delay`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Cap on the sum of the sleeps between attempts.
    pub max_total_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_total_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The backoff schedule, with the total sleep capped at `max_total_delay`.
    pub(crate) fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1))
            .with_total_delay(Some(self.max_total_delay))
    }
}

/// Run `op` until it succeeds, fails with a non-retryable error, or `policy` runs out.
/// Only wrap calls that are safe to repeat.
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, what: &str, op: F) -> Result<T, TesError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, TesError>>,
{
    op.retry(policy.backoff())
        .when(TesError::is_retryable)
        .notify(|err, delay| tracing::warn!(%what, error = %err, ?delay, "retrying TES call"))
        .await
}

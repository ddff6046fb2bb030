//! `GET /metrics` in the Prometheus text exposition format (version 0.0.4).
//!
//! Three families, enough to alert on a stuck or overloaded worker:
//! - `bb_remote_worker_tasks_queued` / `bb_remote_worker_tasks_running` (gauges),
//! - `bb_remote_worker_task_duration_seconds{state}` (histogram of run time, from
//!   admission to the end, by final state),
//! - `bb_remote_worker_tasks_created_total` (counter).
//!
//! Hand-written: a few lines of text do not justify a metrics crate.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::tes::types::State;

/// Upper bounds of the duration buckets, in seconds (a no-op task to an hour-long rollup).
const BUCKETS: [f64; 11] = [
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Cumulative counts per bucket, as Prometheus wants them.
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The worker's counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    durations: Mutex<BTreeMap<&'static str, Histogram>>,
    created: Mutex<u64>,
}

impl Metrics {
    pub(crate) fn task_created(&self) {
        *self.created.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }

    /// Record a task that ran for `seconds` and ended in `state`.
    pub(crate) fn task_finished(&self, state: State, seconds: f64) {
        let mut durations = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        let histogram = durations.entry(state.as_str()).or_default();
        for (bound, count) in BUCKETS.iter().zip(histogram.buckets.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The exposition text, given the current queue and running counts.
    pub(crate) fn render(&self, queued: usize, running: usize) -> String {
        let mut out = String::new();
        let created = *self.created.lock().unwrap_or_else(|e| e.into_inner());
        let gauges = [
            (
                "tasks_queued",
                "gauge",
                "Tasks waiting for admission.",
                queued as u64,
            ),
            (
                "tasks_running",
                "gauge",
                "Tasks admitted and not yet finished.",
                running as u64,
            ),
            (
                "tasks_created_total",
                "counter",
                "Tasks accepted since start-up.",
                created,
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(out, "# HELP bb_remote_worker_{name} {help}");
            let _ = writeln!(out, "# TYPE bb_remote_worker_{name} {kind}");
            let _ = writeln!(out, "bb_remote_worker_{name} {value}");
        }
        let name = "bb_remote_worker_task_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Run time of finished tasks by final state."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        let durations = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        for (state, h) in durations.iter() {
            for (bound, count) in BUCKETS.iter().zip(h.buckets) {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{state=\"{state}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{state=\"{state}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "{name}_sum{{state=\"{state}\"}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{state=\"{state}\"}} {}", h.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.task_finished(State::Complete, 0.05);
        metrics.task_finished(State::Complete, 7.0);
        metrics.task_finished(State::Canceled, 100.0);
        metrics.task_created();
        let text = metrics.render(3, 1);
        let has = |line: &str| assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        has("bb_remote_worker_tasks_queued 3");
        has("bb_remote_worker_tasks_running 1");
        has("bb_remote_worker_tasks_created_total 1");
        has("bb_remote_worker_task_duration_seconds_bucket{state=\"COMPLETE\",le=\"0.1\"} 1");
        has("bb_remote_worker_task_duration_seconds_bucket{state=\"COMPLETE\",le=\"10\"} 2");
        has("bb_remote_worker_task_duration_seconds_bucket{state=\"CANCELED\",le=\"60\"} 0");
        has("bb_remote_worker_task_duration_seconds_count{state=\"CANCELED\"} 1");
        has("bb_remote_worker_task_duration_seconds_sum{state=\"COMPLETE\"} 7.05");
    }
}

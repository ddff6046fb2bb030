//! The shim waiting on a task: a backend that honours `Prefer: wait=N` (the real
//! worker) tells it of each state change from a held read, so a task of seconds costs
//! a handful of requests; a backend that ignores the header (the proxy dropping it, as
//! most TES engines would) is polled, and the proof is the same. A signal while a read
//! is held still cancels at once.
use std::path::{Path, PathBuf};
use std::time::Duration;

use bb_remote::tes::types::State;

use super::harness::{run_blocking, AztecJob, Backend, Spawned, StoreKind};
use super::proxy::{FaultProxy, Faults};
use crate::support::testbed::{testbed, Scratch};
use crate::worker::long_poll::until_held;

const LIMIT: Duration = Duration::from_secs(180);

/// TEST DOUBLE of a slow prover: sleeps `secs`, then runs the test bed's real bb (a tiny
/// proof takes ~20 ms; waiting is what is tested, so it must last long enough for
/// polling to show). The worker runs it unconfined: Landlock would let the wrapper
/// execute only itself.
fn slow_bb(dir: &Path, secs: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("slow-bb");
    let script = format!(
        "#!/bin/sh\n/bin/sleep {secs}\nexec '{}' \"$@\"\n",
        testbed().bb.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn slow_backend(scratch: &Scratch, secs: u32) -> Backend {
    Backend::start(
        StoreKind::File,
        slow_bb(&scratch.path(""), secs),
        &["--no-confine"],
    )
}

/// The client's prove of `square` through a proxy (forwarding `Prefer` or not, failing
/// the first `failed_reads` task reads with 503); stderr, the task reads the proxy saw and
/// the failures it did not get to inject.
async fn prove(
    backend: &Backend,
    scratch: &Scratch,
    forward_prefer: bool,
    failed_reads: usize,
) -> (String, usize, usize) {
    let job = AztecJob::new(scratch, "square", "SquareArtifact");
    let faults = Faults {
        forward_prefer,
        unavailable_reads: failed_reads,
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&backend.worker.base, faults).await;
    let out = scratch.path(format!("out-{forward_prefer}-{failed_reads}"));
    let mut shim = backend.shim_to(scratch, &proxy.url);
    shim.args(job.prove_argv(&out));
    let outcome = run_blocking(shim).await;
    outcome.assert_code(0, "a slow proof");
    assert!(out.join("proof").is_file());
    let faults = proxy.faults.lock().unwrap();
    (outcome.stderr, faults.task_reads, faults.unavailable_reads)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_end_comes_from_a_held_read_and_an_engine_without_it_is_polled() {
    let scratch = Scratch::new();
    let backend = slow_backend(&scratch, 3);
    // A task of 3 s: polled, that is ~150 reads (5 ms apart at first, then 2% of the
    // time waited); held, one per state change (QUEUED, INITIALIZING, RUNNING, the end)
    // plus the final FULL view.
    let (stderr, reads, _) = prove(&backend, &scratch, true, 0).await;
    assert!(reads <= 8, "{reads} task reads with long polls:\n{stderr}");
    assert_eq!(stderr.matches(" COMPLETE after ").count(), 1, "{stderr}");
    let (stderr, polled, _) = prove(&backend, &scratch, false, 0).await;
    assert!(polled > 20, "{polled} task reads when polling:\n{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_that_fails_is_retried() {
    let scratch = Scratch::new();
    let backend = slow_backend(&scratch, 1);
    // The first two reads fail (503): retried within bounds (the proof is made, see
    // `prove`), and the wait goes on held.
    let (stderr, reads, left) = prove(&backend, &scratch, true, 2).await;
    assert_eq!(left, 0, "both failures were injected");
    assert!(reads <= 10, "{reads} task reads with long polls:\n{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signal_while_a_read_is_held_cancels_the_task() {
    let scratch = Scratch::new();
    let backend = slow_backend(&scratch, 600);
    let job = AztecJob::new(&scratch, "square", "SquareArtifact");
    let mut shim = backend.shim(&scratch);
    shim.args(job.prove_argv(&scratch.path("out")));
    let spawned = tokio::task::block_in_place(|| {
        let spawned = Spawned::start(&mut shim);
        spawned.wait_for(" RUNNING after ", LIMIT);
        spawned
    });
    // The shim's read of its RUNNING task is held by the worker now.
    until_held(&backend.worker, 1).await;
    spawned.signal(libc::SIGINT);
    let outcome = tokio::task::block_in_place(|| spawned.finish(LIMIT));
    outcome.assert_code(130, "interrupted while its read was held");
    assert!(!scratch.path("out").exists());
    let id = backend.tasks().await[0].id.clone().unwrap();
    let task = backend.worker.wait_terminal(&id).await;
    assert_eq!(task.state, Some(State::Canceled));
}

//! Funnel and the shim beyond a good proof: SIGTERM and `BB_REMOTE_TIMEOUT` cancel the
//! task (Funnel shows CANCELED, no bb is left running), a bad witness gives bb's own
//! error and exit code, record/replay, `doctor`, and Basic auth through the URL.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::harness::{in_netns, Funnel, FunnelStore, Options};
use crate::delegate::harness::{bb_stderr, direct_bb, files, AztecJob};
use crate::support::testbed::{run, Outcome, Scratch};
use bb_remote::tes::types::{State, Task};

/// Poll `check` every 100 ms for at most `limit`; panics with `what` on timeout.
fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The only task Funnel knows, once it exists.
fn only_task(funnel: &Funnel) -> Option<Task> {
    let mut tasks = funnel.tasks();
    (tasks.len() == 1).then(|| tasks.remove(0))
}

/// Start the shim on hashchain_big (seconds of proving), wait until bb runs inside
/// Funnel's executor; returns the shim, the task id and bb's pid.
fn start_big_proof(
    funnel: &Funnel,
    scratch: &Scratch,
    env: &[(&str, &str)],
) -> (std::process::Child, String, u32) {
    let job = AztecJob::new(scratch, "hashchain_big", "BigArtifact");
    let shim = funnel
        .shim(scratch)
        .envs(env.iter().copied())
        .args(job.prove_argv(&scratch.path("out")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (id, bb) = wait_for(Duration::from_secs(120), "bb running in Funnel", || {
        let task = only_task(funnel)?;
        let id = task.id?;
        let executor = funnel.executor_pid(&id)?;
        let bb = *Funnel::bb_below(executor).first()?;
        Some((id, bb))
    });
    (shim, id, bb)
}

fn finish(shim: std::process::Child) -> Outcome {
    let output = shim.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    Outcome {
        code: output.status.code(),
        signal: output.status.signal(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// After a cancel: Funnel says CANCELED, the bb is gone, nothing was written.
fn assert_cancelled(funnel: &Funnel, scratch: &Scratch, id: &str, bb: u32) {
    let state = wait_for(Duration::from_secs(60), "the task to be CANCELED", || {
        let state = funnel
            .block_on(
                funnel
                    .client()
                    .get_task(id, bb_remote::tes::types::View::Minimal),
            )
            .ok()?
            .state?;
        state.is_terminal().then_some(state)
    });
    assert_eq!(state, State::Canceled, "log:\n{}", funnel.log());
    wait_for(Duration::from_secs(30), "bb to be gone", || {
        (!std::path::Path::new(&format!("/proc/{bb}")).exists()).then_some(())
    });
    assert!(files(&scratch.path("out")).is_empty());
}

#[test]
fn sigterm_cancels_the_funnel_task_and_no_bb_is_left_running() {
    in_netns(|| {
        let funnel = Funnel::start(FunnelStore::File, Options::default());
        let scratch = Scratch::new();
        let (shim, id, bb) = start_big_proof(&funnel, &scratch, &[]);
        // SAFETY: kill(2) on the pid of a child we started and have not reaped.
        assert_eq!(unsafe { libc::kill(shim.id() as i32, libc::SIGTERM) }, 0);
        let outcome = finish(shim);
        outcome.assert_code(143, "shim on SIGTERM");
        assert!(outcome.stderr.contains("cancelled"), "{}", outcome.stderr);
        assert_cancelled(&funnel, &scratch, &id, bb);
    });
}

#[test]
fn remote_timeout_cancels_the_funnel_task() {
    in_netns(|| {
        let funnel = Funnel::start(FunnelStore::File, Options::default());
        let scratch = Scratch::new();
        let (shim, id, bb) = start_big_proof(&funnel, &scratch, &[("BB_REMOTE_TIMEOUT", "3")]);
        let outcome = finish(shim);
        outcome.assert_code(75, "shim after BB_REMOTE_TIMEOUT");
        assert!(
            outcome.stderr.contains("3s")
                || outcome.stderr.contains("timed out")
                || outcome.stderr.contains("timeout"),
            "{}",
            outcome.stderr
        );
        assert_cancelled(&funnel, &scratch, &id, bb);
    });
}

#[test]
fn a_bad_witness_gives_bbs_own_error_and_exit_code() {
    in_netns(|| {
        let funnel = Funnel::start(FunnelStore::File, Options::default());
        let scratch = Scratch::new();
        let job = AztecJob::new(&scratch, "square", "SquareArtifact");
        // Not gzip, and not UTF-8 either: the bytes bb echoes must survive intact.
        std::fs::write(job.witness(), b"\xff\xfe not a witness \x80\n").unwrap();
        let out = scratch.path("out");
        let argv = job.prove_argv(&out);
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let direct = direct_bb(&scratch, &args);
        assert_ne!(direct.code, Some(0), "bb itself refuses the witness");
        let _ = std::fs::remove_dir_all(&out);

        let shim = run(funnel.shim(&scratch).args(&argv));
        assert_eq!(
            shim.code, direct.code,
            "exit code; stderr:\n{}",
            shim.stderr
        );
        assert_eq!(shim.stdout, direct.stdout);
        let crs = crate::support::testbed::testbed()
            .crs_dir
            .display()
            .to_string();
        assert_eq!(
            bb_stderr(&shim.stderr).replace("/crs", "<crs>"),
            direct.stderr.replace(&crs, "<crs>"),
        );
        assert!(
            files(&out).is_empty(),
            "a failed bb's files are not results"
        );
        let task = only_task(&funnel).unwrap();
        assert_eq!(
            task.state,
            Some(State::Complete),
            "the wrapper recorded bb's failure"
        );
    });
}

#[test]
fn a_proof_recorded_through_funnel_replays_without_it() {
    in_netns(|| {
        let funnel = Funnel::start(FunnelStore::File, Options::default());
        let fixtures = tempfile::tempdir().unwrap();
        let (a, b) = (Scratch::new(), Scratch::new());
        let prove = |scratch: &Scratch, mut cmd: Command| {
            let job = AztecJob::new(scratch, "square", "SquareArtifact");
            run(cmd.args(job.prove_argv(&scratch.path("out"))))
        };
        let mut recording = funnel.shim(&a);
        recording.env("BB_REMOTE_RECORD", fixtures.path());
        let recorded = prove(&a, recording);
        recorded.assert_code(0, "recording through Funnel");
        assert!(
            recorded.stderr.contains(" COMPLETE after "),
            "{}",
            recorded.stderr
        );

        let mut replaying = b.command(env!("CARGO_BIN_EXE_bb"));
        replaying.env("BB_REMOTE_REPLAY", fixtures.path()).env(
            "BB_REMOTE_NATIVE_BIN",
            &crate::support::testbed::testbed().bb,
        );
        let replayed = prove(&b, replaying);
        replayed.assert_code(0, "replay");
        assert_eq!(replayed.stdout, recorded.stdout);
        assert_eq!(replayed.stderr, bb_stderr(&recorded.stderr));
        assert_eq!(files(&b.path("out")), files(&a.path("out")));
        assert_eq!(funnel.tasks().len(), 1, "the replay did not reach Funnel");
    });
}

#[test]
fn doctor_and_basic_auth_through_the_backend_url() {
    in_netns(|| {
        let password = "s3cret-pw";
        let funnel = Funnel::start(
            FunnelStore::File,
            Options {
                basic_auth: Some(("prover".into(), password.into())),
                ..Options::default()
            },
        );
        let scratch = Scratch::new();
        let doctor = run(funnel.tool(&scratch).arg("doctor"));
        let report = String::from_utf8_lossy(&doctor.stdout).into_owned();
        doctor.assert_code(0, &format!("doctor against Funnel:\n{report}"));
        assert!(
            report.contains("remote side: bb /usr/src/barretenberg/cpp/build/bin/bb; CRS -c /crs"),
            "{report}"
        );
        assert!(
            !report.contains(password) && !doctor.stderr.contains(password),
            "{report}"
        );

        let job = AztecJob::new(&scratch, "square", "SquareArtifact");
        let proved = run(funnel
            .shim(&scratch)
            .args(job.prove_argv(&scratch.path("out"))));
        proved.assert_code(0, "prove with Basic credentials in the URL");
        assert!(!proved.stderr.contains(password), "{}", proved.stderr);
        assert!(files(&scratch.path("out"))
            .iter()
            .any(|(n, _)| n == "proof"));

        // Without the credentials Funnel refuses, and the shim says so (76, no fallback).
        let refused = run(funnel
            .shim(&scratch)
            .env("BB_REMOTE_BACKEND", &funnel.url)
            .args(job.prove_argv(&scratch.path("out2"))));
        refused.assert_code(76, "no credentials");
        assert!(refused.stderr.contains("401"), "{}", refused.stderr);
    });
}

#[test]
fn non_utf8_stderr_comes_back_byte_exact_through_funnel() {
    use crate::delegate::stderr_bytes::{assert_replayed, native, not_json_argv, output};
    in_netns(|| {
        let funnel = Funnel::start(FunnelStore::File, Options::default());
        let scratch = Scratch::new();
        let job = AztecJob::new(&scratch, "square", "SquareArtifact");
        let argv = not_json_argv(&scratch, &job);
        let direct = native(&scratch, &argv);
        let shim = output(funnel.shim(&scratch).args(&argv));
        assert_replayed(&direct, &shim);
        assert_eq!(
            only_task(&funnel).and_then(|t| t.state),
            Some(State::Complete),
            "delegated, and the wrapper recorded bb's failure"
        );
    });
}

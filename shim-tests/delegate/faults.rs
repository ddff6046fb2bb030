//! Faults between the shim and the backend, each against the real worker running the
//! real bb on the `square` circuit (a fault proxy test double in front where needed).
use std::time::Duration;

use serde_json::Value;

use super::harness::{
    direct_bb, file_url_path, files, run_blocking, run_bounded, shim_command, AztecJob, Backend,
    StoreKind,
};
use super::proxy::{FaultProxy, Faults, Hostile, HostileTes};
use crate::support::testbed::{testbed, Outcome, Scratch};
use crate::worker::harness::files_under;

struct Setup {
    backend: Backend,
    scratch: Scratch,
    job: AztecJob,
}

fn setup(worker_flags: &[&str]) -> Setup {
    let backend = Backend::real_bb(StoreKind::File, worker_flags);
    let scratch = Scratch::new();
    let job = AztecJob::new(&scratch, "square", "SquareArtifact");
    Setup {
        backend,
        scratch,
        job,
    }
}

impl Setup {
    fn out(&self) -> std::path::PathBuf {
        self.scratch.path("out")
    }

    /// The client's argv plus `-c <test CRS>` (dropped remotely; used by a native run).
    fn argv(&self) -> Vec<String> {
        let mut argv = self.job.prove_argv(&self.out());
        argv.extend(["-c".into(), testbed().crs_dir.display().to_string()]);
        argv
    }

    /// The client's prove through a [`FaultProxy`] injecting `faults` before the worker.
    async fn prove_through(&self, faults: Faults) -> (FaultProxy, Outcome) {
        let proxy = FaultProxy::start(&self.backend.worker.base, faults).await;
        let mut shim = self.backend.shim_to(&self.scratch, &proxy.url);
        shim.args(self.argv());
        (proxy, run_blocking(shim).await)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_few_503s_are_retried_and_one_task_runs() {
    let s = setup(&[]);
    let faults = Faults {
        unavailable: 3,
        ..Faults::default()
    };
    let (proxy, outcome) = s.prove_through(faults).await;
    outcome.assert_code(0, "prove through a flaky backend");
    assert!(s.out().join("proof").exists());
    assert_eq!(
        proxy.faults.lock().unwrap().unavailable,
        0,
        "faults were injected"
    );
    assert_eq!(s.backend.tasks().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_create_response_does_not_create_a_second_task() {
    let s = setup(&[]);
    let faults = Faults {
        lose_create_response: 1,
        ..Faults::default()
    };
    let (proxy, outcome) = s.prove_through(faults).await;
    outcome.assert_code(0, "prove with a lost create response");
    assert_eq!(proxy.faults.lock().unwrap().lose_create_response, 0);
    assert_eq!(s.backend.tasks().await.len(), 1, "{}", outcome.stderr);
    assert!(s.out().join("proof").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_down_fails_with_75_or_falls_back_to_native() {
    let s = setup(&[]);
    let down = "http://127.0.0.1:9"; // discard port: nothing listens on loopback
    let mut shim = s.backend.shim_to(&s.scratch, down);
    shim.args(s.argv());
    let failed = run_blocking(shim).await;
    failed.assert_code(75, "backend down, fallback fail");
    assert!(
        failed.stderr.contains("backend unavailable"),
        "{}",
        failed.stderr
    );
    assert!(!s.out().exists());

    let mut shim = s.backend.shim_to(&s.scratch, down);
    shim.env("BB_REMOTE_FALLBACK", "native").args(s.argv());
    let native = run_blocking(shim).await;
    native.assert_code(0, "backend down, fallback native");
    let warnings = native
        .stderr
        .lines()
        .filter(|l| l.starts_with("bb-remote: warning:"))
        .count();
    assert_eq!(warnings, 1, "{}", native.stderr);
    assert!(s.out().join("proof").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthorized_is_shown_and_never_retried_or_fallen_back() {
    let s = setup(&["--token", "sesame"]);
    let mut shim = s.backend.shim(&s.scratch);
    shim.env("BB_REMOTE_FALLBACK", "native").args(s.argv());
    let outcome = run_blocking(shim).await;
    outcome.assert_code(76, "no token");
    assert!(outcome.stderr.contains("401"), "{}", outcome.stderr);
    assert!(!outcome.stderr.contains("warning"), "{}", outcome.stderr);
    assert!(!s.out().exists());
}

/// Rewrites the FULL view: `edit(store_dir, last task log)`, with the worker started
/// with `worker_flags`.
async fn with_rewritten_result(
    worker_flags: &[&str],
    edit: fn(&std::path::Path, &mut Value),
) -> (Setup, String) {
    let s = setup(worker_flags);
    let store_dir = file_url_path(&s.backend.store_url);
    let faults = Faults {
        rewrite_full: Some(Box::new(move |task: &mut Value| {
            let logs = task["logs"].as_array_mut().unwrap();
            edit(&store_dir, logs.last_mut().unwrap());
        })),
        ..Faults::default()
    };
    let (_proxy, outcome) = s.prove_through(faults).await;
    outcome.assert_code(76, "bad outputs");
    assert!(!s.out().exists(), "nothing written: {:?}", files(&s.out()));
    (s, outcome.stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_output_blob_is_detected_and_nothing_written() {
    // Every output through the store: none in the task log.
    let (_s, stderr) = with_rewritten_result(&["--inline-output-bytes", "0"], |_, log| {
        assert!(!log["metadata"].to_string().contains("content:"), "{log}");
        for output in log["outputs"].as_array().unwrap() {
            std::fs::write(file_url_path(output["url"].as_str().unwrap()), b"corrupt").unwrap();
        }
    })
    .await;
    assert!(
        stderr.contains("digest mismatch")
            || stderr.contains("expected sha256")
            || stderr.contains("bytes the task log gives"),
        "{stderr}"
    );
}

/// Small outputs come back in the task log (`tes::inline`): one changed byte there is
/// refused as a changed blob in the store is, and nothing is written.
#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_output_in_the_task_log_is_detected_and_nothing_written() {
    let (_s, stderr) = with_rewritten_result(&[], |_, log| {
        let metadata = log["metadata"].as_object_mut().unwrap();
        let mut carried = 0;
        for (key, value) in metadata.iter_mut() {
            if key.starts_with("content:/bb-remote/out/") {
                let text = value.as_str().unwrap();
                // Another base64 letter first: same length, other bytes.
                let first = if text.starts_with('A') { "B" } else { "A" };
                *value = Value::from(format!("{first}{}", &text[1..]));
                carried += 1;
            }
        }
        assert!(carried >= 1, "the proof came back in the task log: {log}");
    })
    .await;
    assert!(
        stderr.contains("digest mismatch") && stderr.contains("task log"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_output_named_dot_dot_is_rejected_and_nothing_written() {
    let (s, stderr) = with_rewritten_result(&[], |_, log| {
        let output = &mut log["outputs"][0];
        let path = output["path"].as_str().unwrap().to_owned();
        output["path"] = Value::from("/bb-remote/out/../x");
        let digest = log["metadata"][format!("sha256:{path}")].clone();
        log["metadata"]["sha256:/bb-remote/out/../x"] = digest;
    })
    .await;
    assert!(stderr.contains("../x"), "{stderr}");
    assert!(!s.scratch.path("x").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_witness_gets_bbs_own_error_with_nothing_uploaded() {
    let s = setup(&[]);
    std::fs::remove_file(s.job.witness()).unwrap();
    let argv = s.argv();
    // direct_bb adds `-c <crs>` itself: give it the argv without the trailing one.
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let direct = direct_bb(&s.scratch, &args[..args.len() - 2]);
    let mut shim = s.backend.shim(&s.scratch);
    shim.args(&argv);
    let outcome = run_blocking(shim).await;
    assert_ne!(direct.code, Some(0));
    assert_eq!(outcome.code, direct.code, "{}", outcome.stderr);
    assert_eq!(outcome.stderr, direct.stderr);
    assert!(!outcome.stderr.contains("bb-remote:"), "{}", outcome.stderr);
    assert!(s.backend.tasks().await.is_empty());
    let store_dir = file_url_path(&s.backend.store_url);
    assert!(
        files_under(&store_dir).is_empty(),
        "{:?}",
        files_under(&store_dir)
    );
}

/// The square job's shim command against a hostile TES double, with a `file://` store
/// of its own (no worker: the double is the whole backend).
fn against_hostile(scratch: &Scratch, job: &AztecJob, url: &str) -> std::process::Command {
    let store = scratch.path("store");
    std::fs::create_dir_all(&store).unwrap();
    let store_url = url::Url::from_directory_path(&store).unwrap();
    let mut shim = shim_command(scratch, url, store_url.as_str());
    shim.args(job.prove_argv(&scratch.path("out")));
    shim
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_list_without_end_is_refused_naming_the_backend() {
    let scratch = Scratch::new();
    let job = AztecJob::new(&scratch, "square", "SquareArtifact");
    let hostile = HostileTes::start(Hostile::EndlessPages).await;
    let mut shim = against_hostile(&scratch, &job, &hostile.url);
    let (outcome, _, killed) =
        tokio::task::spawn_blocking(move || run_bounded(&mut shim, Duration::from_secs(60)))
            .await
            .unwrap();
    assert!(
        !killed,
        "the shim kept listing for 60 s ({} requests)",
        hostile.requests()
    );
    outcome.assert_code(76, "endless task list");
    assert!(
        outcome.stderr.contains(&hostile.url)
            && outcome.stderr.contains("did not end after 20 pages"),
        "{}",
        outcome.stderr
    );
    // 20 pages, and the one service-info that tells the engine apart.
    assert!(hostile.requests() <= 21, "{} requests", hostile.requests());
    assert!(!scratch.path("out").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gigabyte_answer_is_refused_with_memory_kept_small() {
    let scratch = Scratch::new();
    let job = AztecJob::new(&scratch, "square", "SquareArtifact");
    let hostile = HostileTes::start(Hostile::HugeBody(1 << 30)).await;
    let mut shim = against_hostile(&scratch, &job, &hostile.url);
    let (outcome, peak_kib, killed) =
        tokio::task::spawn_blocking(move || run_bounded(&mut shim, Duration::from_secs(120)))
            .await
            .unwrap();
    assert!(!killed, "{outcome:?}");
    outcome.assert_code(76, "a 1 GiB TES answer");
    assert!(
        outcome.stderr.contains(&hostile.url) && outcome.stderr.contains("more than 4194304 bytes"),
        "{}",
        outcome.stderr
    );
    // The cap is 4 MiB; the shim's own baseline is about 10 MiB.
    assert!(peak_kib < 48 * 1024, "shim peak RSS {peak_kib} KiB");
    assert!(!scratch.path("out").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100_mb_witness_is_uploaded_in_bounded_memory() {
    let scratch = Scratch::new();
    let job = AztecJob::new(&scratch, "square", "SquareArtifact");
    // Incompressible bytes: the upload is what is measured; the listing then fails.
    let mut big = std::fs::File::create(job.witness()).unwrap();
    let mut block = vec![0u8; 1 << 20];
    for i in 0..100u32 {
        for (j, b) in block.iter_mut().enumerate() {
            *b = (j as u32).wrapping_mul(2_654_435_761).wrapping_add(i) as u8;
        }
        std::io::Write::write_all(&mut big, &block).unwrap();
    }
    drop(big);
    let hostile = HostileTes::start(Hostile::EndlessPages).await;
    let mut shim = against_hostile(&scratch, &job, &hostile.url);
    let (outcome, peak_kib, killed) =
        tokio::task::spawn_blocking(move || run_bounded(&mut shim, Duration::from_secs(120)))
            .await
            .unwrap();
    assert!(!killed, "{outcome:?}");
    assert!(
        outcome.stderr.contains("uploaded 3 files, 104"),
        "{}",
        outcome.stderr
    );
    // Release build: ~21 MB (scripts/bench). This debug build's own baseline is ~17 MB;
    // with 8 MiB parts, four in flight (before), it peaked at ~50 MB.
    assert!(peak_kib < 40 * 1024, "shim peak RSS {peak_kib} KiB");
}

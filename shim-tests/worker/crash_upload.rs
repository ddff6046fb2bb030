//! A worker killed (SIGKILL) in the middle of uploading a large output leaves the
//! multipart upload's staging in the store; the next start removes it. On `file://`
//! the staging is object_store's hidden `<dest>#<n>` file, on S3 (moto, which checks
//! signatures) an unfinished multipart upload. Each test first shows the staging
//! is there after the kill, so it fails if the kill missed the upload or the restart
//! does not clean up. The large output comes from the fake bb (a TEST DOUBLE).
use std::time::{Duration, Instant};

use bb_remote::tes::types::State;
use object_store::ObjectStoreExt;
use serde_json::{json, Value};

use super::harness::{entries, Scratch, WorkerProc};
use crate::support::testbed::S3Server;

/// Large enough that uploading it takes a while even to local files.
const BIG: u64 = 256 << 20;
/// What the restarted worker logs when it removed a crashed upload's staging.
const CLEANED: &str = "removed the staging of an unfinished upload";

fn big_task(out_url: &str) -> Value {
    json!({
        "outputs": [{ "url": out_url, "path": "/w/out/proof", "type": "FILE" }],
        "executors": [{ "image": "bb",
                        "command": ["bb", "big", "/w/out/proof", BIG.to_string()] }]
    })
}

/// Poll `check` until it holds (bounded: a generous limit, not a timing check).
async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_kill_mid_upload_to_a_file_store_leaves_staging_the_restart_removes() {
    let scratch = Scratch::new();
    let worker = WorkerProc::start(&scratch.fake_args());
    let out_dir = scratch.store_dir().join("runs/crash");
    let staged = out_dir.join("proof#1");
    let url = format!("{}runs/crash/proof", scratch.store_url());
    let id = worker.create(&big_task(&url)).await;
    wait_for("the upload's staging file", || async { staged.exists() }).await;
    worker.kill();
    assert_eq!(
        entries(&out_dir),
        ["proof#1"],
        "the kill must land mid-upload, leaving only the staging file"
    );

    let worker = WorkerProc::start(&scratch.fake_args());
    wait_for("the staging file to go", || async { !staged.exists() }).await;
    assert!(entries(&out_dir).is_empty(), "{:?}", entries(&out_dir));
    let task = worker.wait_terminal(&id).await;
    assert_eq!(task.state, Some(State::SystemError));
    wait_for("the cleanup's log line", || async {
        worker.log().contains(CLEANED)
    })
    .await;
}

#[tokio::test]
async fn a_kill_mid_upload_to_s3_leaves_an_upload_the_restart_aborts() {
    let s3 = S3Server::start("bb-crash-upload");
    let scratch = Scratch::new();
    let (store_url, store) = s3.prefixed_store("p");
    let env = s3.aws_env();
    let args = scratch.fake_args_on(&store_url);
    let url = format!("{store_url}/runs/crash/proof");
    let key = store.key_for_url(&url).unwrap();
    let unfinished = || async { store.unfinished_s3_uploads(&key).await.unwrap() };

    let worker = WorkerProc::start_with_env(&args, &env);
    let id = worker.create(&big_task(&url)).await;
    wait_for("an unfinished upload", || async {
        !unfinished().await.is_empty()
    })
    .await;
    worker.kill();
    assert_eq!(unfinished().await.len(), 1, "the kill must land mid-upload");
    let head = store.object_store().head(&key).await;
    assert!(head.is_err(), "the upload must not have finished: {head:?}");

    let worker = WorkerProc::start_with_env(&args, &env);
    wait_for("the upload to be aborted", || async {
        unfinished().await.is_empty()
    })
    .await;
    let task = worker.wait_terminal(&id).await;
    assert_eq!(task.state, Some(State::SystemError));
    wait_for("the cleanup's log line", || async {
        worker.log().contains(CLEANED)
    })
    .await;
    assert!(store.object_store().head(&key).await.is_err());
}

//! Long polls (`Prefer: wait=N` on `GET /tasks/{id}`) against the real worker: a held
//! read answers when the task changes, not when the wait ends; the waiter cap answers
//! at once beyond it; shutdown answers held reads. No timing is asserted: a task that
//! sleeps far longer than the wait shows which of the two ended a read.
use std::time::Duration;

use bb_remote::tes::types::State;
use serde_json::Value;

use super::harness::{fake_task, Scratch, WorkerProc};

/// A read that is not answered within this is a failure (the waits asked are 25 s).
const CLIENT_LIMIT: Duration = Duration::from_secs(60);

/// `GET /tasks/{id}?view=MINIMAL` with `Prefer: wait=<secs>` (none if `None`): the
/// status, the state and the `Preference-Applied` value.
async fn read(base: &str, id: &str, wait: Option<u64>) -> (u16, String, Option<String>) {
    let client = reqwest::Client::new();
    let mut request = client
        .get(format!("{base}/ga4gh/tes/v1/tasks/{id}?view=MINIMAL"))
        .timeout(CLIENT_LIMIT);
    if let Some(secs) = wait {
        request = request.header("prefer", format!("wait={secs}"));
    }
    let response = request.send().await.expect("the worker answers");
    let status = response.status().as_u16();
    let applied = response
        .headers()
        .get("preference-applied")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap_or_default();
    let state = body["state"].as_str().unwrap_or_default().to_owned();
    (status, state, applied)
}

/// The `bb_remote_worker_reads_held` gauge.
pub(crate) async fn held(worker: &WorkerProc) -> u64 {
    let (status, body) = worker.get_path("/metrics").await;
    assert_eq!(status, 200);
    let text = body.as_str().unwrap().to_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("bb_remote_worker_reads_held "))
        .unwrap_or_else(|| panic!("no held gauge in:\n{text}"))
        .parse()
        .unwrap()
}

/// Wait (bounded) until the worker holds `n` reads.
pub(crate) async fn until_held(worker: &WorkerProc, n: u64) {
    for _ in 0..3000 {
        if held(worker).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the worker never held {n} reads\n{}", worker.log());
}

/// A worker (extra flags) running a fake-bb task that sleeps for 10 minutes, RUNNING.
async fn running_task(extra: &[&str]) -> (Scratch, WorkerProc, String) {
    let scratch = Scratch::new();
    let mut args = scratch.fake_args();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let worker = WorkerProc::start(&args);
    let id = worker.create(&fake_task(&["sleep", "600"])).await;
    worker.wait_until(&id, |s| s == State::Running).await;
    (scratch, worker, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_read_answers_when_the_task_changes_not_when_the_wait_ends() {
    let (_scratch, worker, id) = running_task(&[]).await;
    // Without Prefer: at once, nothing applied.
    let plain = read(&worker.base, &id, None).await;
    assert_eq!(plain, (200, "RUNNING".into(), None));
    let base = worker.base.clone();
    let task_id = id.clone();
    let waiting = tokio::spawn(async move { read(&base, &task_id, Some(25)).await });
    until_held(&worker, 1).await;
    assert_eq!(worker.cancel(&id).await, 200);
    // The task sleeps for 10 minutes: had the wait ended the read, it would say RUNNING.
    let answer = waiting.await.unwrap();
    assert_eq!(answer, (200, "CANCELED".into(), Some("wait=25".into())));
    assert_eq!(held(&worker).await, 0, "the slot is given back");
    // A finished task is answered at once, however long the wait asked: a read held
    // for the 1000 s asked (capped at 30 s) would outlast the client's limit.
    let done = read(&worker.base, &id, Some(1000)).await;
    assert_eq!(done, (200, "CANCELED".into(), Some("wait=30".into())));
    // An unknown task is a 404 at once, wait or not.
    assert_eq!(read(&worker.base, "no-such-task", Some(25)).await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_beyond_the_waiter_cap_are_answered_at_once() {
    let (_scratch, worker, id) = running_task(&["--max-waiters", "2"]).await;
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let (base, task_id) = (worker.base.clone(), id.clone());
        waiting.push(tokio::spawn(async move {
            read(&base, &task_id, Some(25)).await
        }));
    }
    until_held(&worker, 2).await;
    // The third is not held: the state as it is, no Preference-Applied (its client polls).
    let third = read(&worker.base, &id, Some(25)).await;
    assert_eq!(third, (200, "RUNNING".into(), None));
    assert_eq!(worker.cancel(&id).await, 200);
    for held_read in waiting {
        let answer = held_read.await.unwrap();
        assert_eq!(answer, (200, "CANCELED".into(), Some("wait=25".into())));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn long_polls_can_be_turned_off() {
    let (_scratch, worker, id) = running_task(&["--max-waiters", "0"]).await;
    let answer = read(&worker.base, &id, Some(25)).await;
    assert_eq!(answer, (200, "RUNNING".into(), None));
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_answers_held_reads() {
    let (_scratch, worker, id) = running_task(&[]).await;
    let (base, task_id) = (worker.base.clone(), id.clone());
    let waiting = tokio::spawn(async move { read(&base, &task_id, Some(25)).await });
    until_held(&worker, 1).await;
    // Held past the worker's 5 s drain, the read would be cut off (an error, not 200).
    let code = tokio::task::spawn_blocking(move || worker.terminate())
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    let (status, _, applied) = waiting.await.unwrap();
    assert_eq!((status, applied.as_deref()), (200, Some("wait=25")));
}

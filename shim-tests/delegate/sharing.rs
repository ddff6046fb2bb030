//! Callers that share a task, against the real worker running the real bb: a task
//! reused only when it is exactly ours (a forged one carrying our key is not), a
//! caller cancels only what it created, and a caller whose shared task was cancelled
//! under it submits its own.
use std::time::Duration;

use bb_remote::config::Env;
use bb_remote::store::Store;
use bb_remote::tes::types::{State, Task};

use super::harness::{run_blocking, AztecJob, Backend, Spawned, StoreKind};
use crate::support::testbed::Scratch;

const LIMIT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_task_with_our_key_is_not_reused() {
    let backend = Backend::real_bb(StoreKind::File, &[]);
    let scratch = Scratch::new();
    let square = AztecJob::new(&scratch, "square", "SquareArtifact");
    let out = scratch.path("out");

    // A genuine run shows what this invocation's task looks like, and its proof.
    let mut shim = backend.shim(&scratch);
    shim.args(square.prove_argv(&out));
    run_blocking(shim).await.assert_code(0, "genuine proof");
    let genuine_proof = std::fs::read(out.join("proof")).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    let genuine = backend.tasks().await.remove(0);

    // The forgery: the same key, tags, command and paths, but the inputs of another
    // circuit (a longer proof, so it is still live when the shim looks).
    let other = AztecJob::new(&scratch, "hashchain", "SquareArtifact");
    let store = Store::from_url(&backend.store_url, &Env::default()).unwrap();
    let mut forged: Task = Task {
        id: None,
        state: None,
        logs: Vec::new(),
        creation_time: None,
        ..genuine.clone()
    };
    for input in &mut forged.inputs {
        let file = [other.bytecode(), other.vk(), other.witness()]
            .into_iter()
            .find(|f| {
                input
                    .path
                    .ends_with(&*f.file_name().unwrap().to_string_lossy())
            })
            .unwrap_or_else(|| panic!("no forged file for input {}", input.path));
        let blob = store.upload_cas(&file).await.unwrap();
        input.url = Some(store.cas_url(&blob.digest).to_string());
    }
    forged
        .tags
        .insert("bb-remote.attempt".into(), "forged".into());
    forged.outputs[0].url = forged.outputs[0]
        .url
        .replace(&genuine.tags["bb-remote.attempt"], "forged");
    let forged_id = backend
        .worker
        .create(&serde_json::to_value(&forged).unwrap())
        .await;

    let mut shim = backend.shim(&scratch);
    shim.args(square.prove_argv(&out));
    let outcome = run_blocking(shim).await;
    outcome.assert_code(0, "proof next to a forged task");
    assert!(
        outcome
            .stderr
            .contains(&format!("not reusing task {forged_id}")),
        "the forged task was not live or not looked at:\n{}",
        outcome.stderr
    );
    assert_eq!(
        std::fs::read(out.join("proof")).unwrap(),
        genuine_proof,
        "the proof must be this invocation's"
    );
    assert_eq!(backend.tasks().await.len(), 3);
}

/// Two identical invocations, A first (it creates the task) and B once A's task runs
/// (B reuses it). Returns (A, B) running, B having said it reuses.
fn two_callers(backend: &Backend, scratch: &Scratch, job: &AztecJob) -> (Spawned, Spawned) {
    let mut a = backend.shim(scratch);
    a.args(job.prove_argv(&scratch.path("out-a")));
    let a = Spawned::start(&mut a);
    a.wait_for(" RUNNING after ", LIMIT);
    let mut b = backend.shim(scratch);
    b.args(job.prove_argv(&scratch.path("out-b")));
    let b = Spawned::start(&mut b);
    b.wait_for("reusing live task", LIMIT);
    (a, b)
}

fn states(tasks: &[Task]) -> Vec<State> {
    let mut states: Vec<State> = tasks.iter().map(|t| t.state.unwrap()).collect();
    states.sort_by_key(|s| s.as_str());
    states
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reusing_caller_interrupted_does_not_cancel_the_shared_task() {
    let backend = Backend::real_bb(StoreKind::File, &[]);
    let scratch = Scratch::new();
    let job = AztecJob::new(&scratch, "hashchain", "HashArtifact");
    let (a, b) = tokio::task::block_in_place(|| two_callers(&backend, &scratch, &job));
    b.signal(libc::SIGINT);
    let b = tokio::task::block_in_place(|| b.finish(LIMIT));
    b.assert_code(130, "the reusing caller, interrupted");
    let a = tokio::task::block_in_place(|| a.finish(LIMIT));
    a.assert_code(0, "the creator, whose task nobody else may cancel");
    assert!(scratch.path("out-a").join("proof").exists());
    assert_eq!(states(&backend.tasks().await), [State::Complete]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_whose_shared_task_is_cancelled_submits_its_own() {
    let backend = Backend::real_bb(StoreKind::File, &[]);
    let scratch = Scratch::new();
    let job = AztecJob::new(&scratch, "hashchain", "HashArtifact");
    let (a, b) = tokio::task::block_in_place(|| two_callers(&backend, &scratch, &job));
    a.signal(libc::SIGINT);
    let a = tokio::task::block_in_place(|| a.finish(LIMIT));
    a.assert_code(130, "the creator, interrupted: it cancels its task");
    let b = tokio::task::block_in_place(|| b.finish(LIMIT));
    b.assert_code(0, "the reusing caller, whose task was cancelled under it");
    assert!(
        b.stderr
            .contains("cancelled by someone else; submitting it again"),
        "{}",
        b.stderr
    );
    assert!(scratch.path("out-b").join("proof").exists());
    assert_eq!(
        states(&backend.tasks().await),
        [State::Canceled, State::Complete]
    );
}

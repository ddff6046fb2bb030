//! A worker left running: the input cache stays within its byte budget (real bb
//! proofs), and finished tasks with their `runs/` outputs are deleted after the
//! retention time while unfinished ones stay.
use std::collections::BTreeSet;
use std::time::Duration;

use bb_remote::tes::types::State;
use serde_json::json;

use super::harness::{entries, fake_task, Scratch, WorkerProc};
use super::proving::{circuit, real_bb_args};

#[tokio::test]
async fn the_input_cache_stays_within_its_budget_evicting_the_least_recently_used() {
    let scratch = Scratch::new();
    let store = scratch.store();
    let program = store
        .upload_cas(&circuit("square", "program.json"))
        .await
        .unwrap();
    let witness = store
        .upload_cas(&circuit("square", "witness.gz"))
        .await
        .unwrap();
    let pad_size = 64 * 1024;
    let mut pads = Vec::new();
    for i in 0..3u8 {
        let path = scratch.dir.path().join(format!("pad{i}"));
        std::fs::write(&path, vec![i; pad_size]).unwrap();
        pads.push(store.upload_cas(&path).await.unwrap());
    }
    // Room for the circuit and one pad.
    let sizes = std::fs::metadata(circuit("square", "program.json"))
        .unwrap()
        .len()
        + std::fs::metadata(circuit("square", "witness.gz"))
            .unwrap()
            .len();
    let budget = sizes + pad_size as u64;
    let mut args = real_bb_args(&scratch, &scratch.store_url());
    args.extend(["--cache-max-bytes".into(), budget.to_string()]);
    let worker = WorkerProc::start(&args);
    let cache = scratch.data_dir().join("cache/sha256");
    for pad in &pads {
        let task = json!({
            "inputs": [
                { "url": store.cas_url(&program.digest).as_str(), "path": "/w/program.json" },
                { "url": store.cas_url(&witness.digest).as_str(), "path": "/w/witness.gz" },
                { "url": store.cas_url(&pad.digest).as_str(), "path": "/w/pad" }
            ],
            "executors": [{ "image": "bb", "command": [
                "bb", "prove", "-b", "/w/program.json", "-w", "/w/witness.gz",
                "-o", "/w/out", "--write_vk"] }]
        });
        let id = worker.create(&task).await;
        let done = worker.wait_terminal(&id).await;
        assert_eq!(done.state, Some(State::Complete), "{done:#?}");
        // The trim runs right after the task ends; give it a bounded moment.
        let mut total = u64::MAX;
        for _ in 0..500 {
            total = std::fs::read_dir(&cache)
                .unwrap()
                .map(|e| e.unwrap().metadata().unwrap().len())
                .sum();
            if total <= budget {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(total <= budget, "cache {total} bytes > budget {budget}");
    }
    let left: BTreeSet<String> = entries(&cache).into_iter().collect();
    let expected: BTreeSet<String> = [&program, &witness, &pads[2]]
        .iter()
        .map(|u| u.digest.hex())
        .collect();
    assert_eq!(
        left, expected,
        "the older pads go, what every task uses stays"
    );
}

#[tokio::test]
async fn finished_tasks_and_their_outputs_are_deleted_after_retention() {
    let scratch = Scratch::new();
    let mut args = scratch.fake_args();
    // 1.8 s.
    args.extend(["--keep-finished-hours".into(), "0.0005".into()]);
    let worker = WorkerProc::start(&args);
    let store = scratch.store_url();
    let mut finished = fake_task(&["write", "/w/out", "proof"]);
    finished["outputs"] = json!([{ "url": format!("{store}runs/r1/out"), "path": "/w/out" }]);
    let finished = worker.create(&finished).await;
    let done = worker.wait_terminal(&finished).await;
    assert_eq!(done.state, Some(State::Complete), "{done:#?}");
    let output = scratch.store_dir().join("runs/r1/out");
    assert!(output.is_file());
    let running = worker.create(&fake_task(&["sleep", "60"])).await;
    let mut gone = false;
    for _ in 0..300 {
        let (status, _) = worker
            .get_path(&format!("/ga4gh/tes/v1/tasks/{finished}"))
            .await;
        if status == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the finished task was kept\n{}", worker.log());
    assert!(!output.exists(), "its runs/ output was kept");
    let task = worker.get(&running).await;
    assert!(
        !task.state.unwrap().is_terminal(),
        "an unfinished task must stay: {task:?}"
    );
}

/// Whoever can write the shared store can put a huge object under a `cas/` key: the
/// worker must stop at its cache budget (not fill its disk and only then find the
/// digest wrong), fail the task with a system log saying why, and keep no file.
#[tokio::test]
async fn a_huge_object_under_a_cas_key_is_refused_at_the_cache_budget() {
    let scratch = Scratch::new();
    let store = scratch.store();
    let claimed = bb_remote::store::Digest::of_bytes(b"a small witness");
    let blob = scratch.store_dir().join("cas/sha256").join(claimed.hex());
    std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
    // 4 GiB announced, sparse: nothing is really written to this test's disk.
    std::fs::File::create(&blob)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let budget = 1_000_000u64;
    let mut args = scratch.fake_args();
    args.extend(["--cache-max-bytes".into(), budget.to_string()]);
    let worker = WorkerProc::start(&args);
    let task = json!({
        "inputs": [{ "url": store.cas_url(&claimed).as_str(), "path": "/w/witness.gz" }],
        "executors": [{ "image": "bb", "command": ["bb", "echo"] }]
    });
    let id = worker.create(&task).await;
    let done = worker.wait_terminal(&id).await;
    assert_eq!(done.state, Some(State::SystemError), "{done:#?}");
    let system = done.logs[0].system_logs.join("\n");
    for want in [
        "larger than 1000000 bytes",
        "--cache-max-bytes",
        &claimed.hex(),
    ] {
        assert!(system.contains(want), "{want:?} missing in: {system}");
    }
    assert!(
        worker.log().contains("larger than 1000000 bytes"),
        "{}",
        worker.log()
    );
    let cache = scratch.data_dir().join("cache/sha256");
    assert!(
        entries(&cache).is_empty(),
        "left in the cache: {:?}",
        entries(&cache)
    );
}

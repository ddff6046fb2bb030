//! Task lifecycle with a fake bb: outputs and digests, cancel, crash and restart,
//! admission, clean shutdown.
use std::path::Path;

use bb_remote::store::Digest;
use bb_remote::tes::types::{State, Task};
use chrono::DateTime;
use serde_json::json;

use super::harness::{entries, fake_task, Scratch, WorkerProc};

#[tokio::test]
async fn outputs_are_uploaded_with_digests_and_the_sandbox_is_removed() {
    let scratch = Scratch::new();
    let worker = WorkerProc::start(&scratch.fake_args());
    let store = scratch.store_url();
    let input = scratch.dir.path().join("input.txt");
    std::fs::write(&input, "input bytes").unwrap();
    let uploaded = scratch.store().upload_cas(&input).await.unwrap();
    let task = json!({
        "inputs": [
            { "url": format!("{store}cas/sha256/{}", uploaded.digest), "path": "/work/in/a.txt" },
            { "content": "inline", "path": "/work/in/b.txt" }
        ],
        "outputs": [
            { "url": format!("{store}runs/1/file"), "path": "/work/out/file", "type": "FILE" },
            { "url": format!("{store}runs/1/dir"), "path": "/work/dir", "type": "DIRECTORY" }
        ],
        "executors": [
            { "image": "any", "command": ["bb", "write", "/work/out/file", "proof"] },
            { "image": "any", "command": ["bb", "write", "/work/dir/sub/vk", "key"] },
            { "image": "any", "command": ["bb", "echo", "--x=/work/in/a.txt", "-c", "/mine"],
              "stdout": "/work/dir/echo.txt", "workdir": "/work" }
        ]
    });
    let id = worker.create(&task).await;
    let done = worker.wait_terminal(&id).await;
    assert_eq!(
        done.state,
        Some(State::Complete),
        "{done:#?}\n{}",
        worker.log()
    );
    let log = &done.logs[0];
    let data = scratch.data_dir();
    let sandbox_root = data.join("sandboxes").join(&id).join("root");
    let echo = log.logs[2].stdout.as_deref().unwrap();
    let crs = data.join("crs");
    let expected_argv = format!(
        "argv: -c {} echo --x={}/work/in/a.txt\n",
        crs.display(),
        sandbox_root.display()
    );
    assert!(echo.contains(&expected_argv), "{echo}");
    assert!(
        echo.contains(&format!("HOME={}", data.join("home").display())),
        "{echo}"
    );
    assert!(
        echo.contains(&format!("pwd={}/work", sandbox_root.display())),
        "{echo}"
    );
    assert!(
        !echo.contains("/mine"),
        "the task's own -c must be dropped: {echo}"
    );

    let mut outputs: Vec<_> = log
        .outputs
        .iter()
        .map(|o| (o.path.as_str(), o.url.as_str(), o.size_bytes.as_str()))
        .collect();
    outputs.sort();
    let echo_len = std::fs::read(scratch.store_dir().join("runs/1/dir/echo.txt"))
        .unwrap()
        .len()
        .to_string();
    let want = [
        (
            "/work/dir/echo.txt",
            format!("{store}runs/1/dir/echo.txt"),
            echo_len,
        ),
        (
            "/work/dir/sub/vk",
            format!("{store}runs/1/dir/sub/vk"),
            "3".into(),
        ),
        ("/work/out/file", format!("{store}runs/1/file"), "5".into()),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(p, u, s)| (*p, u.as_str(), s.as_str()))
        .collect();
    assert_eq!(outputs, want);
    for (path, rel) in [
        ("/work/out/file", "runs/1/file"),
        ("/work/dir/sub/vk", "runs/1/dir/sub/vk"),
    ] {
        let bytes = std::fs::read(scratch.store_dir().join(rel)).unwrap();
        assert_eq!(
            log.metadata[&format!("sha256:{path}")],
            Digest::of_bytes(&bytes).hex()
        );
    }
    assert!(
        entries(&data.join("sandboxes")).is_empty(),
        "sandbox left behind"
    );
    // Its files are deleted just after the end is recorded: bounded disk.
    wait_empty(&data.join("discarded")).await;
    assert_eq!(entries(&data.join("cache/sha256")), [uploaded.digest.hex()]);
}

/// Wait (a generous bound) until `dir` has no entries.
async fn wait_empty(dir: &Path) {
    for _ in 0..1000 {
        if entries(dir).is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{} keeps {:?}", dir.display(), entries(dir));
}

#[tokio::test]
async fn failing_executor_is_executor_error_with_its_stderr() {
    let scratch = Scratch::new();
    let worker = WorkerProc::start(&scratch.fake_args());
    let id = worker.create(&fake_task(&["fail"])).await;
    let done = worker.wait_terminal(&id).await;
    assert_eq!(done.state, Some(State::ExecutorError));
    let exec = &done.logs[0].logs[0];
    assert_eq!(exec.exit_code, 7);
    assert_eq!(exec.stderr.as_deref(), Some("fake bb failed\n"));
}

/// Wait for a pid file the fake bb writes inside the task's sandbox.
async fn wait_for_pid(data: &Path, id: &str, name: &str) -> u32 {
    let path = data.join("sandboxes").join(id).join("root/work").join(name);
    for _ in 0..3000 {
        if let Some(pid) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no pid file at {}", path.display());
}

fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.contains(") Z ")
}

async fn wait_dead(pid: u32) {
    for _ in 0..500 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("process {pid} is still alive");
}

#[tokio::test]
async fn cancel_stops_the_running_process_and_a_queued_task() {
    let scratch = Scratch::new();
    let mut args = scratch.fake_args();
    args.extend(["--cpus".into(), "1".into()]);
    let worker = WorkerProc::start(&args);
    let running = worker
        .create(&fake_task(&["sleep", "60", "/work/pid"]))
        .await;
    let queued = worker
        .create(&fake_task(&["sleep", "60", "/work/pid"]))
        .await;
    let pid = wait_for_pid(&scratch.data_dir(), &running, "pid").await;
    assert!(alive(pid));
    assert_eq!(worker.get(&queued).await.state, Some(State::Queued));
    assert_eq!(worker.cancel(&queued).await, 200);
    assert_eq!(worker.cancel(&running).await, 200);
    let done = worker.wait_terminal(&running).await;
    assert_eq!(done.state, Some(State::Canceled), "{done:#?}");
    wait_dead(pid).await;
    assert_eq!(worker.get(&queued).await.state, Some(State::Canceled));
    assert!(entries(&scratch.data_dir().join("sandboxes")).is_empty());
    // Cancelling a finished task changes nothing.
    assert_eq!(worker.cancel(&running).await, 200);
    assert_eq!(worker.get(&running).await.state, Some(State::Canceled));
}

#[tokio::test]
async fn crash_then_restart_recovers_every_task() {
    let scratch = Scratch::new();
    let mut args = scratch.fake_args();
    args.extend(["--cpus".into(), "1".into()]);
    let worker = WorkerProc::start(&args);
    let finished = worker.create(&fake_task(&["echo", "done before"])).await;
    worker.wait_terminal(&finished).await;
    let running = worker
        .create(&fake_task(&["sleep", "60", "/work/pid"]))
        .await;
    let queued = worker.create(&fake_task(&["echo", "after restart"])).await;
    let pid = wait_for_pid(&scratch.data_dir(), &running, "pid").await;
    // RUNNING is written while bb starts; once a client sees it, it is on disk.
    worker.wait_until(&running, |s| s == State::Running).await;
    worker.kill();
    // The parent-death signal takes the orphaned bb down with the worker.
    wait_dead(pid).await;
    // A sandbox set aside by a task that ended, not yet deleted when the worker died.
    let discarded = scratch.data_dir().join("discarded/0000000000-left");
    std::fs::create_dir_all(discarded.join("root/work")).unwrap();
    std::fs::write(discarded.join("root/work/proof"), "stale").unwrap();

    let worker = WorkerProc::start(&args);
    assert!(entries(&scratch.data_dir().join("discarded")).is_empty());
    let crashed = worker.get(&running).await;
    assert_eq!(crashed.state, Some(State::SystemError));
    let system_logs = crashed.logs[0].system_logs.join("\n");
    assert!(
        system_logs.contains("worker stopped while this task was running"),
        "{system_logs}"
    );
    let after = worker.wait_terminal(&queued).await;
    assert_eq!(after.state, Some(State::Complete));
    assert!(after.logs[0].logs[0]
        .stdout
        .as_deref()
        .unwrap()
        .contains("after restart"));
    assert_eq!(worker.get(&finished).await.state, Some(State::Complete));
    let fresh = worker.create(&fake_task(&["echo", "new"])).await;
    assert_eq!(
        worker.wait_terminal(&fresh).await.state,
        Some(State::Complete)
    );
    assert!(entries(&scratch.data_dir().join("sandboxes")).is_empty());
}

/// kill -9 as soon as bb has started: RUNNING may or may not be on disk yet (its
/// commit overlaps bb's start). Either way nothing is lost: after the restart the task
/// runs again to COMPLETE (RUNNING was not yet durable) or ends SYSTEM_ERROR saying
/// why (it was); it never stays unfinished, and no sandbox is left.
#[tokio::test]
async fn a_kill_right_after_bb_starts_loses_nothing() {
    let scratch = Scratch::new();
    let args = scratch.fake_args();
    for round in 0..3 {
        let worker = WorkerProc::start(&args);
        let id = worker
            .create(&fake_task(&["sleep", "0.2", "/work/pid"]))
            .await;
        let pid = wait_for_pid(&scratch.data_dir(), &id, "pid").await;
        worker.kill();
        wait_dead(pid).await;
        let worker = WorkerProc::start(&args);
        let done = worker.wait_terminal(&id).await;
        match done.state {
            Some(State::Complete) => assert_eq!(done.logs.len(), 1, "{done:#?}"),
            Some(State::SystemError) => {
                let why = done.logs[0].system_logs.join("\n");
                assert!(
                    why.contains("worker stopped while this task was running"),
                    "{why}"
                );
            }
            other => panic!("round {round}: {other:?}\n{done:#?}"),
        }
        assert!(entries(&scratch.data_dir().join("sandboxes")).is_empty());
        wait_empty(&scratch.data_dir().join("discarded")).await;
    }
}

#[tokio::test]
async fn sigterm_ends_running_tasks_and_keeps_queued_ones() {
    let scratch = Scratch::new();
    let mut args = scratch.fake_args();
    args.extend(["--cpus".into(), "1".into()]);
    let worker = WorkerProc::start(&args);
    let running = worker
        .create(&fake_task(&["sleep", "60", "/work/pid"]))
        .await;
    let queued = worker.create(&fake_task(&["echo", "later"])).await;
    let pid = wait_for_pid(&scratch.data_dir(), &running, "pid").await;
    assert_eq!(worker.terminate(), Some(0));
    assert!(!alive(pid), "bb must be stopped before the worker exits");

    let worker = WorkerProc::start(&args);
    let stopped = worker.get(&running).await;
    assert_eq!(stopped.state, Some(State::SystemError));
    assert!(
        stopped.logs[0].system_logs.join(" ").contains("shut down"),
        "{stopped:#?}"
    );
    assert_eq!(
        worker.wait_terminal(&queued).await.state,
        Some(State::Complete)
    );
}

/// (start, end) of a task's single executor, from its log.
fn span(task: &Task) -> (DateTime<chrono::FixedOffset>, DateTime<chrono::FixedOffset>) {
    let exec = &task.logs[0].logs[0];
    let parse = |t: &Option<String>| DateTime::parse_from_rfc3339(t.as_deref().unwrap()).unwrap();
    (parse(&exec.start_time), parse(&exec.end_time))
}

async fn run_pair(worker: &WorkerProc, ram_gb: f64) -> (Task, Task) {
    let mut task = fake_task(&["sleep", "1"]);
    task["resources"] = json!({ "ram_gb": ram_gb, "cpu_cores": 1 });
    let a = worker.create(&task).await;
    let b = worker.create(&task).await;
    (
        worker.wait_terminal(&a).await,
        worker.wait_terminal(&b).await,
    )
}

#[tokio::test]
async fn admission_serialises_tasks_that_do_not_fit_together() {
    let scratch = Scratch::new();
    let mut args = scratch.fake_args();
    args.extend(["--cpus", "4", "--memory", "4"].map(String::from));
    let worker = WorkerProc::start(&args);

    let (a, b) = run_pair(&worker, 3.0).await;
    let ((a_start, a_end), (b_start, b_end)) = (span(&a), span(&b));
    assert!(
        a_end <= b_start || b_end <= a_start,
        "3+3 GiB overlapped on 4 GiB: {a_start}..{a_end} vs {b_start}..{b_end}"
    );

    let (a, b) = run_pair(&worker, 2.0).await;
    let ((a_start, a_end), (b_start, b_end)) = (span(&a), span(&b));
    assert!(
        a_start < b_end && b_start < a_end,
        "2+2 GiB should run together: {a_start}..{a_end} vs {b_start}..{b_end}"
    );
}

/// A task tagged `tes::inline::TAG` gets its small outputs back in the log, within the
/// smaller of its budget and the worker's, in output order; the rest is uploaded.
#[tokio::test]
async fn small_outputs_of_a_task_that_asks_come_back_in_the_log_not_the_store() {
    use bb_remote::tes::inline;
    let scratch = Scratch::new();
    let mut args = scratch.fake_args();
    args.extend(["--inline-output-bytes".into(), "9".into()]);
    let worker = WorkerProc::start(&args);
    let store = scratch.store_url();
    let task = |run: &str, budget: Option<&str>| {
        let mut task = json!({
            "outputs": [
                { "url": format!("{store}runs/{run}/file"), "path": "/work/out/file", "type": "FILE" },
                { "url": format!("{store}runs/{run}/dir"), "path": "/work/dir", "type": "DIRECTORY" }
            ],
            "executors": [
                { "image": "any", "command": ["bb", "write", "/work/out/file", "proof"] },
                { "image": "any", "command": ["bb", "write", "/work/dir/a", "0123456789"] },
                { "image": "any", "command": ["bb", "write", "/work/dir/b", "key"] }
            ]
        });
        if let Some(budget) = budget {
            task["tags"] = json!({ inline::TAG: budget });
        }
        task
    };
    // Asked for 100, the worker allows 9: `file` (5) and `b` (3) fit, `a` (10) not.
    // Not asked: everything is uploaded.
    for (run, budget, in_log) in [
        ("1", Some("100"), &["/work/out/file", "/work/dir/b"][..]),
        ("2", None, &[][..]),
        ("3", Some("junk"), &[][..]),
    ] {
        let id = worker.create(&task(run, budget)).await;
        let done = worker.wait_terminal(&id).await;
        assert_eq!(done.state, Some(State::Complete), "{done:#?}");
        let log = &done.logs[0];
        assert_eq!(log.outputs.len(), 3);
        for (path, rel, bytes) in [
            ("/work/out/file", "file", &b"proof"[..]),
            ("/work/dir/a", "dir/a", b"0123456789"),
            ("/work/dir/b", "dir/b", b"key"),
        ] {
            let listed = log.outputs.iter().find(|o| o.path == path).unwrap();
            assert_eq!(listed.size_bytes, bytes.len().to_string());
            assert_eq!(listed.url, format!("{store}runs/{run}/{rel}"));
            assert_eq!(
                log.metadata[&format!("sha256:{path}")],
                Digest::of_bytes(bytes).hex()
            );
            let stored = scratch.store_dir().join(format!("runs/{run}/{rel}"));
            let carried = log.metadata.get(&inline::content_key(path));
            if in_log.contains(&path) {
                let carried = inline::decode(carried.unwrap(), bytes.len() as u64).unwrap();
                assert_eq!(carried, bytes, "{path}");
                assert!(!stored.exists(), "{path} was uploaded too");
            } else {
                assert!(carried.is_none(), "run {run}: {path} in the log");
                assert_eq!(std::fs::read(&stored).unwrap(), bytes, "{path}");
            }
        }
    }
}

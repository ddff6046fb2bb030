//! A full disk under the worker's data directory (a small tmpfs mounted for the test;
//! mounting needs root, and the test says so and does nothing without it): the worker
//! reports unhealthy while its database cannot be written, recovers without a restart
//! once space is back, and leaves no task QUEUED or RUNNING for ever.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use super::harness::{fake_task, Scratch, WorkerProc};

/// A tmpfs mounted on a directory; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Self(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Write zeros to `path` until the file system is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    for _ in 0..1024 {
        if file.write_all(&chunk).and_then(|()| file.flush()).is_err() {
            return;
        }
    }
    panic!("the file system never filled up");
}

#[tokio::test]
#[expect(
    clippy::print_stderr,
    reason = "a check that cannot run here says so in the test output"
)]
async fn a_full_disk_is_reported_and_recovered_from_without_a_restart() {
    let scratch = Scratch::new();
    let data = scratch.data_dir();
    let Some(_tmpfs) = Tmpfs::mount(&data, "8m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root); ENOSPC not exercised");
        return;
    };
    let worker = WorkerProc::start(&scratch.fake_args());
    let first = worker.create(&fake_task(&["echo", "before"])).await;
    worker.wait_terminal(&first).await;

    fill(&data.join("filler"));
    let big_name = "n".repeat(256 * 1024);
    let mut refused = None;
    for i in 0..64 {
        let mut task = fake_task(&["echo", "during"]);
        task["name"] = json!(format!("{i}-{big_name}"));
        let (status, body) = worker.post_raw(task.to_string()).await;
        if status != 200 {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("the full disk never stopped a create");
    assert_eq!(status, 503, "{body}");
    let (status, info) = worker.get_path("/ga4gh/tes/v1/service-info").await;
    assert_eq!(status, 503, "{info}");
    assert!(
        info["message"].as_str().unwrap().contains("unhealthy"),
        "{info}"
    );
    let (_, metrics) = worker.get_path("/metrics").await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("bb_remote_worker_healthy 0"),
        "{metrics}"
    );

    std::fs::remove_file(data.join("filler")).unwrap();
    let mut healthy = false;
    for _ in 0..300 {
        if worker.get_path("/ga4gh/tes/v1/service-info").await.0 == 200 {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "never healthy again\n{}", worker.log());
    let after = worker.create(&fake_task(&["echo", "after"])).await;
    let done = worker.wait_terminal(&after).await;
    assert_eq!(
        done.state,
        Some(bb_remote::tes::types::State::Complete),
        "{done:#?}"
    );
    // Every task ends: none waits for ever in QUEUED or RUNNING.
    let mut stuck = Vec::new();
    for _ in 0..300 {
        let (_, list) = worker
            .get_path("/ga4gh/tes/v1/tasks?view=MINIMAL&page_size=2048")
            .await;
        stuck = list["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| {
                !["COMPLETE", "SYSTEM_ERROR", "EXECUTOR_ERROR", "CANCELED"]
                    .contains(&t["state"].as_str().unwrap())
            })
            .cloned()
            .collect();
        if stuck.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        stuck.is_empty(),
        "tasks never ended: {stuck:?}\n{}",
        worker.log()
    );
}

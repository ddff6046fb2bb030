//! The worker as an attacker holding the token would try it: argv forms that bb reads
//! as paths, and a bb that ignores its argv (confinement). Real bb 5.0.0 where bb runs.
use std::path::Path;

use bb_remote::tes::types::State;
use serde_json::json;

use super::harness::{Scratch, WorkerProc};
use super::proving::{circuit, real_bb_args};

/// Upload the square circuit's program and return its CAS URL.
async fn upload_program(scratch: &Scratch) -> String {
    let store = scratch.store();
    let program = circuit("square", "program.json");
    let uploaded = store.upload_cas(&program).await.unwrap();
    store.cas_url(&uploaded.digest).to_string()
}

#[tokio::test]
async fn gates_and_glued_short_options_run_inside_the_sandbox() {
    let scratch = Scratch::new();
    let worker = WorkerProc::start(&real_bb_args(&scratch, &scratch.store_url()));
    let program = upload_program(&scratch).await;
    let store = scratch.store_url();
    // `gates` takes no -c after the subcommand in bb 5 (exit 109 if given one there).
    let gates = json!({
        "inputs": [{ "url": program, "path": "/work/in/program.json" }],
        "executors": [{ "image": "bb", "command": ["bb", "gates", "-b", "/work/in/program.json"] }]
    });
    // Values glued to short options are container paths too: before, `-o/work/out`
    // reached bb untouched and it wrote to the host's /work/out.
    let glued = json!({
        "inputs": [{ "url": program, "path": "/work/in/program.json" }],
        "outputs": [{ "url": format!("{store}runs/glued/vk"), "path": "/work/out/vk" }],
        "executors": [{ "image": "bb",
                        "command": ["bb", "write_vk", "-b/work/in/program.json", "-o/work/out"] }]
    });
    let gates_id = worker.create(&gates).await;
    let glued_id = worker.create(&glued).await;
    let done = worker.wait_terminal(&gates_id).await;
    assert_eq!(done.state, Some(State::Complete), "{done:#?}");
    let exec = &done.logs[0].logs[0];
    assert_eq!(exec.exit_code, 0, "{exec:#?}");
    assert!(
        exec.stdout.as_deref().unwrap().contains("circuit_size"),
        "{exec:#?}"
    );
    let done = worker.wait_terminal(&glued_id).await;
    assert_eq!(done.state, Some(State::Complete), "{done:#?}");
    assert_eq!(done.logs[0].outputs.len(), 1, "{done:#?}");
    assert!(scratch.store_dir().join("runs/glued/vk").is_file());
}

/// A TEST DOUBLE for a bb that ignores its argv: it tries to read the task database,
/// to read the worker's environment (its token) and to write outside its sandbox, and
/// says which attempts worked.
fn hostile_bb(scratch: &Scratch, worker_data: &Path, planted: &Path) -> String {
    let script = format!(
        "#!/bin/sh\n\
         cat '{db}' >/dev/null 2>&1 && echo read-db\n\
         grep -q BB_REMOTE_WORKER_TOKEN /proc/$PPID/environ 2>/dev/null && echo read-environ\n\
         echo x 2>/dev/null > '{planted}' && echo wrote-outside\n\
         echo x > ./inside && echo wrote-inside\n",
        db = worker_data.join("tasks.redb").display(),
        planted = planted.display(),
    );
    let path = scratch.dir.path().join("hostile-bb");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

async fn run_hostile(confine: bool) -> (String, bool) {
    let scratch = Scratch::new();
    let planted = scratch.dir.path().join("planted");
    let bb = hostile_bb(&scratch, &scratch.data_dir(), &planted);
    let mut args = scratch.store_args();
    // The token on the command line (for the harness) and in the environment (where
    // a process running as the worker's user could read it from /proc).
    args.extend(["--bb".into(), bb, "--token".into(), "s3cret".into()]);
    if !confine {
        args.push("--no-confine".into());
    }
    let worker = WorkerProc::start_with_env(&args, &[("BB_REMOTE_WORKER_TOKEN", "s3cret")]);
    let id = worker
        .create(&json!({ "executors": [{ "image": "x", "command": ["bb", "prove"] }] }))
        .await;
    let done = worker.wait_terminal(&id).await;
    let stdout = done.logs[0].logs[0].stdout.clone().unwrap_or_default();
    (stdout, planted.exists())
}

#[tokio::test]
async fn confinement_stops_a_bb_that_ignores_its_argv() {
    let (confined, planted) = run_hostile(true).await;
    assert_eq!(confined, "wrote-inside\n", "confined bb got out");
    assert!(!planted, "a file was written outside the sandbox");
    // The same bb unconfined does get out: the test above can fail.
    let (open, planted) = run_hostile(false).await;
    assert!(
        open.contains("read-db") && open.contains("read-environ") && planted,
        "{open}"
    );
}

/// A store URL with a password (a WebDAV store takes it in the URL). The store library
/// quotes request URLs in its errors; the worker logs them and puts them in the task's
/// system log, which every client holding the token reads. Neither shows the password.
#[tokio::test]
async fn a_store_password_never_reaches_the_log_or_a_system_log() {
    let scratch = Scratch::new();
    // Nothing listens on the discard port: the upload fails after a few quick retries,
    // and the store client's error quotes the PUT URL, password included.
    let store = "http://prover:hunter2@127.0.0.1:9/bb/";
    let worker = WorkerProc::start(&scratch.fake_args_on(store));
    let mut task = super::harness::fake_task(&["write", "/work/out/file", "proof"]);
    task["outputs"] = json!([
        { "url": format!("{store}runs/1/file"), "path": "/work/out/file", "type": "FILE" }
    ]);
    let id = worker.create(&task).await;
    let done = worker.wait_terminal(&id).await;
    assert_eq!(done.state, Some(State::SystemError), "{done:#?}");
    let system_logs = done.logs[0].system_logs.join("\n");
    assert!(system_logs.contains("uploading output"), "{system_logs}");
    assert!(!system_logs.contains("hunter2"), "{system_logs}");
    let log = worker.log();
    assert!(log.contains("system error"), "{log}");
    assert!(!log.contains("hunter2"), "{log}");
}

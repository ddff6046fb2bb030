//! The HTTP surface: auth, bad input (each a 4xx, nothing left behind), views, listing.
use serde_json::{json, Value};

use super::harness::{entries, fake_task, files_under, Scratch, WorkerProc};

#[test]
fn refuses_to_listen_publicly_without_a_token() {
    let scratch = Scratch::new();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bb-remote"))
        .args(["worker", "--listen", "0.0.0.0:0"])
        .args(scratch.fake_args())
        .env_remove("BB_REMOTE_WORKER_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A configuration error of the operator tool: 78, as the shim's (README, Exit codes).
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("without a bearer token") && stderr.contains("0.0.0.0:0"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "stdout belongs to bb");
}

#[test]
fn a_failure_that_is_not_configuration_still_exits_1() {
    let scratch = Scratch::new();
    // The address is taken: nothing the operator wrote is invalid, the worker cannot start.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bb-remote"))
        .args([
            "worker",
            "--listen",
            &taken.local_addr().unwrap().to_string(),
        ])
        .args(scratch.fake_args())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("listening on 127.0.0.1:"), "{stderr}");
}

#[test]
fn limits_under_which_no_task_could_run_are_refused_at_start() {
    let scratch = Scratch::new();
    for (flag, value, needle) in [
        ("--cpus", "0", "\"0\" for --cpus"),
        ("--memory", "nan", "\"NaN\" for --memory"),
        ("--memory", "0", "\"0\" for --memory"),
        ("--max-body", "0", "\"0\" for --max-body"),
        (
            "--keep-finished-hours",
            "0",
            "\"0\" for --keep-finished-hours",
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_bb-remote"))
            .args(["worker", "--listen", "127.0.0.1:0", flag, value])
            .args(scratch.fake_args())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(78), "{flag} {value}: {stderr}");
        assert!(stderr.contains(needle), "{flag} {value}: {stderr}");
        assert!(!stderr.contains("listening on"), "{stderr}");
    }
}

#[tokio::test]
async fn token_is_required_when_set() {
    let scratch = Scratch::new();
    // From the environment variable; the harness sends no token.
    let worker = WorkerProc::start_with_env(
        &scratch.fake_args(),
        &[("BB_REMOTE_WORKER_TOKEN", "s3cret")],
    );
    let (status, body) = worker.post_raw(fake_task(&["echo"]).to_string()).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("Authorization"),
        "{body}"
    );
    let http = reqwest::Client::new();
    let url = format!("{}/ga4gh/tes/v1/tasks", worker.base);
    let wrong = http.get(&url).bearer_auth("guess");
    let (status, body) = worker.send(wrong).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("wrong"),
        "{body}"
    );
    let right = http.get(&url).bearer_auth("s3cret");
    assert_eq!(worker.send(right).await.0, 200);
    // The scheme is case-insensitive (RFC 7235).
    for scheme in ["bearer", "BEARER"] {
        let request = http
            .get(&url)
            .header("Authorization", format!("{scheme} s3cret"));
        assert_eq!(worker.send(request).await.0, 200, "{scheme}");
    }
}

#[tokio::test]
async fn bad_input_is_a_4xx_naming_the_problem_and_leaves_nothing_behind() {
    let scratch = Scratch::new();
    // Only the "fake" image is served (no --bb default).
    let mut args = scratch.store_args();
    args.extend(
        [
            "--token",
            "t",
            "--max-body",
            "4096",
            "--memory",
            "2",
            "--cpus",
            "2",
        ]
        .map(String::from),
    );
    args.extend([
        "--image".into(),
        format!("fake={}", scratch.fake_bb().display()),
    ]);
    let worker = WorkerProc::start(&args);
    let store = scratch.store_url();
    let cas = format!("{store}cas/sha256/{}", "ab".repeat(32));
    let with_input = |url: &str, path: &str| {
        let mut task = fake_task(&["echo"]);
        task["inputs"] = json!([{ "url": url, "path": path }]);
        task
    };
    let mut escaping_output = fake_task(&["echo"]);
    escaping_output["outputs"] = json!([{ "url": format!("{store}o"), "path": "/w/../../x" }]);
    let mut outside_output = fake_task(&["echo"]);
    outside_output["outputs"] = json!([{ "url": "file:///tmp/elsewhere", "path": "/w/x" }]);
    let mut too_big = fake_task(&["echo"]);
    too_big["resources"] = json!({ "ram_gb": 3.0 });
    let mut unknown_image = fake_task(&["echo"]);
    unknown_image["executors"][0]["image"] = json!("nope");
    let mut preload = fake_task(&["echo"]);
    preload["executors"][0]["env"] = json!({ "BB_SCHEME": "ultra_honk", "LD_PRELOAD": "/x.so" });
    let mut cas_output = fake_task(&["echo"]);
    cas_output["outputs"] = json!([{ "url": cas.clone(), "path": "/w/x" }]);
    let mut top_output = fake_task(&["echo"]);
    top_output["outputs"] = json!([{ "url": format!("{store}x"), "path": "/w/x" }]);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "malformed JSON",
            "{\"executors\": [".into(),
            400,
            "not a valid TES task",
        ),
        (
            "wrong type",
            "{\"executors\": 3}".into(),
            400,
            "not a valid TES task",
        ),
        (
            "no executors",
            "{\"name\": \"x\"}".into(),
            400,
            "no executors",
        ),
        (
            "input outside store",
            with_input("file:///etc/passwd", "/in/x").to_string(),
            400,
            "inputs[0].url",
        ),
        (
            "input not CAS",
            with_input(&format!("{store}runs/x"), "/in/x").to_string(),
            400,
            "content-addressed",
        ),
        (
            "input path escapes",
            with_input(&cas, "/in/../../etc/x").to_string(),
            400,
            "escapes the sandbox",
        ),
        (
            "relative input path",
            with_input(&cas, "in/x").to_string(),
            400,
            "not an absolute",
        ),
        (
            "argv escapes",
            fake_task(&["echo", "/work/../../../etc/passwd"]).to_string(),
            400,
            "command[2]",
        ),
        (
            "output escapes",
            escaping_output.to_string(),
            400,
            "outputs[0].path",
        ),
        (
            "output outside store",
            outside_output.to_string(),
            400,
            "outputs[0].url",
        ),
        (
            "relative argv path climbing out",
            fake_task(&["write", "../../../tasks.redb", "x"]).to_string(),
            400,
            "command[2]",
        ),
        (
            "glued short option climbing out",
            fake_task(&["echo", "-o/w/../../x"]).to_string(),
            400,
            "command[2]",
        ),
        (
            "NUL byte in an argument",
            fake_task(&["echo", "a\u{0}b"]).to_string(),
            400,
            "command[2] contains a NUL byte",
        ),
        (
            "env outside the allowlist",
            preload.to_string(),
            400,
            "\"LD_PRELOAD\" may not be set",
        ),
        (
            "output into cas/",
            cas_output.to_string(),
            400,
            "outputs[0].url",
        ),
        ("output outside runs/", top_output.to_string(), 400, "runs/"),
        ("larger than machine", too_big.to_string(), 400, "--memory"),
        (
            "unknown image",
            unknown_image.to_string(),
            400,
            "\"nope\" is not served",
        ),
        ("oversized body", "x".repeat(5000), 413, "larger than"),
    ];
    for (what, body, want_status, want_text) in cases {
        let (status, reply) = worker.post_raw(body).await;
        let message = reply["message"].as_str().unwrap_or_default();
        assert_eq!(status, want_status, "{what}: {reply}");
        assert!(
            message.contains(want_text),
            "{what}: {message:?} lacks {want_text:?}"
        );
        assert_eq!(reply["code"], want_status, "{what}: {reply}");
    }
    // Nothing was created: no task, no sandbox, nothing in the store.
    let (status, list) = worker.get_path("/ga4gh/tes/v1/tasks").await;
    assert_eq!((status, list["tasks"].clone()), (200, json!([])));
    assert!(entries(&scratch.data_dir().join("sandboxes")).is_empty());
    assert!(files_under(&scratch.store_dir()).is_empty());
    // Methods a path does not serve: 405, a JSON body and the methods it does serve.
    let http = reqwest::Client::new();
    for (path, allow) in [
        ("/ga4gh/tes/v1/tasks", "GET, HEAD, POST"),
        ("/ga4gh/tes/v1/service-info", "GET, HEAD"),
        ("/ga4gh/tes/v1/tasks/x", "GET, HEAD, POST"),
        ("/metrics", "GET, HEAD"),
    ] {
        let reply = http
            .delete(format!("{}{path}", worker.base))
            .bearer_auth("t")
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 405, "{path}");
        assert_eq!(reply.headers()["allow"], allow, "{path}");
        let body: serde_json::Value = reply.json().await.unwrap();
        assert_eq!(body["code"], 405, "{path}: {body}");
        assert!(body["message"].as_str().unwrap().contains(allow), "{body}");
    }
    // page_size outside 1..=2048.
    for size in ["0", "2049", "-1"] {
        let (status, reply) = worker
            .get_path(&format!("/ga4gh/tes/v1/tasks?page_size={size}"))
            .await;
        assert_eq!(status, 400, "page_size={size}: {reply}");
        assert!(reply["message"].as_str().unwrap().contains("page_size"));
    }
    // Unknown task and unknown query parameter.
    assert_eq!(worker.get_path("/ga4gh/tes/v1/tasks/nope").await.0, 404);
    assert_eq!(worker.cancel("nope").await, 404);
    assert_eq!(
        worker
            .get_path("/ga4gh/tes/v1/tasks?view=EVERYTHING")
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn views_listing_service_info_and_metrics() {
    let scratch = Scratch::new();
    let worker = WorkerProc::start(&scratch.fake_args());
    let mut ids = Vec::new();
    for (i, colour) in ["red", "blue", "red"].iter().enumerate() {
        let mut task = fake_task(&["echo", "hello"]);
        task["name"] = json!(format!("job-{i}"));
        task["tags"] = json!({ "colour": colour });
        ids.push(worker.create(&task).await);
    }
    for id in &ids {
        worker.wait_terminal(id).await;
    }
    let (_, minimal) = worker
        .get_path(&format!("/ga4gh/tes/v1/tasks/{}", ids[0]))
        .await;
    assert_eq!(minimal, json!({ "id": ids[0], "state": "COMPLETE" }));
    let (_, basic) = worker
        .get_path(&format!("/ga4gh/tes/v1/tasks/{}?view=BASIC", ids[0]))
        .await;
    assert_eq!(basic["name"], "job-0");
    assert_eq!(basic["logs"][0]["logs"][0]["exit_code"], 0);
    assert_eq!(basic["logs"][0]["logs"][0].get("stdout"), None);
    let full = worker.get(&ids[0]).await;
    let stdout = full.logs[0].logs[0].stdout.clone().unwrap();
    assert!(
        stdout.starts_with("argv: -c ") && stdout.contains(" echo hello\n"),
        "{stdout}"
    );

    let (_, reds) = worker
        .get_path("/ga4gh/tes/v1/tasks?tag_key=colour&tag_value=red")
        .await;
    let red_ids: Vec<&Value> = reds["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["id"])
        .collect();
    assert_eq!(red_ids, [&json!(ids[0]), &json!(ids[2])]);
    let (_, page) = worker
        .get_path("/ga4gh/tes/v1/tasks?name_prefix=job-&page_size=2")
        .await;
    assert_eq!(page["tasks"].as_array().unwrap().len(), 2);
    let token = page["next_page_token"].as_str().unwrap();
    let (_, rest) = worker
        .get_path(&format!(
            "/ga4gh/tes/v1/tasks?name_prefix=job-&page_token={token}&view=BASIC"
        ))
        .await;
    assert_eq!(rest["tasks"][0]["name"], "job-2");
    assert_eq!(rest.get("next_page_token"), None);

    let (_, info) = worker.get_path("/ga4gh/tes/v1/service-info").await;
    assert_eq!(info["type"]["artifact"], "tes");
    assert_eq!(
        info["storage"][0].as_str().unwrap().trim_end_matches('/'),
        scratch.store_url().trim_end_matches('/')
    );

    let response = reqwest::get(format!("{}/metrics", worker.base))
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    for line in [
        "bb_remote_worker_tasks_queued 0",
        "bb_remote_worker_tasks_running 0",
        "bb_remote_worker_tasks_created_total 3",
        "bb_remote_worker_task_duration_seconds_count{state=\"COMPLETE\"} 3",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn half_open_connections_are_closed_and_capped_and_service_info_still_answers() {
    use std::io::{Read, Write};
    let scratch = Scratch::new();
    let mut args = scratch.fake_args();
    args.extend(["--max-connections", "32", "--header-timeout", "1"].map(String::from));
    let worker = WorkerProc::start(&args);
    let addr = worker.base.trim_start_matches("http://").to_owned();
    // 300 connections that start a request head and never finish it.
    let mut stalled = Vec::new();
    for _ in 0..300 {
        let mut socket = std::net::TcpStream::connect(&addr).unwrap();
        socket
            .write_all(b"GET /ga4gh/tes/v1/service-info HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        stalled.push(socket);
    }
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let reply = http
        .get(format!("{}/ga4gh/tes/v1/service-info", worker.base))
        .send()
        .await
        .expect("service-info answers while 300 connections stall");
    assert_eq!(reply.status(), 200);
    // The worker closed the stalled connections (408 or a bare close), not held them.
    let first = &mut stalled[0];
    first
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut rest = Vec::new();
    let read = first.read_to_end(&mut rest);
    assert!(
        read.is_ok(),
        "the stalled connection was not closed: {read:?}"
    );
}

#[tokio::test]
async fn backend_parameters_are_not_stored_and_strict_fails_the_task() {
    let scratch = Scratch::new();
    let worker = WorkerProc::start(&scratch.fake_args());
    let (_, info) = worker.get_path("/ga4gh/tes/v1/service-info").await;
    assert_eq!(info["tesResources_backend_parameters"], json!([]), "{info}");
    let mut task = fake_task(&["echo", "hi"]);
    task["resources"] = json!({ "backend_parameters": { "VmSize": "big" } });
    let lenient = worker.create(&task).await;
    task["resources"]["backend_parameters_strict"] = json!(true);
    let strict = worker.create(&task).await;
    let done = worker.wait_terminal(&lenient).await;
    assert_eq!(done.state, Some(bb_remote::tes::types::State::Complete));
    let resources = done.resources.clone().unwrap();
    assert!(resources.backend_parameters.is_empty(), "{resources:?}");
    let notes = done.logs[0].system_logs.join("\n");
    assert!(
        notes.contains("VmSize") && notes.contains("ignored"),
        "{notes}"
    );
    assert_eq!(done.logs.len(), 1, "one attempt, one log: {:?}", done.logs);
    assert_eq!(done.logs[0].logs[0].exit_code, 0);
    let failed = worker.wait_terminal(&strict).await;
    assert_eq!(
        failed.state,
        Some(bb_remote::tes::types::State::SystemError)
    );
    assert!(
        failed.logs[0].system_logs[0].contains("strict"),
        "{failed:?}"
    );
    assert!(failed.logs[0].logs.is_empty(), "a strict task must not run");
}

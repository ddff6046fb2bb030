//! `CircuitProve` delegated to a real `bb-remote worker` running the real bb: the
//! answer is the native bb's own bytes for the same request frame; failures are
//! answers; a client that leaves cancels the task.
use std::time::{Duration, Instant};

use bb_remote::tes::types::State;

use super::harness::*;
use super::relay::assert_no_leftovers;
use crate::delegate::harness::{AztecJob, Backend, StoreKind};
use crate::support::testbed::Scratch;

fn shim(backend: &Backend, scratch: &Scratch, socket: &str) -> Served {
    let mut cmd = backend.shim(scratch);
    cmd.env(
        "CRS_PATH",
        crate::support::testbed::testbed().crs_dir.as_os_str(),
    )
    .env("TMPDIR", &scratch.work);
    Served::start(cmd, &scratch.path(socket))
}

/// What the real bb answers to `request` over its own socket.
pub(super) fn native_answer(scratch: &Scratch, request: &[u8]) -> Vec<u8> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let socket = scratch.path(format!("bb-{n}.sock"));
    Served::native(scratch, &socket).connect().ask(request)
}

async fn completed_tasks(backend: &Backend) -> usize {
    let tasks = backend.tasks().await;
    tasks
        .iter()
        .filter(|t| t.state == Some(State::Complete))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn circuit_prove_answers_the_native_bbs_bytes_for_each_settings() {
    let backend = Backend::real_bb(StoreKind::File, &[]);
    let scratch = Scratch::new();
    let job = AztecJob::new(&scratch, "hashchain", "HashchainArtifact");
    let vk = std::fs::read(job.vk()).unwrap();
    let keccak = Settings {
        oracle: "keccak",
        ..NON_ZK
    };
    let cases = [
        (
            "hashchain, vk given (the prover's request)",
            circuit_prove("hashchain", &vk, &NON_ZK),
        ),
        ("square, vk computed", circuit_prove("square", &[], &NON_ZK)),
        ("square, keccak", circuit_prove("square", &[], &keccak)),
        (
            "square, unknown oracle (bb's own error)",
            circuit_prove(
                "square",
                &[],
                &Settings {
                    oracle: "nope",
                    ..NON_ZK
                },
            ),
        ),
    ];
    let served = shim(&backend, &scratch, "shim.sock");
    let mut client = served.connect();
    for (i, (what, request)) in cases.iter().enumerate() {
        let want = native_answer(&scratch, request);
        assert_eq!(client.ask(request), want, "{what}");
        assert_eq!(
            backend.tasks().await.len(),
            i + 1,
            "{what}: the worker ran it"
        );
    }
    // A ZK proof differs run to run: same shape, still run by the worker.
    let zk = Settings {
        disable_zk: false,
        ..NON_ZK
    };
    let answer = client.ask(&circuit_prove("square", &[], &zk));
    assert_eq!(answer_name(&answer), "CircuitProveResponse");
    assert_eq!(backend.tasks().await.len(), cases.len() + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proof_between_pipelined_hashes_keeps_request_order() {
    let backend = Backend::real_bb(StoreKind::File, &[]);
    let scratch = Scratch::new();
    let prove = circuit_prove("square", &[], &NON_ZK);
    let requests = [poseidon2_hash(2, 1), prove.clone(), poseidon2_hash(2, 2)];
    let want: Vec<Vec<u8>> = {
        let bb = Served::native(&scratch, &scratch.path("bb.sock"));
        let mut c = bb.connect();
        requests.iter().map(|r| c.ask(r)).collect()
    };
    let served = shim(&backend, &scratch, "shim.sock");
    let mut client = served.connect();
    for r in &requests {
        client.send(r);
    }
    for (i, w) in want.iter().enumerate() {
        assert_eq!(&client.recv().unwrap(), w, "answer {i}");
    }
    assert_eq!(completed_tasks(&backend).await, 1);
}

#[test]
fn backend_down_falls_back_or_answers_an_error_by_policy() {
    let scratch = Scratch::new();
    let request = circuit_prove("square", &[], &NON_ZK);
    let want = native_answer(&scratch, &request);
    for (policy, expect_native) in [("native", true), ("fail", false)] {
        let mut cmd = shim_command(&scratch);
        cmd.env("BB_REMOTE_BACKEND", "http://127.0.0.1:9")
            .env(
                "BB_REMOTE_STORE",
                format!("file://{}/store", scratch.work.display()),
            )
            .env("BB_REMOTE_FALLBACK", policy);
        let served = Served::start(cmd, &scratch.path(format!("{policy}.sock")));
        let answer = served.connect().ask(&request);
        if expect_native {
            assert_eq!(answer, want, "fallback=native proves locally");
        } else {
            assert_eq!(answer_name(&answer), "ErrorResponse");
            let text = String::from_utf8_lossy(&answer);
            assert!(text.contains("bb-remote: backend unavailable"), "{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_mid_proof_cancels_the_task() {
    let backend = Backend::real_bb(StoreKind::File, &[]);
    let scratch = Scratch::new();
    let mut served = shim(&backend, &scratch, "shim.sock");
    let mut client = served.connect();
    client.send(&circuit_prove("hashchain_big", &[], &NON_ZK));
    let deadline = Instant::now() + Duration::from_secs(60);
    let running = |tasks: &[bb_remote::tes::types::Task]| {
        tasks.iter().any(|t| t.state == Some(State::Running))
    };
    while !running(&backend.tasks().await) {
        assert!(Instant::now() < deadline, "the task never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(client);
    loop {
        let tasks = backend.tasks().await;
        if tasks.iter().all(|t| t.state == Some(State::Canceled)) {
            break;
        }
        assert!(Instant::now() < deadline, "not cancelled: {tasks:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The server itself carries on.
    assert_eq!(
        answer_name(&served.connect().ask(&blake2s(b"x"))),
        "Blake2sResponse"
    );
    served.signal(libc::SIGTERM);
    assert_eq!(served.wait(Duration::from_secs(30)).code(), Some(0));
    assert_no_leftovers(&scratch);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_proof_delivers_the_proof_then_exits_zero() {
    let backend = Backend::real_bb(StoreKind::File, &[]);
    let scratch = Scratch::new();
    let request = circuit_prove("hashchain", &[], &NON_ZK);
    let want = native_answer(&scratch, &request);
    let mut served = shim(&backend, &scratch, "shim.sock");
    let mut client = served.connect();
    client.send(&request);
    let deadline = Instant::now() + Duration::from_secs(60);
    while backend.tasks().await.is_empty() {
        assert!(Instant::now() < deadline, "no task");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    served.signal(libc::SIGTERM);
    assert_eq!(client.recv().unwrap(), want);
    assert_eq!(served.wait(Duration::from_secs(30)).code(), Some(0));
    assert!(!served.socket.exists());
    assert_eq!(completed_tasks(&backend).await, 1);
    assert_no_leftovers(&scratch);
}

/// `AvmProve`: the npm bb has no AVM, so the worker runs a TEST DOUBLE of an
/// AVM-enabled bb (`shim-tests/fixtures/avm_bb_test_double.sh`) that answers with the
/// digest of the request file it was given. The client must get exactly that frame:
/// the request went to the backend byte for byte, and the answer came back unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn avm_prove_is_delegated_to_the_backends_bb() {
    use sha2::{Digest, Sha256};
    let double = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("shim-tests/fixtures/avm_bb_test_double.sh");
    // An AvmProve asks for the largest class (16 cores, 30 GiB): a worker that
    // declares that much.
    let backend = Backend::start(StoreKind::File, double, &["--cpus", "16", "--memory", "32"]);
    let scratch = Scratch::new();
    // Stands in for msgpack-serialised AvmCircuitInputs (several MB in real use).
    let inputs: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let request = request("AvmProve", map16(&[("inputs", bin(&inputs))]));
    let local = native_answer(&scratch, &request);
    assert!(String::from_utf8_lossy(&local).contains("AVM is not supported"));
    let framed = [&(request.len() as u32).to_le_bytes()[..], &request].concat();
    let mut want = b"\x92\xb0AvmProveResponse\x82\xa5proof\x91\xc4\x20".to_vec();
    want.extend(Sha256::digest(&framed));
    want.extend(b"\xa5stats\x90");
    let served = shim(&backend, &scratch, "shim.sock");
    assert_eq!(served.connect().ask(&request), want);
    assert_eq!(completed_tasks(&backend).await, 1);
    let task = &backend.tasks().await[0];
    let resources = task.resources.as_ref().unwrap();
    assert_eq!(
        (resources.cpu_cores, resources.ram_gb),
        (Some(16), Some(30.0))
    );
    assert_eq!(
        task.executors[0].command[0], "cat",
        "sent in parts: {task:?}"
    );
}

/// Record a delegated `CircuitProve` against the live worker, list it with the CLI
/// fixtures, then answer it with no backend and no native bb; a different request is a
/// miss that names its key and the nearest fixture.
#[tokio::test(flavor = "multi_thread")]
async fn record_then_replay_without_backend_or_native_bb() {
    let backend = Backend::real_bb(StoreKind::File, &[]);
    let scratch = Scratch::new();
    let fixtures = scratch.path("fixtures");
    let request = circuit_prove("square", &[], &NON_ZK);
    let want = native_answer(&scratch, &request);
    let mut recording = backend.shim(&scratch);
    recording
        .env(
            "CRS_PATH",
            crate::support::testbed::testbed().crs_dir.as_os_str(),
        )
        .env("TMPDIR", &scratch.work)
        .env("BB_REMOTE_RECORD", &fixtures);
    let served = Served::start(recording, &scratch.path("record.sock"));
    assert_eq!(served.connect().ask(&request), want);
    drop(served);
    assert_eq!(backend.tasks().await.len(), 1);

    let listed = crate::support::testbed::run(
        scratch
            .command(env!("CARGO_BIN_EXE_bb-remote"))
            .args(["fixtures", "--dir"])
            .arg(&fixtures)
            .arg("list"),
    );
    listed.assert_code(0, "bb-remote fixtures list");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("msgpack"),
        "{listed:?}"
    );

    let mut replaying = scratch.command(env!("CARGO_BIN_EXE_bb"));
    replaying
        .env("TMPDIR", &scratch.work)
        .env("BB_REMOTE_REPLAY", &fixtures)
        .env("BB_REMOTE_NATIVE_BIN", scratch.path("no-native-bb"));
    let served = Served::start(replaying, &scratch.path("replay.sock"));
    let mut client = served.connect();
    assert_eq!(client.ask(&request), want);
    let keccak = Settings {
        oracle: "keccak",
        ..NON_ZK
    };
    let miss = client.ask(&circuit_prove("square", &[], &keccak));
    let text = String::from_utf8_lossy(&miss);
    assert_eq!(answer_name(&miss), "ErrorResponse");
    assert!(
        text.contains("no fixture") && text.contains("key "),
        "{text}"
    );
    assert!(text.contains("nearest recorded"), "{text}");
    assert_eq!(
        backend.tasks().await.len(),
        1,
        "replay never reaches the backend"
    );
}

//! The real `@aztec/bb.js@5.0.0` client (installed by scripts/testbed) with the shim as
//! its `bbPath`, exactly as the Aztec 5.x prover runs it, against the same client with
//! the real bb.
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::raw_circuit;
use super::relay::assert_no_leftovers;
use crate::delegate::harness::{Backend, StoreKind};
use crate::support::testbed::{run, testbed, Scratch};

/// Run one scenario of `bbjs_client.mjs` with `bb_path`; `env` goes to node and from
/// there (bb.js passes its environment on) to the spawned bb.
fn bbjs(scratch: &Scratch, bb_path: &Path, env: &[(&str, String)], args: &[&str]) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = scratch.command("node");
    cmd.arg(root.join("shim-tests/msgpack/bbjs_client.mjs"))
        .arg(root.join(".testbed/bbjs"))
        .arg(bb_path)
        .args(args)
        .env("TMPDIR", &scratch.work)
        .env("CRS_PATH", &testbed().crs_dir)
        .envs(env.iter().map(|(k, v)| (*k, v)));
    let outcome = run(&mut cmd);
    outcome.assert_code(0, "bb.js client");
    serde_json::from_slice(&outcome.stdout).unwrap()
}

fn shim_env(backend: &str, store: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BB_REMOTE_BACKEND", backend.to_owned()),
        ("BB_REMOTE_STORE", store.to_owned()),
        ("BB_REMOTE_NATIVE_BIN", testbed().bb.display().to_string()),
    ]
}

/// bb.js sends SIGTERM and leaves the socket to bb: the shim must remove it.
fn assert_clean(scratch: &Scratch) {
    assert_no_leftovers(scratch);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sockets: Vec<_> = std::fs::read_dir(&scratch.work)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".sock"))
            .map(|e| e.file_name())
            .collect();
        if sockets.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sockets left behind: {sockets:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn light_calls_and_pipelining_through_bbjs_equal_bbs() {
    let scratch = Scratch::new();
    let store = format!("file://{}/store", scratch.work.display());
    let env = shim_env("http://127.0.0.1:9", &store);
    let shim = Path::new(env!("CARGO_BIN_EXE_bb"));
    for scenario in ["light", "pipeline"] {
        let want = bbjs(&scratch, &testbed().bb, &[], &[scenario]);
        let got = bbjs(&scratch, shim, &env, &[scenario]);
        assert_eq!(got, want, "{scenario}");
    }
    let light = bbjs(&scratch, shim, &env, &["light"]);
    assert_eq!(
        light["error"], "Chonk not started. Call ChonkStart first.",
        "{light}"
    );
    assert_clean(&scratch);
}

#[tokio::test(flavor = "multi_thread")]
async fn circuit_prove_through_bbjs_is_delegated_and_identical() {
    let backend = Backend::real_bb(StoreKind::File, &[]);
    let scratch = Scratch::new();
    let env = shim_env(&backend.worker.base, &backend.store_url);
    let shim = Path::new(env!("CARGO_BIN_EXE_bb"));
    for (circuit, vk, tasks) in [("hashchain", "vk", 1), ("square", "novk", 2)] {
        let (bytecode, witness) = raw_circuit(circuit);
        let (b, w) = (
            scratch.path(format!("{circuit}.acir")),
            scratch.path(format!("{circuit}.wit")),
        );
        std::fs::write(&b, bytecode).unwrap();
        std::fs::write(&w, witness).unwrap();
        let args = ["prove", b.to_str().unwrap(), w.to_str().unwrap(), vk];
        let want = bbjs(&scratch, &testbed().bb, &[], &args);
        let got = bbjs(&scratch, shim, &env, &args);
        assert_eq!(got, want, "{circuit} {vk}");
        assert_eq!(want["proof"].as_array().unwrap().len(), 410);
        // circuitComputeVk runs on the local child; only circuitProve reaches the worker.
        let done = backend.tasks().await;
        assert_eq!(done.len(), tasks, "{circuit}: {done:?}");
    }
    assert_clean(&scratch);
}

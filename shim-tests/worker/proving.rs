//! Real proofs: the worker runs the test bed's bb 5.0.0 on the hashchain circuit,
//! through a `file://` store and through a real S3 server (moto) on loopback, and its
//! outputs must be byte-identical to bb run directly (`--disable_zk`: deterministic).
use std::path::{Path, PathBuf};

use bb_remote::store::{Digest, Store};
use bb_remote::tes::types::State;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use serde_json::json;

use super::harness::{Scratch, WorkerProc};
use crate::support::testbed::S3Server;

pub(super) fn repo(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    assert!(
        path.exists(),
        "{} is missing: run scripts/testbed first",
        path.display()
    );
    path
}

pub(super) fn circuit(name: &str, file: &str) -> PathBuf {
    repo(&format!("testbed/circuits/{name}/{file}"))
}

/// The worker's flags for the real bb and the test CRS.
pub(super) fn real_bb_args(scratch: &Scratch, store_url: &str) -> Vec<String> {
    vec![
        "--store".into(),
        store_url.into(),
        "--data-dir".into(),
        scratch.data_dir().display().to_string(),
        "--bb".into(),
        repo(".testbed/bin/bb").display().to_string(),
        "--crs-dir".into(),
        repo(".testbed/crs").display().to_string(),
    ]
}

/// bb run directly: `bb <sub> -c <crs> <args> -o <dir>`; returns the files it wrote.
fn run_bb_directly(sub: &str, args: &[&str], out: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::create_dir_all(out).unwrap();
    let status = std::process::Command::new(repo(".testbed/bin/bb"))
        .arg(sub)
        .arg("-c")
        .arg(repo(".testbed/crs"))
        .args(args)
        .arg("-o")
        .arg(out)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "direct bb {sub} failed");
    let mut files: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Run `write_vk` and `prove` (hashchain) through the worker on `store`, and compare
/// every output with bb run directly.
async fn prove_through_worker(worker: &WorkerProc, store: &Store, run: &str) {
    let program = circuit("hashchain", "program.json");
    let witness = circuit("hashchain", "witness.gz");
    let program_url = store.cas_url(&store.upload_cas(&program).await.unwrap().digest);
    let witness_url = store.cas_url(&store.upload_cas(&witness).await.unwrap().digest);
    let out_url = |sub: &str| store.url_for_relative(&format!("{run}/{sub}")).to_string();
    let inputs = json!([
        { "url": program_url.as_str(), "path": "/work/in/program.json" },
        { "url": witness_url.as_str(), "path": "/work/in/witness.gz" }
    ]);
    let task = |sub: &str, extra: &[&str]| {
        let mut command = vec!["bb", sub, "-b", "/work/in/program.json"];
        command.extend(extra);
        command.extend(["-o", "/work/out", "--disable_zk"]);
        json!({
            "name": format!("{run}-{sub}"),
            "inputs": inputs,
            "outputs": [{ "url": out_url(sub), "path": "/work/out", "type": "DIRECTORY" }],
            "resources": { "cpu_cores": 1, "ram_gb": 1.0 },
            "executors": [{ "image": "bb:5.0.0", "command": command }]
        })
    };
    let vk_id = worker.create(&task("write_vk", &[])).await;
    let prove_id = worker
        .create(&task("prove", &["-w", "/work/in/witness.gz", "--write_vk"]))
        .await;

    let direct = tempfile::tempdir().unwrap();
    let witness_arg = witness.display().to_string();
    let program_arg = program.display().to_string();
    let expected = [
        (
            "write_vk",
            vk_id,
            run_bb_directly(
                "write_vk",
                &["-b", &program_arg, "--disable_zk"],
                &direct.path().join("vk"),
            ),
        ),
        (
            "prove",
            prove_id,
            run_bb_directly(
                "prove",
                &[
                    "-b",
                    &program_arg,
                    "-w",
                    &witness_arg,
                    "--disable_zk",
                    "--write_vk",
                ],
                &direct.path().join("p"),
            ),
        ),
    ];
    for (sub, id, want) in expected {
        let done = worker.wait_terminal(&id).await;
        assert_eq!(
            done.state,
            Some(State::Complete),
            "{sub}: {done:#?}\n{}",
            worker.log()
        );
        let log = &done.logs[0];
        let mut got = Vec::new();
        for output in &log.outputs {
            let key = store.key_for_url(&output.url).unwrap();
            let bytes = store
                .object_store()
                .get(&key)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(output.size_bytes, bytes.len().to_string());
            let digest = &log.metadata[&format!("sha256:{}", output.path)];
            assert_eq!(digest, &Digest::of_bytes(&bytes).hex(), "{}", output.path);
            let name = output.path.strip_prefix("/work/out/").unwrap().to_owned();
            got.push((name, bytes.to_vec()));
        }
        got.sort();
        let names =
            |files: &[(String, Vec<u8>)]| files.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&got), names(&want), "{sub}: output files differ");
        assert!(
            got == want,
            "{sub}: outputs are not byte-identical to bb run directly"
        );
    }
}

#[tokio::test]
async fn hashchain_through_a_file_store_matches_bb_directly() {
    let scratch = Scratch::new();
    let worker = WorkerProc::start(&real_bb_args(&scratch, &scratch.store_url()));
    prove_through_worker(&worker, &scratch.store(), "runs/file").await;
    // The same inputs again: served from the worker's cache, one entry per blob.
    let cache = scratch.data_dir().join("cache/sha256");
    assert_eq!(std::fs::read_dir(cache).unwrap().count(), 2);
}

#[tokio::test]
async fn hashchain_through_s3_matches_bb_directly() {
    let s3 = S3Server::start("bb-worker");
    let scratch = Scratch::new();
    let (store_url, store) = s3.prefixed_store("proofs");
    let worker = WorkerProc::start_with_env(&real_bb_args(&scratch, &store_url), &s3.aws_env());
    prove_through_worker(&worker, &store, "runs/s3").await;
    let listed = store
        .object_store()
        .head(&ObjectPath::from("proofs/runs/s3/prove/proof"))
        .await;
    assert!(listed.is_ok(), "proof not at the expected key: {listed:?}");
}

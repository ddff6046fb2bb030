//! Legacy commands end to end against the worker, with a stand-in legacy bb (TEST
//! DOUBLE, `shim-tests/fixtures/legacy_bb_test_double.sh`): the worker hands it
//! exactly the right files, and the caller's `-o` holds exactly what it wrote.
use std::path::{Path, PathBuf};
use std::process::Command;

use super::harness::{files, run_blocking, Backend, StoreKind};
use crate::support::testbed::{run, Scratch};
use bb_remote::tes::types::State;

fn stand_in() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("shim-tests/fixtures/legacy_bb_test_double.sh")
}

fn sha(path: &Path) -> String {
    bb_remote::store::Digest::of_bytes(&std::fs::read(path).unwrap()).hex()
}

/// Run `argv` (with `{out}` replaced) through the shim and the stand-in directly;
/// both output directories must hold the same files, and the stand-in must have seen
/// `expected_seen` (file name and content of every input).
async fn same_as_direct(
    scratch: &Scratch,
    argv: &[&str],
    prepare: impl Fn(&Path),
    expected_seen: &[&Path],
) {
    let backend = Backend::start(StoreKind::File, stand_in(), &[]);
    let render = |out: &Path| -> Vec<String> {
        argv.iter()
            .map(|a| a.replace("{out}", out.to_str().unwrap()))
            .collect()
    };
    let direct_out = scratch.path("direct");
    let remote_out = scratch.path("remote");
    for dir in [&direct_out, &remote_out] {
        std::fs::create_dir_all(dir).unwrap();
        prepare(dir);
    }
    let direct = run(scratch.command(stand_in()).args(render(&direct_out)));
    direct.assert_code(0, "stand-in directly");
    let mut shim = backend.shim(scratch);
    // RootRollupArtifact asks for 16 cores / 30 GiB by default: more than this machine.
    shim.env("BB_REMOTE_CPU_CORES", "1")
        .env("BB_REMOTE_RAM_GB", "1")
        .args(render(&remote_out));
    let remote = run_blocking(shim).await;
    remote.assert_code(0, "stand-in through the shim");
    assert_eq!(files(&remote_out), files(&direct_out));
    assert_eq!(remote.stdout, direct.stdout);
    let seen = std::fs::read_to_string(remote_out.join("proof_fields.json")).unwrap();
    let want: Vec<String> = expected_seen
        .iter()
        .map(|p| {
            format!(
                "\"{}:{}\"",
                p.file_name().unwrap().to_str().unwrap(),
                sha(p)
            )
        })
        .collect();
    assert_eq!(seen, format!("[{}]", want.join(",")));
    let tasks = backend.tasks().await;
    assert_eq!(tasks.len(), 1);
    let resources = tasks[0].resources.clone().unwrap();
    assert_eq!(
        (resources.cpu_cores, resources.ram_gb),
        (Some(1), Some(1.0))
    );
}

fn write(path: &Path, content: &str) -> PathBuf {
    std::fs::write(path, content).unwrap();
    path.to_path_buf()
}

#[tokio::test(flavor = "multi_thread")]
async fn prove_ultra_honk_output_all_0_47_1() {
    let scratch = Scratch::new();
    let b = write(&scratch.path("RootRollupArtifact-bytecode"), "bytecode");
    let w = write(&scratch.path("partial-witness.gz"), "witness");
    let argv = [
        "prove_ultra_honk_output_all",
        "-b",
        b.to_str().unwrap(),
        "-w",
        w.to_str().unwrap(),
        "-o",
        "{out}",
        "-v",
    ];
    same_as_direct(&scratch, &argv, |_| {}, &[&b, &w]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prove_tube_uploads_the_candidates_that_exist() {
    for names in [
        // 0.63.1 - 0.64
        &["client_ivc_proof", "mega_vk", "translator_vk", "ecc_vk"][..],
        // 0.65 - 0.76.4
        &["client_ivc_proof", "client_ivc_vk"][..],
    ] {
        let scratch = Scratch::new();
        let prepare = |dir: &Path| {
            for n in names {
                std::fs::write(dir.join(n), format!("{n} bytes")).unwrap();
            }
        };
        let probe = scratch.path("probe");
        std::fs::create_dir_all(&probe).unwrap();
        prepare(&probe);
        // The stand-in reads them in its own fixed order.
        let order = [
            "client_ivc_proof",
            "mega_vk",
            "translator_vk",
            "ecc_vk",
            "client_ivc_vk",
        ];
        let seen: Vec<PathBuf> = order
            .iter()
            .filter(|n| names.contains(n))
            .map(|n| probe.join(n))
            .collect();
        let seen: Vec<&Path> = seen.iter().map(PathBuf::as_path).collect();
        same_as_direct(&scratch, &["prove_tube", "-o", "{out}"], prepare, &seen).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn avm_prove() {
    let scratch = Scratch::new();
    let paths: Vec<PathBuf> = ["bytecode", "calldata", "public_inputs", "hints"]
        .iter()
        .map(|n| write(&scratch.path(format!("avm_{n}.bin")), n))
        .collect();
    let p: Vec<&str> = paths.iter().map(|p| p.to_str().unwrap()).collect();
    let argv = [
        "avm_prove",
        "--avm-bytecode",
        p[0],
        "--avm-calldata",
        p[1],
        "--avm-public-inputs",
        p[2],
        "--avm-hints",
        p[3],
        "-o",
        "{out}",
    ];
    let seen: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    same_as_direct(&scratch, &argv, |_| {}, &seen).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_while_waiting_cancels_the_task_and_leaves_nothing() {
    let backend = Backend::start(StoreKind::File, stand_in(), &[]);
    let scratch = Scratch::new();
    let b = write(&scratch.path("Slow-bytecode"), "SLEEP");
    let w = write(&scratch.path("w.gz"), "w");
    let out = scratch.path("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut child = backend
        .shim(&scratch)
        .args([
            "prove_ultra_honk_output_all",
            "-b",
            b.to_str().unwrap(),
            "-w",
            w.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = loop {
        let tasks = backend.tasks().await;
        if let Some(t) = tasks.iter().find(|t| t.state == Some(State::Running)) {
            break t.id.clone().unwrap();
        }
        assert!(child.try_wait().unwrap().is_none(), "shim ended early");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let task = backend.worker.wait_terminal(&id).await;
    assert_eq!(task.state, Some(State::Canceled));
    assert!(files(&out).is_empty(), "{:?}", files(&out));
}

//! A delegated `CircuitProve` travels as content-addressed parts (head, bytecode, vk,
//! witness) that the remote side joins back into the exact frame: a second proof of
//! the same circuit uploads only the witness-bearing parts, the answers stay the
//! native bb's bytes, and the task asks for resources sized from the request.
use super::delegated::native_answer;
use super::harness::*;
use crate::delegate::harness::{file_url_path, uploaded, AztecJob, Backend, StoreKind};
use crate::support::testbed::{testbed, Scratch};

/// Files under `<store>/cas/`: what the shim has uploaded so far.
fn cas_objects(backend: &Backend) -> usize {
    let cas = file_url_path(&backend.store_url).join("cas");
    walkdir(&cas)
}

fn walkdir(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .map(|e| e.unwrap())
            .map(|e| match e.file_type().unwrap().is_dir() {
                true => walkdir(&e.path()),
                false => 1,
            })
            .sum()
    })
}

/// The square circuit's committed witness (x = 3, y = 9) with x = 4, y = 16: another
/// valid witness of the same length, so only its bytes differ.
fn square_witness(x: u8, y: u8) -> Vec<u8> {
    let (_, mut witness) = raw_circuit("square");
    assert_eq!((witness.len(), witness[40], witness[75]), (76, 3, 9));
    witness[40] = x;
    witness[75] = y;
    witness
}

/// Two `CircuitProve` requests of the square circuit that differ only in their
/// witness, and the native bb's answers to them.
fn two_square_proofs(scratch: &Scratch) -> ([Vec<u8>; 2], Vec<Vec<u8>>) {
    let vk = std::fs::read(AztecJob::new(scratch, "square", "SquareArtifact").vk()).unwrap();
    let requests = [
        circuit_prove_with("square", &vk, &square_witness(3, 9), &NON_ZK),
        circuit_prove_with("square", &vk, &square_witness(4, 16), &NON_ZK),
    ];
    let bb = Served::native(scratch, &scratch.path("bb.sock"));
    let mut client = bb.connect();
    let answers = requests.iter().map(|r| client.ask(r)).collect();
    (requests, answers)
}

/// The task's resource request: `(cpu_cores, ram_gb)`.
fn resources(task: &bb_remote::tes::types::Task) -> (Option<i32>, Option<f64>) {
    let resources = task
        .resources
        .as_ref()
        .expect("the task names its resources");
    (resources.cpu_cores, resources.ram_gb)
}

fn shim(backend: &Backend, scratch: &Scratch, socket: &str, env: &[(&str, &str)]) -> Served {
    let mut cmd = backend.shim(scratch);
    cmd.env("CRS_PATH", testbed().crs_dir.as_os_str())
        .env("TMPDIR", &scratch.work)
        .envs(env.iter().copied());
    Served::start(cmd, &scratch.path(socket))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_proof_uploads_only_the_witness_and_answers_bbs_bytes() {
    let backend = Backend::real_bb(StoreKind::File, &[]);
    let scratch = Scratch::new();
    let ([first, second], want) = two_square_proofs(&scratch);
    assert_ne!(want[0], want[1], "two witnesses, two proofs");
    assert_eq!(answer_name(&want[1]), "CircuitProveResponse");

    // One fresh shim per proof, as the 5.x prover spawns them.
    let served = shim(&backend, &scratch, "one.sock", &[]);
    assert_eq!(served.connect().ask(&first), want[0]);
    drop(served);
    assert_eq!(cas_objects(&backend), 4, "head, bytecode, vk and witness");
    let served = shim(&backend, &scratch, "two.sock", &[]);
    assert_eq!(served.connect().ask(&second), want[1]);
    let stderr = served.stderr_text();
    drop(served);
    let (files, bytes) = uploaded(&stderr);
    // The witness has the same length, so even the head (its length prefix) is
    // unchanged: only the witness part moves.
    assert_eq!(files, 1, "only the witness part: {stderr}");
    assert!(
        bytes < 200,
        "{bytes} bytes: the bytecode ({} bytes) and vk were not sent again",
        raw_circuit("square").0.len()
    );
    assert_eq!(cas_objects(&backend), 5);

    let tasks = backend.tasks().await;
    assert_eq!(tasks.len(), 2, "the worker ran both");
    for task in &tasks {
        assert_eq!(task.executors[0].command[0], "cat", "{task:?}");
        assert_eq!(task.executors[0].command.len(), 5, "four parts joined");
        let bb = &task.executors[1].command;
        assert!(!bb.iter().any(|a| a == "--verbose"), "{bb:?}");
        // Sized from the request: 139 bytes of ACIR is the smallest class.
        assert_eq!(resources(task), (Some(1), Some(1.0)));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_task_asks_for_the_operators_resources_when_set() {
    let backend = Backend::real_bb(StoreKind::File, &[]);
    let scratch = Scratch::new();
    let request = circuit_prove("square", &[], &NON_ZK);
    let want = native_answer(&scratch, &request);
    let env = [("BB_REMOTE_CPU_CORES", "2"), ("BB_REMOTE_RAM_GB", "1.5")];
    let served = shim(&backend, &scratch, "shim.sock", &env);
    assert_eq!(served.connect().ask(&request), want);
    assert_eq!(resources(&backend.tasks().await[0]), (Some(2), Some(1.5)));
}

/// The same through a real Funnel (a generic TES engine): the image's own `cat`
/// rebuilds the request, `-c` goes before `msgpack`, and the second proof uploads
/// only its witness part.
#[test]
fn through_funnel_the_parts_are_joined_by_the_images_cat() {
    use crate::funnel::harness::{in_netns, Funnel, FunnelStore, Options};
    in_netns(|| {
        let funnel = Funnel::start(FunnelStore::File, Options::default());
        let scratch = Scratch::new();
        let (requests, want) = two_square_proofs(&scratch);
        let mut sent = Vec::new();
        for (i, request) in requests.iter().enumerate() {
            let mut cmd = funnel.shim(&scratch);
            cmd.env("TMPDIR", &scratch.work);
            let served = Served::start(cmd, &scratch.path(format!("shim-{i}.sock")));
            let answer = served.connect().ask(request);
            let stderr = served.stderr_text();
            assert_eq!(answer, want[i], "proof {i}: {stderr}\n{}", funnel.log());
            sent.push(uploaded(&stderr).0);
        }
        assert_eq!(sent, [4, 1], "the second proof sends only its witness part");
        let tasks = funnel.tasks();
        assert_eq!(tasks.len(), 2);
        for task in &tasks {
            assert_eq!(task.executors[0].command[0], "cat");
            let bb = &task.executors[1].command;
            let at = bb.iter().position(|a| a.ends_with("/bb")).unwrap();
            assert_eq!(bb[at + 1..at + 4], ["-c", "/crs", "msgpack"], "{bb:?}");
        }
    });
}

/// 15 MiB of (bogus) ACIR is a ~1.1 MB gzipped bytecode file: the 2-core, 4 GiB class,
/// as the worker records it; the client still gets bb's own answer to that frame.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_bytecode_asks_for_a_larger_class() {
    let backend = Backend::real_bb(StoreKind::File, &[]);
    let scratch = Scratch::new();
    let mut bytecode = vec![0u8; 15 << 20];
    bytecode[0] = 3;
    let (_, witness) = raw_circuit("square");
    let request = request(
        "CircuitProve",
        map16(&[
            (
                "circuit",
                map16(&[
                    ("name", str_("big")),
                    ("bytecode", bin(&bytecode)),
                    ("verification_key", bin(&[])),
                ]),
            ),
            ("witness", bin(&witness)),
            ("settings", map16(&[("disable_zk", vec![0xc3])])),
        ]),
    );
    let want = native_answer(&scratch, &request);
    let served = shim(&backend, &scratch, "shim.sock", &[]);
    assert_eq!(served.connect().ask(&request), want);
    assert_eq!(resources(&backend.tasks().await[0]), (Some(2), Some(4.0)));
}

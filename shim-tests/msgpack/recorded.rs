//! `BB_REMOTE_RECORD` where the native bb answers a delegable request (no backend, or
//! a fallback): the answer is recorded as the CLI path records a native run, and
//! replay then answers it byte for byte with no backend and no native bb.
use std::path::Path;
use std::time::Duration;

use super::harness::*;
use crate::support::testbed::{run, Scratch};

/// `bb-remote fixtures list` of `fixtures`, one line per record.
fn listed(scratch: &Scratch, fixtures: &Path) -> Vec<String> {
    let outcome = run(scratch
        .command(env!("CARGO_BIN_EXE_bb-remote"))
        .args(["fixtures", "--dir"])
        .arg(fixtures)
        .arg("list"));
    outcome.assert_code(0, "bb-remote fixtures list");
    String::from_utf8_lossy(&outcome.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Ask `requests` of a shim that replays `fixtures` with no backend and no native bb.
fn replayed(scratch: &Scratch, fixtures: &Path, requests: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut cmd = scratch.command(env!("CARGO_BIN_EXE_bb"));
    cmd.env("TMPDIR", &scratch.work)
        .env("BB_REMOTE_REPLAY", fixtures)
        .env("BB_REMOTE_NATIVE_BIN", scratch.path("no-native-bb"));
    let served = Served::start(cmd, &scratch.path("replay.sock"));
    let mut client = served.connect();
    requests.iter().map(|r| client.ask(r)).collect()
}

#[test]
fn recording_without_a_backend_files_the_native_answer_for_replay() {
    let scratch = Scratch::new();
    let fixtures = scratch.path("fixtures");
    let prove = circuit_prove("square", &[], &NON_ZK);
    let hash = blake2s(b"relayed, not recorded");
    let bb = Served::native(&scratch, &scratch.path("bb.sock"));
    let mut direct = bb.connect();
    let (want_proof, want_hash) = (direct.ask(&prove), direct.ask(&hash));
    drop(bb);
    assert_eq!(answer_name(&want_proof), "CircuitProveResponse");

    let mut recording = shim_command(&scratch);
    recording.env("BB_REMOTE_RECORD", &fixtures);
    let mut served = Served::start(recording, &scratch.path("record.sock"));
    let mut client = served.connect();
    assert_eq!(client.ask(&prove), want_proof);
    assert_eq!(client.ask(&hash), want_hash);
    client.ask(&shutdown());
    assert_eq!(served.wait(Duration::from_secs(20)).code(), Some(0));

    let lines = listed(&scratch, &fixtures);
    assert_eq!(lines.len(), 1, "only the delegable request: {lines:?}");
    assert!(
        lines[0].contains("native") && lines[0].contains("msgpack"),
        "{lines:?}"
    );

    let keccak = circuit_prove(
        "square",
        &[],
        &Settings {
            oracle: "keccak",
            ..NON_ZK
        },
    );
    let answers = replayed(&scratch, &fixtures, &[&prove, &keccak]);
    assert_eq!(answers[0], want_proof, "replay answers bb's own bytes");
    let miss = String::from_utf8_lossy(&answers[1]);
    assert!(miss.contains("no fixture"), "{miss}");
}

#[test]
fn a_fallback_to_the_native_bb_is_recorded_too() {
    let scratch = Scratch::new();
    let fixtures = scratch.path("fixtures");
    let prove = circuit_prove("square", &[], &NON_ZK);
    let want = Served::native(&scratch, &scratch.path("bb.sock"))
        .connect()
        .ask(&prove);
    let mut recording = shim_command(&scratch);
    recording
        .env("BB_REMOTE_BACKEND", "http://127.0.0.1:9")
        .env(
            "BB_REMOTE_STORE",
            format!("file://{}/store", scratch.work.display()),
        )
        .env("BB_REMOTE_FALLBACK", "native")
        .env("BB_REMOTE_RECORD", &fixtures);
    let served = Served::start(recording, &scratch.path("record.sock"));
    assert_eq!(served.connect().ask(&prove), want);
    drop(served);
    assert_eq!(replayed(&scratch, &fixtures, &[&prove]), [want]);
}

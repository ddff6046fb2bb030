//! The relay on raw frames: everything not delegated reaches one native bb child and
//! comes back byte for byte, in order, with bb's own treatment of odd input.
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::{Duration, Instant};

use super::harness::*;
use crate::support::testbed::Scratch;

/// The shim with delegation configured (to a backend that is never reached here).
fn configured(scratch: &Scratch) -> std::process::Command {
    let mut cmd = shim_command(scratch);
    cmd.env("BB_REMOTE_BACKEND", "http://127.0.0.1:9").env(
        "BB_REMOTE_STORE",
        format!("file://{}/store", scratch.work.display()),
    );
    cmd
}

fn light_requests() -> Vec<Vec<u8>> {
    vec![
        blake2s(b"abc"),
        poseidon2_hash(3, 7),
        request("ChonkProve", map16(&[])),
        request("NoSuchCommand", map16(&[])),
        request("Blake2s", map16(&[])),
        vec![0xc1],
    ]
}

#[test]
fn light_calls_and_errors_answer_exactly_as_bb() {
    let scratch = Scratch::new();
    let bb = Served::native(&scratch, &scratch.path("bb.sock"));
    let shim = Served::start(configured(&scratch), &scratch.path("shim.sock"));
    let (mut a, mut b) = (bb.connect(), shim.connect());
    for req in light_requests() {
        let want = a.ask(&req);
        assert_eq!(
            b.ask(&req),
            want,
            "request {:02x?}",
            &req[..req.len().min(24)]
        );
    }
    assert_eq!(answer_name(&b.ask(&light_requests()[2])), "ErrorResponse");
}

#[test]
fn the_socket_replaces_a_stale_file_and_is_private() {
    let scratch = Scratch::new();
    let socket = scratch.path("bb-1-0-0.sock");
    std::fs::write(&socket, b"stale").unwrap();
    let shim = Served::start(configured(&scratch), &socket);
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        answer_name(&shim.connect().ask(&blake2s(b"x"))),
        "Blake2sResponse"
    );
    assert!(!String::from_utf8_lossy(&std::fs::read(&shim.stderr).unwrap()).contains("panic"));
}

#[test]
fn sixty_four_pipelined_requests_answer_in_order() {
    let scratch = Scratch::new();
    let bb = Served::native(&scratch, &scratch.path("bb.sock"));
    let shim = Served::start(configured(&scratch), &scratch.path("shim.sock"));
    let requests: Vec<Vec<u8>> = (0..64).map(|i| poseidon2_hash(2, i)).collect();
    let mut want = bb.connect();
    let expected: Vec<Vec<u8>> = requests.iter().map(|r| want.ask(r)).collect();
    let mut client = shim.connect();
    for r in &requests {
        client.send(r);
    }
    for (i, e) in expected.iter().enumerate() {
        assert_eq!(&client.recv().unwrap(), e, "answer {i}");
    }
}

#[test]
fn a_stalled_frame_does_not_hold_up_another_client() {
    let scratch = Scratch::new();
    let shim = Served::start(configured(&scratch), &scratch.path("shim.sock"));
    let mut stalled = shim.connect();
    let req = blake2s(b"slow");
    // The length prefix and half the body, then nothing (bb itself would block here).
    use std::io::Write;
    stalled
        .stream
        .write_all(&(req.len() as u32).to_le_bytes())
        .unwrap();
    stalled.stream.write_all(&req[..req.len() / 2]).unwrap();
    let started = Instant::now();
    let mut other = shim.connect();
    assert_eq!(
        answer_name(&other.ask(&blake2s(b"fast"))),
        "Blake2sResponse"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    stalled.stream.write_all(&req[req.len() / 2..]).unwrap();
    assert_eq!(answer_name(&stalled.recv().unwrap()), "Blake2sResponse");
}

#[test]
fn a_bad_envelope_gets_no_answer_and_the_connection_lives_on() {
    let scratch = Scratch::new();
    let shim = Served::start(configured(&scratch), &scratch.path("shim.sock"));
    let mut client = shim.connect();
    client.send(&[0x05]);
    client.send(&[]);
    client.send(&request("Blake2s", map16(&[]))[1..]);
    assert!(client.silent_for(Duration::from_millis(500)));
    let want = Served::native(&scratch, &scratch.path("bb.sock"))
        .connect()
        .ask(&blake2s(b"after"));
    assert_eq!(client.ask(&blake2s(b"after")), want);
}

#[test]
fn shutdown_answers_closes_everyone_and_leaves_nothing_behind() {
    let scratch = Scratch::new();
    let mut shim = Served::start(configured(&scratch), &scratch.path("shim.sock"));
    let mut other = shim.connect();
    other.ask(&blake2s(b"start the child"));
    let mut client = shim.connect();
    client.send_pipelined(&[&shutdown(), &blake2s(b"dropped")]);
    assert_eq!(client.recv().unwrap(), b"\x92\xb0ShutdownResponse\x80");
    assert_eq!(client.recv(), None);
    assert_eq!(other.recv(), None);
    assert_eq!(shim.wait(Duration::from_secs(20)).code(), Some(0));
    assert!(!shim.socket.exists());
    assert_no_leftovers(&scratch);
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits_zero() {
    let scratch = Scratch::new();
    let slow = poseidon2_hash(300_000, 1);
    let want = Served::native(&scratch, &scratch.path("bb.sock"))
        .connect()
        .ask(&slow);
    let mut shim = Served::start(configured(&scratch), &scratch.path("shim.sock"));
    let mut client = shim.connect();
    client.ask(&blake2s(b"warm"));
    client.send(&slow);
    std::thread::sleep(Duration::from_millis(300));
    shim.signal(libc::SIGTERM);
    assert_eq!(client.recv().unwrap(), want);
    assert_eq!(shim.wait(Duration::from_secs(30)).code(), Some(0));
    assert!(!shim.socket.exists());
    assert_no_leftovers(&scratch);
}

#[test]
fn unconfigured_or_not_a_socket_runs_the_native_bb_itself() {
    let scratch = Scratch::new();
    let socket = scratch.path("plain.sock");
    // Nothing configured: the shim execs bb, so the served process *is* bb.
    let mut plain = shim_command(&scratch);
    plain.env_remove("TMPDIR");
    let served = Served::start(plain, &socket);
    let exe = std::fs::read_link(format!("/proc/{}/exe", served.child.id())).unwrap();
    assert_eq!(exe, crate::support::testbed::testbed().bb);
    // Configured, but a file input: bb's file mode answers on stdout.
    let frames = scratch.path("requests.bin");
    let req = blake2s(b"abc");
    std::fs::write(
        &frames,
        [&(req.len() as u32).to_le_bytes()[..], &req].concat(),
    )
    .unwrap();
    let out = configured(&scratch)
        .args(["msgpack", "run", "--input"])
        .arg(&frames)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(&out.stdout[4..], served.connect().ask(&req));
}

/// No native child still running and no private directory left in the scratch TMPDIR.
pub fn assert_no_leftovers(scratch: &Scratch) {
    let needle = scratch.work.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let procs: Vec<String> = processes_mentioning(&format!("{needle}/bb-remote-"));
        if procs.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left running: {procs:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let dirs: Vec<_> = std::fs::read_dir(&scratch.work)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("bb-remote-"))
        .collect();
    assert!(dirs.is_empty(), "left behind: {dirs:?}");
}

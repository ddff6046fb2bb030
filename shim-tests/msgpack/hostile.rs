//! A hostile peer on the served socket: what it announces must not cost the shim
//! memory before the bytes arrive.
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use super::harness::*;
use crate::support::testbed::Scratch;

/// An address-space limit well above what the shim needs to serve, below a 4 GiB frame.
const ADDRESS_SPACE: libc::rlim_t = 3 << 30;

/// A client announcing a 4 GiB frame and sending a few bytes of it. The shim must not
/// reserve the announced length up front: with the address space limited below it, an
/// up-front reservation fails and aborts the whole process (every client with it).
#[test]
fn an_announced_four_gib_frame_is_not_reserved_before_it_arrives() {
    let scratch = Scratch::new();
    let mut cmd = shim_command(&scratch);
    cmd.env("BB_REMOTE_BACKEND", "http://127.0.0.1:9").env(
        "BB_REMOTE_STORE",
        format!("file://{}/store", scratch.work.display()),
    );
    // SAFETY: between fork and exec only setrlimit(2) runs, which is async-signal-safe;
    // the limit applies to the child alone.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            match libc::setrlimit(libc::RLIMIT_AS, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let mut shim = Served::start(cmd, &scratch.path("shim.sock"));
    let mut hostile = shim.connect();
    hostile.stream.write_all(&u32::MAX.to_le_bytes()).unwrap();
    hostile.stream.write_all(b"\x91\x92\xa7Blake2s").unwrap();
    // Bounded: long enough for the shim to read what was sent, even under load.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Some(status) = shim.child.try_wait().unwrap() {
            panic!("the shim died: {status}\n{}", shim.stderr_text());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut client = shim.connect();
    client.send(&shutdown());
    assert_eq!(client.recv().unwrap(), b"\x92\xb0ShutdownResponse\x80");
    assert_eq!(hostile.recv(), None, "closed at shutdown");
    let status = shim.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{status}\n{}", shim.stderr_text());
}

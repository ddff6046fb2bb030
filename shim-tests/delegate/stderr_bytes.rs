//! bb's stderr comes back byte for byte, also where it is not UTF-8: a bytecode file
//! that is not JSON makes bb 5.0.0 abort with nlohmann::json's parse error, which
//! quotes the offending input bytes raw (here 0xFF). Real bb on both sides.
use std::process::{Command, Output, Stdio};

use super::harness::{bb_stderr_bytes, AztecJob, Backend, StoreKind};
use crate::support::testbed::{testbed, Scratch};

/// Bytecode that is not JSON and not UTF-8; bb echoes the bytes after `"bytecode": `.
pub const NOT_JSON: &[u8] = b"{\"noir_version\":\"1\", \"bytecode\": \xff\xfe\xc3(abc}";

/// Runs `command` with the mem-usage figure off (it differs run to run) and returns
/// the raw output.
pub fn output(command: &mut Command) -> Output {
    command
        .env("BB_DISABLE_MEM_USAGE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("starting {command:?}: {e}"))
}

/// What native bb gives for `argv` (with the test CRS): exit status and raw stderr.
pub fn native(scratch: &Scratch, argv: &[String]) -> Output {
    let mut cmd = scratch.command(&testbed().bb);
    cmd.arg(&argv[0])
        .arg("-c")
        .arg(&testbed().crs_dir)
        .args(&argv[1..]);
    output(&mut cmd)
}

/// The shim's exit code for `native`'s status (a signal N becomes 128 + N, as a shell
/// reports it: the remote side can only carry an exit code).
pub fn code_of(out: &Output) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    out.status
        .code()
        .or_else(|| out.status.signal().map(|s| 128 + s))
        .unwrap()
}

/// Asserts the shim's run replays `direct` exactly, non-UTF-8 bytes included.
pub fn assert_replayed(direct: &Output, shim: &Output) {
    let direct_err = &direct.stderr;
    assert!(
        std::str::from_utf8(direct_err).is_err(),
        "the case must make bb write non-UTF-8 bytes:\n{}",
        String::from_utf8_lossy(direct_err)
    );
    assert_eq!(
        shim.status.code(),
        Some(code_of(direct)),
        "exit code; shim stderr:\n{}",
        String::from_utf8_lossy(&shim.stderr)
    );
    assert_eq!(shim.stdout, direct.stdout);
    assert_eq!(
        bb_stderr_bytes(&shim.stderr),
        *direct_err,
        "stderr differs:\nshim:   {:?}\nnative: {:?}",
        String::from_utf8_lossy(&shim.stderr),
        String::from_utf8_lossy(direct_err)
    );
}

/// The 4.x client's `prove` argv on `job`, its bytecode replaced by [`NOT_JSON`] in a
/// `.json` file (bb parses `.json` bytecode as a nargo artifact, anything else as
/// gzip), without `-v` (the reference worker runs bb on sandbox paths, and `-v` prints
/// them).
pub fn not_json_argv(scratch: &Scratch, job: &AztecJob) -> Vec<String> {
    let bytecode = scratch.path("artifact.json");
    std::fs::write(&bytecode, NOT_JSON).unwrap();
    let mut argv = job.prove_argv(&scratch.path("out"));
    argv.retain(|a| a != "-v");
    let at = argv.iter().position(|a| a == "-b").unwrap() + 1;
    argv[at] = bytecode.to_str().unwrap().to_owned();
    argv
}

#[test]
fn non_utf8_stderr_comes_back_byte_exact_through_the_worker() {
    let backend = Backend::real_bb(StoreKind::File, &[]);
    let scratch = Scratch::new();
    let job = AztecJob::new(&scratch, "square", "SquareArtifact");
    let argv = not_json_argv(&scratch, &job);
    let direct = native(&scratch, &argv);
    let shim = output(backend.shim(&scratch).args(&argv));
    assert!(
        String::from_utf8_lossy(&shim.stderr).contains("bb-remote: "),
        "not delegated:\n{}",
        String::from_utf8_lossy(&shim.stderr)
    );
    assert_replayed(&direct, &shim);
}

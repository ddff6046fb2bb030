//! Passthrough equivalence: the shim through exec AND through dlopen gives the same
//! stdout, stderr, exit code and output files as the real bb 5.0.0 run directly.

use crate::support::testbed::{circuit, run, testbed, Outcome, Scratch};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const SHIM: &str = env!("CARGO_BIN_EXE_bb");

/// Compile one of the C test doubles in shim-tests/fixtures into a shared library.
fn compile_library(source: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("shim-tests/fixtures")
        .join(source);
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(source.replace(".c", ".so"));
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("running cc to build a test library");
    assert!(status.success(), "compiling {}", src.display());
    out
}

/// The TEST DOUBLE libbb: exports `bb_main` and runs the real bb named in its env.
fn libbb_test_double() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| compile_library("libbb_test_double.c"))
}

#[derive(Clone, Copy, Debug)]
enum Via {
    Direct,
    Exec,
    Dlopen,
}

/// One scratch directory laid out identically for each way of running bb, so paths
/// in bb's messages are the same relative paths everywhere.
fn prepared_scratch(circuit_name: &str, setup: &[&[&str]]) -> Scratch {
    let scratch = Scratch::new();
    let c = circuit(circuit_name);
    std::fs::copy(&c.program, scratch.path("program.json")).unwrap();
    std::fs::copy(&c.witness, scratch.path("witness.gz")).unwrap();
    // A private CRS directory (bb writes its lock file there) holding links to the test CRS.
    let crs = scratch.path("crs");
    std::fs::create_dir(&crs).unwrap();
    for file in ["bn254_g1.dat", "bn254_g2.dat"] {
        std::os::unix::fs::symlink(testbed().crs_dir.join(file), crs.join(file)).unwrap();
    }
    for args in setup {
        run(bb_command(&scratch, Via::Direct, &testbed().bb).args(*args))
            .assert_code(0, "setup step");
    }
    scratch
}

fn bb_command(scratch: &Scratch, via: Via, real_bb: &Path) -> Command {
    let mut cmd = match via {
        Via::Direct => scratch.command(real_bb),
        Via::Exec => {
            let mut c = scratch.command(SHIM);
            c.env("BB_REMOTE_NATIVE_BIN", real_bb);
            c
        }
        Via::Dlopen => {
            let mut c = scratch.command(SHIM);
            c.env("BB_REMOTE_NATIVE_LIB", libbb_test_double())
                .env("BB_TEST_DOUBLE_REAL_BB", real_bb);
            c
        }
    };
    // Same argv[0] for all three, and no run-to-run noise in bb's log lines.
    use std::os::unix::process::CommandExt;
    cmd.arg0("bb")
        .env("BB_DISABLE_MEM_USAGE", "1")
        .env("HARDWARE_CONCURRENCY", "2");
    cmd
}

/// Every regular file under `dir` (links reported as links), relative path → bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                out.insert(rel, b"<link>".to_vec());
            } else if kind.is_dir() {
                stack.push(path);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

struct Case {
    name: &'static str,
    circuit: &'static str,
    setup: &'static [&'static [&'static str]],
    args: &'static [&'static str],
    expected_code: i32,
    /// Verify needs the test-only verifier (the stock bb pins the real CRS's G2 point).
    testcrs_verifier: bool,
}

const WRITE_VK: &[&str] = &["write_vk", "-b", "program.json", "-o", "vk", "-c", "crs"];
const PROVE: &[&str] = &[
    "prove",
    "-b",
    "program.json",
    "-w",
    "witness.gz",
    "-k",
    "vk/vk",
    "-o",
    "proofs",
    "-c",
    "crs",
    "--disable_zk",
];

const CASES: &[Case] = &[
    Case {
        name: "--version",
        circuit: "square",
        setup: &[],
        args: &["--version"],
        expected_code: 0,
        testcrs_verifier: false,
    },
    Case {
        name: "--help",
        circuit: "square",
        setup: &[],
        args: &["--help"],
        expected_code: 0,
        testcrs_verifier: false,
    },
    Case {
        name: "prove --help",
        circuit: "square",
        setup: &[],
        args: &["prove", "--help"],
        expected_code: 0,
        testcrs_verifier: false,
    },
    Case {
        name: "gates",
        circuit: "square",
        setup: &[],
        args: &["gates", "-b", "program.json"],
        expected_code: 0,
        testcrs_verifier: false,
    },
    Case {
        name: "write_vk",
        circuit: "square",
        setup: &[],
        args: WRITE_VK,
        expected_code: 0,
        testcrs_verifier: false,
    },
    Case {
        name: "prove",
        circuit: "square",
        setup: &[WRITE_VK],
        args: PROVE,
        expected_code: 0,
        testcrs_verifier: false,
    },
    Case {
        name: "verify",
        circuit: "square",
        setup: &[WRITE_VK, PROVE],
        args: &[
            "verify",
            "-k",
            "vk/vk",
            "-p",
            "proofs/proof",
            "-i",
            "proofs/public_inputs",
            "-c",
            "crs",
            "--disable_zk",
        ],
        expected_code: 0,
        testcrs_verifier: true,
    },
    Case {
        name: "unknown command",
        circuit: "square",
        setup: &[],
        args: &["frobnicate"],
        expected_code: 109,
        testcrs_verifier: false,
    },
    Case {
        name: "unknown flag",
        circuit: "square",
        setup: &[],
        args: &["prove", "--frobnicate"],
        expected_code: 109,
        testcrs_verifier: false,
    },
    Case {
        name: "bad enum value",
        circuit: "square",
        setup: &[],
        args: &["prove", "--scheme", "foo"],
        expected_code: 105,
        testcrs_verifier: false,
    },
    Case {
        name: "repeated option",
        circuit: "square",
        setup: &[],
        args: &["prove", "-b", "program.json", "-b", "other.json"],
        expected_code: 114,
        testcrs_verifier: false,
    },
    Case {
        name: "missing input file",
        circuit: "square",
        setup: &[],
        args: &[
            "prove",
            "-b",
            "missing.json",
            "-w",
            "witness.gz",
            "-o",
            "proofs",
            "-c",
            "crs",
        ],
        expected_code: 1,
        testcrs_verifier: false,
    },
];

fn observe(case: &Case, via: Via) -> (Outcome, BTreeMap<String, Vec<u8>>) {
    let scratch = prepared_scratch(case.circuit, case.setup);
    let real = if case.testcrs_verifier {
        &testbed().bb_testcrs
    } else {
        &testbed().bb
    };
    let outcome = run(bb_command(&scratch, via, real).args(case.args));
    let written = files(&scratch.work);
    (outcome, written)
}

#[test]
fn shim_is_byte_identical_to_bb_through_exec_and_dlopen() {
    for case in CASES {
        let (direct, direct_files) = observe(case, Via::Direct);
        direct.assert_code(case.expected_code, &format!("direct bb: {}", case.name));
        for via in [Via::Exec, Via::Dlopen] {
            let (shim, shim_files) = observe(case, via);
            let what = format!("{} via {via:?}", case.name);
            assert_eq!(
                shim.code, direct.code,
                "{what}: exit code; stderr:\n{}",
                shim.stderr
            );
            assert_eq!(shim.signal, direct.signal, "{what}: signal");
            assert_eq!(shim.stdout, direct.stdout, "{what}: stdout");
            assert_eq!(
                without_timings(&shim.stderr),
                without_timings(&direct.stderr),
                "{what}: stderr"
            );
            assert_eq!(
                shim_files.keys().collect::<Vec<_>>(),
                direct_files.keys().collect::<Vec<_>>(),
                "{what}: the set of files"
            );
            for (name, bytes) in &direct_files {
                assert!(shim_files[name] == *bytes, "{what}: {name} differs");
            }
        }
    }
}

/// bb logs measured durations (`Proving key computed in 4 ms`); they differ run to
/// run, so the digits before ` ms` are masked. Everything else must match exactly.
fn without_timings(stderr: &str) -> String {
    let mut out = String::with_capacity(stderr.len());
    let mut rest = stderr;
    while let Some(pos) = rest.find(" ms") {
        let (head, tail) = rest.split_at(pos);
        let digits = head.len() - head.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        out.push_str(&head[..head.len() - digits]);
        out.push_str(if digits > 0 { "<N>" } else { "" });
        out.push_str(" ms");
        rest = &tail[3..];
    }
    out.push_str(rest);
    out
}

#[test]
fn timing_mask_only_touches_durations() {
    assert_eq!(
        without_timings("computed in 4 ms\nin 1234 ms\nterms x"),
        "computed in <N> ms\nin <N> ms\nterms x"
    );
}

/// Copies an executable with `cp`, not `std::fs::copy`: a write descriptor opened in
/// this multi-threaded test process leaks into any child another test forks meanwhile,
/// and exec'ing the copy then fails with ETXTBSY ("Text file busy") until that child
/// execs. In a `cp` process the descriptor is gone when `cp` exits.
fn copy_executable(from: &std::path::Path, to: &std::path::Path) {
    let status = std::process::Command::new("cp")
        .arg(from)
        .arg(to)
        .status()
        .expect("running cp");
    assert!(
        status.success(),
        "cp {} {}: {status}",
        from.display(),
        to.display()
    );
}

/// The shim's own failure: its exit code, a message on stderr with every `needle`, nothing on stdout.
fn assert_shim_error(outcome: &Outcome, code: u8, needles: &[&str]) {
    assert_eq!(outcome.code, Some(i32::from(code)), "{outcome:?}");
    assert!(
        outcome.stdout.is_empty(),
        "stdout must stay bb's: {outcome:?}"
    );
    for needle in needles {
        assert!(
            outcome.stderr.contains(needle),
            "stderr lacks {needle:?}: {}",
            outcome.stderr
        );
    }
}

#[test]
fn no_native_found_names_both_variables() {
    let scratch = Scratch::new();
    let outcome = run(scratch.command(SHIM).arg("--version"));
    assert_shim_error(
        &outcome,
        bb_remote::exit::NATIVE_MISSING,
        &[
            "BB_REMOTE_NATIVE_BIN",
            "BB_REMOTE_NATIVE_LIB",
            "bb.native",
            "libbb.so",
        ],
    );
}

#[test]
fn library_without_the_symbol_names_file_and_symbol() {
    let lib = compile_library("lib_without_bb_main.c");
    let scratch = Scratch::new();
    let outcome = run(scratch
        .command(SHIM)
        .env("BB_REMOTE_NATIVE_LIB", &lib)
        .arg("--version"));
    assert_shim_error(
        &outcome,
        bb_remote::exit::NATIVE_MISSING,
        &[lib.to_str().unwrap(), "bb_main"],
    );
    let outcome = run(scratch
        .command(SHIM)
        .env("BB_REMOTE_NATIVE_LIB", libbb_test_double())
        .env("BB_REMOTE_NATIVE_SYMBOL", "bb_main_v2")
        .arg("--version"));
    assert_shim_error(&outcome, bb_remote::exit::NATIVE_MISSING, &["bb_main_v2"]);
}

#[test]
fn bad_values_name_the_variable_and_write_nothing_to_stdout() {
    let scratch = Scratch::new();
    let native = &testbed().bb;
    for (var, value) in [
        ("BB_REMOTE_FALLBACK", "sometimes"),
        ("BB_REMOTE_TIMEOUT", "ten"),
        ("BB_REMOTE_LOG_FORMAT", "xml"),
        ("BB_REMOTE_BACKEND", "not a url"),
    ] {
        let outcome = run(scratch
            .command(SHIM)
            .env("BB_REMOTE_NATIVE_BIN", native)
            .env(var, value)
            .arg("--version"));
        assert_shim_error(&outcome, bb_remote::exit::CONFIG, &[var, value]);
    }
    let outcome = run(scratch
        .command(SHIM)
        .env("BB_REMOTE_NATIVE_BIN", native)
        .env("BB_REMOTE_NATIVE_LIB", libbb_test_double())
        .arg("--version"));
    assert_shim_error(
        &outcome,
        bb_remote::exit::CONFIG,
        &["BB_REMOTE_NATIVE_BIN", "BB_REMOTE_NATIVE_LIB"],
    );
}

#[test]
fn the_shim_refuses_itself_as_its_native() {
    let scratch = Scratch::new();
    let outcome = run(scratch
        .command(SHIM)
        .env("BB_REMOTE_NATIVE_BIN", SHIM)
        .arg("--version"));
    assert_shim_error(
        &outcome,
        bb_remote::exit::NATIVE_MISSING,
        &["is this shim itself"],
    );

    // A copy of the shim is a different file: the guard variable stops the second hop.
    let copy = scratch.path("bb-copy");
    copy_executable(SHIM.as_ref(), &copy);
    let outcome = run(scratch
        .command(SHIM)
        .env("BB_REMOTE_NATIVE_BIN", &copy)
        .arg("--version"));
    assert_shim_error(
        &outcome,
        bb_remote::exit::NATIVE_MISSING,
        &["handed control back to a bb-remote shim"],
    );
}

#[test]
fn discovers_bb_native_beside_the_shim() {
    let scratch = Scratch::new();
    let dir = scratch.path("bin");
    std::fs::create_dir(&dir).unwrap();
    copy_executable(SHIM.as_ref(), &dir.join("bb"));
    std::os::unix::fs::symlink(&testbed().bb, dir.join("bb.native")).unwrap();
    let via_shim = run(scratch.command(dir.join("bb")).arg("--version"));
    let direct = run(scratch.command(&testbed().bb).arg("--version"));
    via_shim.assert_code(0, "shim with bb.native beside it");
    assert_eq!(via_shim.stdout, direct.stdout);
}

//! The real test bed installed by `scripts/testbed` into `.testbed/`: the native bb
//! 5.0.0, a TEST-ONLY verifier copy of it, an INSECURE test CRS, the committed Noir
//! test circuits, and moto's S3 server.
//!
//! Helpers here run real processes only; nothing is mocked. For what each file is
//! and why, see `scripts/testbed` and docs/testing.md.

use object_store::aws::{AmazonS3, AmazonS3Builder};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Paths of the installed test bed. Every path exists (checked on first use).
#[derive(Debug)]
pub struct Testbed {
    /// The stock native bb 5.0.0 from npm `@aztec/bb.js`. Use it to prove.
    pub bb: PathBuf,
    /// TEST-ONLY bb whose verifier trusts the test CRS. Use it only to verify.
    pub bb_testcrs: PathBuf,
    /// The INSECURE test CRS for `bb -c` (2^18 G1 points). bb writes `crs.lock` here.
    pub crs_dir: PathBuf,
    /// moto's S3 server executable; see [`S3Server::start`].
    pub moto_server: PathBuf,
    /// `testbed/circuits` in the source tree.
    pub circuits_dir: PathBuf,
}

/// A committed test circuit: the compiled nargo artifact and its solved witness.
#[derive(Debug, Clone)]
pub struct Circuit {
    /// The whole nargo JSON artifact (`bb -b`).
    pub program: PathBuf,
    /// The gzipped witness stack (`bb -w`).
    pub witness: PathBuf,
}

/// The installed test bed; panics with instructions when it is missing.
pub fn testbed() -> &'static Testbed {
    static TESTBED: OnceLock<Testbed> = OnceLock::new();
    TESTBED.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let installed = root.join(".testbed");
        let testbed = Testbed {
            bb: installed.join("bin/bb"),
            bb_testcrs: installed.join("bin/bb-testcrs"),
            crs_dir: installed.join("crs"),
            moto_server: installed.join("venv/bin/moto_server"),
            circuits_dir: root.join("testbed/circuits"),
        };
        let required = [
            &testbed.bb,
            &testbed.bb_testcrs,
            &testbed.crs_dir.join("bn254_g1.dat"),
            &testbed.moto_server,
        ];
        for path in required {
            assert!(
                path.exists(),
                "test bed incomplete: {} is missing; run scripts/testbed first",
                path.display()
            );
        }
        testbed
    })
}

/// One of the committed circuits: `square`, `hashchain` or `hashchain_big`.
pub fn circuit(name: &str) -> Circuit {
    let dir = testbed().circuits_dir.join(name);
    let circuit = Circuit {
        program: dir.join("program.json"),
        witness: dir.join("witness.gz"),
    };
    for path in [&circuit.program, &circuit.witness] {
        assert!(
            path.exists(),
            "no test circuit '{name}': {} is missing (scripts/build-circuits regenerates it)",
            path.display()
        );
    }
    circuit
}

/// A fresh working directory plus a scratch `HOME`, so bb never reads or writes the
/// real `~/.bb-crs`. Removed on drop.
pub struct Scratch {
    _dir: TempDir,
    /// The working directory commands run in.
    pub work: PathBuf,
    /// What `HOME` points at for commands run here.
    pub home: PathBuf,
}

impl Scratch {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bb-remote-test-")
            .tempdir()
            .expect("creating a scratch directory");
        let work = dir.path().join("work");
        let home = dir.path().join("home");
        for path in [&work, &home] {
            std::fs::create_dir(path).expect("creating scratch subdirectory");
        }
        Scratch {
            _dir: dir,
            work,
            home,
        }
    }

    /// A command that runs in `work` with a clean environment: only `PATH`, a
    /// scratch `HOME` and `BB_DISABLE_MEM_USAGE=1`, so no `BB_REMOTE_*`, `CRS_PATH`
    /// or `AWS_*` of the developer's shell leaks in. Add what the test needs with
    /// `.env(..)`.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(&self.work)
            .env_clear()
            .env("HOME", &self.home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // bb appends `(mem: X MiB)` to log lines, which varies run to run; tests
            // compare stderr byte for byte between bb and the shim.
            .env("BB_DISABLE_MEM_USAGE", "1");
        command
    }

    /// A path inside `work`.
    pub fn path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.work.join(relative)
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// What a finished process did.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code, `None` when killed by a signal.
    pub code: Option<i32>,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Outcome {
    /// Panics with the command's output unless it exited with `expected`.
    #[track_caller]
    pub fn assert_code(&self, expected: i32, what: &str) {
        assert_eq!(
            self.code,
            Some(expected),
            "{what}: expected exit code {expected}, got {self:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        );
    }
}

/// Runs `command` to completion, capturing stdout and stderr (stdin is empty).
pub fn run(command: &mut Command) -> Outcome {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
    Outcome {
        code: output.status.code(),
        signal: output.status.signal(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A running moto S3 server on a free loopback port, with one empty bucket.
/// Killed when dropped (also when the test panics).
pub struct S3Server {
    child: Child,
    _log_dir: TempDir,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub bucket: String,
}

/// Any key pair works with moto; these only have to be present for request signing.
const MOTO_ACCESS_KEY: &str = "testing";
const MOTO_SECRET_KEY: &str = "testing";
const MOTO_REGION: &str = "us-east-1";

impl S3Server {
    /// Starts moto and creates `bucket` (S3 rules: 3-63 lowercase letters, digits, '-').
    pub fn start(bucket: &str) -> S3Server {
        let log_dir = TempDir::new().expect("creating moto log directory");
        let log_path = log_dir.path().join("moto.log");
        let port = free_loopback_port();
        let log = std::fs::File::create(&log_path).expect("creating moto log");
        let child = Command::new(&testbed().moto_server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning log handle"))
            .stderr(log)
            .spawn()
            .expect("starting moto_server");
        let mut server = S3Server {
            child,
            _log_dir: log_dir,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.to_owned(),
        };
        server.create_bucket(port, &log_path);
        server
    }

    /// Waits for moto to accept connections, then creates the bucket with a plain
    /// (unsigned) `PUT /bucket`, which moto allows.
    fn create_bucket(&mut self, port: u16, log_path: &Path) {
        // Generous: a loaded 2-core CI box can take seconds to start Python.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("polling moto_server") {
                let log = std::fs::read_to_string(log_path).unwrap_or_default();
                panic!("moto_server exited early ({status}); its log:\n{log}");
            }
            match http_put_empty(port, &format!("/{}", self.bucket)) {
                Ok(200) => return,
                Ok(status) => panic!(
                    "moto refused to create bucket '{}': HTTP {status}",
                    self.bucket
                ),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => panic!("moto_server did not answer on port {port}: {e}"),
            }
        }
    }

    /// An object_store client for the bucket.
    pub fn store(&self) -> AmazonS3 {
        bb_remote::store::ensure_tls_provider();
        AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(&self.bucket)
            .with_region(MOTO_REGION)
            .with_access_key_id(MOTO_ACCESS_KEY)
            .with_secret_access_key(MOTO_SECRET_KEY)
            .build()
            .expect("building the S3 client for moto")
    }

    /// `s3://BUCKET`, for configuration that takes a store URL.
    pub fn url(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    /// `s3://BUCKET/<prefix>` and the shim's own store layer on it (what a worker
    /// given that URL and [`S3Server::aws_env`] reads and writes).
    pub fn prefixed_store(&self, prefix: &str) -> (String, bb_remote::store::Store) {
        let url = format!("{}/{prefix}", self.url());
        let env = bb_remote::config::Env::from_pairs(self.aws_env());
        let store = bb_remote::store::Store::from_url(&url, &env).unwrap();
        (url, store)
    }

    /// The `AWS_*` settings object_store reads (`AmazonS3Builder::from_env`), for
    /// handing to a child process run with [`Scratch::command`].
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_REGION", MOTO_REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", MOTO_ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", MOTO_SECRET_KEY.to_owned()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks the kernel for a free port. Another process could take it before moto binds
/// it; moto then exits and `create_bucket` reports that with moto's log.
fn free_loopback_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("finding a free loopback port")
        .port()
}

/// A minimal HTTP/1.1 `PUT` with an empty body; returns the status code.
fn http_put_empty(port: u16, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:.80}")))
}

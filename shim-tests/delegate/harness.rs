//! Shared setup for the delegation tests: a real `bb-remote worker` (the worker
//! tests' harness) running the test bed's bb 5.0.0, and the `bb` shim pointed at it.
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::testbed::{circuit, run, testbed, Outcome, S3Server, Scratch};
use crate::worker::harness::{Scratch as WorkerScratch, WorkerProc};

/// Where the backend keeps its objects.
pub enum StoreKind {
    File,
    S3(S3Server),
    /// Any store URL with the variables that reach it (Azurite, fake-gcs-server, ...).
    Url(String, Vec<(&'static str, String)>),
}

/// A worker plus the store settings a shim needs to reach it.
pub struct Backend {
    pub worker: WorkerProc,
    pub _worker_scratch: WorkerScratch,
    pub store_url: String,
    pub store_env: Vec<(&'static str, String)>,
    _s3: Option<S3Server>,
}

impl Backend {
    /// A worker running the real bb with the test CRS. `extra` worker flags (e.g. `--token`).
    pub fn real_bb(kind: StoreKind, extra: &[&str]) -> Self {
        let tb = testbed();
        Self::start(kind, tb.bb.clone(), extra)
    }

    /// A worker that runs `bb` (e.g. a stand-in legacy bb) for every image.
    pub fn start(kind: StoreKind, bb: PathBuf, extra: &[&str]) -> Self {
        let worker_scratch = WorkerScratch::new();
        let (store_url, store_env, s3) = match kind {
            StoreKind::File => (worker_scratch.store_url(), Vec::new(), None),
            StoreKind::S3(server) => (server.url(), server.aws_env(), Some(server)),
            StoreKind::Url(url, env) => (url, env, None),
        };
        let mut args = vec![
            "--store".to_owned(),
            store_url.clone(),
            "--data-dir".into(),
            worker_scratch.data_dir().display().to_string(),
            "--bb".into(),
            bb.display().to_string(),
            "--crs-dir".into(),
            testbed().crs_dir.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let worker = WorkerProc::start_with_env(&args, &store_env);
        Self {
            worker,
            _worker_scratch: worker_scratch,
            store_url,
            store_env,
            _s3: s3,
        }
    }

    /// The shim (`bb`) in `scratch` pointed at this backend; the native bb is the test
    /// bed's (for passthrough and fallback).
    pub fn shim(&self, scratch: &Scratch) -> Command {
        self.shim_to(scratch, &self.worker.base)
    }

    /// The shim pointed at `backend_url` (e.g. a fault-injecting proxy in front).
    pub fn shim_to(&self, scratch: &Scratch, backend_url: &str) -> Command {
        let mut cmd = shim_command(scratch, backend_url, &self.store_url);
        cmd.envs(self.store_env.iter().map(|(k, v)| (*k, v)));
        cmd
    }

    /// Every task the worker knows (FULL view).
    pub async fn tasks(&self) -> Vec<bb_remote::tes::types::Task> {
        let (status, body) = self.worker.get_path("/ga4gh/tes/v1/tasks?view=FULL").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body["tasks"].clone()).unwrap()
    }
}

/// The shim (`bb`) in `scratch` delegating to `backend_url` with `store_url`; the
/// native bb is the test bed's (for passthrough and fallback).
pub fn shim_command(scratch: &Scratch, backend_url: &str, store_url: &str) -> Command {
    let mut cmd = scratch.command(env!("CARGO_BIN_EXE_bb"));
    cmd.env("BB_REMOTE_BACKEND", backend_url)
        .env("BB_REMOTE_STORE", store_url)
        .env("BB_REMOTE_NATIVE_BIN", &testbed().bb);
    cmd
}

/// The Aztec client's job directory for one circuit: `<Artifact>-bytecode` (the
/// artifact's bytecode, base64-decoded as the client writes it), `<Artifact>-vk`
/// (from the real bb's `write_vk`) and `partial-witness.gz`.
pub struct AztecJob {
    pub dir: PathBuf,
    pub artifact: String,
}

impl AztecJob {
    pub fn new(scratch: &Scratch, name: &str, artifact: &str) -> Self {
        let c = circuit(name);
        let dir = scratch.path(format!("job-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&c.program).unwrap()).unwrap();
        let bytecode_b64 = json["bytecode"].as_str().unwrap();
        let job = Self {
            dir,
            artifact: artifact.to_owned(),
        };
        // Through files, not pipes: a pipe both ways can fill and deadlock.
        let b64 = job.dir.join("bytecode.b64");
        std::fs::write(&b64, bytecode_b64).unwrap();
        let out = Command::new("base64").arg("-d").arg(&b64).output().unwrap();
        assert!(out.status.success());
        std::fs::remove_file(&b64).unwrap();
        std::fs::write(job.bytecode(), out.stdout).unwrap();
        std::fs::copy(&c.witness, job.witness()).unwrap();
        let vk_dir = job.dir.join("vk-out");
        let outcome = direct_bb(
            scratch,
            &[
                "write_vk",
                "--scheme",
                "ultra_honk",
                "--oracle_hash",
                "poseidon2",
                "--disable_zk",
                "-b",
                job.bytecode().to_str().unwrap(),
                "-o",
                vk_dir.to_str().unwrap(),
            ],
        );
        outcome.assert_code(0, "bb write_vk");
        std::fs::rename(vk_dir.join("vk"), job.vk()).unwrap();
        std::fs::remove_dir_all(vk_dir).unwrap();
        job
    }

    pub fn bytecode(&self) -> PathBuf {
        self.dir.join(format!("{}-bytecode", self.artifact))
    }
    pub fn vk(&self) -> PathBuf {
        self.dir.join(format!("{}-vk", self.artifact))
    }
    pub fn witness(&self) -> PathBuf {
        self.dir.join("partial-witness.gz")
    }

    /// New witness bytes, the same witness (gzip ignores its header's mtime): the next
    /// proof of this job has one new input. Returns the witness file's size.
    pub fn touch_witness(&self) -> u64 {
        let mut witness = std::fs::read(self.witness()).unwrap();
        witness[4] ^= 1;
        std::fs::write(self.witness(), &witness).unwrap();
        witness.len() as u64
    }

    /// The Aztec 4.x client's exact `prove` argv, writing into `out`.
    pub fn prove_argv(&self, out: &Path) -> Vec<String> {
        [
            "prove",
            "--scheme",
            "ultra_honk",
            "--oracle_hash",
            "poseidon2",
            "--disable_zk",
            "-o",
            out.to_str().unwrap(),
            "-b",
            self.bytecode().to_str().unwrap(),
            "-k",
            self.vk().to_str().unwrap(),
            "-w",
            self.witness().to_str().unwrap(),
            "-v",
            "-v",
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

/// The square circuit's job in `scratch`, proved by bb directly into `<scratch>/direct`
/// (returned), for comparing a delegated proof with.
pub fn square_proved_directly(scratch: &Scratch) -> (AztecJob, PathBuf) {
    let (job, direct_out, _) = proved_directly(scratch, "square", "SquareArtifact");
    (job, direct_out)
}

/// A circuit's job in `scratch`, proved by bb directly into `<scratch>/direct`: the
/// job, that directory and bb's outcome (its streams), for comparing a delegated
/// proof with.
pub fn proved_directly(
    scratch: &Scratch,
    name: &str,
    artifact: &str,
) -> (AztecJob, PathBuf, Outcome) {
    let job = AztecJob::new(scratch, name, artifact);
    let direct_out = scratch.path("direct");
    let argv = job.prove_argv(&direct_out);
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let direct = direct_bb(scratch, &args);
    direct.assert_code(0, "bb prove directly");
    (job, direct_out, direct)
}

/// The files of an output directory that holds a proof: `proof` and `public_inputs`
/// among them.
pub fn proof_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let found = files(dir);
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"proof") && names.contains(&"public_inputs"),
        "{}: {names:?}",
        dir.display()
    );
    found
}

/// The real bb run directly with the test CRS (`-c` after the subcommand).
pub fn direct_bb(scratch: &Scratch, args: &[&str]) -> Outcome {
    let mut cmd = scratch.command(&testbed().bb);
    cmd.arg(args[0])
        .arg("-c")
        .arg(&testbed().crs_dir)
        .args(&args[1..]);
    run(&mut cmd)
}

/// Files directly in `dir`, sorted, with their bytes.
pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap())
                .map(|e| {
                    (
                        e.file_name().into_string().unwrap(),
                        std::fs::read(e.path()).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The shim's upload line: (files sent, bytes sent).
pub fn uploaded(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("bb-remote: inputs:"))
        .unwrap_or_else(|| panic!("no upload line in stderr:\n{stderr}"));
    let after = line.split("uploaded ").nth(1).unwrap();
    let nums: Vec<u64> = after
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1])
}

/// stderr without the shim's own `bb-remote:` lines (what bb itself wrote).
pub fn bb_stderr(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.starts_with("bb-remote:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// [`bb_stderr`] on raw bytes: stderr lines not starting with `bb-remote:`, byte for
/// byte (for checks that non-UTF-8 bytes survive).
pub fn bb_stderr_bytes(stderr: &[u8]) -> Vec<u8> {
    stderr
        .split_inclusive(|b| *b == b'\n')
        .filter(|line| !line.starts_with(b"bb-remote:"))
        .flatten()
        .copied()
        .collect()
}

/// [`run`] on a blocking thread, for async tests that also serve a proxy.
pub async fn run_blocking(mut command: Command) -> Outcome {
    tokio::task::spawn_blocking(move || run(&mut command))
        .await
        .unwrap()
}

/// The local path of a `file://` URL.
pub fn file_url_path(url: &str) -> PathBuf {
    url::Url::parse(url).unwrap().to_file_path().unwrap()
}

/// [`run`] with a time limit (the child is killed at `limit`, so a shim that loops
/// forever fails the test instead of hanging it), also returning the child's own
/// peak RSS in KiB (`ru_maxrss` from `wait4`: exact, and the shim starts no children
/// on these paths).
pub fn run_bounded(command: &mut Command, limit: std::time::Duration) -> (Outcome, u64, bool) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    // Reaped below with wait4 (for its rusage), not with Child::wait.
    #[expect(clippy::zombie_processes, reason = "reaped by wait4 below")]
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + limit;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    loop {
        // SAFETY: pid is our own child, not yet reaped; status and usage are valid.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(reaped >= 0, "wait4: {}", std::io::Error::last_os_error());
        if reaped == pid {
            break;
        }
        if !killed && std::time::Instant::now() >= deadline {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let status = std::process::ExitStatus::from_raw(status);
    let outcome = Outcome {
        code: status.code(),
        signal: status.signal(),
        stdout: out.join().unwrap(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
    };
    (outcome, usage.ru_maxrss as u64, killed)
}

/// A shim started in the background whose stderr is collected as it comes, so a test
/// can wait for a line (e.g. the task RUNNING) before acting (e.g. sending SIGINT).
pub struct Spawned {
    child: std::process::Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Spawned {
    pub fn start(command: &mut Command) -> Self {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let pipe = std::io::BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in pipe.lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Self {
            child,
            stderr,
            reader,
        }
    }

    /// Block until stderr contains `needle` (panics after `limit`, showing stderr).
    pub fn wait_for(&self, needle: &str, limit: std::time::Duration) {
        let deadline = std::time::Instant::now() + limit;
        while !self.stderr.lock().unwrap().contains(needle) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} within {limit:?}; stderr so far:\n{}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid; it has not been reaped yet.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Wait for the exit (killing the child after `limit`) and return what it did.
    pub fn finish(mut self, limit: std::time::Duration) -> Outcome {
        use std::os::unix::process::ExitStatusExt;
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "still running after {limit:?}; stderr:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        self.reader.join().unwrap();
        let stderr = self.stderr.lock().unwrap().clone();
        Outcome {
            code: status.code(),
            signal: status.signal(),
            stdout: Vec::new(),
            stderr,
        }
    }
}

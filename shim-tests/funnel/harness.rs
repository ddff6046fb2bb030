//! A real Funnel v0.12.2 server (`.testbed/bin/funnel`, built by `scripts/testbed`)
//! with the local compute backend, for the shim to delegate to.
//!
//! Funnel binds every interface, so each test runs in its own network namespace that
//! holds only `lo` ([`in_netns`]): Funnel, moto and the shim all start from that
//! thread and so live in that namespace; nothing is reachable from outside, and fixed
//! ports cannot clash between tests.
//!
//! The only stand-in is the container runtime: `testbed/funnel/container-driver`, a
//! TEST DOUBLE for `docker` that runs the executor's command in a private mount
//! namespace, chrooted into a root holding the task's volumes at their container
//! paths, the test bed's bb at the stock image's path and the test CRS at `/crs`. The
//! TES server, scheduling, storage transfer, task state and cancel are Funnel's own.
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bb_remote::tes::client::{ClientOptions, TesClient};
use bb_remote::tes::types::Task;

use crate::support::testbed::{testbed, S3Server, Scratch};

pub const HTTP_PORT: u16 = 18000;
const RPC_PORT: u16 = 19090;
/// Where the container driver mounts the test bed's bb: the stock image's layout.
pub const IMAGE_BB: &str = "/usr/src/barretenberg/cpp/build/bin/bb";
/// Where the container driver mounts the test CRS.
pub const IMAGE_CRS: &str = "/crs";
pub const IMAGE: &str = "aztecprotocol/barretenberg:test-double";

/// Run `f` on a new thread inside a new network namespace holding only `lo` (up).
/// Every process `f` starts inherits the namespace. Needs root.
pub fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let thread = std::thread::spawn(move || {
        // SAFETY: unshare(2) with CLONE_NEWNET changes only the calling thread's network
        // namespace; no memory is shared or invalidated.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET): {} (the Funnel tests need root)",
            std::io::Error::last_os_error()
        );
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("running ip");
        assert!(up.success(), "ip link set lo up: {up}");
        f()
    });
    match thread.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Funnel's Slurm backend with a batch script of our own: in v0.12.2 the default one
/// names `{{.Executable}}` and `{{.Config}}`, which the backend does not provide, and
/// compares the unsigned `.Cpus` with `0`, which Go templates refuse (the task ends
/// SYSTEM_ERROR with no log). `@FUNNEL@` is the funnel binary; `.Args` is
/// `--config <the server's config>`. The reconciler (squeue polling) is off: the
/// worker reports states itself.
const SLURM_COMPUTE: &str = r#"slurm
Slurm:
  DisableReconciler: true
  Template: |
    #!/bin/bash
    #SBATCH --job-name {{.TaskId}}
    #SBATCH --ntasks 1
    #SBATCH --error {{.WorkDir}}/funnel-stderr
    #SBATCH --output {{.WorkDir}}/funnel-stdout
    {{if .Cpus}}#SBATCH --cpus-per-task {{.Cpus}}{{end}}
    {{if .RamGb}}#SBATCH --mem {{printf "%.0f" .RamGb}}G{{end}}
    exec @FUNNEL@ worker run {{.Args}} --taskID {{.TaskId}}"#;

/// The store Funnel reads inputs from and writes outputs to.
pub enum FunnelStore {
    /// `file://<dir>` (Funnel's `LocalStorage.AllowedDirs`).
    File,
    /// S3 on moto (Funnel's `GenericS3`).
    S3(S3Server),
}

#[derive(Default)]
pub struct Options {
    /// `Server.BasicAuth` (and the same for its own RPC client).
    pub basic_auth: Option<(String, String)>,
    /// Run tasks through Funnel's Slurm backend (`sbatch`) on the cluster this
    /// `SLURM_CONF` describes, instead of its local backend.
    pub slurm_conf: Option<std::path::PathBuf>,
}

/// A running Funnel server; killed (with its tasks' processes) on drop.
pub struct Funnel {
    child: Child,
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:18000`, without credentials.
    pub url: String,
    pub store_url: String,
    pub store_env: Vec<(&'static str, String)>,
    auth: Option<(String, String)>,
    _s3: Option<S3Server>,
}

impl Funnel {
    /// Start Funnel and wait until its TES API answers. Call inside [`in_netns`].
    pub fn start(store: FunnelStore, options: Options) -> Funnel {
        let tb = testbed();
        let funnel_bin = tb.crs_dir.parent().unwrap().join("bin/funnel");
        assert!(
            funnel_bin.exists(),
            "{} is missing: run scripts/testbed",
            funnel_bin.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("bb-remote-funnel-")
            .tempdir()
            .unwrap();
        let store_dir = dir.path().join("store");
        std::fs::create_dir_all(&store_dir).unwrap();
        let (store_url, store_env, generic_s3, s3) = match store {
            FunnelStore::File => (
                url::Url::from_directory_path(&store_dir)
                    .unwrap()
                    .to_string(),
                Vec::new(),
                String::new(),
                None,
            ),
            FunnelStore::S3(server) => {
                let generic = format!(
                    "GenericS3:\n  - Disabled: false\n    Endpoint: \"{}\"\n    Key: testing\n    Secret: testing\n    Region: us-east-1\n",
                    server.endpoint
                );
                (server.url(), server.aws_env(), generic, Some(server))
            }
        };
        let (server_auth, client_auth) = match &options.basic_auth {
            Some((user, password)) => (
                format!("  BasicAuth:\n    - User: {user}\n      Password: {password}\n"),
                format!("  Credential:\n    User: {user}\n    Password: {password}\n"),
            ),
            None => (String::new(), String::new()),
        };
        let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/funnel/container-driver");
        let d = dir.path().display();
        let compute = match &options.slurm_conf {
            // The reconciler would poll squeue; the worker reports states itself.
            Some(_) => &SLURM_COMPUTE.replace("@FUNNEL@", &funnel_bin.display().to_string()),
            None => "local",
        };
        let config = format!(
            r#"Compute: {compute}
Database: boltdb
EventWriters: [boltdb, log]
Logger:
  level: info
Server:
  HostName: 127.0.0.1
  HTTPPort: "{HTTP_PORT}"
  RPCPort: "{RPC_PORT}"
{server_auth}RPCClient:
  ServerAddress: 127.0.0.1:{RPC_PORT}
{client_auth}BoltDB:
  Path: {d}/funnel.db
Worker:
  WorkDir: {d}/work
  PollingRate: 0.2s
  LogUpdateRate: 1s
  LogTailSize: 65536
  Container:
    DriverCommand: {driver}
    RunCommand: |
      run -i --read-only {{{{if .RemoveContainer}}}}--rm{{{{end}}}}
      {{{{range $k, $v := .Env}}}}--env {{{{$k}}}}={{{{$v}}}} {{{{end}}}}
      {{{{if .Name}}}}--name {{{{.Name}}}}{{{{end}}}} {{{{if .Workdir}}}}--workdir {{{{.Workdir}}}}{{{{end}}}}
      {{{{range .Volumes}}}}--volume {{{{.HostPath}}}}:{{{{.ContainerPath}}}}:{{{{if .Readonly}}}}ro{{{{else}}}}rw{{{{end}}}} {{{{end}}}}
      {{{{.Image}}}} {{{{.Command}}}}
    PullCommand: pull {{{{.Image}}}}
    StopCommand: rm -f {{{{.Name}}}}
LocalStorage:
  AllowedDirs: [{d}/store]
AmazonS3:
  Disabled: true
GoogleStorage:
  Disabled: true
Swift:
  Disabled: true
FTPStorage:
  Disabled: true
{generic_s3}"#,
            driver = driver.display()
        );
        let config_path = dir.path().join("funnel.yaml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("funnel.log")).unwrap();
        let mut command = Command::new(&funnel_bin);
        command.env_clear();
        if let Some(conf) = &options.slurm_conf {
            // sbatch passes Funnel's environment on to the job (the worker and driver).
            command.env("SLURM_CONF", conf);
        }
        let child = command
            .args(["server", "run", "--config"])
            .arg(&config_path)
            .current_dir(dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FUNNEL_TEST_BB", &tb.bb)
            .env("FUNNEL_TEST_BB_PATH", IMAGE_BB)
            .env("FUNNEL_TEST_CRS", &tb.crs_dir)
            .env("FUNNEL_TEST_STATE", dir.path().join("driver"))
            // As the README recommends: Funnel then skips its `docker version` call
            // before every executor.
            .env("DOCKER_API_VERSION", "1.41")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting funnel server run");
        let mut funnel = Funnel {
            child,
            dir,
            url: format!("http://127.0.0.1:{HTTP_PORT}"),
            store_url,
            store_env,
            auth: options.basic_auth,
            _s3: s3,
        };
        funnel.wait_ready();
        funnel
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("funnel exited early ({status}); log:\n{}", self.log());
            }
            if self.block_on(self.client().service_info()).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "funnel did not answer within 60 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("funnel.log")).unwrap_or_default()
    }

    /// The backend URL for the shim, with the Basic credentials in it when set.
    pub fn backend_url(&self) -> String {
        match &self.auth {
            Some((user, password)) => format!("http://{user}:{password}@127.0.0.1:{HTTP_PORT}"),
            None => self.url.clone(),
        }
    }

    /// A TES client for checks (credentials included).
    pub fn client(&self) -> TesClient {
        TesClient::new(&self.backend_url(), ClientOptions::default()).unwrap()
    }

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// Every task Funnel knows (FULL view).
    pub fn tasks(&self) -> Vec<Task> {
        let query = bb_remote::tes::client::ListQuery {
            view: bb_remote::tes::types::View::Full,
            ..Default::default()
        };
        self.block_on(self.client().list_tasks(&query))
            .expect("listing Funnel's tasks")
            .tasks
    }

    /// The shim (`bb`) in `scratch`, delegating to this Funnel with the remote side
    /// set for the driver's image (bb at the stock path, the test CRS at `/crs`).
    pub fn shim(&self, scratch: &Scratch) -> Command {
        let mut cmd = scratch.command(env!("CARGO_BIN_EXE_bb"));
        self.configure(&mut cmd);
        cmd
    }

    /// `bb-remote` (the operator tool) with the same settings as [`Funnel::shim`].
    pub fn tool(&self, scratch: &Scratch) -> Command {
        let mut cmd = scratch.command(env!("CARGO_BIN_EXE_bb-remote"));
        self.configure(&mut cmd);
        cmd
    }

    fn configure(&self, cmd: &mut Command) {
        cmd.env("BB_REMOTE_BACKEND", self.backend_url())
            .env("BB_REMOTE_STORE", &self.store_url)
            .env("BB_REMOTE_IMAGE", IMAGE)
            .env("BB_REMOTE_EXECUTOR_BB", IMAGE_BB)
            .env("BB_REMOTE_EXECUTOR_CRS", IMAGE_CRS)
            .env("BB_REMOTE_NATIVE_BIN", &testbed().bb)
            .envs(self.store_env.iter().map(|(k, v)| (*k, v)));
    }

    /// The pid the container driver recorded for executor 0 of `task_id`, if any.
    pub fn executor_pid(&self, task_id: &str) -> Option<u32> {
        let path = self.dir.path().join(format!("driver/{task_id}-0.pid"));
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// Live processes running the test bed's bb below process `ancestor` (bb is
    /// recognised by inode: the driver bind-mounts it under another path).
    pub fn bb_below(ancestor: u32) -> Vec<u32> {
        use std::os::unix::fs::MetadataExt;
        let bb = std::fs::metadata(&testbed().bb).unwrap();
        let parent = |pid: u32| -> Option<u32> {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces, so split after ')'.
            stat.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let is_bb = std::fs::metadata(entry.path().join("exe"))
                .is_ok_and(|exe| exe.dev() == bb.dev() && exe.ino() == bb.ino());
            let mut up = Some(pid);
            let mut below = false;
            for _ in 0..64 {
                match up {
                    Some(p) if p == ancestor => {
                        below = true;
                        break;
                    }
                    Some(p) if p > 1 => up = parent(p),
                    _ => break,
                }
            }
            if is_bb && below {
                found.push(pid);
            }
        }
        found
    }
}

impl Drop for Funnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Starting the real `bb-remote worker` binary and talking HTTP to it.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bb_remote::config::Env;
use bb_remote::store::Store;
use bb_remote::tes::types::{State, Task};
use serde_json::{json, Value};

/// A fake bb for fast tests (a TEST DOUBLE: a shell script, not bb). The worker calls it
/// as `<fake> -c <crs> <sub> <args...>` (the CRS goes before a modern subcommand).
/// - `echo ARGS`: print the argv it got (with `-c`), HOME and the working directory;
/// - `sleep SECS [PIDFILE]`: write its pid, then sleep;
/// - `write DEST TEXT`: write TEXT to DEST (creating directories);
/// - `big DEST BYTES`: make DEST a sparse file of BYTES (a large output, cheaply);
/// - `fail`: print to stderr and exit 7.
const FAKE_BB: &str = r#"#!/bin/sh
all="$*"
[ "$1" = "-c" ] && shift 2
sub="$1"; shift
case "$sub" in
  echo) echo "argv: $all"; echo "HOME=$HOME"; echo "pwd=$(pwd)" ;;
  sleep) [ -n "$2" ] && mkdir -p "$(dirname "$2")" && echo $$ > "$2"; exec sleep "$1" ;;
  write) mkdir -p "$(dirname "$1")"; printf '%s' "$2" > "$1" ;;
  big) mkdir -p "$(dirname "$1")"; truncate -s "$2" "$1" ;;
  fail) echo "fake bb failed" >&2; exit 7 ;;
  *) echo "unknown fake command $sub" >&2; exit 2 ;;
esac
"#;

/// Everything one test's worker lives in; removed on drop.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        let scratch = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(scratch.store_dir()).unwrap();
        let fake = scratch.fake_bb();
        std::fs::write(&fake, FAKE_BB).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        scratch
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn store_url(&self) -> String {
        url::Url::from_directory_path(self.store_dir())
            .unwrap()
            .to_string()
    }

    pub fn store(&self) -> Store {
        Store::from_url(&self.store_url(), &Env::default()).unwrap()
    }

    pub fn fake_bb(&self) -> PathBuf {
        self.dir.path().join("fake-bb")
    }

    /// Worker arguments for a fake-bb worker on this scratch space.
    pub fn fake_args(&self) -> Vec<String> {
        self.fake_args_on(&self.store_url())
    }

    /// [`Scratch::fake_args`] with another store (an S3 server's).
    pub fn fake_args_on(&self, store_url: &str) -> Vec<String> {
        vec![
            "--store".into(),
            store_url.into(),
            "--data-dir".into(),
            self.data_dir().display().to_string(),
            "--bb".into(),
            self.fake_bb().display().to_string(),
        ]
    }

    /// `--store` and `--data-dir` for this scratch space.
    pub fn store_args(&self) -> Vec<String> {
        vec![
            "--store".into(),
            self.store_url(),
            "--data-dir".into(),
            self.data_dir().display().to_string(),
        ]
    }
}

/// A running worker process; killed on drop.
pub struct WorkerProc {
    child: Child,
    pub base: String,
    pub token: Option<String>,
    stderr: Arc<Mutex<String>>,
    http: reqwest::Client,
}

impl WorkerProc {
    /// Start `bb-remote worker --listen 127.0.0.1:0 <args>`, wait for its address.
    pub fn start(args: &[String]) -> Self {
        Self::start_with_env::<&str, &str>(args, &[])
    }

    pub fn start_with_env<K, V>(args: &[String], env: &[(K, V)]) -> Self
    where
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        bb_remote::store::ensure_tls_provider();
        let mut child = Command::new(env!("CARGO_BIN_EXE_bb-remote"))
            .args(["worker", "--listen", "127.0.0.1:0", "--kill-grace", "1"])
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().map(Result::unwrap).unwrap_or_default();
        let Some(base) = first.strip_prefix("listening on ") else {
            let rest: Vec<String> = lines.map_while(Result::ok).collect();
            panic!("worker did not start: {first}\n{}", rest.join("\n"));
        };
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let token = args
            .iter()
            .position(|a| a == "--token")
            .map(|i| args[i + 1].clone());
        Self {
            child,
            base: base.to_owned(),
            token,
            stderr,
            // Pooled connections are dropped before the worker's idle limit
            // (--header-timeout), as a well-behaved client does: a test that blocks
            // its runtime (bb run directly) cannot see the worker's close in time.
            http: reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(3))
                .build()
                .unwrap(),
        }
    }

    /// The worker's log so far (everything after the first line).
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGKILL the worker and reap it.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM the worker and wait for it to exit; returns its exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap().code()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/ga4gh/tes/v1{path}", self.base)
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// POST a raw body to /tasks; returns (status, JSON body).
    pub async fn post_raw(&self, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let request = self.http.post(self.url("/tasks")).body(body);
        self.send(self.authorized(request)).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Create a task; panics unless the worker accepts it. Returns its id.
    pub async fn create(&self, task: &Value) -> String {
        let (status, body) = self.post_raw(task.to_string()).await;
        assert_eq!(status, 200, "create failed: {body}\n{}", self.log());
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, id: &str) -> Task {
        let request = self.http.get(self.url(&format!("/tasks/{id}?view=FULL")));
        let (status, body) = self.send(self.authorized(request)).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    pub async fn get_path(&self, path: &str) -> (u16, Value) {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(self.authorized(request)).await
    }

    pub async fn cancel(&self, id: &str) -> u16 {
        let request = self.http.post(self.url(&format!("/tasks/{id}:cancel")));
        self.send(self.authorized(request)).await.0
    }

    /// Poll until the task's state satisfies `done` (a generous bound, not a timing check).
    pub async fn wait_until(&self, id: &str, done: impl Fn(State) -> bool) -> Task {
        for _ in 0..6000 {
            let task = self.get(id).await;
            if task.state.is_some_and(&done) {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("task {id} never reached the wanted state\n{}", self.log());
    }

    pub async fn wait_terminal(&self, id: &str) -> Task {
        self.wait_until(id, State::is_terminal).await
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-executor task for the fake bb.
pub fn fake_task(args: &[&str]) -> Value {
    let mut command = vec!["bb"];
    command.extend(args);
    json!({ "executors": [{ "image": "fake", "command": command }] })
}

/// Entries of a directory (empty if it does not exist).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

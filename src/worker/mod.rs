//! `bb-remote worker`: the reference GA4GH TES v1.1 proving backend.
//!
//! It accepts TES tasks over HTTP, runs each executor as a local bb process in a
//! per-task sandbox (inputs from the worker's object store through a local
//! content-addressed cache, outputs uploaded back with their SHA-256 in the task log),
//! admits tasks by cpu and memory, and keeps every task in a redb database so a
//! restart loses nothing. It is also the test double for the shim's TES client.
//!
//! Layout:
//! - [`api`]: HTTP routes and views; [`auth`]: bearer token and the loopback rule;
//!   [`http`]: connection cap and timeouts;
//! - [`validate`]: what a task may ask for; [`sandbox`]: container paths and argv;
//!   [`builtin`]: the built-in `cat` that rebuilds a request sent in parts;
//!   [`confine`]: Landlock around each bb process;
//! - [`service`]: shared state, create/cancel/recover/shutdown; [`admission`]: the
//!   resource-aware FIFO; [`executor`]: one task's run; [`progress`]: its state
//!   changes and step timings; [`process`]: the child process; [`files`]: inputs and
//!   outputs; [`uploads`]: the journal that lets a
//!   restart clean up a large upload a crash interrupted;
//! - [`db`]: durable state; [`waits`]: long polls (`Prefer: wait=N`) told of each
//!   committed change; [`metrics`]: `GET /metrics`; [`retention`]: cache budget and
//!   deleting old finished tasks.
//!
//! Not for: scale-out. Operators who outgrow one worker point the shim at an
//! existing TES engine (Funnel, TESK, TES on Azure).
pub(crate) mod admission;
pub(crate) mod api;
pub(crate) mod auth;
pub(crate) mod builtin;
pub(crate) mod confine;
pub(crate) mod db;
pub(crate) mod executor;
pub(crate) mod files;
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod process;
pub(crate) mod progress;
pub(crate) mod retention;
pub(crate) mod sandbox;
pub(crate) mod service;
pub(crate) mod uploads;
pub(crate) mod validate;
pub(crate) mod waits;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::{BadValue, Env};
use crate::env_vars;
use crate::store::{LocalCasCache, Store};
use admission::{Admission, Demand};
use service::{Config, Worker};

/// `bb-remote worker`: run the reference TES proving backend.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Address to listen on; port 0 picks a free port. The bound address is printed as
    /// the first line on stderr: `listening on http://ADDR`.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Object store for task inputs and outputs (s3://, gs://, az://, file:///abs/dir).
    /// Task URLs outside it are refused. Credentials come from AWS_*/GOOGLE_*/AZURE_*.
    #[arg(long)]
    pub(crate) store: String,
    /// The bb binary for every executor image not named by --image.
    #[arg(long)]
    pub(crate) bb: Option<PathBuf>,
    /// Map one executor image to a bb binary: NAME=PATH (repeatable).
    #[arg(long = "image", value_name = "NAME=PATH", value_parser = parse_image)]
    pub(crate) images: Vec<(String, PathBuf)>,
    /// CRS directory handed to bb as `-c` (default: <data-dir>/crs). Fill it beforehand.
    #[arg(long)]
    pub(crate) crs_dir: Option<PathBuf>,
    /// Directory for the task database, the input cache and the sandboxes.
    #[arg(long)]
    pub(crate) data_dir: PathBuf,
    /// Bearer token clients must send; required unless listening on loopback.
    #[arg(long, env = env_vars::WORKER_TOKEN, hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// CPU cores tasks may use together (default: this machine's).
    #[arg(long)]
    pub(crate) cpus: Option<u32>,
    /// Memory in GiB tasks may use together (default: this machine's).
    #[arg(long)]
    pub(crate) memory: Option<f64>,
    /// Largest accepted request body, in bytes.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub(crate) max_body: usize,
    /// Seconds between SIGTERM and SIGKILL when stopping a task.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) kill_grace: f64,
    /// Byte budget of the input cache; least recently used entries are evicted past
    /// it, never one a queued or running task needs.
    #[arg(long, default_value_t = 10 << 30)]
    pub(crate) cache_max_bytes: u64,
    /// Hours a finished task (and the `runs/` objects it uploaded) is kept, then deleted.
    #[arg(long, default_value_t = 168.0)]
    pub(crate) keep_finished_hours: f64,
    /// Most connections open at once; past that, new ones wait in the kernel's backlog.
    #[arg(long, default_value_t = 256)]
    pub(crate) max_connections: usize,
    /// Seconds a connection has to send a request head; also how long a kept-alive
    /// connection may sit idle (clients should drop pooled connections sooner).
    #[arg(long, default_value_t = 30.0)]
    pub(crate) header_timeout: f64,
    /// Seconds a whole request may take, body included (then 408).
    #[arg(long, default_value_t = 120.0)]
    pub(crate) request_timeout: f64,
    /// Most task reads held at once for `Prefer: wait=N` (long polls), never more than
    /// half of --max-connections; past that a read is answered at once and its client
    /// polls. 0 turns long polls off.
    #[arg(long, default_value_t = 128)]
    pub(crate) max_waiters: usize,
    /// Most bytes of output files, in total per task, recorded in the task log instead
    /// of uploaded, for tasks that ask for it (the shim does; see `tes::inline`): a
    /// round trip to the store less per file for small proofs. 0: always upload.
    #[arg(long, default_value_t = crate::tes::inline::DEFAULT_MAX_BYTES)]
    pub(crate) inline_output_bytes: u64,
    /// Run bb without kernel confinement (Landlock). Only for kernels without Landlock
    /// and clients you trust: a task could then read and write anything the worker can.
    #[arg(long)]
    pub(crate) no_confine: bool,
}

fn parse_image(value: &str) -> Result<(String, PathBuf), String> {
    match value.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_owned(), PathBuf::from(path)))
        }
        _ => Err(format!("expected NAME=PATH, got {value:?}")),
    }
}

/// Entry point from `bb-remote worker`.
pub fn run_cli(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    one_malloc_arena();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: WorkerArgs) -> anyhow::Result<()> {
    let env = Env::from_process();
    let token = args.token.clone().filter(|t| !t.is_empty());
    auth::check_listen(&args.listen, token.as_deref())?;
    // Library errors quote request URLs with their password: every log line, and every
    // system log a client reads, is masked of the store URL's and the token's secrets.
    crate::diag::init_secrets(crate::redact::secrets_of(
        token.as_deref(),
        [args.store.as_str()],
    ));
    let capacity = check_limits(&args)?;
    if !args.no_confine {
        confine::probe()?;
    }
    let config = build_config(&args, &env)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let bound = listener.local_addr()?;
    // The first line on stderr, before any log line: tests and scripts read the port.
    #[expect(
        clippy::print_stderr,
        reason = "the one startup line operators and tests wait for, before logging starts"
    )]
    {
        eprintln!("listening on http://{bound}");
    }
    crate::logging::init(&env, "info")?;

    let db = db::Db::open(&args.data_dir.join("tasks.redb"))
        .with_context(|| format!("opening the task database in {}", args.data_dir.display()))?;
    let worker = Arc::new(Worker::new(config, db, Admission::new(capacity)));
    worker.recover().await.context("recovering tasks")?;
    tracing::info!(
        cpus = capacity.cpus,
        memory_gib = capacity.memory_gib,
        "worker ready"
    );
    let dispatcher = tokio::spawn(worker.clone().dispatch());
    let housekeeping = tokio::spawn(worker.clone().housekeeping());
    let limits = http::Limits {
        max_connections: args.max_connections,
        header_timeout: seconds(args.header_timeout, "--header-timeout")?,
        request_timeout: seconds(args.request_timeout, "--request-timeout")?,
    };
    let (waits, closer) = waits::Waits::new(
        worker.db.changes().clone(),
        args.max_waiters.min(args.max_connections / 2),
        max_wait(limits.request_timeout),
    );
    let router = api::router(worker.clone(), Arc::new(waits), token, args.max_body);
    let app = http::with_request_timeout(router, limits);
    let shutdown = async move {
        shutdown_signal().await;
        // Held reads answer now, so the connections can drain.
        closer.close();
    };
    http::serve(listener, app, limits, shutdown).await;
    tracing::info!("shutting down: stopping running tasks");
    dispatcher.abort();
    housekeeping.abort();
    worker.shut_down().await;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// One glibc malloc arena for the whole worker, set before any thread starts. The
/// worker's live heap stays near 1 MiB (heaptrack, 500 proofs), but glibc gives each
/// new thread (tokio's blocking pool starts and ends them all the time) its own arena,
/// up to 8 per core, and each keeps what it freed: RSS crept ~0.4 MiB per 100 proofs.
/// With one arena it stays flat; the lock contention it adds is nothing for a server
/// whose heavy work runs in bb's own process. `MALLOC_ARENA_MAX` still overrides it.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes glibc's allocator settings; it is called before
        // the runtime starts any thread, as glibc requires for M_ARENA_MAX.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// The capacity tasks share, after refusing limits under which no task could ever run
/// (a worker that starts but refuses everything looks healthy and is not).
/// A flag value the worker cannot start with: exit 78, as a bad `BB_REMOTE_*` value.
fn bad_flag(flag: &str, value: impl std::fmt::Display, expected: &str) -> BadValue {
    BadValue {
        name: flag.to_owned(),
        value: value.to_string(),
        expected: expected.to_owned(),
    }
}

fn check_limits(args: &WorkerArgs) -> Result<Demand, BadValue> {
    if args.cpus == Some(0) {
        return Err(bad_flag("--cpus", 0, "at least one cpu core for tasks"));
    }
    if let Some(memory) = args.memory {
        if !(memory.is_finite() && memory > 0.0) {
            return Err(bad_flag("--memory", memory, "a positive number of GiB"));
        }
    }
    if args.max_connections == 0 {
        return Err(bad_flag(
            "--max-connections",
            0,
            "at least 1, or no client could connect",
        ));
    }
    for (flag, value) in [
        ("--header-timeout", args.header_timeout),
        ("--request-timeout", args.request_timeout),
    ] {
        seconds(value, flag)?;
    }
    if args.max_body == 0 {
        return Err(bad_flag(
            "--max-body",
            0,
            "a size in bytes, or no task could be submitted",
        ));
    }
    Ok(Demand {
        cpus: args.cpus.unwrap_or_else(machine_cpus),
        memory_gib: args.memory.unwrap_or_else(machine_memory_gib),
    })
}

/// The longest a read is held for `Prefer: wait`: 30 s, and at most half the whole-
/// request timeout so a held read never ends in 408.
fn max_wait(request_timeout: Duration) -> Duration {
    (request_timeout / 2).min(Duration::from_secs(30))
}

/// A positive, finite number of seconds.
fn seconds(value: f64, flag: &str) -> Result<Duration, BadValue> {
    if !(value.is_finite() && value > 0.0) {
        return Err(bad_flag(flag, value, "a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(value))
}

fn hours(value: f64) -> Result<Duration, BadValue> {
    if !(value.is_finite() && value > 0.0) {
        let expected = "a positive number of hours";
        return Err(bad_flag("--keep-finished-hours", value, expected));
    }
    Ok(Duration::from_secs_f64(value * 3600.0))
}

fn build_config(args: &WorkerArgs, env: &Env) -> anyhow::Result<Config> {
    if args.bb.is_none() && args.images.is_empty() {
        let expected = "a bb binary\nhelp: pass --bb PATH and/or --image NAME=PATH";
        return Err(bad_flag("--bb", "(none)", expected).into());
    }
    for path in args.bb.iter().chain(args.images.iter().map(|(_, p)| p)) {
        if !path.is_file() {
            let expected = "an existing bb binary (a file)";
            return Err(bad_flag("--bb/--image", path.display(), expected).into());
        }
    }
    if !(args.kill_grace.is_finite() && args.kill_grace >= 0.0) {
        let expected = "a non-negative number of seconds";
        return Err(bad_flag("--kill-grace", args.kill_grace, expected).into());
    }
    let data = absolute(&args.data_dir)?;
    let crs_dir = absolute(&args.crs_dir.clone().unwrap_or_else(|| data.join("crs")))?;
    let sandboxes_dir = data.join("sandboxes");
    let discard_dir = data.join("discarded");
    // Sandboxes left by a previous run belong to tasks that recovery ends, and
    // discarded ones to tasks that ended; start clean.
    let _ = std::fs::remove_dir_all(&sandboxes_dir);
    let _ = std::fs::remove_dir_all(&discard_dir);
    for dir in [
        &data,
        &crs_dir,
        &sandboxes_dir,
        &discard_dir,
        &data.join("home"),
    ] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let store = Store::from_url(&args.store, env).map_err(|err| {
        let expected = format!(
            "an object store URL ({})",
            crate::logging::error_chain(&err)
        );
        bad_flag("--store", &args.store, &expected)
    })?;
    let images: BTreeMap<String, PathBuf> = args
        .images
        .iter()
        .map(|(name, path)| Ok((name.clone(), absolute(path)?)))
        .collect::<anyhow::Result<_>>()?;
    Ok(Config {
        images,
        default_bb: args.bb.as_deref().map(absolute).transpose()?,
        crs_dir,
        home_dir: data.join("home"),
        sandboxes_dir,
        discard_dir,
        kill_grace: Duration::from_secs_f64(args.kill_grace),
        store,
        // One blob larger than the whole budget could never be kept within it; the
        // bound also stops a hostile store from filling the disk under a cas/ key.
        cache: LocalCasCache::new(data.join("cache")).with_max_entry(
            args.cache_max_bytes,
            "the input cache budget (--cache-max-bytes)",
        ),
        confine: !args.no_confine,
        inline_output_bytes: args.inline_output_bytes,
        retention: retention::Retention {
            cache_max_bytes: args.cache_max_bytes,
            keep_finished: hours(args.keep_finished_hours)?,
        },
    })
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn machine_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// Total memory from /proc/meminfo, in GiB (1 if it cannot be read).
fn machine_memory_gib() -> f64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(1.0, |kib| kib / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_mappings_parse() {
        assert_eq!(
            parse_image("bb:5=/opt/bb").unwrap(),
            ("bb:5".into(), "/opt/bb".into())
        );
        assert!(parse_image("nopath=").is_err());
        assert!(parse_image("/opt/bb").is_err());
    }

    #[test]
    fn machine_has_memory_and_cpus() {
        assert!(machine_memory_gib() > 0.0);
        assert!(machine_cpus() >= 1);
    }
}

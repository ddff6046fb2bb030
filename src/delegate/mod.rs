//! The one driver: a `Remote(plan)` run over any [`Transport`] (TES + object store,
//! replay, or the recording decorator around either).
//!
//! Layout:
//! - [`prepare`] (here): parse → route → check inputs; `None` means the native bb must
//!   answer (the shim passes the call through untouched);
//! - [`drive`] (here): the transport-independent run, bounded by `BB_REMOTE_TIMEOUT`
//!   and interruptible by SIGINT/SIGTERM in every phase: stage inputs, compute the
//!   [`key`], execute, write outputs with [`fetch::write_outputs`]; on a signal or
//!   the timeout, what this caller created is cancelled ([`Transport::abandon`]);
//! - [`write_streams`] (here): bb's stdout/stderr and exit code, as bb would have;
//! - [`transport`]: the [`Transport`] trait and result types; [`tes_transport`]: TES +
//!   object store ([`tes_transport::TesTransport`], built by [`tes_transport()`]); [`task`]: plan →
//!   TES task; [`wait`]: polling; [`resources`]: cpu/ram per circuit; [`key`]: the
//!   invocation key;
//! - [`execute_plan`]: the same run without the shim's stops (the msgpack server,
//!   which handles signals itself, cancels through the transport instead);
//! - [`outputs`]: output-name validation and the no-links directory walk; [`signals`].
//!
//! This module never decides between modes or prints errors: `shim` does both.
pub(crate) mod fetch;
pub(crate) mod key;
pub(crate) mod outputs;
pub(crate) mod remote_side;
pub(crate) mod resources;
pub(crate) mod signals;
pub(crate) mod task;
pub(crate) mod task_result;
pub(crate) mod tes_transport;
pub(crate) mod transport;
pub(crate) mod wait;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{BadValue, Env, Settings};
use crate::error::Error;
use crate::grammar::{parse, Generation, Invocation, Item, Parsed, Use};
use crate::route::{route, InputSource, Plan, Route};
use crate::store::Store;
use crate::tes::client::{ClientOptions, RetryPolicy, TesClient};
use signals::Signals;
use tes_transport::TesTransport;
use transport::{Job, JobInput, RemoteResult, Transport};

/// Retries of the shim's TES calls: long enough to ride out a worker restart, short
/// enough that a prover notices an outage within about ten seconds.
const SHIM_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    min_delay: Duration::from_millis(100),
    max_delay: Duration::from_secs(2),
    max_total_delay: Duration::from_secs(10),
};

/// Longest time spent cancelling after a signal or the timeout, so a dead backend
/// cannot hold an interrupted shim.
const ABANDON_BOUND: Duration = Duration::from_secs(5);

/// A plan ready to run: the routed plan and its inputs present on disk.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) plan: Plan,
    /// (index in `plan.inputs`, local path) of each input that exists.
    pub(crate) present: Vec<(usize, PathBuf)>,
}

/// Parse and route `args` (argv without the program name) run in `cwd`. `None` when
/// the native bb must answer: the router says native, or bb would reject the call
/// before proving (a missing input, a legacy output directory that does not exist,
/// an output path that is not a writable directory).
pub(crate) fn prepare(
    settings: &Settings,
    env: &Env,
    args: &[OsString],
    cwd: &Path,
) -> Option<Prepared> {
    let invocation = parse(args, env, settings.grammar_hint());
    match route(&invocation, &settings.delegate, cwd) {
        Route::Remote(plan) => {
            if crs_dir_missing(&invocation, cwd) {
                return None;
            }
            let present = present_inputs(&plan)?;
            Some(Prepared { plan, present })
        }
        Route::Native(reason) => {
            tracing::debug!(code = ?reason.code, "running natively: {}", reason.message);
            None
        }
    }
}

/// Modern bb checks that the CRS option names an existing directory (CLI11, exit 105)
/// before anything else; the remote side drops the option, so only the native bb can
/// give that answer.
fn crs_dir_missing(invocation: &Invocation, cwd: &Path) -> bool {
    if invocation.generation != Generation::Modern {
        return false;
    }
    let Parsed::Command(command) = &invocation.parsed else {
        return false;
    };
    command.items.iter().any(|item| {
        matches!(item, Item::Value { reads, value, .. }
            if reads.usage == Use::Crs && !cwd.join(value).is_dir())
    })
}

/// Run `prepared` on `transport` to the end, within `timeout` (the whole call), and
/// stop cleanly on SIGINT/SIGTERM in any phase: the first signal (or the timeout)
/// drops the run (its temporary files go with it), cancels what this caller created,
/// and returns [`Error::Interrupted`] / [`Error::Timeout`]; a second signal exits at once.
pub(crate) async fn drive<T: Transport>(
    transport: &mut T,
    prepared: &Prepared,
    timeout: Duration,
) -> Result<RemoteResult, Error> {
    let mut signals =
        Signals::install().map_err(|e| Error::local_io("installing signal handlers", e))?;
    let stopped = tokio::select! {
        result = execute_plan(transport, &prepared.plan, &prepared.present) => return result,
        signal = signals.next() => {
            signals.escalate_on_second();
            Error::Interrupted(signal)
        }
        () = tokio::time::sleep(timeout) => Error::Timeout { secs: timeout.as_secs(), cancelled: "" },
    };
    let abandoned = tokio::time::timeout(ABANDON_BOUND, transport.abandon()).await;
    let note = match abandoned {
        Ok(Ok(true)) => "; the task this call created was cancelled",
        Ok(Ok(false)) => "",
        Ok(Err(_)) | Err(_) => "; cancelling the task this call created failed",
    };
    Err(match stopped {
        Error::Timeout { secs, .. } => Error::Timeout {
            secs,
            cancelled: note,
        },
        other => other,
    })
}

/// Stage the inputs, run the job on `transport`, write its outputs into the plan's
/// output directory. The same steps for every transport. [`drive`] adds the stops
/// (signals, timeout) of a shim invocation; the msgpack server, whose process handles
/// signals itself, calls this directly.
pub(crate) async fn execute_plan<T: Transport>(
    transport: &mut T,
    plan: &Plan,
    present: &[(usize, PathBuf)],
) -> Result<RemoteResult, Error> {
    let files: Vec<PathBuf> = present.iter().map(|(_, p)| p.clone()).collect();
    let (staged, _stats) = transport.stage_inputs(&files).await?;
    let mut digests = vec![None; plan.inputs.len()];
    let mut inputs = Vec::with_capacity(present.len());
    for ((index, _), (digest, _)) in present.iter().zip(staged) {
        digests[*index] = Some(digest);
        inputs.push(JobInput {
            index: *index,
            digest,
        });
    }
    let job = Job {
        plan,
        key: key::invocation_key(plan, &digests),
        inputs,
    };
    let mut result = transport.execute(&job).await?;
    // Inputs inside the output directory (`prove_tube`'s implicit files, or any input
    // the caller keeps there) come back from the backend unchanged. They are already
    // in place: do not fetch them again.
    let unchanged = |name: &str, digest| {
        job.inputs.iter().any(|i| {
            let planned = &plan.inputs[i.index];
            let relative = match planned.source {
                InputSource::Implicit => Some(planned.given.as_str()),
                _ => Path::new(&planned.path)
                    .strip_prefix(&plan.output_dir.path)
                    .ok()
                    .and_then(|r| r.to_str()),
            };
            relative == Some(name) && i.digest == digest
        })
    };
    let to_write: Vec<_> = result
        .outputs
        .iter()
        .filter(|o| !unchanged(&o.name, o.digest))
        .cloned()
        .collect();
    if !to_write.is_empty() || plan.output_dir.created_by_bb && result.exit_code == 0 {
        let out_dir = Path::new(&plan.output_dir.path);
        fetch::write_outputs(transport, &to_write, out_dir, plan.output_dir.created_by_bb).await?;
    }
    result.outputs = to_write;
    Ok(result)
}

/// The inputs to send, as (plan index, local path), or `None` when bb itself must
/// answer: a required input (or one named on argv) is missing or not a regular file,
/// or the output location is one bb would refuse (see [`outputs::output_dir_usable`]).
pub(crate) fn present_inputs(plan: &Plan) -> Option<Vec<(usize, PathBuf)>> {
    if !outputs::output_dir_usable(&plan.output_dir) {
        return None;
    }
    let on_argv: Vec<usize> = plan.inputs_on_argv().collect();
    let mut present = Vec::new();
    for (index, input) in plan.inputs.iter().enumerate() {
        match std::fs::metadata(&input.path) {
            Ok(meta) if meta.is_file() => present.push((index, PathBuf::from(&input.path))),
            Ok(_) => return None,
            Err(_) if input.required || on_argv.contains(&index) => return None,
            Err(_) => {}
        }
    }
    Some(present)
}

/// The TES + object store transport for `plan` and its `present` inputs, from the
/// checked settings.
pub(crate) fn tes_transport(
    settings: &Settings,
    env: &Env,
    plan: &Plan,
    present: &[(usize, PathBuf)],
) -> Result<TesTransport, Error> {
    let began = std::time::Instant::now();
    let backend = settings
        .backend
        .as_ref()
        .map(|u| u.as_str())
        .unwrap_or_default();
    let options = ClientOptions {
        token: settings.token.clone(),
        retry: SHIM_RETRY,
        ..ClientOptions::default()
    };
    let client = TesClient::new(backend, options)?;
    let store_url = settings.store.as_ref().ok_or_else(|| BadValue {
        name: crate::env_vars::STORE.into(),
        value: String::new(),
        expected: "an object store URL (required when BB_REMOTE_BACKEND is set)".into(),
    })?;
    let store = Store::from_url(store_url.as_str(), env)?;
    let resources = resources::for_plan(settings, plan, present);
    let executor_env = settings.remote_side.executor_env(env)?;
    tracing::debug!(
        ms = began.elapsed().as_secs_f64() * 1000.0,
        "store and TES clients built"
    );
    Ok(TesTransport {
        client,
        store,
        image: settings.image.clone(),
        resources,
        timeout: settings.timeout,
        attempt: attempt_id(),
        cancel: None,
        created: None,
        side: settings.remote_side.clone(),
        env: executor_env,
        // The same directory the plan's paths were resolved against.
        cwd: std::env::current_dir().ok(),
        engine: task::Engine::Generic,
        engine_asked: None,
    })
}

/// Unique enough per invocation: pid plus the clock in nanoseconds.
fn attempt_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos:x}", std::process::id())
}

/// A single-threaded runtime for one delegated, recording, replaying or msgpack-serving
/// invocation per process. Passthrough never builds one.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// bb's stdout and stderr, byte for byte, then its exit code.
pub(crate) fn write_streams(result: &RemoteResult) -> u8 {
    let _ = std::io::stdout().write_all(&result.stdout);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(&result.stderr);
    crate::exit::of_remote(result.exit_code)
}

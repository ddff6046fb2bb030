//! The `bb` shim's main. It owns the mode, the runtime, the one error report and the
//! passthrough; everything else is called downward:
//!
//! ```text
//! Env → Settings ─ passthrough (nothing to delegate, record or replay) → native bb
//!                ├ `msgpack run --input <socket>` → msgpack server (`crate::msgpack`)
//!                └ parse → route ─ Native → native bb
//!                                └ Remote(plan) → delegate::drive over a transport:
//!                                     TES | replay | Recording(TES) (record mode)
//! ```
//!
//! While nothing is delegated, recorded or replayed, the shim is pure passthrough: it
//! checks the `BB_REMOTE_*` values (string comparisons) and hands argv to the native
//! bb without parsing it, so passthrough costs next to nothing.

use std::ffi::OsString;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Instant;

use crate::config::{Env, Fallback, MissPolicy, Settings};
use crate::delegate::{self, Prepared};
use crate::error::Error;
use crate::logging::error_chain;
use crate::record::format::FixtureDir;
use crate::record::plan::{self, Chosen};
use crate::record::recorder::{self, Recording};
use crate::record::replay::{self, ReplayFailure, ReplayTransport};
use crate::{diag, env_vars, native};

/// When `main` began: the phase timings at debug level (`scripts/bench --only phases`)
/// count from here, so the process's start and exit are what the wall clock adds.
static STARTED: OnceLock<Instant> = OnceLock::new();

pub fn main() -> ExitCode {
    STARTED.get_or_init(Instant::now);
    let env = Env::from_process();
    let argv: Vec<OsString> = std::env::args_os().collect();
    let code = run(&env, &argv);
    tracing::debug!(ms = since_main(), "shim main to exit");
    ExitCode::from(code)
}

/// Milliseconds since `main` began.
fn since_main() -> f64 {
    STARTED.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

/// The shim's whole behaviour for one invocation; returns the exit code.
pub(crate) fn run(env: &Env, argv: &[OsString]) -> u8 {
    let settings = match Settings::load(env) {
        Ok(s) => s,
        Err(err) => return report(&err.into()),
    };
    if settings.is_passthrough() {
        return passthrough(env, argv);
    }
    diag::init(env);
    crate::logging::init_with(&settings.log, "warn");
    if let Some(code) = crate::msgpack::intercept(&settings, env, argv) {
        return code;
    }
    match dispatch(&settings, env, argv) {
        Ok(Next::Exit(code)) => code,
        Ok(Next::Native) => passthrough(env, argv),
        Err(err) => report(&err),
    }
}

/// What to do once a mode has run (the runtime is gone by then).
enum Next {
    /// bb's answer (or ours) is complete: exit with this code.
    Exit(u8),
    /// Hand the original argv to the native bb.
    Native,
}

fn dispatch(settings: &Settings, env: &Env, argv: &[OsString]) -> Result<Next, Error> {
    let cwd =
        std::env::current_dir().map_err(|e| Error::local_io("reading the working directory", e))?;
    let args = argv.get(1..).unwrap_or_default();
    if let Some(dir) = &settings.replay {
        return replay(
            settings,
            env,
            plan::choose(settings, env, args, &cwd),
            dir,
            &cwd,
            args,
        );
    }
    if let Some(dir) = &settings.record {
        return record(
            settings,
            env,
            argv,
            plan::choose(settings, env, args, &cwd),
            dir,
        );
    }
    match delegate::prepare(settings, env, args, &cwd) {
        Some(prepared) => delegated(settings, env, &prepared),
        None => Ok(Next::Native),
    }
}

/// The delegated, recording and replaying paths' runtime (see [`delegate::runtime`]).
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    delegate::runtime().map_err(|e| Error::local_io("starting the async runtime", e))
}

/// Run `work` to the end on a fresh runtime, then shut the runtime down without
/// joining its blocking-pool threads. Why: dropping a runtime waits for every such
/// thread (each `tokio::fs` call may have started one) to be scheduled and exit, a
/// few ms per invocation on a busy 2-core machine. Nothing of ours is left there:
/// every file operation was awaited inside `work`, and the process exits next.
fn block_on<F: Future>(work: F) -> Result<F::Output, Error> {
    tracing::debug!(
        ms = since_main(),
        "main to runtime start: settings, parse, route, inputs checked"
    );
    let runtime = runtime()?;
    let output = runtime.block_on(work);
    let began = Instant::now();
    runtime.shutdown_background();
    tracing::debug!(
        ms = began.elapsed().as_secs_f64() * 1000.0,
        "runtime shut down"
    );
    Ok(output)
}

fn delegated(settings: &Settings, env: &Env, prepared: &Prepared) -> Result<Next, Error> {
    let outcome = block_on(async {
        let mut transport =
            delegate::tes_transport(settings, env, &prepared.plan, &prepared.present)?;
        delegate::drive(&mut transport, prepared, settings.timeout).await
    })?;
    match outcome {
        Ok(result) => Ok(Next::Exit(delegate::write_streams(&result))),
        Err(err) => fall_back(settings, err).map(|()| Next::Native),
    }
}

/// An unreachable backend with `BB_REMOTE_FALLBACK=native`: one warning, then the
/// native bb (`Ok`). Every other failure stays a failure.
fn fall_back(settings: &Settings, err: Error) -> Result<(), Error> {
    if err.may_fall_back() && settings.fallback == Fallback::Native {
        diag::warning(&format_args!(
            "{}; running bb natively ({}=native)",
            error_chain(&err),
            env_vars::FALLBACK
        ));
        return Ok(());
    }
    Err(err)
}

/// `BB_REMOTE_RECORD`: run as usual (delegated or native) and write a fixture too.
fn record(
    settings: &Settings,
    env: &Env,
    argv: &[OsString],
    chosen: Chosen,
    dir: &Path,
) -> Result<Next, Error> {
    let fixtures = FixtureDir::new(dir);
    let runtime = runtime()?;
    if chosen.delegable && settings.backend.is_some() {
        let started = Instant::now();
        let outcome = runtime.block_on(async {
            let mut transport = Recording::new(delegate::tes_transport(
                settings,
                env,
                &chosen.prepared.plan,
                &chosen.prepared.present,
            )?);
            let result =
                delegate::drive(&mut transport, &chosen.prepared, settings.timeout).await?;
            Ok((result, transport))
        });
        match outcome {
            Ok((result, transport)) => {
                let code = delegate::write_streams(&result);
                recorder::save_delegated(
                    &fixtures, &chosen, &result, &transport, started, settings,
                );
                return Ok(Next::Exit(code));
            }
            Err(err) => {
                fall_back(settings, err)?;
            }
        }
    }
    let code = runtime.block_on(recorder::record_native(env, argv, &chosen, &fixtures));
    Ok(code.map_or(Next::Native, Next::Exit))
}

/// `BB_REMOTE_REPLAY`: answer from the fixtures through the same driver.
fn replay(
    settings: &Settings,
    env: &Env,
    chosen: Chosen,
    dir: &Path,
    cwd: &Path,
    args: &[OsString],
) -> Result<Next, Error> {
    let mut transport = ReplayTransport::new(FixtureDir::new(dir));
    let outcome = block_on(delegate::drive(
        &mut transport,
        &chosen.prepared,
        settings.timeout,
    ))?;
    let miss = match (outcome, transport.failure.take()) {
        (Ok(result), _) => return Ok(Next::Exit(delegate::write_streams(&result))),
        (Err(_), Some(ReplayFailure::Invalid(err))) => {
            return Err(Error::FixtureInvalid(Box::new(err)))
        }
        (Err(_), Some(miss @ ReplayFailure::Miss { .. })) => miss,
        (Err(err), None) => return Err(err),
    };
    let what = replay::miss_message(&miss, dir);
    match settings.replay_miss {
        MissPolicy::Fail => Err(Error::ReplayMiss { description: what }),
        MissPolicy::Native => {
            diag::warning(&format_args!("{what}; running bb natively"));
            Ok(Next::Native)
        }
        MissPolicy::Remote if settings.backend.is_some() => {
            diag::warning(&format_args!("{what}; running it on the backend"));
            match delegate::prepare(settings, env, args, cwd) {
                Some(prepared) => delegated(settings, env, &prepared),
                None => Ok(Next::Native),
            }
        }
        MissPolicy::Remote => Err(Error::MissWithoutBackend { miss: what }),
    }
}

/// Hand the invocation to the native bb (exec or dlopen); the exit code on failure.
fn passthrough(env: &Env, argv: &[OsString]) -> u8 {
    match native::passthrough(env, argv) {
        Ok(code) => code,
        Err(err) => report(&err.into()),
    }
}

/// The one place a shim failure becomes its error line and exit code.
fn report(err: &Error) -> u8 {
    diag::error(&error_chain(err));
    err.exit_code()
}

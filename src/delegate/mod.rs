//! Running a `Remote(plan)` on the backend: upload, submit, wait, fetch, exit code.
//!
//! Layout:
//! - [`run`] (here): the shim's delegated branch: parse, route, check inputs, pick
//!   the transport, fall back or fail, replay stdout/stderr and the exit code;
//! - [`execute_plan`] (here): the transport-independent driver: stage inputs, compute
//!   the [`key`], execute, write outputs with [`fetch::write_outputs`];
//! - [`transport`]: the [`transport::Transport`] trait and result types;
//!   [`tes_transport`]: TES + object store; [`task`]: plan → TES task; [`wait`]:
//!   polling; [`resources`]: cpu/ram per circuit; [`key`]: the invocation key;
//! - [`outputs`]: output-name validation; [`signals`]: SIGINT/SIGTERM; [`error`].
//!
//! A missing required input, or a legacy output directory that does not exist, is
//! handed to the native bb untouched: bb prints its own error and exit code, and
//! nothing is uploaded or submitted.

pub mod error;
pub mod fetch;
pub mod key;
pub mod outputs;
pub mod resources;
pub mod signals;
pub mod task;
pub mod tes_transport;
pub mod transport;
pub mod wait;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{Env, Fallback, Settings};
use crate::env_vars;
use crate::grammar::parse;
use crate::logging::error_chain;
use crate::route::{route, InputSource, Plan, Route};
use crate::shim::{passthrough, report, runtime};
use crate::store::Store;
use crate::tes::client::{ClientOptions, RetryPolicy, TesClient};
use error::DelegateError;
use tes_transport::TesTransport;
use transport::{Job, JobInput, RemoteResult, Transport};

/// Retries of the shim's TES calls: long enough to ride out a worker restart, short
/// enough that a prover notices an outage within about ten seconds.
const SHIM_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    min_delay: std::time::Duration::from_millis(100),
    max_delay: std::time::Duration::from_secs(2),
    max_total_delay: std::time::Duration::from_secs(10),
};

/// The delegated branch of the shim (`BB_REMOTE_BACKEND` is set). Returns the exit code.
pub fn run(settings: &Settings, env: &Env, argv: &[OsString]) -> u8 {
    let args = argv.get(1..).unwrap_or_default();
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(_) => return passthrough(env, argv),
    };
    let invocation = parse(args, env, settings.grammar_hint());
    let plan = match route(&invocation, &settings.delegate, &cwd) {
        Route::Remote(plan) => plan,
        Route::Native(reason) => {
            tracing::debug!(code = ?reason.code, "running natively: {}", reason.message);
            return passthrough(env, argv);
        }
    };
    let Some(present) = present_inputs(&plan) else {
        return passthrough(env, argv);
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let outcome = runtime.block_on(async {
        let mut transport = tes_transport(settings, env, &plan, &present)?;
        execute_plan(&mut transport, &plan, &present).await
    });
    match outcome {
        Ok(result) => replay_streams(&result),
        Err(err) if err.may_fall_back() && settings.fallback == Fallback::Native => {
            eprintln!(
                "bb-remote: warning: {err}; running bb natively ({}=native)",
                env_vars::FALLBACK
            );
            drop(runtime);
            passthrough(env, argv)
        }
        Err(DelegateError::Interrupted(signal)) => {
            eprintln!("bb-remote: interrupted; the remote task was cancelled");
            signal.exit_code()
        }
        Err(err) => report(&err, err.exit_code()),
    }
}

/// Stage the inputs, run the job on `transport`, write its outputs into the plan's
/// output directory. The same driver serves every transport.
pub async fn execute_plan<T: Transport>(
    transport: &mut T,
    plan: &Plan,
    present: &[(usize, PathBuf)],
) -> Result<RemoteResult, DelegateError> {
    let files: Vec<PathBuf> = present.iter().map(|(_, p)| p.clone()).collect();
    let (staged, _stats) = transport.stage_inputs(&files).await?;
    let mut digests = vec![None; plan.inputs.len()];
    let mut inputs = Vec::with_capacity(present.len());
    for ((index, local), (digest, size)) in present.iter().zip(staged) {
        digests[*index] = Some(digest);
        inputs.push(JobInput {
            index: *index,
            local: local.clone(),
            digest,
            size,
        });
    }
    let job = Job {
        plan,
        key: key::invocation_key(plan, &digests),
        inputs,
    };
    let mut result = transport.execute(&job).await?;
    // Implicit inputs sit inside the output directory; the backend sends them back
    // unchanged. They are already in place: do not fetch them again.
    let unchanged = |name: &str, digest| {
        job.inputs.iter().any(|i| {
            let planned = &plan.inputs[i.index];
            planned.source == InputSource::Implicit && planned.given == name && i.digest == digest
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
/// answer: a required input (or one named on argv) is missing or not a regular
/// file, or a legacy output directory does not exist.
pub fn present_inputs(plan: &Plan) -> Option<Vec<(usize, PathBuf)>> {
    if !plan.output_dir.created_by_bb && !Path::new(&plan.output_dir.path).is_dir() {
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

pub fn tes_transport(
    settings: &Settings,
    env: &Env,
    plan: &Plan,
    present: &[(usize, PathBuf)],
) -> Result<TesTransport, DelegateError> {
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
    let store_url = settings
        .store
        .as_ref()
        .ok_or_else(|| DelegateError::Config(format!("{} is not set", env_vars::STORE)))?;
    let store = Store::from_url(store_url.as_str(), env).map_err(|err| match err {
        crate::store::StoreError::InvalidConfig { .. } => DelegateError::Config(error_chain(&err)),
        other => other.into(),
    })?;
    let bytecode = present
        .iter()
        .find(|(i, _)| plan.inputs[*i].role == "bytecode")
        .map(|(i, p)| (plan.inputs[*i].given.as_str(), p));
    let size = bytecode
        .and_then(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len());
    let resources = resources::for_circuit(settings, bytecode.map(|(g, _)| g), size);
    Ok(TesTransport {
        client,
        store,
        image: settings.image.clone(),
        resources,
        timeout: settings.timeout,
        attempt: attempt_id(),
        cancel: None,
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

/// bb's stdout and stderr, byte for byte, then its exit code.
pub fn replay_streams(result: &RemoteResult) -> u8 {
    let _ = std::io::stdout().write_all(&result.stdout);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(&result.stderr);
    exit_code_of(result.exit_code)
}

/// A remote exit code as a process exit code (signal deaths reported negative become 128+n).
pub(crate) fn exit_code_of(code: i32) -> u8 {
    match code {
        0..=255 => code as u8,
        -255..=-1 => (128 - code).min(255) as u8,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_map_like_a_shell() {
        assert_eq!(exit_code_of(0), 0);
        assert_eq!(exit_code_of(1), 1);
        assert_eq!(exit_code_of(134), 134);
        assert_eq!(exit_code_of(-9), 137);
        assert_eq!(exit_code_of(1000), 1);
    }
}

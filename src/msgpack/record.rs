//! Recording a delegable msgpack request (`CircuitProve`, `AvmProve`) that the native
//! bb answered: with `BB_REMOTE_RECORD` and no backend, or after a fallback to the
//! native bb. As the CLI path records a natively run invocation (`record_native`), the
//! answer is filed under the key a delegated run of the same request would have, as a
//! native-mode fixture, so replay answers it with no backend and no native bb.
//!
//! The fixture is written through the same driver as a delegated run, with a transport
//! that "runs" nothing: its result is the answer frame the native child already sent,
//! as the plan's stdout file (what the remote bb's stdout would have held). So the key,
//! the output writing and the record's layout are the delegated path's own.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use super::frame;
use crate::config::Env;
use crate::delegate::execute_plan;
use crate::delegate::transport::{Fetched, Job, RemoteOutput, RemoteResult, Transport};
use crate::diag;
use crate::error::Error;
use crate::record::format::{FixtureDir, Mode};
use crate::record::plan::Chosen;
use crate::record::recorder::{native_version, save_driven, Ran, Recording};
use crate::route::Plan;
use crate::store::Digest;

/// Files natively answered requests into the fixture directory.
pub(crate) struct NativeRecorder {
    fixtures: FixtureDir,
    env: Env,
    /// `bb --version` of the native bb, asked once (it is a process of its own).
    version: OnceLock<Option<String>>,
}

impl NativeRecorder {
    pub(crate) fn new(fixtures: &Path, env: &Env) -> Self {
        Self {
            fixtures: FixtureDir::new(fixtures),
            env: env.clone(),
            version: OnceLock::new(),
        }
    }

    /// Record `answer` (a response body) as the result of `plan` run on `present`. A
    /// failure is one warning: recording never changes what the client gets.
    pub(crate) async fn save(
        &self,
        plan: &Plan,
        present: &[(usize, PathBuf)],
        answer: &[u8],
        started: Instant,
    ) {
        if let Err(err) = self.try_save(plan, present, answer, started).await {
            diag::warning(&format_args!(
                "could not record this msgpack request into {}: {err}",
                self.fixtures.root().display()
            ));
        }
    }

    async fn try_save(
        &self,
        plan: &Plan,
        present: &[(usize, PathBuf)],
        answer: &[u8],
        started: Instant,
    ) -> Result<(), Error> {
        let name = plan.stdout_file.clone().ok_or_else(|| {
            let missing = std::io::Error::other("the request's plan names no answer file");
            Error::local_io("recording a msgpack answer", missing)
        })?;
        let mut framed = Vec::with_capacity(answer.len() + 4);
        frame::write_frame(&mut framed, answer)
            .await
            .map_err(|e| Error::local_io("framing the answer", e))?;
        let mut transport = Recording::new(Answered { name, framed });
        let result = execute_plan(&mut transport, plan, present).await?;
        let chosen = Chosen::delegable(plan, present);
        let ran = Ran {
            mode: Mode::Native,
            bb_version: self
                .version
                .get_or_init(|| native_version(&self.env))
                .clone(),
            started,
        };
        save_driven(&self.fixtures, &chosen, &result, &transport, ran);
        Ok(())
    }
}

/// The [`Transport`] whose job has already run: its one output is the answer frame.
struct Answered {
    /// The plan's stdout file, relative to its output directory.
    name: String,
    /// Length prefix and body, as bb writes a response to stdout.
    framed: Vec<u8>,
}

impl Transport for Answered {
    async fn execute(&mut self, _job: &Job<'_>) -> Result<RemoteResult, Error> {
        Ok(RemoteResult {
            exit_code: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            outputs: vec![RemoteOutput {
                name: self.name.clone(),
                digest: Digest::of_bytes(&self.framed),
                size: self.framed.len() as u64,
                location: "the native bb's answer".to_owned(),
                inline: None,
            }],
        })
    }

    async fn fetch_output(&self, _output: &RemoteOutput, dest: &Path) -> Result<Fetched, Error> {
        tokio::fs::write(dest, &self.framed)
            .await
            .map(|()| Fetched::Unhashed)
            .map_err(|e| Error::local_io(format!("writing {}", dest.display()), e))
    }
}

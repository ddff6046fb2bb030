//! Delegated msgpack requests (`CircuitProve`, `AvmProve`): the same plan, store,
//! TES task, idempotency, polling and fallback as a delegated `bb prove`.
//!
//! Route chosen ("file route"): the request frame, exactly as the client sent it, is
//! what the remote bb reads: `bb msgpack run --input <request>` with its stdout
//! captured to a file output. bb's file mode answers on stdout with the same frame
//! its socket server would send, so the client gets bb's own bytes by construction,
//! for every settings combination and every error bb reports. bb 5 reads the
//! bytecode and witness uncompressed here (its CLI wants them gzipped), so nothing is
//! recompressed or re-encoded. (The CLI route, `bb prove` on gzipped files, would
//! need the response re-encoded; see the README.)
//!
//! Deduplication: the frame goes to the store as content-addressed parts
//! ([`parts::split`]: head, bytecode, vk, witness), so a repeated proof of the same
//! circuit uploads only the witness part (and the head when the frame's length
//! changed). The task rebuilds the frame at
//! [`ASSEMBLED_REQUEST`] with a first executor, `cat <parts>` with its stdout to
//! that path (plan `assemble`, see `delegate/task.rs`). On generic engines that is
//! the image's own `cat`; the reference worker, which runs nothing but bb, does it
//! itself (a built-in `cat`, confined to the task's own input files).
//! bb needs `-c` before the `msgpack` subcommand; the worker and `task.rs` put it there.
//!
//! Record/replay: with `BB_REMOTE_REPLAY` a delegated request is answered from the
//! fixture keyed on the request frame's content (the same `ReplayTransport` as the CLI
//! path); a miss answers an `ErrorResponse` naming the key and the nearest fixture, or
//! follows `BB_REMOTE_REPLAY_MISS`. With `BB_REMOTE_RECORD` (and a backend) each
//! delegated request is recorded as that fixture; one the native bb answers (no
//! backend, or a fallback) is recorded too, as a native-mode fixture (`record.rs`).
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::watch;

use super::record::NativeRecorder;
use super::{frame, parts};
use crate::config::MissPolicy;
use crate::config::{Env, Fallback, Settings};
use crate::delegate::transport::RemoteResult;
use crate::delegate::{execute_plan, tes_transport};
use crate::error::Error;
use crate::grammar::Generation;
use crate::logging::error_chain;
use crate::record::format::FixtureDir;
use crate::record::plan::Chosen;
use crate::record::recorder::{save_delegated, Recording};
use crate::record::replay::{ReplayFailure, ReplayTransport};
use crate::route::{ArgTemplate, InputSource, Plan, PlanInput, PlanOutputDir, PLAN_VERSION};

/// File name of the request inside each request's scratch directory and the task.
const REQUEST_FILE: &str = "request.msgpack";
/// Where the task rebuilds a request sent in parts (a fixed container path, outside
/// the output directory so it is never uploaded back).
pub(crate) const ASSEMBLED_REQUEST: &str = "/bb-remote/req/request.msgpack";
/// File the remote bb's stdout (the answer frame) is written to, in the output directory.
const RESPONSE_FILE: &str = "response.msgpack";

/// What to send back for a delegated request.
#[derive(Debug)]
pub(crate) enum Answer {
    /// This response body, as the remote bb produced it (or a synthesized error).
    Frame(Vec<u8>),
    /// Ask the local native bb instead (fallback, or bb must give its own answer).
    Native(Vec<u8>),
}

/// Runs delegated requests; one per server.
pub(crate) struct Delegator {
    settings: Settings,
    env: Env,
    scratch: PathBuf,
    next: AtomicUsize,
    /// With `BB_REMOTE_RECORD` (and no replay): files natively answered requests.
    recorder: Option<NativeRecorder>,
}

impl Delegator {
    /// `None` when nothing is delegated, replayed or recorded.
    pub(crate) fn new(settings: &Settings, env: &Env, scratch: &Path) -> Option<Self> {
        let recorder = match (&settings.record, &settings.replay) {
            (Some(fixtures), None) => Some(NativeRecorder::new(fixtures, env)),
            _ => None,
        };
        if settings.backend.is_none() && settings.replay.is_none() && recorder.is_none() {
            return None;
        }
        Some(Self {
            settings: settings.clone(),
            env: env.clone(),
            scratch: scratch.to_owned(),
            next: AtomicUsize::new(0),
            recorder,
        })
    }

    pub(crate) fn handles(&self, command: &str) -> bool {
        crate::route::MSGPACK_DELEGATED.contains(&command)
    }

    /// Run one request remotely. `gone` turns `true` when the client disconnects:
    /// the remote task is then cancelled.
    pub(crate) async fn answer(&self, body: Vec<u8>, gone: watch::Receiver<bool>) -> Answer {
        if self.settings.backend.is_none() && self.settings.replay.is_none() {
            // Recording without a backend: the native bb answers (and is recorded).
            return Answer::Native(body);
        }
        let dir = self.request_dir();
        let outcome = self.run(&dir, &body, gone).await;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        match outcome {
            Ok(Some(answer)) => Answer::Frame(answer),
            // bb's file mode exits without an answer where its socket server answers
            // (an unknown field, a wrong shape): the local bb says it in its own words.
            Ok(None) => Answer::Native(body),
            Err(Failed::Replay(Some(answer))) => Answer::Frame(answer),
            Err(Failed::Replay(None)) => Answer::Native(body),
            Err(Failed::Remote(err))
                if err.may_fall_back() && self.settings.fallback == Fallback::Native =>
            {
                crate::diag::warning(&format_args!(
                    "{}; proving with the native bb (BB_REMOTE_FALLBACK=native)",
                    error_chain(&err)
                ));
                Answer::Native(body)
            }
            Err(Failed::Remote(err)) => {
                // The whole chain: the headline alone ("local I/O error") says too little.
                Answer::Frame(frame::error_response(&format!(
                    "bb-remote: {}",
                    error_chain(&err)
                )))
            }
        }
    }

    /// With `BB_REMOTE_RECORD`, file `answer`, the native bb's response to `body` (a
    /// request [`Self::answer`] sent to the native bb), as that request's fixture.
    pub(crate) async fn record_native(&self, body: &[u8], answer: &[u8], started: Instant) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let dir = self.request_dir();
        match self.stage(&dir, body).await {
            Ok((plan, present)) => recorder.save(&plan, &present, answer, started).await,
            Err(Failed::Remote(err)) => {
                crate::diag::warning(&format_args!(
                    "not recording this request: {}",
                    error_chain(&err)
                ));
            }
            Err(Failed::Replay(_)) => {}
        }
        let _ = tokio::fs::remove_dir_all(&dir).await;
    }

    /// A fresh scratch directory name for one request.
    fn request_dir(&self) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.scratch.join(format!("request-{n}"))
    }

    async fn run(
        &self,
        dir: &Path,
        body: &[u8],
        gone: watch::Receiver<bool>,
    ) -> Result<Option<Vec<u8>>, Failed> {
        let (plan, present) = self.stage(dir, body).await?;
        let out = PathBuf::from(&plan.output_dir.path);
        let result = match &self.settings.replay {
            Some(fixtures) => match self.replay(fixtures, &plan, &present).await? {
                Some(result) => result,
                None => self.remote(&plan, &present, gone).await?,
            },
            None => self.remote(&plan, &present, gone).await?,
        };
        let response = tokio::fs::read(out.join(RESPONSE_FILE))
            .await
            .unwrap_or_default();
        if response.is_empty() && result.exit_code == 1 {
            return Ok(None);
        }
        unframe(&response).map(|b| Some(b.to_vec())).ok_or_else(|| {
            let tail = String::from_utf8_lossy(&result.stderr);
            let tail = tail.lines().last().unwrap_or_default();
            Failed::Remote(Error::NoAnswer {
                exit_code: result.exit_code,
                stderr_tail: tail.to_owned(),
            })
        })
    }

    /// Write the request frame into `dir` as its parts ([`parts::split`]); the plan
    /// that runs it.
    async fn stage(
        &self,
        dir: &Path,
        body: &[u8],
    ) -> Result<(Plan, Vec<(usize, PathBuf)>), Failed> {
        let io = |what: &str, e: std::io::Error| Failed::Remote(Error::local_io(what, e));
        let out = dir.join("out");
        tokio::fs::create_dir_all(&out)
            .await
            .map_err(|e| io("creating a scratch directory", e))?;
        let len = u32::try_from(body.len()).map_err(|_| {
            io(
                "writing the request",
                std::io::ErrorKind::InvalidInput.into(),
            )
        })?;
        let prefix = len.to_le_bytes();
        let split = parts::split(body);
        let mut files = Vec::with_capacity(split.len());
        for (i, part) in split.iter().enumerate() {
            let path = match split.len() {
                1 => dir.join(REQUEST_FILE),
                _ => dir.join(format!("{REQUEST_FILE}.{i}")),
            };
            // Through tokio's File, which copies a few MiB at a time: `fs::write` would
            // copy the whole frame (hundreds of MB for AVM inputs) once more.
            let written = async {
                use tokio::io::AsyncWriteExt;
                let mut file = tokio::fs::File::create(&path).await?;
                let (start, end) = (part.range.start, part.range.end);
                if start < 4 {
                    file.write_all(&prefix[start..end.min(4)]).await?;
                }
                file.write_all(&body[start.max(4) - 4..end - 4]).await?;
                file.flush().await
            };
            written.await.map_err(|e| io("writing the request", e))?;
            files.push((part.name.as_str(), path));
        }
        let plan = request_plan(&files, &out);
        let present = files.into_iter().map(|(_, p)| p).enumerate().collect();
        Ok((plan, present))
    }

    /// The backend's answer (recorded as a fixture with `BB_REMOTE_RECORD`).
    async fn remote(
        &self,
        plan: &Plan,
        present: &[(usize, PathBuf)],
        gone: watch::Receiver<bool>,
    ) -> Result<RemoteResult, Failed> {
        let started = Instant::now();
        let mut inner = tes_transport(&self.settings, &self.env, plan, present)?;
        inner.cancel = Some(gone);
        let Some(fixtures) = &self.settings.record else {
            return Ok(execute_plan(&mut inner, plan, present).await?);
        };
        let mut transport = Recording {
            inner,
            staged: Vec::new(),
            key: None,
        };
        let result = execute_plan(&mut transport, plan, present).await?;
        let chosen = Chosen::delegable(plan, present);
        let fixtures = FixtureDir::new(fixtures);
        save_delegated(
            &fixtures,
            &chosen,
            &result,
            &transport,
            started,
            &self.settings,
        );
        Ok(result)
    }

    /// The recorded answer; `Ok(None)` on a miss the policy sends to the backend.
    async fn replay(
        &self,
        fixtures: &Path,
        plan: &Plan,
        present: &[(usize, PathBuf)],
    ) -> Result<Option<RemoteResult>, Failed> {
        let mut transport = ReplayTransport::new(FixtureDir::new(fixtures));
        let outcome = execute_plan(&mut transport, plan, present).await;
        let failure = match (outcome, transport.failure) {
            (Ok(result), _) => return Ok(Some(result)),
            (Err(err), None) => return Err(Failed::Remote(err)),
            (Err(_), Some(failure)) => failure,
        };
        let (key, nearest) = match failure {
            ReplayFailure::Invalid(err) => {
                let text = format!("bb-remote: replay: fixture unusable: {err}");
                return Err(Failed::Replay(Some(frame::error_response(&text))));
            }
            ReplayFailure::Miss { key, nearest, .. } => (key, nearest),
        };
        let what = format!(
            "bb-remote: replay: no fixture for this msgpack request (key {key}) in {}; {}",
            fixtures.display(),
            nearest.map_or("no msgpack request is recorded there".to_owned(), |n| {
                format!("nearest recorded: {n}")
            })
        );
        match self.settings.replay_miss {
            MissPolicy::Native => {
                crate::diag::line(&format_args!("{what}; asking the native bb"));
                Err(Failed::Replay(None))
            }
            MissPolicy::Remote if self.settings.backend.is_some() => {
                crate::diag::line(&format_args!("{what}; running it on the backend"));
                Ok(None)
            }
            MissPolicy::Fail | MissPolicy::Remote => {
                Err(Failed::Replay(Some(frame::error_response(&what))))
            }
        }
    }
}

/// Why [`Delegator::run`] has no backend answer.
enum Failed {
    /// The backend (or staging) failed: fallback policy applies.
    Remote(Error),
    /// Replay decided: this answer, or `None` for the native bb's.
    Replay(Option<Vec<u8>>),
}

impl From<Error> for Failed {
    fn from(err: Error) -> Self {
        Self::Remote(err)
    }
}

/// The one frame's body in `bytes`, if `bytes` is exactly one frame.
fn unframe(bytes: &[u8]) -> Option<&[u8]> {
    let (prefix, body) = bytes.split_at_checked(4)?;
    let len = u32::from_le_bytes(prefix.try_into().ok()?) as usize;
    (len == body.len() && len > 0).then_some(body)
}

/// `bb msgpack run --input <request>`, stdout to [`RESPONSE_FILE`]. One file is the
/// request itself; several are its parts ([`parts::split`]), which the task
/// concatenates into [`ASSEMBLED_REQUEST`] before bb runs (plan `assemble`).
pub(crate) fn request_plan(files: &[(&str, PathBuf)], out: &Path) -> Plan {
    let lit = |s: &str| ArgTemplate::Literal(s.to_owned());
    let single = files.len() == 1;
    let inputs = files
        .iter()
        .map(|(name, path)| PlanInput {
            role: match single {
                true => "msgpack_request".to_owned(),
                false => format!("msgpack_{name}"),
            },
            given: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.display().to_string(),
            source: InputSource::Flag,
            required: true,
            versions: None,
        })
        .collect();
    let request = match single {
        true => ArgTemplate::Input(0),
        false => lit(ASSEMBLED_REQUEST),
    };
    Plan {
        plan_version: PLAN_VERSION,
        generation: Generation::Modern,
        command: "msgpack".to_owned(),
        inputs,
        output_dir: PlanOutputDir {
            given: "out".to_owned(),
            path: out.display().to_string(),
            source: InputSource::Default,
            created_by_bb: true,
        },
        argv: crate::grammar::msgpack_run::SERVE
            .into_iter()
            .map(lit)
            .chain([request])
            .collect(),
        dropped: vec![],
        stdout_file: Some(RESPONSE_FILE.to_owned()),
        assemble: (!single).then(|| ASSEMBLED_REQUEST.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_single_frame_is_an_answer() {
        assert_eq!(unframe(b"\x02\x00\x00\x00\x92\x80"), Some(&b"\x92\x80"[..]));
        assert_eq!(unframe(b"\x03\x00\x00\x00\x92\x80"), None);
        assert_eq!(unframe(b"\x00\x00\x00\x00"), None);
        assert_eq!(unframe(b"\x02\x00"), None);
    }

    #[test]
    fn the_plan_names_its_inputs_and_captures_stdout() {
        let single = [("head", PathBuf::from("/s/request.msgpack"))];
        let plan = request_plan(&single, Path::new("/s/out"));
        let mapping = plan.local_mapping();
        assert_eq!(
            plan.render_argv(&mapping).unwrap(),
            ["msgpack", "run", "--input", "/s/request.msgpack"]
        );
        assert_eq!(plan.stdout_file.as_deref(), Some(RESPONSE_FILE));
        assert_eq!(plan.assemble, None);
        assert_eq!(plan.inputs[0].role, "msgpack_request");

        let parts = [
            ("head", PathBuf::from("/s/request.msgpack.0")),
            ("witness", PathBuf::from("/s/request.msgpack.1")),
        ];
        let plan = request_plan(&parts, Path::new("/s/out"));
        assert_eq!(
            plan.render_argv(&plan.local_mapping()).unwrap(),
            ["msgpack", "run", "--input", ASSEMBLED_REQUEST]
        );
        assert_eq!(plan.assemble.as_deref(), Some(ASSEMBLED_REQUEST));
        let roles: Vec<&str> = plan.inputs.iter().map(|i| i.role.as_str()).collect();
        assert_eq!(roles, ["msgpack_head", "msgpack_witness"]);
        assert_eq!(plan.inputs[1].given, "request.msgpack.1");
    }
}

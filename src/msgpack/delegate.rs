//! Delegated msgpack requests (`CircuitProve`, `AvmProve`): the same plan, store,
//! TES task, idempotency, polling and fallback as a delegated `bb prove`.
//!
//! Route chosen ("file route"): the request frame, exactly as the client sent it, is
//! the task's one input, and the remote runs the real bb on it:
//! `bb --verbose msgpack run --input <request>` with its stdout captured to a file
//! output. bb's file mode answers on stdout with the same frame its socket server
//! would send, so the client gets bb's own bytes by construction, for every settings
//! combination and every error bb reports. (The CLI route, `bb prove` on gzipped
//! files, would deduplicate bytecode and vk but needs the response re-encoded and
//! both inputs gzipped; see the README.) `--verbose` is there only so that a worker
//! that adds `-c <crs>` after the first argument puts it before `msgpack`, where bb
//! accepts it.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

use super::frame;
use crate::config::{Env, Fallback, Settings};
use crate::delegate::error::DelegateError;
use crate::delegate::{execute_plan, tes_transport};
use crate::grammar::Generation;
use crate::route::{ArgTemplate, InputSource, Plan, PlanInput, PlanOutputDir, PLAN_VERSION};

/// The msgpack commands delegated: self-contained (apart from the CRS) and heavy.
pub const DELEGATED: &[&str] = &["CircuitProve", "AvmProve"];
/// File name of the request inside each request's scratch directory and the task.
const REQUEST_FILE: &str = "request.msgpack";
/// File the remote bb's stdout (the answer frame) is written to, in the output directory.
const RESPONSE_FILE: &str = "response.msgpack";

/// What to send back for a delegated request.
#[derive(Debug)]
pub enum Answer {
    /// This response body, as the remote bb produced it (or a synthesized error).
    Frame(Vec<u8>),
    /// Ask the local native bb instead (fallback, or bb must give its own answer).
    Native(Vec<u8>),
}

/// Runs delegated requests; one per server.
pub struct Delegator {
    settings: Settings,
    env: Env,
    scratch: PathBuf,
    next: AtomicUsize,
}

impl Delegator {
    /// `None` when nothing is delegated (no backend configured).
    pub fn new(settings: &Settings, env: &Env, scratch: &Path) -> Option<Self> {
        settings.backend.as_ref()?;
        Some(Self {
            settings: settings.clone(),
            env: env.clone(),
            scratch: scratch.to_owned(),
            next: AtomicUsize::new(0),
        })
    }

    pub fn handles(&self, command: &str) -> bool {
        DELEGATED.contains(&command)
    }

    /// Run one request remotely. `gone` turns `true` when the client disconnects:
    /// the remote task is then cancelled.
    pub async fn answer(&self, body: Vec<u8>, gone: watch::Receiver<bool>) -> Answer {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = self.scratch.join(format!("request-{n}"));
        let outcome = self.run(&dir, &body, gone).await;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        match outcome {
            Ok(Some(answer)) => Answer::Frame(answer),
            // bb's file mode exits without an answer where its socket server answers
            // (an unknown field, a wrong shape): the local bb says it in its own words.
            Ok(None) => Answer::Native(body),
            Err(err) if err.may_fall_back() && self.settings.fallback == Fallback::Native => {
                eprintln!("bb-remote: warning: {err}; proving with the native bb (BB_REMOTE_FALLBACK=native)");
                Answer::Native(body)
            }
            Err(err) => Answer::Frame(frame::error_response(&format!("bb-remote: {err}"))),
        }
    }

    async fn run(
        &self,
        dir: &Path,
        body: &[u8],
        gone: watch::Receiver<bool>,
    ) -> Result<Option<Vec<u8>>, DelegateError> {
        let io = |what: &str, e: std::io::Error| DelegateError::Io(format!("{what}: {e}"));
        let out = dir.join("out");
        tokio::fs::create_dir_all(&out)
            .await
            .map_err(|e| io("creating a scratch directory", e))?;
        let request = dir.join(REQUEST_FILE);
        let mut framed = Vec::with_capacity(body.len() + 4);
        frame::write_frame(&mut framed, body)
            .await
            .map_err(|e| io("framing the request", e))?;
        tokio::fs::write(&request, &framed)
            .await
            .map_err(|e| io("writing the request", e))?;
        drop(framed);
        let plan = request_plan(&request, &out);
        let present = vec![(0, request)];
        let mut transport = tes_transport(&self.settings, &self.env, &plan, &present)?;
        transport.cancel = Some(gone);
        let result = execute_plan(&mut transport, &plan, &present).await?;
        let response = tokio::fs::read(out.join(RESPONSE_FILE))
            .await
            .unwrap_or_default();
        if response.is_empty() && result.exit_code == 1 {
            return Ok(None);
        }
        unframe(&response).map(|b| Some(b.to_vec())).ok_or_else(|| {
            let tail = String::from_utf8_lossy(&result.stderr);
            let tail = tail.lines().last().unwrap_or_default();
            DelegateError::TaskFailed(format!(
                "the remote bb exited with {} without an answer: {tail}",
                result.exit_code
            ))
        })
    }
}

/// The one frame's body in `bytes`, if `bytes` is exactly one frame.
fn unframe(bytes: &[u8]) -> Option<&[u8]> {
    let (prefix, body) = bytes.split_at_checked(4)?;
    let len = u32::from_le_bytes(prefix.try_into().ok()?) as usize;
    (len == body.len() && len > 0).then_some(body)
}

/// `bb --verbose msgpack run --input <request>`, stdout to [`RESPONSE_FILE`].
pub fn request_plan(request: &Path, out: &Path) -> Plan {
    let lit = |s: &str| ArgTemplate::Literal(s.to_owned());
    Plan {
        plan_version: PLAN_VERSION,
        generation: Generation::Modern,
        command: "msgpack".to_owned(),
        inputs: vec![PlanInput {
            role: "msgpack_request".to_owned(),
            given: REQUEST_FILE.to_owned(),
            path: request.display().to_string(),
            source: InputSource::Flag,
            required: true,
            versions: None,
        }],
        output_dir: PlanOutputDir {
            given: "out".to_owned(),
            path: out.display().to_string(),
            source: InputSource::Default,
            created_by_bb: true,
        },
        argv: vec![
            lit("--verbose"),
            lit("msgpack"),
            lit("run"),
            lit("--input"),
            ArgTemplate::Input(0),
        ],
        dropped: vec![],
        stdout_file: Some(RESPONSE_FILE.to_owned()),
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
    fn the_plan_names_one_input_and_captures_stdout() {
        let plan = request_plan(Path::new("/s/request.msgpack"), Path::new("/s/out"));
        let mapping = plan.local_mapping();
        assert_eq!(
            plan.render_argv(&mapping).unwrap(),
            [
                "--verbose",
                "msgpack",
                "run",
                "--input",
                "/s/request.msgpack"
            ]
        );
        assert_eq!(plan.stdout_file.as_deref(), Some(RESPONSE_FILE));
    }
}

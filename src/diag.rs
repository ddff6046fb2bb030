//! The shim's own lines on stderr, in one place: `bb-remote: error: ...`,
//! `bb-remote: warning: ...` and `bb-remote: <note>`. stdout belongs to bb; nothing
//! here writes to it. Every line (and every tracing event, through
//! [`ScrubbedStderr`]) has the configured secrets masked first (`redact.rs`), so a
//! library error quoting a URL with a password never shows it.

use std::fmt::Display;
use std::io::Write;
use std::sync::OnceLock;

use crate::config::Env;

static SECRETS: OnceLock<Vec<String>> = OnceLock::new();

/// Remember the secrets of this process's configuration (once; later calls are
/// ignored, as one process serves one configuration).
pub(crate) fn init(env: &Env) {
    init_secrets(crate::redact::secrets(env));
}

/// [`init`] with secrets gathered otherwise (the worker's `--store` and `--token`).
pub(crate) fn init_secrets(secrets: Vec<String>) {
    let _ = SECRETS.set(secrets);
}

/// `text` with the remembered secrets masked, for text that leaves the process other
/// than through stderr (a task's system log, which clients read).
#[cfg(feature = "worker")]
pub(crate) fn mask(text: &str) -> String {
    scrubbed(text)
}

fn scrubbed(text: &str) -> String {
    match SECRETS.get() {
        Some(secrets) => crate::redact::scrub(text, secrets),
        None => text.to_owned(),
    }
}

/// Write one whole line to stderr (a failed write has nowhere else to go).
fn emit(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{}", scrubbed(line));
}

/// `bb-remote: error: <err>`, the shim's one error line.
pub(crate) fn error(err: &dyn Display) {
    emit(&format!("bb-remote: error: {err}"));
}

/// The operator tool's (`bb-remote`'s) last line: `bb-remote: error: ...` with the cause
/// chain, masked like the shim's lines (the secrets of `env`); returns its exit code
/// ([`crate::exit::of_tool_error`]).
pub fn tool_error(err: &anyhow::Error, env: &Env) -> u8 {
    init(env);
    error(&format_args!("{err:#}"));
    crate::exit::of_tool_error(err)
}

/// `bb-remote: warning: <msg>`.
pub(crate) fn warning(msg: &dyn Display) {
    emit(&format!("bb-remote: warning: {msg}"));
}

/// `bb-remote: <msg>`: progress the operator sees (inputs uploaded, task states).
pub(crate) fn note(msg: &dyn Display) {
    emit(&format!("bb-remote: {msg}"));
}

/// A line already prefixed by its writer (`bb-remote: replay: ...`), as is.
pub(crate) fn line(text: &dyn Display) {
    emit(&text.to_string());
}

/// A tracing writer: collects one formatted event, then writes it scrubbed to stderr.
#[derive(Default)]
pub(crate) struct ScrubbedStderr {
    buf: Vec<u8>,
}

impl ScrubbedStderr {
    pub(crate) fn make() -> Self {
        Self::default()
    }
}

impl Write for ScrubbedStderr {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let text = scrubbed(&String::from_utf8_lossy(&self.buf));
            self.buf.clear();
            std::io::stderr().lock().write_all(text.as_bytes())?;
        }
        Ok(())
    }
}

impl Drop for ScrubbedStderr {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

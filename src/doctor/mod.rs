//! `bb-remote doctor`: check each piece the shim depends on and say what is wrong.
//!
//! Checks, in order (each one line, with indented detail lines where useful):
//! - `config`: every `BB_REMOTE_*` variable that is set (tokens as set/unset only),
//!   unknown `BB_REMOTE_*` names, and [`Settings::load`] errors ([`config_check`]);
//! - `store`: write, read back and delete a probe object under `doctor/` ([`store_check`]);
//! - `backend` and `token`: TES service-info, then `GET /tasks?page_size=1` with the
//!   token, where 401/403 means a wrong or missing token ([`backend_check`]);
//! - `native`: how the native bb is found, its `--version`, or for a library that it
//!   loads and the symbol resolves - never called ([`native`]);
//! - `msgpack`: the native bb serves `msgpack run` on a socket and answers a
//!   `Blake2s` correctly, as the 5.x prover's relay needs ([`msgpack_check`]);
//! - `delegate`: the delegated command set per grammar ([`config_check`]).
//!
//! A check of something not configured is a `skip` saying why (no backend means
//! passthrough-only mode). The command exits [`crate::exit::CONFIG`] (78, as the shim
//! would) when the `config` check failed, else [`EXIT_PROBLEMS`] when any check failed.
//! Every network check has a bound of a few seconds. The report goes to stdout: this
//! is the operator's tool, not the shim.

pub(crate) mod backend_check;
pub(crate) mod config_check;
pub(crate) mod msgpack_check;
pub(crate) mod native;

pub(crate) use crate::logging::error_chain;
pub(crate) mod store_check;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use crate::config::Env;

/// Exit code of `bb-remote doctor` when a check other than `config` failed.
pub(crate) const EXIT_PROBLEMS: u8 = crate::exit::TOOL_FAILED;

/// Longest time one network or process check may take before it is reported failed.
pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// `bb-remote doctor`: check configuration, store, backend and native bb.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Print the report as one JSON document instead of text lines.
    #[arg(long)]
    pub(crate) json: bool,
    /// The `bb` shim whose setup to check: discovery of the native bb looks beside it
    /// (default: `bb` beside this bb-remote, else bb-remote itself).
    #[arg(long, value_name = "PATH")]
    pub(crate) shim: Option<PathBuf>,
}

/// What one check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    Ok,
    /// Works, but something looks unintended (e.g. an unknown `BB_REMOTE_*` name).
    Warn,
    /// Not configured, so not checked; the summary says why.
    Skip,
    /// Broken in a way the configured mode needs; the summary says what to set.
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Skip => "skip",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) status: Status,
    pub(crate) summary: String,
    /// Extra lines printed indented under the summary.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) details: Vec<String>,
}

impl Check {
    pub(crate) fn new(name: &'static str, status: Status, summary: impl Into<String>) -> Self {
        Self {
            name,
            status,
            summary: summary.into(),
            details: Vec::new(),
        }
    }

    pub(crate) fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }
}

/// Every check, in the order run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// False when any check failed.
    pub(crate) ok: bool,
    pub(crate) checks: Vec<Check>,
}

impl Report {
    fn new(checks: Vec<Check>) -> Self {
        Self {
            ok: checks.iter().all(|c| c.status != Status::Fail),
            checks,
        }
    }

    /// 0; 78 when a `BB_REMOTE_*` value is invalid (what the shim would exit with);
    /// else 1 when anything else the configured mode needs is broken.
    fn exit_code(&self) -> u8 {
        let failed = |name: Option<&str>| {
            self.checks
                .iter()
                .any(|c| c.status == Status::Fail && name.is_none_or(|n| n == c.name))
        };
        if failed(Some("config")) {
            crate::exit::CONFIG
        } else if failed(None) {
            EXIT_PROBLEMS
        } else {
            0
        }
    }

    /// The text form: `<status> <check> <summary>`, details indented below.
    pub(crate) fn render_text(&self) -> String {
        let mut out = String::new();
        for check in &self.checks {
            out.push_str(&format!(
                "{:<5} {:<9} {}\n",
                check.status.label(),
                check.name,
                check.summary
            ));
            for line in &check.details {
                out.push_str(&format!("{:16}{line}\n", ""));
            }
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count();
        if failed > 0 {
            out.push_str(&format!("{failed} check(s) failed\n"));
        }
        out
    }
}

/// Run every check against `env`. `shim_exe` is the `bb` shim native discovery looks
/// beside (and must not find itself).
pub(crate) async fn diagnose(env: &Env, shim_exe: Option<&Path>) -> Report {
    let mut checks = vec![config_check::check_config(env)];
    checks.push(store_check::check_store(env).await);
    checks.extend(backend_check::check_backend(env).await);
    checks.push(native::check_native(env, shim_exe).await);
    checks.push(msgpack_check::check_msgpack(env, shim_exe).await);
    checks.push(config_check::check_delegate_set(env));
    // Library errors quote request URLs with their password (object_store's HTTP store
    // does): the report is masked like every line the shim prints.
    let secrets = crate::redact::secrets(env);
    for check in &mut checks {
        check.summary = crate::redact::scrub(&check.summary, &secrets);
        for line in &mut check.details {
            *line = crate::redact::scrub(line, &secrets);
        }
    }
    Report::new(checks)
}

pub fn run_cli(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let env = Env::from_process();
    let shim = args.shim.or_else(default_shim);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(diagnose(&env, shim.as_deref()));
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&report)?)
    } else {
        report.render_text()
    };
    print_report(&text);
    Ok(ExitCode::from(report.exit_code()))
}

/// `bb` beside this executable when it exists (the usual install), else ourselves.
fn default_shim() -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let beside = me.with_file_name("bb");
    Some(if beside.is_file() { beside } else { me })
}

#[expect(
    clippy::print_stdout,
    reason = "the operator asked for this report on stdout"
)]
fn print_report(text: &str) {
    print!("{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_failure_makes_the_report_fail_and_text_counts_them() {
        let report = Report::new(vec![
            Check::new("config", Status::Ok, "fine"),
            Check::new("store", Status::Skip, "unset"),
        ]);
        assert!(report.ok);
        assert!(!report.render_text().contains("failed"));
        let report = Report::new(vec![
            Check::new("config", Status::Ok, "fine").with_details(vec!["A=1".into()]),
            Check::new("backend", Status::Fail, "down"),
        ]);
        assert!(!report.ok);
        assert_eq!(report.exit_code(), EXIT_PROBLEMS);
        let text = report.render_text();
        assert!(text.starts_with("ok    config    fine\n"), "{text}");
        assert!(text.contains("\n                A=1\n"), "{text}");
        assert!(text.contains("FAIL  backend   down\n"), "{text}");
        assert!(text.ends_with("1 check(s) failed\n"), "{text}");
    }

    #[test]
    fn a_bad_configuration_exits_78_like_the_shim() {
        let ok = Report::new(vec![Check::new("config", Status::Ok, "fine")]);
        assert_eq!(ok.exit_code(), 0);
        let bad = Report::new(vec![
            Check::new("config", Status::Fail, "invalid value"),
            Check::new("native", Status::Fail, "missing"),
        ]);
        assert_eq!(bad.exit_code(), crate::exit::CONFIG);
    }

    #[test]
    fn a_password_quoted_by_a_library_error_is_masked() {
        let env = Env::from_pairs([
            (crate::env_vars::BACKEND, "http://u:hunter2@127.0.0.1:9/"),
            (crate::env_vars::STORE, "http://u:hunter3@127.0.0.1:9/b"),
        ]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let report = runtime.block_on(diagnose(&env, None));
        let store = report.checks.iter().find(|c| c.name == "store").unwrap();
        assert_eq!(store.status, Status::Fail, "{store:?}");
        let text = report.render_text();
        assert!(!text.contains("hunter"), "{text}");
    }

    #[test]
    fn json_names_each_status() {
        let report = Report::new(vec![Check::new("native", Status::Fail, "missing")]);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][0]["status"], "fail");
        assert_eq!(json["checks"][0]["name"], "native");
    }

    #[test]
    fn error_chain_joins_sources_once() {
        let io = std::io::Error::other("connection refused");
        let outer = anyhow::Error::new(io).context("cannot reach http://x");
        let text = error_chain(outer.as_ref());
        assert_eq!(text, "cannot reach http://x: connection refused");
    }
}

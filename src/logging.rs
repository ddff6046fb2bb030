//! bb-remote's own diagnostics: `tracing` to stderr (stdout belongs to bb), filtered by
//! `BB_REMOTE_LOG` (tracing's filter syntax), as text or JSON (`BB_REMOTE_LOG_FORMAT`).
//! Passthrough never calls this: it has nothing to log and must stay cheap.

use crate::config::{BadValue, Env};
use crate::env_vars;
use tracing_subscriber::EnvFilter;

/// Install the subscriber; `default_filter` applies when `BB_REMOTE_LOG` is unset.
/// A bad filter or format is an error naming the variable.
pub fn init(env: &Env, default_filter: &str) -> Result<(), BadValue> {
    let filter_text = env.get(env_vars::LOG).unwrap_or(default_filter);
    let filter = EnvFilter::try_new(filter_text).map_err(|_| BadValue {
        name: env_vars::LOG,
        value: filter_text.to_owned(),
        expected: "a tracing filter such as `debug` or `bb_remote=debug,info`",
    })?;
    let json = json_format(env)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    // A second init in one process (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    Ok(())
}

/// `BB_REMOTE_LOG_FORMAT`: `text` (default) or `json`; true for JSON.
pub fn json_format(env: &Env) -> Result<bool, BadValue> {
    match env.get(env_vars::LOG_FORMAT) {
        None | Some("text") => Ok(false),
        Some("json") => Ok(true),
        Some(other) => Err(BadValue {
            name: env_vars::LOG_FORMAT,
            value: other.to_owned(),
            expected: "`text` or `json`",
        }),
    }
}

/// An error and its sources on one line, `outer: inner: ...`, for the shim's, the worker's and doctor's messages.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let more = inner.to_string();
        // Some errors repeat their source's message; do not print it twice.
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = inner.source();
    }
    text.replace('\n', "; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_the_variable() {
        let env = Env::from_pairs([(env_vars::LOG, "bb_remote=loud[")]);
        assert_eq!(init(&env, "warn").unwrap_err().name, env_vars::LOG);
        let env = Env::from_pairs([(env_vars::LOG_FORMAT, "xml")]);
        assert_eq!(init(&env, "warn").unwrap_err().name, env_vars::LOG_FORMAT);
    }
}

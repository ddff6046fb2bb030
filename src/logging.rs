//! bb-remote's own diagnostics: `tracing` to stderr (stdout belongs to bb), filtered by
//! `BB_REMOTE_LOG` (tracing's filter syntax), as text or JSON (`BB_REMOTE_LOG_FORMAT`).
//! Passthrough never calls this: it has nothing to log and must stay cheap. Every
//! event passes through the secret scrubber of [`crate::diag`] before it is written.

use crate::config::LogSettings;
use tracing_subscriber::EnvFilter;

/// Install the subscriber; `default_filter` applies when `BB_REMOTE_LOG` is unset.
/// A bad filter or format is an error naming the variable. (The worker's; the shim
/// loads its settings first and calls [`init_with`].)
#[cfg(any(feature = "worker", test))]
pub(crate) fn init(
    env: &crate::config::Env,
    default_filter: &str,
) -> Result<(), crate::config::BadValue> {
    init_with(&LogSettings::load(env)?, default_filter);
    Ok(())
}

/// Install the subscriber for settings already checked by the configuration.
pub(crate) fn init_with(log: &LogSettings, default_filter: &str) {
    let filter = log.filter.as_deref().unwrap_or(default_filter);
    // Checked by the configuration; a default that fails to parse logs nothing.
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("off"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::diag::ScrubbedStderr::make)
        .with_ansi(false);
    // A second init in one process (tests) keeps the first subscriber.
    let _ = if log.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// An error and its sources on one line, `outer: inner: ...`, for the shim's, the worker's and doctor's messages.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
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
    use crate::config::Env;
    use crate::env_vars;

    #[test]
    fn bad_values_name_the_variable() {
        let env = Env::from_pairs([(env_vars::LOG, "bb_remote=loud[")]);
        assert_eq!(init(&env, "warn").unwrap_err().name, env_vars::LOG);
        let env = Env::from_pairs([(env_vars::LOG_FORMAT, "xml")]);
        assert_eq!(init(&env, "warn").unwrap_err().name, env_vars::LOG_FORMAT);
    }
}

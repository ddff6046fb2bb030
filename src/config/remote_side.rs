//! The remote side of a task as the operator configures it (`BB_REMOTE_EXECUTOR_BB`,
//! `BB_REMOTE_EXECUTOR_CRS`, `BB_REMOTE_FORWARD_ENV`): which bb the executor runs,
//! where it finds its CRS, which `BB_*` variables travel with the task. Which paths
//! the task uses inside the container is decided per plan in `delegate::remote_side`.
use std::collections::BTreeMap;

use super::{bad, BadValue};
use crate::env_vars::{self as v, Env};

/// `BB_*` variables forwarded to the remote bb by default: the ones that change what
/// bb prints or which scheme it picks, and nothing machine-specific.
pub(crate) const DEFAULT_FORWARD_ENV: &[&str] = &[
    "BB_DISABLE_MEM_USAGE",
    "BB_VERBOSE",
    "BB_SCHEME",
    "BB_VERIFIER_TARGET",
];

/// The remote-side settings of a task (from `BB_REMOTE_EXECUTOR_BB`,
/// `BB_REMOTE_EXECUTOR_CRS`, `BB_REMOTE_FORWARD_ENV`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteSide {
    /// `command[0]`: bb's path (or name on `PATH`) inside the executor image.
    pub(crate) bb: String,
    /// A `-c` directory inside the executor, or none (the engine provides the CRS).
    pub(crate) crs: Option<String>,
    /// Names of the variables forwarded in `executor.env` when set.
    pub(crate) forward_env: Vec<String>,
}

impl Default for RemoteSide {
    fn default() -> Self {
        Self {
            bb: "bb".into(),
            crs: None,
            forward_env: DEFAULT_FORWARD_ENV.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl RemoteSide {
    /// `BB_REMOTE_EXECUTOR_BB`, `BB_REMOTE_EXECUTOR_CRS`, `BB_REMOTE_FORWARD_ENV`, each
    /// checked, and the forwarded variables' values too (see [`Self::executor_env`]).
    pub(crate) fn load(env: &Env) -> Result<Self, BadValue> {
        let mut side = Self::default();
        if let Some(s) = env.get(v::EXECUTOR_BB) {
            check_executor_bb(s).map_err(|e| bad(v::EXECUTOR_BB, s, e))?;
            side.bb = s.to_owned();
        }
        if let Some(s) = env.get(v::EXECUTOR_CRS) {
            check_executor_crs(s).map_err(|e| bad(v::EXECUTOR_CRS, s, e))?;
            side.crs = Some(s.to_owned());
        }
        if let Some(s) = env.get(v::FORWARD_ENV) {
            side.forward_env = parse_forward_env(s).map_err(|e| bad(v::FORWARD_ENV, s, e))?;
        }
        side.executor_env(env)?;
        Ok(side)
    }

    /// The variables to put in `executor.env`: each allowlisted one that is set.
    /// A value with whitespace is refused (Funnel's docker template splits on it): the
    /// error names the variable and never echoes its value, which may be anything.
    pub(crate) fn executor_env(&self, env: &Env) -> Result<BTreeMap<String, String>, BadValue> {
        let mut out = BTreeMap::new();
        for name in &self.forward_env {
            if let Some(value) = env.get(name) {
                if value.chars().any(char::is_whitespace) {
                    return Err(BadValue {
                        name: name.clone(),
                        value: String::new(),
                        expected: format!(
                            "no whitespace in a variable {} forwards (TES engines split \
                             executor env on it)",
                            crate::env_vars::FORWARD_ENV
                        ),
                    });
                }
                out.insert(name.clone(), value.to_owned());
            }
        }
        Ok(out)
    }
}

/// Check a `BB_REMOTE_EXECUTOR_BB` value: a bare name or an absolute path, one word.
fn check_executor_bb(value: &str) -> Result<(), &'static str> {
    let plain = !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if plain && (value.starts_with('/') || !value.contains('/')) {
        Ok(())
    } else {
        Err("bb's absolute path (or a bare name on PATH) inside the executor image, without spaces")
    }
}

/// Check a `BB_REMOTE_EXECUTOR_CRS` value: an absolute directory, one word.
fn check_executor_crs(value: &str) -> Result<(), &'static str> {
    if value.starts_with('/') && !value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err("an absolute CRS directory inside the executor, without spaces")
    }
}

/// Parse a `BB_REMOTE_FORWARD_ENV` value: comma-separated `BB_*` names (never
/// `BB_REMOTE_*`, the shim's own), or `none`.
fn parse_forward_env(value: &str) -> Result<Vec<String>, &'static str> {
    if value.trim() == "none" {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    for name in value.split(',').map(str::trim) {
        let valid = name.starts_with("BB_")
            && !name.starts_with("BB_REMOTE_")
            && name.len() > 3
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err("comma-separated BB_* variable names (not BB_REMOTE_*), or `none`");
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_env_names_are_bb_variables_only() {
        assert_eq!(
            parse_forward_env("BB_VERBOSE, BB_X1").unwrap(),
            ["BB_VERBOSE", "BB_X1"]
        );
        assert!(parse_forward_env("none").unwrap().is_empty());
        for bad in [
            "PATH",
            "BB_REMOTE_TOKEN",
            "BB_",
            "bb_verbose",
            "BB_A,,BB_B",
            "",
        ] {
            assert!(parse_forward_env(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn executor_paths_are_single_words() {
        assert!(check_executor_bb("bb").is_ok());
        assert!(check_executor_bb("/usr/src/barretenberg/cpp/build/bin/bb").is_ok());
        assert!(check_executor_bb("bin/bb").is_err());
        assert!(check_executor_bb("/opt/my bb").is_err());
        assert!(check_executor_crs("/crs").is_ok());
        assert!(check_executor_crs("crs").is_err());
    }

    #[test]
    fn env_with_spaces_is_refused_not_split() {
        let side = RemoteSide::default();
        let env = Env::from_pairs([("BB_VERBOSE", "1"), ("BB_SCHEME", "ultra honk-s3cret")]);
        let err = side.executor_env(&env).unwrap_err().to_string();
        assert!(err.contains("BB_SCHEME"), "{err}");
        assert!(!err.contains("s3cret"), "the value is echoed: {err}");
        // The same through the one configuration loader (what `bb` and doctor print).
        let err = crate::config::Settings::load(&env).unwrap_err().to_string();
        assert!(
            err.contains("BB_SCHEME") && err.contains("BB_REMOTE_FORWARD_ENV"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "the value is echoed: {err}");
        let env = Env::from_pairs([("BB_VERBOSE", "1"), ("HOME", "/h")]);
        assert_eq!(
            side.executor_env(&env).unwrap(),
            BTreeMap::from([("BB_VERBOSE".to_owned(), "1".to_owned())])
        );
    }
}

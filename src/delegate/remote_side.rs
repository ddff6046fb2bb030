//! What the remote side of a task looks like: which bb the executor runs, where it
//! finds its CRS, which `BB_*` variables travel with the task, and which paths the
//! task uses inside the container.
//!
//! Paths: where it can be done exactly, the container sees the caller's own paths
//! (inputs at their absolute paths, the output directory where the caller named it,
//! bb's working directory the caller's), and argv keeps the caller's spelling. bb's
//! messages then name the caller's paths, byte for byte. When a path cannot be used
//! as a container path on every engine (see [`caller_paths_usable`]), the task falls
//! back to the fixed `/bb-remote/...` layout.
use std::collections::BTreeMap;
use std::path::{Component, Path};

use crate::config::{BadValue, Env};
use crate::route::{InputSource, Plan};

/// `BB_*` variables forwarded to the remote bb by default: the ones that change what
/// bb prints or which scheme it picks, and nothing machine-specific.
pub(crate) const DEFAULT_FORWARD_ENV: &[&str] = &[
    "BB_DISABLE_MEM_USAGE",
    "BB_VERBOSE",
    "BB_SCHEME",
    "BB_VERIFIER_TARGET",
];

/// Container paths the task never uses for the caller's files: an image's own
/// directories, and the task's bookkeeping directory.
const RESERVED: &[&str] = &[
    "/bb-remote",
    "/bin",
    "/boot",
    "/crs",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
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
pub(crate) fn check_executor_bb(value: &str) -> Result<(), &'static str> {
    let plain = !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if plain && (value.starts_with('/') || !value.contains('/')) {
        Ok(())
    } else {
        Err("bb's absolute path (or a bare name on PATH) inside the executor image, without spaces")
    }
}

/// Check a `BB_REMOTE_EXECUTOR_CRS` value: an absolute directory, one word.
pub(crate) fn check_executor_crs(value: &str) -> Result<(), &'static str> {
    if value.starts_with('/') && !value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err("an absolute CRS directory inside the executor, without spaces")
    }
}

/// Parse a `BB_REMOTE_FORWARD_ENV` value: comma-separated `BB_*` names (never
/// `BB_REMOTE_*`, the shim's own), or `none`.
pub(crate) fn parse_forward_env(value: &str) -> Result<Vec<String>, &'static str> {
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

/// Whether the caller's paths can be the container's: every input, the output
/// directory and the working directory are absolute, UTF-8, without `..`, spaces,
/// control characters or `:` (docker's volume syntax), outside [`RESERVED`] and the
/// executor's own bb and CRS, and no input is the output directory or above it.
pub(crate) fn caller_paths_usable(plan: &Plan, cwd: &Path, side: &RemoteSide) -> bool {
    let Some(cwd) = cwd.to_str() else {
        return false;
    };
    let mut reserved: Vec<&str> = RESERVED.to_vec();
    reserved.extend(side.crs.as_deref());
    if side.bb.starts_with('/') {
        reserved.push(&side.bb);
    }
    let usable = |path: &str| {
        path.starts_with('/')
            && path != "/"
            && !path
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ':')
            && Path::new(path)
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
            && !reserved.iter().any(|r| within(path, r))
    };
    let out = plan.output_dir.path.as_str();
    usable(cwd)
        && usable(out)
        && plan.inputs.iter().all(|input| {
            usable(&input.path)
                && !within(out, &input.path)
                && (input.source == InputSource::Implicit || given_is_clean(&input.given))
        })
        && given_is_clean(&plan.output_dir.given)
}

/// `path` is `base` or below it.
fn within(path: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    path == base || path.strip_prefix(base).is_some_and(|r| r.starts_with('/'))
}

/// A given path that names the same file from the caller's working directory on the
/// remote side: no `..` (it may cross a symlink that does not exist there).
fn given_is_clean(given: &str) -> bool {
    !given.is_empty()
        && Path::new(given)
            .components()
            .all(|c| !matches!(c, Component::ParentDir))
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

    #[test]
    fn within_is_by_component() {
        assert!(within("/usr/bin", "/usr"));
        assert!(within("/usr", "/usr/"));
        assert!(!within("/usrx", "/usr"));
    }
}

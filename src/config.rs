//! A snapshot of the environment, injectable so tests never mutate the process env.

use std::collections::BTreeMap;
use std::ffi::OsString;

/// The process environment as the shim saw it. Empty values count as unset.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// Read the real process environment (non-UTF-8 values are skipped).
    pub fn from_process() -> Self {
        Self::from_pairs(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `name`, or `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_owned(), value.into());
    }

    /// Every set variable whose name starts with `prefix` (e.g. `AWS_`), for handing
    /// standard cloud credentials to object_store's builders.
    pub fn vars_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.vars
            .iter()
            .filter(move |(k, v)| k.starts_with(prefix) && !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every set `BB_REMOTE_*` variable, for diagnostics.
    pub fn bb_remote_vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars
            .iter()
            .filter(|(k, v)| k.starts_with("BB_REMOTE_") && !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A `BB_REMOTE_*` value that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("invalid value {value:?} for {name}: expected {expected}")]
pub struct BadValue {
    pub name: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// argv as the OS gave it.
pub type Argv = Vec<OsString>;

/// What to do when the backend cannot be reached (transport errors, 5xx after retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Exit with [`crate::exit::BACKEND_UNAVAILABLE`]; the prover retries the job.
    Fail,
    /// Run the command on the native bb, with one warning line on stderr.
    Native,
}

/// The shim's settings: every `BB_REMOTE_*` value checked, no I/O.
#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: Option<url::Url>,
    pub store: Option<String>,
    pub image: String,
    pub fallback: Fallback,
    pub timeout: std::time::Duration,
}

/// Image named in TES tasks when `BB_REMOTE_IMAGE` is unset.
pub const DEFAULT_IMAGE: &str = "bb";
/// Longest wait for a delegated task when `BB_REMOTE_TIMEOUT` is unset (a root rollup
/// proof takes tens of minutes on a big machine).
pub const DEFAULT_TIMEOUT_SECS: u64 = 4 * 3600;

impl Settings {
    pub fn load(env: &Env) -> Result<Self, BadValue> {
        use crate::env_vars as v;
        let bad = |name: &'static str, value: &str, expected: &'static str| BadValue {
            name,
            value: value.to_owned(),
            expected,
        };
        let backend = match env.get(v::BACKEND) {
            None => None,
            Some(s) => Some(
                url::Url::parse(s)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| bad(v::BACKEND, s, "an http:// or https:// TES base URL"))?,
            ),
        };
        let fallback = match env.get(v::FALLBACK) {
            None | Some("fail") => Fallback::Fail,
            Some("native") => Fallback::Native,
            Some(s) => return Err(bad(v::FALLBACK, s, "`fail` or `native`")),
        };
        let timeout = match env.get(v::TIMEOUT) {
            None => std::time::Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            Some(s) => s
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .map(std::time::Duration::from_secs)
                .ok_or_else(|| bad(v::TIMEOUT, s, "a positive whole number of seconds"))?,
        };
        // Checked here so a bad value fails even in passthrough; logging reads it again.
        crate::logging::json_format(env)?;
        if backend.is_some() && env.get(v::STORE).is_none() {
            return Err(BadValue {
                name: v::STORE,
                value: String::new(),
                expected: "an object store URL (required when BB_REMOTE_BACKEND is set)",
            });
        }
        Ok(Self {
            backend,
            store: env.get(v::STORE).map(str::to_owned),
            image: env.get(v::IMAGE).unwrap_or(DEFAULT_IMAGE).to_owned(),
            fallback,
            timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env_vars as v;

    #[test]
    fn defaults_when_nothing_is_set() {
        let s = Settings::load(&Env::default()).unwrap();
        assert!(s.backend.is_none());
        assert_eq!(s.fallback, Fallback::Fail);
        assert_eq!(s.image, DEFAULT_IMAGE);
    }

    #[test]
    fn empty_is_unset() {
        let env = Env::from_pairs([(v::FALLBACK, ""), (v::BACKEND, "")]);
        assert_eq!(Settings::load(&env).unwrap().fallback, Fallback::Fail);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            (v::FALLBACK, "maybe"),
            (v::TIMEOUT, "10m"),
            (v::TIMEOUT, "0"),
            (v::LOG_FORMAT, "xml"),
            (v::BACKEND, "ftp://x"),
        ] {
            let err = Settings::load(&Env::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(err.name, name);
            assert!(err.to_string().contains(name) && err.to_string().contains(value));
        }
    }

    #[test]
    fn backend_requires_a_store() {
        let err =
            Settings::load(&Env::from_pairs([(v::BACKEND, "http://127.0.0.1:1")])).unwrap_err();
        assert_eq!(err.name, v::STORE);
    }
}

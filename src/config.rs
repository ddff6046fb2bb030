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
        Self::from_pairs(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))))
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// The value of `name`, or `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_owned(), value.into());
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

//! The shim's configuration: every `BB_REMOTE_*` variable parsed and validated here,
//! once, by [`Settings::load`], in every mode (passthrough included). Nothing else
//! reads `BB_REMOTE_*` values for their meaning; `bb-remote doctor` calls the same
//! loader. A bad value is a [`BadValue`] naming the variable (exit 78).
//!
//! Secrets: the token variables are never shown, and any URL printed by the shim goes
//! through [`Redacted`] (see `redact.rs`).

use std::path::PathBuf;
use std::time::Duration;

mod delegate_set;
mod remote_side;

pub use self::delegate_set::{DelegateSet, LEGACY_DEFAULT, MODERN_DEFAULT};
pub(crate) use self::remote_side::RemoteSide;
use crate::env_vars as v;
pub use crate::env_vars::Env;
use crate::grammar::Generation;
pub(crate) use crate::redact::Redacted;

/// A value that could not be accepted: a `BB_REMOTE_*` one, a `BB_*` variable
/// `BB_REMOTE_FORWARD_ENV` forwards, or a flag of the operator tool (`--cpus`). Exits
/// [`crate::exit::CONFIG`] from the shim and from `bb-remote` alike. Its display never
/// shows a secret: URL passwords are masked ([`Redacted`]); the values of
/// token variables and of `BB_*` variables not the shim's own are not shown, only names.
#[derive(Debug, thiserror::Error)]
#[error("invalid value{value} for {name}: expected {expected}", value = crate::redact::shown_value(name, value))]
pub struct BadValue {
    pub(crate) name: String,
    pub(crate) value: String,
    pub(crate) expected: String,
}

/// What to do when the backend cannot be reached (transport errors, 5xx after retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Fallback {
    /// Exit [`crate::exit::BACKEND_UNAVAILABLE`]; the prover retries the job.
    Fail,
    /// Run the command on the native bb, with one warning line on stderr.
    Native,
}

/// What replay does when no fixture matches (`BB_REMOTE_REPLAY_MISS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MissPolicy {
    /// Exit [`crate::exit::REPLAY_MISS`] naming the key and the nearest recorded invocation.
    Fail,
    /// Run the native bb.
    Native,
    /// Run it on the backend (`BB_REMOTE_BACKEND` must be set).
    Remote,
}

/// The shim's settings: every `BB_REMOTE_*` value checked, no I/O.
#[derive(Debug, Clone)]
pub struct Settings {
    /// TES base URL; `None`: nothing is delegated.
    pub(crate) backend: Option<url::Url>,
    /// Object store URL (scheme known to object_store, no query or fragment).
    pub(crate) store: Option<url::Url>,
    pub(crate) token: Option<String>,
    pub(crate) image: String,
    pub delegate: DelegateSet,
    /// `BB_REMOTE_GRAMMAR`: the grammar to parse argv with, instead of detecting it.
    pub(crate) grammar: Option<Generation>,
    pub(crate) fallback: Fallback,
    /// Bound on the whole delegated call (upload, lookup, create, wait, fetch).
    pub(crate) timeout: Duration,
    pub(crate) cpu_cores: Option<i32>,
    pub(crate) ram_gb: Option<f64>,
    pub(crate) record: Option<PathBuf>,
    pub(crate) replay: Option<PathBuf>,
    pub(crate) replay_miss: MissPolicy,
    pub(crate) log: LogSettings,
    /// The executor's bb, CRS and forwarded `BB_*` variables.
    pub(crate) remote_side: RemoteSide,
}

/// Image named in TES tasks when `BB_REMOTE_IMAGE` is unset.
pub(crate) const DEFAULT_IMAGE: &str = "bb";
/// Longest delegated call when `BB_REMOTE_TIMEOUT` is unset (a root rollup proof takes
/// tens of minutes on a big machine).
pub(crate) const DEFAULT_TIMEOUT_SECS: u64 = 4 * 3600;

pub(super) fn bad(name: &str, value: &str, expected: &str) -> BadValue {
    BadValue {
        name: name.to_owned(),
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

impl Settings {
    /// Parse and check every `BB_REMOTE_*` variable. Cheap (string comparisons and URL
    /// parses, no I/O), so passthrough calls it too.
    pub fn load(env: &Env) -> Result<Self, BadValue> {
        if let Some(name) = env.not_utf8().first() {
            return Err(bad(name, "<not UTF-8>", "a UTF-8 value"));
        }
        let backend = backend_url(env)?;
        let store = env.get(v::STORE).map(store_url).transpose()?;
        if backend.is_some() && store.is_none() {
            return Err(bad(
                v::STORE,
                "",
                "an object store URL (required when BB_REMOTE_BACKEND is set)",
            ));
        }
        // The native bb's variables are read by `native` (passthrough needs them before
        // anything else); here they are only checked.
        check_native(env, crate::native::can_load_libraries())?;
        let log = LogSettings::load(env)?;
        Ok(Self {
            backend,
            store,
            token: env.get(v::TOKEN).map(str::to_owned),
            image: env.get(v::IMAGE).unwrap_or(DEFAULT_IMAGE).to_owned(),
            delegate: DelegateSet::parse(env.get(v::DELEGATE))?,
            grammar: grammar(env.get(v::GRAMMAR))?,
            fallback: choice(
                env,
                v::FALLBACK,
                &[("fail", Fallback::Fail), ("native", Fallback::Native)],
            )?
            .unwrap_or(Fallback::Fail),
            timeout: match env.get(v::TIMEOUT) {
                None => Duration::from_secs(DEFAULT_TIMEOUT_SECS),
                Some(s) => s
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .map(Duration::from_secs)
                    .ok_or_else(|| bad(v::TIMEOUT, s, "a positive whole number of seconds"))?,
            },
            cpu_cores: match env.get(v::CPU_CORES) {
                None => None,
                Some(s) => Some(
                    s.parse::<i32>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| bad(v::CPU_CORES, s, "a positive whole number of cores"))?,
                ),
            },
            ram_gb: match env.get(v::RAM_GB) {
                None => None,
                Some(s) => Some(
                    s.parse::<f64>()
                        .ok()
                        .filter(|n| n.is_finite() && *n > 0.0)
                        .ok_or_else(|| bad(v::RAM_GB, s, "a positive number of GiB"))?,
                ),
            },
            record: env.get(v::RECORD).map(PathBuf::from),
            replay: env.get(v::REPLAY).map(PathBuf::from),
            replay_miss: choice(
                env,
                v::REPLAY_MISS,
                &[
                    ("fail", MissPolicy::Fail),
                    ("native", MissPolicy::Native),
                    ("remote", MissPolicy::Remote),
                ],
            )?
            .unwrap_or(MissPolicy::Fail),
            log,
            remote_side: RemoteSide::load(env)?,
        })
    }

    /// Pure passthrough: nothing to delegate, record or replay (argv is not parsed).
    pub(crate) fn is_passthrough(&self) -> bool {
        self.backend.is_none() && self.record.is_none() && self.replay.is_none()
    }

    /// The grammar hint for [`crate::grammar::parse`].
    pub fn grammar_hint(&self) -> crate::grammar::GrammarHint {
        match self.grammar {
            Some(g) => crate::grammar::GrammarHint::Env(g),
            None => crate::grammar::GrammarHint::Auto,
        }
    }
}

/// `BB_REMOTE_NATIVE_BIN` and `_LIB`: not both, and no library for a shim that cannot
/// load one (linked statically, see [`crate::native::can_load_libraries`]).
fn check_native(env: &Env, can_load_libraries: bool) -> Result<(), BadValue> {
    let Some(lib) = env.get(v::NATIVE_LIB) else {
        return Ok(());
    };
    if env.get(v::NATIVE_BIN).is_some() {
        return Err(bad(
            v::NATIVE_LIB,
            lib,
            "to be unset while BB_REMOTE_NATIVE_BIN is set (set only one)",
        ));
    }
    if !can_load_libraries {
        return Err(bad(
            v::NATIVE_LIB,
            lib,
            "to be unset: this bb is linked statically and cannot load a library; set \
             BB_REMOTE_NATIVE_BIN to the native bb executable, or use the dynamically \
             linked shim (`cargo build --release --bin bb`)",
        ));
    }
    Ok(())
}

/// `BB_REMOTE_BACKEND`: an http(s) URL the TES client can use (no query or fragment);
/// `None` when unset. doctor's backend check reads it through here too.
pub(crate) fn backend_url(env: &Env) -> Result<Option<url::Url>, BadValue> {
    let Some(value) = env.get(v::BACKEND) else {
        return Ok(None);
    };
    url::Url::parse(value)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .filter(|u| u.query().is_none() && u.fragment().is_none())
        .map(Some)
        .ok_or_else(|| {
            bad(
                v::BACKEND,
                value,
                "an http:// or https:// TES base URL without query or fragment",
            )
        })
}

/// One of a fixed set of words; `None` when unset.
fn choice<T: Copy>(
    env: &Env,
    name: &'static str,
    words: &[(&str, T)],
) -> Result<Option<T>, BadValue> {
    let Some(value) = env.get(name) else {
        return Ok(None);
    };
    if let Some((_, choice)) = words.iter().find(|(word, _)| *word == value) {
        return Ok(Some(*choice));
    }
    let listed: Vec<String> = words.iter().map(|(w, _)| format!("`{w}`")).collect();
    Err(BadValue {
        name: name.to_owned(),
        value: value.to_owned(),
        expected: listed.join(" or "),
    })
}

fn grammar(value: Option<&str>) -> Result<Option<Generation>, BadValue> {
    match value {
        None => Ok(None),
        Some("legacy") => Ok(Some(Generation::Legacy)),
        Some("modern") => Ok(Some(Generation::Modern)),
        Some(other) => Err(bad(v::GRAMMAR, other, "`legacy` or `modern`")),
    }
}

/// A store URL object_store can build a store for (the scheme is checked here; the
/// store itself is built only when delegating).
fn store_url(value: &str) -> Result<url::Url, BadValue> {
    const EXPECTED: &str =
        "an object store URL without query or fragment (s3://, gs://, az://, file:///, http(s)://)";
    let url = url::Url::parse(value).map_err(|_| bad(v::STORE, value, EXPECTED))?;
    let known = object_store::ObjectStoreScheme::parse(&url).is_ok();
    if !known || url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
        return Err(bad(v::STORE, value, EXPECTED));
    }
    Ok(url)
}

/// `BB_REMOTE_LOG` and `BB_REMOTE_LOG_FORMAT`, the part of the configuration the
/// worker reads too.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogSettings {
    /// The tracing filter text, checked; `None`: the caller's default.
    pub(crate) filter: Option<String>,
    pub(crate) json: bool,
}

impl LogSettings {
    pub(crate) fn load(env: &Env) -> Result<Self, BadValue> {
        Ok(Self {
            filter: env.get(v::LOG).map(log_filter).transpose()?,
            json: choice(env, v::LOG_FORMAT, &[("text", false), ("json", true)])?.unwrap_or(false),
        })
    }
}

fn log_filter(value: &str) -> Result<String, BadValue> {
    tracing_subscriber::EnvFilter::try_new(value)
        .map(|_| value.to_owned())
        .map_err(|_| {
            bad(
                v::LOG,
                value,
                "a tracing filter such as `debug` or `bb_remote=debug,info`",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_nothing_is_set() {
        let s = Settings::load(&Env::default()).unwrap();
        assert!(s.backend.is_none() && s.is_passthrough());
        assert_eq!(s.fallback, Fallback::Fail);
        assert_eq!(s.replay_miss, MissPolicy::Fail);
        assert_eq!(s.image, DEFAULT_IMAGE);
        assert_eq!(s.delegate, DelegateSet::Default);
    }

    #[test]
    fn empty_is_unset() {
        let env = Env::from_pairs([(v::FALLBACK, ""), (v::BACKEND, "")]);
        assert_eq!(Settings::load(&env).unwrap().fallback, Fallback::Fail);
    }

    #[test]
    fn every_variable_is_checked_in_one_place() {
        for (name, value) in [
            (v::FALLBACK, "maybe"),
            (v::TIMEOUT, "10m"),
            (v::TIMEOUT, "0"),
            (v::LOG_FORMAT, "xml"),
            (v::LOG, "bb_remote=loud["),
            (v::BACKEND, "ftp://x"),
            (v::BACKEND, "http://tes:8000/?x=1"),
            (v::BACKEND, "http://tes:8000/#f"),
            (v::STORE, "nope://bucket"),
            (v::STORE, "s3://bucket/p?x=1"),
            (v::STORE, "not a url"),
            (v::CPU_CORES, "many"),
            (v::CPU_CORES, "0"),
            (v::RAM_GB, "lots"),
            (v::RAM_GB, "NaN"),
            (v::DELEGATE, "prove,bogus"),
            (v::GRAMMAR, "old"),
            (v::REPLAY_MISS, "maybe"),
            (v::EXECUTOR_BB, "bin/bb"),
            (v::EXECUTOR_CRS, "relative/crs"),
            (v::FORWARD_ENV, "PATH"),
            (v::FORWARD_ENV, "BB_REMOTE_TOKEN"),
        ] {
            let err = Settings::load(&Env::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(err.name, name, "{name}={value}");
            let text = err.to_string();
            assert!(text.contains(name), "{text}");
        }
    }

    #[test]
    fn words_are_named_in_the_error() {
        let err = Settings::load(&Env::from_pairs([(v::REPLAY_MISS, "x")])).unwrap_err();
        assert_eq!(err.expected, "`fail` or `native` or `remote`");
        let env = Env::from_pairs([(v::REPLAY_MISS, "remote"), (v::LOG_FORMAT, "json")]);
        let s = Settings::load(&env).unwrap();
        assert!(s.log.json && s.replay_miss == MissPolicy::Remote);
    }

    #[test]
    fn backend_requires_a_store() {
        let err =
            Settings::load(&Env::from_pairs([(v::BACKEND, "http://127.0.0.1:1")])).unwrap_err();
        assert_eq!(err.name, v::STORE);
    }

    #[test]
    fn both_native_variables_conflict() {
        let env = Env::from_pairs([(v::NATIVE_BIN, "/bin/true"), (v::NATIVE_LIB, "/x.so")]);
        assert_eq!(Settings::load(&env).unwrap_err().name, v::NATIVE_LIB);
    }

    #[test]
    fn a_static_shim_refuses_a_library() {
        let env = Env::from_pairs([(v::NATIVE_LIB, "/x.so")]);
        assert!(check_native(&env, true).is_ok());
        let err = check_native(&env, false).unwrap_err();
        assert_eq!(err.name, v::NATIVE_LIB);
        assert!(err.expected.contains("statically"), "{err}");
        let env = Env::from_pairs([(v::NATIVE_BIN, "/bin/true")]);
        assert!(check_native(&env, false).is_ok());
    }

    #[test]
    fn values_that_are_not_utf8_are_errors() {
        let mut env = Env::from_pairs([(v::STORE, "file:///s")]);
        env.set_not_utf8(v::BACKEND);
        let err = Settings::load(&env).unwrap_err();
        assert_eq!(err.name, v::BACKEND);
        let mut env = Env::default();
        env.set_not_utf8("BB_REMOTE_SOMETHING");
        assert_eq!(
            Settings::load(&env).unwrap_err().name,
            "BB_REMOTE_SOMETHING"
        );
    }
}

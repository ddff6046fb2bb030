//! The checks that need no I/O: the `BB_REMOTE_*` variables and the delegated set.

use super::{Check, Status};
use crate::config::{Env, Redacted, Settings};
use crate::env_vars;
use crate::grammar::tables;
use crate::route::{DelegateSet, LEGACY_DEFAULT, MODERN_DEFAULT};

/// Variables whose values are secrets: reported as set or unset only.
const SECRETS: [&str; 2] = [env_vars::TOKEN, env_vars::WORKER_TOKEN];

/// `config`: what is set, where it came from, and whether [`Settings::load`] accepts it.
pub(crate) fn check_config(env: &Env) -> Check {
    // Values are shown only for known, non-secret variables: an unknown name may be a
    // misspelt token (`BB_REMOTE_TOKNE`), whose value must not be printed either.
    let known = |name: &str| env_vars::ALL.iter().any(|v| v.name == name);
    let mut details: Vec<String> = env
        .bb_remote_vars()
        .filter(|(name, _)| !SECRETS.contains(name))
        .map(|(name, value)| {
            if known(name) {
                format!("{name}={} (environment)", Redacted(value))
            } else {
                format!("{name}: set (environment; unknown, value not shown)")
            }
        })
        .collect();
    // The shim's token is always shown as set or unset; the worker's only when set.
    if env.get(env_vars::TOKEN).is_none() {
        details.push(format!("{}: unset", env_vars::TOKEN));
    }
    for secret in SECRETS.into_iter().filter(|s| env.get(s).is_some()) {
        details.push(format!("{secret}: set (environment; value hidden)"));
    }
    let unknown: Vec<&str> = env
        .bb_remote_vars()
        .map(|(name, _)| name)
        .filter(|name| !known(name))
        .collect();

    let settings = match Settings::load(env) {
        Ok(settings) => settings,
        Err(bad) => {
            return Check::new(
                "config",
                Status::Fail,
                format!("{bad} - set {} to a valid value", bad.name),
            )
            .with_details(details);
        }
    };
    let side = &settings.remote_side;
    details.push(format!(
        "remote side: bb {}; CRS {}; forwarded when set: {}",
        side.bb,
        side.crs
            .as_deref()
            .map_or("from the engine (no -c)".to_owned(), |c| format!("-c {c}")),
        if side.forward_env.is_empty() {
            "none".to_owned()
        } else {
            side.forward_env.join(",")
        }
    ));
    let mode = match (&settings.backend, env.get(env_vars::BACKEND)) {
        (Some(_), Some(url)) => format!("delegating to {}", Redacted(url)),
        _ => format!(
            "passthrough only ({} unset: every command runs on the native bb)",
            env_vars::BACKEND
        ),
    };
    if unknown.is_empty() {
        Check::new("config", Status::Ok, mode).with_details(details)
    } else {
        Check::new(
            "config",
            Status::Warn,
            format!(
                "{mode}; unknown variable(s) {} are ignored - a typo?",
                unknown.join(", ")
            ),
        )
        .with_details(details)
    }
}

/// `delegate`: the command names delegated in each grammar, after `BB_REMOTE_DELEGATE`.
pub(crate) fn check_delegate_set(env: &Env) -> Check {
    let settings = match Settings::load(env) {
        Ok(settings) => settings,
        Err(bad) if bad.name == env_vars::DELEGATE || bad.name == env_vars::GRAMMAR => {
            return Check::new(
                "delegate",
                Status::Fail,
                format!("{bad} - fix or unset {}", bad.name),
            );
        }
        Err(bad) => {
            return Check::new(
                "delegate",
                Status::Skip,
                format!("not checked: the configuration is invalid ({})", bad.name),
            );
        }
    };
    let set = settings.delegate;
    let (source, legacy, modern) = match &set {
        DelegateSet::Default => (
            "the default heavy set",
            LEGACY_DEFAULT.iter().map(|s| s.to_string()).collect(),
            MODERN_DEFAULT.iter().map(|s| s.to_string()).collect(),
        ),
        DelegateSet::Only(names) => (
            env_vars::DELEGATE,
            names
                .iter()
                .filter(|n| tables::legacy_command(n).is_some())
                .cloned()
                .collect(),
            names
                .iter()
                .filter(|n| tables::modern_command(n).is_some())
                .cloned()
                .collect::<Vec<String>>(),
        ),
    };
    let list = |names: &Vec<String>| {
        if names.is_empty() {
            "(none)".to_owned()
        } else {
            names.join(", ")
        }
    };
    let mut details = vec![
        format!("legacy (0.47-0.76): {}", list(&legacy)),
        format!("modern (0.77+): {}", list(&modern)),
    ];
    if modern.iter().any(|n| n == "prove") {
        details.push("modern `prove` is delegated only with scheme ultra_honk".to_owned());
    }
    if let Some(forced) = settings.grammar {
        details.push(format!(
            "grammar forced to {} by {}",
            forced.as_str(),
            env_vars::GRAMMAR
        ));
    }
    if settings.backend.is_none() {
        return Check::new(
            "delegate",
            Status::Skip,
            format!(
                "nothing is delegated: {} is unset; with it, {source} would be",
                env_vars::BACKEND
            ),
        )
        .with_details(details);
    }
    Check::new(
        "delegate",
        Status::Ok,
        format!(
            "{source}: {} legacy and {} modern command(s)",
            legacy.len(),
            modern.len()
        ),
    )
    .with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn tokens_are_shown_as_set_never_by_value() {
        let e = env(&[
            (env_vars::TOKEN, "s3cret-token"),
            (env_vars::BACKEND, "http://127.0.0.1:9"),
            (env_vars::STORE, "file:///tmp/x"),
        ]);
        let check = check_config(&e);
        assert_eq!(check.status, Status::Ok, "{check:?}");
        let all = format!("{} {}", check.summary, check.details.join("\n"));
        assert!(!all.contains("s3cret-token"), "{all}");
        assert!(
            all.contains("BB_REMOTE_TOKEN: set (environment; value hidden)"),
            "{all}"
        );
        assert!(!all.contains("BB_REMOTE_WORKER_TOKEN"), "{all}");
        assert!(
            all.contains("BB_REMOTE_STORE=file:///tmp/x (environment)"),
            "{all}"
        );
        assert!(check
            .summary
            .starts_with("delegating to http://127.0.0.1:9"));
        let check = check_config(&env(&[(env_vars::WORKER_TOKEN, "w0rker")]));
        let all = check.details.join("\n");
        assert!(!all.contains("w0rker"), "{all}");
        assert!(all.contains("BB_REMOTE_TOKEN: unset"), "{all}");
        assert!(
            all.contains("BB_REMOTE_WORKER_TOKEN: set (environment; value hidden)"),
            "{all}"
        );
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        let e = env(&[(env_vars::STORE, "https://user:pw123@example.com/bucket")]);
        let check = check_config(&e);
        let all = check.details.join("\n");
        assert!(!all.contains("pw123") && all.contains("user:***@"), "{all}");
    }

    #[test]
    fn bad_values_fail_naming_the_variable() {
        let check = check_config(&env(&[(env_vars::FALLBACK, "maybe")]));
        assert_eq!(check.status, Status::Fail);
        assert!(check.summary.contains("BB_REMOTE_FALLBACK"), "{check:?}");
        let check = check_config(&env(&[(env_vars::BACKEND, "http://h:1")]));
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.summary.contains("set BB_REMOTE_STORE"),
            "{}",
            check.summary
        );
    }

    #[test]
    fn unknown_names_are_a_warning_and_nothing_set_is_passthrough() {
        let check = check_config(&env(&[("BB_REMOTE_BACKED", "http://h")]));
        assert_eq!(check.status, Status::Warn);
        assert!(check.summary.contains("BB_REMOTE_BACKED"), "{check:?}");
        // A misspelt token: named, its value never printed.
        let check = check_config(&env(&[("BB_REMOTE_TOKNE", "s3cret-token")]));
        assert_eq!(check.status, Status::Warn);
        let all = format!("{} {}", check.summary, check.details.join("\n"));
        assert!(all.contains("BB_REMOTE_TOKNE"), "{all}");
        assert!(!all.contains("s3cret-token"), "{all}");
        let check = check_config(&Env::default());
        assert_eq!(check.status, Status::Ok);
        assert!(check.summary.starts_with("passthrough only"), "{check:?}");
    }

    #[test]
    fn delegate_set_per_grammar() {
        let check = check_delegate_set(&Env::default());
        assert_eq!(check.status, Status::Skip);
        assert!(check.summary.contains("BB_REMOTE_BACKEND is unset"));
        let e = env(&[
            (env_vars::BACKEND, "http://h:1"),
            (env_vars::STORE, "file:///s"),
            (env_vars::DELEGATE, "prove_tube,write_vk"),
        ]);
        let check = check_delegate_set(&e);
        assert_eq!(check.status, Status::Ok, "{check:?}");
        assert!(check.summary.starts_with("BB_REMOTE_DELEGATE"), "{check:?}");
        // prove_tube exists in both grammars (modern until 2.x); write_vk too.
        assert_eq!(check.details[0], "legacy (0.47-0.76): prove_tube, write_vk");
        let e = env(&[
            (env_vars::BACKEND, "http://h:1"),
            (env_vars::STORE, "file:///s"),
        ]);
        let check = check_delegate_set(&e);
        assert!(check.details[1].contains("prove, avm_prove"), "{check:?}");
    }

    #[test]
    fn bad_delegate_or_grammar_fails() {
        let check = check_delegate_set(&env(&[(env_vars::DELEGATE, "prove,bogus")]));
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.summary.contains("BB_REMOTE_DELEGATE") && check.summary.contains("bogus"),
            "{check:?}"
        );
        let check = check_delegate_set(&env(&[(env_vars::GRAMMAR, "new")]));
        assert_eq!(check.status, Status::Fail);
        assert!(check.summary.contains("BB_REMOTE_GRAMMAR"), "{check:?}");
    }
}

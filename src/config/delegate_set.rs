//! Which commands are delegated: the heavy set (docs/bb-grammar.md §3), or
//! `BB_REMOTE_DELEGATE`.

use super::BadValue;
use crate::env_vars;
use crate::grammar::{tables, Generation};
use std::collections::BTreeSet;

/// Legacy commands delegated by default: the provers an Aztec prover agent spends
/// its time on (0.47.1 - 0.76.4).
pub const LEGACY_DEFAULT: &[&str] = &[
    "prove_ultra_honk_output_all",
    "prove_ultra_keccak_honk_output_all",
    "prove_keccak_ultra_honk_output_all",
    "prove_ultra_rollup_honk_output_all",
    "prove_tube",
    "avm_prove",
    "avm2_prove",
];

/// Modern subcommands delegated by default. `prove` only with scheme `ultra_honk`
/// (the routing checks the scheme); `prove_tube` and `avm2_prove` exist in 0.77-2.x.
pub const MODERN_DEFAULT: &[&str] = &["prove", "avm_prove", "avm2_prove", "prove_tube"];

/// The set of command names to delegate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DelegateSet {
    /// [`LEGACY_DEFAULT`] / [`MODERN_DEFAULT`], by the invocation's grammar.
    Default,
    /// `BB_REMOTE_DELEGATE`: these names, in whichever grammar the argv is in.
    /// Empty for `none`.
    Only(BTreeSet<String>),
}

const EXPECTED: &str =
    "a comma-separated list of bb command names (e.g. `prove,avm_prove`), or `none`";

impl DelegateSet {
    /// The value of `BB_REMOTE_DELEGATE` (read by `config`); `None` means the default set.
    pub(crate) fn parse(raw: Option<&str>) -> Result<Self, BadValue> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Ok(Self::Default);
        };
        let bad = |value: &str| BadValue {
            name: env_vars::DELEGATE.to_owned(),
            value: value.to_owned(),
            expected: EXPECTED.to_owned(),
        };
        if raw.trim() == "none" {
            return Ok(Self::Only(BTreeSet::new()));
        }
        let mut names = BTreeSet::new();
        for name in raw.split(',').map(str::trim) {
            let known =
                tables::legacy_command(name).is_some() || tables::modern_command(name).is_some();
            if !known || name.starts_with('-') {
                return Err(bad(name));
            }
            names.insert(name.to_owned());
        }
        Ok(Self::Only(names))
    }

    pub(crate) fn contains(&self, generation: Generation, command: &str) -> bool {
        match self {
            Self::Default => match generation {
                Generation::Legacy => LEGACY_DEFAULT.contains(&command),
                Generation::Modern => MODERN_DEFAULT.contains(&command),
            },
            Self::Only(names) => names.contains(command),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(value: &str) -> Result<DelegateSet, BadValue> {
        DelegateSet::parse(Some(value))
    }

    #[test]
    fn default_sets_follow_the_grammar() {
        let d = set("").unwrap();
        assert!(d.contains(Generation::Legacy, "prove_tube"));
        assert!(d.contains(Generation::Modern, "prove"));
        assert!(!d.contains(Generation::Legacy, "prove"));
        assert!(!d.contains(Generation::Modern, "write_vk"));
    }

    #[test]
    fn an_explicit_list_replaces_the_default() {
        let d = set(" prove, write_vk ").unwrap();
        assert!(d.contains(Generation::Modern, "write_vk"));
        assert!(!d.contains(Generation::Modern, "avm_prove"));
        assert_eq!(set("none").unwrap(), DelegateSet::Only(BTreeSet::new()));
    }

    #[test]
    fn unknown_names_are_config_errors_naming_the_variable_and_the_name() {
        for bad in ["prove,bogus", "none,prove", "prove,,avm_prove", "--version"] {
            let err = set(bad).unwrap_err();
            assert_eq!(err.name, env_vars::DELEGATE, "{bad}");
            assert!(err.to_string().contains(env_vars::DELEGATE));
        }
        assert_eq!(set("prove,bogus").unwrap_err().value, "bogus");
    }
}

//! The vocabulary of bb's grammar tables: commands, the options they read, and what
//! each option's value means (input file, output, CRS, plain setting).
//!
//! The tables themselves live in `legacy_table.rs` and `modern_table.rs`; this file
//! only defines their shape, so a reader can learn the shape once and then read the
//! tables as data.

use serde::{Deserialize, Serialize};

/// Which of bb's two argv grammars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generation {
    /// Hand-written parser in `main.cpp`: barretenberg 0.47.1 - 0.76.4.
    Legacy,
    /// CLI11 subcommands: barretenberg 0.77 - 5.x.
    Modern,
}

impl Generation {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Generation::Legacy => "legacy",
            Generation::Modern => "modern",
        }
    }
}

/// One option as bb spells it.
#[derive(Debug, PartialEq, Eq)]
pub struct OptionSpec {
    /// Stable identifier, used by the routing code and in messages.
    pub(crate) id: &'static str,
    /// Every spelling bb accepts. Legacy: exact tokens. Modern: `-x` is a CLI11 short
    /// name, `--xyz` a long name; the first long name is the canonical one.
    pub(crate) names: &'static [&'static str],
    /// A value option reads the next token (or `=value` / `-xvalue` in CLI11).
    pub(crate) takes_value: bool,
    /// CLI11 environment fallback, used when the option is absent from argv.
    pub(crate) env: Option<&'static str>,
    /// Allowed values (CLI11 `check(IsMember)`); empty means any value.
    pub(crate) choices: &'static [&'static str],
}

impl OptionSpec {
    /// The long name used when the routing code has to write the option out itself.
    pub(crate) fn canonical_name(&self) -> &'static str {
        self.names
            .iter()
            .copied()
            .find(|n| n.starts_with("--"))
            .unwrap_or(self.names[0])
    }

    pub(crate) fn is_named(&self, token: &str) -> bool {
        self.names.contains(&token)
    }
}

/// How bb treats the output option (`-o`) of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// A directory bb writes several files into. Legacy bb never creates it (it must
    /// exist); modern `prove` and `write_vk` create it.
    Dir { created_by_bb: bool },
    /// A single artefact file; `-` means stdout.
    File,
}

/// What a command does with one option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// An input file. `role` names it in plans (`bytecode`, `witness`, ...).
    /// `unless_flag`: bb does not read the file when that flag is given (modern
    /// `prove --write_vk` does not read `-k`).
    Input {
        role: &'static str,
        unless_flag: Option<&'static str>,
    },
    /// Where the command writes.
    Output(OutputKind),
    /// A file written besides the main output (benchmark and trace dumps). A plan
    /// cannot bring it back, so its presence sends the command native.
    ExtraOutput,
    /// The CRS directory: dropped for the remote side, which owns its CRS.
    Crs,
    /// Anything else: kept as a literal token.
    Setting,
    /// A logging flag (`-v`, `-d`): kept, never changes what is computed.
    Logging,
}

/// One option a command reads, with bb's default for it.
#[derive(Debug, PartialEq, Eq)]
pub struct Reads {
    pub(crate) option: &'static OptionSpec,
    /// bb's default value; `None` when the option has none (flags, optional paths).
    /// Defaults such as `<-p>_fields.json` are derived by bb from another option.
    pub default: Option<&'static str>,
    pub(crate) usage: Use,
    /// Set when only some versions of the command read this option (e.g.
    /// `"0.47.1-0.61"`). A defaulted input read by some versions only is optional.
    pub(crate) versions: Option<&'static str>,
}

/// A file the command reads from inside its output directory without any flag
/// naming it (legacy and 0.77-2.x `prove_tube`).
#[derive(Debug, PartialEq, Eq)]
pub struct ImplicitInput {
    pub(crate) role: &'static str,
    pub(crate) file: &'static str,
    /// Versions that read it; `None` means every version of the command.
    pub(crate) versions: Option<&'static str>,
}

/// One command (legacy) or subcommand (modern).
#[derive(Debug, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: &'static str,
    pub(crate) generation: Generation,
    /// Release range that has this command, e.g. `"0.55.0-0.76.4"`.
    pub versions: &'static str,
    pub(crate) reads: &'static [Reads],
    pub(crate) implicit_inputs: &'static [ImplicitInput],
    /// Options are not modelled (nested subcommands such as `msgpack run`): only the
    /// command name is recognised, the rest is bb's business. Never delegated.
    pub opaque: bool,
}

impl CommandSpec {
    /// The entry for `token` among the options this command reads.
    pub fn reads_named(&self, token: &str) -> Option<&'static Reads> {
        self.reads.iter().find(|r| r.option.is_named(token))
    }

    pub(crate) fn reads_id(&self, id: &str) -> Option<&'static Reads> {
        self.reads.iter().find(|r| r.option.id == id)
    }

    /// The output option's entry, if the command has one.
    pub fn output(&self) -> Option<(&'static Reads, OutputKind)> {
        self.reads.iter().find_map(|r| match r.usage {
            Use::Output(kind) => Some((r, kind)),
            _ => None,
        })
    }
}

/// Shorthands for writing the tables.
pub(crate) const fn input(
    option: &'static OptionSpec,
    role: &'static str,
    default: &'static str,
) -> Reads {
    Reads {
        option,
        default: Some(default),
        usage: Use::Input {
            role,
            unless_flag: None,
        },
        versions: None,
    }
}

pub(crate) const fn setting(option: &'static OptionSpec) -> Reads {
    Reads {
        option,
        default: None,
        usage: Use::Setting,
        versions: None,
    }
}

pub(crate) const fn output_dir(
    option: &'static OptionSpec,
    default: &'static str,
    created_by_bb: bool,
) -> Reads {
    Reads {
        option,
        default: Some(default),
        usage: Use::Output(OutputKind::Dir { created_by_bb }),
        versions: None,
    }
}

pub(crate) const fn output_file(option: &'static OptionSpec, default: &'static str) -> Reads {
    Reads {
        option,
        default: Some(default),
        usage: Use::Output(OutputKind::File),
        versions: None,
    }
}

impl Reads {
    /// The same entry, read only by the given versions of the command.
    pub(crate) const fn only(self, versions: &'static str) -> Reads {
        Reads {
            versions: Some(versions),
            ..self
        }
    }

    pub(crate) const fn with_default(self, default: &'static str) -> Reads {
        Reads {
            default: Some(default),
            ..self
        }
    }

    pub(crate) const fn with_usage(self, usage: Use) -> Reads {
        Reads { usage, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: OptionSpec = OptionSpec {
        id: "output",
        names: &["-o", "--output_path"],
        takes_value: true,
        env: None,
        choices: &[],
    };

    #[test]
    fn canonical_name_prefers_the_long_spelling() {
        assert_eq!(OUT.canonical_name(), "--output_path");
        let short_only = OptionSpec {
            id: "x",
            names: &["-x"],
            takes_value: false,
            env: None,
            choices: &[],
        };
        assert_eq!(short_only.canonical_name(), "-x");
    }

    #[test]
    fn builders_keep_what_they_are_given() {
        let r = input(&OUT, "bytecode", "./a").only("0.1-0.2");
        assert_eq!(r.default, Some("./a"));
        assert_eq!(r.versions, Some("0.1-0.2"));
        assert!(matches!(
            r.usage,
            Use::Input {
                role: "bytecode",
                unless_flag: None
            }
        ));
        assert_eq!(
            output_dir(&OUT, "./o", true).usage,
            Use::Output(OutputKind::Dir {
                created_by_bb: true
            })
        );
    }
}

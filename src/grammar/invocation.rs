//! What a parse produces: a faithful account of how bb would read an argv.
//!
//! Nothing here decides where a command runs; that is `route`'s job.

use super::table::{CommandSpec, Generation, Reads};

/// A parsed bb argv (without argv[0]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub generation: Generation,
    /// Why this grammar was chosen.
    pub(crate) grammar_source: GrammarSource,
    /// The arguments after the program name (lossily converted if not UTF-8).
    pub(crate) args: Vec<String>,
    pub(crate) parsed: Parsed,
}

/// How the grammar was chosen; see `grammar::detect` for the detection rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrammarSource {
    /// `BB_REMOTE_GRAMMAR` forced it.
    Env,
    /// The caller's [`GrammarHint`](super::GrammarHint).
    Hint,
    /// Told apart from argv; the string says by what.
    Detected(&'static str),
}

/// The outcome of parsing, as bb would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// An argument is not valid UTF-8; only the native bb sees such argv.
    NotUtf8 { index: usize },
    /// No arguments (legacy: `No command provided.`, exit 1; modern: help, exit 0).
    NoCommand,
    /// Help or version output (`--version`, `-h`, `--help`, `--help-extended`).
    Informational { token: String },
    /// bb does not know the command (legacy: exit 1; modern: CLI11 exit 109).
    UnknownCommand { name: String },
    /// bb's parser would reject the argv with this exit code (CLI11 105/109/114).
    BbError { exit_code: u8, message: String },
    /// Valid for bb, but in a form this parser does not model (e.g. `--flag=value`).
    Unsupported { message: String },
    /// A command bb would run.
    Command(ParsedCommand),
}

/// A command bb would run, with every argument accounted for, in argv order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedCommand {
    pub(crate) spec: &'static CommandSpec,
    pub(crate) items: Vec<Item>,
    /// Values a CLI11 environment fallback supplied (modern only).
    pub(crate) from_env: Vec<EnvValue>,
    /// Legacy only: a token that bb reads both as an option name and as another
    /// option's value (e.g. `-o -b x`). Such argv cannot be rewritten safely.
    pub(crate) ambiguity: Option<String>,
}

/// One argv element (or, for CLI11's joined short flags, part of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// The command (legacy argv[1]) or the subcommand name.
    Command { index: usize },
    /// A flag, as spelled (`-v`, `--verbose_logging`; joined `-vd` gives two items).
    Flag {
        reads: &'static Reads,
        index: usize,
        spelled: String,
    },
    /// A value option and its value. `joined`: written as `--opt=value` or
    /// `-ovalue`. `effective`: the occurrence bb uses (legacy: the first).
    Value {
        reads: &'static Reads,
        index: usize,
        spelled: String,
        value: String,
        joined: bool,
        effective: bool,
    },
    /// An empty-string argument (legacy bb ignores it; the 0.63-0.67 client sends one).
    Empty { index: usize },
    /// A token legacy bb never looks at.
    Ignored {
        index: usize,
        token: String,
        why: Ignored,
    },
}

/// Why legacy bb ignores a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ignored {
    /// Not an option this command (or `main()`) reads.
    Unknown,
    /// A value option as the last token: bb uses the default.
    MissingValue,
}

/// A value taken from a CLI11 environment fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvValue {
    pub(crate) reads: &'static Reads,
    pub(crate) var: &'static str,
    pub(crate) value: String,
}

/// Where an option's effective value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effective<'a> {
    Argv(&'a str),
    Env { var: &'static str, value: &'a str },
    Default(&'static str),
    Absent,
}

impl<'a> Effective<'a> {
    pub(crate) fn value(self) -> Option<&'a str> {
        match self {
            Effective::Argv(v) | Effective::Env { value: v, .. } => Some(v),
            Effective::Default(v) => Some(v),
            Effective::Absent => None,
        }
    }
}

impl ParsedCommand {
    pub(crate) fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The value bb uses for the option with this id: argv, then env, then default.
    pub(crate) fn effective(&self, reads: &'static Reads) -> Effective<'_> {
        let from_argv = self.items.iter().find_map(|item| match item {
            Item::Value {
                reads: r,
                value,
                effective: true,
                ..
            } if r.option == reads.option => Some(value.as_str()),
            _ => None,
        });
        if let Some(v) = from_argv {
            return Effective::Argv(v);
        }
        if let Some(e) = self
            .from_env
            .iter()
            .find(|e| e.reads.option == reads.option)
        {
            return Effective::Env {
                var: e.var,
                value: &e.value,
            };
        }
        reads.default.map_or(Effective::Absent, Effective::Default)
    }

    /// Whether the flag with this option id is given.
    pub(crate) fn flag(&self, id: &str) -> bool {
        self.items
            .iter()
            .any(|item| matches!(item, Item::Flag { reads, .. } if reads.option.id == id))
    }

    /// Tokens bb would ignore because it does not know them.
    pub(crate) fn unknown_tokens(&self) -> impl Iterator<Item = &str> {
        self.items.iter().filter_map(|item| match item {
            Item::Ignored {
                token,
                why: Ignored::Unknown,
                ..
            } => Some(token.as_str()),
            _ => None,
        })
    }
}

//! bb's argv grammars as data, and a faithful parse of an argv with no I/O.
//!
//! Two generations (docs/bb-grammar.md §1):
//! - **legacy** (0.47.1 - 0.76.4): the command is argv[1]; options are exact tokens
//!   looked up anywhere after it, first occurrence wins; unknown and empty tokens are
//!   ignored. Table: `legacy_table.rs`; parser: `legacy.rs`.
//! - **modern** (CLI11, 0.77 - 5.x): subcommands, long/short forms, `--opt=value`,
//!   joined flags, env fallbacks (`BB_SCHEME`, `BB_VERIFIER_TARGET`); CLI11's parse
//!   errors (105, 109, 114) are represented as [`Parsed::BbError`], not raised. Table:
//!   `modern_table.rs`; parser: `modern.rs`.
//!
//! [`parse`] picks the grammar (`BB_REMOTE_GRAMMAR`, a [`GrammarHint`], or the
//! detection rule documented in `detect.rs`) and returns an [`Invocation`]. What to
//! do with it is decided by [`crate::route`].
//!
//! Not for: deciding where a command runs, reading files, or printing bb's errors
//! (the native bb prints its own).

mod detect;
mod invocation;
mod legacy;
mod legacy_table;
mod modern;
mod modern_table;
pub(crate) mod msgpack_run;
mod table;

pub use detect::{detect, parse, GrammarHint};
pub(crate) use invocation::{Effective, Ignored, Invocation, Item, Parsed, ParsedCommand};
pub use table::{CommandSpec, Generation, ImplicitInput, OptionSpec, OutputKind, Reads, Use};

/// The command tables, for documentation and for checking names (`BB_REMOTE_DELEGATE`).
pub mod tables {
    pub use super::legacy_table::{
        command as legacy_command, COMMANDS as LEGACY, GLOBAL as LEGACY_GLOBAL,
    };
    pub use super::modern_table::{
        command as modern_command, COMMANDS as MODERN, TOP_LEVEL as MODERN_TOP_LEVEL,
    };
}

/// bb's CRS option, for code that writes or strips one in an argv itself (the task's
/// executor CRS, the worker's own CRS): `-c` in both grammars, `--crs_path` too in the
/// modern one.
pub(crate) fn crs_option() -> &'static OptionSpec {
    &modern_table::CRS
}

/// `--version` (both grammars), for asking a native bb its version.
pub(crate) const VERSION_FLAG: &str = modern_table::VERSION.names[0];

/// Test argv from a space-separated line; `''` stands for an empty argument (as the
/// 0.63-0.67 clients send).
#[cfg(test)]
pub(crate) fn test_argv(line: &str) -> Vec<String> {
    line.split(' ')
        .map(|s| {
            if s == "''" {
                String::new()
            } else {
                s.to_owned()
            }
        })
        .collect()
}

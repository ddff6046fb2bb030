//! Which grammar an argv is written in, and the one `parse` entry point.
//!
//! Precedence: the caller's hint (`BB_REMOTE_GRAMMAR`, read by `config`, arrives as
//! [`GrammarHint::Env`]) > detection from argv. Detection:
//!
//! 1. The command is the first token that is not an option (skipping the value of a
//!    leading `-c`/`--crs_path`). If argv starts with an option, the argv is modern:
//!    legacy bb would take that option as its (unknown) command, and modern bb accepts
//!    `-v prove ...`. The one exception is a legacy-only command after it, where legacy
//!    bb's `Unknown command` is the faithful answer.
//! 2. A command only legacy bb has (`*_output_all`, `prove_ultra_honk`, ...) is legacy;
//!    one only modern bb has (`check`, `write_solidity_verifier`, ...) is modern.
//! 3. A name both have (`prove`, `verify`, `write_vk`, `gates`, `avm_prove`,
//!    `avm_verify`, `avm2_*`) is legacy if a legacy marker is present: an empty-string
//!    argument that is not an option's value (the 0.63-0.67 client sends a trailing
//!    `''`; CLI11 rejects it), `--recursive`,
//!    `--input_type`, `--output_type`, `--avm-bytecode`, `--avm-calldata`,
//!    `--avm-hints` or `--avm-dump-trace`. Otherwise modern: the Aztec prover never
//!    asks legacy bb for a plain `prove` (UltraPlonk).
//! 4. `prove_tube` is in both (0.47-0.76 and 0.77-2.x): modern if `-k` or `--vk_path`
//!    is given (the modern client always passes it, legacy never), else legacy.
//! 5. No command at all: modern (`bb`, `bb --version`, `bb -h` go native either way).

use super::invocation::{GrammarSource, Invocation, Parsed};
use super::table::Generation;
use super::{legacy, legacy_table, modern, modern_table};
use crate::env_vars::Env;
use std::ffi::OsString;

/// What the caller already knows about the bb it fronts (e.g. from its version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GrammarHint {
    /// Tell the grammars apart from argv.
    #[default]
    Auto,
    /// The caller knows the grammar (e.g. from the bb version it fronts).
    Force(Generation),
    /// The operator forced it with `BB_REMOTE_GRAMMAR`.
    Env(Generation),
}

const LEGACY_MARKERS: &[&str] = &[
    "--recursive",
    "--input_type",
    "--output_type",
    "--avm-bytecode",
    "--avm-calldata",
    "--avm-hints",
    "--avm-dump-trace",
];

/// Parse bb's argv (without the program name). No I/O. `env` supplies bb's own
/// environment fallbacks (`BB_SCHEME`, ...).
pub fn parse(argv: &[OsString], env: &Env, hint: GrammarHint) -> Invocation {
    let args: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (generation, grammar_source) = match hint {
        GrammarHint::Env(g) => (g, GrammarSource::Env),
        GrammarHint::Force(g) => (g, GrammarSource::Hint),
        GrammarHint::Auto => {
            let (g, why) = detect(&args);
            (g, GrammarSource::Detected(why))
        }
    };
    let parsed = match argv.iter().position(|a| a.to_str().is_none()) {
        Some(index) => Parsed::NotUtf8 { index },
        None => match generation {
            Generation::Legacy => legacy::parse(&args),
            Generation::Modern => modern::parse(&args, env),
        },
    };
    Invocation {
        generation,
        grammar_source,
        args,
        parsed,
    }
}

/// The detection rule of the module docs; returns the grammar and why.
pub fn detect(args: &[String]) -> (Generation, &'static str) {
    let Some(pos) = command_position(args) else {
        return (Generation::Modern, "no command");
    };
    let name = args[pos].as_str();
    let (in_legacy, in_modern) = (
        legacy_table::command(name).is_some(),
        modern_table::command(name).is_some(),
    );
    match (in_legacy, in_modern) {
        (true, false) => (Generation::Legacy, "legacy-only command"),
        _ if pos > 0 => (Generation::Modern, "option before the command"),
        (false, true) => (Generation::Modern, "modern-only command"),
        (false, false) => (Generation::Modern, "unknown command"),
        (true, true) if name == "prove_tube" => {
            if args.iter().any(|a| a == "-k" || a == "--vk_path") {
                (Generation::Modern, "prove_tube with -k")
            } else {
                (Generation::Legacy, "prove_tube without -k")
            }
        }
        (true, true) if has_legacy_marker(args) => (Generation::Legacy, "legacy marker argument"),
        (true, true) => (Generation::Modern, "shared command without legacy markers"),
    }
}

/// A legacy marker token, or a standalone empty argument: one not right after an
/// option token, where it would be that option's (empty) value in both grammars.
fn has_legacy_marker(args: &[String]) -> bool {
    let standalone_empty = |i: usize| {
        args[i].is_empty() && (i == 0 || !args[i - 1].starts_with('-') || args[i - 1].len() < 2)
    };
    (0..args.len()).any(|i| LEGACY_MARKERS.contains(&args[i].as_str()) || standalone_empty(i))
}

fn command_position(args: &[String]) -> Option<usize> {
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-c" | "--crs_path" => i += 2,
            a if a.starts_with('-') => i += 1,
            _ => return Some(i),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detected(line: &str) -> Generation {
        let args = crate::grammar::test_argv(line);
        detect(&args).0
    }

    #[test]
    fn detection_rule() {
        use Generation::{Legacy, Modern};
        for (line, want) in [
            ("prove_ultra_honk_output_all -o x", Legacy),
            ("-v prove_ultra_honk_output_all", Legacy),
            ("prove_tube -o /t -v", Legacy),
            ("prove_tube -o /t -k /vk -v", Modern),
            ("prove -b x", Modern),
            ("prove -b x --recursive", Legacy),
            ("write_vk -b x ''", Legacy),
            ("prove -b '' -o x", Modern),
            ("avm_prove --avm-hints h -o /t", Legacy),
            ("avm_prove --avm-inputs i -o /t", Modern),
            ("-c /crs -v prove", Modern),
            ("write_solidity_verifier", Modern),
            ("--version", Modern),
            ("", Modern),
        ] {
            assert_eq!(detected(line), want, "{line}");
        }
    }

    #[test]
    fn a_hint_forces_a_grammar_and_says_where_it_came_from() {
        let argv: Vec<OsString> = vec!["prove".into()];
        let env = Env::default();
        assert_eq!(
            parse(&argv, &env, GrammarHint::Auto).generation,
            Generation::Modern
        );
        let forced = parse(&argv, &env, GrammarHint::Env(Generation::Legacy));
        assert_eq!(forced.generation, Generation::Legacy);
        assert_eq!(forced.grammar_source, GrammarSource::Env);
        let hinted = parse(&argv, &env, GrammarHint::Force(Generation::Legacy));
        assert_eq!(hinted.grammar_source, GrammarSource::Hint);
    }

    #[test]
    fn non_utf8_argv_is_flagged() {
        use std::os::unix::ffi::OsStringExt;
        let argv = vec![
            OsString::from("prove"),
            OsString::from_vec(vec![0xff, 0xfe]),
        ];
        let inv = parse(&argv, &Env::default(), GrammarHint::Auto);
        assert_eq!(inv.parsed, Parsed::NotUtf8 { index: 1 });
    }
}

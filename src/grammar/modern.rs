//! The modern parser: the subset of CLI11's rules that bb's `cli.cpp` exercises.
//!
//! * Before the subcommand only top-level options are known (help, version, `-v`,
//!   `-d`, `-c`); the first positional token is the subcommand (at most one).
//! * `--long value`, `--long=value`, `-s value`, `-svalue`, and joined short flags
//!   (`-vd`, `-vbfile`). A value option takes the next token whatever it is (so
//!   `-o -` and `-b --x` give the values `-` and `--x`); missing at the end is 114.
//! * A value option given twice in one scope: 114. Repeated flags are fine.
//! * An empty-string argument, an unknown option or subcommand, or any positional
//!   after the subcommand: 109.
//! * A value outside an option's choices (also from its env fallback): 105.
//! * Help and version stop the parse (bb prints and exits 0), as CLI11's CallForHelp.
//!
//! CLI11's `ExistingDirectory` check on `-c` needs I/O and is not replicated.

use super::invocation::{EnvValue, Item, Parsed, ParsedCommand};
use super::modern_table::{command, TOP_LEVEL};
use super::table::{CommandSpec, Reads};
use crate::env_vars::Env;

/// CLI11 exit codes bb can end with while parsing.
pub(crate) const VALIDATION_ERROR: u8 = 105;
pub(crate) const EXTRAS_ERROR: u8 = 109;
pub(crate) const ARGUMENT_MISMATCH: u8 = 114;

/// Parse `args` (bb's argv without the program name) as CLI11 would.
pub(super) fn parse(args: &[String], env: &Env) -> Parsed {
    if args.is_empty() {
        return Parsed::NoCommand;
    }
    let mut parser = Parser {
        args,
        spec: None,
        items: Vec::new(),
        seen: Vec::new(),
    };
    if let Err(stop) = parser.run() {
        return stop;
    }
    let Some(spec) = parser.spec else {
        // Only top-level flags: bb has nothing to run and prints its help.
        return Parsed::NoCommand;
    };
    match env_fallbacks(spec, &parser.items, env) {
        Ok(from_env) => Parsed::Command(ParsedCommand {
            spec,
            items: parser.items,
            from_env,
            ambiguity: None,
        }),
        Err(stop) => stop,
    }
}

struct Parser<'a> {
    args: &'a [String],
    spec: Option<&'static CommandSpec>,
    items: Vec<Item>,
    /// Value options already given in the current scope (subcommand or top level).
    seen: Vec<(bool, &'static str)>,
}

fn bb_error(exit_code: u8, message: String) -> Parsed {
    Parsed::BbError { exit_code, message }
}

fn not_expected(token: &str) -> Parsed {
    bb_error(
        EXTRAS_ERROR,
        format!("The following argument was not expected: {token:?}"),
    )
}

impl Parser<'_> {
    fn scope(&self) -> &'static [Reads] {
        self.spec.map_or(TOP_LEVEL, |s| s.reads)
    }

    fn find(&self, name: &str) -> Result<&'static Reads, Parsed> {
        // CLI11 gives every subcommand its own `-h/--help` (and bb its `--help-extended`).
        let help = || {
            TOP_LEVEL
                .iter()
                .find(|r| r.option.id.starts_with("help") && r.option.is_named(name))
        };
        self.scope()
            .iter()
            .find(|r| r.option.is_named(name))
            .or_else(help)
            .ok_or_else(|| not_expected(name))
    }

    fn run(&mut self) -> Result<(), Parsed> {
        let mut i = 0;
        while i < self.args.len() {
            if self.spec.is_some_and(|s| s.opaque) {
                return Ok(()); // the rest belongs to a nested grammar we do not model
            }
            let token = &self.args[i];
            i = if token == "--" {
                match self.args.get(i + 1) {
                    Some(extra) => return Err(not_expected(extra)),
                    None => i + 1,
                }
            } else if let Some(long) = token.strip_prefix("--").filter(|l| !l.is_empty()) {
                self.long(i, long)?
            } else if token.len() > 1 && token.starts_with('-') {
                self.short_cluster(i)?
            } else {
                self.positional(i)?
            };
        }
        Ok(())
    }

    fn positional(&mut self, i: usize) -> Result<usize, Parsed> {
        let token = &self.args[i];
        if self.spec.is_some() || token.is_empty() {
            return Err(not_expected(token));
        }
        let spec = command(token).ok_or_else(|| Parsed::UnknownCommand {
            name: token.clone(),
        })?;
        self.spec = Some(spec);
        self.items.push(Item::Command { index: i });
        Ok(i + 1)
    }

    /// `--name`, `--name value` or `--name=value`.
    fn long(&mut self, i: usize, long: &str) -> Result<usize, Parsed> {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (format!("--{n}"), Some(v.to_owned())),
            None => (format!("--{long}"), None),
        };
        let reads = self.find(&name)?;
        if !reads.option.takes_value {
            if inline.is_some() {
                return Err(Parsed::Unsupported {
                    message: format!("flag given a value: {}", self.args[i]),
                });
            }
            return self.flag(reads, i, name).map(|()| i + 1);
        }
        match inline {
            Some(value) => self.value(reads, i, name, value, true).map(|()| i + 1),
            None => self.value_from_next(reads, i, name),
        }
    }

    /// `-v`, `-vd`, `-bfile`, `-vb file`.
    fn short_cluster(&mut self, i: usize) -> Result<usize, Parsed> {
        let cluster = &self.args[i][1..];
        for (at, c) in cluster.char_indices() {
            let name = format!("-{c}");
            let reads = self.find(&name)?;
            if !reads.option.takes_value {
                self.flag(reads, i, name)?;
                continue;
            }
            let rest = &cluster[at + c.len_utf8()..];
            if rest.starts_with('=') {
                return Err(Parsed::Unsupported {
                    message: format!("short option with `=`: {}", self.args[i]),
                });
            }
            if rest.is_empty() {
                return self.value_from_next(reads, i, name);
            }
            return self
                .value(reads, i, name, rest.to_owned(), true)
                .map(|()| i + 1);
        }
        Ok(i + 1)
    }

    fn flag(&mut self, reads: &'static Reads, index: usize, spelled: String) -> Result<(), Parsed> {
        if matches!(reads.option.id, "help" | "help_extended" | "version") {
            return Err(Parsed::Informational { token: spelled });
        }
        self.items.push(Item::Flag {
            reads,
            index,
            spelled,
        });
        Ok(())
    }

    fn value_from_next(
        &mut self,
        reads: &'static Reads,
        i: usize,
        name: String,
    ) -> Result<usize, Parsed> {
        let Some(value) = self.args.get(i + 1) else {
            return Err(bb_error(
                ARGUMENT_MISMATCH,
                format!("{name}: 1 required argument missing"),
            ));
        };
        self.value(reads, i, name, value.clone(), false)
            .map(|()| i + 2)
    }

    fn value(
        &mut self,
        reads: &'static Reads,
        index: usize,
        spelled: String,
        value: String,
        joined: bool,
    ) -> Result<(), Parsed> {
        let key = (self.spec.is_some(), reads.option.id);
        if self.seen.contains(&key) {
            return Err(bb_error(
                ARGUMENT_MISMATCH,
                format!("{spelled}: given more than once"),
            ));
        }
        self.seen.push(key);
        check_choice(reads, &value, &spelled)?;
        self.items.push(Item::Value {
            reads,
            index,
            spelled,
            value,
            joined,
            effective: true,
        });
        Ok(())
    }
}

fn check_choice(reads: &Reads, value: &str, source: &str) -> Result<(), Parsed> {
    let choices = reads.option.choices;
    if choices.is_empty() || choices.contains(&value) {
        return Ok(());
    }
    Err(bb_error(
        VALIDATION_ERROR,
        format!("{source}: {value} not in {{{}}}", choices.join(",")),
    ))
}

/// Values CLI11 takes from the environment for options absent from argv.
fn env_fallbacks(spec: &CommandSpec, items: &[Item], env: &Env) -> Result<Vec<EnvValue>, Parsed> {
    let given = |reads: &Reads| {
        items
            .iter()
            .any(|it| matches!(it, Item::Value { reads: r, .. } if r.option == reads.option))
    };
    let mut found = Vec::new();
    for reads in spec.reads.iter().filter(|r| !given(r)) {
        let Some(var) = reads.option.env else {
            continue;
        };
        let Some(value) = env.get(var) else { continue };
        check_choice(reads, value, var)?;
        found.push(EnvValue {
            reads,
            var,
            value: value.to_owned(),
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::Effective;

    fn run(line: &str, env: &[(&str, &str)]) -> Parsed {
        let args = crate::grammar::test_argv(line);
        parse(&args, &Env::from_pairs(env.iter().copied()))
    }

    fn command_of(line: &str) -> ParsedCommand {
        match run(line, &[]) {
            Parsed::Command(c) => c,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn value(c: &ParsedCommand, id: &str) -> Option<String> {
        c.effective(c.spec.reads_id(id).unwrap())
            .value()
            .map(str::to_owned)
    }

    fn exit_code(p: Parsed) -> u8 {
        match p {
            Parsed::BbError { exit_code, .. } => exit_code,
            other => panic!("expected a bb error, got {other:?}"),
        }
    }

    #[test]
    fn every_value_spelling_gives_the_same_value() {
        for line in [
            "prove -b x",
            "prove --bytecode_path x",
            "prove --bytecode_path=x",
            "prove -bx",
            "prove -vbx",
        ] {
            assert_eq!(
                value(&command_of(line), "bytecode").as_deref(),
                Some("x"),
                "{line}"
            );
        }
    }

    #[test]
    fn joined_short_flags_and_flags_before_the_subcommand() {
        let c = command_of("-v prove -vd");
        assert!(c.flag("verbose") && c.flag("debug"));
        assert_eq!(
            c.items
                .iter()
                .filter(|i| matches!(i, Item::Flag { .. }))
                .count(),
            3
        );
    }

    #[test]
    fn values_are_taken_whatever_they_look_like() {
        assert_eq!(
            value(&command_of("prove -o -"), "output").as_deref(),
            Some("-")
        );
        assert_eq!(
            value(&command_of("prove -b --x"), "bytecode").as_deref(),
            Some("--x")
        );
    }

    #[test]
    fn cli11_errors_carry_cli11_exit_codes() {
        assert_eq!(exit_code(run("prove -b a -b b", &[])), ARGUMENT_MISMATCH);
        assert_eq!(exit_code(run("prove -b", &[])), ARGUMENT_MISMATCH);
        assert_eq!(exit_code(run("prove ''", &[])), EXTRAS_ERROR);
        assert_eq!(exit_code(run("prove --nope", &[])), EXTRAS_ERROR);
        assert_eq!(exit_code(run("prove stray", &[])), EXTRAS_ERROR);
        assert_eq!(exit_code(run("-b x prove", &[])), EXTRAS_ERROR);
        assert_eq!(exit_code(run("prove --scheme foo", &[])), VALIDATION_ERROR);
        assert_eq!(
            exit_code(run("prove", &[("BB_SCHEME", "foo")])),
            VALIDATION_ERROR
        );
        assert_eq!(
            run("contract_ultra_honk", &[]),
            Parsed::UnknownCommand {
                name: "contract_ultra_honk".into()
            }
        );
    }

    #[test]
    fn env_fallback_applies_only_when_the_option_is_absent() {
        let Parsed::Command(c) = run("prove", &[("BB_SCHEME", "chonk")]) else {
            panic!()
        };
        let reads = c.spec.reads_id("scheme").unwrap();
        assert_eq!(
            c.effective(reads),
            Effective::Env {
                var: "BB_SCHEME",
                value: "chonk"
            }
        );
        let Parsed::Command(c) = run("prove -s ultra_honk", &[("BB_SCHEME", "chonk")]) else {
            panic!()
        };
        assert_eq!(c.effective(reads), Effective::Argv("ultra_honk"));
        assert_eq!(
            value(&command_of("prove"), "scheme").as_deref(),
            Some("ultra_honk")
        );
    }

    #[test]
    fn help_and_version_stop_the_parse() {
        for line in ["--version", "prove -h", "prove --help", "-h prove --nope"] {
            assert!(
                matches!(run(line, &[]), Parsed::Informational { .. }),
                "{line}"
            );
        }
        assert_eq!(run("-v", &[]), Parsed::NoCommand);
    }

    #[test]
    fn flags_with_values_are_not_modelled() {
        assert!(matches!(
            run("prove --write_vk=true", &[]),
            Parsed::Unsupported { .. }
        ));
    }

    #[test]
    fn opaque_subcommands_keep_their_own_arguments() {
        let c = command_of("msgpack run -i sock");
        assert!(c.spec.opaque);
    }
}

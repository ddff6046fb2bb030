//! The legacy parser (barretenberg 0.47.1 - 0.76.4), as loose as bb's own.
//!
//! bb's `main()` takes argv[1] as the command, whatever it is (`bb -v --version` is
//! the unknown command `-v`), then looks options up by exact token anywhere after
//! it: `flag_present` is true if the token appears, `get_option` returns the token
//! after the *first* occurrence, whatever it is, or the default if the option is
//! missing or last. There is no `--opt=value`, no joined flags and no `--`. Tokens
//! nobody asks for, including empty strings, are ignored.
//!
//! Because bb never consumes tokens, a token can be both an option name and
//! another option's value (`-o -b x`: bb writes to `-b` *and* reads bytecode from
//! `x`). The parse records that as an ambiguity instead of guessing.

use super::invocation::{Ignored, Item, Parsed, ParsedCommand};
use super::legacy_table::{command, GLOBAL};
use super::table::{CommandSpec, Reads};

/// Parse `args` (bb's argv without the program name) the way legacy `main()` does.
pub(super) fn parse(args: &[String]) -> Parsed {
    let Some(name) = args.first() else {
        return Parsed::NoCommand;
    };
    let Some(spec) = command(name) else {
        return Parsed::UnknownCommand { name: name.clone() };
    };
    if spec.name == "--version" {
        return Parsed::Informational {
            token: name.clone(),
        };
    }
    let items = classify(spec, args);
    let ambiguity = find_ambiguity(spec, args);
    Parsed::Command(ParsedCommand {
        spec,
        items,
        from_env: Vec::new(),
        ambiguity,
    })
}

/// The option entry bb would use for `token` in this command, if any.
fn lookup(spec: &CommandSpec, token: &str) -> Option<&'static Reads> {
    spec.reads_named(token)
        .or_else(|| GLOBAL.iter().find(|r| r.option.is_named(token)))
}

/// Walk argv left to right, pairing each value option with the token after it.
/// Matches bb's lookups exactly whenever [`find_ambiguity`] finds nothing.
fn classify(spec: &CommandSpec, args: &[String]) -> Vec<Item> {
    let mut items = vec![Item::Command { index: 0 }];
    let mut seen = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let token = &args[i];
        let Some(reads) = lookup(spec, token).filter(|_| !token.is_empty()) else {
            items.push(if token.is_empty() {
                Item::Empty { index: i }
            } else {
                Item::Ignored {
                    index: i,
                    token: token.clone(),
                    why: Ignored::Unknown,
                }
            });
            i += 1;
            continue;
        };
        if !reads.option.takes_value {
            items.push(Item::Flag {
                reads,
                index: i,
                spelled: token.clone(),
            });
            i += 1;
        } else if let Some(value) = args.get(i + 1) {
            let effective = !seen.contains(&reads.option.id);
            seen.push(reads.option.id);
            let spelled = token.clone();
            items.push(Item::Value {
                reads,
                index: i,
                spelled,
                value: value.clone(),
                joined: false,
                effective,
            });
            i += 2;
        } else {
            items.push(Item::Ignored {
                index: i,
                token: token.clone(),
                why: Ignored::MissingValue,
            });
            i += 1;
        }
    }
    items
}

/// A token that bb's lookups read both as an option name and as a value.
fn find_ambiguity(spec: &CommandSpec, args: &[String]) -> Option<String> {
    let value_options = spec
        .reads
        .iter()
        .chain(GLOBAL.iter())
        .filter(|r| r.option.takes_value);
    for reads in value_options {
        let name = reads.option.names[0];
        let Some(pos) = args.iter().skip(1).position(|t| t == name).map(|p| p + 1) else {
            continue;
        };
        if let Some(value) = args.get(pos + 1) {
            if lookup(spec, value).is_some() {
                return Some(format!(
                    "the value of `{name}` is `{value}`, which bb also reads as an option"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::grammar::test_argv as args;

    fn command_of(line: &str) -> ParsedCommand {
        match parse(&args(line)) {
            Parsed::Command(c) => c,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn value(c: &ParsedCommand, id: &str) -> Option<String> {
        let reads = c
            .spec
            .reads_id(id)
            .or_else(|| GLOBAL.iter().find(|r| r.option.id == id))
            .unwrap();
        c.effective(reads).value().map(str::to_owned)
    }

    #[test]
    fn first_occurrence_wins_and_defaults_fill_the_rest() {
        let c = command_of("prove_ultra_honk_output_all -b a -b b -v");
        assert_eq!(value(&c, "bytecode").as_deref(), Some("a"));
        assert_eq!(value(&c, "witness").as_deref(), Some("./target/witness.gz"));
        assert_eq!(value(&c, "output").as_deref(), Some("./proofs"));
        assert!(c.flag("verbose"));
        assert!(c.ambiguity.is_none());
    }

    #[test]
    fn a_value_option_as_last_token_takes_the_default() {
        let c = command_of("prove_tube -v -o");
        assert_eq!(value(&c, "output").as_deref(), Some("./target"));
        assert!(matches!(
            c.items.last(),
            Some(Item::Ignored {
                why: Ignored::MissingValue,
                ..
            })
        ));
    }

    #[test]
    fn empty_and_unknown_tokens_are_ignored() {
        let c = command_of("avm_prove '' --nonsense -o /t");
        assert!(matches!(c.items[1], Item::Empty { index: 1 }));
        assert_eq!(c.unknown_tokens().collect::<Vec<_>>(), ["--nonsense"]);
        assert_eq!(value(&c, "output").as_deref(), Some("/t"));
    }

    #[test]
    fn values_may_start_with_a_dash() {
        let c = command_of("prove -o - -b x");
        assert_eq!(value(&c, "output").as_deref(), Some("-"));
    }

    #[test]
    fn a_token_read_as_both_name_and_value_is_an_ambiguity() {
        let c = command_of("prove_ultra_honk_output_all -o -b x");
        assert!(c.ambiguity.unwrap().contains("`-o`"));
    }

    #[test]
    fn the_command_is_always_argv1() {
        assert_eq!(
            parse(&args("-v --version")),
            Parsed::UnknownCommand { name: "-v".into() }
        );
        assert!(matches!(
            parse(&args("--version")),
            Parsed::Informational { .. }
        ));
        assert_eq!(parse(&[]), Parsed::NoCommand);
    }

    #[test]
    fn options_of_other_commands_are_unknown_here() {
        let c = command_of("prove_tube -b x -o /t");
        assert_eq!(c.unknown_tokens().collect::<Vec<_>>(), ["-b", "x"]);
    }
}

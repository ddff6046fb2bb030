//! The modern table against the real bb 5.0.0: after each subcommand, bb accepts the
//! logging and CRS options exactly when the table says the subcommand reads them.

use super::*;
use crate::support::testbed::{run, testbed, Scratch};

/// CLI11's answer to an option the subcommand does not define.
fn rejected(scratch: &Scratch, command: &str, option: &[&str]) -> bool {
    let out = run(scratch
        .command(&testbed().bb)
        .arg(command)
        .args(option)
        .stdin(std::process::Stdio::null()));
    out.code == Some(109) && out.stderr.contains("not expected")
}

#[test]
fn logging_and_crs_options_after_each_subcommand_match_bb_5() {
    let scratch = Scratch::new();
    let crs = testbed().crs_dir.to_str().expect("UTF-8 test-bed path");
    let mut checked = 0;
    for spec in tables::MODERN
        .iter()
        .filter(|c| !c.opaque && c.versions.ends_with("5.x"))
    {
        for option in [&["-v"][..], &["-d"], &["-c", crs]] {
            let in_table = spec.reads_named(option[0]).is_some();
            assert_eq!(
                rejected(&scratch, spec.name, option),
                !in_table,
                "bb {} {option:?}: the table says {}",
                spec.name,
                if in_table { "accepted" } else { "rejected" }
            );
            checked += 1;
        }
    }
    // Every 5.x subcommand the table models (check, gates, prove, write_vk, verify, ...).
    assert!(checked >= 3 * 10, "only {checked} combinations checked");
}

#[test]
fn a_crs_option_after_gates_or_check_is_bbs_parse_error() {
    for line in ["gates -b p.json -c /crs", "check -b p.json -c /crs"] {
        assert_eq!(native(line), NativeCode::BbParseError, "{line}");
    }
    // Before the subcommand it is bb's top-level option.
    assert!(matches!(
        verdict_env("-c /crs gates -b p.json", &[]),
        Route::Native(r) if r.code != NativeCode::BbParseError
    ));
}

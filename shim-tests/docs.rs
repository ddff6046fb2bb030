//! The README's tables must match the code: every variable and exit code, in order.

use bb_remote::{env_vars, exit};

fn table(marker: &str) -> Vec<(String, String)> {
    let readme = include_str!("../README.md");
    let start = readme
        .find(&format!("<!-- {marker}:start -->"))
        .expect("start marker");
    let end = readme
        .find(&format!("<!-- {marker}:end -->"))
        .expect("end marker");
    readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| variable") && !l.starts_with("| code"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            (cells[0].trim_matches('`').to_owned(), cells[1].to_owned())
        })
        .collect()
}

#[test]
fn readme_lists_every_environment_variable() {
    let documented = table("env-table");
    let in_code: Vec<(String, String)> = env_vars::ALL
        .iter()
        .map(|v| (v.name.to_owned(), v.doc.trim().to_owned()))
        .collect();
    assert_eq!(
        documented, in_code,
        "README env table and src/env_vars.rs disagree"
    );
}

#[test]
fn readme_lists_every_exit_code() {
    let documented = table("exit-table");
    let in_code: Vec<(String, String)> = exit::ALL
        .iter()
        .map(|(c, m)| (c.to_string(), (*m).to_owned()))
        .collect();
    assert_eq!(
        documented, in_code,
        "README exit-code table and src/exit.rs disagree"
    );
}

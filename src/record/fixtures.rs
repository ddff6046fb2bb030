//! `bb-remote fixtures`: inspect, verify and prune a fixture directory.
//!
//! Reports go to stdout (this is the operator tool, not the shim); problems go to
//! stderr, and `verify` exits [`crate::exit::FIXTURE_INVALID`] when there are any.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::format::{FixtureDir, Record};
use crate::config::Env;
use crate::store::Digest;
use crate::{env_vars, exit};

#[derive(Debug, clap::Args)]
pub struct FixturesArgs {
    /// Fixture directory [default: $BB_REMOTE_REPLAY, else $BB_REMOTE_RECORD]
    #[arg(long, short)]
    pub(crate) dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Action {
    /// One line per recorded invocation: key, mode, command, exit code, outputs.
    List,
    /// The record of one invocation as JSON (a unique key prefix is enough).
    Show { key: String },
    /// Check every record is readable and every blob present and matching its digest.
    Verify,
    /// Remove blobs no record references, and leftover temporary files.
    Prune,
}

/// A fixture directory that cannot be used: exit 78, like any bad value given.
fn bad_dir(name: &str, value: &str, expected: String) -> crate::config::BadValue {
    crate::config::BadValue {
        name: name.to_owned(),
        value: value.to_owned(),
        expected,
    }
}

#[expect(
    clippy::print_stdout,
    reason = "the operator tool's reports belong on stdout"
)]
pub fn run_cli(args: FixturesArgs) -> anyhow::Result<ExitCode> {
    // The same configuration loader as the shim: a bad BB_REMOTE_* value (one that is
    // not UTF-8 included) is an error naming it, exit 78, never silently skipped.
    let settings = crate::config::Settings::load(&Env::from_process())?;
    let (root, from) = match (args.dir, settings.replay, settings.record) {
        (Some(dir), _, _) => (dir, "--dir"),
        (None, Some(dir), _) => (dir, env_vars::REPLAY),
        (None, None, Some(dir)) => (dir, env_vars::RECORD),
        (None, None, None) => {
            let expected = format!(
                "a fixture directory: pass --dir or set {} / {}",
                env_vars::REPLAY,
                env_vars::RECORD
            );
            return Err(bad_dir("--dir", "(none)", expected).into());
        }
    };
    if !root.is_dir() {
        let shown = root.display().to_string();
        return Err(bad_dir(from, &shown, "a fixture directory".into()).into());
    }
    let dir = FixtureDir::new(root);
    match args.action {
        Action::List => {
            for line in list(&dir) {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Show { key } => {
            let record = find(&dir, &key)?;
            println!("{}", serde_json::to_string_pretty(&record)?);
            Ok(ExitCode::SUCCESS)
        }
        Action::Verify => {
            let report = verify(&dir);
            for problem in &report.problems {
                crate::diag::note(&format_args!("fixtures: {problem}"));
            }
            println!(
                "{} records, {} blobs checked, {} problems",
                report.records,
                report.blobs,
                report.problems.len()
            );
            Ok(match report.problems.is_empty() {
                true => ExitCode::SUCCESS,
                false => ExitCode::from(exit::FIXTURE_INVALID),
            })
        }
        Action::Prune => {
            let (blobs, temps) = prune(&dir)?;
            println!("removed {blobs} unreferenced blobs and {temps} temporary files");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One line per record; unreadable records are listed with their error.
pub(crate) fn list(dir: &FixtureDir) -> Vec<String> {
    dir.records()
        .into_iter()
        .map(|(path, record)| match record {
            Ok(r) => format!(
                "{}  {:<9} {:<8} {:<24} exit {:<3} {} outputs  {} ms",
                r.key,
                format!("{:?}", r.mode).to_lowercase(),
                format!("{:?}", r.generation).to_lowercase(),
                r.command,
                r.exit_code,
                r.outputs.len(),
                r.wall_time_ms
            ),
            Err(err) => format!("{}  unreadable: {err}", path.display()),
        })
        .collect()
}

/// The record whose key is `key` or starts with it (unique).
pub(crate) fn find(dir: &FixtureDir, key: &str) -> anyhow::Result<Record> {
    let matches: Vec<_> = dir
        .records()
        .into_iter()
        .filter(|(path, _)| {
            path.file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| !key.is_empty() && s.starts_with(key))
        })
        .collect();
    match matches.len() {
        0 => bail!("no record with key {key:?} in {}", dir.root().display()),
        1 => Ok(matches.into_iter().next().expect("one").1?),
        n => bail!("{n} records start with {key:?}; give more of the key"),
    }
}

/// What `verify` found.
#[derive(Debug, Default)]
pub(crate) struct VerifyReport {
    pub(crate) records: usize,
    pub(crate) blobs: usize,
    pub(crate) problems: Vec<String>,
}

/// Every record readable, every blob it names present and intact, every stored blob
/// matching its name.
pub(crate) fn verify(dir: &FixtureDir) -> VerifyReport {
    let mut report = VerifyReport::default();
    let mut checked = BTreeSet::new();
    for (_, record) in dir.records() {
        report.records += 1;
        let record = match record {
            Ok(r) => r,
            Err(err) => {
                report.problems.push(err.to_string());
                continue;
            }
        };
        for (digest, size) in referenced(&record) {
            if checked.insert(digest) {
                report.blobs += 1;
                if let Err(err) = dir.verify_blob(&digest, size) {
                    report
                        .problems
                        .push(format!("record {}: {err}", record.key));
                }
            }
        }
    }
    for (path, digest) in stored_blobs(dir) {
        match digest {
            Some(d) if checked.contains(&d) => {}
            Some(d) => {
                report.blobs += 1;
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if let Err(err) = dir.verify_blob(&d, size) {
                    report.problems.push(err.to_string());
                }
            }
            None => report.problems.push(format!(
                "{}: not a blob name (expected 64 hex digits)",
                path.display()
            )),
        }
    }
    report
}

/// Remove unreferenced blobs and everything in `tmp/`. Refuses when any record is
/// unreadable (its blobs cannot be told apart from garbage). Do not prune a directory
/// a recorder is writing into: its temporary files are removed too.
pub(crate) fn prune(dir: &FixtureDir) -> anyhow::Result<(usize, usize)> {
    let mut keep = BTreeSet::new();
    for (path, record) in dir.records() {
        let record =
            record.with_context(|| format!("not pruning: {} cannot be read", path.display()))?;
        keep.extend(referenced(&record).into_iter().map(|(d, _)| d));
    }
    let mut blobs = 0;
    for (path, digest) in stored_blobs(dir) {
        if digest.is_some_and(|d| !keep.contains(&d)) {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            blobs += 1;
        }
    }
    let mut temps = 0;
    for entry in std::fs::read_dir(dir.tmp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        std::fs::remove_file(entry.path())
            .with_context(|| format!("removing {}", entry.path().display()))?;
        temps += 1;
    }
    Ok((blobs, temps))
}

/// (digest, size) of every blob a record needs.
fn referenced(record: &Record) -> Vec<(Digest, u64)> {
    let mut blobs: Vec<_> = record.outputs.iter().map(|o| (o.sha256, o.size)).collect();
    blobs.push((record.stdout.sha256, record.stdout.size));
    blobs.push((record.stderr.sha256, record.stderr.size));
    blobs
}

/// Every file in `blobs/sha256/`, with the digest its name claims (if it is one).
fn stored_blobs(dir: &FixtureDir) -> Vec<(PathBuf, Option<Digest>)> {
    let mut blobs: Vec<_> = std::fs::read_dir(dir.blobs_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let path = e.path();
            let digest = name_digest(&path);
            (path, digest)
        })
        .collect();
    blobs.sort();
    blobs
}

fn name_digest(path: &Path) -> Option<Digest> {
    let name = path.file_name()?.to_str()?;
    super::format::is_key(name)
        .then(|| name.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::format::tests::sample;

    #[test]
    fn verify_and_prune() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = FixtureDir::new(tmp.path());
        let record = sample(&dir);
        dir.put_record(&record).unwrap();
        let garbage = dir.put_bytes(b"nobody needs me").unwrap();
        std::fs::create_dir_all(dir.tmp_dir()).unwrap();
        std::fs::write(dir.tmp_dir().join("123-abc-0"), b"half").unwrap();
        let report = verify(&dir);
        assert_eq!((report.records, report.blobs), (1, 4), "{report:?}");
        assert!(report.problems.is_empty(), "{report:?}");

        assert_eq!(prune(&dir).unwrap(), (1, 1));
        assert!(!dir.blob_path(&garbage.sha256).exists());
        assert!(verify(&dir).problems.is_empty());
        assert_eq!(list(&dir).len(), 1);
        assert_eq!(find(&dir, "abab").unwrap(), record);

        std::fs::write(dir.blob_path(&record.stdout.sha256), b"OUT\n").unwrap();
        let report = verify(&dir);
        assert_eq!(report.problems.len(), 1, "{report:?}");
        assert!(report.problems[0].contains("corrupt"), "{report:?}");
    }
}

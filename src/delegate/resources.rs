//! CPU and memory to ask the backend for, per circuit (sizes: docs/architecture.md).
//!
//! Order: `BB_REMOTE_CPU_CORES` / `BB_REMOTE_RAM_GB` when set; else the Aztec client's
//! bytecode file name `<Artifact>-bytecode` looked up in the published table; else a
//! size class of the bytecode file. Small circuits ask for little, so test circuits
//! fit a 2-core worker.
//!
//! Delegated msgpack requests ([`for_plan`]): a `CircuitProve` carries its bytecode
//! uncompressed (the CLI's files are gzipped), so its length is divided by
//! [`ACIR_GZIP_RATIO`] before the size classes apply; an `AvmProve` (no bytecode; the
//! public VM's circuit is fixed and large) asks for the largest class.
use std::path::PathBuf;

use crate::config::Settings;
use crate::route::Plan;
use crate::tes::types::Resources;

/// Uncompressed ACIR bytes per gzipped byte, measured on the test circuits
/// (hashchain 2 662 516 / 191 821 = 13.9, hashchain_big 6 605 516 / 463 472 = 14.3).
pub(crate) const ACIR_GZIP_RATIO: u64 = 14;

/// Resources for a plan whose `present` inputs are on disk.
pub(crate) fn for_plan(
    settings: &Settings,
    plan: &Plan,
    present: &[(usize, PathBuf)],
) -> Resources {
    let find = |role: &str| {
        present
            .iter()
            .find(|(i, _)| plan.inputs[*i].role == role)
            .map(|(i, p)| {
                let size = std::fs::metadata(p).ok().map(|m| m.len());
                (plan.inputs[*i].given.as_str(), size)
            })
    };
    if let Some((given, size)) = find("bytecode") {
        return for_circuit(settings, Some(given), size);
    }
    if let Some((_, size)) = find("msgpack_bytecode") {
        let gzipped = size.map(|s| s / ACIR_GZIP_RATIO);
        return for_circuit(settings, None, gzipped);
    }
    if find("msgpack_inputs").is_some() {
        return with_overrides(settings, LARGEST);
    }
    for_circuit(settings, None, None)
}

/// Known Aztec artifacts: (artifact name, GiB, cores). Memory measured on Aztec's rollup circuits;
/// multi-threading pays up to 16 cores.
const ARTIFACTS: &[(&str, f64, i32)] = &[
    ("RootRollupArtifact", 30.0, 16),
    ("BlockRootRollupArtifact", 12.0, 16),
    ("EmptyBlockRootRollupArtifact", 12.0, 16),
    ("SingleTxBlockRootRollupArtifact", 12.0, 16),
    ("PaddingBlockRootRollupArtifact", 12.0, 16),
    ("BlockMergeRollupArtifact", 9.0, 16),
    ("PublicBaseRollupArtifact", 12.0, 16),
    ("PrivateBaseRollupArtifact", 9.0, 16),
    ("MergeRollupArtifact", 9.0, 16),
    ("TubeArtifact", 12.0, 16),
];

/// Size classes of the bytecode file when the artifact is unknown:
/// (up to this many bytes, GiB, cores). A nargo artifact of a 10 M-gate circuit is
/// tens of MB; the test circuits are a few KB to a few hundred KB.
const SIZE_CLASSES: &[(u64, f64, i32)] =
    &[(1 << 20, 1.0, 1), (8 << 20, 4.0, 2), (32 << 20, 12.0, 16)];
const LARGEST: (f64, i32) = (30.0, 16);

/// Resources for a task whose bytecode file is named `bytecode_name` (the path as
/// given) and is `bytecode_size` bytes long (None: no bytecode input);
/// `BB_REMOTE_CPU_CORES` / `BB_REMOTE_RAM_GB` (checked by `config`) override.
pub(crate) fn for_circuit(
    settings: &Settings,
    bytecode_name: Option<&str>,
    bytecode_size: Option<u64>,
) -> Resources {
    let (ram_gb, cores) = bytecode_name
        .and_then(artifact_of)
        .and_then(|name| ARTIFACTS.iter().find(|(a, _, _)| *a == name))
        .map(|&(_, ram, cores)| (ram, cores))
        .unwrap_or_else(|| by_size(bytecode_size.unwrap_or(0)));
    with_overrides(settings, (ram_gb, cores))
}

/// `(GiB, cores)`, each replaced by `BB_REMOTE_RAM_GB` / `BB_REMOTE_CPU_CORES` if set.
fn with_overrides(settings: &Settings, (ram_gb, cores): (f64, i32)) -> Resources {
    Resources {
        cpu_cores: Some(settings.cpu_cores.unwrap_or(cores)),
        ram_gb: Some(settings.ram_gb.unwrap_or(ram_gb)),
        ..Resources::default()
    }
}

/// `RootRollupArtifact` from `/tmp/x/RootRollupArtifact-bytecode`.
fn artifact_of(path: &str) -> Option<&str> {
    let file = path.rsplit('/').next()?;
    file.strip_suffix("-bytecode").filter(|s| !s.is_empty())
}

fn by_size(size: u64) -> (f64, i32) {
    SIZE_CLASSES
        .iter()
        .find(|(max, _, _)| size <= *max)
        .map_or(LARGEST, |&(_, ram, cores)| (ram, cores))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;
    use crate::env_vars;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::load(&Env::from_pairs(pairs.iter().copied())).unwrap()
    }

    fn get(env: &Settings, name: &str, size: u64) -> (i32, f64) {
        let r = for_circuit(env, Some(name), Some(size));
        (r.cpu_cores.unwrap(), r.ram_gb.unwrap())
    }

    #[test]
    fn artifact_names_use_the_table() {
        let env = settings(&[]);
        assert_eq!(get(&env, "/t/RootRollupArtifact-bytecode", 10), (16, 30.0));
        assert_eq!(get(&env, "MergeRollupArtifact-bytecode", 10), (16, 9.0));
    }

    #[test]
    fn unknown_names_go_by_size() {
        let env = settings(&[]);
        assert_eq!(get(&env, "/t/program.json", 300_000), (1, 1.0));
        assert_eq!(get(&env, "/t/Other-bytecode", 5 << 20), (2, 4.0));
        assert_eq!(get(&env, "/t/p.json", 100 << 20), (16, 30.0));
    }

    #[test]
    fn msgpack_requests_size_by_their_uncompressed_bytecode_or_as_avm() {
        use crate::msgpack::delegate::request_plan;
        let dir = tempfile::tempdir().unwrap();
        let plan_of = |parts: &[(&str, u64)]| {
            let files: Vec<(&str, PathBuf)> = parts
                .iter()
                .map(|(name, size)| {
                    let path = dir.path().join(name);
                    std::fs::File::create(&path)
                        .unwrap()
                        .set_len(*size)
                        .unwrap();
                    (*name, path)
                })
                .collect();
            let plan = request_plan(&files, &dir.path().join("out"));
            let present: Vec<(usize, PathBuf)> =
                files.into_iter().map(|(_, p)| p).enumerate().collect();
            (plan, present)
        };
        let get = |settings: &Settings, parts: &[(&str, u64)]| {
            let (plan, present) = plan_of(parts);
            let r = for_plan(settings, &plan, &present);
            (r.cpu_cores.unwrap(), r.ram_gb.unwrap())
        };
        let env = settings(&[]);
        // 6.6 MB of ACIR is a 470 KB gzipped bytecode file: the smallest class.
        let small = [
            ("head", 40),
            ("bytecode", 6_600_000),
            ("witness", 2_000_000),
        ];
        assert_eq!(get(&env, &small), (1, 1.0));
        let big = [("head", 40), ("bytecode", 14 * (6 << 20)), ("witness", 10)];
        assert_eq!(get(&env, &big), (2, 4.0));
        assert_eq!(get(&env, &[("head", 40), ("inputs", 300_000)]), (16, 30.0));
        let set = settings(&[(env_vars::CPU_CORES, "2"), (env_vars::RAM_GB, "1.5")]);
        assert_eq!(get(&set, &[("head", 40), ("inputs", 300_000)]), (2, 1.5));
        assert_eq!(get(&set, &big), (2, 1.5));
    }

    #[test]
    fn variables_override() {
        let env = settings(&[(env_vars::CPU_CORES, "3"), (env_vars::RAM_GB, "2.5")]);
        assert_eq!(get(&env, "/t/RootRollupArtifact-bytecode", 1), (3, 2.5));
    }
}

//! CPU and memory to ask the backend for, per circuit (sizes: docs/architecture.md).
//!
//! Order: `BB_REMOTE_CPU_CORES` / `BB_REMOTE_RAM_GB` when set; else the Aztec client's
//! bytecode file name `<Artifact>-bytecode` looked up in the published table; else a
//! size class of the bytecode file. Small circuits ask for little, so test circuits
//! fit a 2-core worker.
use crate::config::Settings;
use crate::tes::types::Resources;

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
pub fn for_circuit(
    settings: &Settings,
    bytecode_name: Option<&str>,
    bytecode_size: Option<u64>,
) -> Resources {
    let (ram_gb, cores) = bytecode_name
        .and_then(artifact_of)
        .and_then(|name| ARTIFACTS.iter().find(|(a, _, _)| *a == name))
        .map(|&(_, ram, cores)| (ram, cores))
        .unwrap_or_else(|| by_size(bytecode_size.unwrap_or(0)));
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
    fn variables_override() {
        let env = settings(&[(env_vars::CPU_CORES, "3"), (env_vars::RAM_GB, "2.5")]);
        assert_eq!(get(&env, "/t/RootRollupArtifact-bytecode", 1), (3, 2.5));
    }
}

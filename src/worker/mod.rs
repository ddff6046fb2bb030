//! The reference TES proving backend. (placeholder)

/// `bb-remote worker`: run the reference TES proving backend.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {}

pub fn run_cli(_args: WorkerArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("not yet implemented")
}

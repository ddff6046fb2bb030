//! Routing verdicts. (Owned by the grammar work; placeholder.)

/// `bb-remote route -- <bb argv...>`: print the verdict and plan as JSON.
#[derive(Debug, clap::Args)]
pub struct RouteArgs {
    /// bb's argv, after `--` (without the program name).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub argv: Vec<std::ffi::OsString>,
}

pub fn run_cli(_args: RouteArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("not yet implemented")
}

//! Kernel confinement of each bb process with Landlock (Linux 5.13+): the second layer
//! under the argv rules of [`sandbox`](super::sandbox), so a path form those rules miss
//! still cannot reach outside the task.
//!
//! A confined bb may:
//! - read and execute the system's programs and libraries ([`SYSTEM_READ`]), its own
//!   bb binary, the CRS directory and the worker's HOME for children;
//! - read, write, create and remove anything under its task's sandbox directory;
//! - nothing else on the file system: not the task database, the input cache, other
//!   tasks' sandboxes, the worker's binary or configuration, `/proc` (so not the
//!   worker's environment and its token or store credentials), `/tmp`.
//!
//! Where the kernel has them (Landlock ABI 4 and 6) it also may not open or accept TCP
//! connections (bb needs no network: the worker gives it the CRS), nor signal
//! processes or reach abstract UNIX sockets outside its own task.
//!
//! Not covered: UDP and other non-TCP sockets, CPU and memory use (admission reserves
//! `resources`; the kernel does not enforce them), reading world-readable system files
//! under the allowed system directories, and kernel bugs. For isolation between
//! tenants that do not trust each other, run one worker per tenant or a container
//! engine (Funnel, TESK).
//!
//! The ruleset is built in the worker (it opens directories, which allocates) and
//! only enforced in the forked child just before exec, where nothing may allocate.
use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreated, RulesetCreatedAttr, Scope, ABI,
};

/// System directories (and device files) a confined process may read and execute.
/// Missing ones are skipped.
pub(crate) const SYSTEM_READ: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/sys/devices/system/cpu",
    "/dev/null",
    "/dev/zero",
    "/dev/random",
    "/dev/urandom",
];

/// The newest Landlock ABI whose rights are used (ABI 6: signal and socket scoping).
const ABI_USED: ABI = ABI::V6;

/// What one task's bb may touch.
#[derive(Debug)]
pub(crate) struct Policy<'a> {
    pub(crate) bb: &'a Path,
    /// Read-only directories besides the system ones (CRS, HOME).
    pub(crate) read: &'a [&'a Path],
    /// The task's sandbox directory: full access beneath it.
    pub(crate) write: &'a Path,
}

/// Why the worker cannot confine bb here.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfineError {
    #[error(
        "this kernel cannot confine bb with Landlock ({0})\n\
         help: use a kernel with Landlock enabled (Linux 5.13+, `lsm=...,landlock`), \
         or pass --no-confine to run bb unconfined (only for trusted clients)"
    )]
    Unsupported(String),
    #[error("building the Landlock ruleset for {path}: {message}")]
    Rule { path: PathBuf, message: String },
}

/// Check at start-up that the kernel enforces Landlock file-system rules, so a worker
/// that promises confinement never runs bb without it.
pub(crate) fn probe() -> Result<(), ConfineError> {
    let unsupported = |e: landlock::RulesetError| ConfineError::Unsupported(e.to_string());
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V3))
        .map_err(unsupported)?
        .create()
        .map_err(unsupported)?;
    Ok(())
}

/// The ruleset for one bb process; enforce it in the child with [`enforce`].
pub(crate) fn ruleset(policy: &Policy<'_>) -> Result<RulesetCreated, ConfineError> {
    let rule_error = |path: &Path, e: &dyn std::fmt::Display| ConfineError::Rule {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let failed = |e: landlock::RulesetError| rule_error(policy.write, &e);
    // Best effort for the newer rights (TCP, scoping): the file-system rights were
    // checked by `probe` at start-up.
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(ABI_USED))
        .map_err(failed)?
        .handle_access(AccessNet::from_all(ABI_USED))
        .map_err(failed)?
        .scope(Scope::from_all(ABI_USED))
        .map_err(failed)?
        .create()
        .map_err(failed)?;
    let read = AccessFs::from_read(ABI_USED);
    let system = SYSTEM_READ.iter().map(Path::new).filter(|p| p.exists());
    for path in system.chain(policy.read.iter().copied()) {
        ruleset = allow(ruleset, path, read).map_err(|e| rule_error(path, &e))?;
    }
    ruleset = allow(ruleset, policy.bb, read).map_err(|e| rule_error(policy.bb, &e))?;
    let all = AccessFs::from_all(ABI_USED);
    ruleset = allow(ruleset, policy.write, all).map_err(|e| rule_error(policy.write, &e))?;
    Ok(ruleset)
}

/// Allow `access` beneath `path` (for a file, the file rights among them).
fn allow(
    ruleset: RulesetCreated,
    path: &Path,
    access: landlock::BitFlags<AccessFs>,
) -> Result<RulesetCreated, String> {
    let fd = PathFd::new(path).map_err(|e| e.to_string())?;
    let access = if path.is_dir() {
        access
    } else {
        access & AccessFs::from_file(ABI_USED)
    };
    ruleset
        .add_rule(PathBeneath::new(fd, access))
        .map_err(|e| e.to_string())
}

/// Enforce `ruleset` on the calling (forked, single-threaded) process; also sets
/// no_new_privs. Allocation-free on success, so it is safe between fork and exec.
pub(crate) fn enforce(ruleset: RulesetCreated) -> std::io::Result<()> {
    match ruleset.restrict_self() {
        Ok(_) => Ok(()),
        Err(_) => Err(std::io::Error::from_raw_os_error(libc::EPERM)),
    }
}

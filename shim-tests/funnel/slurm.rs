//! Funnel's Slurm backend on a real single-node Slurm (Debian's slurmctld, slurmd and
//! munge, installed by scripts/testbed): shim -> Funnel -> sbatch -> slurmd ->
//! `funnel worker run` -> bb, byte-identical to bb run directly. Everything runs in
//! the test's network namespace, with its own munge key, socket and Slurm state.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::harness::{in_netns, Funnel, FunnelStore, Options};
use crate::delegate::harness::{files, square_proved_directly};
use crate::support::testbed::{run, Scratch};
use bb_remote::tes::types::State;

const DAEMONS: [&str; 3] = [
    "/usr/sbin/munged",
    "/usr/sbin/slurmctld",
    "/usr/sbin/slurmd",
];

/// munged, slurmctld and slurmd for one test; killed on drop.
pub struct Slurm {
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Slurm {
    /// `SLURM_CONF` for sbatch, squeue and scancel.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// Start the cluster (one node named after this host) and wait until the node is
    /// idle. Call inside [`in_netns`].
    pub fn start() -> Slurm {
        // glibc's getaddrinfo (AI_ADDRCONFIG, as Slurm calls it) resolves nothing while
        // 127.0.0.1 is the only IPv4 address: give lo a second loopback address.
        let added = Command::new("ip")
            .args(["addr", "add", "127.0.0.2/8", "dev", "lo"])
            .status()
            .unwrap();
        assert!(added.success(), "ip addr add 127.0.0.2/8 dev lo: {added}");
        let dir = tempfile::Builder::new()
            .prefix("bb-remote-slurm-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for sub in ["state", "spool"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        let key: Vec<u8> = (0..1024u32).map(|i| (i * 131 + i / 7) as u8).collect();
        std::fs::write(d.join("munge.key"), key).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("munge.key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let host = hostname();
        let p = |name: &str| d.join(name).display().to_string();
        std::fs::write(
            d.join("slurm.conf"),
            format!(
                "ClusterName=bbremote\nSlurmctldHost={host}(127.0.0.1)\nSlurmUser=root\n\
                 SlurmdUser=root\nAuthType=auth/munge\nAuthInfo=socket={sock}\n\
                 CredType=cred/munge\nSlurmctldPort=6817\nSlurmdPort=6818\n\
                 StateSaveLocation={state}\nSlurmdSpoolDir={spool}\n\
                 SlurmctldPidFile={ctldpid}\nSlurmdPidFile={dpid}\n\
                 SlurmctldLogFile={ctldlog}\nSlurmdLogFile={dlog}\n\
                 ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
                 SwitchType=switch/none\nMpiDefault=none\nSchedulerType=sched/builtin\n\
                 SelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\n\
                 ReturnToService=2\nJobCompType=jobcomp/none\n\
                 AccountingStorageType=accounting_storage/none\n\
                 SlurmdParameters=config_overrides\n\
                 NodeName={host} NodeAddr=127.0.0.1 CPUs=16 RealMemory=65536 State=UNKNOWN\n\
                 PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
                sock = p("munge.sock"),
                state = p("state"),
                spool = p("spool"),
                ctldpid = p("slurmctld.pid"),
                dpid = p("slurmd.pid"),
                ctldlog = p("slurmctld.log"),
                dlog = p("slurmd.log"),
            ),
        )
        .unwrap();
        let mut slurm = Slurm {
            children: Vec::new(),
            dir,
        };
        let d = slurm.dir.path().to_owned();
        slurm.spawn(
            Command::new(DAEMONS[0])
                .args(["--foreground", "--force"])
                .arg(format!("--socket={}", d.join("munge.sock").display()))
                .arg(format!("--key-file={}", d.join("munge.key").display()))
                .arg(format!("--pid-file={}", d.join("munged.pid").display()))
                .arg(format!("--log-file={}", d.join("munged.log").display()))
                .arg(format!("--seed-file={}", d.join("munge.seed").display())),
        );
        wait_until(Duration::from_secs(20), "munge's socket", || {
            d.join("munge.sock").exists()
        });
        slurm.spawn(Command::new(DAEMONS[1]).args(["-D", "-c", "-i"]));
        slurm.spawn(Command::new(DAEMONS[2]).args(["-D", "-c"]));
        let conf = slurm.conf();
        wait_until(Duration::from_secs(60), "an idle Slurm node", || {
            Command::new("sinfo")
                .args(["-h", "-o", "%T"])
                .env("SLURM_CONF", &conf)
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
        });
        slurm
    }

    fn spawn(&mut self, command: &mut Command) {
        let log = std::fs::File::create(self.dir.path().join("daemons.log")).unwrap();
        let child = command
            .env("SLURM_CONF", self.conf())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        self.children.push(child);
    }

    /// The controller's and the node daemon's logs, for failure messages.
    pub fn logs(&self) -> String {
        ["slurmctld.log", "slurmd.log", "daemons.log"]
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
                format!("--- {f}\n{text}")
            })
            .collect()
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The batch scripts Funnel wrote (`<WorkDir>/<task>/slurm.submit`), for failures.
fn batch_scripts(funnel: &Funnel) -> String {
    let work = funnel.dir.path().join("work");
    std::fs::read_dir(work)
        .into_iter()
        .flatten()
        .flatten()
        .map(|task| {
            let script = task.path().join("slurm.submit");
            format!(
                "--- {}\n{}",
                script.display(),
                std::fs::read_to_string(&script).unwrap_or_default()
            )
        })
        .collect()
}

fn hostname() -> String {
    let out = Command::new("hostname").output().unwrap();
    let name = String::from_utf8(out.stdout).unwrap();
    name.trim().split('.').next().unwrap().to_owned()
}

fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "no {what} after {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Why Slurm cannot run here, if it cannot (scripts/testbed installs it with apt-get
/// where it runs as root on Debian).
fn missing() -> Option<String> {
    DAEMONS
        .iter()
        .chain(&["/usr/bin/sbatch"])
        .find(|p| !Path::new(p).exists())
        .map(|p| format!("{p} is not installed (scripts/testbed installs Debian's slurmctld, slurmd, slurm-client and munge as root)"))
}

#[test]
#[expect(
    clippy::print_stderr,
    reason = "a check that cannot run here says so in the test output"
)]
fn a_proof_through_funnel_on_slurm_matches_bb() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED a_proof_through_funnel_on_slurm_matches_bb: {why}");
        return;
    }
    in_netns(|| {
        let slurm = Slurm::start();
        let funnel = Funnel::start(
            FunnelStore::File,
            Options {
                slurm_conf: Some(slurm.conf()),
                ..Options::default()
            },
        );
        let scratch = Scratch::new();
        let (job, direct_out) = square_proved_directly(&scratch);

        let out = scratch.path("remote");
        let shim = run(funnel.shim(&scratch).args(job.prove_argv(&out)));
        shim.assert_code(
            0,
            &format!(
                "bb prove through Funnel on Slurm; funnel log:\n{}\n{}\nbatch scripts:\n{}",
                funnel.log(),
                slurm.logs(),
                batch_scripts(&funnel)
            ),
        );
        assert_eq!(files(&out), files(&direct_out), "outputs differ from bb's");
        let task = funnel.tasks().pop().expect("one task");
        assert_eq!(task.state, Some(State::Complete));
        let slurm_id = task
            .logs
            .iter()
            .find_map(|l| l.metadata.get("slurm_id"))
            .cloned()
            .unwrap_or_default();
        assert!(
            slurm_id.trim().parse::<u32>().is_ok(),
            "Funnel recorded no Slurm job id: {:?}",
            task.logs.iter().map(|l| &l.metadata).collect::<Vec<_>>()
        );
        assert!(
            slurm.logs().contains("Launching batch job"),
            "slurmd ran the job:\n{}",
            slurm.logs()
        );
    });
}

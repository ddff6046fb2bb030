//! SIGINT / SIGTERM while waiting on a remote task: the first cancels the task and
//! cleans up; a second one exits at once.

use tokio::signal::unix::{signal, SignalKind};

/// Which signal asked us to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    Int,
    Term,
}

impl Interrupt {
    /// Shell convention: 128 + signal number.
    pub fn exit_code(self) -> u8 {
        match self {
            Interrupt::Int => crate::exit::SIGINT,
            Interrupt::Term => crate::exit::SIGTERM,
        }
    }
}

/// Installed handlers. Install before submitting, so no signal slips between submit and wait.
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// Wait for the next SIGINT or SIGTERM.
    pub async fn next(&mut self) -> Interrupt {
        tokio::select! {
            _ = self.int.recv() => Interrupt::Int,
            _ = self.term.recv() => Interrupt::Term,
        }
    }

    /// After the first signal: a second one exits the process immediately.
    pub fn escalate_on_second(mut self) {
        tokio::spawn(async move {
            let second = self.next().await;
            eprintln!("bb-remote: second signal, exiting without waiting for cleanup");
            std::process::exit(i32::from(second.exit_code()));
        });
    }
}

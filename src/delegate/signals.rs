//! SIGINT / SIGTERM during a delegated call: the first stops the call (see
//! `delegate::drive`, and the TES transport's own wait); a second one exits at once. The msgpack server waits differently: its
//! process handles signals itself (requests in flight are finished, as bb does), and a
//! task is cancelled when the client that asked for it disconnects ([`Signals::on_cancel`]).

use tokio::signal::unix::{signal, SignalKind};

pub(crate) use crate::exit::Interrupt;

/// Installed handlers. Install before submitting, so no signal slips between submit and wait.
pub(crate) enum Signals {
    Process {
        int: tokio::signal::unix::Signal,
        term: tokio::signal::unix::Signal,
    },
    /// No process signals: a `true` on this channel stands for SIGTERM.
    Cancel(tokio::sync::watch::Receiver<bool>),
}

impl Signals {
    pub(crate) fn install() -> std::io::Result<Self> {
        Ok(Self::Process {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    pub(crate) fn on_cancel(cancel: tokio::sync::watch::Receiver<bool>) -> Self {
        Self::Cancel(cancel)
    }

    /// Wait for the next SIGINT or SIGTERM (or cancellation).
    pub(crate) async fn next(&mut self) -> Interrupt {
        match self {
            Self::Process { int, term } => tokio::select! {
                _ = int.recv() => Interrupt::Int,
                _ = term.recv() => Interrupt::Term,
            },
            Self::Cancel(cancel) => {
                if cancel.wait_for(|gone| *gone).await.is_err() {
                    // The sender is gone without cancelling: never interrupt.
                    std::future::pending::<()>().await;
                }
                Interrupt::Term
            }
        }
    }

    /// After the first signal: a second one exits the process immediately.
    pub(crate) fn escalate_on_second(mut self) {
        if matches!(self, Self::Cancel(_)) {
            return;
        }
        tokio::spawn(async move {
            let second = self.next().await;
            crate::diag::note(&"second signal, exiting without waiting for cleanup");
            std::process::exit(i32::from(second.exit_code()));
        });
    }
}

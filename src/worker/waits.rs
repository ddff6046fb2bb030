//! Long polls on `GET /tasks/{id}`: `Prefer: wait=N` (RFC 7240, `tes::prefer`) holds
//! the answer until the task's state changes, it ends, or the wait granted passes.
//!
//! - [`Changes`]: one `watch` channel per task somebody is waiting on, signalled by the
//!   database right after each committed change of that task (`Db::update`), so a
//!   waiter learns of a new state as soon as a fresh read can see it. The channel
//!   exists only while someone waits; the last waiter to leave removes it.
//! - [`Waits`]: the bounds. At most `max_waiters` requests are held at once (each holds a
//!   connection, and a client with the token must not be able to take them all); past
//!   that, and during shutdown, a request is answered at once without
//!   `Preference-Applied`, so the client falls back to polling. A wait is capped at
//!   `max_wait`, below the worker's whole-request timeout.
//!
//! The worker has one token and no tenants: any client with the token may read any
//! task, with or without a wait.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Per-task change signals for the tasks being waited on.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    watched: Mutex<HashMap<String, watch::Sender<()>>>,
}

impl Changes {
    /// Task `id` changed (called after the change is committed).
    pub(crate) fn publish(&self, id: &str) {
        if let Some(sender) = self.lock().get(id) {
            sender.send_replace(());
        }
    }

    /// Signals for task `id` from now on.
    fn subscribe(self: &Arc<Self>, id: &str) -> Subscription {
        let receiver = self
            .lock()
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(()).0)
            .subscribe();
        Subscription {
            changes: self.clone(),
            id: id.to_owned(),
            receiver: Some(receiver),
        }
    }

    /// How many tasks have a waiter now (for tests of the cleanup).
    #[cfg(test)]
    fn watched(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<()>>> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One waiter's receiver; the last one to go removes the task's channel.
struct Subscription {
    changes: Arc<Changes>,
    id: String,
    receiver: Option<watch::Receiver<()>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.receiver.take());
        let mut watched = self.changes.lock();
        if watched
            .get(&self.id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            watched.remove(&self.id);
        }
    }
}

/// The long-poll bounds, shared by every request.
pub(crate) struct Waits {
    changes: Arc<Changes>,
    slots: Arc<Semaphore>,
    max_waiters: usize,
    max_wait: Duration,
    closing: watch::Receiver<bool>,
}

/// Ends every held request (at shutdown): they answer with the state as it is.
pub(crate) struct Closer(watch::Sender<bool>);

impl Closer {
    pub(crate) fn close(&self) {
        self.0.send_replace(true);
    }
}

impl Waits {
    /// Bounds for waits on `changes`: at most `max_waiters` held at once (0: none), none
    /// longer than `max_wait`.
    pub(crate) fn new(
        changes: Arc<Changes>,
        max_waiters: usize,
        max_wait: Duration,
    ) -> (Self, Closer) {
        let (close, closing) = watch::channel(false);
        let waits = Self {
            changes,
            slots: Arc::new(Semaphore::new(max_waiters)),
            max_waiters,
            max_wait,
            closing,
        };
        (waits, Closer(close))
    }

    /// Requests held now (a gauge in `/metrics`).
    pub(crate) fn held(&self) -> usize {
        self.max_waiters - self.slots.available_permits()
    }

    /// Start holding a request for task `id` that asked to wait `asked`. `None` (answer at
    /// once, without `Preference-Applied`) when the worker holds as many as it may, is
    /// shutting down, or the wait granted would be under a second. Call before reading
    /// the task, so no change between the read and the wait is missed.
    pub(crate) fn begin(&self, id: &str, asked: Duration) -> Option<Held> {
        let granted = Duration::from_secs(asked.min(self.max_wait).as_secs());
        if granted.is_zero() || *self.closing.borrow() {
            return None;
        }
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            tracing::debug!(task = %id, "long poll refused: --max-waiters requests held");
            return None;
        };
        Some(Held {
            _permit: permit,
            subscription: self.changes.subscribe(id),
            until: Instant::now() + granted,
            closing: self.closing.clone(),
            granted,
        })
    }
}

/// A request being held.
pub(crate) struct Held {
    _permit: OwnedSemaphorePermit,
    subscription: Subscription,
    until: Instant,
    closing: watch::Receiver<bool>,
    /// The wait granted, for `Preference-Applied`.
    pub(crate) granted: Duration,
}

impl Held {
    /// Wait for the task's next committed change: true when there was one, false when
    /// the wait is over (time granted passed, or the worker is shutting down).
    pub(crate) async fn next_change(&mut self) -> bool {
        let receiver = self
            .subscription
            .receiver
            .as_mut()
            .expect("taken only on drop");
        tokio::select! {
            changed = receiver.changed() => changed.is_ok(),
            () = tokio::time::sleep_until(self.until) => false,
            _ = self.closing.wait_for(|closing| *closing) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_wakes_the_waiter_and_the_channel_goes_with_the_last() {
        let changes = Arc::new(Changes::default());
        let (waits, _closer) = Waits::new(changes.clone(), 4, Duration::from_secs(30));
        let mut first = waits.begin("t1", Duration::from_secs(20)).unwrap();
        let second = waits.begin("t1", Duration::from_secs(20)).unwrap();
        assert_eq!((waits.held(), changes.watched()), (2, 1));
        changes.publish("t2"); // another task: no effect
        changes.publish("t1");
        assert!(first.next_change().await);
        drop(first);
        assert_eq!((waits.held(), changes.watched()), (1, 1));
        drop(second);
        assert_eq!((waits.held(), changes.watched()), (0, 0));
    }

    #[tokio::test]
    async fn the_cap_the_wait_and_shutdown_bound_holding() {
        let changes = Arc::new(Changes::default());
        let (waits, closer) = Waits::new(changes, 1, Duration::from_secs(30));
        let held = waits.begin("t", Duration::from_secs(3600)).unwrap();
        assert_eq!(held.granted, Duration::from_secs(30), "capped");
        assert!(
            waits.begin("t", Duration::from_secs(5)).is_none(),
            "over the cap"
        );
        drop(held);
        assert!(
            waits.begin("t", Duration::from_millis(900)).is_none(),
            "under a second"
        );
        let mut held = waits.begin("t", Duration::from_secs(20)).unwrap();
        closer.close();
        assert!(!held.next_change().await, "shutdown ends the wait");
        drop(held);
        assert!(
            waits.begin("t", Duration::from_secs(5)).is_none(),
            "none while closing"
        );
    }

    #[tokio::test]
    async fn the_wait_ends_when_its_time_is_up() {
        let (waits, _closer) = Waits::new(Arc::default(), 1, Duration::from_secs(30));
        let mut held = waits.begin("t", Duration::from_secs(1)).unwrap();
        assert!(!held.next_change().await);
    }
}

//! Admission by resources: a task starts only when its cpu and memory fit beside the
//! tasks already running, so a 30 GiB rollup never runs beside three 12 GiB proofs on
//! a 32 GiB box.
//!
//! The queue is strictly first-in, first-out: when the head does not fit, later tasks
//! wait too, even small ones that would fit. That costs some utilisation but means a
//! large task can never be starved by a stream of small ones.
//!
//! A task asks for `resources.cpu_cores` (default 1) and `resources.ram_gb`
//! (default 0: no reservation). Not here: running tasks (the `executor` module).
use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::tes::types::Resources;

/// What a task reserves while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Demand {
    pub(crate) cpus: u32,
    pub(crate) memory_gib: f64,
}

impl Demand {
    /// The reservation for a task's `resources`, or a message naming the bad field.
    pub(crate) fn of(resources: Option<&Resources>) -> Result<Self, String> {
        let cpus = resources.and_then(|r| r.cpu_cores).unwrap_or(1);
        let memory_gib = resources.and_then(|r| r.ram_gb).unwrap_or(0.0);
        if cpus < 0 {
            return Err(format!(
                "resources.cpu_cores is {cpus}; it must not be negative"
            ));
        }
        if !memory_gib.is_finite() || memory_gib < 0.0 {
            return Err(format!(
                "resources.ram_gb is {memory_gib}; it must be a non-negative number"
            ));
        }
        Ok(Self {
            cpus: cpus.max(1) as u32,
            memory_gib,
        })
    }
}

/// Queue plus the running total, behind one lock.
#[derive(Debug, Default)]
struct Ledger {
    queue: VecDeque<(String, Demand)>,
    in_use: Demand,
    running: usize,
}

/// The admission controller: the machine's capacity, the FIFO queue and what is in use.
#[derive(Debug)]
pub(crate) struct Admission {
    capacity: Demand,
    ledger: Mutex<Ledger>,
    changed: Notify,
}

impl Admission {
    pub(crate) fn new(capacity: Demand) -> Self {
        Self {
            capacity,
            ledger: Mutex::default(),
            changed: Notify::new(),
        }
    }

    /// Refuse a task that could never run here, with a message saying why.
    pub(crate) fn check_fits_machine(&self, demand: Demand) -> Result<(), String> {
        let cap = self.capacity;
        if demand.cpus > cap.cpus {
            return Err(format!(
                "task asks for {} cpu cores but this worker has {} (--cpus)",
                demand.cpus, cap.cpus
            ));
        }
        if demand.memory_gib > cap.memory_gib {
            return Err(format!(
                "task asks for {} GiB of memory but this worker has {} GiB (--memory)",
                demand.memory_gib, cap.memory_gib
            ));
        }
        Ok(())
    }

    /// Add a task at the back of the queue.
    pub(crate) fn enqueue(&self, id: String, demand: Demand) {
        self.lock().queue.push_back((id, demand));
        self.changed.notify_one();
    }

    /// Take a task out of the queue (it was cancelled). False if it was not queued.
    pub(crate) fn remove_queued(&self, id: &str) -> bool {
        let mut ledger = self.lock();
        let before = ledger.queue.len();
        ledger.queue.retain(|(queued, _)| queued != id);
        let removed = ledger.queue.len() != before;
        drop(ledger);
        if removed {
            self.changed.notify_one();
        }
        removed
    }

    /// Wait until the head of the queue fits, reserve its resources and return it.
    /// Meant for a single dispatcher loop.
    pub(crate) async fn next(&self) -> (String, Demand) {
        loop {
            if let Some(admitted) = self.try_admit() {
                return admitted;
            }
            self.changed.notified().await;
        }
    }

    /// Give back what a finished task reserved.
    pub(crate) fn release(&self, demand: Demand) {
        let mut ledger = self.lock();
        ledger.in_use.cpus -= demand.cpus;
        ledger.in_use.memory_gib = (ledger.in_use.memory_gib - demand.memory_gib).max(0.0);
        ledger.running -= 1;
        drop(ledger);
        self.changed.notify_one();
    }

    /// (queued, running) task counts, for metrics.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let ledger = self.lock();
        (ledger.queue.len(), ledger.running)
    }

    fn try_admit(&self) -> Option<(String, Demand)> {
        let mut ledger = self.lock();
        let (_, head) = ledger.queue.front()?;
        let fits = ledger.in_use.cpus + head.cpus <= self.capacity.cpus
            && ledger.in_use.memory_gib + head.memory_gib <= self.capacity.memory_gib + 1e-9;
        // An idle machine always takes the head, so nothing can wedge the queue.
        if !fits && ledger.running > 0 {
            return None;
        }
        let (id, demand) = ledger.queue.pop_front()?;
        ledger.in_use.cpus += demand.cpus;
        ledger.in_use.memory_gib += demand.memory_gib;
        ledger.running += 1;
        Some((id, demand))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // A panic while holding this lock leaves plain numbers behind; keep going.
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(cpus: u32, memory_gib: f64) -> Demand {
        Demand { cpus, memory_gib }
    }

    #[test]
    fn fifo_head_blocks_until_it_fits() {
        let admission = Admission::new(demand(4, 32.0));
        admission.enqueue("rollup".into(), demand(1, 30.0));
        admission.enqueue("tube".into(), demand(1, 12.0));
        admission.enqueue("small".into(), demand(1, 1.0));
        let (first, d1) = admission.try_admit().unwrap();
        assert_eq!(first, "rollup");
        assert!(
            admission.try_admit().is_none(),
            "tube must wait beside the rollup"
        );
        admission.release(d1);
        assert_eq!(admission.try_admit().unwrap().0, "tube");
        assert_eq!(admission.try_admit().unwrap().0, "small");
        assert_eq!(admission.counts(), (0, 2));
    }

    #[test]
    fn cancelled_tasks_leave_the_queue() {
        let admission = Admission::new(demand(1, 1.0));
        admission.enqueue("a".into(), demand(1, 0.0));
        admission.enqueue("b".into(), demand(1, 0.0));
        assert!(admission.remove_queued("a"));
        assert!(!admission.remove_queued("a"));
        assert_eq!(admission.try_admit().unwrap().0, "b");
    }

    #[test]
    fn demands_are_checked() {
        let res = |cpu, ram| Resources {
            cpu_cores: cpu,
            ram_gb: ram,
            ..Resources::default()
        };
        assert_eq!(Demand::of(None).unwrap(), demand(1, 0.0));
        assert_eq!(
            Demand::of(Some(&res(Some(3), Some(2.5)))).unwrap(),
            demand(3, 2.5)
        );
        assert!(Demand::of(Some(&res(Some(-1), None)))
            .unwrap_err()
            .contains("cpu_cores"));
        assert!(Demand::of(Some(&res(None, Some(-2.0))))
            .unwrap_err()
            .contains("ram_gb"));
        let admission = Admission::new(demand(2, 8.0));
        assert!(admission.check_fits_machine(demand(2, 8.0)).is_ok());
        let err = admission.check_fits_machine(demand(1, 9.0)).unwrap_err();
        assert!(err.contains("--memory"), "{err}");
        assert!(admission
            .check_fits_machine(demand(3, 1.0))
            .unwrap_err()
            .contains("--cpus"));
    }
}

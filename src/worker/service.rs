//! The worker's shared state and task lifecycle: create, cancel, dispatch, recover
//! after a restart, and shut down.
//!
//! Every queued or running task has a stop switch (a `watch` channel) from the moment
//! it is created until it ends, so a cancel can never slip between "taken off the
//! queue" and "process started".
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::admission::{Admission, Demand};
use super::db::{now_rfc3339, Db, DbError};
use super::executor;
use super::metrics::Metrics;
use super::retention::{self, Retention};
use super::validate::Rules;
use crate::store::{Digest, LocalCasCache, Store};
use crate::tes::types::{State, Task, TaskLog};

/// Why a task is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Keep,
    /// A client cancelled it: ends CANCELED.
    Cancel,
    /// The worker is shutting down: ends SYSTEM_ERROR, saying so.
    Shutdown,
}

/// Fixed settings, from the command line.
#[derive(Debug)]
pub(crate) struct Config {
    /// Image name -> bb binary.
    pub(crate) images: BTreeMap<String, PathBuf>,
    /// The bb for every other image (`--bb`).
    pub(crate) default_bb: Option<PathBuf>,
    pub(crate) crs_dir: PathBuf,
    /// HOME for every child, so bb's defaults (e.g. `~/.bb-crs`) are worker-owned.
    pub(crate) home_dir: PathBuf,
    pub(crate) sandboxes_dir: PathBuf,
    /// Sandboxes of ended tasks, moved here to be deleted after the end is recorded.
    pub(crate) discard_dir: PathBuf,
    /// Between SIGTERM and SIGKILL when stopping a task.
    pub(crate) kill_grace: Duration,
    pub(crate) store: Store,
    pub(crate) cache: LocalCasCache,
    /// Run bb under Landlock (`confine`); off only with `--no-confine`.
    pub(crate) confine: bool,
    /// Most output bytes per task kept in the task log instead of the store
    /// (`--inline-output-bytes`, for tasks tagged `tes::inline::TAG`).
    pub(crate) inline_output_bytes: u64,
    /// Cache budget and task retention (`retention`).
    pub(crate) retention: Retention,
}

/// Why a create request is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CreateError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Everything the HTTP handlers and executors share.
pub(crate) struct Worker {
    pub(crate) config: Config,
    pub(crate) db: Db,
    pub(crate) admission: Admission,
    pub(crate) metrics: Metrics,
    stops: Mutex<HashMap<String, watch::Sender<Stop>>>,
    /// Cache entries (digest hex) each queued or running task needs: never evicted.
    pins: Mutex<HashMap<String, Vec<String>>>,
    /// Store keys being uploaded (multipart) or cleaned up now (`uploads`).
    pub(crate) uploads: super::uploads::Journal,
    /// Set when the database failed with an I/O error (full disk); cleared once it
    /// is reopened and writable. While set the worker reports unhealthy.
    db_broken: AtomicBool,
}

impl Worker {
    pub(crate) fn new(config: Config, db: Db, admission: Admission) -> Self {
        Self {
            config,
            db,
            admission,
            metrics: Metrics::default(),
            stops: Mutex::default(),
            pins: Mutex::default(),
            uploads: Default::default(),
            db_broken: AtomicBool::new(false),
        }
    }

    /// Run a database call on a blocking thread (commits fsync).
    pub(crate) async fn with_db<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Db) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        self.start_db(call).await
    }

    /// [`Worker::with_db`], started now rather than when first polled: the call can
    /// overlap other work and be awaited later.
    pub(crate) fn start_db<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Db) -> Result<T, DbError> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, DbError>> + Send + '_ {
        let db = self.db.clone();
        let handle = tokio::task::spawn_blocking(move || call(&db));
        async move {
            let result = handle.await.expect("database calls do not panic");
            if let Err(err) = &result {
                if err.is_io() && !self.db_broken.swap(true, Ordering::SeqCst) {
                    tracing::error!("{err}; unhealthy until the database can be written again");
                }
            }
            result
        }
    }

    /// False while the task database cannot be written (service-info answers 503).
    pub(crate) fn healthy(&self) -> bool {
        !self.db_broken.load(Ordering::SeqCst)
    }

    /// After an I/O error: reopen the database if it can be written again, then end
    /// the tasks whose progress could not be recorded meanwhile.
    async fn recover_db(&self) {
        let db = self.db.clone();
        let reopened = tokio::task::spawn_blocking(move || db.reopen())
            .await
            .expect("database calls do not panic");
        if let Err(err) = reopened {
            tracing::debug!("task database still not writable: {err}");
            return;
        }
        self.db_broken.store(false, Ordering::SeqCst);
        tracing::info!("task database writable again; healthy");
        if let Err(err) = self.fail_lost_tasks().await {
            tracing::warn!("ending tasks lost while the database was closed: {err}");
        }
    }

    /// Tasks the database shows unfinished that no executor or queue holds any more:
    /// their end could not be written. They end SYSTEM_ERROR with a system log.
    async fn fail_lost_tasks(&self) -> Result<(), DbError> {
        let tasks = self.with_db(|db| db.all()).await?;
        for task in tasks {
            let id = task.id.clone().unwrap_or_default();
            let unfinished = !task.state.is_some_and(State::is_terminal);
            if unfinished && !self.lock_stops().contains_key(&id) {
                let why = "the worker could not write its task database (I/O error, e.g. a \
                           full disk) while this task ran; its outcome was lost";
                self.fail_on_recovery(id, why.into()).await?;
            }
        }
        Ok(())
    }

    pub(crate) fn rules(&self) -> Rules<'_> {
        Rules {
            images: &self.config.images,
            default_bb: self.config.default_bb.as_ref(),
            store: &self.config.store,
            admission: &self.admission,
        }
    }

    /// Validate, store and queue a task; returns its id.
    ///
    /// `resources.backend_parameters` (TES v1.1): this worker supports no keys, so
    /// any given are neither stored nor returned; a system log names them, and with
    /// `backend_parameters_strict` the task fails (SYSTEM_ERROR) instead of running.
    pub(crate) async fn create(&self, mut task: Task) -> Result<String, CreateError> {
        let demand = self.rules().check(&task).map_err(CreateError::Invalid)?;
        let pins = self.input_digests(&task);
        task.logs.clear();
        let (ignored, strict) = match task.resources.as_mut() {
            Some(r) => (
                std::mem::take(&mut r.backend_parameters),
                r.backend_parameters_strict == Some(true),
            ),
            None => Default::default(),
        };
        let refuse = strict && !ignored.is_empty();
        if !ignored.is_empty() {
            let keys: Vec<&str> = ignored.keys().map(String::as_str).collect();
            let note = format!(
                "resources.backend_parameters {} not supported by this worker (it supports \
                 none); {}",
                keys.join(", "),
                if refuse {
                    "failing the task: backend_parameters_strict is true"
                } else {
                    "ignored"
                }
            );
            task.logs.push(TaskLog {
                system_logs: vec![note],
                end_time: refuse.then(now_rfc3339),
                ..TaskLog::default()
            });
        }
        let stored = self
            .with_db(move |db| {
                let stored = db.create(task)?;
                if !refuse {
                    return Ok(stored);
                }
                let id = stored.id.clone().unwrap_or_default();
                db.update(&id, |task| {
                    task.state = Some(State::SystemError);
                    true
                })?;
                Ok(stored)
            })
            .await?;
        let id = stored.id.unwrap_or_default();
        self.metrics.task_created();
        if refuse {
            self.metrics.task_finished(State::SystemError, 0.0);
            tracing::warn!(task = %id, "unsupported backend_parameters with strict: failed");
            return Ok(id);
        }
        self.queue(id.clone(), demand, pins);
        tracing::info!(task = %id, "task queued");
        Ok(id)
    }

    fn queue(&self, id: String, demand: Demand, pins: Vec<String>) {
        self.lock_stops()
            .insert(id.clone(), watch::channel(Stop::Keep).0);
        lock(&self.pins).insert(id.clone(), pins);
        self.admission.enqueue(id, demand);
    }

    /// The digests (hex) of a task's store inputs: what its run will take from the cache.
    fn input_digests(&self, task: &Task) -> Vec<String> {
        let store = &self.config.store;
        task.inputs
            .iter()
            .filter_map(|input| store.key_for_url(input.url.as_deref()?).ok())
            .filter_map(|key| store.digest_for_key(&key))
            .map(|digest| digest.hex())
            .collect()
    }

    /// Clean up after uploads a crash interrupted, bring the cache within its budget
    /// and delete finished tasks past retention, with their `runs/` objects; compact
    /// the database if any went.
    pub(crate) async fn housekeep(&self) -> Result<(), String> {
        super::uploads::sweep(self).await;
        self.trim_cache().await?;
        self.expire_finished().await
    }

    /// Bring the input cache within its budget (after each task, and on the timer).
    pub(crate) async fn trim_cache(&self) -> Result<(), String> {
        let pinned: HashSet<String> = lock(&self.pins).values().flatten().cloned().collect();
        // The cache's entry directory (the parent of any entry's path).
        let any_entry = self.config.cache.path_for(&Digest::of_bytes(b""));
        let cache_dir = any_entry
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let budget = self.config.retention.cache_max_bytes;
        let trimmed =
            tokio::task::spawn_blocking(move || retention::trim_cache(&cache_dir, budget, &pinned))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("trimming the input cache: {e}"))?;
        if trimmed.evicted > 0 {
            tracing::info!(
                evicted = trimmed.evicted,
                kept_bytes = trimmed.kept_bytes,
                "input cache trimmed"
            );
        }
        Ok(())
    }

    async fn expire_finished(&self) -> Result<(), String> {
        let keep = self.config.retention.keep_finished;
        let cutoff =
            chrono::Utc::now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        let expired = self
            .with_db(move |db| db.finished_before(cutoff))
            .await
            .map_err(|e| e.to_string())?;
        if expired.is_empty() {
            return Ok(());
        }
        for task in &expired {
            self.delete_outputs(task).await;
        }
        let ids: Vec<String> = expired.into_iter().filter_map(|t| t.id).collect();
        let count = ids.len();
        self.with_db(move |db| {
            for id in &ids {
                db.delete(id)?;
            }
            db.compact()
        })
        .await
        .map_err(|e| e.to_string())?;
        tracing::info!(tasks = count, "finished tasks past retention deleted");
        Ok(())
    }

    /// Delete the `runs/` objects a task uploaded (a missing one is fine).
    async fn delete_outputs(&self, task: &Task) {
        let store = &self.config.store;
        for output in task.logs.iter().flat_map(|log| &log.outputs) {
            let Ok(key) = store.key_for_url(&output.url) else {
                continue;
            };
            if let Err(err) = object_store::ObjectStoreExt::delete(store.object_store(), &key).await
            {
                if !matches!(err, object_store::Error::NotFound { .. }) {
                    tracing::warn!(url = %output.url, "deleting an expired output: {err}");
                }
            }
        }
    }

    /// Housekeeping on a timer, and every second a reopen attempt while the database
    /// is broken; until aborted.
    pub(crate) async fn housekeeping(self: Arc<Self>) {
        let mut sweep = tokio::time::interval(self.config.retention.interval());
        let mut health = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = sweep.tick() => {
                    if let Err(err) = self.housekeep().await {
                        tracing::warn!("housekeeping: {err}");
                    }
                }
                _ = health.tick() => {
                    if !self.healthy() {
                        self.recover_db().await;
                    }
                }
            }
        }
    }

    /// Cancel a task. Returns false if there is no such task. Cancelling a finished
    /// task changes nothing.
    pub(crate) async fn cancel(&self, id: &str) -> Result<bool, DbError> {
        if let Some(stop) = self.lock_stops().get(id) {
            stop.send_replace(Stop::Cancel);
        }
        if self.admission.remove_queued(id) {
            self.lock_stops().remove(id);
            lock(&self.pins).remove(id);
            let id = id.to_owned();
            self.with_db(move |db| {
                db.update(&id, |task| {
                    task.state = Some(State::Canceled);
                    true
                })
            })
            .await?;
            self.metrics.task_finished(State::Canceled, 0.0);
            return Ok(true);
        }
        let id = id.to_owned();
        Ok(self.with_db(move |db| db.get(&id)).await?.is_some())
    }

    /// The stop switch of a task about to run.
    pub(crate) fn stop_receiver(&self, id: &str) -> watch::Receiver<Stop> {
        let mut stops = self.lock_stops();
        stops
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(Stop::Keep).0)
            .subscribe()
    }

    /// Called by the executor when a task has ended, whatever the outcome.
    /// `ended` is the final state and run time, if this run decided it.
    pub(crate) fn finished(&self, id: &str, demand: Demand, ended: Option<(State, f64)>) {
        self.lock_stops().remove(id);
        lock(&self.pins).remove(id);
        self.admission.release(demand);
        if let Some((state, seconds)) = ended {
            self.metrics.task_finished(state, seconds);
        }
    }

    /// After a restart: queued tasks go back in the queue; a task that was running
    /// when the worker died cannot be resumed and ends SYSTEM_ERROR.
    pub(crate) async fn recover(&self) -> Result<(), DbError> {
        let tasks = self.with_db(|db| db.all()).await?;
        for task in tasks {
            let id = task.id.clone().unwrap_or_default();
            match task.state {
                Some(State::Queued) => match self.rules().check(&task) {
                    Ok(demand) => {
                        let pins = self.input_digests(&task);
                        self.queue(id, demand, pins)
                    }
                    Err(why) => self.fail_on_recovery(id, why).await?,
                },
                Some(State::Initializing | State::Running | State::Canceling) => {
                    let why = "the worker stopped while this task was running \
                               (crash or kill); it was not finished";
                    self.fail_on_recovery(id, why.into()).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn fail_on_recovery(&self, id: String, why: String) -> Result<(), DbError> {
        tracing::warn!(task = %id, "{why}");
        self.with_db(move |db| {
            db.update(&id, |task| {
                task.state = Some(State::SystemError);
                if task.logs.is_empty() {
                    task.logs.push(TaskLog::default());
                }
                let log = task.logs.last_mut().expect("just ensured");
                log.system_logs.push(why);
                log.end_time = Some(now_rfc3339());
                true
            })
        })
        .await?;
        Ok(())
    }

    /// Admit tasks as resources allow, each on its own tokio task. Runs until aborted.
    pub(crate) async fn dispatch(self: Arc<Self>) {
        loop {
            let (id, demand) = self.admission.next().await;
            let worker = self.clone();
            tokio::spawn(async move { executor::run(worker, id, demand).await });
        }
    }

    /// Stop every running task (they end SYSTEM_ERROR) and wait for them to record it.
    pub(crate) async fn shut_down(&self) {
        for stop in self.lock_stops().values() {
            stop.send_replace(Stop::Shutdown);
        }
        let deadline = tokio::time::Instant::now() + self.config.kill_grace * 2;
        while self.admission.counts().1 > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn lock_stops(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Stop>>> {
        self.stops.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

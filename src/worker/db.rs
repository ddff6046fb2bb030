//! Durable task state: one redb file holding every task as its TES JSON.
//!
//! redb rather than SQLite: pure Rust (no C toolchain or bundled libsqlite3 in the
//! build), quick to compile, and ACID with a crash-safe commit, which is all a
//! key-value table of tasks needs. Each write is its own transaction, so a SIGKILL at
//! any moment leaves either the old or the new task JSON, never a torn one. Writes are
//! durable (fsync) except the one intermediate state a crash may lose harmlessly
//! ([`Db::update_volatile`]).
//!
//! Keys are task ids; ids start with a zero-padded sequence number, so key order is
//! creation order and a page token is simply the last id returned.
//! Not here: what the states mean (the `executor` and `admission` modules) or HTTP.
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use sha2::{Digest as _, Sha256};

use super::waits::Changes;
use crate::tes::types::{State, Task};

/// id -> task JSON.
const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
/// Counters; `next_seq` numbers new tasks.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const NEXT_SEQ: &str = "next_seq";
/// Counts reopen probes (a write that proves the file is writable again).
const PROBES: &str = "reopen_probes";

/// A database failure; the task store cannot be trusted further in this request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    #[error("task database: {0}")]
    Redb(#[from] redb::Error),
    #[error(
        "task database is closed after an I/O error (full disk?); the worker reopens it \
         once it can write again"
    )]
    Closed,
    #[error("task database holds a task that is not valid JSON ({id}): {source}")]
    Corrupt {
        id: String,
        source: serde_json::Error,
    },
}

macro_rules! impl_from_redb {
    ($($ty:ty),*) => { $(impl From<$ty> for DbError {
        fn from(e: $ty) -> Self { DbError::Redb(e.into()) }
    })* };
}
impl_from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::CompactionError,
    redb::SetDurabilityError
);

impl DbError {
    /// An I/O failure (ENOSPC and the like): the database must be reopened once the
    /// cause is gone (redb refuses every later write with "Previous I/O error").
    pub(crate) fn is_io(&self) -> bool {
        matches!(
            self,
            DbError::Closed | DbError::Redb(redb::Error::Io(_) | redb::Error::PreviousIo)
        )
    }
}

/// Which tasks a listing wants.
#[derive(Debug, Default, Clone)]
pub(crate) struct ListFilter {
    pub(crate) name_prefix: Option<String>,
    pub(crate) state: Option<State>,
    /// `(key, value)`; an empty value matches any value of the key (TES v1.1).
    pub(crate) tags: Vec<(String, Option<String>)>,
}

impl ListFilter {
    fn matches(&self, task: &Task) -> bool {
        let name_ok = self.name_prefix.as_deref().is_none_or(|prefix| {
            task.name
                .as_deref()
                .is_some_and(|name| name.starts_with(prefix))
        });
        let state_ok = self.state.is_none_or(|s| task.state == Some(s));
        let tags_ok = self.tags.iter().all(|(k, v)| match (task.tags.get(k), v) {
            (Some(have), Some(want)) => have == want,
            (Some(_), None) => true,
            (None, _) => false,
        });
        name_ok && state_ok && tags_ok
    }
}

/// The task table. Cheap to clone; every method is blocking (call from a blocking
/// thread in async code). The lock is only taken for writing by [`Db::compact`] and
/// [`Db::reopen`]; `None` inside it means closed after an I/O error.
#[derive(Clone)]
pub(crate) struct Db {
    path: PathBuf,
    db: Arc<RwLock<Option<Database>>>,
    /// Told of every committed change to a task (long polls wait on it).
    changes: Arc<Changes>,
}

/// The open database, held for the length of one call.
struct Open<'a>(RwLockReadGuard<'a, Option<Database>>);

impl Deref for Open<'_> {
    type Target = Database;
    fn deref(&self) -> &Database {
        self.0
            .as_ref()
            .expect("Db::db returns Open only for an open database")
    }
}

impl Db {
    /// Open or create the database at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, DbError> {
        Ok(Self {
            path: path.to_path_buf(),
            db: Arc::new(RwLock::new(Some(open_tables(path)?))),
            changes: Arc::default(),
        })
    }

    /// The change signals of this database's tasks.
    pub(crate) fn changes(&self) -> &Arc<Changes> {
        &self.changes
    }

    fn db(&self) -> Result<Open<'_>, DbError> {
        let guard = self.db.read().unwrap_or_else(|e| e.into_inner());
        match *guard {
            Some(_) => Ok(Open(guard)),
            None => Err(DbError::Closed),
        }
    }

    /// Close and open the file again (after an I/O error), then prove it writable
    /// with a small commit. On failure the database stays closed.
    pub(crate) fn reopen(&self) -> Result<(), DbError> {
        let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
        // The old handle must be gone before the file can be opened again.
        *slot = None;
        let db = open_tables(&self.path)?;
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let probes = meta.get(PROBES)?.map_or(0, |v| v.value());
            meta.insert(PROBES, probes + 1)?;
        }
        txn.commit()?;
        *slot = Some(db);
        Ok(())
    }

    /// Delete a task; returns whether it existed.
    pub(crate) fn delete(&self, id: &str) -> Result<bool, DbError> {
        let db = self.db()?;
        let txn = db.begin_write()?;
        let existed = txn.open_table(TASKS)?.remove(id)?.is_some();
        txn.commit()?;
        self.changes.publish(id);
        Ok(existed)
    }

    /// Give freed pages back to the file system (the file shrinks). Waits for the
    /// calls in progress; none can start meanwhile.
    pub(crate) fn compact(&self) -> Result<bool, DbError> {
        let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
        let db = slot.as_mut().ok_or(DbError::Closed)?;
        Ok(db.compact()?)
    }

    /// Store a new task: assigns its id, sets it QUEUED and stamps `creation_time`.
    pub(crate) fn create(&self, mut task: Task) -> Result<Task, DbError> {
        let db = self.db()?;
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let seq = meta.get(NEXT_SEQ)?.map_or(1, |v| v.value());
            meta.insert(NEXT_SEQ, seq + 1)?;
            task.id = Some(new_id(seq));
            task.state = Some(State::Queued);
            task.creation_time = Some(now_rfc3339());
            let mut tasks = txn.open_table(TASKS)?;
            tasks.insert(
                task.id.as_deref().unwrap_or_default(),
                to_json(&task).as_slice(),
            )?;
        }
        txn.commit()?;
        Ok(task)
    }

    /// The task with this id.
    pub(crate) fn get(&self, id: &str) -> Result<Option<Task>, DbError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let tasks = txn.open_table(TASKS)?;
        let value = tasks.get(id)?;
        value.map(|v| from_json(id, v.value())).transpose()
    }

    /// Change a task in one transaction. `change` returns false to leave it untouched
    /// (e.g. a cancel that lost the race with completion). Returns the task as stored
    /// afterwards, or None if there is no such task.
    pub(crate) fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut Task) -> bool,
    ) -> Result<Option<Task>, DbError> {
        self.update_with(id, Durability::Immediate, change)
    }

    /// [`Db::update`] without waiting for the disk: the change is visible at once but
    /// survives a crash only once a later (durable) commit is made. For an
    /// intermediate state whose loss is harmless: after a crash the task is found in
    /// its last durable state (e.g. QUEUED: it runs again), never ahead of it, so no
    /// crash can make a task look finished that did not finish.
    pub(crate) fn update_volatile(
        &self,
        id: &str,
        change: impl FnOnce(&mut Task) -> bool,
    ) -> Result<Option<Task>, DbError> {
        self.update_with(id, Durability::None, change)
    }

    fn update_with(
        &self,
        id: &str,
        durability: Durability,
        change: impl FnOnce(&mut Task) -> bool,
    ) -> Result<Option<Task>, DbError> {
        let db = self.db()?;
        let mut txn = db.begin_write()?;
        txn.set_durability(durability)?;
        let task = {
            let mut tasks = txn.open_table(TASKS)?;
            let current = tasks.get(id)?.map(|v| from_json(id, v.value()));
            let Some(mut task) = current.transpose()? else {
                return Ok(None);
            };
            let original = task.clone();
            if !change(&mut task) {
                return Ok(Some(original));
            }
            tasks.insert(id, to_json(&task).as_slice())?;
            task
        };
        txn.commit()?;
        self.changes.publish(id);
        Ok(Some(task))
    }

    /// Up to `limit` tasks matching `filter`, after the id `after` (a page token), in
    /// creation order; plus the token of the next page if there may be more.
    pub(crate) fn list(
        &self,
        filter: &ListFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Task>, Option<String>), DbError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let tasks = txn.open_table(TASKS)?;
        let range = match after {
            Some(after) => tasks
                .range::<&str>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))?,
            None => tasks.iter()?,
        };
        let mut page = Vec::new();
        for entry in range {
            let (key, value) = entry.map_err(DbError::from)?;
            let task = from_json(key.value(), value.value())?;
            if !filter.matches(&task) {
                continue;
            }
            if page.len() == limit {
                let token = page.last().and_then(|t: &Task| t.id.clone());
                return Ok((page, token));
            }
            page.push(task);
        }
        Ok((page, None))
    }

    /// Finished tasks that ended (or, with no end time, were created) before `cutoff`.
    pub(crate) fn finished_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Task>, DbError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let tasks = txn.open_table(TASKS)?;
        let mut found = Vec::new();
        for entry in tasks.iter()? {
            let (key, value) = entry.map_err(DbError::from)?;
            let task = from_json(key.value(), value.value())?;
            if !task.state.is_some_and(State::is_terminal) {
                continue;
            }
            let ended = task.logs.last().and_then(|log| log.end_time.as_deref());
            let ended = ended.or(task.creation_time.as_deref());
            let ended = ended.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            if ended.is_some_and(|t| t < cutoff) {
                found.push(task);
            }
        }
        Ok(found)
    }

    /// Run `work` in one durable write transaction, for tables other modules keep in
    /// this file (the upload journal, `uploads`).
    pub(crate) fn write<T>(
        &self,
        work: impl FnOnce(&redb::WriteTransaction) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let db = self.db()?;
        let txn = db.begin_write()?;
        let value = work(&txn)?;
        txn.commit()?;
        Ok(value)
    }

    /// Run `work` in one read transaction (see [`Db::write`]).
    pub(crate) fn read<T>(
        &self,
        work: impl FnOnce(&redb::ReadTransaction) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        work(&self.db()?.begin_read()?)
    }

    /// Every task, in creation order (used once, at start-up, for recovery).
    pub(crate) fn all(&self) -> Result<Vec<Task>, DbError> {
        Ok(self.list(&ListFilter::default(), None, usize::MAX)?.0)
    }
}

fn open_tables(path: &Path) -> Result<Database, DbError> {
    let db = Database::create(path)?;
    let txn = db.begin_write()?;
    txn.open_table(TASKS)?;
    txn.open_table(META)?;
    txn.commit()?;
    Ok(db)
}

/// `<10-digit sequence>-<8 hex>`: ordered by creation, and unique even if the data
/// directory is wiped and the sequence restarts (a client polling an old id must
/// not silently get a different task).
fn new_id(seq: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let salt = Sha256::digest(format!("{nanos}:{}:{seq}", std::process::id()));
    format!("{seq:010}-{}", hex::encode(&salt[..4]))
}

/// Current time as TES timestamps are written (RFC 3339, UTC, microseconds).
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn to_json(task: &Task) -> Vec<u8> {
    serde_json::to_vec(task).expect("a TES task always serializes")
}

fn from_json(id: &str, bytes: &[u8]) -> Result<Task, DbError> {
    serde_json::from_slice(bytes).map_err(|source| DbError::Corrupt {
        id: id.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, tag: Option<(&str, &str)>) -> Task {
        let mut task = Task {
            name: Some(name.into()),
            ..Task::default()
        };
        if let Some((k, v)) = tag {
            task.tags.insert(k.into(), v.into());
        }
        task
    }

    #[test]
    fn tasks_survive_reopen_and_ids_keep_counting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.redb");
        let first = Db::open(&path).unwrap().create(named("a", None)).unwrap();
        let db = Db::open(&path).unwrap();
        assert_eq!(
            db.get(first.id.as_deref().unwrap()).unwrap(),
            Some(first.clone())
        );
        let second = db.create(named("b", None)).unwrap();
        assert!(second.id > first.id, "{:?} !> {:?}", second.id, first.id);
        assert_eq!(second.state, Some(State::Queued));
    }

    #[test]
    fn update_can_decline() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.redb")).unwrap();
        let id = db.create(named("a", None)).unwrap().id.unwrap();
        let after = db.update(&id, |t| {
            t.state = Some(State::Running);
            false
        });
        assert_eq!(after.unwrap().unwrap().state, Some(State::Queued));
        db.update(&id, |t| {
            t.state = Some(State::Running);
            true
        })
        .unwrap();
        assert_eq!(db.get(&id).unwrap().unwrap().state, Some(State::Running));
        assert!(db.update("nope", |_| true).unwrap().is_none());
    }

    #[test]
    fn list_filters_and_pages() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.redb")).unwrap();
        for i in 0..5 {
            let tag = (i % 2 == 0).then_some(("even", "yes"));
            db.create(named(&format!("job-{i}"), tag)).unwrap();
        }
        db.create(named("other", None)).unwrap();
        let filter = ListFilter {
            name_prefix: Some("job-".into()),
            ..ListFilter::default()
        };
        let (page, token) = db.list(&filter, None, 3).unwrap();
        assert_eq!(page.len(), 3);
        let (rest, end) = db.list(&filter, token.as_deref(), 3).unwrap();
        let names: Vec<_> = page
            .iter()
            .chain(&rest)
            .map(|t| t.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["job-0", "job-1", "job-2", "job-3", "job-4"]);
        assert_eq!(end, None);
        let evens = ListFilter {
            tags: vec![("even".into(), None)],
            ..ListFilter::default()
        };
        assert_eq!(db.list(&evens, None, 100).unwrap().0.len(), 3);
        let wrong = ListFilter {
            tags: vec![("even".into(), Some("no".into()))],
            ..ListFilter::default()
        };
        assert!(db.list(&wrong, None, 100).unwrap().0.is_empty());
    }
}

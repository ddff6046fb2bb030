//! Crash-safe output uploads: a journal of the multipart uploads in progress.
//!
//! A large output goes to the store as a multipart upload, whose staging (a hidden
//! `<dest>#<n>` file on `file://`, an unfinished upload on S3) is kept for ever if the
//! worker dies before finishing or aborting it. object_store does not give out the
//! upload's id, so before starting one the worker writes the store key into the task
//! database (a durable commit) and deletes the entry when the upload is done. An
//! upload that fails is cleaned up at once. Entries left by a crash or a kill are
//! cleaned up by [`sweep`], which housekeeping runs at start-up and on its timer:
//! see `store::staged` for what each kind of store leaves and how it is removed.
//! An entry whose cleanup fails (store unreachable) stays and is retried.
//!
//! Small outputs (one request) are not journaled: S3 and the other object stores
//! stage nothing for them; on `file://` a kill during that short write can leave one
//! `<dest>#<n>` file of at most the multipart threshold (5 MiB).
//!
//! Only one upload or cleanup of a store key runs at a time in this process
//! ([`Journal`]), so a cleanup never aborts a live upload of ours.
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use redb::{ReadableTable, TableDefinition, TableError};

use super::db::{now_rfc3339, DbError};
use super::service::Worker;
use crate::logging::error_chain;
use crate::store::{Digest, Unfinished};

/// `<start time>/<pid>/<n>` -> store key of a multipart upload that has not ended.
const JOURNAL: TableDefinition<&str, &str> = TableDefinition::new("unfinished_uploads");

/// The store keys being uploaded or cleaned up right now in this process.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    busy: Mutex<HashSet<String>>,
}

/// A store key held by one upload or cleanup; released on drop.
struct Claim<'a> {
    journal: &'a Journal,
    key: String,
}

impl Journal {
    fn try_claim(&self, key: &str) -> Option<Claim<'_>> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        busy.insert(key.to_owned()).then(|| Claim {
            journal: self,
            key: key.to_owned(),
        })
    }

    /// Wait until no other upload or cleanup of `key` runs here, then hold it.
    async fn claim(&self, key: &str) -> Claim<'_> {
        loop {
            if let Some(claim) = self.try_claim(key) {
                return claim;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut busy = self.journal.busy.lock().unwrap_or_else(|e| e.into_inner());
        busy.remove(&self.key);
    }
}

/// Upload one output file to `key` (the store's `put_file`), journaled when it goes
/// multipart. The error is a message for the task's system log.
pub(crate) async fn put_output(
    worker: &Worker,
    file: &Path,
    key: &ObjectPath,
) -> Result<(Digest, u64), String> {
    let store = &worker.config.store;
    let len = tokio::fs::metadata(file).await.map_or(0, |m| m.len());
    if !store.sends_multipart(len) {
        return store.put_file(file, key).await.map_err(|e| error_chain(&e));
    }
    let _claim = worker.uploads.claim(key.as_ref()).await;
    let id = entry_id();
    let (entry, object) = (id.clone(), key.to_string());
    worker
        .with_db(move |db| {
            db.write(|txn| {
                txn.open_table(JOURNAL)?
                    .insert(entry.as_str(), object.as_str())?;
                Ok(())
            })
        })
        .await
        .map_err(|e| format!("recording the upload in the task database: {e}"))?;
    let sent = store.put_file(file, key).await;
    if let Err(err) = &sent {
        // A failed multipart upload may still be open in the store: remove it now.
        if let Err(cleanup) = store.abort_unfinished_uploads(key).await {
            tracing::warn!(%key, "upload failed and its cleanup too (retried later): {}",
                error_chain(&cleanup));
            return Err(error_chain(err));
        }
    }
    forget(worker, id).await;
    sent.map_err(|e| error_chain(&e))
}

/// Clean up after every journaled upload that is not running now, dropping the entries
/// whose cleanup succeeded. Failures are logged and retried on the next sweep.
pub(crate) async fn sweep(worker: &Worker) {
    let entries = match worker.with_db(|db| db.read(journaled)).await {
        Ok(entries) => entries,
        Err(err) => {
            tracing::warn!("reading the upload journal: {err}");
            return;
        }
    };
    let store = &worker.config.store;
    for (id, key) in entries {
        let Some(_claim) = worker.uploads.try_claim(&key) else {
            continue; // being uploaded right now
        };
        let Ok(object) = ObjectPath::parse(&key) else {
            tracing::warn!(%key, "dropping an upload journal entry that is not a store key");
            forget(worker, id).await;
            continue;
        };
        let started = id.split('/').next().unwrap_or_default();
        match store.abort_unfinished_uploads(&object).await {
            Ok(Unfinished::Removed(0)) => {}
            Ok(Unfinished::Removed(count)) => tracing::info!(
                %key, count, started,
                "removed the staging of an unfinished upload (the worker stopped during it)"
            ),
            Ok(Unfinished::NotApplicable(why)) => {
                tracing::info!(%key, started, "unfinished upload left as is: {why}")
            }
            Err(err) => {
                tracing::warn!(%key, started, "cleaning up an unfinished upload (will retry): {}",
                    error_chain(&err));
                continue;
            }
        }
        forget(worker, id).await;
    }
}

/// Drop a journal entry; a failure only means a harmless cleanup at the next sweep.
async fn forget(worker: &Worker, id: String) {
    let removed = worker
        .with_db(move |db| {
            db.write(|txn| {
                txn.open_table(JOURNAL)?.remove(id.as_str())?;
                Ok(())
            })
        })
        .await;
    if let Err(err) = removed {
        tracing::warn!("clearing an upload journal entry: {err}");
    }
}

/// Every journal entry, oldest first.
fn journaled(txn: &redb::ReadTransaction) -> Result<Vec<(String, String)>, DbError> {
    let table = match txn.open_table(JOURNAL) {
        Ok(table) => table,
        // No large upload was ever journaled in this database.
        Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut entries = Vec::new();
    for entry in table.iter()? {
        let (id, key) = entry?;
        entries.push((id.value().to_owned(), key.value().to_owned()));
    }
    Ok(entries)
}

/// A unique, time-ordered journal key that also says when the upload started.
fn entry_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}/{}/{n}", now_rfc3339(), std::process::id())
}

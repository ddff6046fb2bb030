//! Keeping the worker's disk bounded while it runs for months:
//! - the input cache stays within a byte budget (`--cache-max-bytes`): least recently
//!   used entries go first (an entry's mtime is set each time a task uses it), and
//!   never one that a queued or running task needs;
//! - finished tasks (COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR, CANCELED) older than
//!   `--keep-finished-hours` are deleted, with the `runs/` objects they uploaded, and
//!   the database is then compacted so its file shrinks too.
//!
//! Runs on a blocking thread every [`Worker::housekeeping`] tick and after each task.
use std::collections::HashSet;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The retention settings (flags of `bb-remote worker`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retention {
    pub(crate) cache_max_bytes: u64,
    pub(crate) keep_finished: Duration,
}

impl Retention {
    /// How often the sweep runs: a quarter of the retention, between 1 s and 10 min.
    pub(crate) fn interval(&self) -> Duration {
        (self.keep_finished / 4).clamp(Duration::from_secs(1), Duration::from_secs(600))
    }
}

/// What a cache trim did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Trimmed {
    pub(crate) kept_bytes: u64,
    pub(crate) evicted: usize,
}

/// Evict least recently used entries of the cache directory `dir` (files named by a
/// digest's hex) until the rest fits `budget`; entries named in `pinned` stay.
/// Other files (a download's temporary file) are neither counted nor touched.
pub(crate) fn trim_cache(dir: &Path, budget: u64, pinned: &HashSet<String>) -> io::Result<Trimmed> {
    let mut entries = Vec::new();
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Trimmed::default()),
        Err(e) => return Err(e),
    };
    for entry in listing {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let meta = entry.metadata()?;
        if meta.is_file() {
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            entries.push((used, meta.len(), name));
        }
    }
    let mut total: u64 = entries.iter().map(|e| e.1).sum();
    entries.sort();
    let mut evicted = 0;
    for (_, size, name) in entries {
        if total <= budget {
            break;
        }
        if pinned.contains(&name) {
            continue;
        }
        match std::fs::remove_file(dir.join(&name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        total -= size;
        evicted += 1;
    }
    Ok(Trimmed {
        kept_bytes: total,
        evicted,
    })
}

/// Mark a cache entry as just used (its mtime is the LRU clock).
pub(crate) fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dir: &Path, byte: u8, size: usize, age_secs: u64) -> String {
        let name = hex::encode([byte; 32]);
        let path = dir.join(&name);
        std::fs::write(&path, vec![0u8; size]).unwrap();
        let file = std::fs::File::options().append(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(age_secs))
            .unwrap();
        name
    }

    #[test]
    fn oldest_unpinned_entries_go_first_until_the_budget_holds() {
        let dir = tempfile::tempdir().unwrap();
        let oldest = entry(dir.path(), 1, 100, 300);
        let pinned_old = entry(dir.path(), 2, 100, 200);
        let recent = entry(dir.path(), 3, 100, 100);
        let newest = entry(dir.path(), 4, 100, 0);
        std::fs::write(dir.path().join("tmp-download"), vec![0u8; 1000]).unwrap();
        let pinned = HashSet::from([pinned_old.clone()]);
        let trimmed = trim_cache(dir.path(), 250, &pinned).unwrap();
        assert_eq!(
            trimmed,
            Trimmed {
                kept_bytes: 200,
                evicted: 2
            }
        );
        let left: HashSet<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let expected = HashSet::from([pinned_old, newest, "tmp-download".to_owned()]);
        assert_eq!(left, expected, "evicted {oldest} and {recent}");
        // Used again: its mtime moves, so it outlives an older entry.
        touch(&dir.path().join(hex::encode([4u8; 32])));
        assert_eq!(trim_cache(dir.path(), 0, &pinned).unwrap().kept_bytes, 100);
    }
}

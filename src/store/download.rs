//! Verified downloads: the destination only ever holds a complete, checked file.
//!
//! Bytes go to a temporary file in the destination directory (same filesystem, so
//! the final rename is atomic), hashed as they are written. On a digest mismatch, an
//! error, or the future being dropped, the temporary file is removed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::{Digest, Store, StoreError};

impl Store {
    /// Download `key` to `dest_dir/name`, verifying its SHA-256 against `expected`.
    /// Returns the size written.
    pub async fn download_verified(
        &self,
        key: &ObjectPath,
        dest_dir: &Path,
        name: &str,
        expected: &Digest,
    ) -> Result<u64, StoreError> {
        self.download_verified_within(key, dest_dir, name, expected, None)
            .await
    }

    /// [`Store::download_verified`], refusing more than `limit` bytes: whoever can write
    /// the store could otherwise fill our disk before the digest check fails.
    pub(crate) async fn download_verified_within(
        &self,
        key: &ObjectPath,
        dest_dir: &Path,
        name: &str,
        expected: &Digest,
        limit: Option<Limit>,
    ) -> Result<u64, StoreError> {
        check_file_name(name)?;
        let got = self
            .inner
            .get(key)
            .await
            .map_err(|e| StoreError::from_store(key, e))?;
        // The announced size is not trusted (the stream is counted too), but a
        // declared excess is refused before anything is written.
        if let Some(limit) = limit.filter(|limit| got.meta.size > limit.bytes) {
            return Err(StoreError::TooLarge {
                object: key.to_string(),
                limit: limit.bytes,
                bound: limit.bound,
            });
        }
        let body = got.into_stream();
        let mut partial = PartialFile::create(dest_dir, name).await?;
        let (_, size) = partial.fill_verified(key, body, expected, limit).await?;
        partial.persist(&dest_dir.join(name)).await?;
        Ok(size)
    }

    /// Stream the object at `url` (inside this store) into `dest`, a new file the
    /// caller owns (it must not exist), hashing as it writes; at most `size` bytes
    /// are accepted, and the digest must be `expected`. Returns the SHA-256 and size
    /// of the bytes written, so the caller need not read the file again. On any
    /// failure `dest` is removed. Not synced to disk: the caller renames it into place, as bb leaves its
    /// own outputs (a sync per file costs more than a tiny proof's whole transfer).
    pub(crate) async fn download_to(
        &self,
        url: &str,
        dest: &Path,
        expected: &Digest,
        size: u64,
    ) -> Result<(Digest, u64), StoreError> {
        let key = self.key_for_url(url)?;
        let store_err = |e| StoreError::from_store(&key, e);
        let body = self.inner.get(&key).await.map_err(store_err)?.into_stream();
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .await
            .map_err(StoreError::io(dest))?;
        let mut partial = PartialFile {
            path: dest.to_path_buf(),
            file,
            persisted: false,
        };
        let limit = Limit {
            bytes: size,
            bound: "the size announced for it",
        };
        let written = partial
            .fill_verified(&key, body, expected, Some(limit))
            .await?;
        partial.file.flush().await.map_err(StoreError::io(dest))?;
        partial.persisted = true;
        Ok(written)
    }

    /// [`Store::download_verified`] for a URL, which must point into this store.
    pub async fn download_url_verified(
        &self,
        url: &str,
        dest_dir: &Path,
        name: &str,
        expected: &Digest,
    ) -> Result<u64, StoreError> {
        let key = self.key_for_url(url)?;
        self.download_verified(&key, dest_dir, name, expected).await
    }
}

/// The most bytes a download may bring, and what set that bound (for the error).
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub bytes: u64,
    pub bound: &'static str,
}

/// A destination name must be one plain path component: no traversal, no nesting.
fn check_file_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name == "." || name == ".." {
        "a relative path component"
    } else if name.contains('/') || name.contains('\0') {
        "contains '/' or NUL"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

/// A temporary file that deletes itself unless persisted.
struct PartialFile {
    path: PathBuf,
    file: tokio::fs::File,
    persisted: bool,
}

impl PartialFile {
    /// Write `body` (the object `key`) into this file while hashing it; refuse more
    /// than `limit` bytes when one is known and a digest other than `expected`.
    /// Returns the digest and size of what was written.
    async fn fill_verified(
        &mut self,
        key: &ObjectPath,
        mut body: futures::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
        expected: &Digest,
        limit: Option<Limit>,
    ) -> Result<(Digest, u64), StoreError> {
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StoreError::from_store(key, e))?;
            written += chunk.len() as u64;
            if let Some(limit) = limit.filter(|limit| written > limit.bytes) {
                return Err(StoreError::TooLarge {
                    object: key.to_string(),
                    limit: limit.bytes,
                    bound: limit.bound,
                });
            }
            hasher.update(&chunk);
            self.write(&chunk).await?;
        }
        let actual = Digest::from_hasher(hasher);
        if actual != *expected {
            return Err(StoreError::DigestMismatch {
                object: key.to_string(),
                expected: *expected,
                actual,
            });
        }
        Ok((actual, written))
    }

    async fn create(dir: &Path, name: &str) -> Result<Self, StoreError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".{name}.partial-{}-{n}", std::process::id()));
            let opened = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .await;
            match opened {
                Ok(file) => {
                    return Ok(Self {
                        path,
                        file,
                        persisted: false,
                    })
                }
                // A leftover from a crashed process with the same pid: pick another name.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StoreError::io(path)(e)),
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.file
            .write_all(bytes)
            .await
            .map_err(StoreError::io(&self.path))
    }

    /// fsync, rename into place, then fsync the directory so the rename is durable.
    async fn persist(mut self, dest: &Path) -> Result<(), StoreError> {
        self.file
            .flush()
            .await
            .map_err(StoreError::io(&self.path))?;
        self.file
            .sync_all()
            .await
            .map_err(StoreError::io(&self.path))?;
        tokio::fs::rename(&self.path, dest)
            .await
            .map_err(StoreError::io(dest))?;
        self.persisted = true;
        if let Some(dir) = dest.parent() {
            let dir = tokio::fs::File::open(dir)
                .await
                .map_err(StoreError::io(dir))?;
            dir.sync_all().await.map_err(StoreError::io(dest))?;
        }
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;

    use super::*;

    async fn store_with(content: &[u8]) -> (Store, ObjectPath) {
        let url = url::Url::parse("memory:///").unwrap();
        let store = Store::new(Arc::new(InMemory::new()), url, ObjectPath::ROOT);
        let key = ObjectPath::from("blob");
        store
            .inner
            .put(&key, content.to_vec().into())
            .await
            .unwrap();
        (store, key)
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn verified_download_lands_under_its_name_only() {
        let (store, key) = store_with(b"proof bytes").await;
        let dir = tempfile::tempdir().unwrap();
        let d = Digest::of_bytes(b"proof bytes");
        let n = store
            .download_verified(&key, dir.path(), "proof", &d)
            .await
            .unwrap();
        assert_eq!(n, 11);
        assert_eq!(
            std::fs::read(dir.path().join("proof")).unwrap(),
            b"proof bytes"
        );
        assert_eq!(entries(dir.path()), ["proof"]);
    }

    #[tokio::test]
    async fn mismatch_leaves_nothing_behind() {
        let (store, key) = store_with(b"tampered").await;
        let dir = tempfile::tempdir().unwrap();
        let expected = Digest::of_bytes(b"original");
        let err = store
            .download_verified(&key, dir.path(), "proof", &expected)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&expected.hex()) && msg.contains(&Digest::of_bytes(b"tampered").hex()),
            "{msg}"
        );
        assert!(entries(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn traversal_names_are_rejected_before_any_io() {
        let (store, key) = store_with(b"x").await;
        let dir = tempfile::tempdir().unwrap();
        for name in ["", ".", "..", "../x", "a/b"] {
            let err = store
                .download_verified(&key, dir.path(), name, &Digest::of_bytes(b"x"))
                .await
                .unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidName { .. }),
                "{name:?}: {err:?}"
            );
        }
        assert!(entries(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn download_to_stops_at_the_announced_size_and_leaves_nothing() {
        let content = vec![7u8; 100_000];
        let (store, key) = store_with(&content).await;
        let url = format!("memory:///{key}");
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("tmp-0");
        let d = Digest::of_bytes(&content);
        let err = store.download_to(&url, &dest, &d, 1000).await.unwrap_err();
        assert!(
            matches!(err, StoreError::TooLarge { limit: 1000, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("1000"), "{err}");
        assert!(entries(dir.path()).is_empty());
        let wrong = Digest::of_bytes(b"other");
        let err = store
            .download_to(&url, &dest, &wrong, 100_000)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err:?}");
        assert!(entries(dir.path()).is_empty());
        let got = store.download_to(&url, &dest, &d, 100_000).await.unwrap();
        assert_eq!(got, (d, 100_000));
        assert_eq!(std::fs::read(&dest).unwrap(), content);
        // The destination is the caller's new file: an existing one is never overwritten.
        let err = store
            .download_to(&url, &dest, &d, 100_000)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
        assert_eq!(std::fs::read(&dest).unwrap().len(), 100_000);
    }

    #[tokio::test]
    async fn missing_object_is_not_found() {
        let (store, _) = store_with(b"x").await;
        let dir = tempfile::tempdir().unwrap();
        let err = store
            .download_verified(
                &ObjectPath::from("nope"),
                dir.path(),
                "f",
                &Digest::of_bytes(b""),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
        assert!(entries(dir.path()).is_empty());
    }
}

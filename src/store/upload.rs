//! Uploads: content-addressed inputs (create-if-absent) and the worker's outputs.
//!
//! Memory stays bounded whatever the file size: a file up to the multipart threshold
//! is sent in one request, anything larger goes multipart with a bounded number of
//! parts in flight. The digest is computed from the very bytes that are sent, so a
//! file that changes under us is caught before the object is committed.
//!
//! The defaults keep a 100 MB witness upload under ~30 MB of RSS for the whole shim:
//! 5 MiB parts (S3's minimum), two in flight plus the one being filled; small files
//! go several at once, large ones one at a time ([`Store::upload_many`]).

use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;

use super::digest::READ_CHUNK;
use super::webdav::lost_mkcol_race;
use super::{hash_file, webdav, Digest, Store, StoreError};

/// Size thresholds for uploads.
#[derive(Debug, Clone, Copy)]
pub struct UploadTuning {
    /// Files larger than this go multipart.
    pub multipart_threshold: u64,
    /// Size of each multipart part (S3 requires at least 5 MiB except the last).
    pub part_size: usize,
    /// Parts uploading at once, per file.
    pub part_concurrency: usize,
}

impl Default for UploadTuning {
    fn default() -> Self {
        Self {
            multipart_threshold: 5 * 1024 * 1024,
            part_size: 5 * 1024 * 1024,
            part_concurrency: 2,
        }
    }
}

/// What [`Store::upload_cas`] did with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadOutcome {
    pub digest: Digest,
    pub size: u64,
    /// False when the blob was already in the store and nothing was sent.
    pub uploaded: bool,
}

impl Store {
    /// Put a local file into the content-addressed area unless it is already there.
    pub async fn upload_cas(&self, path: &Path) -> Result<UploadOutcome, StoreError> {
        if self.no_multipart {
            // Refused before hashing and before any request: the store could never
            // take it. (Checked again on the hashed size: the file may have grown.)
            let len = tokio::fs::metadata(path)
                .await
                .map_err(StoreError::io(path))?;
            self.check_single_put(path, len.len())?;
        }
        let (digest, size) = hash_file(path).await?;
        self.check_single_put(path, size)?;
        let key = self.cas_key(&digest);
        let outcome = |uploaded| UploadOutcome {
            digest,
            size,
            uploaded,
        };
        let mode = match self.inner.head(&key).await {
            Ok(meta) if meta.size == size => return Ok(outcome(false)),
            Ok(meta) => {
                // A damaged blob: create-if-absent would keep it, so replace it.
                tracing::warn!(%key, found = meta.size, size, "replacing a CAS blob of the wrong size");
                PutMode::Overwrite
            }
            Err(object_store::Error::NotFound { .. }) => PutMode::Create,
            Err(e) => return Err(StoreError::from_store(&key, e)),
        };
        let sent = self.send_file(path, &key, mode, Some(digest)).await;
        match sent {
            Ok(_) => Ok(outcome(true)),
            // Someone else uploaded the same content first: same key, same bytes.
            Err(StoreError::Backend {
                source: object_store::Error::AlreadyExists { .. },
                ..
            }) => Ok(outcome(false)),
            Err(e) => Err(e),
        }
    }

    /// [`Store::upload_cas`] for many files. Files up to the multipart threshold go
    /// `parallelism` at a time, then larger ones one at a time (each already sends
    /// parts in parallel), so peak memory is the larger of the two, not their sum.
    /// Results are in the order of `paths`; the first error stops the rest.
    pub async fn upload_many(
        &self,
        paths: &[PathBuf],
        parallelism: usize,
    ) -> Result<Vec<UploadOutcome>, StoreError> {
        let mut large = Vec::with_capacity(paths.len());
        for path in paths {
            // A file that cannot be read fails in upload_cas, with its path.
            let len = tokio::fs::metadata(path).await.map_or(0, |m| m.len());
            large.push(len > self.tuning.multipart_threshold);
        }
        let pick = |want_large: bool| {
            paths
                .iter()
                .zip(&large)
                .enumerate()
                .filter(move |(_, (_, is_large))| **is_large == want_large)
                .map(|(i, (path, _))| (i, path))
        };
        let mut done: Vec<(usize, UploadOutcome)> = futures::stream::iter(pick(false))
            .map(|(i, p)| async move { Ok::<_, StoreError>((i, self.upload_cas(p).await?)) })
            .buffer_unordered(parallelism.max(1))
            .try_collect()
            .await?;
        for (i, path) in pick(true) {
            done.push((i, self.upload_cas(path).await?));
        }
        done.sort_by_key(|(i, _)| *i);
        Ok(done.into_iter().map(|(_, o)| o).collect())
    }

    /// Upload a local file to `key` (overwriting), returning its digest and size.
    pub async fn put_file(
        &self,
        path: &Path,
        key: &ObjectPath,
    ) -> Result<(Digest, u64), StoreError> {
        self.send_file(path, key, PutMode::Overwrite, None).await
    }

    /// Stream `path` to `key`; when `expected` is given, refuse to commit other content.
    async fn send_file(
        &self,
        path: &Path,
        key: &ObjectPath,
        mode: PutMode,
        expected: Option<Digest>,
    ) -> Result<(Digest, u64), StoreError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(StoreError::io(path))?;
        let len = file.metadata().await.map_err(StoreError::io(path))?.len();
        if len > self.tuning.multipart_threshold {
            self.check_single_put(path, len)?;
            return self.send_multipart(file, path, key, expected).await;
        }
        // Bounded read: a file that grew past the threshold is caught by the digest.
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(self.tuning.multipart_threshold + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(StoreError::io(path))?;
        let digest = Digest::of_bytes(&bytes);
        check_unchanged(path, expected, digest)?;
        let size = bytes.len() as u64;
        let put = self.put_single(key, PutPayload::from(bytes), mode).await;
        put.map_err(|e| StoreError::from_store(key, e))?;
        Ok((digest, size))
    }

    async fn put_single(
        &self,
        key: &ObjectPath,
        payload: PutPayload,
        mode: PutMode,
    ) -> object_store::Result<()> {
        let mut put = self.put_attempt(key, &payload, &mode).await;
        // WebDAV (`http://`): a PUT into a missing collection makes object_store create
        // the parents with MKCOL, and when a concurrent PUT created one first the server
        // answers 405, which object_store reports as an error. The collections up to that
        // one now exist, so each further attempt gets at least one level deeper.
        for _ in 0..key.parts().count() {
            if !matches!(&put, Err(e) if lost_mkcol_race(e)) {
                break;
            }
            put = self.put_attempt(key, &payload, &mode).await;
        }
        put
    }

    async fn put_attempt(
        &self,
        key: &ObjectPath,
        payload: &PutPayload,
        mode: &PutMode,
    ) -> object_store::Result<()> {
        let opts = PutOptions::from(mode.clone());
        match self.inner.put_opts(key, payload.clone(), opts).await {
            // Stores without conditional writes: overwriting a CAS key with the same
            // bytes is harmless, so plain put is an acceptable fallback.
            Err(object_store::Error::NotImplemented { .. }) if matches!(mode, PutMode::Create) => {
                self.inner.put(key, payload.clone()).await.map(drop)
            }
            other => other.map(drop),
        }
    }

    /// A store without multipart uploads takes a file only up to the threshold, the
    /// most that goes up in one request.
    fn check_single_put(&self, path: &Path, size: u64) -> Result<(), StoreError> {
        let limit = self.tuning.multipart_threshold;
        if self.no_multipart && size > limit {
            return Err(webdav::too_large(&self.base_url, path, size, limit));
        }
        Ok(())
    }

    /// Multipart has no create-if-absent mode; for CAS keys overwriting identical
    /// content is harmless, and nothing is visible until `finish`.
    async fn send_multipart(
        &self,
        mut file: tokio::fs::File,
        path: &Path,
        key: &ObjectPath,
        expected: Option<Digest>,
    ) -> Result<(Digest, u64), StoreError> {
        let store_err = |e| StoreError::from_store(key, e);
        let upload = self.inner.put_multipart(key).await.map_err(store_err)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.tuning.part_size);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut size = 0u64;
        let read_result: Result<(), StoreError> = async {
            loop {
                let n = file.read(&mut buf).await.map_err(StoreError::io(path))?;
                if n == 0 {
                    return Ok(());
                }
                writer
                    .wait_for_capacity(self.tuning.part_concurrency)
                    .await
                    .map_err(store_err)?;
                hasher.update(&buf[..n]);
                writer.write(&buf[..n]);
                size += n as u64;
            }
        }
        .await;
        let digest = Digest::from_hasher(hasher);
        let verdict = read_result.and_then(|()| check_unchanged(path, expected, digest));
        if let Err(e) = verdict {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(%key, error = %abort, "could not abort a multipart upload");
            }
            return Err(e);
        }
        writer.finish().await.map_err(store_err)?;
        Ok((digest, size))
    }
}

fn check_unchanged(
    path: &Path,
    expected: Option<Digest>,
    actual: Digest,
) -> Result<(), StoreError> {
    match expected {
        Some(e) if e != actual => Err(StoreError::SourceChanged {
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;

    use super::*;

    fn memory_store(tuning: UploadTuning) -> Store {
        let url = url::Url::parse("memory:///base").unwrap();
        Store::new(Arc::new(InMemory::new()), url, ObjectPath::from("base")).with_tuning(tuning)
    }

    fn small_parts() -> UploadTuning {
        UploadTuning {
            multipart_threshold: 1000,
            part_size: 300,
            part_concurrency: 2,
        }
    }

    #[tokio::test]
    async fn second_upload_of_same_content_sends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.gz");
        std::fs::write(&file, b"witness").unwrap();
        let store = memory_store(UploadTuning::default());
        let first = store.upload_cas(&file).await.unwrap();
        assert!(first.uploaded);
        assert_eq!(first.digest, Digest::of_bytes(b"witness"));
        let second = store.upload_cas(&file).await.unwrap();
        assert!(!second.uploaded);
        let got = store
            .inner
            .get(&store.cas_key(&first.digest))
            .await
            .unwrap();
        assert_eq!(got.bytes().await.unwrap().as_ref(), b"witness");
    }

    #[tokio::test]
    async fn truncated_blob_in_the_store_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w");
        std::fs::write(&file, b"full content").unwrap();
        let store = memory_store(UploadTuning::default());
        let key = store.cas_key(&Digest::of_bytes(b"full content"));
        store
            .inner
            .put(&key, b"full".to_vec().into())
            .await
            .unwrap();
        assert!(store.upload_cas(&file).await.unwrap().uploaded);
        let got = store.inner.get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(got.as_ref(), b"full content");
    }

    #[tokio::test]
    async fn multipart_upload_round_trips_content() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big");
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
        std::fs::write(&file, &data).unwrap();
        let store = memory_store(small_parts());
        let out = store.upload_cas(&file).await.unwrap();
        assert_eq!(
            (out.digest, out.size, out.uploaded),
            (Digest::of_bytes(&data), 5000, true)
        );
        let got = store.inner.get(&store.cas_key(&out.digest)).await.unwrap();
        assert_eq!(got.bytes().await.unwrap().as_ref(), &data[..]);
    }

    #[tokio::test]
    async fn changed_source_is_not_committed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, vec![1u8; 4000]).unwrap();
        let store = memory_store(small_parts());
        let key = store.cas_key(&Digest::of_bytes(b"claimed"));
        let err = store
            .send_file(
                &file,
                &key,
                PutMode::Create,
                Some(Digest::of_bytes(b"claimed")),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::SourceChanged { .. }), "{err:?}");
        assert!(
            store.inner.head(&key).await.is_err(),
            "nothing may be committed"
        );
    }

    #[tokio::test]
    async fn upload_many_keeps_order() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..5)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                std::fs::write(&p, format!("content {i}")).unwrap();
                p
            })
            .collect();
        let store = memory_store(small_parts());
        let outs = store.upload_many(&paths, 3).await.unwrap();
        assert_eq!(outs.len(), 5);
        for (i, out) in outs.iter().enumerate() {
            assert_eq!(
                out.digest,
                Digest::of_bytes(format!("content {i}").as_bytes())
            );
        }
        // Large (multipart) and small files mixed: still in the order given.
        let big = dir.path().join("big");
        std::fs::write(&big, vec![3u8; 2500]).unwrap();
        let mixed = [paths[0].clone(), big, paths[1].clone()];
        let outs = store.upload_many(&mixed, 3).await.unwrap();
        assert_eq!(outs[1].digest, Digest::of_bytes(&[3u8; 2500]));
        assert_eq!(outs[2].digest, Digest::of_bytes(b"content 1"));
    }
}

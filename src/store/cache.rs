//! The worker's local cache of content-addressed blobs: `<root>/sha256/<hex>`.
//!
//! A blob is fetched once and verified on the way in; entries only appear by atomic
//! rename of a verified file, so an entry's existence is proof of its content.
//! Concurrent fetches of one digest each write their own temporary file and the last
//! rename wins with identical bytes.

use std::path::{Path, PathBuf};

use super::download::Limit;
use super::{Digest, Store, StoreError};

/// A directory of verified blobs, keyed by digest.
#[derive(Debug, Clone)]
pub struct LocalCasCache {
    root: PathBuf,
    /// The largest blob fetched; a bigger answer from the store is refused.
    max_entry: Option<Limit>,
}

impl LocalCasCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            max_entry: None,
        }
    }

    /// Refuse to fetch a blob larger than `bytes`; `bound` says what set it (for the
    /// error), e.g. the cache's byte budget.
    pub fn with_max_entry(mut self, bytes: u64, bound: &'static str) -> Self {
        self.max_entry = Some(Limit { bytes, bound });
        self
    }

    /// Where the blob with `digest` lives (or will live) in the cache.
    pub(crate) fn path_for(&self, digest: &Digest) -> PathBuf {
        self.dir().join(digest.hex())
    }

    fn dir(&self) -> PathBuf {
        self.root.join("sha256")
    }

    /// The cached file for `digest`, fetching it from `store` if absent.
    pub async fn fetch(&self, store: &Store, digest: &Digest) -> Result<PathBuf, StoreError> {
        let path = self.path_for(digest);
        if is_file(&path).await? {
            return Ok(path);
        }
        let dir = self.dir();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(StoreError::io(&dir))?;
        let key = store.cas_key(digest);
        store
            .download_verified_within(&key, &dir, &digest.hex(), digest, self.max_entry)
            .await?;
        Ok(path)
    }

    /// Fetch the blob a TES input URL names. The URL must be a content-addressed URL
    /// of `store`; anything else is refused.
    pub async fn fetch_url(
        &self,
        store: &Store,
        url: &str,
    ) -> Result<(Digest, PathBuf), StoreError> {
        let key = store.key_for_url(url)?;
        let digest = store
            .digest_for_key(&key)
            .ok_or_else(|| StoreError::OutsideStore {
                url: url.to_owned(),
                store: store.base_url().to_string(),
                reason: "not a content-addressed blob (cas/sha256/<hex>)",
            })?;
        Ok((digest, self.fetch(store, &digest).await?))
    }
}

async fn is_file(path: &Path) -> Result<bool, StoreError> {
    match tokio::fs::metadata(path).await {
        Ok(meta) => Ok(meta.is_file()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use object_store::path::Path as ObjectPath;
    use object_store::ObjectStoreExt;

    use super::*;

    fn store() -> Store {
        let url = url::Url::parse("s3://bucket/p").unwrap();
        Store::new(Arc::new(InMemory::new()), url, ObjectPath::from("p"))
    }

    #[tokio::test]
    async fn concurrent_fetches_of_one_blob_agree() {
        let store = store();
        let data = vec![42u8; 300_000];
        let digest = Digest::of_bytes(&data);
        store
            .object_store()
            .put(&store.cas_key(&digest), data.clone().into())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = LocalCasCache::new(dir.path());
        let url = store.cas_url(&digest);
        let fetches = (0..8).map(|_| cache.fetch_url(&store, url.as_str()));
        for result in futures::future::join_all(fetches).await {
            let (d, path) = result.unwrap();
            assert_eq!(d, digest);
            assert_eq!(std::fs::read(path).unwrap(), data);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sha256"))
            .unwrap()
            .collect();
        assert_eq!(names.len(), 1, "no temporary files may remain");
    }

    #[tokio::test]
    async fn corrupt_blob_is_not_cached() {
        let store = store();
        let digest = Digest::of_bytes(b"real");
        store
            .object_store()
            .put(&store.cas_key(&digest), b"fake".to_vec().into())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = LocalCasCache::new(dir.path());
        let err = cache.fetch(&store, &digest).await.unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err:?}");
        assert!(!cache.path_for(&digest).exists());
    }

    #[tokio::test]
    async fn a_blob_over_the_entry_limit_is_refused_and_leaves_nothing() {
        let store = store();
        let digest = Digest::of_bytes(b"small");
        // A hostile store answers a huge object under the small blob's key.
        store
            .object_store()
            .put(&store.cas_key(&digest), vec![0u8; 100_000].into())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = LocalCasCache::new(dir.path()).with_max_entry(1000, "the test's cap");
        let err = cache.fetch(&store, &digest).await.unwrap_err();
        assert!(
            matches!(err, StoreError::TooLarge { limit: 1000, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("the test's cap"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("sha256"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "nothing may remain: {left:?}");
    }

    #[tokio::test]
    async fn non_cas_urls_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LocalCasCache::new(dir.path());
        let err = cache
            .fetch_url(&store(), "s3://bucket/p/runs/x/out/proof")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::OutsideStore { .. }), "{err:?}");
        let err = cache
            .fetch_url(&store(), "s3://elsewhere/p/cas/sha256/00")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::OutsideStore { .. }), "{err:?}");
    }
}

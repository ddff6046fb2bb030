//! What an unfinished multipart upload leaves in the store, and removing it.
//!
//! A process killed in the middle of [`Store::put_file`] for a large file (multipart,
//! see `upload`) leaves the upload's staging behind, invisible to listings and kept
//! for ever. object_store does not tell us the upload's id, so the worker journals the
//! key before it starts and, after a crash, asks the store what is left for that key:
//! - `file://`: object_store's LocalFileSystem writes to `<dest>#<n>` (n = 1, 2, ...)
//!   next to the destination and renames it when done: those files are removed;
//! - S3: `ListMultipartUploads` for the key (a request object_store has no call for,
//!   signed by its own SigV4 signer as a presigned URL), then `AbortMultipartUpload`
//!   for each upload of exactly that key;
//! - Azure: uncommitted blocks are discarded by the service after 7 days; nothing to do;
//! - GCS: object_store uploads large files with the XML multipart API, whose
//!   unfinished uploads stay until aborted; not cleaned here (an
//!   `AbortIncompleteMultipartUpload` lifecycle rule on the bucket does it);
//! - memory and HTTP: nothing is staged.
//!
//! Every upload of that key is taken as the crashed one: the caller makes sure no
//! upload of the same key is running in this process (a second worker sharing the
//! store and writing the same `runs/` key at the same moment is not guarded against).

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3;
use object_store::local::LocalFileSystem;
use object_store::multipart::MultipartStore;
use object_store::path::Path as ObjectPath;
use object_store::signer::{SignedUrlOptions, Signer};
use object_store::ObjectStoreScheme;

use super::{Store, StoreError};

/// Pages of `ListMultipartUploads` read at most for one key (1000 uploads each).
const MAX_PAGES: usize = 20;
/// Largest listing answer read.
const MAX_LISTING_BYTES: usize = 1 << 20;
/// Time allowed for one listing request.
const LISTING_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`Store::abort_unfinished_uploads`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfinished {
    /// This many staging files or uploads were removed (maybe 0).
    Removed(usize),
    /// The backend keeps nothing we can or need to remove; the text says why.
    NotApplicable(&'static str),
}

impl Store {
    /// Whether [`Store::put_file`] sends a file of `len` bytes as a multipart upload,
    /// the only kind that can leave staging behind in an object store. Never on a store
    /// without multipart (`http(s)://`): there a file that large is refused up front.
    pub fn sends_multipart(&self, len: u64) -> bool {
        len > self.tuning.multipart_threshold && !self.no_multipart
    }

    /// Remove what unfinished uploads to `key` left behind (see the module docs).
    /// The caller must be sure no upload of `key` is in progress.
    pub async fn abort_unfinished_uploads(
        &self,
        key: &ObjectPath,
    ) -> Result<Unfinished, StoreError> {
        let (scheme, _) =
            ObjectStoreScheme::parse(&self.base_url).map_err(|e| StoreError::InvalidConfig {
                what: self.base_url.to_string(),
                reason: e.to_string(),
            })?;
        match scheme {
            ObjectStoreScheme::Local => remove_local_staging(key).await.map(Unfinished::Removed),
            ObjectStoreScheme::AmazonS3 => match &self.s3 {
                Some(s3) => abort_s3_uploads(s3, key).await.map(Unfinished::Removed),
                None => Ok(Unfinished::NotApplicable(
                    "no S3 client to sign requests with",
                )),
            },
            ObjectStoreScheme::MicrosoftAzure => Ok(Unfinished::NotApplicable(
                "Azure discards uncommitted blocks by itself after 7 days",
            )),
            ObjectStoreScheme::GoogleCloudStorage => Ok(Unfinished::NotApplicable(
                "unfinished GCS multipart uploads are not cleaned by the worker; \
                 use an AbortIncompleteMultipartUpload lifecycle rule",
            )),
            _ => Ok(Unfinished::NotApplicable("this store stages nothing")),
        }
    }

    /// S3 only: the ids of the unfinished multipart uploads of exactly `key` (tests
    /// use it to see that a crash left one). Other stores: empty.
    pub async fn unfinished_s3_uploads(&self, key: &ObjectPath) -> Result<Vec<String>, StoreError> {
        match &self.s3 {
            Some(s3) => list_s3_uploads(s3, key).await,
            None => Ok(Vec::new()),
        }
    }
}

/// `<dest>#<digits>` files next to `key`'s file: LocalFileSystem's staging names.
async fn remove_local_staging(key: &ObjectPath) -> Result<usize, StoreError> {
    // The same mapping object_store uses; our file:// stores are rooted at `/`.
    let dest = LocalFileSystem::new()
        .path_to_filesystem(key)
        .map_err(|e| StoreError::from_store(key, e))?;
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Ok(0);
    };
    let stem = format!("{}#", name.to_string_lossy());
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let listing = match std::fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(StoreError::io(&dir)(e)),
        };
        let mut removed = 0;
        for entry in listing {
            let entry = entry.map_err(StoreError::io(&dir))?;
            let file_name = entry.file_name();
            let staged = file_name
                .to_str()
                .and_then(|n| n.strip_prefix(&stem))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if staged && entry.file_type().is_ok_and(|t| t.is_file()) {
                let path = entry.path();
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io(&path)(e)),
                }
            }
        }
        Ok(removed)
    })
    .await
    .map_err(|e| StoreError::io(&dest)(std::io::Error::other(e)))?
}

async fn abort_s3_uploads(s3: &Arc<AmazonS3>, key: &ObjectPath) -> Result<usize, StoreError> {
    let ids = list_s3_uploads(s3, key).await?;
    for id in &ids {
        match s3.abort_multipart(key, id).await {
            // Finished or aborted meanwhile: gone either way.
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(StoreError::from_store(key, e)),
        }
    }
    Ok(ids.len())
}

/// `GET /<bucket>?uploads&prefix=<key>`, every page; the ids of uploads of `key` itself.
async fn list_s3_uploads(s3: &Arc<AmazonS3>, key: &ObjectPath) -> Result<Vec<String>, StoreError> {
    let failed = |reason: String| {
        StoreError::from_store(
            key,
            object_store::Error::Generic {
                store: "S3",
                source: format!("listing unfinished multipart uploads: {reason}").into(),
            },
        )
    };
    super::ensure_tls_provider();
    let http = reqwest::Client::builder()
        .timeout(LISTING_TIMEOUT)
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let mut ids = Vec::new();
    let mut marker: Option<(String, String)> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![("uploads", String::new()), ("prefix", key.to_string())];
        if let Some((key_marker, id_marker)) = &marker {
            query.push(("key-marker", key_marker.clone()));
            query.push(("upload-id-marker", id_marker.clone()));
        }
        let options = SignedUrlOptions::default().with_query(query);
        let url = s3
            .signed_url_opts(
                http::Method::GET,
                &ObjectPath::ROOT,
                LISTING_TIMEOUT,
                &options,
            )
            .await
            .map_err(|e| StoreError::from_store(key, e))?;
        let response = http
            .get(url)
            .send()
            .await
            .map_err(|e| failed(e.without_url().to_string()))?;
        let status = response.status();
        let body = read_bounded(response)
            .await
            .map_err(|e| failed(e.without_url().to_string()))?;
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            let head: String = text.chars().take(300).collect();
            return Err(failed(format!("HTTP {status}: {head}")));
        }
        let page: ListUploads =
            quick_xml::de::from_str(&text).map_err(|e| failed(format!("bad answer: {e}")))?;
        ids.extend(
            page.uploads
                .into_iter()
                .filter(|u| u.key == key.as_ref())
                .map(|u| u.upload_id),
        );
        match (
            page.is_truncated,
            page.next_key_marker,
            page.next_upload_id_marker,
        ) {
            (true, Some(k), Some(u)) => marker = Some((k, u)),
            _ => return Ok(ids),
        }
    }
    Ok(ids)
}

/// The body, refusing more than [`MAX_LISTING_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> reqwest::Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_LISTING_BYTES {
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The parts of a `ListMultipartUploadsResult` we use.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListUploads {
    #[serde(default, rename = "Upload")]
    uploads: Vec<Upload>,
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Upload {
    key: String,
    upload_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    #[test]
    fn listing_answers_parse_with_pages_and_escapes() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>runs/a&amp;b/proof</NextKeyMarker><NextUploadIdMarker>id2</NextUploadIdMarker>
  <MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>runs/a&amp;b/proof</Key><UploadId>id1</UploadId>
    <Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload>
  <Upload><Key>runs/a&amp;b/proof</Key><UploadId>id2</UploadId></Upload>
</ListMultipartUploadsResult>"#;
        let page: ListUploads = quick_xml::de::from_str(xml).unwrap();
        assert_eq!(page.uploads.len(), 2);
        assert_eq!(page.uploads[0].key, "runs/a&b/proof");
        assert_eq!(page.uploads[1].upload_id, "id2");
        assert!(page.is_truncated);
        assert_eq!(page.next_upload_id_marker.as_deref(), Some("id2"));
        let empty = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>\
                     </ListMultipartUploadsResult>";
        let page: ListUploads = quick_xml::de::from_str(empty).unwrap();
        assert!(page.uploads.is_empty() && !page.is_truncated);
    }

    #[tokio::test]
    async fn local_staging_files_of_the_key_only_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let url = url::Url::from_directory_path(dir.path()).unwrap();
        let store = Store::from_url(url.as_str(), &Env::default()).unwrap();
        let out = dir.path().join("runs/t/out");
        std::fs::create_dir_all(&out).unwrap();
        for name in [
            "proof", "proof#1", "proof#12", "proof#x", "proofs#1", "vk#1",
        ] {
            std::fs::write(out.join(name), name).unwrap();
        }
        let key = store
            .key_for_url(&format!("{url}runs/t/out/proof"))
            .unwrap();
        assert!(store.sends_multipart(store.tuning.multipart_threshold + 1));
        let found = store.abort_unfinished_uploads(&key).await.unwrap();
        assert_eq!(found, Unfinished::Removed(2));
        let mut left: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["proof", "proof#x", "proofs#1", "vk#1"]);
        // Nothing there (or no directory at all): nothing to do.
        let gone = store.key_for_url(&format!("{url}runs/none/proof")).unwrap();
        assert_eq!(
            store.abort_unfinished_uploads(&gone).await.unwrap(),
            Unfinished::Removed(0)
        );
    }
}

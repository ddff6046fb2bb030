//! The content-addressed store against real backends: the local filesystem
//! (`file://` in a temporary directory) and a real S3 server (moto) on loopback.

use std::path::{Path, PathBuf};

use bb_remote::config::Env;
use bb_remote::store::{Digest, LocalCasCache, Store, StoreError, UploadTuning};
use object_store::ObjectStoreExt;

use crate::support::testbed::S3Server;

/// Deterministic, non-repeating-looking content.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The behaviour every backend must show; each backend test calls this.
pub(crate) async fn conformance(store: &Store) {
    let work = tempfile::tempdir().unwrap();
    let witness = write(work.path(), "witness.gz", &pattern(70_000, 1));

    // Upload twice: the second time nothing is sent.
    let first = store.upload_cas(&witness).await.unwrap();
    assert!(first.uploaded);
    assert_eq!(
        (first.digest, first.size),
        (Digest::of_bytes(&pattern(70_000, 1)), 70_000)
    );
    let second = store.upload_cas(&witness).await.unwrap();
    assert!(
        !second.uploaded,
        "an existing blob must not be uploaded again"
    );

    // The CAS URL resolves back to the key, and verified download gives the bytes.
    let url = store.cas_url(&first.digest);
    let dest = tempfile::tempdir().unwrap();
    let n = store
        .download_url_verified(url.as_str(), dest.path(), "w", &first.digest)
        .await
        .unwrap();
    assert_eq!(n, 70_000);
    assert_eq!(
        std::fs::read(dest.path().join("w")).unwrap(),
        pattern(70_000, 1)
    );

    // The worker's view: cache the blob by URL, upload an output, read it back.
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = LocalCasCache::new(cache_dir.path());
    let (digest, cached) = cache.fetch_url(store, url.as_str()).await.unwrap();
    assert_eq!(
        (digest, std::fs::read(cached).unwrap()),
        (first.digest, pattern(70_000, 1))
    );
    let out_url = store.url_for_relative("runs/k1/out/proof");
    let out_key = store.key_for_url(out_url.as_str()).unwrap();
    let proof = write(work.path(), "proof", b"proof bytes");
    let (proof_digest, _) = store.put_file(&proof, &out_key).await.unwrap();
    assert_eq!(proof_digest, Digest::of_bytes(b"proof bytes"));
    store
        .download_verified(&out_key, dest.path(), "proof", &proof_digest)
        .await
        .unwrap();

    // Tampered object: the mismatch is reported and nothing is left in the destination.
    let victim = store.cas_key(&first.digest);
    store
        .object_store()
        .put(&victim, b"evil".to_vec().into())
        .await
        .unwrap();
    let clean = tempfile::tempdir().unwrap();
    let err = store
        .download_verified(&victim, clean.path(), "w", &first.digest)
        .await
        .unwrap_err();
    match &err {
        StoreError::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(
                (*expected, *actual),
                (first.digest, Digest::of_bytes(b"evil"))
            );
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(
        entries(clean.path()).is_empty(),
        "{:?}",
        entries(clean.path())
    );

    // A URL outside the store is refused before any I/O.
    let err = store
        .download_url_verified("file:///etc/passwd", clean.path(), "x", &first.digest)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::OutsideStore { .. }), "{err:?}");

    // A missing blob is NotFound, not a transient failure.
    let missing = Digest::of_bytes(b"never uploaded");
    let err = cache.fetch(store, &missing).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

/// Multipart thresholds small enough for a test, but S3's 5 MiB minimum part size.
fn small_multipart() -> UploadTuning {
    UploadTuning {
        multipart_threshold: 6 * 1024 * 1024,
        part_size: 5 * 1024 * 1024,
        part_concurrency: 2,
    }
}

#[tokio::test]
async fn file_store_conformance() {
    let root = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(root.path()).unwrap();
    let store = Store::from_url(url.as_str(), &Env::default()).unwrap();
    conformance(&store).await;
    // The layout is the documented one.
    let cas = root.path().join("cas/sha256");
    assert_eq!(entries(&cas), [Digest::of_bytes(&pattern(70_000, 1)).hex()]);
}

#[tokio::test]
async fn file_store_large_upload_is_complete_and_parallel_uploads_agree() {
    let root = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(root.path()).unwrap();
    let store = Store::from_url(url.as_str(), &Env::default())
        .unwrap()
        .with_tuning(small_multipart());
    let work = tempfile::tempdir().unwrap();
    let big = pattern(13 * 1024 * 1024 + 3, 7);
    let paths = vec![
        write(work.path(), "big", &big),
        write(work.path(), "small", b"vk"),
        write(work.path(), "big-again", &big),
    ];
    let outs = store.upload_many(&paths, 3).await.unwrap();
    assert_eq!(outs[0].digest, Digest::of_bytes(&big));
    assert_eq!(outs[0].digest, outs[2].digest);
    let stored = std::fs::read(root.path().join("cas/sha256").join(outs[0].digest.hex())).unwrap();
    assert!(stored == big, "stored blob differs from the source");
}

#[tokio::test]
async fn unreachable_s3_endpoint_is_transient() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = Env::from_pairs([
        ("AWS_ENDPOINT", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ]);
    let store = Store::from_url("s3://bucket/p", &env).unwrap();
    let work = tempfile::tempdir().unwrap();
    let err = store
        .upload_cas(&write(work.path(), "f", b"x"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

/// The store's view of the shared moto server: credentials through an injected Env.
fn s3_env(s3: &S3Server) -> Env {
    Env::from_pairs(s3.aws_env())
}

#[tokio::test]
async fn s3_store_conformance() {
    let s3 = S3Server::start("bb-cas");
    let store = Store::from_url("s3://bb-cas/team/a", &s3_env(&s3)).unwrap();
    conformance(&store).await;
}

#[tokio::test]
async fn s3_large_file_goes_multipart_and_is_not_resent() {
    let s3 = S3Server::start("bb-big");
    let store = Store::from_url("s3://bb-big/p", &s3_env(&s3))
        .unwrap()
        .with_tuning(small_multipart());
    let work = tempfile::tempdir().unwrap();
    let big = pattern(12 * 1024 * 1024 + 11, 3);
    let path = write(work.path(), "pk", &big);
    let out = store.upload_cas(&path).await.unwrap();
    assert!(out.uploaded);
    // S3 names a multipart object's ETag "<md5 of part md5s>-<part count>".
    let meta = store
        .object_store()
        .head(&store.cas_key(&out.digest))
        .await
        .unwrap();
    let etag = meta.e_tag.unwrap_or_default();
    assert!(
        etag.trim_matches('"').ends_with("-3"),
        "expected 3 parts, ETag {etag}"
    );
    assert_eq!(meta.size, big.len() as u64);
    assert!(!store.upload_cas(&path).await.unwrap().uploaded);

    let dest = tempfile::tempdir().unwrap();
    store
        .download_verified(&store.cas_key(&out.digest), dest.path(), "pk", &out.digest)
        .await
        .unwrap();
    assert!(std::fs::read(dest.path().join("pk")).unwrap() == big);
}

#[tokio::test]
async fn s3_concurrent_uploads_of_one_new_blob_all_succeed() {
    // Racing uploads meet S3's conditional PUT (If-None-Match); losing the race counts
    // as success, and the blob stays intact.
    let s3 = S3Server::start("bb-race");
    let store = Store::from_url("s3://bb-race", &s3_env(&s3)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let path = write(work.path(), "vk", b"verification key");
    let digest = Digest::of_bytes(b"verification key");
    let outs = store.upload_many(&vec![path; 4], 4).await.unwrap();
    assert!(outs.iter().all(|o| o.digest == digest), "{outs:?}");
    assert!(outs.iter().any(|o| o.uploaded), "{outs:?}");
    let got = store
        .object_store()
        .get(&store.cas_key(&digest))
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"verification key");
}

#[tokio::test]
async fn s3_wrong_credentials_or_bucket_are_not_transient() {
    let s3 = S3Server::start("bb-exists");
    let store = Store::from_url("s3://no-such-bucket/p", &s3_env(&s3)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let err = store
        .upload_cas(&write(work.path(), "f", b"x"))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err:?}");
}

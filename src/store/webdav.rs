//! What an `http(s)://` (WebDAV) store needs beyond object_store's HTTP store.
//!
//! Three things, each found against a real server (WsgiDAV 4.3.3 on cheroot 11.1.2,
//! `real_stores::http_on_wsgidav`):
//!
//! - **No connection reuse.** WsgiDAV answers a HEAD that fails (the 404 of every
//!   "is this blob there yet?" check) with an HTML body after the headers
//!   (mar10/wsgidav#371, open). HTTP forbids a body on a HEAD answer, so the client
//!   stops reading after the headers and puts the connection back in its pool. When
//!   the server writes the body late (it is a second write, delayed on a busy
//!   machine), the next request on that connection reads `<!DOCTYPE ...` as its
//!   answer and fails with hyper's `Parse(Version)`, a parse error object_store does
//!   not retry. A fresh connection per request leaves such stray bytes on a
//!   connection nobody uses again.
//! - **Concurrent uploads into a new folder.** object_store makes missing parent
//!   collections with MKCOL; when two uploads race, the slower MKCOL gets 405 (the
//!   collection exists now) and object_store gives up. [`lost_mkcol_race`] lets the
//!   upload try again.
//! - **One request per object.** object_store's HTTP store has no multipart upload, so
//!   a file above the multipart threshold is refused up front by [`too_large`], with
//!   the limit named, instead of failing with "not implemented".

use std::path::Path;

use url::Url;

use super::StoreError;
use crate::redact::Redacted;

/// object_store's `pool_max_idle_per_host` for the HTTP store: keep no idle
/// connection, so every request gets a fresh one (see the module documentation).
pub(crate) const NO_CONNECTION_REUSE: &str = "0";

/// Whether an HTTP-store PUT failed only because a parent collection appeared
/// meanwhile: MKCOL answered 405. Anything else (unreachable, 5xx, 403) is not retried
/// here, so the store's own retry budget stays the bound on how long a failing PUT
/// takes.
///
/// object_store 0.14 does not expose the status: a 405 is an `Error::Generic` whose
/// source is its request error type, which lives in a private module (nothing to
/// downcast to). So the decision reads the two parts that error is made of, each at a
/// fixed place: the request line (`Error performing MKCOL <url> ...`) and, as its
/// source, the answer (`Server returned non-2xx status code: 405 ...`). A URL that
/// merely contains `MKCOL` or `405` matches neither.
pub(crate) fn lost_mkcol_race(err: &object_store::Error) -> bool {
    let object_store::Error::Generic {
        store: "HTTP",
        source,
    } = err
    else {
        return false;
    };
    let Some(answer) = source.source() else {
        return false;
    };
    source.to_string().starts_with("Error performing MKCOL ")
        && answer
            .to_string()
            .starts_with("Server returned non-2xx status code: 405 ")
}

/// The error for a `size`-byte file at `path` on a store that takes at most `limit`
/// bytes per object. The store URL is shown without its password.
pub(crate) fn too_large(store: &Url, path: &Path, size: u64, limit: u64) -> StoreError {
    StoreError::NoMultipart {
        path: path.to_path_buf(),
        size,
        limit,
        store: Redacted(store.as_str()).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::env_vars::Env;
    use crate::store::{Store, UploadTuning};

    /// Nothing listens on port 9: had a request been made (upload_cas asks whether the
    /// blob exists), it would have failed as unreachable, not with NoMultipart.
    #[tokio::test]
    async fn a_file_over_the_limit_is_refused_before_any_request_naming_the_limit() {
        let store = Store::from_url(
            "http://dav:s3cret-pw@127.0.0.1:9/dav/bb",
            &Env::from_pairs(Vec::<(String, String)>::new()),
        )
        .unwrap();
        let limit = UploadTuning::default().multipart_threshold;
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("witness.gz");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(limit + 1)
            .unwrap();
        let key = store.key_for_url(store.url_for_relative("runs/t/out/proof").as_str());
        for err in [
            store.upload_cas(&big).await.unwrap_err(),
            store.put_file(&big, &key.unwrap()).await.unwrap_err(),
        ] {
            assert!(matches!(err, StoreError::NoMultipart { .. }), "{err:?}");
            let text = err.to_string();
            for want in [
                "witness.gz",
                "5242881 bytes",
                "5242880 bytes per object",
                "s3://",
            ] {
                assert!(text.contains(want), "{want:?} missing in: {text}");
            }
            assert!(!text.contains("s3cret-pw"), "{text}");
        }
        // The worker journals only multipart uploads (to clean up after a crash): none here.
        assert!(!store.sends_multipart(limit + 1));
    }

    /// TEST DOUBLE of WsgiDAV's answer to a HEAD that fails, with the timing a busy
    /// machine gives it: the 404's headers at once, its (forbidden) body only when the
    /// next request arrives on the same connection. Every other request gets 201.
    /// Returns the URL and the count of stray bodies sent.
    async fn late_head_body_server() -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        const BODY: &[u8] = b"<!DOCTYPE html>404";
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/dav", listener.local_addr().unwrap());
        let strays = Arc::new(AtomicUsize::new(0));
        let counter = strays.clone();
        // Ends with the test's runtime; each connection serves at most 16 requests.
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let (read, mut write) = conn.into_split();
                    let mut read = BufReader::new(read);
                    let mut owed = false;
                    for _ in 0..16 {
                        let (mut method, mut length, mut line) = (String::new(), 0, String::new());
                        loop {
                            line.clear();
                            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let line = line.trim_end();
                            if line.is_empty() {
                                break;
                            }
                            if method.is_empty() {
                                method = line.split(' ').next().unwrap_or("").to_owned();
                            }
                            if let Some((name, value)) = line.split_once(':') {
                                if name.eq_ignore_ascii_case("content-length") {
                                    length = value.trim().parse().unwrap_or(0);
                                }
                            }
                        }
                        let mut body = vec![0; length];
                        read.read_exact(&mut body).await.unwrap();
                        if owed {
                            counter.fetch_add(1, Ordering::SeqCst);
                            write.write_all(BODY).await.unwrap();
                            owed = false;
                        }
                        let answer = if method == "HEAD" {
                            owed = true;
                            format!(
                                "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n",
                                BODY.len()
                            )
                        } else {
                            "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n".to_owned()
                        };
                        write.write_all(answer.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        (url, strays)
    }

    /// Each request on its own connection: the late body of a failed HEAD never becomes
    /// the answer to the upload that follows it (with connections reused, this upload
    /// fails with hyper's `Parse(Version)`).
    #[tokio::test]
    async fn a_late_body_after_a_failed_head_cannot_spoil_the_next_request() {
        let (url, strays) = late_head_body_server().await;
        let store =
            Store::from_url(&url, &Env::from_pairs(Vec::<(String, String)>::new())).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for i in 0..3 {
            let file = dir.path().join(format!("input{i}"));
            std::fs::write(&file, format!("input {i}")).unwrap();
            let out = store.upload_cas(&file).await;
            assert!(
                out.as_ref().is_ok_and(|o| o.uploaded),
                "upload {i}: {out:?}"
            );
        }
        assert_eq!(strays.load(Ordering::SeqCst), 0, "a connection was reused");
    }

    /// The shape of object_store 0.14's failed request: the request line, with the
    /// server's answer as its source (TEST DOUBLE of its private error type; the real
    /// one is exercised by `real_stores::http_on_wsgidav`, which fails without the
    /// retry).
    #[derive(Debug)]
    struct Failed {
        method: &'static str,
        url: &'static str,
        answer: Answer,
    }
    #[derive(Debug)]
    struct Answer(&'static str);
    impl std::fmt::Display for Answer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Server returned non-2xx status code: {}: ", self.0)
        }
    }
    impl std::error::Error for Answer {}
    impl std::fmt::Display for Failed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "Error performing {} {} in 1ms - {}",
                self.method, self.url, self.answer
            )
        }
    }
    impl std::error::Error for Failed {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.answer)
        }
    }

    #[test]
    fn only_a_405_from_mkcol_on_the_http_store_is_a_lost_race() {
        let failed = |store, method, url, status| object_store::Error::Generic {
            store,
            source: Box::new(Failed {
                method,
                url,
                answer: Answer(status),
            }),
        };
        let runs = "http://h/dav/runs";
        let gone = "405 Method Not Allowed";
        assert!(lost_mkcol_race(&failed("HTTP", "MKCOL", runs, gone)));
        assert!(!lost_mkcol_race(&failed("S3", "MKCOL", runs, gone)));
        assert!(!lost_mkcol_race(&failed("HTTP", "PUT", runs, gone)));
        let denied = "403 Forbidden";
        assert!(!lost_mkcol_race(&failed("HTTP", "MKCOL", runs, denied)));
        // A failing PUT whose URL merely names MKCOL and 405 is not a lost race.
        let named = "http://h/dav/MKCOL/405/x";
        let broken = "500 Internal Server Error";
        assert!(!lost_mkcol_race(&failed("HTTP", "PUT", named, broken)));
        // Text alone (no answer as its source) is not object_store's request error.
        let text = format!("Error performing MKCOL {runs} in 1ms - {}", Answer(gone));
        let flat = object_store::Error::Generic {
            store: "HTTP",
            source: text.into(),
        };
        assert!(!lost_mkcol_race(&flat));
    }
}

//! Building the object store for a URL: object_store's own scheme dispatch, plus a
//! retry policy shorter than its default.
//!
//! Why not plain `parse_url_opts`: it keeps object_store's default of retrying for up
//! to three minutes, so an unreachable store would stall the shim that long before it
//! could fall back. Options are handed to the builders unchanged, and `build()`
//! reports what is wrong with them.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreScheme, RetryConfig};
use url::Url;

/// Retries of one storage request: a few attempts within a minute.
pub(crate) fn default_retry() -> RetryConfig {
    RetryConfig {
        max_retries: 4,
        retry_timeout: Duration::from_secs(60),
        ..RetryConfig::default()
    }
}

/// What [`build`] made for a URL.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) store: Arc<dyn ObjectStore>,
    /// The path of the URL inside `store`.
    pub(crate) prefix: ObjectPath,
    /// The same S3 client, typed: cleaning up unfinished multipart uploads needs its
    /// request signer (`staged`), which `dyn ObjectStore` does not offer.
    pub(crate) s3: Option<Arc<object_store::aws::AmazonS3>>,
    /// The store cannot take multipart uploads (object_store's HTTP/WebDAV store), so
    /// one object is at most what goes up in one request (see `webdav`).
    pub(crate) no_multipart: bool,
}

/// The store for `url` and the path of `url` inside it.
pub(crate) fn build(
    url: &Url,
    options: &[(String, String)],
    retry: RetryConfig,
) -> object_store::Result<Built> {
    use object_store::{aws, azure, gcp, http, local, memory};
    super::ensure_tls_provider();
    let (scheme, path) = ObjectStoreScheme::parse(url)?;
    let path = ObjectPath::parse(path)?;
    let mut s3 = None;
    let mut no_multipart = false;
    let mut options = options.to_vec();
    if plaintext_only(&scheme, url, &options) {
        // No TLS will ever be used: skip loading the system's CA roots (several ms
        // per invocation). An https connection would fail verification, never go
        // unverified.
        options.push(("disable_system_certificates".into(), "true".into()));
    }
    let options = options.as_slice();
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::Local => Arc::new(local::LocalFileSystem::new()),
        ObjectStoreScheme::Memory => Arc::new(memory::InMemory::new()),
        ObjectStoreScheme::AmazonS3 => {
            let b = aws::AmazonS3Builder::new().with_url(url.as_str());
            let b = configure(b, options, |b, k: aws::AmazonS3ConfigKey, v| {
                b.with_config(k, v)
            });
            let client = Arc::new(b.with_retry(retry).build()?);
            s3 = Some(client.clone());
            client
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let b = gcp::GoogleCloudStorageBuilder::new().with_url(url.as_str());
            let b = configure(b, options, |b, k: gcp::GoogleConfigKey, v| {
                b.with_config(k, v)
            });
            Arc::new(b.with_retry(retry).build()?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let b = azure::MicrosoftAzureBuilder::new().with_url(url.as_str());
            let b = configure(b, options, |b, k: azure::AzureConfigKey, v| {
                b.with_config(k, v)
            });
            Arc::new(b.with_retry(retry).build()?)
        }
        ObjectStoreScheme::Http => {
            // The HTTP store is rooted at the server; the URL's path is our prefix.
            let root = &url[..url::Position::BeforePath];
            // An `http://` URL is the operator's explicit choice of plain HTTP (the
            // other schemes name their endpoint elsewhere and opt in with *_ALLOW_HTTP);
            // without this object_store refuses every request with "BadScheme".
            let b = http::HttpBuilder::new().with_url(root).with_config(
                object_store::ClientConfigKey::AllowHttp,
                (url.scheme() == "http").to_string(),
            );
            let b = configure(b, options, |b, k: object_store::ClientConfigKey, v| {
                b.with_config(k, v)
            });
            // Set last so that no option can turn connection reuse back on: see
            // `webdav::NO_CONNECTION_REUSE`.
            let b = b.with_config(
                object_store::ClientConfigKey::PoolMaxIdlePerHost,
                super::webdav::NO_CONNECTION_REUSE,
            );
            no_multipart = true;
            Arc::new(b.with_retry(retry).build()?)
        }
        other => {
            return Err(object_store::Error::NotSupported {
                source: format!("store scheme {other:?} is not supported").into(),
            })
        }
    };
    Ok(Built {
        store,
        prefix: path,
        s3,
        no_multipart,
    })
}

/// Whether every connection this store makes is plain http: an `http://` URL, or S3
/// at an `http://` endpoint with static keys (no STS or instance metadata lookup),
/// and no proxy. Anything else may need the system's CA roots.
fn plaintext_only(scheme: &ObjectStoreScheme, url: &Url, options: &[(String, String)]) -> bool {
    let get = |names: &[&str]| {
        options
            .iter()
            .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
            .map(|(_, v)| v.as_str())
    };
    let any_key = |needle: &str| {
        options
            .iter()
            .any(|(k, _)| k.to_ascii_lowercase().contains(needle))
    };
    if any_key("proxy") {
        return false;
    }
    match scheme {
        ObjectStoreScheme::Http => url.scheme() == "http",
        ObjectStoreScheme::AmazonS3 => {
            let endpoints = ["AWS_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"];
            let http_endpoint = endpoints
                .iter()
                .filter_map(|n| get(&[n]))
                .all(|e| e.starts_with("http://"))
                && get(&endpoints).is_some();
            let static_keys =
                get(&["AWS_ACCESS_KEY_ID"]).is_some() && get(&["AWS_SECRET_ACCESS_KEY"]).is_some();
            let other_credentials = any_key("web_identity")
                || any_key("role_arn")
                || any_key("sts")
                || any_key("container_credentials");
            http_endpoint && static_keys && !other_credentials
        }
        _ => false,
    }
}

/// Apply every option whose (lowercased) key the builder knows; ignore the rest, as
/// the builders' own `from_env` does.
fn configure<B, K: FromStr>(
    builder: B,
    options: &[(String, String)],
    set: impl Fn(B, K, &str) -> B,
) -> B {
    options.iter().fold(builder, |b, (key, value)| {
        match key.to_ascii_lowercase().parse::<K>() {
            Ok(k) => set(b, k, value),
            Err(_) => b,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_documented_scheme_builds() {
        let s3 = opts(&[("AWS_REGION", "us-east-1")]);
        for url in [
            "file:///tmp/x",
            "memory:///",
            "s3://bucket/p",
            "gs://bucket/p",
            "az://container/p",
            "https://example.org/dav/p",
        ] {
            let url = Url::parse(url).unwrap();
            let azure = opts(&[
                ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
                ("AZURE_STORAGE_ACCOUNT_KEY", "a2V5"),
            ]);
            let options = if url.scheme() == "az" { &azure } else { &s3 };
            let built = build(&url, options, default_retry());
            assert!(built.is_ok(), "{url}: {:?}", built.err());
        }
    }

    #[test]
    fn prefix_is_the_url_path() {
        let url = Url::parse("https://example.org/dav/p").unwrap();
        let built = build(&url, &[], default_retry()).unwrap();
        assert_eq!(built.prefix.as_ref(), "dav/p");
    }

    #[test]
    fn system_roots_are_skipped_only_when_nothing_can_use_tls() {
        let s3 = |pairs: &[(&str, &str)]| {
            let url = Url::parse("s3://bucket/p").unwrap();
            plaintext_only(&ObjectStoreScheme::AmazonS3, &url, &opts(pairs))
        };
        let keys = [("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut all = keys.to_vec();
            all.extend_from_slice(extra);
            all
        };
        assert!(s3(&with(&[("AWS_ENDPOINT", "http://127.0.0.1:9000")])));
        assert!(!s3(&with(&[("AWS_ENDPOINT", "https://s3.example")])));
        assert!(!s3(&with(&[])), "AWS itself is https");
        assert!(
            !s3(&[("AWS_ENDPOINT", "http://127.0.0.1:9000")]),
            "no static keys"
        );
        assert!(!s3(&with(&[
            ("AWS_ENDPOINT", "http://127.0.0.1:9000"),
            ("AWS_ENDPOINT_URL_S3", "https://s3.example"),
        ])));
        assert!(!s3(&with(&[
            ("AWS_ENDPOINT", "http://127.0.0.1:9000"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
        ])));
        assert!(!s3(&with(&[
            ("AWS_ENDPOINT", "http://127.0.0.1:9000"),
            ("AWS_PROXY_URL", "https://proxy"),
        ])));
        let http = |u: &str| {
            let url = Url::parse(u).unwrap();
            plaintext_only(&ObjectStoreScheme::Http, &url, &[])
        };
        assert!(http("http://127.0.0.1:8080/dav"));
        assert!(!http("https://example.org/dav"));
        let gs = Url::parse("gs://bucket").unwrap();
        assert!(!plaintext_only(
            &ObjectStoreScheme::GoogleCloudStorage,
            &gs,
            &[]
        ));
    }

    #[test]
    fn bad_option_values_are_reported_by_the_builder() {
        let url = Url::parse("s3://bucket/p").unwrap();
        let err = build(&url, &opts(&[("AWS_ALLOW_HTTP", "maybe")]), default_retry()).unwrap_err();
        assert!(err.to_string().contains("maybe"), "{err}");
    }
}

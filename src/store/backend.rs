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
            let b = http::HttpBuilder::new().with_url(root);
            let b = configure(b, options, |b, k: object_store::ClientConfigKey, v| {
                b.with_config(k, v)
            });
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
    })
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
    fn bad_option_values_are_reported_by_the_builder() {
        let url = Url::parse("s3://bucket/p").unwrap();
        let err = build(&url, &opts(&[("AWS_ALLOW_HTTP", "maybe")]), default_retry()).unwrap_err();
        assert!(err.to_string().contains("maybe"), "{err}");
    }
}

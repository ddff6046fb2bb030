//! Content-addressed object storage shared by the shim and the worker.
//!
//! The shim uploads a proof's inputs as `<store>/cas/sha256/<hex>` and downloads the
//! outputs; the worker fetches inputs into a [`LocalCasCache`] and uploads outputs
//! with [`Store::put_file`]. Every backend (S3, GCS, Azure, local files, HTTP) is an
//! `Arc<dyn ObjectStore>` built by object_store from the store URL plus the standard
//! `AWS_*`/`GOOGLE_*`/`AZURE_*` variables of an injected [`Env`].
//!
//! Not for: deciding *what* to upload (the plan does that) or TES wire types.

mod backend;
mod cache;
mod digest;
mod download;
mod error;
mod staged;
mod upload;
mod webdav;

use std::sync::{Arc, Once};

use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use url::Url;

use crate::config::Env;
use crate::env_vars;

pub use cache::LocalCasCache;
pub use digest::{hash_file, BadDigest, Digest};
pub use download::Limit;
pub use error::StoreError;
pub use staged::Unfinished;
pub use upload::{UploadOutcome, UploadTuning};

/// Key segments of the content-addressed area, under the store's base prefix.
const CAS_DIR: [&str; 2] = ["cas", "sha256"];

/// Environment prefixes whose variables are handed to object_store's builders.
/// Builders ignore keys they do not know, so passing all of them is safe.
const CREDENTIAL_PREFIXES: [&str; 4] = ["AWS_", "GOOGLE_", "AZURE_", "AZURITE_"];

/// One object store plus the base prefix all our keys live under.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// The store URL as configured, without a trailing slash.
    base_url: Url,
    /// `base_url`'s path inside `inner`.
    prefix: ObjectPath,
    tuning: UploadTuning,
    /// `inner` again when it is S3 (see `staged`).
    s3: Option<Arc<object_store::aws::AmazonS3>>,
    /// No multipart uploads (`http(s)://`): nothing above the threshold can be stored.
    no_multipart: bool,
}

impl Store {
    /// Build the store for `url` (`s3://bucket/prefix`, `gs://`, `az://`, `file:///abs/dir`,
    /// `http(s)://`), taking credentials and endpoints from `env`.
    pub fn from_url(url: &str, env: &Env) -> Result<Self, StoreError> {
        Self::build(url, format!("store URL {url:?}"), env)
    }

    /// The store named by `BB_REMOTE_STORE`, or `None` when it is unset. Errors name
    /// the variable.
    pub(crate) fn from_env(env: &Env) -> Result<Option<Self>, StoreError> {
        let Some(url) = env.get(env_vars::STORE) else {
            return Ok(None);
        };
        Self::build(url, format!("{}={url}", env_vars::STORE), env).map(Some)
    }

    fn build(url: &str, what: String, env: &Env) -> Result<Self, StoreError> {
        let bad = |reason: String| StoreError::InvalidConfig {
            what: what.clone(),
            reason,
        };
        let mut base_url = Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(bad("a store URL takes no query or fragment".into()));
        }
        let trimmed = base_url.path().trim_end_matches('/').to_owned();
        base_url.set_path(&trimmed);
        let options: Vec<(String, String)> = CREDENTIAL_PREFIXES
            .iter()
            .flat_map(|p| env.vars_with_prefix(p))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let built = backend::build(&base_url, &options, backend::default_retry()).map_err(|e| {
            bad(format!(
                "{e}\nhelp: settings come from the AWS_*, GOOGLE_* and AZURE_* variables"
            ))
        })?;
        let mut store = Self::new(built.store, base_url, built.prefix);
        store.s3 = built.s3;
        store.no_multipart = built.no_multipart;
        Ok(store)
    }

    /// Wrap an already built object store whose objects are addressed by `base_url`.
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, base_url: Url, prefix: ObjectPath) -> Self {
        Self {
            inner,
            base_url,
            prefix,
            tuning: UploadTuning::default(),
            s3: None,
            no_multipart: false,
        }
    }

    /// Replace the multipart thresholds (tests use small parts to exercise multipart).
    pub fn with_tuning(mut self, tuning: UploadTuning) -> Self {
        self.tuning = tuning;
        self
    }

    /// The underlying object store, for callers that need an operation we do not wrap.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// The store URL, without a trailing slash.
    pub(crate) fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The key of a content-addressed blob.
    pub fn cas_key(&self, digest: &Digest) -> ObjectPath {
        let hex = digest.hex();
        let parts = self
            .prefix
            .parts()
            .chain(CAS_DIR.iter().map(|s| (*s).into()));
        ObjectPath::from_iter(parts.chain(std::iter::once(hex.as_str().into())))
    }

    /// The URL of a content-addressed blob, as named in a TES input.
    pub fn cas_url(&self, digest: &Digest) -> Url {
        self.url_for_relative(&format!("{}/{}/{}", CAS_DIR[0], CAS_DIR[1], digest.hex()))
    }

    /// The URL of `relative` (slash-separated, e.g. `runs/<key>/out/`) under the store.
    pub fn url_for_relative(&self, relative: &str) -> Url {
        let mut url = self.base_url.clone();
        let path = format!("{}/{}", url.path().trim_end_matches('/'), relative);
        url.set_path(&path);
        url
    }

    /// The key inside the object store for a URL. Refuses any URL outside this store,
    /// so a task cannot make the worker read or write arbitrary locations.
    pub fn key_for_url(&self, url: &str) -> Result<ObjectPath, StoreError> {
        let refuse = |reason| StoreError::OutsideStore {
            url: url.to_owned(),
            store: self.base_url.to_string(),
            reason,
        };
        let parsed = Url::parse(url).map_err(|_| refuse("not a valid URL"))?;
        let base = &self.base_url;
        if parsed.scheme() != base.scheme()
            || parsed.host_str() != base.host_str()
            || parsed.port_or_known_default() != base.port_or_known_default()
            || parsed.username() != base.username()
            || parsed.password() != base.password()
        {
            return Err(refuse("different scheme, host or credentials"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(refuse("query or fragment"));
        }
        let base_path = base.path().trim_end_matches('/');
        let relative = parsed
            .path()
            .strip_prefix(base_path)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|rest| !rest.is_empty())
            .ok_or_else(|| refuse("path is not below the store's prefix"))?;
        let relative = ObjectPath::from_url_path(relative)
            .map_err(|_| refuse("path has an invalid segment"))?;
        Ok(ObjectPath::from_iter(
            self.prefix.parts().chain(relative.parts()),
        ))
    }

    /// The digest named by a content-addressed key of this store, if it is one.
    pub(crate) fn digest_for_key(&self, key: &ObjectPath) -> Option<Digest> {
        let mut rest = key.prefix_match(&self.prefix)?;
        for dir in CAS_DIR {
            if rest.next()?.as_ref() != dir {
                return None;
            }
        }
        let digest = rest.next()?.as_ref().parse().ok()?;
        rest.next().is_none().then_some(digest)
    }
}

/// Install rustls' ring crypto provider for this process (reqwest is built without a
/// default). Safe to call often; call it before building any HTTP client.
pub fn ensure_tls_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error only means another provider was installed first, which also works.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(env: &Env) -> Store {
        Store::from_url("s3://bucket/some/prefix/", env).unwrap()
    }

    fn s3_env() -> Env {
        Env::from_pairs([
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ])
    }

    #[test]
    fn credentials_come_from_the_injected_env() {
        // A key id without its secret is only an error if the env really reached the builder.
        let env = Env::from_pairs([("AWS_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "k")]);
        let err = Store::from_url("s3://bucket/p", &env).unwrap_err();
        assert!(err.to_string().contains("SecretAccessKey"), "{err}");
        let junk = Env::from_pairs([("AWS_ALLOW_HTTP", "maybe")]);
        assert!(Store::from_url("s3://bucket/p", &junk).is_err());
    }

    #[test]
    fn cas_url_and_key_agree() {
        let store = s3(&s3_env());
        let d = Digest::of_bytes(b"x");
        let url = store.cas_url(&d);
        assert_eq!(
            url.as_str(),
            format!("s3://bucket/some/prefix/cas/sha256/{d}")
        );
        let key = store.key_for_url(url.as_str()).unwrap();
        assert_eq!(key, store.cas_key(&d));
        assert_eq!(key.as_ref(), format!("some/prefix/cas/sha256/{d}"));
        assert_eq!(store.digest_for_key(&key), Some(d));
    }

    #[test]
    fn file_store_urls_are_absolute_paths() {
        let store = Store::from_url("file:///var/cache/bb", &Env::default()).unwrap();
        let d = Digest::of_bytes(b"y");
        assert_eq!(
            store.cas_url(&d).as_str(),
            format!("file:///var/cache/bb/cas/sha256/{d}")
        );
        assert_eq!(
            store.cas_key(&d).as_ref(),
            format!("var/cache/bb/cas/sha256/{d}")
        );
    }

    #[test]
    fn urls_outside_the_store_are_refused() {
        let store = s3(&s3_env());
        for url in [
            "s3://other/some/prefix/cas/sha256/aa",
            "s3://bucket/some/prefixed/x",
            "s3://bucket/some/prefix",
            "s3://bucket/some/prefix/../secret",
            "s3://bucket/some/prefix/a/%2E%2E/%2E%2E/secret",
            "s3://bucket/some/prefix/x?versionId=1",
            "gs://bucket/some/prefix/x",
            "file:///etc/passwd",
            "not a url",
        ] {
            let err = store.key_for_url(url).unwrap_err();
            assert!(
                matches!(err, StoreError::OutsideStore { .. }),
                "{url}: {err:?}"
            );
        }
        assert!(store
            .key_for_url("s3://bucket/some/prefix/runs/k/out/proof")
            .is_ok());
    }

    #[test]
    fn non_cas_keys_have_no_digest() {
        let store = s3(&s3_env());
        let key = store
            .key_for_url("s3://bucket/some/prefix/runs/k/out/proof")
            .unwrap();
        assert_eq!(store.digest_for_key(&key), None);
        let key = store
            .key_for_url("s3://bucket/some/prefix/cas/sha256/abc")
            .unwrap();
        assert_eq!(store.digest_for_key(&key), None);
    }

    #[test]
    fn from_env_names_the_variable() {
        assert!(Store::from_env(&Env::default()).unwrap().is_none());
        let env = Env::from_pairs([("BB_REMOTE_STORE", "s3//oops")]);
        let err = Store::from_env(&env).unwrap_err();
        assert!(
            err.to_string().contains("BB_REMOTE_STORE=s3//oops"),
            "{err}"
        );
        let env = Env::from_pairs([("BB_REMOTE_STORE", "file:///srv/bb")]);
        let store = Store::from_env(&env).unwrap().unwrap();
        assert_eq!(store.base_url().as_str(), "file:///srv/bb");
    }

    #[test]
    fn bad_urls_name_the_url() {
        let err = Store::from_url("no-scheme/dir", &Env::default()).unwrap_err();
        assert!(err.to_string().contains("no-scheme/dir"), "{err}");
        let err = Store::from_url("ftp://host/x", &Env::default()).unwrap_err();
        assert!(matches!(err, StoreError::InvalidConfig { .. }), "{err:?}");
    }
}

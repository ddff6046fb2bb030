//! SHA-256 digests: the identity of every blob in the content-addressed store.
//!
//! Hashing reads files in bounded chunks on a blocking thread, so a multi-gigabyte
//! witness never sits in memory and never stalls the async runtime.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use super::StoreError;

/// How much of a file is read (and hashed) at a time.
pub(crate) const READ_CHUNK: usize = 1024 * 1024;

/// A SHA-256 digest. Displays as 64 lowercase hex characters.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Digest([u8; 32]);

/// A string that is not 64 hex characters.
#[derive(Debug, thiserror::Error)]
#[error("invalid sha256 digest {0:?}: expected 64 hex characters")]
pub struct BadDigest(pub String);

impl Digest {
    /// The digest of an in-memory byte string.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    pub(crate) fn from_hasher(hasher: Sha256) -> Self {
        Self(hasher.finalize().into())
    }

    /// The 64-character lowercase hex form (also what `Display` prints).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl FromStr for Digest {
    type Err = BadDigest;

    fn from_str(s: &str) -> Result<Self, BadDigest> {
        // Only the canonical lowercase form: two spellings of one digest would be two keys.
        if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(BadDigest(s.to_owned()));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| BadDigest(s.to_owned()))?;
        Ok(Self(bytes))
    }
}

impl TryFrom<String> for Digest {
    type Error = BadDigest;
    fn try_from(s: String) -> Result<Self, BadDigest> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.hex()
    }
}

/// SHA-256 and size of a local file, streamed in bounded chunks.
pub async fn hash_file(path: impl AsRef<Path>) -> Result<(Digest, u64), StoreError> {
    let path = path.as_ref().to_path_buf();
    let for_task = path.clone();
    tokio::task::spawn_blocking(move || hash_file_blocking(&for_task))
        .await
        .map_err(|e| StoreError::Io {
            path,
            source: std::io::Error::other(e),
        })?
}

fn hash_file_blocking(path: &Path) -> Result<(Digest, u64), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            return Ok((Digest::from_hasher(hasher), size));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn known_digest_of_empty_input() {
        assert_eq!(Digest::of_bytes(b"").hex(), EMPTY);
        assert_eq!(EMPTY.parse::<Digest>().unwrap(), Digest::of_bytes(b""));
    }

    #[test]
    fn rejects_non_canonical_spellings() {
        assert!(EMPTY.to_uppercase().parse::<Digest>().is_err());
        assert!(EMPTY[..63].parse::<Digest>().is_err());
        assert!(format!("{}g", &EMPTY[..63]).parse::<Digest>().is_err());
    }

    #[test]
    fn serde_round_trip_is_plain_hex() {
        let d = Digest::of_bytes(b"abc");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{}\"", d.hex()));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"abc\"").is_err());
    }

    #[tokio::test]
    async fn file_hash_spans_several_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..READ_CHUNK * 2 + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let (digest, size) = hash_file(&path).await.unwrap();
        assert_eq!(digest, Digest::of_bytes(&data));
        assert_eq!(size, data.len() as u64);
    }

    #[tokio::test]
    async fn missing_file_names_the_path() {
        let err = hash_file("/nonexistent/bb-remote-blob").await.unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/bb-remote-blob"),
            "{err}"
        );
    }
}

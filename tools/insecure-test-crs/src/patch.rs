//! Makes a TEST-ONLY copy of bb whose compiled-in Ignition `[x]_2` (and that point's
//! SHA-256, which bb checks it against) are replaced by a test CRS's `[tau]_2`, so
//! `bb verify` accepts proofs made with the insecure test CRS.
//!
//! Refuses unless each constant occurs exactly once: after a bb upgrade a silent
//! partial patch would be worse than a clear failure.

use crate::{AZTEC_IGNITION_G2, G2_POINT_BYTES};
use sha2::{Digest, Sha256};
use std::fmt;

/// Why a binary could not be patched.
#[derive(Debug, PartialEq, Eq)]
pub enum PatchError {
    /// A constant was found `found` times instead of exactly once.
    NotExactlyOnce { what: &'static str, found: usize },
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchError::NotExactlyOnce { what, found } => write!(
                f,
                "expected exactly one occurrence of the {what} in the bb binary, found {found}; \
                 refusing to patch (a different bb version?)"
            ),
        }
    }
}

impl std::error::Error for PatchError {}

/// One replaced constant, for the caller's log.
#[derive(Debug, PartialEq, Eq)]
pub struct Replacement {
    pub what: &'static str,
    pub offset: usize,
    pub len: usize,
}

/// Returns the patched copy of `binary` and where it changed it.
pub fn patch_g2(
    binary: &[u8],
    new_g2: &[u8; G2_POINT_BYTES],
) -> Result<(Vec<u8>, Vec<Replacement>), PatchError> {
    let old_hash: [u8; 32] = Sha256::digest(AZTEC_IGNITION_G2).into();
    let new_hash: [u8; 32] = Sha256::digest(new_g2).into();
    let pairs: [(&'static str, &[u8], &[u8]); 2] = [
        ("Ignition [x]_2 point", &AZTEC_IGNITION_G2, new_g2),
        ("SHA-256 of the Ignition [x]_2 point", &old_hash, &new_hash),
    ];
    // Locate both before changing anything, so a failure leaves no half-patched copy.
    let mut offsets = Vec::new();
    for (what, old, _) in &pairs {
        let found: Vec<usize> = occurrences(binary, old).collect();
        match found.as_slice() {
            [offset] => offsets.push(*offset),
            _ => {
                return Err(PatchError::NotExactlyOnce {
                    what,
                    found: found.len(),
                })
            }
        }
    }
    let mut patched = binary.to_vec();
    let mut replacements = Vec::new();
    for ((what, _, new), offset) in pairs.iter().zip(offsets) {
        patched[offset..offset + new.len()].copy_from_slice(new);
        replacements.push(Replacement {
            what,
            offset,
            len: new.len(),
        });
    }
    Ok((patched, replacements))
}

fn occurrences<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(move |(_, window)| *window == needle)
        .map(|(offset, _)| offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_bb() -> Vec<u8> {
        let hash = Sha256::digest(AZTEC_IGNITION_G2);
        [&b"head"[..], &hash, b"middle", &AZTEC_IGNITION_G2, b"tail"].concat()
    }

    #[test]
    fn replaces_point_and_hash_in_place() {
        let new_g2 = [7u8; G2_POINT_BYTES];
        let (patched, replacements) = patch_g2(&fake_bb(), &new_g2).unwrap();
        assert_eq!(patched.len(), fake_bb().len());
        assert_eq!(&patched[4 + 32 + 6..4 + 32 + 6 + 128], &new_g2);
        assert_eq!(&patched[4..36], Sha256::digest(new_g2).as_slice());
        assert_eq!(replacements[0].offset, 42);
        assert_eq!(replacements[1].offset, 4);
    }

    #[test]
    fn refuses_missing_or_duplicated_constants() {
        let missing = patch_g2(b"no constants here", &[0; G2_POINT_BYTES]);
        assert_eq!(
            missing.unwrap_err(),
            PatchError::NotExactlyOnce {
                what: "Ignition [x]_2 point",
                found: 0
            }
        );
        let twice = [fake_bb(), AZTEC_IGNITION_G2.to_vec()].concat();
        let err = patch_g2(&twice, &[0; G2_POINT_BYTES]).unwrap_err();
        assert!(err.to_string().contains("found 2"), "{err}");
    }
}

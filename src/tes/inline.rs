//! Small output files carried in the task log instead of the object store: an
//! extension of the reference worker, asked for by the task.
//!
//! Why: a tiny proof's outputs (proof, public inputs, bb's stdout and stderr) are a
//! few kilobytes, and on a remote store each one is an upload by the worker and a
//! download by the shim, a round trip each, the largest part of a tiny proof's cost
//! over S3. The task log already travels from the worker to the shim.
//!
//! How: a task tagged [`TAG`]`=<bytes>` allows the reference worker to record output
//! files of at most that many bytes IN TOTAL in its log instead of uploading them:
//! each file is listed in `logs[].outputs` as usual (its URL, container path and
//! `size_bytes`), with its SHA-256 under `sha256:<path>` and its bytes, standard
//! base64, under [`content_key`] in `logs[].metadata`. Nothing is written to its URL.
//! The worker caps the total with its own `--inline-output-bytes` (0: never).
//! The shim checks those bytes exactly as it checks a download: the size the log
//! gives and the recorded SHA-256. Other TES engines ignore the tag and upload every
//! output as TES says, so only tasks for the reference worker carry it.
use base64::Engine as _;

/// The task tag that allows outputs in the log, and how many bytes of them in total.
pub const TAG: &str = "bb-remote.inline-outputs";

/// What the shim allows (and the worker's default cap): a proof, its public inputs,
/// a vk and bb's log lines fit, and a task's FULL view stays small.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024;

/// The metadata key of an output file's bytes.
pub fn content_key(container_path: &str) -> String {
    format!("content:{container_path}")
}

/// The bytes of a file as written into the metadata.
pub fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The bytes of a file whose log gives `size` bytes, refusing text that could not
/// be exactly that many (so a huge value is not decoded) or is not base64.
pub fn decode(text: &str, size: u64) -> Result<Vec<u8>, String> {
    let expected_len = size.div_ceil(3).saturating_mul(4);
    if text.len() as u64 != expected_len {
        return Err(format!(
            "{} characters of base64 cannot hold the {size} bytes the task log gives",
            text.len()
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("its content is not base64: {e}"))?;
    if bytes.len() as u64 != size {
        return Err(format!("{} bytes, the task log gives {size}", bytes.len()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_cannot_be_the_given_size() {
        for bytes in [&b""[..], b"p", b"pr", b"pro", b"proof \xff\x00 bytes"] {
            let text = encode(bytes);
            assert_eq!(decode(&text, bytes.len() as u64).unwrap(), bytes);
        }
        let text = encode(b"proof");
        assert!(decode(&text, 4).is_err(), "one byte short");
        assert!(decode(&text, 6).unwrap_err().contains("5 bytes"));
        assert!(decode("!!!!!!!!", 6).unwrap_err().contains("base64"));
        assert!(decode(&"A".repeat(1 << 20), 5).is_err());
    }
}

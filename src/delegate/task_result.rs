//! Reading a finished task's result, on any TES engine.
//!
//! What is verified, and against what:
//! - every output file's SHA-256 and size, after download, against the task log's
//!   `sha256:<path>` metadata when present (the reference worker records it), else
//!   against the `sha256sums` manifest the task itself wrote next to the outputs
//!   (generic engines; see `task.rs`). An output named by neither is refused, and so
//!   is a manifest entry the engine did not upload;
//! - an output file's bytes carried in the task log (small files, reference worker,
//!   `tes::inline`) get the same checks (size, recorded SHA-256) instead of a download;
//! - bb's stdout and stderr come whole and byte-exact from the files the engine wrote
//!   (`Executor.stdout`/`stderr` in [`META_DIR`]), their size checked against the
//!   task log (and their digest, when the metadata has one). Only when the engine did
//!   not upload them does the log's tail stand in (text: non-UTF-8 bytes are lost);
//! - the exit code is the executor's (reference worker) or the one the task wrote
//!   (generic engines, whose executor always exits 0 so that outputs are uploaded).
//!
//! Integrity, not authenticity: a backend that lies consistently is trusted.
use std::collections::BTreeMap;

use futures::StreamExt;
use object_store::ObjectStoreExt;

use super::task::{Engine, META_DIR};
use super::transport::{RemoteOutput, RemoteResult};
use crate::error::{BadAnswer, Error, TaskFailure};
use crate::store::{Digest, Store};
use crate::tes::inline;
use crate::tes::types::{OutputFileLog, State, Task};

/// Largest stdout or stderr accepted from a task (bb prints kilobytes).
const MAX_STREAM_BYTES: u64 = 256 << 20;
/// Largest manifest accepted (a few lines per output file).
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// The caller-visible result of task `id`, finished in `state` (FULL view).
pub(crate) async fn result_of(
    store: &Store,
    id: &str,
    state: State,
    task: &Task,
    engine: Engine,
    out_dir: &str,
) -> Result<RemoteResult, Error> {
    let bad = |problem: String| {
        Error::BadOutputs(BadAnswer::Task {
            task: id.to_owned(),
            problem,
        })
    };
    let failed = |failure| Error::TaskFailed {
        id: id.to_owned(),
        failure,
    };
    let log = task.logs.last();
    let tail_of = |stream: fn(&crate::tes::types::ExecutorLog) -> &Option<String>| {
        log.and_then(|l| l.logs.last())
            .and_then(|e| stream(e).clone())
            .unwrap_or_default()
    };
    match (state, engine) {
        (State::Complete, _) | (State::ExecutorError, Engine::ReferenceWorker) => {}
        (State::ExecutorError, Engine::Generic) => {
            return Err(failed(TaskFailure::ShellFailed {
                stderr_tail: tail_of(|e| &e.stderr).trim_end().to_owned(),
            }));
        }
        (State::SystemError, _) => {
            let system_logs = log.map(|l| l.system_logs.join("; ")).unwrap_or_default();
            return Err(failed(TaskFailure::SystemError { system_logs }));
        }
        (other, _) => return Err(failed(TaskFailure::Ended(other))),
    }
    let log = log.ok_or_else(|| bad("no task log".into()))?;
    let exec = log
        .logs
        .last()
        .ok_or_else(|| bad("no executor log".into()))?;

    let mut meta = BTreeMap::new();
    let mut files = Vec::new();
    for file in &log.outputs {
        if let Some(name) = relative(&file.path, META_DIR) {
            meta.insert(name.to_owned(), file);
        } else if let Some(name) = relative(&file.path, out_dir) {
            files.push((name.to_owned(), file));
        } else {
            return Err(bad(format!(
                "output {:?} is outside {out_dir} and {META_DIR}",
                file.path
            )));
        }
    }
    let recorded = |file: &OutputFileLog| -> Result<Option<Digest>, Error> {
        log.metadata
            .get(&format!("sha256:{}", file.path))
            .map(|hex| {
                hex.parse::<Digest>()
                    .map_err(|e| bad(format!("output {}: {e}", file.path)))
            })
            .transpose()
    };
    // A file's bytes carried in the log (`tes::inline`), checked as a download is.
    let carried = |file: &OutputFileLog, digest: Option<Digest>, limit: u64| {
        let Some(text) = log.metadata.get(&inline::content_key(&file.path)) else {
            return Ok(None);
        };
        let size = size_of(file).map_err(&bad)?;
        let whole = checked_inline(text, size, digest, limit)
            .map_err(|problem| bad(format!("output {}: {problem}", file.path)))?;
        Ok::<_, Error>(Some(whole))
    };
    // `tail`: the stream's text in the executor log. When that is the whole file (the
    // recorded digest and size say so), it is used and the store is not asked: a
    // round trip less per stream on a remote store, with the same check a download
    // gets.
    let read_meta = |name: &'static str, limit: u64, tail: Option<String>| {
        let file = meta.get(name).copied();
        async move {
            let Some(file) = file else {
                return Ok(None);
            };
            let digest = recorded(file)?;
            if let Some(whole) = carried(file, digest, limit)? {
                return Ok(Some(whole));
            }
            if let Some(whole) = tail.and_then(|t| whole_from_log(file, digest, t)) {
                return Ok(Some(whole));
            }
            read_whole(store, file, digest, limit).await.map(Some)
        }
    };

    // The small files are independent: read them at once (a round trip each on a
    // remote store). The exit code file exists on generic engines only; the
    // manifest's outcome matters only when bb succeeded (or on the reference worker).
    let generic = engine == Engine::Generic;
    let (exit_text, stdout, stderr, manifest) = futures::join!(
        async {
            if generic {
                read_meta("exit_code", 64, None).await
            } else {
                Ok(None)
            }
        },
        read_meta("stdout", MAX_STREAM_BYTES, Some(tail_of(|e| &e.stdout))),
        read_meta("stderr", MAX_STREAM_BYTES, Some(tail_of(|e| &e.stderr))),
        read_meta("sha256sums", MAX_MANIFEST_BYTES, None),
    );
    let exit_code = match engine {
        Engine::ReferenceWorker => exec.exit_code,
        Engine::Generic => {
            let text = exit_text?.ok_or_else(|| bad("the task recorded no exit code".into()))?;
            String::from_utf8_lossy(&text)
                .trim()
                .parse::<i32>()
                .map_err(|_| bad(format!("exit code file holds {text:?}")))?
        }
    };
    let stdout = match stdout? {
        Some(bytes) => bytes,
        None => tail_of(|e| &e.stdout).into_bytes(),
    };
    let stderr = match stderr? {
        Some(bytes) => bytes,
        None => tail_of(|e| &e.stderr).into_bytes(),
    };

    // A failed bb's partial files are not results (the reference worker uploads only
    // its stdout and stderr then).
    let mut outputs = Vec::new();
    if exit_code == 0 || engine == Engine::ReferenceWorker {
        let manifest = match (engine, manifest?) {
            (_, Some(text)) => Some(parse_manifest(&text).map_err(&bad)?),
            (Engine::Generic, None) => {
                let why = read_meta("manifest.err", MAX_MANIFEST_BYTES, None)
                    .await?
                    .unwrap_or_default();
                return Err(bad(format!(
                    "the task wrote no output manifest: {}",
                    String::from_utf8_lossy(&why).trim_end()
                )));
            }
            (Engine::ReferenceWorker, None) => None,
        };
        for (name, file) in &files {
            let digest = match (recorded(file)?, &manifest) {
                (Some(digest), _) => digest,
                (None, Some(manifest)) => *manifest
                    .get(name.as_str())
                    .ok_or_else(|| bad(format!("output {} is not in the manifest", file.path)))?,
                (None, None) => {
                    return Err(bad(format!("no sha256 recorded for output {}", file.path)))
                }
            };
            outputs.push(RemoteOutput {
                name: name.clone(),
                digest,
                size: size_of(file).map_err(&bad)?,
                location: file.url.clone(),
                inline: carried(file, Some(digest), inline::DEFAULT_MAX_BYTES)?,
            });
        }
        if let Some(manifest) = &manifest {
            if let Some(missing) = manifest
                .keys()
                .find(|m| !files.iter().any(|(name, _)| name == *m))
            {
                return Err(bad(format!(
                    "{missing} is in the task's manifest but was not uploaded"
                )));
            }
        }
    }
    Ok(RemoteResult {
        exit_code,
        stdout,
        stderr,
        outputs,
    })
}

/// `path` relative to the directory `dir`, if inside it.
fn relative<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    path.strip_prefix(dir.trim_end_matches('/'))
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|rest| !rest.is_empty())
}

fn size_of(file: &OutputFileLog) -> Result<u64, String> {
    file.size_bytes
        .parse::<u64>()
        .map_err(|_| format!("output {}: bad size_bytes {:?}", file.path, file.size_bytes))
}

/// The bytes `text` carries (`tes::inline`): at most `limit` of them, exactly `size`,
/// and when a digest was recorded, that digest (none recorded: refused).
fn checked_inline(
    text: &str,
    size: u64,
    digest: Option<Digest>,
    limit: u64,
) -> Result<Vec<u8>, String> {
    if size > limit {
        return Err(format!(
            "{size} bytes in the task log, more than the {limit} allowed"
        ));
    }
    let expected = digest.ok_or("its content is in the task log, but no sha256")?;
    let bytes = inline::decode(text, size)?;
    let actual = Digest::of_bytes(&bytes);
    if actual != expected {
        return Err(format!(
            "digest mismatch: the content in the task log has sha256 {actual}, recorded {expected}"
        ));
    }
    Ok(bytes)
}

/// `tail` as the whole of `file`, if its size and SHA-256 are what the task log records
/// for the file (no recorded digest: never).
fn whole_from_log(file: &OutputFileLog, digest: Option<Digest>, tail: String) -> Option<Vec<u8>> {
    let whole = size_of(file).ok()? == tail.len() as u64
        && Some(Digest::of_bytes(tail.as_bytes())) == digest;
    whole.then(|| tail.into_bytes())
}

/// A whole small file from the store: at most `limit` bytes, the size the task log
/// gives, and the digest when one was recorded.
async fn read_whole(
    store: &Store,
    file: &OutputFileLog,
    digest: Option<Digest>,
    limit: u64,
) -> Result<Vec<u8>, Error> {
    let bad = |problem: String| {
        Error::BadOutputs(BadAnswer::File {
            file: file.path.clone(),
            problem,
        })
    };
    let size = size_of(file).map_err(&bad)?;
    if size > limit {
        return Err(Error::BadOutputs(BadAnswer::TooLarge {
            file: file.path.clone(),
            size,
            limit,
        }));
    }
    let key = store.key_for_url(&file.url)?;
    let mut body = store
        .object_store()
        .get(&key)
        .await
        .map_err(|e| crate::store::StoreError::from_store(&key, e))?
        .into_stream();
    let mut bytes = Vec::with_capacity(size as usize);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| crate::store::StoreError::from_store(&key, e))?;
        if (bytes.len() + chunk.len()) as u64 > size {
            return Err(bad(format!(
                "longer than the {size} bytes the task log gives"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.len() as u64 != size {
        return Err(bad(format!(
            "{} bytes, the task log gives {size}",
            bytes.len()
        )));
    }
    if let Some(expected) = digest {
        let actual = Digest::of_bytes(&bytes);
        if actual != expected {
            return Err(bad(format!("sha256 {actual}, recorded {expected}")));
        }
    }
    Ok(bytes)
}

/// `sha256sum` output run in the output directory: `<hex>  ./<name>` per line. A name
/// sha256sum had to escape (newline or backslash) is refused rather than unescaped.
fn parse_manifest(text: &[u8]) -> Result<BTreeMap<String, Digest>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "the output manifest is not UTF-8")?;
    let mut entries = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let parsed = line
            .split_once("  ")
            .or_else(|| line.split_once(" *"))
            .filter(|(hex, _)| !hex.starts_with('\\'));
        let Some((hex, name)) = parsed else {
            return Err(format!("bad output manifest line {line:?}"));
        };
        let digest = hex
            .parse::<Digest>()
            .map_err(|e| format!("output manifest line {line:?}: {e}"))?;
        let name = name.strip_prefix("./").unwrap_or(name);
        entries.insert(name.to_owned(), digest);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lines_name_files_relative_to_the_output_directory() {
        let p = Digest::of_bytes(b"P");
        let v = Digest::of_bytes(b"V");
        let text = format!("{p}  ./proof\n{v}  ./sub/vk\n");
        let parsed = parse_manifest(text.as_bytes()).unwrap();
        assert_eq!(parsed["proof"], p);
        assert_eq!(parsed["sub/vk"], v);
        for bad in [
            "nothex  ./proof\n".to_owned(),
            format!("\\{p}  ./a\\nb\n"),
            "just one field\n".to_owned(),
        ] {
            assert!(parse_manifest(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    /// The reference worker's answer for a proof whose stdout is UTF-8 (its log tail
    /// is the whole stream) and whose stderr is not (the tail is lossy text).
    fn finished(stdout: &[u8], stderr: &[u8], store: &Store) -> Task {
        use crate::tes::types::{ExecutorLog, TaskLog};
        let mut log = TaskLog::default();
        for (name, bytes) in [("stdout", stdout), ("stderr", stderr)] {
            let path = format!("{META_DIR}/{name}");
            log.metadata
                .insert(format!("sha256:{path}"), Digest::of_bytes(bytes).hex());
            log.outputs.push(OutputFileLog {
                url: store.url_for_relative(&format!("meta/{name}")).to_string(),
                path,
                size_bytes: bytes.len().to_string(),
            });
        }
        log.logs.push(ExecutorLog {
            stdout: Some(String::from_utf8_lossy(stdout).into_owned()),
            stderr: Some(String::from_utf8_lossy(stderr).into_owned()),
            exit_code: 0,
            ..ExecutorLog::default()
        });
        Task {
            logs: vec![log],
            ..Task::default()
        }
    }

    /// The result of `task`, COMPLETE on the reference worker, outputs under `/o`.
    async fn completed(store: &Store, task: &Task) -> Result<RemoteResult, Error> {
        result_of(
            store,
            "t",
            State::Complete,
            task,
            Engine::ReferenceWorker,
            "/o",
        )
        .await
    }

    #[tokio::test]
    async fn a_stream_whole_in_the_log_is_not_downloaded_and_a_lossy_one_is() {
        let store = Store::from_url("memory:///", &crate::config::Env::default()).unwrap();
        let (stdout, stderr) = (b"Proof saved\n".as_slice(), b"bad byte \xff\n".as_slice());
        // Only stderr is in the store: stdout must come from the log, checked.
        let key = store.key_for_url(store.url_for_relative("meta/stderr").as_str());
        store
            .object_store()
            .put(&key.unwrap(), stderr.to_vec().into())
            .await
            .unwrap();
        let task = finished(stdout, stderr, &store);
        let result = completed(&store, &task).await.unwrap();
        assert_eq!(result.stdout, stdout);
        assert_eq!(
            result.stderr, stderr,
            "byte-exact from the store, not the lossy tail"
        );

        // A log tail that does not match the recorded digest is not used.
        let mut forged = finished(stdout, stderr, &store);
        forged.logs[0].logs[0].stdout = Some("Proof forged".into());
        let err = completed(&store, &forged).await.unwrap_err();
        let chain = crate::logging::error_chain(&err);
        assert!(chain.contains("meta/stdout"), "{chain}");
    }

    #[tokio::test]
    async fn bytes_in_the_log_are_used_only_when_size_and_digest_agree() {
        // The store is empty: every byte must come from the log.
        let store = Store::from_url("memory:///", &crate::config::Env::default()).unwrap();
        let (stderr, proof) = (
            b"bad byte \xff\n".as_slice(),
            b"proof \x00 bytes".as_slice(),
        );
        let with = |carried: &[(&str, String)], proof_size: usize| {
            let mut task = finished(b"", stderr, &store);
            let log = &mut task.logs[0];
            log.metadata
                .insert("sha256:/o/proof".into(), Digest::of_bytes(proof).hex());
            log.outputs.push(OutputFileLog {
                url: store.url_for_relative("out/proof").to_string(),
                path: "/o/proof".into(),
                size_bytes: proof_size.to_string(),
            });
            let stderr_in_log = ("/bb-remote/meta/stderr", inline::encode(stderr));
            for (path, text) in carried.iter().chain([&stderr_in_log]) {
                log.metadata.insert(inline::content_key(path), text.clone());
            }
            task
        };
        let read = |task: Task| {
            let store = store.clone();
            async move {
                completed(&store, &task)
                    .await
                    .map_err(|e| crate::logging::error_chain(&e))
            }
        };
        let good = [("/o/proof", inline::encode(proof))];
        let result = read(with(&good, proof.len())).await.unwrap();
        assert_eq!(result.stderr, stderr, "byte-exact, not the lossy tail");
        assert_eq!(result.outputs[0].inline.as_deref(), Some(proof));

        let forged = [("/o/proof", inline::encode(b"proof \x01 bytes"))];
        let err = read(with(&forged, proof.len())).await.unwrap_err();
        assert!(
            err.contains("/o/proof") && err.contains("digest mismatch"),
            "{err}"
        );
        let short = [("/o/proof", inline::encode(&proof[1..]))];
        let err = read(with(&short, proof.len())).await.unwrap_err();
        assert!(err.contains("/o/proof"), "{err}");
        let too_big = [("/o/proof", inline::encode(&[0; 70_000]))];
        let err = read(with(&too_big, 70_000)).await.unwrap_err();
        assert!(err.contains("more than the 65536 allowed"), "{err}");
    }

    #[test]
    fn relative_is_by_component() {
        assert_eq!(relative("/o/proof", "/o"), Some("proof"));
        assert_eq!(relative("/o/a/b", "/o/"), Some("a/b"));
        assert_eq!(relative("/ox/proof", "/o"), None);
        assert_eq!(relative("/o", "/o"), None);
    }
}

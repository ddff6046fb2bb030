//! Moving a task's files: inputs from the store into the sandbox, outputs back.
//!
//! Inputs come through the worker's [`LocalCasCache`](crate::store::LocalCasCache), so
//! a bytecode or vk used by many tasks is downloaded once; each task gets its own copy
//! (never a hard link), so nothing a task does can alter a cached blob.
//!
//! Output digests: each uploaded file's SHA-256 is recorded in the task log's
//! `metadata` under the key `sha256:<container path>` (e.g.
//! `sha256:/work/out/proof` -> 64 hex digits), and the file is listed in
//! `logs[].outputs` with its `url`, container `path` and `size_bytes`. For a DIRECTORY
//! output every regular file under it is uploaded to `<url>/<relative path>` and
//! recorded the same way; symbolic links are not followed.
use crate::logging::error_chain;
use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt};

use crate::store::{Digest, LocalCasCache, Store};
use crate::tes::inline;
use crate::tes::types::{FileType, OutputFileLog, Task, TaskLog};

use super::sandbox::Sandbox;
use super::service::Worker;

/// Metadata key under which an output's digest is recorded.
pub(crate) fn digest_key(container_path: &str) -> String {
    format!("sha256:{container_path}")
}

/// Create the sandbox tree: inputs, volumes and the parent directories of outputs.
/// Blobs are fetched into the cache first (the only step that may need the network);
/// the tree is then made in one blocking call, not one thread hop per file system call.
pub(crate) async fn materialize(
    task: &Task,
    sandbox: &Sandbox,
    store: &Store,
    cache: &LocalCasCache,
) -> Result<(), String> {
    // Blobs missing from the cache are downloaded several at once: on a remote store
    // each is a round trip.
    let fetches: Vec<_> = task
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| async move {
            let dest = sandbox
                .map(&input.path, &format!("inputs[{i}].path"))
                .map_err(|e| e.to_string())?;
            let source = match &input.content {
                Some(content) => Source::Content(content.clone()),
                None => {
                    let url = input.url.as_deref().unwrap_or_default();
                    let (_, cached) = cache
                        .fetch_url(store, url)
                        .await
                        .map_err(|e| format!("fetching input {url}: {}", error_chain(&e)))?;
                    Source::Cached(cached)
                }
            };
            Ok::<_, String>((dest, source, input.path.clone()))
        })
        .collect();
    let inputs: Vec<_> = futures::stream::iter(fetches)
        .buffered(INPUT_PARALLELISM)
        .try_collect()
        .await?;
    let mut dirs = Vec::new();
    for volume in &task.volumes {
        dirs.push(sandbox.map(volume, "volume").map_err(|e| e.to_string())?);
    }
    for output in &task.outputs {
        let path = sandbox
            .map(&output.path, "output")
            .map_err(|e| e.to_string())?;
        match output.file_type {
            FileType::File => dirs.extend(path.parent().map(Path::to_path_buf)),
            FileType::Directory => dirs.push(path),
        }
    }
    let root = sandbox.root();
    tokio::task::spawn_blocking(move || stage(&root, inputs, &dirs))
        .await
        .map_err(|e| e.to_string())?
}

/// Where an input's bytes come from.
enum Source {
    Content(String),
    /// A blob in the input cache: copied, never linked, so nothing a task does can
    /// alter a cached blob.
    Cached(PathBuf),
}

/// Make the sandbox tree (see [`materialize`]).
fn stage(
    root: &Path,
    inputs: Vec<(PathBuf, Source, String)>,
    dirs: &[PathBuf],
) -> Result<(), String> {
    let create = |dir: &Path| {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))
    };
    create(root)?;
    for (dest, source, path) in inputs {
        if let Some(parent) = dest.parent() {
            create(parent)?;
        }
        match source {
            Source::Content(content) => {
                std::fs::write(&dest, content).map_err(|e| format!("writing input {path}: {e}"))?
            }
            Source::Cached(cached) => {
                super::retention::touch(&cached);
                std::fs::copy(&cached, &dest)
                    .map(drop)
                    .map_err(|e| format!("copying input {path} into the sandbox: {e}"))?;
            }
        }
    }
    dirs.iter().try_for_each(|dir| create(dir))
}

/// Inputs fetched into the cache at once.
const INPUT_PARALLELISM: usize = 4;

/// Output files uploaded at once (those sent in one request).
const UPLOAD_PARALLELISM: usize = 4;

/// Upload every output, recording each file in `log` (in the task's output order);
/// with `only`, just the output files at those container paths (a failed executor's
/// stdout and stderr captures). Files go several at once: on a remote store each
/// upload is a round trip, and a proof's handful of small files one after another
/// cost a tiny proof more than bb's own run. Small files of a task that asks for it
/// are recorded in the log instead, up to a budget (`tes::inline`): no round trip.
pub(crate) async fn upload_outputs(
    task: &Task,
    sandbox: &Sandbox,
    worker: &Worker,
    log: &mut TaskLog,
    only: Option<&[&str]>,
) -> Result<(), String> {
    // (host file, url, container path) of every file to upload.
    let mut files = Vec::new();
    for output in &task.outputs {
        let host = sandbox
            .map(&output.path, "output")
            .map_err(|e| e.to_string())?;
        match output.file_type {
            FileType::File => files.push((host, output.url.clone(), output.path.clone())),
            FileType::Directory => {
                let walk_root = host.clone();
                let relative = tokio::task::spawn_blocking(move || regular_files(&walk_root))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("listing output directory {}: {e}", output.path))?;
                files.extend(relative.into_iter().map(|rel| {
                    let rel = rel.to_string_lossy().into_owned();
                    let url = format!("{}/{rel}", output.url.trim_end_matches('/'));
                    let path = format!("{}/{rel}", output.path.trim_end_matches('/'));
                    (host.join(&rel), url, path)
                }));
            }
        }
    }
    if let Some(keep) = only {
        files.retain(|(_, _, path)| keep.contains(&path.as_str()));
    }
    let mut sizes = Vec::with_capacity(files.len());
    for (file, _, path) in &files {
        match tokio::fs::metadata(file).await {
            Ok(meta) if meta.is_file() => sizes.push(meta.len()),
            _ => return Err(format!("output {path} was not produced")),
        }
    }
    // Small files the task lets us keep in its log go there, up to the budget, in the
    // task's order; the rest is uploaded.
    let mut budget = inline_budget(task, worker.config.inline_output_bytes);
    let mut kept = vec![None; files.len()];
    let inlining = budget > 0;
    for (i, (file, _, _)) in files.iter().enumerate() {
        if inlining && sizes[i] <= budget {
            if let Some(bytes) = read_at_most(file, budget).await? {
                budget -= bytes.len() as u64;
                kept[i] = Some(bytes);
            }
        }
    }
    // One-request files several at once, then multipart ones (each already sends
    // several parts at once) one at a time: memory stays that of either, not both.
    let store = &worker.config.store;
    let to_send = |want_large: bool| {
        files
            .iter()
            .zip(&sizes)
            .zip(&kept)
            .filter(move |((_, size), kept)| {
                kept.is_none() && store.sends_multipart(**size) == want_large
            })
            .map(|(((file, url, path), _), _)| upload_one(worker, file, url, path))
    };
    let small: Vec<_> = to_send(false).collect();
    let mut small = futures::stream::iter(small)
        .buffered(UPLOAD_PARALLELISM)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter();
    let mut large = Vec::new();
    for upload in to_send(true).collect::<Vec<_>>() {
        large.push(upload.await?);
    }
    let mut large = large.into_iter();
    for (i, (_, url, path)) in files.into_iter().enumerate() {
        let (digest, size) = match &kept[i] {
            Some(bytes) => {
                log.metadata
                    .insert(inline::content_key(&path), inline::encode(bytes));
                Some((Digest::of_bytes(bytes), bytes.len() as u64))
            }
            None if store.sends_multipart(sizes[i]) => large.next(),
            None => small.next(),
        }
        .ok_or_else(|| format!("output {path}: its upload result went missing"))?;
        log.metadata.insert(digest_key(&path), digest.hex());
        log.outputs.push(OutputFileLog {
            url,
            path,
            size_bytes: size.to_string(),
        });
    }
    Ok(())
}

/// How many output bytes `task` may keep in its log: what it asks for (`inline::TAG`),
/// at most the worker's `cap`.
fn inline_budget(task: &Task, cap: u64) -> u64 {
    task.tags
        .get(inline::TAG)
        .and_then(|asked| asked.parse::<u64>().ok())
        .map_or(0, |asked| asked.min(cap))
}

/// The whole file if it has at most `limit` bytes (it may have grown since its size
/// was read), else `None`.
async fn read_at_most(file: &Path, limit: u64) -> Result<Option<Vec<u8>>, String> {
    use tokio::io::AsyncReadExt;
    let opened = tokio::fs::File::open(file)
        .await
        .map_err(|e| format!("reading output {}: {e}", file.display()))?;
    let mut bytes = Vec::new();
    opened
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| format!("reading output {}: {e}", file.display()))?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// Upload one output file (host path `file`) to `url`; its digest and size.
async fn upload_one(
    worker: &Worker,
    file: &Path,
    url: &str,
    path: &str,
) -> Result<(Digest, u64), String> {
    let key = worker
        .config
        .store
        .key_for_url(url)
        .map_err(|e| format!("output {path}: {e}"))?;
    super::uploads::put_output(worker, file, &key)
        .await
        .map_err(|e| format!("uploading output {path} to {url}: {e}"))
}

/// Regular files under `dir`, relative to it, sorted; symlinks are skipped.
fn regular_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let child = rel.join(entry.file_name());
            if kind.is_dir() {
                pending.push(child);
            } else if kind.is_file() {
                found.push(child);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_walk_is_sorted_and_skips_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::write(dir.path().join("b/c/z"), "1").unwrap();
        std::fs::write(dir.path().join("a"), "2").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let files = regular_files(dir.path()).unwrap();
        assert_eq!(files, [PathBuf::from("a"), PathBuf::from("b/c/z")]);
    }
}

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
use crate::tes::types::{FileType, OutputFileLog, Task, TaskLog};

use super::sandbox::Sandbox;
use super::service::Worker;

/// Metadata key under which an output's digest is recorded.
pub(crate) fn digest_key(container_path: &str) -> String {
    format!("sha256:{container_path}")
}

/// Create the sandbox tree: inputs, volumes and the parent directories of outputs.
pub(crate) async fn materialize(
    task: &Task,
    sandbox: &Sandbox,
    store: &Store,
    cache: &LocalCasCache,
) -> Result<(), String> {
    let root = sandbox.root();
    create_dir(&root).await?;
    for (i, input) in task.inputs.iter().enumerate() {
        let dest = sandbox
            .map(&input.path, &format!("inputs[{i}].path"))
            .map_err(|e| e.to_string())?;
        create_parent(&dest).await?;
        if let Some(content) = &input.content {
            tokio::fs::write(&dest, content)
                .await
                .map_err(|e| format!("writing input {}: {e}", input.path))?;
            continue;
        }
        let url = input.url.as_deref().unwrap_or_default();
        let (_, cached) = cache
            .fetch_url(store, url)
            .await
            .map_err(|e| format!("fetching input {url}: {}", error_chain(&e)))?;
        super::retention::touch(&cached);
        tokio::fs::copy(&cached, &dest)
            .await
            .map_err(|e| format!("copying input {} into the sandbox: {e}", input.path))?;
    }
    for volume in &task.volumes {
        create_dir(&sandbox.map(volume, "volume").map_err(|e| e.to_string())?).await?;
    }
    for output in &task.outputs {
        let path = sandbox
            .map(&output.path, "output")
            .map_err(|e| e.to_string())?;
        match output.file_type {
            FileType::File => create_parent(&path).await?,
            FileType::Directory => create_dir(&path).await?,
        }
    }
    Ok(())
}

/// Output files uploaded at once (those sent in one request).
const UPLOAD_PARALLELISM: usize = 4;

/// Upload every output, recording each file in `log` (in the task's output order);
/// with `only`, just the output files at those container paths (a failed executor's
/// stdout and stderr captures). Files go several at once: on a remote store each
/// upload is a round trip, and a proof's handful of small files one after another
/// cost a tiny proof more than bb's own run.
pub(crate) async fn upload_outputs(
    task: &Task,
    sandbox: &Sandbox,
    worker: &Worker,
    log: &mut TaskLog,
    only: Option<&[&str]>,
) -> Result<(), String> {
    let store = &worker.config.store;
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
    let mut large = Vec::with_capacity(files.len());
    for (file, _, path) in &files {
        match tokio::fs::metadata(file).await {
            Ok(meta) if meta.is_file() => large.push(store.sends_multipart(meta.len())),
            _ => return Err(format!("output {path} was not produced")),
        }
    }
    // One-request files several at once, then multipart ones (each already sends
    // several parts at once) one at a time: memory stays that of either, not both.
    let small: Vec<_> = files
        .iter()
        .zip(&large)
        .filter(|(_, large)| !**large)
        .map(|((file, url, path), _)| upload_one(worker, file, url, path))
        .collect();
    let mut small = futures::stream::iter(small)
        .buffered(UPLOAD_PARALLELISM)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter();
    let mut uploaded = Vec::with_capacity(files.len());
    for ((file, url, path), large) in files.iter().zip(&large) {
        uploaded.push(match large {
            true => upload_one(worker, file, url, path).await?,
            false => small.next().expect("one result per small file"),
        });
    }
    for ((_, url, path), (digest, size)) in files.into_iter().zip(uploaded) {
        log.metadata.insert(digest_key(&path), digest.hex());
        log.outputs.push(OutputFileLog {
            url,
            path,
            size_bytes: size.to_string(),
        });
    }
    Ok(())
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

async fn create_dir(path: &Path) -> Result<(), String> {
    tokio::fs::create_dir_all(path)
        .await
        .map_err(|e| format!("creating {}: {e}", path.display()))
}

async fn create_parent(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(parent) => create_dir(parent).await,
        None => Ok(()),
    }
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

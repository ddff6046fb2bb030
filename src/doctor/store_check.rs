//! `store`: write, read back and delete one small probe object under `doctor/`.

use std::time::Instant;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};

use super::{error_chain, Check, Status, CHECK_TIMEOUT};
use crate::config::Env;
use crate::env_vars;
use crate::store::{Store, StoreError};

/// Where probes go, below the store's base prefix.
const PROBE_DIR: &str = "doctor";

pub(crate) async fn check_store(env: &Env) -> Check {
    let store = match Store::from_env(env) {
        Ok(Some(store)) => store,
        Ok(None) if env.get(env_vars::BACKEND).is_some() => {
            return Check::new(
                "store",
                Status::Fail,
                format!(
                    "{} is unset, but delegation ({} is set) needs it - set {} to an object store URL",
                    env_vars::STORE,
                    env_vars::BACKEND,
                    env_vars::STORE
                ),
            );
        }
        Ok(None) => {
            return Check::new(
                "store",
                Status::Skip,
                format!(
                    "{} unset: passthrough-only mode needs no store",
                    env_vars::STORE
                ),
            );
        }
        Err(err) => {
            return Check::new(
                "store",
                Status::Fail,
                format!("{} - fix {}", error_chain(&err), env_vars::STORE),
            );
        }
    };
    let url = crate::config::Redacted(store.base_url().as_str()).to_string();
    let started = Instant::now();
    let outcome = match tokio::time::timeout(CHECK_TIMEOUT, probe(&store)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!(
            "no answer within {} s - is the store reachable from here?",
            CHECK_TIMEOUT.as_secs()
        )),
    };
    match outcome {
        Ok(key) => Check::new(
            "store",
            Status::Ok,
            format!(
                "{url}: wrote, read and deleted a probe object ({} ms)",
                started.elapsed().as_millis()
            ),
        )
        .with_details(vec![format!("probe key: {key}")]),
        Err(why) => Check::new(
            "store",
            Status::Fail,
            format!(
                "{url}: {why} - check {} and the AWS_*/GOOGLE_*/AZURE_* credentials",
                env_vars::STORE
            ),
        ),
    }
}

/// Put, get (comparing bytes) and delete a probe; returns its key or what failed.
async fn probe(store: &Store) -> Result<ObjectPath, String> {
    let relative = format!(
        "{PROBE_DIR}/probe-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    let key = store
        .key_for_url(store.url_for_relative(&relative).as_str())
        .map_err(|e| error_chain(&e))?;
    let body = format!("bb-remote doctor probe {relative}\n");
    let inner = store.object_store();
    let failed = |step: &str, err: object_store::Error| {
        format!(
            "{step} failed: {}",
            error_chain(&StoreError::from_store(&key, err))
        )
    };
    inner
        .put(&key, PutPayload::from(body.clone().into_bytes()))
        .await
        .map_err(|e| failed("write", e))?;
    let read = async { inner.get(&key).await?.bytes().await }
        .await
        .map_err(|e| failed("read", e));
    // Delete even when the read failed, so no probe is left behind.
    let deleted = inner.delete(&key).await.map_err(|e| failed("delete", e));
    let read = read?;
    if read != body.as_bytes() {
        return Err(format!(
            "read back {} bytes that differ from the {} written",
            read.len(),
            body.len()
        ));
    }
    deleted?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_store_env(dir: &std::path::Path) -> Env {
        let url = url::Url::from_directory_path(dir).unwrap().to_string();
        Env::from_pairs([(env_vars::STORE, url)])
    }

    #[tokio::test]
    async fn probe_round_trips_on_a_file_store_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let check = check_store(&file_store_env(dir.path())).await;
        assert_eq!(check.status, Status::Ok, "{check:?}");
        assert!(
            check.summary.contains("wrote, read and deleted"),
            "{check:?}"
        );
        let probes = dir.path().join(PROBE_DIR);
        let left = std::fs::read_dir(&probes)
            .map(|d| d.count())
            .unwrap_or_default();
        assert_eq!(left, 0, "probe left behind in {}", probes.display());
    }

    #[tokio::test]
    async fn a_store_below_a_regular_file_fails_even_as_root() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let check = check_store(&file_store_env(&file.join("store"))).await;
        assert_eq!(check.status, Status::Fail, "{check:?}");
        assert!(
            check.summary.contains("write failed") && check.summary.contains("BB_REMOTE_STORE"),
            "{check:?}"
        );
    }

    #[tokio::test]
    async fn unset_store_is_skipped_or_required() {
        let check = check_store(&Env::default()).await;
        assert_eq!(check.status, Status::Skip);
        let e = Env::from_pairs([(env_vars::BACKEND, "http://127.0.0.1:1")]);
        let check = check_store(&e).await;
        assert_eq!(check.status, Status::Fail);
        assert!(check.summary.contains("set BB_REMOTE_STORE"), "{check:?}");
    }
}

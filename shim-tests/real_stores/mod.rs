//! Store schemes against real servers: Azure Blob (Azurite), S3 with SigV4 checked
//! (moto with authentication on) and GCS (fake-gcs-server; its XML-API uploads come
//! from the test bed's front, a TEST DOUBLE for those requests only, because
//! fake-gcs-server answers them with 400 "invalid uploadType") and `http://` (WsgiDAV,
//! a WebDAV server). For each: the store
//! API's conformance, a proof through the shim and the reference worker (upload,
//! dedupe, download), and `doctor`.
mod servers;

use bb_remote::config::Env;
use bb_remote::store::Store;

use crate::delegate::harness::{files, square_proved_directly, uploaded, Backend, StoreKind};
use crate::funnel::harness::in_netns;
use crate::support::testbed::{run, Scratch};
use servers::StoreServer;

fn env_of(server: &StoreServer) -> Env {
    Env::from_pairs(server.env.iter().map(|(k, v)| (*k, v.as_str())))
}

/// The store API, then the shim and the worker on it, then `doctor`.
fn exercise(server: StoreServer) {
    let store = Store::from_url(&server.url, &env_of(&server)).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(crate::store::conformance(&store));

    // Every output through the store (none carried in the task log), to test downloads.
    let backend = Backend::real_bb(
        StoreKind::Url(server.url.clone(), server.env.clone()),
        &["--inline-output-bytes", "0"],
    );
    let scratch = Scratch::new();
    let (job, direct_out) = square_proved_directly(&scratch);

    let out = scratch.path("remote");
    let first = run(backend.shim(&scratch).args(job.prove_argv(&out)));
    first.assert_code(0, &format!("prove through the shim on {}", server.url));
    assert_eq!(files(&out), files(&direct_out));
    assert_eq!(uploaded(&first.stderr).0, 3, "{}", first.stderr);

    // Same circuit, other witness bytes (gzip's mtime): only the witness travels.
    let witness_size = job.touch_witness();
    let again_out = scratch.path("again");
    let again = run(backend.shim(&scratch).args(job.prove_argv(&again_out)));
    again.assert_code(0, "second proof");
    assert_eq!(
        uploaded(&again.stderr),
        (1, witness_size),
        "{}",
        again.stderr
    );
    assert_eq!(files(&again_out), files(&direct_out));

    let mut doctor = scratch.command(env!("CARGO_BIN_EXE_bb-remote"));
    doctor
        .arg("doctor")
        .env("BB_REMOTE_BACKEND", &backend.worker.base)
        .env("BB_REMOTE_STORE", &server.url)
        .env(
            "BB_REMOTE_NATIVE_BIN",
            &crate::support::testbed::testbed().bb,
        )
        .envs(server.env.iter().map(|(k, v)| (*k, v)));
    let doctor = run(&mut doctor);
    let report = String::from_utf8_lossy(&doctor.stdout).into_owned();
    doctor.assert_code(0, &format!("doctor on {}:\n{report}", server.url));
    assert!(
        report.contains("wrote, read and deleted a probe object"),
        "{report}"
    );
}

fn pattern(len: u64) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4099) as u8).collect()
}

/// A `len`-byte file goes up once (the second upload sends nothing) and reads back whole.
fn round_trip(store: &Store, len: u64) {
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("pk");
    std::fs::write(&path, pattern(len)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(store.upload_cas(&path)).unwrap();
    assert!(out.uploaded);
    assert!(!rt.block_on(store.upload_cas(&path)).unwrap().uploaded);
    rt.block_on(store.download_verified(
        &store.cas_key(&out.digest),
        work.path(),
        "back",
        &out.digest,
    ))
    .unwrap();
    assert!(std::fs::read(work.path().join("back")).unwrap() == pattern(len));
}

#[test]
fn azure_blob_on_azurite() {
    in_netns(|| exercise(servers::azurite("proofs")));
}

#[test]
fn s3_with_sigv4_checked() {
    in_netns(|| {
        let server = servers::sigv4_s3("proofs");
        // A signing mistake (here: the wrong secret) is refused by this server.
        let mut wrong = server.env.clone();
        for (k, v) in &mut wrong {
            if *k == "AWS_SECRET_ACCESS_KEY" {
                v.push('x');
            }
        }
        let store = Store::from_url(
            &server.url,
            &Env::from_pairs(wrong.iter().map(|(k, v)| (*k, v.as_str()))),
        )
        .unwrap();
        let work = tempfile::tempdir().unwrap();
        let file = work.path().join("f");
        std::fs::write(&file, b"signed?").unwrap();
        let err = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(store.upload_cas(&file))
            .unwrap_err();
        let text = format!("{err:?}");
        assert!(
            text.contains("SignatureDoesNotMatch") || text.contains("403"),
            "{text}"
        );
        exercise(server);
    });
}

#[test]
fn gcs_on_fake_gcs_server() {
    in_netns(|| {
        let server = servers::fake_gcs("proofs");
        // A file above the multipart threshold goes through the XML multipart upload
        // (initiate, parts, complete) and reads back whole through fake-gcs-server.
        let store = Store::from_url(&server.url, &env_of(&server))
            .unwrap()
            .with_tuning(bb_remote::store::UploadTuning {
                multipart_threshold: 6 * 1024 * 1024,
                part_size: 5 * 1024 * 1024,
                part_concurrency: 2,
            });
        round_trip(&store, 12 * 1024 * 1024 + 11);
        exercise(server);
    });
}

#[test]
fn http_on_wsgidav() {
    in_netns(|| {
        let server = servers::webdav();
        let store = Store::from_url(&server.url, &env_of(&server)).unwrap();
        // object_store's HTTP store has no multipart upload: a file at the multipart
        // threshold (5 MiB) goes up in one PUT, one byte more is refused, naming the limit.
        let limit = bb_remote::store::UploadTuning::default().multipart_threshold;
        round_trip(&store, limit);
        let work = tempfile::tempdir().unwrap();
        let over = work.path().join("over");
        std::fs::write(&over, pattern(limit + 1)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(store.upload_cas(&over))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("{limit} bytes per object")), "{err}");
        for round in 0..10 {
            uploads_at_once(&store, &rt, work.path(), round);
        }
        exercise(server);
    });
}

/// Eight new blobs at once (each asks whether it exists, then uploads), then eight
/// outputs at once into one new collection, as the shim and the worker do.
/// - WsgiDAV answers a HEAD for a missing blob with a body; on a reused connection
///   that body became the next answer (hyper `Parse(Version)`) in most rounds.
/// - The MKCOLs of the new collection race; the losers get 405.
fn uploads_at_once(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    round: usize,
) {
    let blobs: Vec<_> = (0..8)
        .map(|i| {
            let path = dir.join(format!("blob-{round}-{i}"));
            std::fs::write(&path, format!("blob {round} {i}")).unwrap();
            path
        })
        .collect();
    let uploads = blobs.iter().map(|path| store.upload_cas(path));
    for (path, up) in blobs
        .iter()
        .zip(rt.block_on(futures::future::join_all(uploads)))
    {
        let up = up.unwrap_or_else(|e| panic!("round {round}: {}: {e:?}", path.display()));
        assert!(up.uploaded);
    }
    let proof = dir.join("proof");
    std::fs::write(&proof, b"proof bytes").unwrap();
    let keys: Vec<_> = (0..8)
        .map(|i| {
            let url = store.url_for_relative(&format!("runs/race-{round}/1/out/{i}"));
            store.key_for_url(url.as_str()).unwrap()
        })
        .collect();
    let puts = keys.iter().map(|key| store.put_file(&proof, key));
    for (key, put) in keys
        .iter()
        .zip(rt.block_on(futures::future::join_all(puts)))
    {
        put.unwrap_or_else(|e| panic!("round {round}: {key}: {e:?}"));
    }
}

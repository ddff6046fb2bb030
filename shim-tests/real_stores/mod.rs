//! Store schemes against real servers: Azure Blob (Azurite), S3 with SigV4 checked
//! (moto with authentication on) and GCS (fake-gcs-server; its XML-API uploads come
//! from the test bed's front, a TEST DOUBLE for those requests only, because
//! fake-gcs-server answers them with 400 "invalid uploadType"). For each: the store
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

    let backend = Backend::real_bb(StoreKind::Url(server.url.clone(), server.env.clone()), &[]);
    let scratch = Scratch::new();
    let (job, direct_out) = square_proved_directly(&scratch);

    let out = scratch.path("remote");
    let first = run(backend.shim(&scratch).args(job.prove_argv(&out)));
    first.assert_code(0, &format!("prove through the shim on {}", server.url));
    assert_eq!(files(&out), files(&direct_out));
    assert_eq!(uploaded(&first.stderr).0, 3, "{}", first.stderr);

    // Same circuit, other witness bytes (gzip's mtime): only the witness travels.
    let mut witness = std::fs::read(job.witness()).unwrap();
    witness[4] ^= 1;
    std::fs::write(job.witness(), &witness).unwrap();
    let again_out = scratch.path("again");
    let again = run(backend.shim(&scratch).args(job.prove_argv(&again_out)));
    again.assert_code(0, "second proof");
    assert_eq!(
        uploaded(&again.stderr),
        (1, witness.len() as u64),
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
        let work = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..12 * 1024 * 1024 + 11u32)
            .map(|i| (i * 7 + i / 4099) as u8)
            .collect();
        let path = work.path().join("pk");
        std::fs::write(&path, &big).unwrap();
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
        assert!(std::fs::read(work.path().join("back")).unwrap() == big);
        exercise(server);
    });
}

//! Store schemes against real servers: Azure Blob (Azurite) and S3 with SigV4 checked
//! (moto with authentication on). For each: the store API's conformance, a proof
//! through the shim and the reference worker (upload, dedupe, download), and `doctor`.
//! GCS is not here: fake-gcs-server v1.56.1 answers object_store's XML-API upload
//! with 400 "invalid uploadType" (object_store's own CI uses a patched fork).
mod servers;

use bb_remote::config::Env;
use bb_remote::store::Store;

use crate::delegate::harness::{direct_bb, files, uploaded, AztecJob, Backend, StoreKind};
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
    let job = AztecJob::new(&scratch, "square", "SquareArtifact");
    let direct_out = scratch.path("direct");
    let argv = job.prove_argv(&direct_out);
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    direct_bb(&scratch, &args).assert_code(0, "bb prove directly");

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

//! The Aztec 4.x client's `prove` through the shim and the worker gives the bytes bb
//! gives when run directly; a second proof of the same circuit uploads only its witness.
use std::process::Command;

use super::harness::{
    bb_stderr, files, proof_files, proved_directly, uploaded, Backend, StoreKind,
};
use crate::support::testbed::{run, S3Server, Scratch};

/// Recompress the witness: same witness content (so the same proof), different bytes.
fn recompress(path: &std::path::Path) {
    let plain = Command::new("gzip").arg("-dc").arg(path).output().unwrap();
    assert!(plain.status.success());
    // Through a file, not pipes both ways (which can deadlock).
    let raw = path.with_extension("raw");
    std::fs::write(&raw, plain.stdout).unwrap();
    let out = Command::new("gzip")
        .args(["-1", "-n", "-c"])
        .arg(&raw)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::remove_file(&raw).unwrap();
    assert_ne!(out.stdout, std::fs::read(path).unwrap());
    std::fs::write(path, out.stdout).unwrap();
}

async fn prove_matches_direct_bb(kind: StoreKind) {
    let backend = Backend::real_bb(kind, &[]);
    let scratch = Scratch::new();
    let (job, direct_out, direct) = proved_directly(&scratch, "hashchain", "HashchainArtifact");

    let remote_out = scratch.path("remote");
    // A plain-http backend and store need no CA roots, so none are loaded: with no
    // roots to be found the call still works (it used to load them every time).
    let nowhere = scratch.path("no-ca-roots");
    let shim = run(backend
        .shim(&scratch)
        .env("SSL_CERT_FILE", &nowhere)
        .env("SSL_CERT_DIR", &nowhere)
        .args(job.prove_argv(&remote_out)));
    shim.assert_code(0, "bb prove through the shim");
    let want = proof_files(&direct_out);
    assert_eq!(
        files(&remote_out),
        want,
        "outputs differ from bb run directly"
    );
    assert_eq!(shim.stdout, direct.stdout);
    assert!(shim.stderr.contains(" COMPLETE after "), "{}", shim.stderr);
    assert!(
        !bb_stderr(&shim.stderr).is_empty(),
        "bb's -v log is replayed"
    );
    let (files_sent, bytes_sent) = uploaded(&shim.stderr);
    let total = ["bytecode", "vk", "witness"]
        .iter()
        .zip([job.bytecode(), job.vk(), job.witness()])
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .sum::<u64>();
    assert_eq!((files_sent, bytes_sent), (3, total), "{}", shim.stderr);

    // Second proof of the same circuit, new witness bytes: only the witness travels.
    recompress(&job.witness());
    let again_out = scratch.path("again");
    let again = run(backend.shim(&scratch).args(job.prove_argv(&again_out)));
    again.assert_code(0, "second proof through the shim");
    let witness_len = std::fs::metadata(job.witness()).unwrap().len();
    assert_eq!(
        uploaded(&again.stderr),
        (1, witness_len),
        "{}",
        again.stderr
    );
    assert_eq!(files(&again_out), want);
    assert_eq!(backend.tasks().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn prove_through_file_store_matches_direct_bb() {
    prove_matches_direct_bb(StoreKind::File).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prove_through_s3_matches_direct_bb() {
    prove_matches_direct_bb(StoreKind::S3(S3Server::start("delegate-prove"))).await;
}

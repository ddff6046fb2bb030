//! The test bed itself works: the real bb proves and verifies with the INSECURE test
//! CRS exactly as other modules' tests assume, and moto serves S3 through object_store.

use crate::support::testbed::{circuit, run, testbed, S3Server, Scratch};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};

#[tokio::test]
async fn moto_s3_server_round_trips_an_object_through_object_store() {
    let server = S3Server::start("testbed-roundtrip");
    let store = server.store();
    let key = ObjectPath::from("jobs/abc/proof");
    let body: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();

    store
        .put(&key, PutPayload::from(body.clone()))
        .await
        .expect("PUT to moto");
    let fetched = store.get(&key).await.expect("GET from moto");
    assert_eq!(fetched.bytes().await.expect("reading body"), body);

    let missing = store.get(&ObjectPath::from("jobs/abc/nothing")).await;
    assert!(
        matches!(missing, Err(object_store::Error::NotFound { .. })),
        "a missing key must be NotFound, got {missing:?}"
    );
}

/// write_vk + prove with the stock bb, then: the test-CRS verifier accepts, the stock
/// verifier rejects (the CRS really is not Aztec's), and proving again gives the same
/// bytes (non-ZK proofs are deterministic; other tests compare outputs byte for byte).
fn prove_and_verify(name: &str) {
    let tb = testbed();
    let c = circuit(name);
    let scratch = Scratch::new();
    let crs = tb.crs_dir.as_os_str();

    let write_vk = run(scratch
        .command(&tb.bb)
        .args(["write_vk", "-b"])
        .arg(&c.program)
        .args(["-o", "vk"])
        .arg("-c")
        .arg(crs));
    write_vk.assert_code(0, &format!("{name}: bb write_vk"));

    let prove = |out: &str| {
        run(scratch
            .command(&tb.bb)
            .args(["prove", "--disable_zk", "-b"])
            .arg(&c.program)
            .arg("-w")
            .arg(&c.witness)
            .args(["-k", "vk/vk", "-o", out, "-c"])
            .arg(crs))
        .assert_code(0, &format!("{name}: bb prove"));
        std::fs::read(scratch.path(out).join("proof")).expect("reading proof")
    };
    let first = prove("proof1");
    assert!(!first.is_empty(), "{name}: empty proof");

    let verify = |bb: &std::path::Path| {
        run(scratch
            .command(bb)
            .args(["verify", "--disable_zk", "-k", "vk/vk"])
            .args(["-p", "proof1/proof", "-i", "proof1/public_inputs", "-c"])
            .arg(crs))
    };
    verify(&tb.bb_testcrs).assert_code(0, &format!("{name}: bb-testcrs verify"));
    verify(&tb.bb).assert_code(1, &format!("{name}: stock bb verify must reject"));

    let second = prove("proof2");
    assert!(
        first == second,
        "{name}: a second non-ZK proof differs from the first"
    );

    // HOME pointed at the scratch home, so bb must not have made a ~/.bb-crs there.
    assert!(
        !scratch.home.join(".bb-crs").exists(),
        "{name}: bb touched HOME"
    );
}

#[test]
fn real_bb_proves_square_and_only_the_test_crs_verifier_accepts() {
    prove_and_verify("square");
}

#[test]
fn real_bb_proves_hashchain_and_only_the_test_crs_verifier_accepts() {
    prove_and_verify("hashchain");
}

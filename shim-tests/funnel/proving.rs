//! Proofs through the shim and a real Funnel: the same bytes, stdout and stderr as bb
//! run directly, on `file://` and on S3; a repeated proof uploads only its witness.
use super::harness::{in_netns, Funnel, FunnelStore, Options};
use crate::delegate::harness::{bb_stderr, files, proof_files, proved_directly, uploaded};
use crate::support::testbed::{run, S3Server, Scratch};
use bb_remote::tes::types::State;

fn prove_matches_direct_bb(store: fn() -> FunnelStore) {
    in_netns(move || {
        let funnel = Funnel::start(store(), Options::default());
        let scratch = Scratch::new();
        let (job, direct_out, direct) = proved_directly(&scratch, "hashchain", "HashchainArtifact");

        // Same output directory name, so bb's messages name the same paths.
        std::fs::rename(&direct_out, scratch.path("direct-kept")).unwrap();
        let shim = run(funnel.shim(&scratch).args(job.prove_argv(&direct_out)));
        shim.assert_code(
            0,
            &format!("bb prove through Funnel; log:\n{}", funnel.log()),
        );
        let want = proof_files(&scratch.path("direct-kept"));
        assert_eq!(
            files(&direct_out),
            want,
            "outputs differ from bb run directly"
        );
        assert_eq!(shim.stdout, direct.stdout, "stdout differs");
        // Byte for byte, once the two things that differ by nature are masked: the
        // CRS directory (the executor's `/crs`) and bb's timings.
        let crs = crate::support::testbed::testbed()
            .crs_dir
            .display()
            .to_string();
        assert_eq!(
            normalize(&bb_stderr(&shim.stderr), "/crs"),
            normalize(&direct.stderr, &crs),
            "bb's stderr through Funnel differs from bb's own"
        );
        assert!(
            shim.stderr
                .contains(&format!("Proof saved to {:?}", direct_out.join("proof"))),
            "bb names the caller's paths: {}",
            shim.stderr
        );
        let total: u64 = [job.bytecode(), job.vk(), job.witness()]
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        assert_eq!(uploaded(&shim.stderr), (3, total), "{}", shim.stderr);

        // A second proof of the same circuit with a new witness: only it travels.
        let witness_size = job.touch_witness();
        let again_out = scratch.path("again");
        let again = run(funnel.shim(&scratch).args(job.prove_argv(&again_out)));
        again.assert_code(0, "second proof through Funnel");
        assert_eq!(
            uploaded(&again.stderr),
            (1, witness_size),
            "{}",
            again.stderr
        );
        assert_eq!(files(&again_out), want);

        let tasks = funnel.tasks();
        assert_eq!(tasks.len(), 2, "{tasks:#?}");
        assert!(tasks.iter().all(|t| t.state == Some(State::Complete)));
        // Nothing reference-worker specific in Funnel's answer.
        for task in &tasks {
            let metadata = &task.logs.last().unwrap().metadata;
            assert!(
                !metadata.keys().any(|k| k.starts_with("sha256:")),
                "{metadata:?}"
            );
        }
    });
}

/// `crs` replaced by `<crs>`, and the digits of `in N ms` by `N`.
fn normalize(stderr: &str, crs: &str) -> String {
    stderr
        .replace(crs, "<crs>")
        .lines()
        .map(|line| match line.rsplit_once(" in ") {
            Some((head, tail)) if tail.ends_with(" ms") => format!("{head} in N ms\n"),
            _ => format!("{line}\n"),
        })
        .collect()
}

#[test]
fn aztec_client_prove_through_funnel_on_file_store_matches_direct_bb() {
    prove_matches_direct_bb(|| FunnelStore::File);
}

#[test]
fn aztec_client_prove_through_funnel_on_s3_matches_direct_bb() {
    prove_matches_direct_bb(|| FunnelStore::S3(S3Server::start("funnel-prove")));
}

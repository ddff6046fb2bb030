//! `patch-bb-g2 BB_IN G2_FILE BB_OUT`: writes BB_OUT, a TEST-ONLY copy of bb that
//! verifies against the insecure test CRS whose `[tau]_2` is in G2_FILE. Prove with
//! the stock bb; use the copy only for `verify` in tests.

use insecure_test_crs::patch::patch_g2;
use insecure_test_crs::G2_POINT_BYTES;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;

fn run(bb_in: &Path, g2_file: &Path, bb_out: &Path) -> Result<(), String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()));
    let g2 = read(g2_file)?;
    let g2: [u8; G2_POINT_BYTES] = g2.as_slice().try_into().map_err(|_| {
        format!(
            "{}: expected {G2_POINT_BYTES} bytes of G2 point, found {}",
            g2_file.display(),
            g2.len()
        )
    })?;
    let (patched, replacements) =
        patch_g2(&read(bb_in)?, &g2).map_err(|e| format!("{}: {e}", bb_in.display()))?;
    for r in &replacements {
        eprintln!(
            "patch-bb-g2: replaced {} ({} bytes) at offset {}",
            r.what, r.len, r.offset
        );
    }
    // Write-then-rename: a half-written executable must never sit at BB_OUT.
    let tmp = bb_out.with_extension("partial");
    let write = || -> std::io::Result<()> {
        std::fs::write(&tmp, &patched)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, bb_out)
    };
    write().map_err(|e| format!("writing {}: {e}", bb_out.display()))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bb_in, g2_file, bb_out] = args.as_slice() else {
        eprintln!(
            "usage: patch-bb-g2 BB_IN G2_FILE BB_OUT\n\
             Writes a TEST-ONLY bb whose verifier trusts the INSECURE test CRS in G2_FILE."
        );
        return ExitCode::from(2);
    };
    match run(Path::new(bb_in), Path::new(g2_file), Path::new(bb_out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("patch-bb-g2: {message}");
            ExitCode::FAILURE
        }
    }
}

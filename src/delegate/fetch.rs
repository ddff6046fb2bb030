//! Writing a remote result's files into the caller's output directory: all or nothing.
//!
//! Every name is validated first (`outputs.rs`); each file is fetched into a temporary
//! file inside the output directory (same file system, so the rename is atomic) and
//! its SHA-256 checked; only when every file is verified are they renamed into place.
//! On any failure every temporary file is removed and nothing is renamed. Shared by
//! every transport.
use std::path::{Path, PathBuf};

use futures::StreamExt;

use super::outputs;
use super::transport::{Fetched, RemoteOutput, Transport};
use crate::error::{BadAnswer, Error};
use crate::store::hash_file;

/// Prefix of our temporary files, so an operator can tell them apart.
const TEMP_PREFIX: &str = ".bb-remote-tmp";

/// Write `results` into `out_dir` (created when `create_dir`, else it must exist).
pub(crate) async fn write_outputs<T: Transport>(
    transport: &T,
    results: &[RemoteOutput],
    out_dir: &Path,
    create_dir: bool,
) -> Result<(), Error> {
    let mut planned = Vec::with_capacity(results.len());
    for output in results {
        let relative = outputs::validate(&output.name)?;
        outputs::check_no_links(out_dir, &relative)?;
        planned.push((output, relative));
    }
    // Remember whether we made the directory, so a failure leaves no trace of it.
    let made_dir = create_dir && !out_dir.exists();
    if create_dir {
        tokio::fs::create_dir_all(out_dir)
            .await
            .map_err(|e| io_error("creating the output directory", out_dir, e))?;
    }
    let mut temps = Temps::default();
    let result = fetch_all(transport, &planned, out_dir, &mut temps).await;
    if let Err(err) = result {
        temps.remove_all().await;
        if made_dir {
            let _ = tokio::fs::remove_dir(out_dir).await;
        }
        return Err(err);
    }
    for ((_, relative), temp) in planned.iter().zip(&temps.paths) {
        outputs::make_parents(out_dir, relative)?;
        let dest = out_dir.join(relative);
        tokio::fs::rename(temp, &dest)
            .await
            .map_err(|e| io_error("moving the output into place at", &dest, e))?;
    }
    temps.paths.clear();
    Ok(())
}

/// Outputs downloaded at once. Each goes straight to its own file, so memory does
/// not grow with this; on a remote store each download is a round trip, and a
/// proof's few small files one after another added a tiny proof several of them.
const FETCH_PARALLELISM: usize = 4;

async fn fetch_all<T: Transport>(
    transport: &T,
    planned: &[(&RemoteOutput, PathBuf)],
    out_dir: &Path,
    temps: &mut Temps,
) -> Result<(), Error> {
    let pid = std::process::id();
    // Registered before any is created, so whatever a failure or a drop leaves behind
    // is removed.
    temps.paths = (0..planned.len())
        .map(|i| out_dir.join(format!("{TEMP_PREFIX}-{pid}-{i}")))
        .collect();
    let fetches = planned
        .iter()
        .zip(&temps.paths)
        .map(|((output, _), temp)| fetch_one(transport, output, temp));
    // Every fetch runs to its end before the first error is returned: a fetch dropped
    // part way can still create its file afterwards (tokio runs file operations on
    // blocking threads that outlive the future), after the clean-up already ran.
    let ended: Vec<Result<(), Error>> = futures::stream::iter(fetches)
        .buffer_unordered(FETCH_PARALLELISM)
        .collect()
        .await;
    ended.into_iter().collect()
}

/// Fetch `output` into the new file `temp` and check its digest and size against the
/// backend's claim (whatever the transport checked itself). The file is read again
/// only when the transport did not hash the bytes as it wrote them.
async fn fetch_one<T: Transport>(
    transport: &T,
    output: &RemoteOutput,
    temp: &Path,
) -> Result<(), Error> {
    let (digest, size) = match transport.fetch_output(output, temp).await? {
        Fetched::Hashed { digest, size } => (digest, size),
        Fetched::Unhashed => hash_file(temp).await?,
    };
    if digest != output.digest || size != output.size {
        return Err(Error::BadOutputs(BadAnswer::Mismatch {
            name: output.name.clone(),
            expected: output.digest,
            expected_size: output.size,
            got: digest,
            got_size: size,
        }));
    }
    Ok(())
}

/// Temporary files written so far, removed unless handed over.
#[derive(Default)]
struct Temps {
    paths: Vec<PathBuf>,
}

impl Temps {
    async fn remove_all(&mut self) {
        for path in self.paths.drain(..) {
            let _ = tokio::fs::remove_file(&path).await;
        }
    }
}

impl Drop for Temps {
    // A future dropped mid-fetch (e.g. on a signal) still cleans up.
    fn drop(&mut self) {
        for path in &self.paths {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn io_error(what: &str, path: &Path, err: std::io::Error) -> Error {
    Error::local_io(format!("{what} {}", path.display()), err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delegate::transport::{Job, RemoteResult, UploadStats};
    use crate::store::Digest;
    use std::collections::BTreeMap;

    /// Serves outputs from memory (a unit-test stand-in for a backend). With a
    /// barrier, each output is served only once all of them are being fetched. With
    /// `hashed`, it reports the digest of the bytes it wrote, as the store does.
    struct InMemory(
        BTreeMap<String, Vec<u8>>,
        Option<tokio::sync::Barrier>,
        bool,
    );

    impl Transport for InMemory {
        async fn stage_inputs(
            &mut self,
            _: &[PathBuf],
        ) -> Result<(Vec<(Digest, u64)>, UploadStats), Error> {
            unreachable!()
        }
        async fn execute(&mut self, _: &Job<'_>) -> Result<RemoteResult, Error> {
            unreachable!()
        }
        async fn fetch_output(&self, o: &RemoteOutput, dest: &Path) -> Result<Fetched, Error> {
            if let Some(barrier) = &self.1 {
                barrier.wait().await;
            }
            let Some(bytes) = self.0.get(&o.location) else {
                let gone = std::io::Error::from(std::io::ErrorKind::NotFound);
                return Err(Error::local_io(format!("fetching {}", o.location), gone));
            };
            // On a blocking thread, as tokio's file operations are: it goes on even if
            // this future is dropped.
            let (dest, written) = (dest.to_owned(), bytes.clone());
            tokio::task::spawn_blocking(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                std::fs::write(dest, written)
            })
            .await
            .unwrap()
            .unwrap();
            Ok(match self.2 {
                true => Fetched::Hashed {
                    digest: Digest::of_bytes(bytes),
                    size: bytes.len() as u64,
                },
                false => Fetched::Unhashed,
            })
        }
    }

    fn output(name: &str, claimed: &[u8]) -> RemoteOutput {
        RemoteOutput {
            name: name.into(),
            digest: Digest::of_bytes(claimed),
            size: claimed.len() as u64,
            location: name.into(),
            inline: None,
        }
    }

    fn backend(files: &[(&str, &[u8])]) -> InMemory {
        InMemory(
            files
                .iter()
                .map(|(n, c)| (n.to_string(), c.to_vec()))
                .collect(),
            None,
            false,
        )
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn verified_outputs_land_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let t = backend(&[("proof", b"P"), ("vk", b"V")]);
        let results = [output("proof", b"P"), output("vk", b"V")];
        write_outputs(&t, &results, &out, true).await.unwrap();
        assert_eq!(listing(&out), ["proof", "vk"]);
        assert_eq!(std::fs::read(out.join("vk")).unwrap(), b"V");
    }

    #[tokio::test]
    async fn outputs_are_fetched_at_the_same_time() {
        let dir = tempfile::tempdir().unwrap();
        let files: [(&str, &[u8]); 3] = [("proof", b"P"), ("vk", b"V"), ("public_inputs", b"I")];
        // Deadlocks unless the downloads run at the same time.
        let mut t = backend(&files);
        t.1 = Some(tokio::sync::Barrier::new(files.len()));
        let results: Vec<_> = files.iter().map(|(n, c)| output(n, c)).collect();
        let fetched = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            write_outputs(&t, &results, dir.path(), false),
        )
        .await;
        fetched
            .expect("the outputs were fetched one after another")
            .unwrap();
        assert_eq!(listing(dir.path()), ["proof", "public_inputs", "vk"]);
    }

    #[tokio::test]
    async fn one_bad_digest_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let t = backend(&[("proof", b"P"), ("vk", b"tampered")]);
        let results = [output("proof", b"P"), output("vk", b"V")];
        let err = write_outputs(&t, &results, dir.path(), false)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::BadOutputs(_)), "{err:?}");
        assert!(listing(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn one_of_several_concurrent_fetches_failing_leaves_nothing_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut t = backend(&[("proof", b"P"), ("public_inputs", b"I")]);
        // All three in flight at once; the other two are written before vk fails.
        t.1 = Some(tokio::sync::Barrier::new(3));
        t.2 = true;
        let results = [
            output("proof", b"P"),
            output("vk", b"V"),
            output("public_inputs", b"I"),
        ];
        std::fs::create_dir(&out).unwrap();
        let err = write_outputs(&t, &results, &out, false).await.unwrap_err();
        assert!(err.to_string().contains("fetching vk"), "{err}");
        // A fetch left running would write its file after the clean-up.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(listing(&out).is_empty(), "{:?}", listing(&out));
    }

    #[tokio::test]
    async fn bytes_hashed_while_fetching_are_still_checked_against_the_claim() {
        for hashed in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut t = backend(&[("proof", b"P"), ("vk", b"tampered")]);
            t.2 = hashed;
            let results = [output("proof", b"P"), output("vk", b"V")];
            let err = write_outputs(&t, &results, dir.path(), false)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("vk"), "{err}");
            assert!(listing(dir.path()).is_empty(), "hashed: {hashed}");
            let good = backend(&[("proof", b"P"), ("vk", b"V")]);
            let good = InMemory(good.0, None, hashed);
            write_outputs(&good, &results, dir.path(), false)
                .await
                .unwrap();
            assert_eq!(listing(dir.path()), ["proof", "vk"]);
        }
    }

    #[tokio::test]
    async fn a_linked_subdirectory_of_the_output_directory_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("sub")).unwrap();
        let t = backend(&[("proof", b"P"), ("sub/vk", b"V")]);
        let results = [output("proof", b"P"), output("sub/vk", b"V")];
        let err = write_outputs(&t, &results, dir.path(), false)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(listing(dir.path()), ["sub"]);
        assert!(listing(elsewhere.path()).is_empty());
    }

    #[tokio::test]
    async fn unsafe_names_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let t = backend(&[("proof", b"P"), ("../x", b"X")]);
        let results = [output("proof", b"P"), output("../x", b"X")];
        let err = write_outputs(&t, &results, &dir.path().join("o"), true)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("../x"), "{err}");
        assert!(listing(dir.path()).is_empty());
        let t = backend(&[("proof", b"bad")]);
        let out = dir.path().join("made");
        write_outputs(&t, &[output("proof", b"P")], &out, true)
            .await
            .unwrap_err();
        assert!(
            !out.exists(),
            "a directory we created is removed on failure"
        );
    }
}

//! One upload and one download of a file through a store, timed, for `scripts/bench
//! --only throughput`: the shim's own paths, not a raw client.
//!
//! usage: store_throughput <store-url> <file>
//!
//! Upload is `Store::upload_cas` (hash the file, HEAD, then PUT or multipart), after
//! deleting the blob so that it is really sent; download is `Store::download_verified`
//! (stream, SHA-256, write, rename). Store settings come from the environment
//! (`AWS_*`, `GOOGLE_*`, `AZURE_*`), as in the shim. Prints `<upload_s> <download_s>
//! <bytes>` on stdout.
use std::time::Instant;

use bb_remote::config::Env;
use bb_remote::store::{hash_file, Store};
use object_store::ObjectStoreExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, file] = args.as_slice() else {
        return Err("usage: store_throughput <store-url> <file>".into());
    };
    let store = Store::from_url(url, &Env::from_process())?;
    let file = std::path::Path::new(file);
    let (digest, _) = hash_file(file).await?;
    let key = store.cas_key(&digest);
    match store.object_store().delete(&key).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }

    let t0 = Instant::now();
    let sent = store.upload_cas(file).await?;
    let upload = t0.elapsed().as_secs_f64();
    if !sent.uploaded {
        return Err("the blob was not uploaded (still in the store?)".into());
    }

    let dest = tempfile::tempdir()?;
    let t1 = Instant::now();
    let got = store
        .download_verified(&key, dest.path(), "blob", &digest)
        .await?;
    let download = t1.elapsed().as_secs_f64();
    store.object_store().delete(&key).await?;
    report(upload, download, got);
    Ok(())
}

#[expect(clippy::print_stdout, reason = "the result, for scripts/bench")]
fn report(upload: f64, download: f64, bytes: u64) {
    println!("{upload:.4} {download:.4} {bytes}");
}

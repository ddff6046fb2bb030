//! `msgpack`: the native bb can serve `bb msgpack run` on a socket, which the shim
//! relies on for everything a 5.x prover asks that is not delegated. Starts the native
//! bb as the shim would, asks one `Blake2s` and checks the answer, then stops it.

use std::path::Path;
use std::time::Instant;

use super::{Check, Status, CHECK_TIMEOUT};
use crate::config::Env;
use crate::msgpack::frame;
use crate::msgpack::native_child::{NativeChild, PrivateDir};
use crate::native::{locate, NativeTarget};

/// `Blake2s{data: "abc"}` as bb.js encodes it, and bb 5.0.0's answer.
const REQUEST: &[u8] = b"\x91\x92\xa7Blake2s\xde\x00\x01\xa4data\xc4\x03abc";
const ANSWER: &[u8] = b"\x92\xafBlake2sResponse\x81\xa4hash\xc4\x20\x50\x8c\x5e\x8c\x32\x7c\x14\xe2\xe1\xa7\x2b\xa3\x4e\xeb\x45\x2f\x37\x45\x8b\x20\x9e\xd6\x3a\x29\x4d\x99\x9b\x4c\x86\x67\x59\x82";

pub(crate) async fn check_msgpack(env: &Env, shim_exe: Option<&Path>) -> Check {
    let path =
        match locate(env, shim_exe) {
            Ok(NativeTarget::Bin { path, .. }) => path,
            Ok(NativeTarget::Lib { .. }) => return Check::new(
                "msgpack",
                Status::Skip,
                "a libbb serves `msgpack run` through the shim's own passthrough; not started here",
            ),
            Err(_) => return Check::new("msgpack", Status::Skip, "no native bb (see `native`)"),
        };
    let started = Instant::now();
    match tokio::time::timeout(CHECK_TIMEOUT * 2, ask(env, &path)).await {
        Ok(Ok(())) => Check::new(
            "msgpack",
            Status::Ok,
            format!(
                "`{} msgpack run` serves a socket; Blake2s answered correctly in {} ms",
                path.display(),
                started.elapsed().as_millis()
            ),
        ),
        Ok(Err(why)) => Check::new(
            "msgpack",
            Status::Fail,
            format!(
                "`{} msgpack run`: {why} - 5.x provers need it",
                path.display()
            ),
        ),
        Err(_) => Check::new(
            "msgpack",
            Status::Fail,
            format!(
                "`{} msgpack run` did not answer within {}s",
                path.display(),
                (CHECK_TIMEOUT * 2).as_secs()
            ),
        ),
    }
}

async fn ask(env: &Env, bb: &Path) -> Result<(), String> {
    let dir = PrivateDir::create(env).map_err(|e| format!("creating a directory: {e}"))?;
    let mut command = tokio::process::Command::new(bb);
    command.stderr(std::process::Stdio::null());
    let child = NativeChild::start_with(command, dir.path(), CHECK_TIMEOUT).await?;
    let answered = async {
        let mut stream = child.connect().await.map_err(|e| e.to_string())?;
        frame::write_frame(&mut stream, REQUEST)
            .await
            .map_err(|e| e.to_string())?;
        frame::read_frame(&mut stream)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "closed the connection without an answer".to_owned())
    }
    .await;
    child.stop().await;
    match answered? {
        answer if answer == ANSWER => Ok(()),
        answer => Err(format!(
            "unexpected answer to Blake2s: {:?}",
            frame::response_name(&answer).unwrap_or("not a response")
        )),
    }
}

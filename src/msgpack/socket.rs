//! A relay socket that asks epoll for readability only.
//!
//! Why not tokio's `UnixStream`: it registers every socket for readable *and* writable
//! events, edge-triggered. On a Unix socket the kernel signals "writable" each time the
//! peer consumes data, so every answer the client reads and every request bb reads wakes
//! the shim once more for nothing: about two extra process wake-ups per relayed call,
//! measured on 2 vCPUs as roughly 10 us of added latency and 7 us of CPU per call. Here
//! the socket is registered for reading only; a write goes straight to the socket, and
//! only when the socket buffer is full (a large frame) is a duplicate descriptor
//! registered for writability, until the write gets through.
//!
//! Halves behave as tokio's `into_split` halves: dropping the write half shuts down the
//! sending direction (the peer reads end of stream), the socket closes with the last half.
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream as StdStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::UnixStream;

/// Split a connected tokio stream into halves that use the registrations above.
pub(crate) fn split(stream: UnixStream) -> io::Result<(ReadHalf, WriteHalf)> {
    let std = stream.into_std()?; // deregisters it; stays nonblocking
    let shared = Arc::new(std);
    let read = register(shared.clone(), Interest::READABLE)?;
    Ok((
        ReadHalf(read),
        WriteHalf {
            stream: shared,
            waiter: None,
        },
    ))
}

/// Register `stream` with the runtime's reactor for `interest` only.
fn register<S: AsRawFd>(stream: S, interest: Interest) -> io::Result<AsyncFd<S>> {
    // SAFETY: `S` is a std `UnixStream` (or an `Arc` of one): it owns its descriptor,
    // which stays open and the same until the `AsyncFd` (which owns `S`) is dropped.
    Ok(unsafe { AsyncFd::register_with_interest(stream, interest) }?)
}

/// Reads, woken by readability (and end of stream / errors) only.
pub(crate) struct ReadHalf(AsyncFd<Arc<StdStream>>);

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let wanted = unfilled.len();
            match guard.try_io(|fd| (&**fd.get_ref()).read(unfilled)) {
                Ok(Ok(n)) => {
                    // As tokio's own streams do: a short read drained the socket, so
                    // wait for the next edge instead of a read that says EAGAIN.
                    if 0 < n && n < wanted {
                        guard.clear_ready();
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue, // readiness cleared; poll again
            }
        }
    }
}

/// Writes straight to the socket; waits for writability only when it is full.
pub(crate) struct WriteHalf {
    stream: Arc<StdStream>,
    /// A duplicate descriptor registered for writability while a write is blocked.
    waiter: Option<AsyncFd<StdStream>>,
}

impl WriteHalf {
    fn poll_io(
        &mut self,
        cx: &mut Context<'_>,
        mut io: impl FnMut(&StdStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            if let Some(waiter) = &self.waiter {
                let mut guard = ready!(waiter.poll_write_ready(cx))?;
                match guard.try_io(|fd| io(fd.get_ref())) {
                    Ok(result) => return Poll::Ready(result),
                    Err(_would_block) => continue,
                }
            }
            match io(&self.stream) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let dup = self.stream.try_clone()?;
                    self.waiter = Some(register(dup, Interest::WRITABLE)?);
                }
                result => return Poll::Ready(result),
            }
        }
    }

    /// The write that blocked has gone through: stop listening for writability (the
    /// registration would wake us each time the peer reads).
    fn done_waiting(&mut self, result: &Poll<io::Result<usize>>) {
        if matches!(result, Poll::Ready(_)) {
            self.waiter = None;
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = self.poll_io(cx, |mut s| s.write(buf));
        self.done_waiting(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = self.poll_io(cx, |mut s| s.write_vectored(bufs));
        self.done_waiting(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.stream.shutdown(Shutdown::Write))
    }
}

impl Drop for WriteHalf {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// The epoll event masks registered for the socket behind `fd` (matched on the
    /// descriptor number and inode, so other tests' runtimes in this process cannot match).
    fn epoll_masks(fd: i32, inode: u64) -> Vec<u32> {
        let mut masks = Vec::new();
        for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            let is_epoll = std::fs::read_link(entry.path())
                .is_ok_and(|t| t.to_string_lossy().contains("eventpoll"));
            let info = format!("/proc/self/fdinfo/{}", entry.file_name().to_string_lossy());
            let Some(text) = is_epoll
                .then(|| std::fs::read_to_string(info).ok())
                .flatten()
            else {
                continue;
            };
            for line in text.lines().filter(|l| l.starts_with("tfd:")) {
                let words: Vec<&str> = line.split_whitespace().collect();
                let field = |name: &str| {
                    let at = words.iter().position(|w| *w == name)?;
                    words.get(at + 1).copied()
                };
                // `... pos:0 ino:195150 sdev:9`: the inode is glued to its label, in hex.
                let ino = words
                    .iter()
                    .find_map(|w| w.strip_prefix("ino:"))
                    .and_then(|v| u64::from_str_radix(v, 16).ok());
                if field("tfd:") == Some(&fd.to_string()) && ino == Some(inode) {
                    masks.extend(field("events:").and_then(|v| u32::from_str_radix(v, 16).ok()));
                }
            }
        }
        masks
    }

    #[tokio::test]
    async fn a_relay_socket_asks_epoll_for_readability_only() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let fd = ours.as_raw_fd();
        let inode = std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .ino();
        let (mut read, mut write) = split(ours).unwrap();
        let masks = epoll_masks(fd, inode);
        // The runtime's epoll instance may be open under two descriptors (mio clones it).
        assert!(!masks.is_empty(), "the socket is registered");
        for mask in masks {
            assert_eq!(
                mask & libc::EPOLLIN as u32,
                libc::EPOLLIN as u32,
                "{mask:x}"
            );
            assert_eq!(
                mask & libc::EPOLLOUT as u32,
                0,
                "no writability events: {mask:x}"
            );
        }
        // And it still carries data both ways.
        write.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        peer.read_exact(&mut got).await.unwrap();
        peer.write_all(b"pong").await.unwrap();
        read.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
    }

    #[tokio::test]
    async fn a_frame_bigger_than_the_socket_buffer_waits_for_a_slow_reader() {
        let (ours, peer) = UnixStream::pair().unwrap();
        let (_read, mut write) = split(ours).unwrap();
        let body: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
        let reader = tokio::spawn(async move {
            let mut peer = peer;
            let mut got = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                match peer.read(&mut chunk).await.unwrap() {
                    0 => return got,
                    n => got.extend_from_slice(&chunk[..n]),
                }
            }
        });
        super::super::frame::write_frame(&mut write, &body)
            .await
            .unwrap();
        assert!(write.waiter.is_none(), "no writability registration left");
        drop(write); // shuts down the sending direction: the reader sees end of stream
        let got = tokio::time::timeout(Duration::from_secs(120), reader)
            .await
            .expect("the reader finished")
            .unwrap();
        assert_eq!(got.len(), body.len() + 4);
        assert_eq!(&got[..4], &(body.len() as u32).to_le_bytes());
        assert!(got[4..] == body[..], "the frame arrived intact");
    }
}

//! bb 5.x msgpack framing: `u32` little-endian length, then one msgpack object.
//!
//! The shim never re-encodes a relayed frame (bb.js writes map16, bb answers fixmap);
//! it only looks far enough into a request to know its command name and whether bb
//! will answer it at all. What it does not decode: payload fields (the delegation
//! reads those itself, see `request.rs`).

use std::io::IoSlice;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How bb 5.0.0 treats one request body (observed against the real binary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Envelope {
    /// `[[name, payload]]`: bb answers (maybe with an `ErrorResponse`).
    Command(String),
    /// Not valid msgpack (bad type byte, truncated): bb answers
    /// `ErrorResponse "parse error"` / `"insufficient bytes"`.
    Unparsable,
    /// Valid msgpack of the wrong shape, or an empty frame: bb logs an error and sends
    /// nothing; the connection stays open.
    NoAnswer,
}

impl Envelope {
    /// Whether bb sends exactly one response frame for this request.
    pub(crate) fn answered(&self) -> bool {
        !matches!(self, Envelope::NoAnswer)
    }
}

/// Classify a request body the way bb does: parse one object (trailing bytes are
/// ignored, as bb ignores them), then check `array(1) → array(2) → str`.
pub(crate) fn inspect(body: &[u8]) -> Envelope {
    if body.is_empty() {
        return Envelope::NoAnswer;
    }
    if skip_object(body, 0).is_none() {
        return Envelope::Unparsable;
    }
    let mut at = 0;
    if array_len(body, &mut at) != Some(1) || array_len(body, &mut at) != Some(2) {
        return Envelope::NoAnswer;
    }
    match str_at(body, &mut at) {
        Some(name) => Envelope::Command(name.to_owned()),
        None => Envelope::NoAnswer,
    }
}

/// The most a frame's announced length reserves before its bytes arrive.
const UPFRONT: usize = 16 << 20;

/// Read one frame's body; `Ok(None)` on a clean end of stream before a length prefix.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(prefix) as usize;
    // The peer chooses `len` (up to 4 GiB) and may send nothing after it: reserve at most
    // UPFRONT, then grow as bytes arrive. Reserving all of it would fail (and abort the
    // process) wherever address space or overcommit is limited. Growing a large buffer
    // is a remap, not a copy (glibc reallocs mmap'd blocks with mremap).
    let mut body = Vec::with_capacity(len.min(UPFRONT));
    let got = reader.take(len as u64).read_to_end(&mut body).await?;
    if got != len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some(body))
}

/// Write one frame (length prefix, then body).
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame over 4 GiB"))?;
    let prefix = len.to_le_bytes();
    // Prefix and body in one writev: the peer (bb, or a client blocked on its answer)
    // wakes once per frame, not once for 4 bytes and again for the body.
    let mut sent = 0;
    while sent < prefix.len() {
        let parts = [IoSlice::new(&prefix[sent..]), IoSlice::new(body)];
        match writer.write_vectored(&parts).await? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => sent += n,
        }
    }
    writer.write_all(&body[sent - prefix.len()..]).await
}

/// A response frame body as bb encodes it: `[name, {field: value, ...}]` with fixmap,
/// fixstr/str8 and fixarray as msgpack-c picks them (for synthesized answers only).
pub(crate) fn error_response(message: &str) -> Vec<u8> {
    let mut out = vec![0x92];
    push_str(&mut out, "ErrorResponse");
    out.push(0x81);
    push_str(&mut out, "message");
    push_str(&mut out, message);
    out
}

/// bb's `ShutdownResponse` (observed: `92 b0 "ShutdownResponse" 80`).
pub(crate) fn shutdown_response() -> Vec<u8> {
    let mut out = vec![0x92];
    push_str(&mut out, "ShutdownResponse");
    out.push(0x80);
    out
}

/// msgpack-c's smallest str encoding.
fn push_str(out: &mut Vec<u8>, s: &str) {
    let n = s.len();
    match n {
        0..=31 => out.push(0xa0 | n as u8),
        32..=0xff => out.extend([0xd9, n as u8]),
        0x100..=0xffff => {
            out.push(0xda);
            out.extend((n as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdb);
            out.extend((n as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(s.as_bytes());
}

/// The response's name (`[name, payload]`), for logs and tests.
pub(crate) fn response_name(body: &[u8]) -> Option<&str> {
    let mut at = 0;
    (array_len(body, &mut at)? == 2).then_some(())?;
    str_at(body, &mut at)
}

fn be(body: &[u8], at: usize, n: usize) -> Option<u64> {
    let bytes = body.get(at..at.checked_add(n)?)?;
    Some(bytes.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
}

/// The length of the array header at `*at`, advancing past it.
pub(crate) fn array_len(body: &[u8], at: &mut usize) -> Option<usize> {
    let tag = *body.get(*at)?;
    let (len, header) = match tag {
        0x90..=0x9f => (u64::from(tag & 0x0f), 1),
        0xdc => (be(body, *at + 1, 2)?, 3),
        0xdd => (be(body, *at + 1, 4)?, 5),
        _ => return None,
    };
    *at += header;
    usize::try_from(len).ok()
}

/// The str at `*at`, advancing past it.
pub(crate) fn str_at<'a>(body: &'a [u8], at: &mut usize) -> Option<&'a str> {
    let tag = *body.get(*at)?;
    let (len, header) = match tag {
        0xa0..=0xbf => (u64::from(tag & 0x1f), 1),
        0xd9 => (be(body, *at + 1, 1)?, 2),
        0xda => (be(body, *at + 1, 2)?, 3),
        0xdb => (be(body, *at + 1, 4)?, 5),
        _ => return None,
    };
    let start = *at + header;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    let s = std::str::from_utf8(body.get(start..end)?).ok()?;
    *at = end;
    Some(s)
}

/// The offset just past the msgpack object starting at `at`, or `None` if the bytes
/// are not one complete, valid object. Iterative, so deep nesting cannot overflow.
pub(crate) fn skip_object(body: &[u8], at: usize) -> Option<usize> {
    walk_object(body, at, |_, _, _| {})
}

/// [`skip_object`], calling `visit(start, tag, payload)` for every object inside (in
/// encoding order): where it starts, its type byte, and the byte range of its payload
/// (a str's or bin's bytes; empty for containers and scalars).
pub(crate) fn walk_object(
    body: &[u8],
    mut at: usize,
    mut visit: impl FnMut(usize, u8, std::ops::Range<usize>),
) -> Option<usize> {
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let tag = *body.get(at)?;
        let (header, payload, children): (usize, u64, u64) = match tag {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (1, 0, 0),
            0x80..=0x8f => (1, 0, 2 * u64::from(tag & 0x0f)),
            0x90..=0x9f => (1, 0, u64::from(tag & 0x0f)),
            0xa0..=0xbf => (1, u64::from(tag & 0x1f), 0),
            0xc1 => return None,
            0xc4 | 0xd9 => (2, be(body, at + 1, 1)?, 0),
            0xc5 | 0xda => (3, be(body, at + 1, 2)?, 0),
            0xc6 | 0xdb => (5, be(body, at + 1, 4)?, 0),
            0xc7 => (3, be(body, at + 1, 1)?, 0),
            0xc8 => (4, be(body, at + 1, 2)?, 0),
            0xc9 => (6, be(body, at + 1, 4)?, 0),
            0xca => (5, 0, 0),
            0xcb => (9, 0, 0),
            0xcc | 0xd0 => (2, 0, 0),
            0xcd | 0xd1 => (3, 0, 0),
            0xce | 0xd2 => (5, 0, 0),
            0xcf | 0xd3 => (9, 0, 0),
            0xd4 => (3, 0, 0),
            0xd5 => (4, 0, 0),
            0xd6 => (6, 0, 0),
            0xd7 => (10, 0, 0),
            0xd8 => (18, 0, 0),
            0xdc => (3, 0, be(body, at + 1, 2)?),
            0xdd => (5, 0, be(body, at + 1, 4)?),
            0xde => (3, 0, 2 * be(body, at + 1, 2)?),
            0xdf => (5, 0, 2 * be(body, at + 1, 4)?),
        };
        let start = at;
        at = at
            .checked_add(header)?
            .checked_add(usize::try_from(payload).ok()?)?;
        if at > body.len() {
            return None;
        }
        visit(start, tag, start + header..at);
        // More children than bytes left can never parse: stop before counting them.
        pending = pending.checked_add(children)?;
        if pending > (body.len() - at) as u64 {
            return None;
        }
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLAKE: &[u8] = b"\x91\x92\xa7Blake2s\xde\x00\x01\xa4data\xc4\x03abc";

    // Each case was run against the real bb 5.0.0 socket server: answered or not.
    #[test]
    fn envelopes_are_told_apart_as_bb_does() {
        let cases: &[(&[u8], Envelope)] = &[
            (BLAKE, Envelope::Command("Blake2s".into())),
            (
                b"\xdc\x00\x01\x92\xa7Blake2s\x80",
                Envelope::Command("Blake2s".into()),
            ),
            (b"\x91\x92\xa3Foo\x80", Envelope::Command("Foo".into())),
            (
                b"\x91\x92\xa7Blake2s\x90",
                Envelope::Command("Blake2s".into()),
            ),
            (b"\xc1", Envelope::Unparsable),
            (&BLAKE[..BLAKE.len() - 2], Envelope::Unparsable),
            (b"\x92", Envelope::Unparsable),
            (b"", Envelope::NoAnswer),
            (b"\x05", Envelope::NoAnswer),
            (b"\x92\x92\xa7Blake2s\x80\x80", Envelope::NoAnswer),
            (b"\x91\x93\xa7Blake2s\x80\x80", Envelope::NoAnswer),
            (b"\x91\x92\xc4\x07Blake2s\x80", Envelope::NoAnswer),
        ];
        for (body, want) in cases {
            assert_eq!(&inspect(body), want, "{body:02x?}");
        }
        let mut trailing = BLAKE.to_vec();
        trailing.push(0xc1);
        assert_eq!(inspect(&trailing), Envelope::Command("Blake2s".into()));
    }

    #[test]
    fn a_huge_declared_array_is_rejected_without_looping() {
        assert_eq!(inspect(b"\xdd\xff\xff\xff\xff\x00"), Envelope::Unparsable);
        assert_eq!(skip_object(b"\xc6\xff\xff\xff\xff", 0), None);
    }

    #[test]
    fn synthesized_responses_match_bbs_bytes() {
        assert_eq!(shutdown_response(), b"\x92\xb0ShutdownResponse\x80");
        let msg = "Chonk not started. Call ChonkStart first.";
        let mut want = b"\x92\xadErrorResponse\x81\xa7message\xd9\x29".to_vec();
        want.extend_from_slice(msg.as_bytes());
        assert_eq!(error_response(msg), want);
        assert_eq!(response_name(&want), Some("ErrorResponse"));
    }

    /// A socket stand-in that takes at most `limit` bytes per write and counts writes.
    struct Chunky {
        limit: usize,
        writes: usize,
        got: Vec<u8>,
    }

    impl AsyncWrite for Chunky {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(self.limit - n);
                self.got.extend_from_slice(&buf[..take]);
                n += take;
            }
            self.writes += 1;
            std::task::Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_frame_is_one_write_and_survives_short_writes() {
        let mut want = vec![23, 0, 0, 0];
        want.extend_from_slice(BLAKE);
        for limit in [usize::MAX, 3, 4, 5, 7] {
            let mut socket = Chunky {
                limit,
                writes: 0,
                got: Vec::new(),
            };
            write_frame(&mut socket, BLAKE).await.unwrap();
            assert_eq!(socket.got, want, "at most {limit} bytes per write");
            if limit == usize::MAX {
                assert_eq!(socket.writes, 1, "prefix and body in one write");
            }
        }
    }

    #[tokio::test]
    async fn frames_round_trip_and_a_short_body_is_an_error() {
        let mut buf = Vec::new();
        write_frame(&mut buf, BLAKE).await.unwrap();
        assert_eq!(&buf[..4], &[23, 0, 0, 0]);
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).await.unwrap().as_deref(), Some(BLAKE));
        assert!(read_frame(&mut r).await.unwrap().is_none());
        let mut short = &buf[..10];
        assert!(read_frame(&mut short).await.is_err());
        // A frame larger than the up-front reservation arrives whole.
        let big: Vec<u8> = (0..UPFRONT + 12_345).map(|i| i as u8).collect();
        let mut buf = Vec::new();
        write_frame(&mut buf, &big).await.unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).await.unwrap(), Some(big));
    }
}

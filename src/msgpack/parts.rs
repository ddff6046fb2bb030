//! A delegated request frame cut into content-addressed parts, so that a repeated
//! proof of the same circuit uploads only what changed (the witness).
//!
//! The cut: before every large `bin` value of the request (the bytecode, the vk, the
//! witness of a `CircuitProve`; the inputs of an `AvmProve`), wherever it sits in the
//! payload and in whatever key order the client wrote. Each part is one such value
//! with the few bytes that follow it up to the next cut (a key name, a settings map);
//! part 0 is the head (length prefix, command name, map headers). The bytes after a
//! value depend only on the client's layout, so the bytecode part of the same circuit
//! has the same digest in every request; the witness part and the head (whose length
//! prefix counts the witness) are what a new witness changes.
//!
//! The parts, concatenated in order, are exactly the frame: the remote side rebuilds
//! the request file with `cat` before running bb on it (see `delegate.rs`). A body
//! that is not one valid msgpack object (bb will answer it with its own error) is one
//! part.
use std::ops::Range;

use super::frame::walk_object;

/// A `bin` value shorter than this stays inside its neighbour: looking it up in the
/// store costs more than sending it again.
pub(crate) const MIN_PART: usize = 64;
/// At most this many parts (the largest values are cut out first), so an odd request
/// cannot turn into thousands of objects.
pub(crate) const MAX_PARTS: usize = 8;

/// One part of a framed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    /// `head`, or the map key naming the value the part starts with (`bytecode`,
    /// `verification_key`, `witness`, `inputs`), or `bin` when it has none.
    pub name: String,
    /// Byte range in the framed request (4-byte length prefix, then the body).
    pub range: Range<usize>,
}

/// The parts of the frame whose body is `body`, in order; they cover the
/// `4 + body.len()` bytes of the frame exactly.
pub(crate) fn split(body: &[u8]) -> Vec<Part> {
    let total = 4 + body.len();
    let whole = || {
        vec![Part {
            name: "head".to_owned(),
            range: 0..total,
        }]
    };
    // (start of the value, its payload length, its key)
    let mut values: Vec<(usize, usize, String)> = Vec::new();
    let mut last_str: Option<Range<usize>> = None;
    let walked = walk_object(body, 0, |start, tag, payload| {
        match tag {
            0xc4..=0xc6 if payload.len() >= MIN_PART => {
                let key = last_str
                    .take()
                    .and_then(|r| std::str::from_utf8(&body[r]).ok())
                    .filter(|k| {
                        k.len() <= 64 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    })
                    .unwrap_or("bin")
                    .to_owned();
                values.push((start, payload.len(), key));
            }
            0xa0..=0xbf | 0xd9..=0xdb => {
                last_str = Some(payload);
                return;
            }
            _ => {}
        }
        last_str = None;
    });
    if walked != Some(body.len()) || values.is_empty() {
        return whole();
    }
    // The largest ones, back in frame order.
    values.sort_by_key(|v| std::cmp::Reverse(v.1));
    values.truncate(MAX_PARTS - 1);
    values.sort_by_key(|v| v.0);
    let mut parts = Vec::with_capacity(values.len() + 1);
    let mut cut = 0;
    let mut name = "head".to_owned();
    for (start, _, key) in values {
        parts.push(Part {
            name: std::mem::replace(&mut name, key),
            range: cut..4 + start,
        });
        cut = 4 + start;
    }
    parts.push(Part {
        name,
        range: cut..total,
    });
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin32(b: &[u8]) -> Vec<u8> {
        let mut out = vec![0xc6];
        out.extend((b.len() as u32).to_be_bytes());
        out.extend(b);
        out
    }

    fn str_(s: &str) -> Vec<u8> {
        let mut out = vec![0xa0 | s.len() as u8];
        out.extend(s.as_bytes());
        out
    }

    /// `[["CircuitProve", {circuit: {name, bytecode, verification_key}, witness, settings}]]`
    /// with map16 headers, as bb.js writes it.
    fn circuit_prove(bytecode: &[u8], vk: &[u8], witness: &[u8]) -> Vec<u8> {
        let mut body = vec![0x91, 0x92];
        body.extend(str_("CircuitProve"));
        body.extend([0xde, 0, 3]);
        body.extend(str_("circuit"));
        body.extend([0xde, 0, 3]);
        body.extend(str_("name"));
        body.extend(str_("c"));
        body.extend(str_("bytecode"));
        body.extend(bin32(bytecode));
        body.extend(str_("verification_key"));
        body.extend(bin32(vk));
        body.extend(str_("witness"));
        body.extend(bin32(witness));
        body.extend(str_("settings"));
        body.extend([0xde, 0, 1]);
        body.extend(str_("disable_zk"));
        body.push(0xc3);
        body
    }

    fn framed(body: &[u8]) -> Vec<u8> {
        [&(body.len() as u32).to_le_bytes()[..], body].concat()
    }

    #[test]
    fn parts_cover_the_frame_and_start_at_the_large_values() {
        let body = circuit_prove(&[1; 500], &[2; 300], &[3; 200]);
        let parts = split(&body);
        let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["head", "bytecode", "verification_key", "witness"]);
        let frame = framed(&body);
        let joined: Vec<u8> = parts
            .iter()
            .flat_map(|p| frame[p.range.clone()].to_vec())
            .collect();
        assert_eq!(joined, frame);
        assert_eq!(
            frame[parts[1].range.start], 0xc6,
            "a part starts at its value's header"
        );
    }

    #[test]
    fn a_new_witness_changes_only_the_head_and_the_witness_part() {
        let a = circuit_prove(&[1; 500], &[2; 300], &[3; 200]);
        let b = circuit_prove(&[1; 500], &[2; 300], &[4; 250]);
        let (fa, fb) = (framed(&a), framed(&b));
        let (pa, pb) = (split(&a), split(&b));
        let same: Vec<bool> = pa
            .iter()
            .zip(&pb)
            .map(|(x, y)| fa[x.range.clone()] == fb[y.range.clone()])
            .collect();
        assert_eq!(same, [false, true, true, false]);
    }

    #[test]
    fn small_values_stay_in_place_and_the_count_is_bounded() {
        let body = circuit_prove(&[1; 500], &[], &[3; 10]);
        let names: Vec<String> = split(&body).into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["head", "bytecode"]);
        // Twenty large values in an array: the seven largest are cut out.
        let mut many = vec![0xdc, 0, 20];
        for i in 0..20u8 {
            many.extend(bin32(&vec![i; 100 + usize::from(i)]));
        }
        let parts = split(&many);
        assert_eq!(parts.len(), MAX_PARTS);
        assert_eq!(parts.last().unwrap().range.end, 4 + many.len());
        assert_eq!(
            parts[1].range.start,
            4 + 3 + 13 * 5 + (100..113).sum::<usize>()
        );
    }

    #[test]
    fn what_bb_cannot_parse_is_one_part() {
        for body in [&b"\xc1"[..], b"\x91\x92\xc6\xff\xff\xff\xff", b""] {
            let parts = split(body);
            assert_eq!(parts.len(), 1, "{body:02x?}");
            assert_eq!(parts[0].range, 0..4 + body.len());
        }
    }
}

//! RFC 7240 `Prefer: wait=N` on `GET /tasks/{id}`: a long poll that any TES engine may
//! ignore.
//!
//! The shim asks with `Prefer: wait=N`; a backend that honours it (the reference worker)
//! holds the request until the task's state changes, it ends, or N seconds pass, and
//! says so with `Preference-Applied: wait=M` (M the wait it granted). A generic engine
//! ignores the header and answers at once without `Preference-Applied`: the shim then
//! polls, as for any engine. Nothing outside the TES schema is sent or required.
//!
//! The header grammar (RFC 7240 §2): preferences are separated by commas, each is
//! `token [= word]` followed by `;`-parameters; tokens are case-insensitive, a word is a
//! token or a quoted string. Both sides read only `wait` and ignore everything else.

/// The request header.
pub const PREFER: &str = "prefer";
/// The reply header saying which preferences were honoured.
pub const PREFERENCE_APPLIED: &str = "preference-applied";

/// Longest value read (a `wait` beyond a day is taken as a day: both sides cap far below).
const MAX_WAIT_SECS: u64 = 86_400;

/// The `wait` preference in the values of a `Prefer` (or `Preference-Applied`) header,
/// in whole seconds; the first one wins (RFC 7240 §2: a repeated preference is the
/// first's). `None` if there is none or its value is not a non-negative integer.
pub fn wait_secs<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<u64> {
    values
        .into_iter()
        .flat_map(|value| value.split(','))
        .find_map(|preference| {
            // Parameters after ';' qualify the preference; `wait` defines none.
            let head = preference.split(';').next().unwrap_or_default();
            let (name, value) = head.split_once('=').unwrap_or((head, ""));
            name.trim().eq_ignore_ascii_case("wait").then(|| {
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                // Digits only: `+5`, `-1`, `1.5` and the empty value are not delta-seconds.
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some(
                    value
                        .parse::<u64>()
                        .unwrap_or(MAX_WAIT_SECS)
                        .min(MAX_WAIT_SECS),
                )
            })
        })
        .flatten()
}

/// The header value for a wait of `secs` seconds.
pub fn wait_value(secs: u64) -> String {
    format!("wait={secs}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_is_found_among_other_preferences() {
        assert_eq!(wait_secs(["wait=20"]), Some(20));
        assert_eq!(wait_secs(["respond-async, WAIT = 7"]), Some(7));
        assert_eq!(wait_secs(["return=minimal", "wait=\"3\"; x=y"]), Some(3));
        assert_eq!(wait_secs(["wait=5, wait=9"]), Some(5));
        assert_eq!(
            wait_secs(["wait=99999999999999999999999"]),
            Some(MAX_WAIT_SECS)
        );
        assert_eq!(wait_secs(["wait=0"]), Some(0));
        assert_eq!(wait_value(12), "wait=12");
        assert_eq!(wait_secs([wait_value(12).as_str()]), Some(12));
    }

    #[test]
    fn anything_else_is_no_wait() {
        for value in [
            "",
            "wait",
            "wait=",
            "wait=-1",
            "wait=+5",
            "wait=1.5",
            "wait=abc",
            "waiting=5",
            "respond-async",
            "return=representation",
        ] {
            assert_eq!(wait_secs([value]), None, "{value:?}");
        }
        assert_eq!(wait_secs(Vec::<&str>::new()), None);
    }
}

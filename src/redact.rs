//! Keeping secrets out of every line the shim prints.
//!
//! - [`Redacted`]: a URL for display, with the user-info password and every query value
//!   (pre-signed or SAS signatures) replaced by `***`. Every place that prints a URL of
//!   ours uses it.
//! - [`secrets`] + [`scrub`]: the configured secrets (tokens, URL passwords, query
//!   values), removed from text the shim did not format itself (a library error that
//!   quotes a request URL) by the one diagnostics writer (`diag.rs`, `logging.rs`).

use std::fmt;

use crate::env_vars::{self as v, Env};

/// A URL (or any text that may be one) for display: the password of the user info and
/// every query value are replaced by `***`. Text that does not parse as a URL is masked
/// the same way by its shape (see [`redact_unparsed`]): a URL rejected for its port or a
/// stray character still carries its password.
pub(crate) struct Redacted<'a>(pub &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ok(mut url) = url::Url::parse(self.0) else {
            return f.write_str(&redact_unparsed(self.0));
        };
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
        }
        if url.query().is_some() {
            let names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
            let mut pairs = url.query_pairs_mut();
            pairs.clear();
            for name in names {
                pairs.append_pair(&name, "***");
            }
        }
        f.write_str(url.as_str())
    }
}

/// `text` that is not a valid URL, masked as if it were one: after a `scheme://`, the
/// part of the authority between the first `:` and the last `@` (a password), and
/// everything after the first `?` (query values) become `***`. Text without `://` or
/// `?` is shown as is: it cannot carry either.
fn redact_unparsed(text: &str) -> String {
    let mut shown = text.to_owned();
    if let Some(q) = shown.find('?') {
        shown.truncate(q + 1);
        shown.push_str("***");
    }
    let Some(start) = shown.find("://").map(|i| i + 3) else {
        return shown;
    };
    let rest = &shown[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if let Some(at) = authority.rfind('@') {
        if let Some(colon) = authority[..at].find(':') {
            shown.replace_range(start + colon + 1..start + at, "***");
        }
    }
    shown
}

/// How a value may be shown in a message about `name` (a variable or an operator-tool
/// flag), with a leading space, or nothing: tokens never, nor the value of a `BB_*`
/// variable that is not ours (a forwarded one may hold anything); URLs redacted.
pub(crate) fn shown_value(name: &str, value: &str) -> String {
    let foreign = name.starts_with("BB_") && !name.starts_with(v::PREFIX);
    if name == v::TOKEN || name == v::WORKER_TOKEN || foreign {
        String::new()
    } else {
        format!(" {:?}", Redacted(value).to_string())
    }
}

/// The secrets in this configuration (tokens, URL passwords), for scrubbing text the
/// shim did not format itself (errors of libraries that print a request URL).
pub(crate) fn secrets(env: &Env) -> Vec<String> {
    let tokens = [v::TOKEN, v::WORKER_TOKEN].map(|name| env.get(name));
    let urls = [v::BACKEND, v::STORE].map(|name| env.get(name));
    secrets_of(tokens.into_iter().flatten(), urls.into_iter().flatten())
}

/// The secrets of these tokens and URLs (their passwords and query values), longest
/// first: what [`scrub`] masks. The worker's come from its flags, not only the env.
pub(crate) fn secrets_of<'a>(
    tokens: impl IntoIterator<Item = &'a str>,
    urls: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mut out: Vec<String> = tokens.into_iter().map(str::to_owned).collect();
    for text in urls {
        let Ok(url) = url::Url::parse(text) else {
            // Rejected by the parser (a bad port, a stray space), yet it may be printed
            // (a library quoting it, a worker flag): its secrets by shape.
            out.extend(unparsed_secrets(text));
            continue;
        };
        if let Some(pw) = url.password() {
            out.push(pw.to_owned());
            // The URL keeps it percent-encoded; a library may print either form.
            let query = format!("p={pw}");
            out.extend(url::form_urlencoded::parse(query.as_bytes()).map(|(_, p)| p.into_owned()));
        }
        out.extend(url.query_pairs().map(|(_, value)| value.into_owned()));
    }
    out.retain(|s| s.len() >= 3);
    // Longest first, so a secret that contains another is masked whole.
    out.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    out.dedup();
    out
}

/// The password and query values of `text`, a URL the parser rejected, found by its
/// shape as [`redact_unparsed`] finds them.
fn unparsed_secrets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (before_query, query) = text.split_once('?').unwrap_or((text, ""));
    out.extend(
        query
            .split('&')
            .filter_map(|pair| pair.split_once('=').map(|(_, value)| value.to_owned())),
    );
    if let Some(start) = before_query.find("://").map(|i| i + 3) {
        let rest = &before_query[start..];
        let authority = &rest[..rest.find(['/', '#']).unwrap_or(rest.len())];
        if let Some((user_info, _)) = authority.rsplit_once('@') {
            out.extend(user_info.split_once(':').map(|(_, pw)| pw.to_owned()));
        }
    }
    out
}

/// `text` with every secret replaced by `***`.
pub(crate) fn scrub(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_owned(), |acc, secret| {
        acc.replace(secret.as_str(), "***")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_never_displayed() {
        let shown = Redacted("https://alice:s3cr%40t@h:9/p?X-Amz-Signature=abc123&a=b").to_string();
        assert_eq!(shown, "https://alice:***@h:9/p?X-Amz-Signature=***&a=***");
        assert_eq!(Redacted("not a url").to_string(), "not a url");
        // Rejected by the URL parser (port out of range, a space in the host), yet the
        // password and the signature are in the text all the same.
        for (text, shown) in [
            (
                "http://prover:hunter2@funnel:80000/",
                "http://prover:***@funnel:80000/",
            ),
            (
                "https://u:p@ss:w@my host/x?sig=abc123",
                "https://u:***@my host/x?***",
            ),
            (
                "s3://my bucket/p?X-Amz-Signature=abc123",
                "s3://my bucket/p?***",
            ),
            ("http://h:80000/a@b", "http://h:80000/a@b"),
        ] {
            assert!(url::Url::parse(text).is_err(), "{text} parses");
            assert_eq!(Redacted(text).to_string(), shown);
        }
        let err = crate::config::Settings::load(&Env::from_pairs([(
            v::BACKEND,
            "http://prover:hunter2@funnel:80000/",
        )]))
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err =
            crate::config::Settings::load(&Env::from_pairs([(v::BACKEND, "ftp://u:hunter2@h/")]))
                .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let env = Env::from_pairs([(v::BACKEND, "http://u:pa%20ss@h/"), (v::TOKEN, "tok3n")]);
        let secrets = secrets(&env);
        let text = scrub("GET http://u:pa%20ss@h/ with pa ss and tok3n", &secrets);
        assert_eq!(text, "GET http://u:***@h/ with *** and ***");
    }

    /// A URL the parser rejects is still masked when a library's text (or any line
    /// the shim did not format) quotes it: its password and query values are secrets.
    #[test]
    fn secrets_of_a_url_that_does_not_parse_are_scrubbed() {
        for (url, secret) in [
            ("http://prover:hunter2@funnel:80000/", "hunter2"),
            ("https://u:p@ss:w@my host/x?sig=abc123", "p@ss:w"),
            ("s3://my bucket/p?X-Amz-Signature=abc123&a=b", "abc123"),
        ] {
            assert!(url::Url::parse(url).is_err(), "{url} parses");
            let line = format!("error sending request for url ({url}): refused");
            let scrubbed = scrub(&line, &secrets_of([], [url]));
            assert!(!scrubbed.contains(secret), "{scrubbed}");
            let env = Env::from_pairs([(v::BACKEND, url)]);
            let scrubbed = scrub(&line, &secrets(&env));
            assert!(!scrubbed.contains(secret), "{scrubbed}");
        }
        // A path with an `@` but no user info holds no secret: nothing is masked.
        assert!(secrets_of([], ["http://h:80000/a@b"]).is_empty());
    }
}

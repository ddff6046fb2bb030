//! Why a TES call failed, and how the server's explanation is shown.

/// How much of an error body is kept for the message.
const MAX_ERROR_MESSAGE: usize = 2000;

/// Why a TES call failed. Every `url` is shown without its password.
#[derive(Debug, thiserror::Error)]
pub enum TesError {
    #[error("invalid TES backend URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// Could not connect, or no complete answer within the request timeout.
    #[error("cannot reach the TES backend at {url}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    /// 5xx, 408 or 429: the backend is unwell or busy; worth retrying.
    #[error("TES backend answered {status} for {url}: {body}")]
    Unavailable {
        status: u16,
        url: String,
        body: String,
    },

    /// Any other 4xx: our request or configuration is wrong. Never retried.
    #[error("TES backend rejected the request ({status}) for {url}: {message}")]
    Rejected {
        status: u16,
        url: String,
        message: String,
    },

    /// A 2xx whose body is not the JSON the schema promises.
    #[error("TES backend sent an invalid response for {url}")]
    BadResponse {
        url: String,
        #[source]
        source: serde_json::Error,
    },

    /// A JSON answer larger than any honest TES reply: refused before it fills memory.
    #[error("TES backend sent more than {limit} bytes for {url} (the limit for one JSON reply)")]
    TooLarge { url: String, limit: usize },

    /// A task list that does not end (pages without end, or a page token repeated).
    #[error("TES backend at {url}: {reason}")]
    Paging { url: String, reason: String },
}

impl TesError {
    /// Transport failures and 5xx/408/429: the call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transport { .. } | Self::Unavailable { .. })
    }
}

/// The server's explanation: a JSON `message`/`msg`/`detail`/`error` field if there is
/// one (TES servers differ), else the body as text.
pub(super) fn error_message(body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            ["message", "msg", "detail", "error"]
                .iter()
                .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_owned))
        });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        truncate(text)
    }
}

pub(super) fn truncate(mut text: String) -> String {
    if text.len() > MAX_ERROR_MESSAGE {
        let mut cut = MAX_ERROR_MESSAGE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

/// `url` for messages: a password in it is replaced by `***`.
pub(crate) fn redacted(url: &url::Url) -> String {
    if url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    let _ = shown.set_password(Some("***"));
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_message_is_extracted() {
        assert_eq!(error_message(br#"{"message":"bad token"}"#), "bad token");
        assert_eq!(error_message(b"  plain words \n"), "plain words");
        assert_eq!(error_message(b""), "(empty body)");
        assert!(error_message(&[b'x'; 5000]).ends_with("..."));
    }

    #[test]
    fn passwords_are_not_shown() {
        let url = url::Url::parse("http://user:s3cret@h:1/ga4gh/tes/v1").unwrap();
        let shown = redacted(&url);
        assert!(
            !shown.contains("s3cret") && shown.contains("user:***@h:1"),
            "{shown}"
        );
        let plain = url::Url::parse("http://h/x").unwrap();
        assert_eq!(redacted(&plain), "http://h/x");
    }
}

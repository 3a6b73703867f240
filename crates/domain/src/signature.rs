//! Signed messages between lakegate and chat tools: the signature lakegate puts on each
//! webhook it sends (docs/notifications.md), and the check of Slack's signature on what Slack
//! sends back (docs/slack.md). Both are HMAC-SHA256 over the timestamp and the body, so a
//! body cannot be replayed with another timestamp, and both refuse timestamps outside a
//! window, so a captured request cannot be replayed later.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a signed timestamp may be from now, either way.
pub const REPLAY_WINDOW_SECONDS: i64 = 5 * 60;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC takes a key of any length.
    #[allow(clippy::expect_used, reason = "HMAC accepts keys of every length")]
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of every length");
    for p in parts {
        mac.update(p);
    }
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `X-Lakegate-Signature` of a webhook: `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub fn webhook_signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let tag = mac(secret, &[ts.as_bytes(), b".", body])
        .finalize()
        .into_bytes();
    format!("sha256={}", hex(&tag))
}

/// Why a signed request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request carries no signature or timestamp")]
    Missing,
    #[error("the request's timestamp is more than 5 minutes away from now")]
    Stale,
    #[error("the request's signature does not match")]
    Mismatch,
}

/// Checks Slack's `X-Slack-Signature` (`v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">`)
/// and `X-Slack-Request-Timestamp` against the signing secret, at `now` (unix seconds).
/// The comparison takes the same time whatever the signature.
pub fn verify_slack(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Missing)?;
    if (now - ts).abs() > REPLAY_WINDOW_SECONDS {
        return Err(SignatureError::Stale);
    }
    let Some(tag) = signature.strip_prefix("v0=").and_then(unhex) else {
        return Err(SignatureError::Mismatch);
    };
    mac(secret, &[b"v0:", timestamp.as_bytes(), b":", body])
        .verify_slice(&tag)
        .map_err(|_| SignatureError::Mismatch)
}

/// What Slack would send as `X-Slack-Signature` for `body` at `timestamp` (for tests and for
/// a receiver of our own).
pub fn slack_signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let tag = mac(secret, &[b"v0:", ts.as_bytes(), b":", body])
        .finalize()
        .into_bytes();
    format!("v0={}", hex(&tag))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_signatures_are_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: `printf '%s' '1700000000.{}' | openssl dgst -sha256 -hmac Jefe`.
        let sig = webhook_signature(b"Jefe", 1_700_000_000, b"{}");
        assert_eq!(
            sig,
            "sha256=d3793e2b4103edfbd98cc19591832f5fad701d413db9fcae0ae7dab8184ed207"
        );
        assert_ne!(sig, webhook_signature(b"Jefe", 1_700_000_001, b"{}"));
        assert_ne!(sig, webhook_signature(b"jefe", 1_700_000_000, b"{}"));
    }

    #[test]
    fn slack_signatures_are_checked_with_a_replay_window() {
        let now = 1_700_000_000;
        let body = b"payload=%7B%7D";
        let good = slack_signature(b"s3cret", now, body);
        let ts = now.to_string();
        assert_eq!(
            verify_slack(b"s3cret", Some(&ts), Some(&good), body, now + 10),
            Ok(())
        );
        assert_eq!(
            verify_slack(b"other", Some(&ts), Some(&good), body, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_slack(b"s3cret", Some(&ts), Some(&good), b"payload=x", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_slack(b"s3cret", Some(&ts), Some(&good), body, now + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_slack(b"s3cret", None, Some(&good), body, now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_slack(b"s3cret", Some(&ts), Some("v0=zz"), body, now),
            Err(SignatureError::Mismatch)
        );
    }
}

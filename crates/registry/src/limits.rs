//! How much of a registry's answer strata reads: every body is bounded, by its descriptor's size
//! where there is one and by these caps where there is none (a tag's manifest, a token, an AWS answer).

use crate::Error;
use futures_util::StreamExt;

/// The largest manifest or index read (containerd's limit; the distribution spec suggests registries cap at 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// The largest image config read into memory (real configs are a few KiB; 64 MiB leaves room for long histories).
pub const MAX_CONFIG_BYTES: u64 = 64 << 20;
/// The largest token-server answer read.
pub const MAX_TOKEN_BYTES: u64 = 1 << 20;
/// The largest answer read from an AWS API (ECR, STS, the credential chain's endpoints; feature `ecr`):
/// real ones are a few KiB (an ECR token about 2 KiB), the SDK itself has no cap.
pub const MAX_AWS_ANSWER_BYTES: u64 = 1 << 20;
/// How much of an error response's body is read to quote in a message.
pub const MAX_ERROR_BODY_BYTES: u64 = 64 << 10;

/// What was wrong with a body's length.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// More than the cap arrived (or Content-Length announced more).
    OverCap { cap: u64, got: String },
    /// The descriptor's size and the body disagree.
    WrongSize { expected: u64, got: String },
    /// The connection failed while reading.
    Transport(reqwest::Error),
}

/// Reads `resp`'s body: exactly `exact` bytes when given (at most `exact + 1` are read to tell a
/// longer body), else at most `cap`; a Content-Length that disagrees is refused before reading.
pub(crate) async fn read_body(resp: reqwest::Response, exact: Option<u64>, cap: u64) -> Result<Vec<u8>, BodyError> {
    let limit = exact.unwrap_or(cap);
    if let Some(len) = resp.content_length() {
        match exact {
            Some(e) if len != e => return Err(BodyError::WrongSize { expected: e, got: format!("a Content-Length of {len} bytes") }),
            None if len > cap => return Err(BodyError::OverCap { cap, got: format!("a Content-Length of {len} bytes") }),
            _ => {}
        }
    }
    let mut body = Vec::with_capacity(usize::try_from(limit.min(1 << 20)).unwrap_or(0));
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Transport)?;
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(match exact {
                Some(e) => BodyError::WrongSize { expected: e, got: format!("more than {e} bytes") },
                None => BodyError::OverCap { cap, got: format!("more than {cap} bytes") },
            });
        }
        body.extend_from_slice(&chunk);
    }
    if let Some(e) = exact.filter(|&e| e != body.len() as u64) {
        return Err(BodyError::WrongSize { expected: e, got: format!("{} bytes", body.len()) });
    }
    Ok(body)
}

/// Refuses a descriptor whose `size` is over `cap` before anything is fetched.
pub(crate) fn check_descriptor(size: u64, cap: u64) -> Result<(), BodyError> {
    if size > cap {
        return Err(BodyError::OverCap { cap, got: format!("its descriptor says {size} bytes") });
    }
    Ok(())
}

/// Reads at most `cap` bytes of `resp`'s body, dropping the rest (for quoting error bodies).
pub(crate) async fn read_prefix(resp: reqwest::Response, cap: u64) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = usize::try_from(cap).unwrap_or(usize::MAX).saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() as u64 >= cap {
            break;
        }
    }
    body
}

/// The registry error for a body refused by [`read_body`]; `what` names the object (`manifest sha256:…`, `blob sha256:…`).
pub(crate) fn body_error(e: BodyError, ep: &crate::transport::Endpoint, repository: &str, what: &str) -> Error {
    let registry = ep.name.as_str();
    match e {
        BodyError::OverCap { cap, got } => Error::TooLarge { registry: registry.into(), repository: repository.into(), what: what.into(), limit: cap, got },
        BodyError::WrongSize { expected, got } => {
            Error::SizeMismatch { registry: registry.into(), repository: repository.into(), what: what.into(), expected, got }
        }
        BodyError::Transport(e) => crate::transport::connect_error(ep, &format!("{repository}: GET {what}"), &e),
    }
}

//! Registry errors; none of them ever carries a credential or token.

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image reference does not follow the Docker reference grammar.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    /// The registry answered with an unexpected HTTP status.
    #[error("{registry}/{repository}: {action}: HTTP {status}{detail}")]
    Http { registry: String, repository: String, action: String, status: u16, detail: String },
    /// The registry could not be reached.
    #[error("{registry}: {action}: {message}")]
    Connect { registry: String, action: String, message: String },
    /// A blob's bytes do not hash to its digest.
    #[error("{registry}/{repository}: blob {digest} failed verification (got {actual})")]
    DigestMismatch { registry: String, repository: String, digest: String, actual: String },
    /// A local file error.
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    /// Placeholder until implemented.
    #[error("not implemented yet")]
    Unimplemented,
}

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
    /// A body's length disagrees with its descriptor's size (the bytes are not trusted, or kept).
    #[error(
        "{registry}/{repository}: {what}: the descriptor says {expected} bytes, the registry sent {got}; refused (a registry must serve exactly the bytes its manifest describes)"
    )]
    SizeMismatch { registry: String, repository: String, what: String, expected: u64, got: String },
    /// The tag already names another image, and the repository does not let tags move.
    #[error(
        "{registry}/{repository}:{tag} already names {existing}, and the repository's tags are immutable, so it cannot name {pushed}; push a new tag (or make the repository's tags mutable)"
    )]
    ImmutableTag { registry: String, repository: String, tag: String, existing: String, pushed: String },
    /// A body without a descriptor (a tag's manifest, a token) or a descriptor over strata's cap.
    #[error("{registry}/{repository}: {what}: larger than strata's limit of {limit} bytes ({got}); refused")]
    TooLarge { registry: String, repository: String, what: String, limit: u64, got: String },
    /// A local file error.
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    /// Authentication failed or no credentials were found.
    #[error("{registry}/{repository}: authentication failed: {message}")]
    Auth { registry: String, repository: String, message: String },
    /// The registry answered something the distribution protocol does not allow.
    #[error("{registry}/{repository}: {action}: {message}")]
    Protocol { registry: String, repository: String, action: String, message: String },
    /// An index or manifest list has no manifest for the wanted platform.
    #[error("{registry}/{repository}: no manifest for platform {wanted} (available: {available})")]
    NoMatchingPlatform { registry: String, repository: String, wanted: String, available: String },
    /// A docker config file or credential helper failed.
    #[error("{source_name}: {message}")]
    CredentialSource { source_name: String, message: String },
    /// An ECR API call failed (GetAuthorizationToken, AssumeRole, CreateRepository).
    #[error("{registry}: ECR {action}: {message}")]
    Ecr { registry: String, action: String, message: String },
    /// The client options are inconsistent (bad CA file, bad mapping, ...).
    #[error("registry client options: {0}")]
    Options(String),
}

impl Error {
    /// Whether retrying the same request may succeed (connection trouble, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. } => true,
            Error::Http { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }
}

//! Errors of the snapshot crate.

use std::path::PathBuf;

/// What went wrong while unpacking, diffing or writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The layer's uncompressed digest is not the one expected.
    #[error("layer diff_id mismatch: expected {expected}, got {actual}")]
    DiffIdMismatch { expected: String, actual: String },
    /// Placeholder until implemented.
    #[error("not implemented yet")]
    Unimplemented,
}

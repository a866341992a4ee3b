//! Progress events for pulls and pushes, for a CLI to draw.

use std::sync::Arc;

/// Something a transfer did.
#[derive(Debug, Clone)]
pub enum ProgressEvent {
    /// A blob transfer started (`total` bytes, if known).
    BlobStarted { digest: String, total: Option<u64>, push: bool },
    /// More bytes of a blob moved.
    BlobProgress { digest: String, done: u64 },
    /// A blob is complete (`skipped` when the registry already had it).
    BlobDone { digest: String, skipped: bool },
    /// A manifest was pushed to a reference.
    ManifestPushed { reference: String, digest: String },
}

/// A callback that receives progress events.
pub type ProgressFn = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

//! Errors of the snapshot crate.

use std::path::PathBuf;

/// What went wrong while unpacking, diffing or writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The layer's uncompressed digest is not the one expected.
    #[error("layer diff_id mismatch: expected {expected}, got {actual} (the blob is corrupt or the image config lists the wrong diff_id; pull it again)")]
    DiffIdMismatch { expected: String, actual: String },
    /// The layer stream could not be read as a (possibly compressed) tar archive.
    #[error("reading layer stream: {source} ({})", archive_hint(source))]
    Archive { source: std::io::Error },
    /// A tar entry that cannot be applied safely or makes no sense.
    #[error("layer entry {entry:?}: {reason}")]
    InvalidEntry { entry: String, reason: String },
    /// Applying one entry of the layer failed.
    #[error("layer entry {entry:?}: {source}{}", disk_hint(source))]
    Entry { entry: String, source: std::io::Error },
    /// An error while applying the layer with digest `digest`.
    #[error("layer {digest}: {source}")]
    InLayer { digest: String, source: Box<Error> },
    /// A file changed while it was being written into a layer.
    #[error("{path}: changed while being written to the layer ({reason}); is a process still writing to the rootfs?")]
    ChangedDuringSnapshot { path: PathBuf, reason: String },
    /// A layer's uncompressed stream passed the size limit (a decompression bomb, or a limit set
    /// too low for a trusted image).
    #[error(
        "layer {digest}: uncompressed stream passed the layer size limit of {limit} ({bound} bytes) after {read} bytes, so unpacking stopped (the partly written file was removed); if the image is trusted, raise the limit with --max-layer-size (e.g. 1000x, 200GiB or none)"
    )]
    LayerTooLarge { digest: String, limit: String, bound: u64, read: u64 },
    /// A blob's content does not hash to the digest it was committed under.
    #[error("blob digest mismatch: expected {expected}, got {actual}")]
    BlobDigestMismatch { expected: String, actual: String },
}

/// Whether `e` says the file system is full (or the user's quota is).
fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// What to do about a disk-full error, or nothing.
fn disk_hint(e: &std::io::Error) -> &'static str {
    if is_disk_full(e) { " (the work dir's file system is full: free space there, or give --work-dir a larger volume)" } else { "" }
}

/// The likely cause of a layer stream that could not be read.
fn archive_hint(e: &std::io::Error) -> &'static str {
    if is_disk_full(e) {
        "the work dir's file system is full: free space there, or give --work-dir a larger volume"
    } else {
        "the blob is truncated or not a tar archive"
    }
}

impl Error {
    /// Wraps an `io::Error` with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn a_full_disk_is_not_called_a_truncated_blob() {
        let full = Error::Archive { source: std::io::Error::from_raw_os_error(libc::ENOSPC) }.to_string();
        assert!(full.contains("file system is full") && !full.contains("truncated"), "{full}");
        let bad = Error::Archive { source: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof") }.to_string();
        assert!(bad.contains("truncated"), "{bad}");
    }
}

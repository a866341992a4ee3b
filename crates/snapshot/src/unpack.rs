//! Applying a layer (gzip, zstd or plain tar, detected from its bytes) to a rootfs.

use crate::Error;
use std::io::Read;
use std::path::Path;

/// How to apply a layer.
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// `sha256:<hex>` the uncompressed stream must hash to.
    pub expected_diff_id: Option<String>,
    /// Running without real root: skip device nodes (with one warning) and ownership changes that fail.
    pub rootless: bool,
}

/// What unpacking did.
#[derive(Debug, Clone, Default)]
pub struct UnpackStats {
    /// Entries written.
    pub entries: u64,
    /// Whiteouts applied.
    pub whiteouts: u64,
    /// `sha256:<hex>` of the uncompressed stream.
    pub diff_id: String,
}

/// Applies the layer read from `reader` to the directory `rootfs`.
pub fn unpack_layer<R: Read>(reader: R, rootfs: &Path, opts: &UnpackOptions) -> Result<UnpackStats, Error> {
    let _ = (reader, rootfs, opts);
    Err(Error::Unimplemented)
}

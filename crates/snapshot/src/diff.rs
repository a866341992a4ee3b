//! Indexing a rootfs and computing what changed since the last index.

use crate::Error;
use std::path::{Path, PathBuf};

/// How a change is detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotMode {
    /// Content compared (hashes cached by inode, size and times).
    #[default]
    Full,
    /// Metadata only: mode, size, uid, gid, mtime in nanoseconds.
    Redo,
    /// mtime only.
    Time,
}

/// One change in a rootfs, path relative to the rootfs root without a leading `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Added or modified: written in full to the layer.
    Upsert(PathBuf),
    /// Deleted: written as a whiteout.
    Delete(PathBuf),
}

/// A sorted set of changes, ready to be written as a layer.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// The changes, sorted by path.
    pub entries: Vec<Change>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Tracks a rootfs between snapshots.
#[derive(Debug)]
pub struct Snapshotter {
    _rootfs: PathBuf,
}

impl Snapshotter {
    /// Indexes `rootfs` now; `ignore` are in-image absolute paths never captured (besides /proc, /sys, /dev).
    pub fn new(rootfs: &Path, mode: SnapshotMode, ignore: Vec<PathBuf>) -> Result<Self, Error> {
        let _ = (mode, ignore);
        Ok(Self { _rootfs: rootfs.to_path_buf() })
    }

    /// Everything that changed since the last snapshot; the index moves forward.
    pub fn diff(&mut self) -> Result<Changes, Error> {
        Err(Error::Unimplemented)
    }

    /// Only the given in-image paths (and their parent directories); the index moves forward for them.
    pub fn paths(&mut self, paths: &[PathBuf]) -> Result<Changes, Error> {
        let _ = paths;
        Err(Error::Unimplemented)
    }
}

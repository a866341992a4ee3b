//! strata's root filesystem layer engine: apply OCI layers to a directory without ever
//! writing outside it, diff a directory into a change set, and write that change set as a
//! deterministic, streamed, compressed tar layer into a content-addressed blob store.
//!
//! ```no_run
//! use strata_snapshot::{BlobStore, Compression, LayerOptions, SnapshotMode, Snapshotter};
//! let store = BlobStore::open("/var/lib/strata/blobs".as_ref()).unwrap();
//! let mut snap = Snapshotter::new("/tmp/rootfs".as_ref(), SnapshotMode::Full, Vec::new()).unwrap();
//! // ... run something that changes /tmp/rootfs ...
//! let changes = snap.diff().unwrap();
//! let layer = strata_snapshot::write_layer("/tmp/rootfs".as_ref(), &changes, &LayerOptions::default(), &store).unwrap();
//! println!("{} {}", layer.digest, layer.diff_id);
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub(crate) mod blobstore;
pub mod compression;
pub(crate) mod cpus;
pub(crate) mod diff;
pub(crate) mod digest_io;
pub(crate) mod dircursor;
pub(crate) mod error;
pub(crate) mod fasthash;
pub(crate) mod layer;
pub mod mounts;
pub(crate) mod pargzip;
pub(crate) mod readahead;
pub mod rootdir;
pub mod tarwriter;
pub(crate) mod unpack;
pub(crate) mod walk;
pub(crate) mod whiteout;

pub use blobstore::{BlobStore, BlobWriter, is_sha256_digest};
pub use cpus::cpu_budget;
pub use diff::{Change, Changes, ContentHashes, SnapshotMode, SnapshotOptions, Snapshotter};
pub use error::Error;
pub use layer::{Compression, LayerInfo, LayerOptions, write_layer};
pub use rootdir::KeepPaths;
pub use unpack::{LayerSizeLimit, RATIO_FLOOR, UnpackOptions, UnpackStats, unpack_layer};

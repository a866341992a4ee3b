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

pub mod blobstore;
pub mod compression;
pub mod cpus;
pub mod diff;
pub mod dircursor;
pub mod digest_io;
pub mod error;
pub mod fasthash;
pub mod layer;
pub mod mounts;
pub mod pargzip;
pub mod readahead;
pub mod rootdir;
pub mod tarwriter;
pub mod unpack;
pub mod walk;
pub mod whiteout;

pub use blobstore::{is_sha256_digest, BlobStore, BlobWriter};
pub use cpus::cpu_budget;
pub use diff::{Change, Changes, SnapshotMode, SnapshotOptions, Snapshotter};
pub use error::Error;
pub use layer::{Compression, LayerInfo, LayerOptions, write_layer};
pub use rootdir::KeepPaths;
pub use unpack::{LayerSizeLimit, UnpackOptions, UnpackStats, unpack_layer};

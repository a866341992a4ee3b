//! The RUN that creates 100k files, end to end: create them, snapshot (diff), write the layer.
//! The workload is kaniko's benchmark_fs (100k small files in /workdir); kaniko's published
//! figure for the same work: 96 s (full), 91 s (redo).

#[path = "snapshot_fixtures.rs"]
mod snapshot_fixtures;

use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Duration;
use strata_snapshot::{BlobStore, Compression, LayerOptions, SnapshotMode, Snapshotter, write_layer};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("run_create_100k");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(30));
    for (name, mode) in [("full", SnapshotMode::Full), ("redo", SnapshotMode::Redo)] {
        group.bench_function(name, |b| {
            b.iter_with_large_drop(|| {
                let tmp = tempfile::tempdir().unwrap();
                let rootfs = tmp.path().join("rootfs");
                // A base tree of 10k files is there before the RUN.
                snapshot_fixtures::small_file_tree(&rootfs.join("base"), 10_000, 1);
                let store = BlobStore::open(&tmp.path().join("blobs")).unwrap();
                let mut snap = Snapshotter::new(&rootfs, mode, Vec::new()).unwrap();
                snapshot_fixtures::kaniko_workdir(&rootfs, 100_000);
                let changes = snap.diff().unwrap();
                let layer = write_layer(
                    &rootfs,
                    &changes,
                    &LayerOptions { compression: Compression::Gzip { level: 6 }, reproducible_epoch: None, content_hashes: false },
                    &store,
                )
                .unwrap();
                (tmp, layer)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Snapshot cost on generated 10k and 100k-file trees: a `redo` diff of an unchanged tree, a
//! second `full` diff of an unchanged tree (hash cache hit), a `time` diff, and the first index.

#[path = "snapshot_fixtures.rs"]
mod snapshot_fixtures;

use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Duration;
use strata_snapshot::{SnapshotMode, Snapshotter};

fn bench(c: &mut Criterion) {
    for files in [10_000usize, 100_000] {
        let tmp = tempfile::tempdir().unwrap();
        snapshot_fixtures::small_file_tree(tmp.path(), files, 42);
        let mut group = c.benchmark_group(format!("snapshot_{}k", files / 1000));
        group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
        for (name, mode) in [("redo_unchanged", SnapshotMode::Redo), ("full_second_unchanged", SnapshotMode::Full), ("time_unchanged", SnapshotMode::Time)] {
            let mut snap = Snapshotter::new(tmp.path(), mode, Vec::new()).unwrap();
            group.bench_function(name, |b| {
                b.iter(|| {
                    let changes = snap.diff().unwrap();
                    assert!(changes.is_empty());
                })
            });
        }
        group.bench_function("full_first_index", |b| b.iter(|| Snapshotter::new(tmp.path(), SnapshotMode::Full, Vec::new()).unwrap()));
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

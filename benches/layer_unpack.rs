//! Layer unpacking time: a gzip layer of 20k small files and 64 MiB of bulk data, unpacked by
//! strata (decompression and hashing on a second thread, ahead of the writes) against
//! `tar -xzf` of the same blob, measured in the same run, each into a fresh directory on tmpfs
//! (/dev/shm when there is one), so that the file system's state after earlier deletions does
//! not favour either.

#[path = "snapshot_fixtures.rs"]
mod snapshot_fixtures;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::process::Command;
use std::time::Duration;
use strata_snapshot::{BlobStore, Compression, LayerOptions, UnpackOptions, unpack_layer, write_layer};

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    snapshot_fixtures::small_file_tree(&tree.join("small"), 20_000, 3);
    snapshot_fixtures::bulk_tree(&tree.join("bulk"), 64 << 20, 5);
    let store = BlobStore::open(&tmp.path().join("blobs")).unwrap();
    let info = write_layer(
        &tree,
        &snapshot_fixtures::tree_changes(&tree),
        &LayerOptions { compression: Compression::Gzip { level: 6 }, reproducible_epoch: None, content_hashes: false },
        &store,
    )
    .unwrap();
    let blob = store.path(&info.digest);
    let mut group = c.benchmark_group("layer_unpack_20k_files_64MiB");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(20));
    let scratch = if std::path::Path::new("/dev/shm").is_dir() { std::path::PathBuf::from("/dev/shm") } else { tmp.path().to_path_buf() };
    // Removed when dropped, after the measurement.
    let fresh = || tempfile::tempdir_in(&scratch).unwrap();
    let opts = UnpackOptions { expected_diff_id: Some(info.diff_id.clone()), ..Default::default() };
    group.bench_function("strata", |b| {
        b.iter_batched(
            fresh,
            |dir| {
                let file = std::io::BufReader::new(std::fs::File::open(&blob).unwrap());
                unpack_layer(file, dir.path(), &opts).unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("tar_xzf", |b| {
        b.iter_batched(
            fresh,
            |dir| {
                let st = Command::new("tar").arg("-xzf").arg(&blob).arg("-C").arg(dir.path()).status().unwrap();
                assert!(st.success());
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

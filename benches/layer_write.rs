//! Layer writing throughput on the same tree, strata against `tar -c | gzip -6` and
//! `tar -c | zstd -3 -T2` measured in the same run.

#[path = "snapshot_fixtures.rs"]
mod snapshot_fixtures;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::process::Command;
use std::time::Duration;
use strata_snapshot::{BlobStore, Compression, LayerOptions, write_layer};

fn shell(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    let bytes = 128u64 << 20;
    snapshot_fixtures::bulk_tree(&tree, bytes, 7);
    let changes = snapshot_fixtures::tree_changes(&tree);
    let store = BlobStore::open(&tmp.path().join("blobs")).unwrap();
    let out = tmp.path().join("peer.out");
    let mut group = c.benchmark_group("layer_write_128MiB");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Bytes(bytes));
    let peers = [("gzip6", Compression::Gzip { level: 6 }, "gzip -6"), ("zstd3_T2", Compression::Zstd { level: 3, threads: 2 }, "zstd -q -3 -T2")];
    for (name, compression, peer) in peers {
        group.bench_function(format!("strata_{name}"), |b| {
            b.iter(|| write_layer(&tree, &changes, &LayerOptions { compression, reproducible_epoch: None, content_hashes: false }, &store).unwrap())
        });
        let cmd = format!("tar -C '{}' -cf - . | {peer} > '{}'", tree.display(), out.display());
        group.bench_function(format!("tar_pipe_{name}"), |b| b.iter(|| shell(&cmd)));
    }
    group.bench_function("strata_uncompressed", |b| {
        b.iter(|| {
            write_layer(&tree, &changes, &LayerOptions { compression: Compression::None, reproducible_epoch: None, content_hashes: false }, &store).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

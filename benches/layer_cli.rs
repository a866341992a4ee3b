//! A small driver for scripts/bench-snapshot.sh (a `harness = false` bench target, so it is built
//! with the benches): generates trees, times snapshots and layer writes, reports peak RSS.
//!
//! ```text
//! layer_cli gen-small DIR FILES | gen-bulk DIR BYTES
//! layer_cli snapshot DIR full|redo|time          # index, then time a diff of the unchanged tree
//! layer_cli layer DIR gzip|zstd|none STORE       # one layer of the whole tree
//! layer_cli run100k DIR full|redo [kaniko|mixed]  # create 100k files + snapshot + layer
//!     kaniko: its benchmark_fs workload (100k 12-byte files in one directory, the 96 s figure);
//!     mixed: 100k files of 64 B-4 KiB in directories of 100 (about 200 MiB)
//! ```
//! Every command prints one `key=value ...` line; `peak_rss_kib` is VmHWM of this process.
#![allow(clippy::unwrap_used)]

#[path = "snapshot_fixtures.rs"]
mod snapshot_fixtures;

use std::path::{Path, PathBuf};
use std::time::Instant;
use strata_snapshot::{BlobStore, Change, Changes, Compression, LayerOptions, SnapshotMode, Snapshotter, write_layer};

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn mode(s: &str) -> SnapshotMode {
    match s {
        "full" => SnapshotMode::Full,
        "redo" => SnapshotMode::Redo,
        "time" => SnapshotMode::Time,
        other => panic!("unknown mode {other}"),
    }
}

fn whole_tree(root: &Path) -> Changes {
    let mut entries = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            entries.push(Change::Upsert(p.strip_prefix(root).unwrap().to_path_buf()));
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    let mut c = Changes { entries };
    c.normalize();
    c
}

fn compression(s: &str) -> Compression {
    match s {
        "gzip" => Compression::Gzip { level: 6 },
        "zstd" => Compression::Zstd { level: 3, threads: std::env::var("STRATA_BENCH_ZSTD_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2) },
        "none" => Compression::None,
        other => panic!("unknown compression {other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| panic!("missing argument {i}; see the doc comment"));
    match arg(0).as_str() {
        "gen-small" => snapshot_fixtures::small_file_tree(Path::new(&arg(1)), arg(2).parse().unwrap(), 42),
        "gen-bulk" => snapshot_fixtures::bulk_tree(Path::new(&arg(1)), arg(2).parse().unwrap(), 7),
        "snapshot" => {
            let dir = PathBuf::from(arg(1));
            let t = Instant::now();
            let mut snap = Snapshotter::new(&dir, mode(&arg(2)), Vec::new()).unwrap();
            let index = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let changes = snap.diff().unwrap();
            let diff = t.elapsed().as_secs_f64();
            assert!(changes.is_empty());
            println!("mode={} entries={} index_s={index:.3} unchanged_diff_s={diff:.3} peak_rss_kib={}", arg(2), snap.indexed(), peak_rss_kib());
        }
        "layer" => {
            let dir = PathBuf::from(arg(1));
            let changes = whole_tree(&dir);
            let store = BlobStore::open(Path::new(&arg(3))).unwrap().with_fsync(std::env::var_os("STRATA_BENCH_NO_FSYNC").is_none());
            let t = Instant::now();
            let info =
                write_layer(&dir, &changes, &LayerOptions { compression: compression(&arg(2)), reproducible_epoch: None, content_hashes: false }, &store)
                    .unwrap();
            let secs = t.elapsed().as_secs_f64();
            println!(
                "compression={} entries={} secs={secs:.3} size={} digest={} peak_rss_kib={}",
                arg(2),
                changes.len(),
                info.size,
                info.digest,
                peak_rss_kib()
            );
            let _ = std::fs::remove_file(store.path(&info.digest));
        }
        "run100k" => {
            let dir = PathBuf::from(arg(1));
            let store_dir = tempfile::tempdir().unwrap();
            let store = BlobStore::open(store_dir.path()).unwrap();
            snapshot_fixtures::small_file_tree(&dir.join("base"), 10_000, 1);
            let t0 = Instant::now();
            let mut snap = Snapshotter::new(&dir, mode(&arg(2)), Vec::new()).unwrap();
            let t_index = t0.elapsed().as_secs_f64();
            let workload = args.get(3).cloned().unwrap_or_else(|| "kaniko".into());
            let t = Instant::now();
            match workload.as_str() {
                "kaniko" => snapshot_fixtures::kaniko_workdir(&dir, 100_000),
                "mixed" => snapshot_fixtures::small_file_tree(&dir.join("app"), 100_000, 2),
                other => panic!("unknown workload {other}"),
            }
            let t_create = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let changes = snap.diff().unwrap();
            let t_diff = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let info = write_layer(&dir, &changes, &LayerOptions::default(), &store).unwrap();
            let t_layer = t.elapsed().as_secs_f64();
            println!(
                "workload={workload} mode={} changes={} index_s={t_index:.3} create_s={t_create:.3} diff_s={t_diff:.3} layer_s={t_layer:.3} strata_s={:.3} run_total_s={:.3} layer_size={} peak_rss_kib={}",
                arg(2),
                changes.len(),
                t_diff + t_layer,
                t_create + t_diff + t_layer,
                info.size,
                peak_rss_kib()
            );
        }
        other => panic!("unknown command {other}"),
    }
}

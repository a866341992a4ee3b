//! diff -> layer -> unpack round trips: every entry type and attribute survives.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::fs::File;
use std::path::{Path, PathBuf};
use strata_snapshot::*;

fn layer_of(rootfs: &Path, changes: &Changes, compression: Compression, store: &BlobStore) -> LayerInfo {
    write_layer(rootfs, changes, &LayerOptions { compression, reproducible_epoch: None, content_hashes: false }, store).unwrap()
}

fn apply(store: &BlobStore, layer: &LayerInfo, dest: &Path) -> UnpackStats {
    let f = File::open(store.path(&layer.digest)).unwrap();
    unpack_layer(
        f,
        dest,
        &UnpackOptions { expected_diff_id: Some(layer.diff_id.clone()), rootless: false, layer_digest: Some(layer.digest.clone()), ..Default::default() },
    )
    .unwrap()
}

fn check_roundtrip(compression: Compression) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    let store = BlobStore::open(&tmp.path().join("blobs")).unwrap();
    let mut snap = Snapshotter::new(&src, SnapshotMode::Full, Vec::new()).unwrap();
    rich_tree(&src);
    let changes = snap.diff().unwrap();
    assert!(!changes.is_empty());
    let layer = layer_of(&src, &changes, compression, &store);
    assert_eq!(layer.media_type, compression.media_type());
    let stats = apply(&store, &layer, &dst);
    assert_eq!(stats.diff_id, layer.diff_id);
    assert_eq!(fingerprint(&src), fingerprint(&dst));
    assert!(snap.diff().unwrap().is_empty(), "a second diff of an unchanged tree is empty");
}

#[test]
fn roundtrip_gzip_every_entry_type() {
    check_roundtrip(Compression::Gzip { level: 6 });
}

#[test]
fn roundtrip_zstd_threads_every_entry_type() {
    check_roundtrip(Compression::Zstd { level: 3, threads: 2 });
}

#[test]
fn roundtrip_plain_every_entry_type() {
    check_roundtrip(Compression::None);
}

/// Deletions, replacements (dir -> file, file -> dir, file -> symlink, dir recreated) applied
/// on top of the previous layer give the changed tree, in every snapshot mode.
fn check_changes_roundtrip(mode: SnapshotMode) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    let store = BlobStore::open(&tmp.path().join("blobs")).unwrap();
    rich_tree(&src);
    write(&src, "gone/a/b/c", b"1");
    write(&src, "gone/x", b"2");
    write(&src, "dir2file/inner", b"3");
    write(&src, "file2dir", b"4");
    write(&src, "file2link", b"5");
    write(&src, "recreated/old", b"6");
    write(&src, "recreated/kept", b"7");
    write(&src, "modified", b"before");
    // Base layer = everything, applied to dst.
    assert!(Snapshotter::new(&tmp.path().join("missing"), mode, Vec::new()).is_err(), "a missing rootfs is an error");
    let all = full_tree_changes(&src);
    let layer = layer_of(&src, &all, Compression::Gzip { level: 1 }, &store);
    apply(&store, &layer, &dst);
    assert_eq!(fingerprint(&src), fingerprint(&dst));

    let mut snap = Snapshotter::new(&src, mode, Vec::new()).unwrap();
    std::fs::remove_dir_all(src.join("gone")).unwrap();
    std::fs::remove_dir_all(src.join("dir2file")).unwrap();
    write(&src, "dir2file", b"now a file");
    std::fs::remove_file(src.join("file2dir")).unwrap();
    write(&src, "file2dir/child", b"now a dir");
    std::fs::remove_file(src.join("file2link")).unwrap();
    std::os::unix::fs::symlink("etc/config", src.join("file2link")).unwrap();
    std::fs::remove_dir_all(src.join("recreated")).unwrap();
    // New content: full mode ignores a rewrite with equal content (mtime only), by design.
    write(&src, "recreated/kept", b"7 again");
    std::fs::remove_file(src.join("etc/config")).unwrap();
    // Same size, new content, later mtime.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(&src, "modified", b"after!");
    let changes = snap.diff().unwrap();
    let deletes: Vec<&Path> = changes.deletes().collect();
    assert!(deletes.contains(&Path::new("gone")), "{deletes:?}");
    assert!(!deletes.iter().any(|d| *d != Path::new("gone") && d.starts_with("gone")), "no whiteout under a deleted dir: {deletes:?}");
    assert!(!deletes.iter().any(|d| d.starts_with("dir2file")), "replacement needs no whiteout: {deletes:?}");
    assert!(deletes.contains(&Path::new("recreated/old")), "{deletes:?}");
    assert!(deletes.contains(&Path::new("etc/config")), "{deletes:?}");
    let layer2 = layer_of(&src, &changes, Compression::Gzip { level: 6 }, &store);
    let stats = apply(&store, &layer2, &dst);
    assert!(stats.whiteouts >= 3);
    assert_eq!(fingerprint(&src), fingerprint(&dst));
}

/// All paths of a tree as upserts (what a first layer of a tree is).
fn full_tree_changes(root: &Path) -> Changes {
    let mut entries = Vec::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        entries.push(Change::Upsert(e.path().strip_prefix(root).unwrap().to_path_buf()));
    }
    let mut c = Changes { entries };
    c.normalize();
    c
}

#[test]
fn changes_roundtrip_full() {
    check_changes_roundtrip(SnapshotMode::Full);
}

#[test]
fn changes_roundtrip_redo() {
    check_changes_roundtrip(SnapshotMode::Redo);
}

#[test]
fn changes_roundtrip_time() {
    check_changes_roundtrip(SnapshotMode::Time);
}

#[test]
fn equal_inputs_give_equal_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&tmp.path().join("blobs")).unwrap();
    let mut digests = Vec::new();
    for i in 0..2 {
        let src = tmp.path().join(format!("src{i}"));
        std::fs::create_dir_all(&src).unwrap();
        let mut snap = Snapshotter::new(&src, SnapshotMode::Full, Vec::new()).unwrap();
        rich_tree(&src);
        let changes = snap.diff().unwrap();
        for compression in [Compression::Gzip { level: 6 }, Compression::Zstd { level: 3, threads: 2 }, Compression::None] {
            let l = write_layer(&src, &changes, &LayerOptions { compression, reproducible_epoch: Some(1_000_000_000), content_hashes: false }, &store).unwrap();
            digests.push((i, compression, l.digest, l.diff_id));
        }
    }
    assert_eq!(digests[0].2, digests[3].2, "gzip");
    assert_eq!(digests[1].2, digests[4].2, "zstd");
    assert_eq!(digests[2].2, digests[5].2, "plain");
    assert_eq!(digests[0].3, digests[1].3, "same tar whatever the compression");
}

#[test]
fn reproducible_epoch_clamps_mtimes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    let store = BlobStore::open(&tmp.path().join("blobs")).unwrap();
    let mut snap = Snapshotter::new(&src, SnapshotMode::Full, Vec::new()).unwrap();
    write(&src, "new", b"x");
    write(&src, "old", b"y");
    set_mtime(&src, "old", 100);
    let changes = snap.diff().unwrap();
    let l =
        write_layer(&src, &changes, &LayerOptions { compression: Compression::None, reproducible_epoch: Some(1000), content_hashes: false }, &store).unwrap();
    apply(&store, &l, &dst);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(dst.join("new")).unwrap().mtime(), 1000);
    assert_eq!(std::fs::metadata(dst.join("old")).unwrap().mtime(), 100);
}

#[test]
fn parents_of_changes_are_in_the_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src, "opt/data/existing", b"1");
    let store = BlobStore::open(&tmp.path().join("blobs")).unwrap();
    let mut snap = Snapshotter::new(&src, SnapshotMode::Full, Vec::new()).unwrap();
    write(&src, "opt/data/existing", b"2");
    let changes = snap.diff().unwrap();
    assert_eq!(changes.entries, vec![Change::Upsert(PathBuf::from("opt/data/existing"))]);
    let l = write_layer(&src, &changes, &LayerOptions { compression: Compression::None, reproducible_epoch: None, content_hashes: false }, &store).unwrap();
    let names: Vec<String> =
        tar::Archive::new(File::open(store.path(&l.digest)).unwrap()).entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
    assert_eq!(names, vec!["opt/", "opt/data/", "opt/data/existing"]);
}

#[test]
fn explicit_paths_snapshot_and_index_moves_forward() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src, "etc/base", b"1");
    std::fs::create_dir_all(src.join("opt/app")).unwrap();
    std::os::unix::fs::symlink("/opt/app", src.join("app")).unwrap();
    let mut snap = Snapshotter::new(&src, SnapshotMode::Full, Vec::new()).unwrap();
    write(&src, "opt/app/src/main.rs", b"fn main(){}");
    write(&src, "opt/app/src/lib/mod.rs", b"");
    write(&src, "unrelated", b"not copied");
    let changes = snap.paths(&[PathBuf::from("/app/src")]).unwrap();
    let ups: Vec<&Path> = changes.upserts().collect();
    assert_eq!(
        ups,
        vec![
            Path::new("opt"),
            Path::new("opt/app"),
            Path::new("opt/app/src"),
            Path::new("opt/app/src/lib"),
            Path::new("opt/app/src/lib/mod.rs"),
            Path::new("opt/app/src/main.rs"),
        ]
    );
    let later = snap.diff().unwrap();
    assert_eq!(later.entries, vec![Change::Upsert(PathBuf::from("unrelated"))]);
}

/// /proc, /sys and /dev are ordinary paths unless ignored: COPY and ADD may put files there
/// (BuildKit keeps them); RUN's mounts never reach the tree.
#[test]
fn proc_sys_dev_are_captured_unless_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut snap = Snapshotter::new(&src, SnapshotMode::Full, vec![]).unwrap();
    write(&src, "sys/real.txt", b"x");
    write(&src, "proc/p.txt", b"y");
    write(&src, "dev/d.txt", b"z");
    let changes = snap.diff().unwrap();
    let all: Vec<&Path> = changes.entries.iter().map(|c| c.path()).collect();
    for p in ["sys/real.txt", "proc/p.txt", "dev/d.txt"] {
        assert!(all.contains(&Path::new(p)), "{p} captured: {all:?}");
    }
}

#[test]
fn ignored_paths_are_never_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src, "etc/hosts", b"127.0.0.1 localhost");
    write(&src, "proc/1/status", b"x");
    let mut snap = Snapshotter::new(
        &src,
        SnapshotMode::Full,
        vec![PathBuf::from("/etc/hosts"), PathBuf::from("/var/run/secrets"), PathBuf::from("/proc"), PathBuf::from("/dev")],
    )
    .unwrap();
    write(&src, "etc/hosts", b"changed by a bind mount");
    write(&src, "var/run/secrets/token", b"secret");
    write(&src, "proc/2/status", b"y");
    std::fs::create_dir_all(src.join("dev")).unwrap();
    write(&src, "var/other", b"z");
    let changes = snap.diff().unwrap();
    let all: Vec<&Path> = changes.entries.iter().map(|c| c.path()).collect();
    assert_eq!(all, vec![Path::new("var"), Path::new("var/other"), Path::new("var/run")]);
    std::fs::remove_file(src.join("etc/hosts")).unwrap();
    assert_eq!(
        snap.diff().unwrap().entries,
        vec![Change::Upsert(PathBuf::from("etc"))],
        "deleting an ignored file reports no whiteout, only its directory's new mtime"
    );
}

#[test]
fn full_mode_ignores_touch_without_content_change_redo_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src, "f", b"same");
    set_mtime(&src, "f", 1000);
    let mut full = Snapshotter::new(&src, SnapshotMode::Full, Vec::new()).unwrap();
    let mut redo = Snapshotter::new(&src, SnapshotMode::Redo, Vec::new()).unwrap();
    let mut time = Snapshotter::new(&src, SnapshotMode::Time, Vec::new()).unwrap();
    set_mtime(&src, "f", 2000);
    assert!(full.diff().unwrap().is_empty());
    assert_eq!(redo.diff().unwrap().entries, vec![Change::Upsert(PathBuf::from("f"))]);
    assert_eq!(time.diff().unwrap().entries, vec![Change::Upsert(PathBuf::from("f"))]);
    // Same size and mtime, different content: full and redo see it (the ctime moves), time
    // mode cannot.
    write(&src, "f", b"diff");
    set_mtime(&src, "f", 2000);
    assert_eq!(full.diff().unwrap().entries, vec![Change::Upsert(PathBuf::from("f"))]);
    assert_eq!(redo.diff().unwrap().entries, vec![Change::Upsert(PathBuf::from("f"))]);
    assert!(time.diff().unwrap().is_empty());
    // chmod: metadata change seen by full and redo, not time.
    chmod(&src, "f", 0o600);
    assert_eq!(full.diff().unwrap().entries, vec![Change::Upsert(PathBuf::from("f"))]);
    assert_eq!(redo.diff().unwrap().entries, vec![Change::Upsert(PathBuf::from("f"))]);
    assert!(time.diff().unwrap().is_empty());
}

#[test]
fn single_snapshot_of_a_whole_stage() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    write(&src, "base/keep", b"k");
    write(&src, "base/drop", b"d");
    write(&dst, "base/keep", b"k");
    write(&dst, "base/drop", b"d");
    let store = BlobStore::open(&tmp.path().join("blobs")).unwrap();
    let mut snap = Snapshotter::new(&src, SnapshotMode::Redo, Vec::new()).unwrap();
    // Several "RUN"s, no snapshot in between.
    write(&src, "step1/a", b"1");
    std::fs::remove_file(src.join("base/drop")).unwrap();
    write(&src, "step2/b", b"2");
    std::fs::remove_dir_all(src.join("step1")).unwrap();
    let changes = snap.diff().unwrap();
    assert!(!changes.entries.iter().any(|c| c.path().starts_with("step1")), "{changes:?}");
    let l = write_layer(&src, &changes, &LayerOptions::default(), &store).unwrap();
    apply(&store, &l, &dst);
    assert_eq!(fingerprint(&src), fingerprint(&dst));
}

#[test]
fn full_mode_skips_a_recreated_file_with_equal_content() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src, "d/same", b"k\n");
    write(&src, "d/old", b"o");
    let mut full = Snapshotter::new(&src, SnapshotMode::Full, Vec::new()).unwrap();
    let mut redo = Snapshotter::new(&src, SnapshotMode::Redo, Vec::new()).unwrap();
    std::fs::remove_dir_all(src.join("d")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    write(&src, "d/same", b"k\n");
    // The file's content is equal, so it is not written again; the directory was made anew
    // (new mtime), so it is, as BuildKit has it.
    assert_eq!(full.diff().unwrap().entries, vec![Change::Upsert(PathBuf::from("d")), Change::Delete(PathBuf::from("d/old"))]);
    let redo_changes = redo.diff().unwrap();
    assert!(redo_changes.entries.contains(&Change::Upsert(PathBuf::from("d/same"))), "{redo_changes:?}");
}

#[test]
fn files_named_like_whiteouts_are_left_out_of_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    write(&src, "d/victim", b"v");
    write(&dst, "d/victim", b"v");
    let store = BlobStore::open(&tmp.path().join("blobs")).unwrap();
    let mut snap = Snapshotter::new(&src, SnapshotMode::Full, Vec::new()).unwrap();
    write(&src, "d/.wh.victim", b"a file a RUN happened to create");
    write(&src, "d/normal", b"n");
    let l = write_layer(&src, &snap.diff().unwrap(), &LayerOptions::default(), &store).unwrap();
    apply(&store, &l, &dst);
    assert!(dst.join("d/victim").exists(), "a file named .wh.victim must not delete victim");
    assert!(dst.join("d/normal").exists());
}

/// Runs `mount`/`umount`; false if this environment does not allow mounting.
fn mount(args: &[&str], target: &Path) -> bool {
    std::process::Command::new("mount").args(args).arg(target).status().is_ok_and(|s| s.success())
}

#[test]
fn mount_points_under_the_rootfs_are_not_descended_or_reported() {
    if skip_unless_root("mount_points_under_the_rootfs_are_not_descended_or_reported") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src, "etc/hosts", b"127.0.0.1 localhost\n");
    write(&src, "etc/keep", b"k");
    std::fs::create_dir_all(src.join("mnt/cache")).unwrap();
    write(&src, "mnt/cache/lower", b"under the mount");
    let mut snap = Snapshotter::new(&src, SnapshotMode::Full, Vec::new()).unwrap();
    // A tmpfs over a directory and a bind mount over a file, as a RUN with mounts has them.
    let bind_src = tmp.path().join("hosts");
    std::fs::write(&bind_src, b"10.0.0.1 builder\n").unwrap();
    if !mount(&["-t", "tmpfs", "none"], &src.join("mnt/cache")) {
        strata_test_support::skip("mount_points_under_the_rootfs_are_not_descended_or_reported", "mount not permitted here");
        return;
    }
    let bound = mount(&["--bind", bind_src.to_str().unwrap()], &src.join("etc/hosts"));
    std::fs::write(src.join("mnt/cache/inside-tmpfs"), b"not in any layer").unwrap();
    write(&src, "etc/new", b"n");
    let changes = snap.diff();
    let _ = std::process::Command::new("umount").arg(src.join("mnt/cache")).status();
    if bound {
        let _ = std::process::Command::new("umount").arg(src.join("etc/hosts")).status();
    }
    let changes = changes.unwrap();
    let paths: Vec<&Path> = changes.entries.iter().map(|c| c.path()).collect();
    assert_eq!(paths, vec![Path::new("etc"), Path::new("etc/new")], "{changes:?}");
    // After the mounts are gone, what was underneath is unchanged: nothing to report.
    let after = snap.diff().unwrap();
    assert!(after.is_empty(), "{after:?}");
}

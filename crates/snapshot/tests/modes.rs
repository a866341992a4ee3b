//! Every snapshot mode against the changes that hide from a metadata check (issue "Never a wrong
//! image"): a rewrite of the same size with its mtime put back (`cp -p`, `tar -x`, `rsync -a`,
//! package managers), a rename over the path, a chmod put back, a rewrite through a hardlink, a
//! truncate-and-rewrite right after the index, xattr-only changes. Each case builds a base tree,
//! brings a copy of it up through a layer, changes the source, diffs it, applies that layer to
//! the copy and compares the two trees: `full` and `redo` must give the same tree; for `time`
//! the test asserts what it misses (the README says so too).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use strata_snapshot::*;

const MODES: [SnapshotMode; 3] = [SnapshotMode::Full, SnapshotMode::Redo, SnapshotMode::Time];

/// A source tree and a copy of it made through a layer, as a build's next step sees them.
struct Case {
    _tmp: tempfile::TempDir,
    src: std::path::PathBuf,
    dst: std::path::PathBuf,
    store: BlobStore,
}

impl Case {
    fn new(base: impl Fn(&Path)) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let dst = tmp.path().join("dst");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        let store = BlobStore::open(&tmp.path().join("blobs")).unwrap();
        let mut snap = Snapshotter::new(&src, SnapshotMode::Full, Vec::new()).unwrap();
        base(&src);
        let changes = snap.diff().unwrap();
        let case = Self { _tmp: tmp, src, dst, store };
        case.apply(&changes);
        assert_eq!(fingerprint(&case.src), fingerprint(&case.dst), "base copied");
        case
    }

    fn apply(&self, changes: &Changes) {
        let layer = write_layer(&self.src, changes, &LayerOptions::default(), &self.store).unwrap();
        unpack_layer(File::open(self.store.path(&layer.digest)).unwrap(), &self.dst, &UnpackOptions::default()).unwrap();
    }

    /// Indexes the source in `mode`, runs `step` on it, and applies the diff to the copy; returns
    /// the changed paths and whether the copy now equals the source.
    fn step(&self, mode: SnapshotMode, step: impl Fn(&Path)) -> (Vec<String>, bool) {
        let mut snap = Snapshotter::new(&self.src, mode, Vec::new()).unwrap();
        step(&self.src);
        let changes = snap.diff().unwrap();
        self.apply(&changes);
        let paths = changes.entries.iter().map(|c| c.path().display().to_string()).collect();
        (paths, fingerprint(&self.src) == fingerprint(&self.dst))
    }
}

/// `touch -d @1000000000`.
fn old_mtime(root: &Path, rel: &str) {
    set_mtime(root, rel, 1_000_000_000);
}

/// The Dockerfile, step by step, in every mode: `full` and `redo` keep both later RUNs'
/// changes; `time` loses them (both keep the mtime of the file they replace).
#[test]
fn rewrite_and_rename_over_with_the_mtime_put_back() {
    for mode in MODES {
        let case = Case::new(|r| {
            write(r, "f", b"aaaa\n");
            old_mtime(r, "f");
            write(r, "k", b"1111\n");
            old_mtime(r, "k");
        });
        let (paths, equal) = case.step(mode, |r| {
            write(r, "f", b"bbbb\n");
            old_mtime(r, "f");
        });
        let (paths2, equal2) = case.step(mode, |r| {
            write(r, "k.new", b"2222\n");
            old_mtime(r, "k.new");
            std::fs::rename(r.join("k.new"), r.join("k")).unwrap();
        });
        if mode == SnapshotMode::Time {
            assert!(!equal && !equal2, "time mode misses both (documented): {paths:?} {paths2:?}");
            assert_eq!(std::fs::read(case.dst.join("f")).unwrap(), b"aaaa\n");
            assert_eq!(std::fs::read(case.dst.join("k")).unwrap(), b"1111\n");
            continue;
        }
        assert!(equal && equal2, "{mode:?}: {paths:?} {paths2:?}");
        assert_eq!(std::fs::read(case.dst.join("f")).unwrap(), b"bbbb\n", "{mode:?}");
        assert_eq!(std::fs::read(case.dst.join("k")).unwrap(), b"2222\n", "{mode:?}");
        assert!(paths.contains(&"f".to_string()) && paths2.contains(&"k".to_string()), "{mode:?}: {paths:?} {paths2:?}");
    }
}

/// New content of the same size, then mode and mtime put back (`install`, `cp -p`); and a mode
/// change alone, which `time` cannot see.
#[test]
fn chmod_put_back_and_chmod_alone() {
    for mode in MODES {
        let case = Case::new(|r| {
            write(r, "bin/tool", b"v1");
            chmod(r, "bin/tool", 0o755);
            old_mtime(r, "bin/tool");
            write(r, "etc/conf", b"c");
            chmod(r, "etc/conf", 0o644);
        });
        let (paths, equal) = case.step(mode, |r| {
            chmod(r, "bin/tool", 0o600);
            write(r, "bin/tool", b"v2");
            chmod(r, "bin/tool", 0o755);
            old_mtime(r, "bin/tool");
        });
        let (paths2, equal2) = case.step(mode, |r| chmod(r, "etc/conf", 0o600));
        if mode == SnapshotMode::Time {
            assert!(!equal && !equal2, "time mode misses both (documented): {paths:?} {paths2:?}");
            continue;
        }
        assert!(equal && equal2, "{mode:?}: {paths:?} {paths2:?}");
        assert_eq!(std::fs::read(case.dst.join("bin/tool")).unwrap(), b"v2");
        assert_eq!(std::fs::metadata(case.dst.join("etc/conf")).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

/// Two names of one inode; the content is rewritten through one of them with the mtime put back:
/// both names carry the new content in the layer.
#[test]
fn rewrite_through_a_hardlink() {
    for mode in MODES {
        let case = Case::new(|r| {
            write(r, "a", b"one");
            old_mtime(r, "a");
            std::fs::hard_link(r.join("a"), r.join("b")).unwrap();
        });
        let (paths, equal) = case.step(mode, |r| {
            write(r, "b", b"two");
            old_mtime(r, "b");
        });
        if mode == SnapshotMode::Time {
            assert!(!equal, "time mode misses it (documented): {paths:?}");
            continue;
        }
        assert!(equal, "{mode:?}: {paths:?}");
        assert_eq!(paths, vec!["a", "b"], "{mode:?}");
        assert_eq!(std::fs::read(case.dst.join("a")).unwrap(), b"two");
    }
}

/// Truncated and rewritten (same size, mtime put back) right after the index was taken, within
/// the same clock tick. Kernels with multigrain timestamps (6.13+: ext4, xfs, btrfs, tmpfs) give
/// a change after a stat a distinct ctime by themselves; elsewhere ctime alone could not tell
/// the two apart, so the index waits for the clock to pass the newest ctime it recorded.
#[test]
fn truncate_and_rewrite_right_after_the_index() {
    for mode in [SnapshotMode::Full, SnapshotMode::Redo] {
        for round in 0..20 {
            let tmp = tempfile::tempdir().unwrap();
            let src = tmp.path().join("src");
            write(&src, "f", b"aaaa");
            old_mtime(&src, "f");
            let mut snap = Snapshotter::new(&src, mode, Vec::new()).unwrap();
            std::fs::write(src.join("f"), b"").unwrap();
            std::fs::write(src.join("f"), b"bbbb").unwrap();
            old_mtime(&src, "f");
            let changes = snap.diff().unwrap();
            assert_eq!(changes.upserts().collect::<Vec<_>>(), vec![Path::new("f")], "{mode:?} round {round}");
            // And again right after that diff, which is the next step's index.
            std::fs::write(src.join("f"), b"cccc").unwrap();
            old_mtime(&src, "f");
            let changes = snap.diff().unwrap();
            assert_eq!(changes.upserts().collect::<Vec<_>>(), vec![Path::new("f")], "{mode:?} round {round}, second");
        }
    }
}

/// An xattr set on a file (as `setcap` does) and on a directory, nothing else changed.
#[test]
fn xattr_only_changes() {
    let probe = tempfile::tempdir().unwrap();
    if rustix::fs::setxattr(probe.path(), "user.strata-probe", b"1", rustix::fs::XattrFlags::empty()).is_err() {
        eprintln!("!!!! SKIPPED xattr_only_changes: user xattrs not supported on this file system !!!!");
        return;
    }
    for mode in MODES {
        let case = Case::new(|r| {
            write(r, "bin/ping", b"elf");
            std::fs::create_dir_all(r.join("data")).unwrap();
            write(r, "data/x", b"x");
        });
        let (paths, equal) = case.step(mode, |r| {
            rustix::fs::setxattr(r.join("bin/ping"), "user.cap", b"net_raw", rustix::fs::XattrFlags::empty()).unwrap();
            rustix::fs::setxattr(r.join("data"), "user.label", b"d", rustix::fs::XattrFlags::empty()).unwrap();
        });
        if mode == SnapshotMode::Time {
            assert!(!equal, "time mode misses it (documented): {paths:?}");
            continue;
        }
        assert!(equal, "{mode:?}: {paths:?}");
        assert!(paths.contains(&"bin/ping".to_string()) && paths.contains(&"data".to_string()), "{mode:?}: {paths:?}");
    }
}

/// What strata itself does around a RUN must not show up: a mount stub created in a directory
/// and removed again, the directory's times put back (ctime moves, nothing a layer records does);
/// a file only read; a file rewritten with identical content and mtime is left out by `full`.
#[test]
fn strata_own_stubs_and_reads_are_not_changes() {
    for mode in MODES {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        write(&src, "etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
        write(&src, "usr/bin/sh", b"elf");
        let etc_mtime = std::fs::metadata(src.join("etc")).unwrap().modified().unwrap();
        let mut snap = Snapshotter::new(&src, mode, Vec::new()).unwrap();
        std::fs::write(src.join("etc/hosts"), b"").unwrap();
        std::fs::write(src.join("etc/resolv.conf"), b"").unwrap();
        let _ = std::fs::read(src.join("usr/bin/sh")).unwrap();
        std::fs::remove_file(src.join("etc/hosts")).unwrap();
        std::fs::remove_file(src.join("etc/resolv.conf")).unwrap();
        File::open(src.join("etc")).unwrap().set_times(std::fs::FileTimes::new().set_modified(etc_mtime)).unwrap();
        let changes = snap.diff().unwrap();
        assert!(changes.is_empty(), "{mode:?}: {changes:?}");
    }
    // full: same content and mtime written again is no change (the hash is compared).
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src, "f", b"same");
    old_mtime(&src, "f");
    let mut snap = Snapshotter::new(&src, SnapshotMode::Full, Vec::new()).unwrap();
    write(&src, "f", b"same");
    old_mtime(&src, "f");
    assert!(snap.diff().unwrap().is_empty());
}

/// A directory whose entries came and went (new mtime) is a change in `full` too, as in BuildKit.
#[test]
fn directory_mtime_is_a_change_in_every_mode() {
    for mode in MODES {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        write(&src, "tmp/keep", b"k");
        set_mtime(&src, "tmp", 1_000_000_000);
        let mut snap = Snapshotter::new(&src, mode, Vec::new()).unwrap();
        write(&src, "tmp/scratch", b"s");
        std::fs::remove_file(src.join("tmp/scratch")).unwrap();
        let changes = snap.diff().unwrap();
        assert_eq!(changes.upserts().collect::<Vec<_>>(), vec![Path::new("tmp")], "{mode:?}");
    }
}

/// Full mode over several steps of one snapshotter, taking the hashes the layer writer computed
/// while it read the files (no second read): a same-size rewrite is still found, a rewrite with
/// the same bytes (and a symlink made again to the same target) is not a change, and hashes never
/// recorded make a path compare as changed rather than hide a change.
#[test]
fn full_mode_takes_the_layer_writers_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let store = BlobStore::open(&tmp.path().join("blobs")).unwrap();
    let opts = LayerOptions { content_hashes: true, ..LayerOptions::default() };
    let mut snap = Snapshotter::new(&src, SnapshotMode::Full, Vec::new()).unwrap();
    let step = |snap: &mut Snapshotter, f: &dyn Fn(&Path), record: bool| -> Vec<String> {
        f(&src);
        let changes = snap.diff().unwrap();
        if !changes.is_empty() {
            let info = write_layer(&src, &changes, &opts, &store).unwrap();
            if record {
                snap.hash_pending(Some(&info.content_hashes)).unwrap();
            }
        }
        changes.entries.iter().map(|c| c.path().display().to_string()).collect()
    };
    let paths = step(
        &mut snap,
        &|r| {
            write(r, "f", b"aaaa\n");
            std::os::unix::fs::symlink("target", r.join("l")).unwrap();
        },
        true,
    );
    assert!(paths.contains(&"f".into()) && paths.contains(&"l".into()), "{paths:?}");
    let paths = step(
        &mut snap,
        &|r| {
            write(r, "f", b"bbbb\n");
            old_mtime(r, "f");
        },
        true,
    );
    assert_eq!(paths, vec!["f".to_string()], "same size, new bytes: a change");
    let paths = step(
        &mut snap,
        &|r| {
            write(r, "f", b"bbbb\n");
            old_mtime(r, "f");
            std::fs::remove_file(r.join("l")).unwrap();
            std::os::unix::fs::symlink("target", r.join("l")).unwrap();
        },
        true,
    );
    assert!(paths.is_empty(), "the same bytes and the same link target are no change: {paths:?}");
    // Not recorded: the next diff cannot trust an old hash and reports the path.
    let paths = step(&mut snap, &|r| write(r, "g", b"gggg\n"), false);
    assert_eq!(paths, vec!["g".to_string()]);
    let paths = step(
        &mut snap,
        &|r| {
            write(r, "g", b"gggg\n");
        },
        true,
    );
    assert_eq!(paths, vec!["g".to_string()], "unrecorded hash: compared as changed");
}

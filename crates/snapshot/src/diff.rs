//! Indexing a rootfs and computing what changed since the last index.
//!
//! The index maps every path of the rootfs (relative, no leading `/`) to its stat metadata and,
//! in [`SnapshotMode::Full`], a blake3 hash of its content. A later [`Snapshotter::diff`] walks
//! the tree again, compares, and moves the index forward. In full mode a file whose
//! (dev, ino, size, mtime, ctime) did not move is never read again.

use crate::Error;
use crate::mounts::mounts_below;
use crate::rootdir::{clean_relative, resolve_parents_lexically};
use std::collections::{HashMap, HashSet};
use std::fs::Metadata;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

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

impl Change {
    /// The path the change is about.
    pub fn path(&self) -> &Path {
        match self {
            Change::Upsert(p) | Change::Delete(p) => p,
        }
    }
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

    /// Number of changes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Paths added or modified.
    pub fn upserts(&self) -> impl Iterator<Item = &Path> {
        self.entries.iter().filter_map(|c| match c {
            Change::Upsert(p) => Some(p.as_path()),
            Change::Delete(_) => None,
        })
    }

    /// Paths deleted.
    pub fn deletes(&self) -> impl Iterator<Item = &Path> {
        self.entries.iter().filter_map(|c| match c {
            Change::Delete(p) => Some(p.as_path()),
            Change::Upsert(_) => None,
        })
    }

    /// Sorts by path (parents before children) and removes duplicates.
    pub fn normalize(&mut self) {
        self.entries.sort_by(|a, b| {
            a.path()
                .cmp(b.path())
                .then_with(|| is_delete(a).cmp(&is_delete(b)))
        });
        self.entries.dedup();
    }
}

fn is_delete(c: &Change) -> bool {
    matches!(c, Change::Delete(_))
}

/// More knobs than [`Snapshotter::new`] takes.
#[derive(Debug, Clone, Default)]
pub struct SnapshotOptions {
    /// How changes are detected.
    pub mode: SnapshotMode,
    /// In-image absolute paths never captured (besides /proc, /sys, /dev).
    pub ignore: Vec<PathBuf>,
    /// Threads hashing file contents in full mode (0 = one per CPU).
    pub hash_threads: usize,
}

/// Stat metadata kept per path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: i64,
    mtime_ns: i64,
    ctime: i64,
    ctime_ns: i64,
    dev: u64,
    ino: u64,
    rdev: u64,
}

impl Meta {
    fn of(md: &Metadata) -> Self {
        Self {
            mode: md.mode(),
            uid: md.uid(),
            gid: md.gid(),
            size: md.size(),
            mtime: md.mtime(),
            mtime_ns: md.mtime_nsec(),
            ctime: md.ctime(),
            ctime_ns: md.ctime_nsec(),
            dev: md.dev(),
            ino: md.ino(),
            rdev: md.rdev(),
        }
    }

    fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    fn has_content(&self) -> bool {
        matches!(self.file_type(), libc::S_IFREG | libc::S_IFLNK)
    }

    /// The key content hashes are cached by.
    fn cache_key(&self) -> (u64, u64, u64, i64, i64, i64, i64) {
        (
            self.dev,
            self.ino,
            self.size,
            self.mtime,
            self.mtime_ns,
            self.ctime,
            self.ctime_ns,
        )
    }
}

#[derive(Debug, Clone)]
struct Entry {
    meta: Meta,
    hash: Option<[u8; 32]>,
    seen: u64,
}

/// Outcome of comparing an indexed entry with what is on disk now.
enum Verdict {
    Same,
    Changed,
    /// Full mode: metadata equal but the content may differ; hash and compare.
    CompareContent,
}

fn compare(mode: SnapshotMode, old: &Meta, new: &Meta) -> Verdict {
    if old.file_type() != new.file_type() {
        return Verdict::Changed;
    }
    match mode {
        SnapshotMode::Time => {
            if (old.mtime, old.mtime_ns) != (new.mtime, new.mtime_ns) {
                Verdict::Changed
            } else {
                Verdict::Same
            }
        }
        SnapshotMode::Redo => {
            if old.mode != new.mode
                || old.size != new.size
                || old.uid != new.uid
                || old.gid != new.gid
                || (old.mtime, old.mtime_ns) != (new.mtime, new.mtime_ns)
            {
                Verdict::Changed
            } else {
                Verdict::Same
            }
        }
        SnapshotMode::Full => {
            if old.mode != new.mode
                || old.uid != new.uid
                || old.gid != new.gid
                || old.rdev != new.rdev
            {
                Verdict::Changed
            } else if new.has_content() && old.cache_key() != new.cache_key() {
                if old.size != new.size {
                    Verdict::Changed
                } else {
                    Verdict::CompareContent
                }
            } else {
                // Directories: their own metadata is all a layer records of them.
                Verdict::Same
            }
        }
    }
}

/// Tracks a rootfs between snapshots.
#[derive(Debug)]
pub struct Snapshotter {
    rootfs: PathBuf,
    mode: SnapshotMode,
    ignore: HashSet<PathBuf>,
    index: HashMap<PathBuf, Entry>,
    generation: u64,
    hash_threads: usize,
}

impl Snapshotter {
    /// Indexes `rootfs` now; `ignore` are in-image absolute paths never captured (besides /proc, /sys, /dev).
    pub fn new(rootfs: &Path, mode: SnapshotMode, ignore: Vec<PathBuf>) -> Result<Self, Error> {
        Self::with_options(
            rootfs,
            SnapshotOptions {
                mode,
                ignore,
                hash_threads: 0,
            },
        )
    }

    /// Indexes `rootfs` now with the given options.
    pub fn with_options(rootfs: &Path, opts: SnapshotOptions) -> Result<Self, Error> {
        let mut ignore: HashSet<PathBuf> =
            ["proc", "sys", "dev"].iter().map(PathBuf::from).collect();
        for p in &opts.ignore {
            let rel = clean_relative(p.as_os_str().as_bytes());
            if !rel.as_os_str().is_empty() {
                ignore.insert(rel);
            }
        }
        let hash_threads = match opts.hash_threads {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            n => n,
        };
        let mut snap = Self {
            rootfs: rootfs.to_path_buf(),
            mode: opts.mode,
            ignore,
            index: HashMap::new(),
            generation: 0,
            hash_threads,
        };
        let started = std::time::Instant::now();
        snap.diff()?;
        tracing::debug!(entries = snap.index.len(), elapsed = ?started.elapsed(), mode = ?snap.mode, "rootfs indexed");
        Ok(snap)
    }

    /// The mode changes are detected with.
    pub fn mode(&self) -> SnapshotMode {
        self.mode
    }

    /// Number of paths in the index.
    pub fn indexed(&self) -> usize {
        self.index.len()
    }

    /// Everything that changed since the last snapshot; the index moves forward.
    pub fn diff(&mut self) -> Result<Changes, Error> {
        self.generation += 1;
        let generation = self.generation;
        let walker = Walker::new(&self.rootfs, &self.ignore)?;
        let mode = self.mode;
        let index = &mut self.index;
        let mut upserts: Vec<PathBuf> = Vec::new();
        // (path, whether it is new or changed regardless of content, old hash)
        let mut to_hash: Vec<(PathBuf, bool, Option<[u8; 32]>)> = Vec::new();
        let skipped = walker.walk(Path::new(""), &mut |rel, md| {
            let meta = Meta::of(md);
            match index.get_mut(rel) {
                Some(entry) => {
                    entry.seen = generation;
                    match compare(mode, &entry.meta, &meta) {
                        Verdict::Same => {}
                        Verdict::Changed => {
                            upserts.push(rel.to_path_buf());
                            if mode == SnapshotMode::Full && meta.has_content() {
                                to_hash.push((rel.to_path_buf(), true, None));
                            }
                            entry.hash = None;
                        }
                        Verdict::CompareContent => {
                            to_hash.push((rel.to_path_buf(), false, entry.hash));
                            entry.hash = None;
                        }
                    }
                    entry.meta = meta;
                }
                None => {
                    if mode == SnapshotMode::Full && meta.has_content() {
                        to_hash.push((rel.to_path_buf(), true, None));
                    }
                    upserts.push(rel.to_path_buf());
                    index.insert(
                        rel.to_path_buf(),
                        Entry {
                            meta,
                            hash: None,
                            seen: generation,
                        },
                    );
                }
            }
        })?;
        let hashes = hash_paths(&self.rootfs, &to_hash, self.hash_threads);
        for ((rel, changed, old), hash) in to_hash.into_iter().zip(hashes) {
            let hash = hash.ok();
            if !changed && (old.is_none() || hash.is_none() || old != hash) {
                upserts.push(rel.clone());
            }
            if let Some(entry) = self.index.get_mut(&rel) {
                entry.hash = hash;
            }
        }
        // Paths not seen: deleted, unless they sit under something skipped this time (a mount).
        let mut gone: Vec<PathBuf> = self
            .index
            .iter()
            .filter(|(p, e)| e.seen != generation && !skipped.iter().any(|s| p.starts_with(s)))
            .map(|(p, _)| p.clone())
            .collect();
        for p in &gone {
            self.index.remove(p);
        }
        // What is left unseen is hidden under a mount this time; it is kept, not reported.
        for e in self.index.values_mut() {
            e.seen = generation;
        }
        gone.sort();
        let mut entries: Vec<Change> = upserts.into_iter().map(Change::Upsert).collect();
        entries.extend(self.whiteouts(gone).into_iter().map(Change::Delete));
        let mut changes = Changes { entries };
        changes.normalize();
        if generation > 1 {
            tracing::debug!(changes = changes.len(), "rootfs diff");
        }
        Ok(changes)
    }

    /// The deletions that need a whiteout: none below a directory that is itself deleted or
    /// replaced by a non-directory (the replacement entry hides everything below it).
    fn whiteouts(&self, gone_sorted: Vec<PathBuf>) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        let mut last_deleted: Option<PathBuf> = None;
        for p in gone_sorted {
            if let Some(d) = &last_deleted
                && p.starts_with(d)
            {
                continue;
            }
            let replaced_above = p
                .ancestors()
                .skip(1)
                .filter(|a| !a.as_os_str().is_empty())
                .any(|a| self.index.get(a).is_some_and(|e| !e.meta.is_dir()));
            if replaced_above {
                continue;
            }
            last_deleted = Some(p.clone());
            out.push(p);
        }
        out
    }

    /// Only the given in-image paths (and their parent directories); the index moves forward for them.
    pub fn paths(&mut self, paths: &[PathBuf]) -> Result<Changes, Error> {
        let walker = Walker::new(&self.rootfs, &self.ignore)?;
        let mode = self.mode;
        let generation = self.generation;
        let mut entries: Vec<Change> = Vec::new();
        let mut to_hash: Vec<(PathBuf, bool, Option<[u8; 32]>)> = Vec::new();
        let mut parents: HashSet<PathBuf> = HashSet::new();
        for given in paths {
            let rel = clean_relative(given.as_os_str().as_bytes());
            let rel = resolve_parents_lexically(&self.rootfs, &rel)
                .map_err(|e| Error::io(self.rootfs.join(&rel), e))?;
            if rel.as_os_str().is_empty() || walker.is_ignored(&rel) {
                continue;
            }
            for a in rel
                .ancestors()
                .skip(1)
                .filter(|a| !a.as_os_str().is_empty())
            {
                parents.insert(a.to_path_buf());
            }
            let full = self.rootfs.join(&rel);
            let md = match std::fs::symlink_metadata(&full) {
                Ok(md) => md,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if self.index.contains_key(&rel) {
                        self.index.retain(|p, _| !p.starts_with(&rel));
                        entries.push(Change::Delete(rel));
                    }
                    continue;
                }
                Err(e) => return Err(Error::io(full, e)),
            };
            let mut record = |rel: &Path, md: &Metadata, entries: &mut Vec<Change>| {
                let meta = Meta::of(md);
                if mode == SnapshotMode::Full && meta.has_content() {
                    to_hash.push((rel.to_path_buf(), true, None));
                }
                self.index.insert(
                    rel.to_path_buf(),
                    Entry {
                        meta,
                        hash: None,
                        seen: generation,
                    },
                );
                entries.push(Change::Upsert(rel.to_path_buf()));
            };
            record(&rel, &md, &mut entries);
            if md.is_dir() {
                walker.walk(&rel, &mut |child, md| record(child, md, &mut entries))?;
            }
        }
        for p in parents {
            let full = self.rootfs.join(&p);
            let md = std::fs::symlink_metadata(&full).map_err(|e| Error::io(&full, e))?;
            self.index.insert(
                p.clone(),
                Entry {
                    meta: Meta::of(&md),
                    hash: None,
                    seen: generation,
                },
            );
            entries.push(Change::Upsert(p));
        }
        let hashes = hash_paths(&self.rootfs, &to_hash, self.hash_threads);
        for ((rel, _, _), hash) in to_hash.into_iter().zip(hashes) {
            if let Some(e) = self.index.get_mut(&rel) {
                e.hash = hash.ok();
            }
        }
        let mut changes = Changes { entries };
        changes.normalize();
        Ok(changes)
    }
}

/// Walks a rootfs without following symlinks, skipping ignored paths and mount points.
struct Walker<'a> {
    rootfs: &'a Path,
    ignore: &'a HashSet<PathBuf>,
    mounts: HashSet<PathBuf>,
    root_dev: u64,
}

impl<'a> Walker<'a> {
    fn new(rootfs: &'a Path, ignore: &'a HashSet<PathBuf>) -> Result<Self, Error> {
        let md = std::fs::metadata(rootfs).map_err(|e| Error::io(rootfs, e))?;
        let canonical = std::fs::canonicalize(rootfs).map_err(|e| Error::io(rootfs, e))?;
        Ok(Self {
            rootfs,
            ignore,
            mounts: mounts_below(&canonical).into_iter().collect(),
            root_dev: md.dev(),
        })
    }

    fn is_ignored(&self, rel: &Path) -> bool {
        rel.ancestors()
            .any(|a| self.ignore.contains(a) || self.mounts.contains(a))
    }

    /// Visits everything below `start` (not `start` itself); returns the paths skipped as
    /// mount points or ignored.
    fn walk(
        &self,
        start: &Path,
        visit: &mut dyn FnMut(&Path, &Metadata),
    ) -> Result<Vec<PathBuf>, Error> {
        let mut skipped = Vec::new();
        let mut stack = vec![start.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let host = self.rootfs.join(&dir);
            let reader = match std::fs::read_dir(&host) {
                Ok(r) => r,
                // Removed while we walk (a RUN's background process): it is simply gone.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(host, e)),
            };
            for entry in reader {
                let entry = entry.map_err(|e| Error::io(&host, e))?;
                let rel = dir.join(entry.file_name());
                if self.ignore.contains(&rel) || self.mounts.contains(&rel) {
                    skipped.push(rel);
                    continue;
                }
                let md = match entry.metadata() {
                    Ok(md) => md,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io(self.rootfs.join(&rel), e)),
                };
                if md.is_dir() && md.dev() != self.root_dev {
                    skipped.push(rel);
                    continue;
                }
                visit(&rel, &md);
                if md.is_dir() {
                    stack.push(rel);
                }
            }
        }
        Ok(skipped)
    }
}

/// blake3 of each path's content (a symlink's target), on `threads` threads.
fn hash_paths(
    rootfs: &Path,
    paths: &[(PathBuf, bool, Option<[u8; 32]>)],
    threads: usize,
) -> Vec<io::Result<[u8; 32]>> {
    if paths.is_empty() {
        return Vec::new();
    }
    let threads = threads.clamp(1, paths.len().div_ceil(64).max(1));
    if threads == 1 {
        return paths
            .iter()
            .map(|(p, _, _)| hash_one(&rootfs.join(p)))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<io::Result<[u8; 32]>>> = (0..paths.len()).map(|_| None).collect();
    let chunks: Vec<Vec<(usize, io::Result<[u8; 32]>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let start = next.fetch_add(64, Ordering::Relaxed);
                        if start >= paths.len() {
                            break;
                        }
                        for (i, (p, _, _)) in paths.iter().enumerate().skip(start).take(64) {
                            out.push((i, hash_one(&rootfs.join(p))));
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for chunk in chunks {
        for (i, r) in chunk {
            results[i] = Some(r);
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(io::Error::other("hash worker failed"))))
        .collect()
}

fn hash_one(path: &Path) -> io::Result<[u8; 32]> {
    let md = std::fs::symlink_metadata(path)?;
    let mut hasher = blake3::Hasher::new();
    if md.file_type().is_symlink() {
        hasher.update(b"symlink:");
        hasher.update(std::fs::read_link(path)?.as_os_str().as_bytes());
    } else {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(*hasher.finalize().as_bytes())
}

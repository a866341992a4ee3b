//! Indexing a rootfs and computing what changed since the last index.
//!
//! The index maps every path of the rootfs (relative, no leading `/`) to its stat metadata and,
//! in [`SnapshotMode::Full`], a blake3 hash of its content. A later [`Snapshotter::diff`] walks
//! the tree again, compares, and moves the index forward. In full mode a file whose
//! (dev, ino, size, mtime, ctime) did not move is never read again.

use crate::Error;
use crate::fasthash::{FxHashMap, FxHashSet};
use crate::rootdir::{clean_relative, resolve_parents_lexically};
use crate::walk::{Key, Meta, Walker, join, key_of, path_of};
use rustix::fs::{Mode, OFlags};
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How a change is detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotMode {
    /// Content compared (hashes cached by inode, size and times).
    #[default]
    Full,
    /// Metadata only, no content read: type, mode, uid, gid, size, mtime, and the ctime and
    /// inode number, which every write and rename sets and no program can set back (directories:
    /// mode, owner, mtime, xattrs).
    Redo,
    /// mtime only (and the file type): misses a rewrite whose mtime is put back, a chmod, chown
    /// or xattr change, and a rename over the path of a file with the same mtime.
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
            crate::walk::path_order(a.path().as_os_str().as_bytes(), b.path().as_os_str().as_bytes()).then_with(|| is_delete(a).cmp(&is_delete(b)))
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
    /// In-image absolute paths never captured (nothing else is left out by name).
    pub ignore: Vec<PathBuf>,
    /// Threads walking the tree and hashing file contents (0 = one per CPU).
    pub hash_threads: usize,
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
    let mtime_moved = (old.mtime, old.mtime_ns) != (new.mtime, new.mtime_ns);
    let owner_or_mode_moved = old.mode != new.mode || old.uid != new.uid || old.gid != new.gid || old.rdev != new.rdev;
    match mode {
        SnapshotMode::Time => {
            if mtime_moved {
                Verdict::Changed
            } else {
                Verdict::Same
            }
        }
        SnapshotMode::Redo => {
            if owner_or_mode_moved || mtime_moved {
                Verdict::Changed
            } else if new.is_dir() {
                // All a layer records of a directory is its own metadata; its ctime also moves
                // when strata's mount stubs come and go, so it is not compared.
                if old.xattrs != new.xattrs { Verdict::Changed } else { Verdict::Same }
            } else if old.size != new.size || old.ino != new.ino || (old.ctime, old.ctime_ns) != (new.ctime, new.ctime_ns) {
                // Every write, chmod, chown, xattr change or rename sets the ctime, and a rename
                // over the path brings another inode: no program can put those back, unlike
                // the mtime (`cp -p`, `tar -x`, `rsync -a`, `touch -d`).
                Verdict::Changed
            } else {
                Verdict::Same
            }
        }
        SnapshotMode::Full => {
            if owner_or_mode_moved {
                Verdict::Changed
            } else if new.has_content() && old.cache_key() != new.cache_key() {
                if old.size != new.size { Verdict::Changed } else { Verdict::CompareContent }
            } else if new.is_dir() && (mtime_moved || old.xattrs != new.xattrs) {
                // As BuildKit: a directory whose entries came and went has a new mtime to record.
                Verdict::Changed
            } else {
                Verdict::Same
            }
        }
    }
}

/// The latest ctime among `metas` (seconds, nanoseconds).
fn newest_ctime<'a>(metas: impl Iterator<Item = &'a Meta>) -> (i64, i64) {
    metas.map(|m| (m.ctime, m.ctime_ns)).max().unwrap_or((i64::MIN, 0))
}

/// Waits until a change made from now on gets a ctime later than `newest` (the latest ctime just
/// indexed), so a rewrite in the same clock tick as the index cannot look unchanged. The kernel
/// stamps files from the coarse realtime clock, truncated to the file system's granularity: a
/// ctime without nanoseconds is taken as a whole-second file system. Usually returns at once (the
/// newest change is older than the walk); at most one tick, or up to a second on such a file
/// system.
fn settle(newest: (i64, i64)) {
    use rustix::time::{ClockId, clock_gettime};
    let whole_seconds = newest.1 == 0;
    let started = std::time::Instant::now();
    loop {
        let now = clock_gettime(ClockId::RealtimeCoarse);
        let past = if whole_seconds { now.tv_sec > newest.0 } else { (now.tv_sec, now.tv_nsec) > newest };
        // A ctime far in the future means the clock was set back: waiting would not help.
        if past || newest.0 > now.tv_sec.saturating_add(2) || started.elapsed() > std::time::Duration::from_millis(1500) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A path whose content must be hashed: whether it is changed regardless, and its old hash.
struct HashJob {
    key: Key,
    changed: bool,
    old: Option<[u8; 32]>,
}

/// Content hashes of files a layer writer read anyway (full mode's index takes them instead of
/// reading the files a second time), keyed by the paths of [`Changes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentHashes(pub(crate) FxHashMap<PathBuf, [u8; 32]>);

impl ContentHashes {
    /// Number of hashes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Tracks a rootfs between snapshots.
#[derive(Debug)]
pub struct Snapshotter {
    rootfs: PathBuf,
    mode: SnapshotMode,
    ignore: FxHashSet<Key>,
    index: FxHashMap<Key, Entry>,
    generation: u64,
    threads: usize,
    /// Full mode: new or changed paths of the last diff whose content hash is still to come,
    /// from [`Snapshotter::hash_pending`]. Left unhashed, they compare as changed next time.
    pending: Vec<Key>,
}

impl Snapshotter {
    /// Indexes `rootfs` now; `ignore` are in-image absolute paths never captured.
    pub fn new(rootfs: &Path, mode: SnapshotMode, ignore: Vec<PathBuf>) -> Result<Self, Error> {
        Self::with_options(rootfs, SnapshotOptions { mode, ignore, hash_threads: 0 })
    }

    /// Indexes `rootfs` now with the given options.
    pub fn with_options(rootfs: &Path, opts: SnapshotOptions) -> Result<Self, Error> {
        // /proc, /sys and /dev are not left out by name: what COPY or ADD puts there belongs
        // to the image (BuildKit keeps it). What a RUN's mounts show there never reaches the
        // tree: they live in the RUN's own mount namespace, the mount points it had to create
        // are removed afterwards, and the walker never enters a mount point. A build in `/`
        // passes the container's own /proc, /sys and /dev in `ignore`.
        let mut ignore: FxHashSet<Key> = FxHashSet::default();
        for p in &opts.ignore {
            let rel = clean_relative(p.as_os_str().as_bytes());
            if !rel.as_os_str().is_empty() {
                ignore.insert(key_of(&rel));
            }
        }
        let threads = match opts.hash_threads {
            0 => crate::cpu_budget(usize::MAX),
            n => n,
        };
        let mut snap = Self { rootfs: rootfs.to_path_buf(), mode: opts.mode, ignore, index: FxHashMap::default(), generation: 0, threads, pending: Vec::new() };
        let started = std::time::Instant::now();
        snap.scan(false)?;
        snap.hash_pending(None)?;
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

    /// Everything that changed since the last snapshot; the index moves forward. In full mode
    /// the content of new and changed files is hashed by [`Snapshotter::hash_pending`], which
    /// must run before the tree changes again (a layer writer passes the hashes it computed
    /// while reading the same files; without it they compare as changed next time).
    pub fn diff(&mut self) -> Result<Changes, Error> {
        self.scan(true)
    }

    /// Records the content hashes of the last diff's new and changed files: those in `known`
    /// (from [`crate::LayerInfo::content_hashes`]) as given, the rest read now.
    pub fn hash_pending(&mut self, known: Option<&ContentHashes>) -> Result<(), Error> {
        let pending = std::mem::take(&mut self.pending);
        let mut jobs: Vec<HashJob> = Vec::new();
        for key in pending {
            let Some(entry) = self.index.get_mut(&key) else { continue };
            match known.and_then(|k| k.0.get(&path_of(&key))) {
                Some(h) => entry.hash = Some(*h),
                None => jobs.push(HashJob { key, changed: true, old: None }),
            }
        }
        let hashes = hash_paths(&self.rootfs, &jobs, self.threads);
        for (job, hash) in jobs.into_iter().zip(hashes) {
            if let Some(entry) = self.index.get_mut(&job.key) {
                entry.hash = hash.ok();
            }
        }
        Ok(())
    }

    /// Walks the tree and moves the index forward; builds the change set only if `report`
    /// (the first index of a tree has no use for 100k "added" entries).
    fn scan(&mut self, report: bool) -> Result<Changes, Error> {
        // Hashes never recorded: the content they stood for is gone; those paths compare as
        // changed (conservative, never a missed change).
        self.pending.clear();
        self.generation += 1;
        let generation = self.generation;
        let walker = Walker::new(&self.rootfs, &self.ignore, self.threads)?;
        let walked = walker.walk(b"")?;
        let newest = newest_ctime(walked.entries.iter().map(|(_, m)| m));
        let mode = self.mode;
        let mut upserts: Vec<Key> = Vec::new();
        let mut jobs: Vec<HashJob> = Vec::new();
        for (key, meta) in walked.entries {
            match self.index.get_mut(&key) {
                Some(entry) => {
                    entry.seen = generation;
                    match compare(mode, &entry.meta, &meta) {
                        Verdict::Same => {}
                        Verdict::Changed => {
                            if mode == SnapshotMode::Full && meta.has_content() {
                                self.pending.push(key.clone());
                            }
                            entry.hash = None;
                            upserts.push(key);
                        }
                        Verdict::CompareContent => {
                            jobs.push(HashJob { key, changed: false, old: entry.hash });
                            entry.hash = None;
                        }
                    }
                    entry.meta = meta;
                }
                None => {
                    if mode == SnapshotMode::Full && meta.has_content() {
                        self.pending.push(key.clone());
                    }
                    if report {
                        self.index.insert(key.clone(), Entry { meta, hash: None, seen: generation });
                        upserts.push(key);
                    } else {
                        self.index.insert(key, Entry { meta, hash: None, seen: generation });
                    }
                }
            }
        }
        let hashes = hash_paths(&self.rootfs, &jobs, self.threads);
        for (job, hash) in jobs.into_iter().zip(hashes) {
            let hash = hash.ok();
            if !job.changed && (job.old.is_none() || hash.is_none() || job.old != hash) {
                upserts.push(job.key.clone());
            }
            if let Some(entry) = self.index.get_mut(&job.key) {
                entry.hash = hash;
            }
        }
        // Paths not seen: deleted, unless they sit under something skipped this time (a mount).
        let skipped: Vec<PathBuf> = walked.skipped.iter().map(|k| path_of(k)).collect();
        let mut gone: Vec<PathBuf> = Vec::new();
        self.index.retain(|k, e| {
            if e.seen == generation {
                return true;
            }
            let p = path_of(k);
            if skipped.iter().any(|s| p.starts_with(s)) {
                // Hidden under a mount this time: kept, not reported.
                e.seen = generation;
                return true;
            }
            gone.push(p);
            false
        });
        if mode != SnapshotMode::Time {
            settle(newest);
        }
        if !report {
            return Ok(Changes::default());
        }
        gone.sort();
        let mut entries: Vec<Change> = upserts.iter().map(|k| Change::Upsert(path_of(k))).collect();
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
            let replaced_above =
                p.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()).any(|a| self.index.get(a.as_os_str().as_bytes()).is_some_and(|e| !e.meta.is_dir()));
            if replaced_above {
                continue;
            }
            last_deleted = Some(p.clone());
            out.push(p);
        }
        out
    }

    /// Only the given in-image paths (and their parent directories); the index moves forward for
    /// them. In full mode, [`Snapshotter::hash_pending`] follows as after [`Snapshotter::diff`].
    pub fn paths(&mut self, paths: &[PathBuf]) -> Result<Changes, Error> {
        let walker = Walker::new(&self.rootfs, &self.ignore, self.threads)?;
        let mode = self.mode;
        let generation = self.generation;
        let mut upserts: Vec<Key> = Vec::new();
        let mut deletes: Vec<PathBuf> = Vec::new();
        let mut parents: FxHashSet<Key> = FxHashSet::default();
        for given in paths {
            let rel = clean_relative(given.as_os_str().as_bytes());
            let rel = resolve_parents_lexically(&self.rootfs, &rel).map_err(|e| Error::io(self.rootfs.join(&rel), e))?;
            let key = key_of(&rel);
            if key.is_empty() || walker.is_ignored(&key) {
                continue;
            }
            for a in rel.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
                parents.insert(key_of(a));
            }
            let full = self.rootfs.join(&rel);
            let st = match rustix::fs::lstat(&full) {
                Ok(st) => st,
                Err(rustix::io::Errno::NOENT) => {
                    if self.index.contains_key(&key) {
                        let prefix = join(&key, b"");
                        self.index.retain(|k, _| **k != *key && !k.starts_with(&prefix));
                        deletes.push(rel);
                    }
                    continue;
                }
                Err(e) => return Err(Error::io(full, e.into())),
            };
            let mut meta = Meta::of(&st);
            let mut found = Vec::new();
            if meta.is_dir() {
                let mut walked = walker.walk(&key)?;
                // The walk read `key` itself too: its xattr digest is among the walk's.
                if let Some((_, d)) = walked.dir_xattrs.iter().find(|(k, _)| **k == *key) {
                    meta.xattrs = *d;
                }
                walked.attach_xattrs();
                found.extend(walked.entries);
            }
            found.insert(0, (key.clone(), meta));
            for (k, meta) in found {
                self.index.insert(k.clone(), Entry { meta, hash: None, seen: generation });
                upserts.push(k);
            }
        }
        for p in parents {
            let full = self.rootfs.join(path_of(&p));
            let st = rustix::fs::lstat(&full).map_err(|e| Error::io(&full, e.into()))?;
            let mut meta = Meta::of(&st);
            if meta.is_dir() {
                meta.xattrs = dir_xattr_digest(&full);
            }
            self.index.insert(p.clone(), Entry { meta, hash: None, seen: generation });
            upserts.push(p);
        }
        self.pending.clear();
        if mode == SnapshotMode::Full {
            self.pending = upserts.iter().filter(|k| self.index.get(*k).is_some_and(|e| e.meta.has_content())).cloned().collect();
        }
        if mode != SnapshotMode::Time {
            settle(newest_ctime(upserts.iter().filter_map(|k| self.index.get(k)).map(|e| &e.meta)));
        }
        let mut entries: Vec<Change> = upserts.iter().map(|k| Change::Upsert(path_of(k))).collect();
        entries.extend(deletes.into_iter().map(Change::Delete));
        let mut changes = Changes { entries };
        changes.normalize();
        Ok(changes)
    }
}

/// The xattr digest of the directory at the host path `full` (0 if it cannot be opened).
fn dir_xattr_digest(full: &Path) -> u64 {
    match rustix::fs::open(full, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => crate::walk::xattr_digest(fd.as_fd()),
        Err(_) => 0,
    }
}

/// blake3 of each job's content (a symlink's target), on `threads` threads.
fn hash_paths(rootfs: &Path, jobs: &[HashJob], threads: usize) -> Vec<io::Result<[u8; 32]>> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let root = match rustix::fs::open(rootfs, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => return jobs.iter().map(|_| Err(io::Error::from(e))).collect(),
    };
    const CHUNK: usize = 64;
    let threads = threads.clamp(1, jobs.len().div_ceil(CHUNK));
    let hash = |job: &HashJob| hash_one(root.as_fd(), &job.key);
    if threads == 1 {
        return jobs.iter().map(hash).collect();
    }
    let next = AtomicUsize::new(0);
    let chunks: Vec<Vec<(usize, io::Result<[u8; 32]>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                        if start >= jobs.len() {
                            break;
                        }
                        for (i, job) in jobs.iter().enumerate().skip(start).take(CHUNK) {
                            out.push((i, hash(job)));
                        }
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    let mut results: Vec<Option<io::Result<[u8; 32]>>> = (0..jobs.len()).map(|_| None).collect();
    for chunk in chunks {
        for (i, r) in chunk {
            results[i] = Some(r);
        }
    }
    results.into_iter().map(|r| r.unwrap_or_else(|| Err(io::Error::other("hash worker failed")))).collect()
}

/// The content hasher of a regular file with these xattrs, ready for its bytes: full mode's
/// index and the layer writer (which hashes what it reads anyway) must agree on it.
pub(crate) fn file_hasher(xattrs: &[(Vec<u8>, Vec<u8>)]) -> blake3::Hasher {
    let mut hasher = blake3::Hasher::new();
    // A layer records the xattrs too, and `setcap` changes nothing else.
    for (k, v) in xattrs {
        hasher.update(b"xattr:");
        hasher.update(&(k.len() as u64).to_le_bytes());
        hasher.update(k);
        hasher.update(&(v.len() as u64).to_le_bytes());
        hasher.update(v);
    }
    hasher.update(b"content:");
    hasher
}

/// The content hash of a symlink with this target.
pub(crate) fn symlink_hash(target: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"symlink:");
    hasher.update(target);
    *hasher.finalize().as_bytes()
}

/// blake3 of the file `rel` under `root`, or of a symlink's target. Opened relative to the
/// root fd without following a final symlink (and non-blocking, should a FIFO appear).
fn hash_one(root: BorrowedFd<'_>, rel: &[u8]) -> io::Result<[u8; 32]> {
    let path = OsStr::from_bytes(rel);
    match crate::walk::openat_long(root, rel, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY) {
        Ok(fd) => {
            let mut hasher = file_hasher(&crate::layer::read_xattrs_fd(fd.as_fd()));
            let mut file = std::fs::File::from(fd);
            let mut buf = [0u8; 64 * 1024];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            Ok(*hasher.finalize().as_bytes())
        }
        Err(rustix::io::Errno::LOOP) => Ok(symlink_hash(&rustix::fs::readlinkat(root, path, Vec::new())?.into_bytes())),
        Err(e) => Err(e.into()),
    }
}

//! Walking a rootfs in parallel without following symlinks, skipping ignored paths and mount
//! points. Paths are raw bytes relative to the root (no leading `/`), which is what the index
//! keys on.

use crate::Error;
use crate::fasthash::FxHashSet;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

/// A path relative to the rootfs, as bytes.
pub type Key = Box<[u8]>;

/// Stat metadata kept per path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub mtime_ns: i64,
    pub ctime: i64,
    pub ctime_ns: i64,
    pub dev: u64,
    pub ino: u64,
    pub rdev: u64,
    /// Directories: a digest of the xattrs a layer would record (0: none, or not read).
    pub xattrs: u64,
}

impl Meta {
    /// From a raw stat.
    pub fn of(st: &rustix::fs::Stat) -> Self {
        Self {
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
            size: st.st_size as u64,
            mtime: st.st_mtime,
            mtime_ns: st.st_mtime_nsec as i64,
            ctime: st.st_ctime,
            ctime_ns: st.st_ctime_nsec as i64,
            dev: st.st_dev,
            ino: st.st_ino,
            rdev: st.st_rdev,
            xattrs: 0,
        }
    }

    /// The `S_IFMT` bits.
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    /// Regular files and symlinks: what full mode hashes.
    pub fn has_content(&self) -> bool {
        matches!(self.file_type(), libc::S_IFREG | libc::S_IFLNK)
    }

    /// The key content hashes are cached by.
    pub fn cache_key(&self) -> (u64, u64, u64, i64, i64, i64, i64) {
        (self.dev, self.ino, self.size, self.mtime, self.mtime_ns, self.ctime, self.ctime_ns)
    }
}

/// A digest of the xattrs of the open file `fd` that a layer records (0 when it has none).
pub fn xattr_digest(fd: BorrowedFd<'_>) -> u64 {
    let xattrs = crate::layer::read_xattrs_fd(fd);
    if xattrs.is_empty() {
        return 0;
    }
    let mut h = blake3::Hasher::new();
    for (k, v) in &xattrs {
        h.update(&(k.len() as u64).to_le_bytes());
        h.update(k);
        h.update(&(v.len() as u64).to_le_bytes());
        h.update(v);
    }
    let b = h.finalize();
    let mut w = [0u8; 8];
    w.copy_from_slice(&b.as_bytes()[..8]);
    u64::from_le_bytes(w).max(1)
}

/// Longest relative path handed to one `openat`: longer ones (a hostile tree deeper than
/// PATH_MAX) are opened piece by piece.
const PATH_CHUNK: usize = 3072;

/// Paths longer than this are deep: their first subdirectory is read through its parent's fd.
const DEEP: usize = 512;

/// `openat(dir, rel, flags)` for a relative path of any length: past [`PATH_CHUNK`] bytes the
/// path is opened in pieces (each piece's last component with `flags`, so with `NOFOLLOW` the
/// intermediate pieces' ends are never symlinks either).
pub fn openat_long(dir: BorrowedFd<'_>, rel: &[u8], flags: OFlags) -> Result<OwnedFd, Errno> {
    if rel.len() <= PATH_CHUNK {
        return rustix::fs::openat(dir, OsStr::from_bytes(rel), flags, Mode::empty());
    }
    let mut cur: Option<OwnedFd> = None;
    let mut rest = rel;
    while !rest.is_empty() {
        let cut = if rest.len() <= PATH_CHUNK {
            rest.len()
        } else {
            // The last '/' within the chunk; a single component longer than that is refused
            // by the kernel anyway (NAME_MAX).
            rest[..PATH_CHUNK].iter().rposition(|b| *b == b'/').ok_or(Errno::NAMETOOLONG)?
        };
        let piece = &rest[..cut];
        rest = rest.get(cut + 1..).unwrap_or(&[]);
        let piece_flags = if rest.is_empty() { flags } else { OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC };
        let base = match &cur {
            Some(fd) => fd.as_fd(),
            None => dir,
        };
        cur = Some(rustix::fs::openat(base, OsStr::from_bytes(piece), piece_flags, Mode::empty())?);
    }
    cur.ok_or(Errno::INVAL)
}

/// Orders relative paths as `Path` does (component by component, so a directory's entries follow
/// it directly), but as bytes with `/` below every other byte: no component parsing.
pub fn path_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let n = a.len().min(b.len());
    // The common prefix by 64-byte blocks (memcmp), then the first differing byte.
    let mut i = 0;
    while i + 64 <= n && a[i..i + 64] == b[i..i + 64] {
        i += 64;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    if i == n {
        return a.len().cmp(&b.len());
    }
    let map = |c: u8| if c == b'/' { 0 } else { u16::from(c) + 1 };
    map(a[i]).cmp(&map(b[i]))
}

/// Joins a relative key and a name.
pub fn join(dir: &[u8], name: &[u8]) -> Key {
    let mut v = Vec::with_capacity(dir.len() + 1 + name.len());
    if !dir.is_empty() {
        v.extend_from_slice(dir);
        v.push(b'/');
    }
    v.extend_from_slice(name);
    v.into_boxed_slice()
}

/// The key of a relative path.
pub fn key_of(p: &Path) -> Key {
    p.as_os_str().as_bytes().into()
}

/// The path of a key.
pub fn path_of(k: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(k))
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Walked {
    /// Every path below the start, with its metadata (order unspecified).
    pub entries: Vec<(Key, Meta)>,
    /// Paths not descended into: ignored, or mount points.
    pub skipped: Vec<Key>,
    /// Directories below the start (and the start) that carry xattrs, with their digest.
    pub dir_xattrs: Vec<(Key, u64)>,
}

impl Walked {
    /// Puts each directory's xattr digest into its entry's metadata.
    pub fn attach_xattrs(&mut self) {
        if self.dir_xattrs.is_empty() {
            return;
        }
        let digests: crate::fasthash::FxHashMap<Key, u64> = std::mem::take(&mut self.dir_xattrs).into_iter().collect();
        for (k, meta) in &mut self.entries {
            if let Some(d) = digests.get(k) {
                meta.xattrs = *d;
            }
        }
    }
}

/// Walk settings.
#[derive(Debug)]
pub struct Walker<'a> {
    pub rootfs: &'a Path,
    pub ignore: &'a FxHashSet<Key>,
    pub mounts: FxHashSet<Key>,
    pub root_dev: u64,
    pub threads: usize,
    root: OwnedFd,
}

struct Queue {
    dirs: Vec<Key>,
    active: usize,
    failed: Option<Error>,
}

impl<'a> Walker<'a> {
    /// Prepares a walk of `rootfs` (mount points are read now).
    pub fn new(rootfs: &'a Path, ignore: &'a FxHashSet<Key>, threads: usize) -> Result<Self, Error> {
        let root = rustix::fs::open(rootfs, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| Error::io(rootfs, e.into()))?;
        let st = rustix::fs::fstat(&root).map_err(|e| Error::io(rootfs, e.into()))?;
        let canonical = std::fs::canonicalize(rootfs).map_err(|e| Error::io(rootfs, e))?;
        let mounts = crate::mounts::mounts_below(&canonical).iter().map(|p| key_of(p)).collect();
        Ok(Self { rootfs, ignore, mounts, root_dev: st.st_dev, threads: threads.max(1), root })
    }

    /// Whether `rel` or one of its parents is ignored or a mount point.
    pub fn is_ignored(&self, rel: &[u8]) -> bool {
        let mut end = rel.len();
        loop {
            let prefix = &rel[..end];
            if self.ignore.contains(prefix) || self.mounts.contains(prefix) {
                return true;
            }
            match prefix.iter().rposition(|b| *b == b'/') {
                Some(i) => end = i,
                None => return false,
            }
        }
    }

    /// Lists everything below the directory `start` (`b""` for the root), not `start` itself.
    pub fn walk(&self, start: &[u8]) -> Result<Walked, Error> {
        let queue = Mutex::new(Queue { dirs: vec![start.into()], active: 0, failed: None });
        let cv = Condvar::new();
        let results: Vec<Walked> = if self.threads == 1 {
            vec![self.worker(&queue, &cv)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..self.threads).map(|_| s.spawn(|| self.worker(&queue, &cv))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
            })
        };
        let q = queue.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = q.failed {
            return Err(e);
        }
        let mut out = Walked::default();
        for mut r in results {
            out.entries.append(&mut r.entries);
            out.skipped.append(&mut r.skipped);
            out.dir_xattrs.append(&mut r.dir_xattrs);
        }
        out.attach_xattrs();
        Ok(out)
    }

    fn worker(&self, queue: &Mutex<Queue>, cv: &Condvar) -> Walked {
        let mut out = Walked::default();
        loop {
            let dir = {
                let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if q.failed.is_some() {
                        return out;
                    }
                    if let Some(d) = q.dirs.pop() {
                        q.active += 1;
                        break d;
                    }
                    if q.active == 0 {
                        cv.notify_all();
                        return out;
                    }
                    q = cv.wait(q).unwrap_or_else(|p| p.into_inner());
                }
            };
            let mut subdirs = Vec::new();
            let mut next: Option<(Key, OwnedFd)> = None;
            let mut result = self.read_one(&dir, None, &mut out, &mut subdirs, &mut next);
            // Deep below the root, the first subdirectory is read right here through the fd
            // opened from its parent: a chain of thousands of levels then costs one lookup per
            // level, not a walk from the root for each (and no path outgrows PATH_MAX).
            while result.is_ok()
                && let Some((key, fd)) = next.take()
            {
                result = self.read_one(&key, Some(fd), &mut out, &mut subdirs, &mut next);
            }
            let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
            q.active -= 1;
            if let Err(e) = result {
                q.failed.get_or_insert(e);
            }
            q.dirs.extend(subdirs);
            cv.notify_all();
        }
    }

    /// Lists `dir` (opened here unless `opened`); subdirectories go to `subdirs`, or one of
    /// them, opened, to `next` when `dir` is deep.
    fn read_one(&self, dir: &[u8], opened: Option<OwnedFd>, out: &mut Walked, subdirs: &mut Vec<Key>, next: &mut Option<(Key, OwnedFd)>) -> Result<(), Error> {
        let host = || self.rootfs.join(OsStr::from_bytes(dir));
        let path: &[u8] = if dir.is_empty() { b"." } else { dir };
        let opened = match opened {
            Some(fd) => Ok(fd),
            None => openat_long(self.root.as_fd(), path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC),
        };
        let fd = match opened {
            Ok(fd) => fd,
            // Removed (or replaced) while we walk, e.g. by a RUN's leftover process: gone.
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(()),
            Err(e) => return Err(Error::io(host(), e.into())),
        };
        if !dir.is_empty() {
            // One syscall per directory (a layer records a directory's xattrs, and a RUN may
            // change nothing else about it).
            let digest = xattr_digest(fd.as_fd());
            if digest != 0 {
                out.dir_xattrs.push((dir.into(), digest));
            }
        }
        let mut reader = rustix::fs::Dir::read_from(&fd).map_err(|e| Error::io(host(), e.into()))?;
        while let Some(entry) = reader.read() {
            let entry = entry.map_err(|e| Error::io(host(), e.into()))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let rel = join(dir, name);
            if self.ignore.contains(&rel) || self.mounts.contains(&rel) {
                out.skipped.push(rel);
                continue;
            }
            let st = match rustix::fs::statat(&fd, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => {
                    return Err(Error::io(self.rootfs.join(OsStr::from_bytes(&rel)), e.into()));
                }
            };
            let meta = Meta::of(&st);
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                if st.st_dev != self.root_dev {
                    out.skipped.push(rel);
                    continue;
                }
                if next.is_none()
                    && rel.len() > DEEP
                    && let Ok(sub) =
                        rustix::fs::openat(&fd, entry.file_name(), OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                {
                    *next = Some((rel.clone(), sub));
                } else {
                    subdirs.push(rel.clone());
                }
            }
            out.entries.push((rel, meta));
        }
        Ok(())
    }
}

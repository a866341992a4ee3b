//! Applying a layer (gzip, zstd or plain tar, detected from its bytes) to a rootfs.
//!
//! Every entry is applied through directory file descriptors obtained from [`Root`], so no entry
//! name, `..`, absolute path or symlink (already on disk or created by an earlier entry) can
//! make a write land outside the rootfs. The last component of a name is always handled with
//! `*at` calls that do not follow symlinks.

use crate::Error;
use crate::compression;
use crate::digest_io::HashingReader;
use crate::fasthash::FxHashSet;
use crate::rootdir::{self, Root, clean_relative, split_parent};
use crate::whiteout::{self, Whiteout};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How large one layer's uncompressed stream may grow: a few KB of gzip can inflate to 50 GB,
/// and the stream is written to disk as it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerSizeLimit {
    /// At most this many times the compressed size, but never less than [`crate::RATIO_FLOOR`] bytes
    /// (small layers holding a file of zeros stay fine).
    Ratio(u64),
    /// At most this many bytes.
    Bytes(u64),
    /// No bound (trusted input only).
    Unlimited,
}

/// The least a [`LayerSizeLimit::Ratio`] allows: 1 GiB.
pub const RATIO_FLOOR: u64 = 1 << 30;

impl Default for LayerSizeLimit {
    /// 100 times the compressed size (layers rarely pass 10x), at least 1 GiB.
    fn default() -> Self {
        Self::Ratio(100)
    }
}

impl LayerSizeLimit {
    /// The bound in bytes for a layer of `compressed` bytes (None: unbounded).
    pub fn bound(&self, compressed: u64) -> Option<u64> {
        match *self {
            Self::Ratio(r) => Some(r.saturating_mul(compressed).max(RATIO_FLOOR)),
            Self::Bytes(b) => Some(b),
            Self::Unlimited => None,
        }
    }

    /// Parses `100x` (a ratio), `20GiB`, `500MB`, `123456` (bytes) or `none`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("unlimited") {
            return Ok(Self::Unlimited);
        }
        if let Some(r) = t.strip_suffix(['x', 'X']) {
            return match r.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(Self::Ratio(n)),
                _ => Err(format!("{text:?}: a ratio is a whole number above 0 followed by x, as in 100x")),
            };
        }
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(digits);
        let n: u64 = num.parse().map_err(|_| format!("{text:?}: expected a size (20GiB, 500MB, bytes), a ratio (100x) or none"))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1000,
            "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            "t" | "tb" => 1_000_000_000_000,
            "tib" => 1 << 40,
            _ => return Err(format!("{text:?}: unknown unit {unit:?} (use B, KB, KiB, MB, MiB, GB, GiB, TB, TiB, or x for a ratio)")),
        };
        let bytes = n.checked_mul(mult).ok_or_else(|| format!("{text:?}: too large"))?;
        if bytes == 0 {
            return Err(format!("{text:?}: a limit of 0 bytes would refuse every layer (use none for no limit)"));
        }
        Ok(Self::Bytes(bytes))
    }
}

impl std::fmt::Display for LayerSizeLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ratio(r) => write!(f, "{r}x the compressed size, at least 1 GiB,"),
            Self::Bytes(b) => match *b {
                b if b % (1 << 30) == 0 => write!(f, "{} GiB", b >> 30),
                b if b % (1 << 20) == 0 => write!(f, "{} MiB", b >> 20),
                b if b % (1 << 10) == 0 => write!(f, "{} KiB", b >> 10),
                b => write!(f, "{b} bytes"),
            },
            Self::Unlimited => write!(f, "none"),
        }
    }
}

/// How to apply a layer.
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// `sha256:<hex>` the uncompressed stream must hash to.
    pub expected_diff_id: Option<String>,
    /// Running without real root: skip device nodes (with one warning) and ownership changes that fail.
    pub rootless: bool,
    /// The layer's blob digest, named in every error (optional).
    pub layer_digest: Option<String>,
    /// Paths never written, replaced or removed (the build's own files when the root is `/`).
    pub keep: rootdir::KeepPaths,
    /// How large the uncompressed stream may grow.
    pub size_limit: LayerSizeLimit,
    /// The blob's size, for a [`LayerSizeLimit::Ratio`] (when None, the compressed bytes read so
    /// far are used).
    pub compressed_size: Option<u64>,
}

/// What unpacking did.
#[derive(Debug, Clone, Default)]
pub struct UnpackStats {
    /// Entries written.
    pub entries: u64,
    /// Whiteouts applied.
    pub whiteouts: u64,
    /// `sha256:<hex>` of the uncompressed stream.
    pub diff_id: String,
    /// Device nodes skipped because we run rootless.
    pub skipped_devices: u64,
    /// Uncompressed bytes read.
    pub tar_size: u64,
}

/// Applies the layer read from `reader` to the directory `rootfs`.
pub fn unpack_layer<R: Read + Send>(reader: R, rootfs: &Path, opts: &UnpackOptions) -> Result<UnpackStats, Error> {
    let result = unpack_inner(reader, rootfs, opts);
    match (&opts.layer_digest, result) {
        // Names the digest itself.
        (_, Err(e @ Error::LayerTooLarge { .. })) => Err(e),
        (Some(digest), Err(e)) => Err(Error::InLayer { digest: digest.clone(), source: Box::new(e) }),
        (_, r) => r,
    }
}

/// State carried across the entries of one layer.
struct Apply<'a> {
    root: Root,
    opts: &'a UnpackOptions,
    /// Every path written by this layer and all their ancestors: an opaque whiteout keeps them.
    unpacked: FxHashSet<PathBuf>,
    /// Directory times are set at the end, because writing children changes them.
    dir_times: Vec<(PathBuf, Timestamps)>,
    stats: UnpackStats,
    warned_xattr: bool,
    /// The parent directory of the previous entry, kept open. Sound because an entry only ever
    /// changes what is inside its parent, never the parent itself: entries in the same
    /// directory follow each other, and each lookup is one component from here.
    parent: Option<(PathBuf, OwnedFd)>,
    /// The previous entry when it was a directory, kept open for the next entry only (its
    /// first child, in a layer written parents first): a deep tree costs one lookup per level.
    child: Option<(PathBuf, OwnedFd)>,
    /// Any other parent that exists and has no symlink on the way: a step or a few from the
    /// last one (see [`crate::dircursor`]). Forgotten at every path an entry replaces or removes.
    cursor: crate::dircursor::DirCursor,
}

fn unpack_inner<R: Read + Send>(reader: R, rootfs: &Path, opts: &UnpackOptions) -> Result<UnpackStats, Error> {
    std::fs::create_dir_all(rootfs).map_err(|e| Error::io(rootfs, e))?;
    let root = Root::open(rootfs).map_err(|e| Error::io(rootfs, e))?;
    let consumed = std::sync::atomic::AtomicU64::new(0);
    let counted = CountingReader { inner: reader, count: &consumed };
    let (kind, decoded) = compression::decoder(counted).map_err(|source| Error::Archive { source })?;
    tracing::debug!(?kind, rootfs = %rootfs.display(), "unpacking layer");
    let (tx, mut ahead) = crate::readahead::channel();
    std::thread::scope(|scope| {
        // Decompression and the diff_id's hash run on their own thread, ahead of the writes.
        let producer = scope.spawn(move || crate::readahead::produce(HashingReader::new(decoded), tx));
        let tripped = std::cell::Cell::new(false);
        let mut bounded =
            Bounded { inner: &mut ahead, read: 0, limit: opts.size_limit, compressed: opts.compressed_size, consumed: &consumed, tripped: &tripped };
        let applied = apply_entries(&mut bounded, root, opts);
        let read = bounded.read;
        let applied = match applied {
            Err(_) if tripped.get() => Err(Error::LayerTooLarge {
                digest: opts.layer_digest.clone().unwrap_or_else(|| "(no digest)".into()),
                limit: opts.size_limit.to_string(),
                bound: opts.size_limit.bound(opts.compressed_size.unwrap_or_else(|| consumed.load(std::sync::atomic::Ordering::Relaxed))).unwrap_or(u64::MAX),
                read,
            }),
            other => other,
        };
        // On an error the reader goes first, which stops the producer.
        drop(ahead);
        let hashing = producer.join().map_err(|_| Error::Archive { source: io::Error::other("the decompression thread panicked") })?;
        let mut state = applied?;
        let (diff_id, size) = hashing.finish();
        if let Some(expected) = &opts.expected_diff_id
            && *expected != diff_id
        {
            return Err(Error::DiffIdMismatch { expected: expected.clone(), actual: diff_id });
        }
        // In entry order, parents first: a directory below the previous one is one lookup away.
        let mut prev: Option<(PathBuf, OwnedFd)> = None;
        for (rel, times) in std::mem::take(&mut state.dir_times) {
            prev = state.set_dir_times(&rel, &times, prev)?;
        }
        state.stats.diff_id = diff_id;
        state.stats.tar_size = size;
        Ok(state.stats)
    })
}

/// Counts the compressed bytes read (for a ratio limit on a blob of unknown size).
struct CountingReader<'c, R> {
    inner: R,
    count: &'c std::sync::atomic::AtomicU64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// The uncompressed stream, failing once it passes the layer's size limit (`tripped` says so).
struct Bounded<'a, R> {
    inner: R,
    read: u64,
    limit: LayerSizeLimit,
    compressed: Option<u64>,
    consumed: &'a std::sync::atomic::AtomicU64,
    tripped: &'a std::cell::Cell<bool>,
}

impl<R: Read> Read for Bounded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let compressed = self.compressed.unwrap_or_else(|| self.consumed.load(std::sync::atomic::Ordering::Relaxed));
        if let Some(bound) = self.limit.bound(compressed)
            && self.read > bound
        {
            self.tripped.set(true);
            return Err(io::Error::other(format!("layer size limit passed: {} bytes read, limit {bound}", self.read)));
        }
        Ok(n)
    }
}

/// Applies every entry of the tar stream `stream` to the root, and reads the stream to its end.
fn apply_entries<'a, S: Read>(stream: &mut S, root: Root, opts: &'a UnpackOptions) -> Result<Apply<'a>, Error> {
    let mut state = Apply {
        opts,
        unpacked: FxHashSet::default(),
        dir_times: Vec::new(),
        stats: UnpackStats::default(),
        warned_xattr: false,
        parent: None,
        child: None,
        cursor: crate::dircursor::DirCursor::new(root.fd()).map_err(|e| Error::io(root.path(), e.into()))?,
        root,
    };
    {
        let mut archive = tar::Archive::new(&mut *stream);
        let entries = archive.entries().map_err(|source| Error::Archive { source })?;
        for entry in entries {
            let mut entry = entry.map_err(|source| Error::Archive { source })?;
            state.apply(&mut entry)?;
        }
    }
    // The diff_id covers the whole stream, including the zero blocks and any padding after the
    // end-of-archive marker; reading to the end also makes gzip check its CRC.
    io::copy(stream, &mut io::sink()).map_err(|source| Error::Archive { source })?;
    Ok(state)
}

/// Metadata of one tar entry that is applied after its content.
struct EntryMeta {
    mode: u32,
    uid: u32,
    gid: u32,
    times: Timestamps,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn entry_error(entry: &str, reason: impl Into<String>) -> Error {
    Error::InvalidEntry { entry: entry.to_string(), reason: reason.into() }
}

/// Parses a PAX time (`1700000000.123456789`) into a timespec.
fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let tv_sec: i64 = secs.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    while digits.len() < 9 {
        digits.push('0');
    }
    let tv_nsec = digits.parse().ok()?;
    Some(Timespec { tv_sec, tv_nsec })
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, name: &str) -> Result<EntryMeta, Error> {
    let header = entry.header();
    let mode = header.mode().map_err(|e| entry_error(name, format!("bad mode field: {e}")))? & 0o7777;
    let uid = header.uid().map_err(|e| entry_error(name, format!("bad uid field: {e}")))?;
    let gid = header.gid().map_err(|e| entry_error(name, format!("bad gid field: {e}")))?;
    let uid = u32::try_from(uid).map_err(|_| entry_error(name, format!("uid {uid} out of range")))?;
    let gid = u32::try_from(gid).map_err(|_| entry_error(name, format!("gid {gid} out of range")))?;
    let mtime = header.mtime().unwrap_or(0);
    let mut times = Timespec { tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX), tv_nsec: 0 };
    let mut xattrs = Vec::new();
    if let Some(pax) = entry.pax_extensions().map_err(|source| Error::Archive { source })? {
        for ext in pax {
            let ext = ext.map_err(|source| Error::Archive { source })?;
            let key = ext.key_bytes();
            if key == b"mtime" {
                if let Some(t) = parse_pax_time(ext.value_bytes()) {
                    times = t;
                }
            } else if let Some(xname) = key.strip_prefix(b"SCHILY.xattr.") {
                xattrs.push((xname.to_vec(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(EntryMeta { mode, uid, gid, times: Timestamps { last_access: times, last_modification: times }, xattrs })
}

impl Apply<'_> {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), Error> {
        let raw_name = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        let rel = clean_relative(&raw_name);
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader) {
            return Ok(());
        }
        if self.opts.keep.is_kept(&rel) {
            tracing::debug!(entry = %name, "entry at a kept path skipped");
            return Ok(());
        }
        if !kind.is_dir() && self.opts.keep.holds_kept(&rel) {
            // A layer's /var/run symlink over a container's /var/run/secrets mount: the
            // container's directory stays, as kaniko's ignore list has it.
            tracing::warn!(entry = %name, "not replacing a directory that holds a kept path (a mount point or strata's own files)");
            return Ok(());
        }
        if let Some(base) = rel.file_name() {
            if !matches!(whiteout::classify(base), Whiteout::None) {
                // A whiteout removes a path the open directories may be on.
                self.parent = None;
                self.child = None;
            }
            match whiteout::classify(base) {
                Whiteout::None => {}
                Whiteout::Opaque => return self.opaque(&rel, &name),
                Whiteout::Delete(target) => return self.whiteout(&rel, target, &name),
            }
        }
        let meta = read_meta(entry, &name)?;
        let io_err = |source: io::Error| Error::Entry { entry: name.clone(), source };
        let Some((parent_rel, base)) = split_parent(&rel) else {
            // `./` or `/`: metadata for the root directory itself.
            if kind.is_dir() {
                let fd = self.root.open_dir(Path::new("")).map_err(io_err)?;
                self.set_meta_fd(fd.as_fd(), &meta, &name)?;
                self.dir_times.push((PathBuf::new(), meta.times));
                return Ok(());
            }
            return Err(entry_error(&name, "a non-directory entry names the root of the layer"));
        };
        let child = self.child.take();
        let parent_fd = match (self.parent.take(), child) {
            (Some((p, fd)), _) if p == parent_rel => fd,
            (_, Some((p, fd))) if p == parent_rel => fd,
            _ => match self.cursor.open(parent_rel.as_os_str().as_bytes()) {
                Ok(fd) => fd,
                // Missing, or a symlink on the way: resolved inside the root, made if need be.
                Err(_) => self.root.mkdir_all(parent_rel).map_err(io_err)?,
            },
        };
        // Whatever was at this path may be replaced: no fd kept for it or below stays valid.
        self.cursor.forget(rel.as_os_str().as_bytes());
        let result = self.apply_in(entry, &rel, kind, parent_fd.as_fd(), base, &meta, &name);
        self.parent = Some((parent_rel.to_path_buf(), parent_fd));
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_in<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        rel: &Path,
        kind: tar::EntryType,
        parent: BorrowedFd<'_>,
        base: &OsStr,
        meta: &EntryMeta,
        name: &str,
    ) -> Result<(), Error> {
        let rel = rel.to_path_buf();
        let io_err = |source: io::Error| Error::Entry { entry: name.to_string(), source };
        match kind {
            tar::EntryType::Directory => {
                match rootdir::lstat_at(parent, base).map_err(io_err)? {
                    Some(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
                    Some(_) => {
                        rustix::fs::unlinkat(parent, base, AtFlags::empty()).map_err(|e| io_err(e.into()))?;
                        mkdir(parent, base).map_err(io_err)?;
                    }
                    None => mkdir(parent, base).map_err(io_err)?,
                }
                let fd = rustix::fs::openat(parent, base, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                    .map_err(|e| io_err(e.into()))?;
                self.set_meta_fd(fd.as_fd(), meta, name)?;
                self.dir_times.push((rel.clone(), meta.times.clone()));
                self.child = Some((rel.clone(), fd));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                rootdir::remove_except(parent, base, &rel, &self.opts.keep).map_err(io_err)?;
                let fd = rustix::fs::openat(
                    parent,
                    base,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| io_err(e.into()))?;
                let mut file = File::from(fd);
                // A short stream (a size field larger than the data) surfaces here as an error;
                // the half-written file goes (a bomb's would hold up to the size limit).
                let copied = match io::copy(entry, &mut file) {
                    Ok(n) => n,
                    Err(source) => {
                        drop(file);
                        let _ = rustix::fs::unlinkat(parent, base, AtFlags::empty());
                        return Err(Error::Archive { source });
                    }
                };
                if copied != entry.size() {
                    drop(file);
                    let _ = rustix::fs::unlinkat(parent, base, AtFlags::empty());
                    return Err(Error::Archive { source: io::Error::new(io::ErrorKind::UnexpectedEof, format!("{name}: stream ended inside the entry")) });
                }
                self.set_meta_fd(file.as_fd(), meta, name)?;
                rustix::fs::futimens(&file, &meta.times).map_err(|e| io_err(e.into()))?;
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| entry_error(name, "symlink without a target"))?.into_owned();
                rootdir::remove_except(parent, base, &rel, &self.opts.keep).map_err(io_err)?;
                rustix::fs::symlinkat(OsStr::from_bytes(&target), parent, base).map_err(|e| io_err(e.into()))?;
                self.chown_at(parent, base, meta, name)?;
                rustix::fs::utimensat(parent, base, &meta.times, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io_err(e.into()))?;
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().ok_or_else(|| entry_error(name, "hardlink without a target"))?.into_owned();
                let target_rel = clean_relative(&target);
                let Some((tparent_rel, tbase)) = split_parent(&target_rel) else {
                    return Err(entry_error(name, "hardlink to the root directory"));
                };
                if target_rel == rel {
                    return Ok(());
                }
                let tparent =
                    self.root.open_dir(tparent_rel).map_err(|e| entry_error(name, format!("hardlink target {:?}: {e}", String::from_utf8_lossy(&target))))?;
                match rootdir::lstat_at(tparent.as_fd(), tbase).map_err(io_err)? {
                    None => {
                        return Err(entry_error(name, format!("hardlink target {:?} does not exist in the rootfs", String::from_utf8_lossy(&target))));
                    }
                    Some(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                        return Err(entry_error(name, "hardlink to a directory"));
                    }
                    Some(_) => {}
                }
                rootdir::remove_except(parent, base, &rel, &self.opts.keep).map_err(io_err)?;
                // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
                rustix::fs::linkat(tparent.as_fd(), tbase, parent, base, AtFlags::empty()).map_err(|e| io_err(e.into()))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let header = entry.header();
                let (ftype, dev) = match kind {
                    tar::EntryType::Fifo => (FileType::Fifo, 0),
                    _ => {
                        let major = header.device_major().ok().flatten().unwrap_or(0);
                        let minor = header.device_minor().ok().flatten().unwrap_or(0);
                        let t = if kind == tar::EntryType::Char { FileType::CharacterDevice } else { FileType::BlockDevice };
                        (t, rustix::fs::makedev(major, minor))
                    }
                };
                if ftype != FileType::Fifo && self.opts.rootless {
                    if self.stats.skipped_devices == 0 {
                        tracing::warn!(entry = %name, "rootless: device nodes in this layer are skipped (first: {name})");
                    }
                    self.stats.skipped_devices += 1;
                    return Ok(());
                }
                rootdir::remove_except(parent, base, &rel, &self.opts.keep).map_err(io_err)?;
                rustix::fs::mknodat(parent, base, ftype, Mode::from_raw_mode(0o600), dev).map_err(|e| io_err(e.into()))?;
                self.chown_at(parent, base, meta, name)?;
                // The node was just created by us in a directory fd we hold: chmod by name is safe.
                rustix::fs::chmodat(parent, base, Mode::from_raw_mode(meta.mode), AtFlags::empty()).map_err(|e| io_err(e.into()))?;
                rustix::fs::utimensat(parent, base, &meta.times, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io_err(e.into()))?;
            }
            other => {
                return Err(entry_error(name, format!("unsupported tar entry type {other:?}")));
            }
        }
        self.stats.entries += 1;
        self.mark_unpacked(rel);
        Ok(())
    }

    fn mark_unpacked(&mut self, rel: PathBuf) {
        let mut cur = Some(rel.as_path());
        while let Some(p) = cur {
            if p.as_os_str().is_empty() || !self.unpacked.insert(p.to_path_buf()) {
                break;
            }
            cur = p.parent();
        }
    }

    /// `.wh..wh..opq`: removes what lower layers put in the directory, keeps this layer's entries.
    fn opaque(&mut self, rel: &Path, name: &str) -> Result<(), Error> {
        let dir_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let dir = match split_parent(&dir_rel) {
            None => self.root.open_dir(Path::new("")),
            Some((p, base)) => match self.root.open_dir(p) {
                Ok(pfd) => rustix::fs::openat(&pfd, base, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                    .map_err(io::Error::from),
                Err(e) => Err(e),
            },
        };
        let dir = match dir {
            Ok(fd) => fd,
            // An opaque marker in a directory that does not exist (or is a symlink or a file)
            // has nothing to hide; never follow a symlink to clear its target.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ELOOP | libc::ENOTDIR)) => {
                tracing::debug!(entry = name, "opaque whiteout on a missing or non-directory path ignored");
                self.stats.whiteouts += 1;
                return Ok(());
            }
            Err(source) => {
                return Err(Error::Entry { entry: name.to_string(), source });
            }
        };
        self.cursor.forget_below(dir_rel.as_os_str().as_bytes());
        let unpacked = &self.unpacked;
        rootdir::clear_dir_except(dir.as_fd(), &dir_rel, &self.opts.keep, &mut |child| unpacked.contains(&dir_rel.join(child)))
            .map_err(|source| Error::Entry { entry: name.to_string(), source })?;
        self.stats.whiteouts += 1;
        Ok(())
    }

    /// `.wh.NAME`: deletes NAME (whatever it is, never through a symlink).
    fn whiteout(&mut self, rel: &Path, target: &OsStr, name: &str) -> Result<(), Error> {
        let t = target.as_bytes();
        if t.is_empty() || t == b"." || t == b".." || t.contains(&b'/') {
            return Err(entry_error(name, format!("whiteout names {:?}, which is not a file name", target)));
        }
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        self.cursor.forget(parent_rel.join(target).as_os_str().as_bytes());
        let parent = match self.root.open_dir(parent_rel) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                self.stats.whiteouts += 1;
                return Ok(());
            }
            Err(source) => {
                return Err(Error::Entry { entry: name.to_string(), source });
            }
        };
        rootdir::remove_except(parent.as_fd(), target, &parent_rel.join(target), &self.opts.keep)
            .map_err(|source| Error::Entry { entry: name.to_string(), source })?;
        self.stats.whiteouts += 1;
        Ok(())
    }

    /// Owner, mode and xattrs on an open file or directory (chown first: it clears setuid bits).
    fn set_meta_fd(&mut self, fd: BorrowedFd<'_>, meta: &EntryMeta, name: &str) -> Result<(), Error> {
        match rustix::fs::fchown(fd, Some(rustix::fs::Uid::from_raw(meta.uid)), Some(rustix::fs::Gid::from_raw(meta.gid))) {
            Ok(()) => {}
            Err(e) if self.opts.rootless && matches!(e, Errno::PERM | Errno::INVAL) => {
                tracing::trace!(entry = name, uid = meta.uid, gid = meta.gid, "rootless: ownership not applied");
            }
            Err(e) => {
                return Err(Error::Entry { entry: name.to_string(), source: e.into() });
            }
        }
        rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode)).map_err(|e| Error::Entry { entry: name.to_string(), source: e.into() })?;
        for (key, value) in &meta.xattrs {
            if let Err(e) = rustix::fs::fsetxattr(fd, OsStr::from_bytes(key), value, XattrFlags::empty())
                && !self.warned_xattr
            {
                tracing::warn!(
                    entry = name,
                    xattr = %String::from_utf8_lossy(key),
                    error = %e,
                    "extended attribute not applied (filesystem or privileges do not allow it); further failures are not reported"
                );
                self.warned_xattr = true;
            }
        }
        Ok(())
    }

    fn chown_at(&self, parent: BorrowedFd<'_>, base: &OsStr, meta: &EntryMeta, name: &str) -> Result<(), Error> {
        match rustix::fs::chownat(parent, base, Some(rustix::fs::Uid::from_raw(meta.uid)), Some(rustix::fs::Gid::from_raw(meta.gid)), AtFlags::SYMLINK_NOFOLLOW)
        {
            Ok(()) => Ok(()),
            Err(e) if self.opts.rootless && matches!(e, Errno::PERM | Errno::INVAL) => Ok(()),
            Err(e) => Err(Error::Entry { entry: name.to_string(), source: e.into() }),
        }
    }

    /// Sets the times of directory `rel`; returns it open, for the next one (`prev`: the last).
    fn set_dir_times(&self, rel: &Path, times: &Timestamps, prev: Option<(PathBuf, OwnedFd)>) -> Result<Option<(PathBuf, OwnedFd)>, Error> {
        let open_in = |pfd: BorrowedFd<'_>, base: &OsStr| {
            rustix::fs::openat(pfd, base, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()).map_err(io::Error::from)
        };
        let fd: io::Result<OwnedFd> = match split_parent(rel) {
            None => self.root.open_dir(Path::new("")),
            Some((p, base)) => match &prev {
                Some((prev_rel, pfd)) if prev_rel == p => open_in(pfd.as_fd(), base),
                _ => self.root.open_dir(p).and_then(|pfd| open_in(pfd.as_fd(), base)),
            },
        };
        match fd {
            Ok(fd) => {
                rustix::fs::futimens(&fd, times).map_err(|e| Error::io(self.root.path().join(rel), e.into()))?;
                Ok(Some((rel.to_path_buf(), fd)))
            }
            // Removed or replaced by a later entry of the same layer: nothing to do.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ELOOP | libc::ENOTDIR)) => Ok(prev),
            Err(e) => Err(Error::io(self.root.path().join(rel), e)),
        }
    }
}

fn mkdir(parent: BorrowedFd<'_>, base: &OsStr) -> io::Result<()> {
    rustix::fs::mkdirat(parent, base, Mode::from_raw_mode(0o700)).map_err(io::Error::from)
}

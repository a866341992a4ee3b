//! Writing a change set as a deterministic PAX tar, compressed and hashed in one pass.
//!
//! Entries are sorted by path (parents first), owners are numeric, names never carry user or
//! group names, hardlinked files inside the layer are written once and then as links, and every
//! parent directory of a change is included (as buildah and BuildKit do). With a reproducible
//! epoch every mtime is clamped to it. Equal inputs give byte-equal blobs.

use crate::blobstore::BlobWriter;
use crate::diff::{Change, ContentHashes};
use crate::digest_io::HashingWriter;
use crate::fasthash::FxHashMap;
use crate::rootdir::Root;
use crate::tarwriter::{self, TarHeader, typeflag};
use crate::whiteout;
use crate::{BlobStore, Changes, Error};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip at the given level (0-9).
    Gzip { level: u32 },
    /// zstd at the given level with the given worker threads (0 = single-threaded).
    Zstd { level: i32, threads: u32 },
    /// Plain tar.
    None,
}

/// gzip at level 1, as kaniko (go-containerregistry's `BestSpeed`): libdeflate's level 1 keeps
/// text within about 11 % of `gzip -6`'s size at a third of level 6's CPU (see the README's
/// performance section), which is what a 400m build pod can afford.
impl Default for Compression {
    fn default() -> Self {
        Self::Gzip { level: 1 }
    }
}

impl Compression {
    /// The OCI media type of a layer compressed this way.
    pub fn media_type(&self) -> &'static str {
        match self {
            Compression::Gzip { .. } => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd { .. } => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// How to write a layer.
#[derive(Debug, Clone, Default)]
pub struct LayerOptions {
    /// Compression of the blob.
    pub compression: Compression,
    /// Clamp every mtime to at most this many seconds since the epoch (reproducible builds).
    pub reproducible_epoch: Option<i64>,
    /// Hash each file's content as full mode's index does while it is read into the tar.
    pub content_hashes: bool,
}

/// A layer written to the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// `sha256:<hex>` of the compressed blob.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// Compressed size in bytes.
    pub size: u64,
    /// OCI media type (`application/vnd.oci.image.layer.v1.tar+gzip`, `+zstd` or plain).
    pub media_type: String,
    /// Full mode's content hashes of the files written (with [`LayerOptions::content_hashes`]),
    /// for [`crate::Snapshotter::hash_pending`].
    pub content_hashes: ContentHashes,
}

/// xattrs never copied into a layer: host-specific labels and ACL/NFS internals.
fn skip_xattr(name: &[u8]) -> bool {
    name == b"security.selinux" || name.starts_with(b"system.")
}

/// Bytes per zstd worker job. Smaller than zstd's 8 MiB default so that both workers start early
/// and memory stays bounded (37 MiB peak RSS for a 256 MiB layer); on an idle 2-core machine
/// 4 MiB jobs matched `zstd -3 -T2` (median 0.89 s against 0.90 s for 256 MiB), where 1 MiB jobs
/// were 14% slower.
const ZSTD_JOB_SIZE: u32 = 4 << 20;

/// Size of the tar chunks handed to the compressor thread.
const CHUNK: usize = 1 << 20;

/// Chunks queued between the tar writer and the compressor: bounds memory to a few MiB.
const QUEUE: usize = 4;

/// The tar stream's side of a two-thread pipeline: this thread reads files, formats the tar and
/// hashes it (diff_id); a second thread compresses, hashes the blob (digest) and writes it.
/// Like `tar -c | gzip`, but with bounded memory and no copy through a pipe.
struct Pipeline {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    handle: Option<std::thread::JoinHandle<io::Result<BlobWriter>>>,
}

impl Pipeline {
    fn start(mut encoder: Encoder) -> io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(QUEUE);
        let (spare_tx, spare) = std::sync::mpsc::sync_channel::<Vec<u8>>(QUEUE + 2);
        let handle = std::thread::Builder::new().name("strata-layer-compress".into()).spawn(move || {
            for mut chunk in rx {
                encoder.write_all(&chunk)?;
                chunk.clear();
                let _ = spare_tx.try_send(chunk);
            }
            encoder.finish()
        })?;
        Ok(Self { tx: Some(tx), spare, buf: Vec::with_capacity(CHUNK), handle: Some(handle) })
    }

    fn send(&mut self) -> io::Result<()> {
        let next = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let chunk = std::mem::replace(&mut self.buf, next);
        let sent = self.tx.as_ref().map(|tx| tx.send(chunk));
        match sent {
            Some(Ok(())) => Ok(()),
            // The compressor stopped: its own error is the one worth reporting.
            _ => Err(self.join().err().unwrap_or_else(|| io::Error::other("layer compressor stopped"))),
        }
    }

    fn join(&mut self) -> io::Result<BlobWriter> {
        self.tx = None;
        match self.handle.take() {
            Some(h) => h.join().map_err(|_| io::Error::other("layer compressor thread panicked"))?,
            None => Err(io::Error::other("layer compressor already finished")),
        }
    }

    /// Flushes the last chunk and waits for the compressor; returns the finished blob writer.
    fn finish(mut self) -> io::Result<BlobWriter> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        self.join()
    }
}

impl Write for Pipeline {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // On an error path: stop the compressor; the uncommitted blob removes its temp file.
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The compressor in front of the blob file.
enum Encoder {
    Gzip(crate::pargzip::ParGzWriter<BlobWriter>),
    Zstd(zstd::stream::write::Encoder<'static, BlobWriter>),
    Plain(BlobWriter),
}

impl Encoder {
    fn new(compression: Compression, blob: BlobWriter) -> io::Result<Self> {
        Ok(match compression {
            Compression::Gzip { level } => {
                // Up to 4 workers (more rarely pays), fewer under a cgroup CPU quota.
                let threads = crate::cpu_budget(4);
                Encoder::Gzip(crate::pargzip::ParGzWriter::new(blob, level, threads)?)
            }
            Compression::Zstd { level, threads } => {
                let mut enc = zstd::stream::write::Encoder::new(blob, level)?;
                if threads > 0 {
                    enc.multithread(threads)?;
                    // Each worker holds a job's input and output; bounded jobs keep a 1 GiB
                    // layer well under 64 MiB of RSS.
                    enc.set_parameter(zstd::zstd_safe::CParameter::JobSize(ZSTD_JOB_SIZE))?;
                }
                Encoder::Zstd(enc)
            }
            Compression::None => Encoder::Plain(blob),
        })
    }

    fn finish(self) -> io::Result<BlobWriter> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::Plain(b) => Ok(b),
        }
    }
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Plain(b) => b.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::Plain(b) => b.flush(),
        }
    }
}

/// What one tar entry is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The path as it is on disk now.
    Disk,
    /// A parent directory added so the layer is self-contained.
    Parent,
    /// A whiteout deleting the named sibling.
    Whiteout,
}

/// The sorted tar entries for `changes`: each change, its whiteout name, and all parents.
/// Linear in the total length of the names: a parent already planned has its own parents
/// planned too, so the climb stops there (a 2,048-deep tree used to take 13 s here).
fn plan(changes: &Changes) -> Vec<(PathBuf, Source)> {
    let mut plan: FxHashMap<PathBuf, Source> = FxHashMap::default();
    for change in &changes.entries {
        let (name, source) = match change {
            Change::Upsert(p) => {
                if p.file_name().is_some_and(|n| n.as_bytes().starts_with(whiteout::PREFIX.as_bytes())) {
                    // In a layer this name would delete a sibling instead of adding a file.
                    tracing::warn!(path = %p.display(), "file name starts with .wh. (the OCI whiteout prefix); left out of the layer");
                    continue;
                }
                (p.clone(), Source::Disk)
            }
            Change::Delete(p) => {
                let Some(base) = p.file_name() else { continue };
                (p.with_file_name(whiteout::name_for(base)), Source::Whiteout)
            }
        };
        if name.as_os_str().is_empty() {
            continue;
        }
        for a in name.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
            if plan.contains_key(a) {
                break;
            }
            plan.insert(a.to_path_buf(), Source::Parent);
        }
        plan.insert(name, source);
    }
    let mut sorted: Vec<(PathBuf, Source)> = plan.into_iter().collect();
    sorted.sort_by(|a, b| crate::walk::path_order(a.0.as_os_str().as_bytes(), b.0.as_os_str().as_bytes()));
    sorted
}

/// Writes `changes` of `rootfs` as one layer blob into `store`.
pub fn write_layer(rootfs: &Path, changes: &Changes, opts: &LayerOptions, store: &BlobStore) -> Result<LayerInfo, Error> {
    let started = std::time::Instant::now();
    let plan = plan(changes);
    let root = Root::open(rootfs).map_err(|e| Error::io(rootfs, e))?;
    let blob = store.writer()?;
    let temp = blob.temp_path().to_path_buf();
    let blob_err = |e: io::Error| Error::io(&temp, e);
    let encoder = Encoder::new(opts.compression, blob).map_err(blob_err)?;
    let pipeline = Pipeline::start(encoder).map_err(blob_err)?;
    let mut tar = HashingWriter::new(pipeline);
    let mut writer = EntryWriter {
        rootfs,
        epoch: opts.reproducible_epoch,
        links: HashMap::new(),
        buf: vec![0u8; 256 * 1024],
        dir: None,
        child: None,
        cursor: crate::dircursor::DirCursor::new(root.fd()).map_err(|e| Error::io(rootfs, e.into()))?,
        hashes: opts.content_hashes.then(ContentHashes::default),
    };
    for (rel, source) in &plan {
        writer.write_entry(&mut tar, rel, *source, &temp)?;
    }
    tarwriter::write_end(&mut tar).map_err(blob_err)?;
    let (pipeline, diff_id, tar_size) = tar.finish();
    let content_hashes = writer.hashes.take().unwrap_or_default();
    let blob = pipeline.finish().map_err(blob_err)?;
    let (digest, size) = blob.commit()?;
    tracing::debug!(%digest, %diff_id, entries = plan.len(), tar_size, size, elapsed = ?started.elapsed(), "layer written");
    Ok(LayerInfo { content_hashes, digest, diff_id, size, media_type: opts.compression.media_type().to_string() })
}

struct EntryWriter<'a> {
    rootfs: &'a Path,
    epoch: Option<i64>,
    /// (dev, ino) of multiply-linked files already in the layer -> their tar name.
    links: HashMap<(u64, u64), Vec<u8>>,
    buf: Vec<u8>,
    /// The directory of the previous entry, kept open: entries are sorted, so siblings follow
    /// each other and every lookup is one component from here.
    dir: Option<(PathBuf, OwnedFd)>,
    /// The previous entry when it was a directory, kept open: its entries come next, so a deep
    /// tree costs one lookup per level instead of a walk from the root for each.
    child: Option<(PathBuf, OwnedFd)>,
    /// Any other directory: a step or a few from the last one (see [`crate::dircursor`]).
    cursor: crate::dircursor::DirCursor,
    /// Content hashes collected for full mode's index, when asked for.
    hashes: Option<ContentHashes>,
}

impl EntryWriter<'_> {
    fn clamp(&self, mtime: i64) -> i64 {
        match self.epoch {
            Some(epoch) if mtime > epoch => epoch,
            _ => mtime,
        }
    }

    /// The open directory `parent` (taken out of the cache; put it back with `self.dir = ...`).
    fn take_dir(&mut self, parent: &Path) -> Result<OwnedFd, Error> {
        if let Some((p, fd)) = self.dir.take()
            && p == parent
        {
            return Ok(fd);
        }
        if let Some((p, fd)) = self.child.take()
            && p == parent
        {
            return Ok(fd);
        }
        self.cursor
            .open(parent.as_os_str().as_bytes())
            .map_err(|e| Error::ChangedDuringSnapshot { path: self.rootfs.join(parent), reason: format!("cannot open the directory any more: {e}") })
    }

    fn write_entry<W: Write>(&mut self, out: &mut W, rel: &Path, source: Source, temp: &Path) -> Result<(), Error> {
        let out_err = |e: io::Error| Error::io(temp, e);
        let name = rel.as_os_str().as_bytes().to_vec();
        if source == Source::Whiteout {
            let h = TarHeader { name, mode: 0, mtime: self.clamp(0), typeflag: typeflag::REGULAR, ..Default::default() };
            return tarwriter::write_header(out, &h).map_err(out_err);
        }
        let (parent, base) = match (rel.parent(), rel.file_name()) {
            (Some(p), Some(b)) => (p.to_path_buf(), b.to_os_string()),
            _ => return Ok(()),
        };
        let dir = self.take_dir(&parent)?;
        let result = self.write_entry_in(out, rel, &dir, &base, name, source, temp);
        self.dir = Some((parent, dir));
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn write_entry_in<W: Write>(
        &mut self,
        out: &mut W,
        rel: &Path,
        dir: &OwnedFd,
        base: &OsStr,
        name: Vec<u8>,
        source: Source,
        temp: &Path,
    ) -> Result<(), Error> {
        let out_err = |e: io::Error| Error::io(temp, e);
        let host = self.rootfs.join(rel);
        let st = match rustix::fs::statat(dir, base, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) => {
                return Err(Error::ChangedDuringSnapshot { path: host, reason: format!("cannot stat it any more: {e}") });
            }
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        if source == Source::Parent && ft != FileType::Directory {
            // A parent that is not a directory cannot hold the change below it.
            return Err(Error::ChangedDuringSnapshot { path: host, reason: "a parent of a change is no longer a directory".into() });
        }
        let mut h = TarHeader {
            name,
            mode: st.st_mode & 0o7777,
            uid: u64::from(st.st_uid),
            gid: u64::from(st.st_gid),
            mtime: self.clamp(st.st_mtime),
            ..Default::default()
        };
        match ft {
            FileType::RegularFile => {}
            FileType::Directory => {
                h.typeflag = typeflag::DIR;
                h.name.push(b'/');
                let fd = rustix::fs::openat(dir, base, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                    .map_err(|e| Error::ChangedDuringSnapshot { path: host.clone(), reason: format!("cannot open the directory any more: {e}") })?;
                h.xattrs = read_xattrs_fd(fd.as_fd());
                self.child = Some((rel.to_path_buf(), fd));
                return tarwriter::write_header(out, &h).map_err(out_err);
            }
            FileType::Symlink => {
                h.typeflag = typeflag::SYMLINK;
                h.linkname = rustix::fs::readlinkat(dir, base, Vec::new()).map_err(|e| Error::io(&host, e.into()))?.into_bytes();
                h.xattrs = read_xattrs(&short_path(&host, dir, base));
                if let Some(hashes) = self.hashes.as_mut() {
                    hashes.0.insert(rel.to_path_buf(), crate::diff::symlink_hash(&h.linkname));
                }
                return tarwriter::write_header(out, &h).map_err(out_err);
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                h.typeflag = match ft {
                    FileType::CharacterDevice => typeflag::CHAR,
                    FileType::BlockDevice => typeflag::BLOCK,
                    _ => typeflag::FIFO,
                };
                if ft != FileType::Fifo {
                    h.devmajor = rustix::fs::major(st.st_rdev);
                    h.devminor = rustix::fs::minor(st.st_rdev);
                }
                h.xattrs = read_xattrs(&short_path(&host, dir, base));
                return tarwriter::write_header(out, &h).map_err(out_err);
            }
            _ => {
                tracing::debug!(path = %host.display(), "socket not representable in a layer; skipped");
                return Ok(());
            }
        }
        // Regular file.
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                h.typeflag = typeflag::LINK;
                h.linkname = first.clone();
                return tarwriter::write_header(out, &h).map_err(out_err);
            }
            self.links.insert(key, h.name.clone());
        }
        h.typeflag = typeflag::REGULAR;
        h.size = st.st_size as u64;
        let fd = rustix::fs::openat(dir, base, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::ChangedDuringSnapshot { path: host.clone(), reason: format!("cannot open it any more: {e}") })?;
        let opened = rustix::fs::fstat(&fd).map_err(|e| Error::io(&host, e.into()))?;
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino) {
            return Err(Error::ChangedDuringSnapshot { path: host, reason: "replaced while being read".into() });
        }
        h.xattrs = read_xattrs_fd(fd.as_fd());
        let mut file = std::fs::File::from(fd);
        tarwriter::write_header(out, &h).map_err(out_err)?;
        // The same hash as full mode's index, from the bytes written here.
        let mut hasher = self.hashes.is_some().then(|| crate::diff::file_hasher(&h.xattrs));
        let mut left = h.size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = match file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(Error::ChangedDuringSnapshot { path: host, reason: format!("file shrank by {left} bytes") });
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(&host, e)),
            };
            out.write_all(&self.buf[..n]).map_err(out_err)?;
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(&self.buf[..n]);
            }
            left -= n as u64;
        }
        // A file that grew after its size was taken: the index hashes it whole itself.
        if let (Some(hasher), Some(hashes)) = (hasher, self.hashes.as_mut())
            && file.read(&mut [0u8; 1]).is_ok_and(|n| n == 0)
        {
            hashes.0.insert(rel.to_path_buf(), *hasher.finalize().as_bytes());
        }
        tarwriter::write_padding(out, h.size).map_err(out_err)
    }
}

/// A path to `base` in the open directory `dir` that the kernel can resolve: `host` itself, or
/// through `/proc/self/fd` when `host` is longer than PATH_MAX (a hostile deep tree).
fn short_path(host: &Path, dir: &OwnedFd, base: &OsStr) -> PathBuf {
    use std::os::fd::AsRawFd;
    if host.as_os_str().len() < 4000 {
        return host.to_path_buf();
    }
    Path::new("/proc/self/fd").join(dir.as_raw_fd().to_string()).join(base)
}

/// The xattrs of an open file worth keeping in a layer, sorted.
pub(crate) fn read_xattrs_fd(fd: BorrowedFd<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let size = match rustix::fs::flistxattr_query(fd) {
        Ok(0) | Err(_) => return Vec::new(),
        Ok(n) => n,
    };
    let mut names = vec![0u8; size];
    let Ok(len) = rustix::fs::flistxattr(fd, &mut names[..]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if skip_xattr(name) {
            continue;
        }
        let key = OsStr::from_bytes(name);
        let Ok(size) = rustix::fs::fgetxattr_query(fd, key) else {
            continue;
        };
        let mut value = vec![0u8; size];
        if let Ok(n) = rustix::fs::fgetxattr(fd, key, &mut value[..]) {
            value.truncate(n);
            out.push((name.to_vec(), value));
        }
    }
    out.sort();
    out
}

/// The xattrs of `path` (not following a symlink) worth keeping in a layer.
fn read_xattrs(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    // One syscall for the common case of no xattrs at all.
    let size = match rustix::fs::llistxattr_query(path) {
        Ok(0) | Err(_) => return Vec::new(),
        Ok(n) => n,
    };
    let mut names = vec![0u8; size];
    match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => collect_xattrs(path, &names[..n]),
        Err(_) => Vec::new(),
    }
}

fn collect_xattrs(path: &Path, names: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if skip_xattr(name) {
            continue;
        }
        let key = OsStr::from_bytes(name);
        let Ok(size) = rustix::fs::lgetxattr_query(path, key) else {
            continue;
        };
        let mut value = vec![0u8; size];
        if let Ok(n) = rustix::fs::lgetxattr(path, key, &mut value[..]) {
            value.truncate(n);
            out.push((name.to_vec(), value));
        }
    }
    out.sort();
    out
}

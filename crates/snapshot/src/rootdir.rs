//! Resolving paths inside a root directory so that no name, `..` or symlink can lead out of it.
//!
//! Every lookup goes through a directory file descriptor of the root. With `openat2` and
//! `RESOLVE_IN_ROOT` the kernel treats the root as `/` for absolute symlinks and `..`; where
//! `openat2` is unavailable (old kernels, seccomp profiles that answer ENOSYS) the same rules are
//! applied one component at a time with `O_NOFOLLOW`, keeping our own stack of directory fds so
//! `..` never climbs above the root even if directories are moved meanwhile.

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once `openat2` has been seen to be unavailable, to stop trying it.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);
static NO_OPENAT2_INIT: std::sync::Once = std::sync::Once::new();

/// Environment variable that turns `openat2` off (the fd-walk resolver is used instead), for
/// testing the fallback and as an escape hatch on kernels or sandboxes where it misbehaves.
pub const DISABLE_OPENAT2_ENV: &str = "STRATA_DISABLE_OPENAT2";

fn openat2_disabled() -> bool {
    NO_OPENAT2_INIT.call_once(|| {
        if std::env::var_os(DISABLE_OPENAT2_ENV).is_some_and(|v| v == "1") {
            NO_OPENAT2.store(true, Ordering::Relaxed);
        }
    });
    NO_OPENAT2.load(Ordering::Relaxed)
}

/// Symlinks followed in one lookup before giving up (Linux uses 40 as well).
const MAX_SYMLINKS: usize = 40;

/// Turns a tar entry name into a clean relative path: leading `/`, `.` and empty components are
/// dropped and `..` is applied lexically but never above the root.
pub fn clean_relative(name: &[u8]) -> PathBuf {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in name.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = PathBuf::new();
    for p in parts {
        out.push(OsStr::from_bytes(p));
    }
    out
}

/// Splits a clean relative path into its parent and last component (`None` for the root).
pub fn split_parent(rel: &Path) -> Option<(&Path, &OsStr)> {
    let name = rel.file_name()?;
    Some((rel.parent().unwrap_or(Path::new("")), name))
}

/// A directory that all lookups are confined to.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

fn to_io(e: Errno) -> io::Error {
    io::Error::from(e)
}

impl Root {
    /// Opens the root directory.
    pub fn open(path: &Path) -> io::Result<Self> {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(to_io)?;
        Ok(Self { fd, path: path.to_path_buf() })
    }

    /// The root's path on the host (for messages only; never used for lookups).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root's directory fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens the directory `rel` (clean, relative), following symlinks as if the root were `/`.
    pub fn open_dir(&self, rel: &Path) -> io::Result<OwnedFd> {
        if rel.as_os_str().is_empty() {
            return rustix::fs::openat(&self.fd, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(to_io);
        }
        if !openat2_disabled() {
            match rustix::fs::openat2(
                &self.fd,
                rel,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                Ok(fd) => return Ok(fd),
                // EAGAIN: the kernel saw a concurrent rename and wants a retry; the manual walk
                // below is immune to that, so use it rather than loop.
                Err(Errno::NOSYS) | Err(Errno::PERM) => {
                    tracing::debug!("openat2 unavailable; resolving paths component by component");
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                }
                // Longer than PATH_MAX (a hostile deep tree): the manual walk has no such limit.
                Err(Errno::AGAIN) | Err(Errno::NAMETOOLONG) => {}
                Err(e) => return Err(to_io(e)),
            }
        }
        self.open_dir_manual(rel)
    }

    /// Opens the directory `rel` without following any symlink on the way (for reading a tree
    /// we made ourselves, where a symlink among the parents means something changed).
    pub fn open_dir_beneath(&self, rel: &Path) -> io::Result<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        if rel.as_os_str().is_empty() {
            return rustix::fs::openat(&self.fd, ".", flags, Mode::empty()).map_err(to_io);
        }
        if !openat2_disabled() {
            match rustix::fs::openat2(&self.fd, rel, flags, Mode::empty(), ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS) {
                Ok(fd) => return Ok(fd),
                Err(Errno::NOSYS) | Err(Errno::PERM) => NO_OPENAT2.store(true, Ordering::Relaxed),
                // Longer than PATH_MAX (a hostile deep tree): one component at a time below.
                Err(Errno::AGAIN) | Err(Errno::NAMETOOLONG) => {}
                Err(e) => return Err(to_io(e)),
            }
        }
        let mut fd = rustix::fs::openat(&self.fd, ".", flags, Mode::empty()).map_err(to_io)?;
        for comp in components(rel) {
            if comp == ".." {
                return Err(to_io(Errno::XDEV));
            }
            fd = rustix::fs::openat(&fd, &*comp, flags, Mode::empty()).map_err(to_io)?;
        }
        Ok(fd)
    }

    /// Opens the regular file `rel` for reading; fails rather than follow any symlink or leave
    /// the root.
    pub fn open_file_beneath(&self, rel: &Path) -> io::Result<std::fs::File> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
        if !openat2_disabled() {
            match rustix::fs::openat2(&self.fd, rel, flags, Mode::empty(), ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS) {
                Ok(fd) => return Ok(fd.into()),
                Err(Errno::NOSYS) | Err(Errno::PERM) => NO_OPENAT2.store(true, Ordering::Relaxed),
                Err(Errno::AGAIN) => {}
                Err(e) => return Err(to_io(e)),
            }
        }
        let (parent, name) = split_parent(rel).ok_or_else(|| to_io(Errno::ISDIR))?;
        let dir = self.open_dir_manual(parent)?;
        rustix::fs::openat(&dir, name, flags, Mode::empty()).map(Into::into).map_err(to_io)
    }

    /// The component-by-component resolver used without `openat2` (also exercised by tests).
    pub fn open_dir_manual(&self, rel: &Path) -> io::Result<OwnedFd> {
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut queue: VecDeque<OsString> = components(rel).collect();
        let mut links = 0usize;
        while let Some(comp) = queue.pop_front() {
            let bytes = comp.as_bytes();
            if bytes.is_empty() || bytes == b"." {
                continue;
            }
            if bytes == b".." {
                stack.pop();
                continue;
            }
            let cur = match stack.last() {
                Some(fd) => fd.as_fd(),
                None => self.fd.as_fd(),
            };
            let fd = rustix::fs::openat(cur, &*comp, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()).map_err(to_io)?;
            let st = rustix::fs::fstat(&fd).map_err(to_io)?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => stack.push(fd),
                FileType::Symlink => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(to_io(Errno::LOOP));
                    }
                    let target = rustix::fs::readlinkat(cur, &*comp, Vec::new()).map_err(to_io)?;
                    let target = target.as_bytes();
                    if target.first() == Some(&b'/') {
                        stack.clear();
                    }
                    for (i, part) in target.split(|b| *b == b'/').filter(|p| !p.is_empty()).enumerate() {
                        queue.insert(i, OsStr::from_bytes(part).to_os_string());
                    }
                }
                _ => return Err(to_io(Errno::NOTDIR)),
            }
        }
        let last = match stack.last() {
            Some(fd) => fd.as_fd(),
            None => self.fd.as_fd(),
        };
        rustix::fs::openat(last, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(to_io)
    }

    /// Opens the directory `rel`, creating missing directories (mode 0755, owned by the caller)
    /// inside the root on the way. A dangling symlink on the way (`var/run -> /run` before
    /// `/run` exists) gets its target created inside the root, as containerd does.
    pub fn mkdir_all(&self, rel: &Path) -> io::Result<OwnedFd> {
        self.mkdir_all_depth(rel, 0)
    }

    fn mkdir_all_depth(&self, rel: &Path, depth: usize) -> io::Result<OwnedFd> {
        if depth > MAX_SYMLINKS {
            return Err(to_io(Errno::LOOP));
        }
        match self.open_dir(rel) {
            Ok(fd) => Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let Some((parent, name)) = split_parent(rel) else {
                    return Err(e);
                };
                let pfd = self.mkdir_all_depth(parent, depth + 1)?;
                match rustix::fs::mkdirat(&pfd, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(to_io(e)),
                }
                match rustix::fs::openat(&pfd, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
                    Ok(fd) => Ok(fd),
                    Err(Errno::LOOP | Errno::NOTDIR)
                        if lstat_at(pfd.as_fd(), name)?.is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink) =>
                    {
                        // A symlink whose target is missing: create the target (inside the root)
                        // and open it through the link again.
                        let target = rustix::fs::readlinkat(&pfd, name, Vec::new()).map_err(to_io)?;
                        let target = target.as_bytes();
                        let joined = if target.first() == Some(&b'/') {
                            clean_relative(target)
                        } else {
                            let mut j = parent.as_os_str().as_bytes().to_vec();
                            j.push(b'/');
                            j.extend_from_slice(target);
                            clean_relative(&j)
                        };
                        self.mkdir_all_depth(&joined, depth + 1)?;
                        self.open_dir(rel)
                    }
                    Err(e) => Err(to_io(e)),
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// Resolves the directories leading to `rel` inside `root` by path (symlinks among them followed
/// as if `root` were `/`), leaving the last component as it is. For trees nobody is modifying,
/// such as a rootfs between build steps; unpacking uses the fd-based [`Root`] instead.
pub fn resolve_parents_lexically(root: &Path, rel: &Path) -> io::Result<PathBuf> {
    resolve_lexically(root, rel, false)
}

/// Resolves `rel` (relative or absolute, taken inside `root`) by path: symlinks are followed as
/// if `root` were `/` and `..` never climbs above it; the last component is followed only when
/// `follow_last`. Returns the path relative to `root`. For trees nobody is modifying.
pub fn resolve_lexically(root: &Path, rel: &Path, follow_last: bool) -> io::Result<PathBuf> {
    let mut queue: VecDeque<OsString> = components(rel).collect();
    let mut resolved = PathBuf::new();
    let mut links = 0usize;
    while let Some(comp) = queue.pop_front() {
        let b = comp.as_bytes();
        if b.is_empty() || b == b"." {
            continue;
        }
        if b == b".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&comp);
        let is_last = queue.is_empty();
        match std::fs::symlink_metadata(root.join(&candidate)) {
            Ok(md) if md.file_type().is_symlink() && (follow_last || !is_last) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(to_io(Errno::LOOP));
                }
                let target = std::fs::read_link(root.join(&candidate))?;
                let target = target.as_os_str().as_bytes();
                if target.first() == Some(&b'/') {
                    resolved = PathBuf::new();
                }
                for (i, part) in target.split(|b| *b == b'/').filter(|p| !p.is_empty()).enumerate() {
                    queue.insert(i, OsStr::from_bytes(part).to_os_string());
                }
            }
            _ => resolved = candidate,
        }
    }
    Ok(resolved)
}

fn components(rel: &Path) -> impl Iterator<Item = OsString> + '_ {
    rel.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        _ => None,
    })
}

/// `lstat` of `name` in `dir`, `None` if it does not exist.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(to_io(e)),
    }
}

/// Opens the directory `name` in `dir` without following a symlink.
fn open_subdir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()).map_err(to_io)
}

/// Removes `name` in `dir` whatever it is; a directory is removed with everything below it,
/// never following a symlink.
pub fn remove_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match lstat_at(dir, name)? {
        None => Ok(()),
        Some(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            let sub = open_subdir(dir, name)?;
            clear_dir(sub.as_fd(), &mut |_| false)?;
            rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(to_io)
        }
        Some(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(to_io),
    }
}

/// Removes every entry of the open directory `dir` for which `keep(name)` is false.
pub fn clear_dir(dir: BorrowedFd<'_>, keep: &mut dyn FnMut(&OsStr) -> bool) -> io::Result<()> {
    let names = list_dir(dir)?;
    for name in names {
        if !keep(&name) {
            remove_at(dir, &name)?;
        }
    }
    Ok(())
}

/// In-root paths (relative, clean) that unpacking and clearing leave alone with everything
/// below them: the build's own files and mount points when the build root is `/`.
#[derive(Debug, Clone, Default)]
pub struct KeepPaths {
    paths: Vec<PathBuf>,
}

impl KeepPaths {
    /// Keeps each of `paths` (absolute in-root or relative; `/` itself is ignored).
    pub fn new(paths: impl IntoIterator<Item = PathBuf>) -> Self {
        let mut paths: Vec<PathBuf> = paths.into_iter().map(|p| clean_relative(p.as_os_str().as_bytes())).filter(|p| !p.as_os_str().is_empty()).collect();
        paths.sort();
        paths.dedup();
        Self { paths }
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Whether `rel` is a kept path or lies below one.
    pub fn is_kept(&self, rel: &Path) -> bool {
        self.paths.iter().any(|p| rel.starts_with(p))
    }

    /// Whether a kept path lies strictly below `rel` (so `rel` must not be removed whole).
    pub fn holds_kept(&self, rel: &Path) -> bool {
        self.paths.iter().any(|p| p != rel && p.starts_with(rel))
    }
}

/// Removes `name` (at in-root path `rel`) from `dir` except kept paths: a directory holding one
/// is emptied of everything else and stays.
pub fn remove_except(dir: BorrowedFd<'_>, name: &OsStr, rel: &Path, keep: &KeepPaths) -> io::Result<()> {
    if keep.is_kept(rel) {
        return Ok(());
    }
    if !keep.holds_kept(rel) {
        return remove_at(dir, name);
    }
    match lstat_at(dir, name)? {
        Some(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            let sub = open_subdir(dir, name)?;
            clear_dir_except(sub.as_fd(), rel, keep, &mut |_| false)
        }
        Some(_) => remove_at(dir, name),
        None => Ok(()),
    }
}

/// Removes every entry of the open directory `dir` (at in-root path `rel`) that is neither
/// kept nor chosen by `also_keep(name)`; directories holding kept paths are emptied instead.
pub fn clear_dir_except(dir: BorrowedFd<'_>, rel: &Path, keep: &KeepPaths, also_keep: &mut dyn FnMut(&OsStr) -> bool) -> io::Result<()> {
    for name in list_dir(dir)? {
        if !also_keep(&name) {
            remove_except(dir, &name, &rel.join(&name), keep)?;
        }
    }
    Ok(())
}

/// The names in the open directory `dir`, without `.` and `..`.
pub fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let mut reader = rustix::fs::Dir::read_from(dir).map_err(to_io)?;
    let mut names = Vec::new();
    while let Some(entry) = reader.read() {
        let entry = entry.map_err(to_io)?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn clean_relative_confines_dotdot_and_absolute() {
        assert_eq!(clean_relative(b"../../etc/passwd"), PathBuf::from("etc/passwd"));
        assert_eq!(clean_relative(b"/abs/./x/"), PathBuf::from("abs/x"));
        assert_eq!(clean_relative(b"a/../../b"), PathBuf::from("b"));
        assert_eq!(clean_relative(b"./"), PathBuf::new());
    }

    fn check_resolver(open: impl Fn(&Root, &Path) -> io::Result<OwnedFd>) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("real/sub")).unwrap();
        std::fs::write(root.join("real/sub/marker"), b"in").unwrap();
        symlink("/", root.join("toroot")).unwrap();
        symlink("../../../../..", root.join("up")).unwrap();
        symlink("/real", root.join("abs")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        let r = Root::open(&root).unwrap();
        let names = |fd: OwnedFd| {
            let mut v: Vec<_> = list_dir(fd.as_fd()).unwrap();
            v.sort();
            v
        };
        // A symlink to / stays at the root.
        assert!(names(open(&r, Path::new("toroot")).unwrap()).contains(&OsString::from("real")));
        assert!(names(open(&r, Path::new("up/real")).unwrap()).contains(&OsString::from("sub")));
        assert!(names(open(&r, Path::new("abs/sub")).unwrap()).contains(&OsString::from("marker")));
        assert!(names(open(&r, Path::new("toroot/toroot/up/abs/sub/..")).unwrap()).contains(&OsString::from("sub")));
        assert_eq!(open(&r, Path::new("loop1")).unwrap_err().raw_os_error(), Some(libc::ELOOP));
        assert_eq!(open(&r, Path::new("real/sub/marker")).unwrap_err().raw_os_error(), Some(libc::ENOTDIR));
    }

    #[test]
    fn lexical_resolution_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("opt/app")).unwrap();
        symlink("/opt/app", root.join("app")).unwrap();
        symlink("../../../..", root.join("opt/up")).unwrap();
        assert_eq!(resolve_parents_lexically(root, Path::new("app/src")).unwrap(), PathBuf::from("opt/app/src"));
        assert_eq!(resolve_parents_lexically(root, Path::new("opt/up/app/x")).unwrap(), PathBuf::from("opt/app/x"));
        assert_eq!(resolve_parents_lexically(root, Path::new("app")).unwrap(), PathBuf::from("app"));
    }

    #[test]
    fn openat2_resolver_stays_inside() {
        check_resolver(|r, p| r.open_dir(p));
    }

    #[test]
    fn manual_resolver_stays_inside() {
        check_resolver(|r, p| r.open_dir_manual(p));
    }
}

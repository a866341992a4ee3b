//! An open directory path that follows a sorted walk: layers list a directory's entries right
//! after it and climb back up afterwards, so the next directory wanted is nearly always the one
//! open, a child of it, or an ancestor. Opening by the whole path from the root costs a lookup
//! per level each time, which is quadratic for a hostile tree thousands of levels deep (and past
//! PATH_MAX, impossible); here each step is one component, and an ancestor is at most
//! [`STRIDE`] lookups away.

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// Every `STRIDE`-th level keeps its directory open.
const STRIDE: usize = 64;
/// At most this many levels kept open (deeper than `STRIDE * MAX_KEPT`, climbing costs more).
const MAX_KEPT: usize = 256;

fn kept(level: usize) -> bool {
    (level + 1).is_multiple_of(STRIDE) && (level + 1) / STRIDE <= MAX_KEPT
}

/// The directory last opened, with some of its ancestors; nothing is followed through a symlink.
#[derive(Debug)]
pub struct DirCursor {
    root: OwnedFd,
    comps: Vec<Box<[u8]>>,
    /// `fds[i]`, when open, is the directory `comps[..=i]`: the kept levels and the last one.
    fds: Vec<Option<OwnedFd>>,
}

impl DirCursor {
    /// A cursor at `root` (a duplicate of the fd is kept).
    pub fn new(root: BorrowedFd<'_>) -> Result<Self, Errno> {
        Ok(Self { root: rustix::io::dup(root)?, comps: Vec::new(), fds: Vec::new() })
    }

    /// Opens the directory `rel` (clean, relative, `/`-separated; empty for the root) without
    /// following any symlink, and returns a new fd for it.
    pub fn open(&mut self, rel: &[u8]) -> Result<OwnedFd, Errno> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let target: Vec<&[u8]> = if rel.is_empty() { Vec::new() } else { rel.split(|b| *b == b'/').collect() };
        let common = self.comps.iter().zip(&target).take_while(|(a, b)| a.as_ref() == **b).count();
        self.comps.truncate(common);
        self.fds.truncate(common);
        let mut cur: Option<OwnedFd> = None;
        let start = match self.fds.iter().rposition(Option::is_some) {
            Some(j) => {
                // The last directory opened is not a kept level: take it, it is not kept further.
                if !kept(j) {
                    cur = self.fds[j].take();
                }
                j + 1
            }
            None => 0,
        };
        for (i, name) in target.iter().enumerate().skip(start) {
            let fd = {
                let base = match &cur {
                    Some(fd) => fd.as_fd(),
                    None => match i.checked_sub(1).and_then(|p| self.fds.get(p)).and_then(Option::as_ref) {
                        Some(fd) => fd.as_fd(),
                        None => self.root.as_fd(),
                    },
                };
                rustix::fs::openat(base, OsStr::from_bytes(name), flags, Mode::empty())?
            };
            if i >= self.comps.len() {
                self.comps.push((*name).into());
                self.fds.push(None);
            }
            if kept(i) {
                self.fds[i] = Some(fd);
                cur = None;
            } else {
                cur = Some(fd);
            }
        }
        let Some(last) = target.len().checked_sub(1) else {
            return rustix::fs::openat(&self.root, ".", flags, Mode::empty());
        };
        if let Some(fd) = cur {
            self.fds[last] = Some(fd);
        }
        match &self.fds[last] {
            Some(fd) => rustix::io::dup(fd),
            None => Err(Errno::NOENT),
        }
    }

    /// Forgets `rel` and everything below it (replaced or removed: an fd kept open for it would
    /// name a directory no longer in the tree).
    pub fn forget(&mut self, rel: &[u8]) {
        let target: Vec<&[u8]> = if rel.is_empty() { Vec::new() } else { rel.split(|b| *b == b'/').collect() };
        if target.len() <= self.comps.len() && self.comps.iter().zip(&target).all(|(a, b)| a.as_ref() == *b) {
            let keep = target.len().saturating_sub(1);
            self.comps.truncate(keep);
            self.fds.truncate(keep);
        }
    }

    /// Forgets what is below `rel`, keeping `rel` itself (its entries were cleared).
    pub fn forget_below(&mut self, rel: &[u8]) {
        let target: Vec<&[u8]> = if rel.is_empty() { Vec::new() } else { rel.split(|b| *b == b'/').collect() };
        if target.len() < self.comps.len() && self.comps.iter().zip(&target).all(|(a, b)| a.as_ref() == *b) {
            self.comps.truncate(target.len());
            self.fds.truncate(target.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DirCursor;
    use std::os::fd::AsFd;

    #[test]
    fn follows_a_sorted_walk_and_never_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        let mut deep = String::from("a");
        for _ in 0..200 {
            deep.push_str("/a");
        }
        std::fs::create_dir_all(r.join(&deep)).unwrap();
        std::fs::create_dir_all(r.join("b/c")).unwrap();
        std::os::unix::fs::symlink("b", r.join("l")).unwrap();
        let root = std::fs::File::open(r).unwrap();
        let mut c = DirCursor::new(root.as_fd()).unwrap();
        let ino = |fd: &std::os::fd::OwnedFd| rustix::fs::fstat(fd).unwrap().st_ino;
        let want = |p: &str| rustix::fs::stat(r.join(p)).unwrap().st_ino;
        let mut prefix = String::from("a");
        for _ in 0..200 {
            prefix.push_str("/a");
            assert_eq!(ino(&c.open(prefix.as_bytes()).unwrap()), want(&prefix));
        }
        // Back up the chain, level by level, then elsewhere.
        while let Some(i) = prefix.rfind('/') {
            prefix.truncate(i);
            assert_eq!(ino(&c.open(prefix.as_bytes()).unwrap()), want(&prefix));
        }
        assert_eq!(ino(&c.open(b"b/c").unwrap()), want("b/c"));
        assert_eq!(ino(&c.open(b"").unwrap()), want(""));
        assert!(c.open(b"l/c").is_err(), "a symlink on the way is never followed");
        // A directory replaced after it was opened is looked up again.
        c.open(b"b/c").unwrap();
        std::fs::remove_dir(r.join("b/c")).unwrap();
        std::fs::create_dir(r.join("b/c")).unwrap();
        c.forget(b"b/c");
        assert_eq!(ino(&c.open(b"b/c").unwrap()), want("b/c"));
    }
}

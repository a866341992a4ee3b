//! Mount points created in the rootfs for one RUN only (`/proc`, `/etc/hosts`, `--mount`
//! targets). Like BuildKit's mount-stub cleaner, they are removed afterwards when still
//! empty, and their parent directories get their times back, so no layer records them.

use crate::rootfs::resolve_in_root;
use std::fs::FileTimes;
use std::io;
use std::path::{Path, PathBuf};

/// What was created, in creation order, and the parents whose times must be restored.
#[derive(Debug, Default)]
pub struct Stubs {
    created: Vec<(PathBuf, bool)>,
    parents: Vec<(PathBuf, FileTimes)>,
}

impl Stubs {
    fn note_parent(&mut self, parent: &Path) {
        if self.parents.iter().any(|(p, _)| p == parent) || self.created.iter().any(|(p, _)| p == parent) {
            return;
        }
        if let Ok(m) = std::fs::symlink_metadata(parent) {
            let mut times = FileTimes::new();
            if let Ok(a) = m.accessed() {
                times = times.set_accessed(a);
            }
            if let Ok(t) = m.modified() {
                times = times.set_modified(t);
            }
            self.parents.push((parent.to_path_buf(), times));
        }
    }

    /// Makes sure the in-image directory `path` exists (creating missing parts inside the
    /// root, symlinks resolved as the image sees them) and returns its host path.
    pub fn dir(&mut self, rootfs: &Path, path: &str) -> io::Result<PathBuf> {
        let mut prefix = String::new();
        let mut host = rootfs.to_path_buf();
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            prefix.push('/');
            prefix.push_str(part);
            let resolved = resolve_in_root(rootfs, &prefix)?;
            match std::fs::symlink_metadata(&resolved) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(io::Error::other(format!("{prefix} exists in the image and is not a directory"))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Some(parent) = resolved.parent() {
                        self.note_parent(parent);
                    }
                    std::fs::create_dir(&resolved)?;
                    self.created.push((resolved.clone(), true));
                }
                Err(e) => return Err(e),
            }
            host = resolved;
        }
        Ok(host)
    }

    /// Makes sure the in-image file `path` exists (an empty one is created, parents too).
    pub fn file(&mut self, rootfs: &Path, path: &str) -> io::Result<PathBuf> {
        let trimmed = path.trim_end_matches('/');
        let (parent, _) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
        self.dir(rootfs, parent)?;
        let resolved = resolve_in_root(rootfs, trimmed)?;
        match std::fs::symlink_metadata(&resolved) {
            Ok(m) if m.is_dir() => Err(io::Error::other(format!("{trimmed} is a directory in the image; cannot mount a file there"))),
            Ok(_) => Ok(resolved),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = resolved.parent() {
                    self.note_parent(parent);
                }
                std::fs::File::create(&resolved)?;
                self.created.push((resolved.clone(), false));
                Ok(resolved)
            }
            Err(e) => Err(e),
        }
    }

    /// Removes what was created (if still empty) and restores the parents' times.
    pub fn remove(self) {
        for (path, is_dir) in self.created.iter().rev() {
            if *is_dir {
                let _ = std::fs::remove_dir(path);
            } else if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0) {
                let _ = std::fs::remove_file(path);
            }
        }
        for (parent, times) in self.parents.into_iter().rev() {
            if let Ok(f) = std::fs::File::open(&parent) {
                let _ = f.set_times(times);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Stubs;

    #[test]
    fn stubs_leave_no_trace() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(root.path().join("etc")).expect("mkdir");
        let before = std::fs::metadata(root.path().join("etc")).and_then(|m| m.modified()).expect("mtime");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut stubs = Stubs::default();
        let f = stubs.file(root.path(), "/etc/secret/deep/file").expect("file stub");
        assert!(f.is_file());
        let d = stubs.dir(root.path(), "/cache/x").expect("dir stub");
        assert!(d.is_dir());
        stubs.remove();
        assert!(!root.path().join("etc/secret").exists());
        assert!(!root.path().join("cache").exists());
        let after = std::fs::metadata(root.path().join("etc")).and_then(|m| m.modified()).expect("mtime");
        assert_eq!(before, after, "the parent's mtime is restored");
    }

    #[test]
    fn stubs_keep_written_content() {
        let root = tempfile::tempdir().expect("tempdir");
        let mut stubs = Stubs::default();
        let d = stubs.dir(root.path(), "/out").expect("dir stub");
        std::fs::write(d.join("kept"), "x").expect("write");
        stubs.remove();
        assert!(root.path().join("out/kept").is_file());
    }
}

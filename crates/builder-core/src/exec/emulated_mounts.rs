//! `RUN --mount` where no mount namespace may be made (`none` isolation in a pod without
//! CAP_SYS_ADMIN, where kaniko has no `--mount` at all): what a mount would show is put in
//! place before the RUN and taken away after it, so the snapshot never sees it.
//!
//! - read-only binds (context, stages, images): copied in, removed afterwards;
//! - writable binds (cache mounts, scratch copies): moved in and moved back, so a cache keeps
//!   what the RUN added;
//! - tmpfs: an empty directory, emptied afterwards;
//! - secrets: the file written with its mode and owner, removed afterwards.
//!
//! A target must not hold anything of the image (absent, or an empty directory or file):
//! taking the mount away again must never delete the image's own files.

use super::stubs::Stubs;
use super::{RunMount, RunMountSource};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How one mount is taken away again.
#[derive(Debug)]
enum Undo {
    /// Remove everything inside this directory.
    Clear(PathBuf),
    /// Empty this file (the stub cleaner then removes it if strata created it).
    Truncate(PathBuf),
    /// Move everything inside `from` back into the directory `to`.
    MoveBack { from: PathBuf, to: PathBuf },
    /// Copy the file `from` back to `to`, then truncate `from`.
    CopyBack { from: PathBuf, to: PathBuf },
    /// Give an image directory used as a target its times back.
    Times(PathBuf, std::fs::FileTimes),
}

/// Mounts put in place for one RUN.
#[derive(Debug, Default)]
pub struct Emulated {
    stubs: Stubs,
    undo: Vec<Undo>,
}

/// Puts each of `mounts` in place under `/`; on error, what was done is undone.
pub fn emulate(mounts: &[RunMount]) -> io::Result<Emulated> {
    let mut done = Emulated::default();
    for m in mounts {
        if let Err(e) = done.add(m) {
            done.undo();
            return Err(io::Error::other(format!("RUN --mount at {} (copied in place: this container may not mount): {e}", m.target)));
        }
    }
    Ok(done)
}

impl Emulated {
    fn add(&mut self, m: &RunMount) -> io::Result<()> {
        let root = Path::new("/");
        let as_dir = match &m.source {
            RunMountSource::Bind { host, .. } => host.is_dir(),
            RunMountSource::Tmpfs { .. } => true,
            RunMountSource::File { .. } => false,
        };
        let existing = crate::rootfs::resolve_in_root(root, &m.target).ok().and_then(|p| std::fs::symlink_metadata(p).ok());
        match &existing {
            Some(meta) if !as_dir || !meta.is_dir() => {
                return Err(io::Error::other("the image already has a file there, which a copy would overwrite"));
            }
            _ => {}
        }
        let target = if as_dir { self.stubs.dir(root, &m.target)? } else { self.stubs.file(root, &m.target)? };
        if let Some(meta) = existing {
            if std::fs::read_dir(&target)?.next().is_some() {
                return Err(io::Error::other("the image already has files there, which a copy would mix with"));
            }
            // Runs after the directory is emptied again (undo goes last first).
            let mut times = std::fs::FileTimes::new();
            if let Ok(t) = meta.accessed() {
                times = times.set_accessed(t);
            }
            if let Ok(t) = meta.modified() {
                times = times.set_modified(t);
            }
            self.undo.push(Undo::Times(target.clone(), times));
        }
        match &m.source {
            RunMountSource::Bind { host, readonly: true } => {
                if as_dir {
                    copy_children(host, &target)?;
                    self.undo.push(Undo::Clear(target));
                } else {
                    copy_entry(host, &target)?;
                    self.undo.push(Undo::Truncate(target));
                }
            }
            RunMountSource::Bind { host, readonly: false } => {
                if as_dir {
                    move_children(host, &target)?;
                    self.undo.push(Undo::MoveBack { from: target, to: host.clone() });
                } else {
                    copy_entry(host, &target)?;
                    self.undo.push(Undo::CopyBack { from: target, to: host.clone() });
                }
            }
            RunMountSource::Tmpfs { .. } => self.undo.push(Undo::Clear(target)),
            RunMountSource::File { content, uid, gid, mode } => {
                std::fs::write(&target, content)?;
                std::os::unix::fs::lchown(&target, Some(*uid), Some(*gid))?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode))?;
                self.undo.push(Undo::Truncate(target));
            }
        }
        Ok(())
    }

    /// Takes every mount away (last first) and removes the targets strata created.
    pub fn undo(mut self) {
        for u in self.undo.drain(..).rev() {
            let result = match &u {
                Undo::Clear(dir) => clear(dir),
                Undo::Truncate(file) => std::fs::write(file, b""),
                Undo::MoveBack { from, to } => move_children(from, to),
                Undo::CopyBack { from, to } => copy_entry(from, to).and_then(|()| std::fs::write(from, b"")),
                Undo::Times(dir, times) => std::fs::File::open(dir).and_then(|f| f.set_times(*times)),
            };
            if let Err(e) = result {
                tracing::warn!("taking an emulated RUN --mount away ({u:?}): {e}");
            }
        }
        std::mem::take(&mut self.stubs).remove();
    }
}

/// Removes everything inside `dir`, never following symlinks.
fn clear(dir: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if std::fs::symlink_metadata(&p)?.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
    }
    Ok(())
}

/// Moves every entry of `from` into `to` (renamed, or copied and removed across file systems).
fn move_children(from: &Path, to: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if std::fs::rename(e.path(), &dest).is_err() {
            copy_entry(&e.path(), &dest)?;
            if std::fs::symlink_metadata(e.path())?.is_dir() {
                std::fs::remove_dir_all(e.path())?;
            } else {
                std::fs::remove_file(e.path())?;
            }
        }
    }
    Ok(())
}

/// Copies every entry of the directory `from` into the directory `to`.
fn copy_children(from: &Path, to: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        copy_entry(&e.path(), &to.join(e.file_name()))?;
    }
    Ok(())
}

/// Copies `from` to `to` (a directory with everything below it, a file, or a symlink),
/// keeping modes and owners; other file types are skipped.
fn copy_entry(from: &Path, to: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
    } else if ft.is_dir() {
        if !to.is_dir() {
            std::fs::create_dir(to)?;
        }
        copy_children(from, to)?;
    } else if ft.is_file() {
        std::fs::copy(from, to)?;
    } else {
        return Ok(());
    }
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    if !ft.is_symlink() {
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_and_move_keep_modes_and_round_trip() {
        let d = tempfile::tempdir().expect("tempdir");
        let (src, dst) = (d.path().join("src"), d.path().join("dst"));
        std::fs::create_dir_all(src.join("sub")).expect("mkdir");
        std::fs::write(src.join("sub/f"), "x").expect("write");
        std::fs::set_permissions(src.join("sub/f"), std::fs::Permissions::from_mode(0o640)).expect("chmod");
        std::os::unix::fs::symlink("sub/f", src.join("link")).expect("symlink");
        std::fs::create_dir(&dst).expect("mkdir");
        copy_children(&src, &dst).expect("copy");
        assert_eq!(std::fs::read_to_string(dst.join("sub/f")).expect("read"), "x");
        assert_eq!(std::fs::metadata(dst.join("sub/f")).expect("meta").mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_link(dst.join("link")).expect("link"), Path::new("sub/f"));
        clear(&dst).expect("clear");
        assert!(std::fs::read_dir(&dst).expect("read_dir").next().is_none());
        move_children(&src, &dst).expect("move");
        assert!(std::fs::read_dir(&src).expect("read_dir").next().is_none() && dst.join("sub/f").is_file());
        move_children(&dst, &src).expect("move back");
        assert!(src.join("sub/f").is_file());
    }
}

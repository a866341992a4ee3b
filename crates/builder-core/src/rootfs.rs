//! Resolving in-image paths to host paths without ever leaving the rootfs: symlinks are
//! followed as the image would see them, with `/` meaning the rootfs.

use std::io;
use std::path::{Path, PathBuf};

/// Resolves the in-image path `path` (absolute or relative to `/`) under `rootfs`,
/// following symlinks inside the root; the final component is followed too.
pub fn resolve_in_root(rootfs: &Path, path: &str) -> io::Result<PathBuf> {
    resolve(rootfs, path, true)
}

/// Like `resolve_in_root` but a symlink in the last component is not followed.
pub fn resolve_parent_in_root(rootfs: &Path, path: &str) -> io::Result<PathBuf> {
    resolve(rootfs, path, false)
}

/// Creates each missing directory along the in-image path `dir` (`mode`, owned by `owner` or
/// root), symlinks resolved as the image sees them; `prepare` sees each prefix first.
/// Returns whether it made any.
pub fn make_dirs(rootfs: &Path, dir: &str, owner: Option<(u32, u32)>, mode: u32, prepare: &mut dyn FnMut(&str) -> io::Result<()>) -> io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let mut so_far = String::new();
    let mut made = false;
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        so_far.push('/');
        so_far.push_str(part);
        prepare(&so_far)?;
        let host = resolve_in_root(rootfs, &so_far)?;
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(io::Error::other(format!("{so_far} exists and is not a directory"))),
            Err(_) => {
                std::fs::create_dir(&host)?;
                std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode))?;
                let (uid, gid) = owner.unwrap_or((0, 0));
                std::os::unix::fs::lchown(&host, Some(uid), Some(gid))?;
                made = true;
            }
        }
    }
    Ok(made)
}

fn resolve(rootfs: &Path, path: &str, follow_last: bool) -> io::Result<PathBuf> {
    let rel = strata_snapshot::rootdir::resolve_lexically(rootfs, Path::new(path), follow_last)?;
    Ok(rootfs.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("real/sub")).expect("mkdir");
        std::os::unix::fs::symlink("/real", root.join("abs")).expect("symlink");
        std::os::unix::fs::symlink("../../../../..", root.join("real/up")).expect("symlink");
        assert_eq!(resolve_in_root(root, "/abs/sub").expect("resolve"), root.join("real/sub"));
        assert_eq!(resolve_in_root(root, "/real/up/etc").expect("resolve"), root.join("etc"));
        assert_eq!(resolve_in_root(root, "../../x").expect("resolve"), root.join("x"));
        assert_eq!(resolve_parent_in_root(root, "/abs").expect("resolve"), root.join("abs"));
    }
}

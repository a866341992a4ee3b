//! Resolving in-image paths to host paths without ever leaving the rootfs: symlinks are
//! followed as the image would see them, with `/` meaning the rootfs.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Resolves the in-image path `path` (absolute or relative to `/`) under `rootfs`,
/// following symlinks inside the root; the final component is followed too.
pub fn resolve_in_root(rootfs: &Path, path: &str) -> io::Result<PathBuf> {
    resolve(rootfs, path, true)
}

/// Like `resolve_in_root` but a symlink in the last component is not followed.
pub fn resolve_parent_in_root(rootfs: &Path, path: &str) -> io::Result<PathBuf> {
    resolve(rootfs, path, false)
}

fn resolve(rootfs: &Path, path: &str, follow_last: bool) -> io::Result<PathBuf> {
    let mut pending: Vec<String> = Vec::new();
    push_components(&mut pending, path);
    pending.reverse();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." | "" => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let mut candidate = rootfs.to_path_buf();
        candidate.extend(resolved.iter());
        candidate.push(&part);
        let is_last = pending.is_empty();
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && (follow_last || !is_last) => {
                links += 1;
                if links > 255 {
                    return Err(io::Error::other(format!("too many levels of symbolic links resolving {path}")));
                }
                let target = std::fs::read_link(&candidate)?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                let mut more = Vec::new();
                push_components(&mut more, &target);
                for c in more.into_iter().rev() {
                    pending.push(c);
                }
            }
            _ => resolved.push(part),
        }
    }
    let mut out = rootfs.to_path_buf();
    out.extend(resolved.iter());
    Ok(out)
}

fn push_components(out: &mut Vec<String>, path: &str) {
    for c in Path::new(path).components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => out.push("..".into()),
            _ => {}
        }
    }
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

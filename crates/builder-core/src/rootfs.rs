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

/// Creates each missing directory along the in-image path `dir` (mode 0755, owned by `owner`
/// or root), symlinks resolved as the image sees them; `prepare` sees each prefix first.
/// Returns whether it made any.
pub fn make_dirs(
    rootfs: &Path,
    dir: &str,
    owner: Option<(u32, u32)>,
    prepare: &mut dyn FnMut(&str) -> io::Result<()>,
) -> io::Result<bool> {
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
                std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755))?;
                let (uid, gid) = owner.unwrap_or((0, 0));
                std::os::unix::fs::lchown(&host, Some(uid), Some(gid))?;
                made = true;
            }
        }
    }
    Ok(made)
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

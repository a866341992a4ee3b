//! COPY and ADD: files from the build context or another stage's rootfs into this rootfs,
//! with Docker's destination rules, ownership (`--chown`, default 0:0) and modes (`--chmod`).

use crate::context::DockerIgnore;
use crate::rootfs::{resolve_in_root, resolve_parent_in_root};
use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where COPY reads from.
#[derive(Debug)]
pub struct CopyFrom<'a> {
    /// The directory sources are relative to (the context, or a stage's rootfs).
    pub root: &'a Path,
    /// `.dockerignore` rules (context only).
    pub ignore: Option<&'a DockerIgnore>,
    /// Whether `root` is a rootfs whose absolute symlinks point inside it.
    pub is_rootfs: bool,
}

/// What COPY writes and how.
#[derive(Debug, Clone)]
pub struct CopyRequest {
    /// Source paths or globs as written (already expanded).
    pub sources: Vec<String>,
    /// Destination as written (already expanded).
    pub dest: String,
    /// The stage's working directory, for a relative destination.
    pub workdir: String,
    /// Owner of everything written; 0:0 when absent.
    pub owner: Option<(u32, u32)>,
    /// Mode for everything written (`--chmod`), else the source's.
    pub chmod: Option<u32>,
    /// Patterns excluded from the copy (`--exclude`).
    pub exclude: Vec<String>,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Joins `dest` onto `workdir` when it is relative, keeping a trailing slash.
pub fn absolute_dest(dest: &str, workdir: &str) -> String {
    if dest.starts_with('/') {
        dest.to_string()
    } else {
        let base = if workdir.is_empty() { "/" } else { workdir };
        format!("{}/{}", base.trim_end_matches('/'), dest)
    }
}

/// Every path under `root` (relative, sorted, `/`-separated) that ignore rules keep.
fn walk_relative(root: &Path, ignore: Option<&DockerIgnore>) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = walkdir::WalkDir::new(root).sort_by_file_name().min_depth(1).into_iter();
    while let Some(Ok(entry)) = it.next() {
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path()).to_string_lossy().into_owned();
        if let Some(ig) = ignore {
            if ig.is_excluded(&rel) {
                if entry.file_type().is_dir() && !ig.may_reinclude_below(&rel) {
                    it.skip_current_dir();
                }
                continue;
            }
        }
        out.push(rel);
    }
    out
}

/// Performs the copy into `rootfs`; returns the in-image paths written (top level of each source).
pub fn copy(from: &CopyFrom<'_>, req: &CopyRequest, rootfs: &Path) -> Result<Vec<String>, String> {
    let excludes = crate::context::DockerIgnore::parse(&req.exclude.join("\n")).map_err(|e| format!("invalid --exclude pattern {:?}: {}", e.pattern, e.message))?;
    let dest_abs = absolute_dest(&req.dest, &req.workdir);
    let mut matched: Vec<String> = Vec::new();
    let mut all: Option<Vec<String>> = None;
    for src in &req.sources {
        let cleaned = crate::context::dockerignore::clean(src);
        if has_glob(&cleaned) {
            let pattern = glob::Pattern::new(&cleaned).map_err(|e| format!("invalid pattern {src:?}: {e}"))?;
            let listing = all.get_or_insert_with(|| walk_relative(from.root, from.ignore));
            let hits: Vec<String> = listing.iter().filter(|p| pattern.matches_with(p, glob::MatchOptions { require_literal_separator: true, ..Default::default() })).cloned().collect();
            if hits.is_empty() {
                return Err(format!("no source files were specified: {src} matched nothing in the build context"));
            }
            matched.extend(hits);
        } else {
            if from.ignore.is_some_and(|ig| !cleaned.is_empty() && ig.is_excluded(&cleaned)) {
                return Err(format!("{src}: not found: excluded by .dockerignore"));
            }
            matched.push(cleaned);
        }
    }
    let dest_is_dir = dest_abs.ends_with('/') || dest_abs.ends_with("/.") || matched.len() > 1 || req.sources.len() > 1;
    let mut written = Vec::new();
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for rel in &matched {
        let source = if from.is_rootfs {
            resolve_in_root(from.root, rel).map_err(|e| format!("{rel}: {e}"))?
        } else {
            let p = from.root.join(rel);
            // A symlink named as a source is followed, but never out of the context.
            match std::fs::canonicalize(&p) {
                Ok(c) if c.starts_with(from.root.canonicalize().unwrap_or_else(|_| from.root.to_path_buf())) => c,
                Ok(_) => return Err(format!("{rel}: points outside the build context")),
                Err(_) => return Err(format!("{rel}: file not found in build context or excluded by .dockerignore")),
            }
        };
        let meta = std::fs::metadata(&source).map_err(|_| format!("{rel}: file not found in build context or excluded by .dockerignore"))?;
        let target_in_image = if meta.is_dir() {
            dest_abs.trim_end_matches('/').trim_end_matches("/.").to_string()
        } else {
            let existing_dir = resolve_in_root(rootfs, &dest_abs).is_ok_and(|p| p.is_dir());
            if dest_is_dir || existing_dir {
                let name = Path::new(rel).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                format!("{}/{}", dest_abs.trim_end_matches('/').trim_end_matches("/."), name)
            } else {
                dest_abs.clone()
            }
        };
        let target_in_image = if target_in_image.is_empty() { "/".to_string() } else { target_in_image };
        make_parents(rootfs, &target_in_image, req.owner).map_err(|e| format!("{target_in_image}: {e}"))?;
        let resolved = if meta.is_dir() { resolve_in_root(rootfs, &target_in_image) } else { resolve_parent_in_root(rootfs, &target_in_image) };
        let target = resolved.map_err(|e| format!("{target_in_image}: {e}"))?;
        if meta.is_dir() {
            copy_dir(&source, &target, rel, from, &excludes, req, &mut links).map_err(|e| format!("{rel}: {e}"))?;
        } else {
            copy_entry(&source, &target, req, &mut links).map_err(|e| format!("{rel}: {e}"))?;
        }
        written.push(target_in_image);
    }
    Ok(written)
}

/// Creates the missing parent directories of `path` inside `rootfs` (0755).
fn make_parents(rootfs: &Path, path: &str, owner: Option<(u32, u32)>) -> io::Result<()> {
    let mut so_far = String::new();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        so_far.push('/');
        so_far.push_str(part);
        let host = resolve_in_root(rootfs, &so_far)?;
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => return Err(io::Error::other(format!("{so_far} exists and is not a directory"))),
            Err(_) => {
                std::fs::create_dir(&host)?;
                std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755))?;
                let (uid, gid) = owner.unwrap_or((0, 0));
                std::os::unix::fs::lchown(&host, Some(uid), Some(gid))?;
            }
        }
    }
    Ok(())
}

fn copy_dir(
    source: &Path,
    target: &Path,
    rel: &str,
    from: &CopyFrom<'_>,
    excludes: &DockerIgnore,
    req: &CopyRequest,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let mut it = walkdir::WalkDir::new(source).sort_by_file_name().into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.map_err(io::Error::other)?;
        let sub = entry.path().strip_prefix(source).unwrap_or(Path::new(""));
        let sub_str = sub.to_string_lossy();
        if !sub_str.is_empty() {
            let ctx_rel = if rel.is_empty() { sub_str.to_string() } else { format!("{rel}/{sub_str}") };
            let ignored = from.ignore.is_some_and(|ig| ig.is_excluded(&ctx_rel)) || (!excludes.is_empty() && excludes.is_excluded(&sub_str));
            if ignored {
                let descend = from.ignore.is_some_and(|ig| ig.may_reinclude_below(&ctx_rel));
                if entry.file_type().is_dir() && !descend {
                    it.skip_current_dir();
                }
                continue;
            }
        }
        let dest = if sub_str.is_empty() { target.to_path_buf() } else { target.join(sub) };
        if entry.file_type().is_dir() && sub_str.is_empty() {
            match std::fs::symlink_metadata(&dest) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => std::fs::remove_file(&dest)?,
                Err(_) => {}
            }
        }
        copy_entry(entry.path(), &dest, req, links)?;
    }
    Ok(())
}

/// Copies one file, directory (itself, not contents), or symlink, with metadata.
fn copy_entry(source: &Path, dest: &Path, req: &CopyRequest, links: &mut HashMap<(u64, u64), PathBuf>) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(source)?;
    let ft = meta.file_type();
    if let Ok(existing) = std::fs::symlink_metadata(dest) {
        if !(existing.is_dir() && ft.is_dir()) {
            if existing.is_dir() {
                std::fs::remove_dir_all(dest)?;
            } else {
                std::fs::remove_file(dest)?;
            }
        }
    }
    let (uid, gid) = req.owner.unwrap_or((0, 0));
    if ft.is_dir() {
        if std::fs::symlink_metadata(dest).is_err() {
            std::fs::create_dir(dest)?;
        }
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(source)?, dest)?;
        std::os::unix::fs::lchown(dest, Some(uid), Some(gid))?;
        set_times(dest, &meta)?;
        return Ok(());
    } else if ft.is_file() {
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                std::fs::hard_link(first, dest)?;
                return Ok(());
            }
            links.insert((meta.dev(), meta.ino()), dest.to_path_buf());
        }
        std::fs::copy(source, dest)?;
    } else {
        // Sockets, FIFOs and devices in a build context are skipped, as Docker does.
        return Ok(());
    }
    let mode = req.chmod.unwrap_or(meta.mode() & 0o7777);
    std::os::unix::fs::lchown(dest, Some(uid), Some(gid))?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode))?;
    set_times(dest, &meta)
}

fn set_times(dest: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(nix::fcntl::AT_FDCWD, dest, &atime, &mtime, UtimensatFlags::NoFollowSymlink).map_err(io::Error::from)
}

//! COPY and ADD: files from the build context or another stage's rootfs into this rootfs,
//! with BuildKit's rules (its Dockerfile front end and tonistiigi/fsutil's copier):
//!
//! - a source is a path or a Go `filepath.Match` pattern matched one path component at a time
//!   (`*/x.txt`), relative to the source root; `..` and symlinks never leave that root, and a
//!   symlink named as a source (or matched) is followed, while symlinks inside copied
//!   directories are copied as symlinks; hardlinks between copied files stay hardlinks;
//! - a directory source copies its contents; the destination directory, when COPY creates it,
//!   is made like a missing parent (below), not after the source directory; an existing one
//!   keeps its own metadata;
//! - a file goes to `dest/<name>` when `dest` ends with `/` (or is `.`), is an existing
//!   directory; otherwise it becomes `dest`. Several sources are copied one after the other onto
//!   the same `dest` (BuildKit issues one copy per source, and checks no trailing slash;
//!   dockerd 20.10 checked): `COPY a b /x` leaves the file /x with b's content, as several
//!   matches of one pattern do; buildah would make /x a directory;
//! - a relative `dest` is taken from WORKDIR; missing parents are created 0755, or with the
//!   octal `--chmod` mode (fsutil's MkdirAll since 2025, BuildKit's testCopyChmod: `COPY
//!   --chmod=777 foo /parent/foo` makes /parent 0777), owned by the `--chown` owner or root
//!   (also for `--from`: the source's owner is not carried to them);
//! - owner: `--chown`, else 0:0 for context files and the source's own for `--from` files;
//!   mode: `--chmod` (files and directories, not symlinks), else the source's;
//! - a wildcard that matches nothing copies nothing (BuildKit's AllowEmptyWildcard, even when
//!   it is the only source); a plain path that does not exist is an error;
//! - `.dockerignore` and `--exclude` follow Docker's pattern semantics; `--parents` keeps each
//!   source's path below the context root (or below a `/./` pivot in the source);
//! - `--link` gives the same files, except that a symlink on the way to `dest` is replaced by a
//!   directory instead of followed (BuildKit copies into an empty tree and links that layer).

use crate::context::DockerIgnore;
use crate::context::filepath_match::{self, has_meta};
use crate::rootfs::{resolve_in_root, resolve_parent_in_root};
use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a COPY or ADD could not copy its sources. Paths are as written or as in the image.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source pattern is not a valid Go `filepath.Match` pattern.
    #[error("invalid pattern {pattern:?}: {message}")]
    Pattern { pattern: String, message: String },
    /// An `--exclude` pattern is not valid.
    #[error("invalid --exclude pattern {pattern:?}: {message}")]
    Exclude { pattern: String, message: String },
    /// The source is left out of the context by `.dockerignore`.
    #[error("{path}: not found: the path is excluded by .dockerignore (remove it from .dockerignore or from this instruction)")]
    Excluded { path: String },
    /// The source does not exist where it is copied from.
    #[error("{path}: file not found in the {place} (check the path, and that .dockerignore keeps it)")]
    NotFound { path: String, place: String },
    /// A directory would be copied onto something that is not a directory.
    #[error("cannot copy the directory {path} to {target}: it exists and is not a directory (remove it first or pick another destination)")]
    NotADirectory { path: String, target: String },
    /// An ADD archive could not be read or unpacked.
    #[error("{path}: {message}")]
    Archive { path: String, message: String },
    /// A file operation failed on `path`.
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Wraps an I/O error with the path (as written or in the image) it concerns.
fn io_at(path: impl std::fmt::Display) -> impl FnOnce(io::Error) -> CopyError {
    let path = path.to_string();
    move |source| CopyError::Io { path, source }
}

/// Where COPY reads from.
#[derive(Debug)]
pub struct CopyFrom<'a> {
    /// The directory sources are relative to (the context, or a stage's rootfs).
    pub root: &'a Path,
    /// `.dockerignore` rules (context only).
    pub ignore: Option<&'a DockerIgnore>,
    /// Whether `root` is a rootfs (another stage or image): file owners are kept.
    pub is_rootfs: bool,
}

/// What COPY writes and how.
#[derive(Debug, Clone, Default)]
pub struct CopyRequest {
    /// Source paths or globs as written (already expanded).
    pub sources: Vec<String>,
    /// Destination as written (already expanded).
    pub dest: String,
    /// The stage's working directory, for a relative destination.
    pub workdir: String,
    /// Owner of everything written; 0:0 (context) or the source's (`--from`) when absent.
    pub owner: Option<(u32, u32)>,
    /// Mode for everything written except symlinks (`--chmod`), else the source's.
    pub chmod: Option<u32>,
    /// `--chmod` in symbolic form, applied to each source mode (when `chmod` is None).
    pub chmod_symbolic: Option<super::chmod::SymbolicMode>,
    /// Patterns excluded from the copy (`--exclude`).
    pub exclude: Vec<String>,
    /// `--parents`: keep each source's path (below a `/./` pivot, if any) under `dest`.
    pub parents: bool,
    /// ADD: local tar archives (any compression) are extracted into `dest` instead of copied.
    pub unpack_archives: bool,
    /// Treat `dest` as a directory even with one source (ADD of a URL into `dest/`).
    pub dest_is_dir: bool,
    /// `--link`: the copy cannot read the previous state, so symlinks on the way to `dest`
    /// are not followed; they are replaced by directories, as the linked layer would do.
    pub link: bool,
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

/// Whether the destination as written names a directory (`dir/`, `.`, empty). BuildKit cleans
/// `dir/.` to `dir` first, so that one names a file.
pub fn dest_names_dir(dest: &str) -> bool {
    dest.ends_with('/') || dest == "." || dest.is_empty()
}

/// One source path to copy, relative to the source root.
#[derive(Debug, Clone)]
struct Item {
    /// Path below the source root (`""` for the root itself).
    rel: String,
    /// Path kept under the destination with `--parents` (`""` otherwise).
    keep: String,
    /// Path `--exclude` patterns are matched from (the source's parent, or a wildcard's base).
    base: String,
}

fn parent_of(rel: &str) -> String {
    rel.rfind('/').map_or_else(String::new, |i| rel[..i].to_string())
}

fn base_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

fn join_rel(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// Splits a `--parents` source at its `/./` pivot: (the part dropped, the whole cleaned path).
fn pivot(src: &str) -> (String, String) {
    let trimmed = src.trim_start_matches('/');
    match trimmed.find("/./") {
        Some(i) => (crate::context::dockerignore::clean(&trimmed[..i]), crate::context::dockerignore::clean(trimmed)),
        None => (String::new(), crate::context::dockerignore::clean(trimmed)),
    }
}

/// The paths below `root` matching `pattern` component by component (fsutil's
/// `ResolveWildcards`), sorted, skipping what `.dockerignore` leaves out of the context.
fn resolve_wildcards(root: &Path, pattern: &str, ignore: Option<&DockerIgnore>) -> Result<Vec<String>, CopyError> {
    let mut found = vec![String::new()];
    for comp in pattern.split('/') {
        let mut next = Vec::new();
        for dir in &found {
            if !has_meta(comp) {
                let unescaped = comp.to_string();
                let cand = join_rel(dir, &unescaped);
                if resolve_parent_in_root(root, &cand).is_ok_and(|p| std::fs::symlink_metadata(p).is_ok()) {
                    next.push(cand);
                }
                continue;
            }
            let Ok(host) = resolve_in_root(root, if dir.is_empty() { "/" } else { dir }) else { continue };
            let Ok(entries) = std::fs::read_dir(&host) else { continue };
            let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            for name in names {
                if filepath_match::matches(comp, &name).map_err(|e| CopyError::Pattern { pattern: pattern.to_string(), message: e.to_string() })? {
                    next.push(join_rel(dir, &name));
                }
            }
        }
        found = next;
    }
    Ok(found.into_iter().filter(|p| !ignore.is_some_and(|ig| ig.is_excluded(p))).collect())
}

/// The `--exclude` patterns of `req`, parsed.
fn exclude_patterns(req: &CopyRequest) -> Result<DockerIgnore, CopyError> {
    DockerIgnore::from_patterns(&req.exclude).map_err(|e| CopyError::Exclude { pattern: e.pattern, message: e.message })
}

/// The source paths `req` names in `from`, wildcards resolved, in copy order.
fn items(from: &CopyFrom<'_>, req: &CopyRequest) -> Result<Vec<Item>, CopyError> {
    let mut items: Vec<Item> = Vec::new();
    for src in &req.sources {
        let (dropped, cleaned) = pivot(src);
        let cleaned = crate::context::dockerignore::clean(&cleaned);
        let keep_of = |rel: &str| -> String {
            if !req.parents {
                return String::new();
            }
            rel.strip_prefix(&dropped).map_or(rel, |r| r.trim_start_matches('/')).to_string()
        };
        if has_meta(&cleaned) {
            let hits = resolve_wildcards(from.root, &cleaned, from.ignore)?;
            if hits.is_empty() {
                tracing::info!(source = %src, "the wildcard matches nothing in the {}: nothing copied for it, as BuildKit does", where_from(from));
            }
            let base = parent_of(&cleaned);
            for rel in hits {
                items.push(Item { keep: keep_of(&rel), base: base.clone(), rel });
            }
        } else {
            if from.ignore.is_some_and(|ig| ig.is_excluded(&cleaned)) {
                return Err(CopyError::Excluded { path: src.clone() });
            }
            items.push(Item { keep: keep_of(&cleaned), base: parent_of(&cleaned), rel: cleaned });
        }
    }
    Ok(items)
}

/// Performs the copy into `rootfs`; returns the in-image paths written (top level of each source).
pub fn copy(from: &CopyFrom<'_>, req: &CopyRequest, rootfs: &Path) -> Result<Vec<String>, CopyError> {
    let excludes = exclude_patterns(req)?;
    let dest_abs = absolute_dest(&req.dest, &req.workdir);
    let items = items(from, req)?;
    // Several sources, and several matches of one pattern, are copied one after the other onto
    // the same `dest` (BuildKit's one copy action per source, fsutil per match): a file source
    // lands in `dest` only if it names or already is a directory, so the last one wins.
    let dest_is_dir = req.dest_is_dir || dest_names_dir(&req.dest);
    let dest_dir = filepath_match::go_clean(&dest_abs);
    let mut written = Vec::new();
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let ctx = Ctx { from, req, excludes: &excludes, keep_existing: None };
    for item in &items {
        let source = resolve_in_root(from.root, &item.rel).map_err(io_at(&item.rel))?;
        let meta = std::fs::metadata(&source).map_err(|_| CopyError::NotFound { path: show(&item.rel).to_string(), place: where_from(from).to_string() })?;
        if excludes_top(&ctx, item) {
            continue;
        }
        if req.parents && !item.keep.is_empty() {
            make_parent_copies(&ctx, rootfs, &dest_dir, item).map_err(io_at(&item.rel))?;
        }
        let archive = req.unpack_archives && meta.is_file() && crate::context::archive::is_tar_archive(&source);
        let target_in_image = if meta.is_dir() || archive {
            join_abs(&dest_dir, &item.keep)
        } else {
            let existing_dir = resolve_in_root(rootfs, &dest_dir).is_ok_and(|p| p.is_dir());
            if req.parents {
                join_abs(&dest_dir, &item.keep)
            } else if dest_is_dir || existing_dir {
                join_abs(&dest_dir, base_name(&item.rel))
            } else {
                dest_dir.clone()
            }
        };
        make_parents(rootfs, &target_in_image, req.owner, created_dir_mode(req), req.link).map_err(io_at(&target_in_image))?;
        if req.link && (meta.is_dir() || archive) {
            replace_symlink_with_dir(rootfs, &target_in_image).map_err(io_at(&target_in_image))?;
        }
        if archive {
            let target = resolve_in_root(rootfs, &target_in_image).map_err(io_at(&target_in_image))?;
            ensure_dir(&target, req.owner).map_err(io_at(&target_in_image))?;
            unpack_archive(&source, &target, rootfs, req.owner, &mut links)?;
        } else if meta.is_dir() {
            let target = resolve_in_root(rootfs, &target_in_image).map_err(io_at(&target_in_image))?;
            let created = match std::fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => false,
                // fsutil's copier refuses too: BuildKit fails with "cannot copy to non-directory".
                Ok(_) => return Err(CopyError::NotADirectory { path: show(&item.rel).to_string(), target: target_in_image }),
                Err(_) => true,
            };
            // fsutil's prepareTargetDir: a missing destination is made by MkdirAll, as its
            // parents are (mode 0755 or --chmod, owner --chown or root), never after the source.
            if created {
                std::fs::create_dir(&target).map_err(io_at(&target_in_image))?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(created_dir_mode(req))).map_err(io_at(&target_in_image))?;
                chown(&target, req.owner.unwrap_or((0, 0))).map_err(io_at(&target_in_image))?;
            }
            let mut pending = Vec::new();
            copy_children(&ctx, &source, &target, &item.rel, "", &mut pending, &mut links).map_err(io_at(show(&item.rel)))?;
        } else {
            let target = resolve_parent_in_root(rootfs, &target_in_image).map_err(io_at(&target_in_image))?;
            copy_entry(&ctx, &source, &target, &mut links).map_err(io_at(show(&item.rel)))?;
        }
        written.push(if target_in_image.is_empty() { "/".to_string() } else { target_in_image });
    }
    Ok(written)
}

fn show(rel: &str) -> &str {
    if rel.is_empty() { "." } else { rel }
}

fn where_from(from: &CopyFrom<'_>) -> &'static str {
    if from.is_rootfs { "source image" } else { "build context" }
}

fn join_abs(dir: &str, rel: &str) -> String {
    let dir = dir.trim_end_matches('/');
    if rel.is_empty() { if dir.is_empty() { "/".into() } else { dir.into() } } else { format!("{dir}/{rel}") }
}

struct Ctx<'a> {
    from: &'a CopyFrom<'a>,
    req: &'a CopyRequest,
    excludes: &'a DockerIgnore,
    /// Source directories (relative) whose existing destination keeps its own metadata.
    keep_existing: Option<&'a std::collections::HashSet<String>>,
}

impl Ctx<'_> {
    /// Whether the source path `rel` is left out, and whether to look inside it anyway. Called
    /// only for entries whose parent the walk entered, so (as in BuildKit's walker) the entry's
    /// own match decides; pruned directories are never entered.
    fn excluded(&self, ctx_rel: &str, ex_rel: &str) -> (bool, bool) {
        let by_ignore = self.from.ignore.is_some_and(|ig| !ig.is_empty() && ig.matches(ctx_rel));
        let by_exclude = !self.excludes.is_empty() && self.excludes.matches(ex_rel);
        if !(by_ignore || by_exclude) {
            return (false, false);
        }
        let descend =
            (!by_ignore || self.from.ignore.is_some_and(|ig| ig.may_reinclude_below(ctx_rel))) && (!by_exclude || self.excludes.may_reinclude_below(ex_rel));
        (true, descend)
    }

    fn owner_of(&self, meta: &std::fs::Metadata) -> (u32, u32) {
        match self.req.owner {
            Some(o) => o,
            None if self.from.is_rootfs => (meta.uid(), meta.gid()),
            None => (0, 0),
        }
    }
}

/// Whether a whole source is dropped by `--exclude` (a matched file or directory itself).
fn excludes_top(ctx: &Ctx<'_>, item: &Item) -> bool {
    if ctx.excludes.is_empty() || item.rel.is_empty() {
        return false;
    }
    let ex_rel = item.rel.strip_prefix(&item.base).map_or(item.rel.as_str(), |r| r.trim_start_matches('/'));
    !ex_rel.is_empty() && ctx.excludes.is_excluded(ex_rel) && !ctx.excludes.may_reinclude_below(ex_rel)
}

/// Extracts the archive `source` into the directory `target` as BuildKit's ADD does: entries
/// keep the archive's owners unless `--chown` is given (Untar's ChownOpts), `--chmod` does not
/// apply, and existing directories in `target` are merged into. The archive is unpacked into a
/// scratch directory beside the rootfs first (confined by the snapshot crate's unpacker), then
/// merged like a copy from another stage, so hardlinks and symlinks stay as they are.
fn unpack_archive(source: &Path, target: &Path, rootfs: &Path, owner: Option<(u32, u32)>, links: &mut HashMap<(u64, u64), PathBuf>) -> Result<(), CopyError> {
    let name = rootfs.file_name().map_or_else(|| "rootfs".into(), |n| n.to_string_lossy().into_owned());
    let scratch = rootfs.with_file_name(format!("{name}.add-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(io_at(scratch.display()))?;
    let result = (|| {
        let rootless = !nix::unistd::geteuid().is_root();
        let archive = |message: String| CopyError::Archive { path: source.display().to_string(), message };
        let explicit = crate::context::archive::entry_names(source).map_err(|e| archive(format!("cannot read it: {e}")))?;
        crate::context::archive::extract(source, &scratch, rootless).map_err(|e| archive(e.to_string()))?;
        // Entries get the --chown owner; directories the archive only implies are root's 0755
        // and leave existing directories as they are (BuildKit's applyRootArchive).
        let mut implied = std::collections::HashSet::new();
        for entry in walkdir::WalkDir::new(&scratch).min_depth(1) {
            let entry = entry.map_err(|e| CopyError::Io { path: scratch.display().to_string(), source: e.into() })?;
            let rel = entry.path().strip_prefix(&scratch).unwrap_or(entry.path()).to_string_lossy().into_owned();
            if entry.file_type().is_dir() && !explicit.contains(&rel) {
                chown(entry.path(), (0, 0)).map_err(io_at(entry.path().display()))?;
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o755)).map_err(io_at(entry.path().display()))?;
                implied.insert(rel);
            } else if let Some(o) = owner {
                chown(entry.path(), o).map_err(io_at(entry.path().display()))?;
            }
        }
        let from = CopyFrom { root: &scratch, ignore: None, is_rootfs: true };
        let req = CopyRequest::default();
        let none = DockerIgnore::default();
        let ctx = Ctx { from: &from, req: &req, excludes: &none, keep_existing: Some(&implied) };
        copy_children(&ctx, &scratch, target, "", "", &mut Vec::new(), links).map_err(io_at(target.display()))
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Creates the directories of `--parents` paths with the metadata of their source directories.
fn make_parent_copies(ctx: &Ctx<'_>, rootfs: &Path, dest_dir: &str, item: &Item) -> io::Result<()> {
    let dropped = item.rel.strip_suffix(&item.keep).unwrap_or("").trim_end_matches('/');
    let comps: Vec<&str> = item.keep.split('/').collect();
    let mut so_far = String::new();
    for comp in comps.iter().take(comps.len().saturating_sub(1)) {
        so_far = join_rel(&so_far, comp);
        let in_image = join_abs(dest_dir, &so_far);
        make_parents(rootfs, &in_image, ctx.req.owner, created_dir_mode(ctx.req), ctx.req.link)?;
        let host = resolve_in_root(rootfs, &in_image)?;
        if std::fs::symlink_metadata(&host).is_err() {
            let src = resolve_in_root(ctx.from.root, &join_rel(dropped, &so_far))?;
            let meta = std::fs::metadata(&src)?;
            std::fs::create_dir(&host)?;
            apply_meta(ctx, &src, &meta, &host)?;
        }
    }
    Ok(())
}

/// The mode of the directories COPY creates on the way to its destination: the octal
/// `--chmod` (a symbolic one does not apply to them), else 0755.
fn created_dir_mode(req: &CopyRequest) -> u32 {
    req.chmod.unwrap_or(0o755)
}

/// Creates the missing parent directories of `path` inside `rootfs` (`mode`, `owner` or root).
/// With `link`, a symlink on the way is replaced by such a directory instead of followed.
fn make_parents(rootfs: &Path, path: &str, owner: Option<(u32, u32)>, mode: u32, link: bool) -> io::Result<()> {
    let parent = path.trim_end_matches('/').rsplit_once('/').map_or("", |(p, _)| p);
    crate::rootfs::make_dirs(rootfs, parent, owner, mode, &mut |prefix| if link { replace_symlink_with_dir(rootfs, prefix) } else { Ok(()) })?;
    Ok(())
}

/// `--link`: a symlink at `path` (its parents already real directories) becomes an empty
/// directory, as applying the linked layer's directory entry over it would leave.
fn replace_symlink_with_dir(rootfs: &Path, path: &str) -> io::Result<()> {
    let host = resolve_parent_in_root(rootfs, path)?;
    if std::fs::symlink_metadata(&host).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(&host)?;
        std::fs::create_dir(&host)?;
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Makes `target` a directory (0755, `owner` or root) unless it is one.
fn ensure_dir(target: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    match std::fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::other("exists and is not a directory")),
        Err(_) => {
            std::fs::create_dir(target)?;
            std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o755))?;
            chown(target, owner.unwrap_or((0, 0)))
        }
    }
}

/// Copies the entries of the directory `source` into the directory `target`.
/// `pending` holds excluded directories entered because an exception may re-include
/// something below them: they are created only when something inside is copied.
fn copy_children(
    ctx: &Ctx<'_>,
    source: &Path,
    target: &Path,
    ctx_rel: &str,
    ex_rel: &str,
    pending: &mut Vec<(PathBuf, PathBuf, bool)>,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(source)?.map(|e| e.map(|e| e.file_name())).collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let name_str = name.to_string_lossy();
        let child_ctx = join_rel(ctx_rel, &name_str);
        let child_ex = join_rel(ex_rel, &name_str);
        let src = source.join(&name);
        let dst = target.join(&name);
        let meta = std::fs::symlink_metadata(&src)?;
        let (excluded, descend) = ctx.excluded(&child_ctx, &child_ex);
        if excluded {
            if meta.is_dir() && descend {
                pending.push((src.clone(), dst.clone(), false));
                copy_children(ctx, &src, &dst, &child_ctx, &child_ex, pending, links)?;
                if let Some((_, _, true)) = pending.pop() {
                    set_times(&dst, &meta)?;
                }
            }
            continue;
        }
        for (psrc, pdst, made) in pending.iter_mut() {
            if !*made {
                copy_entry(ctx, psrc, pdst, links)?;
                *made = true;
            }
        }
        let keep = meta.is_dir() && ctx.keep_existing.is_some_and(|k| k.contains(&child_ctx)) && dst.is_dir();
        if !keep {
            copy_entry(ctx, &src, &dst, links)?;
        }
        if meta.is_dir() {
            copy_children(ctx, &src, &dst, &child_ctx, &child_ex, &mut Vec::new(), links)?;
            if !keep {
                set_times(&dst, &meta)?;
            }
        }
    }
    Ok(())
}

/// Copies one file, directory (itself, not contents), or symlink, with metadata.
fn copy_entry(ctx: &Ctx<'_>, source: &Path, dest: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(source)?;
    let ft = meta.file_type();
    if let Ok(existing) = std::fs::symlink_metadata(dest)
        && !(existing.is_dir() && ft.is_dir())
    {
        if existing.is_dir() {
            std::fs::remove_dir_all(dest)?;
        } else {
            std::fs::remove_file(dest)?;
        }
    }
    if ft.is_dir() {
        if std::fs::symlink_metadata(dest).is_err() {
            std::fs::create_dir(dest)?;
        }
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(source)?, dest)?;
        chown(dest, ctx.owner_of(&meta))?;
        return set_times(dest, &meta);
    } else if ft.is_file() {
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                return std::fs::hard_link(first, dest);
            }
            links.insert((meta.dev(), meta.ino()), dest.to_path_buf());
        }
        std::fs::copy(source, dest)?;
    } else if ctx.from.is_rootfs && !ft.is_socket() {
        // Another stage's FIFOs and device nodes are recreated, as fsutil's copier does.
        let kind = if ft.is_fifo() {
            nix::sys::stat::SFlag::S_IFIFO
        } else if ft.is_char_device() {
            nix::sys::stat::SFlag::S_IFCHR
        } else {
            nix::sys::stat::SFlag::S_IFBLK
        };
        let perm = nix::sys::stat::Mode::from_bits_truncate(meta.mode() & 0o7777);
        if let Err(e) = nix::sys::stat::mknod(dest, kind, perm, meta.rdev()) {
            tracing::warn!(path = %dest.display(), "special file not copied: {e}");
            return Ok(());
        }
    } else {
        // Sockets, FIFOs and devices in a build context are skipped: the context never sends them.
        return Ok(());
    }
    apply_meta(ctx, source, &meta, dest)
}

/// Owner, mode, extended attributes and times of `source` (or `--chown`/`--chmod`) onto the
/// non-symlink `dest`.
fn apply_meta(ctx: &Ctx<'_>, source: &Path, meta: &std::fs::Metadata, dest: &Path) -> io::Result<()> {
    chown(dest, ctx.owner_of(meta))?;
    let mode = match (&ctx.req.chmod, &ctx.req.chmod_symbolic) {
        (Some(m), _) => *m,
        (None, Some(sym)) => sym.apply(meta.mode(), meta.is_dir()),
        (None, None) => meta.mode() & 0o7777,
    };
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode))?;
    copy_xattrs(source, dest);
    set_times(dest, meta)
}

/// Extended attributes of `source` onto `dest`, after the chown that would clear
/// `security.capability`. Failures are logged and ignored, as BuildKit's copier does.
fn copy_xattrs(source: &Path, dest: &Path) {
    let mut names = vec![0u8; 64 * 1024];
    let Ok(n) = rustix::fs::llistxattr(source, &mut names[..]) else { return };
    let mut value = vec![0u8; 64 * 1024];
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(len) = rustix::fs::lgetxattr(source, name, &mut value[..]) else { continue };
        if let Err(e) = rustix::fs::lsetxattr(dest, name, &value[..len], rustix::fs::XattrFlags::empty()) {
            tracing::debug!(path = %dest.display(), name = %String::from_utf8_lossy(name), "extended attribute not copied: {e}");
        }
    }
}

/// `lchown`; without root, a refused change is tolerated (the rootless path records owners
/// through its user namespace).
pub(crate) fn chown(path: &Path, (uid, gid): (u32, u32)) -> io::Result<()> {
    match std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied && !nix::unistd::geteuid().is_root() => {
            tracing::debug!(path = %path.display(), uid, gid, "ownership not changed: not root");
            Ok(())
        }
        other => other,
    }
}

fn set_times(dest: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(nix::fcntl::AT_FDCWD, dest, &atime, &mtime, UtimensatFlags::NoFollowSymlink).map_err(io::Error::from)
}

mod digest;
pub use digest::source_digest;

#[cfg(test)]
mod tests;

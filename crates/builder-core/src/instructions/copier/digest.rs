//! What a COPY/ADD would read from its sources, as one digest: the cache key of the step,
//! known before the destination rootfs exists. It walks the same sources as [`super::copy`],
//! with the same `.dockerignore` and `--exclude` rules, and covers everything the copy takes
//! from them (paths, types, modes, owners where they are kept, content, link targets,
//! hardlinks, extended attributes) except times. Where the walk cannot tell whether an entry
//! is copied (an excluded directory entered for a possible exception), it counts it: a
//! digest may change when the copy would not, never the other way round.

use super::{CopyError, CopyFrom, CopyRequest, Ctx, exclude_patterns, excludes_top, items, resolve_in_root};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The digest of the sources `req` copies out of `from` (`req.owner` should be None: a
/// `--chown` is part of the instruction's text, and resolving it needs the rootfs).
pub fn source_digest(from: &CopyFrom<'_>, req: &CopyRequest) -> Result<String, CopyError> {
    let excludes = exclude_patterns(req)?;
    let ctx = Ctx { from, req, excludes: &excludes, keep_existing: None };
    let mut h = Sha256::new();
    let mut links = HashMap::new();
    for item in items(from, req)? {
        field(&mut h, item.rel.as_bytes());
        field(&mut h, item.keep.as_bytes());
        if excludes_top(&ctx, &item) {
            field(&mut h, b"excluded");
            continue;
        }
        let source = resolve_in_root(from.root, &item.rel).map_err(|source| CopyError::Io { path: item.rel.clone(), source })?;
        // A source named through a symlink is followed, as the copy follows it.
        let meta = std::fs::metadata(&source)
            .map_err(|_| CopyError::NotFound { path: if item.rel.is_empty() { ".".into() } else { item.rel.clone() }, place: "source".into() })?;
        let walked = entry(&mut h, &ctx, &source, &item.rel, &meta, &mut links)
            .and_then(|()| if meta.is_dir() { children(&mut h, &ctx, &source, &item.rel, "", &mut links) } else { Ok(()) });
        walked.map_err(|source| CopyError::Io { path: item.rel.clone(), source })?;
    }
    Ok(hex::encode(h.finalize()))
}

/// The entries below the directory `dir`, in the copy's order and with its exclusion rules.
fn children(h: &mut Sha256, ctx: &Ctx<'_>, dir: &Path, ctx_rel: &str, ex_rel: &str, links: &mut HashMap<(u64, u64), String>) -> io::Result<()> {
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.file_name())).collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let name_str = name.to_string_lossy();
        let child_ctx = super::join_rel(ctx_rel, &name_str);
        let child_ex = super::join_rel(ex_rel, &name_str);
        let path = dir.join(&name);
        let meta = std::fs::symlink_metadata(&path)?;
        let (excluded, descend) = ctx.excluded(&child_ctx, &child_ex);
        if excluded && !(meta.is_dir() && descend) {
            continue;
        }
        field(h, if excluded { b"entered" } else { b"copied" });
        entry(h, ctx, &path, &child_ctx, &meta, links)?;
        if meta.is_dir() {
            children(h, ctx, &path, &child_ctx, &child_ex, links)?;
        }
    }
    Ok(())
}

/// One entry: path, type and mode, owner as the copy sets it, then its content.
fn entry(h: &mut Sha256, ctx: &Ctx<'_>, path: &Path, rel: &str, meta: &std::fs::Metadata, links: &mut HashMap<(u64, u64), String>) -> io::Result<()> {
    field(h, rel.as_bytes());
    h.update(meta.mode().to_le_bytes());
    let (uid, gid) = ctx.owner_of(meta);
    h.update(uid.to_le_bytes());
    h.update(gid.to_le_bytes());
    let ft = meta.file_type();
    if ft.is_symlink() {
        field(h, std::fs::read_link(path)?.as_os_str().as_encoded_bytes());
    } else if ft.is_file() {
        if meta.nlink() > 1 {
            // Hardlinks stay hardlinks: the second name is a link to the first, not a copy.
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                field(h, b"hardlink");
                field(h, first.as_bytes());
                return Ok(());
            }
            links.insert((meta.dev(), meta.ino()), rel.to_string());
        }
        h.update(meta.len().to_le_bytes());
        let mut f = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    } else if !ft.is_dir() {
        h.update(meta.rdev().to_le_bytes());
    }
    xattrs(h, path);
    Ok(())
}

/// Extended attributes, sorted by name (the copy carries them over).
fn xattrs(h: &mut Sha256, path: &Path) {
    let mut names = vec![0u8; 64 * 1024];
    let Ok(n) = rustix::fs::llistxattr(path, &mut names[..]) else { return };
    let mut sorted: Vec<&[u8]> = names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()).collect();
    sorted.sort();
    let mut value = vec![0u8; 64 * 1024];
    for name in sorted {
        let Ok(len) = rustix::fs::lgetxattr(path, name, &mut value[..]) else { continue };
        field(h, name);
        field(h, &value[..len]);
    }
}

/// A length-prefixed field, so that adjacent fields cannot run into each other.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::DockerIgnore;
    use std::os::unix::fs::PermissionsExt;

    fn digest(root: &Path, ignore: Option<&DockerIgnore>, sources: &[&str], exclude: &[&str]) -> String {
        let from = CopyFrom { root, ignore, is_rootfs: false };
        let req = CopyRequest {
            sources: sources.iter().map(|s| s.to_string()).collect(),
            dest: "/app/".into(),
            workdir: "/".into(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        source_digest(&from, &req).expect("digest")
    }

    #[test]
    fn follows_what_the_copy_reads_and_nothing_else() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        std::fs::create_dir_all(root.join("src/sub")).expect("mkdir");
        std::fs::write(root.join("src/a.rs"), "fn a() {}").expect("write");
        std::fs::write(root.join("src/sub/b.rs"), "fn b() {}").expect("write");
        std::fs::write(root.join("src/notes.tmp"), "scratch").expect("write");
        std::fs::write(root.join("README"), "readme").expect("write");
        let ignore = DockerIgnore::from_patterns(&["**/*.tmp".to_string()]).expect("patterns");
        let first = digest(root, Some(&ignore), &["src"], &[]);

        // Times, ignored files and files outside the sources do not count.
        let f = std::fs::File::options().write(true).open(root.join("src/a.rs")).expect("open");
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).expect("mtime");
        std::fs::write(root.join("src/notes.tmp"), "other scratch").expect("write");
        std::fs::write(root.join("README"), "changed").expect("write");
        assert_eq!(digest(root, Some(&ignore), &["src"], &[]), first);

        // Content, modes, new files, and hardlinks do.
        std::fs::write(root.join("src/sub/b.rs"), "fn b() { 1 }").expect("write");
        let content = digest(root, Some(&ignore), &["src"], &[]);
        assert_ne!(content, first);
        std::fs::set_permissions(root.join("src/a.rs"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let moded = digest(root, Some(&ignore), &["src"], &[]);
        assert_ne!(moded, content);
        std::fs::hard_link(root.join("src/a.rs"), root.join("src/c.rs")).expect("link");
        let linked = digest(root, Some(&ignore), &["src"], &[]);
        assert_ne!(linked, moded);
        std::fs::remove_file(root.join("src/c.rs")).expect("rm");
        std::fs::copy(root.join("src/a.rs"), root.join("src/c.rs")).expect("copy");
        assert_ne!(digest(root, Some(&ignore), &["src"], &[]), linked, "a copy is not a hardlink");

        // --exclude and wildcards pick the same files as the copy.
        let all = digest(root, None, &["src/*.rs"], &[]);
        std::fs::write(root.join("src/sub/b.rs"), "fn b() { 2 }").expect("write");
        assert_eq!(digest(root, None, &["src/*.rs"], &[]), all, "src/sub is not matched by src/*.rs");
        let excluded = digest(root, None, &["src"], &["sub"]);
        std::fs::write(root.join("src/sub/b.rs"), "fn b() { 3 }").expect("write");
        assert_eq!(digest(root, None, &["src"], &["sub"]), excluded);
    }

    #[test]
    fn missing_source_is_an_error() {
        let d = tempfile::tempdir().expect("tempdir");
        let from = CopyFrom { root: d.path(), ignore: None, is_rootfs: false };
        let req = CopyRequest { sources: vec!["nope".into()], dest: "/x".into(), ..Default::default() };
        assert!(source_digest(&from, &req).is_err());
    }
}

//! Cache keys: a running sha256 over everything that decides a stage's files so far (the base
//! image's digest, each instruction as expanded, the content COPY reads from its sources, the
//! environment and USER a RUN saw). File times are left out, so a fresh CI checkout still
//! hits. Nothing in a key is read from the stage's own rootfs (what it would say is decided by
//! the key so far), so a stage whose steps all hit never needs its files unpacked.

use crate::error::BuildError;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bumped whenever what a key covers changes, so old cache entries are never misread.
const FORMAT: &[u8] = b"strata-layer-cache-v2";

/// A cache key (64 hex digits), usable as a registry tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key a stage starts from: its base (`image` + manifest digest, `stage` + key, `scratch`).
    pub fn base(kind: &str, id: &str) -> Self {
        Self::digest_of(&[FORMAT, kind.as_bytes(), id.as_bytes()])
    }

    /// The key after one more step described by `parts`.
    pub fn then(&self, parts: &[&[u8]]) -> Self {
        let mut all: Vec<&[u8]> = vec![self.0.as_bytes()];
        all.extend_from_slice(parts);
        Self::digest_of(&all)
    }

    /// The key as hex.
    pub fn hex(&self) -> &str {
        &self.0
    }

    fn digest_of(parts: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        for p in parts {
            // Length-prefixed, so ("ab","c") and ("a","bc") differ.
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        Self(hex::encode(h.finalize()))
    }
}

/// A digest of the tree at `root` (a bind-mount source): path, type, mode, owner, size,
/// content or link target of each entry, without times.
pub fn tree_digest(root: &Path) -> Result<String, BuildError> {
    let mut h = Sha256::new();
    tree_into(&mut h, root, Path::new(""))?;
    Ok(hex::encode(h.finalize()))
}

fn tree_into(h: &mut Sha256, path: &Path, rel: &Path) -> Result<(), BuildError> {
    let meta = entry_digest(h, path, rel)?;
    if meta.is_dir() {
        let mut names: Vec<_> =
            std::fs::read_dir(path).map_err(BuildError::io(path))?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>().map_err(BuildError::io(path))?;
        names.sort();
        for n in names {
            tree_into(h, &path.join(&n), &rel.join(&n))?;
        }
    }
    Ok(())
}

fn entry_digest(h: &mut Sha256, path: &Path, rel: &Path) -> Result<std::fs::Metadata, BuildError> {
    let meta = std::fs::symlink_metadata(path).map_err(BuildError::io(path))?;
    h.update(rel.as_os_str().as_encoded_bytes());
    h.update([0]);
    h.update(meta.mode().to_le_bytes());
    h.update(meta.uid().to_le_bytes());
    h.update(meta.gid().to_le_bytes());
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(path).map_err(BuildError::io(path))?;
        h.update(target.as_os_str().as_encoded_bytes());
    } else if ft.is_file() {
        h.update(meta.len().to_le_bytes());
        let mut f = std::fs::File::open(path).map_err(BuildError::io(path))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf).map_err(BuildError::io(path))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    } else if !ft.is_dir() {
        h.update(meta.rdev().to_le_bytes());
    }
    h.update([0]);
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_chain_and_separate_parts() {
        let a = CacheKey::base("image", "sha256:1");
        assert_eq!(a.hex().len(), 64);
        assert_eq!(a.then(&[b"ab", b"c"]), a.then(&[b"ab", b"c"]));
        assert_ne!(a.then(&[b"ab", b"c"]), a.then(&[b"a", b"bc"]));
        assert_ne!(a.then(&[b"x"]), CacheKey::base("image", "sha256:2").then(&[b"x"]));
    }

    #[test]
    fn tree_digest_ignores_times_but_not_content_or_mode() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(d.path().join("sub")).expect("mkdir");
        std::fs::write(d.path().join("sub/f"), "one").expect("write");
        let first = tree_digest(d.path()).expect("digest");
        let f = std::fs::File::options().write(true).open(d.path().join("sub/f")).expect("open");
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).expect("mtime");
        assert_eq!(tree_digest(d.path()).expect("digest"), first, "times do not count");
        std::fs::set_permissions(d.path().join("sub/f"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let moded = tree_digest(d.path()).expect("digest");
        assert_ne!(moded, first, "mode counts");
        std::fs::write(d.path().join("sub/f"), "two").expect("write");
        assert_ne!(tree_digest(d.path()).expect("digest"), moded, "content counts");
    }
}

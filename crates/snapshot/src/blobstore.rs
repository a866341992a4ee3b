//! A content-addressed blob directory (`<root>/sha256/<hex>`), written by atomic rename.

use crate::Error;
use crate::digest_io::format_sha256;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temporary files of concurrent writers in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether `digest` is `sha256:` and 64 lowercase hex digits, the only digests a blob store
/// (and an OCI layout's `blobs/sha256`) holds.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// A directory of blobs named by digest.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    fsync: bool,
}

impl BlobStore {
    /// Opens (creating if needed) a blob store at `root`.
    pub fn open(root: &Path) -> Result<Self, Error> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = root.join("sha256");
        // Private: blobs of the image being built are nobody else's to read.
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|source| Error::Io { path: dir, source })?;
        Ok(Self { root: root.to_path_buf(), fsync: true })
    }

    /// Whether blobs are fsynced before the rename that publishes them (default: yes, so a
    /// blob present under its digest is complete even after a crash). Scratch stores that are
    /// thrown away with the build can turn it off and save the flush.
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path where the blob `sha256:<hex>` lives (whether or not it exists). A digest that
    /// is not `sha256:` and 64 lowercase hex digits (one from a hostile manifest, say
    /// `sha256:../../etc/shadow`) names a path that never exists and cannot be created, so
    /// it is neither found nor written.
    pub fn path(&self, digest: &str) -> PathBuf {
        match digest.strip_prefix("sha256:") {
            Some(hex) if is_sha256_digest(digest) => self.root.join("sha256").join(hex),
            _ => self.root.join("not-a-sha256-digest").join("blob"),
        }
    }

    /// Whether the blob is present.
    pub fn contains(&self, digest: &str) -> bool {
        self.path(digest).is_file()
    }

    /// Stores `bytes` and returns their digest `sha256:<hex>`.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<String, Error> {
        let mut writer = self.writer()?;
        writer.write_all(bytes).map_err(|source| Error::io(writer.temp_path(), source))?;
        let (digest, _) = writer.commit()?;
        Ok(digest)
    }

    /// A streaming writer whose content becomes a blob on [`BlobWriter::commit`].
    pub fn writer(&self) -> Result<BlobWriter, Error> {
        // Temporary files live beside the blobs (same filesystem, so the rename is atomic) under a
        // dot-name that is never a digest; no extra directory appears in an OCI layout.
        let tmp_dir = self.root.join("sha256");
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let name = format!(".tmp-{}-{}-{}", std::process::id(), TEMP_COUNTER.fetch_add(1, Ordering::Relaxed), nanos);
        let temp = tmp_dir.join(name);
        let file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp).map_err(|source| Error::io(&temp, source))?;
        Ok(BlobWriter { store: self.clone(), temp, file: Some(io::BufWriter::with_capacity(256 * 1024, file)), hasher: Sha256::new(), size: 0 })
    }
}

/// Writes one blob to a temporary file, hashing as it goes; [`commit`](Self::commit) renames it
/// into place atomically, dropping it uncommitted removes the temporary file.
#[derive(Debug)]
pub struct BlobWriter {
    store: BlobStore,
    temp: PathBuf,
    file: Option<io::BufWriter<File>>,
    hasher: Sha256,
    size: u64,
}

impl BlobWriter {
    /// The temporary file being written.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Syncs and renames the blob into place; returns its digest and size.
    pub fn commit(self) -> Result<(String, u64), Error> {
        self.commit_inner(None)
    }

    /// Like [`commit`](Self::commit), but fails (and discards the blob) unless it hashes to `expected`.
    pub fn commit_expecting(self, expected: &str) -> Result<(String, u64), Error> {
        self.commit_inner(Some(expected))
    }

    fn commit_inner(mut self, expected: Option<&str>) -> Result<(String, u64), Error> {
        let Some(buffered) = self.file.take() else {
            return Err(Error::io(&self.temp, io::Error::other("blob writer already finished")));
        };
        let file = buffered.into_inner().map_err(|e| Error::io(&self.temp, e.into_error()))?;
        if self.store.fsync {
            file.sync_all().map_err(|source| Error::io(&self.temp, source))?;
        }
        drop(file);
        let digest = format_sha256(std::mem::take(&mut self.hasher));
        if let Some(expected) = expected
            && expected != digest
        {
            let _ = std::fs::remove_file(&self.temp);
            return Err(Error::BlobDigestMismatch { expected: expected.to_string(), actual: digest });
        }
        let dest = self.store.path(&digest);
        std::fs::rename(&self.temp, &dest).map_err(|source| Error::io(&dest, source))?;
        Ok((digest, self.size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self.file.as_mut().ok_or_else(|| io::Error::other("blob writer already finished"))?;
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            self.file = None;
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_that_are_no_sha256_never_name_a_path_outside() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        for bad in ["sha256:../../../etc/passwd", "sha256:/etc/passwd", "../x", "sha512:00", "sha256:ABCDEF"] {
            let p = store.path(bad);
            assert!(p.starts_with(dir.path()), "{bad:?} -> {}", p.display());
            assert!(!store.contains(bad));
        }
        let d = store.put_bytes(b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(store.path(&d)).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(dir.path().join("sha256")).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn put_bytes_is_content_addressed() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = store.put_bytes(b"hello").unwrap();
        assert_eq!(d, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert!(store.contains(&d));
        assert_eq!(std::fs::read(store.path(&d)).unwrap(), b"hello");
        assert_eq!(std::fs::read_dir(dir.path().join("sha256")).unwrap().count(), 1);
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path().join("sha256")).unwrap().count(), 0);
    }

    #[test]
    fn commit_expecting_rejects_wrong_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"x").unwrap();
        let err = w.commit_expecting("sha256:00").unwrap_err();
        assert!(matches!(err, Error::BlobDigestMismatch { .. }));
        assert_eq!(std::fs::read_dir(dir.path().join("sha256")).unwrap().count(), 0);
    }
}

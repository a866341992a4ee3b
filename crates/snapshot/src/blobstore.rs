//! A content-addressed blob directory (`<root>/sha256/<hex>`), written by atomic rename.

use crate::Error;
use std::path::{Path, PathBuf};

/// A directory of blobs named by digest.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) a blob store at `root`.
    pub fn open(root: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(root.join("sha256")).map_err(|source| Error::Io { path: root.to_path_buf(), source })?;
        Ok(Self { root: root.to_path_buf() })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path where the blob `sha256:<hex>` lives (whether or not it exists).
    pub fn path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("sha256").join(hex)
    }

    /// Whether the blob is present.
    pub fn contains(&self, digest: &str) -> bool {
        self.path(digest).is_file()
    }
}

impl BlobStore {
    /// Stores `bytes` as a blob and returns its digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<String, Error> {
        use sha2::Digest as _;
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
        let path = self.path(&digest);
        if !path.exists() {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes).map_err(|source| Error::Io { path: tmp.clone(), source })?;
            std::fs::rename(&tmp, &path).map_err(|source| Error::Io { path: path.clone(), source })?;
        }
        Ok(digest)
    }
}

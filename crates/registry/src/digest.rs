//! Content digests (`sha256:<hex>`, `sha512:<hex>`) computed while bytes stream past.

use sha2::{Digest, Sha256, Sha512};

/// An incremental hash for the algorithm a digest names.
#[derive(Debug, Clone)]
pub enum DigestHasher {
    /// sha256, the algorithm every registry supports.
    Sha256(Sha256),
    /// sha512.
    Sha512(Sha512),
}

impl DigestHasher {
    /// A hasher for the algorithm of `digest` (`sha256:...` or `sha512:...`).
    pub fn for_digest(digest: &str) -> Result<Self, String> {
        crate::reference::valid_digest(digest)?;
        Ok(if digest.starts_with("sha512:") { Self::Sha512(Sha512::new()) } else { Self::Sha256(Sha256::new()) })
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest string of everything fed so far.
    pub fn finish(self) -> String {
        match self {
            Self::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize().as_slice())),
            Self::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize().as_slice())),
        }
    }
}

/// The sha256 digest of `bytes` (`sha256:<hex>`).
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes).as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sha256() {
        assert_eq!(sha256_digest(b""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let mut h = DigestHasher::for_digest(&sha256_digest(b"")).unwrap_or_else(|e| panic!("{e}"));
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.finish(), sha256_digest(b"abc"));
    }
}

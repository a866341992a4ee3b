//! Reading a Dockerfile (or `.dockerignore`) from disk: bounded in size, and decoded as
//! BuildKit sees it.

use std::io::Read;
use std::path::Path;

/// The largest Dockerfile strata reads: 2 MiB (real ones are rarely over 100 KiB). A bigger
/// file is refused before it is read, so a hostile one cannot exhaust memory.
pub const MAX_DOCKERFILE_SIZE: u64 = 2 << 20;

/// A Dockerfile's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The text; bytes that are not UTF-8 are replaced by U+FFFD.
    pub text: String,
    /// Whether any byte was not UTF-8 (a Latin-1 file, say).
    pub lossy: bool,
}

/// Reads `path`, refusing a file over [`MAX_DOCKERFILE_SIZE`] with an error that says so.
pub fn read(path: &Path) -> std::io::Result<Source> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_DOCKERFILE_SIZE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_DOCKERFILE_SIZE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the file is larger than strata's limit of {} MiB for a Dockerfile; split the build or generate less", MAX_DOCKERFILE_SIZE >> 20),
        ));
    }
    Ok(decode(bytes))
}

/// Decodes bytes as BuildKit's result shows them: Go keeps the bytes, and the image config's
/// JSON then carries U+FFFD for each invalid sequence; strata replaces them when reading.
pub fn decode(bytes: Vec<u8>) -> Source {
    match String::from_utf8(bytes) {
        Ok(text) => Source { text, lossy: false },
        Err(e) => Source { text: String::from_utf8_lossy(e.as_bytes()).into_owned(), lossy: true },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_is_read_and_oversized_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let latin1 = dir.path().join("Dockerfile");
        std::fs::write(&latin1, b"FROM scratch\nLABEL a=caf\xe9\n").expect("write");
        let s = read(&latin1).expect("read");
        assert!(s.lossy);
        assert_eq!(s.text, "FROM scratch\nLABEL a=caf\u{fffd}\n");
        let big = dir.path().join("big");
        let f = std::fs::File::create(&big).expect("create");
        f.set_len(MAX_DOCKERFILE_SIZE + 1).expect("size");
        let e = read(&big).expect_err("too big");
        assert!(e.to_string().contains("limit of 2 MiB"), "{e}");
    }
}

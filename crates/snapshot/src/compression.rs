//! Recognising a layer's compression from its first bytes, and the matching decoder.

use std::io::{self, Read};

/// A layer stream's compression as recognised from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// Anything else is read as a plain tar.
    Plain,
}

/// Recognises the compression of `prefix`, the first (up to 4) bytes of a stream.
pub fn detect(prefix: &[u8]) -> Detected {
    if prefix.starts_with(&[0x1f, 0x8b]) {
        Detected::Gzip
    } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Detected::Zstd
    } else {
        Detected::Plain
    }
}

/// Reads the first bytes of `reader` and returns the detected compression and a reader of the
/// decompressed stream (the peeked bytes included).
pub fn decoder<'a, R: Read + Send + 'a>(mut reader: R) -> io::Result<(Detected, Box<dyn Read + Send + 'a>)> {
    let mut prefix = [0u8; 4];
    let mut filled = 0;
    while filled < prefix.len() {
        match reader.read(&mut prefix[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = io::Cursor::new(prefix[..filled].to_vec());
    let joined = head.chain(reader);
    let kind = detect(&prefix[..filled]);
    let out: Box<dyn Read + Send + 'a> = match kind {
        Detected::Gzip => Box::new(flate2::read::MultiGzDecoder::new(joined)),
        Detected::Zstd => Box::new(zstd::stream::read::Decoder::new(joined)?),
        Detected::Plain => Box::new(joined),
    };
    Ok((kind, out))
}

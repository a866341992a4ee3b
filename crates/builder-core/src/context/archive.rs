//! Archives as Docker recognises them: compression detected from the first bytes (gzip, bzip2,
//! xz, zstd, or none), then a tar header must follow. Used for tar build contexts and for
//! `ADD` of local archives.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// A compression format, detected from magic bytes (moby's `DetectCompression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip (`1f 8b 08`).
    Gzip,
    /// bzip2 (`BZh`).
    Bzip2,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
    /// zstd (`28 b5 2f fd`, or a skippable frame first).
    Zstd,
}

/// Which compression the bytes start with.
pub fn detect(prefix: &[u8]) -> Compression {
    if prefix.starts_with(&[0x1f, 0x8b, 0x08]) {
        Compression::Gzip
    } else if prefix.starts_with(b"BZh") {
        Compression::Bzip2
    } else if prefix.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || (prefix.len() >= 4 && prefix[0] & 0xf0 == 0x50 && prefix[1..4] == [0x2a, 0x4d, 0x18]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Opens `path` and returns a reader of its decompressed bytes.
pub fn open_decompressed(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let mut file = File::open(path)?;
    let mut prefix = [0u8; 8];
    let n = read_up_to(&mut file, &mut prefix)?;
    let file = File::open(path)?;
    let buffered = BufReader::new(file);
    Ok(match detect(&prefix[..n]) {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(buffered)),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
    })
}

/// Whether `path` is a (possibly compressed) tar archive: its decompressed stream starts with
/// a valid tar header, as BuildKit checks before ADD unpacks a file.
pub fn is_tar_archive(path: &Path) -> bool {
    let Ok(mut reader) = open_decompressed(path) else { return false };
    let mut header = [0u8; 512];
    match read_up_to(&mut reader, &mut header) {
        Ok(512) => valid_tar_header(&header),
        _ => false,
    }
}

/// A tar header whose checksum is right (and not the all-zero end block).
fn valid_tar_header(h: &[u8; 512]) -> bool {
    if h.iter().all(|&b| b == 0) {
        return false;
    }
    let field = &h[148..156];
    let text: String = field.iter().take_while(|&&b| b != 0).map(|&b| b as char).collect();
    let Ok(stored) = u32::from_str_radix(text.trim(), 8) else { return false };
    let unsigned: u32 = h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) }).sum();
    let signed: i64 = h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { i64::from(b as i8) }).sum();
    stored == unsigned || i64::from(stored) == signed
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The cleaned, relative names of the entries in the archive at `path` (`./a/` gives `a`).
pub fn entry_names(path: &Path) -> io::Result<std::collections::HashSet<String>> {
    let mut archive = tar::Archive::new(open_decompressed(path)?);
    let mut names = std::collections::HashSet::new();
    for entry in archive.entries()? {
        let entry = entry?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let cleaned = super::dockerignore::clean(&name);
        if !cleaned.is_empty() {
            names.insert(cleaned);
        }
    }
    Ok(names)
}

/// Why an archive could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The file cannot be opened or its compression read.
    #[error("{}: {source}", path.display())]
    Open { path: std::path::PathBuf, source: std::io::Error },
    /// An entry could not be applied (or would land outside the destination).
    #[error("extracting {}: {source}", path.display())]
    Unpack { path: std::path::PathBuf, source: strata_snapshot::Error },
}

/// Extracts the archive at `path` into the directory `dest`, confined to it (through the
/// snapshot crate's layer unpacker: no entry lands outside `dest`, whatever its name or links).
pub fn extract(path: &Path, dest: &Path, rootless: bool) -> Result<(), ExtractError> {
    let reader = open_decompressed(path).map_err(|source| ExtractError::Open { path: path.to_path_buf(), source })?;
    let opts = strata_snapshot::UnpackOptions { rootless, ..Default::default() };
    strata_snapshot::unpack_layer(reader, dest, &opts).map_err(|source| ExtractError::Unpack { path: path.to_path_buf(), source })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_bytes() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o640);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, "dir/f.txt", &b"abc"[..]).expect("append");
        b.into_inner().expect("tar")
    }

    #[test]
    fn every_compression_is_detected_and_extracted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = tar_bytes();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&raw).expect("gz");
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(&raw).expect("bz");
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&raw).expect("xz");
        let zst = zstd::encode_all(&raw[..], 3).expect("zstd");
        let cases = [
            ("plain", raw.clone(), Compression::None),
            ("gz", gz.finish().expect("gz"), Compression::Gzip),
            ("bz2", bz.finish().expect("bz"), Compression::Bzip2),
            ("xz", xz.finish().expect("xz"), Compression::Xz),
            ("zst", zst, Compression::Zstd),
        ];
        for (name, bytes, kind) in cases {
            assert_eq!(detect(&bytes), kind, "{name}");
            let path = dir.path().join(format!("a.{name}"));
            std::fs::write(&path, &bytes).expect("write");
            assert!(is_tar_archive(&path), "{name} is a tar");
            let out = dir.path().join(format!("out-{name}"));
            std::fs::create_dir(&out).expect("mkdir");
            extract(&path, &out, true).expect("extract");
            assert_eq!(std::fs::read(out.join("dir/f.txt")).expect("read"), b"abc", "{name}");
        }
        let text = dir.path().join("plain.txt");
        std::fs::write(&text, "just text, not a tar").expect("write");
        assert!(!is_tar_archive(&text));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"compressed text").expect("gz");
        std::fs::write(&text, gz.finish().expect("gz")).expect("write");
        assert!(!is_tar_archive(&text), "a gzip of a non-tar is copied as it is");
    }
}

//! Encoding deterministic tar headers: ustar where the fields fit, a PAX extended header
//! (`path`, `linkpath`, `uid`, `gid`, `size`, `mtime`, `SCHILY.xattr.*`) where they do not.

use std::io::{self, Write};

/// Entry type flags used in layers.
pub mod typeflag {
    /// Regular file.
    pub const REGULAR: u8 = b'0';
    /// Hard link.
    pub const LINK: u8 = b'1';
    /// Symbolic link.
    pub const SYMLINK: u8 = b'2';
    /// Character device.
    pub const CHAR: u8 = b'3';
    /// Block device.
    pub const BLOCK: u8 = b'4';
    /// Directory.
    pub const DIR: u8 = b'5';
    /// FIFO.
    pub const FIFO: u8 = b'6';
    /// PAX extended header for the next entry.
    pub const PAX: u8 = b'x';
}

/// One tar entry's header fields.
#[derive(Debug, Clone, Default)]
pub struct TarHeader {
    /// Entry name (directories end with `/`).
    pub name: Vec<u8>,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
    /// Content size.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// One of [`typeflag`].
    pub typeflag: u8,
    /// Link target of symlinks and hardlinks.
    pub linkname: Vec<u8>,
    /// Device major number.
    pub devmajor: u32,
    /// Device minor number.
    pub devminor: u32,
    /// Extended attributes, written sorted by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

const BLOCK: usize = 512;

/// Writes `value` as zero-padded octal in `field`, NUL-terminated; false if it does not fit.
fn put_octal(field: &mut [u8], value: u64) -> bool {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    if s.len() > digits {
        return false;
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    true
}

/// Splits a name into ustar (prefix, name) if possible.
fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return Some((&[], name));
    }
    if name.len() > 256 {
        return None;
    }
    // The prefix ends at a '/', at most 155 bytes; the rest (without that '/') at most 100.
    let search_end = name.len().min(156);
    for i in (0..search_end).rev() {
        if name[i] == b'/' {
            let (prefix, rest) = (&name[..i], &name[i + 1..]);
            if rest.len() <= 100 && !rest.is_empty() && prefix.len() <= 155 {
                return Some((prefix, rest));
            }
            if rest.len() > 100 {
                return None;
            }
        }
    }
    None
}

/// Appends one PAX record `"<len> <key>=<value>\n"`.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    loop {
        let total = body + len.to_string().len();
        if total == len {
            break;
        }
        len = total;
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[allow(clippy::too_many_arguments)] // one argument per ustar field
fn ustar_block(
    name: &[u8],
    prefix: &[u8],
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    typeflag: u8,
    linkname: &[u8],
    dev: (u32, u32),
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    let n = name.len().min(100);
    b[..n].copy_from_slice(&name[..n]);
    put_octal(&mut b[100..108], u64::from(mode & 0o7777));
    // Values that do not fit are carried by the PAX header; the ustar field gets 0.
    if !put_octal(&mut b[108..116], uid) {
        put_octal(&mut b[108..116], 0);
    }
    if !put_octal(&mut b[116..124], gid) {
        put_octal(&mut b[116..124], 0);
    }
    if !put_octal(&mut b[124..136], size) {
        put_octal(&mut b[124..136], 0);
    }
    if !put_octal(&mut b[136..148], mtime) {
        put_octal(&mut b[136..148], 0);
    }
    b[156] = typeflag;
    let l = linkname.len().min(100);
    b[157..157 + l].copy_from_slice(&linkname[..l]);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    put_octal(&mut b[329..337], u64::from(dev.0));
    put_octal(&mut b[337..345], u64::from(dev.1));
    let p = prefix.len().min(155);
    b[345..345 + p].copy_from_slice(&prefix[..p]);
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let s = format!("{sum:06o}");
    b[148..154].copy_from_slice(s.as_bytes());
    b[154] = 0;
    b[155] = b' ';
    b
}

/// Writes the header of one entry (preceded by a PAX header when needed). Content, if any,
/// follows through [`write_padding`].
pub fn write_header<W: Write>(w: &mut W, h: &TarHeader) -> io::Result<()> {
    let mut pax = Vec::new();
    let split = split_ustar(&h.name);
    if split.is_none() {
        pax_record(&mut pax, b"path", &h.name);
    }
    if h.linkname.len() > 100 {
        pax_record(&mut pax, b"linkpath", &h.linkname);
    }
    let max7 = 0o7777777u64;
    let max11 = 0o77777777777u64;
    if h.uid > max7 {
        pax_record(&mut pax, b"uid", h.uid.to_string().as_bytes());
    }
    if h.gid > max7 {
        pax_record(&mut pax, b"gid", h.gid.to_string().as_bytes());
    }
    if h.size > max11 {
        pax_record(&mut pax, b"size", h.size.to_string().as_bytes());
    }
    let mtime = if h.mtime < 0 || h.mtime as u64 > max11 {
        pax_record(&mut pax, b"mtime", h.mtime.to_string().as_bytes());
        0
    } else {
        h.mtime as u64
    };
    let mut xattrs: Vec<&(Vec<u8>, Vec<u8>)> = h.xattrs.iter().collect();
    xattrs.sort();
    for (k, v) in xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(k);
        pax_record(&mut pax, &key, v);
    }
    if !pax.is_empty() {
        let hdr = ustar_block(b"././@PaxHeader", b"", 0o644, 0, 0, pax.len() as u64, 0, typeflag::PAX, b"", (0, 0));
        w.write_all(&hdr)?;
        w.write_all(&pax)?;
        write_padding(w, pax.len() as u64)?;
    }
    let (prefix, name) = match split {
        Some((p, n)) => (p, n),
        // Long name in PAX; the ustar name keeps the (truncated) tail for old readers.
        None => (&b""[..], &h.name[h.name.len().saturating_sub(100)..]),
    };
    let block = ustar_block(name, prefix, h.mode, h.uid, h.gid, h.size, mtime, h.typeflag, &h.linkname, (h.devmajor, h.devminor));
    w.write_all(&block)
}

/// Zero bytes completing a 512-byte block after `len` bytes of content.
pub fn write_padding<W: Write>(w: &mut W, len: u64) -> io::Result<()> {
    let rem = (len % BLOCK as u64) as usize;
    if rem != 0 {
        w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

/// The end-of-archive marker: two zero blocks.
pub fn write_end<W: Write>(w: &mut W) -> io::Result<()> {
    w.write_all(&[0u8; 2 * BLOCK])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut v = Vec::new();
        pax_record(&mut v, b"path", b"a");
        assert_eq!(v, b"9 path=a\n");
        let mut v = Vec::new();
        pax_record(&mut v, b"path", &[b'x'; 95]);
        assert_eq!(v.len(), 105);
        assert!(v.starts_with(b"105 path="));
    }

    #[test]
    fn tar_crate_reads_long_names_xattrs_and_big_ids() {
        let long = format!("{}/{}", "d".repeat(150), "f".repeat(120));
        let mut buf = Vec::new();
        let h = TarHeader {
            name: long.clone().into_bytes(),
            mode: 0o4755,
            uid: 70_000_000,
            gid: 5,
            size: 3,
            mtime: 1_700_000_000,
            typeflag: typeflag::REGULAR,
            xattrs: vec![(b"user.k".to_vec(), b"v".to_vec())],
            ..Default::default()
        };
        write_header(&mut buf, &h).unwrap();
        buf.extend_from_slice(b"abc");
        write_padding(&mut buf, 3).unwrap();
        let medium = format!("{}/{}", "m".repeat(120), "n".repeat(50));
        write_header(&mut buf, &TarHeader { name: medium.clone().into_bytes(), typeflag: typeflag::DIR, mode: 0o755, ..Default::default() }).unwrap();
        write_end(&mut buf).unwrap();
        let mut ar = tar::Archive::new(&buf[..]);
        let mut entries = ar.entries().unwrap();
        let mut e = entries.next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().to_str().unwrap(), long);
        assert_eq!(e.header().uid().unwrap(), 70_000_000);
        assert_eq!(e.header().mode().unwrap(), 0o4755);
        let pax: Vec<_> = e.pax_extensions().unwrap().unwrap().map(|x| x.unwrap().key().unwrap().to_string()).collect();
        assert!(pax.contains(&"SCHILY.xattr.user.k".to_string()));
        let e = entries.next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().to_str().unwrap(), medium);
        assert!(entries.next().is_none());
    }
}

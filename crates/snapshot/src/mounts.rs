//! Mount points below a directory, read from `/proc/self/mountinfo`, so snapshots never descend
//! into (or report) a bind mount, tmpfs or proc mounted inside the rootfs.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Decodes the octal escapes (`\040` for space, ...) mountinfo uses in paths.
fn unescape(field: &str) -> OsString {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    OsString::from_vec(out)
}

/// Mount points strictly below `root` (which should be canonical), as paths relative to it.
/// An unreadable mountinfo (no /proc) yields an empty list: the device-number check of the walk
/// still stops at mounts of other filesystems.
pub fn mounts_below(root: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(field) = line.split(' ').nth(4) else {
            continue;
        };
        let mount_point = PathBuf::from(unescape(field));
        if let Ok(rel) = mount_point.strip_prefix(root)
            && !rel.as_os_str().is_empty()
        {
            out.push(rel.to_path_buf());
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_octal() {
        assert_eq!(unescape(r"/a\040b"), OsString::from("/a b"));
        assert_eq!(unescape(r"/plain"), OsString::from("/plain"));
    }

    #[test]
    fn proc_is_a_mount_below_root() {
        assert!(mounts_below(Path::new("/")).iter().any(|p| p == Path::new("proc")));
    }
}

//! Fixtures shared by the integration tests: tree builders and a tree fingerprint.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Prints a loud skip message (tests needing root run as root in CI).
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    strata_test_support::skip(test, "needs euid 0 (mknod/chown/security.* xattrs)");
    true
}

/// Everything observable about a tree (except atimes and ctimes), keyed by relative path.
/// Hardlinks are recorded as the group of names sharing an inode.
pub fn fingerprint(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(root).unwrap().to_path_buf();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let md = entry.path().symlink_metadata().unwrap();
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!("symlink->{}", std::fs::read_link(entry.path()).unwrap().display())
        } else if ft.is_file() {
            let data = std::fs::read(entry.path()).unwrap();
            if md.nlink() > 1 {
                inodes.entry(md.ino()).or_default().push(rel.clone());
            }
            format!("file size={} blake3={}", data.len(), blake3::hash(&data).to_hex())
        } else if ft.is_fifo() {
            "fifo".to_string()
        } else if ft.is_char_device() {
            format!("chr {}:{}", rustix::fs::major(md.rdev()), rustix::fs::minor(md.rdev()))
        } else if ft.is_block_device() {
            format!("blk {}:{}", rustix::fs::major(md.rdev()), rustix::fs::minor(md.rdev()))
        } else {
            "other".to_string()
        };
        let mtime = if ft.is_dir() { String::new() } else { format!(" mtime={}", md.mtime()) };
        let xattrs = xattrs(entry.path());
        out.insert(rel, format!("{kind} mode={:o} uid={} gid={}{mtime} xattrs={xattrs:?}", md.permissions().mode() & 0o7777, md.uid(), md.gid()));
    }
    for (_, names) in inodes {
        if names.len() > 1 {
            for n in &names {
                let v = out.get_mut(n).unwrap();
                v.push_str(&format!(" links={names:?}"));
            }
        }
    }
    out
}

pub fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let size = rustix::fs::llistxattr_query(path).unwrap_or(0);
    if size == 0 {
        return Vec::new();
    }
    let mut names = vec![0u8; size];
    let n = rustix::fs::llistxattr(path, &mut names[..]).unwrap();
    let mut out = Vec::new();
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name == b"security.selinux" {
            continue;
        }
        let mut v = vec![0u8; 4096];
        let len = rustix::fs::lgetxattr(path, OsStr::from_bytes(name), &mut v[..]).unwrap();
        v.truncate(len);
        out.push((String::from_utf8_lossy(name).into_owned(), v));
    }
    out.sort();
    out
}

pub fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

pub fn chmod(root: &Path, rel: &str, mode: u32) {
    std::fs::set_permissions(root.join(rel), std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn set_mtime(root: &Path, rel: &str, secs: i64) {
    let ts = rustix::fs::Timespec { tv_sec: secs, tv_nsec: 0 };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        root.join(rel),
        &rustix::fs::Timestamps { last_access: ts, last_modification: ts },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// A tree with every entry type and attribute a layer must carry. Root-only parts (devices,
/// ownership, security.capability) are added only as root.
pub fn rich_tree(root: &Path) {
    write(root, "etc/config", b"key=value\n");
    write(root, "bin/tool", b"#!/bin/sh\necho hi\n");
    chmod(root, "bin/tool", 0o4755);
    write(root, "usr/share/data.bin", &vec![7u8; 200_000]);
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    chmod(root, "tmp", 0o1777);
    std::fs::create_dir_all(root.join("srv/setgid")).unwrap();
    chmod(root, "srv/setgid", 0o2775);
    std::os::unix::fs::symlink("../etc/config", root.join("bin/config-link")).unwrap();
    std::os::unix::fs::symlink("/does/not/exist", root.join("bin/dangling")).unwrap();
    std::fs::hard_link(root.join("bin/tool"), root.join("usr/tool-hardlink")).unwrap();
    let long_dir = format!("deep/{}/{}", "d".repeat(120), "e".repeat(90));
    write(root, &format!("{long_dir}/{}", "f".repeat(200)), b"long name");
    std::os::unix::fs::symlink("x".repeat(300), root.join("deep/long-target")).unwrap();
    rustix::fs::mknodat(rustix::fs::CWD, root.join("run-fifo"), rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o640), 0).unwrap();
    rustix::fs::lsetxattr(root.join("etc/config"), "user.note", b"hello", rustix::fs::XattrFlags::empty()).unwrap();
    set_mtime(root, "etc/config", 1_600_000_000);
    if is_root() {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("loopdev"),
            rustix::fs::FileType::BlockDevice,
            rustix::fs::Mode::from_raw_mode(0o660),
            rustix::fs::makedev(7, 0),
        )
        .unwrap();
        write(root, "home/user/owned", b"mine");
        std::os::unix::fs::chown(root.join("home/user/owned"), Some(1000), Some(1000)).unwrap();
        std::os::unix::fs::chown(root.join("home/user"), Some(1000), Some(1000)).unwrap();
        std::os::unix::fs::lchown(root.join("bin/dangling"), Some(33), Some(44)).unwrap();
        write(root, "usr/bin/ping", b"ELF");
        // security.capability v2 for cap_net_raw+ep
        let cap: [u8; 20] = [0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        rustix::fs::lsetxattr(root.join("usr/bin/ping"), "security.capability", &cap, rustix::fs::XattrFlags::empty()).unwrap();
    }
}

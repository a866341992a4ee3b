//! Hostile layers: each crafted tar is applied to a rootfs next to a sentinel tree; the error or
//! the confined result is asserted, and the sentinel must be byte-for-byte unchanged.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use strata_snapshot::tarwriter::{self, TarHeader, typeflag};
use strata_snapshot::*;

struct Fixture {
    _tmp: tempfile::TempDir,
    rootfs: PathBuf,
    sentinel: PathBuf,
    before: std::collections::BTreeMap<PathBuf, String>,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let rootfs = tmp.path().join("rootfs");
        let sentinel = tmp.path().join("sentinel");
        std::fs::create_dir_all(&rootfs).unwrap();
        write(&sentinel, "victim", b"original");
        write(&sentinel, "dir/inner", b"inner");
        let before = fingerprint(&sentinel);
        Self { _tmp: tmp, rootfs, sentinel, before }
    }

    /// The sentinel's absolute path without the leading `/`.
    fn sentinel_rel(&self) -> String {
        self.sentinel.to_str().unwrap().trim_start_matches('/').to_string()
    }

    fn apply(&self, tar: &[u8], rootless: bool) -> Result<UnpackStats, Error> {
        unpack_layer(tar, &self.rootfs, &UnpackOptions { rootless, ..Default::default() })
    }

    fn assert_sentinel_untouched(&self) {
        assert_eq!(fingerprint(&self.sentinel), self.before, "sentinel tree outside the rootfs changed");
        assert_eq!(std::fs::read(self.sentinel.join("victim")).unwrap(), b"original");
    }
}

/// A tar made of raw entries: (name, typeflag, linkname, content).
fn tar(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, t, link, data) in entries {
        let h = TarHeader {
            name: name.as_bytes().to_vec(),
            mode: if *t == typeflag::DIR { 0o755 } else { 0o644 },
            size: data.len() as u64,
            mtime: 1_700_000_000,
            typeflag: *t,
            linkname: link.as_bytes().to_vec(),
            devmajor: if *t == typeflag::CHAR { 1 } else { 0 },
            devminor: if *t == typeflag::CHAR { 3 } else { 0 },
            ..Default::default()
        };
        tarwriter::write_header(&mut out, &h).unwrap();
        out.extend_from_slice(data);
        tarwriter::write_padding(&mut out, data.len() as u64).unwrap();
    }
    tarwriter::write_end(&mut out).unwrap();
    out
}

const F: u8 = typeflag::REGULAR;
const L: u8 = typeflag::SYMLINK;
const H: u8 = typeflag::LINK;
const D: u8 = typeflag::DIR;

#[test]
fn dotdot_name_is_confined() {
    let fx = Fixture::new();
    fx.apply(&tar(&[("../sentinel/victim", F, "", b"pwned"), ("a/../../../../x", F, "", b"x")]), false).unwrap();
    assert_eq!(std::fs::read(fx.rootfs.join("sentinel/victim")).unwrap(), b"pwned");
    assert_eq!(std::fs::read(fx.rootfs.join("x")).unwrap(), b"x");
    fx.assert_sentinel_untouched();
}

#[test]
fn absolute_name_is_confined() {
    let fx = Fixture::new();
    let name = format!("{}/victim", fx.sentinel.display());
    fx.apply(&tar(&[(&name, F, "", b"pwned")]), false).unwrap();
    assert_eq!(std::fs::read(fx.rootfs.join(fx.sentinel_rel()).join("victim")).unwrap(), b"pwned");
    fx.assert_sentinel_untouched();
}

#[test]
fn symlink_to_root_then_file_through_it_is_confined() {
    let fx = Fixture::new();
    let name = format!("escape/{}/victim", fx.sentinel_rel());
    fx.apply(&tar(&[("escape", L, "/", b""), (&name, F, "", b"pwned")]), false).unwrap();
    assert_eq!(std::fs::read(fx.rootfs.join(fx.sentinel_rel()).join("victim")).unwrap(), b"pwned");
    fx.assert_sentinel_untouched();
}

#[test]
fn symlink_to_outside_dir_then_file_through_it_is_confined() {
    let fx = Fixture::new();
    let target = fx.sentinel.display().to_string();
    fx.apply(&tar(&[("s", L, &target, b""), ("s/victim", F, "", b"pwned"), ("s/dir/inner", F, "", b"pwned")]), false).unwrap();
    assert_eq!(std::fs::read(fx.rootfs.join(fx.sentinel_rel()).join("dir/inner")).unwrap(), b"pwned");
    fx.assert_sentinel_untouched();
}

#[test]
fn relative_symlink_chain_leading_out_is_confined() {
    let fx = Fixture::new();
    let name = format!("l1/{}/victim", fx.sentinel_rel());
    fx.apply(&tar(&[("l1", L, "sub/l2", b""), ("sub/l2", L, "../../../../../../../../..", b""), (&name, F, "", b"pwned")]), false).unwrap();
    assert_eq!(std::fs::read(fx.rootfs.join(fx.sentinel_rel()).join("victim")).unwrap(), b"pwned");
    fx.assert_sentinel_untouched();
}

#[test]
fn hardlink_to_absolute_outside_path_fails() {
    let fx = Fixture::new();
    let target = format!("{}/victim", fx.sentinel.display());
    let err = fx.apply(&tar(&[("h", H, &target, b"")]), false).unwrap_err();
    assert!(matches!(err, Error::InvalidEntry { .. }), "{err}");
    assert!(!fx.rootfs.join("h").exists());
    fx.assert_sentinel_untouched();
}

#[test]
fn hardlink_via_dotdot_fails() {
    let fx = Fixture::new();
    let err = fx.apply(&tar(&[("h", H, "../sentinel/victim", b"")]), false).unwrap_err();
    assert!(err.to_string().contains("hardlink target"), "{err}");
    fx.assert_sentinel_untouched();
}

#[test]
fn hardlink_through_symlinked_dir_fails() {
    let fx = Fixture::new();
    let target = fx.sentinel.display().to_string();
    let err = fx.apply(&tar(&[("s", L, &target, b""), ("h", H, "s/victim", b"")]), false).unwrap_err();
    assert!(err.to_string().contains("hardlink target"), "{err}");
    fx.assert_sentinel_untouched();
}

#[test]
fn hardlink_to_symlink_links_the_symlink_itself() {
    let fx = Fixture::new();
    let target = format!("{}/victim", fx.sentinel.display());
    fx.apply(&tar(&[("sl", L, &target, b""), ("h", H, "sl", b""), ("h", F, "", b"replaced")]), false).unwrap();
    assert_eq!(std::fs::read(fx.rootfs.join("h")).unwrap(), b"replaced");
    assert!(std::fs::symlink_metadata(fx.rootfs.join("sl")).unwrap().file_type().is_symlink());
    fx.assert_sentinel_untouched();
}

#[test]
fn whiteout_naming_dotdot_fails() {
    let fx = Fixture::new();
    write(&fx.rootfs, "keep/file", b"k");
    for name in ["keep/.wh...", "keep/.wh..", ".wh."] {
        let err = fx.apply(&tar(&[(name, F, "", b"")]), false).unwrap_err();
        assert!(matches!(err, Error::InvalidEntry { .. }), "{name}: {err}");
    }
    assert!(fx.rootfs.join("keep/file").exists());
    fx.assert_sentinel_untouched();
}

#[test]
fn whiteout_with_dotdot_path_is_confined() {
    let fx = Fixture::new();
    fx.apply(&tar(&[("../../sentinel/.wh.victim", F, "", b""), ("../.wh.sentinel", F, "", b"")]), false).unwrap();
    fx.assert_sentinel_untouched();
}

#[test]
fn whiteout_through_symlink_is_confined() {
    let fx = Fixture::new();
    let target = fx.sentinel.display().to_string();
    let stats = fx.apply(&tar(&[("s", L, &target, b""), ("s/.wh.victim", F, "", b""), ("s/.wh.dir", F, "", b"")]), false).unwrap();
    assert_eq!(stats.whiteouts, 2);
    fx.assert_sentinel_untouched();
}

#[test]
fn whiteout_of_a_symlink_removes_the_link_not_its_target() {
    let fx = Fixture::new();
    write(&fx.rootfs, "real/data", b"d");
    std::os::unix::fs::symlink("/real", fx.rootfs.join("link")).unwrap();
    std::os::unix::fs::symlink(&fx.sentinel, fx.rootfs.join("out")).unwrap();
    fx.apply(&tar(&[(".wh.link", F, "", b""), (".wh.out", F, "", b"")]), false).unwrap();
    assert!(!fx.rootfs.join("link").exists() && fx.rootfs.join("real/data").exists());
    assert!(std::fs::symlink_metadata(fx.rootfs.join("out")).is_err());
    fx.assert_sentinel_untouched();
}

#[test]
fn opaque_whiteout_on_symlinked_dir_is_ignored() {
    let fx = Fixture::new();
    write(&fx.rootfs, "keep/file", b"k");
    std::os::unix::fs::symlink("/keep", fx.rootfs.join("inroot")).unwrap();
    std::os::unix::fs::symlink(&fx.sentinel, fx.rootfs.join("out")).unwrap();
    fx.apply(&tar(&[("inroot/.wh..wh..opq", F, "", b""), ("out/.wh..wh..opq", F, "", b"")]), false).unwrap();
    assert!(fx.rootfs.join("keep/file").exists(), "opaque marker must not clear a symlink's target");
    fx.assert_sentinel_untouched();
}

#[test]
fn opaque_whiteout_keeps_entries_of_the_same_layer() {
    let fx = Fixture::new();
    write(&fx.rootfs, "d/lower1", b"1");
    write(&fx.rootfs, "d/sub/lower2", b"2");
    // Entries before and after the marker; the marker applies to lower layers only.
    fx.apply(&tar(&[("d/", D, "", b""), ("d/new1", F, "", b"n"), ("d/.wh..wh..opq", F, "", b""), ("d/new2", F, "", b"m")]), false).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(fx.rootfs.join("d")).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, vec!["new1", "new2"]);
    fx.assert_sentinel_untouched();
}

#[test]
fn device_node_when_rootless_is_skipped() {
    let fx = Fixture::new();
    let stats = fx.apply(&tar(&[("dev/null", typeflag::CHAR, "", b""), ("after", F, "", b"ok")]), true).unwrap();
    assert_eq!(stats.skipped_devices, 1);
    assert!(std::fs::symlink_metadata(fx.rootfs.join("dev/null")).is_err());
    assert_eq!(std::fs::read(fx.rootfs.join("after")).unwrap(), b"ok");
    fx.assert_sentinel_untouched();
}

#[test]
fn device_node_as_root_is_created() {
    if skip_unless_root("device_node_as_root_is_created") {
        return;
    }
    let fx = Fixture::new();
    fx.apply(&tar(&[("dev/null", typeflag::CHAR, "", b"")]), false).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(fx.rootfs.join("dev/null")).unwrap().file_type().is_char_device());
}

#[test]
fn header_claiming_a_huge_size_fails() {
    let fx = Fixture::new();
    let mut t = Vec::new();
    let h = TarHeader { name: b"big".to_vec(), mode: 0o644, size: 0o77777777777, typeflag: F, ..Default::default() };
    tarwriter::write_header(&mut t, &h).unwrap();
    t.extend_from_slice(&[b'a'; 4096]);
    let err = fx.apply(&t, false).unwrap_err();
    assert!(matches!(err, Error::Archive { .. }), "{err}");
    fx.assert_sentinel_untouched();
}

#[test]
fn truncated_gzip_stream_fails() {
    let fx = Fixture::new();
    let plain = tar(&[("a", F, "", &vec![1u8; 100_000]), ("b", F, "", b"b")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let err = fx.apply(&gz[..gz.len() / 2], false).unwrap_err();
    assert!(matches!(err, Error::Archive { .. }), "{err}");
    // Cut inside the gzip trailer: all tar data is there, the CRC check is not.
    let err = fx.apply(&gz[..gz.len() - 4], false).unwrap_err();
    assert!(matches!(err, Error::Archive { .. }), "{err}");
    fx.assert_sentinel_untouched();
}

#[test]
fn wrong_diff_id_fails_naming_the_layer() {
    let fx = Fixture::new();
    let t = tar(&[("a", F, "", b"a")]);
    let opts = UnpackOptions {
        expected_diff_id: Some(format!("sha256:{}", "0".repeat(64))),
        rootless: false,
        layer_digest: Some("sha256:feedface".into()),
        ..Default::default()
    };
    let err = unpack_layer(&t[..], &fx.rootfs, &opts).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("sha256:feedface") && msg.contains("diff_id mismatch"), "{msg}");
    match err {
        Error::InLayer { source, .. } => assert!(matches!(*source, Error::DiffIdMismatch { .. })),
        other => panic!("unexpected {other:?}"),
    }
    fx.assert_sentinel_untouched();
}

#[test]
fn file_over_symlink_replaces_the_link() {
    let fx = Fixture::new();
    let target = format!("{}/victim", fx.sentinel.display());
    fx.apply(&tar(&[("f", L, &target, b""), ("f", F, "", b"pwned")]), false).unwrap();
    let md = std::fs::symlink_metadata(fx.rootfs.join("f")).unwrap();
    assert!(md.is_file());
    fx.assert_sentinel_untouched();
}

#[test]
fn pre_existing_symlink_in_rootfs_is_not_followed() {
    let fx = Fixture::new();
    // A base layer left a symlink pointing at the host path; a later layer writes through it.
    std::os::unix::fs::symlink(&fx.sentinel, fx.rootfs.join("d")).unwrap();
    std::os::unix::fs::symlink(fx.sentinel.join("victim"), fx.rootfs.join("v")).unwrap();
    fx.apply(&tar(&[("d/victim", F, "", b"pwned"), ("v", F, "", b"pwned"), ("d/dir/", D, "", b"")]), false).unwrap();
    fx.assert_sentinel_untouched();
}

#[test]
fn dir_entry_replaces_symlink() {
    let fx = Fixture::new();
    let target = fx.sentinel.display().to_string();
    fx.apply(&tar(&[("d", L, &target, b""), ("d/", D, "", b""), ("d/victim", F, "", b"pwned")]), false).unwrap();
    assert!(std::fs::symlink_metadata(fx.rootfs.join("d")).unwrap().is_dir());
    assert_eq!(std::fs::read(fx.rootfs.join("d/victim")).unwrap(), b"pwned");
    fx.assert_sentinel_untouched();
}

#[test]
fn symlink_loop_fails_cleanly() {
    let fx = Fixture::new();
    let err = fx.apply(&tar(&[("a", L, "b", b""), ("b", L, "a", b""), ("a/x", F, "", b"x")]), false).unwrap_err();
    assert!(matches!(err, Error::Entry { .. }), "{err}");
    fx.assert_sentinel_untouched();
}

#[test]
fn long_pax_name_with_dotdot_is_confined() {
    let fx = Fixture::new();
    let name = format!("{}/{}/../../../../../../../sentinel/victim", "a".repeat(120), "b".repeat(150));
    fx.apply(&tar(&[(&name, F, "", b"pwned")]), false).unwrap();
    assert_eq!(std::fs::read(fx.rootfs.join("sentinel/victim")).unwrap(), b"pwned");
    fx.assert_sentinel_untouched();
}

#[test]
fn non_directory_entry_for_the_root_fails() {
    let fx = Fixture::new();
    let err = fx.apply(&tar(&[("./", F, "", b"x")]), false).unwrap_err();
    assert!(matches!(err, Error::InvalidEntry { .. }), "{err}");
    let err = fx.apply(&tar(&[("..", L, "/", b"")]), false).unwrap_err();
    assert!(matches!(err, Error::InvalidEntry { .. }), "{err}");
    fx.assert_sentinel_untouched();
}

#[test]
fn hardlink_to_directory_fails() {
    let fx = Fixture::new();
    let err = fx.apply(&tar(&[("d/", D, "", b""), ("h", H, "d", b"")]), false).unwrap_err();
    assert!(err.to_string().contains("directory"), "{err}");
}

#[test]
fn garbage_is_not_a_layer() {
    let fx = Fixture::new();
    let junk: Vec<u8> = (0..5000u32).map(|i| (i * 7 + 3) as u8).collect();
    assert!(fx.apply(&junk, false).is_err());
    let mut zstd_junk = vec![0x28, 0xb5, 0x2f, 0xfd];
    zstd_junk.extend_from_slice(&junk);
    assert!(matches!(fx.apply(&zstd_junk, false).unwrap_err(), Error::Archive { .. }));
    fx.assert_sentinel_untouched();
}

#[test]
fn manual_resolver_confines_like_openat2() {
    // The fallback (no openat2) is exercised directly: same hostile symlinks, same confinement.
    let fx = Fixture::new();
    std::os::unix::fs::symlink("/", fx.rootfs.join("toroot")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", fx.rootfs.join("up")).unwrap();
    let root = strata_snapshot::rootdir::Root::open(&fx.rootfs).unwrap();
    for p in ["toroot", "up", "up/up/toroot"] {
        let fd = root.open_dir_manual(Path::new(p)).unwrap();
        let st = rustix::fs::fstat(&fd).unwrap();
        let root_st = rustix::fs::stat(&fx.rootfs).unwrap();
        assert_eq!((st.st_dev, st.st_ino), (root_st.st_dev, root_st.st_ino), "{p} must resolve to the rootfs itself");
    }
}

#[test]
fn fallback_resolver_passes_all_hostile_cases() {
    // Re-run this whole test binary with openat2 disabled, so every case above also proves the
    // component-by-component resolver used where openat2 is missing or blocked by seccomp.
    if std::env::var_os(strata_snapshot::rootdir::DISABLE_OPENAT2_ENV).is_some() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(strata_snapshot::rootdir::DISABLE_OPENAT2_ENV, "1")
        .args(["--test-threads", "2", "--skip", "fallback_resolver_passes_all_hostile_cases"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "hostile cases failed without openat2:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("test result: ok"), "{stdout}");
}

/// With the build root at `/`, the build's own files must survive any layer: entries at kept
/// paths are skipped, and whiteouts or replacements of their parents leave them in place.
#[test]
fn kept_paths_survive_entries_whiteouts_and_opaque_dirs() {
    let fx = Fixture::new();
    write(&fx.rootfs, "work/blob", b"mine");
    write(&fx.rootfs, "var/lib/strata/state", b"mine");
    write(&fx.rootfs, "var/lib/other", b"base");
    write(&fx.rootfs, "opq/kept/x", b"mine");
    write(&fx.rootfs, "opq/gone", b"base");
    let opts = UnpackOptions { keep: KeepPaths::new(["/work".into(), "/var/lib/strata".into(), "opq/kept".into()]), ..Default::default() };
    unpack_layer(
        &tar(&[
            ("work/blob", F, "", b"overwritten"),
            ("work/new", F, "", b"new"),
            ("var/.wh.lib", F, "", b""),
            ("opq/.wh..wh..opq", F, "", b""),
            ("opq/fresh", F, "", b"fresh"),
        ])[..],
        &fx.rootfs,
        &opts,
    )
    .unwrap();
    assert_eq!(std::fs::read(fx.rootfs.join("work/blob")).unwrap(), b"mine");
    assert!(!fx.rootfs.join("work/new").exists(), "nothing is written below a kept path");
    assert_eq!(std::fs::read(fx.rootfs.join("var/lib/strata/state")).unwrap(), b"mine");
    assert!(!fx.rootfs.join("var/lib/other").exists(), "the whiteout removes the rest of var/lib");
    assert_eq!(std::fs::read(fx.rootfs.join("opq/kept/x")).unwrap(), b"mine");
    assert!(!fx.rootfs.join("opq/gone").exists(), "the opaque dir hides the lower entries");
    assert!(fx.rootfs.join("opq/fresh").exists());

    // A symlink or file replacing a directory that holds a kept path is skipped, never a deletion.
    unpack_layer(&tar(&[("var", L, "/run", b""), ("work", F, "", b"file")])[..], &fx.rootfs, &opts).unwrap();
    assert!(fx.rootfs.join("var").is_dir() && fx.rootfs.join("work").is_dir());
    assert_eq!(std::fs::read(fx.rootfs.join("var/lib/strata/state")).unwrap(), b"mine");
    fx.assert_sentinel_untouched();
}

/// Creates `depth` nested directories named `name` below `root` (fd-relative: the path outgrows
/// PATH_MAX), a file `f` in each and a file `bottom` at the bottom.
fn deep_tree(root: &Path, name: &str, depth: usize) {
    use rustix::fs::{Mode, OFlags};
    let mut fd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    for _ in 0..depth {
        // A file at every level too: a layer lists them after the whole chain below, deepest
        // first, so each is in an ancestor of the directory before (climbing, not descending).
        drop(rustix::fs::openat(&fd, "f", OFlags::WRONLY | OFlags::CREATE, Mode::from_raw_mode(0o644)).unwrap());
        rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o755)).unwrap();
        fd = rustix::fs::openat(&fd, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW, Mode::empty()).unwrap();
    }
    let f = rustix::fs::openat(&fd, "bottom", OFlags::WRONLY | OFlags::CREATE, Mode::from_raw_mode(0o644)).unwrap();
    rustix::io::write(&f, b"deep").unwrap();
}

/// Depth of the chain of directories named `name` below `root` (each holding `f`), and the
/// bottom file's content.
fn deep_tree_depth(root: &Path, name: &str) -> (usize, Vec<u8>) {
    use rustix::fs::{Mode, OFlags};
    let mut fd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    let mut depth = 0;
    while let Ok(next) = rustix::fs::openat(&fd, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW, Mode::empty()) {
        assert!(rustix::fs::statat(&fd, "f", rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok(), "the file at level {depth}");
        fd = next;
        depth += 1;
    }
    let f = rustix::fs::openat(&fd, "bottom", OFlags::RDONLY, Mode::empty()).unwrap();
    let mut buf = vec![0u8; 16];
    let n = rustix::io::read(&f, &mut buf).unwrap();
    buf.truncate(n);
    (depth, buf)
}

/// A gzip bomb, streamed: a tar header claiming a 50 GB file, then the same 1 MiB-of-zeros gzip
/// member over and over (gzip allows concatenated members). About 1 KiB is ever held in memory;
/// `read` counts the compressed bytes handed out.
struct Bomb {
    head: std::io::Cursor<Vec<u8>>,
    member: Vec<u8>,
    pos: usize,
    members_left: u64,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Bomb {
    /// `size` bytes of zeros in a file entry named `name`, or after the end of the archive when
    /// `trailing`.
    fn new(name: &str, size: u64, trailing: bool) -> Self {
        let gz = |data: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        let mut head = Vec::new();
        if trailing {
            head = tar(&[("small", F, "", b"ok")]);
        } else {
            let h = TarHeader { name: name.as_bytes().to_vec(), mode: 0o644, size, typeflag: F, ..Default::default() };
            tarwriter::write_header(&mut head, &h).unwrap();
        }
        Self { head: std::io::Cursor::new(gz(&head)), member: gz(&vec![0u8; 1 << 20]), pos: 0, members_left: size.div_ceil(1 << 20), read: Default::default() }
    }
}

impl std::io::Read for Bomb {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = self.head.read(buf)?;
        if n == 0 && self.members_left > 0 {
            n = buf.len().min(self.member.len() - self.pos);
            buf[..n].copy_from_slice(&self.member[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos == self.member.len() {
                self.pos = 0;
                self.members_left -= 1;
            }
        }
        self.read.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Bytes of file data under `root`.
fn tree_bytes(root: &Path) -> u64 {
    walkdir::WalkDir::new(root).into_iter().filter_map(|e| e.ok()).filter(|e| e.file_type().is_file()).map(|e| e.metadata().unwrap().len()).sum()
}

#[test]
fn gzip_bomb_stops_at_the_size_limit_and_leaves_no_partial_file() {
    for trailing in [false, true] {
        let fx = Fixture::new();
        let bomb = Bomb::new("bomb", 50_000_000_000, trailing);
        let read = bomb.read.clone();
        let stored = bomb.head.get_ref().len() + bomb.member.len();
        assert!(stored < 4096, "the bomb is a few KB: {stored}");
        let opts = UnpackOptions { layer_digest: Some("sha256:b0mb".into()), size_limit: LayerSizeLimit::Bytes(64 << 20), ..Default::default() };
        let err = unpack_layer(bomb, &fx.rootfs, &opts).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::LayerTooLarge { bound, .. } if bound == 64 << 20), "{err:?}");
        assert!(msg.contains("sha256:b0mb") && msg.contains("--max-layer-size") && msg.contains("67108864 bytes"), "{msg}");
        assert!(!fx.rootfs.join("bomb").exists(), "the partly written file is removed");
        assert_eq!(tree_bytes(&fx.rootfs), if trailing { 2 } else { 0 });
        // It stopped soon after the limit: a few MB of the stream, not 50 GB's worth.
        let compressed = read.load(std::sync::atomic::Ordering::Relaxed);
        assert!(compressed < 1 << 20, "read {compressed} compressed bytes");
        fx.assert_sentinel_untouched();
    }
}

#[test]
fn layer_size_limit_default_and_parsing() {
    let d = LayerSizeLimit::default();
    assert_eq!(d, LayerSizeLimit::Ratio(100));
    assert_eq!(d.bound(4096), Some(1 << 30), "a few KB may still hold 1 GiB");
    assert_eq!(d.bound(2 << 30), Some(200 << 30), "100x a 2 GiB layer");
    assert_eq!(LayerSizeLimit::parse("100x"), Ok(LayerSizeLimit::Ratio(100)));
    assert_eq!(LayerSizeLimit::parse("20GiB"), Ok(LayerSizeLimit::Bytes(20 << 30)));
    assert_eq!(LayerSizeLimit::parse("500MB"), Ok(LayerSizeLimit::Bytes(500_000_000)));
    assert_eq!(LayerSizeLimit::parse("none"), Ok(LayerSizeLimit::Unlimited));
    assert!(LayerSizeLimit::parse("0").is_err() && LayerSizeLimit::parse("12 parsecs").is_err() && LayerSizeLimit::parse("0x").is_err());
    // A layer under the limit unpacks whole.
    let fx = Fixture::new();
    let opts = UnpackOptions { size_limit: LayerSizeLimit::Bytes(1 << 20), ..Default::default() };
    unpack_layer(&tar(&[("fits", F, "", &vec![7u8; 100_000])])[..], &fx.rootfs, &opts).unwrap();
    assert_eq!(std::fs::read(fx.rootfs.join("fits")).unwrap().len(), 100_000);
}

/// A tree 2,048 levels deep (the case: its layer took 11.7 s to write, 63 KiB) and one
/// whose paths pass PATH_MAX (8 KiB: every path-based call failed with ENAMETOOLONG): diffed,
/// written and unpacked, the copy has every level. Layer planning is linear in the names; the
/// walker, the layer writer and unpacking step one directory at a time through the fd of the
/// one before, and climb back through directories kept open every 64 levels (`DirCursor`). The bound asserted is deliberately loose (the machine is shared); the figures are
/// printed.
#[test]
fn deep_tree_diff_layer_unpack() {
    let started = std::time::Instant::now();
    for (name, depth) in [("d", 2048usize), ("dir", 2048)] {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let dst = tmp.path().join("dst");
        std::fs::create_dir_all(&src).unwrap();
        let store = BlobStore::open(&tmp.path().join("blobs")).unwrap();
        let mut snap = Snapshotter::new(&src, SnapshotMode::Full, Vec::new()).unwrap();
        deep_tree(&src, name, depth);
        let t = std::time::Instant::now();
        let changes = snap.diff().unwrap();
        eprintln!("{name}x{depth}: diff {:?} ({} changes)", t.elapsed(), changes.len());
        let t = std::time::Instant::now();
        let layer = write_layer(&src, &changes, &LayerOptions::default(), &store).unwrap();
        eprintln!("{name}x{depth}: layer {:?} ({} bytes)", t.elapsed(), layer.size);
        let t = std::time::Instant::now();
        let f = std::fs::File::open(store.path(&layer.digest)).unwrap();
        unpack_layer(f, &dst, &UnpackOptions::default()).unwrap();
        eprintln!("{name}x{depth}: unpack {:?}", t.elapsed());
        assert_eq!(deep_tree_depth(&dst, name), (depth, b"deep".to_vec()));
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "quadratic again? {:?}", started.elapsed());
}

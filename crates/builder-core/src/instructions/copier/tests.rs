//! Unit tests of COPY's rules against real directories (run as root for ownership checks).

use super::*;
use std::os::unix::fs::{FileTypeExt, symlink};

struct Fixture {
    _dir: tempfile::TempDir,
    ctx: PathBuf,
    rootfs: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = dir.path().join("ctx");
    let rootfs = dir.path().join("rootfs");
    for d in ["ctx/src/sub", "ctx/docs/keep", "ctx/node_modules/pkg", "rootfs/existing", "rootfs/etc"] {
        std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
    }
    for (p, body) in [
        ("src/a.txt", "a"),
        ("src/b.md", "b"),
        ("src/sub/c.txt", "c"),
        ("docs/x.md", "x"),
        ("docs/keep/y.md", "y"),
        ("node_modules/pkg/i.js", "i"),
        ("top.txt", "top"),
    ] {
        std::fs::write(ctx.join(p), body).expect("write");
    }
    std::fs::set_permissions(ctx.join("src/sub"), std::fs::Permissions::from_mode(0o750)).expect("chmod");
    std::fs::set_permissions(ctx.join("src/a.txt"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::set_permissions(rootfs.join("existing"), std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n").expect("passwd");
    symlink("src/a.txt", ctx.join("link")).expect("symlink");
    Fixture { _dir: dir, ctx, rootfs }
}

fn run(f: &Fixture, ignore: Option<&DockerIgnore>, req: CopyRequest) -> Result<Vec<String>, String> {
    let from = CopyFrom { root: &f.ctx, ignore, is_rootfs: false };
    copy(&from, &req, &f.rootfs).map_err(|e| e.to_string())
}

fn req(sources: &[&str], dest: &str) -> CopyRequest {
    CopyRequest { sources: sources.iter().map(|s| s.to_string()).collect(), dest: dest.into(), workdir: "/".into(), ..Default::default() }
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).expect("stat").mode() & 0o7777
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).expect("stat");
    (m.uid(), m.gid())
}

#[test]
fn directory_contents_and_created_dir_is_root_0755() {
    let f = fixture();
    // A private context directory: BuildKit still makes /app root's 0755 (dockerd 20.10 checked),
    // so `USER 1000` can read /app/hello.txt.
    std::fs::set_permissions(f.ctx.join("src"), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    run(&f, None, req(&["src"], "/app")).expect("copy");
    assert_eq!((mode(&f.rootfs.join("app")), owner(&f.rootfs.join("app"))), (0o755, (0, 0)), "not the source directory's 0700");
    assert!(f.rootfs.join("app/a.txt").is_file() && f.rootfs.join("app/sub/c.txt").is_file());
    assert!(!f.rootfs.join("app/src").exists(), "a directory source copies its contents");
    assert_eq!(mode(&f.rootfs.join("app/sub")), 0o750);
    assert_eq!(mode(&f.rootfs.join("app/a.txt")), 0o600);
    // An existing destination directory keeps its own mode.
    run(&f, None, req(&["src"], "/existing/")).expect("copy");
    assert_eq!(mode(&f.rootfs.join("existing")), 0o1777);
}

#[test]
fn trailing_slash_existing_dir_and_workdir() {
    let f = fixture();
    run(&f, None, req(&["top.txt"], "/new")).expect("copy");
    assert!(f.rootfs.join("new").is_file(), "no slash: the file becomes dest");
    run(&f, None, req(&["top.txt"], "/newdir/")).expect("copy");
    assert!(f.rootfs.join("newdir/top.txt").is_file());
    run(&f, None, req(&["top.txt"], "/existing")).expect("copy");
    assert!(f.rootfs.join("existing/top.txt").is_file(), "an existing directory receives the file");
    let mut r = req(&["top.txt"], "rel/");
    r.workdir = "/work/dir".into();
    let written = run(&f, None, r).expect("copy");
    assert_eq!(written, vec!["/work/dir/rel/top.txt".to_string()]);
    assert_eq!(mode(&f.rootfs.join("work")), 0o755);
    let mut r = req(&["top.txt"], ".");
    r.workdir = "/w2".into();
    run(&f, None, r).expect("copy");
    assert!(f.rootfs.join("w2/top.txt").is_file());
    run(&f, None, req(&["top.txt", "src/b.md"], "/multi/")).expect("several sources into a directory");
    assert!(f.rootfs.join("multi/top.txt").is_file() && f.rootfs.join("multi/b.md").is_file());
    // BuildKit (dockerd 20.10 checked): one copy per source onto the same name, the last wins.
    run(&f, None, req(&["top.txt", "src/b.md"], "/multi-noslash")).expect("several sources onto one name");
    assert_eq!(std::fs::read_to_string(f.rootfs.join("multi-noslash")).expect("a file"), "b");
}

#[test]
fn globs_match_per_component_and_errors_name_the_source() {
    let f = fixture();
    run(&f, None, req(&["src/*.txt"], "/g/")).expect("copy");
    assert!(f.rootfs.join("g/a.txt").is_file() && !f.rootfs.join("g/b.md").exists());
    run(&f, None, req(&["*/*.md"], "/h/")).expect("copy");
    assert!(f.rootfs.join("h/b.md").is_file() && f.rootfs.join("h/x.md").is_file());
    run(&f, None, req(&["s[^x]c"], "/k/")).expect("a matched directory copies its contents");
    assert!(f.rootfs.join("k/a.txt").is_file());
    // BuildKit's AllowEmptyWildcard: an empty match copies nothing, even as the only source.
    run(&f, None, req(&["nothing*", "top.txt"], "/y/")).expect("an empty wildcard beside a real file");
    assert!(f.rootfs.join("y/top.txt").is_file());
    assert_eq!(run(&f, None, req(&["nothing*"], "/z/")).expect("a lone empty wildcard"), Vec::<String>::new());
    assert!(!f.rootfs.join("z").exists(), "nothing copied, no destination made");
    let err = run(&f, None, req(&["missing.txt"], "/z/")).expect_err("missing");
    assert!(err.contains("missing.txt") && err.contains("not found"), "{err}");
}

#[test]
fn symlink_sources_followed_inside_the_root_and_kept_inside_dirs() {
    let f = fixture();
    run(&f, None, req(&["link"], "/l")).expect("copy");
    assert!(std::fs::symlink_metadata(f.rootfs.join("l")).expect("stat").is_file(), "a named symlink is followed");
    std::fs::create_dir(f.ctx.join("withlink")).expect("mkdir");
    symlink("/etc/shadow", f.ctx.join("withlink/abs")).expect("symlink");
    run(&f, None, req(&["withlink"], "/wl")).expect("copy");
    assert_eq!(std::fs::read_link(f.rootfs.join("wl/abs")).expect("readlink"), PathBuf::from("/etc/shadow"));
    symlink("../../../../../etc/hostname", f.ctx.join("escape")).expect("symlink");
    assert!(run(&f, None, req(&["escape"], "/e")).is_err(), "a symlink cannot reach outside the context");
}

#[test]
fn dockerignore_exceptions_reinclude_inside_excluded_dirs() {
    let f = fixture();
    let ig = DockerIgnore::parse("docs\n!docs/keep\nnode_modules\n!**/i.js\n*.txt\n").expect("ignore");
    run(&f, Some(&ig), req(&["."], "/c/")).expect("copy");
    assert!(f.rootfs.join("c/docs/keep/y.md").is_file());
    assert!(!f.rootfs.join("c/docs/x.md").exists());
    assert!(!f.rootfs.join("c/node_modules").exists(), "BuildKit does not enter node_modules for !**/i.js");
    assert!(!f.rootfs.join("c/top.txt").exists() && f.rootfs.join("c/src/b.md").is_file());
    let err = run(&f, Some(&ig), req(&["top.txt"], "/t")).expect_err("excluded");
    assert!(err.contains(".dockerignore"), "{err}");
}

#[test]
fn exclude_and_parents() {
    let f = fixture();
    let mut r = req(&["src"], "/ex/");
    r.exclude = vec!["*.md".into(), "sub".into()];
    run(&f, None, r).expect("copy");
    assert!(f.rootfs.join("ex/a.txt").is_file() && !f.rootfs.join("ex/b.md").exists() && !f.rootfs.join("ex/sub").exists());
    let mut r = req(&["src/sub/c.txt", "docs/keep"], "/p/");
    r.parents = true;
    run(&f, None, r).expect("copy");
    assert!(f.rootfs.join("p/src/sub/c.txt").is_file() && f.rootfs.join("p/docs/keep/y.md").is_file());
    assert_eq!(mode(&f.rootfs.join("p/src/sub")), 0o750, "--parents directories keep their source metadata");
    let mut r = req(&["src/./sub/c.txt"], "/q/");
    r.parents = true;
    run(&f, None, r).expect("copy");
    assert!(f.rootfs.join("q/sub/c.txt").is_file(), "the /./ pivot drops what comes before it");
}

#[test]
fn chown_and_chmod_apply_to_everything_and_created_parents() {
    let f = fixture();
    let mut r = req(&["src"], "/deep/er/app/");
    r.owner = Some((1000, 1001));
    r.chmod = Some(0o640);
    run(&f, None, r).expect("copy");
    assert_eq!(owner(&f.rootfs.join("deep")), (1000, 1001), "fsutil's MkdirAll chowns created parents");
    assert_eq!(mode(&f.rootfs.join("deep")), 0o640, "created parents take the octal --chmod (testCopyChmod)");
    assert_eq!(mode(&f.rootfs.join("deep/er/app")), 0o640);
    assert_eq!(owner(&f.rootfs.join("deep/er/app/sub/c.txt")), (1000, 1001));
    assert_eq!(mode(&f.rootfs.join("deep/er/app/a.txt")), 0o640);
    assert_eq!(mode(&f.rootfs.join("deep/er/app/sub")), 0o640, "BuildKit applies --chmod to directories too");
    run(&f, None, req(&["top.txt"], "/root-owned")).expect("copy");
    assert_eq!(owner(&f.rootfs.join("root-owned")), (0, 0));
    // testCopyChmod: `COPY --chmod=777 foo /parent/foo` makes /parent 0777, and
    // `COPY --chmod=770 foo /parent/sub/foo` then makes only the new /parent/sub 0770.
    let mut r = req(&["top.txt"], "/parent/foo");
    r.chmod = Some(0o777);
    run(&f, None, r).expect("copy");
    let mut r = req(&["top.txt"], "/parent/sub/foo");
    r.chmod = Some(0o770);
    run(&f, None, r).expect("copy");
    assert_eq!((mode(&f.rootfs.join("parent")), mode(&f.rootfs.join("parent/sub"))), (0o777, 0o770));
    // A symbolic --chmod leaves created directories 0755.
    let mut r = req(&["top.txt"], "/sym/foo");
    r.chmod_symbolic = Some(crate::instructions::chmod::SymbolicMode::parse("u+x").expect("u+x"));
    run(&f, None, r).expect("copy");
    assert_eq!(mode(&f.rootfs.join("sym")), 0o755);
}

#[test]
fn from_rootfs_keeps_owners_symlinks_and_hardlinks() {
    let f = fixture();
    let other = f.ctx.parent().expect("parent").join("stage");
    std::fs::create_dir_all(other.join("opt/app")).expect("mkdir");
    std::fs::write(other.join("opt/app/bin"), "bin").expect("write");
    std::fs::hard_link(other.join("opt/app/bin"), other.join("opt/app/bin2")).expect("hardlink");
    symlink("/opt/app/bin", other.join("opt/app/abs")).expect("symlink");
    symlink("/opt/app", other.join("applink")).expect("symlink");
    std::os::unix::fs::lchown(other.join("opt/app/bin"), Some(42), Some(43)).expect("chown");
    let from = CopyFrom { root: &other, ignore: None, is_rootfs: true };
    copy(&from, &req(&["/applink"], "/dst"), &f.rootfs).expect("copy");
    let bin = std::fs::metadata(f.rootfs.join("dst/bin")).expect("stat");
    let bin2 = std::fs::metadata(f.rootfs.join("dst/bin2")).expect("stat");
    assert_eq!((bin.uid(), bin.gid()), (42, 43), "--from keeps the source owner");
    // The destination COPY creates is root's, whatever owns the source directory.
    std::os::unix::fs::lchown(other.join("opt/app"), Some(1000), Some(1000)).expect("chown");
    copy(&from, &req(&["/opt/app"], "/dest"), &f.rootfs).expect("copy");
    assert_eq!(owner(&f.rootfs.join("dest")), (0, 0), "BuildKit and buildah make /dest 0:0");
    assert_eq!(owner(&f.rootfs.join("dest/bin")), (42, 43));
    assert_eq!(bin.ino(), bin2.ino(), "hardlinks stay hardlinks");
    assert_eq!(std::fs::read_link(f.rootfs.join("dst/abs")).expect("readlink"), PathBuf::from("/opt/app/bin"));
}

#[test]
fn add_unpacks_tar_archives_into_the_destination() {
    let f = fixture();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o751);
    h.set_uid(7);
    h.set_gid(8);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(&mut h, "pkg/tool", &b"hi"[..]).expect("append");
    std::fs::write(f.ctx.join("pkg.tar"), b.into_inner().expect("tar")).expect("write");
    let mut r = req(&["pkg.tar"], "/opt");
    r.unpack_archives = true;
    run(&f, None, r).expect("add");
    assert_eq!(mode(&f.rootfs.join("opt/pkg/tool")), 0o751);
    assert_eq!(owner(&f.rootfs.join("opt/pkg/tool")), (7, 8));
    run(&f, None, req(&["pkg.tar"], "/copied")).expect("copy");
    assert!(f.rootfs.join("copied").is_file(), "COPY never unpacks");
}

#[test]
fn directory_onto_file_fails_and_dot_suffix_names_a_file() {
    let f = fixture();
    run(&f, None, req(&["top.txt"], "/thing")).expect("copy");
    let err = run(&f, None, req(&["src"], "/thing/")).expect_err("dir onto file");
    assert!(err.contains("not a directory"), "{err}");
    run(&f, None, req(&["top.txt"], "/named/.")).expect("copy");
    assert!(f.rootfs.join("named").is_file(), "BuildKit cleans dest/. to dest: a file");
}

#[test]
fn add_archive_with_chown_owns_every_entry_and_merges() {
    let f = fixture();
    let mut b = tar::Builder::new(Vec::new());
    for (name, mode) in [("etc/x.conf", 0o600), ("new/y", 0o755)] {
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(mode);
        h.set_uid(7);
        h.set_gid(8);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, name, &b"z"[..]).expect("append");
    }
    std::fs::write(f.ctx.join("a.tar"), b.into_inner().expect("tar")).expect("write");
    std::fs::write(f.rootfs.join("etc/keep"), "k").expect("write");
    let mut r = req(&["a.tar"], "/");
    r.unpack_archives = true;
    r.owner = Some((1000, 1001));
    r.chmod = Some(0o777);
    run(&f, None, r).expect("add");
    assert!(f.rootfs.join("etc/passwd").is_file() && f.rootfs.join("etc/keep").is_file(), "existing files stay");
    assert_eq!(owner(&f.rootfs.join("etc/x.conf")), (1000, 1001));
    assert_eq!(mode(&f.rootfs.join("etc/x.conf")), 0o600, "--chmod does not touch extracted entries");
    assert_eq!(owner(&f.rootfs.join("new/y")), (1000, 1001));
    assert_eq!(owner(&f.rootfs.join("new")), (0, 0), "directories the archive only implies stay root's");
    assert_eq!(mode(&f.rootfs.join("etc")), 0o755);
}

#[test]
fn extended_attributes_survive_chown() {
    let f = fixture();
    let src = f.ctx.join("top.txt");
    if rustix::fs::lsetxattr(&src, "user.strata", b"kept", rustix::fs::XattrFlags::empty()).is_err() {
        eprintln!("SKIPPED extended_attributes_survive_chown: the filesystem refuses user.* xattrs");
        return;
    }
    let mut r = req(&["top.txt"], "/x");
    r.owner = Some((5, 5));
    run(&f, None, r).expect("copy");
    let mut buf = [0u8; 16];
    let n = rustix::fs::lgetxattr(f.rootfs.join("x"), "user.strata", &mut buf[..]).expect("xattr copied");
    assert_eq!(&buf[..n], b"kept");
}

#[test]
fn fifos_from_a_stage_are_recreated_but_not_from_the_context() {
    let f = fixture();
    let stage = f.ctx.parent().expect("parent").join("stage2");
    std::fs::create_dir_all(stage.join("run")).expect("mkdir");
    nix::unistd::mkfifo(&stage.join("run/pipe"), nix::sys::stat::Mode::from_bits_truncate(0o620)).expect("mkfifo");
    std::fs::set_permissions(stage.join("run/pipe"), std::fs::Permissions::from_mode(0o620)).expect("chmod");
    let from = CopyFrom { root: &stage, ignore: None, is_rootfs: true };
    copy(&from, &req(&["/run"], "/r"), &f.rootfs).expect("copy");
    let m = std::fs::symlink_metadata(f.rootfs.join("r/pipe")).expect("fifo copied");
    assert!(m.file_type().is_fifo() && m.mode() & 0o7777 == 0o620);
    nix::unistd::mkfifo(&f.ctx.join("pipe"), nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    run(&f, None, req(&["."], "/c/")).expect("copy");
    assert!(std::fs::symlink_metadata(f.rootfs.join("c/pipe")).is_err());
}

#[test]
fn link_does_not_follow_symlinks_in_the_destination() {
    let f = fixture();
    std::fs::create_dir(f.rootfs.join("srv")).expect("mkdir");
    std::fs::write(f.rootfs.join("srv/old"), "old").expect("write");
    symlink("/srv", f.rootfs.join("app")).expect("symlink");
    run(&f, None, req(&["top.txt"], "/app/plain.txt")).expect("copy");
    assert!(f.rootfs.join("srv/plain.txt").is_file(), "without --link the symlink is followed");
    let mut r = req(&["top.txt"], "/app/linked.txt");
    r.link = true;
    run(&f, None, r).expect("copy --link");
    let app = std::fs::symlink_metadata(f.rootfs.join("app")).expect("stat");
    assert!(app.is_dir(), "--link leaves a real directory where the symlink was");
    assert!(f.rootfs.join("app/linked.txt").is_file() && !f.rootfs.join("srv/linked.txt").exists());
}

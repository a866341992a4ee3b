//! COPY/ADD and build-context oracle: each case under tests/oracle_copy/<case>/ (a Dockerfile
//! and its context; symlinks, hardlinks, odd modes and archives are made at run time) is built
//! by strata, by `buildah bud --isolation chroot` and by BuildKit (dockerd 20.10, see
//! scripts/dockerd-up.sh; SKIPPED without it) on the busybox base from the local
//! registry (docker-registry, started by scripts/test.sh); file listings (path, type, mode,
//! uid:gid, size, link target, content hash) and config fields must be equal. ADD of URLs is
//! served by `python3 -m http.server` on a free 127.0.0.1 port started by the test.
//!
//! buildah 1.28 (Debian bookworm's) has no COPY heredocs, `--link`, `--exclude`, `--parents` or
//! `ADD --checksum`: those cases check strata's result against BuildKit's documented behaviour
//! instead, and say so.

use std::net::TcpListener;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use strata_tests::*;

/// A case's context copied into a scratch directory, ready to build.
struct Prepared {
    _tmp: tempfile::TempDir,
    ctx: PathBuf,
    work: PathBuf,
}

fn prepare(case: &str) -> Prepared {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ctx = tmp.path().join("ctx");
    let src = repo_root().join("tests/oracle_copy").join(case);
    must(Command::new("cp").arg("-a").arg(&src).arg(&ctx));
    // Fixtures name the default base; `COPY --from=<image>` cannot take a build arg in buildah
    // 1.28, so the reference is rewritten to the environment's registry.
    if let Ok(base) = std::env::var("STRATA_TEST_BASE_BUSYBOX") {
        for entry in std::fs::read_dir(&ctx).expect("ctx").flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n.to_string_lossy().ends_with("Dockerfile")) {
                let text = std::fs::read_to_string(&path).expect("Dockerfile");
                std::fs::write(&path, text.replace("127.0.0.1:5000/library/busybox:latest", &base)).expect("write Dockerfile");
            }
        }
    }
    let work = tmp.path().join("work");
    Prepared { _tmp: tmp, ctx, work }
}

fn base_arg(env: &TestEnv) -> String {
    format!("BASE={}", env.base_busybox)
}

/// Builds with strata (no push, OCI layout) and unpacks the result.
fn strata_build(env: &TestEnv, p: &Prepared, context: &Path, build_args: &[String]) -> Unpacked {
    let layout = p.work.join("layout");
    let df = p.ctx.join("Dockerfile");
    let dest = format!("{}/e2e-copy/case:oracle", env.registry_http);
    let mut args: Vec<String> = vec![
        "build".into(),
        "--context".into(),
        context.display().to_string(),
        "--dockerfile".into(),
        df.display().to_string(),
        "--destination".into(),
        dest,
        "--no-push".into(),
        "--oci-layout-path".into(),
        layout.display().to_string(),
        "--insecure-registry".into(),
        env.registry_http.clone(),
        "--work-dir".into(),
        p.work.join("strata").display().to_string(),
    ];
    for a in build_args {
        args.push("--build-arg".into());
        args.push(a.clone());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = strata(&argv, &[]);
    assert!(run.ok, "strata failed:\n{}", run.stderr);
    unpack_layout(&layout, "oracle")
}

/// buildah leaves the empty /dev, /proc and /sys mount points RUN needed in the layer;
/// BuildKit removes such mount stubs (executor/stubs.go) and so does strata.
fn without_stubs(theirs: Vec<String>, ours: &[String]) -> Vec<String> {
    let stubs = ["dev\tdir\t755\t0:0\t0\t\t", "proc\tdir\t755\t0:0\t0\t\t", "sys\tdir\t755\t0:0\t0\t\t"];
    theirs.into_iter().filter(|l| !stubs.contains(&l.as_str()) || ours.contains(l)).collect()
}

/// Builds the case with strata and both oracles and asserts equal listings and config.
fn oracle(env: &TestEnv, p: &Prepared, strata_context: &Path, build_args: &[String]) -> Vec<String> {
    oracle_skipping(env, p, strata_context, build_args, &[])
}

/// Like [`oracle`], leaving out `skip` paths in the comparison with buildah where BuildKit and
/// buildah differ (strata follows BuildKit, which is compared in full).
fn oracle_skipping(env: &TestEnv, p: &Prepared, strata_context: &Path, build_args: &[String], skip: &[&str]) -> Vec<String> {
    oracle_with(env, p, strata_context, build_args, Some(skip), Some(&[]))
}

/// `diffs` without the `only ...` lines of paths at or below one of `skip`.
fn without_paths(diffs: Vec<String>, skip: &[&str]) -> Vec<String> {
    let skipped = |d: &String| {
        let path = d.split_once(": ").map_or("", |(_, l)| l.split('\t').next().unwrap_or(""));
        d.starts_with("only ") && skip.iter().any(|s| path == *s || path.starts_with(&format!("{s}/")))
    };
    diffs.into_iter().filter(|d| !skipped(d)).collect()
}

/// Builds the case with strata, with buildah (unless `skip_buildah` is None; its paths are
/// left out) and with BuildKit (likewise; when dockerd runs) and asserts equal listings and
/// config; returns strata's listing.
fn oracle_with(
    env: &TestEnv,
    p: &Prepared,
    strata_context: &Path,
    build_args: &[String],
    skip_buildah: Option<&[&str]>,
    skip_buildkit: Option<&[&str]>,
) -> Vec<String> {
    let ours = strata_build(env, p, strata_context, build_args);
    let argv: Vec<&str> = build_args.iter().map(String::as_str).collect();
    let dockerfile = p.ctx.join("Dockerfile");
    let mut diffs = Vec::new();
    if let Some(skip) = skip_buildah {
        let theirs = buildah_build(&dockerfile, &p.ctx, &argv);
        diffs.extend(without_paths(oracle_differences_with(&ours, &theirs, Oracle::Buildah), skip));
    }
    if let (Some(skip), Some(host)) = (skip_buildkit, buildkit_host("e2e_copy")) {
        let theirs = buildkit_build_target(&host, &dockerfile, &p.ctx, &argv, None);
        diffs.extend(without_paths(oracle_differences_with(&ours, &theirs, Oracle::BuildKit), skip));
    }
    assert!(diffs.is_empty(), "strata and an oracle differ:\n{}", diffs.join("\n"));
    listing(&ours.rootfs)
}

fn line<'a>(listing: &'a [String], path: &str) -> &'a str {
    listing.iter().find(|l| l.split('\t').next() == Some(path)).map(String::as_str).unwrap_or_else(|| panic!("{path} missing from the image:\n{listing:#?}"))
}

/// type, mode and owner of `path`: `"file\t644\t0:0"`.
fn kind_mode_owner(listing: &[String], path: &str) -> String {
    line(listing, path).split('\t').skip(1).take(3).collect::<Vec<_>>().join("\t")
}

fn absent(listing: &[String], path: &str) -> bool {
    !listing.iter().any(|l| l.split('\t').next() == Some(path))
}

fn write(path: &Path, body: &str, mode: u32) {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(path, body).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A tree with modes, owners, a symlink, a hardlink and a private directory, packed as
/// `dir/pkg.tar` (numeric owners kept).
fn make_tar(dir: &Path) -> PathBuf {
    let stage = dir.join("pkg-stage");
    write(&stage.join("pkg/bin/tool"), "#!/bin/sh\necho tool\n", 0o751);
    write(&stage.join("pkg/etc/conf"), "conf\n", 0o640);
    write(&stage.join("pkg/private/key"), "key\n", 0o600);
    std::fs::set_permissions(stage.join("pkg/private"), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    symlink("bin/tool", stage.join("pkg/toollink")).expect("symlink");
    std::fs::hard_link(stage.join("pkg/etc/conf"), stage.join("pkg/etc/conf.hard")).expect("hardlink");
    must(Command::new("chown").args(["-R", "7:8"]).arg(stage.join("pkg/private")));
    let tar = dir.join("pkg.tar");
    must(Command::new("tar").arg("-C").arg(&stage).args(["--numeric-owner", "-cf"]).arg(&tar).arg("pkg"));
    std::fs::remove_dir_all(&stage).expect("rm stage");
    tar
}

/// Compresses `tar` as `tool` (gzip, bzip2, xz, zstd) would, keeping the original.
fn compress(tar: &Path, tool: &str, ext: &str) -> PathBuf {
    use std::io::Write;
    let out = PathBuf::from(format!("{}.{ext}", tar.display()));
    let raw = std::fs::read(tar).expect("read tar");
    let bytes = match tool {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&raw).expect("gzip");
            e.finish().expect("gzip")
        }
        "bzip2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
            e.write_all(&raw).expect("bzip2");
            e.finish().expect("bzip2")
        }
        "xz" => {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(&raw).expect("xz");
            e.finish().expect("xz")
        }
        "zstd" => zstd::encode_all(&raw[..], 3).expect("zstd"),
        other => panic!("unknown compression {other}"),
    };
    std::fs::write(&out, bytes).expect("write compressed");
    out
}

/// `python3 -m http.server` serving `dir` on a free loopback port; killed when dropped.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    fn start(dir: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        let server = Self { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("python3 -m http.server did not start on port {port}");
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

macro_rules! oracle_case {
    ($name:ident) => {
        #[test]
        fn $name() {
            let Some(env) = test_env(stringify!($name)) else { return };
            let p = prepare(stringify!($name));
            oracle(&env, &p, &p.ctx, &[base_arg(&env)]);
        }
    };
}

oracle_case!(dir_contents);
oracle_case!(workdir_relative);
oracle_case!(globs);
oracle_case!(glob_matches_dir);
oracle_case!(chown_names);
oracle_case!(from_stage_links);
oracle_case!(from_image);
oracle_case!(dockerignore_exceptions);
oracle_case!(dockerignore_excludes_itself);
oracle_case!(dockerignore_everything_but);
oracle_case!(dockerignore_classes);
oracle_case!(dockerignore_named_source);
oracle_case!(replace_file_and_dir);
oracle_case!(copy_onto_existing_dirs);
oracle_case!(copy_root_context);

/// `COPY a.txt b.txt /multi-noslash`: BuildKit copies each source onto the same name (the file
/// /multi-noslash holds b.txt, dockerd 20.10 checked); buildah 1.28 makes a directory.
#[test]
fn trailing_slash() {
    let Some(env) = test_env("trailing_slash") else { return };
    let p = prepare("trailing_slash");
    let l = oracle_with(&env, &p, &p.ctx, &[base_arg(&env)], Some(&["multi-noslash"]), Some(&[]));
    assert_eq!(kind_mode_owner(&l, "multi-noslash"), "file\t644\t0:0");
}

/// `--chmod`: the directory /m that `COPY --chmod=0640 a.txt /m/a.txt` creates takes 0640
/// (current BuildKit, testCopyChmod; buildah 1.28 and dockerd 20.10 make it 0755), and
/// `--chmod=4755` keeps the setuid bit (current BuildKit takes modes up to 07777; dockerd
/// 20.10's BuildKit drops it).
#[test]
fn chmod_octal() {
    let Some(env) = test_env("chmod_octal") else { return };
    let p = prepare("chmod_octal");
    let l = oracle_with(&env, &p, &p.ctx, &[base_arg(&env)], Some(&["m"]), Some(&["m"]));
    assert_eq!(kind_mode_owner(&l, "m"), "dir\t640\t0:0");
    assert_eq!(kind_mode_owner(&l, "m/suid"), "file\t4755\t0:0");
    assert_eq!(kind_mode_owner(&l, "m/a.txt"), "file\t640\t0:0");
    assert_eq!(kind_mode_owner(&l, "m/both"), "file\t600\t1:1");
    assert_eq!(kind_mode_owner(&l, "m/dir"), "dir\t755\t0:0");
}

#[test]
fn context_links_modes() {
    let Some(env) = test_env("context_links_modes") else { return };
    let p = prepare("context_links_modes");
    let c = &p.ctx;
    write(&c.join("f644"), "plain\n", 0o644);
    write(&c.join("exec"), "#!/bin/sh\n", 0o755);
    write(&c.join("suid"), "suid\n", 0o4755);
    write(&c.join("private"), "private\n", 0o600);
    write(&c.join("secretdir/inner"), "inner\n", 0o640);
    std::fs::set_permissions(c.join("secretdir"), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::fs::create_dir(c.join("emptydir")).expect("mkdir");
    symlink("f644", c.join("rel")).expect("symlink");
    symlink("/etc/passwd", c.join("abs")).expect("symlink");
    symlink("nowhere", c.join("dangling")).expect("symlink");
    symlink("secretdir", c.join("dirlink")).expect("symlink");
    std::fs::hard_link(c.join("f644"), c.join("hard")).expect("hardlink");
    must(Command::new("chown").args(["1234:5678"]).arg(c.join("private")));
    // buildah 1.28 drops the setuid bit of a copied context file (it chowns after chmod);
    // BuildKit keeps the mode the context sent, setuid included.
    let l = oracle_skipping(&env, &p, &p.ctx, &[base_arg(&env)], &["ctx/suid"]);
    assert_eq!(kind_mode_owner(&l, "ctx/private"), "file\t600\t0:0", "context files belong to root");
    assert_eq!(kind_mode_owner(&l, "ctx/suid"), "file\t4755\t0:0");
    assert!(line(&l, "ctx/abs").contains("\tsymlink\t") && line(&l, "ctx/abs").contains("/etc/passwd"));
}

fn add_tar_case(case: &str, tool: Option<(&str, &str)>) {
    let Some(env) = test_env(case) else { return };
    let p = prepare(case);
    let tar = make_tar(&p.ctx);
    if let Some((tool, ext)) = tool {
        compress(&tar, tool, ext);
        std::fs::remove_file(&tar).expect("rm tar");
    }
    // dockerd 20.10's BuildKit does not recognise zstd archives (it copies pkg.tar.zst as a
    // file); current BuildKit unpacks them, as strata and buildah do.
    let l = match tool {
        Some(("zstd", _)) => oracle_with(&env, &p, &p.ctx, &[base_arg(&env)], Some(&[]), Some(&["opt/pkg", "opt/pkg.tar.zst"])),
        _ => oracle(&env, &p, &p.ctx, &[base_arg(&env)]),
    };
    assert_eq!(kind_mode_owner(&l, "opt/pkg/bin/tool"), "file\t751\t0:0");
    assert_eq!(kind_mode_owner(&l, "opt/pkg/private/key"), "file\t600\t7:8", "ADD keeps the archive's owners");
    assert!(line(&l, "opt/pkg/toollink").contains("\tsymlink\t"));
}

#[test]
fn add_tar_plain() {
    add_tar_case("add_tar_plain", None);
}

#[test]
fn add_tar_gzip() {
    add_tar_case("add_tar_gzip", Some(("gzip", "gz")));
}

#[test]
fn add_tar_bzip2() {
    add_tar_case("add_tar_bzip2", Some(("bzip2", "bz2")));
}

#[test]
fn add_tar_xz() {
    add_tar_case("add_tar_xz", Some(("xz", "xz")));
}

#[test]
fn add_tar_zstd() {
    add_tar_case("add_tar_zstd", Some(("zstd", "zst")));
}

#[test]
fn add_not_archive() {
    let Some(env) = test_env("add_not_archive") else { return };
    let p = prepare("add_not_archive");
    std::fs::copy(p.ctx.join("plain.txt"), p.ctx.join("notatar")).expect("copy");
    compress(&p.ctx.join("notatar"), "gzip", "gz");
    std::fs::remove_file(p.ctx.join("notatar")).expect("rm");
    let l = oracle(&env, &p, &p.ctx, &[base_arg(&env)]);
    assert!(line(&l, "files/notatar.gz").contains("\tfile\t"), "a gzip that holds no tar is copied as it is");
}

/// Files the URL cases serve.
fn serve_dir(root: &Path) -> PathBuf {
    let dir = root.join("served");
    write(&dir.join("file.txt"), "downloaded\n", 0o644);
    write(&dir.join("sub/data.bin"), "\x01\x02binary\n", 0o644);
    let tar = make_tar(&dir);
    compress(&tar, "gzip", "gz");
    dir
}

#[test]
fn add_url() {
    let Some(env) = test_env("add_url") else { return };
    let p = prepare("add_url");
    let served = serve_dir(p.work.parent().expect("tmp"));
    let server = HttpServer::start(&served);
    let l = oracle(&env, &p, &p.ctx, &[base_arg(&env), format!("PORT={}", server.port)]);
    // BuildKit: downloaded files are 0600, owned by root or --chown; archives are not unpacked.
    assert_eq!(kind_mode_owner(&l, "dl/file.txt"), "file\t600\t0:0");
    assert_eq!(kind_mode_owner(&l, "dl/renamed.txt"), "file\t600\t0:0");
    assert_eq!(kind_mode_owner(&l, "dl2/data.bin"), "file\t600\t1:2");
    assert!(line(&l, "dl3/pkg.tar.gz").contains("\tfile\t"));
}

#[test]
fn add_url_keeps_last_modified() {
    let Some(env) = test_env("add_url_keeps_last_modified") else { return };
    let p = prepare("add_url");
    let served = serve_dir(p.work.parent().expect("tmp"));
    // 2001-09-09T01:46:40Z
    must(Command::new("touch").args(["-d", "@1000000000"]).arg(served.join("file.txt")));
    let server = HttpServer::start(&served);
    let ours = strata_build(&env, &p, &p.ctx, &[base_arg(&env), format!("PORT={}", server.port)]);
    let meta = std::fs::metadata(ours.rootfs.join("dl/file.txt")).expect("downloaded file");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.mtime(), 1_000_000_000, "the mtime comes from Last-Modified");
}

/// BuildKit verifies `ADD --checksum` and honours `--unpack=true` for URLs; buildah 1.28 has
/// neither, so strata alone is checked.
#[test]
fn add_checksum() {
    let Some(env) = test_env("add_checksum") else { return };
    let p = prepare("add_checksum");
    let served = serve_dir(p.work.parent().expect("tmp"));
    let server = HttpServer::start(&served);
    let sum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(std::fs::read(served.join("file.txt")).expect("read")))
    };
    let ours = strata_build(&env, &p, &p.ctx, &[base_arg(&env), format!("PORT={}", server.port), format!("SUM={sum}")]);
    assert_eq!(std::fs::read_to_string(ours.rootfs.join("sum/file.txt")).expect("file"), "downloaded\n");
    // `ADD --unpack=true` (Dockerfile 1.17) extracts a remote archive.
    assert!(ours.rootfs.join("unpacked/pkg/bin/tool").is_file(), "--unpack=true extracts the downloaded tar.gz");
    // A wrong checksum fails the build and names the line and both digests.
    let df = p.ctx.join("Dockerfile");
    let wrong = "0".repeat(64);
    let run = strata(
        &[
            "build",
            "--context",
            p.ctx.to_str().expect("utf8"),
            "--dockerfile",
            df.to_str().expect("utf8"),
            "--no-push",
            "--destination",
            "127.0.0.1:5000/e2e-copy/bad:sum",
            "--work-dir",
            p.work.join("bad").to_str().expect("utf8"),
            "--insecure-registry",
            &env.registry_http,
            "--build-arg",
            &base_arg(&env),
            "--build-arg",
            &format!("PORT={}", server.port),
            "--build-arg",
            &format!("SUM={wrong}"),
        ],
        &[],
    );
    assert!(!run.ok, "a wrong checksum must fail the build");
    assert!(run.stderr.contains("Dockerfile:5") && run.stderr.contains("checksum mismatch") && run.stderr.contains(&sum), "{}", run.stderr);
}

/// COPY heredocs (BuildKit: a 0644 root-owned file per heredoc, named after its delimiter
/// when the destination is a directory; `$VAR` expanded unless the delimiter is quoted).
/// buildah 1.28 cannot parse them, so strata alone is checked.
#[test]
fn heredoc_copy() {
    let Some(env) = test_env("heredoc_copy") else { return };
    let p = prepare("heredoc_copy");
    let ours = strata_build(&env, &p, &p.ctx, &[base_arg(&env)]);
    let l = listing(&ours.rootfs);
    let read = |p: &str| std::fs::read_to_string(ours.rootfs.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read("h/hello.txt"), "hello world\n");
    assert_eq!(read("h/raw.txt"), "hello ${NAME}\n");
    assert_eq!(read("h/dir/one.txt"), "first\n");
    assert_eq!(read("h/dir/two.txt"), "second\n");
    assert_eq!(kind_mode_owner(&l, "h/hello.txt"), "file\t644\t0:0");
    assert_eq!(kind_mode_owner(&l, "h/run.sh"), "file\t755\t0:0");
}

/// `--exclude`, `--parents`, `--link` and symbolic `--chmod` (BuildKit's Dockerfile 1.7 syntax; buildah 1.28 rejects
/// them, so strata alone is checked against BuildKit's documented results).
#[test]
fn exclude_parents_link() {
    let Some(env) = test_env("exclude_parents_link") else { return };
    let p = prepare("exclude_parents_link");
    let ours = strata_build(&env, &p, &p.ctx, &[base_arg(&env)]);
    let l = listing(&ours.rootfs);
    assert!(line(&l, "ex/a.txt").contains("\tfile\t"));
    assert!(absent(&l, "ex/b.md") && absent(&l, "ex/sub/skip") && line(&l, "ex/sub/keep/f.txt").contains("\tfile\t"));
    assert!(line(&l, "par/src/sub/keep/f.txt").contains("\tfile\t") && line(&l, "par/src/a.txt").contains("\tfile\t"));
    assert!(line(&l, "pivot/sub/keep/f.txt").contains("\tfile\t") && absent(&l, "pivot/src"));
    assert_eq!(kind_mode_owner(&l, "linked.txt"), "file\t644\t0:0");
    // Symbolic --chmod (Dockerfile 1.14) applies chmod(1) clauses to the source mode.
    assert_eq!(kind_mode_owner(&l, "sym.txt"), "file\t755\t0:0");
    assert_eq!(kind_mode_owner(&l, "private.md"), "file\t600\t0:0");
}

/// A tar.gz context (strata) gives the same image as the directory it was packed from (buildah).
#[test]
fn tar_context() {
    let Some(env) = test_env("tar_context") else { return };
    let p = prepare("tar_context");
    let tarball = p.work.parent().expect("tmp").join("ctx.tar.gz");
    must(Command::new("tar").arg("-C").arg(&p.ctx).arg("-czf").arg(&tarball).arg("."));
    let l = oracle(&env, &p, &tarball, &[base_arg(&env)]);
    assert!(absent(&l, "ctx/ignored.txt") && line(&l, "ctx/dir/b.txt").contains("\tfile\t"));
}

/// Runs `strata build` with an optional `--dockerfile`; the result unpacked only by callers.
fn strata_raw(env: &TestEnv, p: &Prepared, context: &Path, dockerfile: Option<&Path>, build_args: &[String]) -> (Run, PathBuf) {
    let layout = p.work.join(format!("layout-{}", build_args.len() + dockerfile.map_or(0, |d| d.as_os_str().len())));
    let mut args: Vec<String> = vec!["build".into(), "--context".into(), context.display().to_string()];
    if let Some(df) = dockerfile {
        args.push("--dockerfile".into());
        args.push(df.display().to_string());
    }
    for a in [
        "--destination",
        &format!("{}/e2e-copy/raw:oracle", env.registry_http),
        "--no-push",
        "--oci-layout-path",
        &layout.display().to_string(),
        "--insecure-registry",
        &env.registry_http,
        "--work-dir",
        &p.work.join("strata").display().to_string(),
    ] {
        args.push(a.to_string());
    }
    for a in build_args {
        args.push("--build-arg".into());
        args.push(a.clone());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    (strata(&argv, &[]), layout)
}

/// `<Dockerfile>.dockerignore` next to the Dockerfile replaces `.dockerignore` (BuildKit's rule
/// since Dockerfile 1.4; checked against that, not buildah).
#[test]
fn specific_ignore() {
    let Some(env) = test_env("specific_ignore") else { return };
    let p = prepare("specific_ignore");
    let (run, layout) = strata_raw(&env, &p, &p.ctx, Some(&p.ctx.join("Other.Dockerfile")), &[base_arg(&env)]);
    assert!(run.ok, "strata failed:\n{}", run.stderr);
    let l = listing(&unpack_layout(&layout, "oracle").rootfs);
    assert!(line(&l, "ctx/general.txt").contains("\tfile\t"), ".dockerignore is not read when Other.Dockerfile.dockerignore exists");
    assert!(absent(&l, "ctx/specific.txt") && absent(&l, "ctx/Other.Dockerfile") && absent(&l, "ctx/Other.Dockerfile.dockerignore"));
    assert!(line(&l, "ctx/.dockerignore").contains("\tfile\t"));
    let (run, layout) = strata_raw(&env, &p, &p.ctx, Some(&p.ctx.join("Dockerfile")), &[base_arg(&env)]);
    assert!(run.ok, "strata failed:\n{}", run.stderr);
    let l = listing(&unpack_layout(&layout, "oracle").rootfs);
    assert!(absent(&l, "ctx/general.txt") && line(&l, "ctx/specific.txt").contains("\tfile\t"));
}

/// A tarball context that carries its own Dockerfile (`docker build - < ctx.tar`): no
/// `--dockerfile` needed, and the image equals buildah's build of the unpacked directory.
#[test]
fn tar_context_with_dockerfile_inside() {
    let Some(env) = test_env("tar_context_with_dockerfile_inside") else { return };
    let p = prepare("tar_context");
    let tarball = p.work.parent().expect("tmp").join("ctx.tar.xz");
    let plain = p.work.parent().expect("tmp").join("ctx.tar");
    must(Command::new("tar").arg("-C").arg(&p.ctx).arg("-cf").arg(&plain).arg("."));
    std::fs::rename(compress(&plain, "xz", "xz"), &tarball).expect("rename");
    let (run, layout) = strata_raw(&env, &p, &PathBuf::from(format!("tar://{}", tarball.display())), None, &[base_arg(&env)]);
    assert!(run.ok, "strata failed:\n{}", run.stderr);
    let ours = listing(&unpack_layout(&layout, "oracle").rootfs);
    let theirs = buildah_build(&p.ctx.join("Dockerfile"), &p.ctx, &[&base_arg(&env)]);
    assert_eq!(ours, without_stubs(listing(&theirs.rootfs), &ours));
}

/// Errors name the Dockerfile line and what to do.
#[test]
fn errors_name_the_line() {
    let Some(env) = test_env("errors_name_the_line") else { return };
    let p = prepare("errors");
    for (file, needles) in [
        ("Dockerfile", &["Dockerfile:5", "COPY", "absent.txt", "not found"][..]),
        ("Git.Dockerfile", &["Git.Dockerfile:3", "ADD", "git", "not supported yet"][..]),
        ("Chown.Dockerfile", &["Chown.Dockerfile:3", "--chown=nosuchuser", "/etc/passwd"][..]),
    ] {
        let (run, _) = strata_raw(&env, &p, &p.ctx, Some(&p.ctx.join(file)), &[base_arg(&env)]);
        assert!(!run.ok, "{file} must fail");
        for n in needles {
            assert!(run.stderr.contains(n), "{file}: {n:?} missing from:\n{}", run.stderr);
        }
    }
}

/// ADD of an archive with `--chown`: every extracted entry gets the owner (BuildKit passes it as
/// Untar's ChownOpts); `--chmod` leaves extracted modes alone.
#[test]
fn add_tar_chown() {
    let Some(env) = test_env("add_tar_chown") else { return };
    let p = prepare("add_tar_chown");
    let tar = make_tar(&p.ctx);
    compress(&tar, "gzip", "gz");
    std::fs::remove_file(&tar).expect("rm tar");
    // buildah 1.28 and dockerd 20.10's BuildKit keep the archive's owners despite --chown;
    // current BuildKit's applyRootArchive gives every entry the --chown owner ("explicit
    // --chown values override the header"), and strata follows it.
    let l = oracle_with(&env, &p, &p.ctx, &[base_arg(&env)], Some(&["opt/pkg"]), Some(&["opt/pkg"]));
    for path in ["opt/pkg", "opt/pkg/bin/tool", "opt/pkg/private", "opt/pkg/private/key", "opt/pkg/toollink", "opt/pkg/etc/conf.hard"] {
        assert!(line(&l, path).contains("\t1000:1000\t"), "{}", line(&l, path));
    }
    assert_eq!(kind_mode_owner(&l, "opt/pkg/private/key"), "file\t600\t1000:1000");
    assert_eq!(kind_mode_owner(&l, "opt2/pkg/bin/tool"), "file\t751\t0:0");
}

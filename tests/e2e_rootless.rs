//! End to end, rootless: a non-root user created by the test (with /etc/subuid and
//! /etc/subgid ranges, as `useradd` on Debian gives) builds with strata, which re-executes
//! itself in a user namespace mapped by newuidmap/newgidmap. The image pushed to the plain
//! registry (docker-registry) must list exactly the same files, modes and owners as the root
//! build's (skopeo pulls, umoci unpacks as root so owners are real).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use strata_tests::*;

const USER: &str = "strata-e2e-rootless";

/// Creates the test user with subordinate ID ranges if missing; returns its home.
fn ensure_user() -> PathBuf {
    // The tests of this file run in parallel; useradd must run once.
    static ONCE: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut done = ONCE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(home) = done.as_ref() {
        return home.clone();
    }
    let home = create_user();
    *done = Some(home.clone());
    home
}

fn create_user() -> PathBuf {
    let exists = Command::new("id").arg(USER).output().is_ok_and(|o| o.status.success());
    if !exists {
        must(Command::new("useradd").args(["-m", "-s", "/bin/sh", USER]));
    }
    for (file, flag, range) in [("/etc/subuid", "--add-subuids", "400000-465535"), ("/etc/subgid", "--add-subgids", "400000-465535")] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if !text.lines().any(|l| l.starts_with(&format!("{USER}:"))) {
            must(Command::new("usermod").args([flag, range, USER]));
        }
    }
    assert!(
        Command::new("sh").args(["-c", "command -v newuidmap && command -v newgidmap"]).output().is_ok_and(|o| o.status.success()),
        "newuidmap/newgidmap are missing: install the uidmap package (scripts/test.sh does)"
    );
    let home = must(Command::new("sh").arg("-c").arg(format!("getent passwd {USER} | cut -d: -f6")));
    let home = PathBuf::from(home.trim());
    // A home left by an earlier user of the same name may carry a stale owner.
    must(Command::new("mkdir").arg("-p").arg(&home));
    must(Command::new("chown").arg(format!("{USER}:")).arg(&home));
    home
}

/// A directory the test user can use: binary, context and work dir, owned by them.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new(context: &Path) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        must(Command::new("cp").arg(strata_bin()).arg(dir.path().join("strata")));
        must(Command::new("cp").arg("-a").arg(context).arg(dir.path().join("ctx")));
        must(Command::new("chown").args(["-R", &format!("{USER}:")]).arg(dir.path()));
        Self { dir }
    }

    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }
}

/// `strata build` of the workspace's context: as root when `user` is None, else as the user.
fn build(ws: &Workspace, env: &TestEnv, base: &str, destination: &str, home: Option<&Path>) -> Run {
    build_with(ws, env, base, destination, home, &[])
}

/// [`build`] with `extra` flags.
fn build_with(ws: &Workspace, env: &TestEnv, base: &str, destination: &str, home: Option<&Path>, extra: &[&str]) -> Run {
    let base = format!("BASE={base}");
    let strata_args = [
        "build",
        "--context",
        &ws.path("ctx"),
        "--destination",
        destination,
        "--insecure-registry",
        &env.registry_http,
        "--work-dir",
        &ws.path(if home.is_some() { "work-user" } else { "work-root" }),
        "--build-arg",
        &base,
    ]
    .map(str::to_string);
    let mut cmd = match home {
        None => Command::new(ws.dir.path().join("strata")),
        Some(home) => {
            let mut c = Command::new("runuser");
            c.args(["-u", USER, "--", "env"]).arg(format!("HOME={}", home.display())).arg(ws.dir.path().join("strata"));
            c
        }
    };
    cmd.args(&strata_args).args(extra).current_dir(ws.dir.path());
    to_run(cmd.output().expect("run strata"))
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{tag}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// Builds `context` as root and as the test user; returns both images' listings and configs.
fn root_and_rootless(test: &str, env: &TestEnv, base: &str, context: &Path) -> [(Vec<String>, serde_json::Value); 2] {
    let home = ensure_user();
    let ws = Workspace::new(context);
    let tag = unique(test);
    let root_dest = format!("{}/e2e/rootless-root:{tag}", env.registry_http);
    let user_dest = format!("{}/e2e/rootless-user:{tag}", env.registry_http);
    let as_root = build(&ws, env, base, &root_dest, None);
    assert!(as_root.ok, "root build failed: {}", as_root.stderr);
    assert!(as_root.stderr.contains("isolation=chroot"), "root picks chroot: {}", as_root.stderr);
    let as_user = build(&ws, env, base, &user_dest, Some(&home));
    assert!(as_user.ok, "rootless build failed: {}", as_user.stderr);
    assert!(as_user.stderr.contains("isolation=rootless"), "a normal user gets rootless: {}", as_user.stderr);
    assert!(as_user.stderr.contains("running in a user namespace"), "{}", as_user.stderr);
    [root_dest, user_dest].map(|d| {
        let image = pull_and_unpack(&d, &["--src-tls-verify=false"]);
        (listing(&image.rootfs), image.config)
    })
}

fn assert_same(test: &str, root: &(Vec<String>, serde_json::Value), user: &(Vec<String>, serde_json::Value)) {
    let only_root: Vec<&String> = root.0.iter().filter(|l| !user.0.contains(l)).collect();
    let only_user: Vec<&String> = user.0.iter().filter(|l| !root.0.contains(l)).collect();
    assert!(only_root.is_empty() && only_user.is_empty(), "{test}: listings differ\nroot only: {only_root:#?}\nrootless only: {only_user:#?}");
    assert_eq!(root.1["config"], user.1["config"], "{test}: configs differ");
    let created_by =
        |c: &serde_json::Value| -> Vec<String> { c["history"].as_array().map(|h| h.iter().map(|e| e["created_by"].to_string()).collect()).unwrap_or_default() };
    assert_eq!(created_by(&root.1), created_by(&user.1), "{test}: history differs");
}

/// A context with f.txt and `dockerfile`.
fn owned_context(dockerfile: &str) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(ctx.path().join("f.txt"), "owned\n").expect("write");
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");
    ctx
}

fn skip_unless_root(test: &str) -> bool {
    if nix_is_root() {
        return false;
    }
    strata_test_support::skip(test, "creating the test user needs root (scripts/test.sh runs the tests as root)");
    true
}

fn nix_is_root() -> bool {
    must(Command::new("id").arg("-u")).trim() == "0"
}

#[test]
fn rootless_hello_equals_root_build() {
    let test = "rootless_hello_equals_root_build";
    let Some(env) = test_env(test) else { return };
    if skip_unless_root(test) {
        return;
    }
    let [root, user] = root_and_rootless(test, &env, &env.base_busybox, &repo_root().join("examples/hello"));
    assert_same(test, &root, &user);
    let greeting = root.0.iter().find(|l| l.starts_with("app/greeting\t")).expect("app/greeting");
    assert!(greeting.contains("\t640\t1000:1000\t"), "{greeting}");
}

#[test]
fn rootless_keeps_in_image_owners() {
    let test = "rootless_keeps_in_image_owners";
    let Some(env) = test_env(test) else { return };
    if skip_unless_root(test) {
        return;
    }
    let ctx = owned_context(
        "ARG BASE\nFROM ${BASE}\n\
         COPY --chown=1234:2345 f.txt /data/f.txt\n\
         RUN mkdir -p /srv/app && touch /srv/app/a && chown -R 1000:1000 /srv/app && chown 65534:65534 /srv/app/a \
          && ln -s a /srv/app/link && mkdir /srv/own && chown 5:7 /srv/own && chmod 2750 /srv/own && rm /etc/motd\n\
         RUN --mount=type=cache,target=/cache,uid=1000 sh -c 'echo x > /cache/y; id -u > /srv/who'\n\
         USER 1000:1000\n\
         RUN id -u > /tmp/whoami && id -g >> /tmp/whoami\n",
    );
    let [root, user] = root_and_rootless(test, &env, &env.base_busybox, ctx.path());
    assert_same(test, &root, &user);
    let line = |p: &str| user.0.iter().find(|l| l.starts_with(&format!("{p}\t"))).cloned().unwrap_or_else(|| panic!("{p} missing"));
    assert!(line("data/f.txt").contains("\t1234:2345\t"), "{}", line("data/f.txt"));
    assert!(line("srv/app/a").contains("\t65534:65534\t"), "{}", line("srv/app/a"));
    assert!(line("srv/own").contains("\tdir\t2750\t5:7\t"), "{}", line("srv/own"));
    assert!(line("tmp/whoami").contains("\t1000:1000\t"), "{}", line("tmp/whoami"));
    assert!(!user.0.iter().any(|l| l.starts_with("etc/motd\t")));
    assert!(!user.0.iter().any(|l| l.starts_with("cache")), "the cache mount stays out of the image");
}

#[test]
fn rootless_debian_equals_root_build() {
    let test = "rootless_debian_equals_root_build";
    let Some(env) = test_env(test) else { return };
    if skip_unless_root(test) {
        return;
    }
    // The Debian base is made by scripts/bench-build.sh (debootstrap, then pushed by strata).
    let base = std::env::var("STRATA_TEST_BASE_DEBIAN").unwrap_or_else(|_| format!("{}/library/debian:bookworm", env.registry_http));
    let present =
        Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{base}")).output().is_ok_and(|o| o.status.success());
    if !present {
        strata_test_support::skip(test, &format!("no Debian base at {base} (run scripts/base-debian.sh once, or set STRATA_TEST_BASE_DEBIAN)"));
        return;
    }
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "ARG BASE\nFROM ${BASE}\n\
         RUN useradd -m -u 1500 app && mkdir -p /srv/data && chown app:app /srv/data && chmod 2770 /srv/data \\\n\
          && ln -sf /usr/share/zoneinfo/UTC /etc/localtime && dpkg-query -W -f='${Package}\\n' > /srv/packages\n\
         USER app\n\
         RUN touch /srv/data/x && id > /srv/data/id\n",
    )
    .expect("write Dockerfile");
    let [root, user] = root_and_rootless(test, &env, &base, ctx.path());
    // Device nodes are skipped when unpacking rootless (mknod needs real root): not compared.
    let no_devices = |l: &(Vec<String>, serde_json::Value)| {
        (l.0.iter().filter(|e| !(e.starts_with("dev/") && e.contains("\tspecial\t"))).cloned().collect::<Vec<_>>(), l.1.clone())
    };
    assert_same(test, &no_devices(&root), &no_devices(&user));
    let line = |p: &str| user.0.iter().find(|l| l.starts_with(&format!("{p}\t"))).cloned().unwrap_or_else(|| panic!("{p} missing"));
    assert!(line("home/app").contains("\t1500:1500\t"), "{}", line("home/app"));
    assert!(line("srv/data").contains("\tdir\t2770\t1500:1500\t"), "{}", line("srv/data"));
    assert!(line("srv/data/x").contains("\t1500:1500\t"), "{}", line("srv/data/x"));
}

/// With `--cache`, a rootless build whose first steps hit unpacks their cached layers (owners
/// mapped through the user namespace) before the step that misses, and ends with the image a
/// root build without the cache makes.
#[test]
fn rootless_cache_hits_then_unpacks_like_the_root_build() {
    let test = "rootless_cache_hits_then_unpacks_like_the_root_build";
    let Some(env) = test_env(test) else { return };
    if skip_unless_root(test) {
        return;
    }
    let ctx = owned_context(
        "ARG BASE\nFROM ${BASE}\n\
         COPY --chown=1234:2345 f.txt /data/f.txt\n\
         RUN mkdir -p /srv && chown 5:7 /srv && echo one > /srv/v\n\
         ARG LATE=1\n\
         RUN cat /srv/v /data/f.txt > /srv/seen && ls -ln /data/f.txt /srv/v /srv/seen | sed 's/  */ /g' | cut -d' ' -f1-4 > /srv/owners && echo $LATE > /srv/late\n",
    );
    let home = ensure_user();
    let ws = Workspace::new(ctx.path());
    let tag = unique(test);
    let root_dest = format!("{}/e2e/rootless-cache-root:{tag}", env.registry_http);
    let user_dest = format!("{}/e2e/rootless-cache-user:{tag}", env.registry_http);
    let as_root = build_with(&ws, &env, &env.base_busybox, &root_dest, None, &["--build-arg", "LATE=2"]);
    assert!(as_root.ok, "root build failed: {}", as_root.stderr);
    let cold = build_with(
        &ws,
        &env,
        &env.base_busybox,
        &user_dest,
        Some(&home),
        &["--cache", "--cache-repo", &format!("{}/e2e/rootless-cache-{tag}", env.registry_http)],
    );
    assert!(cold.ok, "cold rootless build failed: {}", cold.stderr);
    let warm = build_with(
        &ws,
        &env,
        &env.base_busybox,
        &user_dest,
        Some(&home),
        &["--cache", "--cache-repo", &format!("{}/e2e/rootless-cache-{tag}", env.registry_http), "--build-arg", "LATE=2"],
    );
    assert!(warm.ok, "warm rootless build failed: {}", warm.stderr);
    assert_eq!(warm.stderr.matches("cache hit").count(), 2, "{}", warm.stderr);
    assert_eq!(warm.stderr.matches("a step needs the stage's files: unpacking").count(), 1, "{}", warm.stderr);
    let [root, user] = [root_dest, user_dest].map(|d| {
        let image = pull_and_unpack(&d, &["--src-tls-verify=false"]);
        (listing(&image.rootfs), image.config)
    });
    assert_same(test, &root, &user);
}

#[test]
fn rootless_sigterm_reaches_the_namespaced_build_and_cleans_up() {
    let test = "rootless_sigterm_reaches_the_namespaced_build_and_cleans_up";
    let Some(env) = test_env(test) else { return };
    if skip_unless_root(test) {
        return;
    }
    let home = ensure_user();
    let marker = format!("sleep {}", 700_000 + std::process::id() % 1000);
    let ctx = owned_context(&format!("ARG BASE\nFROM $BASE\nRUN ( {marker} & ) ; {marker}\n"));
    let ws = Workspace::new(ctx.path());
    let base = format!("BASE={}", env.base_busybox);
    // setpriv execs (no forking parent of its own), so the pid is strata's: the process
    // outside the user namespace, which must pass the signal on.
    let mut child = Command::new("setpriv")
        .args(["--reuid", USER, "--regid", USER, "--init-groups", "--", "env"])
        .arg(format!("HOME={}", home.display()))
        .arg(ws.dir.path().join("strata"))
        .args([
            "build",
            "--no-push",
            "--insecure-registry",
            &env.registry_http,
            "--build-arg",
            &base,
            "--context",
            &ws.path("ctx"),
            "--work-dir",
            &ws.path("work-user"),
        ])
        .current_dir(ws.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start strata");
    let started = std::time::Instant::now();
    while processes_with(&marker).len() < 2 {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the RUN never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().expect("wait");
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    assert_eq!(status.code(), Some(143), "{stderr}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(processes_with(&marker).is_empty(), "the RUN's processes are gone: {:?}", processes_with(&marker));
    let builds: Vec<_> = std::fs::read_dir(ws.dir.path().join("work-user/builds")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(builds.is_empty(), "the build's scratch directory is removed: {builds:?}");
}

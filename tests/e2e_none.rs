//! End to end, `--isolation none` (kaniko style): strata runs inside a throwaway container and
//! builds in its `/`. The container is made here the way a Kubernetes pod has it: a root
//! holding only strata (bind-mounted binary plus its shared libraries, as /kaniko does), a
//! `/.dockerenv` marker, the context at /workspace, /proc of its own PID namespace, the host's
//! /dev, bind-mounted /etc/hosts and /etc/resolv.conf and a tmpfs service-account secret under
//! /var/run/secrets. `unshare` gives it mount and PID namespaces, `chroot` its root.
//!
//! The image it pushes must list exactly the same files as the `chroot` build of the same
//! multi-stage Dockerfile, and nothing of the container may reach a layer or be lost.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use strata_tests::*;

const DOCKERFILE: &str = r#"ARG BASE
FROM ${BASE} AS build
RUN mkdir -p /out && echo built > /out/a && ln -s a /out/link && ln /out/a /out/hard && chmod 750 /out
RUN --mount=type=bind,source=ctx.txt,target=/mnt/ctx.txt cat /mnt/ctx.txt > /out/ctx

FROM build AS more
RUN echo more >> /out/a && rm /out/link && mkdir -p /var/lib/app && echo state > /var/lib/app/state

FROM ${BASE}
COPY --from=build /out /app
COPY --from=more /out/a /app/more
COPY --from=more /var/lib/app /var/lib/app
COPY --chown=1000:1000 ctx.txt /app/ctx2
RUN <<EOF
#!/bin/sh
echo "heredoc $0" > /app/heredoc
EOF
RUN rm /bin/vi && touch /tmp/t
USER 1000:1000
RUN id -u > /tmp/whoami
"#;

fn is_root() -> bool {
    must(Command::new("id").arg("-u")).trim() == "0"
}

fn have(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success())
}

/// The shared libraries `binary` loads (with the dynamic loader), as absolute paths.
fn shared_libraries(binary: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(binary).output().expect("ldd");
    String::from_utf8_lossy(&out.stdout).split_whitespace().filter(|w| w.starts_with('/')).map(PathBuf::from).collect()
}

/// A fresh container root (`dir/name`) with only what a kaniko-style image holds; returns its
/// path. A container is used for one build, as a pod is: its / holds the image afterwards.
fn container_root(dir: &Path, name: &str, context: &Path) -> PathBuf {
    let root = dir.join(name);
    for d in ["proc", "dev", "sys", "etc", "kaniko", "workspace", "tmp", "var/run/secrets/sa"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::write(root.join("kaniko/strata"), "").expect("mount target");
    std::fs::write(root.join(".dockerenv"), "").expect(".dockerenv");
    for f in ["etc/hosts", "etc/resolv.conf"] {
        std::fs::write(root.join(f), "").expect("mount target");
    }
    // Files of the container itself, which it must find again after the build.
    std::fs::write(root.join("etc/container-marker"), "mine\n").expect("marker");
    std::fs::create_dir_all(root.join("opt/tool")).expect("mkdir");
    std::fs::write(root.join("opt/tool/version"), "tool 1\n").expect("tool");
    std::fs::set_permissions(root.join("opt/tool"), std::os::unix::fs::PermissionsExt::from_mode(0o750)).expect("chmod");
    for lib in shared_libraries(&strata_bin()) {
        let to = root.join(lib.strip_prefix("/").expect("absolute"));
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&lib, &to).unwrap_or_else(|e| panic!("copy {}: {e}", lib.display()));
    }
    must(Command::new("cp").arg("-a").arg(format!("{}/.", context.display())).arg(root.join("workspace")));
    root
}

/// Runs strata in the container with `args`; the shell sets up the container's mounts first
/// (its root a mount point of its own, as every container runtime makes it).
fn run_in_container(root: &Path, args: &[String], drop_sys_admin: bool) -> Run {
    run_in_pod(root, "/kaniko/strata", args, drop_sys_admin, &[], true)
}

/// [`run_in_container`] of `program` with extra environment, and the binary bound in from this
/// build (`bind_binary`) or the one the image holds.
fn run_in_pod(root: &Path, program: &str, args: &[String], drop_sys_admin: bool, envs: &[(String, String)], bind_binary: bool) -> Run {
    let r = root.display();
    let setup = format!(
        "set -e; mount --bind {r} {r}; mount -t proc proc {r}/proc; mount --rbind /dev {r}/dev; mount --bind /etc/hosts {r}/etc/hosts; \
         mount --bind /etc/resolv.conf {r}/etc/resolv.conf; {bind} \
         mount -t tmpfs -o size=1m tmpfs {r}/var/run/secrets/sa; echo sa-token > {r}/var/run/secrets/sa/token; \
         exec {drop} {path} \"$(command -v chroot)\" {r} {program} \"$@\"",
        // The pod's PATH applies inside only: the set-up needs the host's.
        path = envs.iter().find(|(k, _)| k == "PATH").map_or(String::new(), |(_, v)| format!("env PATH={v}")),
        bind = if bind_binary { format!("mount --bind \"$STRATA\" {r}/kaniko/strata;") } else { String::new() },
        // As a Kubernetes pod without privileges: root, but no CAP_SYS_ADMIN.
        drop = if drop_sys_admin { "setpriv --bounding-set -sys_admin --inh-caps -sys_admin" } else { "" }
    );
    let out = Command::new("unshare")
        .args(["--mount", "--pid", "--fork"])
        .args(["sh", "-c", &setup, "sh"])
        .args(args)
        .env("STRATA", strata_bin())
        .env("HOME", "/root")
        .envs(envs.iter().filter(|(k, _)| k != "PATH").map(|(k, v)| (k, v)))
        .output()
        .expect("unshare");
    to_run(out)
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{tag}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// A build context with `dockerfile` and ctx.txt.
fn context(dir: &Path, dockerfile: &str) -> PathBuf {
    let context = dir.join("ctx");
    std::fs::create_dir_all(&context).expect("mkdir");
    std::fs::write(context.join("Dockerfile"), dockerfile).expect("Dockerfile");
    std::fs::write(context.join("ctx.txt"), "from the context\n").expect("ctx.txt");
    context
}

/// strata's arguments in the container, pushing to `dest`, plus `extra`.
fn container_args(env: &TestEnv, dest: &str, extra: &[&str]) -> Vec<String> {
    let base = format!("BASE={}", env.base_busybox);
    let mut args: Vec<String> =
        ["build", "--context", "/workspace", "--destination", dest, "--insecure-registry", &env.registry_http].map(str::to_string).to_vec();
    args.extend(["--work-dir", "/kaniko/work", "--digest-file", "/kaniko/digest", "--build-arg", &base].map(str::to_string));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// The chroot build of `context` on this machine, pushed to `dest`.
fn chroot_build(env: &TestEnv, context: &Path, work: &Path, dest: &str) {
    let base = format!("BASE={}", env.base_busybox);
    let (ctx, work) = (context.display().to_string(), work.display().to_string());
    let run = strata(
        &[
            "build",
            "--context",
            &ctx,
            "--destination",
            dest,
            "--insecure-registry",
            &env.registry_http,
            "--isolation",
            "chroot",
            "--work-dir",
            &work,
            "--build-arg",
            &base,
        ],
        &[],
    );
    assert!(run.ok, "chroot build failed: {}", run.stderr);
}

/// Pulls both images and asserts equal listings and configs; returns the first's listing and tree.
fn assert_same_image(ours: &str, theirs: &str) -> (Vec<String>, Unpacked) {
    let ours = pull_and_unpack(ours, &["--src-tls-verify=false"]);
    let theirs = pull_and_unpack(theirs, &["--src-tls-verify=false"]);
    let (a, b) = (listing(&ours.rootfs), listing(&theirs.rootfs));
    let only_none: Vec<&String> = a.iter().filter(|l| !b.contains(l)).collect();
    let only_chroot: Vec<&String> = b.iter().filter(|l| !a.contains(l)).collect();
    assert!(only_none.is_empty() && only_chroot.is_empty(), "listings differ\nnone only: {only_none:#?}\nchroot only: {only_chroot:#?}");
    assert_eq!(ours.config["config"], theirs.config["config"], "configs differ");
    (a, ours)
}

fn skip(test: &str) -> bool {
    if is_root() && have("unshare") && have("chroot") && have("setpriv") {
        return false;
    }
    strata_test_support::skip(test, "needs root, unshare, chroot and setpriv (scripts/test.sh runs the tests as root)");
    true
}

#[test]
fn none_in_a_container_equals_chroot_build() {
    let test = "none_in_a_container_equals_chroot_build";
    let Some(env) = test_env(test) else { return };
    if skip(test) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path(), DOCKERFILE);
    let tag = unique("none");
    let chroot_dest = format!("{}/e2e/none-chroot:{tag}", env.registry_http);
    let none_dest = format!("{}/e2e/none-none:{tag}", env.registry_http);
    chroot_build(&env, &context, &dir.path().join("work"), &chroot_dest);

    let root = container_root(dir.path(), "container", &context);
    let none = run_in_container(&root, &container_args(&env, &none_dest, &["--isolation", "none"]), false);
    assert!(none.ok, "none build in the container failed: {}", none.stderr);
    assert!(none.stderr.contains("isolation=none"), "{}", none.stderr);
    let (a, ours) = assert_same_image(&none_dest, &chroot_dest);

    let line = |p: &str| a.iter().find(|l| l.starts_with(&format!("{p}\t"))).cloned().unwrap_or_else(|| panic!("{p} missing: {a:#?}"));
    assert!(line("app/heredoc").contains("\tfile\t"), "{}", line("app/heredoc"));
    assert_eq!(std::fs::read_to_string(ours.rootfs.join("app/more")).expect("more"), "built\nmore\n");
    assert!(line("tmp/whoami").contains("\t1000:1000\t"), "{}", line("tmp/whoami"));
    for absent in ["kaniko", "workspace", ".dockerenv", "var/run/secrets", "proc/1", "bin/vi", "dev/pipes"] {
        assert!(!a.iter().any(|l| l.starts_with(absent)), "{absent} reached the image");
    }

    // The container is given back as it was: its own files are there again, the build's gone.
    let digest = std::fs::read_to_string(root.join("kaniko/digest")).expect("digest file");
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert!(root.join("kaniko/work/blobs").is_dir(), "the work dir survives");
    assert!(root.join("workspace/Dockerfile").is_file(), "the context survives");
    assert_eq!(std::fs::read_to_string(root.join("opt/tool/version")).expect("the container's own file"), "tool 1\n");
    assert_eq!(std::fs::metadata(root.join("opt/tool")).expect("dir").permissions().mode() & 0o7777, 0o750);
    assert!(root.join(".dockerenv").is_file() && root.join("etc/container-marker").is_file());
    for lib in shared_libraries(&strata_bin()) {
        assert!(root.join(lib.strip_prefix("/").expect("absolute")).is_file(), "{} is back", lib.display());
    }
    for gone in ["app", "out", "bin/busybox", "etc/passwd"] {
        assert!(std::fs::symlink_metadata(root.join(gone)).is_err(), "the build's /{gone} is left in the container");
    }
    let leftovers: Vec<_> =
        std::fs::read_dir(&root).expect("root").flatten().filter(|e| e.file_name().to_string_lossy().starts_with(".strata-container")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // With --cache in the same container (a pod with a cache volume): the second build hits
    // every step and unpacks nothing into /; a step added at the end misses and finds every
    // file of the cached steps in /.
    const UNPACKING: &str = "a step needs the stage's files: unpacking";
    let cached_dest = format!("{}/e2e/none-cached:{tag}", env.registry_http);
    let cache_repo = format!("{}/e2e/none-cache-{tag}", env.registry_http);
    let cached = ["--isolation", "none", "--cache", "--cache-repo", &cache_repo];
    let cold = run_in_container(&root, &container_args(&env, &cached_dest, &cached), false);
    assert!(cold.ok, "cold cached build failed: {}", cold.stderr);
    let warm = run_in_container(&root, &container_args(&env, &cached_dest, &cached), false);
    assert!(warm.ok, "warm cached build failed: {}", warm.stderr);
    assert!(!warm.stderr.contains(UNPACKING), "{}", warm.stderr);
    assert_same_image(&cached_dest, &chroot_dest);
    std::fs::write(root.join("workspace/Dockerfile"), format!("{DOCKERFILE}USER 0\nRUN cat /app/a /app/more /var/lib/app/state /tmp/whoami > /seen\n"))
        .expect("Dockerfile");
    let late_dest = format!("{}/e2e/none-late:{tag}", env.registry_http);
    let late = run_in_container(&root, &container_args(&env, &late_dest, &cached), false);
    assert!(late.ok, "build with a new last step failed: {}", late.stderr);
    assert_eq!(late.stderr.matches(UNPACKING).count(), 1, "{}", late.stderr);
    let late_image = pull_and_unpack(&late_dest, &["--src-tls-verify=false"]);
    assert_eq!(std::fs::read_to_string(late_image.rootfs.join("seen")).expect("seen"), "built\nbuilt\nmore\nstate\n1000\n");
    assert!(root.join("etc/container-marker").is_file() && std::fs::symlink_metadata(root.join("bin/busybox")).is_err(), "the container is given back");
}

/// Without CAP_SYS_ADMIN, as kaniko's users run it: strata picks `none` itself, heredoc
/// scripts still run, and what needs a namespace fails with a message that says so.
#[test]
fn a_container_without_cap_sys_admin_gets_none_isolation() {
    let test = "a_container_without_cap_sys_admin_gets_none_isolation";
    let Some(env) = test_env(test) else { return };
    if skip(test) {
        return;
    }
    let dockerfile = "ARG BASE\nFROM ${BASE} AS build\nRUN mkdir /out && echo built > /out/a\n\
        FROM ${BASE}\nCOPY --from=build /out /app\nRUN <<EOF\n#!/bin/sh\necho script > /app/script\nEOF\nRUN rm /bin/vi\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path(), dockerfile);
    let tag = unique("nocap");
    let chroot_dest = format!("{}/e2e/nocap-chroot:{tag}", env.registry_http);
    let none_dest = format!("{}/e2e/nocap-none:{tag}", env.registry_http);
    chroot_build(&env, &context, &dir.path().join("work"), &chroot_dest);

    let root = container_root(dir.path(), "auto", &context);
    let auto = run_in_container(&root, &container_args(&env, &none_dest, &[]), true);
    assert!(auto.ok, "auto isolation without CAP_SYS_ADMIN failed: {}", auto.stderr);
    assert!(auto.stderr.contains("may not create mount and PID namespaces") && auto.stderr.contains("isolation=none"), "{}", auto.stderr);
    let (a, _) = assert_same_image(&none_dest, &chroot_dest);
    assert!(a.iter().any(|l| l.starts_with("app/script\t")), "the heredoc script ran");

    // chroot asked for explicitly: refused before anything is pulled.
    let root = container_root(dir.path(), "chroot", &context);
    let chroot = run_in_container(&root, &container_args(&env, &none_dest, &["--isolation", "chroot"]), true);
    assert!(!chroot.ok && chroot.code == Some(1), "{}", chroot.stderr);
    assert!(chroot.stderr.contains("--isolation chroot: this process may not create mount and PID namespaces"), "{}", chroot.stderr);
    assert!(!chroot.stderr.contains(" INFO stage"), "nothing was built: {}", chroot.stderr);

    // --network=none needs a network namespace: the error names the line and the cause.
    let root = container_root(dir.path(), "network", &context);
    std::fs::write(root.join("workspace/Dockerfile"), "ARG BASE\nFROM ${BASE}\nRUN --network=none true\n").expect("Dockerfile");
    let net = run_in_container(&root, &container_args(&env, &none_dest, &[]), true);
    assert!(!net.ok && net.code == Some(1), "{}", net.stderr);
    assert!(net.stderr.contains("Dockerfile:3") && net.stderr.contains("needs a network namespace"), "{}", net.stderr);
    // A failed build gives the container back too.
    assert!(root.join("etc/container-marker").is_file() && root.join("opt/tool/version").is_file(), "the container's files are back");
    assert!(std::fs::symlink_metadata(root.join("bin/busybox")).is_err(), "the build's files are gone");
}

/// Without CAP_SYS_ADMIN no mount can be made, where kaniko offers no `RUN --mount` at all:
/// strata copies what each mount would show into place and takes it away again, so the image
/// equals the chroot build's, and a cache mount keeps what the RUN added.
#[test]
fn mounts_are_emulated_without_cap_sys_admin() {
    let test = "mounts_are_emulated_without_cap_sys_admin";
    let Some(env) = test_env(test) else { return };
    if skip(test) {
        return;
    }
    let dockerfile = "ARG BASE\nFROM ${BASE}\n\
        RUN --mount=type=bind,source=ctx.txt,target=/mnt/ctx.txt cat /mnt/ctx.txt > /from-bind\n\
        RUN --mount=type=bind,target=/src ls /src > /bind-dir\n\
        RUN --mount=type=cache,target=/var/cache/app sh -c 'echo run >> /var/cache/app/log; wc -l < /var/cache/app/log > /cache-lines'\n\
        RUN --mount=type=tmpfs,target=/scratch sh -c 'echo t > /scratch/t && ls /scratch > /tmpfs-seen'\n\
        RUN --mount=type=secret,id=token sh -c 'wc -c < /run/secrets/token > /secret-len'\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path(), dockerfile);
    let tag = unique("emulated");
    let chroot_dest = format!("{}/e2e/emulated-chroot:{tag}", env.registry_http);
    let none_dest = format!("{}/e2e/emulated-none:{tag}", env.registry_http);
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cr3t-t0ken").expect("token");
    let base = format!("BASE={}", env.base_busybox);
    let (ctx, work) = (context.display().to_string(), dir.path().join("work").display().to_string());
    let secret = format!("id=token,src={}", token.display());
    let run = strata(
        &[
            "build",
            "--context",
            &ctx,
            "--destination",
            &chroot_dest,
            "--insecure-registry",
            &env.registry_http,
            "--isolation",
            "chroot",
            "--work-dir",
            &work,
            "--build-arg",
            &base,
            "--secret",
            &secret,
        ],
        &[],
    );
    assert!(run.ok, "chroot build failed: {}", run.stderr);

    let root = container_root(dir.path(), "container", &context);
    std::fs::write(root.join("kaniko/token"), "s3cr3t-t0ken").expect("token");
    let none = run_in_container(&root, &container_args(&env, &none_dest, &["--secret", "id=token,src=/kaniko/token"]), true);
    assert!(none.ok, "emulated mounts failed: {}", none.stderr);
    let (a, ours) = assert_same_image(&none_dest, &chroot_dest);
    let read = |p: &str| std::fs::read_to_string(ours.rootfs.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read("from-bind"), "from the context\n");
    assert!(read("bind-dir").contains("Dockerfile") && read("bind-dir").contains("ctx.txt"), "{}", read("bind-dir"));
    assert_eq!(read("cache-lines").trim(), "1");
    assert_eq!(read("tmpfs-seen"), "t\n");
    assert_eq!(read("secret-len").trim(), "12");
    for absent in ["mnt/ctx.txt", "src", "var/cache/app", "scratch", "run/secrets"] {
        assert!(!a.iter().any(|l| l.starts_with(&format!("{absent}\t"))), "{absent} reached the image");
    }
    // The cache mount's content went back to the cache directory.
    let cache_root = root.join("kaniko/work/run-cache");
    let logs: Vec<String> = walk(&cache_root).into_iter().filter(|p| p.ends_with("/log")).collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(std::fs::read_to_string(&logs[0]).expect("log"), "run\n");
    assert!(!none.stderr.contains("s3cr3t-t0ken"));
}

/// Every path below `dir`.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        out.push(p.display().to_string());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&p));
        }
    }
    out
}

/// scripts/image.sh packages strata as the kaniko-ecr drop-in image (built by strata, FROM
/// scratch). Run as a Kubernetes pod runs it, unprivileged, with the image's environment and
/// only `PLUGIN_*` settings, it builds and pushes examples/hello, and gives the pod back.
#[test]
fn the_strata_image_runs_the_plugin_in_an_unprivileged_pod() {
    let test = "the_strata_image_runs_the_plugin_in_an_unprivileged_pod";
    let Some(env) = test_env(test) else { return };
    if skip(test) {
        return;
    }
    let tag = unique("image");
    let image = format!("{}/e2e/strata-image:{tag}", env.registry_http);
    must(
        Command::new("bash")
            .arg(repo_root().join("scripts/image.sh"))
            .env("STRATA", strata_bin())
            .env("IMAGE", &image)
            .env("STRATA_STATE", &env.state)
            .env("REG_HTTP_ADDR", &env.registry_http),
    );
    let pod = pull_and_unpack(&image, &["--src-tls-verify=false"]);
    let root = pod.rootfs.clone();
    assert_eq!(pod.config["config"]["Entrypoint"], serde_json::json!(["/kaniko/strata"]));
    // What a container runtime adds: mount points for /proc, /dev, /sys and the bound files.
    for d in ["proc", "dev", "sys", "var/run/secrets/sa"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    for f in ["etc/hosts", "etc/resolv.conf"] {
        if !root.join(f).exists() {
            std::fs::write(root.join(f), "").expect("mount target");
        }
    }
    must(Command::new("cp").arg("-a").arg(format!("{}/.", repo_root().join("examples/hello").display())).arg(root.join("workspace")));

    // The pod's environment: the image's, plus what Kubernetes and the step set.
    let mut envs: Vec<(String, String)> = pod.config["config"]["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(|e| e.as_str()?.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    envs.push(("KUBERNETES_SERVICE_HOST".into(), "10.96.0.1".into()));
    let pod_envs = envs.clone();
    let repo = format!("e2e/from-strata-image-{tag}");
    for (k, v) in [
        ("PLUGIN_REGISTRY", env.registry_http.clone()),
        ("PLUGIN_REPO", repo.clone()),
        ("PLUGIN_TAGS", "v1".to_string()),
        ("PLUGIN_INSECURE_REGISTRY", env.registry_http.clone()),
        ("PLUGIN_CONTEXT", "/workspace".to_string()),
        ("PLUGIN_BUILD_ARGS", format!("BASE={}", env.base_busybox)),
    ] {
        envs.push((k.to_string(), v));
    }
    let run = run_in_pod(&root, "/kaniko/strata", &[], true, &envs, false);
    assert!(run.ok, "the plugin in the strata image failed: {}", run.stderr);
    assert!(run.stdout.trim().starts_with("sha256:"), "{}", run.stdout);
    assert!(run.stderr.contains("isolation=none"), "{}", run.stderr);

    let built = pull_and_unpack(&format!("{}/{repo}:v1", env.registry_http), &["--src-tls-verify=false"]);
    assert!(built.rootfs.join("app/greeting").is_file(), "examples/hello was built");
    assert!(!listing(&built.rootfs).iter().any(|l| l.starts_with("kaniko") || l.starts_with("workspace")), "nothing of the pod in the image");
    assert!(root.join("kaniko/work/blobs").is_dir() && root.join("kaniko/ssl/certs/ca-certificates.crt").is_file());
    assert!(std::fs::symlink_metadata(root.join("app")).is_err(), "the pod is given back without the build's files");

    // A GitLab or Tekton job written for kaniko calls /kaniko/executor with kaniko's flags.
    let kaniko_dest = format!("{}/e2e/from-executor-{tag}:v1", env.registry_http);
    let base = format!("BASE={}", env.base_busybox);
    let args: Vec<String> = [
        "--context=dir:///workspace",
        "--dockerfile=/workspace/Dockerfile",
        "--destination",
        &kaniko_dest,
        "--insecure-registry",
        &env.registry_http,
        "--build-arg",
        &base,
        "--cache=true",
        "--cache-copy-layers=true",
        "--cleanup",
    ]
    .map(str::to_string)
    .to_vec();
    let executor = run_in_pod(&root, "/kaniko/executor", &args, true, &pod_envs, false);
    assert!(executor.ok, "/kaniko/executor in the strata image failed: {}", executor.stderr);
    assert!(executor.stderr.contains("isolation=none") && executor.stderr.contains("kaniko flag --cleanup is accepted and ignored"), "{}", executor.stderr);
    let from_executor = pull_and_unpack(&kaniko_dest, &["--src-tls-verify=false"]);
    assert_eq!(listing(&from_executor.rootfs), listing(&built.rootfs), "the same image as the plugin's");
}

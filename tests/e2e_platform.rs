//! End to end, `--custom-platform`: images for another architecture are built without
//! emulation as long as no RUN needs it. strata builds an arm64 and an amd64 image, buildah
//! joins them into an index in the real registry, and a build `FROM` that index picks the
//! variant of the asked platform. A single-platform base of the wrong architecture is refused,
//! and a RUN of a foreign binary fails with a hint about emulation.

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use strata_tests::*;

fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// `strata build` of `ctx` for `platform`, pushed to `dest`.
fn build(env: &TestEnv, ctx: &Path, platform: Option<&str>, dest: &str, work: &Path) -> Run {
    let mut args = vec![
        "build".to_string(),
        "--context".into(),
        ctx.display().to_string(),
        "--insecure-registry".into(),
        env.registry_http.clone(),
        "--destination".into(),
        dest.into(),
        "--work-dir".into(),
        work.display().to_string(),
    ];
    if let Some(p) = platform {
        args.extend(["--custom-platform".to_string(), p.to_string()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    strata(&refs, &[])
}

fn config_of(reference: &str) -> Value {
    let out = must(Command::new("skopeo").args(["inspect", "--tls-verify=false", "--config", "--raw"]).arg(format!("docker://{reference}")));
    serde_json::from_str(&out).expect("config json")
}

#[test]
fn custom_platform_builds_and_picks_index_variants() {
    let test = "custom_platform_builds_and_picks_index_variants";
    let Some(env) = test_env(test) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    let id = unique();
    let repo = format!("{}/e2e/platform-{id}", env.registry_http);

    // Two single-platform images from scratch, each carrying its architecture's name.
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::fs::write(ctx.join("amd64.txt"), "amd64\n").expect("write");
    std::fs::write(ctx.join("arm64.txt"), "arm64\n").expect("write");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nARG TARGETARCH\nARG TARGETPLATFORM\nCOPY ${TARGETARCH}.txt /arch.txt\nLABEL target=$TARGETPLATFORM\n",
    )
    .expect("write");
    for arch in ["arm64", "amd64"] {
        let run = build(&env, &ctx, Some(&format!("linux/{arch}")), &format!("{repo}:{arch}"), &work);
        assert!(run.ok, "{arch}: {}", run.stderr);
        let config = config_of(&format!("{repo}:{arch}"));
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["os"], "linux");
        assert_eq!(config["config"]["Labels"]["target"], format!("linux/{arch}"));
    }

    // buildah makes the index (the oracle's own manifest-list code, not ours).
    let store = dir.path().join("buildah");
    let buildah = |args: &[&str]| {
        must(Command::new("buildah").arg("--root").arg(store.join("root")).arg("--runroot").arg(store.join("run")).args(["--storage-driver", "vfs"]).args(args))
    };
    buildah(&["manifest", "create", "strata-platform-list"]);
    for arch in ["amd64", "arm64"] {
        buildah(&["manifest", "add", "--tls-verify=false", "strata-platform-list", &format!("docker://{repo}:{arch}")]);
    }
    buildah(&["manifest", "push", "--all", "--tls-verify=false", "strata-platform-list", &format!("docker://{repo}:multi")]);

    // FROM the index: each platform gets its own variant.
    let child = dir.path().join("child");
    std::fs::create_dir_all(&child).expect("mkdir");
    std::fs::write(child.join("extra.txt"), "extra\n").expect("write");
    std::fs::write(child.join("Dockerfile"), format!("FROM {repo}:multi\nCOPY extra.txt /extra.txt\n")).expect("write");
    for (platform, want) in [(Some("linux/arm64"), "arm64"), (None, "amd64")] {
        let dest = format!("{repo}:child-{want}");
        let run = build(&env, &child, platform, &dest, &work);
        assert!(run.ok, "{platform:?}: {}", run.stderr);
        let image = pull_and_unpack(&dest, &["--src-tls-verify=false", "--override-arch", want]);
        assert_eq!(std::fs::read_to_string(image.rootfs.join("arch.txt")).expect("arch.txt"), format!("{want}\n"));
        assert_eq!(image.config["architecture"], want);
    }

    // A single-platform image of another architecture is refused, naming both platforms.
    let wrong = dir.path().join("wrong");
    std::fs::create_dir_all(&wrong).expect("mkdir");
    std::fs::write(wrong.join("Dockerfile"), format!("FROM {repo}:amd64\nLABEL x=y\n")).expect("write");
    let run = build(&env, &wrong, Some("linux/arm64"), &format!("{repo}:wrong"), &work);
    assert!(!run.ok && run.code == Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("is a linux/amd64 image, but this stage is built for linux/arm64"), "{}", run.stderr);
}

#[test]
fn run_of_a_foreign_binary_names_emulation() {
    let test = "run_of_a_foreign_binary_names_emulation";
    let Some(env) = test_env(test) else { return };
    if must(Command::new("id").arg("-u")).trim() != "0" {
        strata_test_support::skip(test, "chroot isolation needs root");
        return;
    }
    // riscv64: scripts/install.sh registers emulation for arm64 and arm only.
    if Path::new("/proc/sys/fs/binfmt_misc/qemu-riscv64").exists() {
        eprintln!("SKIPPED {test}: this machine emulates riscv64, so the RUN would work");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    // busybox with its ELF machine field set to RISC-V: the kernel refuses it as riscv64 code.
    let mut elf = std::fs::read("/bin/busybox").expect("busybox-static");
    assert_eq!(&elf[..4], b"\x7fELF");
    elf[18] = 0xf3;
    elf[19] = 0;
    std::fs::write(ctx.join("sh"), &elf).expect("write");
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY --chmod=755 sh /bin/sh\nRUN echo hi\n").expect("write");
    let run = build(&env, &ctx, Some("linux/riscv64"), &format!("{}/e2e/platform-run:{}", env.registry_http, unique()), &dir.path().join("work"));
    assert!(!run.ok && run.code == Some(1), "{}", run.stderr);
    for part in ["Dockerfile:3", "Exec format error", "built for linux/riscv64", "binfmt_misc", "qemu-user-static"] {
        assert!(run.stderr.contains(part), "{part}: {}", run.stderr);
    }
}

/// RUN under emulation (qemu-user-static through binfmt_misc, registered by scripts/install.sh):
/// one build for linux/amd64 and linux/arm64 on the project's multi-platform busybox base runs
/// each RUN on its own architecture, and each image of the index holds what its RUN saw.
#[test]
fn run_under_emulation_for_each_platform() {
    let test = "run_under_emulation_for_each_platform";
    let Some(env) = test_env(test) else { return };
    let Some(base) = emulated_base(test) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {base}\nARG TARGETARCH\nRUN uname -m > /machine && echo \"$TARGETARCH\" > /targetarch\n"))
        .expect("write");
    let dest = format!("{}/e2e/platform-emulated:{}", env.registry_http, unique());
    let run = build(&env, &ctx, Some("linux/amd64,linux/arm64"), &dest, &dir.path().join("work"));
    assert!(run.ok, "emulated build failed: {}", run.stderr);
    for (arch, machine) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
        let pulled = pull_and_unpack(&dest, &["--src-tls-verify=false", "--override-arch", arch]);
        assert_eq!(std::fs::read_to_string(pulled.rootfs.join("machine")).expect("machine"), format!("{machine}\n"), "{arch}: the RUN ran as {machine}");
        assert_eq!(std::fs::read_to_string(pulled.rootfs.join("targetarch")).expect("targetarch"), format!("{arch}\n"));
        assert_eq!(pulled.config["architecture"], arch);
    }
}

/// Whether this machine can run the two-platform RUN tests (root, arm64 emulation, the
/// multi-platform base); the base reference when it can.
fn emulated_base(test: &str) -> Option<String> {
    if must(Command::new("id").arg("-u")).trim() != "0" {
        strata_test_support::skip(test, "chroot isolation needs root");
        return None;
    }
    if !Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists() {
        strata_test_support::skip(test, "no arm64 emulation registered (scripts/install.sh registers qemu-user-static where binfmt_misc can be mounted)");
        return None;
    }
    match std::env::var("STRATA_TEST_BASE_BUSYBOX_MULTI") {
        Ok(base) => Some(base),
        Err(_) => {
            strata_test_support::skip(test, "no multi-platform base (scripts/base-busybox.sh makes library/busybox-multi)");
            None
        }
    }
}

/// The `machine` file a platform's RUN wrote, from the OCI layout `layout` read by skopeo for
/// `arch` (`--override-arch`) into a layout of its own and unpacked by umoci.
fn machine_via_skopeo(source: &str, arch: &str) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    let copy = tmp.path().join("copy");
    must(Command::new("skopeo").args(["--override-arch", arch, "--override-os", "linux", "copy", "-q", source]).arg(format!("oci:{}:img", copy.display())));
    let image = unpack_layout(&copy, "img");
    assert_eq!(image.config["architecture"], arch, "{source}: skopeo picked the {arch} image");
    std::fs::read_to_string(image.rootfs.join("machine")).expect("machine")
}

/// A two-platform build with --no-push into an OCI layout and a tarball: the layout's
/// index.json names the index by the tag (skopeo reads each architecture from it, and from the
/// tarball as an oci-archive) and each platform's manifest by TAG-linux-ARCH (umoci unpacks
/// that); every output names the index digest; `strata push --source-tar` pushes the platforms
/// and then the index unchanged; a second build with --cache hits the RUN of both platforms.
#[test]
fn two_platforms_into_a_layout_and_a_tarball_then_push_only() {
    let test = "two_platforms_into_a_layout_and_a_tarball_then_push_only";
    let Some(env) = test_env(test) else { return };
    let Some(base) = emulated_base(test) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {base}\nARG TARGETARCH\nRUN uname -m > /machine && echo \"$TARGETARCH\" > /targetarch\n"))
        .expect("write");
    let id = unique();
    let dest = format!("{}/e2e/platform-tar-{id}:1.0", env.registry_http);
    let (layout, tar) = (dir.path().join("layout"), dir.path().join("image.tar"));
    let (digest_file, names, name_tags) = (dir.path().join("out/digest"), dir.path().join("out/names"), dir.path().join("out/name-tags"));
    let work = dir.path().join("work");
    let build = |extra: &[&str]| {
        let mut args = vec![
            "build",
            "--context",
            ctx.to_str().expect("utf8"),
            "--custom-platform",
            "linux/amd64,linux/arm64",
            "--destination",
            &dest,
            "--no-push",
            "--cache",
            "--insecure-registry",
            &env.registry_http,
            "--work-dir",
            work.to_str().expect("utf8"),
        ];
        args.extend_from_slice(extra);
        strata(&args, &[])
    };
    let run = build(&[
        "--tar-path",
        tar.to_str().expect("utf8"),
        "--oci-layout-path",
        layout.to_str().expect("utf8"),
        "--digest-file",
        digest_file.to_str().expect("utf8"),
        "--image-name-with-digest-file",
        names.to_str().expect("utf8"),
        "--image-name-tag-with-digest-file",
        name_tags.to_str().expect("utf8"),
    ]);
    assert!(run.ok, "two-platform build to a layout and a tarball failed: {}", run.stderr);
    let digest = run.stdout.trim().to_string();

    // index.json: the index under the tag, then each platform under TAG-linux-ARCH.
    let index = read_json(&layout.join("index.json"));
    let entries = index["manifests"].as_array().expect("manifests");
    assert_eq!(entries[0]["mediaType"], "application/vnd.oci.image.index.v1+json", "{index}");
    assert_eq!(entries[0]["digest"], digest.as_str(), "the printed digest is the index in the layout");
    assert_eq!(entries[0]["annotations"]["org.opencontainers.image.ref.name"], "1.0");
    let nested = std::fs::read(blob(&layout, &digest)).expect("index blob");
    assert_eq!(format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&nested))), digest, "the index blob hashes to its name");
    // Every output names the index.
    assert_eq!(std::fs::read_to_string(&digest_file).expect("digest file"), digest);
    let repo = dest.trim_end_matches(":1.0");
    assert_eq!(std::fs::read_to_string(&names).expect("names"), format!("{repo}@{digest}\n"));
    assert_eq!(std::fs::read_to_string(&name_tags).expect("name tags"), format!("{dest}@{digest}\n"));

    for (arch, machine) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
        let want = format!("{machine}\n");
        assert_eq!(machine_via_skopeo(&format!("oci:{}:1.0", layout.display()), arch), want, "layout, {arch}");
        assert_eq!(machine_via_skopeo(&format!("oci-archive:{}:1.0", tar.display()), arch), want, "tarball, {arch}");
        // umoci 0.4 refuses the index's tag as ambiguous; each platform has a name of its own.
        let unpacked = unpack_layout(&layout, &format!("1.0-linux-{arch}"));
        assert_eq!(std::fs::read_to_string(unpacked.rootfs.join("machine")).expect("machine"), want, "umoci, {arch}");
        assert_eq!(unpacked.config["architecture"], arch);
    }

    // `docker load` (dockerd 20.10) loads every platform's image from manifest.json and tags
    // the one this host runs.
    if let Some(host) = buildkit_host(test) {
        let docker = |args: &[&str]| must(Command::new(docker_bin()).args(["-H", &host]).args(args));
        let loaded = docker(&["load", "-i", tar.to_str().expect("utf8")]);
        assert!(loaded.contains(&format!("Loaded image: {dest}")), "{loaded}");
        assert_eq!(docker(&["run", "--rm", &dest, "cat", "/machine"]), must(Command::new("uname").arg("-m")), "docker load tags the host's image");
        docker(&["rmi", &dest]);
    }

    // Push-only: the platforms by digest, then the index under the tags, unchanged.
    let pushed_repo = format!("{}/e2e/platform-pushed-{id}", env.registry_http);
    let (tar_s, work2) = (tar.display().to_string(), dir.path().join("work-push").display().to_string());
    let (t1, t2) = (format!("{pushed_repo}:1.0"), format!("{pushed_repo}:latest"));
    let pushed = strata(
        &["push", "--source-tar", &tar_s, "--destination", &t1, "--destination", &t2, "--insecure-registry", &env.registry_http, "--work-dir", &work2],
        &[],
    );
    assert!(pushed.ok, "push of the two-platform tarball failed: {}", pushed.stderr);
    assert_eq!(pushed.stdout.trim(), digest, "push-only pushes the built index");
    for t in [&t1, &t2] {
        let raw = must_bytes(&format!("docker://{t}"));
        assert_eq!(raw, nested, "{t}: the index byte for byte");
    }
    for (arch, machine) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
        let pulled = pull_and_unpack(&t1, &["--src-tls-verify=false", "--override-arch", arch]);
        assert_eq!(std::fs::read_to_string(pulled.rootfs.join("machine")).expect("machine"), format!("{machine}\n"), "pushed, {arch}");
    }

    // Again with --cache: both platforms' RUN hit (keys per platform), one after another too.
    let again = build(&["--platform-jobs", "1"]);
    assert!(again.ok, "second build failed: {}", again.stderr);
    for p in ["linux/amd64", "linux/arm64"] {
        assert!(again.stderr.lines().any(|l| l.contains(p) && l.contains("line 3: cache hit")), "{p}: the RUN should hit the cache: {}", again.stderr);
    }
    assert!(again.stderr.contains("1 at a time"), "{}", again.stderr);
}

fn must_bytes(reference: &str) -> Vec<u8> {
    let out = Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(reference).output().expect("skopeo");
    assert!(out.status.success(), "{reference}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// scripts/image.sh with one binary per architecture (STRATA_AMD64, STRATA_ARM64) makes an
/// index of one strata image per architecture, each with its own binary at /kaniko/strata.
/// The arm64 binary here is a stand-in (Debian's static arm64 busybox, kept by
/// scripts/base-busybox.sh): the script's multi-architecture path is what is tested, not an
/// arm64 strata, which cannot be compiled on this machine.
#[test]
fn the_image_script_packages_one_binary_per_architecture() {
    let test = "the_image_script_packages_one_binary_per_architecture";
    let Some(env) = test_env(test) else { return };
    let stand_in = env.state.join("base-busybox-multi/rootfs-arm64/bin/busybox");
    if !stand_in.is_file() {
        strata_test_support::skip(test, "no arm64 stand-in binary (scripts/base-busybox.sh keeps Debian's busybox-static:arm64)");
        return;
    }
    let image = format!("{}/e2e/strata-image-multi-{}:1", env.registry_http, unique());
    must(
        Command::new("bash")
            .arg(repo_root().join("scripts/image.sh"))
            .env("STRATA", strata_bin())
            .env("STRATA_AMD64", strata_bin())
            .env("STRATA_ARM64", &stand_in)
            .env("IMAGE", &image)
            .env("STRATA_STATE", &env.state)
            .env("REG_HTTP_ADDR", &env.registry_http),
    );
    for (arch, binary) in [("amd64", strata_bin()), ("arm64", stand_in.clone())] {
        let pulled = pull_and_unpack(&image, &["--src-tls-verify=false", "--override-arch", arch]);
        assert_eq!(pulled.config["architecture"], arch);
        assert_eq!(pulled.config["config"]["Entrypoint"], serde_json::json!(["/kaniko/strata"]));
        let packaged = std::fs::read(pulled.rootfs.join("kaniko/strata")).expect("/kaniko/strata");
        assert!(packaged == std::fs::read(&binary).expect("binary"), "{arch}: /kaniko/strata is {}", binary.display());
        assert!(pulled.rootfs.join("kaniko/ssl/certs/ca-certificates.crt").is_file(), "{arch}: CA certificates");
    }
}

/// Platforms side by side: arm64's RUN fails at once while amd64's sleeps; the build fails
/// naming linux/arm64 long before amd64's sleep would end (its RUN is killed), and neither
/// a process nor a build directory is left behind.
#[test]
fn a_failing_platform_stops_the_one_beside_it() {
    let test = "a_failing_platform_stops_the_one_beside_it";
    let Some(env) = test_env(test) else { return };
    let Some(base) = emulated_base(test) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    let marker = format!("strata-sibling-{}", unique());
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nARG TARGETARCH\nRUN if [ \"$TARGETARCH\" = arm64 ]; then /bin/busybox sleep 2; exit 3; fi; /bin/busybox sleep 120 # {marker}\n"),
    )
    .expect("write");
    let work = dir.path().join("work");
    let started = std::time::Instant::now();
    let args = [
        "build",
        "--context",
        ctx.to_str().expect("utf8"),
        "--custom-platform",
        "linux/amd64,linux/arm64",
        "--platform-jobs",
        "2",
        "--destination",
        &format!("{}/e2e/platform-sibling:{}", env.registry_http, unique()),
        "--insecure-registry",
        &env.registry_http,
        "--work-dir",
        work.to_str().expect("utf8"),
    ];
    let run = strata(&args, &[]);
    let took = started.elapsed();
    assert!(!run.ok && run.code == Some(1), "{}", run.stderr);
    let error = run.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
    assert!(error.contains("building for linux/arm64") && error.contains("exit code 3"), "{}", run.stderr);
    assert!(took.as_secs() < 60, "amd64's RUN was not stopped: the build took {took:?}");
    assert!(processes_with(&marker).is_empty(), "a RUN outlived the build");
    let left: Vec<_> = std::fs::read_dir(work.join("builds"))
        .map(|r| r.flatten().map(|e| e.file_name()).filter(|n| !n.to_string_lossy().starts_with(".trash-")).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

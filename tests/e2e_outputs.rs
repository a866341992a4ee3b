//! Build outputs other than a push: `--tar-path` writes a `docker load` tarball (docker-archive).
//! Real components: the project's plain registry (scripts/registry-up.sh) for the pushed build
//! compared against, skopeo reading the tarball through its `docker-archive:` transport, umoci
//! unpacking what skopeo copied out of it.

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use strata_tests::*;

/// examples/hello with `--reproducible`, so two builds of it are identical.
fn build_reproducible(env: &TestEnv, work: &Path, destination: &str, extra: &[&str]) -> Run {
    let mut flags = vec!["--reproducible"];
    flags.extend_from_slice(extra);
    build_hello(env, work, destination, &flags, &[("SOURCE_DATE_EPOCH", "1700000000")])
}

/// The names in the tarball, in order (`tar -tf`).
fn tar_names(path: &Path) -> Vec<String> {
    must(Command::new("tar").arg("-tf").arg(path)).lines().map(str::to_string).collect()
}

/// One member of the tarball (`tar -xOf`).
fn tar_member(path: &Path, name: &str) -> Vec<u8> {
    let out = Command::new("tar").arg("-xOf").arg(path).arg(name).output().expect("run tar");
    assert!(out.status.success(), "tar -xOf {} {name}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn tar_path_is_a_docker_archive_equal_to_the_pushed_image() {
    let Some(env) = test_env("tar_path_is_a_docker_archive_equal_to_the_pushed_image") else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let tar = work.path().join("out/hello.tar");
    let tar_arg = tar.to_str().expect("utf8").to_string();
    let tagged = format!("{}/e2e/outputs:tar", env.registry_http);
    let run = build_reproducible(&env, work.path(), &tagged, &["--no-push", "--tar-path", &tar_arg]);
    assert!(run.ok, "strata failed: {}", run.stderr);
    let tar_digest = run.stdout.trim().to_string();
    assert!(tar.is_file(), "--tar-path wrote nothing at {}", tar.display());
    // --no-push: the registry has no such tag.
    let probe = Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{tagged}")).output().expect("run skopeo");
    assert!(!probe.status.success(), "--no-push must push nothing, yet {tagged} exists");
    // Nothing but the tarball in its directory: the temporary file was renamed, not copied.
    let left: Vec<String> =
        std::fs::read_dir(tar.parent().expect("dir")).expect("read dir").flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, ["hello.tar"]);

    // docker-archive's manifest.json, as `docker load` reads it.
    let names = tar_names(&tar);
    let manifest_json: Value = serde_json::from_slice(&tar_member(&tar, "manifest.json")).expect("manifest.json is JSON");
    let item = &manifest_json[0];
    assert_eq!(item["RepoTags"], serde_json::json!([tagged]), "RepoTags come from the destinations");
    let config_path = item["Config"].as_str().expect("Config").to_string();
    let layers: Vec<String> = item["Layers"].as_array().expect("Layers").iter().map(|l| l.as_str().expect("layer path").to_string()).collect();
    assert!(names.contains(&config_path), "{config_path} missing from {names:?}");
    for l in &layers {
        assert!(names.contains(l), "{l} missing from {names:?}");
    }
    // Each blob is stored under its own digest.
    for path in layers.iter().chain(std::iter::once(&config_path)) {
        let hex = path.rsplit('/').next().expect("name");
        assert_eq!(sha256_hex(&tar_member(&tar, path)), hex, "{path} does not match its digest");
    }

    // skopeo reads it through its docker-archive transport.
    let inspect: Value =
        serde_json::from_str(&must(Command::new("skopeo").arg("inspect").arg(format!("docker-archive:{}", tar.display())))).expect("skopeo inspect JSON");
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(layers.len()), "{inspect}");
    assert_eq!(inspect["Labels"]["org.opencontainers.image.title"], "hello", "{inspect}");

    // The same build, pushed: the same image (reproducible) and the same files.
    let pushed = format!("{}/e2e/outputs:pushed", env.registry_http);
    let run = build_reproducible(&env, work.path(), &pushed, &[]);
    assert!(run.ok, "strata failed: {}", run.stderr);
    assert_eq!(run.stdout.trim(), tar_digest, "a reproducible build gives the same digest with or without --tar-path");
    let config_in_tar = tar_member(&tar, &config_path);
    let pushed_config = must(Command::new("skopeo").args(["inspect", "--raw", "--config", "--tls-verify=false"]).arg(format!("docker://{pushed}")));
    assert_eq!(String::from_utf8_lossy(&config_in_tar), pushed_config, "the tarball holds the pushed config");

    let layout = work.path().join("from-tar");
    must(Command::new("skopeo").args(["copy", "-q"]).arg(format!("docker-archive:{}", tar.display())).arg(format!("oci:{}:img", layout.display())));
    let from_tar = unpack_layout(&layout, "img");
    let from_registry = pull_and_unpack(&pushed, &["--src-tls-verify=false"]);
    let (a, b) = (listing(&from_tar.rootfs), listing(&from_registry.rootfs));
    let only_tar: Vec<&String> = a.iter().filter(|l| !b.contains(l)).collect();
    let only_pushed: Vec<&String> = b.iter().filter(|l| !a.contains(l)).collect();
    assert!(only_tar.is_empty() && only_pushed.is_empty(), "listings differ\nonly in the tarball:\n{only_tar:#?}\nonly pushed:\n{only_pushed:#?}");
    assert_eq!(std::fs::read_to_string(from_tar.rootfs.join("app/greeting")).expect("greeting"), "hello from strata\n");
}

#[test]
fn tar_path_also_writes_when_pushing_and_is_an_oci_archive() {
    let Some(env) = test_env("tar_path_also_writes_when_pushing_and_is_an_oci_archive") else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let tar = work.path().join("both.tar");
    let tar_arg = tar.to_str().expect("utf8").to_string();
    let dest = format!("{}/e2e/outputs:both", env.registry_http);
    let second = format!("{}/e2e/outputs:both-2", env.registry_http);
    let run = build_reproducible(&env, work.path(), &dest, &["--destination", &second, "--tar-path", &tar_arg]);
    assert!(run.ok, "strata failed: {}", run.stderr);
    let digest = run.stdout.trim().to_string();
    let manifest_json: Value = serde_json::from_slice(&tar_member(&tar, "manifest.json")).expect("manifest.json is JSON");
    assert_eq!(manifest_json[0]["RepoTags"], serde_json::json!([dest, second]));
    // Pushed too.
    let raw = must(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{dest}")));
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), digest);
    // The tarball is an OCI archive as well (as `docker save` writes since Docker 25).
    let inspect: Value =
        serde_json::from_str(&must(Command::new("skopeo").arg("inspect").arg(format!("oci-archive:{}:both", tar.display())))).expect("skopeo inspect JSON");
    assert_eq!(inspect["Digest"], digest.as_str());
}

#[test]
fn a_failing_build_leaves_no_tarball() {
    let Some(env) = test_env("a_failing_build_leaves_no_tarball") else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir ctx");
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {}\nRUN echo fine > /fine\nRUN echo failing && exit 3\n", env.base_busybox))
        .expect("write Dockerfile");
    let out_dir = work.path().join("out");
    std::fs::create_dir_all(&out_dir).expect("mkdir out");
    let tar = out_dir.join("image.tar");
    let run = strata(
        &[
            "build",
            "--context",
            ctx.to_str().expect("utf8"),
            "--no-push",
            "--tar-path",
            tar.to_str().expect("utf8"),
            "--insecure-registry",
            env.registry_http.as_str(),
            "--work-dir",
            work.path().join("work").to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(!run.ok, "the build should fail");
    assert!(run.stderr.contains("exit code 3"), "{}", run.stderr);
    let left: Vec<_> = std::fs::read_dir(&out_dir).expect("read out").flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "a failed build left {left:?} beside the tar path");
}

/// Both spellings of build-only and of the tarball path: kaniko's (`PLUGIN_NO_PUSH`,
/// `PLUGIN_TAR_PATH`) and drone-docker's / Harness's (`PLUGIN_DRY_RUN`,
/// `PLUGIN_DESTINATION_TAR_PATH`): the tarball is written, tagged REGISTRY/REPO:TAG, reported in
/// DRONE_OUTPUT, and nothing is pushed.
#[test]
fn plugin_tar_path_writes_the_tarball_and_reports_it() {
    let Some(env) = test_env("plugin_tar_path_writes_the_tarball_and_reports_it") else { return };
    for (no_push, tar_key, repo) in
        [("PLUGIN_NO_PUSH", "PLUGIN_TAR_PATH", "e2e/outputs-plugin"), ("PLUGIN_DRY_RUN", "PLUGIN_DESTINATION_TAR_PATH", "e2e/outputs-plugin-dry-run")]
    {
        let work = tempfile::tempdir().expect("tempdir");
        let ctx = work.path().join("ctx");
        std::fs::create_dir_all(&ctx).expect("mkdir ctx");
        std::fs::write(ctx.join("Dockerfile"), "ARG BASE\nFROM $BASE\nRUN echo plugin > /plugin\n").expect("write Dockerfile");
        std::fs::create_dir_all(work.path().join("docker-config")).expect("mkdir docker-config");
        let tar = work.path().join("image.tar");
        let drone_output = work.path().join("drone-output.env");
        // Plugin mode: no arguments, only PLUGIN_* settings (the developer's own are removed).
        let mut cmd = Command::new(strata_bin());
        cmd.current_dir(&ctx);
        for (k, _) in std::env::vars() {
            if ["PLUGIN_", "AWS_", "DRONE_", "DOCKER_"].iter().any(|p| k.starts_with(p)) {
                cmd.env_remove(k);
            }
        }
        let out = cmd
            .env("DOCKER_CONFIG", work.path().join("docker-config"))
            .env("STRATA_WORK_DIR", work.path().join("work"))
            .env("PLUGIN_REGISTRY", &env.registry_http)
            .env("PLUGIN_REPO", repo)
            .env("PLUGIN_TAGS", "v1")
            .env(no_push, "true")
            .env("PLUGIN_INSECURE_REGISTRY", &env.registry_http)
            .env("PLUGIN_BUILD_ARGS", format!("BASE={}", env.base_busybox))
            .env(tar_key, &tar)
            .env("DRONE_OUTPUT", &drone_output)
            .output()
            .expect("run strata");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{no_push} {tar_key}: strata failed: {stderr}");
        assert!(!stderr.contains("accepted but ignored"), "{stderr}");
        let manifest_json: Value = serde_json::from_slice(&tar_member(&tar, "manifest.json")).expect("manifest.json is JSON");
        assert_eq!(manifest_json[0]["RepoTags"], serde_json::json!([format!("{}/{repo}:v1", env.registry_http)]));
        let digest = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let dotenv = std::fs::read_to_string(&drone_output).expect("DRONE_OUTPUT written");
        assert_eq!(dotenv, format!("IMAGE_TAR_PATH=\"{}\"\ndigest=\"{digest}\"\n", tar.display()));
        let pushed = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}/{repo}:v1", env.registry_http))
            .output()
            .expect("run skopeo");
        assert!(!pushed.status.success(), "{no_push}: nothing is pushed");
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

//! `strata manifest`: images built and pushed one per platform (as Harness's per-architecture
//! stages tag them apart) joined into one OCI index, in the same repository and in another one
//! (copied in), read back with skopeo per architecture; two images of one platform refused.

use serde_json::Value;
use std::process::Command;
use strata_tests::*;

/// A FROM scratch image (no RUN, so no emulation) built for `platform` and pushed to `dest`;
/// returns its manifest digest.
fn build_for(env: &TestEnv, dir: &std::path::Path, platform: &str, dest: &str) -> String {
    let ctx = dir.join(platform.replace('/', "-"));
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::fs::write(ctx.join("arch.txt"), platform).expect("write");
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY arch.txt /\n").expect("write Dockerfile");
    let (ctx_s, work) = (ctx.display().to_string(), dir.join("work").display().to_string());
    let run = strata(
        &["build", "--context", &ctx_s, "--custom-platform", platform, "--destination", dest, "--insecure-registry", &env.registry_http, "--work-dir", &work],
        &[],
    );
    assert!(run.ok, "build for {platform} failed: {}", run.stderr);
    run.stdout.trim().to_string()
}

fn inspect(reference: &str, arch: &str) -> Value {
    let out = must(
        Command::new("skopeo").args(["inspect", "--tls-verify=false", "--override-arch", arch, "--override-os", "linux"]).arg(format!("docker://{reference}")),
    );
    serde_json::from_str(&out).expect("inspect JSON")
}

#[test]
fn per_platform_images_join_into_one_index() {
    let Some(env) = test_env("per_platform_images_join_into_one_index") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = format!("{}/e2e/multi", env.registry_http);
    let amd = build_for(&env, dir.path(), "linux/amd64", &format!("{repo}:1.0-linux-amd64"));
    let arm = build_for(&env, dir.path(), "linux/arm64", &format!("{repo}:1.0-linux-arm64"));
    let work = dir.path().join("work").display().to_string();
    for (dest, name) in [(format!("{repo}:1.0"), "same repository"), (format!("{}/e2e/multi-joined:1.0", env.registry_http), "another repository")] {
        let run = strata(
            &[
                "manifest",
                "--image",
                &format!("{repo}:1.0-linux-amd64"),
                "--image",
                &format!("{repo}:1.0-linux-arm64"),
                "--destination",
                &dest,
                "--insecure-registry",
                &env.registry_http,
                "--work-dir",
                &work,
            ],
            &[],
        );
        assert!(run.ok, "{name}: strata manifest failed: {}", run.stderr);
        let raw: Value = serde_json::from_str(&must(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{dest}"))))
            .expect("index JSON");
        assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json", "{name}: {raw}");
        let platforms: Vec<(String, String)> = raw["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .map(|d| (d["platform"]["architecture"].as_str().unwrap_or("").to_string(), d["digest"].as_str().unwrap_or("").to_string()))
            .collect();
        assert_eq!(platforms, vec![("amd64".to_string(), amd.clone()), ("arm64".to_string(), arm.clone())], "{name}");
        // A client on each architecture gets that architecture's image.
        for arch in ["arm64", "amd64"] {
            assert_eq!(inspect(&dest, arch)["Architecture"], arch, "{name}: {arch} resolves to the {arch} image");
        }
        assert_eq!(run.stdout.trim(), format!("sha256:{}", sha256_hex(&must_bytes(&dest))), "{name}: the printed digest is the index's");
    }
    // Plugin mode, as a last Harness stage: PLUGIN_MANIFEST_SOURCES names the per-architecture tags.
    let mut cmd = Command::new(strata_bin());
    for (k, _) in std::env::vars() {
        if ["PLUGIN_", "AWS_", "DRONE_", "DOCKER_"].iter().any(|p| k.starts_with(p)) {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .current_dir(dir.path())
        .env("DOCKER_CONFIG", dir.path().join("no-docker-config"))
        .env("STRATA_WORK_DIR", dir.path().join("work"))
        .env("PLUGIN_REGISTRY", &env.registry_http)
        .env("PLUGIN_REPO", "e2e/multi")
        .env("PLUGIN_TAGS", "plugin-joined")
        .env("PLUGIN_MANIFEST_SOURCES", "1.0-linux-amd64,1.0-linux-arm64")
        .env("PLUGIN_INSECURE_REGISTRY", &env.registry_http)
        .output()
        .expect("run strata");
    let run = to_run(out);
    assert!(run.ok, "plugin join failed: {}", run.stderr);
    assert_eq!(inspect(&format!("{repo}:plugin-joined"), "arm64")["Architecture"], "arm64");
    // Two images of one platform: refused, naming both.
    let again = build_for(&env, dir.path(), "linux/amd64", &format!("{repo}:other-amd64"));
    assert!(!again.is_empty());
    let run = strata(
        &[
            "manifest",
            "--image",
            &format!("{repo}:1.0-linux-amd64"),
            "--image",
            &format!("{repo}:other-amd64"),
            "--destination",
            &format!("{repo}:dup"),
            "--insecure-registry",
            &env.registry_http,
            "--work-dir",
            &work,
        ],
        &[],
    );
    assert!(!run.ok && run.stderr.contains("both linux/amd64 images") && run.stderr.contains("other-amd64"), "{}", run.stderr);
}

fn must_bytes(reference: &str) -> Vec<u8> {
    let out = Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{reference}")).output().expect("skopeo");
    assert!(out.status.success());
    out.stdout
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `--custom-platform linux/amd64,linux/arm64`: both built (each with its own TARGETARCH) and
/// pushed as one index under the tag; each architecture gets its own files.
#[test]
fn one_build_for_two_platforms_pushes_an_index() {
    let Some(env) = test_env("one_build_for_two_platforms_pushes_an_index") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx =
        arch_files_context(dir.path(), "FROM scratch\nARG TARGETARCH\nARG TARGETPLATFORM\nCOPY ${TARGETARCH}.txt /arch.txt\nLABEL platform=$TARGETPLATFORM\n");
    let dest = format!("{}/e2e/multi-build:1", env.registry_http);
    let (ctx_s, work) = (ctx.display().to_string(), dir.path().join("work").display().to_string());
    let digest_file = dir.path().join("digest");
    let (names, name_tags) = (dir.path().join("names"), dir.path().join("name-tags"));
    let run = strata(
        &[
            "build",
            "--context",
            &ctx_s,
            "--custom-platform",
            "linux/amd64,linux/arm64",
            "--destination",
            &dest,
            "--insecure-registry",
            &env.registry_http,
            "--work-dir",
            &work,
            "--digest-file",
            digest_file.to_str().expect("utf8"),
            "--image-name-with-digest-file",
            names.to_str().expect("utf8"),
            "--image-name-tag-with-digest-file",
            name_tags.to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(run.ok, "multi-platform build failed: {}", run.stderr);
    let raw = must_bytes(&dest);
    let index: Value = serde_json::from_slice(&raw).expect("index JSON");
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let archs: Vec<&str> = index["manifests"].as_array().expect("manifests").iter().filter_map(|d| d["platform"]["architecture"].as_str()).collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    let index_digest = format!("sha256:{}", sha256_hex(&raw));
    assert_eq!(run.stdout.trim(), index_digest, "the printed digest is the index's");
    assert_eq!(std::fs::read_to_string(&digest_file).expect("digest file"), index_digest);
    let repo = dest.trim_end_matches(":1");
    assert_eq!(std::fs::read_to_string(&names).expect("names"), format!("{repo}@{index_digest}\n"), "--image-name-with-digest-file");
    assert_eq!(std::fs::read_to_string(&name_tags).expect("name tags"), format!("{dest}@{index_digest}\n"), "--image-name-tag-with-digest-file");
    for arch in ["amd64", "arm64"] {
        let got = inspect(&dest, arch);
        assert_eq!(got["Architecture"], arch);
        assert_eq!(got["Labels"]["platform"], format!("linux/{arch}"), "TARGETPLATFORM per platform");
        let pulled = pull_and_unpack(&dest, &["--src-tls-verify=false", "--override-arch", arch]);
        assert_eq!(std::fs::read_to_string(pulled.rootfs.join("arch.txt")).expect("arch.txt"), format!("built for {arch}\n"), "TARGETARCH per platform");
    }
}

/// `name` made unique to this run: the registry's storage may outlive a test run.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{name}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// Plugin mode with `PLUGIN_PLATFORM` as a comma list: the digest file, the artifact file, the
/// `DRONE_OUTPUT` dotenv and both image-name-with-digest files name the index pushed, never a
/// platform's manifest.
#[test]
fn plugin_outputs_name_the_index_of_a_multi_platform_build() {
    let Some(env) = test_env("plugin_outputs_name_the_index_of_a_multi_platform_build") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = arch_files_context(dir.path(), "FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}.txt /arch.txt\n");
    let out = dir.path().join("out");
    let repo = unique("plugin-multi");
    let mut cmd = Command::new(strata_bin());
    for (k, _) in std::env::vars() {
        if ["PLUGIN_", "AWS_", "DRONE_", "DOCKER_"].iter().any(|p| k.starts_with(p)) {
            cmd.env_remove(k);
        }
    }
    let run = to_run(
        cmd.current_dir(&ctx)
            .env("DOCKER_CONFIG", dir.path().join("no-docker-config"))
            .env("STRATA_WORK_DIR", dir.path().join("work"))
            .env("PLUGIN_REGISTRY", &env.registry_http)
            .env("PLUGIN_REPO", format!("e2e/{repo}"))
            .env("PLUGIN_TAGS", "1.0,latest")
            .env("PLUGIN_PLATFORM", "linux/amd64,linux/arm64")
            .env("PLUGIN_INSECURE_REGISTRY", &env.registry_http)
            .env("PLUGIN_DIGEST_FILE", out.join("digest"))
            .env("PLUGIN_ARTIFACT_FILE", out.join("artifact.json"))
            .env("PLUGIN_IMAGE_NAME_WITH_DIGEST_FILE", out.join("names"))
            .env("PLUGIN_IMAGE_NAME_TAG_WITH_DIGEST_FILE", out.join("name-tags"))
            .env("DRONE_OUTPUT", out.join("drone.env"))
            .output()
            .expect("run strata"),
    );
    assert!(run.ok, "plugin multi-platform build failed: {}", run.stderr);
    let image = format!("{}/e2e/{repo}", env.registry_http);
    let raw = must_bytes(&format!("{image}:1.0"));
    let index: Value = serde_json::from_slice(&raw).expect("index JSON");
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let digest = format!("sha256:{}", sha256_hex(&raw));
    let per_platform: Vec<&str> = index["manifests"].as_array().expect("manifests").iter().filter_map(|d| d["digest"].as_str()).collect();
    assert_eq!(per_platform.len(), 2);
    assert_eq!(run.stdout.trim(), digest);
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(read("digest"), digest, "PLUGIN_DIGEST_FILE");
    let artifact: Value = serde_json::from_str(&read("artifact.json")).expect("artifact JSON");
    let images = artifact["data"]["images"].as_array().expect("artifact images");
    assert_eq!(images.len(), 2, "{artifact}");
    for i in images {
        assert_eq!(i["digest"], digest.as_str(), "PLUGIN_ARTIFACT_FILE: {artifact}");
    }
    assert!(read("drone.env").contains(&format!("digest=\"{digest}\"")), "DRONE_OUTPUT: {}", read("drone.env"));
    assert_eq!(read("names"), format!("{image}@{digest}\n{image}@{digest}\n"), "PLUGIN_IMAGE_NAME_WITH_DIGEST_FILE");
    assert_eq!(read("name-tags"), format!("{image}:1.0@{digest}\n{image}:latest@{digest}\n"), "PLUGIN_IMAGE_NAME_TAG_WITH_DIGEST_FILE");
    for text in [read("digest"), read("artifact.json"), read("drone.env"), read("names"), read("name-tags")] {
        for d in &per_platform {
            assert!(!text.contains(d), "an output names a platform's manifest {d}: {text}");
        }
    }
}

/// One platform failing (arm64's COPY source is missing) fails the build naming that platform,
/// and the tag is never pushed.
#[test]
fn a_failing_platform_is_named_and_nothing_is_tagged() {
    let Some(env) = test_env("a_failing_platform_is_named_and_nothing_is_tagged") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::fs::write(ctx.join("amd64.txt"), "amd64\n").expect("write");
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}.txt /arch.txt\n").expect("write Dockerfile");
    let dest = format!("{}/e2e/{}:1", env.registry_http, unique("multi-fail"));
    let (ctx_s, work) = (ctx.display().to_string(), dir.path().join("work").display().to_string());
    for jobs in ["1", "2"] {
        let run = strata(
            &[
                "build",
                "--context",
                &ctx_s,
                "--custom-platform",
                "linux/amd64,linux/arm64",
                "--platform-jobs",
                jobs,
                "--destination",
                &dest,
                "--insecure-registry",
                &env.registry_http,
                "--work-dir",
                &work,
            ],
            &[],
        );
        assert!(!run.ok && run.code == Some(1), "--platform-jobs {jobs}: {}", run.stderr);
        let error = run.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
        assert!(error.contains("building for linux/arm64") && error.contains("arm64.txt"), "--platform-jobs {jobs}: {}", run.stderr);
        let inspect = Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{dest}")).output().expect("skopeo");
        assert!(!inspect.status.success(), "--platform-jobs {jobs}: the tag was pushed");
        // Nothing of either platform's build is left in the work dir.
        let left: Vec<_> = std::fs::read_dir(dir.path().join("work/builds"))
            .map(|r| r.flatten().map(|e| e.file_name()).filter(|n| !n.to_string_lossy().starts_with(".trash-")).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "--platform-jobs {jobs}: left behind: {left:?}");
    }
}

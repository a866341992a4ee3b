//! Push-only (Harness's build → scan → push): `strata push --source-tar` and the plugin's
//! `PLUGIN_PUSH_ONLY` push a tarball written earlier, checked blob by blob, to the real plain
//! registry; skopeo reads back what was pushed. A damaged or missing tarball, and push-only
//! together with no-push, end in one clear error and push nothing.

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use strata_tests::*;

/// `name` made unique to this run: the registry's storage may outlive a test run.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{name}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// The manifest digest `skopeo inspect` reports for `reference`, or None when it is not there.
fn pushed_digest(reference: &str) -> Option<String> {
    let out = Command::new("skopeo").args(["inspect", "--tls-verify=false"]).arg(format!("docker://{reference}")).output().expect("run skopeo");
    out.status.success().then(|| serde_json::from_slice::<Value>(&out.stdout).expect("inspect JSON")["Digest"].as_str().unwrap_or_default().to_string())
}

/// examples/hello built into a tarball only (nothing pushed); returns the tarball and the digest.
fn built_tarball(env: &TestEnv, work: &Path, name: &str) -> (std::path::PathBuf, String) {
    let tar = work.join(format!("{name}.tar"));
    let dest = format!("{}/e2e/{name}:built", env.registry_http);
    let run = build_hello(env, work, &dest, &["--no-push", "--tar-path", tar.to_str().expect("utf8")], &[]);
    assert!(run.ok, "build failed: {}", run.stderr);
    assert!(pushed_digest(&dest).is_none(), "--no-push pushed");
    (tar, run.stdout.trim().to_string())
}

fn push(env: &TestEnv, work: &Path, tar: &Path, destinations: &[String]) -> Run {
    let (tar, work) = (tar.display().to_string(), work.join("work").display().to_string());
    let mut args = vec!["push", "--source-tar", &tar, "--insecure-registry", env.registry_http.as_str(), "--work-dir", &work];
    for d in destinations {
        args.push("--destination");
        args.push(d);
    }
    strata(&args, &[])
}

#[test]
fn a_built_tarball_is_pushed_unchanged_to_every_tag() {
    let Some(env) = test_env("a_built_tarball_is_pushed_unchanged_to_every_tag") else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let (tar, built) = built_tarball(&env, work.path(), &unique("push-only"));
    let repo = unique("push-only-tags");
    let tags: Vec<String> = ["v1", "v2"].iter().map(|t| format!("{}/e2e/{repo}:{t}", env.registry_http)).collect();
    let run = push(&env, work.path(), &tar, &tags);
    assert!(run.ok, "strata push failed: {}", run.stderr);
    assert_eq!(run.stdout.trim(), built, "the pushed manifest is the built one");
    for t in &tags {
        assert_eq!(pushed_digest(t).as_deref(), Some(built.as_str()), "{t}");
    }
    // What was pushed unpacks, with the example's file in it.
    let pulled = pull_and_unpack(&tags[0], &["--src-tls-verify=false"]);
    assert_eq!(std::fs::read_to_string(pulled.rootfs.join("app/greeting")).expect("the RUN's file"), "hello from strata\n");
}

#[test]
fn a_docker_save_tarball_without_an_index_is_pushed_with_its_config() {
    let Some(env) = test_env("a_docker_save_tarball_without_an_index_is_pushed_with_its_config") else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let source = format!("{}/e2e/{}:1", env.registry_http, unique("push-only-src"));
    let run = build_hello(&env, work.path(), &source, &[], &[]);
    assert!(run.ok, "build failed: {}", run.stderr);
    // skopeo's docker-archive is the layout of `docker save` before Docker 25: manifest.json,
    // <hex>.json config and <hex>.tar layers (uncompressed), no index.json.
    let tar = work.path().join("saved.tar");
    must(
        Command::new("skopeo")
            .args(["copy", "-q", "--src-tls-verify=false"])
            .arg(format!("docker://{source}"))
            .arg(format!("docker-archive:{}:saved:1", tar.display())),
    );
    let names = must(Command::new("tar").arg("-tf").arg(&tar));
    assert!(!names.lines().any(|n| n == "index.json"), "a legacy tarball: {names}");
    let dest = format!("{}/e2e/{}:1", env.registry_http, unique("push-only-saved"));
    let run = push(&env, work.path(), &tar, std::slice::from_ref(&dest));
    assert!(run.ok, "strata push failed: {}", run.stderr);
    let config = |r: &str| must(Command::new("skopeo").args(["inspect", "--raw", "--config", "--tls-verify=false"]).arg(format!("docker://{r}")));
    let (a, b): (Value, Value) = (serde_json::from_str(&config(&source)).expect("json"), serde_json::from_str(&config(&dest)).expect("json"));
    assert_eq!(a, b, "the same config");
    let pulled = pull_and_unpack(&dest, &["--src-tls-verify=false"]);
    let original = pull_and_unpack(&source, &["--src-tls-verify=false"]);
    assert_eq!(listing(&pulled.rootfs), listing(&original.rootfs), "the same files");
}

#[test]
fn a_damaged_or_missing_tarball_pushes_nothing() {
    let Some(env) = test_env("a_damaged_or_missing_tarball_pushes_nothing") else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let (tar, _) = built_tarball(&env, work.path(), &unique("push-only-bad"));
    // One byte of the largest blob flipped, in place: its entry no longer hashes to its name.
    let listing = must(Command::new("tar").arg("-tvf").arg(&tar));
    let biggest = listing
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.get(2)?.parse::<u64>().ok()?, f.last()?.to_string()))
        })
        .filter(|(_, n)| n.starts_with("blobs/sha256/"))
        .max()
        .expect("a blob");
    let bytes = std::fs::read(&tar).expect("read tarball");
    let data = bytes.windows(biggest.1.len()).position(|w| w == biggest.1.as_bytes()).expect("header") / 512 * 512 + 512;
    let mut damaged = bytes.clone();
    damaged[data + 100] ^= 0xff;
    let bad = work.path().join("damaged.tar");
    std::fs::write(&bad, damaged).expect("write damaged");
    let dest = format!("{}/e2e/{}:1", env.registry_http, unique("push-only-bad"));
    let run = push(&env, work.path(), &bad, std::slice::from_ref(&dest));
    assert!(!run.ok, "a damaged tarball was pushed");
    assert!(run.stderr.contains(&biggest.1) && run.stderr.contains("damaged"), "the error names the entry: {}", run.stderr);
    assert!(pushed_digest(&dest).is_none(), "nothing pushed");

    let run = push(&env, work.path(), &work.path().join("missing.tar"), std::slice::from_ref(&dest));
    assert!(!run.ok && run.stderr.contains("missing.tar") && run.stderr.contains("cannot open"), "{}", run.stderr);
    let run = strata(&["push", "--destination", &dest], &[]);
    assert!(!run.ok && run.stderr.contains("--source-tar"), "{}", run.stderr);
}

/// The Harness flow: step 1 builds to a tarball (PLUGIN_NO_PUSH + PLUGIN_TAR_PATH), step 2
/// pushes it (PLUGIN_PUSH_ONLY + PLUGIN_SOURCE_TAR_PATH) to REGISTRY/REPO:TAG, with the outputs.
#[test]
fn plugin_build_then_push_only() {
    let Some(env) = test_env("plugin_build_then_push_only") else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir ctx");
    std::fs::write(ctx.join("Dockerfile"), "ARG BASE\nFROM $BASE\nRUN echo scanned > /scanned\n").expect("write Dockerfile");
    std::fs::create_dir_all(work.path().join("docker-config")).expect("mkdir docker-config");
    let tar = work.path().join("image.tar");
    let output = work.path().join("drone-output.env");
    let repo = unique("push-only-plugin");
    let step = |extra: &[(&str, String)]| {
        let mut cmd = Command::new(strata_bin());
        cmd.current_dir(&ctx);
        for (k, _) in std::env::vars() {
            if ["PLUGIN_", "AWS_", "DRONE_", "DOCKER_"].iter().any(|p| k.starts_with(p)) {
                cmd.env_remove(k);
            }
        }
        cmd.env("DOCKER_CONFIG", work.path().join("docker-config"))
            .env("STRATA_WORK_DIR", work.path().join("work"))
            .env("PLUGIN_REGISTRY", &env.registry_http)
            .env("PLUGIN_REPO", format!("e2e/{repo}"))
            .env("PLUGIN_TAGS", "1.0,latest")
            .env("PLUGIN_INSECURE_REGISTRY", &env.registry_http)
            .env("PLUGIN_BUILD_ARGS", format!("BASE={}", env.base_busybox))
            .env("DRONE_OUTPUT", &output);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        to_run(cmd.output().expect("run strata"))
    };
    let built = step(&[("PLUGIN_NO_PUSH", "true".into()), ("PLUGIN_TAR_PATH", tar.display().to_string())]);
    assert!(built.ok, "step 1 failed: {}", built.stderr);
    let image = format!("{}/e2e/{repo}", env.registry_http);
    assert!(pushed_digest(&format!("{image}:1.0")).is_none(), "step 1 pushed");
    // No Dockerfile is needed in the push step.
    std::fs::remove_file(ctx.join("Dockerfile")).expect("rm Dockerfile");
    let refused = step(&[("PLUGIN_PUSH_ONLY", "true".into()), ("PLUGIN_NO_PUSH", "true".into()), ("PLUGIN_SOURCE_TAR_PATH", tar.display().to_string())]);
    assert!(!refused.ok && refused.stderr.contains("PLUGIN_PUSH_ONLY") && refused.stderr.contains("PLUGIN_NO_PUSH"), "{}", refused.stderr);
    let pushed = step(&[("PLUGIN_PUSH_ONLY", "true".into()), ("PLUGIN_SOURCE_TAR_PATH", tar.display().to_string())]);
    assert!(pushed.ok, "step 2 failed: {}", pushed.stderr);
    assert_eq!(pushed.stdout.trim(), built.stdout.trim(), "step 2 pushes what step 1 built");
    for t in ["1.0", "latest"] {
        assert_eq!(pushed_digest(&format!("{image}:{t}")).as_deref(), Some(built.stdout.trim()), "{t}");
    }
    let dotenv = std::fs::read_to_string(&output).expect("DRONE_OUTPUT");
    assert!(dotenv.contains(&format!("digest=\"{}\"", built.stdout.trim())), "{dotenv}");
}

/// A two-platform tarball (FROM scratch, no emulation needed): push-only pushes each platform's
/// manifest by digest and then the index, byte for byte, under every tag; skopeo on each
/// architecture gets that architecture's files.
#[test]
fn a_multi_platform_tarball_is_pushed_as_its_index() {
    let Some(env) = test_env("a_multi_platform_tarball_is_pushed_as_its_index") else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let ctx = arch_files_context(work.path(), "FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}.txt /arch.txt\n");
    let tar = work.path().join("multi.tar");
    let built_dest = format!("{}/e2e/{}:built", env.registry_http, unique("push-only-multi-src"));
    let (ctx_s, tar_s, build_work) = (ctx.display().to_string(), tar.display().to_string(), work.path().join("work").display().to_string());
    let built = strata(
        &[
            "build",
            "--context",
            &ctx_s,
            "--custom-platform",
            "linux/amd64,linux/arm64",
            "--destination",
            &built_dest,
            "--no-push",
            "--tar-path",
            &tar_s,
            "--insecure-registry",
            &env.registry_http,
            "--work-dir",
            &build_work,
        ],
        &[],
    );
    assert!(built.ok, "build failed: {}", built.stderr);
    assert!(pushed_digest(&built_dest).is_none(), "--no-push pushed");
    let repo = unique("push-only-multi");
    let tags: Vec<String> = ["v1", "v2"].iter().map(|t| format!("{}/e2e/{repo}:{t}", env.registry_http)).collect();
    // A work dir of its own: every blob comes from the tarball.
    let push_dir = tempfile::tempdir().expect("tempdir");
    let run = push(&env, push_dir.path(), &tar, &tags);
    assert!(run.ok, "strata push failed: {}", run.stderr);
    assert_eq!(run.stdout.trim(), built.stdout.trim(), "the pushed index is the built one");
    for t in &tags {
        let raw = Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{t}")).output().expect("skopeo");
        assert!(raw.status.success(), "{t}");
        use sha2::Digest as _;
        assert_eq!(format!("sha256:{}", hex::encode(sha2::Sha256::digest(&raw.stdout))), built.stdout.trim(), "{t}: the index byte for byte");
    }
    for arch in ["amd64", "arm64"] {
        let pulled = pull_and_unpack(&tags[0], &["--src-tls-verify=false", "--override-arch", arch]);
        assert_eq!(std::fs::read_to_string(pulled.rootfs.join("arch.txt")).expect("arch.txt"), format!("built for {arch}\n"), "{arch}");
        assert_eq!(pulled.config["architecture"], arch);
    }
}

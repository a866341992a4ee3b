//! End to end, the layer cache (`--cache`): a RUN whose inputs did not change is not run again
//! (each RUN here records a fresh random id, so "not run" is visible in the image), in the
//! same work dir and, through a cache repository in the real registry, on a machine with an
//! empty work dir, as a CI pod starts. A COPY of unchanged content reuses its earlier layer, so
//! an unchanged build has the same layers and nothing new to push. File times do not matter;
//! content, build args and the TTL do; the steps that ran before a failure are cached.

use std::path::{Path, PathBuf};
use strata_tests::*;

const DOCKERFILE: &str = "ARG BASE\nFROM ${BASE}\nARG FLAVOUR=plain\n\
    COPY app.txt /app/app.txt\n\
    RUN cat /proc/sys/kernel/random/uuid > /app/run-id\n\
    RUN echo \"$FLAVOUR\" > /app/flavour && cat /proc/sys/kernel/random/uuid > /app/run-id2\n";

struct Case {
    dir: tempfile::TempDir,
    env: TestEnv,
    builds: usize,
}

/// The two random ids of an image, and the build's stderr.
struct Built {
    ids: (String, String),
    stderr: String,
    layers: Vec<String>,
}

impl Case {
    fn new(env: TestEnv) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = dir.path().join("ctx");
        std::fs::create_dir_all(&ctx).expect("mkdir");
        std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).expect("Dockerfile");
        std::fs::write(ctx.join("app.txt"), "version 1\n").expect("app.txt");
        std::fs::write(ctx.join("unused.txt"), "not copied\n").expect("unused.txt");
        Self { dir, env, builds: 0 }
    }

    fn ctx(&self, rel: &str) -> PathBuf {
        self.dir.path().join("ctx").join(rel)
    }

    fn work(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Builds into an OCI layout with `--cache` and `extra` flags, in work dir `work`.
    fn build(&mut self, work: &str, extra: &[&str]) -> Built {
        self.builds += 1;
        let layout = self.dir.path().join(format!("layout-{}", self.builds));
        let base = format!("BASE={}", self.env.base_busybox);
        let mut args = vec![
            "build".to_string(),
            "--context".into(),
            self.ctx("").display().to_string(),
            "--insecure-registry".into(),
            self.env.registry_http.clone(),
            "--work-dir".into(),
            self.work(work),
            "--build-arg".into(),
            base,
            "--oci-layout-path".into(),
            layout.display().to_string(),
            "--cache".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        if !extra.contains(&"--destination") {
            args.push("--no-push".into());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = strata(&refs, &[]);
        assert!(run.ok, "build {} failed: {}", self.builds, run.stderr);
        let image = unpack_layout(&layout, tag_of(extra));
        let read = |p: &str| std::fs::read_to_string(image.rootfs.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        let layers = image.manifest["layers"].as_array().map(|a| a.iter().map(|l| l["digest"].to_string()).collect()).unwrap_or_default();
        Built { ids: (read("app/run-id"), read("app/run-id2")), stderr: run.stderr, layers }
    }
}

/// The tag the OCI layout is written under: the destination's, else `latest`.
fn tag_of(extra: &[&str]) -> &'static str {
    if extra.contains(&"--destination") { "cached" } else { "latest" }
}

fn hits(stderr: &str) -> usize {
    stderr.matches("cache hit").count()
}

fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).expect("open");
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)).expect("mtime");
}

#[test]
fn cache_skips_unchanged_runs_and_follows_content_and_args() {
    let test = "cache_skips_unchanged_runs_and_follows_content_and_args";
    let Some(env) = test_env(test) else { return };
    let mut c = Case::new(env);
    let first = c.build("work", &[]);
    assert_eq!(hits(&first.stderr), 0, "{}", first.stderr);

    let again = c.build("work", &[]);
    assert_eq!(hits(&again.stderr), 3, "the COPY and both RUNs hit: {}", again.stderr);
    assert!(again.stderr.contains("cache hit (local)"), "{}", again.stderr);
    assert_eq!(again.ids, first.ids, "a hit reuses the RUN's files");
    assert_eq!(again.layers, first.layers, "and every layer: nothing new to push");

    // A fresh checkout: new times on the copied file, a changed file that is not copied.
    set_mtime(&c.ctx("app.txt"), 1_000_000);
    std::fs::write(c.ctx("unused.txt"), "changed, still not copied\n").expect("write");
    let touched = c.build("work", &[]);
    assert_eq!(hits(&touched.stderr), 3, "times and unused files do not matter: {}", touched.stderr);
    assert_eq!(touched.ids, first.ids);
    assert_eq!(touched.layers, first.layers);

    // A build arg the RUNs see changes both keys.
    let flavoured = c.build("work", &["--build-arg", "FLAVOUR=spicy"]);
    assert_eq!(hits(&flavoured.stderr), 1, "only the COPY, which does not use it, hits: {}", flavoured.stderr);
    assert_ne!(flavoured.ids.0, first.ids.0);

    // New content of a copied file misses every RUN after the COPY.
    std::fs::write(c.ctx("app.txt"), "version 2\n").expect("write");
    let changed = c.build("work", &[]);
    assert_eq!(hits(&changed.stderr), 0, "{}", changed.stderr);
    assert_ne!(changed.ids.0, first.ids.0);
    assert_ne!(changed.ids.1, first.ids.1);
}

#[test]
fn cache_repo_serves_an_empty_work_dir_and_honours_the_ttl() {
    let test = "cache_repo_serves_an_empty_work_dir_and_honours_the_ttl";
    let Some(env) = test_env(test) else { return };
    let unique =
        format!("{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() % 1_000_000_000));
    let cache_repo = format!("{}/e2e/cache-{unique}", env.registry_http);
    let dest = format!("{}/e2e/cached-{unique}:cached", env.registry_http);
    let mut c = Case::new(env);
    let first = c.build("pod-1", &["--destination", &dest, "--cache-repo", &cache_repo]);
    assert_eq!(hits(&first.stderr), 0, "{}", first.stderr);
    // Entries are small images tagged by key; their manifests carry what a lookup needs.
    let tags: serde_json::Value =
        serde_json::from_str(&must(std::process::Command::new("skopeo").args(["list-tags", "--tls-verify=false"]).arg(format!("docker://{cache_repo}"))))
            .expect("tags");
    let tags = tags["Tags"].as_array().expect("Tags");
    assert_eq!(tags.len(), 3, "one entry per COPY and RUN: {tags:?}");
    for tag in tags {
        let raw = must(
            std::process::Command::new("skopeo")
                .args(["inspect", "--raw", "--tls-verify=false"])
                .arg(format!("docker://{cache_repo}:{}", tag.as_str().expect("tag"))),
        );
        assert!(raw.contains("\"dev.strata.cache.created\"") && raw.contains("\"dev.strata.cache.diff_id\":\"sha256:"), "{raw}");
    }

    // A new pod: nothing in its work dir, the entries come from the registry.
    let second = c.build("pod-2", &["--destination", &dest, "--cache-repo", &cache_repo]);
    assert_eq!(hits(&second.stderr), 3, "{}", second.stderr);
    assert!(second.stderr.contains(&format!("cache hit ({})", cache_repo)), "{}", second.stderr);
    assert_eq!(second.ids, first.ids);
    assert_eq!(second.layers, first.layers);

    // Entries older than the TTL are misses.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let expired = c.build("pod-3", &["--destination", &dest, "--cache-repo", &cache_repo, "--cache-ttl", "1s"]);
    assert_eq!(hits(&expired.stderr), 0, "{}", expired.stderr);
    assert_ne!(expired.ids.0, first.ids.0);
}

#[test]
fn steps_before_a_failure_are_cached() {
    let test = "steps_before_a_failure_are_cached";
    let Some(env) = test_env(test) else { return };
    let mut c = Case::new(env);
    let good = DOCKERFILE.to_string();
    std::fs::write(c.ctx("Dockerfile"), format!("{good}RUN exit 7\n")).expect("Dockerfile");
    let base = format!("BASE={}", c.env.base_busybox);
    let failed = strata(
        &[
            "build",
            "--context",
            &c.ctx("").display().to_string(),
            "--insecure-registry",
            &c.env.registry_http.clone(),
            "--work-dir",
            &c.work("work"),
            "--build-arg",
            &base,
            "--no-push",
            "--cache",
        ],
        &[],
    );
    assert!(!failed.ok && failed.stderr.contains("exit code 7"), "{}", failed.stderr);
    std::fs::write(c.ctx("Dockerfile"), good).expect("Dockerfile");
    let fixed = c.build("work", &[]);
    assert_eq!(hits(&fixed.stderr), 3, "the COPY and the two RUNs that succeeded are reused: {}", fixed.stderr);
}

#[test]
fn runs_mounting_an_image_hit() {
    let test = "runs_mounting_an_image_hit";
    let Some(env) = test_env(test) else { return };
    let mut c = Case::new(env);
    let image = c.env.base_busybox.clone();
    std::fs::write(
        c.ctx("Dockerfile"),
        format!(
            "{DOCKERFILE}RUN --mount=type=bind,from={image},source=/etc,target=/base-etc cat /base-etc/motd > /app/motd \
             && cat /proc/sys/kernel/random/uuid > /app/run-id3\n"
        ),
    )
    .expect("Dockerfile");
    let first = c.build("work", &[]);
    let again = c.build("work", &[]);
    assert_eq!(hits(&again.stderr), 4, "the COPY, two RUNs and the RUN mounting an image hit: {}", again.stderr);
    assert_eq!(again.layers, first.layers);
}

/// A stage whose steps all hit is never unpacked; when a later step misses, the base and the
/// cached layers so far are unpacked first, so the step sees exactly the files it would have
/// seen in a build without the cache. A stage copied from after a miss comes from its layers.
#[test]
fn a_stage_is_unpacked_only_when_a_step_misses() {
    let test = "a_stage_is_unpacked_only_when_a_step_misses";
    let Some(env) = test_env(test) else { return };
    let mut c = Case::new(env);
    std::fs::write(
        c.ctx("Dockerfile"),
        "ARG BASE\nFROM ${BASE} AS deps\nWORKDIR /deps\nRUN cat /proc/sys/kernel/random/uuid > dep-id\n\
         FROM ${BASE}\nWORKDIR /app\nCOPY app.txt .\n\
         RUN cat /proc/sys/kernel/random/uuid > run-id && cat /proc/sys/kernel/random/uuid > run-id2\n\
         ARG SALT=one\nRUN echo \"$SALT\" > salt && cat app.txt run-id > seen\n\
         COPY --from=deps /deps/dep-id .\nRUN cat dep-id >> seen && ls / > root-listing\n",
    )
    .expect("Dockerfile");
    const UNPACKING: &str = "a step needs the stage's files: unpacking";
    let first = c.build("work", &[]);
    assert_eq!(first.stderr.matches(UNPACKING).count(), 2, "each stage is unpacked at its first miss: {}", first.stderr);

    let again = c.build("work", &[]);
    assert_eq!(hits(&again.stderr), 8, "{}", again.stderr);
    assert!(!again.stderr.contains(UNPACKING), "nothing is unpacked when every step hits: {}", again.stderr);
    assert_eq!(again.layers, first.layers);

    // The fifth step of the final stage misses: the base, the WORKDIR, the COPY and the first
    // RUN's layers are unpacked before it runs, and the deps stage (all hits) comes from its
    // layers for the COPY --from.
    let salted = c.build("work", &["--build-arg", "SALT=two"]);
    assert_eq!(hits(&salted.stderr), 5, "{}", salted.stderr);
    assert_eq!(salted.stderr.matches(UNPACKING).count(), 1, "{}", salted.stderr);
    assert_eq!(salted.ids, first.ids, "the cached RUN's files are the ones unpacked");
    let image = unpack_layout(&c.dir.path().join(format!("layout-{}", c.builds)), "latest");
    let first_image = unpack_layout(&c.dir.path().join("layout-1"), "latest");
    let read = |u: &Unpacked, p: &str| std::fs::read_to_string(u.rootfs.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read(&image, "app/salt"), "two\n");
    assert_eq!(read(&image, "app/seen"), format!("version 1\n{}{}", first.ids.0, read(&first_image, "app/dep-id")));
    assert_eq!(read(&image, "app/root-listing"), read(&first_image, "app/root-listing"), "the base was unpacked under the cached layers");
    assert_eq!(listing(&image.rootfs).len(), listing(&first_image.rootfs).len());
}

/// A new pod whose steps all hit downloads no layer at all: the base's and the cached layers
/// are mounted from where they are into the destination repository, and the image is whole.
#[test]
fn a_new_pod_where_every_step_hits_downloads_no_layer() {
    let test = "a_new_pod_where_every_step_hits_downloads_no_layer";
    let Some(env) = test_env(test) else { return };
    let unique =
        format!("{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() % 1_000_000_000));
    let cache_repo = format!("{}/e2e/cache-nodl-{unique}", env.registry_http);
    let first_dest = format!("{}/e2e/nodl-first-{unique}:cached", env.registry_http);
    let second_dest = format!("{}/e2e/nodl-second-{unique}:v1", env.registry_http);
    let mut c = Case::new(env);
    let first = c.build("pod-1", &["--destination", &first_dest, "--cache-repo", &cache_repo]);
    assert_eq!(hits(&first.stderr), 0, "{}", first.stderr);

    let base = format!("BASE={}", c.env.base_busybox);
    let work = c.work("pod-2");
    let ctx = c.ctx("").display().to_string();
    let registry = c.env.registry_http.clone();
    let second = strata(
        &[
            "build",
            "--context",
            &ctx,
            "--insecure-registry",
            &registry,
            "--work-dir",
            &work,
            "--build-arg",
            &base,
            "--cache",
            "--cache-repo",
            &cache_repo,
            "--destination",
            &second_dest,
        ],
        &[],
    );
    assert!(second.ok, "{}", second.stderr);
    assert_eq!(hits(&second.stderr), 3, "{}", second.stderr);
    assert!(!second.stderr.contains("pulled sha256:"), "nothing is downloaded: {}", second.stderr);
    let image = pull_and_unpack(&second_dest, &["--src-tls-verify=false"]);
    let stored: Vec<String> = std::fs::read_dir(Path::new(&work).join("blobs/sha256"))
        .map(|d| d.flatten().map(|e| format!("sha256:{}", e.file_name().to_string_lossy())).collect())
        .unwrap_or_default();
    for layer in image.manifest["layers"].as_array().expect("layers") {
        let digest = layer["digest"].as_str().expect("digest");
        assert!(!stored.iter().any(|s| s == digest), "layer {digest} was downloaded");
    }
    let reference = pull_and_unpack(&first_dest, &["--src-tls-verify=false"]);
    assert_eq!(listing(&image.rootfs), listing(&reference.rootfs));
    assert_eq!(std::fs::read_to_string(image.rootfs.join("app/run-id")).expect("run-id"), first.ids.0);

    // Another registry cannot mount them: the layers are fetched for the upload, then pushed.
    let work = c.work("pod-3");
    let cfg = docker_config(Path::new(&c.work("")), &c.env.registry_tls, &c.env.user, &c.env.pass);
    let tls_dest = format!("{}/e2e/nodl-tls-{unique}:v1", c.env.registry_tls);
    let cert = format!("{}={}", c.env.registry_tls, c.env.registry_ca.display());
    let third = strata(
        &[
            "build",
            "--context",
            &ctx,
            "--insecure-registry",
            &registry,
            "--work-dir",
            &work,
            "--build-arg",
            &base,
            "--cache",
            "--cache-repo",
            &cache_repo,
            "--destination",
            &tls_dest,
            "--registry-certificate",
            &cert,
        ],
        &[("DOCKER_CONFIG", cfg.to_str().expect("utf8"))],
    );
    assert!(third.ok, "{}", third.stderr);
    assert_eq!(hits(&third.stderr), 3, "{}", third.stderr);
    assert!(third.stderr.contains("pulled sha256:"), "{}", third.stderr);
    let creds = format!("{}:{}", c.env.user, c.env.pass);
    let cert_dir = c.env.registry_ca.parent().expect("ca dir").to_str().expect("utf8").to_string();
    let pushed = pull_and_unpack(&tls_dest, &["--src-creds", &creds, "--src-cert-dir", &cert_dir]);
    assert_eq!(listing(&pushed.rootfs), listing(&reference.rootfs));
}

/// What a cache mount holds changes with every run and is not in the key (as in BuildKit), so
/// a RUN using one still hits; a bind mount from a stage is keyed by that stage's key (so a
/// change there misses), before the mount is prepared (so a hit unpacks nothing).
#[test]
fn cache_mounts_do_not_break_hits_and_stage_binds_follow_the_stage() {
    let test = "cache_mounts_do_not_break_hits_and_stage_binds_follow_the_stage";
    let Some(env) = test_env(test) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::fs::write(
        ctx.join("Dockerfile"),
        "ARG BASE\nFROM ${BASE} AS tools\nARG TOOL=1\nRUN echo \"tool $TOOL\" > /tool\n\
         FROM ${BASE}\n\
         RUN --mount=type=cache,target=/c sh -c 'date +%N >> /c/log; cat /proc/sys/kernel/random/uuid > /id'\n\
         RUN --mount=type=bind,from=tools,source=/tool,target=/t cat /t > /seen && cat /proc/sys/kernel/random/uuid > /id2\n",
    )
    .expect("Dockerfile");
    let base = format!("BASE={}", env.base_busybox);
    let (ctx, work) = (ctx.display().to_string(), dir.path().join("work").display().to_string());
    let mut n = 0;
    let mut build = |tool: &str| {
        n += 1;
        let layout = dir.path().join(format!("layout-{n}"));
        let tool_arg = format!("TOOL={tool}");
        let layout_arg = layout.display().to_string();
        let run = strata(
            &[
                "build",
                "--context",
                &ctx,
                "--insecure-registry",
                &env.registry_http,
                "--work-dir",
                &work,
                "--build-arg",
                &base,
                "--build-arg",
                &tool_arg,
                "--no-push",
                "--cache",
                "--oci-layout-path",
                &layout_arg,
            ],
            &[],
        );
        assert!(run.ok, "{}", run.stderr);
        let image = unpack_layout(&layout, "latest");
        let read = |p: &str| std::fs::read_to_string(image.rootfs.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        (hits(&run.stderr), read("id"), read("id2"), read("seen"), run.stderr.contains("unpacking"))
    };
    let first = build("1");
    assert_eq!(first.0, 0);
    let again = build("1");
    assert_eq!(again.0, 3, "both stages' RUNs hit, the one with a cache mount too");
    assert!(!again.4, "no stage is unpacked, not even the one the bind mount reads");
    assert_eq!((&again.1, &again.2), (&first.1, &first.2));
    let changed = build("2");
    assert_eq!(changed.0, 1, "only the cache-mount RUN hits: the tools stage changed, and the RUN binding it");
    assert_eq!(changed.1, first.1);
    assert_ne!(changed.2, first.2);
    assert_eq!(changed.3, "tool 2\n");
}

/// An entry whose layer the registry no longer has (collected, or deleted) is a miss with a
/// warning, never a failed build: the layer is fetched lazily, after the step is passed, so the
/// lookup makes sure it is there.
#[test]
fn an_entry_whose_layer_is_gone_is_a_miss() {
    let test = "an_entry_whose_layer_is_gone_is_a_miss";
    let Some(env) = test_env(test) else { return };
    let unique =
        format!("{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() % 1_000_000_000));
    let repo = format!("e2e/cache-gone-{unique}");
    let cache_repo = format!("{}/{repo}", env.registry_http);
    let mut c = Case::new(env);
    let first = c.build("pod-1", &["--cache-repo", &cache_repo]);
    assert_eq!(hits(&first.stderr), 0, "{}", first.stderr);
    let tags: serde_json::Value =
        serde_json::from_str(&must(std::process::Command::new("skopeo").args(["list-tags", "--tls-verify=false"]).arg(format!("docker://{cache_repo}"))))
            .expect("tags");
    for tag in tags["Tags"].as_array().expect("Tags") {
        let raw = must(
            std::process::Command::new("skopeo")
                .args(["inspect", "--raw", "--tls-verify=false"])
                .arg(format!("docker://{cache_repo}:{}", tag.as_str().expect("tag"))),
        );
        let manifest: serde_json::Value = serde_json::from_str(&raw).expect("manifest");
        for layer in manifest["layers"].as_array().expect("layers") {
            let url = format!("http://{}/v2/{repo}/blobs/{}", c.env.registry_http, layer["digest"].as_str().expect("digest"));
            must(std::process::Command::new("curl").args(["-fsS", "-X", "DELETE", &url]));
        }
    }
    let second = c.build("pod-2", &["--cache-repo", &cache_repo]);
    assert_eq!(hits(&second.stderr), 0, "{}", second.stderr);
    assert_eq!(second.stderr.matches("lacks its layer").count(), 3, "{}", second.stderr);
    assert_ne!(second.ids.0, first.ids.0, "the RUN ran again");
}

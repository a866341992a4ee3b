//! Plugin mode end to end: `strata` run with nothing but `PLUGIN_*` settings, as drone/Harness run
//! the kaniko-ecr "Build and Push to ECR" step. Real components: the project's plain and TLS
//! registries (scripts/registry-up.sh) and skopeo and umoci to read back what was pushed
//! (the ECR flows, against moto, are in e2e_harness_flows.rs).

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use strata_tests::plugin_step::*;
use strata_tests::*;

const DOCKERFILE: &str = "ARG BASE\nFROM $BASE\nARG GREETING=hello\nARG FROM_ENV=unset\nRUN echo \"$GREETING $FROM_ENV\" > /greeting\nRUN env > /run-env\n";

/// A scratch directory with `ctx/Dockerfile` and an empty docker config.
fn scratch() -> (tempfile::TempDir, PathBuf) {
    scratch_context(DOCKERFILE)
}

#[test]
fn plugin_pushes_expanded_tags_with_args_labels_base_credentials_and_outputs() {
    let Some(env) = test_env("plugin_pushes_expanded_tags_with_args_labels_base_credentials_and_outputs") else { return };
    let (dir, ctx) = scratch();
    let base = base_on_tls_registry(&env, "e2e-plugin/busybox");
    let repo = unique("e2e-plugin/app");
    let artifact = dir.path().join("out/artifact.json");
    let drone_output = dir.path().join("drone-output.env");
    let run = plugin(
        dir.path(),
        &[
            e("PLUGIN_REGISTRY", env.registry_http.clone()),
            e("PLUGIN_REPO", repo.clone()),
            e("PLUGIN_TAGS", "v1.4.2, latest"),
            e("PLUGIN_EXPAND_TAG", "true"),
            e("PLUGIN_INSECURE_REGISTRY", env.registry_http.clone()),
            e("PLUGIN_CONTEXT", ctx.display().to_string()),
            e("PLUGIN_DOCKERFILE", ctx.join("Dockerfile").display().to_string()),
            e("PLUGIN_BUILD_ARGS", format!("BASE={base},GREETING=bonjour")),
            e("PLUGIN_BUILD_ARGS_FROM_ENV", "FROM_ENV"),
            e("FROM_ENV", "from-the-step"),
            e("PLUGIN_CUSTOM_LABELS", "org.example.team=builders,tier=2"),
            e("PLUGIN_SNAPSHOT_MODE", "redo"),
            // Base image registry credentials (the TLS registry refuses anonymous pulls).
            e("PLUGIN_DOCKER_REGISTRY", env.registry_tls.clone()),
            e("PLUGIN_USERNAME", env.user.clone()),
            e("PLUGIN_PASSWORD", env.pass.clone()),
            e("PLUGIN_REGISTRY_CERTIFICATE", env.registry_ca.display().to_string()),
            e("PLUGIN_ARTIFACT_FILE", artifact.display().to_string()),
            e("DRONE_OUTPUT", drone_output.display().to_string()),
            // Exported for the AWS SDK, which must not hand them to RUN.
            e("PLUGIN_ACCESS_KEY", "AKIASTRATAPLUGIN"),
            e("PLUGIN_SECRET_KEY", PLUGIN_SECRET_KEY),
            // The layer cache, in PLUGIN_REGISTRY/cache-<repo>, entries valid for 6 hours.
            e("PLUGIN_ENABLE_CACHE", "true"),
            e("PLUGIN_CACHE_REPO", format!("cache-{repo}")),
            e("PLUGIN_CACHE_TTL", "6"),
            // Accepted, not honoured: one warning each, never an error.
            e("PLUGIN_IMAGE_FS_EXTRACT_RETRY", "3"),
        ],
    );
    assert!(run.ok, "plugin mode failed:\n{}", run.stderr);
    let digest = run.stdout.trim().to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "stdout should be the digest: {:?}", run.stdout);

    // Every expanded tag is in the registry, all the same manifest.
    let image = format!("{}/{repo}", env.registry_http);
    let plain = vec!["--tls-verify=false".to_string()];
    assert_eq!(tags_of(&image, &plain), sorted(&["1", "1.4", "1.4.2", "latest"]));
    for tag in ["1", "1.4", "1.4.2", "latest"] {
        let out = must(Command::new("skopeo").args(["inspect", "--tls-verify=false"]).arg(format!("docker://{image}:{tag}")));
        let v: Value = serde_json::from_str(&out).expect("inspect json");
        assert_eq!(v["Digest"], digest.as_str(), "tag {tag}");
    }
    // Labels and build args reached the image.
    let pulled = pull_and_unpack(&format!("{image}:1.4.2"), &["--src-tls-verify=false"]);
    let labels = &pulled.config["config"]["Labels"];
    assert_eq!(labels["org.example.team"], "builders");
    assert_eq!(labels["tier"], "2");
    let greeting = std::fs::read_to_string(pulled.rootfs.join("greeting")).expect("/greeting in the image");
    assert_eq!(greeting, "bonjour from-the-step\n");
    let run_env = std::fs::read_to_string(pulled.rootfs.join("run-env")).expect("/run-env in the image");
    for leaked in [PLUGIN_SECRET_KEY, "AWS_", "PLUGIN_", env.pass.as_str()] {
        assert!(!run_env.contains(leaked), "RUN saw {leaked:?}:\n{run_env}");
    }

    // DRONE_OUTPUT as godotenv writes it.
    assert_eq!(std::fs::read_to_string(&drone_output).expect("DRONE_OUTPUT written"), format!("digest=\"{digest}\"\n"));
    // The artifact file in drone-kaniko's docker/v1 format: PLUGIN_TAGS as given, REPO:TAG names.
    let a = read_json(&artifact);
    assert_eq!(a["kind"], "docker/v1");
    assert_eq!(a["data"]["registryType"], "ECR");
    assert_eq!(a["data"]["registryUrl"], env.registry_http.as_str());
    let images: Vec<(String, String)> = a["data"]["images"]
        .as_array()
        .expect("images array")
        .iter()
        .map(|i| (i["image"].as_str().unwrap_or_default().to_string(), i["digest"].as_str().unwrap_or_default().to_string()))
        .collect();
    assert_eq!(images, vec![(format!("{repo}:v1.4.2"), digest.clone()), (format!("{repo}:latest"), digest.clone())]);
    let text = std::fs::read_to_string(&artifact).unwrap_or_default();
    assert!(text.starts_with("{\n\t\"kind\": \"docker/v1\",\n\t\"data\": {"), "tab-indented like Go's MarshalIndent: {text}");

    // Each RUN left a cache entry in the cache repository, tagged by its key.
    let cache_tags = tags_of(&format!("{}/cache-{repo}", env.registry_http), &plain);
    assert!(!cache_tags.is_empty() && cache_tags.iter().all(|t| t.len() == 64), "cache entries: {cache_tags:?}");
    // One warning per unhonoured setting.
    assert_eq!(run.stderr.matches("PLUGIN_IMAGE_FS_EXTRACT_RETRY is accepted but ignored").count(), 1, "{}", run.stderr);
    assert_no_secret(&run, &[&env.pass, PLUGIN_SECRET_KEY]);
}

#[test]
fn plugin_reads_env_file_and_tags_file_and_fails_like_the_cli() {
    let Some(env) = test_env("plugin_reads_env_file_and_tags_file_and_fails_like_the_cli") else { return };
    let (dir, ctx) = scratch();
    let repo = unique("e2e-plugin/envfile");
    // Settings from PLUGIN_ENV_FILE (quoted values, comments); tags from drone's .tags file.
    let env_file = dir.path().join("plugin.env");
    std::fs::write(
        &env_file,
        format!(
            "# settings for the step\nPLUGIN_REGISTRY={}\nexport PLUGIN_REPO=\"{repo}\"\nPLUGIN_INSECURE=true\nPLUGIN_CONTEXT='{}'\nPLUGIN_DOCKERFILE={} # relative to the context otherwise\nPLUGIN_BUILD_ARGS=BASE={}\n",
            env.registry_http,
            ctx.display(),
            ctx.join("Dockerfile").display(),
            env.base_busybox
        ),
    )
    .expect("write env file");
    std::fs::write(dir.path().join(".tags"), "t1,t2\n").expect("write .tags");
    let digest_file = dir.path().join("digest");
    let run = plugin(
        dir.path(),
        &[
            e("PLUGIN_ENV_FILE", env_file.display().to_string()),
            e("PLUGIN_DIGEST_FILE", digest_file.display().to_string()),
            e("PLUGIN_IMAGE_NAME_TAG_WITH_DIGEST_FILE", dir.path().join("names").display().to_string()),
        ],
    );
    assert!(run.ok, "plugin mode failed:\n{}", run.stderr);
    let digest = run.stdout.trim();
    let image = format!("{}/{repo}", env.registry_http);
    assert_eq!(tags_of(&image, &["--tls-verify=false".to_string()]), sorted(&["t1", "t2"]));
    assert_eq!(std::fs::read_to_string(&digest_file).unwrap_or_default().trim(), digest);
    assert_eq!(std::fs::read_to_string(dir.path().join("names")).unwrap_or_default(), format!("{image}:t1@{digest}\n{image}:t2@{digest}\n"));

    // `strata plugin` is the explicit spelling; a wrong base-registry password fails with the
    // CLI's `error:` line and exit code 1, and the password appears nowhere.
    let wrong = "not-the-password-0451";
    let mut cmd_env = vec![
        e("PLUGIN_REGISTRY", env.registry_http.clone()),
        e("PLUGIN_REPO", unique("e2e-plugin/fails")),
        e("PLUGIN_INSECURE_REGISTRY", env.registry_http.clone()),
        e("PLUGIN_CONTEXT", ctx.display().to_string()),
        e("PLUGIN_DOCKERFILE", ctx.join("Dockerfile").display().to_string()),
        e("PLUGIN_BUILD_ARGS", format!("BASE={}", base_on_tls_registry(&env, "e2e-plugin/busybox"))),
        e("PLUGIN_DOCKER_REGISTRY", env.registry_tls.clone()),
        e("PLUGIN_USERNAME", env.user.clone()),
        e("PLUGIN_PASSWORD", wrong),
        e("PLUGIN_REGISTRY_CERTIFICATE", env.registry_ca.display().to_string()),
        e("PLUGIN_PUSH_RETRY", "0"),
    ];
    let failed = strata_in(dir.path(), &["plugin"], &cmd_env);
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    let last = failed.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "last stderr line should be the error: {}", failed.stderr);
    assert!(last.contains(&env.registry_tls), "the error names the registry: {last}");
    assert_no_secret(&failed, &[wrong]);

    // Missing repository: refused before anything runs.
    cmd_env.retain(|(k, _)| *k != "PLUGIN_REPO");
    let no_repo = plugin(dir.path(), &cmd_env);
    assert_eq!(no_repo.code, Some(1));
    assert!(no_repo.stderr.starts_with("error: PLUGIN_REPO is not set"), "{}", no_repo.stderr);
    // Without plugin settings and arguments, strata is the ordinary CLI (usage, exit 2).
    let bare = strata_in(dir.path(), &[], &[]);
    assert_eq!(bare.code, Some(2), "{}", bare.stderr);
    assert!(bare.stderr.contains("Usage: strata"), "{}", bare.stderr);
}

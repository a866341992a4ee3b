//! Plugin mode end to end: `strata` run with nothing but `PLUGIN_*` settings, as drone/Harness run
//! the kaniko-ecr "Build and Push to ECR" step. Real components: the project's plain and TLS
//! registries (scripts/registry-up.sh), skopeo and umoci to read back what was pushed, and
//! moto_server (STRATA_TEST_MOTO, or one started here) answering ECR and STS.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use strata_tests::*;

const ECR_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const SECRET_KEY: &str = "strata-plugin-test-secret-access-key";

const DOCKERFILE: &str = "ARG BASE\nFROM $BASE\nARG GREETING=hello\nARG FROM_ENV=unset\nRUN echo \"$GREETING $FROM_ENV\" > /greeting\nRUN env > /run-env\n";

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A scratch directory with `ctx/Dockerfile`, an empty docker config and a work dir.
fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir ctx");
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).expect("write Dockerfile");
    std::fs::create_dir_all(dir.path().join("docker-config")).expect("mkdir docker-config");
    (dir, ctx)
}

/// Runs `strata` with no arguments in `cwd`, with only `envs` among PLUGIN_*, AWS_*, DRONE_* and
/// DOCKER_* variables (the developer's own never leak in).
fn plugin(cwd: &Path, envs: &[(&str, String)]) -> Run {
    strata_in(cwd, &[], envs)
}

/// Runs `strata args...` in `cwd` with the environment `plugin` describes.
fn strata_in(cwd: &Path, args: &[&str], envs: &[(&str, String)]) -> Run {
    let mut cmd = Command::new(strata_bin());
    cmd.current_dir(cwd).args(args);
    for (k, _) in std::env::vars() {
        if ["PLUGIN_", "AWS_", "DRONE_", "DOCKER_"].iter().any(|p| k.starts_with(p)) {
            cmd.env_remove(k);
        }
    }
    cmd.env("DOCKER_CONFIG", cwd.join("docker-config"))
        .env("STRATA_WORK_DIR", cwd.join("work"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", cwd.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", cwd.join("no-aws-credentials"));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", strata_bin().display()));
    Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn e(k: &'static str, v: impl Into<String>) -> (&'static str, String) {
    (k, v.into())
}

fn assert_no_secret(run: &Run, secrets: &[&str]) {
    for s in secrets {
        for (name, text) in [("stderr", &run.stderr), ("stdout", &run.stdout)] {
            if let Some(line) = text.lines().find(|l| l.contains(s)) {
                panic!("secret {s:?} leaked into {name}: {}", &line[..line.len().min(300)]);
            }
        }
    }
}

fn skopeo_tls_args(env: &TestEnv) -> Vec<String> {
    let cert_dir = env.registry_ca.parent().map(|p| p.display().to_string()).unwrap_or_default();
    vec!["--creds".into(), format!("{}:{}", env.user, env.pass), "--cert-dir".into(), cert_dir]
}

/// The busybox base copied into the TLS registry, which only answers with credentials.
fn base_on_tls_registry(env: &TestEnv) -> String {
    let dest = format!("{}/e2e-plugin/busybox:base", env.registry_tls);
    let cert_dir = env.registry_ca.parent().map(|p| p.display().to_string()).unwrap_or_default();
    must(
        Command::new("skopeo")
            .args(["copy", "-q", "--src-tls-verify=false", "--dest-creds", &format!("{}:{}", env.user, env.pass), "--dest-cert-dir", &cert_dir])
            .arg(format!("docker://{}", env.base_busybox))
            .arg(format!("docker://{dest}")),
    );
    dest
}

fn tags_of(reference: &str, args: &[String]) -> Vec<String> {
    let out = must(Command::new("skopeo").args(["list-tags"]).args(args).arg(format!("docker://{reference}")));
    let v: Value = serde_json::from_str(&out).expect("list-tags json");
    let mut tags: Vec<String> = v["Tags"].as_array().map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect()).unwrap_or_default();
    tags.sort();
    tags
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn plugin_pushes_expanded_tags_with_args_labels_base_credentials_and_outputs() {
    let Some(env) = test_env("plugin_pushes_expanded_tags_with_args_labels_base_credentials_and_outputs") else { return };
    let (dir, ctx) = scratch();
    let base = base_on_tls_registry(&env);
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
            e("PLUGIN_SECRET_KEY", SECRET_KEY),
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
    for leaked in [SECRET_KEY, "AWS_", "PLUGIN_", env.pass.as_str()] {
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
    assert_no_secret(&run, &[&env.pass, SECRET_KEY]);
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
        e("PLUGIN_BUILD_ARGS", format!("BASE={}", base_on_tls_registry(&env))),
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

/// The moto of the test environment (STRATA_TEST_MOTO), or one started here.
fn moto(env: &TestEnv) -> Option<strata_test_support::Moto> {
    strata_test_support::moto(Some(&env.moto), &env.state)
}

/// Repository names moto's ECR holds (DescribeRepositories; moto does not check signatures).
fn ecr_repositories(moto: &str) -> Vec<String> {
    let out = must(Command::new("curl").args([
        "-sf",
        "-X",
        "POST",
        &format!("http://{moto}/"),
        "-H",
        "X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
        "-H",
        "Content-Type: application/x-amz-json-1.1",
        "-H",
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIASTRATAPLUGIN/20150101/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=0",
        "-d",
        "{}",
    ]));
    let v: Value = serde_json::from_str(&out).expect("DescribeRepositories json");
    v["repositories"].as_array().map(|a| a.iter().filter_map(|r| r["repositoryName"].as_str().map(str::to_string)).collect()).unwrap_or_default()
}

#[test]
fn plugin_pushes_to_ecr_through_moto_with_keys_an_assumed_role_and_oidc() {
    let Some(env) = test_env("plugin_pushes_to_ecr_through_moto_with_keys_an_assumed_role_and_oidc") else { return };
    let Some(moto) = moto(&env) else {
        strata_test_support::skip("plugin ECR test", "no moto_server at STRATA_TEST_MOTO and none installed (scripts/moto-up.sh installs it)");
        return;
    };
    assert_eq!((env.user.as_str(), env.pass.as_str()), ("AWS", "123456789012-auth-token"), "the TLS registry's htpasswd must hold moto's token");
    let (dir, ctx) = scratch();
    let repo = unique("plugin-ecr/app");
    let artifact = dir.path().join("artifact.json");
    let common = vec![
        e("PLUGIN_REGISTRY", ECR_HOST),
        e("PLUGIN_REPO", repo.clone()),
        e("PLUGIN_REGION", "us-east-1"),
        e("PLUGIN_ACCESS_KEY", "AKIASTRATAPLUGIN"),
        e("PLUGIN_SECRET_KEY", SECRET_KEY),
        e("PLUGIN_CREATE_REPOSITORY", "true"),
        e("PLUGIN_CONTEXT", ctx.display().to_string()),
        e("PLUGIN_DOCKERFILE", ctx.join("Dockerfile").display().to_string()),
        e("PLUGIN_BUILD_ARGS", format!("BASE={}", env.base_busybox)),
        e("PLUGIN_INSECURE_REGISTRY", env.registry_http.clone()),
        e("PLUGIN_ARTIFACT_FILE", artifact.display().to_string()),
        e("PLUGIN_REPRODUCIBLE", "true"),
        e("AWS_ENDPOINT_URL", format!("http://{}", moto.addr)),
        // The ECR host is served by the TLS registry: the `--registry-map` and CA equivalents.
        e("STRATA_REGISTRY_MAP", format!("{ECR_HOST}={}", env.registry_tls)),
        e("STRATA_REGISTRY_CERTIFICATE", env.registry_ca.display().to_string()),
    ];
    let secrets = [SECRET_KEY, "123456789012-auth-token", "QVdTOjEyMzQ1Njc4OTAxMi1hdXRoLXRva2Vu"];

    // 1. Access keys; the repository does not exist yet and is created.
    assert!(!ecr_repositories(&moto.addr).contains(&repo));
    let mut envs = common.clone();
    envs.push(e("PLUGIN_TAGS", "build-1"));
    envs.push(e("PLUGIN_VERBOSITY", "debug"));
    let run = plugin(dir.path(), &envs);
    assert!(run.ok, "ECR push failed:\n{}", run.stderr);
    let digest = run.stdout.trim().to_string();
    assert!(ecr_repositories(&moto.addr).contains(&repo), "CreateRepository was not called");
    assert!(run.stderr.contains("ECR: got an authorization token"), "the ECR token path was not taken:\n{}", run.stderr);
    assert_no_secret(&run, &secrets);
    let behind = format!("{}/{repo}", env.registry_tls);
    let out = must(Command::new("skopeo").arg("inspect").args(skopeo_tls_args(&env)).arg(format!("docker://{behind}:build-1")));
    let v: Value = serde_json::from_str(&out).expect("inspect json");
    assert_eq!(v["Digest"], digest.as_str());
    let a = read_json(&artifact);
    assert_eq!(a["data"]["registryType"], "ECR");
    assert_eq!(a["data"]["registryUrl"], ECR_HOST);
    assert_eq!(a["data"]["images"][0]["image"], format!("{repo}:build-1").as_str());
    assert_eq!(a["data"]["images"][0]["digest"], digest.as_str());

    // 2. Through an assumed role with an external id (Harness's PLUGIN_USER_ROLE_ARN spelling is
    // the fallback for PLUGIN_ASSUME_ROLE); the repository exists now, which is not an error.
    let mut envs = common.clone();
    envs.push(e("PLUGIN_TAGS", "role-1,role-2"));
    envs.push(e("PLUGIN_USER_ROLE_ARN", "arn:aws:iam::123456789012:role/strata-plugin-push"));
    envs.push(e("PLUGIN_EXTERNAL_ID", "strata-external-id"));
    envs.push(e("PLUGIN_VERBOSITY", "debug"));
    let run = plugin(dir.path(), &envs);
    assert!(run.ok, "ECR push through an assumed role failed:\n{}", run.stderr);
    assert!(run.stderr.contains("ECR: using an assumed role"), "the role was not assumed:\n{}", run.stderr);
    assert_no_secret(&run, &secrets);
    assert_eq!(tags_of(&behind, &skopeo_tls_args(&env)), sorted(&["build-1", "role-1", "role-2"]));
    // Same inputs and PLUGIN_REPRODUCIBLE: the same image.
    assert_eq!(run.stdout.trim(), digest);

    // 3. OIDC: the role is assumed with a web-identity token (AssumeRoleWithWebIdentity), no keys.
    let oidc_token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzdHJhdGEtcGx1Z2luIn0.c3RyYXRhLW9pZGMtc2lnbmF0dXJl";
    let mut envs: Vec<(&str, String)> = common.iter().filter(|(k, _)| !k.ends_with("_KEY")).cloned().collect();
    envs.push(e("PLUGIN_TAGS", "oidc-1"));
    envs.push(e("PLUGIN_ASSUME_ROLE", "arn:aws:iam::123456789012:role/strata-plugin-oidc"));
    envs.push(e("PLUGIN_OIDC_TOKEN_ID", oidc_token));
    envs.push(e("PLUGIN_VERBOSITY", "debug"));
    let run = plugin(dir.path(), &envs);
    assert!(run.ok, "ECR push with an OIDC token failed:\n{}", run.stderr);
    assert!(run.stderr.contains("ECR: got an authorization token"), "{}", run.stderr);
    assert_no_secret(&run, &[oidc_token, "123456789012-auth-token"]);
    assert_eq!(tags_of(&behind, &skopeo_tls_args(&env)), sorted(&["build-1", "oidc-1", "role-1", "role-2"]));
}

/// One ECR API call to moto (which does not check signatures), its JSON answer.
fn ecr_call(moto: &str, action: &str, body: &Value) -> Option<Value> {
    let out = Command::new("curl")
        .args(["-sf", "-X", "POST", &format!("http://{moto}/"), "-H"])
        .arg(format!("X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.{action}"))
        .args(["-H", "Content-Type: application/x-amz-json-1.1", "-H"])
        .arg("Authorization: AWS4-HMAC-SHA256 Credential=AKIASTRATAPLUGIN/20150101/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=0")
        .arg("-d")
        .arg(body.to_string())
        .output()
        .expect("run curl");
    out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("ECR answer is JSON"))
}

/// drone-ecr's and kaniko-ecr's repository settings, with nothing pushed: the repository is
/// created scanning on push with immutable tags, and the lifecycle and repository policies from
/// the files are applied; a policy file that is not JSON is refused naming the setting.
#[test]
fn plugin_applies_ecr_repository_settings_before_the_build() {
    let Some(env) = test_env("plugin_applies_ecr_repository_settings_before_the_build") else { return };
    let Some(moto) = moto(&env) else {
        strata_test_support::skip("plugin ECR settings test", "no moto_server at STRATA_TEST_MOTO and none installed (scripts/moto-up.sh installs it)");
        return;
    };
    let (dir, ctx) = scratch();
    let repo = unique("plugin-ecr/settings");
    let lifecycle = r#"{"rules":[{"rulePriority":1,"description":"expire old","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":50},"action":{"type":"expire"}}]}"#;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage"]}]}"#;
    std::fs::write(dir.path().join("lifecycle.json"), lifecycle).expect("write lifecycle policy");
    std::fs::write(dir.path().join("policy.json"), policy).expect("write repository policy");
    std::fs::write(dir.path().join("bad.json"), "not json").expect("write bad policy");
    let envs = |lifecycle_file: &str| {
        vec![
            e("PLUGIN_REGISTRY", ECR_HOST),
            e("PLUGIN_REPO", repo.clone()),
            e("PLUGIN_REGION", "us-east-1"),
            e("PLUGIN_ACCESS_KEY", "AKIASTRATAPLUGIN"),
            e("PLUGIN_SECRET_KEY", SECRET_KEY),
            e("PLUGIN_NO_PUSH", "true"),
            e("ECR_CREATE_REPOSITORY", "true"),
            e("PLUGIN_SCAN_ON_PUSH", "true"),
            e("PLUGIN_TAG_MUTABILITY", "IMMUTABLE"),
            e("PLUGIN_LIFECYCLE_POLICY", dir.path().join(lifecycle_file).display().to_string()),
            e("PLUGIN_REPOSITORY_POLICY", dir.path().join("policy.json").display().to_string()),
            e("PLUGIN_CONTEXT", ctx.display().to_string()),
            e("PLUGIN_DOCKERFILE", ctx.join("Dockerfile").display().to_string()),
            e("PLUGIN_BUILD_ARGS", format!("BASE={}", env.base_busybox)),
            e("PLUGIN_INSECURE_REGISTRY", env.registry_http.clone()),
            e("AWS_ENDPOINT_URL", format!("http://{}", moto.addr)),
            e("STRATA_REGISTRY_MAP", format!("{ECR_HOST}={}", env.registry_tls)),
            e("STRATA_REGISTRY_CERTIFICATE", env.registry_ca.display().to_string()),
        ]
    };
    let run = plugin(dir.path(), &envs("bad.json"));
    assert!(!run.ok && run.stderr.contains("PLUGIN_LIFECYCLE_POLICY") && run.stderr.contains("not a JSON document"), "{}", run.stderr);
    assert!(!ecr_repositories(&moto.addr).contains(&repo), "nothing is created before the settings are read");

    let run = plugin(dir.path(), &envs("lifecycle.json"));
    assert!(run.ok, "build with repository settings failed:\n{}", run.stderr);
    assert!(!run.stderr.contains("accepted but ignored"), "{}", run.stderr);
    let described = ecr_call(&moto.addr, "DescribeRepositories", &serde_json::json!({ "repositoryNames": [repo] })).expect("the repository exists");
    let r = &described["repositories"][0];
    assert_eq!(r["imageTagMutability"], "IMMUTABLE", "{r}");
    assert_eq!(r["imageScanningConfiguration"]["scanOnPush"], true, "{r}");
    let got = ecr_call(&moto.addr, "GetLifecyclePolicy", &serde_json::json!({ "repositoryName": repo })).expect("a lifecycle policy is set");
    let got: Value = serde_json::from_str(got["lifecyclePolicyText"].as_str().expect("policy text")).expect("JSON policy");
    assert_eq!(got, serde_json::from_str::<Value>(lifecycle).expect("lifecycle JSON"));
    let got = ecr_call(&moto.addr, "GetRepositoryPolicy", &serde_json::json!({ "repositoryName": repo })).expect("a repository policy is set");
    let got: Value = serde_json::from_str(got["policyText"].as_str().expect("policy text")).expect("JSON policy");
    assert_eq!(got, serde_json::from_str::<Value>(policy).expect("policy JSON"));
    let images = ecr_call(&moto.addr, "ListImages", &serde_json::json!({ "repositoryName": repo })).expect("ListImages");
    assert_eq!(images["imageIds"], serde_json::json!([]), "PLUGIN_NO_PUSH: nothing pushed");
}

/// The cache repository strata creates on ECR gets an expiry lifecycle policy matching the cache
/// TTL, so that it cannot fill ECR's 10,000 images per repository.
#[test]
fn plugin_cache_repository_created_on_ecr_expires_its_entries() {
    let Some(env) = test_env("plugin_cache_repository_created_on_ecr_expires_its_entries") else { return };
    let Some(moto) = moto(&env) else {
        strata_test_support::skip("plugin ECR cache test", "no moto_server at STRATA_TEST_MOTO and none installed (scripts/moto-up.sh installs it)");
        return;
    };
    let (dir, ctx) = scratch();
    let repo = unique("plugin-ecr/cached");
    let cache_repo = format!("{repo}-cache");
    let envs = vec![
        e("PLUGIN_REGISTRY", ECR_HOST),
        e("PLUGIN_REPO", repo.clone()),
        e("PLUGIN_TAGS", "1"),
        e("PLUGIN_REGION", "us-east-1"),
        e("PLUGIN_ACCESS_KEY", "AKIASTRATAPLUGIN"),
        e("PLUGIN_SECRET_KEY", SECRET_KEY),
        e("PLUGIN_CREATE_REPOSITORY", "true"),
        e("PLUGIN_ENABLE_CACHE", "true"),
        e("PLUGIN_CACHE_REPO", cache_repo.clone()),
        e("PLUGIN_CACHE_TTL", "72h"),
        e("PLUGIN_CONTEXT", ctx.display().to_string()),
        e("PLUGIN_DOCKERFILE", ctx.join("Dockerfile").display().to_string()),
        e("PLUGIN_BUILD_ARGS", format!("BASE={}", env.base_busybox)),
        e("PLUGIN_INSECURE_REGISTRY", env.registry_http.clone()),
        e("AWS_ENDPOINT_URL", format!("http://{}", moto.addr)),
        e("STRATA_REGISTRY_MAP", format!("{ECR_HOST}={}", env.registry_tls)),
        e("STRATA_REGISTRY_CERTIFICATE", env.registry_ca.display().to_string()),
    ];
    let run = plugin(dir.path(), &envs);
    assert!(run.ok, "cached ECR build failed:\n{}", run.stderr);
    assert!(ecr_repositories(&moto.addr).contains(&cache_repo), "the cache repository was created:\n{}", run.stderr);
    let got =
        ecr_call(&moto.addr, "GetLifecyclePolicy", &serde_json::json!({ "repositoryName": cache_repo })).expect("the cache repository has a lifecycle policy");
    let policy: Value = serde_json::from_str(got["lifecyclePolicyText"].as_str().expect("text")).expect("JSON");
    let rule = &policy["rules"][0];
    assert_eq!((rule["selection"]["countType"].as_str(), rule["selection"]["countNumber"].as_u64()), (Some("sinceImagePushed"), Some(3)), "{policy}");
    assert!(
        ecr_call(&moto.addr, "GetLifecyclePolicy", &serde_json::json!({ "repositoryName": repo })).is_none(),
        "the image repository gets no policy of strata's"
    );
}

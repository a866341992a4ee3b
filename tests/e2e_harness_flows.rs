//! Harness's documented "Build and Push to ECR" flows, one test each, run as Harness runs the
//! kaniko-ecr plugin: `strata` with nothing but `PLUGIN_*` settings. Real components: moto_server
//! answering ECR and STS (GetAuthorizationToken, CreateRepository, AssumeRole, policies), the
//! project's TLS registry serving the ECR name behind it, the plain registry holding the bases,
//! and skopeo reading back what was pushed or written.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use strata_tests::plugin_step::*;
use strata_tests::*;

const DOCKERFILE: &str = "ARG BASE\nFROM $BASE\nARG GREETING=hello\nRUN echo \"$GREETING\" > /greeting\nRUN ls / > /listing\n";

/// A scratch directory with `ctx/Dockerfile` and an empty docker config.
fn scratch() -> (tempfile::TempDir, PathBuf) {
    scratch_context(DOCKERFILE)
}

/// Another step's directory (a new pod: its own work dir and docker config, no Dockerfile).
fn another_pod() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("docker-config")).expect("mkdir docker-config");
    dir
}

/// moto, or a skip naming what is missing.
fn moto_or_skip(env: &TestEnv, what: &str) -> Option<strata_test_support::Moto> {
    let m = moto(env);
    if m.is_none() {
        strata_test_support::skip(what, "no moto_server at STRATA_TEST_MOTO and none installed (scripts/moto-up.sh installs it)");
    }
    m
}

fn images_in(moto: &str, repo: &str) -> Option<Vec<String>> {
    let v = ecr_call(moto, "ListImages", &serde_json::json!({ "repositoryName": repo }))?;
    let mut tags: Vec<String> =
        v["imageIds"].as_array().map(|a| a.iter().filter_map(|i| i["imageTag"].as_str().map(str::to_string)).collect()).unwrap_or_default();
    tags.sort();
    Some(tags)
}

/// Build and push with access keys (the repository created), then through a cross-account
/// role with an external id, then with OIDC (a web-identity token and a role, no keys).
#[test]
fn build_and_push_with_keys_a_cross_account_role_and_oidc() {
    let Some(env) = test_env("build_and_push_with_keys_a_cross_account_role_and_oidc") else { return };
    let Some(moto) = moto_or_skip(&env, "Harness build and push") else { return };
    assert_eq!((env.user.as_str(), env.pass.as_str()), ("AWS", "123456789012-auth-token"), "the TLS registry's htpasswd must hold moto's token");
    let (dir, ctx) = scratch();
    let repo = unique("harness-ecr/app");
    let artifact = dir.path().join("artifact.json");
    let step = Step::ecr(&env, &moto.addr, &ctx, &repo).set("PLUGIN_ARTIFACT_FILE", artifact.display().to_string()).set("PLUGIN_REPRODUCIBLE", "true");

    // 1. Access keys; the repository does not exist yet and is created.
    assert!(!ecr_repositories(&moto.addr).contains(&repo));
    let run = step.clone().set("PLUGIN_TAGS", "build-1").set("PLUGIN_VERBOSITY", "debug").run(dir.path());
    assert!(run.ok, "ECR push failed:\n{}", run.stderr);
    let digest = run.stdout.trim().to_string();
    assert!(ecr_repositories(&moto.addr).contains(&repo), "CreateRepository was not called");
    assert!(run.stderr.contains("ECR: got an authorization token"), "the ECR token path was not taken:\n{}", run.stderr);
    assert_no_secret(&run, &ECR_SECRETS);
    let behind = format!("{}/{repo}", env.registry_tls);
    assert_eq!(tls_digest(&env, &format!("{behind}:build-1")), digest);
    let a = read_json(&artifact);
    assert_eq!(a["data"]["registryType"], "ECR");
    assert_eq!(a["data"]["registryUrl"], ECR_HOST);
    assert_eq!(a["data"]["images"][0]["image"], format!("{repo}:build-1").as_str());
    assert_eq!(a["data"]["images"][0]["digest"], digest.as_str());

    // 2. Cross-account: an assumed role with an external id (Harness's PLUGIN_USER_ROLE_ARN and
    // PLUGIN_USER_ROLE_EXTERNAL_ID spellings); the repository exists now, which is not an error.
    let run = step
        .clone()
        .set("PLUGIN_TAGS", "role-1,role-2")
        .set("PLUGIN_USER_ROLE_ARN", "arn:aws:iam::123456789012:role/strata-plugin-push")
        .set("PLUGIN_USER_ROLE_EXTERNAL_ID", "strata-external-id")
        .set("PLUGIN_VERBOSITY", "debug")
        .run(dir.path());
    assert!(run.ok, "ECR push through an assumed role failed:\n{}", run.stderr);
    assert!(run.stderr.contains("ECR: using an assumed role"), "the role was not assumed:\n{}", run.stderr);
    assert_no_secret(&run, &ECR_SECRETS);
    assert_eq!(tags_of(&behind, &skopeo_tls_args(&env)), sorted(&["build-1", "role-1", "role-2"]));
    // Same inputs and PLUGIN_REPRODUCIBLE: the same image.
    assert_eq!(run.stdout.trim(), digest);

    // 3. OIDC: the role is assumed with a web-identity token (AssumeRoleWithWebIdentity), no keys.
    let oidc_token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzdHJhdGEtcGx1Z2luIn0.c3RyYXRhLW9pZGMtc2lnbmF0dXJl";
    let run = step
        .clone()
        .without("PLUGIN_ACCESS_KEY")
        .without("PLUGIN_SECRET_KEY")
        .set("PLUGIN_TAGS", "oidc-1")
        .set("PLUGIN_ASSUME_ROLE", "arn:aws:iam::123456789012:role/strata-plugin-oidc")
        .set("PLUGIN_OIDC_TOKEN_ID", oidc_token)
        .set("PLUGIN_VERBOSITY", "debug")
        .run(dir.path());
    assert!(run.ok, "ECR push with an OIDC token failed:\n{}", run.stderr);
    assert!(run.stderr.contains("ECR: got an authorization token"), "{}", run.stderr);
    assert_no_secret(&run, &[oidc_token, "123456789012-auth-token"]);
    assert_eq!(tags_of(&behind, &skopeo_tls_args(&env)), sorted(&["build-1", "oidc-1", "role-1", "role-2"]));
}

/// Build → scan → push: step 1 builds with PLUGIN_NO_PUSH and writes the tarball (a scanner
/// reads it), step 2, in another pod with no Dockerfile, pushes that tarball to ECR with
/// PLUGIN_PUSH_ONLY: the image pushed is the one built and scanned, digest for digest.
#[test]
fn build_to_a_tarball_then_push_only_to_ecr() {
    let Some(env) = test_env("build_to_a_tarball_then_push_only_to_ecr") else { return };
    let Some(moto) = moto_or_skip(&env, "Harness build then push-only") else { return };
    let (dir, ctx) = scratch();
    let repo = unique("harness-ecr/scanned");
    let tar = dir.path().join("out/image.tar");
    std::fs::create_dir_all(dir.path().join("out")).expect("mkdir out");
    let step = Step::ecr(&env, &moto.addr, &ctx, &repo).set("PLUGIN_TAGS", "1.0,latest");

    let built = step
        .clone()
        .set("PLUGIN_NO_PUSH", "true")
        .set("PLUGIN_TAR_PATH", tar.display().to_string())
        .set("PLUGIN_IMAGE_NAME_TAG_WITH_DIGEST_FILE", dir.path().join("built-names").display().to_string())
        .run(dir.path());
    assert!(built.ok, "build step failed:\n{}", built.stderr);
    let digest = built.stdout.trim().to_string();
    assert!(digest.starts_with("sha256:"), "{}", built.stdout);
    assert_eq!(images_in(&moto.addr, &repo), None, "PLUGIN_NO_PUSH: no repository, nothing pushed");
    let names = std::fs::read_to_string(dir.path().join("built-names")).unwrap_or_default();
    assert_eq!(names, format!("{ECR_HOST}/{repo}:1.0@{digest}\n{ECR_HOST}/{repo}:latest@{digest}\n"), "the tarball's names");

    // The scan: a scanner reads the tarball as docker-archive (skopeo stands in for it).
    let inspected = must(Command::new("skopeo").arg("inspect").arg(format!("docker-archive:{}", tar.display())));
    let v: Value = serde_json::from_str(&inspected).expect("inspect json");
    assert!(v["Layers"].as_array().is_some_and(|l| !l.is_empty()), "{inspected}");

    // Step 2 in another pod: the tarball is all it has.
    let pod = another_pod();
    let artifact = pod.path().join("artifact.json");
    let drone_output = pod.path().join("drone-output.env");
    let pushed = step
        .clone()
        .without("PLUGIN_CONTEXT")
        .without("PLUGIN_DOCKERFILE")
        .without("PLUGIN_BUILD_ARGS")
        .set("PLUGIN_PUSH_ONLY", "true")
        .set("PLUGIN_SOURCE_TAR_PATH", tar.display().to_string())
        .set("PLUGIN_ARTIFACT_FILE", artifact.display().to_string())
        .set("DRONE_OUTPUT", drone_output.display().to_string())
        .run(pod.path());
    assert!(pushed.ok, "push-only step failed:\n{}", pushed.stderr);
    assert_eq!(pushed.stdout.trim(), digest, "push-only pushes the image built and scanned");
    assert_eq!(images_in(&moto.addr, &repo).map(|v| v.is_empty()), Some(true), "moto created the repository (its images live in the registry behind)");
    let behind = format!("{}/{repo}", env.registry_tls);
    assert_eq!(tags_of(&behind, &skopeo_tls_args(&env)), sorted(&["1.0", "latest"]));
    assert_eq!(tls_digest(&env, &format!("{behind}:1.0")), digest);
    assert_eq!(read_json(&artifact)["data"]["images"][1]["digest"], digest.as_str());
    assert_eq!(std::fs::read_to_string(&drone_output).unwrap_or_default(), format!("digest=\"{digest}\"\n"));
    assert_no_secret(&pushed, &ECR_SECRETS);

    // A damaged tarball is refused before anything is pushed.
    let bad = pod.path().join("bad.tar");
    std::fs::write(&bad, b"not a tarball").expect("write bad tarball");
    let refused = step
        .clone()
        .without("PLUGIN_CONTEXT")
        .set("PLUGIN_PUSH_ONLY", "true")
        .set("PLUGIN_SOURCE_TAR_PATH", bad.display().to_string())
        .set("PLUGIN_TAGS", "damaged")
        .run(pod.path());
    assert!(!refused.ok && refused.stderr.contains("bad.tar"), "{}", refused.stderr);
    assert!(!tags_of(&behind, &skopeo_tls_args(&env)).contains(&"damaged".to_string()));
}

/// The base-image connector: the base lives in a registry that wants credentials (the TLS
/// registry), given as PLUGIN_BASE_IMAGE_REGISTRY/USERNAME/PASSWORD, while the image goes to ECR
/// with the AWS connector's keys. Without the connector the pull is refused naming the registry.
#[test]
fn base_image_connector_credentials_pull_the_base() {
    let Some(env) = test_env("base_image_connector_credentials_pull_the_base") else { return };
    let Some(moto) = moto_or_skip(&env, "Harness base-image connector") else { return };
    let (dir, ctx) = scratch();
    let repo = unique("harness-ecr/connector");
    let base = base_on_tls_registry(&env, &unique("harness-base/busybox"));
    let wrong = "not-the-password-7731";
    let step = Step::ecr(&env, &moto.addr, &ctx, &repo).set("PLUGIN_BUILD_ARGS", format!("BASE={base}")).set("PLUGIN_TAGS", "1");

    let anonymous = step.clone().set("PLUGIN_PUSH_RETRY", "0").run(dir.path());
    assert!(!anonymous.ok, "the base registry refuses anonymous pulls:\n{}", anonymous.stderr);
    assert!(anonymous.stderr.contains(&env.registry_tls), "the error names the base registry:\n{}", anonymous.stderr);

    let connector = |password: &str| {
        step.clone()
            .set("PLUGIN_BASE_IMAGE_REGISTRY", format!("https://{}", env.registry_tls))
            .set("PLUGIN_BASE_IMAGE_USERNAME", env.user.clone())
            .set("PLUGIN_BASE_IMAGE_PASSWORD", password)
            .set("PLUGIN_PUSH_RETRY", "0")
    };
    let refused = connector(wrong).run(dir.path());
    assert!(!refused.ok && refused.stderr.contains(&env.registry_tls), "{}", refused.stderr);
    assert_no_secret(&refused, &[wrong]);

    let run = connector(&env.pass).run(dir.path());
    assert!(run.ok, "build with the base-image connector failed:\n{}", run.stderr);
    let behind = format!("{}/{repo}:1", env.registry_tls);
    assert_eq!(tls_digest(&env, &behind), run.stdout.trim());
    let cert_dir = env.registry_ca.parent().map(|p| p.display().to_string()).unwrap_or_default();
    let creds = format!("{}:{}", env.user, env.pass);
    let pulled = pull_and_unpack(&behind, &["--src-creds", &creds, "--src-cert-dir", &cert_dir]);
    assert_eq!(std::fs::read_to_string(pulled.rootfs.join("greeting")).unwrap_or_default(), "hello\n");
    assert_no_secret(&run, &ECR_SECRETS);

    // drone-docker's PLUGIN_CONFIG: the same credentials as a docker config.json's content.
    let auth = must(Command::new("sh").arg("-c").arg(format!("printf %s '{creds}' | base64 -w0")));
    let config = format!(r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#, env.registry_tls, auth.trim());
    let run = step.clone().set("PLUGIN_CONFIG", config).set("PLUGIN_TAGS", "2").run(dir.path());
    assert!(run.ok, "build with PLUGIN_CONFIG failed:\n{}", run.stderr);
    assert_eq!(tls_digest(&env, &format!("{}/{repo}:2", env.registry_tls)), run.stdout.trim());
    assert_no_secret(&run, &[auth.trim()]);
}

/// The remote layer cache in ECR: the first run creates the cache repository (with an expiry
/// lifecycle policy matching the TTL, so it cannot fill ECR's 10,000 images per repository) and
/// fills it; the next run, in a new pod with an empty work dir, takes every RUN from it and
/// pushes the same image.
#[test]
fn remote_cache_in_ecr_serves_the_next_run() {
    let Some(env) = test_env("remote_cache_in_ecr_serves_the_next_run") else { return };
    let Some(moto) = moto_or_skip(&env, "Harness remote cache") else { return };
    let (dir, ctx) = scratch();
    let repo = unique("harness-ecr/cached");
    let cache_repo = format!("{repo}-cache");
    let step = Step::ecr(&env, &moto.addr, &ctx, &repo)
        .set("PLUGIN_TAGS", "1")
        .set("PLUGIN_ENABLE_CACHE", "true")
        .set("PLUGIN_CACHE_REPO", cache_repo.clone())
        .set("PLUGIN_CACHE_TTL", "72h")
        .set("PLUGIN_REPRODUCIBLE", "true");
    let first = step.run(dir.path());
    assert!(first.ok, "cached ECR build failed:\n{}", first.stderr);
    assert_eq!(first.stderr.matches("cache hit").count(), 0, "{}", first.stderr);
    assert!(ecr_repositories(&moto.addr).contains(&cache_repo), "the cache repository was created:\n{}", first.stderr);
    let got =
        ecr_call(&moto.addr, "GetLifecyclePolicy", &serde_json::json!({ "repositoryName": cache_repo })).expect("the cache repository has a lifecycle policy");
    let policy: Value = serde_json::from_str(got["lifecyclePolicyText"].as_str().expect("text")).expect("JSON");
    let rule = &policy["rules"][0];
    assert_eq!((rule["selection"]["countType"].as_str(), rule["selection"]["countNumber"].as_u64()), (Some("sinceImagePushed"), Some(3)), "{policy}");
    assert!(
        ecr_call(&moto.addr, "GetLifecyclePolicy", &serde_json::json!({ "repositoryName": repo })).is_none(),
        "the image repository gets no policy of strata's"
    );
    let entries = tags_of(&format!("{}/{cache_repo}", env.registry_tls), &skopeo_tls_args(&env));
    assert_eq!(entries.len(), 2, "one cache entry per RUN: {entries:?}");

    // The next pipeline run: a new pod, an empty work dir; both RUNs come from ECR.
    let pod = another_pod();
    let second = step.run(pod.path());
    assert!(second.ok, "second cached build failed:\n{}", second.stderr);
    assert_eq!(second.stderr.matches(&format!("cache hit ({ECR_HOST}/{cache_repo})")).count(), 2, "{}", second.stderr);
    assert_eq!(second.stdout.trim(), first.stdout.trim(), "cached layers, same image");
    assert_eq!(tags_of(&format!("{}/{cache_repo}", env.registry_tls), &skopeo_tls_args(&env)), entries, "hits push no new entries");
    assert_no_secret(&second, &ECR_SECRETS);
}

/// drone-ecr's and kaniko-ecr's repository settings, with nothing pushed: the repository is
/// created scanning on push with immutable tags, and the lifecycle and repository policies from
/// the files are applied; a policy file that is not JSON is refused naming the setting.
#[test]
fn repository_settings_are_applied_before_the_build() {
    let Some(env) = test_env("repository_settings_are_applied_before_the_build") else { return };
    let Some(moto) = moto_or_skip(&env, "Harness ECR repository settings") else { return };
    let (dir, ctx) = scratch();
    let repo = unique("harness-ecr/settings");
    let lifecycle = r#"{"rules":[{"rulePriority":1,"description":"expire old","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":50},"action":{"type":"expire"}}]}"#;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage"]}]}"#;
    std::fs::write(dir.path().join("lifecycle.json"), lifecycle).expect("write lifecycle policy");
    std::fs::write(dir.path().join("policy.json"), policy).expect("write repository policy");
    std::fs::write(dir.path().join("bad.json"), "not json").expect("write bad policy");
    let step = |lifecycle_file: &str| {
        Step::ecr(&env, &moto.addr, &ctx, &repo)
            .without("PLUGIN_CREATE_REPOSITORY")
            .set("PLUGIN_NO_PUSH", "true")
            .set("ECR_CREATE_REPOSITORY", "true")
            .set("PLUGIN_SCAN_ON_PUSH", "true")
            .set("PLUGIN_TAG_MUTABILITY", "IMMUTABLE")
            .set("PLUGIN_LIFECYCLE_POLICY", dir.path().join(lifecycle_file).display().to_string())
            .set("PLUGIN_REPOSITORY_POLICY", dir.path().join("policy.json").display().to_string())
    };
    let run = step("bad.json").run(dir.path());
    assert!(!run.ok && run.stderr.contains("PLUGIN_LIFECYCLE_POLICY") && run.stderr.contains("not a JSON document"), "{}", run.stderr);
    assert!(!ecr_repositories(&moto.addr).contains(&repo), "nothing is created before the settings are read");

    let run = step("lifecycle.json").run(dir.path());
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
    assert_eq!(images_in(&moto.addr, &repo), Some(Vec::new()), "PLUGIN_NO_PUSH: nothing pushed");
}

/// kaniko-ecr's pull-only settings: PLUGIN_INSECURE_PULL reaches a plain-HTTP base registry
/// and PLUGIN_SKIP_TLS_VERIFY_PULL a base registry whose certificate strata cannot verify,
/// while the push to ECR keeps verified HTTPS (without the ECR host's CA it is refused).
#[test]
fn pull_only_tls_settings_leave_the_push_verified() {
    let Some(env) = test_env("pull_only_tls_settings_leave_the_push_verified") else { return };
    let Some(moto) = moto_or_skip(&env, "Harness pull-only TLS settings") else { return };
    let (dir, ctx) = scratch();
    let repo = unique("harness-ecr/pull");
    // The plain registry under a name that is no loopback address: no automatic plain-HTTP
    // fallback, and not listed as insecure.
    let plain_name = "plain-base.strata.test:5000";
    let plain_base = env.base_busybox.replacen(&env.registry_http, plain_name, 1);
    let maps = format!("{ECR_HOST}={},{plain_name}={}", env.registry_tls, env.registry_http);
    let step = |base: &str| {
        Step::ecr(&env, &moto.addr, &ctx, &repo)
            .without("PLUGIN_INSECURE_REGISTRY")
            .set("STRATA_REGISTRY_MAP", maps.clone())
            .set("PLUGIN_BUILD_ARGS", format!("BASE={base}"))
            .set("PLUGIN_PUSH_RETRY", "0")
    };
    let refused = step(&plain_base).set("PLUGIN_TAGS", "no").run(dir.path());
    assert!(!refused.ok && refused.stderr.contains(plain_name), "HTTPS to a plain-HTTP registry fails:\n{}", refused.stderr);
    let run = step(&plain_base).set("PLUGIN_TAGS", "insecure-pull").set("PLUGIN_INSECURE_PULL", "true").run(dir.path());
    assert!(run.ok, "PLUGIN_INSECURE_PULL build failed:\n{}", run.stderr);
    assert_eq!(tls_digest(&env, &format!("{}/{repo}:insecure-pull", env.registry_tls)), run.stdout.trim());
    // The push side is untouched: an ECR name mapped to the plain registry is still HTTPS.
    let plain_ecr = "123456789012.dkr.ecr.us-west-1.amazonaws.com";
    let plain_push = step(&plain_base)
        .set("PLUGIN_REGISTRY", plain_ecr)
        .set("STRATA_REGISTRY_MAP", format!("{maps},{plain_ecr}={}", env.registry_http))
        .set("PLUGIN_INSECURE_PULL", "true")
        .set("PLUGIN_TAGS", "plain-push")
        .run(dir.path());
    assert!(!plain_push.ok && plain_push.stderr.contains(plain_ecr), "a push never goes plain with PLUGIN_INSECURE_PULL:\n{}", plain_push.stderr);

    // A TLS base registry whose CA strata is not given: refused, unless pulls skip verification.
    let tls_base = base_on_tls_registry(&env, &unique("harness-base/tls"));
    let tls_step = |skip: bool| {
        let s = step(&tls_base)
            .set("STRATA_REGISTRY_CERTIFICATE", format!("{ECR_HOST}={}", env.registry_ca.display()))
            .set("PLUGIN_BASE_IMAGE_REGISTRY", env.registry_tls.clone())
            .set("PLUGIN_BASE_IMAGE_USERNAME", env.user.clone())
            .set("PLUGIN_BASE_IMAGE_PASSWORD", env.pass.clone());
        if skip { s.set("PLUGIN_SKIP_TLS_VERIFY_PULL", "true") } else { s }
    };
    let unverified = tls_step(false).set("PLUGIN_TAGS", "no").run(dir.path());
    assert!(!unverified.ok && unverified.stderr.contains(&env.registry_tls), "an unverifiable base registry is refused:\n{}", unverified.stderr);
    let run = tls_step(true).set("PLUGIN_TAGS", "skip-verify-pull").run(dir.path());
    assert!(run.ok, "PLUGIN_SKIP_TLS_VERIFY_PULL build failed:\n{}", run.stderr);
    assert_eq!(tls_digest(&env, &format!("{}/{repo}:skip-verify-pull", env.registry_tls)), run.stdout.trim());
    // Without the ECR host's CA the push is refused: only pulls skip verification.
    let run = tls_step(true).set("STRATA_REGISTRY_CERTIFICATE", "").set("PLUGIN_TAGS", "unverified-push").run(dir.path());
    assert!(!run.ok && run.stderr.contains(ECR_HOST), "the push still verifies ECR's certificate:\n{}", run.stderr);
    assert_no_secret(&run, &ECR_SECRETS);
}

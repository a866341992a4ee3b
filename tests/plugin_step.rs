//! A drone/Harness plugin step for the end-to-end tests: `strata` run with nothing but the
//! `PLUGIN_*` (and `AWS_*`, `DRONE_*`, `DOCKER_*`) settings a test gives it, the developer's own
//! never leaking in; and what those tests read back (tags, ECR's own answers from moto).

use crate::{Run, TestEnv, must, strata_bin};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The ECR registry name the tests push to: moto answers its API, the TLS registry serves it.
pub const ECR_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
/// The secret access key the ECR steps use; it must never be printed.
pub const PLUGIN_SECRET_KEY: &str = "strata-plugin-test-secret-access-key";
/// The access key id of the ECR steps.
pub const PLUGIN_ACCESS_KEY: &str = "AKIASTRATAPLUGIN";
/// moto's registry password (its token decodes to `AWS:<this>`) and the token itself.
pub const ECR_SECRETS: [&str; 3] = [PLUGIN_SECRET_KEY, "123456789012-auth-token", "QVdTOjEyMzQ1Njc4OTAxMi1hdXRoLXRva2Vu"];

/// A name unique to this run (the test registry's storage outlives runs).
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A scratch directory holding `ctx/Dockerfile` (with `dockerfile` in it) and an empty
/// `docker-config`; returns it and the context's path.
pub fn scratch_context(dockerfile: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir ctx");
    std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("write Dockerfile");
    std::fs::create_dir_all(dir.path().join("docker-config")).expect("mkdir docker-config");
    (dir, ctx)
}

/// One setting.
pub fn e(k: &'static str, v: impl Into<String>) -> (&'static str, String) {
    (k, v.into())
}

/// A plugin step's settings, changed one at a time by the flows that share them.
#[derive(Debug, Clone, Default)]
pub struct Step {
    /// The settings in order; a later `set` of a key replaces it.
    pub envs: Vec<(&'static str, String)>,
}

impl Step {
    /// A step with these settings.
    pub fn new(envs: Vec<(&'static str, String)>) -> Self {
        Step { envs }
    }

    /// Harness's "Build and Push to ECR" step for `repo` in [`ECR_HOST`] with access keys,
    /// building `ctx` FROM the busybox base: ECR's API is moto at `moto`, the registry behind the
    /// name the TLS registry (the `--registry-map` and CA equivalents).
    pub fn ecr(env: &TestEnv, moto: &str, ctx: &Path, repo: &str) -> Self {
        Step::new(vec![
            e("PLUGIN_REGISTRY", ECR_HOST),
            e("PLUGIN_REPO", repo),
            e("PLUGIN_REGION", "us-east-1"),
            e("PLUGIN_ACCESS_KEY", PLUGIN_ACCESS_KEY),
            e("PLUGIN_SECRET_KEY", PLUGIN_SECRET_KEY),
            e("PLUGIN_CREATE_REPOSITORY", "true"),
            e("PLUGIN_CONTEXT", ctx.display().to_string()),
            e("PLUGIN_DOCKERFILE", ctx.join("Dockerfile").display().to_string()),
            e("PLUGIN_BUILD_ARGS", format!("BASE={}", env.base_busybox)),
            e("PLUGIN_INSECURE_REGISTRY", env.registry_http.clone()),
            e("AWS_ENDPOINT_URL", format!("http://{moto}")),
            e("STRATA_REGISTRY_MAP", format!("{ECR_HOST}={}", env.registry_tls)),
            e("STRATA_REGISTRY_CERTIFICATE", env.registry_ca.display().to_string()),
        ])
    }

    /// This step with `key` set to `value` (replacing an earlier value).
    pub fn set(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.envs.retain(|(k, _)| *k != key);
        self.envs.push((key, value.into()));
        self
    }

    /// This step without `key`.
    pub fn without(mut self, key: &str) -> Self {
        self.envs.retain(|(k, _)| *k != key);
        self
    }

    /// Runs the step in `cwd` (`strata` with no arguments).
    pub fn run(&self, cwd: &Path) -> Run {
        plugin(cwd, &self.envs)
    }
}

/// Runs `strata` with no arguments in `cwd`, with only `envs` among PLUGIN_*, AWS_*, DRONE_* and
/// DOCKER_* variables (the developer's own never leak in).
pub fn plugin(cwd: &Path, envs: &[(&str, String)]) -> Run {
    strata_in(cwd, &[], envs)
}

/// Runs `strata args...` in `cwd` with the environment [`plugin`] describes: the docker config
/// in `cwd/docker-config`, the work dir in `cwd/work`, no AWS configuration files or IMDS.
pub fn strata_in(cwd: &Path, args: &[&str], envs: &[(&str, String)]) -> Run {
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

/// Fails the test when any of `secrets` is in the run's output.
pub fn assert_no_secret(run: &Run, secrets: &[&str]) {
    for s in secrets {
        for (name, text) in [("stderr", &run.stderr), ("stdout", &run.stdout)] {
            if let Some(line) = text.lines().find(|l| l.contains(s)) {
                panic!("secret {s:?} leaked into {name}: {}", &line[..line.len().min(300)]);
            }
        }
    }
}

/// skopeo's arguments for the TLS registry (credentials and its CA).
pub fn skopeo_tls_args(env: &TestEnv) -> Vec<String> {
    let cert_dir = env.registry_ca.parent().map(|p| p.display().to_string()).unwrap_or_default();
    vec!["--creds".into(), format!("{}:{}", env.user, env.pass), "--cert-dir".into(), cert_dir]
}

/// The busybox base copied into the TLS registry (which only answers with credentials) as
/// `<repo>:base`; returns its reference.
pub fn base_on_tls_registry(env: &TestEnv, repo: &str) -> String {
    let dest = format!("{}/{repo}:base", env.registry_tls);
    let cert_dir = env.registry_ca.parent().map(|p| p.display().to_string()).unwrap_or_default();
    must(
        Command::new("skopeo")
            .args(["copy", "-q", "--src-tls-verify=false", "--dest-creds", &format!("{}:{}", env.user, env.pass), "--dest-cert-dir", &cert_dir])
            .arg(format!("docker://{}", env.base_busybox))
            .arg(format!("docker://{dest}")),
    );
    dest
}

/// The sorted tags of `reference` (skopeo list-tags with `args`).
pub fn tags_of(reference: &str, args: &[String]) -> Vec<String> {
    let out = must(Command::new("skopeo").args(["list-tags"]).args(args).arg(format!("docker://{reference}")));
    let v: Value = serde_json::from_str(&out).expect("list-tags json");
    let mut tags: Vec<String> = v["Tags"].as_array().map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect()).unwrap_or_default();
    tags.sort();
    tags
}

/// `v` as sorted owned strings.
pub fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The digest skopeo reads for `reference` in the TLS registry.
pub fn tls_digest(env: &TestEnv, reference: &str) -> String {
    let out = must(Command::new("skopeo").arg("inspect").args(skopeo_tls_args(env)).arg(format!("docker://{reference}")));
    let v: Value = serde_json::from_str(&out).expect("inspect json");
    v["Digest"].as_str().unwrap_or_default().to_string()
}

/// The moto of the test environment (STRATA_TEST_MOTO), or one started here.
pub fn moto(env: &TestEnv) -> Option<strata_test_support::Moto> {
    strata_test_support::moto(Some(&env.moto), &env.state)
}

/// One ECR API call to moto (which does not check signatures), its JSON answer; None when moto
/// answers with an error (the thing asked for does not exist).
pub fn ecr_call(moto: &str, action: &str, body: &Value) -> Option<Value> {
    let out = Command::new("curl")
        .args(["-sf", "-X", "POST", &format!("http://{moto}/"), "-H"])
        .arg(format!("X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.{action}"))
        .args(["-H", "Content-Type: application/x-amz-json-1.1", "-H"])
        .arg(format!("Authorization: AWS4-HMAC-SHA256 Credential={PLUGIN_ACCESS_KEY}/20150101/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=0"))
        .arg("-d")
        .arg(body.to_string())
        .output()
        .expect("run curl");
    out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("ECR answer is JSON"))
}

/// Repository names moto's ECR holds (DescribeRepositories).
pub fn ecr_repositories(moto: &str) -> Vec<String> {
    let v = ecr_call(moto, "DescribeRepositories", &serde_json::json!({})).expect("DescribeRepositories");
    v["repositories"].as_array().map(|a| a.iter().filter_map(|r| r["repositoryName"].as_str().map(str::to_string)).collect()).unwrap_or_default()
}

//! The drone/Harness `kaniko-ecr` plugin ("Build and Push to ECR"): `PLUGIN_*` settings in, the
//! plugin's outputs out.
//!
//! `strata` with no arguments (when `PLUGIN_REPO`, `PLUGIN_REGISTRY` or `PLUGIN_ENV_FILE` is set)
//! or `strata plugin` runs in this mode. The settings are turned into the `strata build` flags the
//! plugin would hand kaniko's executor, so both paths share `options::build_options`; what flags
//! cannot carry (credentials, ECR role, per-registry CAs) is set on the options afterwards.

mod catalog;
mod dotenv;
pub(crate) mod outputs;
mod tags;

use crate::args::{Cli, Command};
use crate::{events, options};
use anyhow::{Context as _, bail};
use clap::Parser as _;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use strata_registry::Credentials;

/// Where kaniko-ecr tells kaniko to write the digest; used when `/kaniko` exists.
const KANIKO_DIGEST_FILE: &str = "/kaniko/digest-file";

/// Whether this invocation is plugin mode: `strata plugin`, or `strata` alone with plugin settings.
pub fn requested(argv: &[OsString]) -> bool {
    match argv.get(1) {
        Some(a) => a == "plugin",
        None => ["PLUGIN_REPO", "PLUGIN_REGISTRY", "PLUGIN_ENV_FILE"].iter().any(|k| var(k).is_some()),
    }
}

/// Whether the build may use rootless isolation (`STRATA_ISOLATION` unset, `auto` or `rootless`),
/// so that a non-root user must first enter a user namespace.
pub fn may_run_rootless() -> bool {
    matches!(var("STRATA_ISOLATION").as_deref(), None | Some("auto" | "rootless"))
}

/// A non-empty environment variable.
fn var(key: &str) -> Option<String> {
    raw_var(key).filter(|v| !v.is_empty())
}

/// A variable as set, empty or not: the process environment, or in unit tests the settings the
/// test gives (so that reading the settings is a function of them alone).
fn raw_var(key: &str) -> Option<String> {
    #[cfg(test)]
    if let Some(v) = tests::TEST_ENV.with(|e| e.borrow().as_ref().map(|m| m.get(key).cloned())) {
        return v;
    }
    std::env::var(key).ok()
}

/// The first of `keys` that is set (urfave/cli's `EnvVar: "A,B"`).
fn first(keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| var(k))
}

/// A boolean setting as Go's strconv.ParseBool reads it; unset or empty is false.
fn flag(key: &str) -> anyhow::Result<bool> {
    var(key).map_or(Ok(false), |v| strata_dockerfile::go_parse::parse_bool(&v).with_context(|| format!("{key}={v:?}: expected true or false")))
}

/// A number setting; unset or empty is None.
fn number(key: &str) -> anyhow::Result<Option<i64>> {
    var(key).map(|v| v.trim().parse::<i64>().with_context(|| format!("{key}={v:?}: expected a whole number"))).transpose()
}

/// A comma-separated list setting (drone joins YAML lists with commas).
fn list(key: &str) -> Vec<String> {
    split_list(&var(key).unwrap_or_default(), &[','])
}

fn split_list(v: &str, seps: &[char]) -> Vec<String> {
    v.split(seps).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Everything read from the environment, before logging starts.
pub struct Plan {
    /// `strata build` arguments equivalent to the settings.
    argv: Vec<String>,
    /// Settings accepted but not honoured: one warning each once logging is up.
    warnings: Vec<String>,
    /// Set after `build_options`.
    tweaks: RegistryTweaks,
    verbosity: String,
    log_format: String,
    registry: String,
    repo: String,
    /// `PLUGIN_TAGS` as given (the artifact file lists these, not the expanded ones).
    tags: Vec<String>,
    destinations: Vec<String>,
    artifact_file: Option<PathBuf>,
    drone_output: Option<PathBuf>,
    /// `PLUGIN_TAR_PATH`, reported as `IMAGE_TAR_PATH` in `DRONE_OUTPUT` as drone-kaniko does.
    tar_path: Option<String>,
    name_digest_file: Option<PathBuf>,
    name_tag_digest_file: Option<PathBuf>,
    /// The OIDC token written for the AWS SDK; removed after the build.
    oidc_token_file: Option<PathBuf>,
    /// The names the digest files list: the destinations, or the tarball's tags when nothing
    /// is pushed (as kaniko writes them).
    named: Vec<String>,
    /// drone-ecr's PLUGIN_SKIP_PUSH_IF_TAG_EXISTS: a tag that exists ends the step at once.
    skip_if_tag_exists: bool,
    /// The artifact file's `registryType` (drone-docker's PLUGIN_REGISTRY_TYPE; `ECR` by default).
    registry_type: String,
}

// Hand-written so that no credential can reach a log through `{:?}`.
impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan").field("registry", &self.registry).field("repo", &self.repo).field("destinations", &self.destinations).finish_non_exhaustive()
    }
}

/// Settings applied to `ClientOptions` directly.
#[derive(Debug, Default)]
struct RegistryTweaks {
    base_credentials: Option<(String, Credentials)>,
    region: Option<String>,
    assume_role: Option<String>,
    external_id: Option<String>,
    create_repository: bool,
    scan_on_push: bool,
    tags_mutable: Option<bool>,
    /// Lifecycle and repository policy texts, applied before the build.
    lifecycle_policy: Option<String>,
    repository_policy: Option<String>,
    ca_certs: Vec<PathBuf>,
    registry_ca_certs: Vec<(String, PathBuf)>,
    client_certs: Vec<(String, PathBuf, PathBuf)>,
    work_dir: Option<PathBuf>,
    /// PLUGIN_CONFIG's docker config.json content, written to a private file by `prepare`.
    docker_config: Option<DockerConfigText>,
    /// Where `prepare` wrote it: the docker config dir for the build.
    docker_config_dir: Option<PathBuf>,
}

/// A docker config.json's text: registry credentials, never printed.
struct DockerConfigText(String);

impl std::fmt::Debug for DockerConfigText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DockerConfigText(<redacted>)")
    }
}

/// Loads `PLUGIN_ENV_FILE`, reads every setting and exports the AWS keys for the SDK.
///
/// Call before any other thread exists: it changes the process environment.
pub fn prepare(argv: &[OsString]) -> anyhow::Result<Plan> {
    if argv.len() > 2 {
        bail!("`strata plugin` takes no arguments: it reads the kaniko-ecr settings from PLUGIN_* environment variables");
    }
    if let Some(file) = var("PLUGIN_ENV_FILE") {
        for (k, v) in dotenv::read(Path::new(&file))? {
            // SAFETY: called from main before the async runtime or any other thread starts, so
            // nothing reads the environment concurrently (setenv is not thread-safe).
            unsafe { std::env::set_var(k, v) };
        }
    }
    let mut plan = read_settings()?;
    if let Some(text) = plan.tweaks.docker_config.take() {
        plan.tweaks.docker_config_dir = Some(private_docker_config(&text.0)?);
    }
    let exports = aws_exports(plan.tweaks.assume_role.as_deref());
    if let Some(token) = &exports.oidc_token {
        let file = oidc_token_file(token)?;
        // SAFETY: called from main before the async runtime or any other thread starts, so
        // nothing reads the environment concurrently (setenv is not thread-safe).
        unsafe { std::env::set_var("AWS_WEB_IDENTITY_TOKEN_FILE", &file) };
        plan.oidc_token_file = Some(file);
        // The role is the web identity's now, not one to assume with other credentials.
        plan.tweaks.assume_role = None;
        plan.tweaks.external_id = None;
    }
    for (k, v) in &exports.set {
        // SAFETY: as above, still single-threaded. The AWS SDK's default chain reads these.
        unsafe { std::env::set_var(k, v) };
    }
    for k in &exports.remove {
        // SAFETY: as above, still single-threaded.
        unsafe { std::env::remove_var(k) };
    }
    plan.warnings.extend(exports.warning);
    Ok(plan)
}

fn read_settings() -> anyhow::Result<Plan> {
    let mut warnings = Vec::new();

    let mut registry = var("PLUGIN_REGISTRY").unwrap_or_default().trim_end_matches('/').to_string();
    let mut repo = var("PLUGIN_REPO").unwrap_or_default();
    // drone-ecr: PLUGIN_REPO may be the full name (`<acct>.dkr.ecr.<region>.amazonaws.com/app`),
    // with or without PLUGIN_REGISTRY.
    if !registry.is_empty() {
        if let Some(rest) = repo.strip_prefix(&format!("{registry}/")) {
            repo = rest.to_string();
        }
    } else if let Some((host, rest)) = repo.split_once('/')
        && (host.contains('.') || host.contains(':') || host == "localhost")
    {
        (registry, repo) = (host.to_string(), rest.to_string());
    }
    // PLUGIN_DRY_RUN is drone-docker's and buildah-ecr's spelling of "build only".
    let no_push = flag("PLUGIN_NO_PUSH")? || flag("PLUGIN_DRY_RUN")?;
    if !no_push && repo.is_empty() {
        bail!("PLUGIN_REPO is not set: name the repository to push to (or set PLUGIN_NO_PUSH=true)");
    }
    if !no_push && registry.is_empty() {
        bail!("PLUGIN_REGISTRY is not set: name the registry to push to, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com");
    }

    // Tags: PLUGIN_TAGS (drone-ecr: also PLUGIN_TAG), else the .tags file drone's tag plugins
    // write, else latest.
    let mut given_tags = match raw_var("PLUGIN_TAGS").or_else(|| raw_var("PLUGIN_TAG")) {
        Some(v) => split_list(&v, &[',']),
        None => match std::fs::read_to_string(".tags") {
            Ok(text) => split_list(&text, &[',', '\n']),
            Err(_) => Vec::new(),
        },
    };
    if given_tags.is_empty() {
        given_tags.push("latest".into());
    }
    let expand_tag = flag("PLUGIN_EXPAND_TAG")?;
    // drone-docker reads PLUGIN_DEFAULT_TAGS first, as the same setting.
    let auto_tag = flag("PLUGIN_DEFAULT_TAGS")? || flag("PLUGIN_AUTO_TAG")?;
    if auto_tag && expand_tag {
        bail!("PLUGIN_AUTO_TAG conflicts with PLUGIN_EXPAND_TAG: set only one");
    }
    let tags = if auto_tag {
        let commit_ref = var("DRONE_COMMIT_REF").or_else(|| var("DRONE_TAG").map(|t| format!("refs/tags/{t}"))).unwrap_or_default();
        tags::auto(
            &given_tags,
            &commit_ref,
            &var("DRONE_REPO_BRANCH").unwrap_or_default(),
            &first(&["PLUGIN_AUTO_TAG_SUFFIX", "PLUGIN_DEFAULT_SUFFIX"]).unwrap_or_default(),
        )?
    } else {
        given_tags.iter().flat_map(|t| tags::expand(t, expand_tag)).collect()
    };
    let image = if registry.is_empty() { repo.clone() } else { format!("{registry}/{repo}") };
    let skip_if_tag_exists = !no_push && flag("PLUGIN_SKIP_PUSH_IF_TAG_EXISTS")?;
    let destinations: Vec<String> = if no_push { Vec::new() } else { tags.iter().map(|t| format!("{image}:{t}")).collect() };

    // Harness's build → scan → push: a second step pushes the tarball the first one wrote.
    let push_only = flag("PLUGIN_PUSH_ONLY")?;
    if push_only && no_push {
        bail!("PLUGIN_PUSH_ONLY=true with PLUGIN_NO_PUSH (or PLUGIN_DRY_RUN): a push-only step that pushes nothing; set only one");
    }
    // A last stage of a multi-architecture pipeline: join the per-architecture tags (or full
    // references) into one index under PLUGIN_TAGS.
    let join: Vec<String> = list("PLUGIN_MANIFEST_SOURCES");
    if !join.is_empty() && (push_only || no_push) {
        bail!("PLUGIN_MANIFEST_SOURCES joins pushed images into an index: it cannot go with PLUGIN_PUSH_ONLY or PLUGIN_NO_PUSH");
    }
    let command = if !join.is_empty() {
        "manifest"
    } else if push_only {
        "push"
    } else {
        "build"
    };
    let mut argv: Vec<String> = vec!["strata".into(), command.into()];
    let mut push = |flag: &str, value: String| {
        argv.push(flag.to_string());
        argv.push(value);
    };
    let context = PathBuf::from(var("PLUGIN_CONTEXT").unwrap_or_else(|| ".".into()));
    let context = match var("PLUGIN_CONTEXT_SUB_PATH") {
        Some(sub) => context.join(sub),
        None => context,
    };
    for source in &join {
        push("--image", if source.contains('/') { source.clone() } else { format!("{image}:{source}") });
    }
    push("--context", context.to_string_lossy().into_owned());
    push("--dockerfile", var("PLUGIN_DOCKERFILE").unwrap_or_else(|| "Dockerfile".into()));
    for d in &destinations {
        push("--destination", d.clone());
    }
    let build_args =
        if flag("PLUGIN_MULTIPLE_BUILD_ARGS")? { split_list(&var("PLUGIN_BUILD_ARGS_NEW").unwrap_or_default(), &[';']) } else { list("PLUGIN_BUILD_ARGS") };
    for a in build_args {
        push("--build-arg", a);
    }
    for name in list("PLUGIN_BUILD_ARGS_FROM_ENV") {
        if let Some(v) = raw_var(&name) {
            push("--build-arg", format!("{name}={v}"));
        }
    }
    for l in auto_labels()? {
        push("--label", l);
    }
    for l in list("PLUGIN_CUSTOM_LABELS") {
        push("--label", l);
    }
    // drone-docker's daemon mirror (PLUGIN_MIRROR, DOCKER_PLUGIN_MIRROR) is a registry mirror too.
    let daemon_mirror = first(&["PLUGIN_MIRROR", "DOCKER_PLUGIN_MIRROR"]).into_iter();
    for m in list("PLUGIN_REGISTRY_MIRRORS").into_iter().chain(list("PLUGIN_REGISTRY_MIRROR")).chain(daemon_mirror) {
        push("--registry-mirror", m);
    }
    for m in list("STRATA_REGISTRY_MAP") {
        push("--registry-map", m);
    }
    for r in list("PLUGIN_INSECURE_REGISTRY") {
        push("--insecure-registry", r);
    }
    if let Some(t) = var("PLUGIN_TARGET") {
        push("--target", t);
    }
    if let Some(m) = var("PLUGIN_SNAPSHOT_MODE") {
        if !matches!(m.as_str(), "full" | "redo" | "time") {
            bail!("PLUGIN_SNAPSHOT_MODE={m:?}: use full, redo or time");
        }
        push("--snapshot-mode", m);
    }
    if let Some(m) = var("PLUGIN_MAX_LAYER_SIZE") {
        if let Err(e) = strata_snapshot::LayerSizeLimit::parse(&m) {
            bail!("PLUGIN_MAX_LAYER_SIZE: {e}");
        }
        push("--max-layer-size", m);
    }
    if let Some(p) = var("PLUGIN_OCI_LAYOUT_PATH") {
        push("--oci-layout-path", p);
    }
    // PLUGIN_DESTINATION_TAR_PATH: the same setting's spelling in kaniko-ecr and Harness's docs.
    let tar_path = if push_only { None } else { first(&["PLUGIN_TAR_PATH", "PLUGIN_DESTINATION_TAR_PATH"]) };
    if push_only {
        let source = var("PLUGIN_SOURCE_TAR_PATH")
            .ok_or_else(|| anyhow::anyhow!("PLUGIN_PUSH_ONLY=true needs PLUGIN_SOURCE_TAR_PATH: the tarball an earlier step wrote with PLUGIN_TAR_PATH"))?;
        push("--source-tar", source);
    }
    let named: Vec<String> = if !destinations.is_empty() {
        destinations.clone()
    } else if tar_path.is_some() && !repo.is_empty() {
        tags.iter().map(|t| format!("{image}:{t}")).collect()
    } else {
        Vec::new()
    };
    if let Some(p) = &tar_path {
        push("--tar-path", p.clone());
        // Nothing is pushed with PLUGIN_NO_PUSH, but the tarball still loads as REPO:TAG.
        if no_push && !repo.is_empty() {
            for t in &tags {
                push("--destination", format!("{image}:{t}"));
            }
        }
    }
    let digest_file = var("PLUGIN_DIGEST_FILE").or_else(|| Path::new("/kaniko").is_dir().then(|| KANIKO_DIGEST_FILE.to_string()));
    if let Some(f) = digest_file {
        push("--digest-file", f);
    }
    // One retry count covers pulls and pushes: the larger of the two settings.
    let retries = number("PLUGIN_PUSH_RETRY")?.into_iter().chain(number("PLUGIN_IMAGE_DOWNLOAD_RETRY")?).max();
    if let Some(n) = retries {
        push("--push-retry", n.clamp(0, i64::from(u32::MAX)).to_string());
    }
    if let Some(c) = var("PLUGIN_COMPRESSION") {
        if !matches!(c.as_str(), "gzip" | "zstd" | "none") {
            bail!("PLUGIN_COMPRESSION={c:?}: use gzip, zstd or none");
        }
        push("--compression", c);
    }
    if let Some(n) = number("PLUGIN_COMPRESSION_LEVEL")? {
        push("--compression-level", n.to_string());
    }
    // Harness's build secrets: `ID=ENV_VAR` and `ID=PATH` lists, onto `--secret`.
    for (key, kind) in [("PLUGIN_SECRETS_FROM_ENV", "env"), ("PLUGIN_SECRETS_FROM_FILE", "src")] {
        for item in list(key) {
            let Some((id, source)) = item.split_once('=').filter(|(i, s)| !i.is_empty() && !s.is_empty()) else {
                bail!("{key}: {item:?} is not ID={}", if kind == "env" { "ENV_VAR" } else { "PATH" });
            };
            push("--secret", format!("id={id},{kind}={source}"));
        }
    }
    // drone-docker's single `--secret` spec (`id=ID,src=PATH` or `id=ID,env=VAR`).
    if let Some(spec) = var("PLUGIN_SECRET") {
        push("--secret", spec);
    }
    if let Some(i) = var("STRATA_ISOLATION") {
        push("--isolation", i);
    }
    if let Some(p) = first(&["PLUGIN_PLATFORM", "PLUGIN_CUSTOM_PLATFORM"]) {
        push("--custom-platform", p);
    }
    // kaniko-ecr: the cache repository lives in PLUGIN_REGISTRY; the TTL is in hours.
    // drone-docker's PLUGIN_NO_CACHE wins over the cache settings; buildah's PLUGIN_LAYERS is the
    // local layer cache (in the work dir).
    let no_cache = flag("PLUGIN_NO_CACHE")?;
    let cache_on = !no_cache && (flag("PLUGIN_ENABLE_CACHE")? || flag("PLUGIN_LAYERS")?);
    if !no_cache && flag("PLUGIN_ENABLE_CACHE")? {
        if let Some(repo) = var("PLUGIN_CACHE_REPO") {
            let registry = registry.trim_end_matches('/');
            let full = if registry.is_empty() || repo.starts_with(&format!("{registry}/")) { repo } else { format!("{registry}/{repo}") };
            push("--cache-repo", full);
        }
        if let Some(ttl) = var("PLUGIN_CACHE_TTL").filter(|t| t != "0") {
            push("--cache-ttl", ttl);
        }
    }
    // Paths of the build container kept out of the image with `--isolation none`.
    for p in var("PLUGIN_IGNORE_PATH").iter().flat_map(|v| v.split(',')).map(str::trim).filter(|p| !p.is_empty()) {
        push("--ignore-path", p.to_string());
    }
    if flag("PLUGIN_IGNORE_VAR_RUN")? {
        push("--ignore-path", "/var/run".to_string());
    }
    if no_push {
        argv.push("--no-push".into());
    }
    if cache_on {
        argv.push("--cache".into());
    }
    // drone-docker's PLUGIN_SQUASH: the build's changes in one layer, as --single-snapshot.
    if flag("PLUGIN_SQUASH")? && !flag("PLUGIN_SINGLE_SNAPSHOT")? {
        argv.push("--single-snapshot".into());
    }
    for (key, flag_name) in [
        ("PLUGIN_INSECURE", "--insecure"),
        ("PLUGIN_SKIP_TLS_VERIFY", "--skip-tls-verify"),
        ("PLUGIN_INSECURE_PULL", "--insecure-pull"),
        ("PLUGIN_SKIP_TLS_VERIFY_PULL", "--skip-tls-verify-pull"),
        ("PLUGIN_REPRODUCIBLE", "--reproducible"),
        ("PLUGIN_SINGLE_SNAPSHOT", "--single-snapshot"),
        // kaniko's --force (build outside a container) is strata's --force for --isolation none.
        ("PLUGIN_FORCE", "--force"),
    ] {
        if flag(key)? {
            argv.push(flag_name.into());
        }
    }
    if flag("PLUGIN_SKIP_TLS_VERIFY_REGISTRY")? && !registry.is_empty() {
        argv.push("--skip-tls-verify-registry".into());
        argv.push(registry.clone());
    }

    // drone-docker's PLUGIN_QUIET and PLUGIN_DEBUG (DOCKER_LAUNCH_DEBUG) when PLUGIN_VERBOSITY is unset.
    let verbosity = match var("PLUGIN_VERBOSITY") {
        Some(v) => v,
        None if flag("PLUGIN_DEBUG")? || flag("DOCKER_LAUNCH_DEBUG")? => "debug".into(),
        None if flag("PLUGIN_QUIET")? => "warn".into(),
        None => "info".into(),
    };
    let log_format = var("PLUGIN_LOG_FORMAT").unwrap_or_else(|| "text".into());

    let mut tweaks = RegistryTweaks::default();
    if let Some(host) = first(&["PLUGIN_DOCKER_REGISTRY", "DOCKER_REGISTRY", "PLUGIN_BASE_IMAGE_REGISTRY", "DOCKER_BASE_IMAGE_REGISTRY"]) {
        let username = first(&["PLUGIN_USERNAME", "PLUGIN_DOCKER_USERNAME", "PLUGIN_BASE_IMAGE_USERNAME", "DOCKER_USERNAME", "DOCKER_BASE_IMAGE_USERNAME"])
            .unwrap_or_default();
        let password = first(&["PLUGIN_PASSWORD", "PLUGIN_DOCKER_PASSWORD", "PLUGIN_BASE_IMAGE_PASSWORD", "DOCKER_PASSWORD", "DOCKER_BASE_IMAGE_PASSWORD"])
            .unwrap_or_default();
        let host = host.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/').to_string();
        // Docker Hub's legacy key `index.docker.io/v1` is the registry `index.docker.io`.
        let host = host.strip_suffix("/v1").map(str::to_string).unwrap_or(host);
        if !username.is_empty() || !password.is_empty() {
            tweaks.base_credentials = Some((host, Credentials { username, password }));
        }
    }
    // drone-ecr's fallbacks: ECR_REGION, then AWS_REGION.
    tweaks.region = first(&["PLUGIN_REGION", "ECR_REGION", "AWS_REGION"]);
    // Harness names the role PLUGIN_USER_ROLE_ARN (the AWS connector's cross-account role).
    tweaks.assume_role = first(&["PLUGIN_ASSUME_ROLE", "PLUGIN_USER_ROLE_ARN"]);
    tweaks.external_id = first(&["PLUGIN_EXTERNAL_ID", "PLUGIN_USER_ROLE_EXTERNAL_ID"]);
    // drone-ecr reads ECR_CREATE_REPOSITORY too.
    let create = flag("PLUGIN_CREATE_REPOSITORY")? || flag("ECR_CREATE_REPOSITORY")?;
    tweaks.create_repository = create && (!no_push || var("PLUGIN_LIFECYCLE_POLICY").is_some() || var("PLUGIN_REPOSITORY_POLICY").is_some());
    tweaks.scan_on_push = flag("PLUGIN_SCAN_ON_PUSH")?;
    tweaks.tags_mutable = match var("PLUGIN_TAG_MUTABILITY").map(|v| v.to_ascii_uppercase()) {
        None => None,
        Some(v) if v == "MUTABLE" => Some(true),
        Some(v) if v == "IMMUTABLE" => Some(false),
        Some(v) => bail!("PLUGIN_TAG_MUTABILITY={v:?}: use MUTABLE or IMMUTABLE"),
    };
    // File paths, as drone-ecr and kaniko-ecr take them; applied also when nothing is pushed.
    for (key, slot) in [("PLUGIN_LIFECYCLE_POLICY", &mut tweaks.lifecycle_policy), ("PLUGIN_REPOSITORY_POLICY", &mut tweaks.repository_policy)] {
        if let Some(path) = var(key) {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{key}={path:?}: cannot read the policy file (give the path of a JSON policy document)"))?;
            if serde_json::from_str::<serde_json::Value>(&text).is_err() {
                bail!("{key}={path:?}: the file is not a JSON document (ECR takes a JSON policy)");
            }
            *slot = Some(text);
        }
    }
    for cert in list("PLUGIN_REGISTRY_CERTIFICATE").into_iter().chain(list("STRATA_REGISTRY_CERTIFICATE")) {
        match cert.split_once('=') {
            Some((host, path)) if !host.is_empty() => tweaks.registry_ca_certs.push((host.to_string(), PathBuf::from(path))),
            _ => tweaks.ca_certs.push(PathBuf::from(cert)),
        }
    }
    // kaniko's form: REGISTRY=CERT.pem,KEY.pem.
    if let Some(v) = var("PLUGIN_REGISTRY_CLIENT_CERT") {
        match v.split_once('=').and_then(|(h, rest)| rest.split_once(',').map(|(c, k)| (h, c, k))) {
            Some((host, cert, key)) => tweaks.client_certs.push((host.to_string(), cert.into(), key.into())),
            None => bail!("PLUGIN_REGISTRY_CLIENT_CERT={v:?}: expected REGISTRY=CERT.pem,KEY.pem"),
        }
    }
    tweaks.work_dir = var("STRATA_WORK_DIR").map(PathBuf::from);
    // drone-docker's PLUGIN_CONFIG: the content of a docker config.json (registry auths).
    if let Some(text) = first(&["PLUGIN_CONFIG", "DOCKER_PLUGIN_CONFIG"]) {
        if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text).is_err() {
            bail!("PLUGIN_CONFIG: not a JSON object; give the content of a docker config.json ({{\"auths\": {{...}}}})");
        }
        tweaks.docker_config = Some(DockerConfigText(text));
    }

    if !flag("PLUGIN_ENABLE_CACHE")? && (var("PLUGIN_CACHE_REPO").is_some() || var("PLUGIN_CACHE_TTL").is_some()) {
        warnings.push("PLUGIN_CACHE_REPO/PLUGIN_CACHE_TTL have no effect without PLUGIN_ENABLE_CACHE=true".into());
    }
    // Settings of kaniko-ecr, drone-ecr and buildah-ecr that strata does not honour: a warning
    // each, or the step refused (plugin/catalog.rs).
    warnings.extend(catalog::check(var).map_err(anyhow::Error::msg)?);

    Ok(Plan {
        argv,
        warnings,
        tweaks,
        verbosity,
        log_format,
        registry,
        repo,
        tags: given_tags,
        destinations,
        artifact_file: var("PLUGIN_ARTIFACT_FILE").map(PathBuf::from),
        drone_output: var("DRONE_OUTPUT").map(PathBuf::from),
        tar_path,
        name_digest_file: var("PLUGIN_IMAGE_NAME_WITH_DIGEST_FILE").map(PathBuf::from),
        name_tag_digest_file: var("PLUGIN_IMAGE_NAME_TAG_WITH_DIGEST_FILE").map(PathBuf::from),
        oidc_token_file: None,
        named,
        skip_if_tag_exists,
        registry_type: var("PLUGIN_REGISTRY_TYPE").unwrap_or_else(|| "ECR".into()),
    })
}

/// drone-docker's automatic labels, with PLUGIN_AUTO_LABEL=true: `org.opencontainers.image.`
/// `created`, `revision` (DRONE_COMMIT_SHA), `source` (DRONE_REMOTE_URL), `url` (PLUGIN_REPO_LINK
/// or DRONE_REPO_LINK), and PLUGIN_LABEL_SCHEMA's `K=V` under the same prefix. drone-docker
/// labels by default; kaniko-ecr never does, so strata labels only when asked.
fn auto_labels() -> anyhow::Result<Vec<String>> {
    if !flag("PLUGIN_AUTO_LABEL")? {
        return Ok(Vec::new());
    }
    let created = if flag("PLUGIN_REPRODUCIBLE")? {
        var("SOURCE_DATE_EPOCH").and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(0)
    } else {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
    };
    let mut labels = vec![
        format!("created={}", strata_builder_core::rfc3339(created)),
        format!("revision={}", var("DRONE_COMMIT_SHA").unwrap_or_else(|| "00000000".into())),
        format!("source={}", var("DRONE_REMOTE_URL").unwrap_or_default()),
        format!("url={}", first(&["PLUGIN_REPO_LINK", "DRONE_REPO_LINK"]).unwrap_or_default()),
    ];
    labels.extend(list("PLUGIN_LABEL_SCHEMA"));
    Ok(labels.into_iter().map(|l| format!("org.opencontainers.image.{l}")).collect())
}

/// What plugin mode changes in the process environment for the AWS SDK's default chain.
struct AwsExports {
    /// Variables to set (values are credentials: never printed).
    set: Vec<(&'static str, String)>,
    /// Variables to remove.
    remove: Vec<&'static str>,
    /// PLUGIN_OIDC_TOKEN_ID, to be written to a private file named by AWS_WEB_IDENTITY_TOKEN_FILE.
    oidc_token: Option<String>,
    /// A setting that has no effect.
    warning: Option<String>,
}

/// The AWS exports for the settings, `role` being the role to assume. As the plugin does: with
/// an OIDC token the role is assumed by web identity (AssumeRoleWithWebIdentity, session
/// kaniko-ecr-oidc) and any keys are dropped; else PLUGIN_ACCESS_KEY/PLUGIN_SECRET_KEY (drone-ecr:
/// ECR_ACCESS_KEY/ECR_SECRET_KEY) become the SDK's keys, which strata also uses as the base
/// credentials for assuming a role (the plugin leaves that to the environment).
fn aws_exports(role: Option<&str>) -> AwsExports {
    let mut out = AwsExports { set: Vec::new(), remove: Vec::new(), oidc_token: None, warning: None };
    let keys = (first(&["PLUGIN_ACCESS_KEY", "ECR_ACCESS_KEY"]), first(&["PLUGIN_SECRET_KEY", "ECR_SECRET_KEY"]));
    match (var("PLUGIN_OIDC_TOKEN_ID"), role, keys) {
        (Some(token), Some(role), _) => {
            out.oidc_token = Some(token);
            out.set = vec![("AWS_ROLE_ARN", role.to_string()), ("AWS_ROLE_SESSION_NAME", "kaniko-ecr-oidc".into())];
            out.remove = vec!["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];
        }
        (token, _, (Some(a), Some(s))) => {
            out.set = vec![("AWS_ACCESS_KEY_ID", a), ("AWS_SECRET_ACCESS_KEY", s)];
            if token.is_some() {
                out.warning = Some("PLUGIN_OIDC_TOKEN_ID is accepted but ignored: it needs PLUGIN_ASSUME_ROLE (or PLUGIN_USER_ROLE_ARN)".into());
            }
        }
        (Some(_), None, _) => {
            out.warning = Some("PLUGIN_OIDC_TOKEN_ID is accepted but ignored: it needs PLUGIN_ASSUME_ROLE (or PLUGIN_USER_ROLE_ARN)".into());
        }
        _ => {}
    }
    out
}

/// Writes PLUGIN_CONFIG's content as `config.json` in a directory only this user can read;
/// returns the directory (the build's docker config dir, as drone-docker writes ~/.docker).
fn private_docker_config(text: &str) -> anyhow::Result<PathBuf> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let dir = std::env::temp_dir().join(format!("strata-plugin-docker-config-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new().mode(0o700).create(&dir).with_context(|| format!("PLUGIN_CONFIG: cannot create {}", dir.display()))?;
    let path = dir.join("config.json");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("PLUGIN_CONFIG: cannot create {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("PLUGIN_CONFIG: cannot write {}", path.display()))?;
    Ok(dir)
}

/// Writes the OIDC token to a file only this user can read (the SDK reads tokens from files).
fn oidc_token_file(token: &str) -> anyhow::Result<PathBuf> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = std::env::temp_dir().join(format!("strata-oidc-token-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("PLUGIN_OIDC_TOKEN_ID: cannot create {}", path.display()))?;
    f.write_all(token.as_bytes()).with_context(|| format!("PLUGIN_OIDC_TOKEN_ID: cannot write {}", path.display()))?;
    Ok(path)
}

/// Builds and pushes as the plugin would, then writes its output files.
pub async fn run(plan: Plan) -> anyhow::Result<()> {
    let progress = events::init_logging(&plan.verbosity, &plan.log_format)?;
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    let cli = Cli::try_parse_from(&plan.argv).map_err(|e| {
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
        anyhow::anyhow!("plugin settings: {first}")
    })?;
    let (args, command) = match cli.command {
        Command::Build(args) => (args, "build"),
        Command::Push(args) => (args, "push"),
        Command::Manifest(args) => (args, "manifest"),
        Command::Plan(_) => bail!("plugin settings did not map onto `strata build`, `push` or `manifest`"),
    };
    let push_only = command == "push";
    let mut opts = options::build_options(&args)?;
    let t = plan.tweaks;
    let r = &mut opts.registry;
    if let Some(c) = t.base_credentials {
        r.credentials.push(c);
    }
    r.ecr.region = t.region;
    r.ecr.assume_role = t.assume_role;
    r.ecr.external_id = t.external_id;
    r.ecr.create_repository = t.create_repository;
    r.ecr.scan_on_push = t.scan_on_push;
    r.ecr.tags_mutable = t.tags_mutable;
    r.ca_certs.extend(t.ca_certs);
    r.registry_ca_certs.extend(t.registry_ca_certs);
    r.client_certs.extend(t.client_certs);
    if let Some(w) = t.work_dir {
        opts.work_dir = w;
    }
    if let Some(d) = &t.docker_config_dir {
        r.docker_config_dir = Some(d.clone());
    }
    if command == "manifest" {
        tracing::info!("plugin: joining images into an index (PLUGIN_MANIFEST_SOURCES): no build");
    } else if push_only {
        tracing::info!("plugin: push only (PLUGIN_PUSH_ONLY): no build");
    } else if plan.destinations.is_empty() {
        tracing::info!(isolation = %opts.isolation, "plugin: building {} (no push)", opts.dockerfile.display());
    } else {
        tracing::info!(isolation = %opts.isolation, "plugin: building {} for {}", opts.dockerfile.display(), plan.destinations.join(", "));
    }
    if (t.lifecycle_policy.is_some() || t.repository_policy.is_some()) && !plan.registry.is_empty() && !plan.repo.is_empty() {
        let target: strata_registry::Reference = format!("{}/{}", plan.registry, plan.repo).parse().context("PLUGIN_REGISTRY/PLUGIN_REPO")?;
        let client = strata_registry::Client::new(opts.registry.clone())?;
        client.apply_ecr_policies(&target, t.lifecycle_policy.as_deref(), t.repository_policy.as_deref()).await?;
    }
    if plan.skip_if_tag_exists {
        let client = strata_registry::Client::new(opts.registry.clone())?;
        for d in &plan.destinations {
            let r: strata_registry::Reference = d.parse().with_context(|| format!("destination {d}"))?;
            if let Some(existing) = client.tag_digest(&r).await? {
                tracing::info!("{d}: the tag exists ({existing}); nothing built or pushed (PLUGIN_SKIP_PUSH_IF_TAG_EXISTS)");
                return Ok(());
            }
        }
    }
    let built = if command == "manifest" {
        crate::join_images(&args, opts).await
    } else if push_only {
        crate::push_only(&args, opts, progress).await
    } else {
        crate::signals::stop_build_on_signals(opts.cancel.clone());
        strata_builder_core::build(opts, Some(events::printer(progress))).await.map(|o| o.digest).map_err(anyhow::Error::from)
    };
    if let Some(f) = &plan.oidc_token_file {
        let _ = std::fs::remove_file(f);
    }
    if let Some(d) = &t.docker_config_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    let digest = built?;

    // The plugin reports a failure to write these on stderr and still succeeds.
    if let Some(path) = &plan.artifact_file {
        let written = outputs::artifact_json(&plan.registry_type, &plan.registry, &plan.repo, &plan.tags, &digest).and_then(|b| outputs::write_file(path, &b));
        if let Err(e) = written {
            tracing::warn!("failed to write plugin artifact file at path: {}: {e:#}", path.display());
        }
    }
    if let Some(path) = &plan.drone_output
        && let Err(e) = outputs::write_file(
            path,
            outputs::drone_output(&[("digest", &digest), ("IMAGE_TAR_PATH", plan.tar_path.as_deref().unwrap_or_default())]).as_bytes(),
        )
    {
        tracing::warn!("failed to write plugin output file at path: {}: {e:#}", path.display());
    }
    for (path, with_tag) in [(&plan.name_digest_file, false), (&plan.name_tag_digest_file, true)] {
        if let Some(path) = path {
            outputs::write_file(path, outputs::names_with_digest(&plan.named, &digest, with_tag).as_bytes())?;
        }
    }
    crate::print_stdout(&digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    thread_local! {
        /// The settings of the test running on this thread (None: the process environment).
        pub(super) static TEST_ENV: RefCell<Option<HashMap<String, String>>> = const { RefCell::new(None) };
    }

    /// `read_settings` with exactly `settings` set (plus a registry and a repository unless given).
    fn settings(settings: &[(&str, &str)]) -> anyhow::Result<Plan> {
        let mut map: HashMap<String, String> =
            [("PLUGIN_REGISTRY", "registry.example.com"), ("PLUGIN_REPO", "team/app")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        for (k, v) in settings {
            map.insert(k.to_string(), v.to_string());
        }
        TEST_ENV.with(|e| *e.borrow_mut() = Some(map));
        let plan = read_settings();
        TEST_ENV.with(|e| *e.borrow_mut() = None);
        plan
    }

    /// What plugin mode makes of some settings: the plan, the AWS exports and whether plugin mode
    /// starts.
    struct Seen {
        plan: Plan,
        exports: AwsExports,
        requested: bool,
    }

    fn seen(settings: &[(&str, &str)]) -> Seen {
        let mut map: HashMap<String, String> =
            [("PLUGIN_REGISTRY", "registry.example.com"), ("PLUGIN_REPO", "team/app")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        for (k, v) in settings {
            map.insert(k.to_string(), v.to_string());
        }
        TEST_ENV.with(|e| *e.borrow_mut() = Some(map));
        let plan = read_settings();
        let exports = aws_exports(plan.as_ref().ok().and_then(|p| p.tweaks.assume_role.as_deref()));
        let requested = requested(&[OsString::from("strata")]);
        TEST_ENV.with(|e| *e.borrow_mut() = None);
        let plan = plan.unwrap_or_else(|e| panic!("{settings:?}: {e:#}"));
        Seen { plan, exports, requested }
    }

    fn set(s: &Seen, key: &str) -> Option<String> {
        s.exports.set.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
    }

    /// One probe per honoured setting of the catalog: the setting (with what it needs beside it)
    /// has the effect the README says.
    #[test]
    fn every_honoured_setting_has_its_effect() {
        let dir = tempfile_dir();
        let policy = dir.join("policy.json");
        std::fs::write(&policy, "{}").expect("write policy");
        let policy = policy.display().to_string();
        let dests = |s: &Seen| s.plan.destinations.join(" ");
        let labels = |s: &Seen| values(&s.plan, "--label").join(" ");
        let base = |s: &Seen| s.plan.tweaks.base_credentials.as_ref().map(|(h, c)| format!("{h} {} {}", c.username, c.password)).unwrap_or_default();
        type Check = Box<dyn Fn(&Seen) -> bool>;
        type Probe<'a> = (&'a str, Vec<(&'a str, &'a str)>, Check);
        let probes: Vec<Probe> = vec![
            ("PLUGIN_REGISTRY", vec![("PLUGIN_REGISTRY", "other.example.com")], Box::new(move |s| dests(s) == "other.example.com/team/app:latest")),
            ("PLUGIN_REPO", vec![("PLUGIN_REPO", "x/y")], Box::new(move |s| dests(s) == "registry.example.com/x/y:latest")),
            ("PLUGIN_TAGS", vec![("PLUGIN_TAGS", "a, b")], Box::new(move |s| dests(s) == "registry.example.com/team/app:a registry.example.com/team/app:b")),
            ("PLUGIN_TAG", vec![("PLUGIN_TAG", "v2")], Box::new(move |s| dests(s) == "registry.example.com/team/app:v2")),
            ("PLUGIN_EXPAND_TAG", vec![("PLUGIN_EXPAND_TAG", "true"), ("PLUGIN_TAGS", "1.2.3")], Box::new(move |s| s.plan.destinations.len() == 3)),
            ("PLUGIN_AUTO_TAG", vec![("PLUGIN_AUTO_TAG", "true"), ("DRONE_COMMIT_REF", "refs/tags/v1.2.3")], Box::new(move |s| s.plan.destinations.len() == 3)),
            (
                "PLUGIN_DEFAULT_TAGS",
                vec![("PLUGIN_DEFAULT_TAGS", "true"), ("DRONE_COMMIT_REF", "refs/tags/v1.2.3")],
                Box::new(move |s| s.plan.destinations.len() == 3),
            ),
            (
                "PLUGIN_AUTO_TAG_SUFFIX",
                vec![("PLUGIN_AUTO_TAG", "true"), ("DRONE_COMMIT_REF", "refs/tags/v1.2.3"), ("PLUGIN_AUTO_TAG_SUFFIX", "arm")],
                Box::new(move |s| dests(s).contains(":1.2.3-arm")),
            ),
            (
                "PLUGIN_DEFAULT_SUFFIX",
                vec![("PLUGIN_AUTO_TAG", "true"), ("DRONE_COMMIT_REF", "refs/tags/v1.2.3"), ("PLUGIN_DEFAULT_SUFFIX", "arm")],
                Box::new(move |s| dests(s).contains(":1.2.3-arm")),
            ),
            ("DRONE_COMMIT_REF", vec![("PLUGIN_AUTO_TAG", "true"), ("DRONE_COMMIT_REF", "refs/tags/v2.0.0")], Box::new(move |s| dests(s).contains(":2.0.0"))),
            (
                "DRONE_REPO_BRANCH",
                vec![("PLUGIN_AUTO_TAG", "true"), ("DRONE_COMMIT_REF", "refs/heads/trunk"), ("DRONE_REPO_BRANCH", "trunk")],
                Box::new(move |s| dests(s) == "registry.example.com/team/app:latest"),
            ),
            ("PLUGIN_DOCKERFILE", vec![("PLUGIN_DOCKERFILE", "ci/Dockerfile")], Box::new(|s| values(&s.plan, "--dockerfile") == ["ci/Dockerfile"])),
            ("PLUGIN_CONTEXT", vec![("PLUGIN_CONTEXT", "app")], Box::new(|s| values(&s.plan, "--context") == ["app"])),
            (
                "PLUGIN_CONTEXT_SUB_PATH",
                vec![("PLUGIN_CONTEXT", "app"), ("PLUGIN_CONTEXT_SUB_PATH", "svc")],
                Box::new(|s| values(&s.plan, "--context") == ["app/svc"]),
            ),
            ("PLUGIN_TARGET", vec![("PLUGIN_TARGET", "release")], Box::new(|s| values(&s.plan, "--target") == ["release"])),
            ("PLUGIN_BUILD_ARGS", vec![("PLUGIN_BUILD_ARGS", "A=1,B=2")], Box::new(|s| values(&s.plan, "--build-arg") == ["A=1", "B=2"])),
            (
                "PLUGIN_BUILD_ARGS_NEW",
                vec![("PLUGIN_MULTIPLE_BUILD_ARGS", "true"), ("PLUGIN_BUILD_ARGS_NEW", "A=1,2;B=3")],
                Box::new(|s| values(&s.plan, "--build-arg") == ["A=1,2", "B=3"]),
            ),
            (
                "PLUGIN_MULTIPLE_BUILD_ARGS",
                vec![("PLUGIN_MULTIPLE_BUILD_ARGS", "true"), ("PLUGIN_BUILD_ARGS_NEW", "A=x,y")],
                Box::new(|s| values(&s.plan, "--build-arg") == ["A=x,y"]),
            ),
            (
                "PLUGIN_BUILD_ARGS_FROM_ENV",
                vec![("PLUGIN_BUILD_ARGS_FROM_ENV", "GIT_SHA"), ("GIT_SHA", "abc")],
                Box::new(|s| values(&s.plan, "--build-arg") == ["GIT_SHA=abc"]),
            ),
            ("PLUGIN_CUSTOM_LABELS", vec![("PLUGIN_CUSTOM_LABELS", "a=1,b=2")], Box::new(move |s| labels(s) == "a=1 b=2")),
            ("PLUGIN_AUTO_LABEL", vec![("PLUGIN_AUTO_LABEL", "true")], Box::new(move |s| labels(s).contains("org.opencontainers.image.revision=00000000"))),
            (
                "PLUGIN_LABEL_SCHEMA",
                vec![("PLUGIN_AUTO_LABEL", "true"), ("PLUGIN_LABEL_SCHEMA", "vendor=X")],
                Box::new(move |s| labels(s).contains("org.opencontainers.image.vendor=X")),
            ),
            (
                "DRONE_COMMIT_SHA",
                vec![("PLUGIN_AUTO_LABEL", "true"), ("DRONE_COMMIT_SHA", "cafe")],
                Box::new(move |s| labels(s).contains("image.revision=cafe")),
            ),
            (
                "DRONE_REMOTE_URL",
                vec![("PLUGIN_AUTO_LABEL", "true"), ("DRONE_REMOTE_URL", "https://g/r.git")],
                Box::new(move |s| labels(s).contains("image.source=https://g/r.git")),
            ),
            (
                "PLUGIN_REPO_LINK",
                vec![("PLUGIN_AUTO_LABEL", "true"), ("PLUGIN_REPO_LINK", "https://g/r")],
                Box::new(move |s| labels(s).contains("image.url=https://g/r")),
            ),
            (
                "DRONE_REPO_LINK",
                vec![("PLUGIN_AUTO_LABEL", "true"), ("DRONE_REPO_LINK", "https://g/r")],
                Box::new(move |s| labels(s).contains("image.url=https://g/r")),
            ),
            ("PLUGIN_PLATFORM", vec![("PLUGIN_PLATFORM", "linux/arm64")], Box::new(|s| values(&s.plan, "--custom-platform") == ["linux/arm64"])),
            ("PLUGIN_CUSTOM_PLATFORM", vec![("PLUGIN_CUSTOM_PLATFORM", "linux/arm64")], Box::new(|s| values(&s.plan, "--custom-platform") == ["linux/arm64"])),
            ("PLUGIN_SNAPSHOT_MODE", vec![("PLUGIN_SNAPSHOT_MODE", "redo")], Box::new(|s| values(&s.plan, "--snapshot-mode") == ["redo"])),
            ("PLUGIN_SINGLE_SNAPSHOT", vec![("PLUGIN_SINGLE_SNAPSHOT", "true")], Box::new(|s| has(&s.plan, "--single-snapshot"))),
            ("PLUGIN_SQUASH", vec![("PLUGIN_SQUASH", "true")], Box::new(|s| has(&s.plan, "--single-snapshot"))),
            ("PLUGIN_REPRODUCIBLE", vec![("PLUGIN_REPRODUCIBLE", "true")], Box::new(|s| has(&s.plan, "--reproducible"))),
            ("PLUGIN_NO_PUSH", vec![("PLUGIN_NO_PUSH", "true")], Box::new(|s| has(&s.plan, "--no-push"))),
            ("PLUGIN_DRY_RUN", vec![("PLUGIN_DRY_RUN", "true")], Box::new(|s| has(&s.plan, "--no-push"))),
            ("PLUGIN_PUSH_ONLY", vec![("PLUGIN_PUSH_ONLY", "true"), ("PLUGIN_SOURCE_TAR_PATH", "i.tar")], Box::new(|s| s.plan.argv[1] == "push")),
            (
                "PLUGIN_SOURCE_TAR_PATH",
                vec![("PLUGIN_PUSH_ONLY", "true"), ("PLUGIN_SOURCE_TAR_PATH", "i.tar")],
                Box::new(|s| values(&s.plan, "--source-tar") == ["i.tar"]),
            ),
            ("PLUGIN_TAR_PATH", vec![("PLUGIN_TAR_PATH", "i.tar")], Box::new(|s| values(&s.plan, "--tar-path") == ["i.tar"])),
            ("PLUGIN_DESTINATION_TAR_PATH", vec![("PLUGIN_DESTINATION_TAR_PATH", "i.tar")], Box::new(|s| values(&s.plan, "--tar-path") == ["i.tar"])),
            ("PLUGIN_OCI_LAYOUT_PATH", vec![("PLUGIN_OCI_LAYOUT_PATH", "oci")], Box::new(|s| values(&s.plan, "--oci-layout-path") == ["oci"])),
            ("PLUGIN_SKIP_PUSH_IF_TAG_EXISTS", vec![("PLUGIN_SKIP_PUSH_IF_TAG_EXISTS", "true")], Box::new(|s| s.plan.skip_if_tag_exists)),
            ("PLUGIN_PUSH_RETRY", vec![("PLUGIN_PUSH_RETRY", "5")], Box::new(|s| values(&s.plan, "--push-retry") == ["5"])),
            (
                "PLUGIN_IMAGE_DOWNLOAD_RETRY",
                vec![("PLUGIN_PUSH_RETRY", "1"), ("PLUGIN_IMAGE_DOWNLOAD_RETRY", "4")],
                Box::new(|s| values(&s.plan, "--push-retry") == ["4"]),
            ),
            ("PLUGIN_VERBOSITY", vec![("PLUGIN_VERBOSITY", "trace")], Box::new(|s| s.plan.verbosity == "trace")),
            ("PLUGIN_LOG_FORMAT", vec![("PLUGIN_LOG_FORMAT", "json")], Box::new(|s| s.plan.log_format == "json")),
            ("PLUGIN_QUIET", vec![("PLUGIN_QUIET", "true")], Box::new(|s| s.plan.verbosity == "warn")),
            ("PLUGIN_DEBUG", vec![("PLUGIN_DEBUG", "true")], Box::new(|s| s.plan.verbosity == "debug")),
            ("DOCKER_LAUNCH_DEBUG", vec![("DOCKER_LAUNCH_DEBUG", "true")], Box::new(|s| s.plan.verbosity == "debug")),
            ("PLUGIN_FORCE", vec![("PLUGIN_FORCE", "true")], Box::new(|s| has(&s.plan, "--force"))),
            ("PLUGIN_IGNORE_PATH", vec![("PLUGIN_IGNORE_PATH", "/a, /b")], Box::new(|s| values(&s.plan, "--ignore-path") == ["/a", "/b"])),
            ("PLUGIN_IGNORE_VAR_RUN", vec![("PLUGIN_IGNORE_VAR_RUN", "true")], Box::new(|s| values(&s.plan, "--ignore-path") == ["/var/run"])),
            (
                "PLUGIN_ENV_FILE",
                vec![("PLUGIN_REGISTRY", ""), ("PLUGIN_REPO", ""), ("PLUGIN_NO_PUSH", "true"), ("PLUGIN_ENV_FILE", "p.env")],
                Box::new(|s| s.requested),
            ),
            ("PLUGIN_ARTIFACT_FILE", vec![("PLUGIN_ARTIFACT_FILE", "a.json")], Box::new(|s| s.plan.artifact_file.as_deref() == Some(Path::new("a.json")))),
            ("PLUGIN_REGISTRY_TYPE", vec![("PLUGIN_REGISTRY_TYPE", "GCR")], Box::new(|s| s.plan.registry_type == "GCR")),
            ("PLUGIN_IMAGE_NAME_WITH_DIGEST_FILE", vec![("PLUGIN_IMAGE_NAME_WITH_DIGEST_FILE", "n")], Box::new(|s| s.plan.name_digest_file.is_some())),
            (
                "PLUGIN_IMAGE_NAME_TAG_WITH_DIGEST_FILE",
                vec![("PLUGIN_IMAGE_NAME_TAG_WITH_DIGEST_FILE", "n")],
                Box::new(|s| s.plan.name_tag_digest_file.is_some()),
            ),
            ("PLUGIN_ENABLE_CACHE", vec![("PLUGIN_ENABLE_CACHE", "true")], Box::new(|s| has(&s.plan, "--cache"))),
            (
                "PLUGIN_CACHE_REPO",
                vec![("PLUGIN_ENABLE_CACHE", "true"), ("PLUGIN_CACHE_REPO", "c")],
                Box::new(|s| values(&s.plan, "--cache-repo") == ["registry.example.com/c"]),
            ),
            ("PLUGIN_CACHE_TTL", vec![("PLUGIN_ENABLE_CACHE", "true"), ("PLUGIN_CACHE_TTL", "6")], Box::new(|s| values(&s.plan, "--cache-ttl") == ["6"])),
            ("PLUGIN_NO_CACHE", vec![("PLUGIN_ENABLE_CACHE", "true"), ("PLUGIN_NO_CACHE", "true")], Box::new(|s| !has(&s.plan, "--cache"))),
            ("PLUGIN_LAYERS", vec![("PLUGIN_LAYERS", "true")], Box::new(|s| has(&s.plan, "--cache"))),
            ("PLUGIN_SECRETS_FROM_ENV", vec![("PLUGIN_SECRETS_FROM_ENV", "a=A")], Box::new(|s| values(&s.plan, "--secret") == ["id=a,env=A"])),
            ("PLUGIN_SECRETS_FROM_FILE", vec![("PLUGIN_SECRETS_FROM_FILE", "a=/f")], Box::new(|s| values(&s.plan, "--secret") == ["id=a,src=/f"])),
            ("PLUGIN_SECRET", vec![("PLUGIN_SECRET", "id=a,src=/f")], Box::new(|s| values(&s.plan, "--secret") == ["id=a,src=/f"])),
            ("PLUGIN_COMPRESSION", vec![("PLUGIN_COMPRESSION", "zstd")], Box::new(|s| values(&s.plan, "--compression") == ["zstd"])),
            ("PLUGIN_COMPRESSION_LEVEL", vec![("PLUGIN_COMPRESSION_LEVEL", "6")], Box::new(|s| values(&s.plan, "--compression-level") == ["6"])),
            ("PLUGIN_REGION", vec![("PLUGIN_REGION", "eu-west-1"), ("ECR_REGION", "x")], Box::new(|s| s.plan.tweaks.region.as_deref() == Some("eu-west-1"))),
            ("ECR_REGION", vec![("ECR_REGION", "eu-west-2"), ("AWS_REGION", "x")], Box::new(|s| s.plan.tweaks.region.as_deref() == Some("eu-west-2"))),
            ("AWS_REGION", vec![("AWS_REGION", "eu-west-3")], Box::new(|s| s.plan.tweaks.region.as_deref() == Some("eu-west-3"))),
            (
                "PLUGIN_ACCESS_KEY",
                vec![("PLUGIN_ACCESS_KEY", "AK"), ("PLUGIN_SECRET_KEY", "SK")],
                Box::new(|s| set(s, "AWS_ACCESS_KEY_ID").as_deref() == Some("AK")),
            ),
            (
                "PLUGIN_SECRET_KEY",
                vec![("PLUGIN_ACCESS_KEY", "AK"), ("PLUGIN_SECRET_KEY", "SK")],
                Box::new(|s| set(s, "AWS_SECRET_ACCESS_KEY").as_deref() == Some("SK")),
            ),
            ("ECR_ACCESS_KEY", vec![("ECR_ACCESS_KEY", "AK2"), ("ECR_SECRET_KEY", "SK2")], Box::new(|s| set(s, "AWS_ACCESS_KEY_ID").as_deref() == Some("AK2"))),
            (
                "ECR_SECRET_KEY",
                vec![("ECR_ACCESS_KEY", "AK2"), ("ECR_SECRET_KEY", "SK2")],
                Box::new(|s| set(s, "AWS_SECRET_ACCESS_KEY").as_deref() == Some("SK2")),
            ),
            (
                "AWS_ACCESS_KEY_ID",
                vec![("PLUGIN_OIDC_TOKEN_ID", "t"), ("PLUGIN_ASSUME_ROLE", "arn:r")],
                Box::new(|s| s.exports.remove.contains(&"AWS_ACCESS_KEY_ID")),
            ),
            (
                "AWS_SECRET_ACCESS_KEY",
                vec![("PLUGIN_OIDC_TOKEN_ID", "t"), ("PLUGIN_ASSUME_ROLE", "arn:r")],
                Box::new(|s| s.exports.remove.contains(&"AWS_SECRET_ACCESS_KEY")),
            ),
            (
                "AWS_SESSION_TOKEN",
                vec![("PLUGIN_OIDC_TOKEN_ID", "t"), ("PLUGIN_ASSUME_ROLE", "arn:r")],
                Box::new(|s| s.exports.remove.contains(&"AWS_SESSION_TOKEN")),
            ),
            ("PLUGIN_ASSUME_ROLE", vec![("PLUGIN_ASSUME_ROLE", "arn:r")], Box::new(|s| s.plan.tweaks.assume_role.as_deref() == Some("arn:r"))),
            ("PLUGIN_EXTERNAL_ID", vec![("PLUGIN_EXTERNAL_ID", "x1")], Box::new(|s| s.plan.tweaks.external_id.as_deref() == Some("x1"))),
            (
                "PLUGIN_OIDC_TOKEN_ID",
                vec![("PLUGIN_OIDC_TOKEN_ID", "tok"), ("PLUGIN_ASSUME_ROLE", "arn:r")],
                Box::new(|s| s.exports.oidc_token.as_deref() == Some("tok") && set(s, "AWS_ROLE_ARN").as_deref() == Some("arn:r")),
            ),
            ("PLUGIN_CREATE_REPOSITORY", vec![("PLUGIN_CREATE_REPOSITORY", "true")], Box::new(|s| s.plan.tweaks.create_repository)),
            ("ECR_CREATE_REPOSITORY", vec![("ECR_CREATE_REPOSITORY", "true")], Box::new(|s| s.plan.tweaks.create_repository)),
            ("PLUGIN_SCAN_ON_PUSH", vec![("PLUGIN_SCAN_ON_PUSH", "true")], Box::new(|s| s.plan.tweaks.scan_on_push)),
            (
                "PLUGIN_LIFECYCLE_POLICY",
                vec![("PLUGIN_LIFECYCLE_POLICY", policy.as_str())],
                Box::new(|s| s.plan.tweaks.lifecycle_policy.as_deref() == Some("{}")),
            ),
            (
                "PLUGIN_REPOSITORY_POLICY",
                vec![("PLUGIN_REPOSITORY_POLICY", policy.as_str())],
                Box::new(|s| s.plan.tweaks.repository_policy.as_deref() == Some("{}")),
            ),
            ("PLUGIN_DOCKER_REGISTRY", vec![("PLUGIN_DOCKER_REGISTRY", "b.io"), ("PLUGIN_USERNAME", "u")], Box::new(move |s| base(s) == "b.io u ")),
            ("PLUGIN_DOCKER_USERNAME", vec![("PLUGIN_DOCKER_REGISTRY", "b.io"), ("PLUGIN_DOCKER_USERNAME", "u")], Box::new(move |s| base(s) == "b.io u ")),
            ("PLUGIN_DOCKER_PASSWORD", vec![("PLUGIN_DOCKER_REGISTRY", "b.io"), ("PLUGIN_DOCKER_PASSWORD", "p")], Box::new(move |s| base(s) == "b.io  p")),
            ("DOCKER_REGISTRY", vec![("DOCKER_REGISTRY", "b.io"), ("DOCKER_USERNAME", "u")], Box::new(move |s| base(s) == "b.io u ")),
            ("DOCKER_USERNAME", vec![("DOCKER_REGISTRY", "b.io"), ("DOCKER_USERNAME", "u")], Box::new(move |s| base(s) == "b.io u ")),
            ("DOCKER_PASSWORD", vec![("DOCKER_REGISTRY", "b.io"), ("DOCKER_PASSWORD", "p")], Box::new(move |s| base(s) == "b.io  p")),
            ("PLUGIN_USERNAME", vec![("PLUGIN_DOCKER_REGISTRY", "b.io"), ("PLUGIN_USERNAME", "u")], Box::new(move |s| base(s) == "b.io u ")),
            ("PLUGIN_PASSWORD", vec![("PLUGIN_DOCKER_REGISTRY", "b.io"), ("PLUGIN_PASSWORD", "p")], Box::new(move |s| base(s) == "b.io  p")),
            (
                "PLUGIN_BASE_IMAGE_REGISTRY",
                vec![("PLUGIN_BASE_IMAGE_REGISTRY", "https://b.io/"), ("PLUGIN_BASE_IMAGE_USERNAME", "u")],
                Box::new(move |s| base(s) == "b.io u "),
            ),
            (
                "PLUGIN_BASE_IMAGE_USERNAME",
                vec![("PLUGIN_BASE_IMAGE_REGISTRY", "b.io"), ("PLUGIN_BASE_IMAGE_USERNAME", "u")],
                Box::new(move |s| base(s) == "b.io u "),
            ),
            (
                "PLUGIN_BASE_IMAGE_PASSWORD",
                vec![("PLUGIN_BASE_IMAGE_REGISTRY", "b.io"), ("PLUGIN_BASE_IMAGE_PASSWORD", "p")],
                Box::new(move |s| base(s) == "b.io  p"),
            ),
            (
                "DOCKER_BASE_IMAGE_REGISTRY",
                vec![("DOCKER_BASE_IMAGE_REGISTRY", "b.io"), ("DOCKER_BASE_IMAGE_USERNAME", "u")],
                Box::new(move |s| base(s) == "b.io u "),
            ),
            (
                "DOCKER_BASE_IMAGE_USERNAME",
                vec![("DOCKER_BASE_IMAGE_REGISTRY", "b.io"), ("DOCKER_BASE_IMAGE_USERNAME", "u")],
                Box::new(move |s| base(s) == "b.io u "),
            ),
            (
                "DOCKER_BASE_IMAGE_PASSWORD",
                vec![("DOCKER_BASE_IMAGE_REGISTRY", "b.io"), ("DOCKER_BASE_IMAGE_PASSWORD", "p")],
                Box::new(move |s| base(s) == "b.io  p"),
            ),
            ("PLUGIN_CONFIG", vec![("PLUGIN_CONFIG", "{}")], Box::new(|s| s.plan.tweaks.docker_config.is_some())),
            ("DOCKER_PLUGIN_CONFIG", vec![("DOCKER_PLUGIN_CONFIG", "{}")], Box::new(|s| s.plan.tweaks.docker_config.is_some())),
            ("PLUGIN_INSECURE", vec![("PLUGIN_INSECURE", "true")], Box::new(|s| has(&s.plan, "--insecure"))),
            ("PLUGIN_INSECURE_REGISTRY", vec![("PLUGIN_INSECURE_REGISTRY", "r:5000")], Box::new(|s| values(&s.plan, "--insecure-registry") == ["r:5000"])),
            ("PLUGIN_INSECURE_PULL", vec![("PLUGIN_INSECURE_PULL", "true")], Box::new(|s| has(&s.plan, "--insecure-pull"))),
            ("PLUGIN_SKIP_TLS_VERIFY_PULL", vec![("PLUGIN_SKIP_TLS_VERIFY_PULL", "true")], Box::new(|s| has(&s.plan, "--skip-tls-verify-pull"))),
            (
                "PLUGIN_SKIP_TLS_VERIFY_REGISTRY",
                vec![("PLUGIN_SKIP_TLS_VERIFY_REGISTRY", "true")],
                Box::new(|s| values(&s.plan, "--skip-tls-verify-registry") == ["registry.example.com"]),
            ),
            (
                "PLUGIN_REGISTRY_CERTIFICATE",
                vec![("PLUGIN_REGISTRY_CERTIFICATE", "/ca.pem")],
                Box::new(|s| s.plan.tweaks.ca_certs == [PathBuf::from("/ca.pem")]),
            ),
            ("PLUGIN_REGISTRY_CLIENT_CERT", vec![("PLUGIN_REGISTRY_CLIENT_CERT", "r=/c.pem,/k.pem")], Box::new(|s| s.plan.tweaks.client_certs.len() == 1)),
            ("PLUGIN_REGISTRY_MIRRORS", vec![("PLUGIN_REGISTRY_MIRRORS", "m1,m2")], Box::new(|s| values(&s.plan, "--registry-mirror") == ["m1", "m2"])),
            ("PLUGIN_MIRROR", vec![("PLUGIN_MIRROR", "m")], Box::new(|s| values(&s.plan, "--registry-mirror") == ["m"])),
            ("DOCKER_PLUGIN_MIRROR", vec![("DOCKER_PLUGIN_MIRROR", "m")], Box::new(|s| values(&s.plan, "--registry-mirror") == ["m"])),
        ];
        let probed: std::collections::HashSet<&str> = probes.iter().map(|(k, _, _)| *k).collect();
        for setting in catalog::SETTINGS.iter().filter(|s| s.treatment == catalog::Treatment::Honoured) {
            assert!(probed.contains(setting.name), "{} is honoured but has no probe here", setting.name);
        }
        for (name, settings, check) in &probes {
            let s = seen(settings);
            assert!(check(&s), "{name}: no effect seen with {settings:?}: {:?}", s.plan.argv);
            // Without the setting itself the effect is gone (the probe tests the setting, not its neighbours).
            let without: Vec<(&str, &str)> = settings.iter().map(|(k, v)| if k == name { (*k, "") } else { (*k, *v) }).collect();
            if !name.starts_with("AWS_") && *name != "PLUGIN_MULTIPLE_BUILD_ARGS" {
                let s = std::panic::catch_unwind(|| seen(&without));
                if let Ok(s) = s {
                    assert!(!check(&s), "{name}: the effect is there without the setting too ({without:?})");
                }
            }
        }
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-plugin-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    /// The value after `flag` in the plan's argv, each time it appears.
    fn values(plan: &Plan, flag: &str) -> Vec<String> {
        plan.argv.windows(2).filter(|w| w[0] == flag).map(|w| w[1].clone()).collect()
    }

    fn has(plan: &Plan, flag: &str) -> bool {
        plan.argv.iter().any(|a| a == flag)
    }

    #[test]
    fn no_push_and_dry_run_push_nothing() {
        for key in ["PLUGIN_NO_PUSH", "PLUGIN_DRY_RUN"] {
            let p = settings(&[(key, "true")]).expect(key);
            assert!(has(&p, "--no-push") && p.destinations.is_empty(), "{key}: {:?}", p.argv);
        }
        let p = settings(&[]).expect("defaults");
        assert!(!has(&p, "--no-push"));
        assert_eq!(p.destinations, vec!["registry.example.com/team/app:latest"]);
    }

    #[test]
    fn both_tar_path_spellings_write_the_tarball_tagged_and_named() {
        for key in ["PLUGIN_TAR_PATH", "PLUGIN_DESTINATION_TAR_PATH"] {
            let p = settings(&[(key, "/out/image.tar"), ("PLUGIN_NO_PUSH", "true"), ("PLUGIN_TAGS", "1.0")]).expect(key);
            assert_eq!(values(&p, "--tar-path"), vec!["/out/image.tar"], "{key}");
            assert_eq!(values(&p, "--destination"), vec!["registry.example.com/team/app:1.0"], "{key}: the tarball's tag");
            assert_eq!(p.named, vec!["registry.example.com/team/app:1.0"], "{key}: the digest files name the tarball's tags");
        }
    }

    #[test]
    fn push_only_pushes_the_source_tarball_and_is_refused_with_no_push() {
        let p =
            settings(&[("PLUGIN_PUSH_ONLY", "true"), ("PLUGIN_SOURCE_TAR_PATH", "/out/image.tar"), ("PLUGIN_TAR_PATH", "/ignored.tar")]).expect("push only");
        assert_eq!(p.argv[1], "push");
        assert_eq!(values(&p, "--source-tar"), vec!["/out/image.tar"]);
        assert!(values(&p, "--tar-path").is_empty(), "a push-only step writes no tarball");
        let e = settings(&[("PLUGIN_PUSH_ONLY", "true"), ("PLUGIN_NO_PUSH", "true"), ("PLUGIN_SOURCE_TAR_PATH", "/x.tar")]).expect_err("refused");
        assert!(e.to_string().contains("PLUGIN_PUSH_ONLY") && e.to_string().contains("PLUGIN_NO_PUSH"), "{e}");
        let e = settings(&[("PLUGIN_PUSH_ONLY", "true")]).expect_err("no tarball");
        assert!(e.to_string().contains("PLUGIN_SOURCE_TAR_PATH"), "{e}");
    }

    #[test]
    fn a_full_reference_in_repo_and_the_singular_tag() {
        let p =
            settings(&[("PLUGIN_REGISTRY", ""), ("PLUGIN_REPO", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app"), ("PLUGIN_TAG", "v2")]).expect("full repo");
        assert_eq!(p.destinations, vec!["123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v2"]);
        assert_eq!((p.registry.as_str(), p.repo.as_str()), ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "app"));
        let p = settings(&[("PLUGIN_REPO", "registry.example.com/team/app")]).expect("registry twice");
        assert_eq!(p.destinations, vec!["registry.example.com/team/app:latest"]);
    }

    #[test]
    fn manifest_sources_join_per_architecture_tags() {
        let p = settings(&[("PLUGIN_MANIFEST_SOURCES", "1.0-linux-amd64,other.example.com/x/app:arm"), ("PLUGIN_TAGS", "1.0")]).expect("join");
        assert_eq!(p.argv[1], "manifest");
        assert_eq!(values(&p, "--image"), vec!["registry.example.com/team/app:1.0-linux-amd64", "other.example.com/x/app:arm"]);
        assert_eq!(p.destinations, vec!["registry.example.com/team/app:1.0"]);
        assert!(settings(&[("PLUGIN_MANIFEST_SOURCES", "a,b"), ("PLUGIN_NO_PUSH", "true")]).is_err());
    }

    #[test]
    fn pull_only_tls_settings() {
        let p = settings(&[("PLUGIN_INSECURE_PULL", "true"), ("PLUGIN_SKIP_TLS_VERIFY_PULL", "true")]).expect("pull settings");
        assert!(has(&p, "--insecure-pull") && has(&p, "--skip-tls-verify-pull"), "{:?}", p.argv);
        assert!(!has(&p, "--insecure") && !has(&p, "--skip-tls-verify"), "pushes keep verified HTTPS: {:?}", p.argv);
        assert!(p.warnings.iter().all(|w| !w.contains("_PULL")), "{:?}", p.warnings);
        assert!(settings(&[("PLUGIN_INSECURE_PULL", "maybe")]).is_err());
    }

    #[test]
    fn drone_docker_spellings() {
        let p = settings(&[
            ("PLUGIN_SQUASH", "true"),
            ("PLUGIN_SECRET", "id=npm,env=NPM_TOKEN"),
            ("PLUGIN_MIRROR", "mirror.example.com"),
            ("PLUGIN_QUIET", "true"),
            ("PLUGIN_REGISTRY_TYPE", "Docker"),
        ])
        .expect("drone-docker settings");
        assert!(has(&p, "--single-snapshot"));
        assert_eq!(values(&p, "--secret"), vec!["id=npm,env=NPM_TOKEN"]);
        assert_eq!(values(&p, "--registry-mirror"), vec!["mirror.example.com"]);
        assert_eq!((p.verbosity.as_str(), p.registry_type.as_str()), ("warn", "Docker"));
        let p = settings(&[("PLUGIN_DEBUG", "true"), ("PLUGIN_QUIET", "true")]).expect("debug");
        assert_eq!((p.verbosity.as_str(), p.registry_type.as_str()), ("debug", "ECR"));
        let p = settings(&[("PLUGIN_DEFAULT_TAGS", "true"), ("DRONE_COMMIT_REF", "refs/tags/v1.2.3")]).expect("default tags");
        assert_eq!(p.destinations, vec!["registry.example.com/team/app:1", "registry.example.com/team/app:1.2", "registry.example.com/team/app:1.2.3"]);
        let p = settings(&[("DOCKER_BASE_IMAGE_REGISTRY", "base.example.com"), ("DOCKER_BASE_IMAGE_USERNAME", "u"), ("DOCKER_BASE_IMAGE_PASSWORD", "p")])
            .expect("base image");
        let (host, creds) = p.tweaks.base_credentials.as_ref().expect("base credentials");
        assert_eq!((host.as_str(), creds.username.as_str(), creds.password.as_str()), ("base.example.com", "u", "p"));
    }

    #[test]
    fn cache_switches_of_the_three_plugins() {
        let p = settings(&[("PLUGIN_LAYERS", "true")]).expect("buildah layers");
        assert!(has(&p, "--cache") && values(&p, "--cache-repo").is_empty(), "{:?}", p.argv);
        let p = settings(&[("PLUGIN_ENABLE_CACHE", "true"), ("PLUGIN_CACHE_REPO", "cache"), ("PLUGIN_NO_CACHE", "true")]).expect("no cache");
        assert!(!has(&p, "--cache") && values(&p, "--cache-repo").is_empty(), "PLUGIN_NO_CACHE wins: {:?}", p.argv);
        let p = settings(&[("PLUGIN_ENABLE_CACHE", "true"), ("PLUGIN_CACHE_REPO", "cache")]).expect("cache");
        assert!(has(&p, "--cache"));
        assert_eq!(values(&p, "--cache-repo"), vec!["registry.example.com/cache"]);
    }

    #[test]
    fn auto_labels_only_when_asked() {
        let p = settings(&[]).expect("defaults");
        assert!(values(&p, "--label").is_empty());
        let p = settings(&[
            ("PLUGIN_AUTO_LABEL", "true"),
            ("PLUGIN_REPRODUCIBLE", "true"),
            ("DRONE_COMMIT_SHA", "abc123"),
            ("DRONE_REMOTE_URL", "https://git.example.com/team/app.git"),
            ("DRONE_REPO_LINK", "https://git.example.com/team/app"),
            ("PLUGIN_LABEL_SCHEMA", "vendor=Example"),
        ])
        .expect("auto labels");
        assert_eq!(
            values(&p, "--label"),
            vec![
                "org.opencontainers.image.created=1970-01-01T00:00:00Z",
                "org.opencontainers.image.revision=abc123",
                "org.opencontainers.image.source=https://git.example.com/team/app.git",
                "org.opencontainers.image.url=https://git.example.com/team/app",
                "org.opencontainers.image.vendor=Example",
            ]
        );
    }

    #[test]
    fn docker_config_content_and_refused_signing() {
        let p = settings(&[("PLUGIN_CONFIG", r#"{"auths":{"r.example.com":{"auth":"dTpw"}}}"#)]).expect("config");
        assert!(p.tweaks.docker_config.is_some());
        assert!(!format!("{:?}", p.tweaks).contains("dTpw"), "the config's auths never reach a log");
        let e = settings(&[("PLUGIN_CONFIG", "auths")]).expect_err("not JSON");
        assert!(e.to_string().contains("PLUGIN_CONFIG"), "{e}");
        let e = settings(&[("PLUGIN_COSIGN_PRIVATE_KEY", "-----BEGIN KEY")]).expect_err("signing refused");
        assert!(e.to_string().contains("does not sign") && !e.to_string().contains("BEGIN"), "{e}");
        let p = settings(&[("PLUGIN_MTU", "1400"), ("PLUGIN_CACHE_COPY_LAYERS", "true")]).expect("daemon setting");
        assert_eq!(p.warnings, vec!["PLUGIN_MTU is accepted but ignored: a Docker daemon setting; strata runs no daemon"]);
    }

    #[test]
    fn compression_settings() {
        let p = settings(&[("PLUGIN_COMPRESSION", "zstd"), ("PLUGIN_COMPRESSION_LEVEL", "9")]).expect("zstd");
        assert_eq!((values(&p, "--compression"), values(&p, "--compression-level")), (vec!["zstd".to_string()], vec!["9".to_string()]));
        assert!(settings(&[("PLUGIN_COMPRESSION", "lz4")]).is_err());
        assert!(settings(&[("PLUGIN_COMPRESSION_LEVEL", "high")]).is_err());
    }

    #[test]
    fn harness_secrets_become_secret_flags() {
        let p = settings(&[("PLUGIN_SECRETS_FROM_ENV", "npm=NPM_TOKEN,gh=GITHUB_TOKEN"), ("PLUGIN_SECRETS_FROM_FILE", "cert=/run/ca.pem")]).expect("secrets");
        assert_eq!(values(&p, "--secret"), vec!["id=npm,env=NPM_TOKEN", "id=gh,env=GITHUB_TOKEN", "id=cert,src=/run/ca.pem"]);
        let e = settings(&[("PLUGIN_SECRETS_FROM_ENV", "NPM_TOKEN")]).expect_err("no id");
        assert!(e.to_string().contains("PLUGIN_SECRETS_FROM_ENV"), "{e}");
    }

    #[test]
    fn region_and_ecr_repository_settings() {
        let p = settings(&[("ECR_REGION", "eu-west-1"), ("AWS_REGION", "us-west-2")]).expect("region");
        assert_eq!(p.tweaks.region.as_deref(), Some("eu-west-1"));
        let p = settings(&[("AWS_REGION", "us-west-2")]).expect("region");
        assert_eq!(p.tweaks.region.as_deref(), Some("us-west-2"));
        let p = settings(&[("ECR_CREATE_REPOSITORY", "true"), ("PLUGIN_SCAN_ON_PUSH", "true"), ("PLUGIN_TAG_MUTABILITY", "immutable")])
            .expect("repository settings");
        assert!(p.tweaks.create_repository && p.tweaks.scan_on_push);
        assert_eq!(p.tweaks.tags_mutable, Some(false));
        assert!(settings(&[("PLUGIN_TAG_MUTABILITY", "sometimes")]).is_err());
        let e = settings(&[("PLUGIN_LIFECYCLE_POLICY", "/nonexistent/policy.json")]).expect_err("missing policy file");
        assert!(e.to_string().contains("PLUGIN_LIFECYCLE_POLICY") && e.to_string().contains("/nonexistent/policy.json"), "{e}");
        assert!(settings(&[("PLUGIN_SKIP_PUSH_IF_TAG_EXISTS", "true")]).expect("skip").skip_if_tag_exists);
        assert!(!settings(&[("PLUGIN_SKIP_PUSH_IF_TAG_EXISTS", "true"), ("PLUGIN_NO_PUSH", "true")]).expect("skip").skip_if_tag_exists);
    }
}

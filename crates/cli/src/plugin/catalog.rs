//! Every setting of the plugins strata replaces (drone-kaniko's `kaniko-ecr`, drone-docker's
//! `drone-ecr` with the drone-docker settings it passes on, drone-buildah's `buildah-ecr`) and
//! what strata does with it. Plugin mode warns about, or refuses, the settings it does not
//! honour from this table; the README's plugin table lists every entry (a unit test checks).

/// What strata does with one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Read by plugin mode (see `read_settings`).
    Honoured,
    /// Nothing to set: strata always behaves as the setting asks; no warning.
    AlwaysSo(&'static str),
    /// Accepted with one warning saying why it has no effect.
    Ignored(&'static str),
    /// The step fails before anything is built: honouring it silently would be wrong.
    Refused(&'static str),
}

/// One plugin setting.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The environment variable.
    pub name: &'static str,
    /// The plugins that read it (`k` kaniko-ecr, `d` drone-ecr, `b` buildah-ecr); the table's
    /// record of where a setting comes from, checked by the tests.
    #[allow(dead_code)]
    pub plugins: &'static str,
    /// What strata does with it.
    pub treatment: Treatment,
}

const fn s(name: &'static str, plugins: &'static str, treatment: Treatment) -> Setting {
    Setting { name, plugins, treatment }
}

use Treatment::{AlwaysSo, Honoured, Ignored, Refused};

const DAEMON: &str = "a Docker daemon setting; strata runs no daemon";

/// The settings, as the three plugins' sources name them.
pub const SETTINGS: &[Setting] = &[
    s("PLUGIN_REGISTRY", "kdb", Honoured),
    s("PLUGIN_REPO", "kdb", Honoured),
    s("PLUGIN_TAGS", "kdb", Honoured),
    s("PLUGIN_TAG", "db", Honoured),
    s("PLUGIN_EXPAND_TAG", "k", Honoured),
    s("PLUGIN_AUTO_TAG", "kdb", Honoured),
    s("PLUGIN_DEFAULT_TAGS", "db", Honoured),
    s("PLUGIN_AUTO_TAG_SUFFIX", "kdb", Honoured),
    s("PLUGIN_DEFAULT_SUFFIX", "db", Honoured),
    s("DRONE_COMMIT_REF", "kdb", Honoured),
    s("DRONE_REPO_BRANCH", "kdb", Honoured),
    s("PLUGIN_DOCKERFILE", "kdb", Honoured),
    s("PLUGIN_CONTEXT", "kdb", Honoured),
    s("PLUGIN_CONTEXT_SUB_PATH", "k", Honoured),
    s("PLUGIN_TARGET", "kdb", Honoured),
    s("PLUGIN_BUILD_ARGS", "kdb", Honoured),
    s("PLUGIN_BUILD_ARGS_NEW", "kd", Honoured),
    s("PLUGIN_MULTIPLE_BUILD_ARGS", "kd", Honoured),
    s("PLUGIN_BUILD_ARGS_FROM_ENV", "db", Honoured),
    s("PLUGIN_CUSTOM_LABELS", "kdb", Honoured),
    s("PLUGIN_AUTO_LABEL", "db", Honoured),
    s("PLUGIN_LABEL_SCHEMA", "db", Honoured),
    s("DRONE_COMMIT_SHA", "db", Honoured),
    s("DRONE_REMOTE_URL", "db", Honoured),
    s("PLUGIN_REPO_LINK", "db", Honoured),
    s("DRONE_REPO_LINK", "db", Honoured),
    s("PLUGIN_PLATFORM", "kd", Honoured),
    s("PLUGIN_CUSTOM_PLATFORM", "k", Honoured),
    s("PLUGIN_SNAPSHOT_MODE", "k", Honoured),
    s("PLUGIN_SINGLE_SNAPSHOT", "k", Honoured),
    s("PLUGIN_SQUASH", "db", Honoured),
    s("PLUGIN_REPRODUCIBLE", "k", Honoured),
    s("PLUGIN_NO_PUSH", "k", Honoured),
    s("PLUGIN_DRY_RUN", "b", Honoured),
    s("PLUGIN_PUSH_ONLY", "kd", Honoured),
    s("PLUGIN_SOURCE_TAR_PATH", "k", Honoured),
    s("PLUGIN_TAR_PATH", "k", Honoured),
    s("PLUGIN_DESTINATION_TAR_PATH", "k", Honoured),
    s("PLUGIN_OCI_LAYOUT_PATH", "k", Honoured),
    s("PLUGIN_SKIP_PUSH_IF_TAG_EXISTS", "d", Honoured),
    s("PLUGIN_PUSH_RETRY", "k", Honoured),
    s("PLUGIN_IMAGE_DOWNLOAD_RETRY", "k", Honoured),
    s("PLUGIN_VERBOSITY", "k", Honoured),
    s("PLUGIN_LOG_FORMAT", "k", Honoured),
    s("PLUGIN_QUIET", "db", Honoured),
    s("PLUGIN_DEBUG", "d", Honoured),
    s("DOCKER_LAUNCH_DEBUG", "d", Honoured),
    s("PLUGIN_FORCE", "k", Honoured),
    s("PLUGIN_IGNORE_PATH", "k", Honoured),
    s("PLUGIN_IGNORE_VAR_RUN", "k", Honoured),
    s("PLUGIN_ENV_FILE", "kdb", Honoured),
    s("PLUGIN_ARTIFACT_FILE", "kd", Honoured),
    s("PLUGIN_REGISTRY_TYPE", "d", Honoured),
    s("PLUGIN_IMAGE_NAME_WITH_DIGEST_FILE", "k", Honoured),
    s("PLUGIN_IMAGE_NAME_TAG_WITH_DIGEST_FILE", "k", Honoured),
    s("PLUGIN_ENABLE_CACHE", "k", Honoured),
    s("PLUGIN_CACHE_REPO", "k", Honoured),
    s("PLUGIN_CACHE_TTL", "k", Honoured),
    s("PLUGIN_NO_CACHE", "db", Honoured),
    s("PLUGIN_LAYERS", "b", Honoured),
    s("PLUGIN_SECRETS_FROM_ENV", "d", Honoured),
    s("PLUGIN_SECRETS_FROM_FILE", "d", Honoured),
    s("PLUGIN_SECRET", "d", Honoured),
    s("PLUGIN_COMPRESSION", "k", Honoured),
    s("PLUGIN_COMPRESSION_LEVEL", "k", Honoured),
    // AWS and ECR.
    s("PLUGIN_REGION", "kdb", Honoured),
    s("ECR_REGION", "db", Honoured),
    s("AWS_REGION", "db", Honoured),
    s("PLUGIN_ACCESS_KEY", "kdb", Honoured),
    s("PLUGIN_SECRET_KEY", "kdb", Honoured),
    s("ECR_ACCESS_KEY", "db", Honoured),
    s("ECR_SECRET_KEY", "db", Honoured),
    s("AWS_ACCESS_KEY_ID", "kdb", Honoured),
    s("AWS_SECRET_ACCESS_KEY", "kdb", Honoured),
    s("AWS_SESSION_TOKEN", "k", Honoured),
    s("PLUGIN_ASSUME_ROLE", "kdb", Honoured),
    s("PLUGIN_EXTERNAL_ID", "kd", Honoured),
    s("PLUGIN_OIDC_TOKEN_ID", "kd", Honoured),
    s("PLUGIN_CREATE_REPOSITORY", "kdb", Honoured),
    s("ECR_CREATE_REPOSITORY", "db", Honoured),
    s("PLUGIN_SCAN_ON_PUSH", "db", Honoured),
    s("PLUGIN_LIFECYCLE_POLICY", "kdb", Honoured),
    s("PLUGIN_REPOSITORY_POLICY", "kdb", Honoured),
    // Registries and credentials.
    s("PLUGIN_DOCKER_REGISTRY", "kd", Honoured),
    s("PLUGIN_DOCKER_USERNAME", "kd", Honoured),
    s("PLUGIN_DOCKER_PASSWORD", "kd", Honoured),
    s("DOCKER_REGISTRY", "kdb", Honoured),
    s("DOCKER_USERNAME", "kdb", Honoured),
    s("DOCKER_PASSWORD", "kdb", Honoured),
    s("PLUGIN_USERNAME", "kdb", Honoured),
    s("PLUGIN_PASSWORD", "kdb", Honoured),
    s("PLUGIN_BASE_IMAGE_REGISTRY", "kd", Honoured),
    s("PLUGIN_BASE_IMAGE_USERNAME", "kd", Honoured),
    s("PLUGIN_BASE_IMAGE_PASSWORD", "kd", Honoured),
    s("DOCKER_BASE_IMAGE_REGISTRY", "d", Honoured),
    s("DOCKER_BASE_IMAGE_USERNAME", "d", Honoured),
    s("DOCKER_BASE_IMAGE_PASSWORD", "d", Honoured),
    s("PLUGIN_CONFIG", "db", Honoured),
    s("DOCKER_PLUGIN_CONFIG", "db", Honoured),
    s("PLUGIN_INSECURE", "kd", Honoured),
    s("PLUGIN_INSECURE_REGISTRY", "k", Honoured),
    s("PLUGIN_INSECURE_PULL", "k", Honoured),
    s("PLUGIN_SKIP_TLS_VERIFY_PULL", "k", Honoured),
    s("PLUGIN_SKIP_TLS_VERIFY_REGISTRY", "k", Honoured),
    s("PLUGIN_REGISTRY_CERTIFICATE", "k", Honoured),
    s("PLUGIN_REGISTRY_CLIENT_CERT", "k", Honoured),
    s("PLUGIN_REGISTRY_MIRRORS", "k", Honoured),
    s("PLUGIN_MIRROR", "d", Honoured),
    s("DOCKER_PLUGIN_MIRROR", "d", Honoured),
    // Always so in strata.
    s("PLUGIN_CACHE_COPY_LAYERS", "k", AlwaysSo("with the cache on, COPY layers are always cached")),
    s("PLUGIN_CACHE_RUN_LAYERS", "k", AlwaysSo("with the cache on, RUN layers are always cached")),
    s("PLUGIN_CLEANUP", "k", AlwaysSo("no build root is left behind")),
    s("PLUGIN_USE_NEW_RUN", "k", AlwaysSo("strata has one RUN implementation")),
    s("PLUGIN_SKIP_UNUSED_STAGES", "k", AlwaysSo("only the stages the target needs are built")),
    s("PLUGIN_SKIP_PUSH_PERMISSION_CHECK", "k", AlwaysSo("the check is one request before the build")),
    s("PLUGIN_PULL_IMAGE", "db", AlwaysSo("bases are always resolved from their registry")),
    s("PLUGIN_PURGE", "db", AlwaysSo("no daemon images are left behind")),
    s("PLUGIN_COMPRESS", "db", AlwaysSo("the context is read in place, never sent to a daemon")),
    // Accepted, not honoured.
    s("PLUGIN_CACHE_DIR", "k", Ignored("no base-image cache directory; strata keeps its own blob cache in its work dir")),
    s("PLUGIN_COMPRESSED_CACHING", "k", Ignored("strata streams layers and never holds one in memory")),
    s("PLUGIN_SKIP_DEFAULT_REGISTRY_FALLBACK", "k", Ignored("mirrors always fall back to docker.io")),
    s("PLUGIN_IMAGE_FS_EXTRACT_RETRY", "k", Ignored("not supported")),
    s("PLUGIN_LOG_TIMESTAMP", "k", Ignored("not supported")),
    s("PLUGIN_CACHE_FROM", "d", Ignored("BuildKit's cache import; use PLUGIN_ENABLE_CACHE with PLUGIN_CACHE_REPO")),
    s("PLUGIN_ADD_HOST", "db", Ignored("RUN sees the step container's /etc/hosts")),
    s("PLUGIN_CUSTOM_DNS", "d", Ignored("RUN uses the step container's DNS")),
    s("PLUGIN_CUSTOM_DNS_SEARCH", "d", Ignored("RUN uses the step container's DNS")),
    s("PLUGIN_SSH_AGENT_KEY", "d", Ignored("RUN --mount=type=ssh is not supported in plugin mode")),
    s("PLUGIN_SOURCE_IMAGE", "d", Ignored("a daemon's image cannot be read: push-only pushes PLUGIN_SOURCE_TAR_PATH")),
    s("PLUGIN_EMAIL", "db", Ignored("docker login's e-mail is obsolete")),
    s("DOCKER_EMAIL", "db", Ignored("docker login's e-mail is obsolete")),
    s("DRONE_CARD_PATH", "d", Ignored("no drone card is written")),
    s("PLUGIN_COSIGN_PARAMS", "d", Ignored("only with PLUGIN_COSIGN_PRIVATE_KEY, which strata refuses")),
    s("PLUGIN_COSIGN_PASSWORD", "d", Ignored("only with PLUGIN_COSIGN_PRIVATE_KEY, which strata refuses")),
    s("PLUGIN_BIP", "d", Ignored(DAEMON)),
    s("PLUGIN_MTU", "d", Ignored(DAEMON)),
    s("PLUGIN_IPV6", "d", Ignored(DAEMON)),
    s("PLUGIN_EXPERIMENTAL", "d", Ignored(DAEMON)),
    s("PLUGIN_DAEMON_OFF", "d", Ignored(DAEMON)),
    s("PLUGIN_DAEMON_RETRY_COUNT", "d", Ignored(DAEMON)),
    s("PLUGIN_STORAGE_DRIVER", "d", Ignored(DAEMON)),
    s("PLUGIN_STORAGE_PATH", "d", Ignored(DAEMON)),
    s("PLUGIN_S3_BUCKET", "b", Ignored("buildah's S3 layer cache: use PLUGIN_ENABLE_CACHE with PLUGIN_CACHE_REPO (a registry)")),
    s("PLUGIN_S3_ENDPOINT", "b", Ignored("buildah's S3 layer cache: use PLUGIN_ENABLE_CACHE with PLUGIN_CACHE_REPO (a registry)")),
    s("PLUGIN_S3_REGION", "b", Ignored("buildah's S3 layer cache: use PLUGIN_ENABLE_CACHE with PLUGIN_CACHE_REPO (a registry)")),
    s("PLUGIN_S3_ACCESS_KEY", "b", Ignored("buildah's S3 layer cache: use PLUGIN_ENABLE_CACHE with PLUGIN_CACHE_REPO (a registry)")),
    s("PLUGIN_S3_SECRET", "b", Ignored("buildah's S3 layer cache: use PLUGIN_ENABLE_CACHE with PLUGIN_CACHE_REPO (a registry)")),
    s("PLUGIN_S3_USE_SSL", "b", Ignored("buildah's S3 layer cache: use PLUGIN_ENABLE_CACHE with PLUGIN_CACHE_REPO (a registry)")),
    s("PLUGIN_S3_LOCAL_CACHE_DIR", "b", Ignored("buildah's S3 layer cache: use PLUGIN_ENABLE_CACHE with PLUGIN_CACHE_REPO (a registry)")),
    // Refused.
    s(
        "PLUGIN_COSIGN_PRIVATE_KEY",
        "d",
        Refused("strata does not sign images, and an image expected signed must not be pushed unsigned: sign it with cosign in a later step"),
    ),
];

/// Whether a setting is "on": set, and not a boolean false.
fn is_on(value: &str) -> bool {
    !value.is_empty() && strata_dockerfile::go_parse::parse_bool(value) != Ok(false)
}

/// The warnings for settings that are on but ignored, and the first refused one, given a way to
/// read a setting.
pub fn check(read: impl Fn(&str) -> Option<String>) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    for setting in SETTINGS.iter().filter(|s| read(s.name).is_some_and(|v| is_on(&v))) {
        match setting.treatment {
            Treatment::Ignored(why) => warnings.push(format!("{} is accepted but ignored: {why}", setting.name)),
            Treatment::Refused(why) => return Err(format!("{}: {why}", setting.name)),
            Treatment::Honoured | Treatment::AlwaysSo(_) => {}
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_listed_once_and_in_the_readme() {
        let readme = include_str!("../../../../README.md");
        let mut seen = std::collections::HashSet::new();
        for setting in SETTINGS {
            assert!(seen.insert(setting.name), "{} is listed twice", setting.name);
            assert!(readme.contains(&format!("`{}`", setting.name)), "README.md's plugin table does not list {}", setting.name);
            assert!(!setting.plugins.is_empty() && setting.plugins.chars().all(|c| "kdb".contains(c)), "{}", setting.name);
        }
    }

    #[test]
    fn every_honoured_setting_is_read_by_plugin_mode() {
        let all = include_str!("../plugin.rs");
        let source = all.split("\n#[cfg(test)]\nmod tests").next().unwrap_or(all);
        for setting in SETTINGS.iter().filter(|s| s.treatment == Treatment::Honoured) {
            assert!(source.contains(&format!("\"{}\"", setting.name)), "{} is marked honoured but plugin.rs never reads it", setting.name);
        }
        for setting in SETTINGS.iter().filter(|s| s.treatment != Treatment::Honoured) {
            assert!(!source.contains(&format!("\"{}\"", setting.name)), "{} is read by plugin.rs but not marked honoured", setting.name);
        }
    }

    #[test]
    fn ignored_settings_warn_only_when_on_and_refused_ones_fail() {
        let env = |pairs: &'static [(&'static str, &'static str)]| move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        let w = check(env(&[("PLUGIN_MTU", "1400"), ("PLUGIN_CACHE_DIR", "false"), ("PLUGIN_REPO", "x")])).expect("no refusal");
        assert_eq!(w, vec!["PLUGIN_MTU is accepted but ignored: a Docker daemon setting; strata runs no daemon".to_string()]);
        let e = check(env(&[("PLUGIN_COSIGN_PRIVATE_KEY", "-----BEGIN")])).expect_err("refused");
        assert!(e.starts_with("PLUGIN_COSIGN_PRIVATE_KEY: strata does not sign images") && !e.contains("BEGIN"), "{e}");
    }
}

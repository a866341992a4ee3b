//! Where credentials come from: explicit options, ECR, and docker's `config.json` (`auths`,
//! `credsStore`, `credHelpers` run as `docker-credential-NAME get`).

use crate::{Client, Credentials, Error};
use base64::Engine as _;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The registry key docker's config uses for Docker Hub.
const HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// `https://index.docker.io/v1/` -> `docker.io`, `http://host:5000/x` -> `host:5000`.
pub(crate) fn normalize_registry_key(key: &str) -> String {
    let k = key.trim().trim_start_matches("https://").trim_start_matches("http://");
    let k = k.split('/').next().unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => crate::reference::DOCKER_HUB.to_string(),
        other => other.to_string(),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl Client {
    pub(crate) async fn resolve_credentials(&self, registry: &str) -> Result<Option<Credentials>, Error> {
        let norm = normalize_registry_key(registry);
        if let Some((_, c)) = self.opts.credentials.iter().find(|(h, _)| normalize_registry_key(h) == norm) {
            tracing::debug!(%registry, "using explicit credentials");
            return Ok(Some(c.clone()));
        }
        // A config.json entry written for this very host (auths, credHelpers) wins over ECR's
        // API: it is what `docker login` or the ecr-login helper left for this registry.
        let config = self.docker_config_dir().map(|d| d.join("config.json"));
        if let Some(path) = &config
            && let Some(c) = docker_config_credentials(path, &norm, false).await?
        {
            return Ok(Some(c));
        }
        if let Some(host) = crate::ecr_host::parse(registry) {
            #[cfg(feature = "ecr")]
            {
                return crate::ecr::credentials(self, registry, &host).await.map(Some);
            }
            #[cfg(not(feature = "ecr"))]
            {
                let _ = host;
                tracing::debug!(%registry, "ECR registry, but strata-registry was built without the `ecr` feature");
            }
        }
        match &config {
            Some(path) => docker_config_credentials(path, &norm, true).await,
            None => Ok(None),
        }
    }

    fn docker_config_dir(&self) -> Option<PathBuf> {
        if let Some(d) = &self.opts.docker_config_dir {
            return Some(d.clone());
        }
        if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
            return Some(PathBuf::from(d));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker"))
    }
}

/// Looks `registry` (normalised) up in a docker `config.json`: `credHelpers`, `auths`, and (when
/// `use_store`) the default `credsStore`.
pub(crate) async fn docker_config_credentials(path: &Path, registry: &str, use_store: bool) -> Result<Option<Credentials>, Error> {
    let text = match tokio::fs::read(path).await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Io { path: path.to_path_buf(), source }),
    };
    let cfg: DockerConfig = serde_json::from_slice(&text)
        .map_err(|e| Error::CredentialSource { source_name: path.display().to_string(), message: format!("not a valid docker config.json: {e}") })?;
    let server = if registry == crate::reference::DOCKER_HUB { HUB_CONFIG_KEY.to_string() } else { registry.to_string() };
    if let Some((_, helper)) = cfg.cred_helpers.iter().find(|(k, _)| normalize_registry_key(k) == registry) {
        return credential_helper(helper, &server).await;
    }
    if let Some((_, e)) = cfg.auths.iter().find(|(k, _)| normalize_registry_key(k) == registry) {
        if let Some(a) = e.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD.decode(a.trim()).map_err(|_| Error::CredentialSource {
                source_name: path.display().to_string(),
                message: format!("auths[{registry:?}].auth is not base64 of user:password"),
            })?;
            let s = String::from_utf8_lossy(&decoded);
            let (u, p) = s.split_once(':').ok_or_else(|| Error::CredentialSource {
                source_name: path.display().to_string(),
                message: format!("auths[{registry:?}].auth does not decode to user:password"),
            })?;
            return Ok(Some(Credentials { username: u.to_string(), password: p.to_string() }));
        }
        if let (Some(u), Some(p)) = (&e.username, &e.password) {
            return Ok(Some(Credentials { username: u.clone(), password: p.clone() }));
        }
        if let Some(t) = &e.identitytoken {
            // An OAuth2 refresh token, exchanged at the token endpoint (see auth.rs).
            return Ok(Some(Credentials { username: crate::auth::IDENTITY_TOKEN_USER.into(), password: t.clone() }));
        }
    }
    if let Some(store) = cfg.creds_store.as_ref().filter(|_| use_store) {
        return credential_helper(store, &server).await;
    }
    Ok(None)
}

/// Runs `docker-credential-NAME get` with the server URL on stdin.
pub(crate) async fn credential_helper(name: &str, server: &str) -> Result<Option<Credentials>, Error> {
    use tokio::io::AsyncWriteExt;
    let program = format!("docker-credential-{name}");
    let err = |message: String| Error::CredentialSource { source_name: program.clone(), message };
    if name.is_empty() || name.contains('/') {
        return Err(err(format!("invalid credential helper name {name:?}")));
    }
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| err(format!("cannot run it ({e}); is it on PATH?")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(server.as_bytes()).await.map_err(|e| err(format!("writing the server URL: {e}")))?;
    }
    let out = child.wait_with_output().await.map_err(|e| err(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The protocol's "not found" answer means: no credentials, go on anonymously.
        if stdout.contains("credentials not found") || String::from_utf8_lossy(&out.stderr).contains("credentials not found") {
            return Ok(None);
        }
        return Err(err(format!("`get` for {server} exited with {}", out.status)));
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct HelperAnswer {
        username: String,
        secret: String,
    }
    let a: HelperAnswer = serde_json::from_slice(&out.stdout).map_err(|e| err(format!("answer for {server} is not the expected JSON: {e}")))?;
    Ok(Some(Credentials { username: a.username, password: a.secret }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(normalize_registry_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_registry_key("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(normalize_registry_key("ghcr.io"), "ghcr.io");
    }
}

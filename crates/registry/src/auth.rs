//! Registry authentication: the `/v2/` challenge (none, Basic, Bearer), bearer tokens fetched from
//! the realm with service and scopes and cached per scope, and one re-authentication on 401.

use crate::transport::{Endpoint, connect_error, error_chain, http_error};
use crate::{Client, Credentials, Error};
use base64::Engine as _;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a request needs access to.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    /// The repository.
    pub repository: String,
    /// Push access (else pull only).
    pub push: bool,
    /// Also pull access to this repository (source of a cross-repository mount).
    pub mount_from: Option<String>,
}

impl Scope {
    pub fn pull(repository: &str) -> Self {
        Self { repository: repository.to_string(), push: false, mount_from: None }
    }
    pub fn push(repository: &str) -> Self {
        Self { repository: repository.to_string(), push: true, mount_from: None }
    }
    fn scopes(&self) -> Vec<String> {
        let mut v = vec![format!("repository:{}:{}", self.repository, if self.push { "pull,push" } else { "pull" })];
        if let Some(f) = &self.mount_from {
            v.push(format!("repository:{f}:pull"));
        }
        v
    }
    fn key(&self) -> String {
        self.scopes().join(" ")
    }
}

/// How a registry wants to be authenticated, from its `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `/v2/` answered without asking for credentials.
    None,
    /// `Basic realm=...`.
    Basic,
    /// `Bearer realm=...,service=...`.
    Bearer { realm: String, service: Option<String> },
}

/// Parses a `WWW-Authenticate` value.
pub(crate) fn parse_challenge(h: &str) -> Challenge {
    let h = h.trim();
    let (scheme, params) = h.split_once(' ').unwrap_or((h, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Challenge::Basic;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Challenge::None;
    }
    let p = parse_params(params);
    match p.get("realm") {
        Some(realm) => Challenge::Bearer { realm: realm.clone(), service: p.get("service").cloned() },
        None => Challenge::None,
    }
}

/// `key="value", key2=value2` (values may contain commas inside quotes).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        let key = s[ks..i].trim().to_ascii_lowercase();
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i] as char);
                i += 1;
            }
            i += 1;
        } else {
            let vs = i.min(b.len());
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs..i.min(b.len())].trim().to_string();
        }
        if !key.is_empty() {
            out.insert(key, val);
        }
    }
    out
}

/// The user name docker's config uses for an OAuth2 identity (refresh) token.
pub(crate) const IDENTITY_TOKEN_USER: &str = "<token>";

type FetchLock = std::sync::Arc<tokio::sync::Mutex<()>>;

#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires: Instant,
}

/// Challenges, tokens and credentials learnt during this client's life.
#[derive(Default)]
pub(crate) struct AuthCache {
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<(String, String), Token>>,
    creds: Mutex<HashMap<String, Option<Credentials>>>,
    /// One token fetch at a time per (registry, scope): parallel blob uploads share it.
    fetching: Mutex<HashMap<(String, String), FetchLock>>,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthCache(<redacted>)")
    }
}

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remembers a secret so [`redact`] can scrub it from any text that reaches an error or log.
pub(crate) fn remember_secret(s: &str) {
    if s.len() < 4 {
        return;
    }
    if let Ok(mut v) = SECRETS.lock()
        && !v.iter().any(|x| x == s)
    {
        v.push(s.to_string());
    }
}

/// Replaces every known secret (and its base64 forms in Basic headers) in `text` with `<redacted>`.
pub(crate) fn redact(text: &str) -> String {
    let mut out = redact_credential_fields(text);
    if let Ok(v) = SECRETS.lock() {
        for s in v.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "<redacted>");
            }
        }
    }
    out
}

/// Names of fields whose values are credentials, in the XML and JSON answers of STS, ECR and
/// token servers.
const CREDENTIAL_FIELDS: &[&str] = &[
    "SecretAccessKey",
    "secretAccessKey",
    "SessionToken",
    "sessionToken",
    "authorizationToken",
    "token",
    "access_token",
    "refresh_token",
    "password",
    "Password",
];

/// `text` with the value of every credential field masked: `<SessionToken>…</SessionToken>`
/// and `"token": "…"` (an answer strata could not parse may still be quoted in an error).
pub(crate) fn redact_credential_fields(text: &str) -> String {
    let mut out = text.to_string();
    for name in CREDENTIAL_FIELDS {
        // XML: <Name>value</Name>
        let (open, close) = (format!("<{name}>"), format!("</{name}>"));
        let mut from = 0;
        while let Some(i) = out[from..].find(&open).map(|i| i + from + open.len()) {
            let Some(j) = out[i..].find(&close).map(|j| j + i) else { break };
            out.replace_range(i..j, "<redacted>");
            from = i + "<redacted>".len() + close.len();
        }
        // JSON: "name": "value" (also with escaped quotes, as a Debug dump shows it)
        for quote in ["\"", "\\\""] {
            let key = format!("{quote}{name}{quote}");
            let mut from = 0;
            while let Some(k) = out[from..].find(&key).map(|k| k + from + key.len()) {
                let rest = &out[k..];
                let trimmed = rest.trim_start_matches([' ', ':']);
                if !rest.starts_with([' ', ':']) || !trimmed.starts_with(quote) {
                    from = k;
                    continue;
                }
                let start = k + (rest.len() - trimmed.len()) + quote.len();
                let Some(end) = out[start..].find(quote).map(|e| e + start) else { break };
                out.replace_range(start..end, "<redacted>");
                from = start + "<redacted>".len() + quote.len();
            }
        }
    }
    out
}

impl AuthCache {
    /// Forgets what made a request fail with 401, so the next attempt authenticates afresh.
    pub fn invalidate(&self, ep: &Endpoint, scope: &Scope, challenge: Option<&str>) {
        if let Ok(mut t) = self.tokens.lock() {
            t.remove(&(ep.name.clone(), scope.key()));
            t.remove(&(ep.name.clone(), Scope { push: true, ..scope.clone() }.key()));
        }
        if let Some(c) = challenge
            && let Ok(mut m) = self.challenges.lock()
        {
            m.insert(ep.base.clone(), parse_challenge(c));
        }
        // ECR tokens expire (and moto's claim to have expired in 2015): fetch a new one, once.
        if ep.is_ecr
            && let Ok(mut c) = self.creds.lock()
        {
            c.remove(&ep.name);
        }
    }
}

impl Client {
    /// The `Authorization` header value for a request to `ep` needing `scope`, if any.
    pub(crate) async fn authorization(&self, ep: &Endpoint, scope: &Scope) -> Result<Option<String>, Error> {
        let challenge = self.challenge(ep, &scope.repository).await?;
        match challenge {
            Challenge::None => Ok(None),
            Challenge::Basic => match self.credentials_for(ep).await? {
                Some(c) => Ok(Some(basic_header(&c))),
                None => Err(Error::Auth {
                    registry: ep.name.clone(),
                    repository: scope.repository.clone(),
                    message: format!(
                        "the registry asks for a username and password and none were found for {} (give credentials, or add them to DOCKER_CONFIG/config.json)",
                        ep.name
                    ),
                }),
            },
            Challenge::Bearer { realm, service } => {
                let key = (ep.name.clone(), scope.key());
                if let Some(v) = self.cached_token(&key, scope) {
                    return Ok(Some(v));
                }
                let lock = match self.auth.fetching.lock() {
                    Ok(mut m) => m.entry(key.clone()).or_default().clone(),
                    Err(_) => std::sync::Arc::default(),
                };
                let _guard = lock.lock().await;
                if let Some(v) = self.cached_token(&key, scope) {
                    return Ok(Some(v));
                }
                let tok = self.fetch_token(ep, scope, &realm, service.as_deref()).await?;
                let header = format!("Bearer {}", tok.value);
                if let Ok(mut t) = self.auth.tokens.lock() {
                    t.insert(key, tok);
                }
                Ok(Some(header))
            }
        }
    }

    /// A live cached token for `key`; a pull also takes the repository's pull+push token.
    fn cached_token(&self, key: &(String, String), scope: &Scope) -> Option<String> {
        let t = self.auth.tokens.lock().ok()?;
        let now = Instant::now();
        let push_key = (key.0.clone(), Scope { push: true, ..scope.clone() }.key());
        [key, &push_key].into_iter().find_map(|k| t.get(k).filter(|tok| tok.expires > now)).map(|tok| format!("Bearer {}", tok.value))
    }

    async fn challenge(&self, ep: &Endpoint, repository: &str) -> Result<Challenge, Error> {
        let cached = || self.auth.challenges.lock().ok().and_then(|m| m.get(&ep.base).cloned());
        if let Some(c) = cached() {
            return Ok(c);
        }
        // Parallel uploads start together: one of them asks, the others wait for its answer.
        let lock = match self.auth.fetching.lock() {
            Ok(mut m) => m.entry((ep.base.clone(), "/v2/".into())).or_default().clone(),
            Err(_) => std::sync::Arc::default(),
        };
        let _guard = lock.lock().await;
        if let Some(c) = cached() {
            return Ok(c);
        }
        let url = ep.url("");
        let mut attempt = 0;
        let resp = loop {
            let mut wait = None;
            match ep.http.get(&url).timeout(self.opts.stall_timeout).send().await {
                Ok(r) if crate::transport::is_transient_status(r.status()) && attempt < self.opts.retries => {
                    wait = crate::transport::retry_after(r.headers());
                }
                Ok(r) => break r,
                Err(e) if attempt < self.opts.retries => {
                    tracing::warn!(registry = %ep.name, "GET /v2/ failed, retrying: {}", connect_error(ep, "ping", &e));
                }
                Err(e) => return Err(connect_error(ep, &format!("{repository}: GET /v2/"), &e)),
            }
            attempt += 1;
            tokio::time::sleep(wait.unwrap_or_else(|| self.backoff(attempt))).await;
        };
        let c = match resp.headers().get(reqwest::header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()) {
            Some(h) if resp.status() == reqwest::StatusCode::UNAUTHORIZED => parse_challenge(h),
            _ if resp.status().is_success() || resp.status() == reqwest::StatusCode::NOT_FOUND => Challenge::None,
            _ => return Err(http_error(ep, repository, "GET /v2/", resp).await),
        };
        tracing::debug!(registry = %ep.name, challenge = ?c, "registry auth challenge");
        if let Ok(mut m) = self.auth.challenges.lock() {
            m.insert(ep.base.clone(), c.clone());
        }
        Ok(c)
    }

    /// Credentials for `ep`, resolved once: explicit, then ECR, then docker config.
    pub(crate) async fn credentials_for(&self, ep: &Endpoint) -> Result<Option<Credentials>, Error> {
        if let Ok(c) = self.auth.creds.lock()
            && let Some(v) = c.get(&ep.name)
        {
            return Ok(v.clone());
        }
        let found = self.resolve_credentials(&ep.name).await?;
        if let Some(c) = &found {
            remember_secret(&c.password);
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
            remember_secret(&b);
        }
        if let Ok(mut c) = self.auth.creds.lock() {
            c.insert(ep.name.clone(), found.clone());
        }
        Ok(found)
    }

    async fn fetch_token(&self, ep: &Endpoint, scope: &Scope, realm: &str, service: Option<&str>) -> Result<Token, Error> {
        let creds = self.credentials_for(ep).await?;
        let mut url = url::Url::parse(realm).map_err(|e| Error::Protocol {
            registry: ep.name.clone(),
            repository: scope.repository.clone(),
            action: "token".into(),
            message: format!("bearer realm {realm:?} is not a URL: {e}"),
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scope.scopes() {
                q.append_pair("scope", &s);
            }
        }
        let mut attempt = 0;
        // Credentials for a registry reached over HTTPS never go over plain HTTP on the
        // network (a token service on this machine's loopback crosses no wire).
        let loopback_realm = url.host_str().is_some_and(crate::transport::is_loopback);
        if creds.is_some() && ep.base.starts_with("https://") && url.scheme() == "http" && !loopback_realm {
            return Err(Error::Auth {
                registry: ep.name.clone(),
                repository: scope.repository.clone(),
                message: format!(
                    "the registry's token service {} is plain HTTP; refusing to send the credentials for an HTTPS registry over it",
                    url.origin().ascii_serialization()
                ),
            });
        }
        let resp = loop {
            let rb = match &creds {
                // An identity token (docker's "<token>" user) is an OAuth2 refresh token: it is
                // exchanged with a POST, as docker does, never sent as a password.
                Some(c) if c.username == IDENTITY_TOKEN_USER => {
                    let mut form = url::form_urlencoded::Serializer::new(String::new());
                    form.append_pair("grant_type", "refresh_token").append_pair("refresh_token", &c.password).append_pair("client_id", "strata");
                    if let Some(s) = service {
                        form.append_pair("service", s);
                    }
                    form.append_pair("scope", &scope.scopes().join(" "));
                    let mut post_url = url.clone();
                    post_url.set_query(None);
                    ep.http.post(post_url.as_str()).header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(form.finish())
                }
                Some(c) => ep.http.get(url.as_str()).header(reqwest::header::AUTHORIZATION, basic_header(c)),
                None => ep.http.get(url.as_str()),
            }
            .timeout(self.opts.stall_timeout);
            let mut wait = None;
            match rb.send().await {
                Ok(r) if crate::transport::is_transient_status(r.status()) && attempt < self.opts.retries => {
                    wait = crate::transport::retry_after(r.headers());
                }
                Ok(r) => break r,
                Err(e) if attempt < self.opts.retries => {
                    tracing::warn!(registry = %ep.name, "token request failed, retrying: {}", connect_error(ep, "token", &e));
                }
                Err(e) => return Err(connect_error(ep, &format!("{}: token request", scope.repository), &e)),
            }
            attempt += 1;
            tokio::time::sleep(wait.unwrap_or_else(|| self.backoff(attempt))).await;
        };
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let detail = crate::transport::error_detail(resp).await;
            return Err(Error::Auth {
                registry: ep.name.clone(),
                repository: scope.repository.clone(),
                message: format!(
                    "token server {} answered HTTP {status}{detail}{}",
                    url.host_str().unwrap_or(""),
                    if creds.is_none() { " (no credentials were found for this registry)" } else { "" }
                ),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let raw = crate::limits::read_body(resp, None, crate::limits::MAX_TOKEN_BYTES).await.map_err(|e| match e {
            crate::limits::BodyError::Transport(e) => Error::Auth {
                registry: ep.name.clone(),
                repository: scope.repository.clone(),
                message: format!("reading the token response: {}", error_chain(&e)),
            },
            _ => Error::Auth {
                registry: ep.name.clone(),
                repository: scope.repository.clone(),
                message: format!("token server {} sent more than {} bytes; refused", url.host_str().unwrap_or(""), crate::limits::MAX_TOKEN_BYTES),
            },
        })?;
        let body: TokenResponse = serde_json::from_slice(&raw).map_err(|e| Error::Auth {
            registry: ep.name.clone(),
            repository: scope.repository.clone(),
            message: format!("token response is not JSON: {e}"),
        })?;
        let value = body.token.or(body.access_token).filter(|t| !t.is_empty()).ok_or_else(|| Error::Auth {
            registry: ep.name.clone(),
            repository: scope.repository.clone(),
            message: "token response has neither token nor access_token".into(),
        })?;
        remember_secret(&value);
        // The spec's default lifetime is 60 s; keep a margin so a token never expires in flight.
        let life = Duration::from_secs(body.expires_in.unwrap_or(60).max(60));
        Ok(Token { value, expires: Instant::now() + life - Duration::from_secs(20) })
    }
}

pub(crate) fn basic_header(c: &Credentials) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
    format!("Basic {b}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn credential_fields_are_masked_in_xml_json_and_debug_dumps() {
        let xml = "<Credentials><AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>s3cr3t</SecretAccessKey><SessionToken>t0k</SessionToken></Credentials>";
        assert_eq!(
            super::redact_credential_fields(xml),
            "<Credentials><AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey><redacted></SecretAccessKey><SessionToken><redacted></SessionToken></Credentials>"
        );
        let json = r#"{"token": "abc", "access_token":"def", "expires_in": 300}"#;
        assert_eq!(super::redact_credential_fields(json), r#"{"token": "<redacted>", "access_token":"<redacted>", "expires_in": 300}"#);
        let debug = r#"body: b"{\"authorizationData\":[{\"authorizationToken\":\"QVdTOnBhc3M=\"}]}""#;
        assert!(!super::redact_credential_fields(debug).contains("QVdTOnBhc3M="), "{}", super::redact_credential_fields(debug));
        assert_eq!(super::redact_credential_fields("no secrets here"), "no secrets here");
        assert_eq!(super::redact_credential_fields("<SessionToken>unclosed"), "<SessionToken>unclosed");
    }

    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#),
            Challenge::Bearer { realm: "https://auth.docker.io/token".into(), service: Some("registry.docker.io".into()) }
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Challenge::Basic);
        assert_eq!(parse_challenge("bearer realm=http://x/t"), Challenge::Bearer { realm: "http://x/t".into(), service: None });
    }

    #[test]
    fn redaction() {
        remember_secret("hunter2-secret");
        assert_eq!(redact("bad password hunter2-secret!"), "bad password <redacted>!");
    }
}

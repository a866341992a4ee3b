//! Reaching a registry: the URL and HTTP client per registry (maps, mirrors, plain HTTP, TLS
//! settings, client certificates), authenticated requests, and retries with backoff.

use crate::auth::Scope;
use crate::{Client, Error};
use rand::Rng;
use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One way to reach a registry: base URL and a client configured for it.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// The registry name credentials and tokens are keyed by (`docker.io`, the ECR host, a mirror).
    pub name: String,
    /// `scheme://host:port[/prefix]`, without a trailing slash.
    pub base: String,
    /// HTTP client with this registry's TLS settings.
    pub http: reqwest::Client,
    /// ECR registry: monolithic uploads, tokens from the ECR API.
    pub is_ecr: bool,
    /// For a loopback registry not listed as insecure: the plain-HTTP base to fall back to when
    /// the registry does not speak TLS (decided once, before the first request).
    http_fallback: Option<String>,
    /// Set when `http` cannot verify HTTPS (no CA certificates at all): why HTTPS is refused.
    /// Only loopback endpoints get this far, to find out whether they speak plain HTTP.
    unverifiable: Option<String>,
}

impl Endpoint {
    /// `base/v2/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{}", self.base, path)
    }

    /// Whether `url` is on this registry itself (same scheme, host and port), the only place
    /// its credentials may go (go-containerregistry's rule): an upload `Location` or a
    /// redirect to a storage host, or to plain HTTP, gets no Authorization.
    pub fn owns(&self, url: &reqwest::Url) -> bool {
        match reqwest::Url::parse(&self.base) {
            Ok(base) => base.scheme() == url.scheme() && base.host_str() == url.host_str() && base.port_or_known_default() == url.port_or_known_default(),
            Err(_) => false,
        }
    }

    /// Resolves a `Location` header (absolute, or relative to the registry root).
    pub fn resolve_location(&self, loc: &str) -> String {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            return loc.to_string();
        }
        // The base may carry a mirror path prefix; Location paths are absolute from the host.
        let root = match self.base.find("://").and_then(|i| self.base[i + 3..].find('/').map(|j| i + 3 + j)) {
            Some(cut) => &self.base[..cut],
            None => &self.base,
        };
        if loc.starts_with('/') { format!("{root}{loc}") } else { format!("{root}/{loc}") }
    }
}

/// rustls needs exactly one process-wide crypto provider; with the AWS SDK in the build two may
/// be compiled in, and rustls then refuses to pick one, so install aws-lc-rs explicitly (once).
pub(crate) fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// Whether `hostport` names this machine's loopback: `localhost`, `127.0.0.0/8` or `::1`.
/// Only these registries may fall back to plain HTTP without `--insecure-registry`, as Docker
/// and go-containerregistry (kaniko) allow; a name is never resolved to decide it.
pub(crate) fn is_loopback(hostport: &str) -> bool {
    let host = host_of(hostport);
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Loopback registries found to speak plain HTTP (`true`) or HTTPS (`false`), by HTTPS base URL,
/// for the rest of the process: every `Client` probes a given registry at most once.
fn loopback_schemes() -> &'static Mutex<HashMap<String, bool>> {
    static SCHEMES: OnceLock<Mutex<HashMap<String, bool>>> = OnceLock::new();
    SCHEMES.get_or_init(Mutex::default)
}

/// How long the HTTPS and the plain-HTTP probe of a loopback registry may take.
const LOOPBACK_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

fn host_of(hostport: &str) -> &str {
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
}

/// Whether an option's registry entry (`host[:port]`, scheme and trailing `/` tolerated) names `name`.
fn matches_host(list_entry: &str, name: &str) -> bool {
    list_entry.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/') == name
}

/// Which way a request moves an image: pull-only settings (`--insecure-pull`,
/// `--skip-tls-verify-pull`) apply to pulls alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Pushes, and what a push needs to read (existing tags, blob checks, mounts).
    Push,
    /// Pulls: manifests, configs and layers read to build.
    Pull,
}

impl Client {
    /// The endpoint for pushes and direct pulls from `registry` (maps applied, no mirrors).
    pub(crate) async fn endpoint(&self, registry: &str) -> Result<Arc<Endpoint>, Error> {
        self.endpoint_for(registry, registry, Direction::Push).await
    }

    /// Endpoints to try in order for pulls: mirrors first for docker.io, then the registry.
    pub(crate) async fn pull_endpoints(&self, registry: &str) -> Result<Vec<Arc<Endpoint>>, Error> {
        let mut out = Vec::new();
        if registry == crate::reference::DOCKER_HUB {
            for m in &self.opts.registry_mirrors {
                let m = m.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/');
                let host = m.split('/').next().unwrap_or(m);
                out.push(self.endpoint_for(host, m, Direction::Pull).await?);
            }
        }
        out.push(self.endpoint_for(registry, registry, Direction::Pull).await?);
        Ok(out)
    }

    async fn endpoint_for(&self, name: &str, target: &str, direction: Direction) -> Result<Arc<Endpoint>, Error> {
        // Pulls share the push endpoint unless a pull-only setting makes them differ.
        let pull_only = direction == Direction::Pull && (self.opts.insecure_pull || self.opts.skip_tls_verify_pull);
        let key = if pull_only { format!("pull|{name}|{target}") } else { format!("{name}|{target}") };
        if let Ok(m) = self.endpoints.lock()
            && let Some(ep) = m.get(&key)
        {
            return Ok(ep.clone());
        }
        let mut ep = self.build_endpoint(name, target, if pull_only { Direction::Pull } else { Direction::Push })?;
        if let Some(http_base) = ep.http_fallback.take() {
            if speaks_plain_http(&ep, &http_base).await {
                ep.base = http_base;
            } else if let Some(message) = ep.unverifiable.take() {
                return Err(Error::Options(message));
            }
        }
        let ep = Arc::new(ep);
        if let Ok(mut m) = self.endpoints.lock() {
            m.insert(key, ep.clone());
        }
        Ok(ep)
    }

    fn build_endpoint(&self, name: &str, target: &str, direction: Direction) -> Result<Endpoint, Error> {
        let o = &self.opts;
        let pull = direction == Direction::Pull;
        let (mut hostport, prefix) = match target.split_once('/') {
            Some((h, p)) => (h.to_string(), format!("/{}", p.trim_matches('/'))),
            None => (target.to_string(), String::new()),
        };
        if hostport == crate::reference::DOCKER_HUB {
            hostport = "registry-1.docker.io".into();
        }
        let mapped = o.registry_maps.iter().find(|(from, _)| map_key_matches(from, name, &hostport)).map(|(_, to)| to.clone());
        let insecure_listed = |h: &str| o.insecure_registries.iter().any(|e| matches_host(e, h));
        let insecure =
            o.insecure || (pull && o.insecure_pull) || insecure_listed(name) || insecure_listed(&hostport) || mapped.as_deref().is_some_and(insecure_listed);
        let scheme = if insecure { "http" } else { "https" };
        let mut resolve = None;
        if let Some(to) = mapped {
            let to_host = host_of(&to);
            let to_ip = to_host.parse::<IpAddr>().ok();
            let from_host = host_of(&hostport).to_string();
            let from_is_name = from_host.parse::<IpAddr>().is_err() && !from_host.starts_with('[');
            match (to_ip, scheme, from_is_name) {
                // Keep the registry's own name in the URL (TLS verifies against it, e.g. the
                // ECR wildcard SAN) while connecting to the mapped address.
                (Some(ip), "https", true) => {
                    let port = to.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).unwrap_or(443);
                    resolve = Some((from_host.clone(), SocketAddr::new(ip, port)));
                    hostport = format!("{from_host}:{port}");
                }
                _ => hostport = to,
            }
        }
        // `resolve` set: the URL keeps the registry's own (non-loopback) name for TLS.
        let http_fallback = (scheme == "https" && resolve.is_none() && is_loopback(&hostport)).then(|| format!("http://{hostport}{prefix}"));
        let mut unverifiable = None;
        let skip_verify = o.skip_tls_verify
            || (pull && o.skip_tls_verify_pull)
            || o.skip_tls_verify_registries.iter().any(|e| matches_host(e, name) || matches_host(e, &hostport));
        let per_registry = o.registry_ca_certs.iter().filter(|(h, _)| matches_host(h, name) || matches_host(h, &hostport));
        let mut roots = Vec::new();
        for path in o.ca_certs.iter().chain(per_registry.map(|(_, p)| p)) {
            roots.extend(read_ca(path)?);
        }
        let mut identity = None;
        if let Some((_, cert, key)) = o.client_certs.iter().find(|(h, _, _)| matches_host(h, name) || matches_host(h, &hostport)) {
            let mut pem = read_file(cert)?;
            pem.push(b'\n');
            pem.extend(read_file(key)?);
            identity = Some(
                reqwest::Identity::from_pem(&pem)
                    .map_err(|e| Error::Options(format!("client certificate {} / key {}: {}", cert.display(), key.display(), error_chain(&e))))?,
            );
        }
        // `system_roots` false: the given CA certificates only (a container without /etc/ssl).
        let make = |system_roots: bool, accept_invalid: bool| {
            let mut b = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(15))
                .pool_idle_timeout(Duration::from_secs(60))
                .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")));
            if let Some((host, addr)) = &resolve {
                b = b.resolve(host, *addr);
            }
            if accept_invalid {
                b = b.tls_danger_accept_invalid_certs(true);
            }
            b = if system_roots { b.tls_certs_merge(roots.clone()) } else { b.tls_certs_only(roots.clone()) };
            if let Some(id) = &identity {
                b = b.identity(id.clone());
            }
            b.build()
        };
        let http = match make(true, skip_verify) {
            Ok(c) => c,
            Err(e) if error_chain(&e).contains("No CA certificates") => {
                if !roots.is_empty() {
                    tracing::warn!(registry = name, "no system CA certificates; trusting only the given --registry-certificate/--ca-cert");
                    make(false, skip_verify)
                } else if insecure || skip_verify {
                    // Plain HTTP (or verification off anyway): TLS is only met on redirects, whose
                    // content is still checked against its digest.
                    tracing::warn!(registry = name, "no system CA certificates: TLS on redirects from this plain-HTTP registry is not verified");
                    make(true, true).or_else(|_| make(false, true))
                } else {
                    let message = format!(
                        "HTTPS registry {name}: no CA certificates found on this system (/etc/ssl/certs, SSL_CERT_FILE, SSL_CERT_DIR); \
                         install ca-certificates, set SSL_CERT_FILE, or give --registry-certificate {name}=CA.pem"
                    );
                    if http_fallback.is_none() {
                        return Err(Error::Options(message));
                    }
                    // A loopback registry may not speak TLS at all, and then needs no CA: the
                    // probe finds out (unverified, sending nothing but `GET /v2/`), and if it
                    // does speak TLS the endpoint is refused with this message.
                    unverifiable = Some(message);
                    make(true, true).or_else(|_| make(false, true))
                }
                .map_err(|e| Error::Options(format!("HTTP client for {name}: {}", error_chain(&e))))?
            }
            Err(e) => return Err(Error::Options(format!("HTTP client for {name}: {}", error_chain(&e)))),
        };
        Ok(Endpoint {
            name: name.to_string(),
            base: format!("{scheme}://{hostport}{prefix}"),
            http,
            is_ecr: crate::ecr_host::parse(name).is_some(),
            http_fallback,
            unverifiable,
        })
    }

    /// Sends an authenticated request built by `build` (called again for each attempt), retrying
    /// transient failures up to `retries` times and re-authenticating once on 401. Returns every
    /// other response, successful or not, for the caller to judge.
    pub(crate) async fn send<F>(&self, ep: &Endpoint, scope: &Scope, action: &str, retries: u32, build: F) -> Result<Response, Error>
    where
        F: Fn(&reqwest::Client) -> Result<RequestBuilder, Error>,
    {
        let mut attempt = 0u32;
        let mut reauthed = false;
        loop {
            let rb = build(&ep.http)?;
            let mut req = rb.build().map_err(|e| connect_error(ep, &format!("{}: {action}", scope.repository), &e))?;
            if ep.owns(req.url()) {
                if let Some(a) = self.authorization(ep, scope).await? {
                    let value = reqwest::header::HeaderValue::from_str(&a).map_err(|_| Error::Auth {
                        registry: ep.name.clone(),
                        repository: scope.repository.clone(),
                        message: "the credentials hold bytes an HTTP header cannot carry".into(),
                    })?;
                    req.headers_mut().insert(AUTHORIZATION, value);
                }
            } else {
                tracing::debug!(registry = %ep.name, "{action}: {} is not the registry's own host and scheme; sending no credentials", req.url().origin().ascii_serialization());
            }
            let failure = match ep.http.execute(req).await {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    let challenge = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(str::to_string);
                    if reauthed {
                        let detail = error_detail(resp).await;
                        return Err(Error::Auth {
                            registry: ep.name.clone(),
                            repository: scope.repository.clone(),
                            message: format!("{action}: HTTP 401 after re-authenticating{detail} (check the credentials for {})", ep.name),
                        });
                    }
                    tracing::debug!(registry = %ep.name, repository = %scope.repository, "401: re-authenticating once");
                    self.auth.invalidate(ep, scope, challenge.as_deref());
                    reauthed = true;
                    continue;
                }
                Ok(resp) if is_transient_status(resp.status()) => {
                    let wait = retry_after(resp.headers());
                    let status = resp.status().as_u16();
                    let detail = error_detail(resp).await;
                    (Error::Http { registry: ep.name.clone(), repository: scope.repository.clone(), action: action.to_string(), status, detail }, wait)
                }
                Ok(resp) => return Ok(resp),
                Err(e) => (connect_error(ep, &format!("{}: {action}", scope.repository), &e), None),
            };
            let (err, wait) = failure;
            if attempt >= retries {
                return Err(err);
            }
            attempt += 1;
            let delay = wait.unwrap_or_else(|| self.backoff(attempt));
            tracing::warn!(registry = %ep.name, %action, attempt, delay_ms = delay.as_millis() as u64, "retrying: {err}");
            tokio::time::sleep(delay).await;
        }
    }

    /// Exponential backoff with full jitter: a random delay in [d/2, d], d = base * 2^(attempt-1), at most 30 s.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let base = self.opts.retry_base_delay.as_millis().max(1) as u64;
        let d = base.saturating_mul(1u64 << attempt.saturating_sub(1).min(16)).min(30_000);
        Duration::from_millis(rand::rng().random_range(d / 2..=d))
    }
}

/// Whether the loopback registry behind `ep` (an HTTPS endpoint) must be reached over plain
/// HTTP at `http_base`: its HTTPS port does not speak TLS (or refuses the connection) and plain
/// HTTP gets a registry's answer. A certificate the client does not trust is never a reason to
/// go plain: that registry does speak TLS, and credentials must keep going over it. The answer
/// is remembered for the process.
async fn speaks_plain_http(ep: &Endpoint, http_base: &str) -> bool {
    if let Some(plain) = loopback_schemes().lock().ok().and_then(|m| m.get(&ep.base).copied()) {
        return plain;
    }
    let remember = |plain: bool| {
        if let Ok(mut m) = loopback_schemes().lock() {
            m.insert(ep.base.clone(), plain);
        }
    };
    let https_error = match ep.http.get(ep.url("")).timeout(LOOPBACK_PROBE_TIMEOUT).send().await {
        Ok(_) => {
            remember(false);
            return false;
        }
        Err(e) => error_chain(&reqwest_without_url(&e)),
    };
    if https_error.to_ascii_lowercase().contains("certificate") {
        tracing::debug!(registry = %ep.name, "HTTPS probe failed on the certificate; staying on HTTPS: {https_error}");
        return false;
    }
    let url = format!("{http_base}/v2/");
    match ep.http.get(&url).timeout(LOOPBACK_PROBE_TIMEOUT).send().await {
        // A registry answers `/v2/` with 200 or 401; a TLS port answers plain HTTP with 400.
        Ok(resp) if resp.url().scheme() == "http" && (resp.status().is_success() || resp.status() == StatusCode::UNAUTHORIZED) => {
            tracing::info!(registry = %ep.name, "loopback registry without TLS: using plain HTTP (as Docker does for localhost and 127.0.0.0/8)");
            tracing::debug!(registry = %ep.name, "HTTPS probe of {} failed: {https_error}", ep.base);
            remember(true);
            true
        }
        // Neither answers (down, or not a registry): keep HTTPS, so errors name the HTTPS URL.
        _ => false,
    }
}

pub(crate) fn is_transient_status(s: StatusCode) -> bool {
    s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT
}

/// `Retry-After` in seconds (HTTP dates are rare for registries and fall back to backoff), at most 60 s.
pub(crate) fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let secs: u64 = h.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(60)))
}

/// The message of an error and its sources, without URLs (they may carry upload state).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

pub(crate) fn connect_error(ep: &Endpoint, action: &str, e: &reqwest::Error) -> Error {
    let e2 = reqwest_without_url(e);
    let mut message = error_chain(&e2);
    if e.is_timeout() {
        message.push_str(" (timed out)");
    }
    Error::Connect { registry: ep.name.clone(), action: action.to_string(), message: format!("{message} ({})", ep.base) }
}

fn reqwest_without_url(e: &reqwest::Error) -> ReqwestMessage {
    ReqwestMessage(e.to_string().split(" for url (").next().unwrap_or_default().to_string(), std::error::Error::source(e).map(error_chain))
}

#[derive(Debug)]
struct ReqwestMessage(String, Option<String>);
impl std::fmt::Display for ReqwestMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.1 {
            Some(s) => write!(f, "{}: {}", self.0, s),
            None => write!(f, "{}", self.0),
        }
    }
}
impl std::error::Error for ReqwestMessage {}

/// A short excerpt of an error body (the registry's JSON error), prefixed with ": ".
pub(crate) async fn error_detail(resp: Response) -> String {
    let raw = crate::limits::read_prefix(resp, crate::limits::MAX_ERROR_BODY_BYTES).await;
    let text = String::from_utf8_lossy(&raw);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let short: String = text.chars().take(300).collect();
    format!(": {}", crate::auth::redact(&short))
}

/// An `Error::Http` for an unexpected response.
pub(crate) async fn http_error(ep: &Endpoint, repository: &str, action: &str, resp: Response) -> Error {
    let status = resp.status().as_u16();
    Error::Http { registry: ep.name.clone(), repository: repository.to_string(), action: action.to_string(), status, detail: error_detail(resp).await }
}

fn read_file(p: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(p).map_err(|source| Error::Io { path: p.to_path_buf(), source })
}

fn read_ca(p: &Path) -> Result<Vec<reqwest::Certificate>, Error> {
    let pem = read_file(p)?;
    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::Options(format!("CA certificate {}: {}", p.display(), error_chain(&e))))
}

/// Time of the last byte moved, shared by a transfer and its stall watchdog.
#[derive(Debug, Clone)]
pub(crate) struct Activity {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    pub fn new() -> Self {
        Self { start: Instant::now(), last_ms: Arc::new(AtomicU64::new(0)) }
    }
    pub fn touch(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn idle(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Runs `fut`, failing with a timeout when `activity` sees no progress for `limit`.
pub(crate) async fn stall_guard<T>(
    activity: &Activity,
    limit: Duration,
    fut: impl Future<Output = Result<T, Error>>,
    on_stall: impl FnOnce() -> Error,
) -> Result<T, Error> {
    activity.touch();
    let watchdog = async {
        loop {
            let idle = activity.idle();
            if idle >= limit {
                return;
            }
            tokio::time::sleep((limit - idle).max(Duration::from_millis(50))).await;
        }
    };
    tokio::select! {
        r = fut => r,
        () = watchdog => Err(on_stall()),
    }
}

/// Whether a `--registry-map` key names this registry. Docker Hub's names are one
/// registry: `docker.io`, `index.docker.io` (kaniko's README) and `registry-1.docker.io`.
fn map_key_matches(from: &str, name: &str, hostport: &str) -> bool {
    let hub = |h: &str| ["docker.io", "index.docker.io", "registry-1.docker.io"].iter().any(|d| h.eq_ignore_ascii_case(d));
    from == name || from == hostport || (hub(from) && name == crate::reference::DOCKER_HUB)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientOptions;

    fn fallback_of(opts: ClientOptions, registry: &str) -> Option<String> {
        let client = Client::new(opts).unwrap_or_else(|e| panic!("client: {e}"));
        client.build_endpoint(registry, registry, Direction::Push).unwrap_or_else(|e| panic!("{registry}: {e}")).http_fallback
    }

    #[test]
    fn credentials_go_only_to_the_registrys_own_scheme_host_and_port() {
        let client = Client::new(ClientOptions::default()).unwrap_or_else(|e| panic!("client: {e}"));
        let ep = client.build_endpoint("registry.example.com:5445", "registry.example.com:5445", Direction::Push).unwrap_or_else(|e| panic!("{e}"));
        assert!(ep.base.starts_with("https://"), "{}", ep.base);
        let owns = |u: &str| ep.owns(&reqwest::Url::parse(u).unwrap_or_else(|e| panic!("{u}: {e}")));
        assert!(owns("https://registry.example.com:5445/v2/a/blobs/uploads/1?_state=x"));
        assert!(owns(&ep.resolve_location("/v2/a/blobs/uploads/2")), "a relative Location is the registry's");
        assert!(!owns("http://registry.example.com:5445/v2/a/blobs/uploads/1"), "never over plain HTTP");
        assert!(!owns("https://registry.example.com:5107/upload/1"), "another port is another host");
        assert!(!owns("https://storage.example.net/blob?sig=1"), "another host");
        assert!(!owns("https://registry.example.com.evil.net:5445/v2/"), "a longer name is another host");
        let hub = client.build_endpoint("docker.io", "docker.io", Direction::Push).unwrap_or_else(|e| panic!("{e}"));
        assert!(hub.owns(&reqwest::Url::parse("https://registry-1.docker.io/v2/library/x/manifests/1").unwrap_or_else(|e| panic!("{e}"))));
        assert!(!hub.owns(&reqwest::Url::parse("https://production.cloudflare.docker.com/registry-v2/x").unwrap_or_else(|e| panic!("{e}"))));
    }

    #[tokio::test]
    async fn pull_only_settings_leave_pushes_on_verified_https() {
        let opts = ClientOptions { insecure_pull: true, ..Default::default() };
        let client = Client::new(opts).unwrap_or_else(|e| panic!("client: {e}"));
        let pull = client.pull_endpoints("registry.example.com:5000").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pull.iter().map(|e| e.base.as_str()).collect::<Vec<_>>(), ["http://registry.example.com:5000"]);
        let push = client.endpoint("registry.example.com:5000").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(push.base, "https://registry.example.com:5000", "--insecure-pull must not make pushes plain");
        // Without pull-only settings pulls and pushes share one endpoint.
        let client = Client::new(ClientOptions::default()).unwrap_or_else(|e| panic!("client: {e}"));
        let pull = client.pull_endpoints("registry.example.com:5000").await.unwrap_or_else(|e| panic!("{e}"));
        let push = client.endpoint("registry.example.com:5000").await.unwrap_or_else(|e| panic!("{e}"));
        assert!(Arc::ptr_eq(&pull[0], &push));
        // --skip-tls-verify-pull keeps HTTPS for both, with a pull endpoint of its own.
        let client = Client::new(ClientOptions { skip_tls_verify_pull: true, ..Default::default() }).unwrap_or_else(|e| panic!("client: {e}"));
        let pull = client.pull_endpoints("registry.example.com:5000").await.unwrap_or_else(|e| panic!("{e}"));
        let push = client.endpoint("registry.example.com:5000").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((pull[0].base.as_str(), push.base.as_str()), ("https://registry.example.com:5000", "https://registry.example.com:5000"));
        assert!(!Arc::ptr_eq(&pull[0], &push));
    }

    #[test]
    fn only_loopback_hosts_count_as_loopback() {
        for h in ["localhost", "localhost:5000", "LOCALHOST:5000", "127.0.0.1", "127.0.0.1:5000", "127.1.2.3:80", "[::1]:5000", "[::1]"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "registry.example.com:5000",
            "10.0.0.1:5000",
            "0.0.0.0:5000",
            "[::]:5000",
            "localhost.example.com:5000",
            "127.0.0.1.nip.io:5000",
            "mylocalhost:5000",
            "docker.io",
            "[::ffff:127.0.0.1]:5000",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn docker_hub_map_keys_are_equivalent() {
        for key in ["docker.io", "index.docker.io", "registry-1.docker.io", "Index.Docker.IO"] {
            let opts = ClientOptions { registry_maps: vec![(key.into(), "mirror.test:5000".into())], ..Default::default() };
            let client = Client::new(opts).unwrap_or_else(|e| panic!("client: {e}"));
            let ep = client.build_endpoint("docker.io", "docker.io", Direction::Push).unwrap_or_else(|e| panic!("{key}: {e}"));
            assert_eq!(ep.base, "https://mirror.test:5000", "--registry-map {key}=...");
        }
        // Other registries are not Docker Hub.
        assert!(!map_key_matches("index.docker.io", "quay.io", "quay.io"));
        assert!(map_key_matches("quay.io", "quay.io", "quay.io"));
    }

    #[test]
    fn non_loopback_registries_never_get_a_plain_http_fallback() {
        for r in ["registry.example.com:5000", "10.0.0.1:5000", "docker.io", "localhost.example.com"] {
            assert_eq!(fallback_of(ClientOptions::default(), r), None, "{r}");
        }
        // A name mapped onto a loopback address keeps its name for TLS: no fallback either.
        let opts = ClientOptions { registry_maps: vec![("plain.registry.test:5000".into(), "127.0.0.1:5000".into())], ..Default::default() };
        assert_eq!(fallback_of(opts, "plain.registry.test:5000"), None);
    }

    #[tokio::test]
    async fn the_plain_http_choice_is_made_once_per_process() {
        // The plain registry scripts/test.sh starts (docker-registry); skipped loudly without it.
        let Some(addr) = std::env::var("STRATA_TEST_REGISTRY_HTTP").ok().filter(|a| is_loopback(a)) else {
            strata_test_support::skip("the_plain_http_choice_is_made_once_per_process", "STRATA_TEST_REGISTRY_HTTP is not set (run scripts/test.sh)");
            return;
        };
        let first = Client::new(ClientOptions::default()).unwrap_or_else(|e| panic!("client: {e}"));
        let ep = first.endpoint(&addr).await.unwrap_or_else(|e| panic!("{addr}: {e}"));
        assert_eq!(ep.base, format!("http://{addr}"));
        let remembered = loopback_schemes().lock().ok().and_then(|m| m.get(&format!("https://{addr}")).copied());
        assert_eq!(remembered, Some(true));
        // Another client in the process takes the remembered answer.
        let second = Client::new(ClientOptions::default()).unwrap_or_else(|e| panic!("client: {e}"));
        assert_eq!(second.endpoint(&addr).await.unwrap_or_else(|e| panic!("{addr}: {e}")).base, format!("http://{addr}"));
    }

    #[test]
    fn loopback_registries_fall_back_unless_the_scheme_is_given() {
        assert_eq!(fallback_of(ClientOptions::default(), "127.0.0.1:5000").as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(fallback_of(ClientOptions::default(), "localhost:5000").as_deref(), Some("http://localhost:5000"));
        assert_eq!(fallback_of(ClientOptions::default(), "[::1]:5000").as_deref(), Some("http://[::1]:5000"));
        // Listed as insecure: plain HTTP from the start, nothing to probe.
        let insecure = ClientOptions { insecure_registries: vec!["127.0.0.1:5000".into()], ..Default::default() };
        assert_eq!(fallback_of(insecure, "127.0.0.1:5000"), None);
        let all = ClientOptions { insecure: true, ..Default::default() };
        assert_eq!(fallback_of(all, "localhost:5000"), None);
    }
}

//! TLS + bearer-token auth against a real docker-registry (`auth: token`) started by this test,
//! with a token issuer in the test that signs real RS256 JWTs (openssl) with a key and
//! certificate generated here; the registry trusts that certificate via `rootcertbundle`.
//! Also checks that no password or token reaches the logs or an error.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use strata_registry::{Client, ClientOptions, Credentials, Error, Platform, Reference};

const SERVICE: &str = "strata-token-test";
const ISSUER: &str = "strata-test-issuer";
const USER: &str = "builder";
const PASS: &str = "token-test-secret-PASSWORD-1";
const REFRESH: &str = "refresh-token-SECRET-3";

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A token server: Basic auth with USER/PASS gets the requested actions, anyone else gets `pull` only.
struct Issuer {
    realm: String,
    issued: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

fn start_issuer(pki: PathBuf) -> Issuer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let realm = format!("http://{}/token", listener.local_addr().unwrap());
    let issued = Arc::new(Mutex::new(Vec::new()));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (iss, reqs) = (issued.clone(), requests.clone());
    std::thread::spawn(move || {
        let x5c = base64::engine::general_purpose::STANDARD.encode(std::fs::read(pki.join("token.der")).unwrap());
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let post = line.starts_with("POST ");
            let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut authorized = false;
            let mut body_len = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    body_len = v.trim().parse().unwrap_or(0);
                }
                if let Some(v) = h.strip_prefix("Authorization: Basic ").or_else(|| h.strip_prefix("authorization: Basic ")) {
                    let dec = base64::engine::general_purpose::STANDARD.decode(v.trim()).unwrap_or_default();
                    authorized = dec == format!("{USER}:{PASS}").as_bytes();
                }
            }
            let mut body = vec![0u8; body_len];
            let _ = reader.read_exact(&mut body);
            // OAuth2 (POST): a refresh token in the form instead of Basic credentials.
            let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
            if post {
                authorized =
                    form.iter().any(|(k, v)| k == "grant_type" && v == "refresh_token") && form.iter().any(|(k, v)| k == "refresh_token" && v == REFRESH);
            }
            reqs.lock().unwrap().push(format!("{}{target}", if post { "POST " } else { "" }));
            let url = url::Url::parse(&format!("http://x{target}")).unwrap();
            let mut access = Vec::new();
            let scopes: Vec<(String, String)> = if post {
                form.iter()
                    .filter(|(k, _)| k == "scope")
                    .flat_map(|(_, v)| v.split(' ').map(|s| ("scope".to_string(), s.to_string())).collect::<Vec<_>>())
                    .collect()
            } else {
                url.query_pairs().into_owned().collect()
            };
            for (k, v) in scopes {
                if k == "scope" {
                    let parts: Vec<&str> = v.split(':').collect();
                    if parts.len() == 3 {
                        let actions: Vec<&str> = parts[2].split(',').filter(|a| authorized || *a == "pull").collect();
                        access.push(serde_json::json!({"type": parts[0], "name": parts[1], "actions": actions}));
                    }
                }
            }
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
            let n = iss.lock().unwrap().len();
            let claims = serde_json::json!({
                "iss": ISSUER, "sub": if authorized { USER } else { "" }, "aud": SERVICE,
                "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("jti-{n}"), "access": access,
            });
            let signing_input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
            let mut child = Command::new("openssl")
                .args(["dgst", "-sha256", "-sign"])
                .arg(pki.join("token.key"))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(signing_input.as_bytes()).unwrap();
            let mut sig = Vec::new();
            child.stdout.take().unwrap().read_to_end(&mut sig).unwrap();
            child.wait().unwrap();
            let token = format!("{signing_input}.{}", b64url(&sig));
            iss.lock().unwrap().push(token.clone());
            let body = if post {
                serde_json::json!({"access_token": token, "expires_in": 300}).to_string()
            } else {
                serde_json::json!({"token": token, "expires_in": 300}).to_string()
            };
            let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    Issuer { realm, issued, requests }
}

/// Captures every log line at TRACE level, to look for secrets in them.
#[derive(Clone, Default)]
struct LogSink(Arc<Mutex<Vec<u8>>>);
impl Write for LogSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tls_registry_with_token_auth() {
    let env = require_env!("tls_registry_with_token_auth");
    let sink = LogSink::default();
    let s2 = sink.clone();
    let _ = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || s2.clone()).with_ansi(false).try_init();

    let dir = scratch(&env, "token");
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    make_pki(&pki, "IP:127.0.0.1");
    let issuer = start_issuer(pki.clone());
    let reg = spawn_registry(
        dir.path(),
        &format!("  tls: {{certificate: {}, key: {}}}\n", pki.join("server.crt").display(), pki.join("server.key").display()),
        &format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            issuer.realm,
            pki.join("token.crt").display()
        ),
    );
    let opts = ClientOptions {
        ca_certs: vec![pki.join("ca.crt")],
        credentials: vec![(reg.addr.clone(), Credentials { username: USER.into(), password: PASS.into() })],
        docker_config_dir: Some(dir.path().into()),
        ..Default::default()
    };
    let img = make_image(dir.path(), 70, &[150_000, 99], "amd64", false);
    let reference: Reference = format!("{}/{}:tok", reg.addr, unique_repo("token")).parse().unwrap();
    let client = Client::new(opts.clone()).unwrap();
    assert_eq!(client.push_image(&reference, &img.push).await.unwrap(), img.manifest_digest);
    let pulled = client.get_image(&reference, &Platform::host()).await.unwrap();
    assert_eq!(pulled.raw, img.push.manifest);
    let out = dir.path().join("layer0");
    client.get_blob_to_file(&reference, &img.layers[0].0, std::fs::metadata(&img.layers[0].1).unwrap().len(), &out).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&img.layers[0].1).unwrap());
    // Tokens are cached per scope: one for pull+push, one for pull; not one per request.
    let n = issuer.requests.lock().unwrap().len();
    assert!(n <= 2, "expected at most 2 token requests, got {n}: {:?}", issuer.requests.lock().unwrap());
    assert!(issuer.requests.lock().unwrap()[0].contains(&format!("service={SERVICE}")));

    // Anonymous: the issuer grants pull only, so a pull works and a push fails with 401.
    let anon = Client::new(ClientOptions { credentials: vec![], ..opts.clone() }).unwrap();
    assert_eq!(anon.get_image(&reference, &Platform::host()).await.unwrap().digest, img.manifest_digest);
    let img2 = make_image(dir.path(), 71, &[10], "amd64", false);
    let err = anon.push_image(&reference.with_tag("anon"), &img2.push).await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err}");
    assert!(err.to_string().contains("401") && err.to_string().contains(&reg.addr), "{err}");

    // A wrong password: the issuer hands out a pull-only token; the push fails, naming the repo.
    let wrong = Client::new(ClientOptions {
        credentials: vec![(reg.addr.clone(), Credentials { username: USER.into(), password: "not-the-PASSWORD-2".into() })],
        ..opts.clone()
    })
    .unwrap();
    let err2 = wrong.push_image(&reference.with_tag("wrong"), &img2.push).await.unwrap_err();
    assert!(err2.to_string().contains(&reference.repository), "{err2}");

    // An identity token in config.json: exchanged by an OAuth2 POST, and it grants push.
    let cfg = dir.path().join("identity");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("config.json"), format!(r#"{{"auths":{{"{}":{{"identitytoken":"{REFRESH}"}}}}}}"#, reg.addr)).unwrap();
    let oauth =
        Client::new(ClientOptions { credentials: vec![], docker_config_dir: Some(cfg), ca_certs: vec![pki.join("ca.crt")], ..Default::default() }).unwrap();
    assert_eq!(oauth.push_image(&reference.with_tag("oauth"), &img2.push).await.unwrap(), img2.manifest_digest);
    assert!(issuer.requests.lock().unwrap().iter().any(|r| r.starts_with("POST /token")));

    // No secret anywhere: not in errors, not in TRACE logs.
    let logs = String::from_utf8_lossy(&sink.0.lock().unwrap()).to_string();
    let texts = [format!("{err} {err:?} {err2} {err2:?}"), logs];
    let tokens = issuer.issued.lock().unwrap().clone();
    assert!(tokens.len() >= 3);
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    for t in &texts {
        assert!(!t.contains(PASS) && !t.contains("not-the-PASSWORD-2") && !t.contains(&b64) && !t.contains(REFRESH), "password leaked");
        for tok in &tokens {
            // The signature part alone identifies a token.
            let sig = tok.rsplit('.').next().unwrap();
            assert!(!t.contains(sig), "token leaked");
        }
    }
}

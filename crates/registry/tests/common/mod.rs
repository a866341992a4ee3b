//! Shared pieces of the registry end-to-end tests: the environment `scripts/test.sh` exports,
//! registries spawned by the tests themselves, and generated images.
#![allow(dead_code, clippy::unwrap_used)]

use sha2::{Digest, Sha256};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use strata_registry::manifest::media;
use strata_registry::{ClientOptions, Credentials, PushBlob, PushImage};

/// What `scripts/test.sh` (via `scripts/env.sh`) exports.
#[derive(Debug, Clone)]
pub struct TestEnv {
    pub http: String,
    pub tls: String,
    pub ca: PathBuf,
    pub user: String,
    pub pass: String,
    pub moto: Option<String>,
    pub state: PathBuf,
}

/// The environment, or `None` after printing a loud SKIPPED line.
pub fn test_env(test: &str) -> Option<TestEnv> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(http), Some(tls), Some(ca), Some(user), Some(pass), Some(state)) = (
        get("STRATA_TEST_REGISTRY_HTTP"),
        get("STRATA_TEST_REGISTRY_TLS"),
        get("STRATA_TEST_REGISTRY_CA"),
        get("STRATA_TEST_REGISTRY_USER"),
        get("STRATA_TEST_REGISTRY_PASS"),
        get("STRATA_TEST_STATE"),
    ) else {
        strata_test_support::skip(test, "STRATA_TEST_REGISTRY_* / STRATA_TEST_STATE are not set (run scripts/test.sh)");
        return None;
    };
    Some(TestEnv { http, tls, ca: ca.into(), user, pass, moto: get("STRATA_TEST_MOTO"), state: state.into() })
}

#[macro_export]
macro_rules! require_env {
    ($name:expr) => {
        match common::test_env($name) {
            Some(e) => e,
            None => return,
        }
    };
}

impl TestEnv {
    /// Options for the plain-HTTP registry.
    pub fn http_opts(&self) -> ClientOptions {
        ClientOptions { insecure_registries: vec![self.http.clone()], retry_base_delay: Duration::from_millis(20), ..Default::default() }
    }
    /// Options for the TLS + basic-auth registry.
    pub fn tls_opts(&self) -> ClientOptions {
        ClientOptions {
            ca_certs: vec![self.ca.clone()],
            credentials: vec![(self.tls.clone(), self.creds())],
            retry_base_delay: Duration::from_millis(20),
            ..Default::default()
        }
    }
    pub fn creds(&self) -> Credentials {
        Credentials { username: self.user.clone(), password: self.pass.clone() }
    }
}

/// A unique repository name per test run.
pub fn unique_repo(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("strata-test/{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b).as_slice()))
}

/// Deterministic pseudo-random bytes (xorshift), distinct per seed.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// An image written to `dir`: blobs as files, config, manifest.
#[derive(Debug, Clone)]
pub struct TestImage {
    pub push: PushImage,
    pub config: Vec<u8>,
    pub layers: Vec<(String, PathBuf)>,
    pub manifest_digest: String,
}

/// Makes an image with layers of the given sizes (random content), OCI or Docker media types.
pub fn make_image(dir: &Path, seed: u64, sizes: &[usize], arch: &str, docker: bool) -> TestImage {
    std::fs::create_dir_all(dir).unwrap();
    let mut layers = Vec::new();
    let mut blobs = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let b = bytes(seed * 1000 + i as u64, n);
        let d = sha256(&b);
        let p = dir.join(d.replace(':', "_"));
        std::fs::write(&p, &b).unwrap();
        blobs.push(PushBlob { digest: d.clone(), size: n as u64, path: p.clone() });
        layers.push((d, p));
    }
    let diff_ids: Vec<String> = layers.iter().map(|(d, _)| d.clone()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Env": [format!("SEED={seed}")]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let cd = sha256(&config);
    let cp = dir.join(cd.replace(':', "_"));
    std::fs::write(&cp, &config).unwrap();
    blobs.push(PushBlob { digest: cd.clone(), size: config.len() as u64, path: cp });
    let (mt, cmt, lmt) = if docker {
        (media::DOCKER_MANIFEST, media::DOCKER_CONFIG, "application/vnd.docker.image.rootfs.diff.tar.gzip")
    } else {
        (media::OCI_MANIFEST, media::OCI_CONFIG, "application/vnd.oci.image.layer.v1.tar+gzip")
    };
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": mt,
        "config": {"mediaType": cmt, "digest": cd, "size": config.len()},
        "layers": sizes.iter().zip(&layers).map(|(n, (d, _))| serde_json::json!({"mediaType": lmt, "digest": d, "size": n})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let manifest_digest = sha256(&manifest);
    TestImage { push: PushImage { blobs, manifest, manifest_media_type: mt.to_string() }, config, layers, manifest_digest }
}

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_port(addr: &str) {
    let sa: SocketAddr = addr.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&sa, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {addr} after 20 s");
}

/// A docker-registry process started by a test (killed on drop).
#[derive(Debug)]
pub struct SpawnedRegistry {
    pub addr: String,
    pub storage: PathBuf,
    pub log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for SpawnedRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Debian's docker-registry with `extra` YAML appended (auth, tls), on a free port.
pub fn spawn_registry(base: &Path, extra_http: &str, extra: &str) -> SpawnedRegistry {
    std::fs::create_dir_all(base).unwrap();
    let dir = tempfile::tempdir_in(base).unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let storage = dir.path().join("storage");
    let log = dir.path().join("registry.log");
    let cfg = dir.path().join("config.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog: {{level: info}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\nhttp:\n  addr: {addr}\n  secret: strata-test\n{extra_http}{extra}",
            storage.display()
        ),
    )
    .unwrap();
    let logf = std::fs::File::create(&log).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&cfg)
        .stdout(logf.try_clone().unwrap())
        .stderr(logf)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start docker-registry (apt-get install docker-registry): {e}"));
    wait_port(&addr);
    SpawnedRegistry { addr, storage, log, child, _dir: dir }
}

/// Scratch directory under the test state dir.
pub fn scratch(env: &TestEnv, name: &str) -> tempfile::TempDir {
    let base = env.state.join("registry-tests");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new().prefix(name).tempdir_in(base).unwrap()
}

/// Collects progress events.
pub fn recorder() -> (strata_registry::ProgressFn, std::sync::Arc<std::sync::Mutex<Vec<strata_registry::ProgressEvent>>>) {
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let e2 = events.clone();
    (std::sync::Arc::new(move |ev| e2.lock().unwrap().push(ev)), events)
}

pub fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, a server certificate for 127.0.0.1 signed by it, and a self-signed token-signing pair.
pub fn make_pki(dir: &Path, sans: &str) {
    let p = |n: &str| dir.join(n).display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-sha256",
        "-days",
        "2",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.crt"),
        "-subj",
        "/CN=token test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout", &p("server.key"), "-out", &p("server.csr"), "-subj", "/CN=127.0.0.1"]);
    std::fs::write(
        dir.join("server.ext"),
        format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName={sans}\n"),
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-sha256",
        "-days",
        "2",
        "-in",
        &p("server.csr"),
        "-CA",
        &p("ca.crt"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-extfile",
        &p("server.ext"),
        "-out",
        &p("server.crt"),
    ]);
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-sha256",
        "-days",
        "2",
        "-keyout",
        &p("token.key"),
        "-out",
        &p("token.crt"),
        "-subj",
        "/CN=token signer",
    ]);
    openssl(&["x509", "-in", &p("token.crt"), "-outform", "DER", "-out", &p("token.der")]);
}

pub mod proxy;

pub use strata_test_support::Moto;

/// The moto of the test environment (STRATA_TEST_MOTO), or one started here.
pub fn moto(env: &TestEnv) -> Option<Moto> {
    strata_test_support::moto(env.moto.as_deref(), &env.state)
}

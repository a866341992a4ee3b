//! Client options against real registries: docker.io mirrors, `--registry-map` host rewrites,
//! client certificates (a TLS registry started here with `clientcas`), Retry-After on 503/429,
//! the retry limit, and several tags in one push.
#![allow(clippy::unwrap_used)]

mod common;

use common::proxy::{FaultPlan, Proxy};
use common::*;
use std::time::{Duration, Instant};
use strata_registry::{Client, ClientOptions, Error, Platform, Reference};

fn r(s: &str) -> Reference {
    s.parse().unwrap()
}

#[tokio::test]
async fn docker_hub_pulls_go_to_the_mirrors_in_order() {
    let env = require_env!("docker_hub_pulls_go_to_the_mirrors_in_order");
    let dir = scratch(&env, "mirror");
    let img = make_image(dir.path(), 100, &[20_000], "amd64", false);
    let name = unique_repo("mirror").replace('/', "-");
    Client::new(env.http_opts()).unwrap().push_image(&r(&format!("{}/library/{name}:m", env.http)), &img.push).await.unwrap();
    let dead = format!("127.0.0.1:{}", free_port());
    let client = Client::new(ClientOptions {
        registry_mirrors: vec![dead.clone(), env.http.clone()],
        insecure_registries: vec![env.http.clone(), dead],
        retries: 1,
        ..env.http_opts()
    })
    .unwrap();
    // "name:m" is docker.io/library/name:m: served by the second mirror after the first fails.
    let hub = r(&format!("{name}:m"));
    assert_eq!(hub.registry, "docker.io");
    let pulled = client.get_image(&hub, &Platform::host()).await.unwrap();
    assert_eq!(pulled.digest, img.manifest_digest);
    let dest = dir.path().join("blob");
    client.get_blob_to_file(&hub, &img.layers[0].0, std::fs::metadata(&img.layers[0].1).unwrap().len(), &dest).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&img.layers[0].1).unwrap());
}

#[tokio::test]
async fn registry_map_rewrites_the_host() {
    let env = require_env!("registry_map_rewrites_the_host");
    let dir = scratch(&env, "map");
    let img = make_image(dir.path(), 101, &[30_000], "amd64", false);
    let repo = unique_repo("map");
    let client = Client::new(ClientOptions { registry_maps: vec![("registry.strata.invalid".into(), env.http.clone())], ..env.http_opts() }).unwrap();
    let mapped = r(&format!("registry.strata.invalid/{repo}:x"));
    assert_eq!(client.push_image(&mapped, &img.push).await.unwrap(), img.manifest_digest);
    // The bytes landed in the registry the name was mapped to.
    let direct = Client::new(env.http_opts()).unwrap();
    assert_eq!(direct.get_image(&r(&format!("{}/{repo}:x", env.http)), &Platform::host()).await.unwrap().digest, img.manifest_digest);
}

#[tokio::test]
async fn client_certificate_is_presented() {
    let env = require_env!("client_certificate_is_presented");
    let dir = scratch(&env, "mtls");
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    make_pki(&pki, "IP:127.0.0.1");
    let p = |n: &str| pki.join(n).display().to_string();
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout", &p("client.key"), "-out", &p("client.csr"), "-subj", "/CN=strata client"]);
    std::fs::write(pki.join("client.ext"), "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-sha256",
        "-days",
        "2",
        "-in",
        &p("client.csr"),
        "-CA",
        &p("ca.crt"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-extfile",
        &p("client.ext"),
        "-out",
        &p("client.crt"),
    ]);
    let reg = spawn_registry(
        dir.path(),
        &format!("  tls:\n    certificate: {}\n    key: {}\n    clientcas: [{}]\n", p("server.crt"), p("server.key"), p("ca.crt")),
        "",
    );
    let img = make_image(dir.path(), 102, &[10_000], "amd64", false);
    let reference = r(&format!("{}/{}:mtls", reg.addr, unique_repo("mtls")));
    let base = ClientOptions { ca_certs: vec![pki.join("ca.crt")], retries: 0, ..Default::default() };
    let without = Client::new(base.clone()).unwrap();
    let err = without.push_image(&reference, &img.push).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    let with = Client::new(ClientOptions { client_certs: vec![(reg.addr.clone(), pki.join("client.crt"), pki.join("client.key"))], ..base }).unwrap();
    assert_eq!(with.push_image(&reference, &img.push).await.unwrap(), img.manifest_digest);
}

#[tokio::test]
async fn retry_after_is_honoured_and_retries_are_bounded() {
    let env = require_env!("retry_after_is_honoured_and_retries_are_bounded");
    let dir = scratch(&env, "retryafter");
    let img = make_image(dir.path(), 103, &[5_000], "amd64", false);
    let proxy = Proxy::start(&env.http).await;
    *proxy.plan.lock().unwrap() = FaultPlan { status_503: 1, status_429: 1, retry_after: 1, ..Default::default() };
    let opts = ClientOptions { insecure_registries: vec![proxy.addr.clone()], retry_base_delay: Duration::from_millis(1), ..Default::default() };
    let client = Client::new(opts.clone()).unwrap();
    let reference = r(&format!("{}/{}:ra", proxy.addr, unique_repo("retryafter")));
    let t = Instant::now();
    assert_eq!(client.push_image(&reference, &img.push).await.unwrap(), img.manifest_digest);
    // Two answers said "Retry-After: 1"; the backoff alone would have waited about 3 ms.
    assert!(t.elapsed() >= Duration::from_secs(2), "Retry-After ignored: {:?}", t.elapsed());
    let seen = proxy.take();
    assert_eq!(seen.iter().filter(|s| s.fault.is_some()).count(), 2);

    // A registry that keeps failing: 1 try + `retries` retries, then an error naming it.
    proxy.plan.lock().unwrap().status_503 = 100;
    proxy.plan.lock().unwrap().retry_after = 0;
    let client = Client::new(ClientOptions { retries: 2, ..opts }).unwrap();
    let err = client.get_image(&reference, &Platform::host()).await.unwrap_err();
    assert!(matches!(err, Error::Http { status: 503, .. }), "{err}");
    assert!(err.to_string().contains(&proxy.addr), "{err}");
    assert_eq!(proxy.take().len(), 3);
}

#[tokio::test]
async fn several_tags_upload_blobs_once() {
    let env = require_env!("several_tags_upload_blobs_once");
    let dir = scratch(&env, "tags");
    let img = make_image(dir.path(), 104, &[50_000, 60_000], "amd64", false);
    let proxy = Proxy::start(&env.http).await;
    let client = Client::new(ClientOptions { insecure_registries: vec![proxy.addr.clone()], ..Default::default() }).unwrap();
    let (a, b) = (unique_repo("tags-a"), unique_repo("tags-b"));
    let refs = [format!("{}/{a}:1", proxy.addr), format!("{}/{a}:latest", proxy.addr), format!("{}/{b}:1", proxy.addr)].map(|s| r(&s));
    assert_eq!(client.push_image_tags(&refs, &img.push).await.unwrap(), img.manifest_digest);
    let seen = proxy.take();
    let manifests = seen.iter().filter(|s| s.method == "PUT" && s.path.contains("/manifests/")).count();
    let uploads = seen.iter().filter(|s| s.method == "PUT" && s.path.contains("/blobs/uploads/")).count();
    let mounts = seen.iter().filter(|s| s.method == "POST" && s.query.contains("mount=")).count();
    assert_eq!((manifests, uploads, mounts), (3, 3, 3), "{seen:?}");
}

//! Docker's rule for loopback registries, against the real docker-registry instances
//! scripts/test.sh starts: `localhost`, `127.0.0.0/8` and `::1` are tried over HTTPS first and
//! reached over plain HTTP when they do not speak TLS, without `--insecure-registry`; a loopback
//! registry that speaks TLS stays on TLS, and a registry named otherwise is never downgraded.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;
use strata_registry::{Client, ClientOptions, Error, Platform, Reference};

fn r(s: &str) -> Reference {
    s.parse().unwrap()
}

fn no_flags() -> ClientOptions {
    ClientOptions { retries: 0, retry_base_delay: Duration::from_millis(1), ..Default::default() }
}

#[tokio::test]
async fn plain_loopback_registry_works_without_insecure_registry() {
    let env = require_env!("plain_loopback_registry_works_without_insecure_registry");
    let dir = scratch(&env, "loopback");
    let img = make_image(dir.path(), 4242, &[70_000, 10], "amd64", false);
    let repo = unique_repo("loopback");
    // Pushed by IP, with nothing saying the registry is plain HTTP.
    let pushed = r(&format!("{}/{repo}:v1", env.http));
    let client = Client::new(no_flags()).unwrap();
    assert_eq!(client.push_image(&pushed, &img.push).await.unwrap(), img.manifest_digest);
    // Pulled back by `localhost` from a fresh client: same registry, same rule.
    let port = env.http.rsplit_once(':').unwrap().1;
    let by_name = r(&format!("localhost:{port}/{repo}:v1"));
    let client = Client::new(no_flags()).unwrap();
    let pulled = client.get_image(&by_name, &Platform::host()).await.unwrap();
    assert_eq!(pulled.digest, img.manifest_digest);
    assert_eq!(client.get_blob_bytes(&by_name, &pulled.manifest.config.digest, pulled.manifest.config.size).await.unwrap(), img.config);
    let (d, path) = &img.layers[0];
    let dest = dir.path().join("layer");
    client.get_blob_to_file(&by_name, d, std::fs::metadata(path).unwrap().len(), &dest).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(path).unwrap());
}

#[tokio::test]
async fn tls_loopback_registry_stays_on_tls() {
    let env = require_env!("tls_loopback_registry_stays_on_tls");
    let dir = scratch(&env, "loopback-tls");
    let img = make_image(dir.path(), 4343, &[1000], "amd64", false);
    let reference = r(&format!("{}/{}:v1", env.tls, unique_repo("loopback-tls")));
    // With its CA trusted: basic-auth credentials go over TLS and the push works.
    let client = Client::new(env.tls_opts()).unwrap();
    assert_eq!(client.push_image(&reference, &img.push).await.unwrap(), img.manifest_digest);
    assert!(client.blob_exists(&reference, &img.layers[0].0).await.unwrap());

    // Without its CA: a certificate error over HTTPS, never a retry over plain HTTP with the
    // credentials (the TLS port would answer plain HTTP with a 400, which would mask the cause).
    let opts = ClientOptions { credentials: vec![(env.tls.clone(), env.creds())], ..no_flags() };
    let err = Client::new(opts).unwrap().get_image(&reference, &Platform::host()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(text.contains(&format!("https://{}", env.tls)), "the error names the HTTPS URL: {text}");
    assert!(text.to_ascii_lowercase().contains("certificate"), "the error names the certificate: {text}");
    assert!(!text.contains(&env.pass), "no password in errors: {text}");
}

#[tokio::test]
async fn a_non_loopback_name_is_never_downgraded() {
    let env = require_env!("a_non_loopback_name_is_never_downgraded");
    // `plain.registry.test` is mapped onto the plain loopback registry: the connection is
    // loopback, but the registry is named otherwise, so it stays HTTPS and fails.
    let port = env.http.rsplit_once(':').unwrap().1;
    let name = format!("plain.registry.test:{port}");
    let opts = ClientOptions { registry_maps: vec![(name.clone(), env.http.clone())], ..no_flags() };
    let reference = r(&format!("{name}/library/busybox:latest"));
    let err = Client::new(opts).unwrap().get_image(&reference, &Platform::host()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(text.contains(&format!("https://{name}")), "stays on HTTPS: {text}");
}

#[tokio::test]
async fn without_ca_certificates_a_plain_loopback_registry_still_works() {
    const NAME: &str = "without_ca_certificates_a_plain_loopback_registry_still_works";
    let env = require_env!(NAME);
    if std::env::var_os("STRATA_TEST_NO_CA_CHILD").is_none() {
        // This test again, in a process that finds no CA certificate at all (as in a container
        // without ca-certificates): the variables must hold before the first TLS client exists.
        let dir = scratch(&env, "no-ca");
        let (file, certs) = (dir.path().join("empty.pem"), dir.path().join("certs"));
        std::fs::write(&file, "").unwrap();
        std::fs::create_dir_all(&certs).unwrap();
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env("STRATA_TEST_NO_CA_CHILD", "1")
            .env("SSL_CERT_FILE", &file)
            .env("SSL_CERT_DIR", &certs)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("1 passed"), "child run failed:\n{text}");
        assert!(text.contains("CHILD RAN"), "the child did not run the checks:\n{text}");
        return;
    }
    println!("CHILD RAN");
    // The process really has no CA: any other HTTPS registry is refused before connecting.
    let elsewhere = Client::new(no_flags()).unwrap().get_image(&r("registry.example.test/x:1"), &Platform::host()).await.unwrap_err();
    assert!(elsewhere.to_string().contains("no CA certificates found"), "{elsewhere}");
    let dir = scratch(&env, "no-ca-child");
    let img = make_image(dir.path(), 4444, &[1000], "amd64", false);
    let reference = r(&format!("{}/{}:v1", env.http, unique_repo("no-ca")));
    let client = Client::new(no_flags()).unwrap();
    assert_eq!(client.push_image(&reference, &img.push).await.unwrap(), img.manifest_digest);
    // A loopback registry that speaks TLS cannot be verified: refused, with what to do.
    let tls = r(&format!("{}/{}:v1", env.tls, unique_repo("no-ca")));
    let opts = ClientOptions { credentials: vec![(env.tls.clone(), env.creds())], ..no_flags() };
    let err = Client::new(opts).unwrap().get_image(&tls, &Platform::host()).await.unwrap_err();
    assert!(err.to_string().contains("no CA certificates found"), "{err}");
}

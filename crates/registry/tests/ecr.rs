//! ECR end to end: moto (STRATA_TEST_MOTO, or one started here) answers GetAuthorizationToken, CreateRepository and STS
//! AssumeRole; the decoded token is the TLS registry's htpasswd entry; strata pushes to
//! `123456789012.dkr.ecr.us-east-1.amazonaws.com/...` mapped onto that registry, with AWS keys in
//! the environment, then through an assumed role in another account whose token only a registry
//! started here accepts. Alone in its file (own process) because it sets AWS_* variables.
#![cfg(feature = "ecr")]
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::process::Command;
use std::sync::{Arc, Mutex};
use strata_registry::{Client, ClientOptions, EcrOptions, Platform, Reference};

const ECR_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const ROLE_ACCOUNT: &str = "111122223333";

#[derive(Clone, Default)]
struct LogSink(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for LogSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn ecr_repositories(moto: &str) -> Vec<String> {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_ecr::config::Region::new("us-east-1"))
        .endpoint_url(format!("http://{moto}"))
        .load()
        .await;
    let out = aws_sdk_ecr::Client::new(&conf).describe_repositories().send().await.unwrap();
    out.repositories().iter().filter_map(|r| r.repository_name().map(str::to_string)).collect()
}

#[tokio::test]
async fn ecr_push_with_keys_and_with_an_assumed_role() {
    let env = require_env!("ecr_push_with_keys_and_with_an_assumed_role");
    let Some(moto_server) = moto(&env) else {
        strata_test_support::skip("ecr test", "no moto_server at STRATA_TEST_MOTO and none installed (run scripts/install.sh with WITH_MOTO=1)");
        return;
    };
    let moto = moto_server.addr.clone();
    assert_eq!((env.user.as_str(), env.pass.as_str()), ("AWS", "123456789012-auth-token"), "the TLS registry's htpasswd must hold moto's token");
    let sink = LogSink::default();
    let s2 = sink.clone();
    let _ = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || s2.clone()).with_ansi(false).try_init();
    // SAFETY: the only test in this process; nothing else reads the environment concurrently.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL", format!("http://{moto}"));
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIASTRATATESTKEY01");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "strata-test-secret-access-key");
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::remove_var("AWS_PROFILE");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    }
    let dir = scratch(&env, "ecr");
    let img = make_image(dir.path(), 80, &[400_000, 3], "amd64", false);

    // 1. Keys in the environment; the repository does not exist yet and is created.
    let repo = unique_repo("ecr");
    let reference: Reference = format!("{ECR_HOST}/{repo}:build-1").parse().unwrap();
    let opts = ClientOptions {
        ca_certs: vec![env.ca.clone()],
        registry_maps: vec![(ECR_HOST.into(), env.tls.clone())],
        docker_config_dir: Some(dir.path().into()),
        ecr: EcrOptions { create_repository: true, ..Default::default() },
        chunk_size: 64 << 10, // would chunk anywhere else: ECR must still get monolithic uploads
        ..Default::default()
    };
    assert!(!ecr_repositories(&moto).await.contains(&repo));
    let client = Client::new(opts.clone()).unwrap();
    let digest = client.push_image(&reference, &img.push).await.unwrap();
    assert_eq!(digest, img.manifest_digest);
    assert!(ecr_repositories(&moto).await.contains(&repo), "CreateRepository was not called");
    // The bytes are in the real registry behind the map.
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--creds", &format!("{}:{}", env.user, env.pass), "--cert-dir"])
        .arg(env.ca.parent().unwrap())
        .arg(format!("docker://{}/{repo}:build-1", env.tls))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, img.push.manifest);
    // A second tag through a fresh client: the token is fetched again, blobs skipped.
    let pulled = Client::new(opts.clone()).unwrap().get_image(&reference, &Platform::host()).await.unwrap();
    assert_eq!(pulled.digest, digest);

    // 2. Through an assumed role in another account: moto then issues AWS:111122223333-auth-token,
    // which only this registry (htpasswd made here, certificate with the ECR wildcard SAN) accepts.
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    make_pki(&pki, "IP:127.0.0.1,DNS:*.dkr.ecr.us-east-1.amazonaws.com");
    let htpasswd = dir.path().join("htpasswd");
    let out = Command::new("htpasswd").args(["-Bbn", "AWS", &format!("{ROLE_ACCOUNT}-auth-token")]).output().unwrap();
    assert!(out.status.success());
    std::fs::write(&htpasswd, String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let reg = spawn_registry(
        dir.path(),
        &format!("  tls: {{certificate: {}, key: {}}}\n", pki.join("server.crt").display(), pki.join("server.key").display()),
        &format!("auth:\n  htpasswd: {{realm: role-test, path: {}}}\n", htpasswd.display()),
    );
    let role_host = format!("{ROLE_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com");
    let role_ref: Reference = format!("{role_host}/{repo}:role").parse().unwrap();
    let role_opts = ClientOptions {
        ca_certs: vec![pki.join("ca.crt")],
        registry_maps: vec![(role_host.clone(), reg.addr.clone())],
        ecr: EcrOptions {
            assume_role: Some(format!("arn:aws:iam::{ROLE_ACCOUNT}:role/strata-push")),
            external_id: Some("strata-external-id".into()),
            create_repository: true,
            region: None,
            ..Default::default()
        },
        ..opts.clone()
    };
    let client = Client::new(role_opts.clone()).unwrap();
    assert_eq!(client.push_image(&role_ref, &img.push).await.unwrap(), digest);
    // Without the role the keys' account token (123456789012) is refused by that registry.
    let no_role = Client::new(ClientOptions { ecr: EcrOptions::default(), retries: 0, ..role_opts }).unwrap();
    let err = no_role.get_image(&role_ref, &Platform::host()).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");

    // 3. ECR gets monolithic uploads even where chunking is configured: map the ECR name onto the
    // plain registry through the recording proxy and look for PATCH requests.
    let proxy = common::proxy::Proxy::start(&env.http).await;
    let client = Client::new(ClientOptions {
        registry_maps: vec![(ECR_HOST.into(), proxy.addr.clone())],
        insecure_registries: vec![proxy.addr.clone()],
        upload_mode: strata_registry::UploadMode::Chunked,
        ecr: EcrOptions::default(),
        ..opts.clone()
    })
    .unwrap();
    let img3 = make_image(dir.path(), 81, &[300_000], "amd64", false);
    let plain_ref: Reference = format!("{ECR_HOST}/{}:mono", unique_repo("ecr-mono")).parse().unwrap();
    assert_eq!(client.push_image(&plain_ref, &img3.push).await.unwrap(), img3.manifest_digest);
    let seen = proxy.take();
    assert!(seen.iter().all(|s| s.method != "PATCH"), "chunked upload to ECR: {seen:?}");
    assert_eq!(seen.iter().filter(|s| s.method == "PUT" && s.query.contains("digest=")).count(), 2);

    // The token, the decoded password and the secret key never reach the logs or errors.
    let logs = String::from_utf8_lossy(&sink.0.lock().unwrap()).to_string();
    assert!(logs.contains("ECR: got an authorization token"), "ECR path not taken");
    let all = format!("{logs}\n{err}\n{err:?}");
    for secret in ["123456789012-auth-token", "111122223333-auth-token", "QVdTOjEyMzQ1Njc4OTAxMi1hdXRoLXRva2Vu", "strata-test-secret-access-key"] {
        if let Some(line) = all.lines().find(|l| l.contains(secret)) {
            panic!("secret {secret:?} leaked into logs or errors: {}", &line[..line.len().min(400)]);
        }
    }
}

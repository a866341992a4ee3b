//! Push and pull against real docker-registry instances: the plain-HTTP one and the TLS +
//! basic-auth one that scripts/test.sh starts, and registries these tests start themselves.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::process::Command;
use strata_registry::manifest::media;
use strata_registry::{Client, ClientOptions, Error, Platform, ProgressEvent, Reference, UploadMode};

fn r(s: &str) -> Reference {
    s.parse().unwrap()
}

fn skopeo_raw(reference: &str, extra: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo").args(["inspect", "--raw"]).args(extra).arg(format!("docker://{reference}")).output().unwrap();
    assert!(out.status.success(), "skopeo inspect {reference}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[tokio::test]
async fn push_then_pull_over_plain_http_oci_and_docker() {
    let env = require_env!("push_then_pull_over_plain_http_oci_and_docker");
    let dir = scratch(&env, "plain");
    for docker in [false, true] {
        // One layer bigger than a chunk so the chunked path runs too.
        let img = make_image(dir.path(), 1 + docker as u64, &[3 << 20, 1000, 10], "amd64", docker);
        let (progress, events) = recorder();
        let client = Client::new(ClientOptions { chunk_size: 1 << 20, progress: Some(progress), ..env.http_opts() }).unwrap();
        let reference = r(&format!("{}/{}:v1", env.http, unique_repo("plain")));
        let digest = client.push_image(&reference, &img.push).await.unwrap();
        assert_eq!(digest, img.manifest_digest);
        // The registry serves exactly our manifest bytes (checked by skopeo, not by us).
        assert_eq!(skopeo_raw(&reference.to_string(), &["--tls-verify=false"]), img.push.manifest);

        let pulled = client.get_image(&reference, &Platform::host()).await.unwrap();
        assert_eq!(pulled.digest, digest);
        assert_eq!(pulled.media_type, if docker { media::DOCKER_MANIFEST } else { media::OCI_MANIFEST });
        assert_eq!(pulled.raw, img.push.manifest);
        assert_eq!(client.get_blob_bytes(&reference, &pulled.manifest.config.digest, pulled.manifest.config.size).await.unwrap(), img.config);
        for (d, path) in &img.layers {
            let dest = dir.path().join(format!("pulled-{}", &d[7..19]));
            client.get_blob_to_file(&reference, d, std::fs::metadata(path).unwrap().len(), &dest).await.unwrap();
            assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(path).unwrap());
        }
        let uploaded = events.lock().unwrap().iter().filter(|e| matches!(e, ProgressEvent::BlobDone { skipped: false, .. })).count();
        assert!(uploaded >= 4, "4 blobs uploaded and 3 pulled, got {uploaded} non-skipped BlobDone events");

        // Unchanged re-push: every blob skipped after HEAD.
        events.lock().unwrap().clear();
        assert_eq!(client.push_image(&reference.with_tag("v2"), &img.push).await.unwrap(), digest);
        let ev = events.lock().unwrap();
        assert!(ev.iter().all(|e| !matches!(e, ProgressEvent::BlobDone { skipped: false, .. })), "re-push uploaded something: {ev:?}");
        assert_eq!(ev.iter().filter(|e| matches!(e, ProgressEvent::BlobDone { skipped: true, .. })).count(), 4);
    }
}

#[tokio::test]
async fn monolithic_and_chunked_uploads_give_the_same_digest() {
    let env = require_env!("monolithic_and_chunked_uploads_give_the_same_digest");
    let dir = scratch(&env, "modes");
    for (i, mode) in [UploadMode::Monolithic, UploadMode::Chunked].into_iter().enumerate() {
        let img = make_image(dir.path(), 10 + i as u64, &[2_500_000, 1], "amd64", false);
        let client = Client::new(ClientOptions { upload_mode: mode, chunk_size: 1 << 20, ..env.http_opts() }).unwrap();
        let reference = r(&format!("{}/{}:m", env.http, unique_repo("mode")));
        assert_eq!(client.push_image(&reference, &img.push).await.unwrap(), img.manifest_digest);
        for (d, _) in &img.layers {
            assert!(client.blob_exists(&reference, d).await.unwrap(), "{mode:?}: {d} missing");
        }
    }
}

#[tokio::test]
async fn index_and_manifest_list_select_the_platform() {
    let env = require_env!("index_and_manifest_list_select_the_platform");
    let dir = scratch(&env, "index");
    let client = Client::new(env.http_opts()).unwrap();
    for docker in [false, true] {
        let repo = unique_repo("multi");
        let mut entries = Vec::new();
        let mut digests = Vec::new();
        for (i, (arch, variant)) in [("amd64", None), ("arm64", Some("v8")), ("arm", Some("v7"))].into_iter().enumerate() {
            let img = make_image(&dir.path().join(arch), 20 + i as u64, &[100 + i], arch, docker);
            let pr = r(&format!("{}/{repo}@{}", env.http, img.manifest_digest));
            client.push_image(&pr, &img.push).await.unwrap();
            let mut p = serde_json::json!({"os": "linux", "architecture": arch});
            if let Some(v) = variant {
                p["variant"] = v.into();
            }
            entries.push(
                serde_json::json!({"mediaType": img.push.manifest_media_type, "digest": img.manifest_digest, "size": img.push.manifest.len(), "platform": p}),
            );
            digests.push(img.manifest_digest.clone());
        }
        let mt = if docker { media::DOCKER_LIST } else { media::OCI_INDEX };
        let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": mt, "manifests": entries})).unwrap();
        let ir = r(&format!("{}/{repo}:multi", env.http));
        client.push_image(&ir, &strata_registry::PushImage { blobs: vec![], manifest: index, manifest_media_type: mt.into() }).await.unwrap();
        let want = |arch: &str, variant: Option<&str>| Platform { os: "linux".into(), architecture: arch.into(), variant: variant.map(Into::into) };
        assert_eq!(client.get_image(&ir, &want("amd64", None)).await.unwrap().digest, digests[0]);
        assert_eq!(client.get_image(&ir, &want("arm64", None)).await.unwrap().digest, digests[1]);
        assert_eq!(client.get_image(&ir, &want("arm64", Some("v8"))).await.unwrap().digest, digests[1]);
        assert_eq!(client.get_image(&ir, &want("arm", Some("v7"))).await.unwrap().digest, digests[2]);
        match client.get_image(&ir, &want("s390x", None)).await {
            Err(Error::NoMatchingPlatform { available, .. }) => assert!(available.contains("linux/arm/v7"), "{available}"),
            other => panic!("expected NoMatchingPlatform, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn tls_registry_with_basic_auth_and_custom_ca() {
    let env = require_env!("tls_registry_with_basic_auth_and_custom_ca");
    let dir = scratch(&env, "tls");
    let img = make_image(dir.path(), 30, &[200_000, 5], "amd64", false);
    let reference = r(&format!("{}/{}:tls", env.tls, unique_repo("tls")));
    let client = Client::new(env.tls_opts()).unwrap();
    assert_eq!(client.push_image(&reference, &img.push).await.unwrap(), img.manifest_digest);
    let pulled = client.get_image(&reference, &Platform::host()).await.unwrap();
    assert_eq!(pulled.raw, img.push.manifest);

    // Without the CA the certificate is refused.
    let no_ca = Client::new(ClientOptions { ca_certs: vec![], retries: 0, ..env.tls_opts() }).unwrap();
    let err = no_ca.get_image(&reference, &Platform::host()).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&env.tls) && err.to_string().contains(&reference.repository), "{err}");
    // ... unless verification is skipped for that registry.
    let skip = Client::new(ClientOptions { ca_certs: vec![], skip_tls_verify_registries: vec![env.tls.clone()], ..env.tls_opts() }).unwrap();
    assert_eq!(skip.get_image(&reference, &Platform::host()).await.unwrap().digest, img.manifest_digest);

    // ... or when the CA is given for that registry only.
    let per_registry = Client::new(ClientOptions { ca_certs: vec![], registry_ca_certs: vec![(env.tls.clone(), env.ca.clone())], ..env.tls_opts() }).unwrap();
    assert_eq!(per_registry.get_image(&reference, &Platform::host()).await.unwrap().digest, img.manifest_digest);

    // No credentials: an Auth error that says what to do.
    let anon = Client::new(ClientOptions { credentials: vec![], docker_config_dir: Some(dir.path().into()), ..env.tls_opts() }).unwrap();
    let err = anon.get_image(&reference, &Platform::host()).await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err}");
    assert!(err.to_string().contains("credentials"), "{err}");

    // A wrong password: 401, and the error never shows the password.
    let wrong = "wrong-password-do-not-print";
    let bad = Client::new(ClientOptions {
        credentials: vec![(env.tls.clone(), strata_registry::Credentials { username: env.user.clone(), password: wrong.into() })],
        ..env.tls_opts()
    })
    .unwrap();
    let err = bad.get_image(&reference, &Platform::host()).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("401"), "{text}");
    assert!(!text.contains(wrong) && !text.contains(&env.pass), "credential leaked: {text}");
}

#[tokio::test]
async fn docker_config_json_auths_entry() {
    let env = require_env!("docker_config_json_auths_entry");
    let dir = scratch(&env, "dockercfg");
    let img = make_image(dir.path(), 40, &[1234], "amd64", false);
    let reference = r(&format!("{}/{}:cfg", env.tls, unique_repo("cfg")));
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", env.user, env.pass));
    let cfgdir = dir.path().join("auths");
    std::fs::create_dir_all(&cfgdir).unwrap();
    std::fs::write(cfgdir.join("config.json"), format!(r#"{{"auths":{{"https://{}":{{"auth":"{auth}"}}}}}}"#, env.tls)).unwrap();
    let client = Client::new(ClientOptions { credentials: vec![], docker_config_dir: Some(cfgdir), ..env.tls_opts() }).unwrap();
    assert_eq!(client.push_image(&reference, &img.push).await.unwrap(), img.manifest_digest);
}

#[tokio::test]
async fn corrupted_blob_is_refused_and_not_left_on_disk() {
    let env = require_env!("corrupted_blob_is_refused_and_not_left_on_disk");
    let dir = scratch(&env, "corrupt");
    let reg = spawn_registry(dir.path(), "", "");
    let img = make_image(dir.path(), 50, &[100_000], "amd64", false);
    let reference = r(&format!("{}/{}:c", reg.addr, unique_repo("corrupt")));
    let client = Client::new(ClientOptions { insecure_registries: vec![reg.addr.clone()], ..Default::default() }).unwrap();
    client.push_image(&reference, &img.push).await.unwrap();
    // Flip one byte of the stored blob in the registry's own storage.
    let (d, _) = &img.layers[0];
    let hex = &d[7..];
    let data = reg.storage.join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[5000] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    let dest = dir.path().join("layer");
    match client.get_blob_to_file(&reference, d, bytes.len() as u64, &dest).await {
        Err(Error::DigestMismatch { digest, actual, .. }) => {
            assert_eq!(&digest, d);
            assert_eq!(actual, sha256(&bytes));
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert!(!dest.exists(), "a corrupt blob must not land at its destination");
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".partial")));
    assert!(matches!(client.get_blob_bytes(&reference, d, bytes.len() as u64).await, Err(Error::DigestMismatch { .. })));
}

#[tokio::test]
async fn cross_repository_mount_skips_the_upload() {
    let env = require_env!("cross_repository_mount_skips_the_upload");
    let dir = scratch(&env, "mount");
    let img = make_image(dir.path(), 60, &[300_000, 7], "amd64", false);
    let client = Client::new(env.http_opts()).unwrap();
    let a = r(&format!("{}/{}:a", env.http, unique_repo("mount-a")));
    client.push_image(&a, &img.push).await.unwrap();
    // A fresh client learns the source from a pull, as a build does with its base image.
    let (progress, events) = recorder();
    let client = Client::new(ClientOptions { progress: Some(progress), ..env.http_opts() }).unwrap();
    client.get_image(&a, &Platform::host()).await.unwrap();
    let b = r(&format!("{}/{}:b", env.http, unique_repo("mount-b")));
    assert_eq!(client.push_image(&b, &img.push).await.unwrap(), img.manifest_digest);
    let ev = events.lock().unwrap().clone();
    let done: Vec<bool> = ev
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::BlobDone { skipped, .. } => Some(*skipped),
            _ => None,
        })
        .collect();
    // Pulling the manifest downloads no blobs; the push mounts all three (skipped = no bytes sent).
    assert_eq!(done, vec![true, true, true], "{ev:?}");
    for (d, _) in &img.layers {
        assert!(client.blob_exists(&b, d).await.unwrap());
    }
}

#[tokio::test]
async fn refused_mount_falls_back_to_an_upload() {
    let env = require_env!("refused_mount_falls_back_to_an_upload");
    let dir = scratch(&env, "mount202");
    let img = make_image(dir.path(), 61, &[120_000], "amd64", false);
    let (progress, events) = recorder();
    let client = Client::new(ClientOptions { progress: Some(progress), ..env.http_opts() }).unwrap();
    // Claim the blobs live in a repository that never received them: the registry answers the
    // mount with 202 and an upload session, which the client then uses.
    let elsewhere = r(&format!("{}/{}:x", env.http, unique_repo("mount-empty")));
    for b in &img.push.blobs {
        client.add_mount_source(&b.digest, &elsewhere);
    }
    let target = r(&format!("{}/{}:y", env.http, unique_repo("mount-202")));
    assert_eq!(client.push_image(&target, &img.push).await.unwrap(), img.manifest_digest);
    let ev = events.lock().unwrap().clone();
    let uploaded = ev.iter().filter(|e| matches!(e, ProgressEvent::BlobDone { skipped: false, .. })).count();
    assert_eq!(uploaded, 2, "{ev:?}");
    for b in &img.push.blobs {
        assert!(client.blob_exists(&target, &b.digest).await.unwrap());
    }
}

//! Pushes and pulls through a fault-injecting proxy in front of the real plain-HTTP registry:
//! 503s, connection resets mid-blob, stalls past the timeout. The push must finish with the same
//! digest, and the registry (read directly, around the proxy) must hold the right bytes. Also:
//! a push killed part-way and run again uploads only what is missing.
#![allow(clippy::unwrap_used)]

mod common;

use common::proxy::{FaultPlan, Proxy};
use common::*;
use std::collections::VecDeque;
use std::time::Duration;
use strata_registry::{Client, ClientOptions, Platform, PushBlob, PushImage, Reference, UploadMode};

fn opts_via(proxy: &Proxy, mode: UploadMode) -> ClientOptions {
    ClientOptions {
        insecure_registries: vec![proxy.addr.clone()],
        stall_timeout: Duration::from_millis(1500),
        retries: 6,
        retry_base_delay: Duration::from_millis(20),
        chunk_size: 256 << 10,
        upload_mode: mode,
        ..Default::default()
    }
}

/// Pulls every blob straight from the registry (no proxy) and compares it with the source file.
async fn verify_direct(env: &TestEnv, repo: &str, tag: &str, img: &TestImage) {
    let direct = Client::new(env.http_opts()).unwrap();
    let r: Reference = format!("{}/{repo}:{tag}", env.http).parse().unwrap();
    let pulled = direct.get_image(&r, &Platform::host()).await.unwrap();
    assert_eq!(pulled.digest, img.manifest_digest);
    for b in &img.push.blobs {
        assert_eq!(direct.get_blob_bytes(&r, &b.digest, b.size).await.unwrap(), std::fs::read(&b.path).unwrap(), "{}", b.digest);
    }
}

#[tokio::test]
async fn push_survives_503s_resets_and_stalls() {
    let env = require_env!("push_survives_503s_resets_and_stalls");
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("strata_registry=info").try_init();
    let dir = scratch(&env, "faults");
    for (i, mode) in [UploadMode::Chunked, UploadMode::Monolithic].into_iter().enumerate() {
        let proxy = Proxy::start(&env.http).await;
        let img = make_image(dir.path(), 90 + i as u64, &[1_200_000, 700_000, 300], "amd64", false);
        *proxy.plan.lock().unwrap() =
            FaultPlan { status_503: 3, reset_uploads: VecDeque::from([100_000, 10, 200_000]), stall_uploads: 1, ..Default::default() };
        let client = Client::new(ClientOptions { max_concurrent_uploads: 2, ..opts_via(&proxy, mode) }).unwrap();
        let repo = unique_repo("faults");
        let r: Reference = format!("{}/{repo}:f", proxy.addr).parse().unwrap();
        let digest = client.push_image(&r, &img.push).await.unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(digest, img.manifest_digest);
        let seen = proxy.take();
        let faults: Vec<&str> = seen.iter().filter_map(|s| s.fault).collect();
        for f in ["503", "reset-upload", "stall"] {
            assert!(faults.contains(&f), "{mode:?}: fault {f} never happened: {faults:?}");
        }
        verify_direct(&env, &repo, "f", &img).await;
    }
}

#[tokio::test]
async fn chunked_upload_resumes_from_the_registry_range() {
    let env = require_env!("chunked_upload_resumes_from_the_registry_range");
    let dir = scratch(&env, "resume");
    let img = make_image(dir.path(), 93, &[1_100_000], "amd64", false);
    let proxy = Proxy::start(&env.http).await;
    // Two chunks go through, the connection dies as the third starts (nothing of it written).
    *proxy.plan.lock().unwrap() = FaultPlan { pass_uploads: 2, reset_uploads: VecDeque::from([0]), ..Default::default() };
    // One blob at a time: the layer's chunks, then the config's single chunk.
    let client = Client::new(ClientOptions { max_concurrent_uploads: 1, ..opts_via(&proxy, UploadMode::Chunked) }).unwrap();
    let r: Reference = format!("{}/{}:r", proxy.addr, unique_repo("resume")).parse().unwrap();
    assert_eq!(client.push_image(&r, &img.push).await.unwrap(), img.manifest_digest);
    let ranges: Vec<String> = proxy.take().into_iter().filter(|s| s.method == "PATCH").filter_map(|s| s.range).collect();
    let chunk = 256 << 10;
    let mut want: Vec<String> = [0, 1, 2, 2, 3, 4].iter().map(|i| format!("{}-{}", i * chunk, (1_100_000u64).min((i + 1) * chunk) - 1)).collect();
    want.push(format!("0-{}", img.config.len() - 1));
    assert_eq!(ranges, want, "after the reset the upload goes on from byte {} (the registry's Range), not from 0", 2 * chunk);
    verify_direct(&env, &r.repository, "r", &img).await;
}

#[tokio::test]
async fn pull_survives_a_reset_mid_blob() {
    let env = require_env!("pull_survives_a_reset_mid_blob");
    let dir = scratch(&env, "pullfault");
    let img = make_image(dir.path(), 95, &[900_000], "amd64", false);
    let repo = unique_repo("pullfault");
    Client::new(env.http_opts()).unwrap().push_image(&format!("{}/{repo}:p", env.http).parse().unwrap(), &img.push).await.unwrap();
    let proxy = Proxy::start(&env.http).await;
    proxy.plan.lock().unwrap().reset_downloads = VecDeque::from([300_000, 5]);
    proxy.plan.lock().unwrap().status_503 = 1;
    let client = Client::new(opts_via(&proxy, UploadMode::Auto)).unwrap();
    let r: Reference = format!("{}/{repo}:p", proxy.addr).parse().unwrap();
    let (d, path) = &img.layers[0];
    let dest = dir.path().join("pulled");
    client.get_blob_to_file(&r, d, std::fs::metadata(path).unwrap().len(), &dest).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(path).unwrap());
    let seen = proxy.snapshot();
    assert_eq!(seen.iter().filter(|s| s.fault == Some("reset-download")).count(), 2);
    // After each reset the download goes on from where it stopped, with a Range request.
    let ranges: Vec<String> =
        seen.iter().filter(|s| s.method == "GET" && s.path.contains("/blobs/")).map(|s| s.get_range.clone().unwrap_or_default()).collect();
    // (A reset discards what was in flight, so the offsets are at most what the proxy forwarded.)
    assert_eq!(ranges.len(), 3, "{seen:?}");
    assert_eq!(ranges[0], "");
    let from = |r: &str| r.strip_prefix("bytes=").and_then(|r| r.strip_suffix('-')).and_then(|n| n.parse::<u64>().ok());
    let (a, b) = (from(&ranges[1]).unwrap(), from(&ranges[2]).unwrap());
    assert!(0 < a && a <= 300_000 && a <= b && b <= a + 5, "{ranges:?}");
    assert_eq!(seen.last().unwrap().status, 206);
}

#[tokio::test]
async fn unchanged_repush_sends_only_heads_and_the_manifest() {
    let env = require_env!("unchanged_repush_sends_only_heads_and_the_manifest");
    let dir = scratch(&env, "repush");
    let img = make_image(dir.path(), 96, &[500_000, 40_000, 10], "amd64", false);
    let proxy = Proxy::start(&env.http).await;
    let client = Client::new(opts_via(&proxy, UploadMode::Auto)).unwrap();
    let r: Reference = format!("{}/{}:a", proxy.addr, unique_repo("repush")).parse().unwrap();
    client.push_image(&r, &img.push).await.unwrap();
    proxy.take();
    let t = std::time::Instant::now();
    assert_eq!(client.push_image(&r.with_tag("b"), &img.push).await.unwrap(), img.manifest_digest);
    let elapsed = t.elapsed();
    let seen: Vec<(String, String)> = proxy.take().into_iter().map(|s| (s.method, s.path)).collect();
    let heads = seen.iter().filter(|(m, _)| m == "HEAD").count();
    assert_eq!(heads, 4, "{seen:?}");
    assert_eq!(seen.len(), 5, "only HEADs and the manifest PUT: {seen:?}");
    assert!(seen.iter().any(|(m, p)| m == "PUT" && p.ends_with("/manifests/b")));
    eprintln!("unchanged re-push: {heads} HEAD + 1 PUT manifest in {elapsed:?}");
}

/// The child half of `killed_push_resumes_without_reuploading`: pushes the image described by
/// STRATA_KILL_TEST_IMAGE through STRATA_KILL_TEST_PROXY until the parent kills it.
#[tokio::test]
#[ignore = "run by killed_push_resumes_without_reuploading as a child process"]
async fn kill_test_child_push() {
    let (Ok(proxy), Ok(spec), Ok(reference)) =
        (std::env::var("STRATA_KILL_TEST_PROXY"), std::env::var("STRATA_KILL_TEST_IMAGE"), std::env::var("STRATA_KILL_TEST_REF"))
    else {
        return;
    };
    let image = read_spec(&spec);
    let client =
        Client::new(ClientOptions { insecure_registries: vec![proxy], max_concurrent_uploads: 1, upload_mode: UploadMode::Monolithic, ..Default::default() })
            .unwrap();
    client.push_image(&reference.parse().unwrap(), &image).await.unwrap();
}

fn write_spec(path: &std::path::Path, img: &PushImage) {
    let blobs: Vec<_> = img.blobs.iter().map(|b| serde_json::json!([b.digest, b.size, b.path])).collect();
    let manifest = String::from_utf8(img.manifest.clone()).unwrap();
    std::fs::write(path, serde_json::json!({"blobs": blobs, "manifest": manifest, "mt": img.manifest_media_type}).to_string()).unwrap();
}

fn read_spec(path: &str) -> PushImage {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    PushImage {
        blobs: v["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| PushBlob { digest: b[0].as_str().unwrap().into(), size: b[1].as_u64().unwrap(), path: b[2].as_str().unwrap().into() })
            .collect(),
        manifest: v["manifest"].as_str().unwrap().as_bytes().to_vec(),
        manifest_media_type: v["mt"].as_str().unwrap().into(),
    }
}

#[tokio::test]
async fn killed_push_resumes_without_reuploading() {
    let env = require_env!("killed_push_resumes_without_reuploading");
    let dir = scratch(&env, "kill");
    let img = make_image(dir.path(), 97, &[300_000, 300_001, 300_002, 300_003, 300_004], "amd64", false);
    let spec = dir.path().join("image.json");
    write_spec(&spec, &img.push);
    let proxy = Proxy::start(&env.http).await;
    // Slow uploads down so the kill lands in the middle of the push.
    proxy.plan.lock().unwrap().upload_delay = Duration::from_millis(400);
    let reference = format!("{}/{}:k", proxy.addr, unique_repo("kill"));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_test_child_push", "--ignored", "--nocapture"])
        .env("STRATA_KILL_TEST_PROXY", &proxy.addr)
        .env("STRATA_KILL_TEST_IMAGE", &spec)
        .env("STRATA_KILL_TEST_REF", &reference)
        .spawn()
        .unwrap();
    let completed = |seen: &[common::proxy::Seen]| -> Vec<String> {
        seen.iter()
            .filter(|s| s.method == "PUT" && s.status == 201 && s.query.contains("digest="))
            .map(|s| s.query.split("digest=").nth(1).unwrap_or("").replace("%3A", ":"))
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while completed(&proxy.snapshot()).len() < 2 {
        assert!(std::time::Instant::now() < deadline, "the child never uploaded two blobs");
        assert!(child.try_wait().unwrap().is_none(), "the child finished before it could be killed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first = completed(&proxy.take());
    assert!(first.len() < img.push.blobs.len(), "killed too late: {first:?}");

    // Run again: blobs already present are HEADed, never uploaded again.
    proxy.plan.lock().unwrap().upload_delay = Duration::ZERO;
    let client = Client::new(opts_via(&proxy, UploadMode::Monolithic)).unwrap();
    let r: Reference = reference.parse().unwrap();
    assert_eq!(client.push_image(&r, &img.push).await.unwrap(), img.manifest_digest);
    let seen = proxy.take();
    let second = completed(&seen);
    for d in &first {
        assert!(!second.contains(d), "{d} was uploaded again");
        assert!(!seen.iter().any(|s| s.method == "POST" && s.query.contains(&d.replace(':', "%3A"))));
    }
    assert_eq!(first.len() + second.len(), img.push.blobs.len(), "first {first:?} second {second:?}");
    verify_direct(&env, &r.repository, "k", &img).await;
}

/// A repository with immutable tags, answered as ECR answers (400 TAG_INVALID for any manifest
/// PUT to an existing tag): pushing the same image again succeeds (the tag already names it), a
/// different image fails naming the tag, both digests and the immutability, and the tag keeps
/// its image.
#[tokio::test]
async fn an_immutable_tag_takes_the_same_image_again_and_refuses_another() {
    let env = require_env!("an_immutable_tag_takes_the_same_image_again_and_refuses_another");
    let dir = scratch(&env, "immutable");
    let proxy = Proxy::start(&env.http).await;
    let client = Client::new(opts_via(&proxy, UploadMode::Monolithic)).unwrap();
    let repo = unique_repo("immutable");
    let r: Reference = format!("{}/{repo}:release", proxy.addr).parse().unwrap();
    let first = make_image(dir.path(), 301, &[50_000], "amd64", false);
    assert_eq!(client.push_image(&r, &first.push).await.unwrap(), first.manifest_digest);
    proxy.plan.lock().unwrap().immutable_tags = vec!["release".into()];
    // A rerun of the same pipeline: the same image under the same tag.
    assert_eq!(client.push_image(&r, &first.push).await.unwrap(), first.manifest_digest);
    let other = make_image(dir.path(), 302, &[60_000], "amd64", false);
    let err = client.push_image(&r, &other.push).await.expect_err("another image under an immutable tag");
    let text = err.to_string();
    for want in ["release", "immutable", first.manifest_digest.as_str(), other.manifest_digest.as_str()] {
        assert!(text.contains(want), "the error names {want}: {text}");
    }
    assert!(proxy.take().iter().any(|s| s.fault == Some("immutable-tag")), "the proxy refused a PUT");
    verify_direct(&env, &repo, "release", &first).await;
}

//! Base layers copied from one registry to another without being unpacked are streamed: the
//! upload to the destination runs while the download from the source does, the same bytes also
//! written (and verified) into the work dir's blob store. Between the two real registries (plain
//! HTTP and TLS with basic auth) the pushed layers are the source's, byte for byte; from a hostile
//! source whose layer does not match its digest the build fails naming the digest, and the
//! destination holds neither the blob nor the tag.

use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;
use strata_test_support::hostile::{Body, HostileServer, Reply, Seen};
use strata_tests::*;

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").expect("open /dev/urandom"), &mut buf).expect("read /dev/urandom");
    buf
}

/// A tag no earlier run used (random layers are never already in the destination either).
fn unique() -> String {
    hex::encode(random_bytes(6))
}

/// `strata build` of `dockerfile` (in a fresh context) to `destination`, work dir `work`.
fn build_to(env: &TestEnv, dir: &Path, work: &Path, dockerfile: &str, destination: &str, extra: &[&str], envs: &[(&str, &str)]) -> Run {
    let ctx = dir.join(format!("ctx-{}", unique()));
    std::fs::create_dir_all(&ctx).expect("mkdir ctx");
    std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("write Dockerfile");
    let (ctx, work) = (ctx.display().to_string(), work.display().to_string());
    let mut args = vec!["build", "--context", &ctx, "--destination", destination, "--insecure-registry", env.registry_http.as_str(), "--work-dir", &work];
    args.extend_from_slice(extra);
    strata(&args, envs)
}

/// The raw manifest of `reference` (skopeo).
fn raw_manifest(reference: &str, args: &[&str]) -> serde_json::Value {
    let out = must(Command::new("skopeo").args(["inspect", "--raw"]).args(args).arg(format!("docker://{reference}")));
    serde_json::from_str(&out).expect("manifest JSON")
}

fn layers(m: &serde_json::Value) -> Vec<(String, u64)> {
    m["layers"].as_array().expect("layers").iter().map(|l| (l["digest"].as_str().expect("digest").to_string(), l["size"].as_u64().expect("size"))).collect()
}

#[test]
fn a_base_layer_is_streamed_between_registries_byte_for_byte() {
    let Some(env) = test_env("a_base_layer_is_streamed_between_registries_byte_for_byte") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = unique();

    // The source: busybox plus 8 MiB of random bytes (incompressible: an 8 MiB layer), on the plain registry.
    let src = format!("{}/e2e/streamsrc:{tag}", env.registry_http);
    let w1 = dir.path().join("work-src");
    let ctx = dir.path().join("ctx-src");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::fs::write(ctx.join("big"), random_bytes(8 << 20)).expect("write big");
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {}\nCOPY big /big\n", env.base_busybox)).expect("write Dockerfile");
    let (ctx_s, w1_s) = (ctx.display().to_string(), w1.display().to_string());
    let run = strata(&["build", "--context", &ctx_s, "--destination", &src, "--insecure-registry", &env.registry_http, "--work-dir", &w1_s], &[]);
    assert!(run.ok, "the source image builds: {}", run.stderr);
    let src_manifest = raw_manifest(&src, &["--tls-verify=false"]);
    let src_layers = layers(&src_manifest);
    let (big, big_size) = src_layers.last().cloned().expect("a layer");
    assert!(big_size > 8 << 20, "the random layer is over 8 MiB ({big_size})");

    // FROM it, pushed to the TLS registry: the layers are never unpacked, only copied (the base
    // is unpacked lazily, by the first step that needs its files, only with --cache).
    let cfg = docker_config(dir.path(), &env.registry_tls, &env.user, &env.pass);
    let cfg = cfg.to_str().expect("utf8").to_string();
    let dst = format!("{}/e2e/streamdst:{tag}", env.registry_tls);
    let cert = format!("{}={}", env.registry_tls, env.registry_ca.display());
    let w2 = dir.path().join("work-dst");
    let envs = [("DOCKER_CONFIG", cfg.as_str()), ("STRATA_LOG", "info,strata_registry=debug")];
    let run = build_to(&env, dir.path(), &w2, &format!("FROM {src}\nLABEL copied=yes\n"), &dst, &["--cache", "--registry-certificate", &cert], &envs);
    assert!(run.ok, "the copy builds: {}", run.stderr);
    assert!(run.stderr.contains("copied blob (streamed)"), "the base layer was streamed:\n{}", run.stderr);
    assert!(!run.stderr.contains("streamed upload failed"), "no fallback was needed:\n{}", run.stderr);
    assert!(!run.stderr.contains("unpacking"), "nothing was unpacked:\n{}", run.stderr);

    // The pushed layers are the source's: same descriptors, and the bytes hash to them.
    let creds = format!("{}:{}", env.user, env.pass);
    let cert_dir = env.registry_ca.parent().expect("ca dir").to_str().expect("utf8").to_string();
    let dst_manifest = raw_manifest(&dst, &["--creds", &creds, "--cert-dir", &cert_dir]);
    assert_eq!(layers(&dst_manifest), src_layers, "the destination's layers are the source's");
    let layout = dir.path().join("pulled");
    must(
        Command::new("skopeo")
            .args(["copy", "-q", "--src-creds", &creds, "--src-cert-dir", &cert_dir])
            .arg(format!("docker://{dst}"))
            .arg(format!("oci:{}:img", layout.display())),
    );
    for (digest, size) in &src_layers {
        let bytes = std::fs::read(blob(&layout, digest)).expect("pulled layer");
        assert_eq!((sha256(&bytes), bytes.len() as u64), (digest.clone(), *size), "layer {digest} as pulled from the destination");
    }

    // The work dir's blob store holds the copied layer, verified, and no partial file.
    let stored = w2.join("blobs/sha256").join(big.trim_start_matches("sha256:"));
    let bytes = std::fs::read(&stored).unwrap_or_else(|e| panic!("{}: {e}", stored.display()));
    assert_eq!(sha256(&bytes), big, "the stored blob is the layer");
    let partial: Vec<_> =
        std::fs::read_dir(w2.join("blobs/sha256")).expect("blob store").flatten().filter(|e| e.file_name().to_string_lossy().contains("partial")).collect();
    assert!(partial.is_empty(), "no partial files: {partial:?}");
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "x86_64" => "amd64",
        other => other,
    }
}

#[test]
fn a_streamed_layer_that_does_not_match_its_digest_reaches_no_registry() {
    let Some(env) = test_env("a_streamed_layer_that_does_not_match_its_digest_reaches_no_registry") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    // A 4 MiB layer whose descriptor is right about its length but whose bytes, one of them
    // flipped in the middle, do not hash to its digest.
    let layer = random_bytes(4 << 20);
    let digest = sha256(&layer);
    let mut served = layer.clone();
    served[2 << 20] ^= 0xff;
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": host_arch(), "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(b"not unpacked")]},
    }))
    .expect("json");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": layer.len()}],
    }))
    .expect("json");
    let (config_digest, layer_digest) = (sha256(&config), digest.clone());
    let server = HostileServer::start(move |req: &Seen| match req.target.as_str() {
        "/v2/" => Reply::new(200, Body::Bytes(b"{}".to_vec())),
        t if t.ends_with("/manifests/t") => Reply::new(200, Body::Bytes(manifest.clone())).header("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
        t if t.ends_with(&config_digest) => Reply::new(200, Body::Bytes(config.clone())),
        t if t.ends_with(&layer_digest) => Reply::new(200, Body::Bytes(served.clone())),
        _ => Reply::new(404, Body::Bytes(Vec::new())),
    })
    .expect("start the hostile server");

    let tag = unique();
    let dst = format!("{}/e2e/streambad:{tag}", env.registry_http);
    let work = dir.path().join("work");
    let extra = ["--cache", "--insecure-registry", server.addr.as_str()];
    let run = build_to(
        &env,
        dir.path(),
        &work,
        &format!("FROM {}/bad/base:t\nLABEL copied=no\n", server.addr),
        &dst,
        &extra,
        &[("STRATA_LOG", "info,strata_registry=debug")],
    );
    assert!(!run.ok, "the build fails:\n{}", run.stderr);
    let error = run.stderr.lines().filter(|l| l.contains("error")).collect::<Vec<_>>().join("\n");
    assert!(
        error.contains(&digest) && error.contains("failed verification") && error.contains(&server.addr),
        "the error names the source, the digest and what came:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains("streaming blob"), "the layer was being streamed when it failed:\n{}", run.stderr);
    eprintln!("{error}");

    // Nothing reached the destination: neither the tag nor the blob.
    let tag_there = Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{dst}")).output().expect("skopeo");
    assert!(!tag_there.status.success(), "no manifest under the tag");
    let head = must(
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-I"])
            .arg(format!("http://{}/v2/e2e/streambad/blobs/{digest}", env.registry_http)),
    );
    assert_eq!(head, "404", "the destination does not hold the blob");
    // And the work dir keeps neither the bad blob nor a partial file.
    let store = work.join("blobs/sha256");
    let left: Vec<String> =
        std::fs::read_dir(&store).map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    assert!(!left.iter().any(|n| n.contains(digest.trim_start_matches("sha256:"))), "no bad blob or partial file in the store: {left:?}");
}

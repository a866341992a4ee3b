//! A hostile registry (crates/test-support's `HostileServer`) serving a base image whose answers
//! lie: bodies that never end, descriptors that disagree with the bytes, oversized manifests and
//! tokens. Every build fails with a message naming the registry, the object, what was expected and
//! what came; peak memory stays small, nothing is left in the work dir, and a real image from the
//! same server builds (so the failures are the lies, not the server). Also: credentials are sent
//! only to the registry's own host, never to an upload `Location` or a redirect on another port.
//! And an AWS endpoint (`AWS_ENDPOINT_URL`) whose ECR GetAuthorizationToken, STS AssumeRole and
//! AssumeRoleWithWebIdentity answers never end or are 5 MiB: cut off at 1 MiB, one call each.

use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use strata_test_support::hostile::{Body, HostileServer, Reply, Seen};
use strata_tests::*;

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "x86_64" => "amd64",
        other => other,
    }
}

/// A one-layer image: (layer blob, config, diff_id).
struct Image {
    layer: Vec<u8>,
    config: Vec<u8>,
}

fn make_image(dir: &Path) -> Image {
    let root = dir.join("layer-root");
    std::fs::create_dir_all(root.join("etc")).expect("mkdir");
    std::fs::write(root.join("etc/hostile-base"), "a base from a hostile registry\n").expect("write");
    let tar = dir.join("layer.tar");
    must(Command::new("tar").arg("-C").arg(&root).args(["--owner=0", "--group=0", "-cf"]).arg(&tar).arg("etc"));
    let raw = std::fs::read(&tar).expect("read tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &raw).expect("gzip");
    let layer = gz.finish().expect("gzip");
    let config = serde_json::json!({
        "architecture": host_arch(), "os": "linux",
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&raw)]},
    });
    Image { layer, config: serde_json::to_vec(&config).expect("json") }
}

fn manifest(config: &[u8], config_size: u64, layer: &[u8], layer_size: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config), "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(layer), "size": layer_size}],
    }))
    .expect("json")
}

/// How one case lies: the manifest's sizes and how the manifest, config and layer are sent.
struct Case {
    name: &'static str,
    config_size: Option<u64>,
    layer_size: Option<u64>,
    manifest: Option<Body>,
    config: Option<Body>,
    layer: Option<Body>,
    /// Every one of these appears in the error.
    expect: &'static [&'static str],
}

fn case(name: &'static str, expect: &'static [&'static str]) -> Case {
    Case { name, config_size: None, layer_size: None, manifest: None, config: None, layer: None, expect }
}

fn cases(img: &Image) -> Vec<Case> {
    let (c, l) = (img.config.len() as u64, img.layer.len() as u64);
    vec![
        Case { config: Some(Body::Endless), ..case("endless-config", &["blob sha256:", "the descriptor says", "more than"]) },
        Case { config_size: Some(200 << 20), ..case("huge-config", &["larger than strata's limit of 67108864 bytes", "its descriptor says 209715200 bytes"]) },
        Case { config_size: Some(c - 10), ..case("config-descriptor-short", &["the descriptor says", "a Content-Length of"]) },
        Case { config_size: Some(c - 10), config: Some(Body::UntilClose(img.config.clone())), ..case("config-descriptor-short-no-length", &["more than"]) },
        Case { layer_size: Some(l + 1_000_000), ..case("layer-descriptor-long", &["the descriptor says", "a Content-Length of"]) },
        Case {
            layer_size: Some(l + 1_000_000),
            layer: Some(Body::UntilClose(img.layer.clone())),
            ..case("layer-descriptor-long-no-length", &["the registry sent", "bytes; refused"])
        },
        Case { layer_size: Some(l - 100), layer: Some(Body::UntilClose(img.layer.clone())), ..case("layer-descriptor-short-no-length", &["more than"]) },
        Case {
            layer_size: Some(20 << 20),
            layer: Some(Body::Endless),
            ..case("endless-layer", &["the descriptor says 20971520 bytes", "more than 20971520 bytes"])
        },
        Case { layer: Some(Body::Declared(img.layer.clone(), l + 5000)), ..case("layer-content-length-lie", &["a Content-Length of"]) },
        case("index-size-lie", &["manifest sha256:", "the descriptor says", "a Content-Length of"]),
        Case { manifest: Some(Body::Endless), ..case("endless-manifest", &["manifest t", "limit of 4194304 bytes"]) },
        Case { manifest: Some(Body::Bytes(vec![b' '; 5 << 20])), ..case("big-manifest", &["manifest t", "a Content-Length of 5242880 bytes"]) },
    ]
}

/// Peak RSS (KiB) and the result of `strata build` of `dockerfile` into a tarball, under /usr/bin/time.
fn build(dir: &Path, work: &Path, registry: &str, dockerfile: &str, envs: &[(&str, &str)]) -> (Run, u64) {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir ctx");
    std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("write Dockerfile");
    std::fs::write(ctx.join("f"), "from the context\n").expect("write f");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "peak-rss-kib=%M"]).arg(strata_bin()).args(["build", "--no-push", "--tar-path"]).arg(dir.join("out.tar"));
    cmd.arg("--context").arg(&ctx).arg("--work-dir").arg(work).args(["--insecure-registry", registry]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let run = to_run(cmd.output().expect("run /usr/bin/time strata (apt-get install time)"));
    let rss = peak_rss_kib(&run.stderr);
    (run, rss)
}

/// Total bytes of regular files under `root`, and any name that looks like a partial download.
fn usage(root: &Path) -> (u64, Vec<String>) {
    let (mut total, mut partial) = (0, Vec::new());
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
                let name = e.file_name().to_string_lossy().into_owned();
                if name.contains("partial") {
                    partial.push(e.path().display().to_string());
                }
            }
        }
    }
    (total, partial)
}

#[test]
fn a_lying_registry_is_refused_with_bounded_memory_and_nothing_left_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = Arc::new(make_image(dir.path()));
    let all = Arc::new(cases(&img));
    let (img2, all2) = (img.clone(), all.clone());
    let server = HostileServer::start(move |req: &Seen| serve_case(&img2, &all2, req)).expect("start the hostile server");
    let work = dir.path().join("work");

    // The honest image first: the server serves a valid base, so every failure below is its lie.
    let (run, _) = build(dir.path(), &work, &server.addr, &format!("FROM {}/hostile/good:t\nCOPY f /f\n", server.addr), &[]);
    assert!(run.ok, "the honest image builds:\n{}", run.stderr);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::remove_file(dir.path().join("out.tar")).expect("the honest build wrote its tarball");

    let mut report = Vec::new();
    for c in all.iter() {
        let started = std::time::Instant::now();
        let (run, rss) = build(dir.path(), &work, &server.addr, &format!("FROM {}/hostile/{}:t\nCOPY f /f\n", server.addr, c.name), &[]);
        let secs = started.elapsed().as_secs_f64();
        let message = run.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or("").to_string();
        report.push(format!("{:36} exit {:?}  peak RSS {:>6} KiB  {secs:.1} s  {message}", c.name, run.code, rss));
        assert!(!run.ok, "{}: the build must fail:\n{}", c.name, run.stderr);
        for want in c.expect {
            assert!(run.stderr.contains(want), "{}: the error says {want:?}:\n{}", c.name, run.stderr);
        }
        assert!(
            run.stderr.contains(&server.addr) && run.stderr.contains(&format!("hostile/{}", c.name)),
            "{}: the error names the registry and repository:\n{}",
            c.name,
            run.stderr
        );
        assert!(rss < 150 * 1024, "{}: peak RSS {rss} KiB", c.name);
        let (bytes, partial) = usage(&work);
        assert!(partial.is_empty(), "{}: partial downloads left behind: {partial:?}", c.name);
        assert!(bytes < 4 << 20, "{}: {bytes} bytes left in the work dir", c.name);
        assert!(!dir.path().join("out.tar").exists(), "{}: no tarball from a failed build", c.name);
    }
    eprintln!("{}", report.join("\n"));
}

/// The answers of the server for `/v2/hostile/<case>/...`.
fn serve_case(img: &Image, all: &[Case], req: &Seen) -> Reply {
    let json = |b: Vec<u8>| Reply::new(200, Body::Bytes(b)).header("Content-Type", "application/vnd.oci.image.manifest.v1+json");
    if req.target == "/v2/" {
        return Reply::new(200, Body::Bytes(b"{}".to_vec()));
    }
    let Some(rest) = req.target.strip_prefix("/v2/hostile/") else { return Reply::new(404, Body::Bytes(Vec::new())) };
    let Some((name, what)) = rest.split_once('/') else { return Reply::new(404, Body::Bytes(Vec::new())) };
    let default = case("good", &[]);
    let c = all.iter().find(|c| c.name == name).unwrap_or(&default);
    let (cs, ls) = (c.config_size.unwrap_or(img.config.len() as u64), c.layer_size.unwrap_or(img.layer.len() as u64));
    let body_or = |b: &Option<Body>, d: &[u8]| b.clone().unwrap_or_else(|| Body::Bytes(d.to_vec()));
    if what.starts_with("manifests/") {
        let m = manifest(&img.config, cs, &img.layer, ls);
        if c.name == "index-size-lie" && what == "manifests/t" {
            // An index whose descriptor for the platform's manifest says 7 bytes more than it has.
            let index = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(&m), "size": m.len() + 7,
                               "platform": {"architecture": host_arch(), "os": "linux"}}],
            });
            return Reply::new(200, Body::Bytes(serde_json::to_vec(&index).unwrap_or_default()))
                .header("Content-Type", "application/vnd.oci.image.index.v1+json");
        }
        return match &c.manifest {
            Some(b) => Reply::new(200, b.clone()).header("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
            None => json(m),
        };
    }
    if let Some(d) = what.strip_prefix("blobs/") {
        if d == sha256(&img.config) {
            return Reply::new(200, body_or(&c.config, &img.config));
        }
        if d == sha256(&img.layer) {
            return Reply::new(200, body_or(&c.layer, &img.layer));
        }
    }
    Reply::new(404, Body::Bytes(Vec::new()))
}

#[test]
fn an_endless_token_or_error_body_is_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let a = addr.clone();
    let server = HostileServer::start(move |req: &Seen| {
        let me = a.get().cloned().unwrap_or_default();
        match req.target.as_str() {
            t if t.starts_with("/token") => Reply::new(200, Body::Endless).header("Content-Type", "application/json"),
            _ => Reply::new(401, Body::Bytes(Vec::new())).header("WWW-Authenticate", &format!("Bearer realm=\"http://{me}/token\",service=\"hostile\"")),
        }
    })
    .expect("start the hostile server");
    addr.set(server.addr.clone()).expect("set once");
    let work = dir.path().join("work");
    let (run, rss) = build(dir.path(), &work, &server.addr, &format!("FROM {}/token/endless:t\n", server.addr), &[]);
    assert!(!run.ok && run.stderr.contains("sent more than 1048576 bytes; refused"), "an endless token answer is cut off:\n{}", run.stderr);
    assert!(rss < 150 * 1024, "peak RSS {rss} KiB");
    let errors = HostileServer::start(|req: &Seen| match req.target.as_str() {
        "/v2/" => Reply::new(200, Body::Bytes(b"{}".to_vec())),
        _ => Reply::new(404, Body::Endless),
    })
    .expect("start the second hostile server");
    let (run, rss) = build(dir.path(), &work, &errors.addr, &format!("FROM {}/error/endless:t\n", errors.addr), &[]);
    assert!(!run.ok, "an endless error body fails the build:\n{}", run.stderr);
    assert!(run.stderr.contains("HTTP 404"), "the status is reported:\n{}", run.stderr);
    assert!(run.stderr.len() < 4000, "the error quotes the body shortened ({} bytes)", run.stderr.len());
    assert!(rss < 150 * 1024, "peak RSS {rss} KiB");
}

#[test]
fn credentials_stay_with_the_registry_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = Arc::new(make_image(dir.path()));
    let other: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let (o, im) = (other.clone(), img.clone());
    let server = HostileServer::start_pair(move |req: &Seen| {
        let other = o.get().cloned().unwrap_or_default();
        let other_port: u16 = other.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(0);
        let ok = |s: u16| Reply::new(s, Body::Bytes(Vec::new()));
        if req.port == other_port {
            // The "other host": uploads and redirected downloads land here.
            return match req.method.as_str() {
                "PATCH" => ok(202).header("Location", &format!("http://{other}/upload/1")).header("Range", &format!("0-{}", req.body_len.saturating_sub(1))),
                "PUT" => ok(201),
                "GET" if req.target.starts_with("/layer") => Reply::new(200, Body::Bytes(im.layer.clone())),
                _ => ok(404),
            };
        }
        if req.authorization.is_none() {
            return ok(401).header("WWW-Authenticate", "Basic realm=\"hostile\"");
        }
        let t = req.target.as_str();
        match req.method.as_str() {
            "GET" if t == "/v2/" => Reply::new(200, Body::Bytes(b"{}".to_vec())),
            "POST" if t.contains("/blobs/uploads/") => ok(202).header("Location", &format!("http://{other}/upload/1")),
            "HEAD" => ok(404),
            "PUT" if t.contains("/manifests/") => ok(201),
            "GET" if t.contains("/manifests/") => Reply::new(200, Body::Bytes(manifest(&im.config, im.config.len() as u64, &im.layer, im.layer.len() as u64)))
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
            "GET" if t.ends_with(&sha256(&im.config)) => Reply::new(200, Body::Bytes(im.config.clone())),
            "GET" if t.ends_with(&sha256(&im.layer)) => ok(307).header("Location", &format!("http://{other}/layer")),
            _ => ok(404),
        }
    })
    .expect("start the hostile pair");
    other.set(server.other_addr.clone()).expect("set once");
    let cfg = docker_config(dir.path(), &server.addr, "user", "s3cret-pass");
    let cfg = cfg.display().to_string();
    let envs = [("DOCKER_CONFIG", cfg.as_str())];

    // A pull whose layer is redirected to the other host, then a push whose uploads go there.
    let work = dir.path().join("work");
    let (run, _) = build(dir.path(), &work, &server.addr, &format!("FROM {}/cred/base:t\nCOPY f /f\n", server.addr), &envs);
    assert!(run.ok, "the pull through a redirect works:\n{}", run.stderr);
    let ctx = dir.path().join("ctx");
    let dest = format!("{}/cred/app:t", server.addr);
    let push = strata(
        &[
            "build",
            "--context",
            &ctx.display().to_string(),
            "--destination",
            &dest,
            "--insecure-registry",
            &server.addr,
            "--work-dir",
            &work.display().to_string(),
        ],
        &envs,
    );
    let seen = server.requests();
    let other_port = server.other_port();
    let to_other: Vec<&Seen> = seen.iter().filter(|s| s.port == other_port).collect();
    assert!(to_other.iter().any(|s| s.method == "GET"), "the layer was fetched from the other host: {seen:#?}");
    assert!(to_other.iter().any(|s| s.method == "PUT" || s.method == "PATCH"), "an upload went to the other host ({}): {seen:#?}", push.stderr);
    assert!(to_other.iter().all(|s| s.authorization.is_none()), "no credential reaches another host: {to_other:#?}");
    assert!(
        seen.iter().any(|s| s.port != other_port && s.authorization.as_deref().is_some_and(|a| a.starts_with("Basic "))),
        "the registry itself got the credentials"
    );
    assert!(!push.stderr.contains("s3cret-pass"), "the password never reaches a log:\n{}", push.stderr);
}

const ECR_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// A hostile AWS endpoint that is also the registry behind the ECR name: every AWS API call
/// (`POST /`: ECR GetAuthorizationToken, STS AssumeRole) gets `answer`, every registry request a
/// Basic challenge so that strata asks ECR for credentials.
fn hostile_aws(answer: Body) -> HostileServer {
    HostileServer::start(move |req: &Seen| match (req.method.as_str(), req.target.as_str()) {
        ("POST", "/") => Reply::new(200, answer.clone()).header("Content-Type", "application/x-amz-json-1.1"),
        _ => Reply::new(401, Body::Bytes(Vec::new())).header("WWW-Authenticate", "Basic realm=\"hostile-ecr\""),
    })
    .expect("start the hostile AWS endpoint")
}

/// Peak RSS (KiB), seconds and the result of `strata args` in `cwd` under /usr/bin/time, with
/// AWS keys (unless `keys` is false) for the hostile endpoint `aws` and none of the caller's
/// AWS_*, PLUGIN_*, DOCKER_* variables.
fn with_hostile_aws(cwd: &Path, aws: &str, keys: bool, args: &[&str], envs: &[(&str, &str)]) -> (Run, u64, f64) {
    let mut cmd = Command::new("/usr/bin/time");
    cmd.current_dir(cwd).args(["-f", "peak-rss-kib=%M"]).arg(strata_bin()).args(args);
    for (k, _) in std::env::vars() {
        if ["AWS_", "PLUGIN_", "DOCKER_"].iter().any(|p| k.starts_with(p)) {
            cmd.env_remove(k);
        }
    }
    if keys {
        cmd.env("AWS_ACCESS_KEY_ID", "AKIASTRATAHOSTILE").env("AWS_SECRET_ACCESS_KEY", "strata-hostile-secret-key");
    }
    cmd.env("AWS_ENDPOINT_URL", format!("http://{aws}"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", cwd.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", cwd.join("no-aws-credentials"))
        .env("DOCKER_CONFIG", cwd.join("docker-config"))
        .env("STRATA_WORK_DIR", cwd.join("work"));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let started = std::time::Instant::now();
    let run = to_run(cmd.output().expect("run /usr/bin/time strata (apt-get install time)"));
    let secs = started.elapsed().as_secs_f64();
    let rss = peak_rss_kib(&run.stderr);
    (run, rss, secs)
}

/// Plugin-mode settings for a build of `dockerfile` in `ctx` whose registry `registry` is the
/// hostile endpoint `aws` (mapped by `map`), with access keys, in `region`; `extra` appended.
fn hostile_plugin_envs<'a>(
    registry: &'a str,
    region: &'a str,
    ctx: &'a str,
    dockerfile: &'a str,
    aws: &'a str,
    map: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut envs = vec![
        ("PLUGIN_REGISTRY", registry),
        ("PLUGIN_REPO", "hostile/app"),
        ("PLUGIN_TAGS", "t"),
        ("PLUGIN_REGION", region),
        ("PLUGIN_ACCESS_KEY", "AKIASTRATAHOSTILE"),
        ("PLUGIN_SECRET_KEY", "strata-hostile-secret-key"),
        ("PLUGIN_CONTEXT", ctx),
        ("PLUGIN_DOCKERFILE", dockerfile),
        ("PLUGIN_INSECURE_REGISTRY", aws),
        ("STRATA_REGISTRY_MAP", map),
    ];
    envs.extend_from_slice(extra);
    envs
}

#[test]
fn an_endless_or_oversized_aws_answer_is_cut_off() {
    let (dir, ctx) = strata_tests::plugin_step::scratch_context(&format!("FROM {ECR_HOST}/hostile/base:t\n"));
    let ctx_s = ctx.display().to_string();
    let dockerfile = ctx.join("Dockerfile").display().to_string();

    let token = dir.path().join("web-identity-token");
    std::fs::write(&token, "a-web-identity-token").expect("write token");
    let token = token.display().to_string();
    // How the credentials are had: keys, keys and a role to assume, a web identity (OIDC/IRSA).
    #[derive(PartialEq)]
    enum Via {
        Keys,
        Role,
        WebIdentity,
    }
    // (case, answer, credentials, what the error must say)
    let cases: [(&str, Body, Via, &[&str]); 4] = [
        ("endless GetAuthorizationToken", Body::Endless, Via::Keys, &["ECR GetAuthorizationToken", "to GetAuthorizationToken", "more than 1048576 bytes"]),
        ("5 MiB GetAuthorizationToken", Body::Bytes(vec![b' '; 5 << 20]), Via::Keys, &["to GetAuthorizationToken", "a Content-Length of 5242880 bytes"]),
        ("endless STS AssumeRole", Body::Endless, Via::Role, &["to AssumeRole", "more than 1048576 bytes"]),
        ("endless AssumeRoleWithWebId.", Body::Endless, Via::WebIdentity, &["to AssumeRoleWithWebIdentity", "more than 1048576 bytes"]),
    ];
    let mut report = Vec::new();
    for (name, answer, via, expect) in cases {
        let aws = hostile_aws(answer);
        let map = format!("{ECR_HOST}={}", aws.addr);
        let args = ["build", "--no-push", "--context", &ctx_s, "--registry-map", &map, "--insecure-registry", &aws.addr];
        let (run, rss, secs) = if via == Via::Role {
            // Plugin mode: the only way the CLI takes a role to assume (PLUGIN_ASSUME_ROLE).
            let envs = hostile_plugin_envs(
                ECR_HOST,
                "us-east-1",
                &ctx_s,
                &dockerfile,
                &aws.addr,
                &map,
                &[("PLUGIN_ASSUME_ROLE", "arn:aws:iam::123456789012:role/strata-hostile")],
            );
            with_hostile_aws(dir.path(), &aws.addr, true, &[], &envs)
        } else if via == Via::WebIdentity {
            // The default chain's web-identity provider (no keys): STS AssumeRoleWithWebIdentity.
            let envs = [("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/strata-hostile-oidc"), ("AWS_WEB_IDENTITY_TOKEN_FILE", token.as_str())];
            with_hostile_aws(dir.path(), &aws.addr, false, &args, &envs)
        } else {
            with_hostile_aws(dir.path(), &aws.addr, true, &args, &[])
        };
        let posts = aws.requests().iter().filter(|s| s.method == "POST").count();
        let message = run.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or("").to_string();
        report.push(format!("{name:30} exit {:?}  peak RSS {rss:>6} KiB  {secs:.1} s  {posts} AWS call(s)  {message}", run.code));
        assert!(!run.ok, "{name}: the build must fail:\n{}", run.stderr);
        for want in expect.iter().chain(&["larger than strata's limit of 1048576 bytes for an AWS answer"]) {
            assert!(run.stderr.contains(want), "{name}: the error says {want:?}:\n{}", run.stderr);
        }
        assert!(
            run.stderr.contains(&format!("http://{}/", aws.addr)) && run.stderr.contains(ECR_HOST),
            "{name}: the error names the endpoint and the registry:\n{}",
            run.stderr
        );
        assert_eq!(posts, 1, "{name}: an oversized answer is not retried");
        assert!(rss < 150 * 1024, "{name}: peak RSS {rss} KiB");
        assert!(secs < 30.0, "{name}: {secs:.1} s");
    }
    eprintln!("{}", report.join("\n"));
}

/// An AWS endpoint that drips its answer (a byte a second of a 10,000-byte body) cannot hold a
/// build: each attempt ends at `--aws-timeout`, the SDK's three attempts after that, and the
/// error names the call, the endpoint and the timeout.
#[test]
fn a_dripping_aws_answer_times_out() {
    let (dir, ctx) = strata_tests::plugin_step::scratch_context(&format!("FROM {ECR_HOST}/hostile/base:t\n"));
    let ctx_s = ctx.display().to_string();
    let aws = hostile_aws(Body::Drip(10_000, std::time::Duration::from_secs(1)));
    let map = format!("{ECR_HOST}={}", aws.addr);
    let args = ["build", "--no-push", "--context", &ctx_s, "--registry-map", &map, "--insecure-registry", &aws.addr, "--aws-timeout", "2s"];
    let (run, _, secs) = with_hostile_aws(dir.path(), &aws.addr, true, &args, &[]);
    let posts = aws.requests().iter().filter(|s| s.method == "POST").count();
    eprintln!("dripping GetAuthorizationToken: exit {:?}, {secs:.1} s, {posts} AWS call(s)\n{}", run.code, run.stderr);
    assert!(!run.ok, "the build must fail:\n{}", run.stderr);
    assert!(run.stderr.contains("GetAuthorizationToken") && run.stderr.contains(ECR_HOST), "names the call and the registry:\n{}", run.stderr);
    assert!(run.stderr.to_ascii_lowercase().contains("timeout") || run.stderr.contains("timed out"), "says it timed out:\n{}", run.stderr);
    assert!((1..=3).contains(&posts), "at most the SDK's three attempts: {posts}");
    // Three attempts of 2 s and backoff; without the timeout this takes 10,000 s.
    assert!(secs < 60.0, "{secs:.1} s");
    // A timeout that is no duration is refused before anything is asked.
    let (run, _, _) = with_hostile_aws(dir.path(), &aws.addr, true, &["build", "--no-push", "--context", &ctx_s, "--aws-timeout", "soon"], &[]);
    assert!(!run.ok && run.stderr.contains("--aws-timeout \"soon\""), "{}", run.stderr);
}

/// The region each AWS call is signed for (the SigV4 credential scope of its Authorization
/// header): a registry's token comes from the region in its name, the STS session of an assumed
/// role from PLUGIN_REGION, as kaniko-ecr has it.
#[test]
fn each_ecr_registry_gets_its_token_from_its_own_region() {
    const WEST: &str = "123456789012.dkr.ecr.us-west-2.amazonaws.com";
    let (dir, ctx) = strata_tests::plugin_step::scratch_context(&format!("FROM {WEST}/hostile/base:t\n"));
    let ctx_s = ctx.display().to_string();
    let dockerfile = ctx.join("Dockerfile").display().to_string();
    let scope = |seen: &Seen| seen.authorization.as_deref().and_then(|a| a.split("Credential=").nth(1)).and_then(|c| c.split('/').nth(2)).map(str::to_string);
    for role in [false, true] {
        // An answer that is no token: the build stops after the first AWS call, which is enough.
        let aws = hostile_aws(Body::Bytes(b"{}".to_vec()));
        let map = format!("{WEST}={}", aws.addr);
        let mut envs = hostile_plugin_envs(WEST, "eu-central-1", &ctx_s, &dockerfile, &aws.addr, &map, &[("PLUGIN_NO_PUSH", "true")]);
        if role {
            envs.push(("PLUGIN_ASSUME_ROLE", "arn:aws:iam::123456789012:role/strata-region"));
        }
        let (run, _, _) = with_hostile_aws(dir.path(), &aws.addr, true, &[], &envs);
        assert!(!run.ok, "the answer holds no token: {}", run.stderr);
        let posts: Vec<Seen> = aws.requests().into_iter().filter(|s| s.method == "POST").collect();
        let first = posts.first().unwrap_or_else(|| panic!("no AWS call was made:\n{}", run.stderr));
        if role {
            assert_eq!(scope(first).as_deref(), Some("eu-central-1"), "the STS session is in PLUGIN_REGION: {:?}", first.authorization);
        } else {
            assert_eq!(
                scope(first).as_deref(),
                Some("us-west-2"),
                "GetAuthorizationToken goes to the registry's region, not PLUGIN_REGION: {:?}",
                first.authorization
            );
        }
    }
}

/// An STS answer strata cannot use (a bad `Expiration`) that carries credentials: neither the
/// error nor any log line, at any verbosity, shows the secret key or the session token.
#[test]
fn an_unparsable_sts_answer_never_prints_its_credentials() {
    const SECRET: &str = "strataLeakedSecretAccessKey0123456789abcd";
    const TOKEN: &str = "strataLeakedSessionTokenFwoGZXIvYXdzEJr";
    let (dir, ctx) = strata_tests::plugin_step::scratch_context(&format!("FROM {ECR_HOST}/hostile/base:t\n"));
    let ctx_s = ctx.display().to_string();
    let dockerfile = ctx.join("Dockerfile").display().to_string();
    let answer = format!(
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials>\
         <AccessKeyId>ASIASTRATALEAKED</AccessKeyId><SecretAccessKey>{SECRET}</SecretAccessKey>\
         <SessionToken>{TOKEN}</SessionToken><Expiration>not-a-date</Expiration></Credentials>\
         <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/strata</Arn><AssumedRoleId>AROA:strata</AssumedRoleId></AssumedRoleUser>\
         </AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>"
    );
    for verbosity in ["info", "debug", "trace"] {
        let aws = HostileServer::start({
            let answer = answer.clone();
            move |req: &Seen| match (req.method.as_str(), req.target.as_str()) {
                ("POST", "/") => Reply::new(200, Body::Bytes(answer.clone().into_bytes())).header("Content-Type", "text/xml"),
                _ => Reply::new(401, Body::Bytes(Vec::new())).header("WWW-Authenticate", "Basic realm=\"hostile-ecr\""),
            }
        })
        .expect("start the hostile STS endpoint");
        let map = format!("{ECR_HOST}={}", aws.addr);
        let envs = hostile_plugin_envs(
            ECR_HOST,
            "us-east-1",
            &ctx_s,
            &dockerfile,
            &aws.addr,
            &map,
            &[("PLUGIN_NO_PUSH", "true"), ("PLUGIN_ASSUME_ROLE", "arn:aws:iam::123456789012:role/strata-leak"), ("PLUGIN_VERBOSITY", verbosity)],
        );
        let (run, _, _) = with_hostile_aws(dir.path(), &aws.addr, true, &[], &envs);
        assert!(!run.ok, "{verbosity}: the build must fail:\n{}", run.stderr);
        assert!(run.stderr.contains("AssumeRole") || run.stderr.contains("credentials"), "{verbosity}: the error says what failed:\n{}", run.stderr);
        for leak in [SECRET, TOKEN, "strata-hostile-secret-key"] {
            assert!(!run.stderr.contains(leak) && !run.stdout.contains(leak), "{verbosity}: {leak} printed:\n{}", run.stderr);
        }
    }
}

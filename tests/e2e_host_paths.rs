//! Names from a Dockerfile or a server never name a host file: a `COPY` heredoc called
//! `/etc/passwd` or `../../x`, and an `ADD` URL whose path decodes to `/etc/passwd` or climbs
//! with `..%2F`, leave a sentinel file outside the build untouched.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use strata_tests::*;

const SENTINEL: &str = "the host's own file\n";

/// A sentinel file in its own directory, far from the build's work dir.
fn sentinel() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sentinel");
    std::fs::write(&path, SENTINEL).expect("write sentinel");
    (dir, path)
}

fn assert_untouched(path: &Path) {
    assert_eq!(std::fs::read_to_string(path).expect("sentinel still there"), SENTINEL, "{} was written by the build", path.display());
}

/// Builds `dockerfile` into an OCI layout; returns the run and the layout.
fn build(env: &TestEnv, dir: &Path, dockerfile: &str) -> (Run, PathBuf) {
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("write Dockerfile");
    let layout = dir.join("layout");
    let work = dir.join("work");
    let args = [
        "build",
        "--context",
        dir.to_str().expect("utf8"),
        "--no-push",
        "--oci-layout-path",
        layout.to_str().expect("utf8"),
        "--insecure-registry",
        env.registry_http.as_str(),
        "--work-dir",
        work.to_str().expect("utf8"),
    ];
    (strata(&args, &[]), layout)
}

#[test]
fn copy_heredoc_names_never_name_host_files() {
    let Some(env) = test_env("copy_heredoc_names_never_name_host_files") else { return };
    let (_keep, target) = sentinel();
    let absolute = target.display().to_string();
    let climbing = format!("{}{}", "../".repeat(12), absolute.trim_start_matches('/'));
    for name in [absolute.clone(), format!("\"{climbing}\""), format!("\"{absolute}\"")] {
        let dir = tempfile::tempdir().expect("tempdir");
        let bare = name.trim_matches('"');
        let (run, _) = build(&env, dir.path(), &format!("FROM {}\nCOPY <<{name} /x\npwned\n{bare}\n", env.base_busybox));
        assert!(!run.ok, "a heredoc named {name} must be refused; stderr:\n{}", run.stderr);
        assert!(run.stderr.contains("not a plain file name") && run.stderr.contains("Dockerfile:2"), "clear error expected:\n{}", run.stderr);
        assert_untouched(&target);
    }
}

/// An HTTP server that answers every GET with `body`, in a thread, for `count` requests.
fn serve_any(body: &'static str, count: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    port
}

#[test]
fn add_url_names_are_decoded_then_confined() {
    let Some(env) = test_env("add_url_names_are_decoded_then_confined") else { return };
    let (_keep, target) = sentinel();
    let encoded = target.display().to_string().replace('/', "%2F");
    let port = serve_any("pwned\n", 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let dockerfile = format!(
        "FROM {}\nADD http://127.0.0.1:{port}/{encoded} /abs/\nADD http://127.0.0.1:{port}/x/{}{} /rel/\n",
        env.base_busybox,
        "..%2F".repeat(12),
        encoded.trim_start_matches("%2F"),
    );
    let (run, layout) = build(&env, dir.path(), &dockerfile);
    assert!(run.ok, "build failed:\n{}", run.stderr);
    assert_untouched(&target);
    let image = unpack_layout(&layout, "latest");
    // The image sees BuildKit's name: the last element of the decoded path.
    for d in ["abs", "rel"] {
        assert_eq!(std::fs::read_to_string(image.rootfs.join(d).join("sentinel")).expect("downloaded file in the image"), "pwned\n");
    }
}

#[test]
fn add_url_download_cap_is_enforced() {
    let Some(env) = test_env("add_url_download_cap_is_enforced") else { return };
    let port = serve_any("0123456789abcdef", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("Dockerfile"), format!("FROM {}\nADD http://127.0.0.1:{port}/big /big\n", env.base_busybox)).expect("write");
    let work = dir.path().join("work");
    let run = strata(
        &[
            "build",
            "--context",
            dir.path().to_str().expect("utf8"),
            "--no-push",
            "--insecure-registry",
            &env.registry_http,
            "--work-dir",
            work.to_str().expect("utf8"),
            "--max-download-size",
            "10",
        ],
        &[],
    );
    assert!(!run.ok, "a download over the cap must fail");
    assert!(run.stderr.contains("--max-download-size") && run.stderr.contains("Dockerfile:2"), "the error names the flag:\n{}", run.stderr);
}

#[test]
fn the_work_dir_is_private_and_dead_builds_are_collected() {
    use std::os::unix::fs::PermissionsExt;
    let Some(env) = test_env("the_work_dir_is_private_and_dead_builds_are_collected") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    // A build that was killed: its directory and unlocked lock file are still there.
    let dead = work.join("builds/4242-1");
    std::fs::create_dir_all(dead.join("stage-0/bin")).expect("mkdir");
    std::fs::write(dead.join(".lock"), "").expect("lock file");
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (run, _) = build(&env, dir.path(), &format!("FROM {}\nRUN echo hi > /hi\n", env.base_busybox));
    assert!(run.ok, "build failed:\n{}", run.stderr);
    assert!(!dead.exists(), "the dead build's directory is removed");
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&work), 0o700, "the work dir is narrowed to 0700");
    let blobs: Vec<_> = std::fs::read_dir(work.join("blobs/sha256")).expect("blobs").flatten().collect();
    assert!(!blobs.is_empty());
    assert_eq!(mode(&work.join("blobs/sha256")), 0o700);
    for b in blobs.iter().filter(|b| !b.file_name().to_string_lossy().starts_with('.')) {
        assert_eq!(mode(&b.path()) & 0o077, 0, "{} is readable by others", b.path().display());
    }
}

#[test]
fn a_damaged_blob_in_the_work_dir_is_fetched_again() {
    let Some(env) = test_env("a_damaged_blob_in_the_work_dir_is_fetched_again") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let dockerfile = format!("FROM {}\nRUN echo hi > /hi\n", env.base_busybox);
    let (first, _) = build(&env, dir.path(), &dockerfile);
    assert!(first.ok, "first build failed:\n{}", first.stderr);
    let raw = must(std::process::Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{}", env.base_busybox)));
    let manifest: serde_json::Value = serde_json::from_str(&raw).expect("manifest");
    let digest = manifest["layers"][0]["digest"].as_str().expect("layer digest").to_string();
    let blob = dir.path().join("work/blobs/sha256").join(digest.trim_start_matches("sha256:"));
    // Damage it as a disk or a stray process might: the second half goes.
    let len = std::fs::metadata(&blob).expect("the base layer is in the work dir").len();
    std::fs::OpenOptions::new().write(true).open(&blob).and_then(|f| f.set_len(len / 2)).expect("truncate");
    std::fs::remove_dir_all(dir.path().join("layout")).expect("rm layout");
    let (second, layout) = build(&env, dir.path(), &dockerfile);
    assert!(second.ok, "a damaged blob must be fetched again, not fail the build:\n{}", second.stderr);
    assert!(second.stderr.contains("damaged"), "the repair is logged:\n{}", second.stderr);
    assert_eq!(std::fs::metadata(&blob).expect("blob back").len(), len);
    let image = unpack_layout(&layout, "latest");
    assert_eq!(std::fs::read_to_string(image.rootfs.join("hi")).expect("/hi"), "hi\n");
}

/// A registry that answers `/v2/` and every manifest request with `manifest`.
fn serve_manifest(manifest: String, count: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]);
            let (ctype, body) = if req.contains("/manifests/") {
                ("application/vnd.oci.image.manifest.v1+json", manifest.clone())
            } else {
                ("application/json", "{}".to_string())
            };
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    port
}

#[test]
fn a_manifest_digest_that_climbs_is_refused() {
    let Some(env) = test_env("a_manifest_digest_that_climbs_is_refused") else { return };
    let (_keep, target) = sentinel();
    let evil = format!("sha256:{}{}", "../".repeat(12), target.display().to_string().trim_start_matches('/'));
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{evil}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{evil}","size":2}}]}}"#
    );
    let port = serve_manifest(manifest, 20);
    let dir = tempfile::tempdir().expect("tempdir");
    let host = format!("127.0.0.1:{port}");
    std::fs::write(dir.path().join("Dockerfile"), format!("FROM {host}/evil:latest\nRUN true\n")).expect("write");
    let work = dir.path().join("work");
    let layout = dir.path().join("layout");
    let run = strata(
        &[
            "build",
            "--context",
            dir.path().to_str().expect("utf8"),
            "--no-push",
            "--insecure-registry",
            &host,
            "--work-dir",
            work.to_str().expect("utf8"),
            "--oci-layout-path",
            layout.to_str().expect("utf8"),
            "--push-retry",
            "0",
        ],
        &[],
    );
    let _ = env;
    assert!(!run.ok, "the image must be refused");
    assert!(run.stderr.contains("not a sha256 digest"), "clear error expected:\n{}", run.stderr);
    assert_untouched(&target);
}

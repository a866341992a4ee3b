//! End to end: build examples/hello with strata against the real local registries (docker-registry,
//! plain HTTP and TLS with basic auth), pull it back with skopeo, unpack it with umoci, check
//! files, owners, modes and config, run its command; and compare with buildah's build.

use std::process::Command;
use strata_tests::*;

fn line<'a>(listing: &'a [String], path: &str) -> &'a str {
    listing.iter().find(|l| l.split('\t').next() == Some(path)).map(String::as_str).unwrap_or_else(|| panic!("{path} missing from the image"))
}

#[test]
fn hello_pushed_to_plain_registry_pulls_back_and_runs() {
    let Some(env) = test_env("hello_pushed_to_plain_registry_pulls_back_and_runs") else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let dest = format!("{}/e2e/hello:plain", env.registry_http);
    let run = build_hello(&env, work.path(), &dest, &["--build-arg", "GREETING=bonjour"], &[]);
    assert!(run.ok, "strata failed: {}", run.stderr);
    // Not a terminal: each finished transfer is one log line (a terminal gets bars).
    assert!(run.stderr.contains(" INFO pulled sha256:") && run.stderr.contains(" KiB in "), "{}", run.stderr);
    assert!(run.stderr.contains(" INFO pushed blob sha256:"), "{}", run.stderr);
    let digest = run.stdout.trim().to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "stdout should be the digest: {:?}", run.stdout);

    let image = pull_and_unpack(&dest, &["--src-tls-verify=false"]);
    // The registry serves the manifest whose digest strata printed.
    let raw = must(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{dest}")));
    let served = format!("sha256:{}", sha256_hex(raw.as_bytes()));
    assert_eq!(served, digest);

    let listing = listing(&image.rootfs);
    assert!(line(&listing, "app/greeting").starts_with("app/greeting\tfile\t640\t1000:1000\t"));
    assert_eq!(std::fs::read_to_string(image.rootfs.join("app/greeting")).expect("greeting"), "bonjour from strata\n");
    assert!(line(&listing, "app/greeting.txt").starts_with("app/greeting.txt\tfile\t644\t0:0\t"));
    assert!(line(&listing, "app/src/run.sh").starts_with("app/src/run.sh\tfile\t755\t0:0\t"));
    assert!(line(&listing, "app/src/link.sh").contains("\tsymlink\t") && line(&listing, "app/src/link.sh").contains("\trun.sh\t"));
    assert!(line(&listing, "app/src/sub/nested.txt").contains("\tfile\t"));
    assert!(!listing.iter().any(|l| l.starts_with("app/src/scratch.tmp")), ".dockerignore **/*.tmp must exclude src/scratch.tmp");
    assert!(!listing.iter().any(|l| l.starts_with("app/ignored.txt")), ".dockerignore must exclude ignored.txt");
    assert!(!listing.iter().any(|l| l.starts_with("etc/motd\t")), "RUN rm -f /etc/motd must leave a whiteout");
    assert!(line(&listing, "opt/data/file").contains("\tfile\t"));
    assert!(line(&listing, "tmp").starts_with("tmp\tdir\t1777\t0:0"));
    assert!(line(&listing, "home/user").starts_with("home/user\tdir\t755\t1000:1000"));
    assert_eq!(
        std::fs::read_to_string(image.rootfs.join("etc/hosts")).expect("hosts"),
        "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
        "/etc/hosts of the base must survive RUN's bind mount"
    );

    let c = &image.config["config"];
    assert_eq!(c["User"], "1000");
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], serde_json::json!(["cat /app/greeting"]));
    assert_eq!(c["Labels"]["org.opencontainers.image.title"], "hello");
    assert_eq!(c["Labels"]["example.stage"], "skeleton");
    assert_eq!(c["ExposedPorts"], serde_json::json!({"8080/tcp": {}, "53/udp": {}}));
    let envs: Vec<&str> = c["Env"].as_array().expect("Env").iter().filter_map(|v| v.as_str()).collect();
    assert!(envs.contains(&"APP_HOME=/app"), "{envs:?}");
    assert!(envs.contains(&"PATH=/bin:/sbin:/usr/bin:/usr/sbin"), "{envs:?}");
    let diff_ids = image.config["rootfs"]["diff_ids"].as_array().expect("diff_ids").len();
    assert_eq!(diff_ids, image.manifest["layers"].as_array().expect("layers").len());
    let history: Vec<&str> = image.config["history"].as_array().expect("history").iter().filter_map(|h| h["created_by"].as_str()).collect();
    assert!(history.iter().any(|h| h.starts_with("RUN |1 GREETING=bonjour /bin/sh -c echo")), "{history:?}");
    let non_empty = image.config["history"].as_array().expect("history").iter().filter(|h| h["empty_layer"] != true).count();
    assert_eq!(non_empty, diff_ids, "one non-empty history entry per layer");

    // The image's command, run as its user inside the unpacked rootfs.
    let out = must(Command::new("chroot").arg("--userspec=1000:1000").arg(&image.rootfs).args([
        "/bin/sh",
        "-c",
        "cd /app && /bin/sh -c 'cat /app/greeting' && id -u",
    ]));
    assert_eq!(out, "bonjour from strata\n1000\n");
}

#[test]
fn hello_pushed_to_tls_registry_with_credentials() {
    let Some(env) = test_env("hello_pushed_to_tls_registry_with_credentials") else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let cfg = docker_config(work.path(), &env.registry_tls, &env.user, &env.pass);
    let dest = format!("{}/e2e/hello:tls", env.registry_tls);
    let cert = format!("{}={}", env.registry_tls, env.registry_ca.display());
    let run = build_hello(&env, work.path(), &dest, &["--registry-certificate", &cert], &[("DOCKER_CONFIG", cfg.to_str().expect("utf8"))]);
    assert!(run.ok, "strata failed: {}", run.stderr);
    assert!(!run.stderr.contains(&env.pass), "the password must never be logged");
    let creds = format!("{}:{}", env.user, env.pass);
    let cert_dir = env.registry_ca.parent().expect("ca dir").to_str().expect("utf8").to_string();
    let image = pull_and_unpack(&dest, &["--src-creds", &creds, "--src-cert-dir", &cert_dir]);
    assert_eq!(std::fs::read_to_string(image.rootfs.join("app/greeting")).expect("greeting"), "hello from strata\n");
    assert_eq!(image.config["config"]["User"], "1000");
}

#[test]
fn hello_matches_buildah_oracle() {
    let Some(env) = test_env("hello_matches_buildah_oracle") else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let layout = work.path().join("layout");
    let dest = format!("{}/e2e/hello:oracle", env.registry_http);
    let layout_arg = layout.to_str().expect("utf8").to_string();
    let run = build_hello(&env, work.path(), &dest, &["--no-push", "--oci-layout-path", &layout_arg], &[]);
    assert!(run.ok, "strata failed: {}", run.stderr);
    let ours = unpack_layout(&layout, "oracle");
    let base = format!("BASE={}", env.base_busybox);
    let theirs = buildah_build(&hello_dir().join("Dockerfile"), &hello_dir(), &[&base]);

    // RUN changes mtimes of directories, and `ls` output; contents and metadata must agree.
    let a = listing(&ours.rootfs);
    // buildah leaves the empty /dev, /proc and /sys mount points RUN needed in the layer;
    // BuildKit removes such mount stubs (executor/stubs.go) and so does strata.
    let stubs = ["dev\tdir\t755\t0:0\t0\t\t", "proc\tdir\t755\t0:0\t0\t\t", "sys\tdir\t755\t0:0\t0\t\t"];
    let b: Vec<String> = listing(&theirs.rootfs).into_iter().filter(|l| !stubs.contains(&l.as_str()) || a.contains(l)).collect();
    let only_ours: Vec<&String> = a.iter().filter(|l| !b.contains(l)).collect();
    let only_theirs: Vec<&String> = b.iter().filter(|l| !a.contains(l)).collect();
    assert!(only_ours.is_empty() && only_theirs.is_empty(), "listings differ\nonly strata:\n{only_ours:#?}\nonly buildah:\n{only_theirs:#?}");
    let mut theirs_config = theirs.config["config"].clone();
    // buildah stamps its own version as a label; that is buildah's, not the Dockerfile's.
    if let Some(labels) = theirs_config["Labels"].as_object_mut() {
        labels.remove("io.buildah.version");
    }
    for field in ["Env", "Cmd", "Entrypoint", "User", "WorkingDir", "Labels", "ExposedPorts"] {
        assert_eq!(ours.config["config"][field], theirs_config[field], "config field {field}");
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn reproducible_builds_are_byte_identical() {
    let Some(env) = test_env("reproducible_builds_are_byte_identical") else { return };
    let digest_of = |extra_env: &[(&str, &str)]| {
        // A fresh work dir each time: nothing cached may make the result equal by accident.
        let work = tempfile::tempdir().expect("tempdir");
        let dest = format!("{}/e2e/hello:repro", env.registry_http);
        let run = build_hello(&env, work.path(), &dest, &["--no-push", "--reproducible"], extra_env);
        assert!(run.ok, "strata failed: {}", run.stderr);
        run.stdout.trim().to_string()
    };
    let first = digest_of(&[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(first, digest_of(&[]), "two --reproducible builds of the same inputs must give the same digest");
    let epoch = digest_of(&[("SOURCE_DATE_EPOCH", "1700000000")]);
    assert_ne!(first, epoch, "SOURCE_DATE_EPOCH changes the timestamps");
    assert_eq!(epoch, digest_of(&[("SOURCE_DATE_EPOCH", "1700000000")]));
}

//! End to end: the issue "Never a wrong image". Later RUNs rewrite a file with the same size and
//! put its mtime back, and rename another file over an old one with the same mtime (as `cp -p`,
//! `tar -x`, `rsync -a` and package managers do). Built with each `--snapshot-mode` by the real
//! strata binary on the busybox base, pushed to the local docker-registry, pulled back with
//! skopeo and unpacked with umoci: `full` and `redo` must hold the last RUNs' files; `time`,
//! which compares mtimes only, is asserted to miss them, as the README says.

use strata_tests::*;

const DOCKERFILE: &str = "ARG BASE\nFROM $BASE\n\
RUN echo aaaa > /f && touch -d @1000000000 /f && echo 1111 > /k && touch -d @1000000000 /k\n\
RUN echo bbbb > /f && touch -d @1000000000 /f\n\
RUN echo 2222 > /k.new && touch -d @1000000000 /k.new && mv /k.new /k\n\
RUN mkdir -p /d && echo x > /d/h1 && ln /d/h1 /d/h2 && touch -d @1000000000 /d/h1\n\
RUN echo y > /d/h2 && touch -d @1000000000 /d/h2 && chmod 600 /d/h1 && chmod 644 /d/h1\n";

#[test]
fn every_snapshot_mode_keeps_or_documents_rewrites_with_the_mtime_put_back() {
    let Some(env) = test_env("every_snapshot_mode_keeps_or_documents_rewrites_with_the_mtime_put_back") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).expect("write Dockerfile");
    for mode in ["full", "redo", "time"] {
        let work = dir.path().join(format!("work-{mode}"));
        let dest = format!("{}/e2e/snapshot-modes:{mode}", env.registry_http);
        let base = format!("BASE={}", env.base_busybox);
        let run = strata(
            &[
                "build",
                "--context",
                ctx.to_str().expect("utf8"),
                "--build-arg",
                &base,
                "--destination",
                &dest,
                "--insecure-registry",
                &env.registry_http,
                "--snapshot-mode",
                mode,
                "--work-dir",
                work.to_str().expect("utf8"),
            ],
            &[],
        );
        assert!(run.ok, "{mode}: strata failed: {}", run.stderr);
        let image = pull_and_unpack(&dest, &["--src-tls-verify=false"]);
        let read = |p: &str| std::fs::read_to_string(image.rootfs.join(p)).unwrap_or_else(|e| panic!("{mode}: /{p}: {e}"));
        let (f, k, h1, h2) = (read("f"), read("k"), read("d/h1"), read("d/h2"));
        if mode == "time" {
            // mtime only: both rewrites keep the old mtime, so time mode loses them (documented).
            assert_eq!((f.as_str(), k.as_str()), ("aaaa\n", "1111\n"), "time mode's documented misses changed?");
            continue;
        }
        assert_eq!(f, "bbbb\n", "{mode}: /f");
        assert_eq!(k, "2222\n", "{mode}: /k");
        assert_eq!((h1.as_str(), h2.as_str()), ("y\n", "y\n"), "{mode}: a rewrite through a hardlink reaches both names");
        assert!(!image.rootfs.join("k.new").exists(), "{mode}: /k.new was renamed away");
        // The RUNs' own mount stubs (/etc/hosts, /etc/resolv.conf, /proc, ...) come and go with
        // the parents' times put back: no RUN layer records /etc or anything strata made.
        let layout = std::path::PathBuf::from(image.manifest["_layout"].as_str().expect("layout"));
        let layers = image.manifest["layers"].as_array().expect("layers");
        for l in &layers[layers.len() - 5..] {
            let path = blob(&layout, l["digest"].as_str().expect("digest"));
            let names = must(std::process::Command::new("tar").arg("-tzf").arg(&path));
            for name in names.lines() {
                assert!(["f", "k", "d/", "d/h1", "d/h2"].contains(&name.trim_start_matches("./")), "{mode}: unexpected {name:?} in a RUN layer:\n{names}");
            }
        }
    }
}

/// `--max-layer-size`: a limit below the busybox base layer's size refuses it, naming the
/// layer's digest, the limit and the flag; a bad value is refused up front.
#[test]
fn max_layer_size_refuses_a_base_layer_naming_digest_limit_and_flag() {
    let Some(env) = test_env("max_layer_size_refuses_a_base_layer_naming_digest_limit_and_flag") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::fs::write(ctx.join("Dockerfile"), "ARG BASE\nFROM $BASE\nRUN true\n").expect("write Dockerfile");
    let base = format!("BASE={}", env.base_busybox);
    let work = dir.path().join("work");
    let build = |limit: &str| {
        strata(
            &[
                "build",
                "--context",
                ctx.to_str().expect("utf8"),
                "--build-arg",
                &base,
                "--no-push",
                "--max-layer-size",
                limit,
                "--work-dir",
                work.to_str().expect("utf8"),
            ],
            &[],
        )
    };
    let run = build("64KiB");
    assert!(!run.ok, "a 64 KiB limit cannot hold busybox: {}", run.stderr);
    assert!(run.stderr.contains("layer sha256:") && run.stderr.contains("65536 bytes") && run.stderr.contains("--max-layer-size"), "{}", run.stderr);
    let run = build("12 parsecs");
    assert!(!run.ok && run.stderr.contains("--max-layer-size") && run.stderr.contains("unknown unit"), "{}", run.stderr);
    let run = build("100x");
    assert!(run.ok, "the default holds it: {}", run.stderr);
}

//! End to end, kaniko's executor command line: strata called as `executor` (as a GitLab or
//! Tekton job written for `/kaniko/executor` calls it) with kaniko's flag forms (`dir://`
//! contexts, `--context-sub-path`, `--flag=true|false`, flags strata does not need) builds and
//! pushes the same image, and writes kaniko's output files; remote contexts and bad booleans
//! fail with a message naming the flag.

use std::process::Command;
use strata_tests::*;

/// A link named `executor` to the strata binary, in `dir`.
fn executor(dir: &std::path::Path) -> std::path::PathBuf {
    let link = dir.join("executor");
    std::os::unix::fs::symlink(strata_bin(), &link).expect("symlink");
    link
}

fn run(bin: &std::path::Path, args: &[&str]) -> Run {
    to_run(Command::new(bin).args(args).output().expect("run executor"))
}

#[test]
fn kaniko_command_line_builds_and_pushes() {
    let test = "kaniko_command_line_builds_and_pushes";
    let Some(env) = test_env(test) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = executor(dir.path());
    let examples = hello_dir().parent().expect("examples").display().to_string();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() % 1_000_000_000);
    let dest = format!("{}/e2e/kaniko-cli:v{nanos}", env.registry_http);
    let (names, tagged, digest_file) = (dir.path().join("names"), dir.path().join("tagged"), dir.path().join("digest"));
    let base = format!("BASE={}", env.base_busybox);
    let work = dir.path().join("work").display().to_string();
    let out = run(
        &bin,
        &[
            &format!("--context=dir://{examples}"),
            "--context-sub-path=hello",
            "--dockerfile=Dockerfile",
            "--destination",
            &dest,
            &format!("--insecure-registry={}", env.registry_http),
            "--build-arg",
            &base,
            "--cache=true",
            "--cache-copy-layers=true",
            "--cache-run-layers",
            "--no-push=false",
            "--reproducible=false",
            "--use-new-run",
            "--image-download-retry=2",
            "--snapshot-mode=redo",
            "--work-dir",
            &work,
            &format!("--digest-file={}", digest_file.display()),
            &format!("--image-name-with-digest-file={}", names.display()),
            &format!("--image-name-tag-with-digest-file={}", tagged.display()),
            "--verbosity=info",
        ],
    );
    assert!(out.ok, "kaniko-style build failed: {}", out.stderr);
    assert!(out.stderr.contains("kaniko flag --cache-copy-layers is accepted and ignored: with --cache, COPY layers are always cached"), "{}", out.stderr);
    let digest = std::fs::read_to_string(&digest_file).expect("digest file");
    assert!(digest.starts_with("sha256:") && out.stdout.trim() == digest.trim(), "{digest} vs {}", out.stdout);
    let repo = dest.rsplit_once(':').expect("tag").0;
    assert_eq!(std::fs::read_to_string(&names).expect("names file"), format!("{repo}@{digest}\n"));
    assert_eq!(std::fs::read_to_string(&tagged).expect("tagged file"), format!("{dest}@{digest}\n"));
    let image = pull_and_unpack(&dest, &["--src-tls-verify=false"]);
    assert_eq!(std::fs::read_to_string(image.rootfs.join("app/greeting")).expect("greeting"), "hello from strata\n");
    assert!(std::path::Path::new(&work).join("cache/steps").is_dir(), "--cache=true turned the layer cache on");

    // The same build through `strata build` gives the same files.
    let ours = build_hello(&env, &dir.path().join("work2"), &format!("{}/e2e/kaniko-cli:strata-{nanos}", env.registry_http), &["--snapshot-mode", "redo"], &[]);
    assert!(ours.ok, "{}", ours.stderr);
    // Each RUN says how long it ran and what its snapshot (in the mode asked for) found.
    assert!(ours.stderr.contains(": ran in ") && ours.stderr.contains(": snapshot (redo) in ") && ours.stderr.contains(" changes among "), "{}", ours.stderr);
    let theirs = pull_and_unpack(&format!("{}/e2e/kaniko-cli:strata-{nanos}", env.registry_http), &["--src-tls-verify=false"]);
    assert_eq!(listing(&image.rootfs), listing(&theirs.rootfs));
}

#[test]
fn kaniko_command_line_errors_name_the_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = executor(dir.path());
    let remote = run(&bin, &["--context", "s3://bucket/context.tar.gz", "--destination", "127.0.0.1:5000/x:1"]);
    assert!(!remote.ok && remote.code == Some(1), "{}", remote.stderr);
    assert!(remote.stderr.contains("--context s3://bucket/context.tar.gz: s3:// contexts are not supported"), "{}", remote.stderr);
    let bad = run(&bin, &["--context=.", "--cache=yes", "--no-push"]);
    assert!(!bad.ok && bad.stderr.contains("--cache=yes: expected true or false"), "{}", bad.stderr);
    // `strata --version` and `executor --help` still answer as such.
    let help = run(&bin, &["--help"]);
    assert!(help.ok && help.stdout.contains("Usage"), "{}", help.stdout);
}

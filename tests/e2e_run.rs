//! End to end: RUN isolation and `RUN --mount` on the busybox base from the local registry
//! (docker-registry started by scripts/test.sh). Each test builds with the real strata binary
//! into an OCI layout, unpacks it with umoci and reads the layer blobs with gzip/tar.

use std::path::Path;
use std::process::Command;
use strata_tests::*;

/// Entry names of a tar stream.
fn tar_names(tar: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("layer.tar");
    std::fs::write(&file, tar).expect("write tar");
    must(Command::new("tar").arg("-tf").arg(&file)).lines().map(str::to_string).collect()
}

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{tag}-{}-{nanos}", std::process::id())
}

const BASE: &str = "ARG BASE\nFROM ${BASE}\n";

#[test]
fn cache_mount_persists_across_builds_and_stays_out_of_layers() {
    let Some(env) = test_env("cache_mount_persists_across_builds_and_stays_out_of_layers") else { return };
    let case = LayoutCase::new(&format!(
        "{BASE}RUN --mount=type=cache,target=/var/cache/app,id=counter \
         sh -c 'n=$(cat /var/cache/app/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /var/cache/app/count; echo $n > /seen; \
         stat -c %a:%u:%g /var/cache/app > /cache-stat'\n\
         RUN --mount=type=cache,target=/locked,sharing=locked,uid=1000,gid=1000,mode=0700 stat -c %a:%u:%g /locked > /locked-stat\n"
    ));
    let cache = case.path().join("cache");
    let cache_arg = cache.to_str().expect("utf8");
    for round in ["1", "2"] {
        let run = case.build(&env, &["--run-cache-dir", cache_arg], &[]);
        assert!(run.ok, "strata failed: {}", run.stderr);
        let image = case.unpack();
        assert_eq!(read(&image.rootfs, "seen"), format!("{round}\n"), "the cache keeps its content between builds");
        assert_eq!(read(&image.rootfs, "cache-stat"), "755:0:0\n");
        assert_eq!(read(&image.rootfs, "locked-stat"), "700:1000:1000\n", "uid/gid/mode apply to a new cache dir");
        let listing = listing(&image.rootfs);
        let stubs: Vec<&String> = listing.iter().filter(|l| l.starts_with("var/cache") || l.starts_with("locked\t") || l.starts_with("locked/")).collect();
        assert!(stubs.is_empty(), "no cache mount target in the image: {stubs:?}");
        let tars = case.layer_tars(&image);
        let mut first_run: Vec<String> = tar_names(&tars[tars.len() - 2]);
        first_run.sort();
        assert_eq!(first_run, ["cache-stat", "seen"], "the RUN's layer holds only its own files (no stub, no touched parent)");
        assert_eq!(tar_names(&tars[tars.len() - 1]), ["locked-stat"]);
        for tar in tars {
            let names = tar_names(&tar);
            assert!(!names.iter().any(|n| n.contains("var/cache") || n.contains("count") || n.trim_end_matches('/') == "locked"), "{names:?}");
        }
    }
}

#[test]
fn secret_is_readable_by_run_and_absent_from_image_and_logs() {
    let Some(env) = test_env("secret_is_readable_by_run_and_absent_from_image_and_logs") else { return };
    let file_secret = unique("file-secret-value");
    let env_secret = unique("env-secret-value");
    let case = LayoutCase::new(&format!(
        "{BASE}RUN --mount=type=secret,id=tok sh -c 'cat /run/secrets/tok | sha256sum | cut -d\" \" -f1 > /tok.sha; stat -c %a:%u /run/secrets/tok > /tok.stat'\n\
         RUN --mount=type=secret,id=tok,target=/etc/app/token,mode=0440,uid=1000 sh -c 'sha256sum < /etc/app/token | cut -d\" \" -f1 > /tok2.sha; stat -c %a:%u /etc/app/token > /tok2.stat'\n\
         RUN --mount=type=secret,id=apikey,env=API_KEY sh -c 'printf %s \"$API_KEY\" | sha256sum | cut -d\" \" -f1 > /env.sha; test ! -e /run/secrets/apikey && echo nofile > /env.file'\n\
         RUN --mount=type=secret,id=absent sh -c 'test ! -e /run/secrets/absent && echo skipped > /absent'\n"
    ));
    let secret_path = case.path().join("secret.txt");
    std::fs::write(&secret_path, &file_secret).expect("write secret");
    let src = format!("id=tok,src={}", secret_path.display());
    let run = case.build(&env, &["--secret", &src, "--secret", "id=apikey,env=STRATA_E2E_API_KEY", "-v", "trace"], &[("STRATA_E2E_API_KEY", &env_secret)]);
    assert!(run.ok, "strata failed: {}", run.stderr);
    let image = case.unpack();
    let sha = |s: &str| must(Command::new("sh").arg("-c").arg("printf %s \"$V\" | sha256sum | cut -d' ' -f1").env("V", s));
    assert_eq!(read(&image.rootfs, "tok.sha"), sha(&file_secret), "the RUN read the secret file");
    assert_eq!(read(&image.rootfs, "tok.stat"), "400:0\n", "default secret mode 0400, owner root");
    assert_eq!(read(&image.rootfs, "tok2.sha"), sha(&file_secret));
    assert_eq!(read(&image.rootfs, "tok2.stat"), "440:1000\n");
    assert_eq!(read(&image.rootfs, "env.sha"), sha(&env_secret), "the RUN saw the secret as $API_KEY");
    assert_eq!(read(&image.rootfs, "env.file"), "nofile\n", "env= alone mounts no file");
    assert_eq!(read(&image.rootfs, "absent"), "skipped\n", "a missing optional secret is skipped");

    let listing = listing(&image.rootfs);
    assert!(!listing.iter().any(|l| l.starts_with("run/secrets") || l.starts_with("etc/app")), "no secret mount stub in the image: {listing:?}");
    for value in [&file_secret, &env_secret] {
        for (i, tar) in case.layer_tars(&image).iter().enumerate() {
            assert!(!contains(tar, value.as_bytes()), "secret found in layer {i}");
        }
        let config = serde_json::to_string(&image.config).expect("config json");
        assert!(!config.contains(value.as_str()), "secret found in the config or history");
        assert!(!run.stderr.contains(value.as_str()) && !run.stdout.contains(value.as_str()), "secret found in strata's output");
    }
    let history = serde_json::to_string(&image.config["history"]).expect("history");
    assert!(!history.contains("API_KEY="), "the secret env var is not recorded: {history}");
}

#[test]
fn required_secret_missing_and_ssh_fail_clearly() {
    let Some(env) = test_env("required_secret_missing_and_ssh_fail_clearly") else { return };
    let case = LayoutCase::new(&format!("{BASE}RUN --mount=type=secret,id=needed,required true\n"));
    let run = case.build(&env, &[], &[]);
    assert!(!run.ok);
    assert!(run.stderr.contains("Dockerfile:3") && run.stderr.contains("secret \"needed\" is required"), "{}", run.stderr);

    let case = LayoutCase::new(&format!("{BASE}RUN --mount=type=ssh true\n"));
    let run = case.build(&env, &[], &[]);
    assert!(!run.ok);
    assert!(run.stderr.contains("type=ssh is not supported yet"), "{}", run.stderr);
}

#[test]
fn bind_mounts_from_context_and_stage_are_readable_and_not_in_layers() {
    let Some(env) = test_env("bind_mounts_from_context_and_stage_are_readable_and_not_in_layers") else { return };
    let case = LayoutCase::new(
        "ARG BASE\nFROM ${BASE} AS src\nRUN echo from-stage > /marker\n\
         FROM ${BASE}\n\
         RUN --mount=type=bind,source=data,target=/mnt/data sh -c 'cat /mnt/data/input.txt > /copied; ls /mnt/data > /visible; (touch /mnt/data/new 2>/dev/null && echo writable || echo readonly) > /bindmode'\n\
         RUN --mount=type=bind,source=data,target=/w,rw sh -c 'echo scribble > /w/input.txt; touch /w/new; cat /w/input.txt > /rwcopy'\n\
         RUN --mount=type=bind,from=src,source=/marker,target=/m cat /m > /got\n\
         RUN --mount=target=/ctx cat /ctx/data/input.txt > /whole\n",
    );
    std::fs::create_dir_all(case.ctx().join("data")).expect("mkdir");
    std::fs::write(case.ctx().join("data/input.txt"), "context data\n").expect("write");
    std::fs::write(case.ctx().join("data/secret.env"), "PASSWORD=hunter2\n").expect("write");
    std::fs::write(case.ctx().join(".dockerignore"), "data/*.env\n").expect("write");
    let run = case.build(&env, &[], &[]);
    assert!(run.ok, "strata failed: {}", run.stderr);
    let image = case.unpack();
    assert_eq!(read(&image.rootfs, "copied"), "context data\n");
    assert_eq!(read(&image.rootfs, "bindmode"), "readonly\n", "bind mounts are read-only by default");
    assert_eq!(read(&image.rootfs, "visible"), "input.txt\n", "files .dockerignore excludes are not in the bind mount (BuildKit)");
    assert_eq!(read(&image.rootfs, "rwcopy"), "scribble\n", "rw lets the RUN write");
    assert_eq!(read(&image.rootfs, "got"), "from-stage\n");
    assert_eq!(read(&image.rootfs, "whole"), "context data\n");
    assert_eq!(std::fs::read_to_string(case.ctx().join("data/input.txt")).expect("ctx"), "context data\n", "rw writes are discarded");
    assert!(!case.ctx().join("data/new").exists());
    let listing = listing(&image.rootfs);
    assert!(
        !listing.iter().any(|l| l.starts_with("mnt/data") || l.starts_with("w\t") || l.starts_with("w/") || l.starts_with("m\t") || l.starts_with("ctx")),
        "no bind target left in the image: {listing:?}"
    );
}

#[test]
fn tmpfs_mount_is_a_tmpfs_and_leaves_nothing() {
    let Some(env) = test_env("tmpfs_mount_is_a_tmpfs_and_leaves_nothing") else { return };
    let case = LayoutCase::new(&format!(
        "{BASE}RUN --mount=type=tmpfs,target=/scratch,size=1m sh -c 'grep \" /scratch \" /proc/mounts | cut -d\" \" -f3 > /fstype; echo junk > /scratch/f; df -k /scratch | tail -n1 | tr -s \" \" | cut -d\" \" -f2 > /size'\n"
    ));
    let run = case.build(&env, &[], &[]);
    assert!(run.ok, "strata failed: {}", run.stderr);
    let image = case.unpack();
    assert_eq!(read(&image.rootfs, "fstype"), "tmpfs\n");
    assert_eq!(read(&image.rootfs, "size"), "1024\n", "size=1m");
    assert!(!listing(&image.rootfs).iter().any(|l| l.starts_with("scratch")));
}

#[test]
fn network_none_has_only_loopback_and_it_is_up() {
    let Some(env) = test_env("network_none_has_only_loopback_and_it_is_up") else { return };
    let case = LayoutCase::new(&format!(
        "{BASE}RUN --network=none sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \" > /ifaces; cat /sys/class/net/lo/flags > /loflags; ping -c1 -W2 127.0.0.1 >/dev/null && echo reachable > /ping'\n\
         RUN sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \" | sort > /default-ifaces'\n"
    ));
    let run = case.build(&env, &[], &[]);
    assert!(run.ok, "strata failed: {}", run.stderr);
    let image = case.unpack();
    assert_eq!(read(&image.rootfs, "ifaces"), "lo\n");
    let flags = u32::from_str_radix(read(&image.rootfs, "loflags").trim().trim_start_matches("0x"), 16).expect("flags");
    assert_eq!(flags & 1, 1, "IFF_UP is set on lo");
    assert_eq!(read(&image.rootfs, "ping"), "reachable\n", "loopback answers");
    assert!(read(&image.rootfs, "default-ifaces").lines().count() >= 1);
}

fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if text.contains(needle) {
                found.push(format!("{}: {text}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn background_processes_of_a_run_are_gone_after_it() {
    let Some(env) = test_env("background_processes_of_a_run_are_gone_after_it") else { return };
    let secs = 900_000 + std::process::id() % 90_000;
    let case = LayoutCase::new(&format!("{BASE}RUN sh -c 'sleep {secs} & setsid sh -c \"sleep {} &\" ; echo $$ > /pid'\n", secs + 1));
    let run = case.build(&env, &[], &[]);
    assert!(run.ok, "strata failed: {}", run.stderr);
    let image = case.unpack();
    assert_eq!(read(&image.rootfs, "pid"), "1\n", "the RUN's shell is PID 1 of its own PID namespace");
    let left = [processes_with(&format!("sleep {secs}")), processes_with(&format!("sleep {}", secs + 1))].concat();
    assert!(left.is_empty(), "processes outlived the RUN: {left:?}");
}

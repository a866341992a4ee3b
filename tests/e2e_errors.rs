//! Bad input: each case fails with one readable error naming the cause, a non-zero exit,
//! and nothing pushed to the registry.

use std::path::Path;
use strata_tests::*;

fn write_ctx(dir: &Path, dockerfile: &str) {
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("write Dockerfile");
}

/// Whether the registry has any tag in `repo`.
fn has_tags(env: &TestEnv, repo: &str) -> bool {
    let out = std::process::Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{}/{repo}", env.registry_http))
        .output()
        .expect("skopeo");
    out.status.success()
        && String::from_utf8_lossy(&out.stdout).contains('"')
        && serde_json::from_slice::<serde_json::Value>(&out.stdout).map(|v| v["Tags"].as_array().is_some_and(|t| !t.is_empty())).unwrap_or(false)
}

fn build(env: &TestEnv, ctx: &Path, dest: &str, extra: &[&str]) -> Run {
    let work = ctx.join(".work");
    let mut args = vec![
        "build",
        "--context",
        ctx.to_str().expect("utf8"),
        "--destination",
        dest,
        "--insecure-registry",
        env.registry_http.as_str(),
        "--work-dir",
        work.to_str().expect("utf8"),
        "--push-retry",
        "0",
    ];
    args.extend_from_slice(extra);
    strata(&args, &[])
}

fn assert_one_line_error(run: &Run, must_contain: &[&str]) {
    assert!(!run.ok, "strata should fail; stderr:\n{}", run.stderr);
    assert_eq!(run.code, Some(1));
    let err: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(err.len(), 1, "exactly one error line expected:\n{}", run.stderr);
    for s in must_contain {
        assert!(err[0].contains(s), "error line {:?} should contain {s:?}", err[0]);
    }
}

#[test]
fn missing_dockerfile() {
    let Some(env) = test_env("missing_dockerfile") else { return };
    let ctx = tempfile::tempdir().expect("tempdir");
    let dest = format!("{}/e2e/err-missing:latest", env.registry_http);
    let run = build(&env, ctx.path(), &dest, &[]);
    assert_one_line_error(&run, &["Dockerfile", "No such file"]);
    assert!(!has_tags(&env, "e2e/err-missing"));
}

#[test]
fn unknown_instruction_names_its_line() {
    let Some(env) = test_env("unknown_instruction_names_its_line") else { return };
    let ctx = tempfile::tempdir().expect("tempdir");
    write_ctx(ctx.path(), &format!("FROM {}\nRUN true\nFROBNICATE now\n", env.base_busybox));
    let dest = format!("{}/e2e/err-unknown:latest", env.registry_http);
    let run = build(&env, ctx.path(), &dest, &[]);
    assert_one_line_error(&run, &["Dockerfile:3", "FROBNICATE"]);
    assert!(!has_tags(&env, "e2e/err-unknown"));
}

#[test]
fn failing_run_shows_command_and_exit_code() {
    let Some(env) = test_env("failing_run_shows_command_and_exit_code") else { return };
    let ctx = tempfile::tempdir().expect("tempdir");
    write_ctx(ctx.path(), &format!("FROM {}\nRUN echo before\nRUN echo failing && exit 3\n", env.base_busybox));
    let dest = format!("{}/e2e/err-run:latest", env.registry_http);
    let run = build(&env, ctx.path(), &dest, &[]);
    assert_one_line_error(&run, &["Dockerfile:3", "echo failing && exit 3", "exit code 3"]);
    assert!(!has_tags(&env, "e2e/err-run"));
}

#[test]
fn registry_down_fails_cleanly() {
    let Some(env) = test_env("registry_down_fails_cleanly") else { return };
    let ctx = tempfile::tempdir().expect("tempdir");
    write_ctx(ctx.path(), &format!("FROM {}\nRUN echo hi > /x\n", env.base_busybox));
    // Nothing listens on port 9 of loopback.
    let run = build(&env, ctx.path(), "127.0.0.1:9/e2e/down:latest", &["--insecure-registry", "127.0.0.1:9"]);
    assert_one_line_error(&run, &["127.0.0.1:9"]);
}

#[test]
fn wrong_credentials_push_nothing() {
    let Some(env) = test_env("wrong_credentials_push_nothing") else { return };
    let ctx = tempfile::tempdir().expect("tempdir");
    write_ctx(ctx.path(), &format!("FROM {}\nRUN echo hi > /x\n", env.base_busybox));
    let cfg = docker_config(ctx.path(), &env.registry_tls, &env.user, "not-the-password");
    let dest = format!("{}/e2e/err-creds:latest", env.registry_tls);
    let cert = format!("{}={}", env.registry_tls, env.registry_ca.display());
    let work = ctx.path().join(".work");
    let run = strata(
        &[
            "build",
            "--context",
            ctx.path().to_str().expect("utf8"),
            "--destination",
            &dest,
            "--insecure-registry",
            &env.registry_http,
            "--registry-certificate",
            &cert,
            "--work-dir",
            work.to_str().expect("utf8"),
            "--push-retry",
            "0",
        ],
        &[("DOCKER_CONFIG", cfg.to_str().expect("utf8"))],
    );
    assert_one_line_error(&run, &[&env.registry_tls, "401"]);
    assert!(!run.stderr.contains("not-the-password"));
    let creds = format!("{}:{}", env.user, env.pass);
    let cert_dir = env.registry_ca.parent().expect("ca dir").to_str().expect("utf8").to_string();
    let tags = std::process::Command::new("skopeo")
        .args(["list-tags", "--creds", &creds, "--cert-dir", &cert_dir])
        .arg(format!("docker://{dest}").trim_end_matches(":latest"))
        .output()
        .expect("skopeo");
    assert!(!String::from_utf8_lossy(&tags.stdout).contains("latest"), "nothing may be pushed with wrong credentials");
}

#[test]
fn bad_cache_and_platform_flags_are_named() {
    let Some(env) = test_env("bad_cache_and_platform_flags_are_named") else { return };
    let ctx = tempfile::tempdir().expect("tempdir");
    write_ctx(ctx.path(), "FROM scratch\nLABEL a=b\n");
    let dest = format!("{}/e2e/err-flags:latest", env.registry_http);
    let cases: [(&[&str], &[&str]); 3] = [
        (&["--cache", "--cache-ttl", "2weeks"], &["--cache-ttl", "2weeks", "336h"]),
        (&["--cache", "--cache-repo", "127.0.0.1:5000/c:tag"], &["--cache-repo", "without a tag"]),
        (&["--custom-platform", "linux"], &["--custom-platform", "os/arch"]),
    ];
    for (flags, words) in cases {
        let run = build(&env, ctx.path(), &dest, flags);
        assert_one_line_error(&run, words);
    }
    assert!(!has_tags(&env, "e2e/err-flags"));
}

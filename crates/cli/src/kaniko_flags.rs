//! kaniko's executor command line, accepted as it is: `/kaniko/executor --context=dir://. \
//! --destination=… --cache=true …` runs `strata build` with the same meaning, so a GitLab or
//! Tekton job written for kaniko needs only the image name changed. The argument list is
//! rewritten before clap sees it: `build` is implied, Go-style booleans (`--flag=true|false`)
//! become plain flags, `dir://` contexts become paths, and kaniko flags that strata does not
//! need are dropped with a note saying why.

use std::ffi::OsString;

/// strata's boolean flags that kaniko also has (`--cache=true` works for these).
const BOOLS: &[&str] =
    &["no-push", "insecure", "skip-tls-verify", "insecure-pull", "skip-tls-verify-pull", "single-snapshot", "reproducible", "force", "cache"];

/// kaniko flags strata accepts and ignores: name, whether it takes a value, and why.
const IGNORED: &[(&str, bool, &str)] = &[
    ("cache-copy-layers", false, "with --cache, COPY layers are always cached"),
    ("cache-run-layers", false, "with --cache, RUN layers are always cached"),
    ("use-new-run", false, "strata has one RUN implementation"),
    ("compressed-caching", false, "layers are streamed and never held in memory"),
    ("cleanup", false, "strata always gives the container its files back after a build in /"),
    ("skip-unused-stages", false, "only the stages the target needs are ever built"),
    ("skip-push-permission-check", false, "the check is one request before the build"),
    ("log-timestamp", false, "log lines always carry a timestamp"),
    ("no-push-cache", false, "cache entries go to the cache repository whenever there is one"),
    ("skip-default-registry-fallback", false, "mirrors always fall back to the image's own registry"),
    ("image-fs-extract-retry", true, "unpacking reads local blobs, which are verified when pulled"),
    ("image-download-retry", true, "--push-retry covers pulls too"),
    ("kaniko-dir", true, "strata keeps its files in --work-dir"),
    ("cache-dir", true, "kaniko's base-image cache (its warmer's): strata keeps base blobs in its --work-dir; RUN cache mounts persist in --run-cache-dir"),
];

/// The argument list for clap, and notes about what was rewritten or ignored.
pub fn normalize(argv: Vec<OsString>) -> Result<(Vec<OsString>, Vec<String>), String> {
    let mut out: Vec<OsString> = Vec::with_capacity(argv.len() + 1);
    let mut notes = Vec::new();
    let mut args = argv.into_iter();
    let Some(program) = args.next() else { return Ok((out, notes)) };
    let rest: Vec<OsString> = args.collect();
    out.push(program.clone());
    let invoked_as_executor = std::path::Path::new(&program).file_name().is_some_and(|n| n == "executor");
    let first = rest.first().and_then(|a| a.to_str()).unwrap_or("");
    let is_command = matches!(first, "build" | "plan" | "push" | "manifest" | "help");
    let asks_for_help = matches!(first, "-h" | "--help" | "-V" | "--version");
    let kaniko_style = (first.starts_with('-') || invoked_as_executor) && !asks_for_help && !is_command;
    if !kaniko_style {
        out.extend(rest);
        return Ok((out, notes));
    }
    out.push("build".into());
    let mut i = 0;
    while i < rest.len() {
        let arg = &rest[i];
        i += 1;
        let Some(text) = arg.to_str() else {
            out.push(arg.clone());
            continue;
        };
        if text == "-c" || text == "--context" || text.starts_with("--context=") {
            let value = match text.split_once('=') {
                Some((_, v)) => Some(v),
                None => {
                    let v = rest.get(i).and_then(|v| v.to_str());
                    i += usize::from(v.is_some());
                    v
                }
            };
            match value {
                Some(v) => out.extend(["--context".into(), context_path(v)?.into()]),
                None => out.push(arg.clone()),
            }
            continue;
        }
        let Some(long) = text.strip_prefix("--") else {
            out.push(arg.clone());
            continue;
        };
        let (name, value) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (long, None),
        };
        if BOOLS.contains(&name) {
            if go_bool(name, value)? {
                out.push(format!("--{name}").into());
            }
            continue;
        }
        if name == "ignore-var-run" {
            // kaniko's default is true; strata keeps /var/run out of layers only when asked.
            if go_bool(name, value)? {
                out.extend(["--ignore-path".into(), "/var/run".into()]);
            }
            continue;
        }
        if let Some((_, takes_value, why)) = IGNORED.iter().find(|(n, _, _)| *n == name) {
            if *takes_value && value.is_none() {
                i += 1;
            } else if !*takes_value {
                go_bool(name, value)?;
            }
            notes.push(format!("kaniko flag --{name} is accepted and ignored: {why}"));
            continue;
        }
        if name == "git" {
            return Err("--git: remote git contexts are not supported; check the repository out in an earlier step and pass its directory as --context".into());
        }
        out.push(arg.clone());
    }
    Ok((out, notes))
}

/// A Go `strconv.ParseBool` value (absent: true), as kaniko's flag parser takes it.
fn go_bool(name: &str, value: Option<&str>) -> Result<bool, String> {
    value.map_or(Ok(true), |v| strata_dockerfile::go_parse::parse_bool(v).map_err(|e| format!("--{name}={v}: expected true or false ({e})")))
}

/// kaniko's context forms: a path, `dir://PATH` or `tar://PATH`; remote ones are refused.
fn context_path(value: &str) -> Result<String, String> {
    if let Some(path) = value.strip_prefix("dir://") {
        return Ok(path.to_string());
    }
    if value.starts_with("tar://") || !value.contains("://") {
        return Ok(value.to_string());
    }
    let (scheme, rest) = value.split_once("://").unwrap_or((value, ""));
    // A URL may carry credentials (`https://user:token@host/…`): they are not repeated.
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let shown = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => value.to_string(),
    };
    Err(format!(
        "--context {shown}: {scheme}:// contexts are not supported; fetch the context in an earlier step and pass its directory (or a tar archive as tar://PATH)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> (Vec<String>, Vec<String>) {
        let (out, notes) = normalize(args.iter().map(OsString::from).collect()).expect("normalize");
        (out.into_iter().map(|a| a.into_string().expect("utf-8")).collect(), notes)
    }

    #[test]
    fn strata_command_lines_are_left_alone() {
        let args = ["strata", "build", "--cache", "--context", "dir://x"];
        assert_eq!(norm(&args).0, args);
        assert_eq!(norm(&["strata", "--help"]).0, ["strata", "--help"]);
        assert_eq!(norm(&["/kaniko/executor", "--version"]).0, ["/kaniko/executor", "--version"]);
        assert_eq!(norm(&["strata"]).0, ["strata"]);
    }

    #[test]
    fn kaniko_command_lines_become_strata_build() {
        let (out, notes) = norm(&[
            "/kaniko/executor",
            "--context=dir:///workspace",
            "--dockerfile",
            "Dockerfile",
            "--destination=r/app:1",
            "--cache=true",
            "--no-push=false",
            "--cache-copy-layers",
            "--cache-run-layers=true",
            "--image-download-retry",
            "3",
            "--kaniko-dir=/kaniko",
            "--ignore-var-run=false",
            "--snapshot-mode=redo",
            "-v",
            "debug",
        ]);
        assert_eq!(
            out,
            [
                "/kaniko/executor",
                "build",
                "--context",
                "/workspace",
                "--dockerfile",
                "Dockerfile",
                "--destination=r/app:1",
                "--cache",
                "--snapshot-mode=redo",
                "-v",
                "debug"
            ]
        );
        assert_eq!(notes.len(), 4, "{notes:?}");
        assert!(notes[0].contains("--cache-copy-layers") && notes[0].contains("always cached"), "{notes:?}");
        // Called as strata, a leading flag means the same.
        assert_eq!(norm(&["strata", "--context", "dir://ctx", "--ignore-var-run"]).0, ["strata", "build", "--context", "ctx", "--ignore-path", "/var/run"]);
    }

    #[test]
    fn kaniko_pull_only_tls_flags_are_kept() {
        let (out, notes) = norm(&["/kaniko/executor", "--insecure-pull=true", "--skip-tls-verify-pull", "--insecure=false", "--destination=r/app:1"]);
        assert_eq!(out, ["/kaniko/executor", "build", "--insecure-pull", "--skip-tls-verify-pull", "--destination=r/app:1"]);
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn kaniko_cache_dir_is_not_the_run_cache() {
        let (out, notes) = norm(&["/kaniko/executor", "--context=dir:///w", "--cache-dir=/cache", "--destination=r/app:1"]);
        assert!(!out.iter().any(|a| a.contains("cache-dir") || a == "/cache"), "{out:?}");
        assert!(notes.iter().any(|n| n.contains("--cache-dir") && n.contains("base-image cache")), "{notes:?}");
        let (out, _) = norm(&["/kaniko/executor", "--context=dir:///w", "--cache-dir", "/cache", "--destination=r/app:1"]);
        assert!(!out.iter().any(|a| a == "/cache"), "the value goes too: {out:?}");
    }

    #[test]
    fn bad_values_and_remote_contexts_are_refused() {
        let err = |args: &[&str]| normalize(args.iter().map(OsString::from).collect()).expect_err("refused");
        assert!(err(&["executor", "--cache=maybe"]).contains("--cache=maybe: expected true or false"));
        assert!(err(&["executor", "--context", "s3://bucket/ctx.tar.gz"]).contains("s3:// contexts are not supported"));
        assert!(err(&["executor", "--git", "branch=main"]).contains("git contexts are not supported"));
        let secret = err(&["executor", "--context=https://ci:s3cr3t@example.com/ctx.tar.gz"]);
        assert!(secret.contains("--context https://***@example.com/ctx.tar.gz: https:// contexts") && !secret.contains("s3cr3t"), "{secret}");
        assert_eq!(norm(&["executor", "--context=tar://ctx.tar"]).0, ["executor", "build", "--context", "tar://ctx.tar"]);
        assert_eq!(norm(&["executor", "-c", "dir://ctx"]).0, ["executor", "build", "--context", "ctx"]);
    }
}

//! The oracle corpus: every case under tests/oracle/<case>/ (a Dockerfile and its context,
//! optional `args` with one KEY=VALUE per line, optional `target`, optional `expect` with
//! `PATH<TAB>CONTENT` lines checked in strata's image, optional `modes` with `PATH<TAB>OCTAL`
//! lines set on a copy of the case before building (git keeps no directory modes), optional
//! `notes`) is built by strata and
//! by both oracles: `buildah bud --isolation chroot` (vfs) and BuildKit (dockerd 20.10 with
//! `DOCKER_BUILDKIT=1`, started by scripts/dockerd-up.sh). File listings (path, type, mode,
//! uid:gid, size, link target, content hash) and config fields must equal each oracle's.
//!
//! Where the oracles disagree strata follows BuildKit, and the case's `notes` says so with
//! `skip-buildah: why`, `buildah-ignore-config: FIELD why` or `buildah-ignore-path: PATH why`
//! (and the `buildkit` forms where dockerd 20.10's BuildKit is older than the behaviour strata
//! follows, or its built-in front end lacks a newer Dockerfile feature). Without a dockerd the
//! BuildKit half says SKIPPED (a failure under strict mode).

use std::path::Path;
use strata_tests::*;

fn case_args(dir: &Path, base: &str) -> Vec<String> {
    let mut args = vec![format!("BASE={base}")];
    if let Ok(text) = std::fs::read_to_string(dir.join("args")) {
        args.extend(text.lines().filter(|l| !l.trim().is_empty()).map(String::from));
    }
    args
}

/// The case's directory, or (with a `modes` file) a copy of it with those modes set.
fn case_context(dir: &Path, work: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let Ok(text) = std::fs::read_to_string(dir.join("modes")) else { return dir.to_path_buf() };
    let ctx = work.join("ctx");
    must(std::process::Command::new("cp").arg("-a").arg(dir).arg(&ctx));
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (path, mode) = line.split_once('\t').unwrap_or_else(|| panic!("{}: modes line {line:?} is not PATH<TAB>OCTAL", dir.display()));
        let mode = u32::from_str_radix(mode.trim(), 8).unwrap_or_else(|e| panic!("{}: modes line {line:?}: {e}", dir.display()));
        std::fs::set_permissions(ctx.join(path), std::fs::Permissions::from_mode(mode)).unwrap_or_else(|e| panic!("chmod {path}: {e}"));
    }
    ctx
}

fn build_case(env: &TestEnv, buildkit: Option<&str>, case: &Path, work: &Path) -> Result<Vec<String>, String> {
    let dir = &case_context(case, work);
    let args = case_args(dir, &env.base_busybox);
    let target = std::fs::read_to_string(dir.join("target")).ok().map(|t| t.trim().to_string());
    let layout = work.join("layout");
    let mut cmd: Vec<String> = vec![
        "build".into(),
        "--context".into(),
        dir.display().to_string(),
        "--no-push".into(),
        "--oci-layout-path".into(),
        layout.display().to_string(),
        "--insecure-registry".into(),
        env.registry_http.clone(),
        "--work-dir".into(),
        work.join("strata").display().to_string(),
    ];
    for a in &args {
        cmd.push("--build-arg".into());
        cmd.push(a.clone());
    }
    if let Some(t) = &target {
        cmd.push("--target".into());
        cmd.push(t.clone());
    }
    let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let run = strata(&refs, &[]);
    if !run.ok {
        return Err(format!("strata failed:\n{}", run.stderr));
    }
    let ours = unpack_layout(&layout, "latest");
    let mut diffs = Vec::new();
    // `expect`: lines `PATH<TAB>CONTENT` (with \n escapes) that strata's image must hold.
    if let Ok(text) = std::fs::read_to_string(dir.join("expect")) {
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (path, want) = line.split_once('\t').unwrap_or((line, ""));
            let want = want.replace("\\n", "\n");
            let got = std::fs::read_to_string(ours.rootfs.join(path.trim_start_matches('/'))).unwrap_or_else(|e| format!("<{e}>"));
            if got != want {
                diffs.push(format!("expect {path}: want {want:?}, got {got:?}"));
            }
        }
    }
    let notes = std::fs::read_to_string(dir.join("notes")).unwrap_or_default();
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let dockerfile = dir.join("Dockerfile");
    let buildah = OracleNotes::parse(&notes, Oracle::Buildah);
    if !buildah.skip {
        let theirs = buildah_build_target(&dockerfile, dir, &arg_refs, target.as_deref());
        diffs.extend(buildah.filter(oracle_differences_with(&ours, &theirs, Oracle::Buildah)));
    }
    let bk = OracleNotes::parse(&notes, Oracle::BuildKit);
    if let (Some(host), false) = (buildkit, bk.skip) {
        let theirs = buildkit_build_target(host, &dockerfile, dir, &arg_refs, target.as_deref());
        diffs.extend(bk.filter(oracle_differences_with(&ours, &theirs, Oracle::BuildKit)));
    }
    Ok(diffs)
}

#[test]
fn oracle_corpus_matches_buildah_and_buildkit() {
    let Some(env) = test_env("oracle_corpus_matches_buildah_and_buildkit") else { return };
    let buildkit = buildkit_host("oracle_corpus_matches_buildah_and_buildkit");
    let root = repo_root().join("tests/oracle");
    let mut cases: Vec<_> = std::fs::read_dir(&root).expect("tests/oracle").flatten().map(|e| e.path()).filter(|p| p.join("Dockerfile").is_file()).collect();
    cases.sort();
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    // STRATA_ORACLE_CASE=a,b runs only the cases whose names contain one of the parts.
    let only = std::env::var("STRATA_ORACLE_CASE").ok();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if only.as_deref().is_some_and(|o| !o.split(',').any(|part| name.contains(part))) {
            continue;
        }
        let work = tempfile::tempdir().expect("tempdir");
        // buildah 1.28 (Debian 12) lacks BuildKit's ${V%p}/${V#p} forms; the front end's golden
        // cases cover those, so the corpus keeps to what both understand.
        let outcome = std::panic::catch_unwind(|| build_case(&env, buildkit.as_deref(), case, work.path()))
            .unwrap_or_else(|p| Err(p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()));
        match outcome {
            Ok(diffs) if diffs.is_empty() => eprintln!("oracle {name}: equal"),
            Ok(diffs) => failures.push(format!("{name}:\n  {}", diffs.join("\n  "))),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ from an oracle:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

//! The oracle corpus: every case under tests/oracle/<case>/ (a Dockerfile and its context,
//! optional `args` with one KEY=VALUE per line, optional `target`, optional `notes` saying where
//! BuildKit and buildah differ: `skip-oracle: why` compares nothing with buildah, `ignore-config:
//! FIELD why` leaves one config field out; optional `expect` with `PATH<TAB>CONTENT` lines checked
//! in strata's image) is built by strata and by
//! `buildah bud --isolation chroot` (vfs); file listings (path, type, mode, uid:gid, size, link
//! target, content hash) and config fields must be equal.

use std::path::Path;
use strata_tests::*;

fn case_args(dir: &Path, base: &str) -> Vec<String> {
    let mut args = vec![format!("BASE={base}")];
    if let Ok(text) = std::fs::read_to_string(dir.join("args")) {
        args.extend(text.lines().filter(|l| !l.trim().is_empty()).map(String::from));
    }
    args
}

fn build_case(env: &TestEnv, dir: &Path, work: &Path) -> Result<Vec<String>, String> {
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
    if notes.lines().any(|l| l.starts_with("skip-oracle:")) {
        return Ok(diffs);
    }
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let theirs = buildah_build_target(&dir.join("Dockerfile"), dir, &arg_refs, target.as_deref());
    // `ignore-config: FIELD why`: a field where BuildKit and buildah differ and strata follows BuildKit.
    let ignored: Vec<String> = notes.lines().filter_map(|l| l.strip_prefix("ignore-config: ")).filter_map(|l| l.split_whitespace().next()).map(|f| format!("config {f}:")).collect();
    diffs.extend(oracle_differences(&ours, &theirs).into_iter().filter(|d| !ignored.iter().any(|i| d.starts_with(i.as_str()))));
    Ok(diffs)
}

#[test]
fn oracle_corpus_matches_buildah() {
    let Some(env) = test_env("oracle_corpus_matches_buildah") else { return };
    let root = repo_root().join("tests/oracle");
    let mut cases: Vec<_> = std::fs::read_dir(&root).expect("tests/oracle").flatten().map(|e| e.path()).filter(|p| p.join("Dockerfile").is_file()).collect();
    cases.sort();
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    let only = std::env::var("STRATA_ORACLE_CASE").ok();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let work = tempfile::tempdir().expect("tempdir");
        // buildah 1.28 (Debian 12) lacks BuildKit's ${V%p}/${V#p} forms; the front end's golden
        // cases cover those, so the corpus keeps to what both understand.
        let outcome = std::panic::catch_unwind(|| build_case(&env, case, work.path())).unwrap_or_else(|p| {
            Err(p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default())
        });
        match outcome {
            Ok(diffs) if diffs.is_empty() => eprintln!("oracle {name}: equal"),
            Ok(diffs) => failures.push(format!("{name}:\n  {}", diffs.join("\n  "))),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ from buildah:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

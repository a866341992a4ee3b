//! Hostile Dockerfiles end in a clear error or a correct plan, with bounded memory: an
//! oversized file, expansions nested 10,000 deep, 10,000 stages, a Latin-1 file, and a
//! Dockerfile of a million tiny instructions' worth up to the size limit.

use std::path::Path;
use std::process::Command;
use strata_tests::*;

/// Runs `strata plan -f FILE` under `/usr/bin/time`; returns (success, stderr, peak RSS KiB).
fn plan(dir: &Path, file: &str) -> (bool, String, u64) {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "peak-rss-kib=%M"])
        .arg(strata_bin())
        .args(["plan", "-f"])
        .arg(dir.join(file))
        .arg("-c")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .output()
        .expect("run /usr/bin/time strata plan (apt-get install time)");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let rss = peak_rss_kib(&stderr);
    (out.status.success(), stderr, rss)
}

#[test]
fn hostile_dockerfiles_fail_clearly_or_plan_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("huge"), format!("FROM scratch\n{}", "ENV A=b\n".repeat(300_000))).expect("write");
    std::fs::write(d.join("dense"), format!("FROM scratch\n{}", "ENV A=b\n".repeat(250_000))).expect("write");
    std::fs::write(d.join("nested"), format!("FROM scratch\nARG X={}x{}\nRUN echo $X\n", "${U:-".repeat(10_000), "}".repeat(10_000))).expect("write");
    let stages: String = (0..10_000).map(|i| if i == 0 { "FROM scratch AS s0\n".to_string() } else { format!("FROM s{} AS s{i}\n", i - 1) }).collect();
    std::fs::write(d.join("stages"), stages).expect("write");
    std::fs::write(d.join("latin1"), b"FROM scratch\nLABEL a=caf\xe9\n").expect("write");

    let (ok, err, _) = plan(d, "huge");
    assert!(!ok && err.contains("limit of 2 MiB"), "an oversized Dockerfile is refused, naming the limit:\n{err}");
    let (ok, err, rss) = plan(d, "dense");
    assert!(ok, "a 2 MB Dockerfile plans:\n{err}");
    assert!(rss < 400 * 1024, "peak RSS {rss} KiB for a 2 MB Dockerfile");
    let (ok, err, rss) = plan(d, "nested");
    assert!(!ok && err.contains("nested:2") && err.contains("nest more than 64"), "a clear error naming the line:\n{err}");
    assert!(err.len() < 2_000, "the error quotes the word shortened, not 60 KB of it ({} bytes)", err.len());
    assert!(rss < 100 * 1024, "peak RSS {rss} KiB");
    let (ok, err, rss) = plan(d, "stages");
    assert!(ok, "10,000 stages plan:\n{err}");
    assert!(rss < 200 * 1024, "peak RSS {rss} KiB");
    let (ok, err, _) = plan(d, "latin1");
    assert!(ok && err.contains("not UTF-8"), "a Latin-1 Dockerfile plans, with a warning:\n{err}");
}

//! End to end: a signal to strata stops its build cleanly. SIGTERM and SIGINT kill the running
//! RUN's whole process tree, remove the build's scratch directory and exit 143 / 130; SIGKILL
//! (or the OOM killer) still takes the RUN's processes with it (PR_SET_PDEATHSIG and the RUN's
//! own PID namespace), and the next build collects the directory left behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use strata_tests::*;

/// Waits up to `limit` for `cond`.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// Waits for `child` to exit, up to `limit`; kills it and fails otherwise.
fn exit_code(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("strata did not exit within {limit:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Build directories under `work/builds`.
fn build_dirs(work: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(work.join("builds")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

/// A build whose RUN starts a background sleeper and then sleeps itself, both named by a
/// number unique to the test; strata is started but not waited for.
struct Sleeping {
    dir: tempfile::TempDir,
    marker: String,
    child: Child,
}

impl Sleeping {
    fn start(env: &TestEnv, seed: u32) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = dir.path().join("ctx");
        std::fs::create_dir_all(&ctx).expect("mkdir");
        let n = 600_000 + seed * 1000 + std::process::id() % 1000;
        let marker = format!("sleep {n}");
        std::fs::write(ctx.join("Dockerfile"), format!("ARG BASE\nFROM $BASE\nRUN ( {marker} & ) ; {marker}\n")).expect("Dockerfile");
        let base = format!("BASE={}", env.base_busybox);
        let work = dir.path().join("work");
        let child = Command::new(strata_bin())
            .args(["build", "--no-push", "--insecure-registry", &env.registry_http, "--build-arg", &base, "--context"])
            .arg(&ctx)
            .arg("--work-dir")
            .arg(&work)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start strata");
        let s = Self { dir, marker, child };
        assert!(wait_for(Duration::from_secs(60), || processes_with(&s.marker).len() >= 2), "the RUN's two sleepers never started");
        s
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0, "kill");
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    }
}

fn root_env(test: &str) -> Option<TestEnv> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        strata_test_support::skip(test, "needs root (chroot isolation)");
        return None;
    }
    test_env(test)
}

fn stops_cleanly(test: &str, sig: i32, expected: i32, seed: u32) {
    let Some(env) = root_env(test) else { return };
    let mut b = Sleeping::start(&env, seed);
    b.signal(sig);
    let code = exit_code(&mut b.child, Duration::from_secs(30));
    let stderr = b.stderr();
    assert_eq!(code, Some(expected), "exit status; stderr:\n{stderr}");
    assert!(stderr.contains("stopping the build"), "strata says what it does: {stderr}");
    assert!(stderr.contains("stopped before it finished"), "and ends with one error line: {stderr}");
    assert!(wait_for(Duration::from_secs(5), || processes_with(&b.marker).is_empty()), "the RUN's processes are gone: {:?}", processes_with(&b.marker));
    assert_eq!(build_dirs(&b.work()), Vec::<PathBuf>::new(), "the build's scratch directory is removed");
}

#[test]
fn sigterm_kills_the_run_removes_scratch_and_exits_143() {
    stops_cleanly("sigterm_kills_the_run_removes_scratch_and_exits_143", libc::SIGTERM, 143, 1);
}

#[test]
fn sigint_exits_130_the_same_way() {
    stops_cleanly("sigint_exits_130_the_same_way", libc::SIGINT, 130, 2);
}

#[test]
fn sigkill_takes_the_run_along_and_the_next_build_collects_its_directory() {
    let Some(env) = root_env("sigkill_takes_the_run_along_and_the_next_build_collects_its_directory") else { return };
    let mut b = Sleeping::start(&env, 3);
    b.signal(libc::SIGKILL);
    let _ = b.child.wait();
    assert!(wait_for(Duration::from_secs(5), || processes_with(&b.marker).is_empty()), "the RUN's processes died with strata: {:?}", processes_with(&b.marker));
    let left = build_dirs(&b.work());
    assert_eq!(left.len(), 1, "a killed build leaves its directory: {left:?}");
    // The next build in the same work dir removes it.
    let ctx = b.dir.path().join("ctx2");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::fs::write(ctx.join("Dockerfile"), "ARG BASE\nFROM $BASE\nRUN true\n").expect("Dockerfile");
    let base = format!("BASE={}", env.base_busybox);
    let work = b.work();
    let run = strata(
        &[
            "build",
            "--no-push",
            "--insecure-registry",
            &env.registry_http,
            "--build-arg",
            &base,
            "--context",
            ctx.to_str().expect("utf8"),
            "--work-dir",
            work.to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(run.ok, "{}", run.stderr);
    assert!(!left[0].exists(), "the dead build's directory is collected");
}

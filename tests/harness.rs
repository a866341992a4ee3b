//! Shared pieces of strata's end-to-end tests: the environment `scripts/test.sh` starts,
//! running the `strata` binary, pulling/unpacking images with skopeo and umoci, and the two
//! oracles: `buildah bud` and BuildKit (the private dockerd of `scripts/dockerd-up.sh`).

pub mod plugin_step;

use serde_json::Value;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The running test environment (exported by `scripts/env.sh`).
#[derive(Debug, Clone)]
pub struct TestEnv {
    pub state: PathBuf,
    pub registry_http: String,
    pub registry_tls: String,
    pub registry_ca: PathBuf,
    pub user: String,
    pub pass: String,
    pub moto: String,
    pub base_busybox: String,
}

/// The environment, or None (after a loud message) when the tests run outside `scripts/test.sh`.
pub fn test_env(test: &str) -> Option<TestEnv> {
    let var = |k: &str| std::env::var(k).ok();
    match (var("STRATA_TEST_STATE"), var("STRATA_TEST_REGISTRY_HTTP"), var("STRATA_TEST_REGISTRY_TLS")) {
        (Some(state), Some(http), Some(tls)) => Some(TestEnv {
            state: PathBuf::from(state),
            registry_http: http,
            registry_tls: tls,
            registry_ca: PathBuf::from(var("STRATA_TEST_REGISTRY_CA").unwrap_or_default()),
            user: var("STRATA_TEST_REGISTRY_USER").unwrap_or_default(),
            pass: var("STRATA_TEST_REGISTRY_PASS").unwrap_or_default(),
            moto: var("STRATA_TEST_MOTO").unwrap_or_default(),
            base_busybox: var("STRATA_TEST_BASE_BUSYBOX").unwrap_or_default(),
        }),
        _ => {
            strata_test_support::skip(test, "no test environment (run scripts/test.sh, which starts the registries)");
            None
        }
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The `strata` binary under test (`$STRATA`, else target/debug/strata).
pub fn strata_bin() -> PathBuf {
    std::env::var_os("STRATA").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target/debug/strata"))
}

/// The result of one strata run.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `strata` with `args` and extra environment.
pub fn strata(args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(strata_bin());
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", strata_bin().display()));
    to_run(out)
}

/// The [`Run`] of a finished process.
pub fn to_run(out: Output) -> Run {
    Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a command and panics with its output when it fails.
pub fn must(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Errors of the oracle's own runtime that say nothing about the build: the kernel may refuse
/// to seal buildah's re-exec memfd with EBUSY while its pages are briefly pinned under load.
const ORACLE_FLAKES: &[&str] = &["sealing memfd copy"];

/// `must` for an oracle command, run again (up to three times in all) when it fails with one
/// of [`ORACLE_FLAKES`].
pub fn must_despite_oracle_flakes(cmd: &mut Command) -> String {
    for attempt in 1.. {
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        if attempt < 3 && ORACLE_FLAKES.iter().any(|f| stderr.contains(f)) {
            eprintln!("oracle flake (attempt {attempt}), running again: {}", stderr.trim());
            std::thread::sleep(std::time::Duration::from_secs(1));
            continue;
        }
        panic!("{cmd:?} failed:\n{}\n{stderr}", String::from_utf8_lossy(&out.stdout));
    }
    unreachable!("the loop returns or panics")
}

/// A docker config dir holding credentials for `registry`.
pub fn docker_config(dir: &Path, registry: &str, user: &str, pass: &str) -> PathBuf {
    use base64_engine::encode;
    let cfg = dir.join("docker-config");
    std::fs::create_dir_all(&cfg).expect("mkdir docker config");
    let auth = encode(format!("{user}:{pass}").as_bytes());
    std::fs::write(cfg.join("config.json"), format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#)).expect("write config.json");
    cfg
}

mod base64_engine {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    /// Standard base64 with padding.
    pub fn encode(input: &[u8]) -> String {
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// An image pulled into an OCI layout and unpacked with umoci.
#[derive(Debug)]
pub struct Unpacked {
    pub dir: tempfile::TempDir,
    pub rootfs: PathBuf,
    pub manifest: Value,
    pub config: Value,
}

/// Reads manifest and config of tag `tag` from the OCI layout `layout`, and unpacks it.
pub fn unpack_layout(layout: &Path, tag: &str) -> Unpacked {
    let dir = tempfile::tempdir().expect("tempdir");
    let index: Value = read_json(&layout.join("index.json"));
    let desc = index["manifests"]
        .as_array()
        .and_then(|m| m.iter().find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag).or(m.first()))
        .cloned()
        .expect("index has a manifest");
    let manifest = read_json(&blob(layout, desc["digest"].as_str().expect("digest")));
    let config = read_json(&blob(layout, manifest["config"]["digest"].as_str().expect("config digest")));
    let bundle = dir.path().join("bundle");
    must(Command::new("umoci").args(["unpack", "--image"]).arg(format!("{}:{tag}", layout.display())).arg(&bundle));
    Unpacked { rootfs: bundle.join("rootfs"), manifest, config, dir }
}

/// Pulls `reference` with skopeo into an OCI layout and unpacks it.
pub fn pull_and_unpack(reference: &str, skopeo_args: &[&str]) -> Unpacked {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = tmp.path().join("layout");
    must(Command::new("skopeo").args(["copy", "-q"]).args(skopeo_args).arg(format!("docker://{reference}")).arg(format!("oci:{}:img", layout.display())));
    let mut u = unpack_layout(&layout, "img");
    // Keep the layout alive with the unpacked tree.
    let keep = u.dir.path().join("layout");
    must(Command::new("cp").arg("-a").arg(&layout).arg(&keep));
    u.manifest["_layout"] = Value::String(keep.display().to_string());
    u
}

/// Path of a blob in an OCI layout.
pub fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

/// Parses a JSON file.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One line per entry below `root`: path, type, mode, uid:gid, size (files), link target,
/// content hash (files); no timestamps. Sorted.
pub fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
            let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
            let ft = m.file_type();
            let (kind, size, link, hash) = if ft.is_dir() {
                stack.push(p.clone());
                ("dir", 0, String::new(), String::new())
            } else if ft.is_symlink() {
                ("symlink", 0, std::fs::read_link(&p).map(|l| l.display().to_string()).unwrap_or_default(), String::new())
            } else if ft.is_file() {
                ("file", m.len(), String::new(), content_hash(&p))
            } else {
                ("special", 0, String::new(), String::new())
            };
            out.push(format!("{rel}\t{kind}\t{:o}\t{}:{}\t{size}\t{link}\t{hash}", m.mode() & 0o7777, m.uid(), m.gid()));
        }
    }
    out.sort();
    out
}

fn content_hash(path: &Path) -> String {
    // FNV-1a over the bytes: enough to tell contents apart in a listing.
    let bytes = std::fs::read(path).unwrap_or_default();
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// Builds `dockerfile` in `context` with `buildah bud --isolation chroot` (vfs storage in a
/// private directory) and returns the result unpacked.
pub fn buildah_build(dockerfile: &Path, context: &Path, build_args: &[&str]) -> Unpacked {
    buildah_build_target(dockerfile, context, build_args, None)
}

/// `buildah_build` with a `--target` stage.
pub fn buildah_build_target(dockerfile: &Path, context: &Path, build_args: &[&str], target: Option<&str>) -> Unpacked {
    let store = tempfile::tempdir().expect("tempdir");
    let root = store.path().join("root");
    let runroot = store.path().join("run");
    let base = |cmd: &mut Command| {
        cmd.args(["--storage-driver", "vfs", "--root"]).arg(&root).arg("--runroot").arg(&runroot);
    };
    let mut bud = Command::new("buildah");
    base(&mut bud);
    // Docker format: the OCI format drops SHELL, HEALTHCHECK and ONBUILD from the config.
    bud.args(["bud", "--isolation", "chroot", "-q", "--layers=false", "--tls-verify=false", "--format", "docker", "-t", "oracle:latest", "-f"]).arg(dockerfile);
    for a in build_args {
        bud.args(["--build-arg", a]);
    }
    if let Some(t) = target {
        bud.args(["--target", t]);
    }
    bud.arg(context);
    must_despite_oracle_flakes(&mut bud);
    let layout = store.path().join("layout");
    let mut push = Command::new("buildah");
    base(&mut push);
    push.args(["push", "-q", "oracle:latest"]).arg(format!("oci:{}:img", layout.display()));
    must(&mut push);
    let mut u = unpack_layout(&layout, "img");
    // The Docker-format config as buildah keeps it (the OCI copy lost the Docker-only fields).
    let mut inspect = Command::new("buildah");
    base(&mut inspect);
    inspect.args(["inspect", "--type", "image", "oracle:latest"]);
    let info: Value = serde_json::from_str(&must(&mut inspect)).expect("buildah inspect JSON");
    if info["Docker"]["config"].is_object() {
        u.config = info["Docker"].clone();
    }
    let mut rm = Command::new("buildah");
    base(&mut rm);
    let _ = rm.args(["rmi", "-a", "-f"]).output();
    u
}

/// Config fields compared between strata and an oracle (the image config's `config` object).
pub const COMPARED_CONFIG_FIELDS: &[&str] =
    &["Env", "Cmd", "Entrypoint", "User", "WorkingDir", "Labels", "ExposedPorts", "Volumes", "StopSignal", "Healthcheck", "Shell", "OnBuild"];

/// Which oracle built an image: their artefacts differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oracle {
    /// `buildah bud --isolation chroot` (vfs).
    Buildah,
    /// BuildKit inside dockerd 20.10 (`DOCKER_BUILDKIT=1 docker build`).
    BuildKit,
}

impl Oracle {
    /// The name diffs use: `only buildah: ...`, `only buildkit: ...`.
    pub fn name(self) -> &'static str {
        match self {
            Oracle::Buildah => "buildah",
            Oracle::BuildKit => "buildkit",
        }
    }
}

/// Differences between strata's image and buildah's: see [`oracle_differences_with`].
pub fn oracle_differences(ours: &Unpacked, buildah: &Unpacked) -> Vec<String> {
    oracle_differences_with(ours, buildah, Oracle::Buildah)
}

/// Differences between two unpacked images: file listings and the compared config fields.
/// Known oracle artefacts are dropped first: the empty /dev, /proc and /sys mount points RUN
/// leaves where the base has none (buildah 1.28 and dockerd 20.10's BuildKit v0.8 leave them;
/// current BuildKit removes such stubs, executor/stubs.go, and so does strata; a /dev that
/// strata's image has too is still compared) and the `io.buildah.version` label.
pub fn oracle_differences_with(ours: &Unpacked, other: &Unpacked, oracle: Oracle) -> Vec<String> {
    let who = oracle.name();
    let a = listing(&ours.rootfs);
    let stubs = ["dev\tdir\t755\t0:0\t0\t\t", "proc\tdir\t755\t0:0\t0\t\t", "sys\tdir\t755\t0:0\t0\t\t"];
    let b: Vec<String> = listing(&other.rootfs).into_iter().filter(|l| !stubs.contains(&l.as_str()) || a.contains(l)).collect();
    let mut out = Vec::new();
    for l in a.iter().filter(|l| !b.contains(l)) {
        out.push(format!("only strata: {l}"));
    }
    for l in b.iter().filter(|l| !a.contains(l)) {
        out.push(format!("only {who}: {l}"));
    }
    let mut theirs = other.config["config"].clone();
    // BuildKit expands EXPOSE ranges into single ports (nat.ParsePortSpecs); buildah keeps them.
    if let Some(ports) = theirs["ExposedPorts"].as_object().cloned() {
        let mut expanded = serde_json::Map::new();
        for key in ports.keys() {
            let (range, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            match range.split_once('-').and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?))) {
                Some((a, b)) => (a..=b).for_each(|p| {
                    expanded.insert(format!("{p}/{proto}"), Value::Object(Default::default()));
                }),
                None => {
                    expanded.insert(key.clone(), Value::Object(Default::default()));
                }
            }
        }
        theirs["ExposedPorts"] = Value::Object(expanded);
    }
    if let Some(labels) = theirs["Labels"].as_object_mut() {
        labels.remove("io.buildah.version");
        if labels.is_empty() {
            theirs["Labels"] = Value::Null;
        }
    }
    for field in COMPARED_CONFIG_FIELDS {
        let mine = &ours.config["config"][field];
        let other = &theirs[field];
        let (mine, other) = (&sorted_json(mine), &sorted_json(other));
        let empty =
            |v: &Value| v.is_null() || v.as_str() == Some("") || v.as_object().is_some_and(|o| o.is_empty()) || v.as_array().is_some_and(|a| a.is_empty());
        if mine != other && !(empty(mine) && empty(other)) {
            out.push(format!("config {field}: strata {mine} {who} {other}"));
        }
    }
    let (mine, theirs) = (&ours.config["author"], &other.config["author"]);
    let blank = |v: &Value| v.is_null() || v.as_str() == Some("");
    if mine != theirs && !(blank(mine) && blank(theirs)) {
        out.push(format!("author: strata {mine} {who} {theirs}"));
    }
    out
}

/// The docker client of the BuildKit oracle: `$STRATA_TEST_DOCKER`, else docker.io's
/// /usr/bin/docker (a newer client elsewhere on PATH may need buildx, which dockerd 20.10 lacks).
pub fn docker_bin() -> PathBuf {
    match std::env::var_os("STRATA_TEST_DOCKER") {
        Some(p) => PathBuf::from(p),
        None if Path::new("/usr/bin/docker").is_file() => PathBuf::from("/usr/bin/docker"),
        None => PathBuf::from("docker"),
    }
}

/// The BuildKit oracle's daemon (`$STRATA_TEST_DOCKER_HOST`, set by scripts/env.sh), when it
/// answers `docker version`; None (after a loud SKIPPED line naming `test`, a failure under
/// strict mode) when it does not.
pub fn buildkit_host(test: &str) -> Option<String> {
    static ANSWERS: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    let found = ANSWERS.get_or_init(|| {
        let host = std::env::var("STRATA_TEST_DOCKER_HOST").map_err(|_| "STRATA_TEST_DOCKER_HOST is not set (run scripts/test.sh)".to_string())?;
        let out = Command::new(docker_bin()).args(["-H", &host, "version"]).output().map_err(|e| format!("cannot run {}: {e}", docker_bin().display()))?;
        match out.status.success() {
            true => Ok(host),
            false => Err(format!("no dockerd answers at {host} (scripts/dockerd-up.sh starts one): {}", String::from_utf8_lossy(&out.stderr).trim())),
        }
    });
    match found {
        Ok(host) => Some(host.clone()),
        Err(why) => {
            strata_test_support::skip(&format!("{test} (BuildKit oracle)"), why);
            None
        }
    }
}

/// Builds `dockerfile` in `context` with BuildKit (`DOCKER_BUILDKIT=1 docker build --network
/// host` against `host`) and returns the image unpacked: its files from `docker save` through
/// skopeo and umoci, its config (the Docker-format `Config` and `Author`) from `docker image
/// inspect`. The image is removed again; BuildKit's build cache stays.
pub fn buildkit_build_target(host: &str, dockerfile: &Path, context: &Path, build_args: &[&str], target: Option<&str>) -> Unpacked {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tag = format!("strata-oracle-{}-{n}:latest", std::process::id());
    let tmp = tempfile::tempdir().expect("tempdir");
    // An empty client config: no credential helper of the machine is consulted.
    let docker = |args: &[&str]| {
        let mut c = Command::new(docker_bin());
        c.env("DOCKER_BUILDKIT", "1").env("DOCKER_CONFIG", tmp.path()).args(["-H", host]).args(args);
        c
    };
    let mut build = docker(&["build", "--network", "host", "-q", "-t", &tag, "-f"]);
    build.arg(dockerfile);
    for a in build_args {
        build.args(["--build-arg", a]);
    }
    if let Some(t) = target {
        build.args(["--target", t]);
    }
    build.arg(context);
    must(&mut build);
    let archive = tmp.path().join("image.tar");
    let saved = docker(&["save", "-o"]).arg(&archive).arg(&tag).output();
    let info = docker(&["image", "inspect", &tag]).output();
    let _ = docker(&["rmi", "-f", &tag]).output();
    let saved = saved.expect("docker save");
    assert!(saved.status.success(), "docker save {tag}: {}", String::from_utf8_lossy(&saved.stderr));
    let layout = tmp.path().join("layout");
    must(Command::new("skopeo").args(["copy", "-q"]).arg(format!("docker-archive:{}", archive.display())).arg(format!("oci:{}:img", layout.display())));
    let mut u = unpack_layout(&layout, "img");
    let info = info.expect("docker image inspect");
    let info: Value =
        serde_json::from_slice(&info.stdout).unwrap_or_else(|e| panic!("docker image inspect {tag}: {e}: {}", String::from_utf8_lossy(&info.stderr)));
    u.config = serde_json::json!({ "config": info[0]["Config"], "author": info[0]["Author"] });
    u
}

/// What an oracle case's `notes` file says about one oracle: lines `skip-<oracle>: why`,
/// `<oracle>-ignore-config: FIELD why` and `<oracle>-ignore-path: PATH why` (`<oracle>` is
/// `buildah` or `buildkit`). Every such line names why the two oracles (or dockerd 20.10's
/// older BuildKit and the current one) differ; strata follows current BuildKit.
#[derive(Debug, Default)]
pub struct OracleNotes {
    /// Not compared with this oracle at all.
    pub skip: bool,
    /// Config fields left out.
    pub ignore_config: Vec<String>,
    /// Paths (and everything below them) left out of the listings.
    pub ignore_paths: Vec<String>,
}

impl OracleNotes {
    /// The lines of `notes` (a notes file's text) about `oracle`.
    pub fn parse(notes: &str, oracle: Oracle) -> Self {
        let who = oracle.name();
        let first_word = |rest: &str| rest.split_whitespace().next().unwrap_or("").trim_start_matches('/').to_string();
        let mut n = OracleNotes::default();
        for line in notes.lines() {
            if line.starts_with(&format!("skip-{who}:")) {
                n.skip = true;
            } else if let Some(rest) = line.strip_prefix(&format!("{who}-ignore-config:")) {
                n.ignore_config.push(first_word(rest));
            } else if let Some(rest) = line.strip_prefix(&format!("{who}-ignore-path:")) {
                n.ignore_paths.push(first_word(rest));
            }
        }
        n
    }

    /// `diffs` without those these notes leave out.
    pub fn filter(&self, diffs: Vec<String>) -> Vec<String> {
        diffs
            .into_iter()
            .filter(|d| !self.ignore_config.iter().any(|f| d.starts_with(&format!("config {f}:"))))
            .filter(|d| {
                let path = d.strip_prefix("only ").and_then(|r| r.split_once(": ")).map_or("", |(_, l)| l.split('\t').next().unwrap_or(""));
                !d.starts_with("only ") || !self.ignore_paths.iter().any(|p| path == p || path.starts_with(&format!("{p}/")))
            })
            .collect()
    }
}

/// `v` with object keys sorted at every level, for order-insensitive comparison.
pub fn sorted_json(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted_json(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted_json).collect()),
        other => other.clone(),
    }
}

/// examples/hello, the project's example.
pub fn hello_dir() -> PathBuf {
    repo_root().join("examples/hello")
}

/// `strata build` of examples/hello on the busybox base, pushed to `destination` (plain registry),
/// with `extra` flags and `envs`.
pub fn build_hello(env: &TestEnv, work: &Path, destination: &str, extra: &[&str], envs: &[(&str, &str)]) -> Run {
    let ctx = hello_dir();
    let df = ctx.join("Dockerfile");
    let base = format!("BASE={}", env.base_busybox);
    let (ctx, df, work) = (ctx.display().to_string(), df.display().to_string(), work.display().to_string());
    let mut args = vec![
        "build",
        "--build-arg",
        base.as_str(),
        "--context",
        &ctx,
        "--dockerfile",
        &df,
        "--destination",
        destination,
        "--insecure-registry",
        env.registry_http.as_str(),
        "--work-dir",
        &work,
    ];
    args.extend_from_slice(extra);
    strata(&args, envs)
}

/// Pids of processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(marker)))
        .collect()
}

/// A build directory for one test: a context with its Dockerfile, a work dir and an OCI layout.
pub struct LayoutCase {
    dir: tempfile::TempDir,
}

impl LayoutCase {
    /// A fresh directory whose `ctx/Dockerfile` is `dockerfile`.
    pub fn new(dockerfile: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("ctx")).expect("mkdir ctx");
        std::fs::write(dir.path().join("ctx/Dockerfile"), dockerfile).expect("write Dockerfile");
        Self { dir }
    }

    /// The case's directory (context, work dir and layout are inside).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The build context.
    pub fn ctx(&self) -> PathBuf {
        self.dir.path().join("ctx")
    }

    /// The OCI layout the build writes.
    pub fn layout(&self) -> PathBuf {
        self.dir.path().join("layout")
    }

    /// Runs `strata build` with `--build-arg BASE=<busybox>` into the OCI layout (replaced), no push.
    pub fn build(&self, env: &TestEnv, extra: &[&str], envs: &[(&str, &str)]) -> Run {
        let _ = std::fs::remove_dir_all(self.layout());
        let (ctx, layout, work) = (self.ctx(), self.layout(), self.dir.path().join("work"));
        let base = format!("BASE={}", env.base_busybox);
        let mut args = vec![
            "build",
            "--context",
            ctx.to_str().expect("utf8"),
            "--destination",
            "127.0.0.1:5000/e2e/case:latest",
            "--no-push",
            "--oci-layout-path",
            layout.to_str().expect("utf8"),
            "--insecure-registry",
            env.registry_http.as_str(),
            "--work-dir",
            work.to_str().expect("utf8"),
            "--build-arg",
            base.as_str(),
        ];
        args.extend_from_slice(extra);
        strata(&args, envs)
    }

    /// The built image, unpacked from the layout.
    pub fn unpack(&self) -> Unpacked {
        unpack_layout(&self.layout(), "latest")
    }

    /// Every layer blob of `image`, decompressed.
    pub fn layer_tars(&self, image: &Unpacked) -> Vec<Vec<u8>> {
        image.manifest["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| {
                let path = blob(&self.layout(), l["digest"].as_str().expect("digest"));
                let out = Command::new("gzip").arg("-dc").arg(&path).output().expect("gzip");
                assert!(out.status.success(), "gzip -dc {}", path.display());
                out.stdout
            })
            .collect()
    }
}

/// The peak RSS in KiB that `/usr/bin/time -f peak-rss-kib=%M` printed into `stderr` (0 if absent).
pub fn peak_rss_kib(stderr: &str) -> u64 {
    stderr.lines().find_map(|l| l.strip_prefix("peak-rss-kib=")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// A context in `root/ctx` holding `amd64.txt` and `arm64.txt` ("built for ARCH") and
/// `dockerfile`: a multi-platform build's per-architecture files. Returns the context's path.
pub fn arch_files_context(root: &Path, dockerfile: &str) -> PathBuf {
    let ctx = root.join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    for arch in ["amd64", "arm64"] {
        std::fs::write(ctx.join(format!("{arch}.txt")), format!("built for {arch}\n")).expect("write");
    }
    std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("write Dockerfile");
    ctx
}

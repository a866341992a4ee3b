//! A [`StepContext`] over temporary directories, and unit tests of RUN, COPY and WORKDIR
//! against it: no root, no registry, no kernel isolation (RUN's runner records its spec).

use crate::base::PulledBase;
use crate::cache::{CacheKey, Hit};
use crate::context::BuildContext;
use crate::error::BuildError;
use crate::exec::runner::{CommandRunner, RecordingRunner};
use crate::exec::{RunMountSource, RunStatus};
use crate::image::ImageConfig;
use crate::image::manifest::ImageLayer;
use crate::options::BuildOptions;
use crate::progress::BuildEvent;
use crate::stage::{BuiltStage, StageRun};
use crate::step_context::StepContext;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use strata_dockerfile::{Instruction, PlanOptions, StageScope};
use strata_registry::Platform;
use strata_snapshot::{BlobStore, KeepPaths, LayerOptions, SnapshotMode, Snapshotter};

/// A build of one stage in a temporary directory: `ctx/` is the context, `rootfs/` the stage.
pub(crate) struct FakeSteps {
    pub dir: tempfile::TempDir,
    pub opts: BuildOptions,
    pub layer_opts: LayerOptions,
    pub store: BlobStore,
    pub context: BuildContext,
    pub runtime: tokio::runtime::Runtime,
    pub runner: RecordingRunner,
    pub events: Mutex<Vec<BuildEvent>>,
    /// What steps stored in the (pretend) cache: key, layer digest, history.
    pub stored: Vec<(CacheKey, Option<String>, String)>,
}

impl FakeSteps {
    /// A context holding `files` (path, content) and an empty stage root.
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = dir.path().join("ctx");
        for (path, content) in files {
            let p = ctx.join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, content).expect("write");
        }
        std::fs::create_dir_all(&ctx).expect("ctx");
        std::fs::create_dir_all(dir.path().join("rootfs")).expect("rootfs");
        std::fs::create_dir_all(dir.path().join("scratch")).expect("scratch");
        let mut opts = BuildOptions::new(ctx.join("Dockerfile"), ctx.clone());
        opts.work_dir = dir.path().join("work");
        let context = BuildContext::open_in(&ctx, &opts.dockerfile, &opts.work_dir).expect("context");
        let store = BlobStore::open(&dir.path().join("blobs")).expect("store");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let runner = RecordingRunner { specs: Mutex::new(Vec::new()), status: RunStatus::Exited(0), isolation: crate::Isolation::Chroot };
        let layer_opts = LayerOptions { content_hashes: true, ..LayerOptions::default() };
        Self { dir, opts, layer_opts, store, context, runtime, runner, events: Mutex::new(Vec::new()), stored: Vec::new() }
    }

    /// The stage root.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Parses `dockerfile` (its first stage, FROM scratch) and returns the stage, indexed, and
    /// its instructions.
    pub fn stage(&self, dockerfile: &str) -> (StageRun, Vec<Instruction>) {
        let df = strata_dockerfile::parse(dockerfile, "Dockerfile").expect("parse");
        let plan_opts = PlanOptions::default();
        let mut config = ImageConfig::default();
        config.set_env("PATH", crate::exec::DEFAULT_PATH);
        let scope = StageScope::new(&df, &plan_opts, 0, &config.env_pairs());
        let rootfs = self.rootfs();
        let st = StageRun {
            index: 0,
            snapshotter: Some(Snapshotter::new(&rootfs, SnapshotMode::Full, Vec::new()).expect("index")),
            rootfs,
            config,
            layers: Vec::new(),
            scope,
            cmd_set_here: false,
            created: "1970-01-01T00:00:00Z".into(),
            cache_key: CacheKey::base("scratch", "linux/amd64"),
            platform: Platform::host(),
        };
        let instructions = df.stages.first().map(|s| s.instructions.clone()).unwrap_or_default();
        (st, instructions)
    }

    /// Expands and runs every instruction of the stage.
    pub fn run_all(&mut self, st: &mut StageRun, instructions: &[Instruction]) -> Result<(), BuildError> {
        for inst in instructions {
            let expanded = st.scope.apply(inst)?;
            crate::instructions::execute(self, st, &expanded)?;
        }
        Ok(())
    }

    /// The names in a layer blob (gzip members of a tar).
    pub fn layer_names(&self, layer: &ImageLayer) -> Vec<String> {
        let file = std::fs::File::open(self.store.path(&layer.digest)).expect("blob");
        let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(file));
        archive.entries().expect("entries").map(|e| e.expect("entry").path().expect("path").display().to_string()).collect()
    }
}

impl StepContext for FakeSteps {
    fn opts(&self) -> &BuildOptions {
        &self.opts
    }

    fn file_name(&self) -> &str {
        "Dockerfile"
    }

    fn layer_opts(&self) -> &LayerOptions {
        &self.layer_opts
    }

    fn store(&self) -> &BlobStore {
        &self.store
    }

    fn scratch_dir(&self) -> &Path {
        self.dir.path()
    }

    fn context(&self) -> &BuildContext {
        &self.context
    }

    fn runtime(&self) -> &tokio::runtime::Handle {
        self.runtime.handle()
    }

    fn emit(&self, event: BuildEvent) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event);
        }
    }

    fn runner(&self) -> &dyn CommandRunner {
        &self.runner
    }

    fn caching(&self) -> bool {
        false
    }

    fn cached_step(&self, _stage: usize, _line: usize, _key: &CacheKey) -> Option<Hit> {
        None
    }

    fn store_step(&mut self, key: &CacheKey, layer: Option<&ImageLayer>, history: &str) {
        self.stored.push((key.clone(), layer.map(|l| l.digest.clone()), history.to_string()));
    }

    fn tree_digest(&self, path: &Path) -> Result<String, BuildError> {
        crate::cache::key::tree_digest(path)
    }

    fn resolve_stage(&self, _word: &str) -> Option<usize> {
        None
    }

    fn built_stage(&self, _index: usize) -> Option<&BuiltStage> {
        None
    }

    fn stage_root(&mut self, _index: usize) -> Result<Option<PathBuf>, BuildError> {
        Ok(None)
    }

    fn pull(&mut self, reference: &str, _platform: &Platform) -> Result<PulledBase, BuildError> {
        Err(BuildError::Options(format!("the test double pulls nothing ({reference})")))
    }

    fn image_root(&mut self, reference: &str, _platform: &Platform) -> Result<PathBuf, BuildError> {
        Err(BuildError::Options(format!("the test double pulls nothing ({reference})")))
    }

    fn materialize(&self, _st: &mut StageRun) -> Result<(), BuildError> {
        Ok(())
    }

    fn unpack(&self, _layers: &[ImageLayer], _dir: &Path, _rootless: bool, _keep: &KeepPaths) -> Result<(), BuildError> {
        Ok(())
    }

    fn in_place_keep(&self) -> KeepPaths {
        KeepPaths::default()
    }
}

#[test]
fn workdir_makes_the_directory_and_one_layer() {
    let mut f = FakeSteps::new(&[]);
    let (mut st, insts) = f.stage("FROM scratch\nWORKDIR /app/sub\nWORKDIR ../other\n");
    f.run_all(&mut st, &insts).expect("workdir");
    assert!(f.rootfs().join("app/sub").is_dir() && f.rootfs().join("app/other").is_dir());
    assert_eq!(st.config.config.working_dir.as_deref(), Some("/app/other"));
    assert_eq!(st.layers.len(), 2, "each WORKDIR that made a directory is a layer");
    assert_eq!(f.layer_names(&st.layers[0]), vec!["app/", "app/sub/"]);
    let history: Vec<_> = st.config.history.iter().filter_map(|h| h.created_by.clone()).collect();
    assert_eq!(history, vec!["WORKDIR /app/sub", "WORKDIR /app/other"]);
}

#[test]
fn copy_from_the_context_writes_the_files_and_a_layer() {
    let mut f = FakeSteps::new(&[("hello.txt", "hello\n"), ("src/a.rs", "fn main() {}\n"), ("skip.log", "x")]);
    std::fs::write(f.dir.path().join("ctx/.dockerignore"), "*.log\n").expect("ignore file");
    f.context = BuildContext::open_in(&f.dir.path().join("ctx"), &f.opts.dockerfile, &f.opts.work_dir).expect("context");
    let (mut st, insts) = f.stage("FROM scratch\nCOPY --chmod=0600 hello.txt /dst/\nCOPY . /all/\n");
    f.run_all(&mut st, &insts).expect("copy");
    assert_eq!(std::fs::read_to_string(f.rootfs().join("dst/hello.txt")).expect("copied"), "hello\n");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(f.rootfs().join("dst/hello.txt")).expect("meta").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);
    assert!(f.rootfs().join("all/src/a.rs").is_file() && !f.rootfs().join("all/skip.log").exists(), ".dockerignore applies");
    assert_eq!(st.layers.len(), 2);
    assert_eq!(f.layer_names(&st.layers[0]), vec!["dst/", "dst/hello.txt"]);
    let events = f.events.lock().expect("events");
    assert_eq!(events.iter().filter(|e| matches!(e, BuildEvent::LayerWritten { .. })).count(), 2);
}

#[test]
fn run_hands_the_runner_its_command_environment_and_mounts() {
    let mut f = FakeSteps::new(&[("sub/data", "d")]);
    let (mut st, insts) = f.stage("FROM scratch\nENV A=1\nARG B=2\nWORKDIR /w\nRUN --network=none --mount=type=bind,source=sub,target=/mnt echo \"$A\"\n");
    f.run_all(&mut st, &insts).expect("run");
    let specs = f.runner.specs.lock().expect("specs");
    assert_eq!(specs.len(), 1);
    let spec = &specs[0];
    assert_eq!(spec.argv, vec!["/bin/sh", "-c", "echo \"$A\""]);
    assert!(spec.env.contains(&("A".into(), "1".into())) && spec.env.contains(&("B".into(), "2".into())), "{:?}", spec.env);
    assert!(spec.env.iter().any(|(k, v)| k == "PATH" && v == crate::exec::DEFAULT_PATH) && spec.env.iter().any(|(k, _)| k == "HOME"));
    assert_eq!((spec.cwd.as_str(), spec.uid, spec.gid, spec.network_none), ("/w", 0, 0, true));
    assert_eq!(spec.rootfs, f.rootfs());
    assert_eq!(spec.mounts.len(), 1);
    assert_eq!(spec.mounts[0].target, "/mnt");
    match &spec.mounts[0].source {
        RunMountSource::Bind { host, readonly } => {
            assert!(*readonly, "a bind mount is read-only unless rw");
            assert_eq!(std::fs::read_to_string(host.join("data")).expect("bound source"), "d");
        }
        _ => panic!("expected a bind mount"),
    }
    let last = st.config.history.last().and_then(|h| h.created_by.clone()).expect("history");
    assert_eq!(last, "RUN |1 B=2 /bin/sh -c echo \"$A\" # buildkit");
}

#[test]
fn a_failing_run_names_the_line_and_the_exit_code() {
    let mut f = FakeSteps::new(&[]);
    f.runner.status = RunStatus::Exited(3);
    let (mut st, insts) = f.stage("FROM scratch\n\nRUN false\n");
    match f.run_all(&mut st, &insts) {
        Err(BuildError::RunFailed { line, code, .. }) => assert_eq!((line, code), (3, 3)),
        other => panic!("expected RunFailed, got {other:?}"),
    }
    assert!(st.layers.is_empty() && f.stored.is_empty(), "nothing recorded for a failed step");
}

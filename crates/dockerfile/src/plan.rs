//! The build plan: FROM lines resolved with meta ARGs, the stages a target needs in
//! dependency order, and per-stage ARG/ENV scope for expanding instructions.

use crate::{Dockerfile, Error, Instruction, Span, Warning};
use serde::Serialize;

/// Inputs that change what a Dockerfile means.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `--build-arg` values, already resolved (a bare `--build-arg K` takes K from the environment in the CLI).
    pub build_args: Vec<(String, String)>,
    /// `--target` stage name or index; the last stage when absent.
    pub target: Option<String>,
    /// The platform built for, `os/arch[/variant]`; the host's when absent.
    pub target_platform: Option<String>,
    /// The platform the build runs on; the host's when absent.
    pub build_platform: Option<String>,
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum StageBase {
    /// `FROM scratch`.
    Scratch,
    /// A registry image reference, expanded.
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// One stage to build.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStage {
    /// Index of the stage in the Dockerfile.
    pub index: usize,
    /// `AS` name, lower-cased.
    pub name: Option<String>,
    /// What it starts from.
    pub base: StageBase,
    /// Expanded `--platform`, if given.
    pub platform: Option<String>,
    /// The FROM line.
    pub span: Span,
}

/// The stages to build, in an order where every dependency comes first.
#[derive(Debug, Clone, Serialize)]
pub struct BuildPlan {
    /// Stages to build, dependencies first, target last.
    pub stages: Vec<PlannedStage>,
    /// Index (in the Dockerfile) of the target stage.
    pub target: usize,
    /// Non-fatal findings (unused build args, ...).
    pub warnings: Vec<Warning>,
}

impl BuildPlan {
    /// Resolves a `--from`/`FROM` word to a stage index: a stage name (any case) or a number.
    pub fn resolve_stage(&self, word: &str) -> Option<usize> {
        let _ = word;
        None
    }
}

/// Resolves stages, bases and dependencies for the chosen target.
pub fn plan(df: &Dockerfile, opts: &PlanOptions) -> Result<BuildPlan, Error> {
    let _ = (df, opts);
    Err(Error::Unimplemented)
}

/// The ARG and ENV scope of one stage while it is built.
#[derive(Debug, Clone)]
pub struct StageScope {
    _private: (),
}

impl StageScope {
    /// Starts the scope of stage `stage_index`, with the environment of its base image.
    pub fn new(df: &Dockerfile, opts: &PlanOptions, stage_index: usize, base_env: &[(String, String)]) -> Self {
        let _ = (df, opts, stage_index, base_env);
        Self { _private: () }
    }

    /// Expands the words BuildKit expands in `inst` and records what ARG and ENV change.
    pub fn apply(&mut self, inst: &Instruction) -> Result<Instruction, Error> {
        Ok(inst.clone())
    }

    /// Build args in scope now, with values, for a RUN's environment.
    pub fn build_args(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

//! One module per instruction family; `execute` dispatches an expanded instruction.

pub mod copy;
pub mod metadata;
pub mod run;
pub mod workdir;

use crate::build::Builder;
use crate::error::BuildError;
use crate::stage::StageRun;
use strata_dockerfile::{Instruction, InstructionKind};

/// Carries out one expanded instruction on the stage.
pub(crate) fn execute(b: &mut Builder, st: &mut StageRun, inst: &Instruction) -> Result<(), BuildError> {
    match &inst.kind {
        InstructionKind::Run(run) => run::execute(b, st, inst, run),
        InstructionKind::Copy(c) => copy_step::execute(b, st, inst, c, false),
        InstructionKind::Add(c) => copy_step::execute(b, st, inst, c, true),
        InstructionKind::Workdir(dir) => workdir::execute(b, st, inst, dir),
        _ => metadata::execute(b, st, inst),
    }
}

/// Builds an error for `inst` at its line.
pub(crate) fn fail(b: &Builder, inst: &Instruction, message: impl Into<String>) -> BuildError {
    BuildError::Instruction {
        file: b.file_name.clone(),
        line: inst.span.start_line,
        instruction: inst.kind.keyword().to_string(),
        message: message.into(),
    }
}

mod copy_step;

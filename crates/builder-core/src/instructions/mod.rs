//! One module per instruction family; `execute` dispatches an expanded instruction.

pub mod chmod;
pub mod copier;
mod copy;
pub mod metadata;
pub mod run;
pub mod url_source;
pub mod workdir;

use crate::error::BuildError;
use crate::stage::StageRun;
use crate::step_context::StepContext;
use strata_dockerfile::{Instruction, InstructionKind};

/// Carries out one expanded instruction on the stage.
pub(crate) fn execute(b: &mut dyn StepContext, st: &mut StageRun, inst: &Instruction) -> Result<(), BuildError> {
    match &inst.kind {
        InstructionKind::Run(run) => run::execute(b, st, inst, run),
        InstructionKind::Copy(c) => copy::execute(b, st, inst, c, false),
        InstructionKind::Add(c) => copy::execute(b, st, inst, c, true),
        other => {
            if b.caching() {
                // Metadata and WORKDIR: the expanded text decides what they do.
                st.cache_key = st.cache_key.then(&[other.keyword().as_bytes(), inst.original.as_bytes()]);
            }
            match other {
                InstructionKind::Workdir(dir) => workdir::execute(b, st, inst, dir),
                _ => metadata::execute(b, st, inst),
            }
        }
    }
}

/// Builds an error for `inst` at its line.
pub(crate) fn fail(b: &dyn StepContext, inst: &Instruction, message: impl std::fmt::Display) -> BuildError {
    BuildError::Instruction {
        file: b.file_name().to_string(),
        line: inst.span.start_line,
        instruction: inst.kind.keyword().to_string(),
        message: message.to_string(),
    }
}

//! strata's Dockerfile front end: parse a Dockerfile as BuildKit does, expand words
//! with BuildKit's rules, and resolve the stage graph for a target.
//!
//! ```
//! use strata_dockerfile::{parse, plan, PlanOptions, StageScope};
//!
//! let df = parse("ARG TAG=1.36\nFROM busybox:${TAG} AS base\nENV DIR=/app\nWORKDIR $DIR\n", "Dockerfile")?;
//! let opts = PlanOptions::default();
//! let plan = plan(&df, &opts)?;
//! assert_eq!(plan.stages[0].base, strata_dockerfile::StageBase::Image("busybox:1.36".into()));
//! let mut scope = StageScope::new(&df, &opts, 0, &[]);
//! for inst in &df.stages[0].instructions {
//!     let expanded = scope.apply(inst)?;
//!     println!("line {}: {:?}", expanded.span.start_line, expanded.kind);
//! }
//! # Ok::<(), strata_dockerfile::Error>(())
//! ```
//!
//! # How it follows BuildKit
//!
//! The lexer, flag splitter, exec/shell decision and word expander mirror moby/buildkit's
//! `frontend/dockerfile/parser` and `shell/lex.go`, message for message where it matters;
//! `tests/golden/*.txt` pins the behaviour case by case, `tests/differential.rs` compares
//! with the `parse-dockerfile` crate and names each place where that crate reads a file
//! differently from BuildKit. Deliberate differences:
//!
//! - `COPY --from=builer` where `builer` is one typo away from a stage name and looks like no
//!   image reference (no `/`, `:`, `@` or `.`) is an error with a suggestion; BuildKit would
//!   try to pull an image called `builer`.
//! - `RUN` with no command is refused at parse time.
//! - An empty `CMD`/`ENTRYPOINT` is an empty exec form (it clears the value).
//! - Go's byte-wise quirks (a UTF-8 continuation byte 0x85 or 0xA0 counting as a blank in
//!   flag splitting) are not reproduced.
//! - Heredoc bodies of `<<-` come with their leading tabs already stripped.
//! - `COPY << EOF /dest` (a blank after `<<`) is an error saying to write `<<EOF`; BuildKit
//!   reads the body but then copies context files named `<<` and `EOF`. `RUN << EOF` is a
//!   heredoc in both.
//! - A stage's ARG names are expanded with the stage's environment as it then stands, as
//!   dockerd 20.10's BuildKit (the project's oracle) and kaniko do: `ENV n=foo` then
//!   `ARG ${n}=bar` declares `foo`. BuildKit's frontend 1.8 on leaves them literal. A name that
//!   expands to nothing, or to a word with `=` or a blank, is refused. Names of ARGs before the
//!   first FROM are not expanded (by neither oracle nor kaniko); a warning says so.
//! - `FROM Builder` matches a stage named `builder` in any case, as kaniko and buildah do;
//!   BuildKit looks the word up as written (stage names are stored lower-cased), reads it as
//!   an image reference and fails ("repository name must be lowercase").

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod ast;
pub mod chmod;
pub mod error;
pub mod expand;
pub mod go_parse;
mod instruction;
mod lexer;
mod lint;
mod mount;
pub mod plan;
mod plan_json;
mod scope;
pub mod source;
mod suggest;
mod validate;
mod words;

pub use ast::*;
pub use chmod::SymbolicMode;
pub use error::{Error, Warning};
pub use plan::{BuildPlan, PlanOptions, PlannedStage, StageBase, StageScope, plan};
pub use plan_json::{WriteError as PlanWriteError, plan_json, write_plan_json};

/// Parses a base image's `OnBuild` triggers (from its config) into instructions, as BuildKit
/// does when a stage starts FROM that image; they then run first in that stage, through the
/// stage's [`StageScope`] like any other instruction. `source` names them in errors (for
/// example `busybox:latest ONBUILD`); lines count within the triggers.
pub fn parse_onbuild_triggers(triggers: &[String], source: &str) -> Result<Vec<Instruction>, Error> {
    instruction::triggers(source, triggers, '\\')
}

/// Parses Dockerfile text into instructions with source spans; nothing is expanded yet.
pub fn parse(text: &str, file_name: &str) -> Result<Dockerfile, Error> {
    let source_lines: Vec<String> =
        text.strip_prefix('\u{feff}').unwrap_or(text).split_inclusive('\n').map(|l| l.trim_end_matches(['\r', '\n']).to_string()).collect();
    let lexed = match lexer::lex(text) {
        Ok(l) => l,
        Err(e) => {
            let loc = error::Locator { file: file_name, lines: &source_lines };
            return Err(loc.error(error::Kind::Syntax, e.line, None, e.message));
        }
    };
    let warnings = lexed
        .empty_continuations
        .iter()
        .map(|&line| Warning {
            line: Some(line),
            message: "NoEmptyContinuation: Empty continuation line (BuildKit will refuse these in a future release)".into(),
        })
        .collect();
    let mut df = instruction::build(file_name, source_lines, lexed.directives, lexed.escape, lexed.lines, warnings)?;
    let mut lints = lint::check(&df);
    df.warnings.append(&mut lints);
    df.warnings.sort_by_key(|w| w.line);
    Ok(df)
}

//! strata's Dockerfile front end: parse a Dockerfile as BuildKit does, expand words
//! with BuildKit's rules, and resolve the stage graph for a target.
//!
//! ```no_run
//! let df = strata_dockerfile::parse("FROM busybox\nRUN echo hi\n", "Dockerfile").unwrap();
//! let plan = strata_dockerfile::plan(&df, &strata_dockerfile::PlanOptions::default()).unwrap();
//! for stage in &plan.stages {
//!     println!("stage {} from {:?}", stage.index, stage.base);
//! }
//! ```

pub mod ast;
pub mod error;
pub mod plan;

pub use ast::*;
pub use error::{Error, Warning};
pub use plan::{plan, BuildPlan, PlanOptions, PlannedStage, StageBase, StageScope};

/// Parses Dockerfile text into instructions with source spans; nothing is expanded yet.
pub fn parse(text: &str, file_name: &str) -> Result<Dockerfile, Error> {
    let _ = (text, file_name);
    Err(Error::Unimplemented)
}

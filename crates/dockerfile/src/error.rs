//! Front-end errors: every one names the file, line and column it comes from.

/// A Dockerfile error with its location.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text at `file:line:col` is not valid Dockerfile syntax.
    #[error("{file}:{line}:{col}: {message}\n  {line_text}")]
    Syntax { file: String, line: usize, col: usize, message: String, line_text: String },
    /// Placeholder until the parser exists.
    #[error("the Dockerfile parser is not implemented yet")]
    Unimplemented,
}

/// A non-fatal finding, such as a build arg that no stage declared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// Where it was found, if anywhere in particular (1-based line).
    pub line: Option<usize>,
    /// What to tell the user.
    pub message: String,
}

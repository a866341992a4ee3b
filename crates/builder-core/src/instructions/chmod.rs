//! `--chmod` in its symbolic form is parsed by the front end (`strata_dockerfile::chmod`);
//! the copier applies it to each copied file's own mode.

pub use strata_dockerfile::SymbolicMode;

//! strata's build engine: runs a Dockerfile's stages in root filesystems, snapshots each
//! change into an OCI layer, assembles the image and pushes it. Joins the
//! `strata-dockerfile`, `strata-snapshot` and `strata-registry` crates.
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_builder_core::BuildError> {
//! use strata_builder_core::{build, BuildOptions};
//! let mut opts = BuildOptions::new("Dockerfile".into(), ".".into());
//! opts.destinations.push("127.0.0.1:5000/app:latest".into());
//! opts.registry.insecure_registries.push("127.0.0.1:5000".into());
//! let out = build(opts, None).await?;
//! println!("{}", out.digest);
//! # Ok(()) }
//! ```

pub(crate) mod base;
pub(crate) mod build;
pub(crate) mod build_root;
mod build_steps;
pub(crate) mod cache;
mod cancel;
pub(crate) mod clock;
pub(crate) mod context;
pub mod error;
pub mod exec;
#[cfg(test)]
mod fake_steps;
mod host_name;
pub mod image;
pub(crate) mod instructions;
pub(crate) mod isolation_choice;
mod multi_platform;
pub mod options;
pub(crate) mod output;
pub mod progress;
mod push_archive;
pub(crate) mod rootfs;
pub mod secrets;
pub(crate) mod stage;
mod step_context;
pub(crate) mod user;
mod work_dir;

pub use build::{BuildOutput, build};
pub use cancel::Cancel;
/// Seconds since the epoch as RFC 3339 UTC text, as image configs record times.
pub use clock::rfc3339;
pub use error::BuildError;
pub use isolation_choice::{HostFacts, IsolationError, IsolationRequest, choose_isolation};
pub use options::{BuildOptions, CacheOptions, Isolation};
pub use progress::{BuildEvent, EventFn};
pub use push_archive::{PushArchiveOptions, PushedArchive, push_archive};

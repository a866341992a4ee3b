//! The image being built: its config (Docker-compatible, unknown fields kept), history and
//! manifest, serialised canonically so equal inputs give equal digests.

pub mod config;
pub mod manifest;

pub use config::{ContainerConfig, HistoryEntry, ImageConfig, RootFs};

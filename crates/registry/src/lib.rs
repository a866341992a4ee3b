//! strata's OCI distribution client: image references, manifest and blob pulls with digest
//! verification, pushes that survive faults, and every auth path a CI pod meets (bearer,
//! basic, docker `config.json`, credential helpers, and ECR behind the `ecr` feature).
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_registry::Error> {
//! use strata_registry::{Client, ClientOptions, Platform, Reference};
//! let client = Client::new(ClientOptions::default())?;
//! let r: Reference = "127.0.0.1:5000/library/busybox:latest".parse()?;
//! let image = client.get_image(&r, &Platform::host()).await?;
//! println!("{} has {} layers", image.digest, image.manifest.layers.len());
//! # Ok(()) }
//! ```

mod auth;
pub mod client;
mod credentials;
pub mod digest;
#[cfg(feature = "ecr")]
mod ecr;
pub mod ecr_host;
pub mod error;
pub mod manifest;
pub mod progress;
mod pull;
mod push;
pub mod reference;
mod transport;

pub use client::{Client, ClientOptions, Credentials, EcrOptions, PulledImage, PushBlob, PushImage, UploadMode};
pub use error::Error;
pub use manifest::{Descriptor, Manifest, Platform};
pub use progress::{ProgressEvent, ProgressFn};
pub use reference::Reference;

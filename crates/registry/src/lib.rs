//! strata's OCI distribution client: image references, manifest and blob pulls with digest
//! verification, pushes that survive faults, and every auth path a CI pod meets (bearer,
//! basic, docker `config.json`, credential helpers, and ECR behind the `ecr` feature).
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_registry::Error> {
//! use strata_registry::{Client, ClientOptions, Platform, PushBlob, PushImage, Reference};
//! let client = Client::new(ClientOptions { insecure_registries: vec!["127.0.0.1:5000".into()], ..Default::default() })?;
//! let r: Reference = "127.0.0.1:5000/library/busybox:latest".parse()?;
//! let image = client.get_image(&r, &Platform::host()).await?;
//! println!("{} has {} layers", image.digest, image.manifest.layers.len());
//! let layer = &image.manifest.layers[0];
//! client.get_blob_to_file(&r, &layer.digest, layer.size, "/tmp/layer0".as_ref()).await?;
//!
//! // Push: blobs the registry lacks are uploaded (or mounted), then the manifest.
//! let config = std::fs::read("config.json").unwrap_or_default();
//! let push = PushImage {
//!     blobs: vec![PushBlob { digest: image.manifest.config.digest.clone(), size: config.len() as u64, path: "config.json".into() }],
//!     manifest: image.raw.clone(),
//!     manifest_media_type: image.media_type.clone(),
//! };
//! let digest = client.push_image(&"127.0.0.1:5000/me/app:v1".parse()?, &push).await?;
//! # let _ = digest; Ok(()) }
//! ```
//!
//! Where credentials come from, in order: [`ClientOptions::credentials`], a `config.json` entry for
//! the host (`auths`, `credHelpers`; directory from `docker_config_dir`, `DOCKER_CONFIG` or
//! `~/.docker`), ECR's GetAuthorizationToken for `*.dkr.ecr.*.amazonaws.com` hosts (feature `ecr`,
//! aws-config's default chain, optional AssumeRole, `AWS_ENDPOINT_URL` honoured), then `credsStore`.
//! Transient failures (connect errors, resets, stalls past `stall_timeout`, 5xx, 429) are retried
//! `retries` times with jittered exponential backoff, honouring `Retry-After`.

mod auth;
pub mod client;
mod credentials;
pub mod digest;
#[cfg(feature = "ecr")]
mod ecr;
pub mod ecr_host;
#[cfg(feature = "ecr")]
mod ecr_http;
pub mod error;
mod join;
pub mod limits;
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

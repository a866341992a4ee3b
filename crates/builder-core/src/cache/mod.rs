//! The layer cache (`--cache`): a RUN whose key matches an earlier build's is not run again;
//! its layer is applied instead. Keys are in [`key`], entries in [`store`].

pub mod key;
pub mod store;

pub use key::CacheKey;
pub use store::{Hit, LayerCache};

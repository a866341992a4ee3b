//! The layer cache (`--cache`): a RUN whose key matches an earlier build's is not run again;
//! its layer is applied instead. Keys are in [`key`], entries in [`store`].

pub mod key;
pub mod store;

pub use key::CacheKey;
pub use store::{Hit, LayerCache};

/// An ECR lifecycle policy expiring cache entries pushed more than `ttl` ago (at least a day):
/// older entries are misses anyway.
pub fn expiry_policy(ttl: std::time::Duration) -> String {
    let days = ttl.as_secs().div_ceil(86_400).max(1);
    serde_json::json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("strata layer cache: expire entries pushed more than {days} days ago (--cache-ttl)"),
            "selection": {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": days},
            "action": {"type": "expire"}
        }]
    })
    .to_string()
}

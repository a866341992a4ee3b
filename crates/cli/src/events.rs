//! Logging set-up and the printer for build events.

use std::sync::Arc;
use strata_builder_core::{BuildEvent, EventFn};
use tracing_subscriber::EnvFilter;

/// Sets up `tracing` output on stderr at `verbosity`, as `text`, `color` or `json`.
pub fn init_logging(verbosity: &str, format: &str) -> anyhow::Result<()> {
    let level = match verbosity {
        "panic" | "fatal" | "error" => "error",
        "warn" | "warning" => "warn",
        "info" | "debug" | "trace" => verbosity,
        other => anyhow::bail!("--verbosity {other:?}: use error, warn, info, debug or trace"),
    };
    let filter = EnvFilter::try_from_env("STRATA_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    match format {
        "json" => builder.json().init(),
        "color" => builder.with_ansi(true).init(),
        "text" => builder.with_ansi(false).init(),
        other => anyhow::bail!("--log-format {other:?}: use text, color or json"),
    }
    Ok(())
}

/// Prints build events as log lines.
pub fn printer() -> EventFn {
    Arc::new(|event| match event {
        BuildEvent::StageStarted { index, name, base } => match name {
            Some(n) => tracing::info!("stage {index} ({n}) from {base}"),
            None => tracing::info!("stage {index} from {base}"),
        },
        BuildEvent::Step { line, text, .. } => tracing::info!("line {line}: {text}"),
        BuildEvent::LayerWritten { digest, size } => tracing::info!("layer {digest} ({size} bytes)"),
        BuildEvent::Transfer(t) => tracing::debug!("{t:?}"),
        BuildEvent::Pushed { reference, digest } => tracing::info!("pushed {reference}@{digest}"),
        BuildEvent::Warning(w) => tracing::warn!("{w}"),
        BuildEvent::CacheHit { line, source, .. } => tracing::info!("line {line}: cache hit ({source}), its layer reused"),
    })
}

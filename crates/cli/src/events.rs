//! Logging set-up and the printer for build events: log lines, and progress bars for blob
//! transfers when stderr is a terminal (a CI log gets one line per finished transfer instead).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use strata_builder_core::{BuildEvent, EventFn};
use strata_registry::ProgressEvent;
use tracing_subscriber::EnvFilter;

/// Where progress goes: bars (on a terminal) or nothing but the log lines.
#[derive(Clone)]
pub struct Progress {
    bars: Option<MultiProgress>,
    live: Arc<Mutex<HashMap<String, Transfer>>>,
}

/// A blob transfer under way.
struct Transfer {
    started: Instant,
    total: Option<u64>,
    done: u64,
    push: bool,
    bar: Option<ProgressBar>,
}

/// Log output that waits while the bars are redrawn, so lines and bars do not mix.
#[derive(Clone)]
struct Writer(Option<MultiProgress>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &self.0 {
            Some(bars) => bars.suspend(|| std::io::stderr().write_all(buf)).map(|()| buf.len()),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Writer {
    type Writer = Writer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Sets up `tracing` output on stderr at `verbosity`, as `text`, `color` or `json`, and the
/// progress display that goes with it.
pub fn init_logging(verbosity: &str, format: &str) -> anyhow::Result<Progress> {
    let level = match verbosity {
        "panic" | "fatal" | "error" => "error",
        "warn" | "warning" => "warn",
        "info" | "debug" | "trace" => verbosity,
        other => anyhow::bail!("--verbosity {other:?}: use error, warn, info, debug or trace"),
    };
    let bars = (std::io::stderr().is_terminal() && format != "json" && level != "error").then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
    let filter = EnvFilter::try_from_env("STRATA_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(Writer(bars.clone())).with_target(false);
    match format {
        "json" => builder.json().init(),
        "color" => builder.with_ansi(true).init(),
        "text" => builder.with_ansi(false).init(),
        other => anyhow::bail!("--log-format {other:?}: use text, color or json"),
    }
    Ok(Progress { bars, live: Arc::default() })
}

/// Prints build events as log lines, and transfers as bars or as one line each.
pub fn printer(progress: Progress) -> EventFn {
    Arc::new(move |event| print(&progress, event))
}

/// Prints one event; one of a platform's build (several platforms build side by side) is
/// printed in a `platform` span, as that build's own log lines are.
fn print(progress: &Progress, event: BuildEvent) {
    match event {
        BuildEvent::StageStarted { index, name, base } => match name {
            Some(n) => tracing::info!("stage {index} ({n}) from {base}"),
            None => tracing::info!("stage {index} from {base}"),
        },
        BuildEvent::Step { line, text, .. } => tracing::info!("line {line}: {text}"),
        BuildEvent::LayerWritten { digest, size, seconds } => tracing::info!("layer {digest} ({}, written in {seconds:.2} s)", size_text(size)),
        BuildEvent::Ran { line, seconds, .. } => tracing::info!("line {line}: ran in {seconds:.2} s"),
        BuildEvent::Snapshotted { line, mode, scanned, changes, seconds, .. } => {
            tracing::info!("line {line}: snapshot ({mode}) in {seconds:.2} s: {changes} changes among {scanned} files")
        }
        BuildEvent::Transfer(t) => progress.transfer(t),
        BuildEvent::Pushed { reference, digest } => tracing::info!("pushed {reference}@{digest}"),
        BuildEvent::Warning(w) => tracing::warn!("{w}"),
        BuildEvent::CacheHit { line, source, .. } => tracing::info!("line {line}: cache hit ({source}), its layer reused"),
        BuildEvent::ForPlatform { platform, event } => {
            // The build's thread is in its platform's span already; a transfer task is not.
            if tracing::Span::current().metadata().is_some_and(|m| m.name() == "platform") {
                print(progress, *event);
            } else {
                tracing::info_span!("platform", platform = %platform).in_scope(|| print(progress, *event));
            }
        }
    }
}

impl Progress {
    fn transfer(&self, event: ProgressEvent) {
        let Ok(mut live) = self.live.lock() else { return };
        match event {
            ProgressEvent::BlobStarted { digest, total, push } => {
                let bar = self.bars.as_ref().map(|bars| {
                    let bar = bars.add(ProgressBar::new(total.unwrap_or(0)));
                    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> ");
                    bar.set_style(style);
                    bar.set_prefix(format!("{} {}", if push { "push" } else { "pull" }, short(&digest)));
                    bar
                });
                live.insert(digest, Transfer { started: Instant::now(), total, done: 0, push, bar });
            }
            ProgressEvent::BlobProgress { digest, done } => {
                if let Some(t) = live.get_mut(&digest) {
                    t.done = done;
                    if let Some(bar) = &t.bar {
                        bar.set_position(done);
                    }
                }
            }
            ProgressEvent::BlobDone { digest, skipped } => {
                let Some(t) = live.remove(&digest) else { return };
                if let Some(bar) = &t.bar {
                    bar.finish_and_clear();
                }
                drop(live);
                if skipped {
                    tracing::debug!("{} already in the registry", short(&digest));
                } else {
                    let bytes = t.total.unwrap_or(t.done);
                    tracing::info!("{}", done_line(t.push, &digest, bytes, t.started.elapsed().as_secs_f64()));
                }
            }
            ProgressEvent::ManifestPushed { .. } => {}
        }
    }
}

/// `sha256:` and the first 12 hex digits.
fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// The line for a finished transfer: what, how much, how long, how fast.
fn done_line(push: bool, digest: &str, bytes: u64, secs: f64) -> String {
    let verb = if push { "pushed blob" } else { "pulled" };
    let mib = bytes as f64 / (1024.0 * 1024.0);
    let rate = if secs > 0.0 && bytes >= 1 << 20 { format!(", {:.1} MiB/s", mib / secs) } else { String::new() };
    format!("{verb} {} ({} in {secs:.2} s{rate})", short(digest), size_text(bytes))
}

/// A size in B, KiB or MiB.
fn size_text(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finished_transfers_read_as_one_line() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(super::done_line(false, d, 3 * 1024 * 1024, 1.5), "pulled sha256:0123456789ab (3.0 MiB in 1.50 s, 2.0 MiB/s)");
        assert_eq!(super::done_line(true, d, 135, 0.03), "pushed blob sha256:0123456789ab (135 B in 0.03 s)");
        assert_eq!(super::done_line(true, d, 2048, 0.0), "pushed blob sha256:0123456789ab (2.0 KiB in 0.00 s)");
        assert_eq!(super::short("sha256:ab"), "sha256:ab");
    }
}

//! SIGTERM and SIGINT stop a build cleanly: the first cancels it (the library kills the
//! running RUN, removes its scratch tree and returns), and strata exits 143 or 130; a second
//! signal, or a build that has not stopped within [`GRACE`], exits at once.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;
use strata_builder_core::Cancel;

/// How long a cancelled build may take to clean up before strata exits anyway.
const GRACE: Duration = Duration::from_secs(30);

/// The first stop signal received, 0 before one.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The exit status for the stop signal received, if one was.
pub fn exit_status() -> Option<u8> {
    match RECEIVED.load(Ordering::Relaxed) {
        0 => None,
        sig => u8::try_from(128 + sig).ok(),
    }
}

/// Cancels `cancel` on the first SIGTERM or SIGINT. Must run inside the tokio runtime.
pub fn stop_build_on_signals(cancel: Cancel) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::warn!("cannot listen for SIGTERM/SIGINT; a signal will stop strata without cleaning up");
        return;
    };
    tokio::spawn(async move {
        let (sig, name) = tokio::select! {
            _ = term.recv() => (nix::libc::SIGTERM, "SIGTERM"),
            _ = int.recv() => (nix::libc::SIGINT, "SIGINT"),
        };
        RECEIVED.store(sig, Ordering::Relaxed);
        eprintln!("strata: {name} received: stopping the build (the running RUN is killed, scratch files removed); send it again to exit at once");
        cancel.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            () = tokio::time::sleep(GRACE) => eprintln!("strata: the build did not stop within {}s; exiting", GRACE.as_secs()),
        }
        std::process::exit(128 + sig);
    });
}

//! Helpers shared by the test suites of several crates. Real services: these find or start
//! them. The one exception is [`hostile`], a registry that lies on purpose (no real one can).

pub mod hostile;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Whether something accepts TCP connections at `addr` (`host:port`).
pub fn answers(addr: &str) -> bool {
    addr.parse::<SocketAddr>().is_ok_and(|sa| TcpStream::connect_timeout(&sa, Duration::from_millis(300)).is_ok())
}

/// A moto_server answering ECR and STS: a running one, or one started here and killed on drop.
#[derive(Debug)]
pub struct Moto {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    child: Option<Child>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The moto at `running` when it answers; else one started on a free port from
/// `$STRATA_VENV`, `<state>/venv`, `PATH` or /tmp/motovenv. None when there is no moto_server.
pub fn moto(running: Option<&str>, state: &Path) -> Option<Moto> {
    if let Some(addr) = running.filter(|a| answers(a)) {
        return Some(Moto { addr: addr.to_string(), child: None });
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(v) = std::env::var("STRATA_VENV") {
        candidates.push(PathBuf::from(v).join("bin/moto_server"));
    }
    candidates.push(state.join("venv/bin/moto_server"));
    if let Ok(path) = std::env::var("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|p| p.join("moto_server")));
    }
    candidates.push("/tmp/motovenv/bin/moto_server".into());
    let bin = candidates.into_iter().find(|p| p.is_file())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = Command::new(&bin).args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().ok()?;
    let moto = Moto { addr: format!("127.0.0.1:{port}"), child: Some(child) };
    for _ in 0..300 {
        if answers(&moto.addr) {
            return Some(moto);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Whether tests run strictly (`STRATA_TEST_STRICT=1`, as CI runs them): a test that cannot
/// find what it needs fails instead of passing with a SKIPPED line.
pub fn strict() -> bool {
    std::env::var("STRATA_TEST_STRICT").is_ok_and(|v| v == "1")
}

/// Says loudly that `test` cannot run here and why; under [`strict`] that is a failure.
pub fn skip(test: &str, why: &str) {
    if strict() {
        panic!("{test} cannot run: {why} (STRATA_TEST_STRICT=1 turns a skip into a failure)");
    }
    eprintln!("!!!! SKIPPED {test}: {why} !!!!");
}

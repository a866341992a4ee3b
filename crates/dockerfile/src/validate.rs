//! Checks BuildKit makes on expanded values when it dispatches an instruction.

/// Checks an EXPOSE port spec (`80`, `53/udp`, `8000-8010/tcp`) as Docker's
/// `nat.ParsePortSpecs` would.
pub(crate) fn port_spec(spec: &str) -> Result<(), String> {
    let (port, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto),
        None => (spec, "tcp"),
    };
    if !matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    // `ip:hostPort:containerPort` is accepted by the parser; the container port is last.
    let container = port.rsplit(':').next().unwrap_or(port);
    let number = |s: &str| s.parse::<u16>().map_err(|_| format!("invalid containerPort: {container}"));
    match container.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (number(a)?, number(b)?);
            if b < a {
                return Err(format!("invalid range specified for container port: {container}"));
            }
        }
        None => {
            number(container)?;
        }
    }
    Ok(())
}

const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT",
    "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX",
];

/// Checks a STOPSIGNAL value as moby's `signal.ParseSignal` does on Linux.
pub(crate) fn signal(raw: &str) -> Result<(), String> {
    if let Ok(n) = raw.parse::<u8>() {
        return if n == 0 { Err(format!("Invalid signal: {raw}")) } else { Ok(()) };
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let realtime = |base: &str, sign: char| {
        name.strip_prefix(base)
            .and_then(|r| r.strip_prefix(sign))
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| (1..=15).contains(&n) || (base == "RTMAX" && n == 14))
    };
    if SIGNALS.contains(&name) || realtime("RTMIN", '+') || realtime("RTMAX", '-') { Ok(()) } else { Err(format!("Invalid signal: {raw}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        for ok in ["80", "80/tcp", "53/UDP", "8000-8010/tcp", "132/sctp", "127.0.0.1:80:80"] {
            assert!(port_spec(ok).is_ok(), "{ok}");
        }
        for bad in ["abc", "80/http", "70000", "9-1", ""] {
            assert!(port_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signals() {
        for ok in ["SIGTERM", "term", "9", "SIGRTMIN+3", "RTMAX-2", "sigkill"] {
            assert!(signal(ok).is_ok(), "{ok}");
        }
        for bad in ["0", "SIGFOO", "", "RTMIN+20", "300"] {
            assert!(signal(bad).is_err(), "{bad}");
        }
    }
}

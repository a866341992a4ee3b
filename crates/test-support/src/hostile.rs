//! A registry that misbehaves on purpose: a small HTTP/1.1 server on loopback whose answers a
//! test writes (bodies that never end, lengths that lie, redirects and upload `Location`s to
//! another port), recording every request it saw. The one thing here that imitates a service:
//! no real registry can be made to lie like this, and untrusted-input tests need one that does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `HEAD`, `POST`, `PATCH`, `PUT`.
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The port of the listener that answered (see [`HostileServer::start_pair`]).
    pub port: u16,
    /// How many body bytes the request carried.
    pub body_len: u64,
}

/// How a reply's body is sent.
#[derive(Debug, Clone)]
pub enum Body {
    /// These bytes, with a matching `Content-Length`.
    Bytes(Vec<u8>),
    /// These bytes with this `Content-Length` (a lie when they differ: the connection closes after the bytes).
    Declared(Vec<u8>, u64),
    /// These bytes without a `Content-Length`, the end marked by closing the connection.
    UntilClose(Vec<u8>),
    /// Zeros without end (no `Content-Length`), until the client hangs up.
    Endless,
    /// A `Content-Length` of this many bytes, then one space per interval, until the client
    /// hangs up or all are sent: an answer too slow to ever finish.
    Drip(u64, Duration),
}

/// A reply: status, extra headers, body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// Headers besides Content-Length and Connection.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
}

impl Reply {
    /// A reply with `status`, no extra headers and `body`.
    pub fn new(status: u16, body: Body) -> Self {
        Reply { status, headers: Vec::new(), body }
    }

    /// This reply with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// The running server; stops accepting when dropped.
pub struct HostileServer {
    /// `127.0.0.1:PORT` of the first listener.
    pub addr: String,
    /// `127.0.0.1:PORT` of the second listener (the "other host" of a pair), or the same as `addr`.
    pub other_addr: String,
    /// Every request seen, in order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for HostileServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostileServer").field("addr", &self.addr).field("other_addr", &self.other_addr).finish()
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loops so they see the flag.
        let _ = TcpStream::connect(&self.addr);
        let _ = TcpStream::connect(&self.other_addr);
    }
}

impl HostileServer {
    /// One listener on a free loopback port answering every request with `handler`.
    pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> std::io::Result<Self> {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let addr = l.local_addr()?.to_string();
        let (seen, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        serve(l, Arc::new(handler), seen.clone(), stop.clone());
        Ok(HostileServer { other_addr: addr.clone(), addr, seen, stop })
    }

    /// Two listeners (two "hosts": different ports) sharing `handler`, which tells them apart by [`Seen::port`].
    pub fn start_pair(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> std::io::Result<Self> {
        let (a, b) = (TcpListener::bind("127.0.0.1:0")?, TcpListener::bind("127.0.0.1:0")?);
        let (addr, other_addr) = (a.local_addr()?.to_string(), b.local_addr()?.to_string());
        let (seen, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        let handler: Arc<Handler> = Arc::new(handler);
        serve(a, handler.clone(), seen.clone(), stop.clone());
        serve(b, handler, seen.clone(), stop.clone());
        Ok(HostileServer { addr, other_addr, seen, stop })
    }

    /// The port of the second listener.
    pub fn other_port(&self) -> u16 {
        self.other_addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(0)
    }

    /// A copy of the requests seen so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

fn serve(l: TcpListener, handler: Arc<Handler>, seen: Arc<Mutex<Vec<Seen>>>, stop: Arc<AtomicBool>) {
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    std::thread::spawn(move || {
        for conn in l.incoming() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let (handler, seen) = (handler.clone(), seen.clone());
            std::thread::spawn(move || {
                let _ = connection(conn, port, &*handler, &seen);
            });
        }
    });
}

/// Serves requests on one connection until the client closes it or a reply ends it.
fn connection(conn: TcpStream, port: u16, handler: &Handler, seen: &Mutex<Vec<Seen>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let (mut authorization, mut length, mut chunked) = (None, 0u64, false);
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                match k.as_str() {
                    "authorization" => authorization = Some(v),
                    "content-length" => length = v.parse().unwrap_or(0),
                    "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                    _ => {}
                }
            }
        }
        let body_len = if chunked { drain_chunked(&mut r)? } else { std::io::copy(&mut (&mut r).take(length), &mut std::io::sink())? };
        let req = Seen { method: method.clone(), target, authorization, port, body_len };
        if let Ok(mut v) = seen.lock() {
            v.push(req.clone());
        }
        let reply = handler(&req);
        let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let keep = match &reply.body {
            Body::Bytes(b) => {
                head.push_str(&format!("Content-Length: {}\r\n", b.len()));
                true
            }
            Body::Declared(_, n) | Body::Drip(n, _) => {
                head.push_str(&format!("Content-Length: {n}\r\n"));
                false
            }
            Body::UntilClose(_) | Body::Endless => false,
        };
        head.push_str(if keep { "\r\n" } else { "Connection: close\r\n\r\n" });
        out.write_all(head.as_bytes())?;
        if method != "HEAD" {
            match reply.body {
                Body::Bytes(b) | Body::Declared(b, _) | Body::UntilClose(b) => out.write_all(&b)?,
                Body::Endless => {
                    let zeros = vec![0u8; 64 << 10];
                    while out.write_all(&zeros).is_ok() {}
                }
                Body::Drip(n, every) => {
                    for _ in 0..n {
                        if out.write_all(b" ").and_then(|()| out.flush()).is_err() {
                            break;
                        }
                        std::thread::sleep(every);
                    }
                }
            }
        }
        out.flush()?;
        if !keep {
            let _ = out.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
    }
}

/// Reads a chunked request body to its end; returns its length.
fn drain_chunked(r: &mut impl BufRead) -> std::io::Result<u64> {
    let mut total = 0;
    loop {
        let mut size = String::new();
        r.read_line(&mut size)?;
        let n = u64::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if n == 0 {
            let mut end = String::new();
            r.read_line(&mut end)?;
            return Ok(total);
        }
        total += std::io::copy(&mut r.take(n), &mut std::io::sink())?;
        let mut crlf = String::new();
        r.read_line(&mut crlf)?;
    }
}

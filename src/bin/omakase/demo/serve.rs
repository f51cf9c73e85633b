//! The demo's static file server: hand-written on std (one thread per connection, GET/HEAD only, no
//! keep-alive). The demo needs a dozen lines of HTTP, not a web framework's dependency tree in every
//! build; what it must hold against a hostile page or client (issue 14, point 5) is here:
//!
//! - **Roots**: a request never leaves its mount, before or after symbolic links are resolved. Each
//!   mount's directory is canonicalised once; a requested path is canonicalised too and served only
//!   when it is a regular file under its mount's canonical directory (a link to `/etc/passwd` or to
//!   `/etc` is "not found"; a link that stays inside its mount is followed). The file is opened
//!   without following a last link and without blocking (a FIFO swapped in cannot hang the thread),
//!   and on Linux the opened descriptor's own path is checked again, so swapping a link in between
//!   check and open does not escape either.
//! - **Host**: only `127.0.0.1:PORT`, `localhost:PORT` and `[::1]:PORT` are answered (421 otherwise,
//!   400 without a Host), so a page on another name that DNS-rebinds to 127.0.0.1 reads nothing.
//! - **Memory**: files are streamed in [`CHUNK_BYTES`] chunks; a request head is at most
//!   [`MAX_HEAD_BYTES`]. Per connection the server holds one of each, whatever the file's size.
//! - **Time**: [`HEAD_TIMEOUT`] for the whole request head, [`CHUNK_TIMEOUT`] for each chunk written.
//! - **Connections**: at most [`MAX_CONNECTIONS`] are served at once; beyond that, up to
//!   [`MAX_REFUSING`] more get a quick 503 and are closed, and any further are closed at once.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The whole request head (request line and headers) must arrive within this: a client that connects
/// and says nothing, or dribbles a byte at a time (slowloris), is closed after it. A local browser
/// sends its head in one packet, so 10 s is generous.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Each chunk of a response must be written within this (at least [`CHUNK_BYTES`] per 30 s, about
/// 2 KiB/s): a client that stops reading, or reads a byte now and then, is closed after it.
pub const CHUNK_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once. A browser opens at most 6 connections per host, so the demo's own
/// pages never come near this; it bounds threads, file handles and memory under abuse.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections beyond [`MAX_CONNECTIONS`] that are answered 503 (each on a short-lived thread that
/// reads the request head for at most [`REFUSE_TIMEOUT`], so that closing does not reset the
/// connection before the client reads the answer); past these the connection is closed unanswered.
///
/// Why refuse rather than leave them waiting in the accept queue: a waiting client gets no answer at
/// all until a slot frees (up to [`CHUNK_TIMEOUT`] per held chunk), which from a browser looks like a
/// hung page; a 503 says at once what happened. The cap is only reached under abuse.
pub const MAX_REFUSING: usize = 16;
/// How long a refused connection's request head is waited for before the 503 is written.
pub const REFUSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Bytes read from a file and written to the socket at a time.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// The longest request head accepted (431 beyond). Localhost cookies are shared by every local
/// server's port, so the head can be longer than a shop's own; 64 KiB is more than browsers send.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Stack of a connection thread: it holds no big buffer (the chunk lives on the heap).
const THREAD_STACK_BYTES: usize = 256 * 1024;

/// The server's limits; [`Limits::default`] holds the constants above (tests shorten them).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub head_timeout: Duration,
    pub chunk_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { head_timeout: HEAD_TIMEOUT, chunk_timeout: CHUNK_TIMEOUT, max_connections: MAX_CONNECTIONS }
    }
}

/// One mount: a URL prefix and its directory, canonicalised once (`None` when it does not exist: the
/// mount then serves nothing).
struct Mount {
    prefix: String,
    dir: Option<PathBuf>,
}

/// URL prefixes → directories, longest prefix first.
pub struct Mounts(Vec<Mount>);

impl Mounts {
    pub fn new(mounts: Vec<(String, PathBuf)>) -> Self {
        let mut mounts: Vec<Mount> = mounts
            .into_iter()
            .map(|(prefix, dir)| Mount { prefix, dir: std::fs::canonicalize(dir).ok().filter(|d| d.is_dir()) })
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.prefix.len()));
        Mounts(mounts)
    }

    /// The file a request path names, as (canonical file, canonical mount directory), or None when it
    /// names nothing servable. The path is percent-decoded, then every segment must be a plain name
    /// (no `..`, no `.`-leading names, no separators or NULs inside a segment); then links are
    /// resolved and the result must be a regular file inside the mount's own resolved directory.
    pub fn resolve(&self, request_path: &str) -> Option<(PathBuf, &Path)> {
        let path = percent_decode(request_path.split(['?', '#']).next()?)?;
        let mount = self.0.iter().find(|m| path.starts_with(m.prefix.as_str()))?;
        let dir = mount.dir.as_deref()?;
        let mut file = dir.to_path_buf();
        for segment in path[mount.prefix.len()..].split('/').filter(|s| !s.is_empty()) {
            if segment.starts_with('.') || segment.contains(['\\', '\0', ':']) {
                return None;
            }
            let mut parts = Path::new(segment).components();
            if !matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None)) {
                return None;
            }
            file.push(segment);
        }
        let mut file = inside(dir, &file)?;
        if file.is_dir() {
            file = inside(dir, &file.join("index.html"))?;
        }
        // `metadata` of a canonical path: no link left to follow; a FIFO, socket or device is refused.
        std::fs::metadata(&file).ok()?.is_file().then_some((file, dir))
    }
}

/// `path` with every link resolved, when that stays inside `dir` (itself canonical).
fn inside(dir: &Path, path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok().filter(|resolved| resolved.starts_with(dir))
}

/// Opens a resolved file for streaming: without following a last link, without blocking on a FIFO,
/// and (Linux) checking what was opened is still a regular file inside `dir`.
fn open_inside(file: &Path, dir: &Path) -> Option<(File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let opened =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(file).ok()?;
    let meta = opened.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let real = std::fs::read_link(format!("/proc/self/fd/{}", opened.as_raw_fd())).ok()?;
        if !real.starts_with(dir) {
            return None;
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
    Some((opened, meta.len()))
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub fn mime_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("ts" | "txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The Host values this server answers to: the addresses it binds (and their name), with its port;
/// without the port too when it is 80 (a browser leaves the default port out).
fn allowed_host(host: &str, port: u16) -> bool {
    let host = host.to_ascii_lowercase();
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|name| host == format!("{name}:{port}") || (port == 80 && host == *name))
}

/// Counts a connection in a slot for as long as it lives.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A slot when fewer than `max` are taken.
    fn take(counter: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Slot(Arc::clone(counter)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves forever on `listener` (bound to 127.0.0.1).
pub fn serve(listener: TcpListener, mounts: Arc<Mounts>, limits: Limits, log: bool) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let serving = Arc::new(AtomicUsize::new(0));
    let refusing = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file handles or memory: wait for connections to finish instead of spinning.
                if log {
                    eprintln!("accept: {err}");
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let thread = std::thread::Builder::new().stack_size(THREAD_STACK_BYTES);
        if let Some(slot) = Slot::take(&serving, limits.max_connections) {
            let mounts = Arc::clone(&mounts);
            let spawned = thread.spawn(move || {
                let _slot = slot;
                if let Err(err) = answer(stream, &mounts, port, &limits, log) {
                    if log {
                        eprintln!("connection error: {err}");
                    }
                }
            });
            if spawned.is_err() && log {
                eprintln!("no thread for a connection: closed");
            }
        } else if let Some(slot) = Slot::take(&refusing, MAX_REFUSING) {
            let _ = thread.spawn(move || {
                let _slot = slot;
                refuse(stream, limits.head_timeout.min(REFUSE_TIMEOUT));
            });
            if log {
                eprintln!("{} connections open: 503", limits.max_connections);
            }
        } else if log {
            eprintln!("{} connections open: closed unanswered", limits.max_connections + MAX_REFUSING);
        }
    }
}

/// A 503 for a connection over the cap, once its head is read (or `wait` has passed).
fn refuse(mut stream: TcpStream, wait: Duration) {
    let _ = read_head(&mut stream, wait);
    let _ = stream.set_write_timeout(Some(wait));
    let body = "too many connections, try again";
    let _ = write!(
        stream,
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.shutdown(Shutdown::Write);
}

/// Why a request head could not be read.
enum HeadError {
    /// Nothing more arrived before the deadline (or the client closed).
    Timeout,
    Closed,
    TooLong,
    Io(std::io::Error),
}

/// Reads bytes until the blank line ending a request head, within `timeout` for the whole head.
fn read_head(stream: &mut TcpStream, timeout: Duration) -> Result<Vec<u8>, HeadError> {
    let deadline = Instant::now() + timeout;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::Timeout);
        }
        stream.set_read_timeout(Some(left)).map_err(HeadError::Io)?;
        let n = match stream.read(&mut buf) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(HeadError::Timeout)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HeadError::Io(e)),
        };
        if let Some(end) = extend_head(&mut head, &buf[..n]) {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > MAX_HEAD_BYTES {
            return Err(HeadError::TooLong);
        }
    }
}

/// Appends `bytes` (one read) to `head`, which held no end yet; where the head ends, once it does.
/// Looks for the end from a few bytes back: it may straddle two reads.
pub(crate) fn extend_head(head: &mut Vec<u8>, bytes: &[u8]) -> Option<usize> {
    let from = head.len().saturating_sub(3);
    head.extend_from_slice(bytes);
    head_end(&head[from..]).map(|end| from + end)
}

/// Where the head ends (after its blank line: CRLF CRLF, or bare LF LF), if it does.
pub(crate) fn head_end(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len()).find_map(|i| {
        if bytes[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if bytes[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// What to answer: a small body, or a file streamed from disk.
pub enum Response {
    Small { status: u16, body: Vec<u8>, mime: &'static str, extra: String },
    File { file: File, len: u64, mime: &'static str },
}

impl Response {
    fn small(status: u16, body: &str) -> Response {
        Response::Small { status, body: body.as_bytes().to_vec(), mime: "text/plain", extra: String::new() }
    }

    pub fn status(&self) -> u16 {
        match self {
            Response::Small { status, .. } => *status,
            Response::File { .. } => 200,
        }
    }
}

fn answer(mut stream: TcpStream, mounts: &Mounts, port: u16, limits: &Limits, log: bool) -> std::io::Result<()> {
    let response = match read_head(&mut stream, limits.head_timeout) {
        Ok(head) => {
            let request = answer_head(&head, mounts, port);
            if log {
                eprintln!("{} {} {}", request.method, request.target, request.response.status());
            }
            write_response(&mut stream, request.method == "HEAD", request.response, limits.chunk_timeout)?;
            return Ok(());
        }
        Err(HeadError::Timeout) => Response::small(408, "request head not received in time"),
        Err(HeadError::TooLong) => Response::small(431, "request head too long"),
        Err(HeadError::Closed) => return Ok(()),
        Err(HeadError::Io(err)) => return Err(err),
    };
    if log {
        eprintln!("(no request) {}", response.status());
    }
    write_response(&mut stream, false, response, limits.chunk_timeout)
}

/// A request head, as read: its method and target (for the log; HEAD sends no body) and the response.
pub struct Request {
    pub method: String,
    pub target: String,
    pub response: Response,
}

/// The answer to a request head (its bytes up to the blank line): the request line's method and
/// target, the one Host header checked against `port`, then [`respond`]. Pure but for reading the
/// mounts' files, so the fuzz target (`fuzz/fuzz_targets/demo_request.rs`) runs it as the server does.
pub fn answer_head(head: &[u8], mounts: &Mounts, port: u16) -> Request {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or("");
    let hosts: Vec<&str> = lines
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.trim())
        .collect();
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let response = match hosts.as_slice() {
        [host] if allowed_host(host, port) => respond(method, target, mounts),
        [host] => Response::small(
            421,
            &format!(
                "this server answers to 127.0.0.1:{port} and localhost:{port}, not to Host {:?}",
                host.chars().take(100).collect::<String>()
            ),
        ),
        _ => Response::small(400, "one Host header required"),
    };
    Request { method: method.to_string(), target: target.to_string(), response }
}

/// (The head has been read.) Writes the response, each chunk within `chunk_timeout`.
fn write_response(
    stream: &mut TcpStream,
    head_only: bool,
    response: Response,
    chunk_timeout: Duration,
) -> std::io::Result<()> {
    let (status, len, mime, extra) = match &response {
        Response::Small { status, body, mime, extra } => (*status, body.len() as u64, *mime, extra.as_str()),
        Response::File { len, mime, .. } => (200, *len, *mime, ""),
    };
    let reason = match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let header = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {mime}\r\nContent-Length: {len}\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n{extra}\r\n"
    );
    write_within(stream, header.as_bytes(), chunk_timeout)?;
    if !head_only {
        match response {
            Response::Small { body, .. } => write_within(stream, &body, chunk_timeout)?,
            Response::File { file, len, .. } => {
                let mut chunk = vec![0u8; CHUNK_BYTES];
                // Exactly the announced length, even if the file grows meanwhile.
                let mut file = file.take(len);
                let mut sent = 0u64;
                while sent < len {
                    let n = match file.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    write_within(stream, &chunk[..n], chunk_timeout)?;
                    sent += n as u64;
                }
                if sent < len {
                    // The file shrank: the client sees a short body, not a wrong one.
                    return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "file shrank while sent"));
                }
            }
        }
    }
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// Writes all of `bytes` within `timeout` (however many writes it takes).
fn write_within(stream: &mut TcpStream, mut bytes: &[u8], timeout: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + timeout;
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "client too slow to read"));
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The response to one request (the Host has been checked).
pub fn respond(method: &str, target: &str, mounts: &Mounts) -> Response {
    if method != "GET" && method != "HEAD" {
        return Response::Small {
            status: 405,
            body: b"GET only".to_vec(),
            mime: "text/plain",
            extra: "Allow: GET, HEAD\r\n".into(),
        };
    }
    if target == "/" {
        return Response::Small {
            status: 302,
            body: Vec::new(),
            mime: "text/plain",
            extra: "Location: /demo/\r\n".into(),
        };
    }
    match mounts.resolve(target).and_then(|(file, dir)| Some((open_inside(&file, dir)?, file))) {
        Some(((file, len), path)) => Response::File { file, len, mime: mime_type(&path) },
        None => Response::small(404, "not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> (PathBuf, Mounts) {
        let base = std::env::temp_dir().join(format!("omakase-serve-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(base.join("www/demo")).unwrap();
        std::fs::create_dir_all(base.join("bundle")).unwrap();
        std::fs::write(base.join("www/demo/index.html"), "shop").unwrap();
        std::fs::write(base.join("bundle/manifest.json"), "{}").unwrap();
        std::fs::write(base.join("secret.txt"), "secret").unwrap();
        let base = std::fs::canonicalize(base).unwrap();
        let mounts = Mounts::new(vec![("/".into(), base.join("www")), ("/bundle/".into(), base.join("bundle"))]);
        (base, mounts)
    }

    fn resolved(mounts: &Mounts, path: &str) -> Option<PathBuf> {
        mounts.resolve(path).map(|(file, _)| file)
    }

    #[test]
    fn serves_files_inside_their_mount() {
        let (base, mounts) = fixture("inside");
        assert_eq!(resolved(&mounts, "/bundle/manifest.json"), Some(base.join("bundle/manifest.json")));
        assert_eq!(resolved(&mounts, "/demo/"), Some(base.join("www/demo/index.html")));
        assert_eq!(resolved(&mounts, "/demo/index.html?x=1"), Some(base.join("www/demo/index.html")));
        assert_eq!(resolved(&mounts, "/demo/missing.html"), None);
    }

    #[test]
    fn refuses_directory_traversal() {
        let (_base, mounts) = fixture("traversal");
        for path in [
            "/../secret.txt",
            "/bundle/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/demo/%2E%2E/%2E%2E/secret.txt",
            "/bundle/..%2f..%2fsecret.txt",
            "/bundle/..%5c..%5csecret.txt",
            "/%2fetc%2fpasswd",
            "/bundle/%00",
            "/bundle/%zz",
        ] {
            assert_eq!(resolved(&mounts, path), None, "{path}");
        }
        assert_eq!(respond("GET", "/bundle/../../secret.txt", &mounts).status(), 404);
        assert_eq!(respond("POST", "/demo/", &mounts).status(), 405);
    }

    #[test]
    fn links_are_followed_only_inside_their_mount() {
        let (base, mounts) = fixture("links");
        let link = |target: &Path, name: &str| {
            let _ = std::fs::remove_file(base.join(name));
            std::os::unix::fs::symlink(target, base.join(name)).unwrap();
        };
        link(&base.join("secret.txt"), "bundle/leak.png");
        link(&base, "bundle/up");
        link(Path::new("/etc"), "bundle/etc");
        link(&base.join("bundle/manifest.json"), "bundle/alias.json");
        for path in ["/bundle/leak.png", "/bundle/up/secret.txt", "/bundle/etc/passwd", "/bundle/etc"] {
            assert_eq!(resolved(&mounts, path), None, "{path}");
            assert_eq!(respond("GET", path, &mounts).status(), 404, "{path}");
        }
        // A link that stays inside its mount is served (as the file it names).
        assert_eq!(resolved(&mounts, "/bundle/alias.json"), Some(base.join("bundle/manifest.json")));
        assert_eq!(respond("GET", "/bundle/alias.json", &mounts).status(), 200);
    }

    #[test]
    fn only_its_own_addresses_are_hosts() {
        for host in ["127.0.0.1:8080", "localhost:8080", "LOCALHOST:8080", "[::1]:8080"] {
            assert!(allowed_host(host, 8080), "{host}");
        }
        for host in ["127.0.0.1:8081", "evil.example:8080", "127.0.0.1", "localhost", "", "127.0.0.1:8080.evil"] {
            assert!(!allowed_host(host, 8080), "{host}");
        }
        assert!(allowed_host("localhost", 80));
    }

    #[test]
    fn finds_the_end_of_a_head() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
        // The blank line straddling two reads.
        let mut head = Vec::new();
        assert_eq!(extend_head(&mut head, b"GET / HTTP/1.1\r\nHost: a\r"), None);
        assert_eq!(extend_head(&mut head, b"\n\r\nrest"), Some(27));
    }

    #[test]
    fn names_the_wasm_mime_type() {
        assert_eq!(mime_type(Path::new("pkg/omakase_bg.wasm")), "application/wasm");
        assert_eq!(mime_type(Path::new("a/omakase.js")), "text/javascript; charset=utf-8");
        assert_eq!(mime_type(Path::new("images/1.JPG")), "image/jpeg");
    }
}

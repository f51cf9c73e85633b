//! Issue 14, point 5: `omakase demo`'s server against hostile clients and links. Each test starts the
//! real server (`omakase demo --model RUN --bundle B --port 0`, on a tiny dataset, nothing trained or
//! exported) and talks raw HTTP to it: links out of a served folder, a foreign Host, an idle client, more
//! clients than the cap, a large file served in chunks. Also: a dataset with a bad line (which `train`
//! and `export` accept) starts the demo.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A file outside every served folder.
const SECRET: &str = "TOP-SECRET-CONTENT";

/// A demo server on a fresh fixture; killed when dropped.
struct Demo {
    child: Child,
    port: u16,
    base: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Root (www/, pkg/), dataset (with images/ holding hostile links), an empty RUN, a bundle with one
/// large file, and a secret file beside them.
fn fixture(name: &str) -> PathBuf {
    let base = std::env::temp_dir().join(format!("omakase-hostile-demo-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    for dir in ["root/www/demo", "root/pkg", "data/images", "run", "bundle", "secret/etc"] {
        std::fs::create_dir_all(base.join(dir)).unwrap();
    }
    std::fs::write(base.join("root/www/demo/index.html"), "<p>shop</p>").unwrap();
    std::fs::write(base.join("root/pkg/omakase_bg.wasm"), b"\0asm").unwrap();
    // Line 2 is not JSON and line 3 repeats an id: `train` and `export` skip both with a warning.
    std::fs::write(
        base.join("data/items.jsonl"),
        "{\"item_id\":\"a\",\"title\":\"Alpha\",\"year\":1999,\"image\":\"images/a.png\"}\n\
         {not json\n\
         {\"item_id\":\"a\",\"title\":\"Alpha again\"}\n\
         {\"item_id\":\"b\",\"description\":\"Beta\"}\n",
    )
    .unwrap();
    std::fs::write(base.join("data/interactions.csv"), "user_id,item_id,timestamp\nu,a,1\nu,b,2\n").unwrap();
    std::fs::write(base.join("data/images/a.png"), b"png bytes").unwrap();
    std::fs::write(base.join("secret/passwd"), SECRET).unwrap();
    std::fs::write(base.join("secret/etc/shadow"), SECRET).unwrap();
    std::os::unix::fs::symlink(base.join("secret/passwd"), base.join("data/images/leak.png")).unwrap();
    std::os::unix::fs::symlink(base.join("secret/etc"), base.join("data/images/etc")).unwrap();
    std::os::unix::fs::symlink("../../secret/passwd", base.join("bundle/relative-leak.json")).unwrap();
    std::fs::write(base.join("bundle/manifest.json"), "{}").unwrap();
    std::fs::write(base.join("bundle/big.bin"), big_file()).unwrap();
    base
}

/// 3 MiB + 17 bytes of a fixed pseudo-random sequence (not a multiple of any chunk size).
fn big_file() -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..3 * 1024 * 1024 + 17)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn start(name: &str, extra: &[&str]) -> Demo {
    let base = fixture(name);
    let p = |sub: &str| base.join(sub).into_os_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_omakase"))
        .arg("demo")
        .args(["--data".into(), p("data"), "--model".into(), p("run"), "--bundle".into(), p("bundle")])
        .args(["--root".into(), p("root"), "--out".into(), p("out"), "--port".into(), "0".into()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let port = line.split("127.0.0.1:").nth(1).and_then(|rest| rest.split('/').next()).and_then(|p| p.parse().ok());
    let Some(port) = port else {
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        let _ = child.kill();
        panic!("demo did not start: {line:?}\n{err}");
    };
    Demo { child, port, base }
}

/// (status, head, body) of one request sent as `raw`.
fn exchange(port: u16, raw: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    split_response(&response)
}

fn split_response(response: &[u8]) -> (u16, String, Vec<u8>) {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap();
    (status, head, response[end..].to_vec())
}

fn get(demo: &Demo, path: &str) -> (u16, String, Vec<u8>) {
    exchange(demo.port, &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", demo.port))
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn links_out_of_a_served_folder_are_not_followed() {
    let demo = start("links", &[]);
    assert_eq!(get(&demo, "/bundle/images/a.png").2, b"png bytes");
    for path in [
        "/bundle/images/leak.png",
        "/bundle/images/etc/shadow",
        "/bundle/images/etc/",
        "/bundle/images/etc",
        "/bundle/relative-leak.json",
    ] {
        let (status, _, body) = get(&demo, path);
        assert_eq!(status, 404, "{path}");
        assert!(!contains(&body, SECRET), "{path} leaked the secret");
    }
    // Traversal is still refused.
    let (status, _, body) = get(&demo, "/bundle/images/..%2f..%2fsecret/passwd");
    assert_eq!(status, 404);
    assert!(!contains(&body, SECRET));
}

#[test]
fn a_foreign_host_is_refused() {
    let demo = start("host", &[]);
    let port = demo.port;
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")] {
        let (status, _, body) = exchange(port, &format!("GET /bundle/manifest.json HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        assert_eq!((status, body.as_slice()), (200, b"{}".as_slice()), "{host}");
    }
    for host in [format!("evil.example:{port}"), format!("127.0.0.1:{}", port.wrapping_add(1)), "evil.example".into()] {
        let (status, _, body) = exchange(port, &format!("GET /bundle/manifest.json HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        assert_eq!(status, 421, "{host}");
        assert_ne!(body, b"{}", "{host}");
    }
    let (status, _, _) = exchange(port, "GET /bundle/manifest.json HTTP/1.0\r\n\r\n");
    assert_eq!(status, 400, "no Host");
    let (status, _, _) = exchange(port, &format!("GET / HTTP/1.1\r\nHost: a\r\nHost: 127.0.0.1:{port}\r\n\r\n"));
    assert_eq!(status, 400, "two Hosts");
}

#[test]
fn an_idle_client_is_closed() {
    let demo = start("idle", &["--head-timeout-ms", "300"]);
    let mut idle = TcpStream::connect(("127.0.0.1", demo.port)).unwrap();
    // Generous: the server closes after 300 ms; this only keeps a broken server from hanging the test.
    idle.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut response = Vec::new();
    idle.read_to_end(&mut response).expect("the server closes the idle connection");
    assert_eq!(split_response(&response).0, 408);
    // A client that dribbles its head a byte at a time is cut off too.
    let mut slow = TcpStream::connect(("127.0.0.1", demo.port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut closed = false;
    let started = Instant::now();
    for byte in b"GET /demo/ HTTP/1.1\r\nX-Slow: ".iter().cycle() {
        let mut buf = [0u8; 256];
        match slow.read(&mut buf) {
            Ok(_) => {
                closed = true;
                break;
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
        if slow.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "slow client never closed");
    }
    assert!(closed);
    // The server still answers.
    assert_eq!(get(&demo, "/bundle/manifest.json").0, 200);
}

#[test]
fn connections_over_the_cap_are_refused_and_others_served_after() {
    let demo = start("cap", &["--max-connections", "4"]);
    let held: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(("127.0.0.1", demo.port)).unwrap()).collect();
    let (status, _, body) = get(&demo, "/bundle/manifest.json");
    assert_eq!(status, 503);
    assert_ne!(body, b"{}");
    drop(held);
    // The slots free once the server sees the held connections close.
    let started = Instant::now();
    loop {
        match get(&demo, "/bundle/manifest.json") {
            (200, _, body) => {
                assert_eq!(body, b"{}");
                break;
            }
            (503, _, _) if started.elapsed() < Duration::from_secs(30) => std::thread::sleep(Duration::from_millis(20)),
            (status, head, _) => panic!("{status}: {head}"),
        }
    }
}

#[test]
fn a_large_file_is_served_intact() {
    let demo = start("large", &[]);
    let (status, head, body) = get(&demo, "/bundle/big.bin");
    assert_eq!(status, 200);
    let expected = big_file();
    assert!(head.contains(&format!("Content-Length: {}\r\n", expected.len())), "{head}");
    assert_eq!(body.len(), expected.len());
    assert_eq!(Sha256::digest(&body), Sha256::digest(&expected));
    // HEAD: the length, no body.
    let (status, head, body) =
        exchange(demo.port, &format!("HEAD /bundle/big.bin HTTP/1.1\r\nHost: localhost:{}\r\n\r\n", demo.port));
    assert_eq!(status, 200);
    assert!(head.contains(&format!("Content-Length: {}\r\n", expected.len())), "{head}");
    assert!(body.is_empty());
}

#[test]
fn a_dataset_train_accepts_starts_the_demo() {
    let demo = start("dataset", &[]);
    let (status, _, body) = get(&demo, "/site/catalog.json");
    assert_eq!(status, 200);
    let catalog: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let ids: Vec<&str> = catalog.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    // The bad line and the repeated id are skipped, as train and export skip them.
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(catalog[0]["title"], "Alpha");
    assert_eq!(catalog[0]["year"], 1999);
    assert_eq!(catalog[0]["image"], "images/a.png");
    assert_eq!(catalog[1]["title"], serde_json::Value::Null);
    assert_eq!(catalog[1]["description"], "Beta");
}

//! `omakase demo`'s static file server (`src/bin/omakase/demo/serve.rs`, compiled in here as it is in
//! the binary) on arbitrary request heads: the input is what a client sends.
//! - `extend_head`/`head_end`: the input arriving in reads of 1 to 16 bytes must end where the whole
//!   does, and an end is always a blank line (CRLF CRLF or LF LF) with none before it;
//! - `percent_decode` of the request line's target;
//! - `answer_head` (request line, the one Host header, then `respond`) with port 8080, and `respond`
//!   for GET of the first line as a target, bypassing the Host check, against mounts made once in a
//!   temporary directory: files, an `index.html`, links inside a mount, links out of it (to a secret
//!   file beside the mounts, to its parent, to `/etc`), a FIFO, a hidden file, and a mount whose
//!   directory does not exist.
//!
//! `OMAKASE_FUZZ_REPORT=1` prints each request's status (to check what the seeds reach).
//!
//! Fails on a panic, or on a 200 whose opened file is not inside the canonical directory of the mount
//! its path names (or is the secret), or on a 200 without GET/HEAD and exactly one allowed Host.
#![no_main]

use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/bin/omakase/demo/serve.rs"]
mod serve;

use serve::{answer_head, extend_head, head_end, percent_decode, respond, Mounts, Response};

const PORT: u16 = 8080;

struct Fixture {
    mounts: Mounts,
    /// (URL prefix, canonical directory), longest prefix first, as the server orders them.
    dirs: Vec<(&'static str, Option<PathBuf>)>,
    /// (device, inode) of the file outside every mount.
    secret: (u64, u64),
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("omakase-fuzz-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        for dir in ["www/demo", "www/pkg", "bundle", "data/images"] {
            std::fs::create_dir_all(base.join(dir)).unwrap();
        }
        let base = std::fs::canonicalize(&base).unwrap();
        let files = [
            ("secret.txt", "TOP-SECRET"),
            ("www/index.html", "index"),
            ("www/demo/index.html", "shop"),
            ("www/demo/app.js", "js"),
            ("www/pkg/omakase_bg.wasm", "\0asm"),
            ("www/.hidden", "hidden"),
            ("bundle/manifest.json", "{}"),
            ("data/images/1.jpg", "jpeg"),
        ];
        for (path, text) in files {
            std::fs::write(base.join(path), text).unwrap();
        }
        let links: [(&Path, &str); 8] = [
            (Path::new("../index.html"), "www/demo/inside.html"),
            (Path::new("manifest.json"), "bundle/alias.json"),
            (&base.join("secret.txt"), "www/leak.txt"),
            (Path::new("../secret.txt"), "bundle/leak.png"),
            (&base, "www/up"),
            (Path::new(".."), "bundle/parent"),
            (Path::new("/etc"), "data/images/etc"),
            (&base.join("www"), "data/www"),
        ];
        for (target, link) in links {
            symlink(target, base.join(link)).unwrap();
        }
        let fifo = std::ffi::CString::new(base.join("www/demo/fifo").into_os_string().into_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0, "mkfifo");

        let prefixes = [("/", "www"), ("/bundle/", "bundle"), ("/data/", "data"), ("/missing/", "missing")];
        let mounts = Mounts::new(prefixes.iter().map(|&(p, d)| (p.to_string(), base.join(d))).collect());
        let mut dirs: Vec<(&'static str, Option<PathBuf>)> =
            prefixes.iter().map(|&(p, d)| (p, std::fs::canonicalize(base.join(d)).ok())).collect();
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let meta = std::fs::metadata(base.join("secret.txt")).unwrap();
        Fixture { mounts, dirs, secret: (meta.dev(), meta.ino()) }
    })
}

/// Checks a 200: the opened file is a regular file, not the secret, inside the canonical directory
/// of the mount that `target` (percent-decoded, without query) names.
fn check_served(fixture: &Fixture, target: &str, response: &Response) {
    let Response::File { file, .. } = response else { return };
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap();
    let meta = file.metadata().unwrap();
    assert!(meta.is_file(), "200 for {target:?}: {real:?} is not a regular file");
    assert_ne!((meta.dev(), meta.ino()), fixture.secret, "200 for {target:?} serves the secret ({real:?})");
    let path = target.split(['?', '#']).next().and_then(percent_decode).expect("a 200 for an undecodable target");
    let (prefix, dir) = fixture.dirs.iter().find(|(p, _)| path.starts_with(p)).expect("a 200 outside every mount");
    let dir = dir.as_deref().unwrap_or_else(|| panic!("200 for {target:?} from the missing mount {prefix}"));
    assert!(real.starts_with(dir), "200 for {target:?} serves {real:?}, outside {dir:?} (mount {prefix})");
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();

    // The end of the head, whole and as it arrives in reads of 1..=16 bytes (sizes from the data).
    let end = head_end(data);
    if let Some(end) = end {
        assert!(data[..end].ends_with(b"\r\n\r\n") || data[..end].ends_with(b"\n\n"), "end {end}");
        assert_eq!(head_end(&data[..end - 1]), None, "an earlier end than {end}");
    }
    let mut head = Vec::new();
    let mut rest = data;
    let mut found = None;
    while !rest.is_empty() && found.is_none() {
        let n = (1 + (rest[0] % 16) as usize).min(rest.len());
        found = extend_head(&mut head, &rest[..n]);
        rest = &rest[n..];
    }
    assert_eq!(found, end, "the end found read by read differs from the whole head's");
    let head = &data[..end.unwrap_or(data.len())];

    // The request as the server answers it.
    let request = answer_head(head, &fixture.mounts, PORT);
    let status = request.response.status();
    if std::env::var_os("OMAKASE_FUZZ_REPORT").is_some() {
        eprintln!("{} {:?} -> {status}", request.method, request.target);
    }
    assert!([200, 302, 400, 404, 405, 421].contains(&status), "status {status}");
    if status == 200 {
        assert!(request.method == "GET" || request.method == "HEAD", "200 for {:?}", request.method);
        let text = String::from_utf8_lossy(head);
        let hosts = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case("host"));
        assert_eq!(hosts.count(), 1, "200 without exactly one Host");
    }
    check_served(fixture, &request.target, &request.response);
    if let Some(decoded) = percent_decode(&request.target) {
        assert!(decoded.len() <= request.target.len());
        if !request.target.contains('%') {
            assert_eq!(decoded, request.target);
        }
    }

    // Any first line as the target of a GET, whatever the Host.
    let line = String::from_utf8_lossy(data.split(|&b| b == b'\n').next().unwrap_or_default());
    let target = line.trim_end_matches('\r');
    let response = respond("GET", target, &fixture.mounts);
    check_served(fixture, target, &response);
});

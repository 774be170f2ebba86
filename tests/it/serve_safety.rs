//! `npr serve` left running (issue 27): other web sites get nothing, slow clients delay
//! nobody and lose their connection, Ctrl-C ends the server whatever clients do, and every
//! error is JSON. The bytes on the wire are written by hand, as a hostile client would.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::serve::{image, Server};

fn png() -> Vec<u8> {
    std::fs::read(image("nearest_x2/1_fake/00000_landscape.png")).unwrap()
}

/// (status, JSON body) of a request with exactly `headers`.
fn send(
    server: &Server,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let (status, bytes) = server.raw_with(method, target, headers, body);
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{method} {target}: {status}, not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, json)
}

#[test]
fn foreign_hosts_and_cross_site_requests_are_refused_on_every_route() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.png"), png()).unwrap();
    let server = Server::start(&[
        "--root",
        dir.path().to_str().unwrap(),
        "--allow-host",
        "box.lan",
    ]);
    let host = format!("127.0.0.1:{}", server.port);
    let body = png();
    let routes: [(&str, &str, &[u8]); 8] = [
        ("GET", "/", b""),
        ("GET", "/app.js", b""),
        ("GET", "/style.css", b""),
        ("GET", "/api/health", b""),
        ("GET", "/api/folder", b""),
        ("GET", "/api/folder/predict?path=a.png&maps=true", b""),
        ("POST", "/api/predict?maps=true", &body),
        ("GET", "/nope", b""),
    ];
    let evil_host = format!("evil.example:{}", server.port);
    let refused: [(&str, Vec<(&str, &str)>); 3] = [
        (
            "a rebound DNS name",
            vec![("Host", &evil_host), ("X-NPR", "1")],
        ),
        (
            "a foreign Origin",
            vec![
                ("Host", &host),
                ("X-NPR", "1"),
                ("Origin", "http://evil.example"),
            ],
        ),
        (
            "Sec-Fetch-Site",
            vec![
                ("Host", &host),
                ("X-NPR", "1"),
                ("Sec-Fetch-Site", "cross-site"),
            ],
        ),
    ];
    for (method, target, body) in routes {
        for (what, headers) in &refused {
            let (status, got) = send(&server, method, target, headers, body);
            assert_eq!(status, 403, "{what}: {method} {target}: {got}");
            assert!(got["error"].is_string(), "{got}");
        }
    }
    // A plain cross-site form POST (text/plain), with and without the headers a modern
    // browser adds: refused before the body is looked at.
    for headers in [
        vec![
            ("Host", host.as_str()),
            ("Content-Type", "text/plain"),
            ("Origin", "http://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        vec![("Host", host.as_str()), ("Content-Type", "text/plain")],
    ] {
        let (status, got) = send(&server, "POST", "/api/predict", &headers, &body);
        assert_eq!(status, 403, "{headers:?}: {got}");
    }
    // The page's own requests pass; so does a name given with --allow-host.
    let page = [
        ("Host", host.as_str()),
        ("X-NPR", "1"),
        ("Origin", &*format!("http://{host}")),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    assert_eq!(send(&server, "POST", "/api/predict", &page, &body).0, 200);
    let lan = format!("box.lan:{}", server.port);
    assert_eq!(
        send(
            &server,
            "GET",
            "/api/health",
            &[("Host", &lan), ("X-NPR", "1")],
            b""
        )
        .0,
        200
    );
    // Errors are JSON on every status: a bad query (400), a wrong method (405).
    for (method, target, want) in [
        ("POST", "/api/predict?maps=yes", 400),
        ("GET", "/api/folder/predict?path=a.png&maps=yes", 400),
        ("GET", "/api/folder/predict", 400),
        ("GET", "/api/predict", 405),
        ("POST", "/api/health", 405),
    ] {
        let (status, got) = server.request(method, target, &body);
        assert_eq!(status, want, "{method} {target}: {got}");
        assert!(got["error"].is_string(), "{got}");
    }
    assert_eq!(server.stop(), Some(130));
}

/// A connection that declared a 100 kB upload and sends a byte a second.
fn slow_upload(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-NPR: 1\r\nContent-Length: 100000\r\n\r\n").unwrap();
    s.write_all(b"\x89").unwrap();
    let mut writer = s.try_clone().unwrap();
    std::thread::spawn(move || {
        while writer.write_all(b"P").is_ok() {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    s
}

/// Reads until the server closes; `None` when it did not within `limit`.
fn until_closed(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).ok().map(|_| got)
}

#[test]
fn slow_clients_delay_nobody_and_lose_their_connection() {
    let server = Server::start(&["--header-timeout", "1", "--body-timeout", "3"]);
    let body = png();
    assert_eq!(server.request("POST", "/api/predict", &body).0, 200); // warm
    let mut slow: Vec<TcpStream> = (0..4).map(|_| slow_upload(server.port)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let (status, got) = server.request("POST", "/api/predict", &body);
    assert_eq!(status, 200, "{got}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?} behind four slow uploads",
        start.elapsed()
    );
    // The slow uploads end with 408 at the body deadline.
    for s in &mut slow {
        let answer =
            until_closed(s, Duration::from_secs(20)).expect("the slow upload was never closed");
        assert!(
            answer.starts_with(b"HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    // A client that sends half a header, and one that sits idle after a request, are closed.
    let mut half = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(half, "GET /api/health HTTP/1.1\r\nHost: 127.0").unwrap();
    assert!(
        until_closed(&mut half, Duration::from_secs(20)).is_some(),
        "half a header: still open"
    );
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        idle,
        "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-NPR: 1\r\n\r\n"
    )
    .unwrap();
    let answer = until_closed(&mut idle, Duration::from_secs(20))
        .expect("an idle keep-alive connection: still open");
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Ctrl-C with slow uploads open: the server still ends, promptly.
    let _slow: Vec<TcpStream> = (0..4).map(|_| slow_upload(server.port)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    assert_eq!(server.stop(), Some(130));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "SIGINT took {:?}",
        start.elapsed()
    );
}

#[test]
fn connections_are_bounded_and_idle_ones_make_room() {
    let server = Server::start(&["--max-connections", "2", "--header-timeout", "1"]);
    // Two clients that connect and send nothing hold both connections...
    let _idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // ...so a third is accepted only once the header timeout has closed one of them.
    let start = Instant::now();
    let (status, got) = server.request("GET", "/api/health", b"");
    assert_eq!(status, 200, "{got}");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(20),
        "answered after {waited:?}: the limit did not hold, or idle connections were not closed"
    );
    assert_eq!(server.stop(), Some(130));
}

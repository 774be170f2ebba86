//! `npr serve` at the HTTP level, and `npr predict --maps`: a tiny trained checkpoint, a
//! real server process on a free local port, a plain TCP client (no HTTP library, so the
//! bytes on the wire are the ones a script would send).
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::cli::{npr, ok, tiny_synth};
use crate::common::npr_bin;

/// A tiny 4-scale attention model (the four weights the page shows), trained one epoch.
pub(crate) fn checkpoint() -> &'static Path {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, ckpt) = RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = tiny_synth().join("synth");
        let yaml = format!(
            "name: tiny_serve\nmodel: {{ backbone: resnet18, fusion: attention, scales: [0.25, 0.5, 0.75, 1.0] }}\n\
             data: {{ dataroot: {d}, load_size: 32, crop_size: 24, workers: 2 }}\n\
             train: {{ epochs: 1, batch_size: 8, log_every: 3, seed: 5 }}\n\
             test: {{ batch_size: 16, sets: [ {{ name: synth, dataroot: {d}/test, resize: false, crop: none }} ] }}\n",
            d = data.display()
        );
        let config = dir.path().join("tiny_serve.yaml");
        std::fs::write(&config, yaml).unwrap();
        let run = dir.path().join("run");
        let (cfg, out) = (config.to_str().unwrap(), run.to_str().unwrap());
        ok(&npr(&["train", "--config", cfg, "--out", out, "--device", "cpu"], &[]));
        (dir, run.join("best.safetensors"))
    });
    ckpt
}

/// A running `npr serve`; stopped with SIGINT when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Server {
    pub(crate) fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(npr_bin())
            .args([
                "serve",
                "--checkpoint",
                checkpoint().to_str().unwrap(),
                "--addr",
                "127.0.0.1:0",
                "--device",
                "cpu",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting npr serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("no address in {line:?}; stderr: {err}")
            });
        Server { child, port }
    }

    /// Sends one request; (status, JSON body).
    pub(crate) fn request(&self, method: &str, target: &str, body: &[u8]) -> (u16, Value) {
        let (status, bytes) = self.raw(method, target, body);
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{method} {target}: {status} with a non-JSON body ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, json)
    }

    /// Sends one request as the page would (its Host, the API header); (status, body).
    pub(crate) fn raw(&self, method: &str, target: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let host = format!("127.0.0.1:{}", self.port);
        self.raw_with(method, target, &[("Host", &host), ("X-NPR", "1")], body)
    }

    /// Sends one request with exactly these headers (plus Connection and Content-Length).
    pub(crate) fn raw_with(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let lines: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        write!(
            s,
            "{method} {target} HTTP/1.1\r\n{lines}Connection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        let _ = s.write_all(body); // a refused request may be answered before its body is read
        let mut response = Vec::new();
        s.read_to_end(&mut response).unwrap();
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP response");
        let head = String::from_utf8_lossy(&response[..split]);
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, response[split + 4..].to_vec())
    }

    /// SIGINT, then the exit code.
    pub(crate) fn stop(mut self) -> Option<i32> {
        let code = self.interrupt();
        std::mem::forget(self);
        code
    }

    fn interrupt(&mut self) -> Option<i32> {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.child.wait().unwrap().code()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.interrupt();
    }
}

pub(crate) fn image(rel: &str) -> PathBuf {
    tiny_synth().join("synth/test").join(rel)
}

/// What `npr predict --json` says of `path`.
pub(crate) fn predict_json(path: &Path) -> Value {
    let out = ok(&npr(
        &[
            "predict",
            "--checkpoint",
            checkpoint().to_str().unwrap(),
            "--device",
            "cpu",
            "--json",
            path.to_str().unwrap(),
        ],
        &[],
    ));
    serde_json::from_str(out.lines().next().unwrap()).unwrap()
}

pub(crate) fn close(a: &Value, b: &Value, key: &str) {
    let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
    assert!((x - y).abs() < 1e-6, "{key}: {x} vs {y}");
}

/// A JPEG copy of a test image (the loader's own encoder).
fn jpeg_of(png: &Path, dir: &Path) -> PathBuf {
    let img = npr::data::decode_file(png, &npr::data::DecodeLimits::default()).unwrap();
    let path = dir.join("copy.jpg");
    std::fs::write(&path, npr::data::encode_jpeg(&img, 90).unwrap()).unwrap();
    path
}

/// A PNG whose header claims `width`×`height` pixels (nothing after the header).
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    png.extend(width.to_be_bytes());
    png.extend(height.to_be_bytes());
    png.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]); // depth 8, RGB, CRC (not checked first)
    png
}

#[test]
fn health_predict_and_rejections() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&[]);
    let (status, health) = server.request("GET", "/api/health", b"");
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["scales"].as_array().unwrap().len(), 4);

    // A PNG and a JPEG score exactly as `npr predict` scores them.
    let png = image("nearest_x2/1_fake/00000_landscape.png");
    for path in [png.clone(), jpeg_of(&png, dir.path())] {
        let (status, got) = server.request("POST", "/api/predict", &std::fs::read(&path).unwrap());
        assert_eq!(status, 200, "{got}");
        let want = predict_json(&path);
        close(&got, &want, "score");
        close(&got, &want, "logit");
        for (a, b) in got["weights"]
            .as_array()
            .unwrap()
            .iter()
            .zip(want["weights"].as_array().unwrap())
        {
            assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-6);
        }
        assert_eq!(got["pred"], want["pred"]);
    }

    // With maps: one PNG per scale (the identity labelled as such) and the fused map.
    let (status, got) = server.request(
        "POST",
        "/api/predict?maps=true&name=x.png",
        &std::fs::read(&png).unwrap(),
    );
    assert_eq!(status, 200);
    assert_eq!(got["path"], "x.png");
    let maps = got["maps"].as_object().unwrap();
    let keys: Vec<&str> = maps.keys().map(String::as_str).collect();
    assert_eq!(keys, ["fused", "identity", "npr0.25", "npr0.5", "npr0.75"]);
    assert!(maps
        .values()
        .all(|v| v.as_str().unwrap().starts_with("data:image/png;base64,")));
    assert!(got["stretch"]["residual_limit"].as_f64().unwrap() > 0.0);

    // Rejected with a 4xx that says why.
    let cases: [(&[u8], u16, &str); 7] = [
        (b"hello, I am a text file\n", 415, "not_image"),
        (b"", 415, "empty"),
        // 200 MP: over the loader's 100 MP.
        (&png_header(20000, 10000), 413, "over the limit"),
        // This checkpoint scores at full size: one pixel row over what a forward pass holds.
        (&png_header(4097, 4096), 413, "over the limit"),
        // 4096² is within it, but a 33-byte file that decodes to 48 MiB is cheap to send:
        // such uploads get 32 MiB at most.
        (&png_header(4096, 4096), 413, "its 33 bytes"),
        // 1024² is within that: this header-only file then fails as a damaged image.
        (&png_header(1024, 1024), 422, "corrupt"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", 422, "corrupt"),
    ];
    for (body, want, needle) in cases {
        let (status, got) = server.request("POST", "/api/predict", body);
        assert_eq!(status, want, "{got}");
        let message = got["error"].as_str().unwrap();
        assert!(message.contains(needle), "{message}");
    }
    // A declared body beyond any image within the limits is refused before it is read.
    let huge = format!(
        "{}",
        npr::data::DecodeLimits::default().max_file_bytes() + 1
    );
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(s, "POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-NPR: 1\r\nConnection: close\r\nContent-Length: {huge}\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");

    // No folder mode without --root; unknown routes are JSON 404s.
    assert_eq!(server.request("GET", "/api/folder", b"").0, 404);
    assert_eq!(server.request("GET", "/nope", b"").0, 404);
    // The page and its assets come from the binary.
    let (status, page) = server.raw("GET", "/", b"");
    assert_eq!(status, 200);
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("/app.js") && !page.contains("http://") && !page.contains("https://"));
    assert_eq!(server.raw("GET", "/app.js", b"").0, 200);

    // Ctrl-C: a clean stop with the exit code of an interrupted command.
    assert_eq!(server.stop(), Some(130));
}

#[test]
fn folder_mode_stays_below_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("gen/1_fake")).unwrap();
    std::fs::create_dir_all(root.join("gen/0_real")).unwrap();
    let fake = image("nearest_x2/1_fake/00000_landscape.png");
    std::fs::copy(&fake, root.join("gen/1_fake/a.png")).unwrap();
    std::fs::copy(
        image("nearest_x2/0_real/00000_landscape.png"),
        root.join("gen/0_real/b.png"),
    )
    .unwrap();
    let secret = dir.path().join("secret.png");
    std::fs::copy(&fake, &secret).unwrap();
    std::os::unix::fs::symlink(&secret, root.join("gen/escape.png")).unwrap();
    std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();

    let server = Server::start(&["--root", root.to_str().unwrap()]);
    let (status, listing) = server.request("GET", "/api/folder", b"");
    assert_eq!(status, 200);
    let listed: Vec<(String, Value)> = listing["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["path"].as_str().unwrap().to_string(), i["label"].clone()))
        .collect();
    assert_eq!(
        listed,
        [
            ("gen/0_real/b.png".to_string(), Value::from("real")),
            ("gen/1_fake/a.png".to_string(), Value::from("fake"))
        ],
        "links leading out are not listed"
    );

    let (status, got) = server.request(
        "GET",
        "/api/folder/predict?path=gen/1_fake/a.png&maps=true",
        b"",
    );
    assert_eq!(status, 200, "{got}");
    close(&got, &predict_json(&fake), "score");
    assert_eq!(got["maps"].as_object().unwrap().len(), 5);

    for (path, want) in [
        ("../secret.png", 403),
        ("gen/../../secret.png", 403),
        ("%2e%2e/secret.png", 403),
        ("gen/%2E%2E/%2E%2E/secret.png", 403),
        (&format!("{}", secret.display()), 403),
        ("%2Fetc%2Fpasswd", 403),
        ("gen/escape.png", 403),
        ("up/secret.png", 403),
        ("gen/missing.png", 404),
        ("gen", 404),
    ] {
        let (status, got) = server.request("GET", &format!("/api/folder/predict?path={path}"), b"");
        assert_eq!(status, want, "{path}: {got}");
        assert!(got["error"].is_string());
    }
    // A query without the path is refused too (axum: 400).
    assert_eq!(server.raw("GET", "/api/folder/predict", b"").0, 400);
}

#[test]
fn fifty_concurrent_requests_are_all_answered_with_the_same_score() {
    let server = Server::start(&["--batch-size", "8"]);
    let body = std::fs::read(image("nearest_x2/1_fake/00001_objects.png")).unwrap();
    let (status, alone) = server.request("POST", "/api/predict", &body);
    assert_eq!(status, 200);
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let (server, body) = (&server, &body);
                s.spawn(move || {
                    server.request("POST", &format!("/api/predict?maps={}", i % 2 == 0), body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(answers.len(), 50);
    for (status, got) in &answers {
        assert_eq!(*status, 200, "{got}");
        // Batched with others or alone: the same score to 1e-6.
        close(got, &alone, "score");
        close(got, &alone, "logit");
    }
}

#[test]
fn predict_writes_maps_per_image() {
    let dir = tempfile::tempdir().unwrap();
    let maps = dir.path().join("maps");
    let folder = image("nearest_x2");
    ok(&npr(
        &[
            "predict",
            "--checkpoint",
            checkpoint().to_str().unwrap(),
            "--device",
            "cpu",
            "--maps",
            maps.to_str().unwrap(),
            folder.to_str().unwrap(),
        ],
        &[],
    ));
    // Real and fake share file names: the stems take the label folder.
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(maps.join("1_fake_00000_landscape.json")).unwrap(),
    )
    .unwrap();
    close(
        &json,
        &predict_json(&image("nearest_x2/1_fake/00000_landscape.png")),
        "score",
    );
    assert_eq!(json["weights"].as_array().unwrap().len(), 4);
    for key in ["npr0.25", "npr0.5", "npr0.75", "identity", "fused"] {
        let file = maps.join(json["maps"][key].as_str().unwrap());
        let img = npr::data::decode_file(&file, &npr::data::DecodeLimits::default()).unwrap();
        assert_eq!(img.dimensions(), (32, 32), "{key}: the model's input size");
    }
    // The identity map is the image itself (no resize here: the set's protocol is full size).
    let original = npr::data::decode_file(
        &image("nearest_x2/1_fake/00000_landscape.png"),
        &Default::default(),
    )
    .unwrap();
    let identity = npr::data::decode_file(
        &maps.join("1_fake_00000_landscape_identity.png"),
        &Default::default(),
    )
    .unwrap();
    let max_diff = original
        .as_raw()
        .iter()
        .zip(identity.as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(max_diff <= 1, "identity differs by {max_diff} grey levels");
    let count = std::fs::read_dir(&maps).unwrap().count();
    assert_eq!(count, 10 * 6, "10 images × (5 maps + JSON)");
}

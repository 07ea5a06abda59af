//! The webhook's HTTPS hardening, judged by clients we did not write: OpenSSL's `s_client`
//! (TLS 1.1 must be refused, TLS 1.2 accepted), rustls with ALPN `h2, http/1.1` (HTTP/2 only with
//! `http2: true`), a raw HTTP/2 preface (refused without HTTP/2), a 2 MiB body (413), slow
//! clients (slowloris: headers or body dribbled; closed / 408 within the timeouts), and garbage
//! that must not take the server down.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use sriov_operator::admission::{Cluster, Settings};
use sriov_operator::webhook::{self, ServeOptions, TlsFiles, Webhook};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use webhook_support::{Cert, make_cert, request};

mod webhook_support;

struct Server {
    addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

async fn start(cert: &Cert, options: ServeOptions) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let tls = TlsFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    std::fs::write(&tls.cert, &cert.cert_pem).unwrap();
    std::fs::write(&tls.key, &cert.key_pem).unwrap();
    let hook = Arc::new(Webhook {
        settings: Settings {
            namespace: "sriov-network-operator".into(),
            dev_mode: false,
        },
        cluster: Box::new(Cluster::default()),
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        if let Err(e) = webhook::serve(listener, tls, hook, h, options).await {
            panic!("webhook server failed: {e:#}");
        }
    });
    // Until it answers.
    for _ in 0..100 {
        if request(addr, cert, "GET", "/readyz", "text/plain", String::new())
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Server {
        addr,
        handle,
        _dir: dir,
    }
}

/// A TLS connection trusting `cert`, offering `alpn`.
async fn connect(addr: SocketAddr, cert: &Cert, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    roots.add(cert.der.clone()).unwrap();
    let mut config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// `openssl s_client` with `version` (`-tls1_1`, `-tls1_2`): (exit success, output).
fn s_client(addr: SocketAddr, version: &str) -> (bool, String) {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            version,
            // Debian's OpenSSL refuses to even offer TLS 1.1 at its default security level.
            "-cipher",
            "DEFAULT@SECLEVEL=0",
            "-brief",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_1_is_refused_and_1_2_accepted_by_openssl() {
    sriov_test_support::require!(
        sriov_test_support::which("openssl").is_some(),
        "the openssl binary"
    );
    let cert = make_cert("webhook-tls");
    let server = start(&cert, ServeOptions::default()).await;
    let addr = server.addr;
    let (ok11, out11) = tokio::task::spawn_blocking(move || s_client(addr, "-tls1_1"))
        .await
        .unwrap();
    assert!(!ok11, "TLS 1.1 handshake succeeded:\n{out11}");
    // rustls answers a ClientHello without TLS 1.2/1.3 with a handshake_failure alert.
    assert!(
        out11.contains("alert") && !out11.contains("Protocol version: TLSv1.1"),
        "refused by the server:\n{out11}"
    );
    let (ok12, out12) = tokio::task::spawn_blocking(move || s_client(addr, "-tls1_2"))
        .await
        .unwrap();
    assert!(
        ok12 && out12.contains("TLSv1.2"),
        "TLS 1.2 handshake (the probe works):\n{out12}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_is_negotiated_only_when_enabled() {
    let cert = make_cert("webhook-alpn");
    let off = start(&cert, ServeOptions::default()).await;
    let tls = connect(off.addr, &cert, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let on = start(
        &cert,
        ServeOptions {
            http2: true,
            ..ServeOptions::default()
        },
    )
    .await;
    let tls = connect(on.addr, &cert, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
}

/// The client connection preface of HTTP/2 followed by an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// What the server sends back to an HTTP/2 preface without ALPN, until it closes or 2 s pass.
async fn answer_to_h2_preface(addr: SocketAddr, cert: &Cert) -> Vec<u8> {
    let mut tls = connect(addr, cert, &[]).await;
    tls.write_all(H2_PREFACE).await.unwrap();
    let mut buf = vec![0u8; 256];
    match tokio::time::timeout(Duration::from_secs(2), tls.read(&mut buf)).await {
        Ok(Ok(n)) => buf[..n].to_vec(),
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_prior_knowledge_is_refused_unless_enabled() {
    let cert = make_cert("webhook-prior");
    // An HTTP/2 server answers the preface with its SETTINGS frame (type 4 at byte 3).
    let is_h2_settings = |b: &[u8]| b.len() >= 9 && b[3] == 4;
    let on = start(
        &cert,
        ServeOptions {
            http2: true,
            ..ServeOptions::default()
        },
    )
    .await;
    let answer = answer_to_h2_preface(on.addr, &cert).await;
    assert!(
        is_h2_settings(&answer),
        "the probe: HTTP/2 enabled answers SETTINGS: {answer:?}"
    );
    let off = start(&cert, ServeOptions::default()).await;
    let answer = answer_to_h2_preface(off.addr, &cert).await;
    assert!(
        !is_h2_settings(&answer),
        "HTTP/2 spoken without --enable-http2: {answer:?}"
    );
}

/// `curl` POSTs `size` bytes of JSON-ish body from a file: (HTTP status, body).
fn curl_post(addr: SocketAddr, cert: &Cert, size: usize) -> (u16, String) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert.cert_pem).unwrap();
    let data = dir.path().join("body.json");
    std::fs::write(&data, format!("{{\"pad\":\"{}\"}}", "x".repeat(size - 10))).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--http1.1", "--cacert"])
        .arg(&ca)
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{}", data.display()))
        .args(["-w", "\n%{http_code}"])
        .arg(format!(
            "https://localhost:{}/validating-custom-resource",
            addr.port()
        ))
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", addr.port())])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_mib_body_is_refused_with_413() {
    sriov_test_support::require!(sriov_test_support::which("curl").is_some(), "the curl binary");
    let cert = make_cert("webhook-body");
    let server = start(&cert, ServeOptions::default()).await;
    let (addr, c) = (server.addr, make_cert_copy(&cert));
    let (status, body) = tokio::task::spawn_blocking(move || curl_post(addr, &c, 2 << 20))
        .await
        .unwrap();
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("length limit exceeded"), "{body}");
    // Just under the limit is read (and refused as a review, not for its size).
    let c = make_cert_copy(&cert);
    let (status, body) = tokio::task::spawn_blocking(move || curl_post(addr, &c, webhook::BODY_LIMIT - 64))
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    // A chunked body (no Content-Length) over the limit: refused too.
    let mut tls = connect(addr, &cert, &[b"http/1.1"]).await;
    tls.write_all(
        b"POST /validating-custom-resource HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 << 10, " ".repeat(64 << 10));
    let mut answer = Vec::new();
    // The server may stop reading (and the writes block) once it has answered.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        for _ in 0..40 {
            if tls.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
        }
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
}

fn make_cert_copy(c: &Cert) -> Cert {
    Cert {
        der: c.der.clone(),
        cert_pem: c.cert_pem.clone(),
        key_pem: c.key_pem.clone(),
    }
}

fn short_timeouts() -> ServeOptions {
    ServeOptions {
        header_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(1),
        handshake_timeout: Duration::from_secs(1),
        ..ServeOptions::default()
    }
}

/// Writes `head` then one byte of `drip` every 200 ms; returns what the server sent and when
/// it closed the connection (or `None` if it was still open after 10 s).
async fn slow_client(addr: SocketAddr, cert: &Cert, head: &[u8], drip: &[u8]) -> (String, Option<Duration>) {
    let tls = connect(addr, cert, &[b"http/1.1"]).await;
    let (mut rd, mut wr) = tokio::io::split(tls);
    let t0 = Instant::now();
    wr.write_all(head).await.unwrap();
    let drip = drip.to_vec();
    let writer = tokio::spawn(async move {
        for b in drip {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if wr.write_all(&[b]).await.is_err() {
                break;
            }
        }
    });
    let mut got = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| t0.elapsed());
    writer.abort();
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_are_cut_off() {
    let cert = make_cert("webhook-slow");
    let server = start(&cert, short_timeouts()).await;
    // 50 header bytes at 5 per second would take 10 s.
    let (_, closed) = slow_client(
        server.addr,
        &cert,
        b"POST /validating-custom-resource HTTP/1.1\r\nHost: localhost\r\n",
        &[b'X'; 50],
    )
    .await;
    let closed = closed.expect("connection still open after 10 s of dribbled headers");
    assert!(closed < Duration::from_secs(4), "closed after {closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_body_gets_408() {
    let cert = make_cert("webhook-slowbody");
    let server = start(&cert, short_timeouts()).await;
    let (answer, closed) = slow_client(
        server.addr,
        &cert,
        b"POST /validating-custom-resource HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n",
        &[b' '; 50],
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(
        closed.is_some_and(|d| d < Duration::from_secs(4)),
        "closed: {closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_does_not_take_it_down() {
    let cert = make_cert("webhook-garbage");
    let server = start(&cert, ServeOptions::default()).await;
    let bodies: Vec<String> = vec![
        String::new(),
        "null".into(),
        "[]".into(),
        "\"AdmissionReview\"".into(),
        r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":null}"#.into(),
        r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":7,"object":[]}}"#.into(),
        r##"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","operation":"CREATE","kind":{"kind":"SriovNetworkNodePolicy"},"object":{"spec":{"numVfs":-1,"nicSelector":{"pfNames":["#","a#-","a#1-","a##","\u0000#1-2"]},"priority":1e309}}}}"##.into(),
        format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)),
        String::from_utf8_lossy(&(0..=255u8).collect::<Vec<_>>()).into_owned(),
    ];
    for (i, body) in bodies.into_iter().enumerate() {
        for path in ["/validating-custom-resource", "/mutating-custom-resource"] {
            let (status, text, _) =
                request(server.addr, &cert, "POST", path, "application/json", body.clone())
                    .await
                    .unwrap_or_else(|e| panic!("input {i} on {path}: no answer ({e:#})"));
            assert!(
                (200..500).contains(&status),
                "input {i} on {path}: {status} {text}"
            );
        }
    }
    let (status, _, _) = request(server.addr, &cert, "GET", "/readyz", "text/plain", String::new())
        .await
        .unwrap();
    assert_eq!(status, 200);
}

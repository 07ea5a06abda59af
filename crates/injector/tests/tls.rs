//! The HTTPS server as the flags configure it, in-process (`server::serve`, the binary's own
//! code path) with a NAD map standing in for the watch-fed cache (the apiserver side is
//! tests/apiserver.rs): certificate reload, `-insecure` vs `-client-ca`, `-enable-http2`
//! (ALPN), `-tls-min-version`, and the HTTP answers to bad input. The client is rustls with
//! the test's CA; certificates come from sriov-testcluster's PKI (rcgen), no cluster needed.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use rustls::{ClientConfig, ClientConnection, ProtocolVersion};
use serde_json::json;
use sriov_network_resources_injector::cache::SwitchesCell;
use sriov_network_resources_injector::flags;
use sriov_network_resources_injector::server::{self, Injector, RELOAD_PERIOD};
use sriov_testcluster::pki::{CertKey, Pki};

const RN: &str = "k8s.v1.cni.cncf.io/resourceName";

struct Server {
    port: u16,
    handle: axum_server::Handle<SocketAddr>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_pair(dir: &Path, ck: &CertKey) {
    // Kubernetes swaps a Secret's files by renaming; do the same.
    for (name, text) in [("cert.pem", &ck.cert_pem), ("key.pem", &ck.key_pem)] {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }
}

/// Starts the server from a command line (program name and the cert/key flags added).
fn start(dir: &Path, flags_line: &[&str]) -> Server {
    let mut args = vec![
        "network-resources-injector".to_string(),
        format!("-tls-cert-file={}", dir.join("cert.pem").display()),
        format!("-tls-private-key-file={}", dir.join("key.pem").display()),
    ];
    args.extend(flags_line.iter().map(|s| s.to_string()));
    let options = flags::parse(args).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let nads: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::from([(
        ("default".to_string(), "net-a".to_string()),
        BTreeMap::from([(RN.to_string(), "intel.com/sriov".to_string())]),
    )]);
    let injector = Arc::new(Injector {
        nads: Box::new(nads),
        settings: options.settings,
        switches: SwitchesCell::default(),
    });
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    let tls = options.tls;
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(server::serve(listener, tls, injector, h)).unwrap();
    });
    Server {
        port,
        handle,
        thread: Some(thread),
    }
}

struct Client<'a> {
    ca_pem: &'a str,
    cert: Option<&'a CertKey>,
    alpn: Vec<Vec<u8>>,
    tls12_only: bool,
}

impl<'a> Client<'a> {
    fn new(ca_pem: &'a str) -> Self {
        Client {
            ca_pem,
            cert: None,
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            tls12_only: false,
        }
    }

    fn config(&self) -> ClientConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if self.tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS12, &rustls::version::TLS13]
        };
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match self.cert {
            None => builder.with_no_client_auth(),
            Some(ck) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(ck.cert_pem.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(ck.key_pem.as_bytes()).unwrap(),
                )
                .unwrap(),
        };
        config.alpn_protocols = self.alpn.clone();
        config
    }
}

/// What one connection saw.
#[derive(Debug)]
struct Seen {
    leaf: Vec<u8>,
    alpn: Option<Vec<u8>>,
    version: Option<ProtocolVersion>,
    /// The HTTP response (status line to end of body).
    response: String,
}

fn post(port: u16, client: &Client<'_>, content_type: &str, body: &[u8]) -> Result<Seen, std::io::Error> {
    let mut conn = ClientConnection::new(
        Arc::new(client.config()),
        ServerName::try_from("localhost").unwrap(),
    )
    .map_err(std::io::Error::other)?;
    let mut sock = TcpStream::connect(("127.0.0.1", port))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let (alpn, version) = (conn.alpn_protocol().map(<[u8]>::to_vec), conn.protocol_version());
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let head = format!(
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes())?;
    // The server may answer (and close) before it has read a body it refuses.
    let _ = tls.write_all(body);
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(Seen {
        leaf,
        alpn,
        version,
        response: String::from_utf8_lossy(&out).into_owned(),
    })
}

/// Completes the handshake and reads what the server sends without sending a request: a
/// server that refuses the client (TLS 1.3: after the handshake) answers with an alert. Sending
/// a request first made this racy: the server closed with the request unread, which is a TCP
/// reset, and the client saw a broken pipe instead of the alert.
fn refusal(port: u16, client: &Client<'_>) -> std::io::Error {
    let mut conn = match ClientConnection::new(
        Arc::new(client.config()),
        ServerName::try_from("localhost").unwrap(),
    ) {
        Ok(c) => c,
        Err(e) => return std::io::Error::other(e),
    };
    let mut sock = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(e) => return e,
    };
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            return e;
        }
    }
    let mut out = Vec::new();
    match rustls::Stream::new(&mut conn, &mut sock).read_to_end(&mut out) {
        Err(e) => e,
        Ok(_) => panic!("the server accepted the client and closed: {out:?}"),
    }
}

fn review() -> Vec<u8> {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "namespace": "default", "operation": "CREATE",
        "object": {"metadata": {"name": "p", "annotations": {"k8s.v1.cni.cncf.io/networks": "net-a"}},
                   "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    .to_string()
    .into_bytes()
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

fn status(seen: &Seen) -> &str {
    seen.response.split(' ').nth(1).unwrap_or("")
}

#[test]
fn a_new_handshake_gets_the_replaced_certificate_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (Pki::new().unwrap(), Pki::new().unwrap());
    let (old, new) = (old_ca.serving().unwrap(), new_ca.serving().unwrap());
    write_pair(dir.path(), &old);
    let server = start(dir.path(), &["-insecure"]);
    let seen = post(
        server.port,
        &Client::new(&old_ca.ca.cert_pem),
        "application/json",
        &review(),
    )
    .unwrap();
    assert_eq!(seen.leaf, der(&old.cert_pem));
    assert_eq!(status(&seen), "200", "{}", seen.response);

    write_pair(dir.path(), &new);
    let deadline = Instant::now() + RELOAD_PERIOD * 5;
    loop {
        // Verified against the new CA: only the new certificate passes.
        if let Ok(seen) = post(
            server.port,
            &Client::new(&new_ca.ca.cert_pem),
            "application/json",
            &review(),
        ) {
            assert_eq!(seen.leaf, der(&new.cert_pem));
            assert_eq!(status(&seen), "200", "{}", seen.response);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new certificate not served within {:?}",
            RELOAD_PERIOD * 5
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // And the old one is gone.
    assert!(
        post(
            server.port,
            &Client::new(&old_ca.ca.cert_pem),
            "application/json",
            &review()
        )
        .is_err()
    );

    // A half-written pair (key missing) keeps the current certificate.
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    std::thread::sleep(RELOAD_PERIOD * 2);
    let seen = post(
        server.port,
        &Client::new(&new_ca.ca.cert_pem),
        "application/json",
        &review(),
    )
    .unwrap();
    assert_eq!(seen.leaf, der(&new.cert_pem));
}

#[test]
fn client_ca_refuses_a_client_without_a_certificate_and_insecure_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new().unwrap();
    write_pair(dir.path(), &pki.serving().unwrap());
    let clients = Pki::new().unwrap();
    let ca_file = dir.path().join("client-ca.pem");
    std::fs::write(&ca_file, &clients.ca.cert_pem).unwrap();
    let good = clients.client("kube-apiserver", None).unwrap();
    let stranger = Pki::new().unwrap().client("kube-apiserver", None).unwrap();

    let server = start(dir.path(), &[&format!("-client-ca={}", ca_file.display())]);
    let anonymous = Client::new(&pki.ca.cert_pem);
    let e = refusal(server.port, &anonymous);
    assert!(
        e.to_string().contains("CertificateRequired"),
        "a client without a certificate must be refused with an alert: {e:?}"
    );
    let e = refusal(
        server.port,
        &Client {
            cert: Some(&stranger),
            ..Client::new(&pki.ca.cert_pem)
        },
    );
    assert!(
        e.to_string().contains("alert"),
        "a certificate from another CA must be refused with an alert: {e:?}"
    );
    let seen = post(
        server.port,
        &Client {
            cert: Some(&good),
            ..Client::new(&pki.ca.cert_pem)
        },
        "application/json",
        &review(),
    )
    .unwrap();
    assert_eq!(status(&seen), "200", "{}", seen.response);
    drop(server);

    let server = start(dir.path(), &["--insecure"]);
    let seen = post(server.port, &anonymous, "application/json", &review()).unwrap();
    assert_eq!(status(&seen), "200", "{}", seen.response);
}

#[test]
fn http2_is_offered_only_with_enable_http2() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new().unwrap();
    write_pair(dir.path(), &pki.serving().unwrap());
    let client = Client::new(&pki.ca.cert_pem); // offers h2 and http/1.1
    let server = start(dir.path(), &["-insecure"]);
    let seen = post(server.port, &client, "application/json", &review()).unwrap();
    assert_eq!(seen.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(status(&seen), "200", "{}", seen.response);
    drop(server);
    let h2_only = Client {
        alpn: vec![b"h2".to_vec()],
        ..Client::new(&pki.ca.cert_pem)
    };
    let server = start(dir.path(), &["-insecure"]);
    assert!(
        post(server.port, &h2_only, "application/json", &review()).is_err(),
        "an h2-only client must find no common protocol"
    );
    drop(server);

    let server = start(dir.path(), &["-insecure", "-enable-http2"]);
    let mut conn = ClientConnection::new(
        Arc::new(client.config()),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut sock = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).unwrap();
    }
    assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
}

#[test]
fn tls_min_version_13_refuses_a_tls12_client() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new().unwrap();
    write_pair(dir.path(), &pki.serving().unwrap());
    let tls12 = Client {
        tls12_only: true,
        ..Client::new(&pki.ca.cert_pem)
    };
    let server = start(dir.path(), &["-insecure"]);
    let seen = post(server.port, &tls12, "application/json", &review()).unwrap();
    assert_eq!(
        seen.version,
        Some(ProtocolVersion::TLSv1_2),
        "default minimum is TLS 1.2"
    );
    drop(server);
    let server = start(dir.path(), &["-insecure", "-tls-min-version=VersionTLS13"]);
    let r = post(server.port, &tls12, "application/json", &review());
    assert!(
        r.is_err(),
        "TLS 1.2 client accepted with -tls-min-version=VersionTLS13: {r:?}"
    );
    let seen = post(
        server.port,
        &Client::new(&pki.ca.cert_pem),
        "application/json",
        &review(),
    )
    .unwrap();
    assert_eq!(seen.version, Some(ProtocolVersion::TLSv1_3));
}

#[test]
fn bad_input_gets_upstreams_status_and_says_what_was_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new().unwrap();
    write_pair(dir.path(), &pki.serving().unwrap());
    let server = start(dir.path(), &["-insecure"]);
    let client = Client::new(&pki.ca.cert_pem);

    let seen = post(server.port, &client, "text/plain", &review()).unwrap();
    assert_eq!(status(&seen), "415", "{}", seen.response);
    assert!(
        seen.response
            .ends_with("Invalid Content-Type='text/plain', expected 'application/json'\n"),
        "{}",
        seen.response
    );

    let big = vec![b' '; (1 << 20) + 1];
    let seen = post(server.port, &client, "application/json", &big).unwrap();
    assert_eq!(status(&seen), "400", "{}", seen.response);
    assert!(
        seen.response.contains("body larger than 1048576 bytes"),
        "{}",
        seen.response
    );

    let bad = String::from_utf8(review()).unwrap().replace("net-a", "a/b/c");
    let seen = post(server.port, &client, "application/json", bad.as_bytes()).unwrap();
    assert_eq!(status(&seen), "400", "{}", seen.response);
    assert!(
        seen.response.contains("more than one '/' rune in: 'a/b/c'"),
        "{}",
        seen.response
    );

    let seen = post(server.port, &client, "application/json", b"{\"kind\": 7").unwrap();
    assert_eq!(status(&seen), "400", "{}", seen.response);
    assert!(
        seen.response.contains("error deserializing AdmissionReview"),
        "{}",
        seen.response
    );

    // The server is still there and answers a good review.
    let seen = post(server.port, &client, "application/json", &review()).unwrap();
    assert_eq!(status(&seen), "200", "{}", seen.response);
    assert!(seen.response.contains("\"allowed\":true"), "{}", seen.response);
}

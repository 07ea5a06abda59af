//! The cost of the `:authority` adapter (src/authority.rs) on the Allocate path: a connection's
//! client bytes (a grpcio-like Allocate request: HEADERS with Huffman and dynamic-table
//! references + a DATA frame) fed through `Rewriter`, with a valid authority (verbatim) and with
//! the socket path (re-encoded). `cargo bench -p sriov-device-plugin --bench authority`.

use std::time::{Duration, Instant};

use httlib_hpack::Encoder;
use sriov_device_plugin::authority::Rewriter;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("small").to_be_bytes();
    out.extend_from_slice(&len[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// `n` Allocate requests (one device each) on one connection, as a gRPC client encodes them.
fn connection(authority: &str, n: u32) -> Vec<u8> {
    let mut enc = Encoder::default();
    let mut out = PREFACE.to_vec();
    frame(0x4, 0, 0, &[], &mut out);
    let flags =
        Encoder::HUFFMAN_NAME | Encoder::HUFFMAN_VALUE | Encoder::WITH_INDEXING | Encoder::BEST_FORMAT;
    for i in 0..n {
        let mut block = Vec::new();
        for (name, value) in [
            (":scheme", "http"),
            (":method", "POST"),
            (":authority", authority),
            (":path", "/v1beta1.DevicePlugin/Allocate"),
            ("te", "trailers"),
            ("content-type", "application/grpc"),
            ("user-agent", "grpc-python/1.76.0 grpc-c/51.0.0 (linux; chttp2)"),
            ("grpc-accept-encoding", "identity, deflate, gzip"),
            ("grpc-timeout", "9999m"),
        ] {
            enc.encode(
                (name.as_bytes().to_vec(), value.as_bytes().to_vec(), flags),
                &mut block,
            )
            .expect("encode");
        }
        let stream = 2 * i + 1;
        frame(0x1, 0x4, stream, &block, &mut out);
        // An AllocateRequest for one device: gRPC message prefix + protobuf.
        let msg = b"\x0a\x0e\x0a\x0c0000:02:00.1";
        let mut data = vec![0, 0, 0, 0, msg.len() as u8];
        data.extend_from_slice(msg);
        frame(0x0, 0x1, stream, &data, &mut out);
    }
    out
}

fn run(label: &str, input: &[u8], n: u32) {
    let mut best = Duration::MAX;
    let mut out = Vec::with_capacity(input.len() * 2);
    for _ in 0..20 {
        let mut r = Rewriter::new();
        out.clear();
        let t = Instant::now();
        for chunk in input.chunks(8192) {
            r.feed(chunk, &mut out).expect("feed");
        }
        best = best.min(t.elapsed());
        std::hint::black_box(&out);
    }
    println!(
        "  {label:<40} {:>7.0} ns per Allocate request ({} bytes in, {} out)",
        best.as_nanos() as f64 / f64::from(n),
        input.len(),
        out.len()
    );
}

fn main() {
    let n = 10_000;
    println!("`:authority` adapter, {n} Allocate requests on one connection (best of 20):");
    run("valid authority (verbatim)", &connection("localhost", n), n);
    run(
        "socket path (re-encoded)",
        &connection("/var/lib/kubelet/plugins_registry/intel.com_vf.sock", n),
        n,
    );
}

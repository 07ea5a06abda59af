//! The client side is a real HPACK encoder we did not write (httlib-hpack: Huffman strings,
//! incremental indexing, dynamic-table references, table size updates); our output is checked
//! by a fresh HPACK decoder playing h2's part, and (in authority_stream.rs and the grpcio tests)
//! by h2 itself.
#![allow(clippy::unwrap_used)]

use super::*;
use httlib_hpack::Encoder;

pub(crate) const PREFACE_BYTES: &[u8] = PREFACE;

type Headers = Vec<(Vec<u8>, Vec<u8>)>;

pub(crate) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    frame_head(payload.len(), kind, flags, stream, &mut f);
    f.extend_from_slice(payload);
    f
}

pub(crate) fn literal(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    encode_literal(name, value, out);
}

/// Huffman names and values, incremental indexing, and indexed references where the table
/// has the field: what grpc clients' encoders do.
const CLIENT_FLAGS: u8 =
    Encoder::HUFFMAN_NAME | Encoder::HUFFMAN_VALUE | Encoder::WITH_INDEXING | Encoder::BEST_FORMAT;

fn request(authority: &str, path: &str) -> Headers {
    [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", authority),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("grpc-accept-encoding", "identity,deflate,gzip"),
        ("user-agent", "grpc-python/1.76.0 grpc-c/51.0.0 (linux; chttp2)"),
    ]
    .iter()
    .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect()
}

fn encode(enc: &mut Encoder<'static>, headers: &Headers) -> Vec<u8> {
    let mut dst = Vec::new();
    for (n, v) in headers {
        enc.encode((n.clone(), v.clone(), CLIENT_FLAGS), &mut dst)
            .unwrap();
    }
    dst
}

fn settings() -> Vec<u8> {
    frame(0x4, 0, 0, &[0, 0x4, 0, 0x40, 0, 0]) // INITIAL_WINDOW_SIZE
}

fn data(stream: u32) -> Vec<u8> {
    frame(0x0, END_STREAM, stream, &[0, 0, 0, 0, 2, 0x08, 0x01])
}

fn feed_in_chunks(r: &mut Rewriter, input: &[u8], chunk: usize) -> Result<Vec<u8>, RewriteError> {
    let mut out = Vec::new();
    for c in input.chunks(chunk) {
        r.feed(c, &mut out)?;
    }
    Ok(out)
}

/// Frames of `out` after the preface: (type, flags, stream, payload).
fn frames(out: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
    assert_eq!(&out[..24], PREFACE_BYTES);
    let mut rest = &out[24..];
    let mut v = Vec::new();
    while !rest.is_empty() {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]);
        v.push((rest[3], rest[4], stream, rest[9..9 + len].to_vec()));
        rest = &rest[9 + len..];
    }
    v
}

/// Decodes every header block of `out` as h2 would (one decoder for the connection), checking
/// frame sizes and the HEADERS/CONTINUATION sequence: (stream, headers).
fn decode_blocks(out: &[u8]) -> Vec<(u32, Headers)> {
    let mut dec = Decoder::new();
    let mut blocks = Vec::new();
    let mut open: Option<(u32, Vec<u8>)> = None;
    for (kind, flags, stream, payload) in frames(out) {
        assert!(
            payload.len() <= MAX_FRAME_SIZE,
            "frame of {} bytes",
            payload.len()
        );
        let fragment = match kind {
            HEADERS => {
                assert!(open.is_none(), "HEADERS inside a block");
                let pad = if flags & PADDED != 0 {
                    usize::from(payload[0])
                } else {
                    0
                };
                let start = usize::from(flags & PADDED != 0) + if flags & PRIORITY != 0 { 5 } else { 0 };
                open = Some((stream, Vec::new()));
                payload[start..payload.len() - pad].to_vec()
            }
            CONTINUATION => {
                assert_eq!(
                    open.as_ref().map(|o| o.0),
                    Some(stream),
                    "CONTINUATION outside its block"
                );
                payload
            }
            _ => {
                assert!(open.is_none(), "frame type {kind} inside a header block");
                continue;
            }
        };
        if let Some(o) = open.as_mut() {
            o.1.extend_from_slice(&fragment);
        }
        if flags & END_HEADERS != 0 {
            let (s, block) = open.take().unwrap();
            blocks.push((s, dec.decode(&block).unwrap()));
        }
    }
    assert!(open.is_none(), "unfinished header block");
    blocks
}

fn with_authority(mut h: Headers, authority: &str) -> Headers {
    for (n, v) in &mut h {
        if n == b":authority" {
            *v = authority.as_bytes().to_vec();
        }
    }
    h
}

#[test]
fn h2s_rule_for_authority() {
    assert!(valid_authority(b"localhost"));
    assert!(valid_authority(b"example.com:8080"));
    assert!(!valid_authority(
        b"/var/lib/kubelet/plugins_registry/intel.com_vf.sock"
    ));
    assert!(!valid_authority(b"unix:/run/x.sock"));
    assert!(!valid_authority(b""));
}

/// A client that sends a valid authority reaches h2 byte for byte, however its bytes are split.
#[test]
fn valid_authority_passes_verbatim() {
    let mut enc = Encoder::default();
    let mut input = PREFACE_BYTES.to_vec();
    input.extend(settings());
    for (i, stream) in [1u32, 3, 5].into_iter().enumerate() {
        let block = encode(
            &mut enc,
            &request("localhost", &format!("/v1beta1.DevicePlugin/Allocate{i}")),
        );
        input.extend(frame(HEADERS, END_HEADERS, stream, &block));
        input.extend(data(stream));
    }
    for chunk in [1, 2, 7, 9, 10, 64, input.len()] {
        let mut r = Rewriter::new();
        assert_eq!(
            feed_in_chunks(&mut r, &input, chunk).unwrap(),
            input,
            "chunk {chunk}"
        );
        assert!(!r.rewriting());
    }
}

/// Path authorities become `localhost`, for the first request and for later ones that the client
/// encoded as references into its dynamic table; DATA and SETTINGS pass unchanged.
#[test]
fn path_authority_rewritten_across_dynamic_table_references() {
    let path = "/var/lib/kubelet/plugins_registry/intel.com_vf.sock";
    let mut enc = Encoder::default();
    let mut input = PREFACE_BYTES.to_vec();
    input.extend(settings());
    let mut sizes = Vec::new();
    let requests: Vec<Headers> = (0..3)
        .map(|i| request(path, &format!("/v1beta1.DevicePlugin/Allocate{}", i % 2)))
        .collect();
    for (req, stream) in requests.iter().zip([1u32, 3, 5]) {
        let block = encode(&mut enc, req);
        sizes.push(block.len());
        input.extend(frame(HEADERS, END_HEADERS, stream, &block));
        input.extend(data(stream));
    }
    assert_eq!(
        sizes[2], 8,
        "the third request is one dynamic-table reference per field: {sizes:?}"
    );
    for chunk in [1, 5, 13, input.len()] {
        let mut r = Rewriter::new();
        let out = feed_in_chunks(&mut r, &input, chunk).unwrap();
        assert!(r.rewriting());
        let blocks = decode_blocks(&out);
        let want: Vec<(u32, Headers)> = requests
            .iter()
            .zip([1u32, 3, 5])
            .map(|(h, s)| (s, with_authority(h.clone(), "localhost")))
            .collect();
        assert_eq!(blocks, want, "chunk {chunk}");
        let others: Vec<_> = frames(&out).into_iter().filter(|f| f.0 != HEADERS).collect();
        assert_eq!(others.len(), 4, "SETTINGS and three DATA frames");
        assert_eq!(others[1], (0x0, END_STREAM, 1, data(1)[9..].to_vec()));
    }
}

/// A connection that starts with valid authorities (forwarded verbatim: the server's table holds
/// the client's entries) and then sends a path: from then on every block is re-encoded without
/// touching the server's table, and all decode right on the server's one decoder.
#[test]
fn switch_from_verbatim_to_rewriting() {
    let mut enc = Encoder::default();
    let mut input = PREFACE_BYTES.to_vec();
    let requests = [
        request("localhost", "/a"),
        request("/run/x.sock", "/a"),
        request("localhost", "/b"),
        request("/run/x.sock", "/b"),
    ];
    for (req, stream) in requests.iter().zip([1u32, 3, 5, 7]) {
        input.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            stream,
            &encode(&mut enc, req),
        ));
    }
    let mut r = Rewriter::new();
    let out = feed_in_chunks(&mut r, &input, 3).unwrap();
    let got: Vec<Headers> = decode_blocks(&out).into_iter().map(|b| b.1).collect();
    let want: Vec<Headers> = requests
        .iter()
        .map(|h| with_authority(h.clone(), "localhost"))
        .collect();
    assert_eq!(got, want);
    let flags: Vec<u8> = frames(&out).iter().map(|f| f.1).collect();
    assert_eq!(flags, [END_HEADERS | END_STREAM; 4]);
}

/// PADDED and PRIORITY HEADERS followed by CONTINUATIONs: the block is reassembled, padding
/// dropped, priority and END_STREAM kept.
#[test]
fn padded_priority_headers_with_continuations() {
    let mut enc = Encoder::default();
    let req = request("/run/x.sock", "/v1beta1.DevicePlugin/GetDevicePluginOptions");
    let block = encode(&mut enc, &req);
    let (a, rest) = block.split_at(5);
    let (b, c) = rest.split_at(rest.len() / 2);
    let prio = [0x80, 0, 0, 0, 15]; // exclusive, depends on stream 0, weight 16
    let mut first = vec![3u8];
    first.extend_from_slice(&prio);
    first.extend_from_slice(a);
    first.extend_from_slice(&[0, 0, 0]);
    let mut input = PREFACE_BYTES.to_vec();
    input.extend(frame(HEADERS, PADDED | PRIORITY | END_STREAM, 9, &first));
    input.extend(frame(CONTINUATION, 0, 9, b));
    input.extend(frame(CONTINUATION, END_HEADERS, 9, c));
    let out = feed_in_chunks(&mut Rewriter::new(), &input, 4).unwrap();
    let f = frames(&out);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].1, PRIORITY | END_STREAM | END_HEADERS);
    assert_eq!(f[0].3[..5], prio);
    assert_eq!(decode_blocks(&out), [(9, with_authority(req, "localhost"))]);
}

/// A re-encoded block larger than one frame is split into HEADERS + CONTINUATIONs of at most
/// 16,384 bytes; the client's dynamic table size updates are honoured.
#[test]
fn large_block_split_and_table_size_updates() {
    let mut enc = Encoder::default();
    let mut req = request("/run/x.sock", "/p");
    req.push((b"x-big".to_vec(), vec![b'a'; 40_000]));
    let mut block = Vec::new();
    enc.update_max_dynamic_size(0, &mut block).unwrap();
    enc.update_max_dynamic_size(256, &mut block).unwrap();
    block.extend(encode(&mut enc, &req));
    let mut input = PREFACE_BYTES.to_vec();
    for (i, chunk) in block.chunks(16_384).enumerate() {
        let (kind, last) = (
            if i == 0 { HEADERS } else { CONTINUATION },
            (i + 1) * 16_384 >= block.len(),
        );
        input.extend(frame(kind, if last { END_HEADERS } else { 0 }, 1, chunk));
    }
    let second = encode(&mut enc, &request("/run/x.sock", "/q"));
    input.extend(frame(HEADERS, END_HEADERS, 3, &second));
    let out = feed_in_chunks(&mut Rewriter::new(), &input, 1000).unwrap();
    let kinds: Vec<u8> = frames(&out).iter().map(|f| f.0).collect();
    assert_eq!(kinds[..4], [HEADERS, CONTINUATION, CONTINUATION, HEADERS]);
    assert_eq!(
        decode_blocks(&out),
        [
            (1, with_authority(req, "localhost")),
            (3, request("localhost", "/q"))
        ]
    );
    // A size update above h2's SETTINGS_HEADER_TABLE_SIZE is the client's error, passed to h2.
    let mut bad = Vec::new();
    enc.update_max_dynamic_size(8192, &mut bad).unwrap();
    bad.extend(encode(&mut enc, &request("/run/x.sock", "/r")));
    let mut r = Rewriter::new();
    let mut input = PREFACE_BYTES.to_vec();
    input.extend(frame(HEADERS, END_HEADERS, 1, &bad));
    assert_eq!(feed_in_chunks(&mut r, &input, 7).unwrap(), input);
}

/// Framing errors reach h2 verbatim while nothing was rewritten (h2 answers the client), and
/// close the connection once h2's view differs from the client's.
#[test]
fn framing_errors() {
    let mut enc = Encoder::default();
    let valid = encode(&mut enc, &request("localhost", "/a"));
    let mut input = PREFACE_BYTES.to_vec();
    input.extend(frame(CONTINUATION, END_HEADERS, 1, &valid));
    input.extend(data(1));
    assert_eq!(feed_in_chunks(&mut Rewriter::new(), &input, 5).unwrap(), input);

    let mut input = PREFACE_BYTES.to_vec();
    input.extend(frame(HEADERS, 0, 1, &valid));
    input.extend(data(1));
    input.extend(settings());
    assert_eq!(feed_in_chunks(&mut Rewriter::new(), &input, 5).unwrap(), input);

    let mut enc = Encoder::default();
    let mut input = PREFACE_BYTES.to_vec();
    input.extend(frame(
        HEADERS,
        END_HEADERS,
        1,
        &encode(&mut enc, &request("/x", "/a")),
    ));
    input.extend(frame(CONTINUATION, END_HEADERS, 3, &[0x82]));
    assert_eq!(
        feed_in_chunks(&mut Rewriter::new(), &input, 5),
        Err(RewriteError::Framing {
            stream: 3,
            what: "CONTINUATION without HEADERS"
        })
    );

    let mut input = PREFACE_BYTES.to_vec();
    input.extend(frame(HEADERS, PADDED | END_HEADERS, 1, &[200, 0x82]));
    assert_eq!(feed_in_chunks(&mut Rewriter::new(), &input, 64).unwrap(), input);
}

/// Something that is not an HTTP/2 client passes untouched (h2 refuses it).
#[test]
fn not_http2() {
    let input = b"GET / HTTP/1.1\r\nHost: /run/x.sock\r\n\r\n".to_vec();
    assert_eq!(feed_in_chunks(&mut Rewriter::new(), &input, 3).unwrap(), input);
}

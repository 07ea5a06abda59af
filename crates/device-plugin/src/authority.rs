//! Makes h2 (under tonic) accept gRPC clients that send a unix socket's PATH as the HTTP/2
//! `:authority`.
//!
//! **Why this exists.** When a gRPC client dials `unix:/var/lib/kubelet/plugins_registry/x.sock`,
//! grpc-go's kubelet (plugin watcher), grpc-java and the gRPC C core (Python grpcio ≥ 1.57) put
//! the socket path in `:authority`. h2 parses `:authority` as an RFC 3986 authority, fails on the
//! path, and resets the stream with PROTOCOL_ERROR (hyperium/h2#487, hyperium/hyper#3750; h2's
//! maintainers declined to relax the check), so sriovdp could never register with a real kubelet
//! although every test with a client that sends `localhost` (tonic, grpc-go with a path target)
//! passed. Go's gRPC server does not parse `:authority` at all, which is why upstream's plugin never
//! met the problem. We cannot patch h2 (the project never patches a copy of someone else's crate),
//! so each accepted connection goes through
//! [`AuthorityStream`](crate::authority_stream::AuthorityStream): client→server bytes are parsed as
//! HTTP/2 frames and every request header block whose `:authority` h2 would refuse is re-encoded
//! with `localhost` instead; server→client bytes pass untouched. Nothing in sriovdp reads the
//! authority.
//!
//! **HPACK state.** Header blocks are compressed against a per-connection dynamic table that the
//! client's encoder and h2's decoder keep in step. [`Rewriter`] decodes every block with its own
//! decoder (loona-hpack, the maintained fork of the `hpack` crate; h2's own codec is private), so
//! it always mirrors the client's table. Until the first block that needs fixing it forwards the
//! client's bytes verbatim (h2's table then follows the client's, and clients that send a valid
//! authority see exactly the bytes they sent reach h2). From the first fixed block on, every block
//! is re-encoded with literals "without indexing" (RFC 7541 §6.2.2) only: they never touch h2's
//! dynamic table, so whatever h2's table holds, our blocks decode the same. loona-hpack's encoder
//! is not used for that because it always inserts into its dynamic table, a state h2's decoder
//! could not follow after the verbatim part. Re-encoded blocks are split into HEADERS +
//! CONTINUATION frames of at most 16,384 bytes (h2's default SETTINGS_MAX_FRAME_SIZE, which
//! tonic keeps); padding is dropped and the priority fields are kept.
//!
//! A client that breaks framing or HPACK rules is handed to h2 verbatim (h2 answers it) while the
//! connection is still verbatim, and closed with an error once blocks have been rewritten.

use std::borrow::Cow;

use loona_hpack::Decoder;
use loona_hpack::encoder::encode_integer_into;

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
const PRIORITY_LEN: usize = 5;

/// The largest frame payload we send: h2's default SETTINGS_MAX_FRAME_SIZE.
pub const MAX_FRAME_SIZE: usize = 16_384;
/// The largest header block (all its frames) we buffer; a bigger one is not inspected.
pub const MAX_HEADER_BLOCK: usize = 256 * 1024;
/// h2's default SETTINGS_HEADER_TABLE_SIZE: the largest dynamic table a client may ask for.
const HEADER_TABLE_SIZE: usize = 4096;
/// What replaces an `:authority` that h2 would refuse.
pub const REPLACEMENT: &[u8] = b"localhost";

/// Why a connection whose header blocks were already rewritten cannot go on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RewriteError {
    #[error("HTTP/2 framing error from the client on stream {stream}: {what}")]
    Framing { stream: u32, what: &'static str },
    #[error("HPACK error in the client's header block on stream {stream}: {what}")]
    Hpack { stream: u32, what: String },
    #[error("header block on stream {stream} exceeds {MAX_HEADER_BLOCK} bytes ({size})")]
    TooLarge { stream: u32, size: usize },
}

/// Whether h2 accepts `value` as `:authority` (h2 parses it with `http::uri::Authority`).
pub fn valid_authority(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_ok()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Matching the 24-byte client preface; `n` bytes matched so far.
    Preface(usize),
    /// Collecting a 9-byte frame header into `head`.
    FrameHeader,
    /// Copying `n` more payload bytes of a frame we do not inspect.
    Copy(usize),
    /// Collecting `n` more payload bytes of a HEADERS or CONTINUATION frame into `payload`.
    Collect(usize),
    /// Not HTTP/2 as we understand it: everything passes verbatim.
    Raw,
}

/// The header block being collected (HEADERS plus CONTINUATIONs up to END_HEADERS).
#[derive(Debug, Default)]
struct Block {
    stream: u32,
    /// END_STREAM and PRIORITY flags of the HEADERS frame.
    flags: u8,
    priority: [u8; PRIORITY_LEN],
    /// The client's frames, verbatim.
    raw: Vec<u8>,
    /// The concatenated header block fragments.
    fragment: Vec<u8>,
}

/// The client→server half of one connection: feed it the bytes the client sent, get the bytes
/// for h2. Pure: no I/O, unit-tested below.
pub struct Rewriter {
    stage: Stage,
    head: [u8; FRAME_HEADER_LEN],
    head_len: usize,
    payload: Vec<u8>,
    block: Option<Block>,
    decoder: Decoder<'static>,
    /// Set by the first block that needed a new `:authority`: from then on every block is
    /// re-encoded (see the module doc).
    rewriting: bool,
    encoded: Vec<u8>,
}

impl Default for Rewriter {
    fn default() -> Self {
        Self::new()
    }
}

impl Rewriter {
    pub fn new() -> Self {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(HEADER_TABLE_SIZE);
        Rewriter {
            stage: Stage::Preface(0),
            head: [0; FRAME_HEADER_LEN],
            head_len: 0,
            payload: Vec::new(),
            block: None,
            decoder,
            rewriting: false,
            encoded: Vec::new(),
        }
    }

    /// Whether a header block has been rewritten on this connection.
    pub fn rewriting(&self) -> bool {
        self.rewriting
    }

    /// Consumes `input` (any split of the client's byte stream) and appends what h2 must read to
    /// `out`. Bytes of an incomplete frame that must be inspected are kept until the rest comes.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), RewriteError> {
        while !input.is_empty() {
            match self.stage {
                Stage::Raw => {
                    out.extend_from_slice(input);
                    return Ok(());
                }
                Stage::Preface(n) => {
                    let want = &PREFACE[n..];
                    let take = want.len().min(input.len());
                    if input[..take] != want[..take] {
                        self.stage = Stage::Raw;
                        continue;
                    }
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    self.stage = if n + take == PREFACE.len() {
                        Stage::FrameHeader
                    } else {
                        Stage::Preface(n + take)
                    };
                }
                Stage::Copy(n) => {
                    let take = n.min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    self.stage = if take == n {
                        Stage::FrameHeader
                    } else {
                        Stage::Copy(n - take)
                    };
                }
                Stage::FrameHeader => {
                    let take = (FRAME_HEADER_LEN - self.head_len).min(input.len());
                    self.head[self.head_len..self.head_len + take].copy_from_slice(&input[..take]);
                    self.head_len += take;
                    input = &input[take..];
                    if self.head_len == FRAME_HEADER_LEN {
                        self.head_len = 0;
                        self.frame_header(out)?;
                    }
                }
                Stage::Collect(n) => {
                    let take = n.min(input.len());
                    self.payload.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if take == n {
                        self.stage = Stage::FrameHeader;
                        self.header_frame(out)?;
                    } else {
                        self.stage = Stage::Collect(n - take);
                    }
                }
            }
        }
        Ok(())
    }

    fn frame_header(&mut self, out: &mut Vec<u8>) -> Result<(), RewriteError> {
        let h = self.head;
        let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
        let kind = h[3];
        let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
        let in_block = self.block.is_some();
        match kind {
            HEADERS if !in_block => {
                self.block = Some(Block {
                    stream,
                    ..Block::default()
                });
            }
            CONTINUATION if in_block => {}
            _ if in_block => {
                return self.give_up(out, stream, "a header block interrupted by another frame", false);
            }
            CONTINUATION => return self.give_up(out, stream, "CONTINUATION without HEADERS", false),
            _ => {
                out.extend_from_slice(&h);
                self.stage = if len == 0 {
                    Stage::FrameHeader
                } else {
                    Stage::Copy(len)
                };
                return Ok(());
            }
        }
        let size = self.block.as_ref().map_or(0, |b| b.raw.len()) + FRAME_HEADER_LEN + len;
        if size > MAX_HEADER_BLOCK {
            return if self.rewriting {
                Err(RewriteError::TooLarge { stream, size })
            } else {
                self.give_up(out, stream, "header block too large to inspect", false)
            };
        }
        self.payload.clear();
        self.stage = Stage::Collect(len);
        if len == 0 {
            self.stage = Stage::FrameHeader;
            return self.header_frame(out);
        }
        Ok(())
    }

    /// A complete HEADERS or CONTINUATION frame is in `head` + `payload`.
    fn header_frame(&mut self, out: &mut Vec<u8>) -> Result<(), RewriteError> {
        let (kind, flags) = (self.head[3], self.head[4]);
        let stream =
            u32::from_be_bytes([self.head[5], self.head[6], self.head[7], self.head[8]]) & 0x7fff_ffff;
        let Some(block) = self.block.as_mut() else {
            return Ok(());
        };
        let p = &self.payload;
        let fragment = if kind == HEADERS {
            let padded = flags & PADDED != 0;
            let prio = if flags & PRIORITY != 0 { PRIORITY_LEN } else { 0 };
            let pad = if padded {
                p.first().map_or(0, |&b| usize::from(b))
            } else {
                0
            };
            let start = usize::from(padded) + prio;
            if start + pad > p.len() {
                return self.give_up(out, stream, "padding longer than the HEADERS payload", true);
            }
            block.flags = flags & (END_STREAM | PRIORITY);
            if prio > 0 {
                block.priority.copy_from_slice(&p[start - PRIORITY_LEN..start]);
            }
            start..p.len() - pad
        } else if stream != block.stream {
            return self.give_up(out, stream, "CONTINUATION on another stream", true);
        } else {
            0..p.len()
        };
        block.raw.extend_from_slice(&self.head);
        block.raw.extend_from_slice(p);
        block.fragment.extend_from_slice(&p[fragment]);
        if flags & END_HEADERS != 0 {
            self.end_block(out)?;
        }
        Ok(())
    }

    /// Decodes the complete block; forwards it verbatim or re-encoded.
    fn end_block(&mut self, out: &mut Vec<u8>) -> Result<(), RewriteError> {
        let Some(block) = self.block.take() else {
            return Ok(());
        };
        let mut fix = false;
        let encoded = &mut self.encoded;
        encoded.clear();
        let decoded = self
            .decoder
            .decode_with_cb(&block.fragment, |name: Cow<[u8]>, value: Cow<[u8]>| {
                let value: &[u8] = if &*name == b":authority" && !valid_authority(&value) {
                    fix = true;
                    REPLACEMENT
                } else {
                    &value
                };
                encode_literal(&name, value, encoded);
            });
        if let Err(e) = decoded {
            if self.rewriting {
                return Err(RewriteError::Hpack {
                    stream: block.stream,
                    what: format!("{e:?}"),
                });
            }
            // h2 decodes the same bytes with the same table and answers the client itself.
            out.extend_from_slice(&block.raw);
            self.stage = Stage::Raw;
            return Ok(());
        }
        self.rewriting |= fix;
        if self.rewriting {
            write_block(&block, &self.encoded, out);
        } else {
            out.extend_from_slice(&block.raw);
        }
        Ok(())
    }

    /// The client broke a framing rule: h2 must see exactly what it sent, so pass it on and stop
    /// inspecting; impossible once h2's view of the connection differs from the client's.
    /// `with_payload`: the offending frame's payload was collected (else it is still to come,
    /// and passes as raw bytes).
    fn give_up(
        &mut self,
        out: &mut Vec<u8>,
        stream: u32,
        what: &'static str,
        with_payload: bool,
    ) -> Result<(), RewriteError> {
        if self.rewriting {
            return Err(RewriteError::Framing { stream, what });
        }
        if let Some(b) = self.block.take() {
            out.extend_from_slice(&b.raw);
        }
        out.extend_from_slice(&self.head);
        if with_payload {
            out.extend_from_slice(&self.payload);
        }
        self.payload.clear();
        self.stage = Stage::Raw;
        Ok(())
    }
}

/// RFC 7541 §6.2.2, literal header field without indexing, new name; no Huffman. Stateless.
fn encode_literal(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.push(0x00);
    for s in [name, value] {
        // Writing into a Vec cannot fail.
        let _ = encode_integer_into(s.len(), 7, 0, out);
        out.extend_from_slice(s);
    }
}

/// HEADERS (+ CONTINUATION) frames carrying `encoded` for `block`'s stream.
fn write_block(block: &Block, encoded: &[u8], out: &mut Vec<u8>) {
    let prio = block.flags & PRIORITY != 0;
    let first_room = MAX_FRAME_SIZE - if prio { PRIORITY_LEN } else { 0 };
    let (first, mut rest) = encoded.split_at(first_room.min(encoded.len()));
    let mut flags = block.flags | if rest.is_empty() { END_HEADERS } else { 0 };
    let len = first.len() + if prio { PRIORITY_LEN } else { 0 };
    frame_head(len, HEADERS, flags, block.stream, out);
    if prio {
        out.extend_from_slice(&block.priority);
    }
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, more) = rest.split_at(MAX_FRAME_SIZE.min(rest.len()));
        flags = if more.is_empty() { END_HEADERS } else { 0 };
        frame_head(chunk.len(), CONTINUATION, flags, block.stream, out);
        out.extend_from_slice(chunk);
        rest = more;
    }
}

fn frame_head(len: usize, kind: u8, flags: u8, stream: u32, out: &mut Vec<u8>) {
    let len = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    out.extend_from_slice(&len[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
}

#[cfg(test)]
#[path = "authority_tests.rs"]
pub(crate) mod tests;

//! The I/O shell around [`Rewriter`]: an accepted connection whose client→server bytes go through
//! the rewriter before tonic/h2 read them (see `authority.rs` for why). Server→client bytes and
//! everything else pass straight to the inner stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

use crate::authority::Rewriter;

/// Bytes read from the client per call; h2 reads in chunks of about this size too.
const READ_CHUNK: usize = 8 * 1024;

pub struct AuthorityStream<S> {
    inner: S,
    rewriter: Rewriter,
    input: Vec<u8>,
    /// Rewritten bytes not yet handed to h2, from `pos` on.
    out: Vec<u8>,
    pos: usize,
}

impl<S> AuthorityStream<S> {
    pub fn new(inner: S) -> Self {
        AuthorityStream {
            inner,
            rewriter: Rewriter::new(),
            input: Vec::new(),
            out: Vec::new(),
            pos: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pos < this.out.len() {
                let n = (this.out.len() - this.pos).min(buf.remaining());
                buf.put_slice(&this.out[this.pos..this.pos + n]);
                this.pos += n;
                return Poll::Ready(Ok(()));
            }
            this.out.clear();
            this.pos = 0;
            if this.input.len() < READ_CHUNK {
                this.input.resize(READ_CHUNK, 0);
            }
            let mut rb = ReadBuf::new(&mut this.input);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(())); // end of stream
            }
            this.rewriter
                .feed(&this.input[..n], &mut this.out)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: Connected> Connected for AuthorityStream<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::authority::tests::{PREFACE_BYTES, frame, literal};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// h2 itself as the judge: a request whose `:authority` is a socket path reaches h2's server
    /// as `localhost`, and what h2 writes reaches the client untouched.
    #[tokio::test]
    async fn h2_accepts_a_path_authority_through_the_adapter() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut block = Vec::new();
        for (n, v) in [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/v1beta1.DevicePlugin/Allocate"),
            (
                ":authority",
                "/var/lib/kubelet/plugins_registry/intel.com_vf.sock",
            ),
            ("content-type", "application/grpc"),
        ] {
            literal(n.as_bytes(), v.as_bytes(), &mut block);
        }
        let mut sent = PREFACE_BYTES.to_vec();
        sent.extend(frame(0x4, 0, 0, &[])); // SETTINGS
        sent.extend(frame(0x1, 0x4 | 0x1, 1, &block)); // HEADERS, END_HEADERS | END_STREAM
        client.write_all(&sent).await.unwrap();
        let server = tokio::spawn(async move {
            let mut conn = h2::server::handshake(AuthorityStream::new(server)).await.unwrap();
            let (req, mut respond) = conn.accept().await.unwrap().unwrap();
            let authority = req.uri().authority().map(|a| a.to_string());
            respond.send_response(http::Response::new(()), true).unwrap();
            tokio::spawn(async move { while conn.accept().await.is_some() {} });
            (authority, req.uri().path().to_string())
        });
        let (authority, path) = server.await.unwrap();
        assert_eq!(authority.as_deref(), Some("localhost"));
        assert_eq!(path, "/v1beta1.DevicePlugin/Allocate");
        // The server's SETTINGS frame arrives as h2 wrote it.
        let mut head = [0u8; 9];
        client.read_exact(&mut head).await.unwrap();
        assert_eq!((head[3], head[8]), (0x4, 0), "a SETTINGS frame on stream 0");
    }
}

//! RESP2 on a TCP stream: the connection to a Redis server (or a Sentinel), and the guard on
//! what a client may send.
//!
//! Frames are parsed and encoded by the `redis-protocol` crate; this module adds the socket,
//! timeouts, and the one thing a proxy must know about a failed request: whether the command
//! could have reached the server ([`ConnError::sent`]).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redis_protocol::codec::Resp2;
use redis_protocol::resp2::types::BytesFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Encoder};

/// A RESP2 frame, as the `redis-protocol` crate parses it.
pub type Frame = BytesFrame;

/// Largest frame a client may send (Redis's own `proto-max-bulk-len` default is 512 MB; a
/// proxy holding requests in memory during a failover takes less).
pub const MAX_CLIENT_FRAME: usize = 64 * 1024 * 1024;

/// A command as a RESP2 array of bulk strings, e.g. `command(&["SENTINEL", "masters"])`.
pub fn command(parts: &[&str]) -> Frame {
    Frame::Array(
        parts
            .iter()
            .map(|p| Frame::BulkString(Bytes::copy_from_slice(p.as_bytes())))
            .collect(),
    )
}

/// Why a request to a server failed, and whether the command may have reached it.
#[derive(Debug)]
pub struct ConnError {
    /// What went wrong on the socket (`ConnectionRefused`, `ConnectionReset`,
    /// `UnexpectedEof` for a closed connection, `TimedOut`, `InvalidData` for a reply that
    /// is not RESP).
    pub kind: io::ErrorKind,
    /// `false`: the command was certainly not sent (the connection could not be made, or was
    /// found closed before writing). `true`: some of it may have reached the server, so it
    /// may have run.
    pub sent: bool,
    detail: String,
}

impl ConnError {
    pub(crate) fn before_send(err: &io::Error) -> ConnError {
        ConnError {
            kind: err.kind(),
            sent: false,
            detail: err.to_string(),
        }
    }

    fn after_send(kind: io::ErrorKind, detail: impl Into<String>) -> ConnError {
        ConnError {
            kind,
            sent: true,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for ConnError {}

/// One connection to a Redis server or Sentinel, speaking RESP2 request by request.
///
/// Not cancel-safe in the middle of a request: a dropped [`request`](Self::request) leaves
/// the reply unread, so the connection must be dropped too (the pool only takes back
/// connections whose request completed).
#[derive(Debug)]
pub struct RespConn {
    stream: TcpStream,
    peer: SocketAddr,
    read: BytesMut,
    write: BytesMut,
    codec: Resp2,
}

impl RespConn {
    /// Connects to `addr` within `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<RespConn> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(stream) => stream?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connecting to {addr} timed out after {timeout:?}"),
                ));
            }
        };
        stream.set_nodelay(true)?;
        Ok(RespConn {
            stream,
            peer: addr,
            read: BytesMut::with_capacity(4096),
            write: BytesMut::with_capacity(4096),
            codec: Resp2::default(),
        })
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the server has closed the connection (or reset it) while it sat idle. A
    /// killed server's pooled connections are found here, before anything is sent on them,
    /// so a request on one is still safe to retry.
    pub fn is_closed(&self) -> bool {
        let mut probe = [0u8; 1];
        match self.stream.try_read(&mut probe) {
            Ok(0) => true,
            // Unsolicited data on an idle request/reply connection: out of step, unusable.
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        }
    }

    /// Sends one command and reads its one reply, within `timeout`.
    ///
    /// # Cancel safety
    ///
    /// Not cancel-safe: dropping the future mid-request leaves the connection out of step;
    /// drop the connection with it.
    pub async fn request(&mut self, frame: &Frame, timeout: Duration) -> Result<Frame, ConnError> {
        match tokio::time::timeout(timeout, self.request_inner(frame)).await {
            Ok(result) => result,
            Err(_) => Err(ConnError::after_send(
                io::ErrorKind::TimedOut,
                format!("no reply from {} within {timeout:?}", self.peer),
            )),
        }
    }

    /// Sends several commands in one write and reads their replies in order.
    pub async fn pipeline(
        &mut self,
        frames: &[Frame],
        timeout: Duration,
    ) -> Result<Vec<Frame>, ConnError> {
        let work = async {
            for frame in frames {
                self.encode(frame)?;
            }
            self.flush().await?;
            let mut replies = Vec::with_capacity(frames.len());
            for _ in frames {
                replies.push(self.read_frame().await?);
            }
            Ok(replies)
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(ConnError::after_send(
                io::ErrorKind::TimedOut,
                format!("no reply from {} within {timeout:?}", self.peer),
            )),
        }
    }

    /// Sends a command without waiting for its reply (a subscription's first message is
    /// read with [`read_frame`](Self::read_frame)).
    pub async fn send(&mut self, frame: &Frame) -> Result<(), ConnError> {
        self.encode(frame)?;
        self.flush().await
    }

    /// Reads the next frame the server sends.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: bytes already read stay buffered for the next call.
    pub async fn read_frame(&mut self) -> Result<Frame, ConnError> {
        loop {
            match self.codec.decode(&mut self.read) {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => {
                    return Err(ConnError::after_send(
                        io::ErrorKind::InvalidData,
                        format!("{} sent a reply that is not RESP2: {e}", self.peer),
                    ));
                }
            }
            match self.stream.read_buf(&mut self.read).await {
                Ok(0) => {
                    return Err(ConnError::after_send(
                        io::ErrorKind::UnexpectedEof,
                        format!("{} closed the connection", self.peer),
                    ));
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(ConnError::after_send(
                        e.kind(),
                        format!("reading from {}: {e}", self.peer),
                    ));
                }
            }
        }
    }

    async fn request_inner(&mut self, frame: &Frame) -> Result<Frame, ConnError> {
        self.encode(frame)?;
        self.flush().await?;
        self.read_frame().await
    }

    fn encode(&mut self, frame: &Frame) -> Result<(), ConnError> {
        self.codec
            .encode(frame.clone(), &mut self.write)
            .map_err(|e| ConnError {
                kind: io::ErrorKind::InvalidInput,
                sent: false,
                detail: format!("encoding a command: {e}"),
            })
    }

    async fn flush(&mut self) -> Result<(), ConnError> {
        let result = self.stream.write_all(&self.write).await;
        self.write.clear();
        result
            .map_err(|e| ConnError::after_send(e.kind(), format!("writing to {}: {e}", self.peer)))
    }
}

/// A frame's text, if it is a simple or bulk string.
pub fn text(frame: &Frame) -> Option<&str> {
    match frame {
        Frame::SimpleString(b) | Frame::BulkString(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// Why a client's bytes are not a request this proxy accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

impl From<io::Error> for ProtocolError {
    fn from(e: io::Error) -> ProtocolError {
        ProtocolError(e.to_string())
    }
}

/// The decoder for what clients send: the `redis-protocol` RESP2 decoder behind a guard
/// that enforces Redis's own request grammar (an array of bulk strings, as every client
/// library sends) and a size bound. The guard only scans lengths; frames come from the
/// crate. It keeps a hostile client from making the proxy buffer without bound or recurse
/// into deeply nested arrays.
#[derive(Debug, Default)]
pub struct ClientCodec {
    inner: Resp2,
    /// How far the request at the front of the buffer has been checked.
    scan: Option<Scan>,
    /// Argument headers examined so far (a test's measure of the guard's work).
    #[cfg(test)]
    examined: usize,
}

/// The guard's progress through the request at the front of the buffer: offsets count
/// from the buffer's start, which moves only when a whole request is taken out.
#[derive(Debug, Clone, Copy)]
struct Scan {
    /// Arguments not yet seen whole.
    args_left: i64,
    /// Where the next argument's `$L\r\n` starts.
    at: usize,
}

impl ClientCodec {
    /// Checks that `src` starts with a well-formed request prefix: `*N\r\n` then up to N
    /// `$L\r\n<L bytes>\r\n`. `Ok(true)`: a whole request is there; `Ok(false)`: well
    /// formed so far, incomplete.
    ///
    /// The check resumes where the last call stopped ([`Scan`]), so a request arriving in
    /// many pieces is scanned once, not once per piece.
    fn guard(&mut self, src: &[u8]) -> Result<bool, ProtocolError> {
        if src.len() > MAX_CLIENT_FRAME {
            return Err(ProtocolError(format!(
                "request larger than {MAX_CLIENT_FRAME} bytes"
            )));
        }
        let mut scan = match self.scan {
            Some(scan) => scan,
            None => {
                let Some(&first) = src.first() else {
                    return Ok(false);
                };
                if first != b'*' {
                    return Err(ProtocolError(format!(
                        "expected '*', got '{}' (this proxy accepts RESP arrays of bulk strings only, not inline commands)",
                        char::from(first).escape_default()
                    )));
                }
                let Some((count, at)) = Self::length_line(src, 0)? else {
                    return Ok(false);
                };
                if count < 1 {
                    return Err(ProtocolError(
                        "a request is an array of at least one bulk string".into(),
                    ));
                }
                Scan {
                    args_left: count,
                    at,
                }
            }
        };
        let complete = loop {
            if scan.args_left == 0 {
                break true;
            }
            #[cfg(test)]
            {
                self.examined += 1;
            }
            let Some(&kind) = src.get(scan.at) else {
                break false;
            };
            if kind != b'$' {
                return Err(ProtocolError(format!(
                    "expected '$', got '{}'",
                    char::from(kind).escape_default()
                )));
            }
            let Some((len, body)) = Self::length_line(src, scan.at)? else {
                break false;
            };
            if len < 0 {
                return Err(ProtocolError("invalid bulk length".into()));
            }
            let next = body.saturating_add(len as usize).saturating_add(2);
            if next > src.len() {
                break false;
            }
            scan.at = next;
            scan.args_left -= 1;
        };
        self.scan = Some(scan);
        Ok(complete)
    }

    /// Parses the `*N\r\n` or `$L\r\n` line at `at`: `(N, index after the line)`.
    fn length_line(src: &[u8], at: usize) -> Result<Option<(i64, usize)>, ProtocolError> {
        let rest = &src[at + 1..];
        let Some(end) = rest.iter().position(|&b| b == b'\r') else {
            if rest.len() > 20 {
                return Err(ProtocolError("length line too long".into()));
            }
            return Ok(None);
        };
        let digits = std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|n| *n <= MAX_CLIENT_FRAME as i64)
            .ok_or_else(|| ProtocolError("invalid length".into()))?;
        Ok(Some((digits, at + 1 + end + 2)))
    }
}

impl Decoder for ClientCodec {
    type Item = Frame;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        match self.guard(src) {
            Ok(true) => {}
            // Parsed only once whole: parsing each piece again would be quadratic too.
            Ok(false) => return Ok(None),
            Err(e) => {
                self.scan = None;
                return Err(e);
            }
        }
        let decoded = self
            .inner
            .decode(src)
            .map_err(|e| ProtocolError(e.to_string()));
        if !matches!(decoded, Ok(None)) {
            // A request was taken out of the buffer (or the connection is done).
            self.scan = None;
        }
        decoded
    }
}

/// Encodes a reply for a client into `dst`.
pub fn encode_reply(frame: Frame, dst: &mut BytesMut) {
    // Encoding an owned frame into a growable buffer cannot fail.
    let _ = Resp2::default().encode(frame, dst);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<Option<Frame>, ProtocolError> {
        ClientCodec::default().decode(&mut BytesMut::from(bytes))
    }

    #[test]
    fn a_request_decodes_to_an_array_of_bulk_strings() {
        assert_eq!(
            decode(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap(),
            Some(command(&["GET", "k"]))
        );
    }

    #[test]
    fn an_incomplete_request_waits_for_more_bytes() {
        assert_eq!(decode(b"*2\r\n$3\r\nGET\r\n$1").unwrap(), None);
        assert_eq!(decode(b"*2\r").unwrap(), None);
    }

    #[test]
    fn an_inline_command_is_refused_with_a_clear_error() {
        let err = decode(b"PING\r\n").unwrap_err();
        assert!(err.to_string().contains("expected '*', got 'P'"), "{err}");
    }

    #[test]
    fn a_nested_array_is_refused_before_parsing() {
        let err = decode(b"*1\r\n*1\r\n*1\r\n").unwrap_err();
        assert!(err.to_string().contains("expected '$', got '*'"), "{err}");
    }

    #[test]
    fn an_oversized_bulk_length_is_refused() {
        let err = decode(b"*1\r\n$99999999999\r\n").unwrap_err();
        assert!(err.to_string().contains("invalid length"), "{err}");
    }

    #[test]
    fn a_request_arriving_in_pieces_is_checked_once_not_once_per_piece() {
        // A large MSET, as a client loading data sends it, arriving 100 bytes at a time.
        let args = 20_000;
        let mut request = format!("*{}\r\n$4\r\nMSET\r\n", args + 1).into_bytes();
        for i in 0..args {
            let arg = format!("k{i:05}");
            request.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
        let mut codec = ClientCodec::default();
        let mut buf = BytesMut::new();
        let mut decoded = None;
        let pieces = request.chunks(100).count();
        for piece in request.chunks(100) {
            buf.extend_from_slice(piece);
            if let Some(frame) = codec.decode(&mut buf).unwrap() {
                decoded = Some(frame);
            }
        }
        let Some(Frame::Array(parts)) = decoded else {
            panic!("the request decodes");
        };
        assert_eq!(parts.len(), args + 1);
        // Each argument's header once, plus one per piece that ends inside it. Rescanning
        // from the start on every piece is quadratic: a 25 MB MSET kept a worker busy for
        // minutes.
        assert!(
            codec.examined <= args + 1 + pieces,
            "{} argument headers examined for {} arguments in {pieces} pieces",
            codec.examined,
            args + 1
        );
    }

    #[test]
    fn pipelined_requests_decode_one_after_the_other() {
        let mut codec = ClientCodec::default();
        let mut buf =
            BytesMut::from(&b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(command(&["PING"])));
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(command(&["GET", "k"]))
        );
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\n$4\r\nPING\r\n");
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(command(&["PING"])));
        assert!(buf.is_empty());
    }

    #[test]
    fn garbage_lengths_are_refused() {
        assert!(decode(b"*x\r\n").is_err());
        assert!(decode(b"*0\r\n").is_err());
        assert!(decode(b"*1\r\n$-1\r\n").is_err());
    }
}

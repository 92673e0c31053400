//! One client connection: read commands, answer them in order, and notice a hang-up.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio_util::codec::Decoder;

use crate::resp::{ClientCodec, Frame, ProtocolError, encode_reply};
use crate::router::{Core, Reply};

/// Commands read ahead (pipelined) while one is being answered, at most.
const MAX_PIPELINED: usize = 1024;

/// The reading side of a client: bytes in, decoded commands queued.
struct Input {
    read: OwnedReadHalf,
    buf: BytesMut,
    codec: ClientCodec,
    queued: VecDeque<Result<Frame, ProtocolError>>,
    /// The client sent malformed bytes: nothing after them is read.
    broken: bool,
    /// The client closed its side (or the socket failed).
    closed: bool,
}

impl Input {
    /// Reads once from the socket and queues every complete command.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: `read_buf` either read bytes (and they are then decoded) or did not.
    async fn fill(&mut self) {
        match self.read.read_buf(&mut self.buf).await {
            Ok(0) | Err(_) => self.closed = true,
            Ok(_) => loop {
                match self.codec.decode(&mut self.buf) {
                    Ok(Some(frame)) => self.queued.push_back(Ok(frame)),
                    Ok(None) => break,
                    Err(e) => {
                        self.queued.push_back(Err(e));
                        self.broken = true;
                        break;
                    }
                }
            },
        }
    }

    fn may_read(&self) -> bool {
        !self.closed && !self.broken && self.queued.len() < MAX_PIPELINED
    }
}

/// Serves one client until it hangs up, sends malformed RESP, or sends `QUIT`.
///
/// Commands are answered one at a time, in order (pipelined commands are read ahead and
/// queued). Replies go out in order too: together when pipelined, and without waiting
/// for a later command that takes long (one held by the buffer). While a command is being answered, possibly held by the buffer, the
/// connection is still read: if the client hangs up, the command's future is dropped,
/// which cancels a held request and frees its slot, so a write is never sent for a client
/// that gave up. As Redis does, a closed read side counts as a hang-up.
pub(crate) async fn serve(core: Arc<Core>, stream: TcpStream, peer: SocketAddr) {
    let (read, mut write) = stream.into_split();
    let mut input = Input {
        read,
        buf: BytesMut::with_capacity(4096),
        codec: ClientCodec::default(),
        queued: VecDeque::new(),
        broken: false,
        closed: false,
    };
    let mut out = BytesMut::with_capacity(4096);
    loop {
        let next = loop {
            if let Some(next) = input.queued.pop_front() {
                break next;
            }
            if input.closed || input.broken {
                return;
            }
            input.fill().await;
        };
        let frame = match next {
            Ok(frame) => frame,
            Err(e) => {
                tracing::info!(%peer, error = %e, "closing a client that sent malformed RESP");
                metrics::counter!("redis_router_protocol_errors").increment(1);
                encode_reply(Frame::Error(format!("ERR {e}").into()), &mut out);
                let _ = write.write_all(&out).await;
                return;
            }
        };
        let answer = core.handle(frame);
        tokio::pin!(answer);
        let reply = loop {
            tokio::select! {
                reply = &mut answer => break Some(reply),
                () = input.fill(), if input.may_read() => {
                    if input.closed {
                        break None;
                    }
                }
                // Replies already answered go out meanwhile: this command may be held
                // for seconds. Cancel-safe: `write_buf` takes out of `out` only what it
                // wrote.
                written = write.write_buf(&mut out), if !out.is_empty() => {
                    if matches!(written, Ok(0) | Err(_)) {
                        return;
                    }
                }
            }
        };
        let Some(reply) = reply else {
            tracing::debug!(%peer, "client hung up with a command in flight; cancelled");
            return;
        };
        let quit = matches!(reply, Reply::Quit);
        match reply {
            Reply::Frame(frame) => encode_reply(frame, &mut out),
            Reply::Quit => encode_reply(Frame::SimpleString("OK".into()), &mut out),
        }
        // Pipelined replies go out together, once no command is waiting, or while the next
        // one is being answered (above).
        if quit || input.queued.is_empty() {
            if write.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if quit {
            return;
        }
    }
}

//! A small pool of connections to one server.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::resp::{ConnError, RespConn};

/// Idle connections to one server, reused request by request.
///
/// A connection is taken for one request and given back only if that request completed, so
/// an idle connection is always in step. A connection the server closed while it sat idle
/// is found and dropped at checkout, before anything is sent on it.
#[derive(Debug)]
pub struct Pool {
    addr: SocketAddr,
    idle: Mutex<Vec<RespConn>>,
    max_idle: usize,
    connect_timeout: Duration,
}

impl Pool {
    /// A pool for `addr` keeping at most `max_idle` idle connections.
    pub fn new(addr: SocketAddr, max_idle: usize, connect_timeout: Duration) -> Pool {
        Pool {
            addr,
            idle: Mutex::new(Vec::new()),
            max_idle,
            connect_timeout,
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An idle connection, or a new one. An error here means nothing was sent.
    pub async fn checkout(&self) -> Result<RespConn, ConnError> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match idle {
                Some(conn) if conn.is_closed() => continue,
                Some(conn) => return Ok(conn),
                None => break,
            }
        }
        RespConn::connect(self.addr, self.connect_timeout)
            .await
            .map_err(|e| ConnError::before_send(&e))
    }

    /// Gives back a connection whose last request completed.
    pub fn checkin(&self, conn: RespConn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    /// Drops every idle connection (the server is known to be gone).
    pub fn clear(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

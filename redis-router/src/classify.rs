//! Which failures are a failover, and what they say about whether the command ran.

use std::fmt;
use std::io;

use failover_buffer_tokio::FailoverCause;

use crate::resp::{ConnError, Frame};

/// A failure that means "the primary is changing": the request goes back through the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailoverError {
    /// An error reply Redis gives without executing the command: `READONLY` (the server is
    /// a replica now), `LOADING` (a restarted or resynced server loading its dataset),
    /// `MASTERDOWN` (a replica that lost its primary), `NOREPLICAS` (the primary lost the
    /// replicas `min-replicas-to-write` requires, as the old primary does once Sentinel has
    /// promoted its replica), and Cluster's `CLUSTERDOWN`.
    Reply(String),
    /// The connection to the primary was refused, reset or closed before the command was
    /// sent (or, for a command on the replay allow-list, after).
    Connection {
        /// The socket error.
        kind: io::ErrorKind,
        /// Its text.
        detail: String,
    },
    /// No server is known to be primary right now.
    NoPrimary,
}

/// The error prefixes of replies that Redis gives without running the command, during a
/// failover.
pub const FAILOVER_REPLIES: &[&str] = &[
    "READONLY",
    "LOADING",
    "MASTERDOWN",
    "NOREPLICAS",
    "CLUSTERDOWN",
];

impl FailoverError {
    /// The cause the buffer is told. Every Redis failover error is a change of primary.
    pub fn cause(&self) -> FailoverCause {
        FailoverCause::Reparent
    }

    /// A short label for logs and metrics (`readonly`, `loading`, `refused`, `reset`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            FailoverError::Reply(text) => match text.split(' ').next().unwrap_or("") {
                "READONLY" => "readonly",
                "LOADING" => "loading",
                "MASTERDOWN" => "masterdown",
                "NOREPLICAS" => "noreplicas",
                "TRYAGAIN" => "tryagain",
                "CLUSTERDOWN" => "clusterdown",
                _ => "reply",
            },
            FailoverError::Connection { kind, .. } => match kind {
                io::ErrorKind::ConnectionRefused => "refused",
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => "reset",
                io::ErrorKind::UnexpectedEof => "closed",
                io::ErrorKind::TimedOut => "timeout",
                _ => "io",
            },
            FailoverError::NoPrimary => "no_primary",
        }
    }

    /// The error frame a client gets when its attempts are used up.
    pub fn to_reply(&self) -> Frame {
        match self {
            FailoverError::Reply(text) => Frame::Error(text.clone().into()),
            FailoverError::Connection { detail, .. } => Frame::Error(
                format!("ERR failover-buffer: the primary is unreachable: {detail}").into(),
            ),
            FailoverError::NoPrimary => {
                Frame::Error("ERR failover-buffer: no primary is known right now".into())
            }
        }
    }
}

impl fmt::Display for FailoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailoverError::Reply(text) => write!(f, "-{text}"),
            FailoverError::Connection { detail, .. } => f.write_str(detail),
            FailoverError::NoPrimary => f.write_str("no primary known"),
        }
    }
}

/// The failover error in a reply, if it is one. Other replies, errors included, go to the
/// client as they are.
pub fn reply_failover(reply: &Frame) -> Option<FailoverError> {
    let Frame::Error(text) = reply else {
        return None;
    };
    let code = text.split(' ').next().unwrap_or("");
    FAILOVER_REPLIES
        .contains(&code)
        .then(|| FailoverError::Reply(text.to_string()))
}

/// A socket failure as a failover error. Every socket failure to the primary is one: a
/// primary that is killed, restarted or partitioned away refuses, resets or closes.
pub fn connection_failover(err: &ConnError) -> FailoverError {
    FailoverError::Connection {
        kind: err.kind,
        detail: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readonly_loading_masterdown_are_failover_replies() {
        for text in [
            "READONLY You can't write against a read only replica.",
            "LOADING Redis is loading the dataset in memory",
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            "NOREPLICAS Not enough good replicas to write.",
        ] {
            let e = reply_failover(&Frame::Error(text.into())).expect(text);
            assert_eq!(e.cause(), FailoverCause::Reparent);
        }
    }

    #[test]
    fn other_errors_and_values_are_not_failovers() {
        for text in [
            "ERR unknown command 'FOO'",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            "READONLYX not a code",
            // A slot migration, not a failover: retried by the router, never buffered.
            "TRYAGAIN Multiple keys request during rehashing of slot",
        ] {
            assert_eq!(reply_failover(&Frame::Error(text.into())), None, "{text}");
        }
        assert_eq!(reply_failover(&Frame::SimpleString("OK".into())), None);
    }
}

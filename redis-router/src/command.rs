//! A client's command: its frame, its name, and what the proxy does with it.

use bytes::Bytes;

use crate::resp::Frame;

/// One command from a client: the frame forwarded as is, and its upper-cased name.
#[derive(Debug, Clone)]
pub struct Command {
    frame: Frame,
    name: String,
}

/// What the proxy does with a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Forward to the primary.
    Forward,
    /// Answer `+OK` and close the connection (`QUIT`).
    Quit,
    /// Refuse: the command needs a connection of its own (transactions, subscriptions,
    /// `SELECT`, `HELLO`, ...), which a pooled proxy cannot give.
    Unsupported,
}

/// Commands that keep state on the server connection. A proxy that sends each command on
/// any pooled connection cannot honour them, so it refuses them with a clear error rather
/// than run them on a connection the next command will not see.
const CONNECTION_STATE: &[&str] = &[
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH",
    "UNWATCH",
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
    "MONITOR",
    "SELECT",
    "HELLO",
    "AUTH",
    "RESET",
    "CLIENT",
    "READONLY",
    "READWRITE",
    "SYNC",
    "PSYNC",
    "REPLCONF",
    // Count the replicas that acknowledged the last write of *their* connection: on a
    // pooled one that did not write, they report replicas that lack the client's write.
    "WAIT",
    "WAITAOF",
    // Lets the connection's next command reach a slot being imported. The router follows
    // `-ASK` redirects itself (sending `ASKING` on the connection it redirects to), so a
    // client never needs it; forwarded, the flag would be spent by whichever command next
    // used that pooled connection, likely another client's.
    "ASKING",
];

impl Command {
    /// Reads a command from a client's frame: an array of bulk strings (the codec's guard
    /// has already checked that shape).
    pub fn from_frame(frame: Frame) -> Option<Command> {
        let name = match &frame {
            Frame::Array(parts) => match parts.first() {
                Some(Frame::BulkString(b)) => String::from_utf8_lossy(b).to_ascii_uppercase(),
                _ => return None,
            },
            _ => return None,
        };
        Some(Command { frame, name })
    }

    /// The command's name, upper-cased (`GET`, `SET`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The frame, as the client sent it.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// The arguments after the name, as bytes.
    pub fn args(&self) -> impl Iterator<Item = &[u8]> {
        let parts: &[Frame] = match &self.frame {
            Frame::Array(parts) => parts,
            _ => &[],
        };
        parts.iter().skip(1).filter_map(|p| match p {
            Frame::BulkString(b) => Some(&b[..]),
            _ => None,
        })
    }

    /// The same command with the part at `index` (0 is the name) replaced by `value`; the
    /// command itself if it has no such part.
    pub fn with_argument(&self, index: usize, value: Bytes) -> Command {
        let mut frame = self.frame.clone();
        if let Frame::Array(parts) = &mut frame {
            if let Some(part) = parts.get_mut(index) {
                *part = Frame::BulkString(value);
            }
        }
        Command {
            frame,
            name: self.name.clone(),
        }
    }

    /// What the proxy does with it.
    pub fn handling(&self) -> Handling {
        if self.name == "QUIT" {
            Handling::Quit
        } else if CONNECTION_STATE.contains(&self.name.as_str()) {
            Handling::Unsupported
        } else {
            Handling::Forward
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(parts: &[&str]) -> Command {
        Command::from_frame(crate::resp::command(parts)).unwrap()
    }

    #[test]
    fn asking_is_refused_because_its_flag_would_reach_another_clients_command() {
        assert_eq!(command(&["asking"]).handling(), Handling::Unsupported);
    }

    #[test]
    fn ordinary_commands_are_forwarded_and_quit_closes() {
        assert_eq!(command(&["GET", "k"]).handling(), Handling::Forward);
        assert_eq!(command(&["quit"]).handling(), Handling::Quit);
    }
}

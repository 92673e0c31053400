//! The replay rule: which commands may be sent again after their connection died with the
//! command already sent.
//!
//! A proxy cannot know whether a command whose reply was lost ran. So it retries a command
//! only when the primary cannot have executed it:
//! * the connection failed before the command was sent (refused, or a pooled connection
//!   found closed before writing), or no primary was known;
//! * the reply is an error Redis gives without executing: see
//!   [`FAILOVER_REPLIES`](crate::classify::FAILOVER_REPLIES) (and Cluster's `TRYAGAIN`,
//!   sent again shortly without buffering).
//!
//! A command whose connection died after it was sent (reset, closed, timed out) is answered
//! with an error naming that uncertainty, unless it is on the allow-list of this
//! [`ReplayPolicy`]: commands whose second run leaves the same data and gives the same reply
//! as the first (reads, and writes that set a value outright). This rule is what makes "no
//! lost or duplicated write" true: the buffer decides *when* a retry goes out, never
//! *whether* a command may run twice.

use std::collections::HashSet;

use crate::command::Command;

/// Read commands and value-setting writes: running any of them twice leaves the same data
/// and gives the same reply. `SET` is allowed only in its plain form (no `GET`, `NX`, `XX`,
/// whose replies depend on what was there before).
pub const DEFAULT_ALLOW_LIST: &[&str] = &[
    "PING",
    "ECHO",
    "GET",
    "MGET",
    "EXISTS",
    "STRLEN",
    "GETRANGE",
    "TTL",
    "PTTL",
    "TYPE",
    "HGET",
    "HMGET",
    "HGETALL",
    "HLEN",
    "HEXISTS",
    "LLEN",
    "LRANGE",
    "LINDEX",
    "SCARD",
    "SMEMBERS",
    "SISMEMBER",
    "ZCARD",
    "ZSCORE",
    "ZRANGE",
    "DBSIZE",
    "SET",
    "SETEX",
    "PSETEX",
    "MSET",
];

/// Which commands may be replayed after their connection died once sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayPolicy {
    allow: HashSet<String>,
}

impl Default for ReplayPolicy {
    fn default() -> Self {
        ReplayPolicy::allow(DEFAULT_ALLOW_LIST.iter().copied())
    }
}

impl ReplayPolicy {
    /// A policy allowing exactly these command names (case-insensitive). `SET` stays
    /// restricted to its plain form.
    pub fn allow<'a>(names: impl IntoIterator<Item = &'a str>) -> ReplayPolicy {
        ReplayPolicy {
            allow: names.into_iter().map(|n| n.to_ascii_uppercase()).collect(),
        }
    }

    /// A policy that replays nothing sent.
    pub fn none() -> ReplayPolicy {
        ReplayPolicy {
            allow: HashSet::new(),
        }
    }

    /// Whether `command` may be sent again although it may have run.
    pub fn may_replay(&self, command: &Command) -> bool {
        if !self.allow.contains(command.name()) {
            return false;
        }
        if command.name() == "SET" {
            // SET k v [NX|XX] [GET] [EX s|PX ms|EXAT|PXAT|KEEPTTL]: only the options that
            // make the reply independent of the previous value are fine.
            return !command.args().skip(2).any(|a| {
                a.eq_ignore_ascii_case(b"GET")
                    || a.eq_ignore_ascii_case(b"NX")
                    || a.eq_ignore_ascii_case(b"XX")
            });
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::command;

    fn cmd(parts: &[&str]) -> Command {
        Command::from_frame(command(parts)).unwrap()
    }

    #[test]
    fn plain_set_and_get_may_be_replayed() {
        let policy = ReplayPolicy::default();
        assert!(policy.may_replay(&cmd(&["get", "k"])));
        assert!(policy.may_replay(&cmd(&["SET", "k", "v", "EX", "10"])));
    }

    #[test]
    fn set_with_get_nx_or_xx_is_not_replayed() {
        let policy = ReplayPolicy::default();
        for opt in ["GET", "nx", "XX"] {
            assert!(!policy.may_replay(&cmd(&["SET", "k", "v", opt])), "{opt}");
        }
        // A value that happens to read "GET" is a value, not the option.
        assert!(policy.may_replay(&cmd(&["SET", "k", "GET"])));
    }

    #[test]
    fn incr_is_never_replayed_by_default() {
        assert!(!ReplayPolicy::default().may_replay(&cmd(&["INCR", "n"])));
        assert!(!ReplayPolicy::none().may_replay(&cmd(&["GET", "n"])));
    }
}

//! Commands that answer for the whole keyspace, in front of a cluster.
//!
//! A cluster node answers `SCAN`, `KEYS`, `DBSIZE` or `FLUSHALL` for its own slots only, and
//! loads a script or a function for itself only. Sent to one shard, such a command gives a
//! partial answer; sent to a different shard each time (as keyless commands are), a `SCAN`
//! cursor from one node was continued on another, so an iteration skipped or repeated keys
//! or never ended. So the router asks every shard that owns slots, one after the other (each
//! through its own buffer), and merges the answers into the one a single server gives:
//!
//! - `DBSIZE`: the sum; `KEYS`: every shard's keys;
//! - `SCAN`: one shard's batch per call, the router's cursor naming the shard and that node's
//!   own cursor (see [`ScanCursor`]);
//! - `FLUSHALL`, `FLUSHDB`, `SCRIPT LOAD`/`FLUSH`, `FUNCTION LOAD`/`DELETE`/`FLUSH`/`RESTORE`:
//!   sent to every shard; the first error reply, else the last reply (the same on every shard).
//!
//! The merge stops at the first error reply, which goes to the client as is.

use bytes::Bytes;

use crate::command::Command;
use crate::resp::Frame;

/// How the router answers a command for the whole keyspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyspace {
    /// Sent to every shard: the first error, else the last reply.
    Everywhere,
    /// `DBSIZE`: the sum of every shard's count.
    Sum,
    /// `KEYS`: every shard's keys, shard after shard.
    Concat,
    /// `SCAN`: one shard's batch per call, through a [`ScanCursor`].
    Scan,
}

impl Keyspace {
    /// Whether `command` answers for the whole keyspace, and how. `None`: it goes to the
    /// shard of its key (or, keyless, to any one shard).
    pub(crate) fn of(command: &Command) -> Option<Keyspace> {
        let sub = command.args().next().map(|s| s.to_ascii_uppercase());
        let sub = sub.as_deref();
        match command.name() {
            "SCAN" => Some(Keyspace::Scan),
            "KEYS" => Some(Keyspace::Concat),
            "DBSIZE" => Some(Keyspace::Sum),
            "FLUSHALL" | "FLUSHDB" => Some(Keyspace::Everywhere),
            "SCRIPT" if matches!(sub, Some(b"LOAD" | b"FLUSH")) => Some(Keyspace::Everywhere),
            "FUNCTION" if matches!(sub, Some(b"LOAD" | b"DELETE" | b"FLUSH" | b"RESTORE")) => {
                Some(Keyspace::Everywhere)
            }
            _ => None,
        }
    }
}

/// Where a cluster-wide `SCAN` stands: the shard being scanned (its index among the
/// router's shards, which never changes once registered) and that node's own cursor.
///
/// The client sees one number: the shard in the top 16 bits and the node's cursor in the
/// low 48 (a node's cursor is below its hash table's size, so 48 bits hold the cursor of a
/// node with up to 2^48 buckets). Cursor 0 starts at the first shard and, as on one server,
/// a reply with cursor 0 ends the iteration. A key present on its shard for the whole
/// iteration is returned at least once, Redis's own guarantee, as long as its slot does not
/// move to another shard meanwhile (a slot migrated during a scan may be seen twice or not
/// at all, as with a cluster client that scans node by node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanCursor {
    /// The index of the shard being scanned.
    pub(crate) shard: usize,
    /// That shard's primary's own cursor.
    pub(crate) node: u64,
}

const NODE_BITS: u32 = 48;
const NODE_MASK: u64 = (1 << NODE_BITS) - 1;

impl ScanCursor {
    /// Reads a client's cursor argument; `None` if it is not a cursor this router gave
    /// (Redis's own reply is then `-ERR invalid cursor`).
    pub(crate) fn parse(arg: &[u8]) -> Option<ScanCursor> {
        let value: u64 = std::str::from_utf8(arg).ok()?.parse().ok()?;
        Some(ScanCursor {
            shard: usize::try_from(value >> NODE_BITS).ok()?,
            node: value & NODE_MASK,
        })
    }

    /// The number the client gets; `None` if the node's cursor or the shard index does not
    /// fit (a node with more than 2^48 buckets, or more than 65,535 shards).
    pub(crate) fn encode(self) -> Option<u64> {
        let shard = u64::try_from(self.shard).ok()?;
        if self.node > NODE_MASK || shard >> (64 - NODE_BITS) != 0 {
            return None;
        }
        Some(shard << NODE_BITS | self.node)
    }

    /// Where the iteration goes after `shard` answered with its node's cursor `next`:
    /// further on that shard, or to the next shard owning slots (`owning`, ascending), or
    /// nowhere (the end: `None`).
    pub(crate) fn after(shard: usize, next: u64, owning: &[usize]) -> Option<ScanCursor> {
        if next != 0 {
            return Some(ScanCursor { shard, node: next });
        }
        owning
            .iter()
            .find(|&&i| i > shard)
            .map(|&i| ScanCursor { shard: i, node: 0 })
    }
}

/// The `SCAN` to send to one node: the client's command with `node_cursor` as its cursor.
pub(crate) fn scan_on_node(command: &Command, node_cursor: u64) -> Command {
    command.with_argument(1, Bytes::from(node_cursor.to_string()))
}

/// A node's `SCAN` reply, split into its cursor and its keys; `Err` gives back a reply that
/// is not one (an error reply, to go to the client as is).
pub(crate) fn split_scan_reply(reply: Frame) -> Result<(u64, Frame), Frame> {
    match &reply {
        Frame::Array(parts) if parts.len() == 2 && matches!(parts[1], Frame::Array(_)) => {
            let cursor = match &parts[0] {
                Frame::BulkString(b) => std::str::from_utf8(b).ok().and_then(|c| c.parse().ok()),
                _ => None,
            };
            match (cursor, reply) {
                (Some(cursor), Frame::Array(mut parts)) => Ok((cursor, parts.swap_remove(1))),
                (_, reply) => Err(reply),
            }
        }
        _ => Err(reply),
    }
}

/// The client's `SCAN` reply: the router's cursor (0 at the end) and one node's keys.
pub(crate) fn scan_reply(cursor: u64, keys: Frame) -> Frame {
    Frame::Array(vec![
        Frame::BulkString(Bytes::from(cursor.to_string())),
        keys,
    ])
}

/// Merges the shards' replies to a [`Keyspace::Everywhere`], [`Keyspace::Sum`] or
/// [`Keyspace::Concat`] command, in shard order: an error reply is returned as is, as is a
/// count or a key list of an unexpected kind.
#[derive(Debug)]
pub(crate) struct Merge {
    how: Keyspace,
    sum: i64,
    keys: Vec<Frame>,
    /// The last reply, for [`Keyspace::Everywhere`].
    last: Option<Frame>,
}

impl Merge {
    pub(crate) fn new(how: Keyspace) -> Merge {
        Merge {
            how,
            sum: 0,
            keys: Vec::new(),
            last: None,
        }
    }

    /// Adds one shard's reply; `Err` is the reply to give the client at once instead.
    pub(crate) fn add(&mut self, reply: Frame) -> Result<(), Frame> {
        match (self.how, reply) {
            (_, reply @ Frame::Error(_)) => Err(reply),
            (Keyspace::Everywhere, reply) => {
                self.last = Some(reply);
                Ok(())
            }
            (Keyspace::Sum, Frame::Integer(n)) => {
                self.sum = self.sum.saturating_add(n);
                Ok(())
            }
            (Keyspace::Concat, Frame::Array(keys)) => {
                self.keys.extend(keys);
                Ok(())
            }
            (_, other) => Err(other),
        }
    }

    /// The merged reply (for [`Keyspace::Everywhere`], the last shard's; `Null` if none
    /// answered).
    pub(crate) fn finish(self) -> Frame {
        match self.how {
            Keyspace::Everywhere => self.last.unwrap_or(Frame::Null),
            Keyspace::Sum => Frame::Integer(self.sum),
            Keyspace::Concat | Keyspace::Scan => Frame::Array(self.keys),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::command;

    fn cmd(parts: &[&str]) -> Command {
        Command::from_frame(command(parts)).unwrap()
    }

    fn bulk(s: &str) -> Frame {
        Frame::BulkString(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn keyspace_commands_are_recognised_by_name_and_subcommand() {
        assert_eq!(Keyspace::of(&cmd(&["scan", "0"])), Some(Keyspace::Scan));
        assert_eq!(Keyspace::of(&cmd(&["KEYS", "*"])), Some(Keyspace::Concat));
        assert_eq!(Keyspace::of(&cmd(&["dbsize"])), Some(Keyspace::Sum));
        assert_eq!(
            Keyspace::of(&cmd(&["FLUSHALL"])),
            Some(Keyspace::Everywhere)
        );
        assert_eq!(
            Keyspace::of(&cmd(&["script", "load", "return 1"])),
            Some(Keyspace::Everywhere)
        );
        assert_eq!(
            Keyspace::of(&cmd(&["FUNCTION", "flush"])),
            Some(Keyspace::Everywhere)
        );
        assert_eq!(Keyspace::of(&cmd(&["SCRIPT", "EXISTS", "abc"])), None);
        assert_eq!(Keyspace::of(&cmd(&["FUNCTION", "LIST"])), None);
        assert_eq!(Keyspace::of(&cmd(&["GET", "k"])), None);
        assert_eq!(Keyspace::of(&cmd(&["PING"])), None);
    }

    #[test]
    fn a_scan_cursor_round_trips_through_the_number_the_client_sees() {
        for cursor in [
            ScanCursor { shard: 0, node: 0 },
            ScanCursor { shard: 2, node: 17 },
            ScanCursor {
                shard: 65_535,
                node: NODE_MASK,
            },
        ] {
            let text = cursor.encode().unwrap().to_string();
            assert_eq!(ScanCursor::parse(text.as_bytes()), Some(cursor));
        }
        assert_eq!(
            ScanCursor { shard: 0, node: 0 }.encode(),
            Some(0),
            "0 starts"
        );
    }

    #[test]
    fn a_cursor_that_does_not_fit_is_not_encoded() {
        let node_too_big = ScanCursor {
            shard: 0,
            node: NODE_MASK + 1,
        };
        assert_eq!(node_too_big.encode(), None);
        let too_many_shards = ScanCursor {
            shard: 65_536,
            node: 0,
        };
        assert_eq!(too_many_shards.encode(), None);
    }

    #[test]
    fn a_cursor_that_is_not_a_number_is_invalid() {
        assert_eq!(ScanCursor::parse(b"abc"), None);
        assert_eq!(ScanCursor::parse(b"-1"), None);
        assert_eq!(ScanCursor::parse(b"18446744073709551616"), None);
    }

    #[test]
    fn a_scan_moves_to_the_next_owning_shard_when_a_node_ends_and_stops_after_the_last() {
        let owning = [0, 2, 3];
        assert_eq!(
            ScanCursor::after(0, 40, &owning),
            Some(ScanCursor { shard: 0, node: 40 })
        );
        assert_eq!(
            ScanCursor::after(0, 0, &owning),
            Some(ScanCursor { shard: 2, node: 0 })
        );
        assert_eq!(ScanCursor::after(3, 0, &owning), None);
    }

    #[test]
    fn the_scan_sent_to_a_node_carries_that_nodes_cursor_and_the_clients_options() {
        let sent = scan_on_node(&cmd(&["SCAN", "281474976710673", "MATCH", "k*"]), 17);
        assert_eq!(sent.frame(), &command(&["SCAN", "17", "MATCH", "k*"]));
    }

    #[test]
    fn a_nodes_scan_reply_is_split_into_its_cursor_and_keys() {
        let keys = Frame::Array(vec![bulk("a"), bulk("b")]);
        let reply = Frame::Array(vec![bulk("12"), keys.clone()]);
        assert_eq!(split_scan_reply(reply), Ok((12, keys)));
        assert_eq!(split_scan_reply(Frame::Integer(1)), Err(Frame::Integer(1)));
        let not_a_cursor = Frame::Array(vec![bulk("x"), Frame::Array(vec![])]);
        assert_eq!(split_scan_reply(not_a_cursor.clone()), Err(not_a_cursor));
    }

    #[test]
    fn counts_are_summed_and_keys_concatenated_in_shard_order() {
        let mut sum = Merge::new(Keyspace::Sum);
        sum.add(Frame::Integer(3)).unwrap();
        sum.add(Frame::Integer(4)).unwrap();
        assert_eq!(sum.finish(), Frame::Integer(7));

        let mut keys = Merge::new(Keyspace::Concat);
        keys.add(Frame::Array(vec![bulk("a")])).unwrap();
        keys.add(Frame::Array(vec![bulk("b"), bulk("c")])).unwrap();
        assert_eq!(
            keys.finish(),
            Frame::Array(vec![bulk("a"), bulk("b"), bulk("c")])
        );
    }

    #[test]
    fn a_command_sent_everywhere_answers_with_the_last_reply() {
        let mut everywhere = Merge::new(Keyspace::Everywhere);
        everywhere.add(bulk("sha")).unwrap();
        everywhere.add(bulk("sha")).unwrap();
        assert_eq!(everywhere.finish(), bulk("sha"));
    }

    #[test]
    fn an_error_reply_from_any_shard_is_the_answer() {
        let mut sum = Merge::new(Keyspace::Sum);
        sum.add(Frame::Integer(3)).unwrap();
        let err =
            Frame::Error(String::from("LOADING Redis is loading the dataset in memory").into());
        assert_eq!(sum.add(err.clone()), Err(err));
    }
}

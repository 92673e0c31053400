//! Which hash slot a command belongs to, in a Redis Cluster.
//!
//! The slot of a key is `CRC16(key) mod 16384`, or of the text between the first `{` and
//! the next `}` when that is not empty (a *hash tag*: `{user1}.a` and `{user1}.b` share a
//! slot). [`key_slot`] is `redis-protocol`'s `redis_keyslot`, which the router already
//! depends on for RESP (it is built on the `crc16` crate's XMODEM table).
//!
//! Where a command's keys are is learned from the server itself: `COMMAND` gives each
//! command's first key, last key and step ([`KeySpecs`]), the table every cluster client
//! uses. Commands whose keys move with their arguments (`EVAL`, `ZUNIONSTORE`, `XREAD`, ...)
//! and container commands (`OBJECT ENCODING key`) are asked to the server with
//! `COMMAND GETKEYS`.

use std::collections::HashMap;

use crate::command::Command;
use crate::resp::{self, Frame};

/// The number of hash slots in a Redis Cluster.
pub const SLOTS: usize = 16_384;

/// The hash slot of `key`, honouring `{hash tags}` as Redis does.
///
/// ```
/// use failover_buffer_redis::slot::key_slot;
/// assert_eq!(key_slot(b"foo"), 12182); // redis-cli cluster keyslot foo
/// assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
/// ```
pub fn key_slot(key: &[u8]) -> u16 {
    redis_protocol::redis_keyslot(key)
}

/// Where one command's keys are, as `COMMAND` describes it (the legacy fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeySpec {
    /// Position of the first key (1 = the first argument); 0: no fixed keys.
    first: i64,
    /// Position of the last key; negative counts from the end (-1 = the last argument).
    last: i64,
    /// Distance between keys.
    step: i64,
    /// The keys' positions depend on the arguments (`movablekeys`), or the command has
    /// subcommands whose keys differ: ask the server.
    ask: bool,
}

/// Where a command's keys are, for every command a server knows.
#[derive(Debug, Clone, Default)]
pub struct KeySpecs {
    by_name: HashMap<String, KeySpec>,
}

/// What a command's keys say about where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySlot {
    /// No key (or a command the server does not know): any primary answers it.
    Keyless,
    /// Every key hashes to this slot.
    Slot(u16),
    /// The keys hash to different slots: Redis answers `-CROSSSLOT`.
    CrossSlot,
    /// Only the server can say where the keys are: ask it with `COMMAND GETKEYS`.
    AskServer,
}

/// The reply Redis gives a command whose keys hash to different slots.
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

impl KeySpecs {
    /// Reads the reply to `COMMAND`: one array per command, `[name, arity, flags, first,
    /// last, step, ...]` and, from Redis 7, its subcommands in the tenth field.
    pub fn from_command_reply(reply: &Frame) -> KeySpecs {
        let mut by_name = HashMap::new();
        if let Frame::Array(commands) = reply {
            for entry in commands {
                let Frame::Array(fields) = entry else {
                    continue;
                };
                let (Some(name), Some(first), Some(last), Some(step)) = (
                    fields.first().and_then(resp::text),
                    integer(fields.get(3)),
                    integer(fields.get(4)),
                    integer(fields.get(5)),
                ) else {
                    continue;
                };
                let movable = match fields.get(2) {
                    Some(Frame::Array(flags)) => {
                        flags.iter().any(|f| resp::text(f) == Some("movablekeys"))
                    }
                    _ => false,
                };
                let subcommands =
                    matches!(fields.get(9), Some(Frame::Array(subs)) if !subs.is_empty());
                by_name.insert(
                    name.to_ascii_uppercase(),
                    KeySpec {
                        first,
                        last,
                        step,
                        ask: movable || (subcommands && first == 0),
                    },
                );
            }
        }
        KeySpecs { by_name }
    }

    /// How many commands are described.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether no command is described (the `COMMAND` reply was not understood).
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Where `command`'s keys go.
    pub fn slot_of(&self, command: &Command) -> KeySlot {
        let Some(spec) = self.by_name.get(command.name()) else {
            return KeySlot::Keyless;
        };
        if spec.ask {
            return KeySlot::AskServer;
        }
        if spec.first <= 0 || spec.step <= 0 {
            return KeySlot::Keyless;
        }
        let args: Vec<&[u8]> = command.args().collect();
        // Positions count the name as 0; `args` starts at position 1.
        let count = args.len() as i64;
        let last = if spec.last < 0 {
            count + 1 + spec.last
        } else {
            spec.last.min(count)
        };
        let keys = (spec.first..=last)
            .step_by(spec.step as usize)
            .filter_map(|pos| args.get((pos - 1) as usize).copied());
        slot_of_keys(keys)
    }
}

/// The slot all of `keys` share, [`KeySlot::CrossSlot`] if they differ, or
/// [`KeySlot::Keyless`] for none.
pub fn slot_of_keys<'a>(keys: impl IntoIterator<Item = &'a [u8]>) -> KeySlot {
    let mut slot = None;
    for key in keys {
        let s = key_slot(key);
        match slot {
            None => slot = Some(s),
            Some(t) if t != s => return KeySlot::CrossSlot,
            Some(_) => {}
        }
    }
    slot.map_or(KeySlot::Keyless, KeySlot::Slot)
}

fn integer(frame: Option<&Frame>) -> Option<i64> {
    match frame? {
        Frame::Integer(i) => Some(*i),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn cmd(parts: &[&str]) -> Command {
        Command::from_frame(resp::command(parts)).unwrap()
    }

    fn spec(name: &str, first: i64, last: i64, step: i64, flags: &[&str]) -> Frame {
        Frame::Array(vec![
            Frame::BulkString(Bytes::copy_from_slice(name.as_bytes())),
            Frame::Integer(-2),
            Frame::Array(
                flags
                    .iter()
                    .map(|f| Frame::SimpleString(Bytes::copy_from_slice(f.as_bytes())))
                    .collect(),
            ),
            Frame::Integer(first),
            Frame::Integer(last),
            Frame::Integer(step),
        ])
    }

    fn specs() -> KeySpecs {
        KeySpecs::from_command_reply(&Frame::Array(vec![
            spec("get", 1, 1, 1, &[]),
            spec("mset", 1, -1, 2, &[]),
            spec("del", 1, -1, 1, &[]),
            spec("ping", 0, 0, 0, &[]),
            spec("eval", 0, 0, 0, &["movablekeys"]),
        ]))
    }

    #[test]
    fn slots_match_redis_cluster_keyslot() {
        // Values from `redis-cli cluster keyslot` on Redis 7.0.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{foo}bar"), 12182);
        // An empty tag hashes the whole key; only the first `{` counts.
        assert_eq!(key_slot(b"foo{}{bar}"), 8363);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    }

    #[test]
    fn a_command_with_one_key_goes_to_its_slot() {
        assert_eq!(specs().slot_of(&cmd(&["GET", "foo"])), KeySlot::Slot(12182));
        assert_eq!(specs().slot_of(&cmd(&["get", "foo"])), KeySlot::Slot(12182));
    }

    #[test]
    fn keys_in_different_slots_are_crossslot_and_hash_tags_keep_them_together() {
        let s = specs();
        assert_eq!(
            s.slot_of(&cmd(&["MSET", "foo", "1", "bar", "2"])),
            KeySlot::CrossSlot
        );
        assert_eq!(
            s.slot_of(&cmd(&["MSET", "{u}a", "1", "{u}b", "2"])),
            KeySlot::Slot(key_slot(b"u"))
        );
        // The values of MSET are not keys: step 2 skips them.
        assert_eq!(
            s.slot_of(&cmd(&["MSET", "foo", "bar"])),
            KeySlot::Slot(12182)
        );
        assert_eq!(s.slot_of(&cmd(&["DEL", "foo", "bar"])), KeySlot::CrossSlot);
    }

    #[test]
    fn keyless_unknown_and_movable_commands() {
        let s = specs();
        assert_eq!(s.slot_of(&cmd(&["PING"])), KeySlot::Keyless);
        assert_eq!(s.slot_of(&cmd(&["NOSUCH", "x"])), KeySlot::Keyless);
        assert_eq!(
            s.slot_of(&cmd(&["EVAL", "return 1", "1", "foo"])),
            KeySlot::AskServer
        );
        // A key command with its key missing has no key (Redis answers the arity error).
        assert_eq!(s.slot_of(&cmd(&["GET"])), KeySlot::Keyless);
    }
}

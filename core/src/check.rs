//! The invariants of DESIGN §8 that can be read off one state, checked in one place for unit
//! tests, property tests and fuzz targets alike.
//!
//! The invariants about sequences (every ticket ends once; `poll_timeout` after `tick(t)` is
//! later than `t`; determinism) need the history of inputs, and are checked by the harnesses
//! that have it.

use core::fmt;

use crate::buffer::Buffer;
use crate::config::Mode;
use crate::queue::TicketStatus;
use crate::shard::{ShardId, ShardState};

/// A broken invariant: a bug in this crate. Found by [`Buffer::check_invariants`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvariantViolation {
    /// The invariant's number in DESIGN §8.
    pub invariant: u8,
    /// The shard it was found in, if one.
    pub shard: Option<ShardId>,
    /// What was wrong.
    pub detail: &'static str,
}

impl fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant {} broken", self.invariant)?;
        if let Some(shard) = self.shard {
            write!(f, " in {shard:?}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

impl core::error::Error for InvariantViolation {}

impl Buffer {
    /// Checks every invariant of DESIGN §8 that one state can show. O(held + shards).
    ///
    /// 1. Slots: held ≤ size, and held = queued + released-not-done, entry by entry.
    /// 2. A queue is non-empty only while its shard buffers, or drains entries not yet
    ///    released; an idle shard holds nothing; a shard that is not enabled never holds.
    /// 4. At most `drain_concurrency` drain retries run per shard.
    /// 5. After a `tick(t)`, no queued request of a buffering shard is due at or before `t`,
    ///    and queues are in deadline order.
    /// 8. A quiet shard (idle, holding nothing) has `buffered == evicted + drained`.
    ///
    /// Also checks its own bookkeeping: the queue links, and that exactly the buffering
    /// shards are on the timer list.
    ///
    /// ```
    /// use failover_buffer::{Buffer, Config};
    ///
    /// let buffer = Buffer::new(Config::default())?;
    /// buffer.check_invariants()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let p = self.parts();
        let fail = |invariant, shard, detail| {
            Err(InvariantViolation {
                invariant,
                shard,
                detail,
            })
        };
        if p.pool.len() > p.limits.size {
            return fail(1, None, "more slots held than the buffer has");
        }
        let mut counted = 0usize;
        for (i, sb) in p.shards.iter().enumerate() {
            let id = ShardId::from_index(i as u32);
            let s = Some(id);
            // Walk the queue: links, ownership, status, deadline order.
            let mut prev = None;
            let mut len = 0usize;
            for slot in p.pool.walk(&sb.queue, p.pool.len() + 1) {
                let e = p.pool.entry(slot);
                if e.shard != id || e.status != TicketStatus::Queued {
                    return fail(1, s, "a queue links an entry that is not queued in it");
                }
                if !p.pool.prev_is(slot, prev) {
                    return fail(1, s, "a queue's back link is wrong");
                }
                if let Some(p_slot) = prev {
                    if p.pool.entry(p_slot).deadline > e.deadline {
                        return fail(5, s, "a queue is out of deadline order");
                    }
                }
                prev = Some(slot);
                len += 1;
            }
            if len != sb.queue.len() || crate::queue::Pool::tail_of(&sb.queue) != prev {
                return fail(1, s, "a queue's length or tail is wrong");
            }
            let retrying_in_drain = p
                .pool
                .iter()
                .filter(|(_, e)| e.shard == id && e.status == TicketStatus::RetryingInDrain)
                .count();
            if retrying_in_drain != sb.drain_in_flight {
                return fail(1, s, "drain in-flight count differs from the entries");
            }
            let held = p.pool.iter().filter(|(_, e)| e.shard == id).count();
            counted += held;
            if sb.mode != Mode::Enabled && held != 0 {
                return fail(2, s, "a shard that is not enabled holds requests");
            }
            match sb.state {
                ShardState::Idle if len != 0 || sb.drain_in_flight != 0 => {
                    return fail(2, s, "an idle shard has queued or draining requests");
                }
                _ => {}
            }
            if sb.drain_in_flight > p.limits.drain_concurrency {
                return fail(4, s, "more drain retries in flight than drain_concurrency");
            }
            if (sb.state == ShardState::Buffering) != p.active.contains(id) {
                return fail(2, s, "the timer list disagrees with the shard's state");
            }
            if let (ShardState::Buffering, Some(t), Some(head)) =
                (sb.state, p.last_tick, sb.queue.head())
            {
                if p.pool.entry(head).deadline <= t {
                    return fail(5, s, "a queued request outlived its window past a tick");
                }
            }
            let st = &sb.stats;
            if sb.state == ShardState::Idle
                && held == 0
                && st.buffered != st.evicted.total() + st.drained
            {
                return fail(8, s, "quiet shard: buffered != evicted + drained");
            }
        }
        if counted != p.pool.len() {
            return fail(1, None, "an entry belongs to no registered shard");
        }
        if p.active.list.len()
            != p.shards
                .iter()
                .filter(|s| s.state == ShardState::Buffering)
                .count()
        {
            return fail(2, None, "the timer list has stray entries");
        }
        Ok(())
    }
}

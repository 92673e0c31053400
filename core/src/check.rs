//! The invariants of DESIGN §8 that can be read off one state, checked in one place for unit
//! tests, property tests and fuzz targets alike.
//!
//! The invariants about sequences (every ticket ends once; `poll_timeout` after `tick(t)` is
//! later than `t`; determinism) need the history of inputs, and are checked by the harnesses
//! that have it.

use core::fmt;

use crate::buffer::Buffer;
use crate::config::Mode;
use crate::queue::Held;
use crate::shard::{ShardId, ShardState};
use crate::stats::{EvictReason, WaitOutcome};

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

/// Shards whose counts [`Buffer::check_invariants`] keeps on the stack.
const INLINE_SHARDS: usize = 8;

impl Buffer {
    /// Checks every invariant of DESIGN §8 that one state can show. O(held + shards); it
    /// allocates a count per shard only beyond eight shards (the exhaustive explorer checks
    /// after every input it tries, on two).
    ///
    /// 1. Slots: held ≤ size (or, after a reconfiguration shrank the size, nothing queued
    ///    while retries released before hold more), and held = queued + released-not-done,
    ///    entry by entry.
    /// 2. A queue is non-empty only while its shard buffers, or drains entries not yet
    ///    released; an idle shard holds nothing; a shard that is not enabled never holds.
    /// 4. At most `drain_concurrency` drain retries run per shard (plus, after a
    ///    reconfiguration lowered it, those already running then, until they finish).
    /// 5. After a `tick(t)`, no queued request of a buffering shard is due at or before `t`,
    ///    and queues are in deadline order.
    /// 8. A quiet shard (idle, holding nothing) has `buffered == evicted + drained`.
    /// 9. No shard holds more than `max_per_shard` slots (or, after a reconfiguration lowered
    ///    it, nothing of the shard is queued while its retries released before hold more).
    /// 10. The bytes held never exceed `max_bytes` (or, after a reconfiguration lowered it,
    ///     nothing is queued while retries released before hold more), and each shard's
    ///     `bytes_held` is the sum of its entries' sizes, at most its `peak_bytes`.
    /// 11. A shard's wait histograms hold one sample per verdict: their count is its
    ///     `drained + evicted`, the `Evicted` count its evicted `BufferFull` (and `Window`,
    ///     `Cancelled` at least its `WindowExceeded`, `ContextDone`); its failover histogram
    ///     holds one sample per episode stopped (`stops`). A request an operator pause
    ///     held is sampled like any other (released by the pause's end: `Retried`).
    /// 12. A pause never outlives its bound: a paused shard's pause ends no later than
    ///     `max_pause` after it began, and after a `tick(t)` no pause is due at or before
    ///     `t`; a paused shard is enabled and holding (buffering); the pause counters agree
    ///     (`pauses_started` = `pauses_ended` + 1 while paused, + 0 otherwise).
    ///
    /// Also checks its own bookkeeping: the queue links (per shard and buffer-wide), the
    /// per-shard slot counts, that exactly the buffering shards are on the timer list, and
    /// that the deadline index holds every shard's next deadline, earliest first.
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
        // More held than the size only after a reconfiguration shrank it, with retries
        // still running; nothing may be queued then.
        let queued: usize = p.shards.iter().map(|s| s.d().queue.len()).sum();
        if p.pool.len() > p.limits.size && queued > 0 {
            return fail(1, None, "more slots held than the buffer has");
        }
        // Entries held, drain retries running and bytes held, per shard, in one pass over the
        // pool (a pass per shard made the check O(shards × held)).
        let mut inline = [(0usize, 0usize, 0u64); INLINE_SHARDS];
        let mut spilled;
        let per_shard: &mut [(usize, usize, u64)] = match inline.get_mut(..p.shards.len()) {
            Some(counts) => counts,
            None => {
                spilled = alloc::vec![(0usize, 0usize, 0u64); p.shards.len()];
                &mut spilled
            }
        };
        for (slot, e) in p.pool.iter() {
            if let Some((held, in_drain, bytes)) = per_shard.get_mut(e.shard.index()) {
                *held += 1;
                *in_drain += usize::from(e.status.in_drain());
                *bytes += p.pool.bytes_of(slot);
            }
        }
        let mut counted = 0usize;
        for (i, sb) in p.shards.iter().enumerate() {
            let id = ShardId::from_index(i as u32);
            let s = Some(id);
            // Walk the queue: links, ownership, status, deadline order.
            let mut prev = None;
            let mut len = 0usize;
            for slot in p.pool.walk(&sb.d().queue, p.pool.len() + 1) {
                let e = p.pool.entry(slot);
                if e.shard != id || e.status != Held::Queued {
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
            if len != sb.d().queue.len() || crate::queue::Pool::tail_of(&sb.d().queue) != prev {
                return fail(1, s, "a queue's length or tail is wrong");
            }
            let (held, retrying_in_drain, bytes) = per_shard[i];
            if retrying_in_drain != sb.d().drain_in_flight {
                return fail(1, s, "drain in-flight count differs from the entries");
            }
            counted += held;
            if held != p.pool.held_by(id) {
                return fail(
                    1,
                    s,
                    "a shard's count of slots held differs from the entries",
                );
            }
            if bytes != p.pool.bytes_by(id) || bytes != sb.d().stats.bytes_held {
                return fail(10, s, "a shard's bytes held differ from its entries");
            }
            if sb.d().stats.peak_bytes < bytes {
                return fail(10, s, "a shard holds more bytes than its peak");
            }
            // Above the cap only after a reconfiguration lowered it, with retries still
            // running; nothing of the shard may be queued then.
            if held > p.limits.sharing.max_per_shard && len > 0 {
                return fail(9, s, "a shard holds more slots than max_per_shard");
            }
            if sb.mode != Mode::Enabled && held != 0 {
                return fail(2, s, "a shard that is not enabled holds requests");
            }
            match sb.state {
                ShardState::Idle if len != 0 || sb.d().drain_in_flight != 0 => {
                    return fail(2, s, "an idle shard has queued or draining requests");
                }
                _ => {}
            }
            if sb.d().drain_in_flight > p.limits.drain_concurrency + sb.d().drain_excess {
                return fail(4, s, "more drain retries in flight than drain_concurrency");
            }
            if (sb.state == ShardState::Buffering) != p.active.contains(id) {
                return fail(2, s, "the timer list disagrees with the shard's state");
            }
            if p.timers.get(id) != sb.next_deadline(id, p.pool, p.limits).map(|d| d.at) {
                return fail(2, s, "the deadline index disagrees with the shard's timers");
            }
            if let (ShardState::Buffering, Some(t), Some(head)) =
                (sb.state, p.last_tick, sb.d().queue.head())
            {
                if p.pool.entry(head).deadline <= t {
                    return fail(5, s, "a queued request outlived its window past a tick");
                }
            }
            if let Some(pause) = sb.pause_state() {
                if sb.state != ShardState::Buffering || sb.mode != Mode::Enabled {
                    return fail(12, s, "a paused shard is not holding");
                }
                if pause.until > pause.since.plus_nanos(p.limits.max_pause) {
                    return fail(12, s, "a pause outlives max_pause");
                }
                if p.last_tick.is_some_and(|t| pause.until <= t) {
                    return fail(12, s, "a pause outlived its bound past a tick");
                }
            }
            if sb.is_pause_drain() && sb.phase() != ShardState::Draining {
                return fail(12, s, "a pause's drain is marked on a shard not draining");
            }
            let st = &sb.d().stats;
            if st.pauses_started != st.pauses_ended.total() + u64::from(sb.pause_state().is_some())
            {
                return fail(12, s, "pauses started != pauses ended (+1 while paused)");
            }
            // Every held request has exactly one verdict, counted once in `drained` or
            // `evicted` and sampled once in the wait histograms; every episode's first stop
            // is counted once and sampled once.
            let waits = &sb.d().waits;
            if waits.wait_count() != st.drained + st.evicted.total()
                || waits.wait(WaitOutcome::Evicted).count() != st.evicted[EvictReason::BufferFull]
                || waits.wait(WaitOutcome::Window).count() < st.evicted[EvictReason::WindowExceeded]
                || waits.wait(WaitOutcome::Cancelled).count() < st.evicted[EvictReason::ContextDone]
            {
                return fail(11, s, "a shard's wait histograms differ from its verdicts");
            }
            if waits.failovers().count() != st.stops.total() {
                return fail(11, s, "a shard's failover histogram differs from its stops");
            }
            if sb.state == ShardState::Idle
                && held == 0
                && st.buffered != st.evicted.total() + st.drained
            {
                return fail(8, s, "quiet shard: buffered != evicted + drained");
            }
        }
        if p.shards.iter().map(|s| s.d().queue.len()).sum::<usize>() != p.pool.queued() {
            return fail(
                1,
                None,
                "the count of queued requests differs from the queues",
            );
        }
        if counted != p.pool.len() {
            return fail(1, None, "an entry belongs to no registered shard");
        }
        // Over the byte budget only after a reconfiguration lowered it, with retries still
        // running; nothing may be queued then.
        let bytes: u64 = p.pool.iter().map(|(slot, _)| p.pool.bytes_of(slot)).sum();
        if bytes != p.pool.bytes() {
            return fail(10, None, "the bytes held differ from the entries");
        }
        // A freed slot forgets its size: an unsized request taking it must not inherit it.
        if p.pool.sizes_total() != bytes {
            return fail(10, None, "a free slot still has a request size");
        }
        if bytes > p.limits.sharing.max_bytes && queued > 0 {
            return fail(10, None, "more bytes held than max_bytes");
        }
        // The buffer-wide FIFO: exactly the queued entries, linked both ways, in deadline
        // order.
        let mut prev = None;
        let mut len = 0usize;
        for slot in p.pool.walk_all(p.pool.len() + 1) {
            if p.pool.entry(slot).status != Held::Queued {
                return fail(
                    1,
                    None,
                    "the buffer-wide queue links an entry that is not queued",
                );
            }
            if !p.pool.all_prev_is(slot, prev) {
                return fail(1, None, "the buffer-wide queue's back link is wrong");
            }
            if prev.is_some_and(|q| p.pool.entry(q).deadline > p.pool.entry(slot).deadline) {
                return fail(5, None, "the buffer-wide queue is out of deadline order");
            }
            prev = Some(slot);
            len += 1;
        }
        if len != queued
            || len != p.pool.all().len()
            || crate::queue::Pool::tail_of(p.pool.all()) != prev
        {
            return fail(1, None, "the buffer-wide queue's length or tail is wrong");
        }
        let earliest = p
            .shards
            .iter()
            .enumerate()
            .filter_map(|(i, sb)| sb.next_deadline(ShardId::from_index(i as u32), p.pool, p.limits))
            .map(|d| (d.at, d.shard))
            .min();
        if p.timers.first().map(|e| (e.at, e.shard)) != earliest {
            return fail(
                2,
                None,
                "the deadline index's first entry is not the earliest",
            );
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

#[cfg(test)]
mod tests {
    //! Each check catches the fault it is for: the checker is what every other test
    //! trusts, so it is tested by corrupting a healthy buffer one field at a time.

    use alloc::string::ToString;
    use alloc::vec::Vec;

    use crate::queue::{Held, ReleaseReason};
    use crate::{
        Admission, Buffer, Config, FailoverCause, HealthStamp, Mode, PrimaryId, ShardId,
        ShardState, Ticket, Timestamp,
    };

    const T0: Timestamp = Timestamp::from_secs(1);

    /// A buffer whose first shard holds `n` queued requests.
    fn buffering(n: usize, drain_concurrency: usize) -> (Buffer, ShardId, Vec<Ticket>) {
        let config = Config {
            enabled: true,
            drain_concurrency,
            ..Config::default()
        };
        let mut b = Buffer::new(config).unwrap();
        let shard = b.register_shard("ks", "0");
        b.register_shard("ks", "1");
        let tickets = (0..n)
            .map(
                |_| match b.request(T0, shard, Some(FailoverCause::Reparent)) {
                    Ok(Admission::Wait(t)) => t,
                    other => panic!("{other:?}"),
                },
            )
            .collect();
        assert_eq!(b.check_invariants(), Ok(()));
        (b, shard, tickets)
    }

    /// Ends the episode: up to `drain_concurrency` requests are released.
    fn end(b: &mut Buffer, shard: ShardId) {
        let stamp = HealthStamp {
            primary: PrimaryId(2),
            term: 2,
            serving: true,
        };
        b.health(T0, shard, stamp).unwrap();
        assert_eq!(b.check_invariants(), Ok(()));
    }

    fn caught(b: &Buffer) -> (u8, &'static str) {
        let v = b
            .check_invariants()
            .expect_err("the corruption went unnoticed");
        (v.invariant, v.detail)
    }

    #[test]
    fn a_pause_past_its_bound_is_caught() {
        let (mut b, shard, _) = buffering(0, 1);
        let max = core::time::Duration::from_secs(30);
        assert_eq!(b.pause(T0, crate::PauseScope::Shard(shard), max), Ok(1));
        assert_eq!(b.check_invariants(), Ok(()));
        b.corrupt().2.max_pause = 29_000_000_000;
        assert_eq!(caught(&b), (12, "a pause outlives max_pause"));
        b.corrupt().2.max_pause = 30_000_000_000;
        assert_eq!(b.check_invariants(), Ok(()));
        b.set_last_tick(T0 + max);
        assert_eq!(caught(&b), (12, "a pause outlived its bound past a tick"));
    }

    #[test]
    fn a_shard_above_its_cap_is_caught() {
        let (mut b, _, _) = buffering(2, 1);
        b.corrupt().2.sharing.max_per_shard = 1;
        assert_eq!(
            caught(&b),
            (9, "a shard holds more slots than max_per_shard")
        );
    }

    #[test]
    fn more_bytes_held_than_the_budget_is_caught() {
        let (mut b, shard, _) = buffering(0, 1);
        let held = b.request_sized(T0, shard, Some(FailoverCause::Reparent), 5);
        assert!(matches!(held, Ok(Admission::Wait(_))));
        b.corrupt().2.sharing.max_bytes = 4;
        assert_eq!(caught(&b), (10, "more bytes held than max_bytes"));
    }

    #[test]
    fn a_shards_bytes_that_differ_from_its_entries_are_caught() {
        let (mut b, shard, _) = buffering(0, 1);
        let held = b.request_sized(T0, shard, Some(FailoverCause::Reparent), 5);
        assert!(matches!(held, Ok(Admission::Wait(_))));
        b.corrupt().0[0].dm().stats.bytes_held = 4;
        assert_eq!(
            caught(&b),
            (10, "a shard's bytes held differ from its entries")
        );
    }

    #[test]
    fn a_free_slot_that_kept_its_size_is_caught() {
        let (mut b, _, t) = buffering(1, 1);
        // A slot past every live one, as if a removal had left its size behind.
        b.corrupt().1.set_size(t[0].slot + 1, 5);
        assert_eq!(caught(&b), (10, "a free slot still has a request size"));
    }

    #[test]
    fn more_held_than_the_size_is_caught() {
        let (mut b, _, _) = buffering(2, 1);
        b.corrupt().2.size = 1;
        assert_eq!(caught(&b), (1, "more slots held than the buffer has"));
    }

    #[test]
    fn a_linked_entry_that_is_not_queued_is_caught() {
        let (mut b, _, t) = buffering(2, 1);
        b.corrupt()
            .1
            .set_status(t[1].slot, Held::Retrying(ReleaseReason::Window));
        assert_eq!(
            caught(&b),
            (1, "a queue links an entry that is not queued in it")
        );
    }

    #[test]
    fn an_entry_linked_into_another_shards_queue_is_caught() {
        let (mut b, _, t) = buffering(2, 1);
        b.corrupt().1.set_shard(t[0].slot, ShardId(1));
        assert_eq!(
            caught(&b),
            (1, "a queue links an entry that is not queued in it")
        );
    }

    #[test]
    fn a_broken_back_link_is_caught() {
        let (mut b, _, t) = buffering(3, 1);
        // Head → tail directly: the tail's back link still names the middle entry.
        b.corrupt().1.set_next(t[0].slot, t[2].slot);
        assert_eq!(caught(&b), (1, "a queue's back link is wrong"));
    }

    #[test]
    fn a_cyclic_queue_is_caught_rather_than_walked_for_ever() {
        let (mut b, _, t) = buffering(2, 1);
        b.corrupt().1.set_next(t[1].slot, t[0].slot);
        assert_eq!(caught(&b), (1, "a queue's back link is wrong"));
    }

    #[test]
    fn a_wrong_queue_length_is_caught() {
        let (mut b, shard, _) = buffering(2, 1);
        b.corrupt().0[shard.index()].dm().queue.set_len(3);
        assert_eq!(caught(&b), (1, "a queue's length or tail is wrong"));
    }

    #[test]
    fn a_wrong_queue_tail_is_caught() {
        let (mut b, shard, t) = buffering(2, 1);
        b.corrupt().0[shard.index()].dm().queue.set_tail(t[0].slot);
        assert_eq!(caught(&b), (1, "a queue's length or tail is wrong"));
    }

    #[test]
    fn deadlines_out_of_queue_order_are_caught() {
        let (mut b, _, t) = buffering(2, 1);
        b.corrupt().1.set_deadline(t[1].slot, T0);
        assert_eq!(caught(&b), (5, "a queue is out of deadline order"));
    }

    #[test]
    fn a_drain_count_that_differs_from_the_entries_is_caught() {
        let (mut b, shard, _) = buffering(2, 1);
        b.corrupt().0[shard.index()].dm().drain_in_flight = 1;
        assert_eq!(
            caught(&b),
            (1, "drain in-flight count differs from the entries")
        );
    }

    #[test]
    fn a_shard_not_enabled_that_holds_requests_is_caught() {
        let (mut b, shard, _) = buffering(1, 1);
        b.corrupt().0[shard.index()].mode = Mode::DryRun;
        assert_eq!(
            caught(&b),
            (2, "a shard that is not enabled holds requests")
        );
    }

    #[test]
    fn an_idle_shard_with_queued_requests_is_caught() {
        let (mut b, shard, _) = buffering(1, 1);
        b.corrupt().0[shard.index()].state = ShardState::Idle;
        assert_eq!(
            caught(&b),
            (2, "an idle shard has queued or draining requests")
        );
    }

    #[test]
    fn an_idle_shard_with_drain_retries_running_is_caught() {
        let (mut b, shard, _) = buffering(1, 1);
        end(&mut b, shard);
        b.corrupt().0[shard.index()].state = ShardState::Idle;
        assert_eq!(
            caught(&b),
            (2, "an idle shard has queued or draining requests")
        );
    }

    #[test]
    fn more_drain_retries_than_drain_concurrency_is_caught() {
        let (mut b, shard, _) = buffering(2, 2);
        end(&mut b, shard);
        b.corrupt().2.drain_concurrency = 1;
        assert_eq!(
            caught(&b),
            (4, "more drain retries in flight than drain_concurrency")
        );
    }

    #[test]
    fn a_buffering_shard_off_the_timer_list_is_caught() {
        let (mut b, _, _) = buffering(0, 1);
        b.corrupt().0[1].state = ShardState::Buffering;
        assert_eq!(
            caught(&b),
            (2, "the timer list disagrees with the shard's state")
        );
    }

    #[test]
    fn a_request_past_its_window_after_a_tick_is_caught() {
        let (mut b, _, _) = buffering(1, 1);
        b.set_last_tick(T0 + b.config().window);
        assert_eq!(
            caught(&b),
            (5, "a queued request outlived its window past a tick")
        );
    }

    #[test]
    fn a_quiet_shard_that_does_not_balance_is_caught() {
        let (mut b, _, _) = buffering(0, 1);
        b.corrupt().0[1].dm().stats.buffered = 1;
        assert_eq!(
            caught(&b),
            (8, "quiet shard: buffered != evicted + drained")
        );
    }

    #[test]
    fn a_quiet_shard_is_one_that_is_idle_and_holds_nothing() {
        // Buffering, and draining with a retry out, are not quiet: counts may differ there.
        let (mut b, shard, _) = buffering(1, 1);
        b.corrupt().0[shard.index()].dm().stats.buffered = 5;
        assert_eq!(b.check_invariants(), Ok(()));
        end(&mut b, shard);
        b.corrupt().0[shard.index()].dm().stats.buffered = 5;
        assert_eq!(b.check_invariants(), Ok(()));
    }

    #[test]
    fn a_wait_histogram_that_missed_a_verdict_is_caught() {
        let (mut b, shard, _) = buffering(1, 1);
        end(&mut b, shard);
        assert_eq!(b.check_invariants(), Ok(()));
        b.corrupt().0[shard.index()].dm().stats.drained += 1;
        assert_eq!(
            caught(&b),
            (11, "a shard's wait histograms differ from its verdicts")
        );
    }

    #[test]
    fn a_violation_says_which_invariant_and_where() {
        let (mut b, shard, _) = buffering(1, 1);
        b.corrupt().0[shard.index()].mode = Mode::Disabled;
        assert_eq!(
            b.check_invariants().unwrap_err().to_string(),
            "invariant 2 broken in ShardId(0): a shard that is not enabled holds requests"
        );
        b.corrupt().2.size = 0;
        assert_eq!(
            b.check_invariants().unwrap_err().to_string(),
            "invariant 1 broken: more slots held than the buffer has"
        );
    }
}

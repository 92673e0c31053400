//! Fair sharing between shards (issue 15): the eviction policy and the per-shard cap, each
//! scenario against a hand-computed answer.
//!
//! Every scenario holds the same two failovers: shard `a` fails over first and sends more
//! failover requests than the buffer has slots, then shard `b` fails over too.

mod support;

use failover_buffer::{
    Admission, BufferError, Config, ConfigError, EvictReason, Eviction, ShardId, SkipReason,
    Ticket, Verdict,
};
use support::*;

fn config(size: usize, eviction: Eviction, max_per_shard: Option<usize>) -> Config {
    Config {
        size,
        eviction,
        max_per_shard,
        ..enabled()
    }
}

/// A harness with shards `a` and `b`, both serving under term 1.
fn two_shards(config: Config) -> (Harness, ShardId, ShardId) {
    let mut h = Harness::new(config);
    let a = h.shard("ks", "-80");
    let b = h.shard("ks", "80-");
    h.health(a, serving(1, 1)).unwrap();
    h.health(b, serving(2, 1)).unwrap();
    (h, a, b)
}

fn fails(h: &mut Harness, shard: ShardId) -> BufferError {
    match h.request(shard, FAILOVER) {
        Admission::Fail(e) => e,
        other => panic!("expected Fail, got {other:?}"),
    }
}

fn evicted(ticket: Ticket) -> (Ticket, Verdict) {
    (ticket, Verdict::Fail(BufferError::Evicted))
}

/// Both shards' failovers end and every retry completes.
fn end_both(h: &mut Harness, a: ShardId, b: ShardId) {
    h.health(a, serving(3, 2)).unwrap();
    h.health(b, serving(4, 2)).unwrap();
    h.complete_retries();
    h.assert_quiet();
}

/// Vitess's rule, the default: shard `a` takes all four slots, its fifth request evicts its
/// own oldest, and shard `b`, with nothing of its own to evict, gets `BufferFull` for every
/// request of its failover.
#[test]
fn oldest_of_shard_lets_one_shard_take_every_slot() {
    let (mut h, a, b) = two_shards(config(4, Eviction::OldestOfShard, None));
    let ta: Vec<_> = (0..5).map(|_| h.wait(a, FAILOVER)).collect();
    assert_eq!(h.take_wakes(), [evicted(ta[0])]);
    assert_eq!(fails(&mut h, b), BufferError::BufferFull);
    assert_eq!(fails(&mut h, b), BufferError::BufferFull);
    assert_eq!((h.queued(a), h.queued(b)), (4, 0));
    assert_eq!(h.stats(b).skipped[SkipReason::BufferFull], 2);
    assert_eq!(h.stats(a).evicted[EvictReason::BufferFull], 1);
    end_both(&mut h, a, b);
}

/// Multigres's rule: the oldest queued request of any shard makes way, so shard `b`'s
/// requests push out shard `a`'s oldest, one each, in `a`'s order.
#[test]
fn oldest_anywhere_evicts_the_oldest_request_of_any_shard() {
    let (mut h, a, b) = two_shards(config(4, Eviction::OldestAnywhere, None));
    let ta: Vec<_> = (0..4).map(|_| h.wait(a, FAILOVER)).collect();
    h.advance(ms(10));
    h.take_actions();
    let tb1 = h.wait(b, FAILOVER);
    assert_eq!(h.take_wakes(), [evicted(ta[0])]);
    h.wait(b, FAILOVER);
    assert_eq!(h.take_wakes(), [evicted(ta[1])]);
    assert_eq!((h.queued(a), h.queued(b)), (2, 2));
    // The next oldest is still `a`'s, whichever shard asks.
    h.wait(a, FAILOVER);
    assert_eq!(h.take_wakes(), [evicted(ta[2])]);
    // Now `a`'s fourth is oldest, then `b`'s two.
    h.wait(b, FAILOVER);
    assert_eq!(h.take_wakes(), [evicted(ta[3])]);
    h.wait(b, FAILOVER);
    assert_eq!(h.take_wakes(), [evicted(tb1)]);
    assert_eq!(h.stats(a).evicted[EvictReason::BufferFull], 4);
    assert_eq!(h.stats(b).evicted[EvictReason::BufferFull], 1);
    assert_eq!((h.queued(a), h.queued(b)), (1, 3));
    end_both(&mut h, a, b);
}

/// Nobody is evicted: the request that finds the buffer full is refused, whichever shard
/// it is for, and the four held first keep their places.
#[test]
fn reject_new_refuses_the_newcomer_and_keeps_every_held_request() {
    let (mut h, a, b) = two_shards(config(4, Eviction::RejectNew, None));
    let ta: Vec<_> = (0..4).map(|_| h.wait(a, FAILOVER)).collect();
    h.take_actions();
    assert_eq!(fails(&mut h, a), BufferError::BufferFull);
    assert_eq!(fails(&mut h, b), BufferError::BufferFull);
    assert_eq!(h.take_wakes(), []);
    assert_eq!(h.stats(a).skipped[SkipReason::BufferFull], 1);
    assert_eq!(h.stats(b).skipped[SkipReason::BufferFull], 1);
    assert_eq!(h.stats(a).evicted.total(), 0);
    h.health(a, serving(3, 2)).unwrap();
    assert_eq!(h.complete_retries(), ta);
    end_both(&mut h, a, b);
}

/// The two-shard case: with a cap of two per shard, shard `a` can never take more
/// than half the buffer (its third and fourth requests evict its own oldest), so shard
/// `b`'s requests are held rather than failed.
#[test]
fn with_a_per_shard_cap_a_second_failing_shard_is_held_not_failed() {
    let (mut h, a, b) = two_shards(config(4, Eviction::OldestOfShard, Some(2)));
    let ta: Vec<_> = (0..4).map(|_| h.wait(a, FAILOVER)).collect();
    assert_eq!(h.take_wakes(), [evicted(ta[0]), evicted(ta[1])]);
    assert_eq!(h.buffer.free_slots(), 2);
    let tb: Vec<_> = (0..2).map(|_| h.wait(b, FAILOVER)).collect();
    assert_eq!(h.take_wakes(), []);
    assert_eq!((h.queued(a), h.queued(b)), (2, 2));
    // `b` at its cap makes room from its own queue, never from `a`'s.
    h.wait(b, FAILOVER);
    assert_eq!(h.take_wakes(), [evicted(tb[0])]);
    assert_eq!(h.stats(b).skipped.total(), 0);
    h.health(a, serving(3, 2)).unwrap();
    assert_eq!(h.complete_retries(), &ta[2..]);
    end_both(&mut h, a, b);
}

/// Under `RejectNew`, a shard at its cap refuses its own newcomer too.
#[test]
fn reject_new_at_the_cap_refuses_the_newcomer() {
    let (mut h, a, b) = two_shards(config(4, Eviction::RejectNew, Some(2)));
    h.wait(a, FAILOVER);
    h.wait(a, FAILOVER);
    assert_eq!(fails(&mut h, a), BufferError::BufferFull);
    h.wait(b, FAILOVER);
    h.wait(b, FAILOVER);
    assert_eq!(h.take_wakes(), []);
    assert_eq!(h.buffer.free_slots(), 0);
    end_both(&mut h, a, b);
}

/// A cap counts slots held, released retries included: a shard whose drain is paused with
/// retries out cannot queue past its cap.
#[test]
fn the_cap_counts_retries_in_flight() {
    let (mut h, a, _) = two_shards(config(4, Eviction::RejectNew, Some(2)));
    let t1 = h.wait(a, FAILOVER);
    h.wait(a, FAILOVER);
    // The window releases both to retry; they still hold the shard's two slots.
    h.advance(secs(10));
    assert_eq!((h.queued(a), h.retrying()), (0, 2));
    assert_eq!(fails(&mut h, a), BufferError::BufferFull);
    h.retry_done(t1).unwrap();
    h.wait(a, FAILOVER);
}

/// Lowering the cap at run time evicts each shard's oldest queued requests down to it.
#[test]
fn lowering_the_cap_evicts_each_shards_oldest_down_to_it() {
    let (mut h, a, b) = two_shards(config(6, Eviction::OldestOfShard, None));
    let ta: Vec<_> = (0..3).map(|_| h.wait(a, FAILOVER)).collect();
    let tb: Vec<_> = (0..2).map(|_| h.wait(b, FAILOVER)).collect();
    h.take_actions();
    let now = h.now;
    h.buffer
        .reconfigure(now, config(6, Eviction::OldestOfShard, Some(1)))
        .unwrap();
    h.tick();
    assert_eq!(
        h.take_wakes(),
        [evicted(ta[0]), evicted(ta[1]), evicted(tb[0])]
    );
    assert_eq!((h.queued(a), h.queued(b)), (1, 1));
    end_both(&mut h, a, b);
}

/// A cap of zero would hold nothing: refused, like a zero size.
#[test]
fn a_zero_cap_is_refused() {
    assert_eq!(
        config(4, Eviction::OldestOfShard, Some(0)).validate(),
        Err(ConfigError::MaxPerShardZero)
    );
}

/// Policies are named in scenario files and metrics by their `as_str`, which parses back.
#[test]
fn policy_names_round_trip() {
    for e in Eviction::ALL {
        assert_eq!(e.as_str().parse(), Ok(e));
    }
    assert!("oldest".parse::<Eviction>().is_err());
    assert_eq!(Eviction::default(), Eviction::OldestOfShard);
}

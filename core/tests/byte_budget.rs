//! The byte budget (issue 15): `Config::max_bytes` against the sizes requests carry
//! (`Buffer::request_sized`), each scenario against a hand-computed answer.

mod support;

use failover_buffer::{
    Admission, BufferError, Config, ConfigError, Eviction, ShardId, SkipReason, Verdict,
};
use support::*;

fn config(max_bytes: u64, eviction: Eviction) -> Config {
    Config {
        max_bytes: Some(max_bytes),
        eviction,
        ..enabled()
    }
}

fn sized(h: &mut Harness, shard: ShardId, bytes: u64) -> Admission {
    let admission = h.request_sized(shard, FAILOVER, bytes);
    h.take_actions();
    admission
}

/// A sized request that must be held.
fn hold(h: &mut Harness, shard: ShardId, bytes: u64) -> failover_buffer::Ticket {
    match sized(h, shard, bytes) {
        Admission::Wait(t) => t,
        other => panic!("expected Wait, got {other:?}"),
    }
}

fn two_shards(config: Config) -> (Harness, ShardId, ShardId) {
    let mut h = Harness::new(config);
    let a = h.shard("ks", "-80");
    let b = h.shard("ks", "80-");
    h.health(a, serving(1, 1)).unwrap();
    h.health(b, serving(2, 1)).unwrap();
    (h, a, b)
}

/// 4 + 3 + 2 bytes fit a budget of 10; a request of 5 must free 4: the oldest (4) goes.
#[test]
fn a_request_over_the_budget_evicts_the_oldest_until_it_fits() {
    let (mut h, a, _) = two_shards(config(10, Eviction::OldestOfShard));
    let Admission::Wait(first) = sized(&mut h, a, 4) else {
        panic!()
    };
    assert!(matches!(sized(&mut h, a, 3), Admission::Wait(_)));
    assert!(matches!(sized(&mut h, a, 2), Admission::Wait(_)));
    assert_eq!(h.buffer.held_bytes(), 9);
    assert!(matches!(
        h.request_sized(a, FAILOVER, 5),
        Admission::Wait(_)
    ));
    assert_eq!(
        h.take_wakes(),
        [(first, Verdict::Fail(BufferError::Evicted))]
    );
    assert_eq!(h.buffer.held_bytes(), 10);
    let stats = h.stats(a);
    assert_eq!((stats.bytes_held, stats.peak_bytes), (10, 10));
}

/// Larger than the whole budget: refused, and nothing held is evicted for it.
#[test]
fn a_request_larger_than_the_budget_fails_and_evicts_nothing() {
    let (mut h, a, _) = two_shards(config(10, Eviction::OldestOfShard));
    hold(&mut h, a, 4);
    assert_eq!(
        sized(&mut h, a, 11),
        Admission::Fail(BufferError::BufferFull)
    );
    assert_eq!(h.buffer.held_bytes(), 4);
    assert_eq!(h.stats(a).skipped[SkipReason::BufferFull], 1);
}

/// Under Vitess's policy only the newcomer's shard's requests make way: shard `b`'s 6 bytes
/// cannot be freed by shard `a`'s 6, so `b` is refused and `a` loses nothing; under
/// `OldestAnywhere` `a`'s oldest goes.
#[test]
fn which_requests_make_way_for_bytes_follows_the_policy() {
    let (mut h, a, b) = two_shards(config(10, Eviction::OldestOfShard));
    hold(&mut h, a, 6);
    assert_eq!(
        sized(&mut h, b, 6),
        Admission::Fail(BufferError::BufferFull)
    );
    assert_eq!((h.stats(a).bytes_held, h.stats(b).bytes_held), (6, 0));

    let (mut h, a, b) = two_shards(config(10, Eviction::OldestAnywhere));
    hold(&mut h, a, 6);
    assert!(matches!(sized(&mut h, b, 6), Admission::Wait(_)));
    assert_eq!((h.stats(a).bytes_held, h.stats(b).bytes_held), (0, 6));
    assert_eq!(h.stats(a).peak_bytes, 6);

    let (mut h, a, b) = two_shards(config(10, Eviction::RejectNew));
    hold(&mut h, a, 6);
    assert_eq!(
        sized(&mut h, b, 6),
        Admission::Fail(BufferError::BufferFull)
    );
    assert_eq!(
        sized(&mut h, a, 5),
        Admission::Fail(BufferError::BufferFull)
    );
    assert!(matches!(sized(&mut h, a, 4), Admission::Wait(_)));
}

/// Bytes held count released retries until they are done, and a plain `request` weighs
/// nothing.
#[test]
fn released_retries_hold_their_bytes_until_done() {
    let (mut h, a, _) = two_shards(config(10, Eviction::OldestOfShard));
    hold(&mut h, a, 7);
    h.wait(a, FAILOVER);
    assert_eq!(h.buffer.held_bytes(), 7);
    h.health(a, serving(3, 2)).unwrap();
    assert_eq!(h.buffer.held_bytes(), 7, "released to retry, not yet done");
    h.complete_retries();
    assert_eq!(h.buffer.held_bytes(), 0);
    assert_eq!(h.stats(a).peak_bytes, 7);
}

/// Lowering the budget at run time evicts the oldest queued, across shards, until the rest
/// fits: `a`'s first, then `b`'s.
#[test]
fn lowering_the_budget_evicts_the_oldest_until_the_rest_fits() {
    let (mut h, a, b) = two_shards(config(100, Eviction::OldestOfShard));
    hold(&mut h, a, 30);
    h.advance(ms(1));
    hold(&mut h, b, 30);
    h.advance(ms(1));
    hold(&mut h, a, 30);
    let now = h.now;
    h.buffer
        .reconfigure(now, config(50, Eviction::OldestOfShard))
        .unwrap();
    h.tick();
    assert_eq!(h.buffer.held_bytes(), 30);
    assert_eq!((h.queued(a), h.queued(b)), (1, 0));
}

#[test]
fn a_zero_budget_is_refused() {
    assert_eq!(
        config(0, Eviction::OldestOfShard).validate(),
        Err(ConfigError::MaxBytesZero)
    );
}

#[test]
fn a_budget_above_the_largest_is_refused() {
    assert_eq!(
        config(u64::MAX, Eviction::OldestOfShard).validate(),
        Err(ConfigError::MaxBytesTooLarge(u64::MAX))
    );
    assert_eq!(
        config(Config::LARGEST_MAX_BYTES, Eviction::OldestOfShard).validate(),
        Ok(())
    );
}

/// With no budget, a size above the largest budget is refused like any request larger than
/// the budget. Two such sizes used to overflow the bytes held (a panic in a debug build,
/// wrapped counts in a release one).
#[test]
fn with_no_budget_a_size_above_the_largest_budget_is_refused() {
    let (mut h, a, _) = two_shards(enabled());
    assert_eq!(
        sized(&mut h, a, u64::MAX),
        Admission::Fail(BufferError::BufferFull)
    );
    assert_eq!(
        sized(&mut h, a, u64::MAX),
        Admission::Fail(BufferError::BufferFull)
    );
    assert_eq!(h.buffer.held_bytes(), 0);
}

/// Two requests of the largest size with no budget: the second makes way for the first, and
/// the count of bytes held stays exact while the newcomer is queued before its victim, from
/// another shard, leaves.
#[test]
fn requests_of_the_largest_size_evict_each_other_without_overflow() {
    let largest = Config::LARGEST_MAX_BYTES;
    for eviction in [Eviction::OldestOfShard, Eviction::OldestAnywhere] {
        let (mut h, a, b) = two_shards(Config {
            eviction,
            ..enabled()
        });
        let first = hold(&mut h, a, largest);
        let second = h.request_sized(a, FAILOVER, largest);
        assert!(matches!(second, Admission::Wait(_)), "{eviction:?}");
        assert_eq!(
            h.take_wakes(),
            [(first, Verdict::Fail(BufferError::Evicted))]
        );
        assert_eq!(h.buffer.held_bytes(), largest);
        if eviction == Eviction::OldestAnywhere {
            // A victim on another shard.
            assert!(matches!(
                h.request_sized(b, FAILOVER, largest),
                Admission::Wait(_)
            ));
            assert_eq!(h.take_wakes().len(), 1);
            assert_eq!(h.buffer.held_bytes(), largest);
            assert_eq!((h.queued(a), h.queued(b)), (0, 1));
        }
    }
}

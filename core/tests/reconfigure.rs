//! `Buffer::reconfigure`: the limits change at run time (operators raise the size during an
//! incident) by documented rules, and a bad config is refused as `Buffer::new` refuses it.

mod support;

use failover_buffer::{
    Admission, BufferError, Config, ConfigError, EvictReason, ShardState, SkipReason, Verdict,
};
use support::*;

fn reconfigure(h: &mut Harness, config: Config) -> Result<(), ConfigError> {
    let now = h.now;
    let r = h.buffer.reconfigure(now, config);
    h.tick();
    r
}

#[test]
fn raising_the_size_during_a_failover_holds_more_requests() {
    let config = Config {
        size: 2,
        ..enabled()
    };
    let mut h = Harness::new(config.clone());
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    h.wait(shard, FAILOVER);
    h.wait(shard, FAILOVER);
    assert_eq!(h.take_wakes(), [(t1, Verdict::Fail(BufferError::Evicted))]);

    reconfigure(&mut h, Config { size: 4, ..config }).unwrap();
    assert_eq!(h.buffer.free_slots(), 2);
    h.wait(shard, FAILOVER);
    h.wait(shard, FAILOVER);
    assert!(h.take_wakes().is_empty(), "nobody evicted");
    assert_eq!(h.queued(shard), 4);
}

/// Shrinking evicts the oldest queued requests across all shards, as a newcomer evicts the
/// oldest of its own shard.
#[test]
fn shrinking_the_size_evicts_the_oldest_queued_requests() {
    let config = Config {
        size: 4,
        ..enabled()
    };
    let mut h = Harness::new(config.clone());
    let (a, b) = (h.shard("ks", "a"), h.shard("ks", "b"));
    let a1 = h.wait(a, FAILOVER);
    h.advance(ms(10));
    let b1 = h.wait(b, FAILOVER);
    h.advance(ms(10));
    let a2 = h.wait(a, FAILOVER);
    let b2 = h.wait(b, FAILOVER);
    h.take_actions();

    reconfigure(&mut h, Config { size: 2, ..config }).unwrap();
    let evicted = Verdict::Fail(BufferError::Evicted);
    assert_eq!(h.take_wakes(), [(a1, evicted), (b1, evicted)]);
    assert_eq!((h.queued(a), h.queued(b)), (1, 1));
    assert_eq!(h.stats(a).evicted[EvictReason::BufferFull], 1);
    assert_eq!(h.buffer.free_slots(), 0);
    let _ = (a2, b2);
}

/// Retries already released keep their slots; while they hold more than the new size,
/// nothing is queued and failover requests are refused with `BufferFull`.
#[test]
fn shrinking_below_the_retries_in_flight_refuses_until_they_finish() {
    let config = Config {
        size: 3,
        drain_concurrency: 3,
        ..enabled()
    };
    let mut h = Harness::new(config.clone());
    let shard = h.shard("ks", "0");
    let other = h.shard("ks", "1");
    for _ in 0..3 {
        h.wait(shard, FAILOVER);
    }
    h.health(shard, serving(2, 2)).unwrap();
    assert_eq!(h.retrying(), 3);

    reconfigure(&mut h, Config { size: 1, ..config }).unwrap();
    assert_eq!(h.buffer.held_slots(), 3);
    assert_eq!(h.buffer.free_slots(), 0);
    assert_eq!(
        h.request(other, FAILOVER),
        Admission::Fail(BufferError::BufferFull)
    );
    assert_eq!(h.stats(other).skipped[SkipReason::BufferFull], 1);
    h.complete_retries();
    assert_eq!(h.buffer.free_slots(), 1);
}

/// A shorter window applies to requests already held, from now on; a longer one applies to
/// requests held from now on.
#[test]
fn a_shorter_window_applies_to_held_requests_from_now_on() {
    let config = enabled();
    let mut h = Harness::new(config.clone());
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    h.advance(secs(2));
    reconfigure(
        &mut h,
        Config {
            window: secs(3),
            ..config.clone()
        },
    )
    .unwrap();
    h.advance(ms(2999));
    assert!(h.take_wakes().is_empty());
    h.advance(ms(1));
    assert_eq!(h.take_wakes(), [(t1, Verdict::Retry)]);

    // Longer again: a request already held keeps its deadline.
    let t2 = h.wait(shard, FAILOVER);
    reconfigure(&mut h, config).unwrap();
    h.advance(secs(3));
    assert_eq!(h.take_wakes(), [(t2, Verdict::Retry)]);
}

#[test]
fn a_new_max_duration_applies_to_the_episode_in_progress() {
    let config = Config {
        window: secs(5),
        ..enabled()
    };
    let mut h = Harness::new(config.clone());
    let shard = h.shard("ks", "0");
    let start = h.now;
    h.wait(shard, FAILOVER);
    reconfigure(
        &mut h,
        Config {
            max_failover_duration: secs(8),
            ..config
        },
    )
    .unwrap();
    assert_eq!(
        h.buffer.episode(shard).unwrap().max_duration_deadline,
        start + secs(8)
    );
}

#[test]
fn a_higher_drain_concurrency_releases_more_at_once() {
    let config = enabled();
    let mut h = Harness::new(config.clone());
    let shard = h.shard("ks", "0");
    let t: Vec<_> = (0..4).map(|_| h.wait(shard, FAILOVER)).collect();
    h.health(shard, serving(2, 2)).unwrap();
    assert_eq!(h.take_wakes(), [(t[0], Verdict::Retry)]);

    reconfigure(
        &mut h,
        Config {
            drain_concurrency: 3,
            ..config.clone()
        },
    )
    .unwrap();
    assert_eq!(
        h.take_wakes(),
        [(t[1], Verdict::Retry), (t[2], Verdict::Retry)]
    );
    // Lower again: the three running finish; the last one waits until fewer than one run.
    reconfigure(&mut h, config).unwrap();
    assert_eq!(h.buffer.draining_in_flight(shard), Some(3));
    h.retry_done(t[0]).unwrap();
    h.retry_done(t[1]).unwrap();
    assert!(h.take_wakes().is_empty());
    h.retry_done(t[2]).unwrap();
    assert_eq!(h.take_wakes(), [(t[3], Verdict::Retry)]);
    h.complete_retries();
    assert_eq!(h.state(shard), ShardState::Idle);
    h.assert_quiet();
}

/// A bad config is refused with `Buffer::new`'s typed error and changes nothing; the mode
/// settings, fixed per shard at registration, cannot change.
#[test]
fn a_bad_config_is_refused_and_changes_nothing() {
    let config = Config {
        size: 2,
        ..enabled()
    };
    let mut h = Harness::new(config.clone());
    let shard = h.shard("ks", "0");
    h.wait(shard, FAILOVER);
    let bad = Config {
        size: 0,
        ..config.clone()
    };
    assert_eq!(reconfigure(&mut h, bad), Err(ConfigError::SizeZero));
    let other_mode = Config {
        enabled: false,
        ..config.clone()
    };
    assert_eq!(
        reconfigure(&mut h, other_mode),
        Err(ConfigError::ModeSettingsChanged)
    );
    assert_eq!(h.buffer.config(), &config);
    assert_eq!(h.buffer.free_slots(), 1);
    assert_eq!(h.queued(shard), 1);
}

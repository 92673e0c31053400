//! The scenarios of Vitess's `go/vt/vtgate/buffer/buffer_test.go`, `flags_test.go` and
//! `variables_test.go`, re-expressed against this API with the same expected counts.
//!
//! Vitess's `fail(tablet)` helper (a keyspace event saying `tablet` serves) becomes a serving
//! health stamp with a term. Vitess's "non-failover error" calls have no counterpart: a
//! router never passes such errors to this buffer. Where our improvements deliberately change
//! an outcome, the test says so in its name and doc. Unlike Vitess v17+, every scenario ends
//! by checking that all slots are free.

mod support;

use failover_buffer::{
    Admission, BufferError, Config, ConfigError, EvictReason, FilterError, Mode, ShardFilter,
    ShardState, ShardStats, SkipReason, StopReason, Verdict,
};
use support::*;

const OLD_PRIMARY: u64 = 100;
const NEW_PRIMARY: u64 = 101;

fn enabled_for(filter: &str) -> Config {
    Config {
        enabled: true,
        filter: filter.parse().expect("valid filter"),
        ..vitess_test_config()
    }
}

fn enabled_all() -> Config {
    Config {
        enabled: true,
        ..vitess_test_config()
    }
}

/// TestBuffering and TestBufferingConcurrent (`testBuffering1WithOptions`).
fn buffering_scenario(drain_concurrency: usize) {
    let mut h = Harness::new(Config {
        dry_run: true,
        drain_concurrency,
        ..enabled_for("ks1/0")
    });
    let shard = h.shard("ks1", "0");
    let t0 = h.now;

    // 1. The old primary is known; no reparent yet.
    h.health(shard, serving(OLD_PRIMARY, 1)).unwrap();
    // 2. The first failover error starts buffering.
    let r1 = h.wait(shard, FAILOVER);
    assert_eq!(h.stats(shard).starts, 1);
    // 4. While buffering, first attempts wait too.
    let r2 = h.wait(shard, None);
    let r3 = h.wait(shard, FAILOVER);
    assert_eq!(h.queued(shard), 3);

    // 5. One second later the new primary serves.
    h.now = t0 + secs(1);
    h.take_actions();
    h.health(shard, serving(NEW_PRIMARY, 2)).unwrap();
    // 6. All three retry, in FIFO order, at most `drain_concurrency` at a time.
    let first = h.take_wakes();
    assert_eq!(first.len(), drain_concurrency.min(3));
    let mut order: Vec<_> = first.iter().map(|&(t, _)| t).collect();
    while h.retrying() > 0 {
        assert!(h.retrying() <= drain_concurrency);
        let done = h.complete_retries();
        assert!(!done.is_empty());
        order.extend(h.take_wakes().into_iter().map(|(t, v)| {
            assert_eq!(v, Verdict::Retry);
            t
        }));
    }
    assert_eq!(order, [r1, r2, r3]);

    // 7.
    let s = h.stats(shard);
    assert_eq!(s.last_failover_duration, secs(1));
    assert_eq!(s.last_requests_in_flight_max, 3);
    assert_eq!(s.stops[StopReason::NewPrimarySeen], 1);
    assert_eq!(s.utilization_sum, 30);
    assert_eq!(h.state(shard), ShardState::Idle);

    // 8. Too soon after the last failover: passed through and counted.
    assert_eq!(h.request(shard, FAILOVER), Admission::Proceed);
    assert_eq!(h.stats(shard).skipped[SkipReason::LastFailoverTooRecent], 1);

    // 9. Exactly the minimum time after the last end (and reparent) is allowed.
    h.now = t0 + secs(1) + secs(60);
    let r4 = h.wait(shard, FAILOVER);
    assert_eq!(h.stats(shard).last_requests_in_flight_max, 1);
    assert_eq!(h.stats(shard).starts, 2);

    // 10. The old primary is promoted back (a newer term) and ends the episode.
    h.take_actions();
    h.health(shard, serving(OLD_PRIMARY, 3)).unwrap();
    assert_eq!(h.take_wakes(), [(r4, Verdict::Retry)]);
    h.complete_retries();
    assert_eq!(h.state(shard), ShardState::Idle);

    // 11.
    let s = h.stats(shard);
    assert_eq!(s.stops[StopReason::NewPrimarySeen], 2);
    assert_eq!(s.utilization_sum, 40);
    // 12.
    assert_eq!(s.buffered, 4);
    assert_eq!(s.evicted.total(), 0);
    assert_eq!(s.drained, 4);
    h.assert_quiet();
}

#[test]
fn test_buffering() {
    buffering_scenario(1);
}

#[test]
fn test_buffering_concurrent() {
    buffering_scenario(2);
}

#[test]
fn test_dry_run() {
    let mut h = Harness::new(Config {
        dry_run: true,
        ..vitess_test_config()
    });
    let shard = h.shard("ks1", "0");
    assert_eq!(h.request(shard, FAILOVER), Admission::Proceed);
    assert_eq!(h.state(shard), ShardState::Buffering);
    assert_eq!(h.buffer.free_slots(), 10);
    let s = h.stats(shard);
    assert_eq!(s.starts, 1);
    assert_eq!(s.last_requests_dry_run_max, 1);
    assert_eq!(s.buffered_dry_run, 1);

    // No term was ever seen, so any serving stamp is news.
    h.health(shard, serving(NEW_PRIMARY, 1)).unwrap();
    assert_eq!(h.state(shard), ShardState::Idle);
    let s = h.stats(shard);
    assert_eq!(s.stops[StopReason::NewPrimarySeen], 1);
    assert_eq!(s.utilization_dry_run_sum, 10);
    h.assert_quiet();
}

#[test]
fn test_passthrough() {
    let mut h = Harness::new(enabled_for("ks1/0"));
    let shard = h.shard("ks1", "0");
    assert_eq!(h.request(shard, None), Admission::Proceed);
    assert_eq!(h.stats(shard), ShardStats::default());
    h.assert_quiet();
}

#[test]
fn test_last_reparent_too_recent_buffering_skipped() {
    let mut h = Harness::new(enabled_all());
    let shard = h.shard("ks1", "0");
    h.health(shard, serving(OLD_PRIMARY, 1)).unwrap();
    h.now = h.now + secs(1);
    h.health(shard, serving(NEW_PRIMARY, 2)).unwrap();

    assert_eq!(h.request(shard, FAILOVER), Admission::Proceed);
    let s = h.stats(shard);
    assert_eq!(s.skipped[SkipReason::LastReparentTooRecent], 1);
    assert_eq!(s.buffered, 0);
    h.assert_quiet();
}

/// Vitess ends this episode with a keyspace event from the very primary that was already
/// serving when it started. By term, that stamp proves nothing (it is how a demoted primary's
/// last word looks), so here the primary is seen to stop and serve again, which does end it.
#[test]
fn test_last_reparent_too_recent_buffering_ends_when_same_primary_serves_again() {
    let mut h = Harness::new(enabled_all());
    let shard = h.shard("ks1", "0");
    h.health(shard, serving(OLD_PRIMARY, 1)).unwrap();
    h.now = h.now + secs(1);
    h.health(shard, serving(NEW_PRIMARY, 2)).unwrap();

    // Not less than a minute since the reparent: buffering starts.
    h.now = h.now + secs(60);
    let r1 = h.wait(shard, FAILOVER);
    h.health(shard, not_serving(NEW_PRIMARY, 2)).unwrap();
    h.take_actions();
    h.health(shard, serving(NEW_PRIMARY, 2)).unwrap();
    assert_eq!(h.take_wakes(), [(r1, Verdict::Retry)]);
    h.complete_retries();

    assert_eq!(h.state(shard), ShardState::Idle);
    let s = h.stats(shard);
    assert_eq!(s.skipped[SkipReason::LastReparentTooRecent], 0);
    assert_eq!(s.buffered, 1);
    h.assert_quiet();
}

/// Vitess lets every request through while draining. First attempts still proceed here, and
/// so does a failover error once the episode is older than max failover duration; a failover
/// error earlier than that pauses the drain instead (see `drain_backoff.rs`).
#[test]
fn test_passthrough_during_drain_for_first_attempts_and_late_failover_errors() {
    let mut h = Harness::new(enabled_for("ks1/0"));
    let shard = h.shard("ks1", "0");
    let r1 = h.wait(shard, FAILOVER);
    h.health(shard, serving(NEW_PRIMARY, 1)).unwrap();
    assert_eq!(h.state(shard), ShardState::Draining);
    assert_eq!(h.take_wakes(), [(r1, Verdict::Retry)]);

    assert_eq!(h.request(shard, None), Admission::Proceed);
    h.now = h.now + h.buffer.config().max_failover_duration;
    assert_eq!(h.request(shard, FAILOVER), Admission::Proceed);
    assert_eq!(h.stats(shard).skipped.total(), 0);

    h.retry_done(r1).unwrap();
    assert_eq!(h.state(shard), ShardState::Idle);
    h.assert_quiet();
}

#[test]
fn test_passthrough_ignored_keyspace_or_shard() {
    let mut h = Harness::new(enabled_for("ks1/0"));
    let ignored_ks = h.shard("ignored_ks", "0");
    let ignored_shard = h.shard("ks1", "ff-");
    assert_eq!(h.buffer.shard_mode(ignored_ks), Some(Mode::Disabled));

    assert_eq!(h.request(ignored_ks, FAILOVER), Admission::Proceed);
    assert_eq!(h.stats(ignored_ks).skipped[SkipReason::Disabled], 1);
    assert_eq!(h.request(ignored_shard, FAILOVER), Admission::Proceed);
    assert_eq!(h.stats(ignored_shard).skipped[SkipReason::Disabled], 1);
    h.assert_quiet();
}

/// `testRequestCanceled(explicitEnd)`.
fn request_canceled_scenario(explicit_end: bool) {
    let mut config = enabled_for("ks1");
    if !explicit_end {
        config.window = ms(100);
        config.max_failover_duration = ms(100);
    }
    let mut h = Harness::new(config);
    let shard = h.shard("ks1", "0");
    let r1 = h.wait(shard, FAILOVER);
    let r2 = h.wait(shard, FAILOVER);

    // The second client gives up.
    h.cancel(r2).unwrap();
    assert_eq!(h.queued(shard), 1);
    assert_eq!(h.stats(shard).last_requests_in_flight_max, 2);

    h.take_actions();
    if explicit_end {
        h.health(shard, serving(NEW_PRIMARY, 1)).unwrap();
    } else {
        // Window and max duration fall due at the same instant. Vitess races them; here max
        // duration is checked first, so the request is drained rather than window-evicted.
        h.advance(ms(100));
    }
    assert_eq!(h.take_wakes(), [(r1, Verdict::Retry)]);
    h.complete_retries();
    assert_eq!(h.state(shard), ShardState::Idle);

    if !explicit_end {
        // A late end signal on an idle shard changes nothing.
        h.health(shard, serving(NEW_PRIMARY, 1)).unwrap();
        assert_eq!(h.state(shard), ShardState::Idle);
        assert_eq!(h.stats(shard).stops[StopReason::MaxDurationExceeded], 1);
    }
    let s = h.stats(shard);
    assert_eq!(s.buffered, 2);
    assert_eq!(s.evicted[EvictReason::ContextDone], 1);
    assert_eq!(s.evicted[EvictReason::WindowExceeded], 0);
    assert_eq!(s.drained, 1);
    h.assert_quiet();
}

#[test]
fn test_request_canceled_explicit_end() {
    request_canceled_scenario(true);
}

#[test]
fn test_request_canceled_max_duration_end() {
    request_canceled_scenario(false);
}

#[test]
fn test_eviction() {
    let mut h = Harness::new(Config {
        size: 2,
        ..enabled_for("ks1/0")
    });
    let shard = h.shard("ks1", "0");
    let r1 = h.wait(shard, FAILOVER);
    let r2 = h.wait(shard, FAILOVER);
    h.take_actions();

    let r3 = h.wait(shard, FAILOVER);
    assert_eq!(h.take_wakes(), [(r1, Verdict::Fail(BufferError::Evicted))]);
    assert_eq!(
        BufferError::Evicted.to_string(),
        "buffer full: request evicted for newer request"
    );

    h.health(shard, serving(NEW_PRIMARY, 1)).unwrap();
    assert_eq!(h.take_wakes(), [(r2, Verdict::Retry)]);
    h.complete_retries();
    assert_eq!(h.state(shard), ShardState::Idle);
    assert!(h.log.iter().any(|a| matches!(a,
        failover_buffer::Action::Wake { ticket, verdict: Verdict::Retry } if *ticket == r3)));

    let s = h.stats(shard);
    assert_eq!(s.buffered, 3);
    assert_eq!(s.evicted[EvictReason::BufferFull], 1);
    assert_eq!(s.drained, 2);
    h.assert_quiet();
}

/// As in Vitess, the shard that finds the buffer full still starts its episode; unlike in
/// Vitess's test, it is shown to end (at max failover duration), so nothing is left behind.
#[test]
fn test_eviction_not_possible() {
    let mut h = Harness::new(Config {
        size: 1,
        ..enabled_for("ks1/0,ks1/-80")
    });
    let shard = h.shard("ks1", "0");
    let other = h.shard("ks1", "-80");
    let r1 = h.wait(shard, FAILOVER);

    assert_eq!(
        h.request(other, FAILOVER),
        Admission::Fail(BufferError::BufferFull)
    );
    assert_eq!(
        BufferError::BufferFull.to_string(),
        "primary buffer is full"
    );
    assert_eq!(h.stats(other).starts, 1);
    assert_eq!(h.stats(other).skipped[SkipReason::BufferFull], 1);

    h.take_actions();
    h.health(shard, serving(NEW_PRIMARY, 1)).unwrap();
    assert_eq!(h.take_wakes(), [(r1, Verdict::Retry)]);
    h.complete_retries();
    assert_eq!(h.state(shard), ShardState::Idle);

    h.advance(h.buffer.config().max_failover_duration);
    assert_eq!(h.state(other), ShardState::Idle);
    assert_eq!(h.stats(other).stops[StopReason::MaxDurationExceeded], 1);
    h.assert_quiet();
}

/// Vitess changes the window between requests; here it is fixed at 1 ms, which gives the same
/// sequence of evictions and the same counts.
#[test]
fn test_window() {
    let mut h = Harness::new(Config {
        size: 1,
        window: ms(1),
        ..enabled_for("ks1/0,ks1/-80")
    });
    let shard = h.shard("ks1", "0");

    // 1. Held for the whole window: released to retry, no error; still buffering.
    let r1 = h.wait(shard, FAILOVER);
    h.take_actions();
    h.advance(ms(1));
    assert_eq!(h.take_wakes(), [(r1, Verdict::Retry)]);
    assert_eq!(h.stats(shard).evicted[EvictReason::WindowExceeded], 1);
    assert_eq!(h.state(shard), ShardState::Buffering);
    // 2. Its retry finishes and frees the slot.
    h.retry_done(r1).unwrap();

    // 3-4. A newer request evicts the older for the only slot.
    let r2 = h.wait(shard, FAILOVER);
    let r3 = h.wait(shard, FAILOVER);
    assert_eq!(h.take_wakes(), [(r2, Verdict::Fail(BufferError::Evicted))]);
    assert_eq!(h.queued(shard), 1);
    assert_eq!(h.stats(shard).evicted[EvictReason::WindowExceeded], 1);

    // 6. Again, then the window releases the survivor.
    let r4 = h.wait(shard, FAILOVER);
    assert_eq!(h.take_wakes(), [(r3, Verdict::Fail(BufferError::Evicted))]);
    h.advance(ms(1));
    assert_eq!(h.take_wakes(), [(r4, Verdict::Retry)]);
    h.retry_done(r4).unwrap();
    assert_eq!(h.stats(shard).evicted[EvictReason::WindowExceeded], 2);

    // 7. Max duration stops the episode with nothing left to drain.
    h.advance(h.buffer.config().max_failover_duration);
    assert_eq!(h.state(shard), ShardState::Idle);
    let s = h.stats(shard);
    assert_eq!(s.stops[StopReason::MaxDurationExceeded], 1);
    assert_eq!(s.buffered, 4);
    assert_eq!(s.evicted[EvictReason::WindowExceeded], 2);
    assert_eq!(s.evicted[EvictReason::BufferFull], 2);
    assert_eq!(s.drained, 0);
    h.assert_quiet();
}

#[test]
fn test_shutdown() {
    let mut h = Harness::new(enabled_all());
    let shard = h.shard("ks1", "0");
    let r1 = h.wait(shard, FAILOVER);
    h.take_actions();

    h.shutdown();
    assert_eq!(h.take_wakes(), [(r1, Verdict::Retry)]);
    assert!(!h.buffer.is_closed(), "closed before the retry finished");
    h.retry_done(r1).unwrap();
    assert!(h.buffer.is_closed());
    assert!(h.log.contains(&failover_buffer::Action::Closed));

    let s = h.stats(shard);
    assert_eq!(s.stops[StopReason::Shutdown], 1);
    assert_eq!(s.buffered, 1);
    assert_eq!(s.drained, 1);
    h.assert_quiet();
}

#[test]
fn test_shutdown_wait_for_failover_end_after_shutdown_is_noop() {
    let mut h = Harness::new(Config {
        max_failover_duration: ms(500),
        window: ms(500),
        ..enabled_all()
    });
    let shard = h.shard("ks1", "0");
    assert_eq!(h.state(shard), ShardState::Idle);
    h.shutdown();
    assert!(h.buffer.is_closed());

    assert_eq!(h.request(shard, FAILOVER), Admission::Proceed);
    assert_eq!(h.state(shard), ShardState::Idle);
    assert_eq!(h.stats(shard).skipped[SkipReason::Shutdown], 1);
    assert_eq!(h.buffer.poll_timeout(), None);
    h.assert_quiet();
}

#[test]
fn test_verify_flags() {
    let only_filter = Config {
        filter: "ks1/0".parse().unwrap(),
        ..Config::default()
    };
    assert_eq!(
        only_filter.validate(),
        Err(ConfigError::FilterRequiresEnabled)
    );
    assert!(
        only_filter
            .validate()
            .unwrap_err()
            .to_string()
            .contains("also requires that")
    );

    let both = Config {
        enabled: true,
        dry_run: true,
        ..Config::default()
    };
    assert_eq!(
        both.validate(),
        Err(ConfigError::DryRunAndEnabledWithoutFilter)
    );
    assert!(
        both.validate()
            .unwrap_err()
            .to_string()
            .contains("To avoid ambiguity")
    );

    let invalid = "ks1//0".parse::<ShardFilter>().unwrap_err();
    assert!(matches!(invalid, FilterError::InvalidShardPath(_)));
    assert!(invalid.to_string().contains("invalid shard path"));

    let overlapping = "ks1,ks1/0".parse::<ShardFilter>().unwrap_err();
    assert!(matches!(overlapping, FilterError::Overlapping { .. }));
    assert!(overlapping.to_string().contains("has overlapping entries"));
}

/// Every counter exists, at zero, as soon as a shard is registered. Vitess also counts a
/// first attempt on a disabled shard as skipped `Disabled`; here only requests the buffer
/// could have held (with a failover cause) count, which keeps the idle path free of writes
/// and makes the counter mean "failovers not buffered because disabled".
#[test]
fn test_variables_are_initialized_and_first_attempts_are_not_skips() {
    let mut h = Harness::new(vitess_test_config());
    let shard = h.shard("init_test", "0");
    assert_eq!(h.buffer.shard_mode(shard), Some(Mode::Disabled));
    assert_eq!(h.request(shard, None), Admission::Proceed);
    assert_eq!(h.stats(shard), ShardStats::default());
    assert_eq!(h.stats(shard).stops.iter().count(), 5);
    assert_eq!(h.stats(shard).evicted.iter().count(), 3);
    assert_eq!(h.stats(shard).skipped.iter().count(), 5);

    assert_eq!(h.request(shard, FAILOVER), Admission::Proceed);
    assert_eq!(h.stats(shard).skipped[SkipReason::Disabled], 1);
    h.assert_quiet();
}

//! The Vitess semantics DESIGN §4 keeps, one scenario per rule.

mod support;

use failover_buffer::{
    Action, Admission, BufferError, Config, ConfigError, EvictReason, FailoverCause, Metric, Mode,
    ShardState, SkipReason, StopReason, TimerKind, Timestamp, TopologyEvent, Verdict,
};
use support::*;

#[test]
fn defaults_are_vitess_flag_defaults() {
    let c = Config::default();
    assert_eq!(c.size, 1000);
    assert_eq!(c.window, secs(10));
    assert_eq!(c.max_failover_duration, secs(20));
    assert_eq!(c.min_time_between_failovers, secs(60));
    assert_eq!(c.drain_concurrency, 1);
    assert!(!c.enabled && !c.dry_run && c.filter.is_empty());
    assert_eq!(c.mode_for("ks", "0"), Mode::Disabled);
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn validate_rejects_each_bad_setting_with_a_typed_error() {
    let cases = [
        (
            Config {
                window: secs(0),
                ..enabled()
            },
            ConfigError::WindowZero,
        ),
        (
            Config {
                window: secs(21),
                ..enabled()
            },
            ConfigError::WindowExceedsMaxFailoverDuration {
                window: secs(21),
                max_failover_duration: secs(20),
            },
        ),
        (
            Config {
                size: 0,
                ..enabled()
            },
            ConfigError::SizeZero,
        ),
        (
            Config {
                min_time_between_failovers: ms(999),
                ..enabled()
            },
            ConfigError::MinTimeBetweenFailoversTooShort(ms(999)),
        ),
        (
            Config {
                drain_concurrency: 0,
                ..enabled()
            },
            ConfigError::DrainConcurrencyZero,
        ),
        (
            Config {
                drain_backoff: secs(0),
                ..enabled()
            },
            ConfigError::DrainBackoffZero,
        ),
    ];
    for (config, error) in cases {
        assert_eq!(config.validate(), Err(error.clone()));
        assert_eq!(failover_buffer::Buffer::new(config).unwrap_err(), error);
    }
    // The limits themselves are fine.
    let edge = Config {
        window: secs(20),
        min_time_between_failovers: secs(1),
        ..enabled()
    };
    assert_eq!(edge.validate(), Ok(()));
}

#[test]
fn idle_first_attempt_proceeds_and_touches_nothing() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    assert_eq!(h.request(shard, None), Admission::Proceed);
    assert!(h.log.is_empty());
    assert_eq!(h.stats(shard), Default::default());
}

#[test]
fn idle_failover_error_starts_buffering_and_announces_it() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let t = h.wait(shard, Some(FailoverCause::Resharding));
    assert_eq!(h.state(shard), ShardState::Buffering);
    assert_eq!(
        h.take_actions(),
        [Action::FailoverStarted {
            shard,
            cause: FailoverCause::Resharding
        }]
    );
    assert_eq!(h.buffer.ticket_shard(t), Some(shard));
    assert_eq!(h.stats(shard).starts, 1);
}

#[test]
fn min_time_between_failovers_is_strict() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.wait(shard, FAILOVER);
    h.health(shard, serving(1, 1)).unwrap();
    h.complete_retries();
    let end = h.now;

    h.now = end + secs(60) - std::time::Duration::from_nanos(1);
    assert_eq!(h.request(shard, FAILOVER), Admission::Proceed);
    assert_eq!(h.stats(shard).skipped[SkipReason::LastFailoverTooRecent], 1);

    h.now = end + secs(60);
    h.wait(shard, FAILOVER);
    assert_eq!(h.stats(shard).starts, 2);
}

#[test]
fn last_failover_too_recent_is_checked_before_last_reparent() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    h.wait(shard, FAILOVER);
    // A new primary: both the episode end and the reparent are now.
    h.health(shard, serving(2, 2)).unwrap();
    h.complete_retries();

    assert_eq!(h.request(shard, FAILOVER), Admission::Proceed);
    let s = h.stats(shard);
    assert_eq!(s.skipped[SkipReason::LastFailoverTooRecent], 1);
    assert_eq!(s.skipped[SkipReason::LastReparentTooRecent], 0);
}

#[test]
fn first_primary_seen_is_not_a_reparent() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    h.wait(shard, FAILOVER);
    assert_eq!(h.stats(shard).skipped.total(), 0);
}

#[test]
fn while_buffering_every_request_waits() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.wait(shard, FAILOVER);
    h.wait(shard, None);
    h.wait(shard, Some(FailoverCause::MoveTables));
    assert_eq!(h.queued(shard), 3);
    assert_eq!(h.stats(shard).buffered, 3);
    assert_eq!(h.stats(shard).last_requests_in_flight_max, 3);
}

#[test]
fn full_buffer_evicts_the_oldest_of_the_same_shard_and_hands_over_its_slot() {
    let mut h = Harness::new(Config {
        size: 3,
        ..enabled()
    });
    let a = h.shard("ks", "a");
    let b = h.shard("ks", "b");
    let a1 = h.wait(a, FAILOVER);
    let b1 = h.wait(b, FAILOVER);
    let a2 = h.wait(a, FAILOVER);
    h.take_actions();

    // Full. The newcomer on `b` pushes out `b`'s oldest, never `a`'s older request.
    let b2 = h.wait(b, FAILOVER);
    assert_eq!(h.take_wakes(), [(b1, Verdict::Fail(BufferError::Evicted))]);
    assert_eq!(h.buffer.free_slots(), 0);
    assert_eq!(h.queued(a), 2);
    assert_eq!(h.stats(b).evicted[EvictReason::BufferFull], 1);
    assert_eq!(h.stats(a).evicted.total(), 0);
    let _ = (a1, a2, b2);
}

#[test]
fn full_buffer_with_nothing_of_its_own_to_evict_fails_buffer_full() {
    let mut h = Harness::new(Config {
        size: 1,
        ..enabled()
    });
    let a = h.shard("ks", "a");
    let b = h.shard("ks", "b");
    h.wait(a, FAILOVER);
    assert_eq!(
        h.request(b, FAILOVER),
        Admission::Fail(BufferError::BufferFull)
    );
    assert_eq!(h.stats(b).skipped[SkipReason::BufferFull], 1);
    assert_eq!(h.queued(a), 1);
}

#[test]
fn window_releases_the_head_exactly_at_its_deadline_and_keeps_its_slot_until_retry_done() {
    let mut h = Harness::new(Config {
        window: secs(5),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    h.now = h.now + secs(1);
    let t2 = h.wait(shard, FAILOVER);
    h.take_actions();
    let due = h.buffer.next_deadline().unwrap();
    assert_eq!(due.kind, TimerKind::Window);

    h.now = due.at - std::time::Duration::from_nanos(1);
    h.tick();
    assert!(h.take_wakes().is_empty());
    h.now = due.at;
    h.tick();
    assert_eq!(h.take_wakes(), [(t1, Verdict::Retry)]);
    assert_eq!(h.stats(shard).evicted[EvictReason::WindowExceeded], 1);
    assert_eq!(h.state(shard), ShardState::Buffering);
    assert_eq!(h.buffer.held_slots(), 2);
    h.retry_done(t1).unwrap();
    assert_eq!(h.buffer.held_slots(), 1);
    assert_eq!(h.buffer.next_deadline().unwrap().at, due.at + secs(1));
    let _ = t2;
}

#[test]
fn max_failover_duration_drains_everything_to_retry() {
    let mut h = Harness::new(Config {
        drain_concurrency: 10,
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let start = h.now;
    // Windows (10 s) end at 10 s, 11 s, 22 s and 24 s; max duration at 20 s.
    let tickets: Vec<_> = [0, 1, 12, 14]
        .into_iter()
        .map(|offset| {
            h.now = start + secs(offset);
            h.wait(shard, FAILOVER)
        })
        .collect();
    h.take_actions();
    h.advance((start + secs(20)).saturating_duration_since(h.now));
    let wakes = h.take_wakes();
    assert!(wakes.iter().all(|&(_, v)| v == Verdict::Retry));
    assert_eq!(wakes.iter().map(|&(t, _)| t).collect::<Vec<_>>(), tickets);
    let s = h.stats(shard);
    assert_eq!(s.evicted[EvictReason::WindowExceeded], 2);
    assert_eq!(s.drained, 2);
    assert_eq!(s.stops[StopReason::MaxDurationExceeded], 1);
    assert_eq!(s.last_failover_duration, secs(20));
    h.complete_retries();
    h.assert_quiet();
}

#[test]
fn drain_releases_in_order_at_most_drain_concurrency_at_a_time() {
    let mut h = Harness::new(Config {
        drain_concurrency: 3,
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let tickets: Vec<_> = (0..10).map(|_| h.wait(shard, FAILOVER)).collect();
    h.take_actions();
    h.health(shard, serving(1, 1)).unwrap();
    let actions = h.take_actions();
    assert!(actions.contains(&Action::StartDrain { shard, queued: 10 }));

    let mut released = Vec::new();
    let wake_of = |a: Action| match a {
        Action::Wake { ticket, .. } => Some(ticket),
        _ => None,
    };
    let mut in_flight: Vec<_> = actions.into_iter().filter_map(wake_of).collect();
    loop {
        in_flight.extend(h.take_actions().into_iter().filter_map(wake_of));
        assert!(in_flight.len() <= 3, "{} retries at once", in_flight.len());
        assert_eq!(h.buffer.draining_in_flight(shard), Some(in_flight.len()));
        if in_flight.is_empty() {
            break;
        }
        let t = in_flight.remove(0);
        released.push(t);
        assert_eq!(h.state(shard), ShardState::Draining);
        h.retry_done(t).unwrap();
    }
    assert_eq!(released, tickets);
    assert_eq!(h.state(shard), ShardState::Idle);
    assert!(matches!(
        h.log.last(),
        Some(Action::Metric(Metric::DrainFinished { .. }))
    ));
    h.assert_quiet();
}

#[test]
fn cancel_while_queued_frees_the_slot_and_counts_context_done() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    let t2 = h.wait(shard, FAILOVER);
    let t3 = h.wait(shard, FAILOVER);
    h.take_actions();
    h.cancel(t2).unwrap();
    assert!(
        h.take_actions().is_empty(),
        "a cancelled request is not woken"
    );
    assert_eq!(h.buffer.held_slots(), 2);
    assert_eq!(h.stats(shard).evicted[EvictReason::ContextDone], 1);
    h.health(shard, serving(1, 1)).unwrap();
    assert_eq!(h.complete_retries(), [t1, t3]);
    h.assert_quiet();
}

#[test]
fn cancel_while_waiting_in_a_drain_counts_as_drained() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    let t2 = h.wait(shard, FAILOVER);
    h.health(shard, serving(1, 1)).unwrap();
    // t1 retries; t2 waits for its turn and gives up.
    h.cancel(t2).unwrap();
    let s = h.stats(shard);
    assert_eq!(s.drained, 2);
    assert_eq!(s.evicted.total(), 0);
    h.retry_done(t1).unwrap();
    h.assert_quiet();
}

#[test]
fn cancel_after_release_counts_as_the_retry_being_done() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    let t2 = h.wait(shard, FAILOVER);
    h.health(shard, serving(1, 1)).unwrap();
    h.take_actions();
    h.cancel(t1).unwrap();
    assert_eq!(h.take_wakes(), [(t2, Verdict::Retry)]);
    h.retry_done(t2).unwrap();
    h.assert_quiet();
}

#[test]
fn draining_goes_idle_only_when_the_last_retry_is_done() {
    let mut h = Harness::new(Config {
        drain_concurrency: 2,
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    let t2 = h.wait(shard, FAILOVER);
    h.health(shard, serving(1, 1)).unwrap();
    h.retry_done(t2).unwrap();
    assert_eq!(h.state(shard), ShardState::Draining);
    h.retry_done(t1).unwrap();
    assert_eq!(h.state(shard), ShardState::Idle);
}

#[test]
fn dry_run_runs_the_machine_and_holds_nothing() {
    let mut h = Harness::new(Config {
        dry_run: true,
        ..Config::default()
    });
    let shard = h.shard("ks", "0");
    assert_eq!(h.request(shard, FAILOVER), Admission::Proceed);
    assert_eq!(h.request(shard, None), Admission::Proceed);
    assert_eq!(h.state(shard), ShardState::Buffering);
    assert_eq!(h.buffer.held_slots(), 0);
    let s = h.stats(shard);
    assert_eq!((s.starts, s.buffered, s.buffered_dry_run), (1, 0, 2));
    // The timers run too.
    h.advance(secs(20));
    assert_eq!(h.state(shard), ShardState::Idle);
    assert_eq!(h.stats(shard).stops[StopReason::MaxDurationExceeded], 1);
    h.assert_quiet();
}

#[test]
fn resharding_fails_every_held_request_with_shard_missing() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "-80");
    let t1 = h.wait(shard, Some(FailoverCause::Resharding));
    let t2 = h.wait(shard, Some(FailoverCause::Resharding));
    h.take_actions();
    h.topology(shard, TopologyEvent::ShardMissing);
    let fail = Verdict::Fail(BufferError::ShardMissing);
    assert_eq!(h.take_wakes(), [(t1, fail), (t2, fail)]);
    assert_eq!(h.stats(shard).stops[StopReason::ReshardingComplete], 1);
    assert_eq!(h.state(shard), ShardState::Idle);
    assert_eq!(
        BufferError::ShardMissing.to_string(),
        "destination shard is missing after a resharding operation"
    );
    h.assert_quiet();
}

#[test]
fn resharding_during_a_drain_fails_those_not_yet_released() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "-80");
    let t1 = h.wait(shard, FAILOVER);
    let t2 = h.wait(shard, FAILOVER);
    h.health(shard, serving(1, 1)).unwrap();
    h.take_actions();
    h.topology(shard, TopologyEvent::ShardMissing);
    assert_eq!(
        h.take_wakes(),
        [(t2, Verdict::Fail(BufferError::ShardMissing))]
    );
    h.retry_done(t1).unwrap();
    h.assert_quiet();
}

#[test]
fn move_tables_switch_releases_requests_to_retry() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, Some(FailoverCause::MoveTables));
    h.take_actions();
    h.topology(shard, TopologyEvent::TrafficSwitched);
    assert_eq!(h.take_wakes(), [(t1, Verdict::Retry)]);
    assert_eq!(
        h.stats(shard).stops[StopReason::MoveTablesSwitchedTraffic],
        1
    );
    h.complete_retries();
    h.assert_quiet();
}

#[test]
fn topology_event_on_an_idle_shard_changes_nothing() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.topology(shard, TopologyEvent::ShardMissing);
    assert_eq!(h.state(shard), ShardState::Idle);
    assert!(h.log.is_empty());
    h.wait(shard, FAILOVER);
    assert_eq!(h.stats(shard).skipped.total(), 0, "no episode ended");
}

#[test]
fn stop_reports_duration_and_truncated_utilisation() {
    let mut h = Harness::new(Config {
        size: 3,
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    h.wait(shard, FAILOVER);
    h.now = h.now + ms(1500);
    h.take_actions();
    h.health(shard, serving(1, 1)).unwrap();
    assert_eq!(
        h.take_actions()[0],
        Action::Metric(Metric::BufferingStopped {
            shard,
            reason: StopReason::NewPrimarySeen,
            duration: ms(1500),
            in_flight_max: 1,
            utilization_percent: 33,
        })
    );
    assert_eq!(h.stats(shard).utilization_sum, 33);
    assert_eq!(h.stats(shard).failover_duration_sum, ms(1500));
}

#[test]
fn shutdown_drains_every_shard_and_then_lets_everything_through() {
    let mut h = Harness::new(enabled());
    let a = h.shard("ks", "a");
    let b = h.shard("ks", "b");
    let ta = h.wait(a, FAILOVER);
    let tb = h.wait(b, FAILOVER);
    h.take_actions();
    h.shutdown();
    let woken: Vec<_> = h.take_wakes().into_iter().map(|(t, _)| t).collect();
    assert_eq!(woken.len(), 2);
    assert!(woken.contains(&ta) && woken.contains(&tb));

    // Health and topology are ignored from now on; requests proceed.
    h.health(a, serving(1, 1)).unwrap();
    assert_eq!(h.request(a, FAILOVER), Admission::Proceed);
    assert_eq!(h.request(b, None), Admission::Proceed);
    assert_eq!(h.stats(a).skipped[SkipReason::Shutdown], 1);
    h.complete_retries();
    assert_eq!(h.log.iter().filter(|a| **a == Action::Closed).count(), 1);
    h.shutdown();
    assert_eq!(h.log.iter().filter(|a| **a == Action::Closed).count(), 1);
    h.assert_quiet();
}

#[test]
fn poll_timeout_is_the_earliest_of_window_and_max_duration() {
    let mut h = Harness::new(Config {
        window: secs(10),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    assert_eq!(h.buffer.poll_timeout(), None);
    let start = h.now;
    h.wait(shard, FAILOVER);
    assert_eq!(h.buffer.poll_timeout(), Some(start + secs(10)));
    h.advance(secs(10));
    // The queue is empty; only max duration remains.
    let next = h.buffer.next_deadline().unwrap();
    assert_eq!(
        (next.at, next.kind),
        (start + secs(20), TimerKind::MaxFailoverDuration)
    );
    h.complete_retries();
}

#[test]
fn ticking_early_twice_or_late_is_harmless() {
    let mut h = Harness::new(Config {
        window: secs(1),
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    let t1 = h.wait(shard, FAILOVER);
    h.tick();
    h.tick();
    assert_eq!(h.queued(shard), 1);
    // A tick long after every deadline fires them all, in a valid order.
    h.now = h.now + secs(60);
    h.take_actions();
    h.tick();
    assert_eq!(h.take_wakes(), [(t1, Verdict::Retry)]);
    assert_eq!(h.state(shard), ShardState::Draining);
    assert_eq!(h.stats(shard).stops[StopReason::MaxDurationExceeded], 1);
    h.complete_retries();
    h.assert_quiet();
}

#[test]
fn timestamps_print_as_seconds() {
    assert_eq!(Timestamp::from_millis(12_500).to_string(), "12.500000000s");
}

//! The bounded operator pause (issue 15, step 4): `Buffer::pause` holds every request of a
//! shard, first attempts included, until `resume` or until its `max` runs out; it coexists
//! with a failover episode. Each scenario against a hand-computed answer; the harness checks
//! every invariant (a pause never outlives its bound among them) after every input.

mod support;

use failover_buffer::{
    Action, Admission, BufferError, Config, ConfigError, EvictReason, FailoverCause, Metric, Mode,
    PauseEnd, PauseError, PauseScope, ReleaseReason, ShardId, ShardState, StopReason, TicketStatus,
    TimerKind, Verdict, WaitOutcome,
};
use std::time::Duration;
use support::*;

/// A harness with one enabled shard whose primary (1) serves under term 1.
fn one_shard(config: Config) -> (Harness, ShardId) {
    let mut h = Harness::new(config);
    let a = h.shard("ks", "0");
    h.health(a, serving(1, 1)).unwrap();
    (h, a)
}

fn stopped(shard: ShardId, reason: StopReason, duration: Duration, in_flight_max: u64) -> Action {
    Action::Metric(Metric::BufferingStopped {
        shard,
        reason,
        duration,
        in_flight_max,
        utilization_percent: in_flight_max * 100 / 1000,
    })
}

#[test]
fn a_pause_holds_first_attempts_until_resume_then_drains_them() {
    let (mut h, a) = one_shard(enabled());
    let t0 = h.now;
    assert_eq!(h.pause(PauseScope::Shard(a), secs(60)), Ok(1));
    assert_eq!(
        h.take_actions(),
        [Action::PauseStarted {
            shard: a,
            until: t0 + secs(60)
        }]
    );
    assert_eq!(h.state(a), ShardState::Buffering);
    assert_eq!(h.buffer.pause_expiry(a), Some(t0 + secs(60)));

    // First attempts are held; no failover episode starts.
    let t1 = h.wait(a, None);
    let t2 = h.wait(a, None);
    assert_eq!(h.take_actions(), []);
    assert_eq!((h.stats(a).buffered, h.stats(a).starts), (2, 0));

    h.advance(secs(2));
    assert_eq!(h.resume(PauseScope::Shard(a)), Ok(1));
    assert_eq!(
        h.take_actions(),
        [
            Action::PauseEnded {
                shard: a,
                reason: PauseEnd::Resumed,
                queued: 2
            },
            Action::StartDrain {
                shard: a,
                queued: 2
            },
            Action::Wake {
                ticket: t1,
                verdict: Verdict::Retry
            },
        ]
    );
    assert_eq!(
        h.buffer.ticket_status(t1),
        TicketStatus::Retrying(ReleaseReason::PauseEnded)
    );
    // Paced by drain_concurrency (1): the second waits for the first retry.
    h.retry_done(t1).unwrap();
    assert_eq!(h.take_wakes(), [(t2, Verdict::Retry)]);
    h.retry_done(t2).unwrap();
    assert_eq!(
        h.take_actions(),
        [Action::Metric(Metric::DrainFinished {
            shard: a,
            duration: Duration::ZERO
        })]
    );
    assert_eq!(h.state(a), ShardState::Idle);
    assert_eq!(h.request(a, None), Admission::Proceed);
    let s = h.stats(a);
    assert_eq!((s.drained, s.pauses_started), (2, 1));
    assert_eq!(s.pauses_ended[PauseEnd::Resumed], 1);
    // No episode: its figures are untouched.
    assert_eq!(s.last_failover_held_duration, Duration::ZERO);
    h.assert_quiet();
}

#[test]
fn a_pause_expires_by_itself_at_its_bound() {
    let (mut h, a) = one_shard(enabled());
    let t0 = h.now;
    h.pause(PauseScope::Shard(a), secs(5)).unwrap();
    let t1 = h.wait(a, None);
    h.take_actions();
    // The pause's bound (5 s) comes before the request's window (10 s).
    assert_eq!(h.buffer.poll_timeout(), Some(t0 + secs(5)));
    assert_eq!(
        h.buffer.next_deadline().unwrap().kind,
        TimerKind::PauseExpiry
    );

    h.advance(secs(5));
    assert_eq!(
        h.take_actions(),
        [
            Action::PauseEnded {
                shard: a,
                reason: PauseEnd::Expired,
                queued: 1
            },
            Action::StartDrain {
                shard: a,
                queued: 1
            },
            Action::Wake {
                ticket: t1,
                verdict: Verdict::Retry
            },
        ]
    );
    assert_eq!(h.stats(a).pauses_ended[PauseEnd::Expired], 1);
    assert_eq!(h.buffer.pause_expiry(a), None);
    h.complete_retries();
    assert_eq!(h.state(a), ShardState::Idle);
    h.assert_quiet();
}

#[test]
fn a_request_held_for_its_whole_window_is_released_while_the_pause_goes_on() {
    let config = Config {
        window: secs(2),
        ..enabled()
    };
    let (mut h, a) = one_shard(config);
    h.pause(PauseScope::Shard(a), secs(5)).unwrap();
    let t1 = h.wait(a, None);
    h.take_actions();
    h.advance(secs(2));
    assert_eq!(h.take_wakes(), [(t1, Verdict::Retry)]);
    assert_eq!(
        h.buffer.ticket_status(t1),
        TicketStatus::Retrying(ReleaseReason::Window)
    );
    assert_eq!(h.stats(a).evicted[EvictReason::WindowExceeded], 1);
    assert_eq!(h.state(a), ShardState::Buffering);
    h.retry_done(t1).unwrap();
    // Nothing left to drain when it expires.
    h.advance(secs(3));
    assert_eq!(
        h.take_actions(),
        [
            Action::PauseEnded {
                shard: a,
                reason: PauseEnd::Expired,
                queued: 0
            },
            Action::StartDrain {
                shard: a,
                queued: 0
            },
            Action::Metric(Metric::DrainFinished {
                shard: a,
                duration: Duration::ZERO
            }),
        ]
    );
    assert_eq!(h.state(a), ShardState::Idle);
    h.assert_quiet();
}

/// The pause ends first: the episode that started under it keeps the shard buffering until
/// the new primary serves.
#[test]
fn pause_then_failover_releases_only_when_the_episode_ends_too() {
    let (mut h, a) = one_shard(enabled());
    let t0 = h.now;
    h.pause(PauseScope::Shard(a), secs(60)).unwrap();
    let t1 = h.wait(a, None);
    let t2 = h.wait(a, FAILOVER);
    h.take_actions();
    assert_eq!(
        h.stats(a).starts,
        1,
        "the failover under the pause is an episode"
    );
    assert!(h.log.contains(&Action::FailoverStarted {
        shard: a,
        cause: FailoverCause::Reparent
    }));

    h.advance(secs(1));
    assert_eq!(h.resume(PauseScope::Shard(a)), Ok(1));
    assert_eq!(
        h.take_actions(),
        [Action::PauseEnded {
            shard: a,
            reason: PauseEnd::Resumed,
            queued: 2
        }]
    );
    assert_eq!(h.state(a), ShardState::Buffering);
    // The episode still holds first attempts.
    let t3 = h.wait(a, None);

    h.advance(secs(1));
    h.health(a, serving(2, 2)).unwrap();
    assert_eq!(
        h.take_actions(),
        [
            stopped(a, StopReason::NewPrimarySeen, secs(2), 3),
            Action::StartDrain {
                shard: a,
                queued: 3
            },
            Action::Wake {
                ticket: t1,
                verdict: Verdict::Retry
            },
        ]
    );
    assert_eq!(h.complete_retries(), [t1, t2, t3]);
    assert_eq!(h.state(a), ShardState::Idle);
    assert_eq!(t0 + secs(2), h.now);
    h.assert_quiet();
}

/// The episode ends first: it is counted, but nothing is released until the pause ends.
#[test]
fn failover_then_pause_releases_only_when_the_pause_ends_too() {
    let (mut h, a) = one_shard(enabled());
    let t1 = h.wait(a, FAILOVER);
    h.pause(PauseScope::Shard(a), secs(60)).unwrap();
    h.take_actions();

    h.advance(secs(1));
    h.health(a, serving(2, 2)).unwrap();
    assert_eq!(
        h.take_actions(),
        [stopped(a, StopReason::NewPrimarySeen, secs(1), 1)]
    );
    assert_eq!(h.stats(a).stops[StopReason::NewPrimarySeen], 1);
    assert_eq!(h.state(a), ShardState::Buffering);
    let t2 = h.wait(a, None);

    h.advance(secs(1));
    assert_eq!(h.resume(PauseScope::Shard(a)), Ok(1));
    assert_eq!(
        h.take_actions(),
        [
            Action::PauseEnded {
                shard: a,
                reason: PauseEnd::Resumed,
                queued: 2
            },
            Action::StartDrain {
                shard: a,
                queued: 2
            },
            Action::Wake {
                ticket: t1,
                verdict: Verdict::Retry
            },
        ]
    );
    assert_eq!(
        h.buffer.ticket_status(t1),
        TicketStatus::Retrying(ReleaseReason::Drain(StopReason::NewPrimarySeen))
    );
    assert_eq!(h.complete_retries(), [t1, t2]);
    assert_eq!(h.state(a), ShardState::Idle);
    // The episode as its clients saw it: first hold (t1) to last release (t2), 2 s.
    assert_eq!(h.stats(a).last_failover_held_duration, secs(2));
    h.assert_quiet();
}

#[test]
fn a_pause_during_a_drain_stops_releasing_until_it_ends() {
    let (mut h, a) = one_shard(enabled());
    let t1 = h.wait(a, FAILOVER);
    let t2 = h.wait(a, FAILOVER);
    h.health(a, serving(2, 2)).unwrap();
    assert_eq!(h.take_wakes(), [(t1, Verdict::Retry)]);

    h.pause(PauseScope::Shard(a), secs(60)).unwrap();
    assert_eq!(h.state(a), ShardState::Buffering);
    // The retry already released finishes; nothing more is released.
    h.retry_done(t1).unwrap();
    assert_eq!(h.take_wakes(), []);
    let t3 = h.wait(a, None);

    assert_eq!(h.resume(PauseScope::Shard(a)), Ok(1));
    assert_eq!(
        h.take_actions(),
        [
            Action::PauseEnded {
                shard: a,
                reason: PauseEnd::Resumed,
                queued: 2
            },
            Action::StartDrain {
                shard: a,
                queued: 2
            },
            Action::Wake {
                ticket: t2,
                verdict: Verdict::Retry
            },
        ]
    );
    assert_eq!(h.complete_retries(), [t2, t3]);
    assert_eq!(h.state(a), ShardState::Idle);
    h.assert_quiet();
}

#[test]
fn pause_all_pauses_every_enabled_shard_registered_now() {
    let mut h = Harness::new(enabled());
    let a = h.shard("ks", "-80");
    let b = h.shard("ks", "80-");
    assert_eq!(h.pause(PauseScope::All, secs(30)), Ok(2));
    let c = h.shard("ks", "c0-");
    assert_eq!(
        h.request(c, None),
        Admission::Proceed,
        "registered after the pause"
    );
    assert_eq!(h.buffer.pause_expiry(c), None);
    let ta = h.wait(a, None);
    let tb = h.wait(b, None);
    h.take_actions();

    assert_eq!(h.resume(PauseScope::All), Ok(2));
    assert_eq!(h.take_wakes(), [(ta, Verdict::Retry), (tb, Verdict::Retry)]);
    assert_eq!(h.resume(PauseScope::All), Ok(0));
    h.complete_retries();
    for shard in [a, b, c] {
        assert_eq!(h.state(shard), ShardState::Idle);
    }
    h.assert_quiet();
}

#[test]
fn a_full_buffer_under_a_pause_evicts_by_the_policy() {
    let config = Config {
        size: 2,
        ..enabled()
    };
    let (mut h, a) = one_shard(config);
    h.pause(PauseScope::Shard(a), secs(60)).unwrap();
    let t1 = h.wait(a, None);
    let _t2 = h.wait(a, None);
    h.take_actions();
    // Full: the shard's oldest makes way (OldestOfShard, the default).
    let _t3 = h.wait(a, None);
    assert_eq!(h.take_wakes(), [(t1, Verdict::Fail(BufferError::Evicted))]);
    assert_eq!(h.stats(a).evicted[EvictReason::BufferFull], 1);
    h.resume(PauseScope::Shard(a)).unwrap();
    h.complete_retries();
    h.assert_quiet();
}

#[test]
fn pausing_a_paused_shard_gives_it_the_new_bound_from_now() {
    let (mut h, a) = one_shard(enabled());
    let t0 = h.now;
    h.pause(PauseScope::Shard(a), secs(60)).unwrap();
    h.advance(secs(10));
    h.take_actions();
    assert_eq!(h.pause(PauseScope::Shard(a), secs(5)), Ok(1));
    assert_eq!(
        h.take_actions(),
        [Action::PauseStarted {
            shard: a,
            until: t0 + secs(15)
        }]
    );
    assert_eq!(h.stats(a).pauses_started, 1, "the same pause");
    h.advance(secs(5));
    assert_eq!(h.state(a), ShardState::Idle);
    assert_eq!(h.stats(a).pauses_ended[PauseEnd::Expired], 1);
}

#[test]
fn shutdown_ends_pauses_and_a_cancel_does_not_bring_them_back() {
    let (mut h, a) = one_shard(enabled());
    h.pause(PauseScope::Shard(a), secs(60)).unwrap();
    let t1 = h.wait(a, None);
    h.take_actions();
    h.shutdown();
    let actions = h.take_actions();
    assert_eq!(
        actions[..3],
        [
            Action::PauseEnded {
                shard: a,
                reason: PauseEnd::Shutdown,
                queued: 1
            },
            Action::StartDrain {
                shard: a,
                queued: 1
            },
            Action::Wake {
                ticket: t1,
                verdict: Verdict::Retry
            },
        ]
    );
    assert_eq!(h.stats(a).pauses_ended[PauseEnd::Shutdown], 1);
    assert_eq!(
        h.pause(PauseScope::Shard(a), secs(1)),
        Err(PauseError::ShuttingDown)
    );
    h.cancel_shutdown().unwrap();
    assert_eq!(h.buffer.pause_expiry(a), None);
    assert_eq!(h.request(a, None), Admission::Proceed);
    h.complete_retries();
    assert_eq!(h.state(a), ShardState::Idle);
    h.assert_quiet();
}

#[test]
fn a_lower_max_pause_bounds_the_pauses_in_progress_from_their_start() {
    let (mut h, a) = one_shard(enabled());
    let t0 = h.now;
    h.pause(PauseScope::Shard(a), secs(60)).unwrap();
    h.advance(secs(10));
    let now = h.now;
    let lower = |max_pause| Config {
        max_pause,
        ..enabled()
    };
    h.buffer.reconfigure(now, lower(secs(30))).unwrap();
    h.tick();
    assert_eq!(h.buffer.pause_expiry(a), Some(t0 + secs(30)));
    h.take_actions();
    // Already past 5 s from its start: it ends in the reconfiguration.
    h.buffer.reconfigure(now, lower(secs(5))).unwrap();
    h.tick();
    assert_eq!(
        h.take_actions()[0],
        Action::PauseEnded {
            shard: a,
            reason: PauseEnd::Expired,
            queued: 0
        }
    );
    assert_eq!(h.state(a), ShardState::Idle);
}

#[test]
fn bad_pauses_are_refused_and_change_nothing() {
    let config = Config {
        max_pause: secs(60),
        ..enabled()
    };
    let (mut h, a) = one_shard(config);
    let ghost = ShardId::from_index(7);
    assert_eq!(
        h.pause(PauseScope::Shard(ghost), secs(1)),
        Err(PauseError::UnknownShard)
    );
    assert_eq!(h.buffer.input_stats().unknown_shards, 1);
    assert_eq!(
        h.pause(PauseScope::Shard(a), Duration::ZERO),
        Err(PauseError::MaxZero)
    );
    assert_eq!(
        h.pause(PauseScope::All, secs(61)),
        Err(PauseError::MaxAboveBound {
            max: secs(61),
            bound: secs(60)
        })
    );
    assert_eq!(
        h.resume(PauseScope::Shard(ghost)),
        Err(PauseError::UnknownShard)
    );
    // Resuming a shard that is not paused is no error: nothing to end.
    assert_eq!(h.resume(PauseScope::Shard(a)), Ok(0));
    assert_eq!(h.take_actions(), []);
    assert_eq!(h.state(a), ShardState::Idle);
    assert_eq!(h.stats(a).pauses_started, 0);

    // A disabled shard holds nothing, so cannot be paused; `All` skips it.
    let mut off = Harness::new(Config::default());
    let d = off.shard("ks", "0");
    assert_eq!(
        off.pause(PauseScope::Shard(d), secs(1)),
        Err(PauseError::NotEnabled(Mode::Disabled))
    );
    assert_eq!(off.pause(PauseScope::All, secs(1)), Ok(0));

    assert_eq!(
        Config {
            max_pause: Duration::ZERO,
            ..enabled()
        }
        .validate(),
        Err(ConfigError::MaxPauseZero)
    );
}

#[test]
fn a_pauses_waits_are_sampled_as_retried_even_after_an_episode_that_timed_out() {
    let mut config = enabled();
    config.window = secs(20);
    config.max_failover_duration = secs(20);
    let (mut h, a) = one_shard(config);
    // An episode that ends by max duration: its drain's waits are `Window`.
    h.wait(a, Some(FailoverCause::Reparent));
    h.advance(secs(20));
    h.complete_retries();
    assert_eq!(h.state(a), ShardState::Idle);
    let waits = h.buffer.wait_histograms(a).unwrap();
    assert_eq!(waits.wait(WaitOutcome::Window).count(), 1);

    // A pause with no failover behind it: what its end releases is retried, whatever the
    // last episode's drain was for, and each wait is the whole hold.
    h.pause(PauseScope::Shard(a), secs(60)).unwrap();
    let t1 = h.wait(a, None);
    h.advance(secs(1));
    h.wait(a, None);
    h.advance(secs(2));
    h.resume(PauseScope::Shard(a)).unwrap();
    assert_eq!(
        h.buffer.ticket_status(t1),
        TicketStatus::Retrying(ReleaseReason::PauseEnded)
    );
    h.complete_retries();
    assert_eq!(h.state(a), ShardState::Idle);
    let waits = h.buffer.wait_histograms(a).unwrap();
    let retried = waits.wait(WaitOutcome::Retried);
    assert_eq!(retried.count(), 2);
    assert_eq!(retried.sum(), secs(3) + secs(2));
    assert_eq!(waits.wait(WaitOutcome::Window).count(), 1);
    assert_eq!(waits.failovers().count(), 1, "a pause is no failover");
    h.assert_quiet();
}

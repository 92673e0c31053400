//! The idle first-attempt path is on every primary request a router sends, so it must not
//! allocate (Vitess needed PR 19827 to get there). `allocation-counter` checks it, counting
//! this thread's allocations only (the test harness's own threads allocate at times).

use failover_buffer::{Admission, Buffer, Config, Timestamp};

#[test]
fn idle_first_attempt_allocates_nothing() {
    let mut buffer = Buffer::new(Config {
        enabled: true,
        ..Config::default()
    })
    .unwrap();
    let shards: Vec<_> = (0..8)
        .map(|i| buffer.register_shard("ks", &format!("{i}")))
        .collect();
    let idle = allocation_counter::measure(|| {
        for i in 0..10_000u64 {
            let shard = shards[(i % 8) as usize];
            let admission = buffer.request(Timestamp::from_nanos(i), shard, None);
            assert_eq!(admission, Ok(Admission::Proceed));
        }
    });
    assert_eq!(idle.count_total, 0);

    // The counter does count: the slow path's first queued request allocates the actions
    // queue.
    let cause = Some(failover_buffer::FailoverCause::Reparent);
    let held = allocation_counter::measure(|| {
        let _ = buffer.request(Timestamp::from_secs(1), shards[0], cause);
    });
    assert!(held.count_total > 0);
}

/// A registered shard that never failed over keeps no counters, queue or histograms of its
/// own (issue 16: ≤ 256 B per idle shard): reading them, and the health stream, allocate
/// nothing; its first episode allocates them once, and a second episode nothing more.
#[test]
fn a_shard_allocates_its_counters_and_histograms_once_at_its_first_episode() {
    use failover_buffer::{FailoverCause, HealthStamp, PrimaryId};

    let mut buffer = Buffer::new(Config {
        enabled: true,
        ..Config::default()
    })
    .unwrap();
    let shard = buffer.register_shard("ks", "0");
    let stamp = |term| HealthStamp {
        primary: PrimaryId(term),
        term,
        serving: true,
    };
    let idle = allocation_counter::measure(|| {
        buffer
            .health(Timestamp::from_secs(1), shard, stamp(1))
            .unwrap();
        assert_eq!(buffer.shard_stats(shard).unwrap().starts, 0);
        assert_eq!(buffer.wait_histograms(shard).unwrap().wait_count(), 0);
    });
    assert_eq!(idle.count_total, 0);

    let episode = |buffer: &mut Buffer, at: u64, term: u64| {
        let t = Timestamp::from_secs(at);
        let Ok(Admission::Wait(ticket)) = buffer.request(t, shard, Some(FailoverCause::Reparent))
        else {
            panic!("held")
        };
        buffer.health(t, shard, stamp(term)).unwrap();
        buffer.retry_done(t, ticket).unwrap();
        while buffer.poll_action().is_some() {}
    };
    let first = allocation_counter::measure(|| episode(&mut buffer, 2, 2));
    assert!(first.count_total > 0);
    // Past `min_time_between_failovers` (60 s) since the first.
    let second = allocation_counter::measure(|| episode(&mut buffer, 200, 3));
    assert_eq!(second.count_total, 0, "the shard's block is kept");
    assert_eq!(buffer.wait_histograms(shard).unwrap().wait_count(), 2);
}

/// A pause is not the idle path: it is kept with the shard's counters, so pausing a shard
/// that never failed over allocates its block; the shard's first episode afterwards
/// allocates nothing more.
#[test]
fn a_pause_allocates_the_shards_block_and_a_later_episode_nothing_more() {
    use core::time::Duration;
    use failover_buffer::{FailoverCause, HealthStamp, PauseScope, PrimaryId};

    let mut buffer = Buffer::new(Config {
        enabled: true,
        ..Config::default()
    })
    .unwrap();
    let shard = buffer.register_shard("ks", "0");
    let t = Timestamp::from_secs;
    let stamp = |term| HealthStamp {
        primary: PrimaryId(term),
        term,
        serving: true,
    };
    buffer.health(t(1), shard, stamp(1)).unwrap();
    let paused = allocation_counter::measure(|| {
        buffer
            .pause(t(2), PauseScope::Shard(shard), Duration::from_secs(10))
            .unwrap();
        let Ok(Admission::Wait(ticket)) = buffer.request(t(2), shard, None) else {
            panic!("held")
        };
        buffer.resume(t(3), PauseScope::Shard(shard)).unwrap();
        buffer.retry_done(t(3), ticket).unwrap();
        while buffer.poll_action().is_some() {}
    });
    assert!(paused.count_total > 0);
    assert_eq!(buffer.shard_stats(shard).unwrap().pauses_started, 1);

    let episode = allocation_counter::measure(|| {
        let Ok(Admission::Wait(ticket)) =
            buffer.request(t(4), shard, Some(FailoverCause::Reparent))
        else {
            panic!("held")
        };
        buffer.health(t(5), shard, stamp(2)).unwrap();
        buffer.retry_done(t(5), ticket).unwrap();
        while buffer.poll_action().is_some() {}
    });
    assert_eq!(
        episode.count_total, 0,
        "the block the pause allocated is kept"
    );
    assert_eq!(buffer.wait_histograms(shard).unwrap().wait_count(), 2);
}

/// Nearly every wait ends `Retried`, so only that outcome's histogram (and the failovers')
/// come with the shard's block; a rarer outcome's is allocated at the shard's first sample of
/// it, once: here the first cancel allocates exactly that histogram, and a later cancel
/// nothing.
#[test]
fn a_rarer_outcome_allocates_its_histogram_at_its_first_sample_only() {
    use failover_buffer::{FailoverCause, WaitOutcome};

    let mut buffer = Buffer::new(Config {
        enabled: true,
        ..Config::default()
    })
    .unwrap();
    let shard = buffer.register_shard("ks", "0");
    let t = Timestamp::from_secs(1);
    let hold = |buffer: &mut Buffer| {
        let Ok(Admission::Wait(ticket)) = buffer.request(t, shard, Some(FailoverCause::Reparent))
        else {
            panic!("held")
        };
        ticket
    };
    let (first, second) = (hold(&mut buffer), hold(&mut buffer));
    while buffer.poll_action().is_some() {}

    let cancel = |buffer: &mut Buffer, ticket| {
        allocation_counter::measure(|| buffer.cancel(t, ticket).unwrap()).count_total
    };
    assert_eq!(cancel(&mut buffer, first), 1, "the Cancelled histogram");
    assert_eq!(cancel(&mut buffer, second), 0);
    let waits = buffer.wait_histograms(shard).unwrap();
    assert_eq!(waits.wait(WaitOutcome::Cancelled).count(), 2);
    assert_eq!(waits.wait(WaitOutcome::Window).count(), 0);
}

//! Wait-time and failover-duration histograms (issue 15 step 4): one sample per verdict,
//! labelled by how the wait ended, measured from when the request was queued.

use core::time::Duration;

use failover_buffer::{
    Admission, Buffer, BufferError, Config, FailoverCause, HealthStamp, PrimaryId, Ticket,
    Timestamp, TopologyEvent, WaitOutcome,
};

const FAILOVER: Option<FailoverCause> = Some(FailoverCause::Reparent);

fn ms(n: u64) -> Timestamp {
    Timestamp::from_millis(n)
}

fn serving(term: u64) -> HealthStamp {
    HealthStamp {
        primary: PrimaryId(term),
        term,
        serving: true,
    }
}

fn buffer(config: Config) -> (Buffer, failover_buffer::ShardId) {
    let mut b = Buffer::new(Config {
        enabled: true,
        ..config
    })
    .unwrap();
    let shard = b.register_shard("ks", "0");
    b.health(ms(0), shard, serving(1)).unwrap();
    (b, shard)
}

fn hold(b: &mut Buffer, shard: failover_buffer::ShardId, at: u64) -> Ticket {
    match b.request(ms(at), shard, FAILOVER).unwrap() {
        Admission::Wait(t) => t,
        other => panic!("{other:?}"),
    }
}

/// The outcome counts, in `WaitOutcome` order.
fn counts(b: &Buffer, shard: failover_buffer::ShardId) -> Vec<(WaitOutcome, u64)> {
    b.wait_histograms(shard)
        .unwrap()
        .waits()
        .map(|(o, h)| (o, h.count()))
        .filter(|&(_, n)| n > 0)
        .collect()
}

#[test]
fn a_shard_that_never_failed_over_has_empty_histograms() {
    let (b, shard) = buffer(Config::default());
    let w = b.wait_histograms(shard).unwrap();
    assert_eq!((w.wait_count(), w.failovers().count()), (0, 0));
    assert!(
        b.wait_histograms(failover_buffer::ShardId::from_index(9))
            .is_none()
    );
}

#[test]
fn a_request_the_drain_releases_is_one_retried_sample_of_its_wait() {
    let (mut b, shard) = buffer(Config::default());
    let t = hold(&mut b, shard, 1_000);
    b.health(ms(3_500), shard, serving(2)).unwrap();
    let w = b.wait_histograms(shard).unwrap();
    let retried = w.wait(WaitOutcome::Retried);
    assert_eq!(retried.count(), 1);
    assert_eq!(retried.sum(), Duration::from_millis(2_500));
    assert_eq!(w.failovers().max(), Some(Duration::from_millis(2_500)));
    // The retry's end is not a second verdict.
    b.retry_done(ms(3_600), t).unwrap();
    assert_eq!(counts(&b, shard), [(WaitOutcome::Retried, 1)]);
    b.check_invariants().unwrap();
}

#[test]
fn a_request_held_for_its_window_is_a_window_sample_of_the_window() {
    let (mut b, shard) = buffer(Config::default());
    let _t = hold(&mut b, shard, 1_000);
    b.tick(ms(1_000) + Config::default().window);
    let w = b.wait_histograms(shard).unwrap();
    assert_eq!(
        w.wait(WaitOutcome::Window).max(),
        Some(Config::default().window)
    );
    assert_eq!(counts(&b, shard), [(WaitOutcome::Window, 1)]);
    b.check_invariants().unwrap();
}

#[test]
fn the_drain_max_duration_starts_counts_as_window() {
    let config = Config {
        // At a tie, max duration fires first: the drain releases it, not its window.
        window: Duration::from_secs(20),
        max_failover_duration: Duration::from_secs(20),
        ..Config::default()
    };
    let (mut b, shard) = buffer(config);
    let _t = hold(&mut b, shard, 0);
    b.tick(ms(20_000));
    assert_eq!(counts(&b, shard), [(WaitOutcome::Window, 1)]);
    let w = b.wait_histograms(shard).unwrap();
    assert_eq!(w.failovers().max(), Some(Duration::from_secs(20)));
}

#[test]
fn an_evicted_request_and_a_cancelled_one_are_labelled_so() {
    let (mut b, shard) = buffer(Config {
        size: 1,
        ..Config::default()
    });
    let first = hold(&mut b, shard, 1_000);
    let second = hold(&mut b, shard, 1_200);
    assert!(std::iter::from_fn(|| b.poll_action()).any(|a| a
        == failover_buffer::Action::Wake {
            ticket: first,
            verdict: failover_buffer::Verdict::Fail(BufferError::Evicted)
        }));
    b.cancel(ms(1_500), second).unwrap();
    let w = b.wait_histograms(shard).unwrap();
    assert_eq!(
        w.wait(WaitOutcome::Evicted).sum(),
        Duration::from_millis(200)
    );
    assert_eq!(
        w.wait(WaitOutcome::Cancelled).sum(),
        Duration::from_millis(300)
    );
    b.check_invariants().unwrap();
}

#[test]
fn a_cancel_while_the_drain_waits_its_turn_is_cancelled_too() {
    let (mut b, shard) = buffer(Config::default());
    let first = hold(&mut b, shard, 0);
    let second = hold(&mut b, shard, 0);
    b.health(ms(100), shard, serving(2)).unwrap();
    b.cancel(ms(150), second).unwrap();
    assert_eq!(
        counts(&b, shard),
        [(WaitOutcome::Retried, 1), (WaitOutcome::Cancelled, 1)]
    );
    assert_eq!(b.shard_stats(shard).unwrap().drained, 2);
    b.retry_done(ms(200), first).unwrap();
    b.check_invariants().unwrap();
}

#[test]
fn requests_of_a_shard_resharded_away_are_shard_missing() {
    let (mut b, shard) = buffer(Config::default());
    let _t = hold(&mut b, shard, 0);
    b.topology(ms(10), shard, TopologyEvent::ShardMissing)
        .unwrap();
    assert_eq!(counts(&b, shard), [(WaitOutcome::ShardMissing, 1)]);
    b.check_invariants().unwrap();
}

#[test]
fn a_request_a_backed_off_drain_queues_again_waits_twice() {
    let (mut b, shard) = buffer(Config::default());
    let t = hold(&mut b, shard, 0);
    b.health(ms(1_000), shard, serving(2)).unwrap();
    let Admission::Wait(again) = b
        .retry_failed(ms(1_100), t, FailoverCause::Reparent)
        .unwrap()
    else {
        panic!("held again")
    };
    b.health(ms(1_400), shard, serving(3)).unwrap();
    let retried = b.wait_histograms(shard).unwrap().wait(WaitOutcome::Retried);
    // 1 s, then 300 ms from when it was queued again.
    assert_eq!(retried.count(), 2);
    assert_eq!(retried.sum(), Duration::from_millis(1_300));
    b.retry_done(ms(1_500), again).unwrap();
    b.check_invariants().unwrap();
}

#[test]
fn since_lists_exactly_the_samples_added_between_two_readings() {
    let (mut b, shard) = buffer(Config::default());
    let t = hold(&mut b, shard, 0);
    let before = b.wait_histograms(shard).unwrap().clone();
    b.health(ms(3), shard, serving(2)).unwrap();
    let now = b.wait_histograms(shard).unwrap();
    let news: Vec<_> = now.since(&before).map(|d| (d.outcome, d.added)).collect();
    // One wait, retried; one failover.
    assert_eq!(news, [(Some(WaitOutcome::Retried), 1), (None, 1)]);
    assert_eq!(now.since(now).count(), 0);
    b.retry_done(ms(4), t).unwrap();
}

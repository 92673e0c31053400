//! Small scenarios whose answers can be worked out by hand: each pins one behaviour of the
//! model (and of the core buffer it drives) to the nanosecond.

use core::time::Duration;

use failover_buffer::Config;
use failover_buffer_sim::{
    ErrorCause, Outcome, RequestEnd, Scenario, Wait, enabled_vitess_defaults,
};

mod support;

use support::*;

#[test]
fn a_request_in_the_outage_waits_exactly_until_promotion_plus_health_delay() {
    let s = scenario(
        r#"
        [[shards]]
        name = "ks/0"
        arrivals = ["1.5s"]
        [[shards.failovers]]
        start = "1s"
        duration = "1s"
        health_delay = "100ms"
        "#,
    );
    let (report, ends) = simulate(&s);
    // Refused at 1.5 s, answered at 1.51 s, held; the serving stamp comes at 2.1 s, the
    // retry is sent then and answers at 2.11 s.
    assert_eq!(
        ends,
        [RequestEnd {
            shard: 0,
            arrival: ms(1500),
            end: ms(2110),
            service: ms(10),
            attempts: 2,
            outcome: Outcome::Ok,
        }]
    );
    assert_eq!(report.added_latency.max_ns, 600_000_000);
    assert_eq!(report.buffer.stops.NewPrimarySeen, 1);
    assert_eq!(report.buffer.drained, 1);
    assert_eq!(report.errors.total, 0);
    // Held from 1.51 s to the drain at 2.1 s: one wait of 590 ms, retried (a single sample's
    // percentiles are clamped to it, so exact).
    assert_eq!(
        report.waits,
        [Wait {
            outcome: "Retried",
            count: 1,
            p50_ns: 590_000_000,
            p99_ns: 590_000_000,
            max_ns: 590_000_000,
        }]
    );
}

#[test]
fn without_a_buffer_every_request_in_the_outage_is_an_error() {
    let s = scenario(
        r#"
        [[shards]]
        name = "ks/0"
        arrivals = ["0.5s", "1.1s", "1.5s", "1.9s", "2.5s"]
        [[shards.failovers]]
        start = "1s"
        duration = "1s"
        "#,
    );
    let (report, ends) = simulate_with(&s, &Config::default(), 1);
    let outcomes: Vec<Outcome> = ends.iter().map(|e| e.outcome).collect();
    let failover = Outcome::Error(ErrorCause::Failover);
    assert_eq!(
        outcomes,
        [Outcome::Ok, failover, failover, failover, Outcome::Ok]
    );
    // Each request in the outage tried three times, 10 ms apart.
    assert_eq!(ends[3].end, ms(1930));
    assert_eq!(report.attempts, 1 + 3 * 3 + 1);
    assert_eq!(report.errors.failover, 3);

    let (buffered, _) = simulate_with(&s, &enabled_vitess_defaults(), 1);
    assert_eq!(buffered.errors.total, 0);
    assert_eq!(buffered.ok, 5);
}

#[test]
fn a_client_timeout_shorter_than_the_outage_is_a_timeout_error() {
    let s = scenario(
        r#"
        [client]
        timeout = "500ms"
        [[shards]]
        name = "ks/0"
        arrivals = ["1.1s"]
        [[shards.failovers]]
        start = "1s"
        duration = "2s"
        "#,
    );
    let (report, ends) = simulate(&s);
    assert_eq!(ends[0].outcome, Outcome::Error(ErrorCause::Timeout));
    assert_eq!(ends[0].end, ms(1600));
    assert_eq!(report.errors.timeout, 1);
    assert_eq!(report.buffer.evicted.ContextDone, 1);
}

#[test]
fn a_failed_failover_that_never_ends_releases_at_max_failover_duration() {
    let s = scenario(
        r#"
        [[shards]]
        name = "ks/0"
        arrivals = ["1.05s"]
        [[shards.failovers]]
        start = "1s"
        never_ends = true
        [buffer]
        window = "5s"
        max_failover_duration = "5s"
        "#,
    );
    let (report, ends) = simulate(&s);
    // Buffering starts when the first attempt fails at 1.06 s and stops 5 s later; the
    // released retry and the last attempt are refused at 6.07 s and 6.08 s.
    assert_eq!(report.buffer.stops.MaxDurationExceeded, 1);
    assert_eq!(report.buffer.evicted.WindowExceeded, 0);
    assert_eq!(report.timeline.released.iter().sum::<u32>(), 1);
    assert_eq!(
        report.timeline.released[60], 1,
        "released in [6.0 s, 6.1 s)"
    );
    assert_eq!(ends[0].outcome, Outcome::Error(ErrorCause::Failover));
    assert_eq!(ends[0].end, ms(6080));
    assert_eq!(ends[0].attempts, 3);
}

#[test]
fn read_only_lag_pauses_the_drain_until_the_primary_is_writable() {
    let s = scenario(
        r#"
        [client]
        attempts = 5
        [[shards]]
        name = "ks/0"
        arrivals = ["1.5s", "1.6s"]
        [[shards.failovers]]
        start = "1s"
        duration = "1s"
        health_delay = "100ms"
        read_only_lag = "400ms"
        [buffer]
        drain_backoff = "500ms"
        "#,
    );
    let (report, ends) = simulate(&s);
    // The stamp at 2.1 s starts the drain, but the primary refuses until 2.4 s: the first
    // retry fails at 2.11 s and pauses the drain, which resumes at 2.61 s.
    assert_eq!(report.buffer.drains_paused, 1);
    assert_eq!(report.errors.total, 0);
    let answered: Vec<Duration> = ends.iter().map(|e| e.end).collect();
    assert_eq!(answered, [ms(2620), ms(2630)]);
}

/// A quiet shard: the lone held request's retry is the whole drain, so the drain has ended
/// by the time that retry is refused. `retry_failed` still backs the drain off instead of
/// failing the request: refused at 2.11 s, held again, resumed at 2.61 s, answered at 2.62 s.
#[test]
fn read_only_lag_holds_a_lone_request_again_after_its_drain_finished() {
    let s = scenario(
        r#"
        [client]
        attempts = 5
        [[shards]]
        name = "ks/0"
        arrivals = ["1.5s"]
        [[shards.failovers]]
        start = "1s"
        duration = "1s"
        health_delay = "100ms"
        read_only_lag = "400ms"
        [buffer]
        drain_backoff = "500ms"
        "#,
    );
    let (report, ends) = simulate(&s);
    assert_eq!(report.buffer.drains_paused, 1);
    assert_eq!(report.errors.total, 0);
    let answered: Vec<Duration> = ends.iter().map(|e| e.end).collect();
    assert_eq!(answered, [ms(2620)]);
}

#[test]
fn a_full_buffer_evicts_the_oldest_request_of_the_shard() {
    let s = scenario(
        r#"
        [[shards]]
        name = "ks/0"
        arrivals = ["1.1s", "1.2s", "1.3s"]
        [[shards.failovers]]
        start = "1s"
        duration = "1s"
        [buffer]
        size = 2
        "#,
    );
    let (report, ends) = simulate(&s);
    assert_eq!(ends[0].outcome, Outcome::Error(ErrorCause::Evicted));
    assert_eq!(ends[0].end, ms(1300));
    assert_eq!(report.buffer.evicted.BufferFull, 1);
    assert_eq!(report.peak_slots, 2);
    assert_eq!(report.ok, 2);
}

#[test]
fn shards_share_one_capacity_and_a_shard_with_nothing_to_evict_fails_buffer_full() {
    let s = scenario(
        r#"
        [[shards]]
        name = "a/0"
        arrivals = ["1.1s", "1.2s"]
        [[shards.failovers]]
        start = "1s"
        duration = "1s"
        [[shards]]
        name = "b/0"
        arrivals = ["1.3s"]
        [[shards.failovers]]
        start = "1s"
        duration = "1s"
        [buffer]
        size = 2
        "#,
    );
    let (report, ends) = simulate(&s);
    // Shard a holds both slots; b's failed attempt at 1.31 s finds none and has no
    // request of its own to evict.
    let b = ends
        .iter()
        .find(|e| e.shard == 1)
        .expect("b's request ended");
    assert_eq!(b.outcome, Outcome::Error(ErrorCause::BufferFull));
    assert_eq!(b.end, ms(1310));
    assert_eq!(report.buffer.skipped.BufferFull, 1);
    assert_eq!(report.buffer.starts, 2);
    assert_eq!(report.ok, 2);
}

#[test]
fn an_attempt_that_would_answer_after_the_client_timeout_is_a_timeout() {
    let s = Scenario::from_toml_str(
        r#"
        [client]
        timeout = "100ms"
        [service]
        distribution = "constant"
        time = "250ms"
        [[shards]]
        name = "ks/0"
        arrivals = ["1s"]
        "#,
        "test.toml",
    )
    .expect("valid");
    let (report, ends) = simulate(&s);
    assert_eq!(ends[0].outcome, Outcome::Error(ErrorCause::Timeout));
    assert_eq!(ends[0].end, ms(1100));
    assert_eq!(report.errors.timeout, 1);
}

#[test]
fn a_retry_delay_spaces_the_attempts_the_buffer_does_not_hold() {
    let s = scenario(
        r#"
        [client]
        retry_delay = "100ms"
        [[shards]]
        name = "ks/0"
        arrivals = ["1.5s"]
        [[shards.failovers]]
        start = "1s"
        duration = "1s"
        "#,
    );
    let (_, ends) = simulate_with(&s, &Config::default(), 1);
    // Attempts at 1.5 s, 1.61 s and 1.72 s, each refused 10 ms later.
    assert_eq!(ends[0].outcome, Outcome::Error(ErrorCause::Failover));
    assert_eq!(ends[0].end, ms(1730));
}

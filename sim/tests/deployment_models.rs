//! The deployment models a real router has and the first model lacked, each pinned by a
//! scenario small enough to work out by hand: several routers, per-shard and cold-primary
//! service times, retry back-off with jitter, a lossy health stream, a failover that first
//! pauses writes, and topology changes.

use core::time::Duration;

use failover_buffer::Config;
use failover_buffer_sim::{ErrorCause, Outcome, Scenario, enabled_vitess_defaults};

mod support;

use support::*;

const TEN_IN_THE_OUTAGE: &str = r#"
[[shards]]
name = "ks/0"
arrivals = ["1.1s", "1.2s", "1.3s", "1.4s", "1.5s", "1.6s", "1.7s", "1.8s", "1.9s", "1.95s"]
[[shards.failovers]]
start = "1s"
duration = "1s"
[buffer]
size = 5
"#;

#[test]
fn one_router_with_five_slots_evicts_half_of_ten_held_requests() {
    let (report, _) = simulate(&scenario(TEN_IN_THE_OUTAGE));
    assert_eq!(report.errors.evicted, 5);
    assert_eq!(report.peak_slots, 5);
}

/// Round-robin: requests 1, 3, 5, .. go to router 0 and 2, 4, .. to router 1, so each
/// holds five, and five slots each are enough. Sizing is per router.
#[test]
fn two_routers_share_the_traffic_and_each_needs_only_its_share_of_slots() {
    let s = scenario_with("routers = 2", TEN_IN_THE_OUTAGE);
    let (report, ends) = simulate(&s);
    assert_eq!(report.errors.total, 0);
    assert_eq!(report.peak_slots, 5, "the most any one router held");
    assert_eq!(
        report.buffer.starts, 2,
        "each router's buffer starts its own episode"
    );
    assert_eq!(report.buffer.stops.NewPrimarySeen, 2);
    assert_eq!(report.buffer.buffered, 10);
    // Each router drains its five one at a time from 2 s: 2.01, 2.02, .. 2.05 s.
    let mut answered: Vec<Duration> = ends.iter().map(|e| e.end).collect();
    answered.sort_unstable();
    let expected: Vec<Duration> = (1..=5).flat_map(|i| [ms(2000 + 10 * i); 2]).collect();
    assert_eq!(answered, expected);
}

#[test]
fn a_shard_with_its_own_service_time_answers_in_it() {
    let s = scenario(
        r#"
        [[shards]]
        name = "fast/0"
        arrivals = ["1s"]
        [[shards]]
        name = "slow/0"
        arrivals = ["1s"]
        service = { distribution = "constant", time = "250ms" }
        "#,
    );
    let (_, ends) = simulate(&s);
    assert_eq!(ends[0].end, ms(1010));
    assert_eq!(ends[1].end, ms(1250));
    assert_eq!(ends[1].service, ms(250));
}

/// Refused at 1.51 s and held; the serving stamp at 2.1 s releases it to a primary that is
/// three times slower until 3 s: the retry takes 30 ms, and the request's added latency is
/// 2.13 − 1.5 − 0.01 = 0.62 s. A request arriving at 3.5 s meets a warm primary again.
#[test]
fn a_cold_primary_serves_slower_for_a_while_after_promotion() {
    let s = scenario(
        r#"
        [[shards]]
        name = "ks/0"
        arrivals = ["1.5s", "2.5s", "3.5s"]
        [[shards.failovers]]
        start = "1s"
        duration = "1s"
        health_delay = "100ms"
        cold_factor = 3.0
        cold_for = "1s"
        "#,
    );
    let (report, ends) = simulate(&s);
    let answered: Vec<Duration> = ends.iter().map(|e| e.end).collect();
    assert_eq!(answered, [ms(2130), ms(2530), ms(3510)]);
    assert_eq!(report.added_latency.max_ns, 620_000_000);
    assert_eq!(report.errors.total, 0);
}

/// Without a buffer, three attempts: at 1.5 s (refused at 1.51), after 100 ms at 1.61
/// (refused at 1.62), after 200 ms at 1.82 (refused at 1.83).
#[test]
fn exponential_back_off_doubles_the_wait_between_retries() {
    let s = scenario(
        r#"
        [client]
        retry_delay = "100ms"
        backoff = "exponential"
        max_retry_delay = "1s"
        [[shards]]
        name = "ks/0"
        arrivals = ["1.5s"]
        [[shards.failovers]]
        start = "1s"
        duration = "1s"
        "#,
    );
    let (_, ends) = simulate_with(&s, &Config::default(), 1);
    assert_eq!(ends[0].outcome, Outcome::Error(ErrorCause::Failover));
    assert_eq!(ends[0].end, ms(1830));
}

#[test]
fn exponential_back_off_stops_growing_at_max_retry_delay() {
    let s = scenario(
        r#"
        [client]
        attempts = 4
        retry_delay = "100ms"
        backoff = "exponential"
        max_retry_delay = "150ms"
        [[shards]]
        name = "ks/0"
        arrivals = ["1.1s"]
        [[shards.failovers]]
        start = "1s"
        duration = "1s"
        "#,
    );
    let (_, ends) = simulate_with(&s, &Config::default(), 1);
    // 1.1 → 1.11; +100 → 1.21 → 1.22; +150 → 1.37 → 1.38; +150 → 1.53 → 1.54.
    assert_eq!(ends[0].end, ms(1540));
    assert_eq!(ends[0].attempts, 4);
}

/// With full jitter each wait is uniform in [0, back-off]: the two waits of each request
/// are at most 100 ms and 200 ms, the same seed gives the same waits, another seed others.
#[test]
fn full_jitter_keeps_each_wait_within_the_back_off_and_repeats_by_seed() {
    let arrivals: Vec<String> = (0..200).map(|i| format!("\"{}ms\"", 1100 + i)).collect();
    let s = scenario(&format!(
        r#"
        [client]
        retry_delay = "100ms"
        backoff = "exponential"
        jitter = "full"
        [[shards]]
        name = "ks/0"
        arrivals = [{}]
        [[shards.failovers]]
        start = "1s"
        duration = "5s"
        "#,
        arrivals.join(", ")
    ));
    let waits = |seed| {
        let (_, ends) = simulate_with(&s, &Config::default(), seed);
        ends.iter()
            .map(|e| e.end - e.arrival - ms(30))
            .collect::<Vec<Duration>>()
    };
    let one = waits(1);
    assert!(one.iter().all(|&w| w <= ms(300)), "{one:?}");
    let mean = one.iter().sum::<Duration>() / one.len() as u32;
    // Two uniform waits, of means 50 ms and 100 ms.
    assert!(mean > ms(130) && mean < ms(170), "mean {mean:?}");
    assert_eq!(one, waits(1));
    assert_ne!(one, waits(2));
}

/// Equal jitter: each wait is half the back-off plus up to the other half.
#[test]
fn equal_jitter_waits_at_least_half_the_back_off() {
    let s = scenario(
        r#"
        [client]
        attempts = 2
        retry_delay = "100ms"
        jitter = "equal"
        [[shards]]
        name = "ks/0"
        arrivals = ["1.1s", "1.2s", "1.3s", "1.4s", "1.5s"]
        [[shards.failovers]]
        start = "1s"
        duration = "5s"
        "#,
    );
    let (_, ends) = simulate_with(&s, &Config::default(), 1);
    for e in &ends {
        let wait = e.end - e.arrival - ms(20);
        assert!(wait >= ms(50) && wait <= ms(100), "{wait:?}");
    }
}

/// Refused at 1.51 s, buffering starts; the serving stamp is lost, so only max failover
/// duration ends the episode, at 1.51 + 5 = 6.51 s. The new primary has served since 2 s,
/// so the released retry succeeds at 6.52 s; a request arriving at 3 s, with the shard
/// still buffering, is held until then too.
#[test]
fn a_lost_stop_signal_ends_only_by_max_failover_duration() {
    let s = scenario(
        r#"
        [[shards]]
        name = "ks/0"
        arrivals = ["1.5s", "3s"]
        [[shards.failovers]]
        start = "1s"
        duration = "1s"
        health_delay = "100ms"
        serving_stamp_lost = true
        [buffer]
        window = "5s"
        max_failover_duration = "5s"
        "#,
    );
    let (report, ends) = simulate(&s);
    assert_eq!(report.buffer.stops.MaxDurationExceeded, 1);
    assert_eq!(report.buffer.stops.NewPrimarySeen, 0);
    let answered: Vec<Duration> = ends.iter().map(|e| e.end).collect();
    assert_eq!(answered, [ms(6520), ms(6530)]);
    assert_eq!(report.errors.total, 0);
}

/// With a loss probability of 1 every router loses every stamp, so each ends its episode
/// by max failover duration; with 0 none does.
#[test]
fn a_lossy_health_stream_loses_stamps_at_the_given_rate() {
    let body = |loss: f64| {
        format!(
            r#"
            [health]
            loss = {loss}
            [[shards]]
            name = "ks/0"
            arrivals = ["1.5s", "1.6s", "1.7s"]
            [[shards.failovers]]
            start = "1s"
            duration = "1s"
            [buffer]
            window = "5s"
            max_failover_duration = "5s"
            "#
        )
    };
    let (all_lost, _) = simulate(&scenario_with("routers = 3", &body(1.0)));
    assert_eq!(all_lost.buffer.stops.MaxDurationExceeded, 3);
    let (none_lost, _) = simulate(&scenario_with("routers = 3", &body(0.0)));
    assert_eq!(none_lost.buffer.stops.NewPrimarySeen, 3);
}

const WRITE_PAUSE: &str = r#"
[[shards]]
name = "ks/0"
arrivals = ["1.1s", "1.2s"]
[[shards.failovers]]
start = "1s"
duration = "1s"
health_delay = "100ms"
write_pause = "300ms"
not_serving_delay = "50ms"
"#;

/// The not-serving stamp at 1.05 s starts buffering before any error (the core's proactive
/// start, as Vitess's keyspace-event watcher does): both requests are held on arrival
/// without an attempt. The old primary (a replica now) would refuse until the router sees
/// the new primary at 2.1 s; both are released then and succeed at 2.11 s and 2.12 s.
#[test]
fn a_write_pause_seen_through_the_not_serving_stamp_buffers_before_any_attempt() {
    let (report, ends) = simulate(&scenario(WRITE_PAUSE));
    let answered: Vec<Duration> = ends.iter().map(|e| e.end).collect();
    assert_eq!(answered, [ms(2110), ms(2120)]);
    assert_eq!(report.attempts, 2, "held on arrival, then one retry each");
    assert_eq!(report.errors.total, 0);
}

/// With proactive start turned off, the not-serving stamp at 1.05 s only tells the router
/// the primary is down: the attempt at 1.1 s fails at once and buffering starts then, so
/// the request at 1.2 s is held on arrival without an attempt.
#[test]
fn without_proactive_start_the_first_attempt_fails_fast_and_starts_buffering() {
    let text = WRITE_PAUSE.replace(
        "[[shards]]",
        "[buffer]\nproactive_start = false\n[[shards]]",
    );
    let (report, ends) = simulate(&scenario(&text));
    let answered: Vec<Duration> = ends.iter().map(|e| e.end).collect();
    assert_eq!(answered, [ms(2110), ms(2120)]);
    assert_eq!(report.attempts, 3, "1.1 s failed fast, then two retries");
    assert_eq!(report.errors.total, 0);
}

/// With the not-serving stamp lost, both attempts hang in the write pause until 1.3 s and
/// are refused (`-READONLY`) at 1.31 s: buffering starts 0.21 s later, and each request
/// sent an attempt that hung.
#[test]
fn a_lost_not_serving_stamp_delays_the_start_until_the_write_pause_ends() {
    let text = WRITE_PAUSE.replace(
        "not_serving_delay = \"50ms\"",
        "not_serving_delay = \"50ms\"\nnot_serving_stamp_lost = true",
    );
    let (report, ends) = simulate(&scenario(&text));
    let answered: Vec<Duration> = ends.iter().map(|e| e.end).collect();
    assert_eq!(answered, [ms(2110), ms(2120)]);
    assert_eq!(report.attempts, 4, "each request's first attempt hung");
    assert!(ends.iter().all(|e| e.attempts == 2));
}

/// After the pause the old primary refuses until the router sees the new primary, not
/// merely until promotion: a request arriving at 2.05 s (promoted at 2 s, seen at 2.1 s)
/// is refused, held, and released at 2.1 s.
#[test]
fn after_a_write_pause_writes_are_refused_until_the_router_sees_the_new_primary() {
    let text = WRITE_PAUSE.replace("arrivals = [\"1.1s\", \"1.2s\"]", "arrivals = [\"2.05s\"]");
    let (report, ends) = simulate(&scenario(&text));
    assert_eq!(ends[0].end, ms(2110));
    assert_eq!(report.buffer.buffered, 1);
}

/// Refused ("being resharded") at 1.51 s and held; the resharding completes at 2 s, the
/// buffer stops (`ReshardingComplete`) and the request, re-planned to the new shards,
/// succeeds at 2.01 s.
#[test]
fn a_resharding_holds_requests_until_the_shard_is_gone_then_replans_them() {
    let s = scenario(
        r#"
        [[shards]]
        name = "ks/-80"
        arrivals = ["1.5s", "2.5s"]
        [[shards.topology]]
        kind = "resharding"
        start = "1s"
        duration = "1s"
        "#,
    );
    let (report, ends) = simulate(&s);
    assert_eq!(report.buffer.stops.ReshardingComplete, 1);
    let answered: Vec<Duration> = ends.iter().map(|e| e.end).collect();
    assert_eq!(answered, [ms(2010), ms(2510)]);
    assert_eq!(report.errors.total, 0);
}

#[test]
fn a_move_tables_switch_holds_requests_until_traffic_switched() {
    let s = scenario(
        r#"
        [[shards]]
        name = "ks/0"
        arrivals = ["1.5s"]
        [[shards.topology]]
        kind = "move_tables"
        start = "1s"
        duration = "1s"
        "#,
    );
    let (report, ends) = simulate(&s);
    assert_eq!(report.buffer.stops.MoveTablesSwitchedTraffic, 1);
    assert_eq!(ends[0].end, ms(2010));
    let (without, _) = simulate_with(&s, &enabled_vitess_defaults(), 1);
    assert_eq!(without.errors.total, 0);
}

#[test]
fn a_topology_change_overlapping_a_failover_is_refused() {
    let text = r#"
        [[shards]]
        name = "ks/0"
        [[shards.failovers]]
        start = "1s"
        duration = "1s"
        [[shards.topology]]
        kind = "resharding"
        start = "1.5s"
        duration = "1s"
    "#;
    let error = Scenario::from_toml_str(text, "t.toml").expect_err("overlap");
    assert!(
        error
            .to_string()
            .contains("the topology change at 1.5s starts before the failover at 1s is over"),
        "{error}"
    );
}

/// Regression: ticket ids are unique only within one router's buffer. Request X (router 0)
/// is held and released in the first failover, leaving its client timeout (4.1 s) pending;
/// request Y (router 1) reuses X's table entry and is held under a ticket with the same id
/// in the second failover. X's stale timeout must not cancel Y: Y waits for the promotion
/// at 6 s and succeeds at 6.01 s, well within its own timeout (6.5 s).
#[test]
fn a_stale_client_timeout_from_one_router_never_cancels_a_request_held_by_another() {
    let s = scenario_with(
        "routers = 2",
        r#"
        [client]
        timeout = "3s"
        [[shards]]
        name = "ks/0"
        arrivals = ["1.1s", "3.5s"]
        [[shards.failovers]]
        start = "1s"
        duration = "500ms"
        [[shards.failovers]]
        start = "3s"
        duration = "3s"
        [buffer]
        min_time_between_failovers = "1s"
        "#,
    );
    let (report, ends) = simulate(&s);
    assert_eq!(report.errors.total, 0, "{ends:?}");
    assert_eq!(ends[0].end, ms(1510));
    assert_eq!(ends[1].end, ms(6010));
}

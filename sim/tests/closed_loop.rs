//! Closed-loop clients (`[traffic] connections`) and a primary killed with requests in
//! flight (`killed = true`), in scenarios small enough to work out by hand.

use core::time::Duration;

use failover_buffer_sim::{ErrorCause, Outcome, RequestEnd, Scenario, SimError, run};

mod support;

use support::*;

#[test]
fn one_connection_sends_one_request_per_service_time() {
    let s = scenario(
        r#"
        duration = "1s"
        [traffic]
        connections = 1
        [[shards]]
        name = "ks/0"
        "#,
    );
    let (report, ends) = simulate(&s);
    // Requests at 0, 10, .., 990 ms: throughput 1 / service time = 100 per second.
    assert_eq!(report.requests, 100);
    assert_eq!(report.ok, 100);
    let arrivals: Vec<Duration> = ends.iter().map(|e| e.arrival).collect();
    let expected: Vec<Duration> = (0..100).map(|k| ms(10 * k)).collect();
    assert_eq!(arrivals, expected);
}

#[test]
fn think_time_spaces_a_connection_s_requests() {
    let s = scenario(
        r#"
        duration = "1s"
        [traffic]
        connections = 1
        think_time = "5ms"
        [[shards]]
        name = "ks/0"
        "#,
    );
    let (report, ends) = simulate(&s);
    // A cycle of 10 ms of service and 5 ms of thinking: requests at 0, 15, .., 990 ms.
    assert_eq!(report.requests, 67);
    assert_eq!(ends.last().unwrap().arrival, ms(990));
}

#[test]
fn connections_start_spread_over_one_cycle() {
    let s = scenario(
        r#"
        duration = "10ms"
        [traffic]
        connections = 4
        [[shards]]
        name = "ks/0"
        "#,
    );
    let (report, ends) = simulate(&s);
    // Connection i of 4 starts at i/4 of the 10 ms cycle; the next ones would be at 10 ms
    // and later, past the end of arrivals.
    assert_eq!(report.requests, 4);
    let arrivals: Vec<Duration> = ends.iter().map(|e| e.arrival).collect();
    assert_eq!(
        arrivals,
        [
            ms(0),
            Duration::from_micros(2500),
            ms(5),
            Duration::from_micros(7500)
        ]
    );
}

/// The outage of the scenarios below: 1 s to 3 s, the router sees the new primary at once.
const OUTAGE: &str = r#"
    [[shards.failovers]]
    start = "1s"
    duration = "2s"
"#;

#[test]
fn an_outage_holds_exactly_one_request_per_connection() {
    let s = scenario(&format!(
        r#"
        duration = "5s"
        [traffic]
        connections = 8
        [[shards]]
        name = "ks/0"
        {OUTAGE}
        "#
    ));
    let (report, ends) = simulate(&s);
    // Each connection's first request from 1 s on is refused and held; the connection then
    // waits, so nothing else arrives until the new primary releases them at 3 s.
    assert_eq!(report.buffer.buffered, 8);
    assert_eq!(report.buffer.drained, 8);
    assert_eq!(report.errors.total, 0);
    assert_eq!(report.peak_slots, 8);
    assert_eq!(
        ends.iter()
            .filter(|e| e.arrival >= ms(1000) && e.arrival < ms(3000))
            .count(),
        8,
        "no request arrives while every connection waits"
    );
}

#[test]
fn the_same_throughput_open_loop_holds_a_request_per_arrival() {
    // 8 connections of 10 ms each are 800 requests per second; open loop at that rate keeps
    // arriving through the 2 s outage.
    let s = scenario(&format!(
        r#"
        duration = "5s"
        [[shards]]
        name = "ks/0"
        rate = 800
        {OUTAGE}
        "#
    ));
    let report = run(&s, &s.buffer, 1).unwrap();
    assert!(
        report.buffer.buffered > 1000,
        "about 1,600 held: {}",
        report.buffer.buffered
    );
}

#[test]
fn a_request_in_flight_when_its_primary_is_killed_is_replayed_and_held() {
    let body = |killed: bool| {
        format!(
            r#"
            [[shards]]
            name = "ks/0"
            arrivals = ["0.995s"]
            [[shards.failovers]]
            start = "1s"
            duration = "2s"
            killed = {killed}
            "#
        )
    };
    // Not killed: a request sent before the failover is served.
    let (_, ends) = simulate(&scenario(&body(false)));
    assert_eq!(ends[0].end, ms(1005));
    assert_eq!(ends[0].attempts, 1);
    // Killed: its connection resets at 1 s, the router replays it, the buffer holds it, and
    // the retry goes to the new primary at 3 s.
    let (report, ends) = simulate(&scenario(&body(true)));
    assert_eq!(
        ends,
        [RequestEnd {
            shard: 0,
            arrival: ms(995),
            end: ms(3010),
            service: ms(10),
            attempts: 2,
            outcome: Outcome::Ok,
        }]
    );
    assert_eq!(report.buffer.buffered, 1);
}

#[test]
fn a_non_idempotent_request_in_flight_at_the_kill_fails_as_uncertain() {
    let s = scenario(
        r#"
        [traffic]
        non_idempotent = 1.0
        [[shards]]
        name = "ks/0"
        arrivals = ["0.995s", "1.5s"]
        [[shards.failovers]]
        start = "1s"
        duration = "2s"
        killed = true
        "#,
    );
    let (report, ends) = simulate(&s);
    // The one sent before the kill may have run: it is not replayed. The one sent into the
    // outage was refused, so it cannot have run: held, and served at 3 s.
    assert_eq!(ends[0].outcome, Outcome::Error(ErrorCause::Uncertain));
    assert_eq!(ends[0].end, ms(1000));
    assert_eq!(ends[1].outcome, Outcome::Ok);
    assert_eq!(ends[1].end, ms(3010));
    assert_eq!(report.errors.uncertain, 1);
    assert_eq!(report.errors.total, 1);
    assert_eq!(report.buffer.buffered, 1);
}

#[test]
fn a_kill_cuts_off_every_connection_s_request_in_flight() {
    let s = |non_idempotent: f64| {
        scenario(&format!(
            r#"
            duration = "5s"
            [traffic]
            connections = 4
            non_idempotent = {non_idempotent}
            [[shards]]
            name = "ks/0"
            [[shards.failovers]]
            start = "1.001s"
            duration = "2s"
            killed = true
            "#
        ))
    };
    // Without think time every connection always has a request in flight: all 4 die. Each
    // replayed one is held in place of the connection's next request.
    let (report, _) = simulate(&s(0.0));
    assert_eq!(report.errors.total, 0);
    assert_eq!(report.buffer.buffered, 4);
    // Not replayable: 4 uncertain errors, and each connection's next request is held.
    let (report, ends) = simulate(&s(1.0));
    assert_eq!(report.errors.uncertain, 4);
    assert_eq!(report.errors.total, 4);
    assert!(
        ends.iter()
            .filter(|e| e.outcome != Outcome::Ok)
            .all(|e| e.end == ms(1001)),
        "they fail at the kill"
    );
    assert_eq!(report.buffer.buffered, 4);
}

#[test]
fn connections_pick_shards_by_their_rates_as_weights() {
    let s = scenario(
        r#"
        duration = "100s"
        [traffic]
        connections = 1
        [[shards]]
        name = "ks/a"
        rate = 3
        [[shards]]
        name = "ks/b"
        rate = 1
        [[shards]]
        name = "ks/never"
        rate = 0
        "#,
    );
    let (report, ends) = simulate(&s);
    assert_eq!(report.requests, 10_000);
    let share = |shard| ends.iter().filter(|e| e.shard == shard).count() as f64 / 10_000.0;
    assert!((share(0) - 0.75).abs() < 0.02, "shard a: {}", share(0));
    assert!((share(1) - 0.25).abs() < 0.02, "shard b: {}", share(1));
    assert_eq!(share(2), 0.0, "a shard of rate 0 gets nothing");
}

#[test]
fn closed_loop_runs_repeat_exactly() {
    let s = scenario(
        r#"
        duration = "3s"
        [traffic]
        connections = 20
        think_time = "2ms"
        non_idempotent = 0.5
        [[shards]]
        name = "ks/a"
        rate = 1
        [[shards]]
        name = "ks/b"
        rate = 1
        [[shards.failovers]]
        start = "1s"
        duration = "1s"
        killed = true
        "#,
    );
    let a = run(&s, &s.buffer, 7).unwrap();
    let b = run(&s, &s.buffer, 7).unwrap();
    assert_eq!(a, b);
    assert!(a.errors.uncertain > 0 && a.errors.uncertain <= 20);
}

#[test]
fn bad_traffic_keys_are_refused_with_the_key_named() {
    for (body, expected) in [
        (
            "[traffic]\nconnections = 0",
            "traffic.connections: at least 1",
        ),
        (
            "[traffic]\nthink_time = \"1ms\"",
            "traffic.think_time is for closed-loop traffic",
        ),
        (
            "[traffic]\nnon_idempotent = 1.5",
            "traffic.non_idempotent: 1.5 is not a share",
        ),
        ("[traffic]\nconnection = 3", "unknown field `connection`"),
    ] {
        let text = format!("{body}\n[[shards]]\nname = \"ks/0\"\n");
        let error = Scenario::from_toml_str(&text, "bad.toml").unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
    }
    let text = r#"
        [[shards]]
        name = "ks/0"
        [[shards.failovers]]
        start = "1s"
        duration = "2s"
        killed = true
        write_pause = "100ms"
    "#;
    let error = Scenario::from_toml_str(text, "bad.toml").unwrap_err();
    assert!(
        error.to_string().contains("choose killed or write_pause"),
        "{error}"
    );
}

#[test]
fn a_trace_cannot_replace_closed_loop_connections() {
    let mut s = scenario("[traffic]\nconnections = 2\n[[shards]]\nname = \"ks/0\"\n");
    s.trace = Some("requests.csv".into());
    assert!(matches!(
        run(&s, &s.buffer, 1),
        Err(SimError::TraceWithConnections)
    ));
}

#[test]
fn a_refusal_takes_its_refuse_time_instead_of_the_service_time() {
    let s = |refuse: &str| {
        scenario(&format!(
            r#"
            [[shards]]
            name = "ks/0"
            arrivals = ["1.5s"]
            [[shards.failovers]]
            start = "1s"
            duration = "2s"
            killed = true
            {refuse}
            [buffer]
            enabled = false
            "#
        ))
    };
    // Three attempts, each refused after the 10 ms service time...
    let (_, ends) = simulate(&s(""));
    assert_eq!(ends[0].end, ms(1530));
    // ...or after 1 ms, a dead primary's closed port.
    let (report, ends) = simulate(&s("refuse_time = \"1ms\""));
    assert_eq!(ends[0].end, ms(1503));
    assert_eq!(ends[0].attempts, 3);
    assert_eq!(report.errors.failover, 1);
    let error = Scenario::from_toml_str(
        "[[shards]]\nname = \"ks/0\"\n[[shards.failovers]]\nstart = \"1s\"\nduration = \"1s\"\nrefuse_time = \"0s\"\n",
        "bad.toml",
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("refuse_time must be above zero"),
        "{error}"
    );
}

#[test]
fn a_killed_primary_refuses_until_the_router_sees_the_new_one() {
    let s = |killed: bool| {
        scenario(&format!(
            r#"
            [[shards]]
            name = "ks/0"
            arrivals = ["2.05s"]
            [[shards.failovers]]
            start = "1s"
            duration = "1s"
            health_delay = "100ms"
            killed = {killed}
            [buffer]
            enabled = false
            "#
        ))
    };
    // A planned failover's new primary serves from its promotion at 2 s...
    let (_, ends) = simulate(&s(false));
    assert_eq!(ends[0].outcome, Outcome::Ok);
    // ...but a router keeps sending to the dead one until its health stream names the new
    // one at 2.1 s: three refusals, 2.05 to 2.08 s.
    let (_, ends) = simulate(&s(true));
    assert_eq!(ends[0].outcome, Outcome::Error(ErrorCause::Failover));
    assert_eq!(ends[0].end, ms(2080));
}

/// The Redis router's cross-check (its README, "The simulator's prediction"): the scenario
/// written from the cluster test's SIGKILL run keeps the verdict the README quotes.
#[test]
fn the_redis_cluster_kill_scenario_holds_one_command_per_connection() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../redis-router/sim/cluster-test-kill.toml"
    );
    let s = Scenario::from_file(path).unwrap_or_else(|e| panic!("{e}"));
    let report = run(&s, &s.buffer, s.seed).unwrap();
    assert_eq!(report.buffer.buffered, 50, "one per connection");
    assert_eq!(report.buffer.evicted.BufferFull, 0);
    assert_eq!(
        report.errors.total, report.errors.uncertain,
        "only uncertain errors: {:?}",
        report.errors
    );
    assert_eq!(report.errors.uncertain, 6, "the README's figure");
    assert_eq!(report.added_latency.max_ns / 1_000_000, 2178);
}

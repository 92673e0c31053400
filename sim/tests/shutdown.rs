//! The scenario's `[shutdown]` (issue 11 part 5), worked out by hand: what clients see of a
//! shutdown that is called off, and of one that runs to its close.

use failover_buffer_sim::{Outcome, Report, RequestEnd, Scenario, ShutdownOutcome};

mod support;

use support::*;

/// Two requests held by a 1 s failover from 1 s (serving stamp at 2.1 s), constant 10 ms
/// service, drain concurrency 1, and the given `[shutdown]` table. The first is held after
/// its first attempt failed (1.21 s); the second, arriving while the shard buffers, is held
/// at once.
fn with_shutdown(shutdown: &str) -> (Report, Vec<RequestEnd>) {
    let scenario = scenario(&format!(
        r#"
        [[shards]]
        name = "ks/0"
        arrivals = ["1.2s", "1.4s"]
        [[shards.failovers]]
        start = "1s"
        duration = "1s"
        health_delay = "100ms"
        {shutdown}
        "#
    ));
    simulate(&scenario)
}

fn ok(arrival: u64, end: u64, attempts: u32) -> RequestEnd {
    RequestEnd {
        shard: 0,
        arrival: ms(arrival),
        end: ms(end),
        service: ms(10),
        attempts,
        outcome: Outcome::Ok,
    }
}

#[test]
fn a_cancelled_shutdown_keeps_the_second_request_for_the_new_primary_with_no_error() {
    let (report, ends) = with_shutdown("[shutdown]\nbegin = \"2.05s\"\ncancel = \"2.055s\"");
    // 2.05 s: the shutdown releases the first held request (concurrency 1); its retry
    // answers at 2.06 s. 2.055 s: called off, the second stays held until the serving stamp
    // at 2.1 s releases it; it answers at 2.11 s.
    assert_eq!(ends, [ok(1200, 2060, 2), ok(1400, 2110, 1)]);
    assert_eq!(report.errors.total, 0);
    assert_eq!(report.requests, report.ok);
    assert_eq!(
        report.shutdown,
        Some(ShutdownOutcome {
            begun_ns: Some(2_050_000_000),
            cancelled_ns: Some(2_055_000_000),
            kept_by_cancel: 1,
            cancel_refused: 0,
            routers_closed: 0,
            closed_ns: None,
        })
    );
    assert_eq!(report.buffer.stops.Shutdown, 1);
    assert_eq!(report.buffer.stops.NewPrimarySeen, 1);
    assert_eq!(
        report.timeline.marks,
        [
            (2_050_000_000, "stop starting episodes"),
            (2_050_000_000, "release queued requests"),
            (2_055_000_000, "shutdown cancelled"),
        ]
    );
}

#[test]
fn a_shutdown_left_to_run_releases_both_closes_and_refuses_a_late_cancel() {
    let (report, ends) = with_shutdown("[shutdown]\nbegin = \"2.05s\"\ncancel = \"3s\"");
    // The second is released when the first's retry ends (2.06 s) and answers at 2.07 s,
    // which closes the buffer.
    assert_eq!(ends, [ok(1200, 2060, 2), ok(1400, 2070, 1)]);
    assert_eq!(report.errors.total, 0);
    let shutdown = report.shutdown.expect("a shutdown");
    assert_eq!(shutdown.closed_ns, Some(2_070_000_000));
    assert_eq!((shutdown.routers_closed, shutdown.cancel_refused), (1, 1));
    assert_eq!(shutdown.cancelled_ns, None);
    let marks: Vec<&str> = report.timeline.marks.iter().map(|m| m.1).collect();
    assert_eq!(
        marks,
        [
            "stop starting episodes",
            "release queued requests",
            "wait for released retries",
            "closed"
        ]
    );
}

#[test]
fn a_cancel_before_the_begin_is_refused_by_the_scenario_parser() {
    let text = r#"
        [[shards]]
        name = "ks/0"
        [shutdown]
        begin = "2s"
        cancel = "1s"
    "#;
    let error = Scenario::from_toml_str(text, "test.toml").unwrap_err();
    assert!(error.to_string().contains("shutdown.cancel"), "{error}");
}

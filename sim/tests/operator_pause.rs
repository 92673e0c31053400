//! The `[[pause]]` key: a planned operator pause of the routers' buffers, against answers
//! worked out by hand (constant 10 ms service, arrivals at exact instants, no failover).

mod support;

use core::time::Duration;

use failover_buffer::Config;
use failover_buffer_sim::{PauseOutcome, Report, Scenario};
use support::{ms, simulate_with};

/// One shard with arrivals at 1 s, 1.5 s and 2.5 s, paused from 0.9 s with `pause`'s keys.
fn paused(pause: &str) -> Scenario {
    support::scenario(&format!(
        r#"
        [[shards]]
        name = "ks/0"
        arrivals = ["1s", "1.5s", "2.5s"]
        [[pause]]
        start = "900ms"
        shard = "ks/0"
        {pause}
        "#
    ))
}

/// Runs `scenario` under `config`: every request succeeds; (arrival, end) of each, in order.
fn simulate(scenario: &Scenario, config: &Config) -> (Report, Vec<(Duration, Duration)>) {
    let (report, ends) = simulate_with(scenario, config, 1);
    assert!(report.errors.total == 0 && report.ok == 3);
    (report, ends.iter().map(|e| (e.arrival, e.end)).collect())
}

#[test]
fn first_attempts_wait_for_the_resume_then_drain_one_at_a_time() {
    let s = paused(
        r#"max = "10s"
        resume = "2s""#,
    );
    let (report, ends) = simulate(&s, &s.buffer);
    // Held from arrival; at 2 s the first is released (done 2.01 s), and its end releases
    // the second (done 2.02 s). At 2.5 s the shard is idle again: served at once.
    assert_eq!(
        ends,
        [
            (ms(1000), ms(2010)),
            (ms(1500), ms(2020)),
            (ms(2500), ms(2510))
        ]
    );
    assert_eq!(report.added_latency.max_ns, 1_000_000_000);
    assert_eq!((report.buffer.buffered, report.buffer.drained), (2, 2));
    assert_eq!(report.buffer.starts, 0, "no failover episode");
    assert_eq!(
        report.drain_time_ns, 20_000_000,
        "from the resume to the last retry"
    );
    assert_eq!(
        report.pause,
        Some(PauseOutcome {
            started: 1,
            resumed: 1,
            ..PauseOutcome::default()
        })
    );
}

#[test]
fn a_pause_with_no_resume_ends_by_itself_at_its_max() {
    let s = paused(r#"max = "700ms""#);
    let (report, ends) = simulate(&s, &s.buffer);
    // Paused 0.9 s to 1.6 s.
    assert_eq!(
        ends,
        [
            (ms(1000), ms(1610)),
            (ms(1500), ms(1620)),
            (ms(2500), ms(2510))
        ]
    );
    assert_eq!(
        report.pause,
        Some(PauseOutcome {
            started: 1,
            expired: 1,
            ..PauseOutcome::default()
        })
    );
}

#[test]
fn without_a_buffer_the_pause_is_refused_and_holds_nothing() {
    let s = paused(
        r#"max = "10s"
        resume = "2s""#,
    );
    let (report, ends) = simulate(&s, &Config::default());
    assert_eq!(
        ends,
        [
            (ms(1000), ms(1010)),
            (ms(1500), ms(1510)),
            (ms(2500), ms(2510))
        ]
    );
    assert_eq!(
        report.pause,
        Some(PauseOutcome {
            refused: 1,
            ..PauseOutcome::default()
        })
    );
}

#[test]
fn a_pause_naming_an_unknown_shard_is_refused_when_read() {
    let text = r#"
        [[shards]]
        name = "ks/0"
        [[pause]]
        start = "1s"
        shard = "ks/1"
        max = "1s"
    "#;
    let error = Scenario::from_toml_str(text, "typo.toml").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("\"ks/1\" is not in the scenario"),
        "{error}"
    );
    let zero =
        "[[shards]]\nname = \"ks/0\"\n[[pause]]\nstart = \"1s\"\nshard = \"all\"\nmax = \"0s\"\n";
    let error = Scenario::from_toml_str(zero, "zero.toml").unwrap_err();
    assert!(
        error.to_string().contains("pause.max must be > 0"),
        "{error}"
    );
}

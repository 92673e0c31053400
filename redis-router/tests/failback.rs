//! A failback right after a failover, through the router with a fixed list of servers: the
//! buffer holds the second one only if `min_time_between_failovers` has passed since the
//! first ended, exactly as configured (Vitess's rule).

mod support;

use std::time::{Duration, Instant};

use failover_buffer_redis::{Router, RouterConfig, Topology};
use failover_buffer_tokio::SkipReason;
use support::*;

const CONNECTIONS: usize = 50;
const LOAD: Duration = Duration::from_secs(6);
const FIRST_AT: Duration = Duration::from_millis(1500);
const SECOND_AT: Duration = Duration::from_millis(4000);

/// `FAILOVER` on whichever server is primary now, once it has a replica in sync.
fn failover_from(primary: &Process) {
    wait_until(
        Duration::from_secs(10),
        "a replica is in sync for FAILOVER",
        || {
            let mut c = primary.conn();
            redis::cmd("FAILOVER").query::<String>(&mut c).is_ok()
        },
    );
}

struct Run {
    report: support::LoadReport,
    starts: u64,
    buffered: u64,
    skipped_too_recent: u64,
}

async fn failover_then_failback(min_time_between_failovers: Duration, tag: &'static str) -> Run {
    let (a, b) = primary_and_replica(&[]);
    let mut config = RouterConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Topology::Fixed(vec![a.addr(), b.addr()]),
    );
    config.buffer.min_time_between_failovers = min_time_between_failovers;
    let router = Router::start(config).await.unwrap();
    let start = Instant::now();
    let load = tokio::spawn(run_load_from(
        start,
        router.local_addr(),
        CONNECTIONS,
        LOAD,
        tag,
    ));

    tokio::time::sleep_until((start + FIRST_AT).into()).await;
    tokio::task::block_in_place(|| failover_from(&a));
    tokio::time::sleep_until((start + SECOND_AT).into()).await;
    assert_eq!(
        router.primary(),
        Some(b.addr()),
        "the first failover is done"
    );
    tokio::task::block_in_place(|| failover_from(&b));
    let report = load.await.unwrap();

    assert_eq!(router.primary(), Some(a.addr()), "failed back");
    let verdict = verify(a.addr(), tag, &report);
    assert_eq!(
        verdict.counter,
        report.acked_incrs(),
        "every acknowledged INCR once"
    );
    assert!(verdict.missing.is_empty(), "no acknowledged SET lost");
    let stats = router.stats();
    eprintln!("{}", summary(tag, &report, FIRST_AT));
    eprintln!("{stats:?}");
    Run {
        starts: stats.starts,
        buffered: stats.buffered,
        skipped_too_recent: stats.skipped[SkipReason::LastFailoverTooRecent]
            + stats.skipped[SkipReason::LastReparentTooRecent],
        report,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failback_within_min_time_between_failovers_is_not_buffered() {
    if !redis_available() {
        return;
    }
    let _serial = serial().await;
    let run = failover_then_failback(Duration::from_secs(60), "within").await;
    assert_eq!(run.starts, 1, "only the first failover buffered");
    assert!(
        run.skipped_too_recent > 0,
        "the failback's errors met the min-time rule"
    );
    // Not held, those requests were retried at once; what clients saw is the failback's
    // -READONLY, unbuffered, and nothing acknowledged was lost (checked above).
    for op in run.report.errors() {
        let e = op.error.as_deref().unwrap();
        assert!(e.contains("read only replica"), "{e}");
        assert!(
            op.at + op.took >= SECOND_AT,
            "only the failback shows: {op:?}"
        );
    }
    eprintln!(
        "client errors in the unbuffered failback: {}",
        run.report.errors().len()
    );
    assert!(run.buffered > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failback_after_min_time_between_failovers_is_buffered_too() {
    if !redis_available() {
        return;
    }
    let _serial = serial().await;
    // One second is the least Vitess (and the core) accept; the failback comes 2.5 s later.
    let run = failover_then_failback(Duration::from_secs(1), "after").await;
    assert_eq!(run.starts, 2, "both failovers buffered");
    assert_eq!(run.skipped_too_recent, 0);
    assert!(
        run.report.errors().is_empty(),
        "{:?}",
        run.report.errors().first()
    );
}

//! Redis's own coordinated `FAILOVER` on a primary/replica pair, through the router with a
//! fixed list of servers: the buffer turns every `-READONLY` into a pause.

mod support;

use std::time::Duration;

use failover_buffer_redis::{Router, RouterConfig, Topology};
use support::*;

const CONNECTIONS: usize = 50;
/// The issue asks for ~8 s; 5 s keeps the whole end-to-end set within CI's budget, and the
/// failover (about 100-300 ms) sits well inside it.
const LOAD: Duration = Duration::from_secs(5);
const FAILOVER_AT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinated_failover_is_a_pause_with_the_buffer_and_errors_without() {
    if !redis_available() {
        return;
    }
    let _serial = serial().await;
    let (primary, replica) = primary_and_replica(&[]);
    let servers = Topology::Fixed(vec![primary.addr(), replica.addr()]);
    let listen = "127.0.0.1:0".parse().unwrap();
    let buffered = Router::start(RouterConfig::new(listen, servers.clone()))
        .await
        .unwrap();
    let mut config = RouterConfig::new(listen, servers);
    config.buffer.enabled = false;
    let unbuffered = Router::start(config).await.unwrap();
    assert_eq!(buffered.primary(), Some(primary.addr()));

    // The same failover meets both routers' load.
    let with = tokio::spawn(run_load(buffered.local_addr(), CONNECTIONS, LOAD, "with"));
    let without = tokio::spawn(run_load(
        unbuffered.local_addr(),
        CONNECTIONS,
        LOAD,
        "without",
    ));
    tokio::time::sleep(FAILOVER_AT).await;
    let mut c = primary.conn();
    let ok: String = redis::cmd("FAILOVER").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    let (with, without) = (with.await.unwrap(), without.await.unwrap());

    // The replica is the primary now, and both routers route to it.
    assert_eq!(role(replica.addr()).as_deref(), Some("master"));
    assert_eq!(buffered.primary(), Some(replica.addr()));
    assert_eq!(unbuffered.primary(), Some(replica.addr()));

    eprintln!("{}", summary("with the buffer   ", &with, FAILOVER_AT));
    eprintln!("{}", summary("without the buffer", &without, FAILOVER_AT));
    let stats = buffered.stats();
    eprintln!(
        "buffer: {} failover(s), {} buffered, {} drained, {} skipped, clients held for up to {:?}",
        stats.starts,
        stats.buffered,
        stats.drained,
        stats.skipped.total(),
        with.quantile(1.0, |_| true)
    );

    // With the buffer: no client error, every acknowledged write exactly once.
    assert!(
        with.errors().is_empty(),
        "client errors with the buffer: {:?}",
        &with.errors()[..with.errors().len().min(5)]
    );
    let verdict = verify(replica.addr(), "with", &with);
    assert_eq!(
        verdict.counter,
        with.acked_incrs(),
        "every acknowledged INCR counted once"
    );
    assert!(
        verdict.missing.is_empty(),
        "acknowledged SETs missing: {:?}",
        verdict.missing.len()
    );
    assert!(stats.buffered > 0, "the failover was buffered: {stats:?}");

    // Without: the same failover reaches clients as errors, yet nothing acknowledged is lost
    // (-READONLY is given without running the command).
    assert!(
        !without.errors().is_empty(),
        "without the buffer the failover shows"
    );
    for op in without.errors() {
        let e = op.error.as_deref().unwrap();
        assert!(
            e.contains("read only replica"),
            "only -READONLY reaches clients: {e}"
        );
    }
    let verdict = verify(replica.addr(), "without", &without);
    assert_eq!(verdict.counter, without.acked_incrs());
    assert!(verdict.missing.is_empty());
}

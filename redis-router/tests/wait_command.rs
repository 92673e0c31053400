//! `WAIT` counts the replicas that acknowledged the last write *of its own connection*. The
//! router sends each command on any pooled connection, so a `WAIT` after a `SET` may run on
//! a connection that never wrote, and report replicas that have not got the `SET`.

mod support;

use std::time::Duration;

use failover_buffer_redis::{Router, RouterConfig, Topology};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_never_reports_replicas_that_do_not_have_the_write() {
    if !redis_available() {
        return;
    }
    let _serial = serial().await;
    let (primary, replica) = primary_and_replica(&["--enable-debug-command", "yes"]);
    let router = Router::start(RouterConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Topology::Fixed(vec![primary.addr(), replica.addr()]),
    ))
    .await
    .unwrap();
    let client = redis::Client::open(format!("redis://{}/", router.local_addr())).unwrap();
    let mut writer = client.get_multiplexed_async_connection().await.unwrap();
    let mut other = client.get_multiplexed_async_connection().await.unwrap();

    // The replica stops acknowledging for 3 s.
    let replica_addr = replica.addr();
    let sleeping = std::thread::spawn(move || {
        let client = redis::Client::open(format!("redis://{replica_addr}/")).unwrap();
        let mut c = client.get_connection().unwrap();
        let _: redis::RedisResult<()> = redis::cmd("DEBUG").arg("SLEEP").arg(3).query(&mut c);
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut writer)
        .await
        .unwrap();
    // Another client keeps the SET's pooled connection busy, so the WAIT gets another one.
    let busy = tokio::spawn(async move {
        redis::cmd("BLPOP")
            .arg("nothing")
            .arg(1)
            .query_async::<Option<(String, String)>>(&mut other)
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let acked: redis::RedisResult<i64> = redis::cmd("WAIT")
        .arg(1)
        .arg(500)
        .query_async(&mut writer)
        .await;
    let _ = busy.await;
    sleeping.join().unwrap();
    match acked {
        // Refused: fine. A count must not include the sleeping replica.
        Err(e) => assert!(e.to_string().contains("WAIT"), "{e}"),
        Ok(n) => assert_eq!(n, 0, "WAIT reported a replica that does not have the SET"),
    }
}

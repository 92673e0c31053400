//! Cluster error replies that are not a failover of the shard that gave them: a cluster
//! that is down while *another* shard fails over (`-CLUSTERDOWN` with Redis's default
//! `cluster-require-full-coverage yes`), and a multi-key command during a slot migration
//! (`-TRYAGAIN`). Neither may leave a healthy shard holding its commands.

mod support;

use std::time::{Duration, Instant};

use failover_buffer_redis::{Router, RouterConfig, Topology};
use support::*;

/// A key of shard `index` (0-based), found by trying `k0`, `k1`, ...
fn key_of(cluster: &ClusterNodes, index: usize) -> String {
    (0..)
        .map(|i| format!("k{i}"))
        .find(|k| cluster.shard_of_key(k) == index)
        .unwrap()
}

async fn cluster_router(cluster: &ClusterNodes) -> (Router, redis::aio::MultiplexedConnection) {
    let seeds = vec![cluster.addr(0), cluster.addr(1), cluster.addr(2)];
    let mut config = RouterConfig::new("127.0.0.1:0".parse().unwrap(), Topology::Cluster { seeds });
    // The failover under test must be buffered, not skipped as too recent.
    config.buffer.min_time_between_failovers = Duration::from_secs(1);
    let router = Router::start(config).await.unwrap();
    let client = redis::Client::open(format!("redis://{}/", router.local_addr())).unwrap();
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
    let c = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    (router, c)
}

/// With `cluster-require-full-coverage yes` (Redis's default), every node answers
/// `-CLUSTERDOWN` while one shard's primary is down. The healthy shards' commands may be
/// held meanwhile, but once the cluster is up again they must be served at once, not held
/// until the buffer's window or `max_failover_duration` runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_shard_is_served_at_once_when_the_cluster_is_up_again() {
    if !cluster_available() {
        return;
    }
    let _serial = serial().await;
    let mut cluster = redis_cluster(1000);
    for node in &cluster.nodes {
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("cluster-require-full-coverage")
            .arg("yes")
            .query(&mut node.conn())
            .unwrap();
    }
    let (router, mut c) = cluster_router(&cluster).await;
    let healthy = key_of(&cluster, 0);
    let () = redis::cmd("SET")
        .arg(&healthy)
        .arg("v")
        .query_async(&mut c)
        .await
        .unwrap();

    // Kill shard 3's primary; ask shard 1 while the cluster is down (CLUSTERDOWN there).
    let dead = cluster.shards[2].primary;
    let healthy_primary = cluster.addr(cluster.shards[0].primary);
    cluster.nodes[dead].kill();
    wait_until(
        Duration::from_secs(10),
        "shard 1 says the cluster is down",
        || {
            let client = redis::Client::open(format!("redis://{healthy_primary}/")).unwrap();
            let Ok(mut direct) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
                return false;
            };
            redis::cmd("GET")
                .arg(&healthy)
                .query::<Option<String>>(&mut direct)
                .is_err_and(|e| e.code() == Some("CLUSTERDOWN"))
        },
    );
    let mut during = c.clone();
    let key = healthy.clone();
    let held = tokio::spawn(async move {
        redis::cmd("GET")
            .arg(&key)
            .query_async::<Option<String>>(&mut during)
            .await
    });

    // The replica takes over and the cluster is up again (as shard 1's primary sees it).
    let promoted = cluster.addr(cluster.shards[2].replica);
    wait_until(Duration::from_secs(20), "the cluster is up again", || {
        let client = redis::Client::open(format!("redis://{healthy_primary}/")).unwrap();
        let Ok(mut direct) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
            return false;
        };
        redis::cmd("GET")
            .arg(&healthy)
            .query::<Option<String>>(&mut direct)
            .is_ok()
            && role(promoted).as_deref() == Some("master")
    });
    let up = Instant::now();
    let shard1 = router.shards()[0].shard.clone();
    eprintln!("shard 1 while down: {:?}", router.buffer().stats(&shard1));

    // A new command on the healthy shard, once the cluster serves again: served at once.
    let value: Option<String> = tokio::time::timeout(
        Duration::from_secs(3),
        redis::cmd("GET").arg(&healthy).query_async(&mut c),
    )
    .await
    .expect("a healthy shard's command is served within 3 s of the cluster being up")
    .unwrap();
    assert_eq!(value.as_deref(), Some("v"));
    let value = tokio::time::timeout(Duration::from_secs(3), held)
        .await
        .expect("the command held while the cluster was down is served too")
        .unwrap()
        .unwrap();
    assert_eq!(value.as_deref(), Some("v"));
    eprintln!(
        "served {:?} after the cluster was up; shard 1: {:?}",
        up.elapsed(),
        router.buffer().stats(&shard1)
    );
}

fn node_id(node: &mut redis::Connection) -> String {
    redis::cmd("CLUSTER").arg("MYID").query(node).unwrap()
}

/// A multi-key command on a slot that is half migrated gets `-TRYAGAIN` from Redis: a
/// resharding, not a failover. The shard's other commands go on being served, nothing is
/// buffered, and the command itself is answered (with Redis's `-TRYAGAIN`) in well under a
/// second instead of being held for the buffer's window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_key_command_during_a_slot_migration_does_not_buffer_its_shard() {
    if !cluster_available() {
        return;
    }
    let _serial = serial().await;
    let cluster = redis_cluster(1000);
    let (router, mut c) = cluster_router(&cluster).await;
    let slot = failover_buffer_redis::slot::key_slot(b"t");
    let from = cluster.shard_of_slot(slot);
    let to = (from + 1) % 3;
    for key in ["{t}a", "{t}b"] {
        let () = redis::cmd("SET")
            .arg(key)
            .arg("v")
            .query_async(&mut c)
            .await
            .unwrap();
    }
    let (source, target) = (
        &cluster.nodes[cluster.shards[from].primary],
        &cluster.nodes[cluster.shards[to].primary],
    );
    let (mut src, mut dst) = (source.conn(), target.conn());
    let (src_id, dst_id) = (node_id(&mut src), node_id(&mut dst));
    let () = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg("IMPORTING")
        .arg(&src_id)
        .query(&mut dst)
        .unwrap();
    let () = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg("MIGRATING")
        .arg(&dst_id)
        .query(&mut src)
        .unwrap();
    // One of the two keys moves: the source has {t}b only.
    let () = redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(target.port)
        .arg("")
        .arg(0)
        .arg(5000)
        .arg("KEYS")
        .arg("{t}a")
        .query(&mut src)
        .unwrap();

    let started = Instant::now();
    let mut mget = c.clone();
    let split = tokio::spawn(async move {
        redis::cmd("MGET")
            .arg("{t}a")
            .arg("{t}b")
            .query_async::<Vec<Option<String>>>(&mut mget)
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another key of the source shard, in a slot that is not moving.
    let other = (0..)
        .map(|i| format!("o{i}"))
        .find(|k| {
            cluster.shard_of_key(k) == from
                && failover_buffer_redis::slot::key_slot(k.as_bytes()) != slot
        })
        .unwrap();
    let served = tokio::time::timeout(
        Duration::from_secs(2),
        redis::cmd("SET")
            .arg(&other)
            .arg("x")
            .query_async::<()>(&mut c),
    )
    .await;
    let answer = tokio::time::timeout(Duration::from_secs(3), split).await;
    let shard = router.shards()[from].shard.clone();
    let stats = router.buffer().stats(&shard);
    eprintln!("after {:?}: {stats:?}", started.elapsed());
    served
        .expect("the shard's other commands are served during the migration")
        .unwrap();
    let err = answer
        .expect("the split MGET is answered at once")
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), Some("TRYAGAIN"), "{err}");
    assert_eq!(stats.starts, 0, "a migration is not a failover: {stats:?}");
}

/// A command whose keys only the server can find (`EVAL`'s numkeys) is asked of a primary
/// with `COMMAND GETKEYS` first. While another shard's primary is dead, that question must
/// not go to it and fail the command: the keys here are on a healthy shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_movable_key_command_on_a_healthy_shard_works_while_another_primary_is_dead() {
    if !cluster_available() {
        return;
    }
    let _serial = serial().await;
    let mut cluster = redis_cluster(1000);
    let (router, mut c) = cluster_router(&cluster).await;
    let healthy = key_of(&cluster, 0);
    let () = redis::cmd("SET")
        .arg(&healthy)
        .arg("v")
        .query_async(&mut c)
        .await
        .unwrap();
    let dead = cluster.shards[2].primary;
    cluster.nodes[dead].kill();
    // Before the cluster has promoted the replica (node timeout 1 s, then an election), the
    // router still routes shard 3 to its dead primary.
    let killed = Instant::now();
    let mut failures = Vec::new();
    for _ in 0..6 {
        let got = redis::cmd("EVAL")
            .arg("return redis.call('GET', KEYS[1])")
            .arg(1)
            .arg(&healthy)
            .query_async::<Option<String>>(&mut c)
            .await;
        match got {
            Ok(v) => assert_eq!(v.as_deref(), Some("v")),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let elapsed = killed.elapsed();
    assert!(
        router.shards()[2].primary == Some(cluster.addr(dead)),
        "the dead primary was still routed to during the EVALs ({elapsed:?})"
    );
    assert!(failures.is_empty(), "EVALs failed: {failures:?}");
}

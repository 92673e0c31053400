//! Routing in front of Redis Cluster, on a real cluster: hash slots, `-CROSSSLOT`, keyless
//! and movable-key commands, and a slot migrated under the router (`-ASK` while it moves,
//! `-MOVED` after), none of which is buffered.

mod support;

use failover_buffer_redis::Router;
use redis::aio::MultiplexedConnection;
use support::*;

fn id(node: &mut redis::Connection) -> String {
    redis::cmd("CLUSTER").arg("MYID").query(node).unwrap()
}

/// A router in front of `cluster` (seeded with its first node), and a client of it.
async fn router_before(cluster: &ClusterNodes) -> (Router, MultiplexedConnection) {
    let router = cluster_router(cluster).await;
    let client = redis::Client::open(format!("redis://{}/", router.local_addr())).unwrap();
    let c = client.get_multiplexed_async_connection().await.unwrap();
    (router, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_go_by_slot_and_a_migrating_slot_is_followed_without_buffering() {
    if !cluster_available() {
        return;
    }
    let _serial = serial().await;
    let cluster = redis_cluster(1000);
    let (router, mut c) = router_before(&cluster).await;

    // Keys in different slots: Redis's own error. With a hash tag: one slot, served.
    let crossslot = redis::cmd("MSET")
        .arg("a")
        .arg(1)
        .arg("b")
        .arg(2)
        .query_async::<()>(&mut c)
        .await
        .unwrap_err();
    assert_eq!(crossslot.code(), Some("CROSSSLOT"), "{crossslot}");
    let () = redis::cmd("MSET")
        .arg("{t}a")
        .arg(1)
        .arg("{t}b")
        .arg(2)
        .query_async(&mut c)
        .await
        .unwrap();
    // Keyless, and keys only the server can find (EVAL's numkeys).
    let pong: String = redis::cmd("PING").query_async(&mut c).await.unwrap();
    assert_eq!(pong, "PONG");
    let got: i64 = redis::cmd("EVAL")
        .arg("return redis.call('GET', KEYS[1])")
        .arg(1)
        .arg("{t}a")
        .query_async::<String>(&mut c)
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(got, 1);

    // Move the slot of "{foo}" (12182, shard 3) to shard 1, as `redis-cli --cluster reshard`
    // does, with a key in it.
    let slot = failover_buffer_redis::slot::key_slot(b"foo");
    assert_eq!(cluster.shard_of_slot(slot), 2);
    let () = redis::cmd("SET")
        .arg("{foo}a")
        .arg("moved")
        .query_async(&mut c)
        .await
        .unwrap();
    let (source, target) = (
        &cluster.nodes[cluster.shards[2].primary],
        &cluster.nodes[cluster.shards[0].primary],
    );
    let (mut src, mut dst) = (source.conn(), target.conn());
    let (src_id, dst_id) = (id(&mut src), id(&mut dst));
    let setslot = |conn: &mut redis::Connection, how: &str, node: &str| {
        let () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(how)
            .arg(node)
            .query(conn)
            .unwrap();
    };
    setslot(&mut dst, "IMPORTING", &src_id);
    setslot(&mut src, "MIGRATING", &dst_id);
    // While it moves, a key the source does not have is answered with -ASK: followed.
    let missing: Option<String> = redis::cmd("GET")
        .arg("{foo}missing")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(missing, None);
    let () = redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(target.port)
        .arg("")
        .arg(0)
        .arg(5000)
        .arg("KEYS")
        .arg("{foo}a")
        .query(&mut src)
        .unwrap();
    setslot(&mut dst, "NODE", &dst_id);
    setslot(&mut src, "NODE", &dst_id);
    // The source now answers -MOVED to shard 1: the router reads the map again and goes there.
    let value: String = redis::cmd("GET")
        .arg("{foo}a")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(value, "moved");
    let incr: i64 = redis::cmd("INCR")
        .arg("{foo}n")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(incr, 1);
    let mut on_target = target.conn();
    let n: i64 = redis::cmd("GET")
        .arg("{foo}n")
        .query(&mut on_target)
        .unwrap();
    assert_eq!(n, 1, "the write went to the slot's new owner");

    // Redirects are not failovers: no shard buffered.
    for s in router.shards() {
        let stats = router.buffer().stats(&s.shard);
        assert_eq!(
            (stats.starts, stats.buffered),
            (0, 0),
            "{}: {stats:?}",
            s.shard.name()
        );
    }
}

/// `SCRIPT LOAD` has no key, but the script is for commands that have one: `EVALSHA` goes
/// to its key's shard, which must know the script. A cluster client sends `SCRIPT LOAD` to
/// every primary; so does the router.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loaded_script_runs_on_every_shard() {
    if !cluster_available() {
        return;
    }
    let _serial = serial().await;
    let cluster = redis_cluster(1000);
    let (_router, mut c) = router_before(&cluster).await;
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return redis.call('INCR', KEYS[1])")
        .query_async(&mut c)
        .await
        .unwrap();
    for shard in 0..3 {
        let key = (0..)
            .map(|i| format!("s{i}"))
            .find(|k| cluster.shard_of_key(k) == shard)
            .unwrap();
        let n: redis::RedisResult<i64> = redis::cmd("EVALSHA")
            .arg(&sha)
            .arg(1)
            .arg(&key)
            .query_async(&mut c)
            .await;
        assert_eq!(
            n.map_err(|e| e.to_string()),
            Ok(1),
            "EVALSHA on shard {}",
            shard + 1
        );
    }
}

/// Each node answers `SCAN`, `KEYS`, `DBSIZE` and `FLUSHALL` for its own slots. The router
/// asks every shard and answers for the whole cluster, as one server would; a `SCAN` went
/// to a different shard on each call, its cursor continued on the wrong node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_keys_dbsize_and_flushall_answer_for_the_whole_cluster() {
    if !cluster_available() {
        return;
    }
    let _serial = serial().await;
    let cluster = redis_cluster(1000);
    let (_router, mut c) = router_before(&cluster).await;
    let written: std::collections::BTreeSet<String> = (0..300).map(|i| format!("k{i}")).collect();
    for key in &written {
        let () = redis::cmd("SET")
            .arg(key)
            .arg(1)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    for shard in 0..3 {
        assert!(
            written.iter().any(|k| cluster.shard_of_key(k) == shard),
            "every shard holds some of the keys"
        );
    }

    let mut scanned = std::collections::BTreeSet::new();
    let mut cursor = 0u64;
    let mut calls = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(25)
            .query_async(&mut c)
            .await
            .unwrap();
        scanned.extend(keys);
        calls += 1;
        assert!(calls < 1_000, "the iteration ends");
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let missed: Vec<&String> = written.difference(&scanned).collect();
    assert!(
        missed.is_empty() && scanned.len() == written.len(),
        "SCAN returns every key of every shard and no other: {} of 300 missed (e.g. {:?}), {} returned",
        missed.len(),
        &missed[..missed.len().min(5)],
        scanned.len()
    );

    let size: u64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(size, 300);
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("k*")
        .query_async(&mut c)
        .await
        .unwrap();
    let listed = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(
        (listed, keys.len()),
        (300, 300),
        "KEYS lists every shard's keys, once"
    );

    let () = redis::cmd("FLUSHALL").query_async(&mut c).await.unwrap();
    let size: u64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(size, 0);
    for shard in &cluster.shards {
        let mut node = cluster.nodes[shard.primary].conn();
        let left: u64 = redis::cmd("DBSIZE").query(&mut node).unwrap();
        assert_eq!(left, 0, "FLUSHALL reached the primary of {}", shard.name);
    }
}

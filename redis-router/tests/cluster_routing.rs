//! Routing in front of Redis Cluster, on a real cluster: hash slots, `-CROSSSLOT`, keyless
//! and movable-key commands, and a slot migrated under the router (`-ASK` while it moves,
//! `-MOVED` after), none of which is buffered.

mod support;

use failover_buffer_redis::{Router, RouterConfig, Topology};
use support::*;

fn id(node: &mut redis::Connection) -> String {
    redis::cmd("CLUSTER").arg("MYID").query(node).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_go_by_slot_and_a_migrating_slot_is_followed_without_buffering() {
    if !cluster_available() {
        return;
    }
    let _serial = serial().await;
    let cluster = redis_cluster(1000);
    let seeds = vec![cluster.addr(0)];
    let router = Router::start(RouterConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Topology::Cluster { seeds },
    ))
    .await
    .unwrap();
    let client = redis::Client::open(format!("redis://{}/", router.local_addr())).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();

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
    let router = Router::start(RouterConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Topology::Cluster {
            seeds: vec![cluster.addr(0)],
        },
    ))
    .await
    .unwrap();
    let client = redis::Client::open(format!("redis://{}/", router.local_addr())).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
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

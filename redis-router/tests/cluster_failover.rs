//! Redis Cluster behind the router: three primaries and three replicas, real servers on free
//! loopback ports, and a plain (not cluster-aware) `redis` client talking to the router as to
//! one server. Each scenario runs the same load through a buffered router and a `--no-buffer`
//! router at once, against the same failover.

mod support;

use std::time::{Duration, Instant};

use failover_buffer_redis::{Router, RouterConfig, ShardRoute, Topology};
use failover_buffer_tokio::{EvictReason, ShardStats, SkipReason};
use support::*;

const CONNECTIONS: usize = 50;
/// The issue asks for ~10 s of load; 6 s keeps the cluster tests together under CI's
/// 3 minutes on 2 cores, and the failovers (0.2 s planned, ~2 s killed) sit well inside it.
const LOAD: Duration = Duration::from_secs(6);
const FAILOVER_AT: Duration = Duration::from_secs(2);
const NODE_TIMEOUT_MS: u64 = 1000;

async fn routers(cluster: &ClusterNodes, size: usize) -> (Router, Router) {
    let seeds = vec![cluster.addr(0), cluster.addr(1), cluster.addr(2)];
    let listen = "127.0.0.1:0".parse().unwrap();
    let mut config = RouterConfig::new(listen, Topology::Cluster { seeds });
    config.buffer.size = size;
    let buffered = Router::start(config.clone()).await.unwrap();
    config.buffer.enabled = false;
    let unbuffered = Router::start(config).await.unwrap();
    for router in [&buffered, &unbuffered] {
        let names: Vec<String> = router
            .shards()
            .iter()
            .map(|s| s.shard.name().to_owned())
            .collect();
        let expected: Vec<String> = cluster.shards.iter().map(|s| s.name.clone()).collect();
        assert_eq!(names, expected, "one buffer shard per cluster shard");
    }
    (buffered, unbuffered)
}

/// The router's shard for the cluster's shard `index`, by name.
fn shard<'a>(router: &'a [ShardRoute], cluster: &ClusterNodes, index: usize) -> &'a ShardRoute {
    router
        .iter()
        .find(|s| s.shard.name() == cluster.shards[index].name)
        .expect("the shard is registered")
}

fn stats(router: &Router, cluster: &ClusterNodes) -> Vec<ShardStats> {
    (0..cluster.shards.len())
        .map(|i| shard_stats(router, cluster, i))
        .collect()
}

/// `CLUSTER FAILOVER` on shard 2's replica: with the buffer, only shard 2 holds commands
/// (its old primary's `-MOVED` to its own replica is its failover error) and no client sees
/// an error; `--no-buffer` follows that `-MOVED` instead, and sees no error either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinated_failover_of_one_shard_pauses_that_shard_only() {
    if !cluster_available() {
        return;
    }
    let _serial = serial().await;
    let cluster = redis_cluster(NODE_TIMEOUT_MS);
    let (buffered, unbuffered) = routers(&cluster, 1000).await;
    let target = cluster.shards[1].clone();

    let start = Instant::now();
    let (with, without) = cluster_loads(
        start,
        buffered.local_addr(),
        unbuffered.local_addr(),
        CONNECTIONS,
        LOAD,
    );
    tokio::time::sleep(FAILOVER_AT).await;
    let mut c = cluster.nodes[target.replica].conn();
    let ok: String = redis::cmd("CLUSTER").arg("FAILOVER").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    let (with, without) = (with.await.unwrap(), without.await.unwrap());

    // Shard 2's replica is its primary now, and both routers route to it.
    let promoted = cluster.addr(target.replica);
    for router in [&buffered, &unbuffered] {
        assert_eq!(shard(&router.shards(), &cluster, 1).primary, Some(promoted));
    }
    eprint!("{}", per_shard("buffer on ", &with, &cluster, FAILOVER_AT));
    eprint!(
        "{}",
        per_shard("--no-buffer", &without, &cluster, FAILOVER_AT)
    );
    let counters = stats(&buffered, &cluster);
    for (i, s) in counters.iter().enumerate() {
        eprintln!(
            "buffer shard {}: {} starts, {} buffered, {} drained, {} evicted, {} skipped",
            i + 1,
            s.starts,
            s.buffered,
            s.drained,
            s.evicted.total(),
            s.skipped.total()
        );
    }

    // With the buffer: no client error, every acknowledged write there exactly once.
    assert!(
        with.errors().is_empty(),
        "client errors with the buffer: {:?}",
        &with.errors()[..with.errors().len().min(5)]
    );
    let verdict = verify_cluster(&cluster, &with);
    assert_eq!(
        verdict.missing_sets,
        vec![0; 3],
        "acknowledged SETs missing"
    );
    assert_eq!(verdict.lost_incrs, vec![0; 3], "acknowledged INCRs lost");
    assert_eq!(verdict.extra_incrs, vec![0; 3], "INCRs counted twice");

    // Only shard 2 buffered.
    assert!(
        counters[1].buffered > 0,
        "shard 2 buffered: {:?}",
        counters[1]
    );
    for i in [0, 2] {
        assert_eq!(counters[i].starts, 0, "shard {} never buffered", i + 1);
        assert_eq!(counters[i].buffered, 0, "shard {} never buffered", i + 1);
    }
    // The other shards' p99 in the failover's 2 s stays within noise of their p99 before:
    // under 3 times it plus 25 ms on a shared 2-core machine, and under shard 2's longest
    // hold.
    for i in [0, 2] {
        let before = p99(&with, &cluster, i, Duration::ZERO, FAILOVER_AT);
        let during = p99(
            &with,
            &cluster,
            i,
            FAILOVER_AT,
            FAILOVER_AT + Duration::from_secs(2),
        );
        assert!(
            during <= before * 3 + Duration::from_millis(25),
            "shard {}: p99 {during:?} during the failover against {before:?} before",
            i + 1
        );
    }

    // Without the buffer, no errors either: a finding, not what the issue expected. A
    // coordinated Cluster failover pauses writes on the old primary (commands wait, none
    // fail) until the promoted replica owns the slots, then answers `-MOVED` to it, and a
    // proxy without a buffer follows that redirect as any cluster client does (`--no-buffer`
    // does, see `Core::attempt`). Nothing is refused, so nothing needs holding: the buffer
    // earns its keep in the unplanned failovers below, where `--no-buffer` fails thousands.
    assert!(
        without.errors().is_empty(),
        "a redirect-following proxy without a buffer sees no error in a coordinated failover: {:?}",
        &without.errors()[..without.errors().len().min(5)]
    );
    let verdict = verify_cluster(&cluster, &without);
    assert_eq!(verdict.missing_sets, vec![0; 3]);
    assert_eq!(verdict.lost_incrs, vec![0; 3]);
}

/// Commands that started before `at` and were answered after it: in flight when it happened.
const SLACK: Duration = Duration::from_millis(50);

/// SIGKILL of shard 3's primary: its connections are refused until the cluster promotes its
/// replica, after the node timeout. Commands on the replay allow-list never fail; an `INCR`
/// in flight at the kill may have run, so it fails saying so. Shards 1 and 2 never buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_buffers_its_shard_only_and_fails_only_uncertain_commands() {
    if !cluster_available() {
        return;
    }
    let _serial = serial().await;
    let mut cluster = redis_cluster(NODE_TIMEOUT_MS);
    let (buffered, unbuffered) = routers(&cluster, 1000).await;
    let target = cluster.shards[2].clone();

    let start = Instant::now();
    let (with, without) = cluster_loads(
        start,
        buffered.local_addr(),
        unbuffered.local_addr(),
        CONNECTIONS,
        LOAD,
    );
    tokio::time::sleep(FAILOVER_AT).await;
    let watch = RoleWatch::start(
        start,
        cluster.addr(target.replica),
        cluster.addr(target.primary),
    );
    let killed_at = start.elapsed();
    cluster.nodes[target.primary].kill();
    let (with, without) = (with.await.unwrap(), without.await.unwrap());
    let (promoted, _) = watch.finish();
    let promoted = promoted.expect("the cluster promoted shard 3's replica");

    for router in [&buffered, &unbuffered] {
        assert_eq!(
            shard(&router.shards(), &cluster, 2).primary,
            Some(cluster.addr(target.replica)),
            "the router follows the promotion"
        );
    }
    eprintln!("killed at {killed_at:?}, replica promoted at {promoted:?}");
    eprint!(
        "buffer on: {}--no-buffer: {}",
        simulator_inputs(&with, &cluster, CONNECTIONS, killed_at, promoted),
        simulator_inputs(&without, &cluster, CONNECTIONS, killed_at, promoted)
    );
    eprint!("{}", per_shard("buffer on ", &with, &cluster, killed_at));
    eprint!(
        "{}",
        per_shard("--no-buffer", &without, &cluster, killed_at)
    );
    let counters = stats(&buffered, &cluster);
    for (i, s) in counters.iter().enumerate() {
        eprintln!(
            "buffer shard {}: {} starts, {} buffered, {} drained, {} evicted, {} skipped, last failover {:?}",
            i + 1,
            s.starts,
            s.buffered,
            s.drained,
            s.evicted.total(),
            s.skipped.total(),
            s.last_failover_duration
        );
    }

    // With the buffer: only INCRs in flight at the kill fail, as uncertain, on shard 3.
    let mut per_connection = [0; CONNECTIONS];
    for op in with.errors() {
        assert!(
            matches!(op.kind, OpKind::IncrKey(_)),
            "only INCRs may fail: {op:?}"
        );
        let e = op.error.as_deref().unwrap();
        assert!(
            e.contains("may or may not have run"),
            "named as uncertain: {e}"
        );
        assert!(
            op.at <= killed_at + SLACK,
            "only commands in flight at the kill: {op:?}"
        );
        assert_eq!(
            cluster.shard_of_key(op.key().unwrap()),
            2,
            "only shard 3's: {op:?}"
        );
        per_connection[op.conn] += 1;
    }
    assert!(
        per_connection.iter().all(|&n| n <= 1),
        "at most one per connection"
    );
    assert!(
        counters[2].buffered > 0,
        "shard 3 buffered: {:?}",
        counters[2]
    );
    for i in [0, 1] {
        assert_eq!(counters[i].starts, 0, "shard {} never buffered", i + 1);
        assert_eq!(counters[i].buffered, 0, "shard {} never buffered", i + 1);
    }

    // Writes the dead primary acknowledged but had not replicated are gone with it: counted,
    // and all of them shard 3's, acknowledged before the kill.
    let verdict = verify_cluster(&cluster, &with);
    eprintln!(
        "lost with the killed primary (acknowledged, not replicated): SETs per shard {:?}, INCRs per shard {:?}; uncertain INCRs failed: {}",
        verdict.missing_sets,
        verdict.lost_incrs,
        with.errors().len()
    );
    assert_eq!(verdict.extra_incrs, vec![0; 3], "no INCR counted twice");
    assert_eq!(
        &verdict.missing_sets[..2],
        &[0, 0],
        "shards 1 and 2 lose nothing"
    );
    assert_eq!(
        &verdict.lost_incrs[..2],
        &[0, 0],
        "shards 1 and 2 lose nothing"
    );
    for op in &verdict.missing {
        assert!(
            op.at <= killed_at + SLACK,
            "only writes acknowledged before the kill: {op:?}"
        );
    }

    // Without the buffer, shard 3's clients see the outage.
    assert!(
        !without.errors().is_empty(),
        "without the buffer the kill shows"
    );
    for op in without.errors() {
        assert_eq!(
            cluster.shard_of_key(op.key().unwrap()),
            2,
            "only shard 3's: {op:?}"
        );
    }
}

fn count<R: failover_buffer_tokio::Reason + PartialEq>(
    by: &failover_buffer_tokio::ByReason<R>,
    reason: R,
) -> u64 {
    by.iter().find(|(r, _)| *r == reason).map_or(0, |(_, n)| n)
}

/// Two primaries killed together, with a buffer of 10 slots for 50 connections: both
/// shards buffer and share the one capacity, the oldest held commands are evicted for newer
/// ones, and the clients' errors match the core's counters one to one.
///
/// Five primaries, not three: a replica is promoted only with the votes of a majority of
/// the primaries, and two dead primaries out of three leave one vote of the two needed, so a
/// three-primary cluster never fails either shard over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_killed_together_share_a_small_buffer_and_evictions_match_the_counters() {
    if !cluster_available() {
        return;
    }
    let _serial = serial().await;
    let mut cluster = redis_cluster_of(5, NODE_TIMEOUT_MS);
    const SIZE: usize = 10;
    let (buffered, unbuffered) = routers(&cluster, SIZE).await;
    let dead = [1, 3];

    let start = Instant::now();
    let (with, without) = cluster_loads(
        start,
        buffered.local_addr(),
        unbuffered.local_addr(),
        CONNECTIONS,
        LOAD,
    );
    tokio::time::sleep(FAILOVER_AT).await;
    let killed_at = start.elapsed();
    for &d in &dead {
        let primary = cluster.shards[d].primary;
        cluster.nodes[primary].kill();
    }
    let (with, without) = (with.await.unwrap(), without.await.unwrap());

    let shards = buffered.shards();
    for &d in &dead {
        assert_eq!(
            shard(&shards, &cluster, d).primary,
            Some(cluster.addr(cluster.shards[d].replica)),
            "shard {} failed over",
            d + 1
        );
    }
    eprint!("{}", per_shard("buffer on ", &with, &cluster, killed_at));
    eprint!(
        "{}",
        per_shard("--no-buffer", &without, &cluster, killed_at)
    );
    let counters = stats(&buffered, &cluster);
    for (i, s) in counters.iter().enumerate() {
        eprintln!(
            "buffer shard {}: {} starts, {} buffered, {} drained, evicted {:?}, skipped {:?}, peak held {}",
            i + 1,
            s.starts,
            s.buffered,
            s.drained,
            s.evicted.iter().filter(|(_, n)| *n > 0).collect::<Vec<_>>(),
            s.skipped.iter().filter(|(_, n)| *n > 0).collect::<Vec<_>>(),
            s.last_requests_in_flight_max
        );
    }

    // Both shards buffered, and only they. The slots go first come, first served: a shard
    // evicts only its own oldest, so a shard that finds every slot taken by the other has
    // its commands refused (skipped BufferFull) rather than held.
    for (i, s) in counters.iter().enumerate() {
        if dead.contains(&i) {
            assert_eq!(s.starts, 1, "shard {} buffered", i + 1);
            assert!(
                s.buffered + count(&s.skipped, SkipReason::BufferFull) > 0,
                "shard {} held or was refused for room",
                i + 1
            );
        } else {
            assert_eq!(s.buffered, 0, "shard {} never buffered", i + 1);
        }
    }
    // They shared the one capacity: together they held more than fits, so some were
    // pushed out, and never more than SIZE at once.
    assert!(
        counters
            .iter()
            .map(|s| s.last_requests_in_flight_max)
            .sum::<u64>()
            >= SIZE as u64,
        "the buffer filled"
    );
    for s in &counters {
        assert!(s.last_requests_in_flight_max <= SIZE as u64);
    }

    // What clients saw, one to one with the core's counters.
    let errors = with.errors();
    let saw = |text: &str| {
        errors
            .iter()
            .filter(|o| o.error.as_deref().unwrap().contains(text))
            .count() as u64
    };
    let evicted: u64 = counters
        .iter()
        .map(|s| count(&s.evicted, EvictReason::BufferFull))
        .sum();
    let refused: u64 = counters
        .iter()
        .map(|s| count(&s.skipped, SkipReason::BufferFull))
        .sum();
    let uncertain = saw("may or may not have run");
    eprintln!(
        "client errors: {} = {} evicted for newer + {} refused (buffer full) + {} uncertain INCRs; core: {evicted} evicted (BufferFull), {refused} skipped (BufferFull)",
        errors.len(),
        saw("request evicted for newer request"),
        saw("primary buffer is full"),
        uncertain
    );
    assert!(evicted > 0, "evictions happened");
    assert_eq!(
        saw("request evicted for newer request"),
        evicted,
        "each eviction reached one client"
    );
    assert_eq!(
        saw("primary buffer is full"),
        refused,
        "each refusal reached one client"
    );
    for s in &counters {
        assert_eq!(count(&s.evicted, EvictReason::WindowExceeded), 0);
        assert_eq!(count(&s.evicted, EvictReason::ContextDone), 0);
    }
    assert_eq!(
        errors.len() as u64,
        evicted + refused + uncertain,
        "no other error"
    );
    for op in &errors {
        assert!(
            dead.contains(&cluster.shard_of_key(op.key().unwrap())),
            "only dead shards' commands fail: {op:?}"
        );
    }
    // Nothing acknowledged by the live shards is lost, and nothing is counted twice.
    let verdict = verify_cluster(&cluster, &with);
    eprintln!(
        "lost with the killed primaries: SETs {:?}, INCRs {:?}",
        verdict.missing_sets, verdict.lost_incrs
    );
    assert_eq!(verdict.extra_incrs, vec![0; 5]);
    for (i, (&sets, &incrs)) in verdict
        .missing_sets
        .iter()
        .zip(&verdict.lost_incrs)
        .enumerate()
    {
        if !dead.contains(&i) {
            assert_eq!((sets, incrs), (0, 0), "shard {} loses nothing", i + 1);
        }
    }

    // Without the buffer, errors too, on the dead shards only. (A buffer of 10 slots for 50
    // connections evicts about as many commands as --no-buffer fails: too small to help,
    // which is the point of this test.)
    assert!(!without.errors().is_empty(), "--no-buffer sees the outage");
    for op in without.errors() {
        assert!(dead.contains(&cluster.shard_of_key(op.key().unwrap())));
    }
}

//! A region failing over: 10,000 shards registered, 1,000 of them failing over at once with
//! 200,000 requests held between them, then all drained through the adapter (issue 16). Not a
//! benchmark: it checks that nothing is lost, stuck or miscounted at that scale, and that it
//! finishes within its time bound.
//!
//! About 2 s in the debug build `.ci/run` tests with (0.8 s in release), on 2 shared cores.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use failover_buffer_tokio::{
    Config, FailoverBuffer, FailoverCause, HealthStamp, PrimaryId, Shard, ShardState,
};

const SHARDS: usize = 10_000;
const FAILING: usize = 1_000;
const HELD: usize = 200_000;

fn stamp(term: u64) -> HealthStamp {
    HealthStamp {
        primary: PrimaryId(term),
        term,
        serving: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_of_ten_thousand_shards_fail_over_at_once_and_all_200_000_held_requests_drain() {
    let config = Config {
        enabled: true,
        size: HELD,
        // Long enough that nothing is released by a timer: every request waits for the end.
        window: Duration::from_secs(600),
        max_failover_duration: Duration::from_secs(600),
        drain_concurrency: 16,
        ..Config::default()
    };
    let buffer = FailoverBuffer::new(config).unwrap();
    let shards: Vec<Shard> = (0..SHARDS)
        .map(|i| buffer.register_shard(&format!("keyspace_{}", i / 16), &format!("{}", i % 16)))
        .collect();
    for shard in &shards {
        buffer.health(shard, stamp(1)).unwrap();
    }
    let (failing, idle) = shards.split_at(FAILING);
    let retried = Arc::new(AtomicU64::new(0));

    let run = async {
        // Every request failed over once already; they arrive round-robin over the failing
        // shards, so every shard starts its episode with the first thousand.
        let tasks: Vec<_> = (0..HELD)
            .map(|k| {
                let (buffer, shard) = (buffer.clone(), failing[k % FAILING].clone());
                let retried = retried.clone();
                tokio::spawn(async move {
                    let guard = buffer
                        .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                        .await
                        .expect("no request is refused or evicted: the buffer holds them all")
                        .expect("every request is held, then released to retry");
                    drop(guard);
                    retried.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        while buffer.held_slots() < HELD {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(buffer.free_slots(), 0);
        buffer.check_invariants().unwrap();
        for shard in failing {
            assert_eq!(buffer.state(shard), ShardState::Buffering);
            assert_eq!(buffer.queued(shard), HELD / FAILING);
        }
        // The rest of the region is untouched: a first attempt proceeds at once.
        for shard in idle.iter().step_by(97) {
            assert!(
                buffer
                    .wait_for_failover_end(shard, None)
                    .await
                    .unwrap()
                    .is_none()
            );
            assert_eq!(buffer.state(shard), ShardState::Idle);
        }
        // The new primaries serve: every failing shard drains.
        for shard in failing {
            buffer.health(shard, stamp(2)).unwrap();
        }
        for task in tasks {
            task.await.expect("a held request's task panicked");
        }
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the failover of 1,000 shards did not drain within 30 s");

    assert_eq!(
        retried.load(Ordering::Relaxed),
        HELD as u64,
        "each request retried once"
    );
    assert_eq!(buffer.held_slots(), 0);
    assert_eq!(buffer.free_slots(), HELD);
    buffer.check_invariants().unwrap();
    for (i, shard) in shards.iter().enumerate() {
        let stats = buffer.stats(shard);
        assert_eq!(buffer.state(shard), ShardState::Idle, "{shard:?}");
        if i < FAILING {
            assert_eq!(stats.starts, 1, "{shard:?}");
            assert_eq!(stats.buffered, (HELD / FAILING) as u64, "{shard:?}");
            assert_eq!(stats.drained, stats.buffered, "{shard:?}");
            assert_eq!(stats.evicted.total(), 0, "{shard:?}");
        } else {
            assert_eq!(stats.starts, 0, "{shard:?}");
            assert_eq!(stats.buffered, 0, "{shard:?}");
        }
    }
    assert_eq!(buffer.input_stats(), Default::default());
}

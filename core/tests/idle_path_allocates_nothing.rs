//! The idle first-attempt path is on every primary request a router sends, so it must not
//! allocate (Vitess needed PR 19827 to get there). `allocation-counter` checks it, counting
//! this thread's allocations only (the test harness's own threads allocate at times).

use failover_buffer::{Admission, Buffer, Config, Timestamp};

#[test]
fn idle_first_attempt_allocates_nothing() {
    let mut buffer = Buffer::new(Config {
        enabled: true,
        ..Config::default()
    })
    .unwrap();
    let shards: Vec<_> = (0..8)
        .map(|i| buffer.register_shard("ks", &format!("{i}")))
        .collect();
    let idle = allocation_counter::measure(|| {
        for i in 0..10_000u64 {
            let shard = shards[(i % 8) as usize];
            let admission = buffer.request(Timestamp::from_nanos(i), shard, None);
            assert_eq!(admission, Ok(Admission::Proceed));
        }
    });
    assert_eq!(idle.count_total, 0);

    // The counter does count: the slow path's first queued request allocates the actions
    // queue.
    let cause = Some(failover_buffer::FailoverCause::Reparent);
    let held = allocation_counter::measure(|| {
        let _ = buffer.request(Timestamp::from_secs(1), shards[0], cause);
    });
    assert!(held.count_total > 0);
}

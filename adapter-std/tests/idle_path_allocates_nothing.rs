//! The idle fast path, a first attempt on a shard that is not buffering, allocates nothing.
//! `allocation-counter` installs a counting global allocator for this test binary and
//! counts only the current thread's allocations, so the timer thread and the test harness
//! cannot disturb the measurement.

mod common;

use std::hint::black_box;
use std::thread;

use common::{eventually, stamp};
use failover_buffer_std::{FailoverBuffer, FailoverCause};

#[test]
fn a_first_attempt_on_an_idle_shard_allocates_nothing() {
    // The counter is live: an assertion of zero cannot pass vacuously.
    let boxed = allocation_counter::measure(|| {
        black_box(Box::new(black_box(7u64)));
    });
    assert_eq!(boxed.count_total, 1);

    let buffer = FailoverBuffer::new(common::enabled()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let idle = allocation_counter::measure(|| {
        for _ in 0..1_000 {
            let admitted = buffer.wait_for_failover_end(black_box(&shard), None);
            assert!(matches!(admitted, Ok(None)));
        }
    });
    assert_eq!(idle.count_total, 0);

    // After a failover has come and gone, the path is free again.
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    let held = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || {
            buffer
                .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                .map(|guard| guard.is_some())
        })
    };
    eventually("queued", || buffer.queued(&shard) == 1);
    buffer.health(&shard, stamp(2, 2, true)).unwrap();
    assert_eq!(held.join().unwrap(), Ok(true));
    let after = allocation_counter::measure(|| {
        for _ in 0..1_000 {
            let admitted = buffer.wait_for_failover_end(black_box(&shard), None);
            assert!(matches!(admitted, Ok(None)));
        }
    });
    assert_eq!(after.count_total, 0);
}

//! A held request frees everything it allocated once it has its answer. `allocation-counter`
//! counts the current thread's allocations only; the scenario runs on one thread (a deadline
//! already reached times the request out in the call that holds it).

mod common;

use common::manual;
use failover_buffer_std::{Clock, FailoverCause, WaitError};

#[test]
fn a_held_request_that_times_out_leaves_no_allocation_behind() {
    let (buffer, clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    let hold_and_time_out = || {
        let answer = buffer.wait_for_failover_end_timeout(
            &shard,
            Some(FailoverCause::Reparent),
            clock.now(),
        );
        assert_eq!(answer.map(|g| g.is_some()), Err(WaitError::TimedOut));
    };
    // The first one starts the failover and sizes the tables, which keep their capacity.
    hold_and_time_out();
    let held = allocation_counter::measure(|| {
        for _ in 0..100 {
            hold_and_time_out();
        }
    });
    assert!(held.count_total >= 100, "each one allocated its waiter");
    assert_eq!(held.count_current, 0, "and freed it");
}

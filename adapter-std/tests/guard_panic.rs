//! A retry that panics still reports its retry done: the guard is dropped while unwinding.

mod common;

use std::thread;

use common::{eventually, manual, stamp};
use failover_buffer_std::{FailoverCause, ShardState};

#[test]
fn a_guard_dropped_by_a_panicking_thread_frees_its_slot_and_the_drain_goes_on() {
    let (buffer, _clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    let doomed = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || {
            let _guard = buffer
                .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                .unwrap()
                .expect("released to retry");
            panic!("the retry blew up");
        })
    };
    eventually("queued", || buffer.queued(&shard) == 1);
    let next = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent)))
    };
    eventually("queued", || buffer.queued(&shard) == 2);

    buffer.health(&shard, stamp(2, 2, true)).unwrap();
    assert!(doomed.join().is_err(), "the first retry panicked");
    // With drain concurrency 1, the next request is released only because the panicking
    // thread's guard reported its retry done.
    drop(next.join().unwrap().unwrap().expect("released to retry"));
    assert_eq!(buffer.state(&shard), ShardState::Idle);
    assert_eq!(buffer.free_slots(), 1000);
}

//! After the failover ends, held requests are released in arrival order, at most
//! `drain_concurrency` retrying at once; each finished retry releases the next.

mod common;

use std::sync::mpsc;
use std::thread;

use common::{eventually, manual, stamp};
use failover_buffer_std::{Config, FailoverCause, ShardState};

#[test]
fn buffered_requests_drain_in_fifo_order_with_bounded_concurrency() {
    let (buffer, _clock) = manual(Config {
        enabled: true,
        drain_concurrency: 2,
        ..Config::default()
    });
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();

    // Six requests failed over, queued one after another so their order is known.
    let (released_tx, released) = mpsc::channel();
    let mut finish = Vec::new();
    let mut workers = Vec::new();
    for i in 0..6 {
        let (finish_tx, finish_rx) = mpsc::channel::<()>();
        finish.push(finish_tx);
        workers.push({
            let (buffer, shard, released_tx) = (buffer.clone(), shard.clone(), released_tx.clone());
            thread::spawn(move || {
                let guard = buffer
                    .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                    .expect("held, not failed")
                    .expect("held, then released to retry");
                released_tx.send(i).unwrap();
                // The retry runs until the test says it has finished.
                finish_rx.recv().unwrap();
                drop(guard);
            })
        });
        eventually("request queued", || buffer.queued(&shard) == i + 1);
    }
    assert_eq!(buffer.state(&shard), ShardState::Buffering);

    // The new primary serves: the first two are released, the rest stay queued.
    buffer.health(&shard, stamp(2, 2, true)).unwrap();
    let mut order = vec![released.recv().unwrap(), released.recv().unwrap()];
    order.sort_unstable();
    assert_eq!(order, [0, 1]);
    assert_eq!(buffer.queued(&shard), 4);
    assert_eq!(buffer.state(&shard), ShardState::Draining);

    // Each finished retry releases exactly the next in line.
    for (done, next) in [(0, 2), (1, 3), (2, 4), (3, 5)] {
        finish[done].send(()).unwrap();
        assert_eq!(released.recv().unwrap(), next);
        assert_eq!(buffer.queued(&shard), 5 - next);
        let in_flight = buffer.held_slots() - buffer.queued(&shard);
        assert_eq!(in_flight, 2, "two retries in flight, never more");
    }
    finish[4].send(()).unwrap();
    finish[5].send(()).unwrap();
    for w in workers {
        w.join().unwrap();
    }

    assert_eq!(buffer.state(&shard), ShardState::Idle);
    assert_eq!(buffer.free_slots(), 1000);
    let stats = buffer.stats(&shard);
    assert_eq!((stats.buffered, stats.drained), (6, 6));
    buffer.check_invariants().unwrap();
}

#[test]
fn first_attempts_wait_while_buffering_and_proceed_while_draining() {
    let (buffer, _clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();

    let first = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent)))
    };
    eventually("failover started", || buffer.queued(&shard) == 1);
    // A first attempt (no cause) on a buffering shard is held too.
    let second = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || buffer.wait_for_failover_end(&shard, None))
    };
    eventually("first attempt queued", || buffer.queued(&shard) == 2);

    buffer.health(&shard, stamp(2, 2, true)).unwrap();
    let first = first.join().unwrap().unwrap().expect("released to retry");
    // Draining: a new first attempt goes straight through.
    assert!(
        buffer
            .wait_for_failover_end(&shard, None)
            .unwrap()
            .is_none()
    );
    drop(first);
    drop(second.join().unwrap().unwrap().expect("released to retry"));
    assert_eq!(buffer.state(&shard), ShardState::Idle);
    assert_eq!(buffer.free_slots(), 1000);
}

#[test]
fn a_retry_that_fails_again_backs_the_drain_off_and_is_held_again() {
    let (buffer, clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();

    let worker = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || {
            let guard = buffer
                .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                .unwrap()
                .expect("released when the new primary serves");
            // The new primary is not writable yet: the retry fails over again.
            guard
                .retry_failed(FailoverCause::Reparent)
                .unwrap()
                .expect("held again, then released")
        })
    };
    eventually("queued", || buffer.queued(&shard) == 1);
    buffer.health(&shard, stamp(2, 2, true)).unwrap();
    eventually("held again after the drain backed off", || {
        buffer.queued(&shard) == 1 && buffer.state(&shard) == ShardState::Buffering
    });
    assert_eq!(buffer.stats(&shard).drains_paused, 1);

    // The back-off ends by itself after `drain_backoff` (1 s by default).
    clock.advance(std::time::Duration::from_secs(1));
    buffer.tick_now();
    drop(worker.join().unwrap());
    assert_eq!(buffer.state(&shard), ShardState::Idle);
    assert_eq!(buffer.free_slots(), 1000);
    buffer.check_invariants().unwrap();
}

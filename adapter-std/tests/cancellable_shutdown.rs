//! `FailoverBuffer::begin_shutdown` as a handle: progress, cancel, blocking waits (issue 11
//! part 3), on a manual clock.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{eventually, manual, stamp, within};
use failover_buffer_std::plan::DrainError;
use failover_buffer_std::{Config, FailoverCause, ShardState, ShutdownEnd, ShutdownPhase};

#[test]
fn a_cancelled_shutdown_keeps_held_requests_which_the_new_primary_then_releases() {
    within(Duration::from_secs(60), || {
        let (buffer, _clock) = manual(common::enabled());
        let shard = buffer.register_shard("commerce", "0");
        buffer.health(&shard, stamp(1, 1, true)).unwrap();
        let (released_tx, released) = mpsc::channel();
        let mut workers = Vec::new();
        for i in 0..3 {
            workers.push({
                let (buffer, shard, released_tx) =
                    (buffer.clone(), shard.clone(), released_tx.clone());
                thread::spawn(move || {
                    let guard = buffer
                        .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                        .unwrap()
                        .expect("released to retry");
                    released_tx.send(guard).unwrap();
                })
            });
            eventually("queued", || buffer.queued(&shard) == i + 1);
        }

        let shutdown = buffer.begin_shutdown();
        let first = released.recv().unwrap();
        let progress = shutdown.progress().unwrap();
        assert_eq!(progress.phase, Some(ShutdownPhase::ReleaseQueued));
        assert_eq!((progress.queued, progress.retrying), (2, 1));
        assert_eq!(shutdown.wait_timeout(Duration::from_millis(20)), None);

        let waiter = {
            let shutdown = shutdown.clone();
            thread::spawn(move || shutdown.wait())
        };
        shutdown.cancel().unwrap();
        assert_eq!(waiter.join().unwrap(), ShutdownEnd::Cancelled);
        assert!(!buffer.is_closed());
        assert_eq!(buffer.state(&shard), ShardState::Buffering);
        drop(first);
        assert_eq!(buffer.queued(&shard), 2, "the other two stay held");

        buffer.health(&shard, stamp(2, 2, true)).unwrap();
        for _ in 0..2 {
            drop(released.recv().unwrap());
        }
        for w in workers {
            w.join().unwrap();
        }
        eventually("idle", || buffer.state(&shard) == ShardState::Idle);
        assert_eq!(buffer.held_slots(), 0);
        assert_eq!(shutdown.cancel(), Err(DrainError::NotRunning));
    });
}

#[test]
fn the_grace_on_the_manual_clock_closes_the_buffer_while_a_retry_still_runs() {
    within(Duration::from_secs(60), || {
        let (buffer, clock) = manual(Config {
            shutdown_grace: Duration::from_secs(1),
            ..common::enabled()
        });
        let shard = buffer.register_shard("commerce", "0");
        let worker = {
            let (buffer, shard) = (buffer.clone(), shard.clone());
            thread::spawn(move || {
                buffer
                    .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                    .unwrap()
            })
        };
        eventually("queued", || buffer.queued(&shard) == 1);
        let shutdown = buffer.begin_shutdown();
        let guard = worker.join().unwrap().expect("released");
        assert_eq!(shutdown.end(), None);
        clock.advance(Duration::from_millis(999));
        buffer.tick_now();
        assert_eq!(shutdown.end(), None);
        clock.advance(Duration::from_millis(1));
        buffer.tick_now();
        assert_eq!(shutdown.wait(), ShutdownEnd::Closed);
        assert_eq!(buffer.held_slots(), 1, "the retry still runs");
        assert_eq!(shutdown.cancel(), Err(DrainError::Finished));
        drop(guard);
        assert_eq!(buffer.held_slots(), 0);
    });
}

#[test]
fn dropping_the_handle_does_not_cancel_and_shutdown_still_blocks_until_closed() {
    within(Duration::from_secs(60), || {
        let (buffer, _clock) = manual(common::enabled());
        let shard = buffer.register_shard("commerce", "0");
        let worker = {
            let (buffer, shard) = (buffer.clone(), shard.clone());
            thread::spawn(move || {
                buffer
                    .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                    .unwrap()
            })
        };
        eventually("queued", || buffer.queued(&shard) == 1);
        drop(buffer.begin_shutdown());
        let guard = worker.join().unwrap().expect("released");
        assert!(buffer.begin_shutdown().progress().is_some());
        drop(guard);
        assert_eq!(buffer.shutdown(), ShutdownEnd::Closed);
    });
}

//! Shutdown releases every held request, waits for their retries, and never strands one.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{eventually, manual, stamp, within};
use failover_buffer_std::{FailoverCause, StopReason};

#[test]
fn shutdown_releases_blocked_waiters_and_returns_once_their_retries_finish() {
    within(Duration::from_secs(60), || {
        let (buffer, _clock) = manual(common::enabled());
        let shard = buffer.register_shard("commerce", "0");
        buffer.health(&shard, stamp(1, 1, true)).unwrap();
        let (released_tx, released) = mpsc::channel();
        let (finish_tx, finish) = mpsc::channel::<()>();
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

        let closer = {
            let buffer = buffer.clone();
            thread::spawn(move || {
                buffer.shutdown();
                finish_tx.send(()).unwrap();
            })
        };
        // Released one at a time (drain concurrency 1); shutdown waits for each retry.
        for _ in 0..3 {
            let guard = released.recv().unwrap();
            assert!(!buffer.is_closed());
            assert!(
                finish.try_recv().is_err(),
                "shutdown returned with a retry running"
            );
            drop(guard);
        }
        finish.recv().unwrap();
        closer.join().unwrap();
        for w in workers {
            w.join().unwrap();
        }

        assert!(buffer.is_closed());
        assert_eq!(buffer.stats(&shard).stops[StopReason::Shutdown], 1);
        assert_eq!(buffer.free_slots(), 1000);
        // After shutdown nothing is held: failover errors proceed unbuffered.
        assert!(
            buffer
                .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                .unwrap()
                .is_none()
        );
        buffer.shutdown();
    });
}

//! Episode events, on a channel per subscriber, sent outside the lock. Issue 12, item 4.

mod common;

use std::sync::mpsc::Receiver;
use std::thread;
use std::time::Duration;

use common::{eventually, manual, stamp, within};
use failover_buffer_std::{EpisodeEvent, FailoverCause, StopReason};

fn received(events: &Receiver<EpisodeEvent>) -> Vec<EpisodeEvent> {
    events.try_iter().collect()
}

#[test]
fn an_episode_is_announced_step_by_step_in_order() {
    let (buffer, clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    let id = shard.id();
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    let events = buffer.events();
    let request = {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        thread::spawn(move || {
            let guard = buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent));
            drop(guard);
        })
    };
    eventually("held", || buffer.queued(&shard) == 1);
    // Sent by the request's thread once it released the lock: wait for it.
    assert_eq!(
        events.recv_timeout(Duration::from_secs(10)),
        Ok(EpisodeEvent::FailoverStarted {
            shard: id,
            cause: FailoverCause::Reparent
        })
    );
    clock.advance(Duration::from_secs(2));
    buffer.health(&shard, stamp(2, 2, true)).unwrap();
    request.join().unwrap();
    buffer.shutdown();
    assert_eq!(
        received(&events),
        [
            EpisodeEvent::BufferingStopped {
                shard: id,
                reason: StopReason::NewPrimarySeen,
                duration: Duration::from_secs(2)
            },
            EpisodeEvent::DrainStarted {
                shard: id,
                queued: 1
            },
            EpisodeEvent::DrainFinished {
                shard: id,
                duration: Duration::ZERO
            },
            EpisodeEvent::Closed,
        ]
    );
}

/// Events leave after the lock is released: a subscriber may call back into the buffer.
#[test]
fn a_subscriber_reacting_to_an_event_may_call_back_into_the_buffer() {
    within(Duration::from_secs(20), || {
        let (buffer, clock) = manual(common::enabled());
        let shard = buffer.register_shard("commerce", "0");
        let events = buffer.events();
        let watcher = {
            let (buffer, shard) = (buffer.clone(), shard.clone());
            thread::spawn(move || {
                let event = events.recv().unwrap();
                // Vitess's MarkShardNotServing: the router reports the primary not serving.
                buffer.health(&shard, stamp(1, 1, false)).unwrap();
                event
            })
        };
        let _ = buffer.wait_for_failover_end_timeout(
            &shard,
            Some(FailoverCause::Reparent),
            failover_buffer_std::Clock::now(&*clock),
        );
        assert!(matches!(
            watcher.join().unwrap(),
            EpisodeEvent::FailoverStarted { .. }
        ));
    });
}

#[test]
fn a_dropped_receiver_ends_its_subscription_only() {
    let (buffer, clock) = manual(common::enabled());
    let shard = buffer.register_shard("commerce", "0");
    let kept = buffer.events();
    drop(buffer.events());
    let _ = buffer.wait_for_failover_end_timeout(
        &shard,
        Some(FailoverCause::Reparent),
        failover_buffer_std::Clock::now(&*clock),
    );
    assert_eq!(received(&kept).len(), 1);
}

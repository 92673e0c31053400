//! A full buffer makes room by failing the shard's oldest request; a shard with nothing to
//! evict is refused.

mod common;

use std::thread;

use common::{eventually, manual, stamp};
use failover_buffer_std::{BufferError, Config, EvictReason, FailoverCause, SkipReason};

#[test]
fn a_full_buffer_evicts_the_oldest_request_of_the_same_shard() {
    let (buffer, _clock) = manual(Config {
        enabled: true,
        size: 2,
        ..Config::default()
    });
    let shard = buffer.register_shard("commerce", "0");
    let other = buffer.register_shard("commerce", "1");
    buffer.health(&shard, stamp(1, 1, true)).unwrap();
    buffer.health(&other, stamp(2, 1, true)).unwrap();

    let mut workers = Vec::new();
    for i in 0..3 {
        workers.push({
            let (buffer, shard) = (buffer.clone(), shard.clone());
            thread::spawn(move || {
                buffer
                    .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                    .map(|guard| guard.is_some())
            })
        });
        // The third request takes the first one's slot.
        eventually("queued", || buffer.queued(&shard) == (i + 1).min(2));
        if i == 2 {
            eventually("oldest evicted", || workers[0].is_finished());
        }
    }
    let mut workers = workers.into_iter();
    assert_eq!(
        workers.next().unwrap().join().unwrap(),
        Err(BufferError::Evicted)
    );
    assert_eq!(buffer.stats(&shard).evicted[EvictReason::BufferFull], 1);

    // Another shard's failover cannot take this shard's slots: it is refused at once.
    assert_eq!(
        buffer
            .wait_for_failover_end(&other, Some(FailoverCause::Reparent))
            .map(|guard| guard.is_some()),
        Err(BufferError::BufferFull)
    );
    assert_eq!(buffer.stats(&other).skipped[SkipReason::BufferFull], 1);

    buffer.health(&shard, stamp(3, 2, true)).unwrap();
    for w in workers {
        assert_eq!(w.join().unwrap(), Ok(true));
    }
    assert_eq!(buffer.free_slots(), 2);
    buffer.check_invariants().unwrap();
}

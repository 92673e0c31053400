//! A waker is the executor's code, not ours: one that runs a task, or feeds the buffer an
//! input, the moment it is woken must find no lock of the buffer's held.
//!
//! A deadlock ends this test binary with exit code 101 after 20 s rather than hanging it.

mod support;

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use failover_buffer_tokio::{FailoverBuffer, FailoverCause, HealthStamp, PrimaryId, Shard};
use support::{config, serving};

/// A waker that, when woken, reports a not-serving stamp for another shard: an input that
/// starts an episode there, and so sends an episode event.
struct FeedsTheBuffer {
    buffer: FailoverBuffer,
    other: Shard,
    woken: Mutex<Option<mpsc::Sender<()>>>,
}

impl Wake for FeedsTheBuffer {
    fn wake(self: Arc<Self>) {
        let down = HealthStamp {
            primary: PrimaryId(1),
            term: 1,
            serving: false,
        };
        self.buffer
            .health(&self.other, down)
            .expect("the other shard is registered");
        if let Some(tx) = self.woken.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }
}

#[tokio::test]
async fn a_waker_that_feeds_the_buffer_an_input_while_events_are_watched_does_not_deadlock() {
    let buffer = FailoverBuffer::new(config()).expect("valid config");
    let mut events = buffer.events();
    let shard = buffer.register_shard("ks", "-80");
    let other = buffer.register_shard("ks", "80-");
    buffer.health(&shard, serving(1, 1)).unwrap();
    buffer.health(&other, serving(1, 1)).unwrap();

    let (tx, woken) = mpsc::channel();
    let waker = Waker::from(Arc::new(FeedsTheBuffer {
        buffer: buffer.clone(),
        other: other.clone(),
        woken: Mutex::new(Some(tx)),
    }));
    let mut held = pin!(buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent)));
    assert!(
        held.as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending(),
        "the failover error is held"
    );

    // The new primary's stamp releases the request (an input with episode events) from a
    // thread of its own, so that a deadlock fails the test instead of hanging it.
    let releaser = buffer.clone();
    let released = shard.clone();
    std::thread::spawn(move || releaser.health(&released, serving(2, 2)));
    if woken.recv_timeout(Duration::from_secs(20)).is_err() {
        // Unwinding would drop the held future, which takes the deadlocked lock and hangs:
        // end the test binary instead.
        eprintln!("deadlock: the waker's input waited for a lock its own release held");
        std::process::exit(101);
    }

    assert!(
        held.as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    );
    assert!(
        std::iter::from_fn(|| events.try_recv().ok()).count() >= 2,
        "both shards' episodes were announced"
    );
}

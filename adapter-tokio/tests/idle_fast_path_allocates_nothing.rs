//! The zero-cost idle path: a first attempt on a shard that is not failing over
//! allocates nothing, through `wait_for_failover_end` or `first_attempt_proceeds`. A test binary of its own, because the counting allocator it links
//! replaces the global allocator of the whole binary (it counts per thread, so the harness's
//! own threads do not disturb the count).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use failover_buffer_tokio::{Config, FailoverBuffer, FailoverCause, HealthStamp, PrimaryId};

/// Polls a future once, as a runtime would, with a waker that does nothing.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    pin!(future).poll(&mut Context::from_waker(Waker::noop()))
}

#[tokio::test(start_paused = true)]
async fn a_first_attempt_on_an_idle_shard_allocates_nothing() {
    let buffer = FailoverBuffer::new(Config {
        enabled: true,
        ..Config::default()
    })
    .unwrap();
    let shard = buffer.register_shard("commerce", "0");
    // A whole failover first, so the shard's flag has been set and cleared again.
    let stamp = |primary, term| HealthStamp {
        primary: PrimaryId(primary),
        term,
        serving: true,
    };
    buffer.health(&shard, stamp(1, 1)).unwrap();
    let held = tokio::spawn({
        let (buffer, shard) = (buffer.clone(), shard.clone());
        async move {
            let cause = Some(FailoverCause::Reparent);
            buffer
                .wait_for_failover_end(&shard, cause)
                .await
                .map(|g| g.is_some())
        }
    });
    tokio::task::yield_now().await;
    buffer.health(&shard, stamp(2, 2)).unwrap();
    assert_eq!(held.await.unwrap(), Ok(true));

    // The counter is live: an allocation is seen.
    let control = allocation_counter::measure(|| drop(std::hint::black_box(Box::new(1u64))));
    assert_eq!(control.count_total, 1);

    let mut proceeded = 0;
    let idle = allocation_counter::measure(|| {
        for _ in 0..10_000 {
            if let Poll::Ready(Ok(None)) = poll_once(buffer.wait_for_failover_end(&shard, None)) {
                proceeded += 1;
            }
        }
    });
    assert_eq!(proceeded, 10_000);
    assert_eq!(idle.count_total, 0, "{idle:?}");

    // The same check with no future: `first_attempt_proceeds`.
    let mut proceeded = 0;
    let check = allocation_counter::measure(|| {
        for _ in 0..10_000 {
            if buffer.first_attempt_proceeds(std::hint::black_box(&shard)) {
                proceeded += 1;
            }
        }
    });
    assert_eq!(proceeded, 10_000);
    assert_eq!(check.count_total, 0, "{check:?}");
}

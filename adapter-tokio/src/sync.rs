//! The synchronisation the buffer's tasks share, and their clock: the standard library's
//! `Mutex` and atomics and tokio's clock, or [loom](https://docs.rs/loom)'s mocks and a model
//! clock when built with `--cfg loom`, so the waiter map's hand-off and the driver's
//! notification are checked under every interleaving (see `loom_tests`).
//!
//! Only what this crate synchronises through goes here: the state lock (the waiter map lives
//! behind it), the event-order lock, the `keepers_gone`, `timer_lost` and buffering flags,
//! the handoff's release marks (read by a released request's future without the lock),
//! and the `Notify`s that wake the driver and the shutdown's waiters. Under loom, `Notify`
//! is tokio's wrapped so that loom sees the ordering tokio's gives (see [`Notify`]); the
//! `Arc`s stay the standard ones. Without `--cfg loom` these are plain re-exports and an
//! inlined call: no cost.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use tokio::sync::Notify;

#[cfg(loom)]
pub(crate) use loom_notify::Notify;

/// tokio's `Notify`, with the happens-before edge it gives made visible to loom.
///
/// tokio's `Notify` runs unchanged under loom (its waker is loom's, so a wake-up unblocks the
/// loom thread that waits), but its atomics are not loom's, so loom would not know that what
/// a thread wrote before `notify_one` is visible to the task its notification completes, and
/// would report stale reads tokio rules out. Each notification therefore also does a release
/// read-modify-write of a loom atomic, and each completed wait an acquire one: the edge tokio
/// guarantees, now modelled.
#[cfg(loom)]
mod loom_notify {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use loom::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    pub(crate) struct Notify {
        inner: tokio::sync::Notify,
        edge: AtomicUsize,
    }

    /// The future of [`Notify::notified`].
    pub(crate) struct Notified<'a> {
        inner: Pin<Box<tokio::sync::futures::Notified<'a>>>,
        edge: &'a AtomicUsize,
    }

    impl Notify {
        pub(crate) fn new() -> Notify {
            Notify {
                inner: tokio::sync::Notify::new(),
                edge: AtomicUsize::new(0),
            }
        }

        pub(crate) fn notify_one(&self) {
            self.edge.fetch_add(1, Ordering::Release);
            self.inner.notify_one();
        }

        pub(crate) fn notify_waiters(&self) {
            self.edge.fetch_add(1, Ordering::Release);
            self.inner.notify_waiters();
        }

        pub(crate) fn notified(&self) -> Notified<'_> {
            Notified {
                inner: Box::pin(self.inner.notified()),
                edge: &self.edge,
            }
        }
    }

    impl Notified<'_> {
        pub(crate) fn enable(self: Pin<&mut Self>) -> bool {
            self.get_mut().inner.as_mut().enable()
        }
    }

    impl Future for Notified<'_> {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let this = self.get_mut();
            let poll = this.inner.as_mut().poll(cx);
            if poll.is_ready() {
                this.edge.fetch_add(0, Ordering::Acquire);
            }
            poll
        }
    }
}

/// Now, on tokio's clock (which `tokio::time::pause` controls in tests).
#[cfg(not(loom))]
#[inline]
pub(crate) fn now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// Now, on the loom checks' model clock: a fixed base plus the time the model has let pass
/// (`model_clock::set`), the same for every thread. Real time never leaks into a model, so
/// its runs are deterministic, as loom requires.
#[cfg(loom)]
pub(crate) fn now() -> tokio::time::Instant {
    model_clock::now()
}

#[cfg(loom)]
pub(crate) mod model_clock {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// Nanoseconds since [`base`]. A standard atomic: loom runs a model's threads one at a
    /// time on one OS thread, and the model moves it only under the buffer's lock.
    static NANOS: AtomicU64 = AtomicU64::new(0);

    fn base() -> tokio::time::Instant {
        static BASE: OnceLock<tokio::time::Instant> = OnceLock::new();
        *BASE.get_or_init(|| tokio::time::Instant::from_std(std::time::Instant::now()))
    }

    pub(crate) fn now() -> tokio::time::Instant {
        base() + Duration::from_nanos(NANOS.load(Ordering::SeqCst))
    }

    /// Sets the model's time to `since_base` after the base.
    #[cfg(test)]
    pub(crate) fn set(since_base: Duration) {
        NANOS.store(
            u64::try_from(since_base.as_nanos()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }
}

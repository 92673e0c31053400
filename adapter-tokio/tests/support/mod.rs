//! What the adapter's tests share: a config, health stamps, and a scripted client.
#![allow(dead_code)] // each test binary uses its own part

use std::sync::{Arc, Mutex};
use std::time::Duration;

use failover_buffer_tokio::{
    BufferError, Config, FailoverBuffer, FailoverCause, HealthStamp, PrimaryId, Shard,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Buffering on, ten slots, Vitess's timings.
pub(crate) fn config() -> Config {
    Config {
        enabled: true,
        size: 10,
        ..Config::default()
    }
}

pub(crate) fn serving(primary: u64, term: u64) -> HealthStamp {
    HealthStamp {
        primary: PrimaryId(primary),
        term,
        serving: true,
    }
}

/// Lets every task that can run, run, without moving the paused clock.
pub(crate) async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Moves the paused clock by `d`, firing due timers, then lets the woken tasks run.
pub(crate) async fn advance(d: Duration) {
    tokio::time::advance(d).await;
    settle().await;
}

/// What a client saw, in the order the clients saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// Client `n` was released to retry.
    Released(usize),
    /// Client `n` finished its retry (dropped its guard).
    Done(usize),
    /// Client `n` was told to proceed without waiting.
    Proceeded(usize),
    /// Client `n` got an error.
    Failed(usize, BufferError),
}

pub(crate) type Log = Arc<Mutex<Vec<Event>>>;

/// A client whose previous attempt failed over: it asks the buffer with the cause and, if
/// released, keeps its retry "running" until the test calls [`Client::finish`].
pub(crate) struct Client {
    pub(crate) join: JoinHandle<()>,
    finish: Option<oneshot::Sender<()>>,
}

impl Client {
    pub(crate) fn spawn(buffer: &FailoverBuffer, shard: &Shard, n: usize, log: &Log) -> Client {
        let (finish, finished) = oneshot::channel::<()>();
        let (buffer, shard, log) = (buffer.clone(), shard.clone(), Arc::clone(log));
        let join = tokio::spawn(async move {
            let answer = buffer
                .wait_for_failover_end(&shard, Some(FailoverCause::Reparent))
                .await;
            let event = match &answer {
                Ok(Some(_)) => Event::Released(n),
                Ok(None) => Event::Proceeded(n),
                Err(e) => Event::Failed(n, *e),
            };
            log.lock().unwrap().push(event);
            if let Ok(Some(guard)) = answer {
                // The retry runs until the test says it has its answer.
                let _ = finished.await;
                drop(guard);
                log.lock().unwrap().push(Event::Done(n));
            }
        });
        Client {
            join,
            finish: Some(finish),
        }
    }

    /// The retry got its answer: the client drops its guard.
    pub(crate) async fn finish(&mut self) {
        if let Some(finish) = self.finish.take() {
            let _ = finish.send(());
        }
        settle().await;
    }
}

pub(crate) fn events(log: &Log) -> Vec<Event> {
    log.lock().unwrap().clone()
}

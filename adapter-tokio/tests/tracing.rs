//! The `tracing` feature: a failover's state changes are logged at INFO, in order.
#![cfg(feature = "tracing")]

mod support;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use failover_buffer_tokio::FailoverBuffer;
use support::{Client, Log, advance, config, serving, settle};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Keeps the message of every INFO event.
#[derive(Clone, Default)]
struct InfoMessages(Arc<Mutex<Vec<String>>>);

struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for InfoMessages {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::INFO
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        self.0.lock().unwrap().push(message);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[tokio::test(start_paused = true)]
async fn a_failover_logs_its_state_changes_at_info() {
    let messages = InfoMessages::default();
    // A current-thread runtime: every task, the driver included, logs on this thread.
    let _default = tracing::subscriber::set_default(messages.clone());
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, serving(1, 1)).unwrap();
    let log = Log::default();
    let mut client = Client::spawn(&buffer, &shard, 0, &log);
    settle().await;
    advance(Duration::from_secs(1)).await;
    buffer.health(&shard, serving(2, 2)).unwrap();
    client.finish().await;
    buffer.shutdown().await;

    assert_eq!(
        *messages.0.lock().unwrap(),
        [
            "failover started: buffering requests",
            "failover ended: buffering stopped",
            "draining buffered requests",
            "drain finished",
            "failover buffer shutting down: releasing every held request",
            "failover buffer closed",
        ]
    );
}

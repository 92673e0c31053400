//! The synchronisation primitives of the waiter handshake and the timer thread: the standard
//! library's, or [loom](https://docs.rs/loom)'s mocks when built with `--cfg loom`, so the
//! same code is checked under every interleaving of its threads (see `loom_tests`).
//!
//! Only what the buffer's threads synchronise with goes through here: the state lock, each
//! waiter's slot and condvar, the timer thread, the handles' reference counts and the shards'
//! buffering flags. The public surface keeps the standard types (a [`Clock`](crate::Clock)
//! is a `std::sync::Arc`, events arrive on a `std::sync::mpsc` channel), so the shim changes
//! nothing a user sees. Without `--cfg loom` these are plain re-exports: no cost.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread;

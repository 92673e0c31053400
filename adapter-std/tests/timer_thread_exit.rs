//! No timer thread is left behind: it exits when the last handle or guard is dropped (which
//! joins it), and once shutdown has finished. Alone in its test binary, so the count of timer
//! threads in this process is this test's.

mod common;

use std::sync::Arc;

use common::eventually;
use failover_buffer_std::{FailoverBuffer, FailoverCause, SystemClock};

/// Threads of this process named like the timer thread (Linux truncates names to 15 bytes).
#[cfg(target_os = "linux")]
fn timer_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "failover-buffer")
        .count()
}

#[cfg(not(target_os = "linux"))]
fn timer_threads() -> usize {
    0
}

#[test]
fn the_timer_thread_exits_when_the_last_handle_is_dropped_or_after_shutdown() {
    let clock = Arc::new(SystemClock);
    let buffer = FailoverBuffer::with_clock(common::enabled(), clock.clone()).unwrap();
    let clone = buffer.clone();
    let shard = buffer.register_shard("commerce", "0");
    if cfg!(target_os = "linux") {
        // The thread names itself once it runs.
        eventually("timer thread running", || timer_threads() == 1);
    }

    // A released retry's guard outlives every handle: it can still be held again (through
    // `retry_failed`), so it keeps the timer thread.
    let (buffer_for_waiter, shard_for_waiter) = (buffer.clone(), shard.clone());
    let waiter = std::thread::spawn(move || {
        buffer_for_waiter
            .wait_for_failover_end(&shard_for_waiter, Some(FailoverCause::Reparent))
            .unwrap()
            .expect("released when the failover ends")
    });
    eventually("queued", || buffer.queued(&shard) == 1);
    buffer.health(&shard, common::stamp(2, 2, true)).unwrap();
    let guard = waiter.join().unwrap();

    drop(buffer);
    drop(clone);
    if cfg!(target_os = "linux") {
        assert_eq!(timer_threads(), 1, "the guard keeps the timer");
    }
    // Dropping the last guard joined the timer thread and freed the buffer.
    drop(guard);
    assert_eq!(timer_threads(), 0);
    assert_eq!(Arc::strong_count(&clock), 1);

    // Shutdown ends the thread while handles still exist.
    let buffer = FailoverBuffer::new(common::enabled()).unwrap();
    buffer.shutdown();
    eventually("timer thread gone after shutdown", || timer_threads() == 0);
    drop(buffer);
}

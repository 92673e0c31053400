//! `Buffer::cancel_shutdown` allocates nothing, however many requests are queued and however
//! many times a shutdown is begun and called off (issue 11: O(1) apart from the actions it
//! emits, no allocation). A counting allocator checks it; it is the only test in this
//! binary, so no other test's allocations are counted.
#![allow(unsafe_code)] // a global allocator cannot be written without it

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use failover_buffer::{Action, Admission, Buffer, Config, FailoverCause, ShardState, Timestamp};

struct Counting;

thread_local! {
    /// Allocations made by this thread: the test thread's own, so the test harness's other
    /// threads (which may allocate while a loaded machine runs the test slowly) are not
    /// counted.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: a thread being torn down has no counter left, and is not the test's.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn cancel_shutdown_with_many_queued_allocates_nothing() {
    const QUEUED: usize = 20_000;
    let mut buffer = Buffer::new(Config {
        enabled: true,
        size: QUEUED + 1,
        ..Config::default()
    })
    .unwrap();
    let shard = buffer.register_shard("ks", "0");
    let _other = buffer.register_shard("ks", "1");
    let t = Timestamp::from_millis;
    for _ in 0..QUEUED {
        assert!(matches!(
            buffer.request(t(0), shard, Some(FailoverCause::Reparent)),
            Ok(Admission::Wait(_))
        ));
    }
    let drain = |buffer: &mut Buffer| {
        let mut n = 0;
        while buffer.poll_action().is_some() {
            n += 1;
        }
        while buffer.poll_shutdown_action().is_some() {}
        n
    };
    drain(&mut buffer);
    // A first cycle sizes the buffer's queues of actions and of stopped shards.
    buffer.shutdown(t(1));
    drain(&mut buffer);
    buffer.cancel_shutdown(t(1)).unwrap();
    drain(&mut buffer);

    let mut cancel_allocations = 0;
    let mut actions = 0;
    for round in 0..1_000u64 {
        buffer.shutdown(t(2 + round));
        drain(&mut buffer);
        let before = allocations();
        buffer.cancel_shutdown(t(2 + round)).unwrap();
        actions += drain(&mut buffer);
        cancel_allocations += allocations() - before;
    }
    assert_eq!(cancel_allocations, 0);
    // The loop did the work it claims: each cancel put the shard back, nothing lost.
    assert_eq!(actions, 1_000, "one DrainPaused per cancel");
    assert_eq!(buffer.shard_state(shard), Some(ShardState::Buffering));
    assert_eq!(buffer.queued(shard), Some(QUEUED - 1));
    assert_eq!(buffer.held_slots(), QUEUED);

    // The counter does count.
    let before = allocations();
    drop(std::hint::black_box(vec![Action::Closed; 4]));
    assert!(allocations() > before);
}

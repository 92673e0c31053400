//! The idle first-attempt path is on every primary request a router sends, so it must not
//! allocate (Vitess needed PR 19827 to get there). A counting allocator checks it; it is the
//! only test in this binary, so no other test's allocations are counted.
#![allow(unsafe_code)] // a global allocator cannot be written without it

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use failover_buffer::{Admission, Buffer, Config, Timestamp};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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
fn idle_first_attempt_allocates_nothing() {
    let mut buffer = Buffer::new(Config {
        enabled: true,
        ..Config::default()
    })
    .unwrap();
    let shards: Vec<_> = (0..8)
        .map(|i| buffer.register_shard("ks", &format!("{i}")))
        .collect();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for i in 0..10_000u64 {
        let shard = shards[(i % 8) as usize];
        let admission = buffer.request(Timestamp::from_nanos(i), shard, None);
        assert_eq!(admission, Ok(Admission::Proceed));
    }
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed) - before, 0);

    // The counter does count: the slow path's first queued request allocates the actions
    // queue.
    let cause = Some(failover_buffer::FailoverCause::Reparent);
    let _ = buffer.request(Timestamp::from_secs(1), shards[0], cause);
    assert!(ALLOCATIONS.load(Ordering::Relaxed) > before);
}

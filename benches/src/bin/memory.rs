//! Prints the heap cost of a held request, of a registered idle shard and of a shard that
//! fails over (alone, and at issue 16's scale: 100,000 shards, 1,000,000 held, three
//! spreads), and the allocations of the idle path. `benches/README.md` quotes its output.
//!
//! Run with `cargo run --release -p failover-buffer-benches --bin memory`. Every figure is
//! live heap bytes (or allocations) counted by dhat's global allocator, after minus before,
//! divided by the number of requests (or shards). A figure includes the amortised slack of
//! growable storage (a slab that doubled to 131,072 entries holds 100,000), because that
//! memory is really held.
//!
//! `MEMORY_N` sets the number of held requests (default 100,000); `MEMORY_SHARDS` and
//! `MEMORY_HELD` the scale figures' shards and held requests (100,000 and 1,000,000, issue
//! 16's set-up), held in 1,000, 10,000 and 100,000 of the shards in turn.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use failover_buffer::Admission;
use failover_buffer_benches::{CAUSE, Core, config, serving};
use failover_buffer_tokio::FailoverBuffer;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Live heap bytes and allocations made so far.
fn heap() -> (usize, u64) {
    let stats = dhat::HeapStats::get();
    (stats.curr_bytes, stats.total_blocks)
}

/// Prints one per-request figure in the form the README table quotes.
fn report(what: &str, bytes: usize, n: usize) {
    println!(
        "{what}: {bytes} bytes for {n} = {:.1} bytes each",
        bytes as f64 / n as f64
    );
}

/// The core alone: `n` requests queued in one shard. The router's tickets are not kept, so
/// the figure is the buffer's own state per request.
fn core_held(n: usize) {
    let mut core = Core::new(n, 1);
    let shard = core.shard;
    let (before, _) = heap();
    for _ in 0..n {
        black_box(core.wait(shard));
    }
    let (after, _) = heap();
    assert_eq!(core.buffer.queued(shard), Some(n));
    report("core: live heap per held request", after - before, n);
}

/// Registers `shards` shards on `buffer` (named as a large deployment names them,
/// `keyspace_N/-80`-style), each with a known serving primary.
fn register(buffer: &mut failover_buffer::Buffer, shards: usize) -> Vec<failover_buffer::ShardId> {
    let now = failover_buffer::Timestamp::from_secs(1);
    let ids: Vec<_> = (0..shards)
        .map(|i| {
            let keyspace = format!("keyspace_{}", i / 16);
            let shard = format!("{:02x}-{:02x}", (i % 16) * 16, (i % 16) * 16 + 16);
            buffer.register_shard(&keyspace, &shard)
        })
        .collect();
    for &id in &ids {
        buffer
            .health(now, id, serving(1))
            .expect("the first stamp is never stale");
    }
    ids
}

/// Live heap per registered idle shard, with `shards` registered, the tables grown by
/// doubling or (`reserve`) reserved up front.
fn core_idle_shards(shards: usize, reserve: bool) {
    let (before, _) = heap();
    let mut buffer = failover_buffer::Buffer::new(config(16, 16)).expect("the config is valid");
    if reserve {
        buffer.reserve_shards(shards);
    }
    let ids = register(&mut buffer, shards);
    let (registered, _) = heap();
    // The ids are the caller's, not the buffer's: counted out.
    let ids_bytes = ids.capacity() * size_of::<failover_buffer::ShardId>();
    let reserved = if reserve { ", reserved up front" } else { "" };
    report(
        &format!("core: live heap per registered idle shard, {shards} shards{reserved}"),
        registered - before - ids_bytes,
        shards,
    );
}

/// The out-of-line block a shard allocates when it first fails over: `n` shards each get
/// one held request, in a buffer whose slab already has room for them (it held `n`
/// requests on another shard, since cancelled), so the figure is the blocks alone. Then
/// each of those requests is cancelled: the first `Cancelled` sample of each shard
/// allocates that outcome's histogram.
fn core_shard_block(n: usize) {
    let now = failover_buffer::Timestamp::from_secs(1);
    let mut buffer = failover_buffer::Buffer::new(config(n, 16)).expect("the config is valid");
    let ids = register(&mut buffer, n + 1);
    let warm: Vec<_> = (0..n)
        .map(|_| match buffer.request(now, ids[n], Some(CAUSE)) {
            Ok(Admission::Wait(ticket)) => ticket,
            other => panic!("{other:?}"),
        })
        .collect();
    for ticket in warm {
        buffer.cancel(now, ticket).expect("the ticket is live");
    }
    while buffer.poll_action().is_some() {}
    let (before, _) = heap();
    // Each shard's start is an action: taken at once, so the actions queue does not grow.
    let held: Vec<_> = (0..n)
        .map(|i| {
            let admission = buffer.request(now, ids[i], Some(CAUSE));
            while buffer.poll_action().is_some() {}
            match admission {
                Ok(Admission::Wait(ticket)) => ticket,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    let (after, _) = heap();
    let tickets = held.capacity() * size_of::<failover_buffer::Ticket>();
    report(
        "core: the block a shard allocates at its first episode (counters, queue, episode, pause, Retried and failover histograms)",
        after - before - tickets,
        n,
    );
    let (before, _) = heap();
    for ticket in held {
        buffer.cancel(now, ticket).expect("the ticket is live");
        while buffer.poll_action().is_some() {}
    }
    let (after, _) = heap();
    report(
        "core: a further outcome's histogram, at its first sample (here Cancelled)",
        (after + tickets).saturating_sub(before),
        n,
    );
}

/// The core at scale: `shards` shards registered, then `held` requests held spread evenly
/// over the first `failing` of them (a failover of part of a region). Prints the live heap
/// per held request on top of the registered idle shards, and the total.
fn core_scale(shards: usize, held: usize, failing: usize) {
    let now = failover_buffer::Timestamp::from_secs(1);
    let (before, _) = heap();
    let mut buffer = failover_buffer::Buffer::new(config(held, 16)).expect("the config is valid");
    let ids = register(&mut buffer, shards);
    let (registered, _) = heap();
    let ids_bytes = ids.capacity() * size_of::<failover_buffer::ShardId>();
    for k in 0..held {
        let admission = buffer.request(now, ids[k % failing], Some(CAUSE));
        assert!(matches!(admission, Ok(Admission::Wait(_))), "{admission:?}");
        if k % 1024 == 1023 {
            while buffer.poll_action().is_some() {}
        }
    }
    while buffer.poll_action().is_some() {}
    let (after, _) = heap();
    assert_eq!(buffer.held_slots(), held);
    report(
        &format!(
            "core: live heap per held request, {held} held in {failing} of {shards} shards ({} each)",
            held / failing
        ),
        after - registered,
        held,
    );
    println!(
        "core:   total live heap with them: {} bytes ({:.1} MiB)",
        after - before - ids_bytes,
        (after - before - ids_bytes) as f64 / (1024.0 * 1024.0)
    );
}

/// The core's idle path: first attempts on an idle shard.
fn core_idle(n: usize) {
    let mut core = Core::new(16, 1);
    let (now, shard) = (core.now, core.shard);
    let (_, before) = heap();
    for _ in 0..n {
        let admission = core.buffer.request(black_box(now), black_box(shard), None);
        assert_eq!(black_box(admission), Ok(Admission::Proceed));
    }
    let (_, after) = heap();
    println!(
        "core: allocations on the idle path: {} for {n} requests",
        after - before
    );
}

/// The tokio adapter: `n` tasks, each held in `wait_for_failover_end`. The tasks are
/// spawned on a single-threaded runtime and counted before they first run (the task itself:
/// its header, its future and the run queue's growth) and again once every one is queued
/// (what holding adds: the waiter entry, the core's slab entry).
fn tokio_held(n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime starts");
    rt.block_on(async {
        let (empty, _) = heap();
        let buffer = FailoverBuffer::new(config(n, 16)).expect("the config is valid");
        let (created, _) = heap();
        let shard = buffer.register_shard("bench", "0");
        buffer
            .health(&shard, serving(1))
            .expect("the first stamp is never stale");
        // Let the driver task start, so its first poll is not counted below.
        tokio::task::yield_now().await;
        let future_size = size_of_val(&buffer.wait_for_failover_end(&shard, Some(CAUSE)));
        let (before, _) = heap();
        for _ in 0..n {
            let (buffer, shard) = (buffer.clone(), shard.clone());
            tokio::spawn(async move {
                let guard = buffer.wait_for_failover_end(&shard, Some(CAUSE)).await;
                drop(guard);
            });
        }
        let (spawned, _) = heap();
        while buffer.queued(&shard) < n {
            tokio::task::yield_now().await;
        }
        let (held, _) = heap();
        println!("tokio: the wait_for_failover_end future is {future_size} bytes");
        report("tokio: live heap per held task, in all", held - before, n);
        report(
            "tokio: the spawned task itself, before its first poll",
            spawned - before,
            n,
        );
        report("tokio: held beyond the task itself", held - spawned, n);
        // The waiter table is reserved for the buffer's whole size when it is made, so its
        // slots are paid at creation rather than by each request.
        report(
            "tokio: the buffer at creation (waiter table reserved for its size), a slot",
            created - empty,
            n,
        );
        report(
            "tokio: held beyond the task, the reserved slot included",
            held - spawned + created - empty,
            n,
        );
        // Release them all, and let every task finish.
        buffer.health(&shard, serving(2)).expect("terms only rise");
        while buffer.held_slots() > 0 {
            tokio::task::yield_now().await;
        }
    });
}

/// The adapters' idle path: first attempts on an idle shard, polled (tokio) or called (std).
fn adapters_idle(n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime starts");
    let _entered = rt.enter();
    let buffer = FailoverBuffer::new(config(16, 1)).expect("the config is valid");
    let shard = buffer.register_shard("bench", "0");
    let mut context = Context::from_waker(Waker::noop());
    let (_, before) = heap();
    for _ in 0..n {
        let wait = pin!(buffer.wait_for_failover_end(black_box(&shard), None));
        assert!(matches!(wait.poll(&mut context), Poll::Ready(Ok(None))));
    }
    let (_, after) = heap();
    println!(
        "tokio: allocations on the idle path: {} for {n} requests",
        after - before
    );

    let buffer =
        failover_buffer_std::FailoverBuffer::new(config(16, 1)).expect("the config is valid");
    let shard = buffer.register_shard("bench", "0");
    let (_, before) = heap();
    for _ in 0..n {
        let guard = buffer.wait_for_failover_end(black_box(&shard), None);
        assert!(matches!(guard, Ok(None)));
    }
    let (_, after) = heap();
    println!(
        "std: allocations on the idle path: {} for {n} requests",
        after - before
    );
}

fn main() {
    let n = std::env::var("MEMORY_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let _profiler = dhat::Profiler::builder().testing().build();
    core_idle(n);
    adapters_idle(n);
    core_held(n);
    tokio_held(n);
    let shards = std::env::var("MEMORY_SHARDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let held = std::env::var("MEMORY_HELD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    core_idle_shards(shards, false);
    core_idle_shards(shards, true);
    core_shard_block(10_000);
    for failing in [1_000, 10_000, 100_000] {
        core_scale(shards, held, failing.min(shards));
    }
}

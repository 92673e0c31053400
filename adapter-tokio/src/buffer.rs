//! The handle a router holds: [`FailoverBuffer`] and its [`Shard`]s.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use failover_buffer::{
    Buffer, BufferError, Config, ConfigError, FailoverCause, HealthStamp, InputError, InputStats,
    ShardId, ShardState, ShardStats, TopologyEvent,
};

use crate::driver;
use crate::shared::{Keeper, ShardCell, Shared, Touched};
use crate::sync::AtomicBool;
use crate::wait::{Admit, Ask, RetryGuard, Wait};
use failover_buffer::EpisodeEvent;

/// A failover buffer for any number of shards, driven by tokio.
///
/// Cloning is cheap (one reference count) and every clone is the same buffer.
///
/// # Lifecycle
///
/// * **The timer.** [`new`](Self::new) spawns one driver task on the current runtime; it
///   keeps the buffer's timer (windows, max failover duration, drain back-off). It lives
///   while anything can still hold a request: any `FailoverBuffer` clone or any
///   [`RetryGuard`] (a guard can be held again through
///   [`retry_failed`](RetryGuard::retry_failed)). It ends when the last of those is dropped,
///   or once [`shutdown`](Self::shutdown) has finished.
/// * **The last handle.** Dropping the last `FailoverBuffer` clone does not shut the buffer
///   down: a request still held (through `retry_failed`) keeps its timers, and is released by
///   its window or the max failover duration, whichever comes first (no health input can
///   arrive any more). Call [`shutdown`](Self::shutdown) first to release everything at once.
/// * **The runtime.** A buffer belongs to the runtime it was made in: its timer runs there.
///   It may be used from any thread and any other runtime while that runtime lives. If that
///   runtime shuts down first, the buffer shuts itself down: every held request is released
///   (counted as a `Shutdown` stop), and every later request proceeds unbuffered, because no
///   timer could ever release it. The same happens if a metrics recorder or tracing
///   subscriber panics in the driver task (the panic is reported as any task's is).
/// * **Telemetry** (metrics, logs) never runs under the buffer's lock: what an input changed is
///   copied under the lock and sent after it.
///
/// See the [crate documentation](crate) for the calling pattern.
#[derive(Clone)]
pub struct FailoverBuffer {
    pub(crate) keeper: Arc<Keeper>,
}

/// A registered `keyspace/shard`, as returned by [`FailoverBuffer::register_shard`].
///
/// Keep it and pass it on every request: it carries the shard's dense id and its "buffering"
/// flag, so the idle fast path of
/// [`wait_for_failover_end`](FailoverBuffer::wait_for_failover_end) is one atomic load, with
/// no lookup and no lock. Cloning is one reference count. A `Shard` is meaningful only to
/// the buffer that issued it; another buffer treats it as an unknown shard.
#[derive(Clone)]
pub struct Shard {
    pub(crate) cell: Arc<ShardCell>,
}

impl Shard {
    /// The shard's id in the core [`Buffer`], dense from 0 in order of registration.
    pub fn id(&self) -> ShardId {
        self.cell.id
    }

    /// The keyspace name.
    pub fn keyspace(&self) -> &str {
        &self.cell.keyspace
    }

    /// The shard name within the keyspace.
    pub fn name(&self) -> &str {
        &self.cell.name
    }
}

impl fmt::Debug for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shard({}/{}, {:?})",
            self.cell.keyspace, self.cell.name, self.cell.id
        )
    }
}

impl fmt::Debug for FailoverBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (shards, held_slots, waiting, closed) = {
            let state = self.shared().lock();
            let state = &*state;
            let held = state.core.held_slots();
            (state.cells.len(), held, state.waiters.len(), state.closed)
        };
        f.debug_struct("FailoverBuffer")
            .field("shards", &shards)
            .field("held_slots", &held_slots)
            .field("waiting", &waiting)
            .field("closed", &closed)
            .field(
                "timer_lost",
                &self.shared().timer_lost.load(Ordering::Acquire),
            )
            .finish()
    }
}

/// Numbers buffers, so a [`Shard`] knows which one issued it.
static NEXT_BUFFER_ID: AtomicU64 = AtomicU64::new(0);

impl FailoverBuffer {
    /// A buffer with no shards, or the first problem with `config` (see
    /// [`Config::validate`]). Spawns the driver task that keeps the buffer's timer.
    ///
    /// Reserves the table of waiting requests for `config.size` of them up front (at most
    /// 262,144, 40 bytes each; address space only until a request first uses a slot, where
    /// the allocator maps large blocks lazily, as on Linux), so that no request waits behind
    /// another copying that table to grow it.
    ///
    /// Time is read from tokio's clock ([`tokio::time::Instant`]), from an origin taken now,
    /// so tests under `tokio::time::pause` (tokio's `test-util` feature) see exact,
    /// simulated time.
    ///
    /// The buffer belongs to the current runtime: see [Lifecycle](Self#lifecycle).
    ///
    /// # Panics
    ///
    /// At this call, with tokio's own messages: outside a tokio runtime, and in a runtime
    /// without the time driver ([`enable_time`](tokio::runtime::Builder::enable_time), which
    /// `enable_all`, `#[tokio::main]` and `#[tokio::test]` turn on). A buffer without a timer
    /// would hold requests and never release them by their window.
    #[track_caller]
    pub fn new(config: Config) -> Result<FailoverBuffer, ConfigError> {
        let core = Buffer::new(config)?;
        let id = NEXT_BUFFER_ID.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared::new(core, id));
        // Made here, in the caller's context, so that a missing runtime or time driver
        // panics now rather than inside a task nobody watches.
        let sleep = tokio::time::sleep_until(shared.instant(failover_buffer::Timestamp::ZERO));
        tokio::spawn(driver::run(Arc::clone(&shared), sleep));
        Ok(FailoverBuffer {
            keeper: Arc::new(Keeper { shared }),
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.keeper.shared
    }

    /// Registers `keyspace/shard`, or returns the shard already registered under that name.
    /// Its mode (enabled, dry-run, disabled) is fixed now, from the config.
    ///
    /// A cold-path call: register each shard once and keep the [`Shard`].
    pub fn register_shard(&self, keyspace: &str, shard: &str) -> Shard {
        let shared = self.shared();
        let mut report = crate::telemetry::Report::default();
        let shard = {
            let mut state = shared.lock();
            let id = state.core.register_shard(keyspace, shard);
            if let Some(cell) = state.cells.get(id.index()) {
                return Shard {
                    cell: Arc::clone(cell),
                };
            }
            let cell = Arc::new(ShardCell {
                buffering: AtomicBool::new(false),
                id,
                owner: shared.id,
                keyspace: keyspace.into(),
                name: shard.into(),
            });
            let state = &mut *state;
            state.telemetry.register(&state.core, &cell, &mut report);
            state.cells.push(Arc::clone(&cell));
            Shard { cell }
        };
        // The recorder and the subscriber run after the lock is released.
        report.emit();
        shard
    }

    /// The shard registered as `keyspace/shard`, if any.
    pub fn shard(&self, keyspace: &str, shard: &str) -> Option<Shard> {
        let state = self.shared().lock();
        let id = state.core.shard_id(keyspace, shard)?;
        state.cells.get(id.index()).map(|cell| Shard {
            cell: Arc::clone(cell),
        })
    }

    /// Call before sending a request to `shard`'s primary; returns once it may go.
    ///
    /// `cause` is `None` on a first attempt, or the [`FailoverCause`] the previous attempt
    /// failed with (the router classifies errors; other errors never reach the buffer).
    ///
    /// * `Ok(None)`: send the request now. This is the answer on a shard that is not
    ///   failing over; for a first attempt it costs one atomic load, with no lock and no
    ///   allocation.
    /// * `Ok(Some(guard))`: the request was held and is now released: send it now, and drop
    ///   the [`RetryGuard`] when its answer is in (that paces the drain).
    /// * `Err(e)`: return `e` to the client: the request was evicted for a newer one, the
    ///   buffer is full, or the shard was resharded away (re-plan it).
    ///
    /// A `shard` issued by another buffer proceeds unbuffered (`Ok(None)`), and the core
    /// counts it in [`InputStats::unknown_shards`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future is how a client gives up (a deadline, a closed connection), and
    /// nothing is lost:
    ///
    /// * dropped before its first poll: nothing happened; the buffer never saw the request;
    /// * dropped while the request is held: it leaves the queue and frees its slot at once
    ///   (counted as evicted, `ContextDone`, or as drained if its shard's drain had begun);
    /// * dropped after the buffer released it but before the future returned the
    ///   [`RetryGuard`] (the wake-up raced with the drop): the release is handed back as if
    ///   the retry had run and finished, so its slot is freed and the drain moves on to the
    ///   next request; no release is ever lost;
    /// * dropped after it returned: the future has nothing left; the guard, if any, is
    ///   yours.
    ///
    /// Re-creating the future after dropping it starts a new request at the back of the
    /// queue: the place in line is not kept.
    ///
    /// # The idle fast path
    ///
    /// A first attempt (`cause` is `None`) on a shard that is not buffering is answered by
    /// one atomic load made when this method is called, before any future is built: the
    /// future returned is then ready at its first poll, with no lock taken. Every other
    /// request reaches the buffer at the first poll, as described above. For the same check
    /// with no future at all, see [`first_attempt_proceeds`](Self::first_attempt_proceeds).
    #[inline]
    pub fn wait_for_failover_end<'a>(
        &'a self,
        shard: &'a Shard,
        cause: Option<FailoverCause>,
    ) -> impl Future<Output = Result<Option<RetryGuard>, BufferError>> + 'a {
        if cause.is_none() && self.first_attempt_proceeds(shard) {
            return Admit::Proceed;
        }
        Admit::Wait(Wait::new(&self.keeper, &shard.cell, Ask::Request(cause)))
    }

    /// The idle fast path on its own, with no future: `true` if a first attempt on `shard`
    /// may be sent now. It is the check
    /// [`wait_for_failover_end`](Self::wait_for_failover_end)`(shard, None)` makes before
    /// anything else (one atomic load: no lock, no allocation, nothing to poll or drop), for
    /// a router that wants the idle path at the cost of a plain load, as the blocking
    /// adapter's is.
    ///
    /// `false` means "ask": the shard is failing over (or was a moment ago), so call
    /// `wait_for_failover_end(shard, None)`, which holds the request or, if the failover has
    /// just ended, answers `Ok(None)` at once. A request that already failed with a failover
    /// error never takes this path: pass its cause to `wait_for_failover_end`, which starts
    /// or joins the shard's episode.
    ///
    /// The answer is the buffer's at the moment of the load; a failover seen an instant
    /// later is the same as the request having arrived an instant earlier. Nothing is
    /// recorded: a request sent on `true` is not counted anywhere, exactly as one answered
    /// `Ok(None)` by the fast path of `wait_for_failover_end` is not. A `shard` of another
    /// buffer is answered from its own buffer's flag (`false` then leads to
    /// `wait_for_failover_end`, which lets it proceed).
    ///
    /// ```
    /// use failover_buffer_tokio::{BufferError, Config, FailoverBuffer, RetryGuard, Shard};
    ///
    /// /// Before a request's first attempt: `None` to send it at once, or the guard of a
    /// /// request held through a failover and released.
    /// async fn admit(buffer: &FailoverBuffer, shard: &Shard) -> Result<Option<RetryGuard>, BufferError> {
    ///     if buffer.first_attempt_proceeds(shard) {
    ///         return Ok(None); // the shard is not failing over: no future, nothing to drop
    ///     }
    ///     buffer.wait_for_failover_end(shard, None).await
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() })?;
    /// let shard = buffer.register_shard("commerce", "0");
    /// assert!(buffer.first_attempt_proceeds(&shard));
    /// assert!(admit(&buffer, &shard).await?.is_none());
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn first_attempt_proceeds(&self, shard: &Shard) -> bool {
        !shard.cell.buffering.load(Ordering::Acquire)
    }

    /// What the health stream saw of `shard`'s primary. A serving primary with a newer term
    /// (or the same primary serving again after it was seen not serving) ends the shard's
    /// failover and starts the drain. A stamp with a term below the highest seen is refused
    /// with [`InputError::StaleHealthStamp`] and changes nothing.
    pub fn health(&self, shard: &Shard, stamp: HealthStamp) -> Result<(), InputError> {
        let shared = self.shared();
        let id = shared.shard_id(&shard.cell);
        shared.input(Touched::One(id), |state, now, _| {
            state.core.health(now, id, stamp)
        })
    }

    /// A topology change for `shard`: see [`TopologyEvent`].
    pub fn topology(&self, shard: &Shard, event: TopologyEvent) -> Result<(), InputError> {
        let shared = self.shared();
        let id = shared.shard_id(&shard.cell);
        shared.input(Touched::One(id), |state, now, _| {
            state.core.topology(now, id, event)
        })
    }

    /// A subscription to this buffer's [`EpisodeEvent`]s, for every shard, from now on.
    ///
    /// Events are sent after the buffer's lock is released, in the order the buffer took
    /// the steps. Each subscriber has its own queue of 1,024 events (hundreds of episodes); one that
    /// falls further behind loses the oldest and is told how many with
    /// [`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged). After
    /// [`EpisodeEvent::Closed`] nothing more is sent. While nobody subscribes, no event is
    /// kept.
    ///
    /// ```
    /// use failover_buffer_tokio::{Config, EpisodeEvent, FailoverBuffer, FailoverCause};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() }).unwrap();
    /// let shard = buffer.register_shard("commerce", "0");
    /// let mut events = buffer.events();
    /// // The router's watcher: mark the shard not-serving when a failover starts.
    /// let watcher = tokio::spawn(async move {
    ///     while let Ok(event) = events.recv().await {
    ///         if let EpisodeEvent::FailoverStarted { shard, cause } = event {
    ///             println!("{shard:?} failing over ({cause:?}): mark it not serving");
    ///             return event;
    ///         }
    ///     }
    ///     unreachable!("the buffer outlives this loop")
    /// });
    /// let held = buffer.wait_for_failover_end(&shard, Some(FailoverCause::Reparent));
    /// let _ = tokio::time::timeout(std::time::Duration::from_millis(1), held).await;
    /// assert!(matches!(watcher.await.unwrap(), EpisodeEvent::FailoverStarted { .. }));
    /// # }
    /// ```
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<EpisodeEvent> {
        self.shared().subscribed.store(true, Ordering::Release);
        self.shared().events.subscribe()
    }

    /// Whether a shutdown has finished: every held request has ended.
    pub fn is_closed(&self) -> bool {
        self.shared().lock().closed
    }

    /// `shard`'s counters, with Vitess's names (all zero for a shard of another buffer).
    pub fn stats(&self, shard: &Shard) -> ShardStats {
        let shared = self.shared();
        let id = shared.shard_id(&shard.cell);
        shared
            .lock()
            .core
            .shard_stats(id)
            .copied()
            .unwrap_or_default()
    }

    /// `shard`'s state (`Idle` for a shard of another buffer).
    pub fn state(&self, shard: &Shard) -> ShardState {
        let shared = self.shared();
        let id = shared.shard_id(&shard.cell);
        shared
            .lock()
            .core
            .shard_state(id)
            .unwrap_or(ShardState::Idle)
    }

    /// Requests held in `shard`'s queue (not those released whose retries run).
    pub fn queued(&self, shard: &Shard) -> usize {
        let shared = self.shared();
        let id = shared.shard_id(&shard.cell);
        shared.lock().core.queued(id).unwrap_or(0)
    }

    /// Counts of inputs the core refused (stale health stamps, unknown shards, ...).
    pub fn input_stats(&self) -> InputStats {
        self.shared().lock().core.input_stats()
    }

    /// Slots free for new requests, across all shards.
    pub fn free_slots(&self) -> usize {
        self.shared().lock().core.free_slots()
    }

    /// Slots held: requests queued, plus requests released whose [`RetryGuard`]s are alive.
    pub fn held_slots(&self) -> usize {
        self.shared().lock().core.held_slots()
    }

    /// Checks the core's invariants ([`Buffer::check_invariants`]). O(held + shards); for
    /// tests and debugging.
    pub fn check_invariants(&self) -> Result<(), failover_buffer::InvariantViolation> {
        self.shared().lock().core.check_invariants()
    }
}

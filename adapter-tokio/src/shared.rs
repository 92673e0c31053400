//! The state every handle shares: the core behind one mutex, the per-ticket waiters, the
//! per-shard flags, and the rule that wake-ups are delivered after the lock is released.

use std::sync::{Arc, OnceLock, PoisonError};
use std::task::Waker;

use failover_buffer::{Action, Buffer, ShardId, Ticket, TicketMap, Timestamp, Verdict};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::sync::{AtomicBool, AtomicU64, Mutex, MutexGuard, Notify, Ordering};
use crate::telemetry::{Report, Telemetry};
use failover_buffer::EpisodeEvent;

/// One registered shard, shared by every [`Shard`](crate::Shard) handle naming it.
#[derive(Debug)]
pub(crate) struct ShardCell {
    /// Mirrors "the core has this shard `Buffering`". Set on `FailoverStarted`,
    /// `DrainPaused` and `PauseStarted`, cleared on `StartDrain` (which follows a
    /// `PauseEnded` unless an episode still buffers), always under the state lock and in the core's
    /// order. It is a hint for the idle fast path only: a stale `true` costs a lock and the
    /// core answers `Proceed`; a stale `false` is indistinguishable from the request having
    /// arrived a moment earlier, before the failover was seen.
    pub(crate) buffering: AtomicBool,
    pub(crate) id: ShardId,
    /// The buffer that issued this shard (see `Shared::id`).
    pub(crate) owner: u64,
    pub(crate) keyspace: Arc<str>,
    pub(crate) name: Arc<str>,
}

/// What a waiting request's future finds when it looks up its ticket.
#[derive(Debug)]
pub(crate) enum Waiter {
    /// Still queued; the waker of the task to wake, once the future has been polled.
    Waiting(Option<Waker>),
    /// Woken by the core, not yet collected by the future: a failure, or a release to retry
    /// whose slot the [`Handoff`] has no room for.
    Woken(Verdict),
}

/// Releases to retry, handed to their futures without the lock.
///
/// A released request's future used to take the state lock a second time, after the
/// releasing input's, only to read its verdict: two critical sections a released request,
/// both queued for by every task of a drain on every worker. The releasing input (under the
/// lock) instead removes the waiter and marks the ticket's slot here; the woken future
/// reads the mark with one atomic load, and takes the lock only if it is not there (a
/// spurious poll, a failure, or a slot beyond this table).
///
/// A mark is the ticket's id plus one (0: none), so a mark left by an ended ticket is never
/// mistaken for a later ticket of its slot (ids never repeat), and no mark is ever cleared:
/// the future knows it has collected (its stage), and a future dropped before collecting
/// finds the mark under the lock and hands the ticket back (see [`State::abandon`]). Marks
/// are written only under the lock, so a reader holding the lock sees every one.
///
/// Slots are grouped in chunks of [`HANDOFF_CHUNK`], each allocated (zeroed) the first
/// time one of its slots is released: a buffer commits 4 KiB per 512 slots ever released,
/// not its whole size at creation. Slots beyond the buffer's size at creation (capped at
/// [`RESERVED_WAITERS`]) keep their verdicts in the waiter table, under the lock.
#[derive(Debug)]
pub(crate) struct Handoff {
    /// Slots `0..slots` have a place.
    slots: usize,
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
}

/// Slots in one chunk of the [`Handoff`]: 4 KiB of marks.
const HANDOFF_CHUNK: usize = 512;

impl Handoff {
    fn new(slots: usize) -> Handoff {
        Handoff {
            slots,
            chunks: (0..slots.div_ceil(HANDOFF_CHUNK))
                .map(|_| {
                    let chunk = OnceLock::new();
                    // Loom does not see the ordering `OnceLock` gives between the chunk's
                    // making and a reader's `get`, and would report the marks' creation as
                    // racing their loads: its models make every chunk with the buffer.
                    if cfg!(loom) {
                        let _ = chunk.set(Self::chunk());
                    }
                    chunk
                })
                .collect(),
        }
    }

    /// A chunk of marks, none set.
    fn chunk() -> Box<[AtomicU64]> {
        (0..HANDOFF_CHUNK).map(|_| AtomicU64::new(0)).collect()
    }

    /// The mark of `ticket`, or `None` if its slot has no place here (or for the one id
    /// whose mark would read as none).
    fn mark(&self, ticket: Ticket) -> Option<u64> {
        if ticket.slot() as usize >= self.slots {
            return None;
        }
        ticket.id().checked_add(1)
    }

    /// Whether `ticket`'s release to retry can be handed over here (its slot has a place).
    /// If not, the verdict stays in the waiter table.
    #[inline]
    fn has_place(&self, ticket: Ticket) -> bool {
        self.mark(ticket).is_some()
    }

    /// Under the lock: marks `ticket` released to retry. Does nothing if it has no place
    /// here ([`has_place`](Self::has_place)).
    #[inline]
    fn publish(&self, ticket: Ticket) {
        let slot = ticket.slot() as usize;
        let (Some(chunk), Some(mark)) = (self.chunks.get(slot / HANDOFF_CHUNK), self.mark(ticket))
        else {
            return;
        };
        let chunk = chunk.get_or_init(Self::chunk);
        chunk[slot % HANDOFF_CHUNK].store(mark, Ordering::Release);
    }

    /// Whether `ticket` has been released to retry through the handoff. With or without
    /// the lock; without it, a `false` may be stale (the caller then asks under the lock).
    pub(crate) fn released(&self, ticket: Ticket) -> bool {
        let slot = ticket.slot() as usize;
        let Some(mark) = self.mark(ticket) else {
            return false;
        };
        self.chunks
            .get(slot / HANDOFF_CHUNK)
            .and_then(OnceLock::get)
            .is_some_and(|chunk| chunk[slot % HANDOFF_CHUNK].load(Ordering::Acquire) == mark)
    }
}

/// Waiters by ticket, indexed by slot (the ticket checked): no hashing on the hot path.
pub(crate) type WaiterMap = TicketMap<Waiter>;

/// Which shards' counters an input may have changed, for the metrics exporter.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) enum Touched {
    /// Only this shard: the input named it, and its actions concern it alone.
    One(ShardId),
    /// Possibly any shard (a tick, a shutdown).
    All,
}

/// Everything behind the lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) core: Buffer,
    pub(crate) waiters: WaiterMap,
    /// Indexed by `ShardId::index()`.
    pub(crate) cells: Vec<Arc<ShardCell>>,
    /// The deadline the driver is sleeping towards, as it last read it, or the earliest one
    /// an input has woken it for since (it reads the deadline again when it runs). An input
    /// that moves the core's deadline earlier than this must wake the driver.
    pub(crate) armed: Option<Timestamp>,
    /// `Action::Closed` has been seen.
    pub(crate) closed: bool,
    pub(crate) telemetry: Telemetry,
}

/// What an input leaves to do once the lock is released: wake-ups, collected under the lock
/// and delivered by [`Wakeups::deliver`] after it, so a woken task never finds the lock still
/// held by its waker; and the telemetry [`Report`], which is user code.
#[derive(Default)]
pub(crate) struct Wakeups {
    /// The first task to wake, kept inline: an input of a drain releases one request (the
    /// retry that finished frees one drain place), and waking it allocates nothing.
    first: Option<Waker>,
    /// Any more (the start of a drain of higher concurrency, a shutdown, window expiries).
    /// Empty, and so unallocated, on the paths that wake at most one task.
    more: Vec<Waker>,
    driver: bool,
    closed: bool,
    /// Episode events, kept only while someone subscribes. Empty (unallocated) otherwise.
    events: Vec<EpisodeEvent>,
    want_events: bool,
    pub(crate) report: Report,
}

impl Wakeups {
    /// Adds a task to wake once the lock is released (`None`: its future was never polled).
    fn wake(&mut self, waker: Option<Waker>) {
        match (&self.first, waker) {
            (_, None) => {}
            (None, waker) => self.first = waker,
            (Some(_), Some(waker)) => self.more.push(waker),
        }
    }

    /// Sends the episode events, then wakes, then runs the telemetry: a recorder or
    /// subscriber that panics cannot lose a wake-up or an event.
    ///
    /// `order` is the event-order lock, taken before the state lock was released: events of
    /// successive inputs leave in the order the core produced them. It is released before
    /// any waker runs: a waker is the executor's code, and one that polls (or drops) a
    /// future of ours at once must find no lock of ours held.
    ///
    /// Most inputs have nothing to deliver (a request queued wakes nobody, and a buffer
    /// nobody watches has no events): each list is looked at only when it holds something,
    /// so that such an input pays a few tests here, not two vectors' iterators.
    pub(crate) fn deliver(self, shared: &Shared, order: Option<MutexGuard<'_, ()>>) {
        if !self.events.is_empty() {
            for event in self.events {
                // No receiver left is not an error: nobody is listening.
                let _ = shared.events.send(event);
            }
        }
        drop(order);
        if let Some(waker) = self.first {
            waker.wake();
            // `more` fills only once `first` is taken (see `wake`).
            if !self.more.is_empty() {
                for waker in self.more {
                    waker.wake();
                }
            }
        }
        if self.closed {
            shared.closed.notify_waiters();
        }
        if self.driver || self.closed {
            shared.driver.notify_one();
        }
        // A thread unwinding from a panic (a guard or the driver dropped by it) sends no
        // telemetry: a second panic from a hook would abort the process.
        if !self.report.is_empty() && !std::thread::panicking() {
            self.report.emit();
        }
    }
}

/// The shared heart of a [`FailoverBuffer`](crate::FailoverBuffer).
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Releases to retry, read by their futures without the lock (written under it).
    pub(crate) handoff: Handoff,
    /// Timestamp zero on tokio's clock.
    origin: Instant,
    /// Identifies this buffer, so a [`Shard`](crate::Shard) of another buffer is recognised.
    pub(crate) id: u64,
    /// Wakes the driver: the deadline moved earlier, the buffer closed, or the last
    /// `FailoverBuffer` handle went away. `notify_one` keeps a permit, so no wake-up is lost
    /// while the driver is busy.
    pub(crate) driver: Notify,
    /// Wakes `Shutdown` handles' futures once the core has closed or a shutdown was
    /// cancelled.
    pub(crate) closed: Notify,
    /// Every [`Keeper`] has been dropped: the driver stops.
    pub(crate) keepers_gone: AtomicBool,
    /// The driver task was dropped by its runtime's shutdown: the buffer shut itself down.
    pub(crate) timer_lost: AtomicBool,
    /// Episode events, for [`FailoverBuffer::events`](crate::FailoverBuffer::events).
    pub(crate) events: broadcast::Sender<EpisodeEvent>,
    /// Someone has called [`FailoverBuffer::events`](crate::FailoverBuffer::events): only
    /// then does an input ask `events` for its receiver count.
    pub(crate) subscribed: AtomicBool,
    /// Held from inside the state lock until an input's events are sent, so that events
    /// leave in the core's order without being sent under the state lock. Always taken
    /// after the state lock, never before it.
    event_order: Mutex<()>,
}

/// The most waiter slots reserved when a buffer is made: a table for the buffer's whole
/// `size` up to this many (at 40 bytes a slot, 10 MiB of address space), so that a failover
/// filling the buffer never grows the table, and never copies it under the lock while every
/// held request and the drain wait for that lock. Reserving is address space only where the
/// allocator maps large blocks lazily (Linux, macOS): a page is committed when a request
/// first uses a slot in it. A larger buffer grows the table (amortised) beyond this.
///
/// Measured in `benches/README.md` (issue 16): growing the table from 1,024 slots made the
/// slowest of 100,000 enqueues take 2.3–3.2 ms (the lock held through a copy of the table);
/// reserved, under 0.5 ms. Memory: the table is counted from the buffer's creation, not per
/// held request.
pub(crate) const RESERVED_WAITERS: usize = 1 << 18;

/// Events a subscriber may fall behind by before it sees `RecvError::Lagged`: hundreds of
/// episodes' worth (an episode is four to six events).
pub(crate) const EVENT_CAPACITY: usize = 1024;

/// What keeps a buffer's driver task (its timer) alive: owned by every
/// [`FailoverBuffer`](crate::FailoverBuffer) clone and every [`RetryGuard`](crate::RetryGuard),
/// that is, by everything that can still put a request in the queue (a guard can, through
/// `retry_failed`). When the last one goes, no request can be held any more, and the driver
/// ends.
#[derive(Debug)]
pub(crate) struct Keeper {
    pub(crate) shared: Arc<Shared>,
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.shared.keepers_gone.store(true, Ordering::Release);
        self.shared.driver.notify_one();
    }
}

/// A shard id no buffer issues (ids are dense from 0, and four billion shards is not a
/// configuration): inputs naming a [`Shard`](crate::Shard) of another buffer are
/// given one no buffer issues, so the core refuses and counts them as unknown shards.
fn foreign_shard() -> ShardId {
    ShardId::from_index(u32::MAX)
}

impl Shared {
    pub(crate) fn new(core: Buffer, id: u64) -> Shared {
        Shared {
            handoff: Handoff::new(core.config().size.min(RESERVED_WAITERS)),
            state: Mutex::new(State {
                waiters: WaiterMap::with_capacity(core.config().size.min(RESERVED_WAITERS)),
                cells: Vec::new(),
                armed: None,
                closed: false,
                telemetry: Telemetry::default(),
                core,
            }),
            origin: crate::sync::now(),
            id,
            driver: Notify::new(),
            closed: Notify::new(),
            keepers_gone: AtomicBool::new(false),
            timer_lost: AtomicBool::new(false),
            events: broadcast::Sender::new(EVENT_CAPACITY),
            subscribed: AtomicBool::new(false),
            event_order: Mutex::new(()),
        }
    }

    /// The lock. Nothing panics while holding it (the core never panics), but a poisoned
    /// lock is still usable: the state is only ever changed through the core's inputs, which
    /// leave it consistent.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cell of `shard`, looked up under the lock, for a handle that keeps only the
    /// shard's id (a [`RetryGuard`](crate::RetryGuard)); `None` for an id never registered.
    pub(crate) fn cell(&self, shard: ShardId) -> Option<Arc<ShardCell>> {
        self.lock().cells.get(shard.index()).cloned()
    }

    /// Now, on tokio's clock, as a core timestamp.
    pub(crate) fn now(&self) -> Timestamp {
        let since = crate::sync::now().saturating_duration_since(self.origin);
        // In 64 bits (saturating where the 128 bits of `as_nanos` would not fit a u64): the
        // clock is read for every input.
        Timestamp::from_nanos(
            since
                .as_secs()
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(since.subsec_nanos())),
        )
    }

    /// A core timestamp on tokio's clock.
    pub(crate) fn instant(&self, at: Timestamp) -> Instant {
        self.origin + at.saturating_duration_since(Timestamp::ZERO)
    }

    /// The id the core knows `cell`'s shard by, or one it refuses as unknown.
    pub(crate) fn shard_id(&self, cell: &ShardCell) -> ShardId {
        if cell.owner == self.id {
            cell.id
        } else {
            foreign_shard()
        }
    }

    /// Runs one input under the lock, carries out its actions, and delivers the wake-ups
    /// after the lock is released.
    pub(crate) fn input<R>(
        &self,
        touched: Touched,
        f: impl FnOnce(&mut State, Timestamp, &mut Report) -> R,
    ) -> R {
        // The channel's receiver count takes its lock: it is asked only once someone has
        // subscribed, so a buffer nobody watches takes one lock per input, not two.
        let mut wakeups = Wakeups {
            want_events: self.subscribed.load(Ordering::Acquire)
                && self.events.receiver_count() > 0,
            ..Wakeups::default()
        };
        // The clock is read before the lock, so the critical section every task of a drain
        // queues for is shorter by the read (≈ 30 ns; see `benches/README.md`, the drain on
        // 2 workers). Inputs still reach the core in time
        // order: under the lock, a reading older than the latest time the core has seen
        // (another input's, read later and locked first) is raised to it. The input is then
        // stamped at most one lock wait early or, raised, at the instant the core last saw;
        // never behind the core, so the core counts no clock regression.
        let read = self.now();
        let (result, order) = {
            let mut state = self.lock();
            let now = read.max(state.core.now());
            let result = f(&mut state, now, &mut wakeups.report);
            state.settle(&self.handoff, now, touched, &mut wakeups);
            let order = (!wakeups.events.is_empty()).then(|| {
                self.event_order
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            });
            (result, order)
        };
        wakeups.deliver(self, order);
        result
    }
}

impl State {
    /// Carries out every queued action, then checks whether the driver must re-arm.
    pub(crate) fn settle(
        &mut self,
        handoff: &Handoff,
        now: Timestamp,
        touched: Touched,
        wakeups: &mut Wakeups,
    ) {
        while let Some(action) = self.core.poll_action() {
            self.apply(handoff, now, action, wakeups);
        }
        // The shutdown's steps are read through a `Shutdown` handle's progress; none waits.
        while self.core.poll_shutdown_action().is_some() {}
        self.telemetry
            .export(&self.core, &self.cells, touched, &mut wakeups.report);
        if let Some(next) = self.core.poll_timeout() {
            if self.armed.is_none_or(|armed| next < armed) {
                wakeups.driver = true;
                // The driver, once woken, reads the deadline again under this lock (and
                // sets `armed` to what it read), so it will see `next` or an earlier one:
                // later inputs whose deadline is not earlier need not wake it again. (While
                // a failover fills the buffer the driver may not run for a while, and every
                // request would otherwise notify it again.)
                self.armed = Some(next);
            }
        }
    }

    fn apply(&mut self, handoff: &Handoff, now: Timestamp, action: Action, wakeups: &mut Wakeups) {
        wakeups.report.action(&self.core, &self.cells, &action);
        if wakeups.want_events {
            wakeups.events.extend(EpisodeEvent::from_action(&action));
        }
        match action {
            // A release to retry leaves the table: the future finds it in the handoff. (The
            // path of every request a drain releases: one look-up of its waiter, which
            // leaves with it.)
            Action::Wake {
                ticket,
                verdict: Verdict::Retry,
            } if handoff.has_place(ticket) => match self.waiters.remove(ticket) {
                Some(Waiter::Waiting(waker)) => {
                    handoff.publish(ticket);
                    wakeups.wake(waker);
                }
                // Unreachable (a ticket is woken once): as in the arm below, the verdict
                // is kept for the future to collect under the lock.
                Some(Waiter::Woken(_)) => {
                    self.waiters.insert(ticket, Waiter::Woken(Verdict::Retry));
                }
                None => self.lost_waiter(now, ticket, Verdict::Retry),
            },
            Action::Wake { ticket, verdict } => match self.waiters.get_mut(ticket) {
                Some(waiter) => {
                    if let Waiter::Waiting(waker) =
                        std::mem::replace(waiter, Waiter::Woken(verdict))
                    {
                        wakeups.wake(waker);
                    }
                }
                None => self.lost_waiter(now, ticket, verdict),
            },
            Action::FailoverStarted { shard, .. }
            | Action::DrainPaused { shard, .. }
            | Action::PauseStarted { shard, .. } => {
                self.set_buffering(shard, true);
            }
            Action::StartDrain { shard, .. } => self.set_buffering(shard, false),
            Action::Closed => {
                self.closed = true;
                wakeups.closed = true;
            }
            _ => {}
        }
    }

    /// A woken ticket with no waiter. Every `Wait` ticket gets a waiter before the actions
    /// of its input are carried out, and a waiter leaves only by ending its ticket, so this
    /// is unreachable. Should it happen, a released request nobody will run must not hold
    /// its slot (and the drain) forever: it is handed back.
    #[cold]
    fn lost_waiter(&mut self, now: Timestamp, ticket: Ticket, verdict: Verdict) {
        debug_assert!(false, "woken {ticket:?} has no waiter");
        if verdict == Verdict::Retry {
            let _ = self.core.cancel(now, ticket);
        }
    }

    fn set_buffering(&self, shard: ShardId, buffering: bool) {
        if let Some(cell) = self.cells.get(shard.index()) {
            cell.buffering.store(buffering, Ordering::Release);
        }
    }

    /// Ends a waiter whose future went away before collecting its verdict: a queued ticket
    /// is cancelled; a ticket already released to retry is handed back (the retry will never
    /// run, so it counts as done and the drain moves on); a failed ticket has ended already.
    ///
    /// Returns the waiter, so that its waker is dropped after the lock is released.
    ///
    /// Called by the future that has not collected its verdict (its stage says so), so a
    /// mark of its ticket in the handoff is a release it never took.
    pub(crate) fn abandon(
        &mut self,
        handoff: &Handoff,
        now: Timestamp,
        ticket: Ticket,
    ) -> Option<Waiter> {
        let waiter = self.waiters.remove(ticket);
        let released = match waiter {
            Some(Waiter::Waiting(_) | Waiter::Woken(Verdict::Retry)) => true,
            Some(Waiter::Woken(Verdict::Fail(_))) => false,
            None => {
                let released = handoff.released(ticket);
                debug_assert!(released, "abandoned {ticket:?} has no waiter");
                released
            }
        };
        if released {
            // Refused only for a ticket that has ended, and only this waiter ends it.
            let cancelled = self.core.cancel(now, ticket);
            debug_assert!(cancelled.is_ok(), "{ticket:?}: {cancelled:?}");
        }
        waiter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_request_costs_well_under_256_bytes_beyond_its_task() {
        // Per held request: one slot of the waiter table here (a slot per buffer slot, reused),
        // and one slab entry in the core.
        let entry = size_of::<Option<(Ticket, Waiter)>>();
        assert!(entry <= 40, "{entry} bytes");
    }

    #[test]
    fn the_reserved_waiter_table_is_at_most_10_mib_of_address_space() {
        let entry = size_of::<Option<(Ticket, Waiter)>>();
        assert!(RESERVED_WAITERS * entry <= 10 << 20, "{entry} bytes a slot");
    }
}

//! What the handles share: the core under one mutex, the waiters, and the timer thread.
//!
//! Every input runs through [`Shared::run`]: it takes the lock, reads the clock, feeds the
//! core, carries out every action the core queued, and collects the wake-ups; the waiting
//! threads are woken only after the lock is released, so a woken thread never blocks on
//! the lock its waker still holds.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use failover_buffer::{Action, BufferError, ShardId, Ticket, TicketMap, Timestamp, Verdict};

use crate::clock::Clock;
use crate::shard::ShardInner;
use crate::sync::{Arc, Condvar, Mutex, MutexGuard, Ordering};
use crate::telemetry;
use failover_buffer::EpisodeEvent;

/// What a blocked caller is told when it is woken.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Outcome {
    /// Retry now; report `retry_done` when finished.
    Retry(Ticket),
    /// Return this error to the client; the ticket has ended.
    Fail(BufferError),
    /// The caller's deadline came first; the ticket has ended (cancelled).
    TimedOut,
    /// The timer thread died (a panic in the `Clock` or a telemetry hook it ran); the ticket
    /// has ended (cancelled). The caller panics with [`TIMER_DIED`].
    TimerDied,
}

/// The message of every call that would hold a request once the timer thread has died.
pub(crate) const TIMER_DIED: &str = "the failover-buffer timer thread panicked (in the buffer's \
    Clock or a telemetry hook), so this buffer can no longer release held requests; see the \
    timer thread's panic above";

/// One blocked caller: its outcome, once decided, and the condvar it sleeps on. Each
/// waiter has its own pair so waking one never contends with the buffer's lock.
#[derive(Debug, Default)]
pub(crate) struct Waiter {
    outcome: Mutex<Option<Outcome>>,
    ready: Condvar,
}

impl Waiter {
    /// Blocks until an outcome is delivered.
    pub(crate) fn wait(&self) -> Outcome {
        let mut outcome = lock(&self.outcome);
        loop {
            if let Some(o) = *outcome {
                return o;
            }
            outcome = self.ready.wait(outcome).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn deliver(&self, outcome: Outcome) {
        *lock(&self.outcome) = Some(outcome);
        self.ready.notify_one();
    }

    /// The outcome, if one has been delivered.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        *lock(&self.outcome)
    }
}

/// A held request, as the adapter tracks it.
#[derive(Debug)]
struct Waiting {
    ticket: Ticket,
    deadline: Option<Timestamp>,
    waiter: Arc<Waiter>,
}

/// What the timer thread is doing, so an input knows whether it must wake it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimerSleep {
    /// Running a pass, or about to look at the deadlines again.
    Busy,
    /// Asleep until this instant.
    Until(Timestamp),
    /// Asleep with no deadline armed.
    Forever,
    /// Asleep because the clock does not move by itself (see `Clock::real_time_until`).
    Manual,
    /// Exited.
    Gone,
}

/// Everything behind the lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) core: failover_buffer::Buffer,
    /// Per shard index, the handle's shared part (its buffering flag).
    pub(crate) shards: Vec<Arc<ShardInner>>,
    /// Held requests by ticket, indexed by slot.
    waiters: TicketMap<Waiting>,
    /// Callers' deadlines, earliest first (ties in ticket order, by id).
    deadlines: BTreeSet<(Timestamp, u64, Ticket)>,
    timer: TimerSleep,
    /// The last handle was dropped: the timer thread must exit.
    stop: bool,
    /// The core announced `Closed`.
    pub(crate) closed: bool,
    /// The timer thread panicked: every call that would hold a request panics.
    pub(crate) timer_died: bool,
}

/// What an input leaves to do once the lock is released.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    wakes: Vec<(Arc<Waiter>, Outcome)>,
    notify_timer: bool,
    closed: bool,
    /// Episode events (a few per failover; none on the idle path).
    events: Vec<EpisodeEvent>,
    pub(crate) telemetry: telemetry::Exports,
}

/// The subscribers of [`FailoverBuffer::events`](crate::FailoverBuffer::events). Their lock
/// also orders the events: it is taken before the state lock is released and held until an
/// input's events are sent, so they leave in the core's order without being sent under the
/// state lock. Always taken after the state lock, never before it.
type Subscribers = Vec<mpsc::Sender<EpisodeEvent>>;

impl Effects {
    /// Carries out the wake-ups, then sends the events, then the telemetry (user code), all
    /// outside the state lock: a recorder or subscriber that panics cannot lose a wake-up
    /// or an event.
    fn deliver(self, shared: &Shared, subscribers: Option<MutexGuard<'_, Subscribers>>) {
        for (waiter, outcome) in self.wakes {
            waiter.deliver(outcome);
        }
        if self.notify_timer || self.closed {
            shared.timer.notify_all();
        }
        if self.closed {
            shared.closed.notify_all();
        }
        if let Some(mut subscribers) = subscribers {
            for event in self.events {
                // A subscriber whose receiver is gone is forgotten.
                subscribers.retain(|s| s.send(event).is_ok());
            }
        }
        // A thread unwinding from a panic (a guard dropped by it) sends no telemetry: a
        // second panic from a hook would abort the process.
        if !std::thread::panicking() {
            self.telemetry.emit();
        }
    }
}

/// The part of the buffer every handle, guard and the timer thread holds.
pub(crate) struct Shared {
    state: Mutex<State>,
    subscribers: Mutex<Subscribers>,
    /// The timer thread sleeps on this (with `state`).
    timer: Condvar,
    /// `shutdown` sleeps on this (with `state`) until the core is closed or the shutdown
    /// is cancelled.
    pub(crate) closed: Condvar,
    clock: std::sync::Arc<dyn Clock>,
    /// The instant that maps to `Timestamp::ZERO`.
    origin: Instant,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Locks, ignoring poison: the state behind every lock here is changed only by code that
/// does not panic (the core never panics), so a panic elsewhere while it was held left it
/// consistent, and a guard dropped during an unwind must still be able to report.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(core: failover_buffer::Buffer, clock: std::sync::Arc<dyn Clock>) -> Shared {
        let origin = clock.now();
        Shared {
            subscribers: Mutex::new(Vec::new()),
            state: Mutex::new(State {
                core,
                shards: Vec::new(),
                waiters: TicketMap::new(),
                deadlines: BTreeSet::new(),
                timer: TimerSleep::Busy,
                stop: false,
                closed: false,
                timer_died: false,
            }),
            timer: Condvar::new(),
            closed: Condvar::new(),
            clock,
            origin,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// A new subscriber to the episode events.
    pub(crate) fn subscribe(&self) -> mpsc::Receiver<EpisodeEvent> {
        let (tx, rx) = mpsc::channel();
        lock(&self.subscribers).push(tx);
        rx
    }

    /// The event-order lock, if `fx` has events to send; call it with the state lock held.
    fn order(&self, fx: &Effects) -> Option<MutexGuard<'_, Subscribers>> {
        (!fx.events.is_empty()).then(|| lock(&self.subscribers))
    }

    /// The clock's reading as a core timestamp.
    pub(crate) fn now(&self) -> Timestamp {
        self.timestamp(self.clock.now())
    }

    /// An instant as a core timestamp; instants before the origin map to zero.
    pub(crate) fn timestamp(&self, at: Instant) -> Timestamp {
        let nanos = at.saturating_duration_since(self.origin).as_nanos();
        Timestamp::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn instant(&self, at: Timestamp) -> Option<Instant> {
        self.origin.checked_add(Duration::from_nanos(at.as_nanos()))
    }

    /// Runs one input: `f` feeds the core under the lock at the current time, then the
    /// adapter expires callers' deadlines, carries out the core's actions, and, once the
    /// lock is released, wakes whoever must be woken.
    pub(crate) fn run<R>(&self, f: impl FnOnce(&mut State, Timestamp, &mut Effects) -> R) -> R {
        let mut fx = Effects::default();
        let (result, order) = {
            let mut st = self.lock();
            // Read under the lock, so the core sees inputs in time order.
            let now = self.now();
            let result = f(&mut st, now, &mut fx);
            st.settle(now, &mut fx);
            st.expire_deadlines(now, &mut fx);
            fx.notify_timer = st.timer_must_wake();
            fx.telemetry.snapshot(&st);
            (result, self.order(&fx))
        };
        fx.deliver(self, order);
        result
    }

    /// Fires everything due now: callers' deadlines, then the core's timers.
    pub(crate) fn tick_now(&self) {
        self.run(|st, now, fx| st.pass(now, fx));
    }

    /// Time passes, as the loom checks model it: `advance` moves the buffer's clock, under
    /// the lock (every reading that decides anything is taken under it), and then, as the
    /// operating system would, the timer thread is woken if its timed sleep has now ended.
    /// A timer asleep past the new time, or for ever, stays asleep: an input that armed an
    /// earlier deadline without waking it is a lost wake-up loom reports as a deadlock.
    #[cfg(all(test, loom))]
    pub(crate) fn elapse(&self, advance: impl FnOnce()) {
        let st = self.lock();
        advance();
        let now = self.now();
        if matches!(st.timer, TimerSleep::Until(at) if at <= now) {
            self.timer.notify_all();
        }
    }

    /// Tells the timer thread to exit (the last handle is gone).
    pub(crate) fn stop_timer(&self) {
        self.lock().stop = true;
        self.timer.notify_all();
    }

    /// The timer thread: sleeps until the earliest deadline (the core's `poll_timeout` or a
    /// caller's), runs a pass, and repeats; exits when told to stop or once the core has
    /// closed (after which the core arms no timer and every caller's deadline has ended).
    ///
    /// It runs user code: the [`Clock`], and after each pass the telemetry. If that panics,
    /// the thread is not left dead and marked busy: [`TimerDeath`] cancels every held
    /// request, wakes its caller to panic, and makes every later call that would hold a
    /// request panic too.
    pub(crate) fn timer_loop(&self) {
        // Declared before the lock guard, so it runs after the guard is dropped.
        let _death = TimerDeath(self);
        let mut st = self.lock();
        loop {
            if st.stop || st.closed {
                st.timer = TimerSleep::Gone;
                return;
            }
            let now = self.now();
            let next = st.next_deadline();
            if next.is_some_and(|at| at <= now) {
                let mut fx = Effects::default();
                st.pass(now, &mut fx);
                fx.telemetry.snapshot(&st);
                let order = self.order(&fx);
                drop(st);
                fx.deliver(self, order);
                st = self.lock();
                continue;
            }
            let sleep = match next {
                None => None,
                Some(at) => match self.instant(at) {
                    Some(at_instant) => match self.clock.real_time_until(at_instant) {
                        Some(d) => Some((at, d)),
                        None => {
                            st.timer = TimerSleep::Manual;
                            st = self.timer.wait(st).unwrap_or_else(|e| e.into_inner());
                            st.timer = TimerSleep::Busy;
                            continue;
                        }
                    },
                    // Centuries away: as good as never.
                    None => None,
                },
            };
            st = match sleep {
                Some((at, d)) => {
                    st.timer = TimerSleep::Until(at);
                    self.timer
                        .wait_timeout(st, d)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => {
                    st.timer = TimerSleep::Forever;
                    self.timer.wait(st).unwrap_or_else(|e| e.into_inner())
                }
            };
            st.timer = TimerSleep::Busy;
        }
    }
}

/// Notices the timer thread unwinding from a panic (see [`Shared::timer_loop`]).
struct TimerDeath<'a>(&'a Shared);

impl Drop for TimerDeath<'_> {
    fn drop(&mut self) {
        // Under loom a panic is the checker's own report (a deadlock, a failed assertion),
        // unwinding a model whose locks can no longer be taken: let it through.
        if !std::thread::panicking() || cfg!(loom) {
            return;
        }
        let mut fx = Effects::default();
        {
            let mut st = self.0.lock();
            st.timer = TimerSleep::Gone;
            st.timer_died = true;
            // The last time the core saw: the clock may be what panicked.
            let now = st.core.now();
            while let Some((ticket, w)) = st.waiters.pop() {
                if let Some(at) = w.deadline {
                    st.deadlines.remove(&(at, ticket.id(), ticket));
                }
                let cancelled = st.core.cancel(now, w.ticket);
                debug_assert!(cancelled.is_ok(), "{:?}: {cancelled:?}", w.ticket);
                fx.wakes.push((w.waiter, Outcome::TimerDied));
                // Carry out what the cancel caused before the next one, so any wake it
                // queued finds its waiter still in the map.
                st.settle(now, &mut fx);
            }
            st.settle(now, &mut fx);
        }
        // No events from a thread that is unwinding (nor telemetry: see `deliver`).
        fx.deliver(self.0, None);
    }
}

/// A shard id no buffer issues (ids are dense from 0; four billion shards is not a
/// configuration): an input naming a [`Shard`](crate::Shard) of another buffer is given
/// this one, so the core refuses it and counts it in `InputStats::unknown_shards`.
fn foreign_shard() -> ShardId {
    ShardId::from_index(u32::MAX)
}

impl State {
    /// The registered shard behind a handle, if the handle is this buffer's.
    pub(crate) fn owns(&self, shard: &Arc<ShardInner>) -> bool {
        self.shards
            .get(shard.id.index())
            .is_some_and(|s| Arc::ptr_eq(s, shard))
    }

    /// The id the core knows `shard` by, or one it refuses as unknown.
    pub(crate) fn shard_id(&self, shard: &Arc<ShardInner>) -> ShardId {
        if self.owns(shard) {
            shard.id
        } else {
            foreign_shard()
        }
    }

    /// Ends a held request whose caller will not collect its outcome (it panicked between
    /// being held and waiting): a queued ticket is cancelled, a release to retry is handed
    /// back; a failure or time-out has ended already.
    pub(crate) fn abandon(&mut self, now: Timestamp, ticket: Ticket, waiter: &Waiter) {
        if let Some(w) = self.waiters.remove(ticket) {
            if let Some(at) = w.deadline {
                self.deadlines.remove(&(at, ticket.id(), ticket));
            }
            let cancelled = self.core.cancel(now, ticket);
            debug_assert!(cancelled.is_ok(), "{ticket:?}: {cancelled:?}");
        } else if let Some(Outcome::Retry(ticket)) = waiter.outcome() {
            let cancelled = self.core.cancel(now, ticket);
            debug_assert!(cancelled.is_ok(), "{ticket:?}: {cancelled:?}");
        }
    }

    /// Tracks a request the core told to wait.
    pub(crate) fn hold(&mut self, ticket: Ticket, deadline: Option<Timestamp>) -> Arc<Waiter> {
        let waiter = Arc::new(Waiter::default());
        if let Some(at) = deadline {
            self.deadlines.insert((at, ticket.id(), ticket));
        }
        self.waiters.insert(
            ticket,
            Waiting {
                ticket,
                deadline,
                waiter: waiter.clone(),
            },
        );
        waiter
    }

    /// A timer pass at `now`: callers' deadlines first, so a request whose caller has
    /// given up is counted as cancelled (`ContextDone`) rather than released by a window
    /// expiring at the same instant; then the core's timers.
    fn pass(&mut self, now: Timestamp, fx: &mut Effects) {
        self.expire_deadlines(now, fx);
        self.core.tick(now);
        fx.telemetry.touch_all();
        self.settle(now, fx);
    }

    /// The earliest instant anything is due.
    fn next_deadline(&self) -> Option<Timestamp> {
        let caller = self.deadlines.first().map(|&(at, _, _)| at);
        match (self.core.poll_timeout(), caller) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the timer thread sleeps past the earliest deadline.
    fn timer_must_wake(&self) -> bool {
        match (self.timer, self.next_deadline()) {
            (TimerSleep::Until(at), Some(next)) => next < at,
            (TimerSleep::Forever, Some(_)) => true,
            _ => false,
        }
    }

    /// Cancels every held request whose caller's deadline has come.
    fn expire_deadlines(&mut self, now: Timestamp, fx: &mut Effects) {
        while let Some(&(at, id, ticket)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(w) = self.waiters.remove(ticket) else {
                // A deadline entry leaves with its waiter.
                debug_assert!(false, "deadline of ticket {id} without a waiter");
                continue;
            };
            // The ticket is live: it leaves `waiters` when it is woken, and then its
            // deadline entry goes with it.
            let cancelled = self.core.cancel(now, w.ticket);
            debug_assert!(cancelled.is_ok(), "{:?}: {cancelled:?}", w.ticket);
            fx.telemetry.timed_out(w.ticket);
            fx.wakes.push((w.waiter, Outcome::TimedOut));
            // Carry out what the cancel caused (a drain releases its next request) before
            // looking at the next deadline, which may be that request's.
            self.settle(now, fx);
        }
    }

    /// Carries out every action the core queued.
    fn settle(&mut self, now: Timestamp, fx: &mut Effects) {
        while let Some(action) = self.core.poll_action() {
            // Copied to log and send after the lock is released.
            fx.telemetry.action(&self.shards, &action);
            fx.events.extend(EpisodeEvent::from_action(&action));
            match action {
                Action::Wake { ticket, verdict } => self.wake(now, ticket, verdict, fx),
                Action::FailoverStarted { shard, .. } => self.set_buffering(shard, true),
                Action::StartDrain { shard, .. } => self.set_buffering(shard, false),
                Action::DrainPaused { shard, .. } | Action::PauseStarted { shard, .. } => {
                    self.set_buffering(shard, true);
                }
                Action::Metric(_) => {}
                Action::Closed => {
                    self.closed = true;
                    fx.closed = true;
                }
                _ => {}
            }
        }
        // The shutdown's steps are read through a `Shutdown` handle's progress; none waits.
        while self.core.poll_shutdown_action().is_some() {}
    }

    /// Mirrors the core's `Buffering` state into the shard's flag, which the idle fast path
    /// reads without the lock. Written only here, under the lock, in the order the core
    /// changed state, so it always matches the core once an input has been carried out.
    fn set_buffering(&self, shard: ShardId, buffering: bool) {
        if let Some(s) = self.shards.get(shard.index()) {
            s.buffering.store(buffering, Ordering::Release);
        }
    }

    /// Decides what a woken request's caller is told.
    ///
    /// The race between a wake and the caller's deadline is settled by one rule: the
    /// deadline is compared with the clock reading of the input that woke the request. If
    /// it has been reached, the caller gets `TimedOut` whatever the verdict, and a `Retry`
    /// is handed straight back with `cancel`, so its slot and its turn in the drain pass
    /// to the next request instead of being lost.
    fn wake(&mut self, now: Timestamp, ticket: Ticket, verdict: Verdict, fx: &mut Effects) {
        let Some(w) = self.waiters.remove(ticket) else {
            // Every ticket this adapter is issued has a waiter until it is woken or
            // cancelled, and a cancelled ticket is never woken; this is defence only. A
            // retry nobody will make must not keep its slot.
            debug_assert!(false, "woken {ticket:?} has no waiter");
            if verdict == Verdict::Retry {
                let _ = self.core.cancel(now, ticket);
            }
            return;
        };
        if let Some(at) = w.deadline {
            self.deadlines.remove(&(at, ticket.id(), ticket));
        }
        let outcome = if w.deadline.is_some_and(|at| at <= now) {
            if verdict == Verdict::Retry {
                let cancelled = self.core.cancel(now, ticket);
                debug_assert!(cancelled.is_ok(), "{ticket:?}: {cancelled:?}");
            }
            fx.telemetry.timed_out(ticket);
            Outcome::TimedOut
        } else {
            match verdict {
                Verdict::Retry => Outcome::Retry(ticket),
                Verdict::Fail(e) => Outcome::Fail(e),
            }
        };
        fx.wakes.push((w.waiter, outcome));
    }
}

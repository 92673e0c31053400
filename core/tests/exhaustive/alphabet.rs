//! The inputs the explorer tries in every state, as the shared harness's [`Op`]s.
//!
//! Ops are the vocabulary of the property tests and fuzz targets too, so an input added to
//! the harness reaches the explorer with a small change here: [`kind`] matches every `Op`
//! variant with no wildcard, so a new variant does not compile until it is given a name,
//! and the `every_kind_of_input_is_tried` test fails until [`inputs`] enumerates it.
//!
//! Tickets are named the way the harness resolves them, so that the same op means the same
//! input in two states with the same canonical form: the k-th queued ticket and the k-th
//! released one in order of issue (one op per live ticket), the most recently ended ticket
//! (stale), and a ticket never issued.

use super::ops::{Cause, Op, Reconf, SetUp, Term, TicketRef, Topo};

/// What the alphabet needs to know about a state.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Live {
    /// Tickets queued, in all shards.
    pub(crate) queued: usize,
    /// Tickets released to retry whose retries are not reported yet.
    pub(crate) released: usize,
    /// The harness index of the most recently ended ticket.
    pub(crate) last_ended: Option<usize>,
    /// The harness clock minus the buffer's `now`, in nanoseconds.
    pub(crate) clock_offset: i128,
    /// Bit `i`: shard `i` has seen a health stamp (has a highest term).
    pub(crate) terms_known: u8,
    /// `poll_timeout` is set and not before the buffer's `now`.
    pub(crate) timer_ahead: bool,
    /// An input at the end of time was given: every later input is stamped
    /// `Timestamp::MAX`, so the clock inputs are all one (a tick at the same instant).
    pub(crate) end_of_time: bool,
    /// Bit `i`: shard `i` is the mirror image of an earlier shard (`Canonical::mirrors`,
    /// rule 6): its inputs are left out, those of the earlier shard stand for them.
    pub(crate) mirrors: u8,
    /// Bit `i`: shard `i` knows no primary, so a stamp from the alphabet's second primary
    /// is the mirror image of one from its first (rule 8), and is left out.
    pub(crate) no_primary: u8,
}

/// The time steps: one clock unit forward, none, one back (a clock regression), a pause
/// with no tick (the next input comes late), and a tick exactly at the next deadline.
///
/// The harness clock stays within one unit of the buffer's, else the offsets, and the
/// states, never end: a pause only when the clock is not ahead, a step back only when it is
/// not behind, a tick at the deadline only when that is not already past (a driver late
/// for a deadline ticks now, which is the step of none).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Steps {
    pub(crate) unit_ms: i16,
}

const CAUSES: [Cause; 3] = [Cause::Reparent, Cause::Resharding, Cause::MoveTables];

/// A ticket index the harness never issued: it forges a ticket for it.
const NEVER_ISSUED: u16 = u16::MAX;

/// Every input to try in a state; the [`reconfigurations`] only if `reconfigure` (each
/// makes its config part of the state, which multiplies the states by about their number),
/// the operator pauses only if `pause` (a paused copy of each state multiplies them by
/// about seven for one shard).
pub(crate) fn inputs(
    setup: &SetUp,
    steps: Steps,
    live: Live,
    reconfigure: bool,
    pause: bool,
) -> Vec<Op> {
    let shards = setup.shards as u8;
    let mut ops = Vec::new();
    // The shards whose inputs are tried: not the mirror image of an earlier one.
    let tried = |shard: u8| live.mirrors & (1 << shard) == 0;
    // Requests: a first attempt and each failover cause, on every shard.
    for shard in (0..shards).filter(|&s| tried(s)) {
        ops.push(Op::Request { shard, cause: None });
        for cause in CAUSES {
            ops.push(Op::Request {
                shard,
                cause: Some(cause),
            });
        }
    }
    // Health stamps: older, same and newer term, serving or not, from two primaries (so a
    // stamp is from the known primary, from another, or the first seen). Before any stamp
    // "older" is term 0, which behaves as "same" does (term 1) up to the terms' values.
    for shard in (0..shards).filter(|&s| tried(s)) {
        let known = live.terms_known & (1 << shard) != 0;
        let primaries = if live.no_primary & (1 << shard) != 0 {
            1
        } else {
            2
        };
        for primary in 0..primaries {
            for term in [Term::Older, Term::Same, Term::Newer] {
                if term == Term::Older && !known {
                    continue;
                }
                for serving in [true, false] {
                    ops.push(Op::Health {
                        shard,
                        primary,
                        term,
                        serving,
                    });
                }
            }
        }
    }
    for shard in (0..shards).filter(|&s| tried(s)) {
        for event in [Topo::ShardMissing, Topo::TrafficSwitched] {
            ops.push(Op::Topology { shard, event });
        }
    }
    if pause {
        // Operator pauses: of each shard for one clock step and for two, of every shard for
        // one, and resuming each shard and every shard (see below). A pause's bound is at most two steps,
        // so it runs out within a few ticks (a pause of the default ten minutes would be a
        // new state at every tick until then).
        let q = (steps.unit_ms / 250) as u8;
        for shard in (0..shards).filter(|&s| tried(s)) {
            ops.extend([
                Op::Pause {
                    shard,
                    all: false,
                    max: q,
                },
                Op::Pause {
                    shard,
                    all: false,
                    max: 2 * q,
                },
                Op::Resume { shard, all: false },
            ]);
        }
        // Pausing and resuming every shard at once visit the shards by index, which orders
        // them in the buffer's list of active shards (the order a shutdown visits them in), so
        // two interchangeable shards are not interchangeable for them (`merging_rules_lose_no_
        // state` found it: two shards, a failover on the second, then a pause of all): tried
        // only where the canonical form does not merge interchangeable shards (rule 6), with
        // one shard or when reconfiguring.
        if shards == 1 || reconfigure {
            ops.extend([
                Op::Pause {
                    shard: 0,
                    all: true,
                    max: q,
                },
                Op::Resume {
                    shard: 0,
                    all: true,
                },
            ]);
        }
        ops.extend([
            // Refused: a pause with no time.
            Op::Pause {
                shard: 0,
                all: false,
                max: 0,
            },
        ]);
    }
    // Inputs naming a shard the buffer never issued: refused, changing nothing.
    ops.push(Op::Request {
        shard: shards,
        cause: Some(Cause::Reparent),
    });
    ops.push(Op::Health {
        shard: shards,
        primary: 0,
        term: Term::Newer,
        serving: true,
    });
    ops.push(Op::Topology {
        shard: shards,
        event: Topo::ShardMissing,
    });
    if pause {
        let q = (steps.unit_ms / 250) as u8;
        ops.extend([
            Op::Pause {
                shard: shards,
                all: false,
                max: q,
            },
            Op::Resume {
                shard: shards,
                all: false,
            },
        ]);
    }
    let u = steps.unit_ms;
    if live.end_of_time {
        // The clock is pinned at `Timestamp::MAX`: every other clock input is this one.
        ops.push(Op::Tick { advance_ms: 0 });
    } else {
        ops.extend([Op::Tick { advance_ms: u }, Op::Tick { advance_ms: 0 }]);
        if live.clock_offset >= 0 {
            ops.push(Op::Tick { advance_ms: -u });
        }
        if live.clock_offset <= 0 {
            ops.push(Op::Wait { advance_ms: u });
        }
        if live.timer_ahead {
            ops.push(Op::TickAtDeadline);
        }
        // A failover request stamped `Timestamp::MAX` on each shard (once: afterwards a
        // request is one).
        for shard in (0..shards).filter(|&s| tried(s)) {
            ops.push(Op::EndOfTime { shard });
        }
    }
    if reconfigure {
        ops.extend(reconfigurations(setup).into_iter().map(Op::Reconfigure));
    }
    // Each live ticket: cancel, retry_done, retry_failed (each cause once released; a queued
    // ticket's retry_done and retry_failed are refused whatever the cause).
    for k in 0..live.queued.min(256) as u8 {
        let t = TicketRef::Queued(k);
        ops.extend([
            Op::Cancel(t),
            Op::RetryDone(t),
            Op::RetryFailed {
                ticket: t,
                cause: Cause::Reparent,
            },
        ]);
    }
    for k in 0..live.released.min(256) as u8 {
        let t = TicketRef::Released(k);
        ops.extend([Op::Cancel(t), Op::RetryDone(t)]);
        for cause in CAUSES {
            ops.push(Op::RetryFailed { ticket: t, cause });
        }
    }
    // A stale ticket: the most recently ended one, or else one never issued.
    let stale = TicketRef::Issued(
        live.last_ended
            .and_then(|i| u16::try_from(i).ok())
            .unwrap_or(NEVER_ISSUED),
    );
    ops.extend([
        Op::Cancel(stale),
        Op::RetryDone(stale),
        Op::RetryFailed {
            ticket: stale,
            cause: Cause::Reparent,
        },
    ]);
    // The shutdown, and calling it off (refused unless one is running and has not closed
    // the buffer: tried in every state all the same, as every input is).
    ops.extend([Op::Shutdown, Op::CancelShutdown]);
    ops
}

/// The reconfigurations tried in every state, each a whole config (not a change relative
/// to the current one): one slot more; one slot fewer (evicting the oldest queued request
/// when the pool is full), if at least one remains; a window halved (250 ms: existing
/// deadlines are capped, and new ones fall between the clock's steps); one more drain
/// retry at a time; the set-up's config again (after another, a change back; before, a
/// no-op); an invalid config (no slot); a change of mode (refused); proactive start flipped.
///
/// None changes max failover duration, min time between failovers or max pause: the
/// canonical form forgets instants once they are past those limits (rules 7 and 9), and a
/// pause's start, read only against a lower max pause, which is sound only if no later
/// input changes them (`reconfigurations_keep_the_limits_instants_are_compared_with`).
pub(crate) fn reconfigurations(setup: &SetUp) -> Vec<Reconf> {
    let same = Reconf {
        size: setup.size as u8,
        window: (setup.window_ms / 250) as u8,
        extra: ((setup.max_failover_duration_ms - setup.window_ms) / 250) as u8,
        min_time: (setup.min_time_between_failovers_ms / 500) as u8,
        concurrency: setup.drain_concurrency as u8,
        backoff: (setup.drain_backoff_ms / 250) as u8,
        proactive_start: setup.proactive_start,
        change_mode: false,
        // No limit, as the set-ups have (`shutdown_grace_ms: None`).
        grace: 15,
        // The default policy, no per-shard cap and no byte budget, as the set-ups have.
        eviction: 0,
        max_per_shard: 0,
        max_bytes: 0,
        // The default pause bound, as the set-ups have.
        max_pause: 0,
    };
    let mut out = vec![Reconf {
        size: same.size + 1,
        ..same
    }];
    if setup.size > 1 {
        out.push(Reconf {
            size: same.size - 1,
            ..same
        });
    }
    out.extend([
        Reconf {
            window: same.window / 2,
            extra: same.extra + same.window - same.window / 2,
            ..same
        },
        Reconf {
            concurrency: same.concurrency + 1,
            ..same
        },
        same,
        Reconf { size: 0, ..same },
        Reconf {
            change_mode: true,
            ..same
        },
        Reconf {
            proactive_start: !same.proactive_start,
            ..same
        },
    ]);
    out
}

/// Every kind of input, by name: what `every_kind_of_input_is_tried` checks is tried.
pub(crate) const KINDS: &[&str] = &[
    "request",
    "health",
    "topology",
    "tick",
    "wait",
    "tick_at_deadline",
    "cancel",
    "retry_done",
    "retry_failed",
    "reconfigure",
    "end_of_time",
    "shutdown",
    "cancel_shutdown",
    "pause",
    "resume",
];

/// The kind of an op. No wildcard: an `Op` variant added to the harness stops this from
/// compiling until it is named here (and listed in [`KINDS`], and enumerated by [`inputs`]).
pub(crate) fn kind(op: &Op) -> &'static str {
    match op {
        Op::Request { .. } => "request",
        Op::Health { .. } => "health",
        Op::Topology { .. } => "topology",
        Op::Tick { .. } => "tick",
        Op::Wait { .. } => "wait",
        Op::TickAtDeadline => "tick_at_deadline",
        Op::Cancel(_) => "cancel",
        Op::RetryDone(_) => "retry_done",
        Op::RetryFailed { .. } => "retry_failed",
        Op::Shutdown => "shutdown",
        Op::Reconfigure(_) => "reconfigure",
        Op::EndOfTime { .. } => "end_of_time",
        Op::CancelShutdown => "cancel_shutdown",
        Op::Pause { .. } => "pause",
        Op::Resume { .. } => "resume",
    }
}

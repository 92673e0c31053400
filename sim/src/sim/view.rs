//! What an attempt meets at a shard, as one router sees it: the data plane of the model.
//!
//! Each router has a [`View`] of each shard: a sorted list of phases (refusing, hanging,
//! failing fast, serving slowly), built once from the scenario's failovers and topology
//! changes and from which health stamps that router receives.

use failover_buffer::FailoverCause;

use super::nanos;
use crate::scenario::Failover;

/// What an attempt sent at an instant meets at a shard, as one router sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Phase {
    /// Refused with this cause after the attempt's service time.
    Refuse(FailoverCause),
    /// Refused (a failover error) after this many nanoseconds, whatever the attempt's
    /// service time: a dead primary's closed port ([`Failover::refuse_time`]).
    RefuseAfter(u64),
    /// Writes are paused: the attempt hangs until this instant, then is refused (after its
    /// service time).
    Hang { until: u64 },
    /// The router knows the primary is not serving: the attempt fails at once.
    FailFast,
    /// Served, `factor` times slower (a cold primary).
    Cold { factor: f64 },
}

/// A shard as one router sees it: its phases, `[from, until)` and sorted, and how far a send
/// has got through them (time only moves forward).
pub(super) struct View {
    phases: Vec<(u64, u64, Phase)>,
    next: usize,
}

impl View {
    /// A view of these phases, in any order (they may not overlap).
    pub(super) fn new(mut phases: Vec<(u64, u64, Phase)>) -> View {
        phases.sort_by_key(|p| p.0);
        View { phases, next: 0 }
    }

    /// The phase at `now`, if any. `now` never goes back from one call to the next.
    pub(super) fn at(&mut self, now: u64) -> Option<Phase> {
        while let Some(&(_, until, _)) = self.phases.get(self.next) {
            if until > now {
                break;
            }
            self.next += 1;
        }
        match self.phases.get(self.next) {
            Some(&(from, _, phase)) if from <= now => Some(phase),
            _ => None,
        }
    }
}

/// Which of a failover's health stamps one router receives, and when.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sees {
    /// The old primary's not-serving stamp, if it has one and this router gets it.
    pub(super) not_serving_at: Option<u64>,
    /// The new primary's serving stamp, if it has one and this router gets it.
    pub(super) serving_at: Option<u64>,
}

/// The phases one router meets during failover `f`, appended to `phases`: a write pause
/// (hanging, or failing fast once the router has the not-serving stamp), refusals until the
/// primary is writable (after a write pause or a kill, until this router also sees the new
/// primary), then a cold primary.
pub(super) fn failover_phases(f: &Failover, sees: Sees, phases: &mut Vec<(u64, u64, Phase)>) {
    let start = nanos(f.start);
    let writable = f.writable_at().map_or(u64::MAX, nanos);
    let pause_end = start.saturating_add(nanos(f.write_pause));
    let mut refuse_until = writable;
    if pause_end > start {
        match sees.not_serving_at {
            Some(at) if at < pause_end => {
                if at > start {
                    phases.push((start, at, Phase::Hang { until: pause_end }));
                }
                phases.push((at.max(start), pause_end, Phase::FailFast));
            }
            _ => phases.push((start, pause_end, Phase::Hang { until: pause_end })),
        }
        // The old primary refuses until this router sees the new one.
        refuse_until = refuse_until.max(sees.serving_at.unwrap_or(u64::MAX));
    }
    if f.killed {
        // A dead primary is not replaced under the router: it sends there, and is refused,
        // until it sees the new one.
        refuse_until = refuse_until.max(sees.serving_at.unwrap_or(u64::MAX));
    }
    if refuse_until > pause_end {
        let refused = match f.refuse_time {
            Some(took) => Phase::RefuseAfter(nanos(took)),
            None => Phase::Refuse(FailoverCause::Reparent),
        };
        phases.push((pause_end, refuse_until, refused));
    }
    if let Some(cold) = f.cold {
        let until = if refuse_until == u64::MAX {
            u64::MAX
        } else {
            refuse_until.saturating_add(nanos(cold.lasts))
        };
        if until > refuse_until {
            phases.push((
                refuse_until,
                until,
                Phase::Cold {
                    factor: cold.factor,
                },
            ));
        }
    }
}

//! [`Buffer::inspect`]'s reading of the buffer's own fields (a child of `buffer`, so it
//! sees them; see [`crate::inspect`]).

use super::Buffer;
use alloc::vec::Vec;

use crate::inspect::{Shutdown, Spare, State};
use crate::shutdown::ShutdownPhase;

impl Buffer {
    /// The state, written into `spare`'s allocations.
    pub(crate) fn inspect_state(&self, spare: Spare) -> State {
        let Spare {
            active: mut active_list,
            shards: mut shards_read,
            tickets: held,
        } = spare;
        // Every field named: one added to `Buffer` does not compile here until it is
        // copied or its omission explained (see `inspect::State`).
        let Buffer {
            config: _,
            limits: _,
            shards,
            names: _,
            pool,
            active,
            timers: _,
            actions,
            now,
            last_tick,
            shut_down,
            closed,
            input_stats: _,
            shutdown,
        } = self;
        State {
            now: *now,
            last_tick: *last_tick,
            shut_down: *shut_down,
            closed: *closed,
            pending_actions: actions.len(),
            active: {
                active_list.clone_from(&active.list);
                active_list
            },
            shards: {
                shards_read.truncate(shards.len());
                for (i, s) in shards.iter().enumerate() {
                    match shards_read.get_mut(i) {
                        Some(read) => {
                            let queue = core::mem::take(&mut read.queue);
                            *read = s.inspect(pool, queue);
                        }
                        None => shards_read.push(s.inspect(pool, Vec::new())),
                    }
                }
                shards_read
            },
            tickets: pool.inspect_tickets(held),
            tickets_issued: pool.tickets_issued(),
            shutdown: shutdown.as_ref().map(|s| Shutdown {
                grace: shutdown_grace(s),
                stopped: s
                    .stopped
                    .iter()
                    .map(|(id, unstop)| (*id, unstop.inspect()))
                    .collect(),
            }),
        }
    }

    /// Whether [`inspect_state`](Self::inspect_state) would read `read`, without writing a
    /// copy; every field named, as there.
    pub(crate) fn state_is(&self, read: &State) -> bool {
        let Buffer {
            config: _,
            limits: _,
            shards,
            names: _,
            pool,
            active,
            timers: _,
            actions,
            now,
            last_tick,
            shut_down,
            closed,
            input_stats: _,
            shutdown,
        } = self;
        let State {
            now: read_now,
            last_tick: read_last_tick,
            shut_down: read_shut_down,
            closed: read_closed,
            pending_actions,
            active: read_active,
            shards: read_shards,
            tickets,
            tickets_issued,
            shutdown: read_shutdown,
        } = read;
        *now == *read_now
            && *last_tick == *read_last_tick
            && *shut_down == *read_shut_down
            && *closed == *read_closed
            && actions.len() == *pending_actions
            && active.list == *read_active
            && shards.len() == read_shards.len()
            && shards
                .iter()
                .zip(read_shards)
                .all(|(s, read)| s.is(pool, read))
            && pool.tickets_issued() == *tickets_issued
            && pool.tickets_are(tickets)
            && match (shutdown, read_shutdown) {
                (None, None) => true,
                (Some(s), Some(read)) => {
                    let Shutdown { grace, stopped } = read;
                    shutdown_grace(s) == *grace
                        && s.stopped.len() == stopped.len()
                        && s.stopped
                            .iter()
                            .zip(stopped)
                            .all(|((id, unstop), (read_id, read))| {
                                id == read_id && unstop.inspect() == *read
                            })
                }
                _ => false,
            }
    }
}

/// The shutdown's grace: its plan's wait for retries is built with it (`shutdown::plan`).
fn shutdown_grace(shutdown: &crate::shutdown::Shutdown) -> core::time::Duration {
    shutdown
        .plan
        .phase(ShutdownPhase::WaitForRetries.id())
        .map_or(core::time::Duration::ZERO, |p| p.max_wait_duration())
}

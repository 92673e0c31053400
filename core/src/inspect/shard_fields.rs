//! [`Buffer::inspect`](crate::Buffer::inspect)'s reading of a shard's machine (a child of
//! `shard_buffer`, so it sees its fields; see [`crate::inspect`]).

use super::{Detail, Episode, ShardBuffer, Unstop};
use crate::inspect;
use crate::pause::{Hold, Pause};
use crate::queue::Pool;
use crate::ticket::Ticket;
use alloc::vec::Vec;

impl ShardBuffer {
    /// The shard's state, its queue written into `queue`'s allocation.
    pub(crate) fn inspect(&self, pool: &Pool, queue_read: Vec<Ticket>) -> inspect::Shard {
        // Every field named: one added does not compile here until it is copied or its
        // omission explained. Whether the detail is allocated is not state: a shard without
        // it reads as one that never failed over. The wait histograms are read by no rule.
        let ShardBuffer {
            mode,
            state,
            last_reparent,
            primary,
            highest_term,
            detail: _,
        } = self;
        let Detail {
            queue,
            drain_in_flight,
            drain_excess,
            episode,
            last_end,
            stats,
            waits: _,
            hold,
        } = self.d();
        let Hold { pause, pause_drain } = *hold;
        inspect::Shard {
            mode: *mode,
            state: *state,
            queue: pool.inspect_queue(queue, queue_read),
            drain_in_flight: *drain_in_flight,
            drain_excess: *drain_excess,
            episode: episode.inspect(),
            last_end: *last_end,
            pause: pause.map(Pause::inspect),
            pause_drain,
            last_reparent: *last_reparent,
            primary: *primary,
            highest_term: *highest_term,
            stats: *stats,
        }
    }
}

impl ShardBuffer {
    /// Whether [`inspect`](Self::inspect) would read `read`, without writing a copy; every
    /// field named, as there.
    pub(crate) fn is(&self, pool: &Pool, read: &inspect::Shard) -> bool {
        let ShardBuffer {
            mode,
            state,
            last_reparent,
            primary,
            highest_term,
            detail: _,
        } = self;
        let Detail {
            queue,
            drain_in_flight,
            drain_excess,
            episode,
            last_end,
            stats,
            waits: _,
            hold,
        } = self.d();
        let Hold { pause, pause_drain } = *hold;
        let inspect::Shard {
            mode: read_mode,
            state: read_state,
            queue: read_queue,
            drain_in_flight: read_drain_in_flight,
            drain_excess: read_drain_excess,
            episode: read_episode,
            last_end: read_last_end,
            pause: read_pause,
            pause_drain: read_pause_drain,
            last_reparent: read_last_reparent,
            primary: read_primary,
            highest_term: read_highest_term,
            stats: read_stats,
        } = read;
        *mode == *read_mode
            && *state == *read_state
            && *drain_in_flight == *read_drain_in_flight
            && *drain_excess == *read_drain_excess
            && *read_episode == episode.inspect()
            && *last_end == *read_last_end
            && *read_pause == pause.map(Pause::inspect)
            && pause_drain == *read_pause_drain
            && *last_reparent == *read_last_reparent
            && *primary == *read_primary
            && *highest_term == *read_highest_term
            && *stats == *read_stats
            && pool.queue_is(queue, read_queue)
    }
}

impl Episode {
    /// The episode as [`inspect`](ShardBuffer::inspect) reads it: every field named.
    fn inspect(&self) -> inspect::Episode {
        let Episode {
            start,
            start_term,
            saw_not_serving,
            stopped,
            last_stop,
            release,
            drain_start,
            resume_at,
            first_hold,
            last_release,
        } = *self;
        inspect::Episode {
            start,
            start_term,
            saw_not_serving,
            stopped,
            last_stop,
            release,
            drain_start,
            resume_at,
            first_hold,
            last_release,
        }
    }
}

impl Pause {
    /// The operator pause as [`inspect`](ShardBuffer::inspect) reads it.
    fn inspect(self) -> inspect::Pause {
        let Pause {
            since,
            until,
            under,
        } = self;
        inspect::Pause {
            since,
            until,
            under,
        }
    }
}

impl Unstop {
    pub(crate) fn inspect(&self) -> inspect::Unstop {
        let Unstop {
            stopped,
            last_stop,
            resume_at,
            drain_start,
            last_end,
        } = *self;
        inspect::Unstop {
            stopped,
            last_stop,
            resume_at,
            drain_start,
            last_end,
        }
    }
}

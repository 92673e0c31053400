//! Health: who the primary is, with what term, and whether it accepts writes, turned into
//! the buffer's `HealthStamp`s.
//!
//! * [`fixed`]: a fixed list of servers, each polled with `ROLE` (and `INFO replication` for
//!   the replication id); the term is a counter bumped when a different server, or the same
//!   one with a new replication id, reports itself primary.
//! * [`sentinel`]: Redis Sentinel names the primary; the term is its `config-epoch`.
//! * [`cluster`]: Redis Cluster, one buffer shard per cluster shard; the primary is its node
//!   id, the term its `configEpoch`.
//!
//! Both report every poll (the buffer ignores repeats) and both route to a new primary
//! *before* reporting it, since the report releases held requests at once.

pub mod cluster;
pub mod fixed;
pub mod sentinel;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use failover_buffer_tokio::{FailoverBuffer, HealthStamp, PrimaryId, Shard};

use crate::resp::{self, Frame, RespConn};
use crate::route::{Backends, Route};

/// How a watcher knows that a primary serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// It asks the primary itself (`ROLE`), each poll: a serving report comes from a probe
    /// made after the previous report.
    ByProbe,
    /// It reads the cluster's view of it (`CLUSTER SHARDS`): gossip calls a dead node online
    /// until its node timeout, so a serving report is no proof that it answers now.
    ByClusterView,
}

/// Turns what a watcher sees into a route change and a health stamp, in that order.
#[derive(Debug)]
pub(crate) struct Reporter {
    pub(crate) buffer: FailoverBuffer,
    pub(crate) shard: Shard,
    pub(crate) route: Arc<Route>,
    pub(crate) backends: Arc<Backends>,
    last: Option<HealthStamp>,
    last_addr: Option<SocketAddr>,
    /// How this reporter's watcher knows that a primary serves.
    seen: Seen,
    /// Per server, its [`connection_failures`](crate::route::Backend::connection_failures)
    /// as of the last report of it as primary.
    failures_seen: HashMap<SocketAddr, u64>,
}

impl Reporter {
    pub(crate) fn new(
        buffer: FailoverBuffer,
        shard: Shard,
        route: Arc<Route>,
        backends: Arc<Backends>,
        seen: Seen,
    ) -> Reporter {
        Reporter {
            seen,
            buffer,
            shard,
            route,
            backends,
            last: None,
            last_addr: None,
            failures_seen: HashMap::new(),
        }
    }

    /// `addr` is the primary with `term`; `serving` says whether it accepts writes now.
    pub(crate) fn primary(&mut self, addr: SocketAddr, term: u64, serving: bool) {
        let id = self.backends.get(addr).id;
        self.primary_as(addr, id, term, serving);
    }

    /// [`primary`](Self::primary), with an identity other than the address (a cluster node
    /// id).
    ///
    /// With a watcher that probes the primary ([`Seen::ByProbe`]), a primary found serving
    /// is reported *not* serving once if a command's connection to it failed since its last
    /// report ([`Backend::connection_failed`]): the command's path saw what the probe may
    /// have missed. The next report, from a probe made after this one, says serving if
    /// nothing failed meanwhile, and the buffer ends the episode the failure started (the
    /// same primary came back). Without this, a one-off reset of a healthy primary's
    /// connections held its shard's commands for the whole window (10 s by default) and
    /// buffered new ones up to `max_failover_duration`: no report changed, so nothing ended
    /// the episode (`tests/connection_blip.rs`). A primary that keeps failing commands
    /// stays not serving; a dead one fails the probe as before. With the cluster's view
    /// ([`Seen::ByClusterView`]) a serving report proves nothing about a failed connection
    /// (a killed primary stays online in it for the node timeout, and an episode ended on
    /// that view sent commands to the dead primary, unbuffered), so it is reported as seen.
    ///
    /// [`Backend::connection_failed`]: crate::route::Backend::connection_failed
    pub(crate) fn primary_as(&mut self, addr: SocketAddr, id: PrimaryId, term: u64, serving: bool) {
        let backend = self.backends.get(addr);
        let failures = backend.connection_failures();
        let seen = self
            .failures_seen
            .insert(addr, failures)
            .unwrap_or(failures);
        let commands_failed = failures != seen && self.seen == Seen::ByProbe;
        let stamp = HealthStamp {
            primary: id,
            term,
            serving: serving && !commands_failed,
        };
        // Route first: the report below may release held requests at once.
        if self.route.set(Arc::clone(&backend)) {
            tracing::info!(shard = self.shard.name(), primary = %addr, term, "routing to a new primary");
            metrics::counter!("redis_router_primary_changes", "shard" => self.shard.name().to_owned())
                .increment(1);
            if let Some(old) = self.last_addr {
                self.backends.get(old).pool.clear();
            }
        }
        self.last_addr = Some(addr);
        self.report(stamp);
    }

    /// `addr` (with `term`) is being failed over: nothing is sent to it from now on, and it
    /// is reported not serving. Commands meet "no primary" and are held until the new
    /// primary is routed to.
    pub(crate) fn fence(&mut self, addr: SocketAddr, term: u64) {
        let backend = self.backends.get(addr);
        if self.route.clear() {
            tracing::info!(shard = self.shard.name(), primary = %addr, term, "failover in progress: no longer routing to the primary");
        }
        self.last_addr = Some(addr);
        self.report(HealthStamp {
            primary: backend.id,
            term,
            serving: false,
        });
    }

    /// No server is primary now: the last primary is reported not serving.
    pub(crate) fn no_primary(&mut self) {
        if let Some(last) = self.last {
            self.report(HealthStamp {
                serving: false,
                ..last
            });
        }
    }

    fn report(&mut self, stamp: HealthStamp) {
        if self.last != Some(stamp) {
            tracing::info!(
                shard = self.shard.name(),
                primary = ?self.last_addr,
                term = stamp.term,
                serving = stamp.serving,
                "primary health changed"
            );
            metrics::gauge!("redis_router_primary_serving", "shard" => self.shard.name().to_owned())
                .set(if stamp.serving { 1.0 } else { 0.0 });
            metrics::gauge!("redis_router_primary_term", "shard" => self.shard.name().to_owned())
                .set(stamp.term as f64);
        }
        self.last = Some(stamp);
        if let Err(e) = self.buffer.health(&self.shard, stamp) {
            tracing::debug!(shard = self.shard.name(), error = %e, "health stamp refused");
        }
    }
}

/// What `ROLE` and `INFO replication` said of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Role {
    pub(crate) master: bool,
    pub(crate) replid: String,
}

/// Asks `conn`'s server for its role and replication id.
pub(crate) async fn query_role(conn: &mut RespConn, timeout: Duration) -> Option<Role> {
    let replies = conn
        .pipeline(
            &[
                resp::command(&["ROLE"]),
                resp::command(&["INFO", "replication"]),
            ],
            timeout,
        )
        .await
        .ok()?;
    let master = match &replies[0] {
        Frame::Array(parts) => parts.first().and_then(resp::text) == Some("master"),
        _ => return None,
    };
    let info = resp::text(&replies[1])?;
    let replid = info
        .lines()
        .find_map(|l| l.strip_prefix("master_replid:"))
        .unwrap_or("")
        .trim()
        .to_owned();
    Some(Role { master, replid })
}

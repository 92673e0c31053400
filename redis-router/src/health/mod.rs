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

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use failover_buffer_tokio::{FailoverBuffer, HealthStamp, PrimaryId, Shard};

use crate::resp::{self, Frame, RespConn};
use crate::route::{Backends, Route};

/// Turns what a watcher sees into a route change and a health stamp, in that order.
#[derive(Debug)]
pub(crate) struct Reporter {
    pub(crate) buffer: FailoverBuffer,
    pub(crate) shard: Shard,
    pub(crate) route: Arc<Route>,
    pub(crate) backends: Arc<Backends>,
    last: Option<HealthStamp>,
    last_addr: Option<SocketAddr>,
    /// Per server, its [`connection_failures`](crate::route::Backend::connection_failures)
    /// as of the last report of it as primary.
    failures_seen: HashMap<SocketAddr, u64>,
    /// Servers reported not serving because commands failed on them, until a probe finds
    /// them serving again.
    unconfirmed: HashSet<SocketAddr>,
}

impl Reporter {
    pub(crate) fn new(
        buffer: FailoverBuffer,
        shard: Shard,
        route: Arc<Route>,
        backends: Arc<Backends>,
    ) -> Reporter {
        Reporter {
            buffer,
            shard,
            route,
            backends,
            last: None,
            last_addr: None,
            failures_seen: HashMap::new(),
            unconfirmed: HashSet::new(),
        }
    }

    /// `addr` is the primary with `term`; `serving` says whether it accepts writes now.
    pub(crate) fn primary(&mut self, addr: SocketAddr, term: u64, serving: bool) {
        let id = self.backends.get(addr).id;
        self.primary_as(addr, id, term, serving);
    }

    /// [`primary`](Self::primary), with an identity other than the address (a cluster node
    /// id). `serving` comes from a probe of `addr` made after the last report.
    pub(crate) fn primary_as(&mut self, addr: SocketAddr, id: PrimaryId, term: u64, serving: bool) {
        self.primary_seen(addr, id, term, serving, true);
    }

    /// The servers whose next report as primary needs a probe of them first: commands
    /// failed on them since their last report, or no probe has found them serving since
    /// they did (see [`primary_seen`](Self::primary_seen)). Only servers this reporter has
    /// reported are looked at, so a poll asks each shard about a few servers, not about
    /// every node.
    pub(crate) fn suspected(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        let failed_since = self.failures_seen.iter().filter_map(|(&addr, &seen)| {
            (seen != self.backends.get(addr).connection_failures()).then_some(addr)
        });
        self.unconfirmed.iter().copied().chain(failed_since)
    }

    /// `addr` is the primary with `term`; `serving` says whether it accepts writes now, and
    /// `probed` whether that includes a probe of `addr` itself made after the last report
    /// (the cluster watcher reads the cluster's view, and probes only a server
    /// [suspected](Self::suspected)).
    ///
    /// A command's failed connection is evidence as well ([`Backend::connection_failed`]):
    /// the command's path saw what the watcher may have missed. So a primary on which
    /// commands failed since its last report is reported *not* serving, and stays so until a
    /// probe made after that report finds it serving with no command failed meanwhile: the
    /// buffer then sees the same primary come back and ends the episode the failures
    /// started. Without this, a one-off reset of a healthy primary's connections held its
    /// shard's commands for the whole window (10 s by default) and buffered new ones up to
    /// `max_failover_duration`, since no report changed (`tests/connection_blip.rs`). A
    /// report without a probe does not end it: the cluster's view calls a killed primary
    /// online until its node timeout (tried: an episode ended on it sent commands to the
    /// dead node, unbuffered).
    ///
    /// [`Backend::connection_failed`]: crate::route::Backend::connection_failed
    pub(crate) fn primary_seen(
        &mut self,
        addr: SocketAddr,
        id: PrimaryId,
        term: u64,
        serving: bool,
        probed: bool,
    ) {
        let backend = self.backends.get(addr);
        let failures = backend.connection_failures();
        let seen = self
            .failures_seen
            .insert(addr, failures)
            .unwrap_or(failures);
        let serving = if failures != seen {
            self.unconfirmed.insert(addr);
            false
        } else if self.unconfirmed.contains(&addr) {
            let confirmed = probed && serving;
            if confirmed {
                self.unconfirmed.remove(&addr);
            }
            confirmed
        } else {
            serving
        };
        let stamp = HealthStamp {
            primary: id,
            term,
            serving,
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

/// Whether the server at `addr` answers, on a new connection, that it is a primary.
pub(crate) async fn probe_primary(addr: SocketAddr, timeout: Duration) -> bool {
    match RespConn::connect(addr, timeout).await {
        Ok(mut conn) => query_role(&mut conn, timeout)
            .await
            .is_some_and(|role| role.master),
        Err(_) => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_primary_whose_commands_failed_serves_again_only_once_a_later_probe_says_so() {
        let buffer = FailoverBuffer::new(failover_buffer_tokio::Config {
            enabled: true,
            ..Default::default()
        })
        .unwrap();
        let shard = buffer.register_shard("redis", "r");
        let backends = Arc::new(Backends::new(1, Duration::from_millis(100)));
        let route = Arc::new(Route::default());
        let mut reporter = Reporter::new(buffer, shard, route, Arc::clone(&backends));
        let addr: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let id = backends.get(addr).id;
        let serving = |r: &Reporter| r.last.map(|stamp| stamp.serving);

        reporter.primary_seen(addr, id, 1, true, false);
        assert_eq!(serving(&reporter), Some(true));
        assert_eq!(reporter.suspected().count(), 0);

        backends.get(addr).connection_failed();
        assert_eq!(reporter.suspected().collect::<Vec<_>>(), vec![addr]);
        reporter.primary_seen(addr, id, 1, true, true);
        assert_eq!(serving(&reporter), Some(false), "a command saw it fail");
        reporter.primary_seen(addr, id, 1, true, false);
        assert_eq!(
            serving(&reporter),
            Some(false),
            "a report without a probe does not say it serves again"
        );
        assert_eq!(reporter.suspected().collect::<Vec<_>>(), vec![addr]);
        reporter.primary_seen(addr, id, 1, true, true);
        assert_eq!(
            serving(&reporter),
            Some(true),
            "a later probe found it serving"
        );
        assert_eq!(reporter.suspected().count(), 0);
    }
}

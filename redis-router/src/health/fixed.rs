//! Health from a fixed list of servers: `ROLE` on each, every poll interval.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Reporter, Role, query_role};
use crate::resp::RespConn;

/// The state of the fixed-list watcher between polls.
#[derive(Debug)]
pub(crate) struct FixedWatcher {
    servers: Vec<SocketAddr>,
    conns: Vec<Option<RespConn>>,
    current: Option<(SocketAddr, String)>,
    term: u64,
    timeout: Duration,
}

impl FixedWatcher {
    pub(crate) fn new(servers: Vec<SocketAddr>, timeout: Duration) -> FixedWatcher {
        let conns = servers.iter().map(|_| None).collect();
        FixedWatcher {
            servers,
            conns,
            current: None,
            term: 0,
            timeout,
        }
    }

    /// Polls every server once and reports what it saw.
    pub(crate) async fn poll(&mut self, reporter: &mut Reporter) {
        let mut masters: Vec<(SocketAddr, Role)> = Vec::new();
        for (i, &addr) in self.servers.iter().enumerate() {
            if self.conns[i].is_none() {
                self.conns[i] = RespConn::connect(addr, self.timeout).await.ok();
            }
            let Some(conn) = self.conns[i].as_mut() else {
                continue;
            };
            match query_role(conn, self.timeout).await {
                Some(role) if role.master => masters.push((addr, role)),
                Some(_) => {}
                None => self.conns[i] = None,
            }
        }
        let keep = self.current.as_ref().and_then(|(addr, replid)| {
            masters
                .iter()
                .find(|(a, r)| a == addr && &r.replid == replid)
                .map(|(a, _)| *a)
        });
        let chosen = match keep {
            Some(addr) => Some(addr),
            None => masters.first().map(|(addr, role)| {
                if masters.len() > 1 {
                    tracing::warn!(
                        ?masters,
                        "more than one server says it is primary; taking the first"
                    );
                }
                self.term += 1;
                self.current = Some((*addr, role.replid.clone()));
                *addr
            }),
        };
        match chosen {
            Some(addr) => reporter.primary(addr, self.term, true),
            None => reporter.no_primary(),
        }
    }

    /// Polls forever, every `interval`.
    pub(crate) async fn run(mut self, mut reporter: Reporter, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.poll(&mut reporter).await;
        }
    }
}

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
        let chosen = self.choose(&masters);
        match chosen {
            Some(addr) => reporter.primary(addr, self.term, true),
            None => reporter.no_primary(),
        }
    }

    /// The primary among the servers that say they are one, and bumps the term when it is a
    /// different server, or the same one with a new replication id (restarted empty, or
    /// promoted again). A primary that still says so is kept, even if another one appears.
    fn choose(&mut self, masters: &[(SocketAddr, Role)]) -> Option<SocketAddr> {
        let kept = self.current.as_ref().is_some_and(|(addr, replid)| {
            masters
                .iter()
                .any(|(a, r)| a == addr && &r.replid == replid)
        });
        if kept {
            return self.current.as_ref().map(|(addr, _)| *addr);
        }
        let (addr, role) = masters.first()?;
        if masters.len() > 1 {
            tracing::warn!(
                ?masters,
                "more than one server says it is primary; taking the first"
            );
        }
        self.term += 1;
        self.current = Some((*addr, role.replid.clone()));
        Some(*addr)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn master(port: u16, replid: &str) -> (SocketAddr, Role) {
        (
            SocketAddr::from(([127, 0, 0, 1], port)),
            Role {
                master: true,
                replid: replid.into(),
            },
        )
    }

    fn watcher() -> FixedWatcher {
        FixedWatcher::new(Vec::new(), Duration::from_millis(100))
    }

    #[test]
    fn the_same_primary_keeps_its_term() {
        let mut w = watcher();
        assert_eq!(w.choose(&[master(1, "a")]), Some(master(1, "a").0));
        assert_eq!(w.choose(&[master(1, "a")]), Some(master(1, "a").0));
        assert_eq!(w.term, 1);
    }

    #[test]
    fn another_server_or_a_new_replication_id_bumps_the_term() {
        let mut w = watcher();
        w.choose(&[master(1, "a")]);
        assert_eq!(w.choose(&[master(2, "b")]), Some(master(2, "b").0));
        assert_eq!(w.term, 2);
        // The same address with a new replication id: restarted, or promoted again.
        w.choose(&[master(2, "c")]);
        assert_eq!(w.term, 3);
    }

    #[test]
    fn no_primary_keeps_the_term_and_a_second_primary_does_not_displace_the_first() {
        let mut w = watcher();
        w.choose(&[master(1, "a")]);
        assert_eq!(w.choose(&[]), None);
        assert_eq!(w.term, 1);
        assert_eq!(
            w.choose(&[master(2, "b"), master(1, "a")]),
            Some(master(1, "a").0)
        );
        assert_eq!(w.term, 1);
    }
}

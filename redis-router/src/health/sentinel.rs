//! Health from Redis Sentinel: the primary's address and `config-epoch`, a subscription to
//! its events, and `ROLE` on the primary for writability.

use std::collections::HashMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::{Reporter, query_role};
use crate::resp::{self, ConnError, Frame, RespConn};

/// The Sentinel channels the watcher subscribes to.
const CHANNELS: &[&str] = &[
    "+switch-master",
    "+sdown",
    "-sdown",
    "+odown",
    "-odown",
    "+try-failover",
    "+selected-slave",
    "-failover-abort-not-elected",
    "-failover-abort-no-good-slave",
    "-failover-abort-slave-timeout",
];

/// Why the router could not learn its primary from Sentinel at start.
#[derive(Debug)]
pub enum SentinelError {
    /// No Sentinel in the list answered.
    Unreachable {
        /// Each Sentinel tried, with its error.
        tried: Vec<(SocketAddr, String)>,
    },
    /// The Sentinels answered, but none monitors a master of that name.
    UnknownMaster {
        /// The master name asked for.
        name: String,
        /// The Sentinels that said they do not know it.
        sentinels: Vec<SocketAddr>,
    },
}

impl fmt::Display for SentinelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SentinelError::Unreachable { tried } => {
                write!(f, "no Sentinel reachable:")?;
                for (addr, e) in tried {
                    write!(f, " {addr}: {e};")?;
                }
                Ok(())
            }
            SentinelError::UnknownMaster { name, sentinels } => write!(
                f,
                "no Sentinel monitors a master named {name:?} (asked {sentinels:?}); check the name in `sentinel monitor`"
            ),
        }
    }
}

impl std::error::Error for SentinelError {}

/// What `SENTINEL MASTER <name>` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MasterInfo {
    pub(crate) addr: SocketAddr,
    pub(crate) config_epoch: u64,
    pub(crate) flags: String,
}

/// Asks `get-master-addr-by-name` of each Sentinel in turn; the first that knows `name`
/// answers.
pub(crate) async fn resolve(
    sentinels: &[SocketAddr],
    name: &str,
    timeout: Duration,
) -> Result<(SocketAddr, usize), SentinelError> {
    let mut tried = Vec::new();
    let mut unknown = Vec::new();
    for (i, &sentinel) in sentinels.iter().enumerate() {
        let mut conn = match RespConn::connect(sentinel, timeout).await {
            Ok(conn) => conn,
            Err(e) => {
                tried.push((sentinel, e.to_string()));
                continue;
            }
        };
        let cmd = resp::command(&["SENTINEL", "get-master-addr-by-name", name]);
        match conn.request(&cmd, timeout).await {
            Ok(Frame::Array(parts)) if parts.len() == 2 => {
                let (Some(ip), Some(port)) = (resp::text(&parts[0]), resp::text(&parts[1])) else {
                    tried.push((sentinel, "malformed reply".into()));
                    continue;
                };
                match to_addr(ip, port) {
                    Some(addr) => return Ok((addr, i)),
                    None => tried.push((sentinel, format!("unresolvable address {ip}:{port}"))),
                }
            }
            Ok(Frame::Null) => unknown.push(sentinel),
            Ok(other) => tried.push((sentinel, format!("unexpected reply {other:?}"))),
            Err(e) => tried.push((sentinel, e.to_string())),
        }
    }
    if unknown.is_empty() {
        Err(SentinelError::Unreachable { tried })
    } else {
        Err(SentinelError::UnknownMaster {
            name: name.to_owned(),
            sentinels: unknown,
        })
    }
}

fn to_addr(ip: &str, port: &str) -> Option<SocketAddr> {
    let port: u16 = port.parse().ok()?;
    (ip, port).to_socket_addrs().ok()?.next()
}

/// Parses `SENTINEL MASTER`'s flat field/value array.
pub(crate) fn parse_master(reply: &Frame) -> Option<MasterInfo> {
    let Frame::Array(parts) = reply else {
        return None;
    };
    let fields: HashMap<&str, &str> = parts
        .chunks(2)
        .filter_map(|kv| Some((resp::text(kv.first()?)?, resp::text(kv.get(1)?)?)))
        .collect();
    Some(MasterInfo {
        addr: to_addr(fields.get("ip")?, fields.get("port")?)?,
        config_epoch: fields.get("config-epoch")?.parse().ok()?,
        flags: (*fields.get("flags")?).to_owned(),
    })
}

/// Follows one master through a list of Sentinels, moving to the next when one dies.
#[derive(Debug)]
pub(crate) struct SentinelWatcher {
    pub(crate) sentinels: Vec<SocketAddr>,
    pub(crate) name: String,
    pub(crate) next: usize,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    primary_conn: Option<RespConn>,
    /// What the Sentinels have said so far, and what the router makes of it.
    tracker: MasterTracker,
}

/// What a Sentinel's leader announces about a failover of our master, and which address
/// the master had when it did: a late announcement about a master already replaced must
/// not fence its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaderSignal {
    /// `+elected-leader` or `+selected-slave`: a failover of that master is under way.
    Started(SocketAddr),
    /// The leader gave up (`-failover-abort-no-good-slave`, `-failover-abort-slave-timeout`).
    Aborted(SocketAddr),
}

/// Channels only the Sentinel that runs a failover publishes on (a Sentinel that loses the
/// election publishes `-failover-abort-not-elected`, which says nothing about the leader).
const LEADER_CHANNELS: &[&str] = &[
    "+elected-leader",
    "+selected-slave",
    "-failover-abort-no-good-slave",
    "-failover-abort-slave-timeout",
];

/// Subscribes to one Sentinel's leader channels forever (reconnecting every second when it
/// is down) and passes on what it hears about `name`.
async fn listen_for_leader(
    sentinel: SocketAddr,
    name: String,
    timeout: Duration,
    signals: tokio::sync::mpsc::Sender<LeaderSignal>,
) {
    loop {
        let heard = async {
            let mut conn = RespConn::connect(sentinel, timeout)
                .await
                .map_err(|e| ConnError::before_send(&e))?;
            let mut subscribe = vec!["SUBSCRIBE"];
            subscribe.extend_from_slice(LEADER_CHANNELS);
            conn.send(&resp::command(&subscribe)).await?;
            loop {
                let frame = conn.read_frame().await?;
                let Some((channel, payload)) = message(&frame) else {
                    continue;
                };
                let Some(master) = failed_over_master(payload, &name) else {
                    continue;
                };
                let signal = if channel.starts_with('+') {
                    LeaderSignal::Started(master)
                } else {
                    LeaderSignal::Aborted(master)
                };
                tracing::info!(%sentinel, channel, payload, "Sentinel leader event");
                if signals.send(signal).await.is_err() {
                    return Ok::<(), ConnError>(());
                }
            }
        };
        if heard.await.is_ok() {
            return; // the watcher is gone
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl SentinelWatcher {
    pub(crate) fn new(
        sentinels: Vec<SocketAddr>,
        name: String,
        first: usize,
        interval: Duration,
        timeout: Duration,
        fence_limit: Duration,
    ) -> SentinelWatcher {
        SentinelWatcher {
            sentinels,
            name,
            next: first,
            interval,
            timeout,
            primary_conn: None,
            tracker: MasterTracker::new(fence_limit),
        }
    }

    /// Watches forever.
    ///
    /// Besides following one Sentinel, it listens to every Sentinel for the leader's
    /// announcement that a failover began, since any of them may lead it.
    pub(crate) async fn run(mut self, mut reporter: Reporter) {
        // Dropped with this future (the router's drop aborts it): the listeners end too.
        let mut listeners = tokio::task::JoinSet::new();
        let (signal_tx, mut signals) = tokio::sync::mpsc::channel(16);
        for &sentinel in &self.sentinels {
            listeners.spawn(listen_for_leader(
                sentinel,
                self.name.clone(),
                self.timeout,
                signal_tx.clone(),
            ));
        }
        loop {
            let sentinel = self.sentinels[self.next % self.sentinels.len()];
            match self.follow(sentinel, &mut reporter, &mut signals).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(%sentinel, error = %e, "lost the Sentinel; trying the next")
                }
            }
            self.next = (self.next + 1) % self.sentinels.len();
            tokio::time::sleep(self.interval).await;
        }
    }

    /// Subscribes to one Sentinel and checks the master every interval, until that
    /// Sentinel fails.
    async fn follow(
        &mut self,
        sentinel: SocketAddr,
        reporter: &mut Reporter,
        signals: &mut tokio::sync::mpsc::Receiver<LeaderSignal>,
    ) -> Result<(), ConnError> {
        let timeout = self.timeout;
        let connect = |addr| async move {
            RespConn::connect(addr, timeout)
                .await
                .map_err(|e| ConnError::before_send(&e))
        };
        let mut events = connect(sentinel).await?;
        let mut query = connect(sentinel).await?;
        let mut subscribe = vec!["SUBSCRIBE"];
        subscribe.extend_from_slice(CHANNELS);
        events.send(&resp::command(&subscribe)).await?;
        for _ in CHANNELS {
            events.read_frame().await?;
        }
        tracing::info!(%sentinel, master = %self.name, "following Sentinel");
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = events.read_frame() => {
                    let event = event?;
                    if let Some((channel, payload)) = message(&event) {
                        if payload.split(' ').any(|w| w == self.name) {
                            tracing::info!(%sentinel, channel, payload, "Sentinel event");
                            self.check(&mut query, reporter).await?;
                        }
                    }
                }
                Some(signal) = signals.recv() => {
                    if !self.tracker.leader(signal, tokio::time::Instant::now()) {
                        tracing::info!(master = %self.name, ?signal, "a leader's event about a master already replaced; ignored");
                    }
                    self.check(&mut query, reporter).await?;
                }
                _ = tick.tick() => self.check(&mut query, reporter).await?,
            }
        }
    }

    /// `SENTINEL MASTER` for address and epoch, then `ROLE` on that address.
    async fn check(
        &mut self,
        query: &mut RespConn,
        reporter: &mut Reporter,
    ) -> Result<(), ConnError> {
        let reply = query
            .request(
                &resp::command(&["SENTINEL", "MASTER", &self.name]),
                self.timeout,
            )
            .await?;
        let Some(master) = parse_master(&reply) else {
            tracing::warn!(master = %self.name, ?reply, "Sentinel does not describe the master");
            return Ok(());
        };
        if let Some(newest) = self.tracker.newer_than(&master) {
            // A Sentinel that has not yet learnt of a failover the router already followed
            // (one is asked after another failed, or answered late): its answer would route
            // back to the replaced primary.
            tracing::info!(master = %self.name, said = %master.addr, epoch = master.config_epoch, newest = %newest.0, newest_epoch = newest.1, "a Sentinel's answer is older than one already followed; ignored");
            return Ok(());
        }
        if self
            .primary_conn
            .as_ref()
            .is_some_and(|c| c.peer() != master.addr)
        {
            self.primary_conn = None;
        }
        if self.primary_conn.is_none() {
            self.primary_conn = RespConn::connect(master.addr, self.timeout).await.ok();
        }
        let writable = match self.primary_conn.as_mut() {
            Some(conn) => match query_role(conn, self.timeout).await {
                Some(role) => role.master,
                None => {
                    self.primary_conn = None;
                    false
                }
            },
            None => false,
        };
        match self
            .tracker
            .judge(&master, writable, tokio::time::Instant::now())
        {
            Verdict::Fence => reporter.fence(master.addr, master.config_epoch),
            Verdict::Primary { serving } => {
                reporter.primary(master.addr, master.config_epoch, serving)
            }
        }
        Ok(())
    }
}

/// What the router makes of one up-to-date `SENTINEL MASTER` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The master is being failed over: send it nothing, report it not serving.
    Fence,
    /// The master is the primary; `serving` says whether it takes writes now.
    Primary { serving: bool },
}

/// The watcher's memory, kept apart from its connections so that every rule is a plain
/// function of what the Sentinels said.
///
/// Sentinels disagree for a while during a failover: the leader has switched while the
/// others learn of it from its hello messages, and a Sentinel that loses an election may
/// still announce one later. The tracker keeps the newest configuration seen (a master's
/// `config-epoch` only grows) and ignores what is older, so an answer or an announcement
/// about a replaced master never moves the route back.
///
/// A monitor re-created with `SENTINEL REMOVE`/`MONITOR` starts its epochs again at 0:
/// restart the router after that, since it would take every later answer as stale.
#[derive(Debug)]
struct MasterTracker {
    /// How long a fence may last without a switch or an abort before the router gives up
    /// on it (the buffer's `max_failover_duration`).
    fence_limit: Duration,
    /// The newest master followed, with its config epoch.
    newest: Option<(SocketAddr, u64)>,
    /// Set when some Sentinel began failing the newest master over: (that master, since
    /// when).
    fenced: Option<(SocketAddr, tokio::time::Instant)>,
}

impl MasterTracker {
    fn new(fence_limit: Duration) -> MasterTracker {
        MasterTracker {
            fence_limit,
            newest: None,
            fenced: None,
        }
    }

    /// The newest master followed, if `master` names another address and is older: a lower
    /// config epoch, or the same epoch from the leader still mid-failover (it sets the new
    /// epoch when the replica it promotes answers as primary, but names the old address,
    /// `failover_in_progress`, until its switch; the other Sentinels name the new one).
    ///
    /// An answer about the followed address is never older: a lower epoch there is a
    /// Sentinel that never saw the leader's promotion (the leader died before its switch),
    /// and it still goes to [`judge`](Self::judge), where a fence's limit can expire.
    fn newer_than(&self, master: &MasterInfo) -> Option<(SocketAddr, u64)> {
        self.newest.filter(|&(addr, epoch)| {
            addr != master.addr
                && (master.config_epoch < epoch
                    || (master.config_epoch == epoch && in_progress(master)))
        })
    }

    /// Takes a leader's announcement; false when it is about a master other than the one
    /// followed (an election lost or won late, for a master already replaced), which
    /// changes nothing.
    fn leader(&mut self, signal: LeaderSignal, now: tokio::time::Instant) -> bool {
        let followed = self.newest.map(|(addr, _)| addr);
        match signal {
            LeaderSignal::Started(master) if Some(master) == followed => {
                if self.fenced.is_none() {
                    self.fenced = Some((master, now));
                }
                true
            }
            LeaderSignal::Aborted(master) if Some(master) == followed => {
                self.fenced = None;
                true
            }
            _ => false,
        }
    }

    /// Takes an answer that is not older than the newest (see
    /// [`newer_than`](Self::newer_than)), with whether its master took writes.
    fn judge(&mut self, master: &MasterInfo, writable: bool, now: tokio::time::Instant) -> Verdict {
        // The highest epoch seen of the followed address is kept.
        let epoch = match self.newest {
            Some((addr, epoch)) if addr == master.addr => epoch.max(master.config_epoch),
            _ => master.config_epoch,
        };
        self.newest = Some((master.addr, epoch));
        // While a Sentinel fails the master over, the old primary may still accept writes
        // that the promoted replica will never see (redis issue 4819): send it nothing. The
        // fence lasts until Sentinel names another master, the leader aborts, or the
        // buffer's max failover duration has passed.
        if let Some((fenced, since)) = self.fenced {
            if fenced != master.addr {
                self.fenced = None;
            } else if now.duration_since(since) > self.fence_limit {
                tracing::warn!(primary = %fenced, "a failover was announced but never completed; routing to the primary again");
                self.fenced = None;
            }
        }
        if in_progress(master) || self.fenced.is_some() {
            return Verdict::Fence;
        }
        let down = master
            .flags
            .split(',')
            .any(|f| f == "s_down" || f == "o_down");
        Verdict::Primary {
            serving: writable && !down,
        }
    }
}

/// Whether a Sentinel is failing `master` over (it leads that failover).
fn in_progress(master: &MasterInfo) -> bool {
    master.flags.split(',').any(|f| f == "failover_in_progress")
}

/// The master a leader's event is about, if it is `name`: `master <name> <ip> <port>` for an
/// event on the master itself (`+elected-leader`), `<type> <id> <ip> <port> @ <name> <ip>
/// <port>` for one on another instance (`+selected-slave`).
fn failed_over_master(payload: &str, name: &str) -> Option<SocketAddr> {
    let words: Vec<&str> = payload.split(' ').collect();
    let master = match words.iter().position(|&w| w == "@") {
        Some(at) => words.get(at + 1..at + 4)?,
        None if words.first() == Some(&"master") => words.get(1..4)?,
        None => return None,
    };
    if master[0] != name {
        return None;
    }
    to_addr(master[1], master[2])
}

/// A pub/sub message's channel and payload.
fn message(frame: &Frame) -> Option<(&str, &str)> {
    let Frame::Array(parts) = frame else {
        return None;
    };
    match parts.as_slice() {
        [kind, channel, payload] if resp::text(kind) == Some("message") => {
            Some((resp::text(channel)?, resp::text(payload)?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_master_fields_are_parsed() {
        let reply = resp::command(&[
            "name",
            "mymaster",
            "ip",
            "127.0.0.1",
            "port",
            "7001",
            "flags",
            "master",
            "config-epoch",
            "3",
        ]);
        let info = parse_master(&reply).unwrap();
        assert_eq!(info.addr, "127.0.0.1:7001".parse().unwrap());
        assert_eq!(info.config_epoch, 3);
        assert_eq!(info.flags, "master");
    }

    #[test]
    fn a_pubsub_message_is_read() {
        let frame = resp::command(&["message", "+switch-master", "m 127.0.0.1 1 127.0.0.1 2"]);
        assert_eq!(
            message(&frame),
            Some(("+switch-master", "m 127.0.0.1 1 127.0.0.1 2"))
        );
    }

    fn master(addr: &str, epoch: u64, flags: &str) -> MasterInfo {
        MasterInfo {
            addr: addr.parse().unwrap(),
            config_epoch: epoch,
            flags: flags.to_owned(),
        }
    }

    const OLD: &str = "127.0.0.1:7001";
    const NEW: &str = "127.0.0.1:7002";

    /// A tracker that has followed one failover: `OLD` at epoch 0, then `NEW` at epoch 1.
    fn after_a_failover(now: tokio::time::Instant) -> MasterTracker {
        let mut tracker = MasterTracker::new(Duration::from_secs(20));
        tracker.judge(&master(OLD, 0, "master"), true, now);
        assert!(tracker.leader(LeaderSignal::Started(OLD.parse().unwrap()), now));
        assert_eq!(
            tracker.judge(&master(OLD, 0, "master,s_down,o_down"), false, now),
            Verdict::Fence
        );
        assert_eq!(
            tracker.judge(&master(NEW, 1, "master"), true, now),
            Verdict::Primary { serving: true }
        );
        tracker
    }

    #[test]
    fn a_sentinel_that_has_not_seen_the_failover_is_not_followed_back() {
        // The flaky run of `killed_primary_fails_only_non_idempotent_commands_in_flight`:
        // after the drain, the router was routed away from the new primary again.
        let tracker = after_a_failover(tokio::time::Instant::now());
        let unswitched = master(OLD, 0, "master,s_down,o_down");
        assert_eq!(
            tracker.newer_than(&unswitched),
            Some((NEW.parse().unwrap(), 1))
        );
        assert_eq!(tracker.newer_than(&master(NEW, 1, "master")), None);
    }

    #[test]
    fn the_leader_mid_failover_at_the_new_epoch_does_not_move_the_route_back() {
        // The other Sentinels already name NEW at epoch 1; the leader, until its switch,
        // names OLD at epoch 1 with `failover_in_progress`.
        let tracker = after_a_failover(tokio::time::Instant::now());
        let leader = master(OLD, 1, "master,failover_in_progress");
        assert_eq!(tracker.newer_than(&leader), Some((NEW.parse().unwrap(), 1)));
    }

    #[test]
    fn a_fence_expires_when_the_leader_dies_before_its_switch() {
        // The router read the leader mid-failover (OLD at epoch 1); the leader died, and the
        // others, which never saw the promotion, still say OLD at epoch 0.
        let now = tokio::time::Instant::now();
        let mut tracker = MasterTracker::new(Duration::from_secs(20));
        tracker.judge(&master(OLD, 0, "master"), true, now);
        assert!(tracker.leader(LeaderSignal::Started(OLD.parse().unwrap()), now));
        let leader = master(OLD, 1, "master,failover_in_progress");
        assert_eq!(tracker.judge(&leader, false, now), Verdict::Fence);
        let others = master(OLD, 0, "master");
        assert_eq!(
            tracker.newer_than(&others),
            None,
            "the same address is judged"
        );
        assert_eq!(tracker.judge(&others, true, now), Verdict::Fence);
        let past_limit = now + Duration::from_secs(21);
        assert_eq!(
            tracker.judge(&others, true, past_limit),
            Verdict::Primary { serving: true }
        );
    }

    #[test]
    fn a_late_leader_announcement_about_the_replaced_master_does_not_fence_the_new_one() {
        let now = tokio::time::Instant::now();
        let mut tracker = after_a_failover(now);
        // A Sentinel elected late, for the master as it was, announces a failover of it.
        assert!(!tracker.leader(LeaderSignal::Started(OLD.parse().unwrap()), now));
        assert_eq!(
            tracker.judge(&master(NEW, 1, "master"), true, now),
            Verdict::Primary { serving: true }
        );
    }

    #[test]
    fn a_leader_announcement_about_the_followed_master_fences_it_until_the_limit() {
        let now = tokio::time::Instant::now();
        let mut tracker = after_a_failover(now);
        assert!(tracker.leader(LeaderSignal::Started(NEW.parse().unwrap()), now));
        let new = master(NEW, 1, "master");
        assert_eq!(tracker.judge(&new, true, now), Verdict::Fence);
        // A repeated announcement does not extend the fence.
        let later = now + Duration::from_secs(15);
        assert!(tracker.leader(LeaderSignal::Started(NEW.parse().unwrap()), later));
        assert_eq!(tracker.judge(&new, true, later), Verdict::Fence);
        let past_limit = now + Duration::from_secs(21);
        assert_eq!(
            tracker.judge(&new, true, past_limit),
            Verdict::Primary { serving: true }
        );
    }

    #[test]
    fn an_abort_about_another_master_keeps_the_fence() {
        let now = tokio::time::Instant::now();
        let mut tracker = after_a_failover(now);
        assert!(tracker.leader(LeaderSignal::Started(NEW.parse().unwrap()), now));
        assert!(!tracker.leader(LeaderSignal::Aborted(OLD.parse().unwrap()), now));
        assert_eq!(
            tracker.judge(&master(NEW, 1, "master"), true, now),
            Verdict::Fence
        );
        assert!(tracker.leader(LeaderSignal::Aborted(NEW.parse().unwrap()), now));
        assert_eq!(
            tracker.judge(&master(NEW, 1, "master"), true, now),
            Verdict::Primary { serving: true }
        );
    }

    #[test]
    fn the_master_of_a_leader_event_is_read_from_either_payload_form() {
        assert_eq!(
            failed_over_master("master mymaster 127.0.0.1 7001", "mymaster"),
            Some(OLD.parse().unwrap())
        );
        assert_eq!(
            failed_over_master(
                "slave 127.0.0.1:7002 127.0.0.1 7002 @ mymaster 127.0.0.1 7001",
                "mymaster"
            ),
            Some(OLD.parse().unwrap())
        );
        assert_eq!(
            failed_over_master("master other 127.0.0.1 7001", "mymaster"),
            None
        );
        assert_eq!(
            failed_over_master("slave 127.0.0.1:7002 127.0.0.1 7002 @ mymaster", "mymaster"),
            None
        );
        assert_eq!(failed_over_master("", "mymaster"), None);
    }
}

//! Health and shape of a Redis Cluster: `CLUSTER SHARDS` and `CLUSTER NODES` from any
//! reachable node, every poll interval and whenever a command met a redirect.
//!
//! Each cluster shard (a primary and its replicas, owning slot ranges) is one buffer shard,
//! registered once under the name of the slot ranges it owned when first seen (`0-5460`). A
//! shard is recognised across polls by its nodes: the entry that owns slots and shares the
//! most nodes with it as the last poll saw it. Its health stamp: primary = the primary's node id (hashed), term = the primary's
//! `configEpoch` (from `CLUSTER NODES`), serving = `CLUSTER SHARDS` says its health is
//! `online` and `CLUSTER INFO` says `cluster_state:ok` (a cluster that is down answers
//! `-CLUSTERDOWN` on every shard, and its coming back up is what ends their buffering). A shard left owning no slot is reported to the buffer as
//! `TopologyEvent::ShardMissing`, once.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use failover_buffer_tokio::{FailoverBuffer, TopologyEvent};

use super::{Reporter, probe_primary};
use crate::cluster::{Cluster, SlotMap};
use crate::resp::{self, Frame, RespConn};
use crate::route::{Backends, Route, primary_id};
use crate::router::RoutedShard;
use crate::slot::KeySpecs;

/// Why the router could not start in front of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterError {
    /// No seed node could be reached, or none answered `CLUSTER SHARDS`.
    Unreachable(Vec<SocketAddr>),
    /// A seed answered, but is not a cluster node (`cluster-enabled no`), or its reply was
    /// not understood; its reply.
    NotACluster {
        /// The seed.
        node: SocketAddr,
        /// What it said.
        reply: String,
    },
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Unreachable(seeds) => {
                write!(f, "no cluster node answered among the seeds {seeds:?}")
            }
            ClusterError::NotACluster { node, reply } => {
                write!(
                    f,
                    "{node} is not a Redis Cluster node: CLUSTER SHARDS said {reply}"
                )
            }
        }
    }
}

impl std::error::Error for ClusterError {}

/// Asks the first seed that answers for `COMMAND` (where each command's keys are), checking
/// that it is a cluster node (`CLUSTER SHARDS`, Redis 7).
pub(crate) async fn command_specs(
    seeds: &[SocketAddr],
    timeout: Duration,
) -> Result<KeySpecs, ClusterError> {
    for &seed in seeds {
        let Ok(mut conn) = RespConn::connect(seed, timeout).await else {
            continue;
        };
        let commands = [
            resp::command(&["CLUSTER", "SHARDS"]),
            resp::command(&["COMMAND"]),
        ];
        let Ok(replies) = conn.pipeline(&commands, timeout).await else {
            continue;
        };
        if parse_shards(&replies[0]).is_none() {
            let reply = match &replies[0] {
                Frame::Error(e) => format!("-{e}"),
                other => format!("{other:?}"),
            };
            return Err(ClusterError::NotACluster { node: seed, reply });
        }
        return Ok(KeySpecs::from_command_reply(&replies[1]));
    }
    Err(ClusterError::Unreachable(seeds.to_vec()))
}

/// One node, as `CLUSTER SHARDS` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeView {
    pub(crate) id: String,
    pub(crate) addr: SocketAddr,
    pub(crate) primary: bool,
    pub(crate) online: bool,
}

/// One entry of `CLUSTER SHARDS`: slot ranges (inclusive) and nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShardView {
    pub(crate) slots: Vec<(u16, u16)>,
    pub(crate) nodes: Vec<NodeView>,
}

impl ShardView {
    /// The buffer shard's name: its slot ranges, `0-5460` or `0-100,200-300`.
    pub(crate) fn name(&self) -> String {
        let mut ranges = self.slots.clone();
        ranges.sort_unstable();
        ranges
            .iter()
            .map(|(a, b)| format!("{a}-{b}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Reads the reply to `CLUSTER SHARDS` (RESP2: flat key/value arrays).
pub(crate) fn parse_shards(reply: &Frame) -> Option<Vec<ShardView>> {
    let Frame::Array(entries) = reply else {
        return None;
    };
    let mut shards = Vec::with_capacity(entries.len());
    for entry in entries {
        let fields = pairs(entry)?;
        let slots = match fields.get("slots")? {
            Frame::Array(bounds) => bounds
                .chunks(2)
                .filter_map(|pair| match pair {
                    [Frame::Integer(a), Frame::Integer(b)] => {
                        Some((u16::try_from(*a).ok()?, u16::try_from(*b).ok()?))
                    }
                    _ => None,
                })
                .collect(),
            _ => return None,
        };
        let mut nodes = Vec::new();
        if let Frame::Array(list) = fields.get("nodes")? {
            for node in list {
                let f = pairs(node)?;
                let port = match f.get("port") {
                    Some(Frame::Integer(p)) => u16::try_from(*p).ok()?,
                    _ => continue, // a node without a plain-text port (TLS only)
                };
                let ip: IpAddr = f.get("ip").and_then(|v| resp::text(v))?.parse().ok()?;
                nodes.push(NodeView {
                    id: f.get("id").and_then(|v| resp::text(v))?.to_owned(),
                    addr: SocketAddr::new(ip, port),
                    primary: f.get("role").and_then(|v| resp::text(v)) == Some("master"),
                    online: f.get("health").and_then(|v| resp::text(v)) == Some("online"),
                });
            }
        }
        shards.push(ShardView { slots, nodes });
    }
    Some(shards)
}

/// Reads each node's `configEpoch` from the reply to `CLUSTER NODES`.
pub(crate) fn parse_epochs(reply: &Frame) -> HashMap<String, u64> {
    resp::text(reply)
        .unwrap_or("")
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            Some((fields.first()?.to_string(), fields.get(6)?.parse().ok()?))
        })
        .collect()
}

/// Whether the reply to `CLUSTER INFO` says the cluster serves (`cluster_state:ok`). A reply
/// without the field counts as up: only a node that says `fail` stops the shards serving.
pub(crate) fn parse_cluster_up(reply: &Frame) -> bool {
    resp::text(reply)
        .unwrap_or("")
        .lines()
        .find_map(|l| l.trim().strip_prefix("cluster_state:"))
        .is_none_or(|state| state != "fail")
}

fn pairs(frame: &Frame) -> Option<HashMap<&str, &Frame>> {
    let Frame::Array(items) = frame else {
        return None;
    };
    Some(
        items
            .chunks(2)
            .filter_map(|kv| match kv {
                [k, v] => Some((resp::text(k)?, v)),
                _ => None,
            })
            .collect(),
    )
}

/// A buffer shard the watcher follows.
#[derive(Debug)]
struct Known {
    routed: Arc<RoutedShard>,
    reporter: Reporter,
    /// Its nodes' ids at the last poll that saw it: a promoted replica was one of them, so
    /// it keeps the shard its identity.
    nodes: HashSet<String>,
    /// Reported resharded away (it owns no slot).
    gone: bool,
    /// The primary followed (node id) and the newest `configEpoch` it was seen with. Another
    /// primary with an epoch no newer is a stale view: a promoted replica always takes an
    /// epoch above every other.
    followed: Option<(String, u64)>,
}

/// The cluster watcher's state between polls.
#[derive(Debug)]
pub(crate) struct ClusterWatcher {
    buffer: FailoverBuffer,
    backends: Arc<Backends>,
    cluster: Arc<Cluster>,
    /// Addresses to ask, seeds first, then every node seen.
    candidates: Vec<SocketAddr>,
    conn: Option<RespConn>,
    known: Vec<Known>,
    timeout: Duration,
    /// `CLUSTER INFO` said `cluster_state:ok` at the last poll. While it says `fail` (a
    /// shard's primary is down and `cluster-require-full-coverage` is `yes`, or the node is
    /// in a minority), every node answers `-CLUSTERDOWN` for every slot: no shard serves.
    cluster_up: bool,
}

impl ClusterWatcher {
    pub(crate) fn new(
        buffer: FailoverBuffer,
        backends: Arc<Backends>,
        cluster: Arc<Cluster>,
        seeds: Vec<SocketAddr>,
        timeout: Duration,
    ) -> ClusterWatcher {
        ClusterWatcher {
            buffer,
            backends,
            cluster,
            candidates: seeds,
            conn: None,
            known: Vec::new(),
            timeout,
            cluster_up: true,
        }
    }

    /// Asks one reachable node for the cluster's shape and applies it. Returns whether a
    /// node answered.
    pub(crate) async fn poll(&mut self) -> bool {
        let answered = match self.ask().await {
            Some((shards, epochs, up)) => {
                self.cluster_up = up;
                let probed = self.probe_suspects(&shards).await;
                self.apply(&shards, &epochs, &probed);
                true
            }
            None => false,
        };
        self.cluster.polled();
        answered
    }

    /// Asks each primary in `shards` that a shard's reporter has
    /// [suspected](Reporter::suspected) (commands failed on it) whether it is a primary, on
    /// a new connection: the cluster's view alone calls a killed primary online until its
    /// node timeout.
    async fn probe_suspects(&self, shards: &[ShardView]) -> HashMap<SocketAddr, bool> {
        let suspected: HashSet<SocketAddr> = self
            .known
            .iter()
            .flat_map(|k| k.reporter.suspected())
            .collect();
        let mut probed = HashMap::new();
        for view in shards {
            for node in view.nodes.iter().filter(|n| n.primary) {
                if suspected.contains(&node.addr) && !probed.contains_key(&node.addr) {
                    probed.insert(node.addr, probe_primary(node.addr, self.timeout).await);
                }
            }
        }
        probed
    }

    async fn ask(&mut self) -> Option<(Vec<ShardView>, HashMap<String, u64>, bool)> {
        let commands = [
            resp::command(&["CLUSTER", "SHARDS"]),
            resp::command(&["CLUSTER", "NODES"]),
            resp::command(&["CLUSTER", "INFO"]),
        ];
        // The connected node first, then each candidate in turn.
        for _ in 0..=self.candidates.len() {
            if self.conn.is_none() {
                self.connect_next().await;
            }
            let conn = self.conn.as_mut()?;
            match conn.pipeline(&commands, self.timeout).await {
                Ok(replies) => {
                    if let Some(shards) = parse_shards(&replies[0]) {
                        return Some((
                            shards,
                            parse_epochs(&replies[1]),
                            parse_cluster_up(&replies[2]),
                        ));
                    }
                    tracing::warn!(node = %conn.peer(), "CLUSTER SHARDS reply not understood");
                    self.conn = None;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cluster node did not answer; trying another");
                    self.conn = None;
                }
            }
        }
        None
    }

    async fn connect_next(&mut self) {
        for _ in 0..self.candidates.len() {
            let addr = self.candidates.remove(0);
            self.candidates.push(addr);
            if let Ok(conn) = RespConn::connect(addr, self.timeout).await {
                self.conn = Some(conn);
                return;
            }
        }
    }

    fn apply(
        &mut self,
        shards: &[ShardView],
        epochs: &HashMap<String, u64>,
        probed: &HashMap<SocketAddr, bool>,
    ) {
        for view in shards {
            for node in &view.nodes {
                if !self.candidates.contains(&node.addr) {
                    self.candidates.push(node.addr);
                }
            }
        }
        // Match each slot-owning entry to the shard that shares a node with it.
        let mut matched: Vec<Option<usize>> = vec![None; self.known.len()];
        let mut owner = vec![None; crate::slot::SLOTS];
        // In slot order, so that shards register in the order of their slots.
        let mut order: Vec<usize> = (0..shards.len()).collect();
        order.sort_by_key(|&v| shards[v].slots.iter().min().copied());
        for v in order {
            let view = &shards[v];
            if view.slots.is_empty() {
                continue;
            }
            let index = self
                .identify(view, &matched)
                .unwrap_or_else(|| self.register(view));
            if index >= matched.len() {
                matched.resize(index + 1, None);
            }
            matched[index] = Some(v);
            let known = &mut self.known[index];
            known.nodes = view.nodes.iter().map(|n| n.id.clone()).collect();
            for &(a, b) in &view.slots {
                for slot in a..=b {
                    if let Some(o) = owner.get_mut(usize::from(slot)) {
                        *o = Some(index);
                    }
                }
            }
        }
        // The map first: a command released by a report below must find its shard's route.
        let members = self
            .known
            .iter()
            .enumerate()
            .map(|(i, _)| match matched[i] {
                Some(v) => shards[v].nodes.iter().map(|n| n.addr).collect(),
                None => Vec::new(),
            })
            .collect();
        self.cluster.set_map(SlotMap {
            owner,
            shards: self.known.iter().map(|k| Arc::clone(&k.routed)).collect(),
            members,
        });
        for (i, known) in self.known.iter_mut().enumerate() {
            match matched[i] {
                Some(v) => {
                    known.gone = false;
                    match shards[v].nodes.iter().find(|n| n.primary) {
                        Some(p) => {
                            let term = epochs.get(&p.id).copied().unwrap_or(0);
                            if known
                                .followed
                                .as_ref()
                                .is_some_and(|(id, newest)| *id != p.id && term <= *newest)
                            {
                                // A node that has not heard of the failover yet (or the
                                // old primary, restarted from its nodes.conf): a newer
                                // primary was followed already. Nothing moves back to it.
                                tracing::debug!(
                                    shard = known.routed.shard.name(),
                                    primary = %p.addr,
                                    term,
                                    "a stale view of the shard's primary; ignored"
                                );
                                continue;
                            }
                            let newest = match &known.followed {
                                Some((id, newest)) if *id == p.id => term.max(*newest),
                                _ => term,
                            };
                            known.followed = Some((p.id.clone(), newest));
                            let probe = probed.get(&p.addr).copied();
                            let serving = p.online && self.cluster_up && probe.unwrap_or(true);
                            known.reporter.primary_seen(
                                p.addr,
                                primary_id(&p.id),
                                term,
                                serving,
                                probe.is_some(),
                            );
                        }
                        None => known.reporter.no_primary(),
                    }
                }
                None if !known.gone => {
                    known.gone = true;
                    tracing::info!(
                        shard = known.routed.shard.name(),
                        "the shard owns no slot any more: resharded away"
                    );
                    known.routed.route.clear();
                    let _ = self
                        .buffer
                        .topology(&known.routed.shard, TopologyEvent::ShardMissing);
                }
                None => {}
            }
        }
    }

    /// The known shard a slot-owning entry is, among those not matched yet in this poll: the
    /// one sharing the most nodes with it (nodes as of the last poll that saw the shard),
    /// and of those, the one its primary was in. A replica that moved to another shard
    /// (replica migration, `CLUSTER REPLICATE`) is then a node of its new shard only, and
    /// never makes its new shard's entry pass for its old one.
    fn identify(&self, view: &ShardView, matched: &[Option<usize>]) -> Option<usize> {
        let primary = view.nodes.iter().find(|n| n.primary).map(|n| &n.id);
        (0..self.known.len())
            .filter(|i| matched.get(*i).is_none_or(Option::is_none))
            .map(|i| {
                let nodes = &self.known[i].nodes;
                let shared = view.nodes.iter().filter(|n| nodes.contains(&n.id)).count();
                let has_primary = primary.is_some_and(|id| nodes.contains(id));
                (i, shared, has_primary)
            })
            .filter(|&(_, shared, _)| shared > 0)
            .max_by_key(|&(i, shared, has_primary)| (shared, has_primary, std::cmp::Reverse(i)))
            .map(|(i, _, _)| i)
    }

    fn register(&mut self, view: &ShardView) -> usize {
        let name = view.name();
        let shard = self.buffer.register_shard("redis", &name);
        tracing::info!(shard = %name, nodes = view.nodes.len(), "cluster shard registered");
        let route = Arc::new(Route::default());
        let reporter = Reporter::new(
            self.buffer.clone(),
            shard.clone(),
            Arc::clone(&route),
            Arc::clone(&self.backends),
        );
        self.known.push(Known {
            routed: Arc::new(RoutedShard { shard, route }),
            reporter,
            nodes: HashSet::new(),
            gone: false,
            followed: None,
        });
        self.known.len() - 1
    }

    /// Polls forever: every `interval`, and at once when a command asks for a refresh.
    pub(crate) async fn run(mut self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let cluster = Arc::clone(&self.cluster);
            tokio::select! {
                _ = tick.tick() => {}
                () = cluster.refresh_requested() => {}
            }
            if !self.poll().await {
                tracing::warn!("no cluster node answered CLUSTER SHARDS");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn bulk(s: &str) -> Frame {
        Frame::BulkString(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn node(id: &str, port: i64, role: &str, health: &str) -> Frame {
        Frame::Array(vec![
            bulk("id"),
            bulk(id),
            bulk("port"),
            Frame::Integer(port),
            bulk("ip"),
            bulk("127.0.0.1"),
            bulk("endpoint"),
            bulk("127.0.0.1"),
            bulk("role"),
            bulk(role),
            bulk("replication-offset"),
            Frame::Integer(42),
            bulk("health"),
            bulk(health),
        ])
    }

    #[test]
    fn cluster_shards_reply_is_read_into_slot_ranges_and_nodes() {
        let reply = Frame::Array(vec![Frame::Array(vec![
            bulk("slots"),
            Frame::Array(vec![
                Frame::Integer(0),
                Frame::Integer(5460),
                Frame::Integer(10923),
                Frame::Integer(10923),
            ]),
            bulk("nodes"),
            Frame::Array(vec![
                node("aaa", 7001, "master", "fail"),
                node("bbb", 7004, "replica", "online"),
            ]),
        ])]);
        let shards = parse_shards(&reply).unwrap();
        assert_eq!(shards.len(), 1);
        assert_eq!(shards[0].slots, vec![(0, 5460), (10923, 10923)]);
        assert_eq!(shards[0].name(), "0-5460,10923-10923");
        assert_eq!(
            shards[0].nodes[0],
            NodeView {
                id: "aaa".into(),
                addr: "127.0.0.1:7001".parse().unwrap(),
                primary: true,
                online: false,
            }
        );
        assert!(shards[0].nodes[1].online && !shards[0].nodes[1].primary);
    }

    #[test]
    fn cluster_state_fail_is_down_and_anything_else_up() {
        let info = |text: &'static str| Frame::BulkString(Bytes::from_static(text.as_bytes()));
        assert!(!parse_cluster_up(&info(
            "cluster_enabled:1\r\ncluster_state:fail\r\ncluster_slots_assigned:16384\r\n"
        )));
        assert!(parse_cluster_up(&info("cluster_state:ok\r\n")));
        assert!(parse_cluster_up(&Frame::Error("ERR unknown".into())));
    }

    #[test]
    fn config_epochs_come_from_cluster_nodes() {
        let nodes = Frame::BulkString(Bytes::from_static(
            b"aaa 127.0.0.1:7001@17001 myself,master - 0 0 7 connected 0-5460\n\
              bbb 127.0.0.1:7004@17004 slave aaa 0 1700000000000 3 connected\n",
        ));
        let epochs = parse_epochs(&nodes);
        assert_eq!(epochs.get("aaa"), Some(&7));
        assert_eq!(epochs.get("bbb"), Some(&3));
    }

    fn view(slots: &[(u16, u16)], nodes: &[(&str, u16, bool)]) -> ShardView {
        ShardView {
            slots: slots.to_vec(),
            nodes: nodes
                .iter()
                .map(|&(id, port, primary)| NodeView {
                    id: id.into(),
                    addr: SocketAddr::from(([127, 0, 0, 1], port)),
                    primary,
                    online: true,
                })
                .collect(),
        }
    }

    fn watcher() -> (ClusterWatcher, FailoverBuffer, Arc<Cluster>) {
        let buffer = FailoverBuffer::new(failover_buffer_tokio::Config {
            enabled: true,
            ..Default::default()
        })
        .unwrap();
        let cluster = Arc::new(Cluster::new(KeySpecs::default()));
        let backends = Arc::new(Backends::new(1, Duration::from_millis(100)));
        let watcher = ClusterWatcher::new(
            buffer.clone(),
            backends,
            Arc::clone(&cluster),
            Vec::new(),
            Duration::from_millis(100),
        );
        (watcher, buffer, cluster)
    }

    /// A command held on `shard` after a failover error; answers whether it was released
    /// to retry.
    fn hold(
        buffer: &FailoverBuffer,
        shard: &failover_buffer_tokio::Shard,
    ) -> tokio::task::JoinHandle<Result<bool, failover_buffer_tokio::BufferError>> {
        let (buffer, shard) = (buffer.clone(), shard.clone());
        tokio::spawn(async move {
            buffer
                .wait_for_failover_end(&shard, Some(failover_buffer_tokio::FailoverCause::Reparent))
                .await
                .map(|guard| guard.is_some())
        })
    }

    fn three_shards() -> Vec<ShardView> {
        vec![
            view(&[(10923, 16383)], &[("c", 7003, true), ("f", 7006, false)]),
            view(&[(0, 5460)], &[("a", 7001, true), ("d", 7004, false)]),
            view(&[(5461, 10922)], &[("b", 7002, true), ("e", 7005, false)]),
        ]
    }

    impl ClusterWatcher {
        /// A poll that read `shards` and `epochs` off the cluster and probed no server.
        fn apply_unprobed(&mut self, shards: &[ShardView], epochs: &HashMap<String, u64>) {
            self.apply(shards, epochs, &HashMap::new());
        }
    }

    #[tokio::test]
    async fn each_cluster_shard_is_one_buffer_shard_registered_in_slot_order() {
        let (mut w, buffer, cluster) = watcher();
        let epochs = HashMap::from([("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]);
        w.apply_unprobed(&three_shards(), &epochs);
        w.apply_unprobed(&three_shards(), &epochs);
        let map = cluster.map();
        let names: Vec<&str> = map.shards.iter().map(|s| s.shard.name()).collect();
        assert_eq!(
            names,
            ["0-5460", "5461-10922", "10923-16383"],
            "registered once each"
        );
        assert_eq!(map.owner[0], Some(0));
        assert_eq!(map.owner[16383], Some(2));
        assert_eq!(
            map.shards[2].route.current().map(|b| b.addr),
            Some(SocketAddr::from(([127, 0, 0, 1], 7003)))
        );
        assert!(buffer.shard("redis", "5461-10922").is_some());
    }

    #[tokio::test]
    async fn a_promoted_replica_keeps_its_shard_and_its_epoch_is_the_new_term() {
        let (mut w, buffer, cluster) = watcher();
        let mut epochs = HashMap::from([("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]);
        w.apply_unprobed(&three_shards(), &epochs);
        let shard = cluster.map().shards[2].shard.clone();
        // The primary of shard 3 is killed and its replica promoted with a new epoch; the
        // dead primary is listed alone, owning nothing.
        let mut after = three_shards();
        after[0] = view(&[(10923, 16383)], &[("f", 7006, true)]);
        after.push(view(&[], &[("c", 7003, true)]));
        epochs.insert("f".into(), 7);
        let held = hold(&buffer, &shard);
        tokio::task::yield_now().await;
        w.apply_unprobed(&after, &epochs);
        assert_eq!(held.await.unwrap(), Ok(true), "released by the new primary");
        let map = cluster.map();
        assert_eq!(map.shards.len(), 3, "no new shard");
        assert_eq!(
            map.shards[2].route.current().map(|b| b.addr),
            Some(SocketAddr::from(([127, 0, 0, 1], 7006)))
        );
        assert_eq!(buffer.stats(&shard).starts, 1);
    }

    #[tokio::test]
    async fn a_shard_whose_slots_all_moved_away_is_resharded_away() {
        let (mut w, buffer, cluster) = watcher();
        let epochs = HashMap::from([("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]);
        w.apply_unprobed(&three_shards(), &epochs);
        let shard = cluster.map().shards[2].shard.clone();
        let held = hold(&buffer, &shard);
        tokio::task::yield_now().await;
        // Shard 3's slots now belong to shard 1; shard 3's nodes own nothing.
        let after = vec![
            view(
                &[(0, 5460), (10923, 16383)],
                &[("a", 7001, true), ("d", 7004, false)],
            ),
            view(&[(5461, 10922)], &[("b", 7002, true), ("e", 7005, false)]),
            view(&[], &[("c", 7003, true), ("f", 7006, false)]),
        ];
        w.apply_unprobed(&after, &epochs);
        assert_eq!(
            held.await.unwrap(),
            Err(failover_buffer_tokio::BufferError::ShardMissing),
            "the held command is told to re-plan"
        );
        let map = cluster.map();
        assert_eq!(
            map.owner[16383],
            Some(0),
            "its slots route to their new owner"
        );
        assert!(map.shards[2].route.current().is_none());
    }

    #[tokio::test]
    async fn a_replica_that_migrates_to_another_shard_moves_no_slot_and_misses_no_shard() {
        let (mut w, buffer, cluster) = watcher();
        let epochs = HashMap::from([("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]);
        w.apply_unprobed(&three_shards(), &epochs);
        // Shard 1's replica d moves to shard 2 (replica migration, or `CLUSTER REPLICATE`).
        let after = vec![
            view(&[(10923, 16383)], &[("c", 7003, true), ("f", 7006, false)]),
            view(&[(0, 5460)], &[("a", 7001, true)]),
            view(
                &[(5461, 10922)],
                &[("b", 7002, true), ("e", 7005, false), ("d", 7004, false)],
            ),
        ];
        w.apply_unprobed(&after, &epochs);
        w.apply_unprobed(&after, &epochs);
        let map = cluster.map();
        assert_eq!(map.shards.len(), 3, "no new shard");
        assert_eq!(map.owner[0], Some(0));
        assert_eq!(map.owner[5461], Some(1), "shard 2 keeps its slots");
        assert_eq!(
            map.shards[1].route.current().map(|b| b.addr),
            Some(SocketAddr::from(([127, 0, 0, 1], 7002))),
            "shard 2 still routes to its own primary"
        );
        assert_eq!(
            map.shards[0].route.current().map(|b| b.addr),
            Some(SocketAddr::from(([127, 0, 0, 1], 7001)))
        );
        let shard2 = map.shards[1].shard.clone();
        assert_eq!(buffer.stats(&shard2).starts, 0);
        // A later failover in shard 2 to the migrated replica is still shard 2's.
        let mut later = after.clone();
        later[2] = view(&[(5461, 10922)], &[("d", 7004, true), ("e", 7005, false)]);
        later.push(view(&[], &[("b", 7002, true)]));
        let epochs = HashMap::from([("a".into(), 1), ("d".into(), 9), ("c".into(), 3)]);
        w.apply_unprobed(&later, &epochs);
        let map = cluster.map();
        assert_eq!(map.owner[5461], Some(1));
        assert_eq!(map.owner[0], Some(0));
        assert_eq!(
            map.shards[1].route.current().map(|b| b.addr),
            Some(SocketAddr::from(([127, 0, 0, 1], 7004)))
        );
        assert_eq!(
            map.shards[0].route.current().map(|b| b.addr),
            Some(SocketAddr::from(([127, 0, 0, 1], 7001)))
        );
    }

    #[tokio::test]
    async fn a_stale_view_of_a_replaced_primary_does_not_move_the_route_back() {
        let (mut w, buffer, cluster) = watcher();
        let mut epochs = HashMap::from([("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]);
        w.apply_unprobed(&three_shards(), &epochs);
        let shard = cluster.map().shards[2].shard.clone();
        // Shard 3's replica f is promoted with a new epoch.
        let mut after = three_shards();
        after[0] = view(&[(10923, 16383)], &[("f", 7006, true)]);
        after.push(view(&[], &[("c", 7003, true)]));
        epochs.insert("f".into(), 7);
        w.apply_unprobed(&after, &epochs);
        let f = Some(SocketAddr::from(([127, 0, 0, 1], 7006)));
        assert_eq!(cluster.map().shards[2].route.current().map(|b| b.addr), f);
        // The watcher then asks a node that has not heard of it yet (or the old primary,
        // restarted from its nodes.conf): c, epoch 3, still primary there.
        w.apply_unprobed(&three_shards(), &epochs);
        assert_eq!(
            cluster.map().shards[2].route.current().map(|b| b.addr),
            f,
            "no command goes back to the replaced primary"
        );
        assert_eq!(buffer.stats(&shard).starts, 0);
        // A newer primary still moves it.
        let mut again = three_shards();
        again[0] = view(&[(10923, 16383)], &[("c", 7003, true), ("f", 7006, false)]);
        epochs.insert("c".into(), 8);
        w.apply_unprobed(&again, &epochs);
        assert_eq!(
            cluster.map().shards[2].route.current().map(|b| b.addr),
            Some(SocketAddr::from(([127, 0, 0, 1], 7003)))
        );
    }

    #[tokio::test]
    async fn a_node_of_a_resharded_away_shard_promoted_elsewhere_stays_with_its_new_shard() {
        let (mut w, _buffer, cluster) = watcher();
        let epochs = HashMap::from([("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]);
        w.apply_unprobed(&three_shards(), &epochs);
        // Shard 1's slots all move to shard 3; its nodes own nothing.
        let mut after = vec![
            view(
                &[(0, 5460), (10923, 16383)],
                &[("c", 7003, true), ("f", 7006, false)],
            ),
            view(&[(5461, 10922)], &[("b", 7002, true), ("e", 7005, false)]),
            view(&[], &[("a", 7001, true), ("d", 7004, false)]),
        ];
        w.apply_unprobed(&after, &epochs);
        assert_eq!(cluster.map().owner[0], Some(2));
        // a becomes shard 3's replica, then its primary.
        after[0] = view(
            &[(0, 5460), (10923, 16383)],
            &[("c", 7003, true), ("f", 7006, false), ("a", 7001, false)],
        );
        after[2] = view(&[], &[("d", 7004, true)]);
        w.apply_unprobed(&after, &epochs);
        after[0] = view(
            &[(0, 5460), (10923, 16383)],
            &[("a", 7001, true), ("f", 7006, false), ("c", 7003, false)],
        );
        let epochs = HashMap::from([("a".into(), 9), ("b".into(), 2), ("c".into(), 3)]);
        w.apply_unprobed(&after, &epochs);
        let map = cluster.map();
        assert_eq!(map.owner[0], Some(2), "still shard 3's slots");
        assert_eq!(map.owner[16383], Some(2));
        assert_eq!(
            map.shards[2].route.current().map(|b| b.addr),
            Some(SocketAddr::from(([127, 0, 0, 1], 7001)))
        );
    }

    #[test]
    fn a_reply_that_is_not_cluster_shards_is_refused() {
        assert_eq!(
            parse_shards(&bulk("ERR This instance has cluster support disabled")),
            None
        );
    }
}

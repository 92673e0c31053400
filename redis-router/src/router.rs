//! The router: configuration, start, and the per-command path.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use failover_buffer_tokio::{Config, ConfigError, FailoverBuffer, RunError, Shard, ShardStats};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::classify::{FailoverError, connection_failover, reply_failover};
use crate::client;
use crate::cluster::Cluster;
use crate::command::{Command, Handling};
use crate::health::Reporter;
use crate::health::cluster::{self as cluster_health, ClusterError, ClusterWatcher};
use crate::health::fixed::FixedWatcher;
use crate::health::sentinel::{self, SentinelError, SentinelWatcher};
use crate::keyspace::{Keyspace, Merge, ScanCursor, scan_on_node, scan_reply, split_scan_reply};
use crate::replay::ReplayPolicy;
use crate::resp::{self, Frame};
use crate::route::{Backends, Route};
use crate::slot::{self, KeySlot};

/// Where the router learns which server is primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// A fixed list of servers (a primary and its replicas), each polled with `ROLE`.
    Fixed(Vec<SocketAddr>),
    /// Redis Sentinel: any of these Sentinels, following the master of this name.
    Sentinel {
        /// Sentinel addresses, tried in order; the watcher moves on when one dies.
        sentinels: Vec<SocketAddr>,
        /// The name in `sentinel monitor <name> ...`.
        master: String,
    },
    /// Redis Cluster: any of these nodes is asked for the cluster's shape (`CLUSTER SHARDS`);
    /// each cluster shard is a buffer shard, and each command goes to its key's slot.
    Cluster {
        /// Seed nodes, tried in order; every node seen later is asked too.
        seeds: Vec<SocketAddr>,
    },
}

/// Everything the router is told at start.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Where clients connect (port 0 picks a free port; see [`Router::local_addr`]).
    pub listen: SocketAddr,
    /// Where the primary is learned.
    pub topology: Topology,
    /// The buffer's rules. `enabled: false` is the `--no-buffer` mode: the same proxy and
    /// retries, nothing held.
    pub buffer: Config,
    /// Which commands may be replayed after their connection died once sent.
    pub replay: ReplayPolicy,
    /// Attempts per command, the first included (Vitess's gateway makes 3).
    pub max_attempts: usize,
    /// Idle connections kept per server.
    pub pool_size: usize,
    /// Bound on connecting to a server or Sentinel.
    pub connect_timeout: Duration,
    /// Bound on one command's reply; a command that times out counts as sent and lost.
    pub command_timeout: Duration,
    /// How often health is polled.
    pub health_interval: Duration,
}

impl RouterConfig {
    /// The defaults: buffering on (Vitess's window, size and max duration, drain
    /// concurrency 16), the default replay allow-list, 3 attempts, health every 100 ms.
    pub fn new(listen: SocketAddr, topology: Topology) -> RouterConfig {
        RouterConfig {
            listen,
            topology,
            buffer: Config {
                enabled: true,
                drain_concurrency: 16,
                ..Config::default()
            },
            replay: ReplayPolicy::default(),
            max_attempts: 3,
            pool_size: 64,
            connect_timeout: Duration::from_millis(500),
            command_timeout: Duration::from_secs(30),
            health_interval: Duration::from_millis(100),
        }
    }
}

/// Why the router did not start.
#[derive(Debug)]
pub enum StartError {
    /// The buffer configuration is invalid.
    Config(ConfigError),
    /// The fixed list of servers is empty.
    NoServers,
    /// The Sentinels could not name the primary.
    Sentinel(SentinelError),
    /// No seed node answered as a cluster node.
    Cluster(ClusterError),
    /// The listening socket could not be bound.
    Bind(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "invalid buffer configuration: {e}"),
            StartError::NoServers => f.write_str("no Redis server given"),
            StartError::Sentinel(e) => write!(f, "{e}"),
            StartError::Cluster(e) => write!(f, "{e}"),
            StartError::Bind(e) => write!(f, "cannot listen: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// One buffer shard and where its commands go. A router in front of Sentinel or a fixed
/// list has one; in front of a cluster it has one per cluster shard.
#[derive(Debug)]
pub(crate) struct RoutedShard {
    pub(crate) shard: Shard,
    pub(crate) route: Arc<Route>,
}

/// A buffer shard of a running router and the primary it routes to now.
#[derive(Debug, Clone)]
pub struct ShardRoute {
    /// The buffer shard (keyspace `redis`): its name, and the handle for
    /// [`FailoverBuffer::stats`].
    pub shard: Shard,
    /// Its current primary, if one is routed to.
    pub primary: Option<SocketAddr>,
}

/// What the per-connection tasks share.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) buffer: FailoverBuffer,
    pub(crate) routing: Routing,
    pub(crate) backends: Arc<Backends>,
    pub(crate) replay: ReplayPolicy,
    pub(crate) max_attempts: usize,
    pub(crate) command_timeout: Duration,
    /// The buffer holds commands (`false`: `--no-buffer`). Decides what a `-MOVED` to a
    /// shard's own replica is: see [`Core::attempt`].
    pub(crate) buffering: bool,
}

/// How commands find their shard.
#[derive(Debug)]
pub(crate) enum Routing {
    /// One primary (Sentinel, or a fixed list): every command goes to it.
    Single(Arc<RoutedShard>),
    /// A cluster: by the key's hash slot.
    Cluster(Arc<Cluster>),
}

/// Redirects (`-MOVED` to another shard, `-ASK`) one attempt follows before it gives the
/// redirect to the client.
const MAX_REDIRECTS: usize = 5;

/// How long a command that met `-TRYAGAIN` (a multi-key command on a slot being migrated)
/// waits before it is sent again; it is sent at most [`MAX_REDIRECTS`] times more.
const TRYAGAIN_DELAY: Duration = Duration::from_millis(50);

/// How long a command that met `-MOVED` waits for the slot map to be read again.
const REFRESH_WAIT: Duration = Duration::from_secs(1);

/// What the client is sent back for one command.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A reply frame.
    Frame(Frame),
    /// `+OK`, then close (`QUIT`).
    Quit,
}

impl Core {
    /// Answers one client frame.
    pub(crate) async fn handle(&self, frame: Frame) -> Reply {
        let Some(command) = Command::from_frame(frame) else {
            return Reply::Frame(error(
                "ERR Protocol error: expected an array of bulk strings",
            ));
        };
        match command.handling() {
            Handling::Quit => Reply::Quit,
            Handling::Unsupported => Reply::Frame(error(&format!(
                "ERR failover-buffer: {} needs a server connection of its own, which this proxy does not keep",
                command.name()
            ))),
            Handling::Forward => Reply::Frame(self.forward(&command).await),
        }
    }

    /// The shard a command goes to and its key's slot (`None`: keyless, or one primary), or
    /// the reply Redis would give instead (`-CROSSSLOT`).
    async fn shard_for(&self, command: &Command) -> Result<(Arc<RoutedShard>, Option<u16>), Frame> {
        let cluster = match &self.routing {
            Routing::Single(routed) => return Ok((Arc::clone(routed), None)),
            Routing::Cluster(cluster) => cluster,
        };
        let slot = match cluster.specs.slot_of(command) {
            KeySlot::AskServer => self.ask_keys(cluster, command).await?,
            other => other,
        };
        let routed = match slot {
            KeySlot::CrossSlot => return Err(error(slot::CROSSSLOT)),
            KeySlot::Slot(s) => cluster.shard_of_slot(s),
            KeySlot::Keyless | KeySlot::AskServer => cluster.any_shard(),
        };
        let slot = match slot {
            KeySlot::Slot(s) => Some(s),
            _ => None,
        };
        routed.map(|r| (r, slot)).ok_or_else(cluster_down)
    }

    /// Where the keys of a command with movable keys are: `COMMAND GETKEYS` on a primary.
    /// Any primary can tell, so one that cannot answer now (a dead primary, not yet failed
    /// over) is skipped for the next: the command's own shard may well be healthy.
    async fn ask_keys(&self, cluster: &Cluster, command: &Command) -> Result<KeySlot, Frame> {
        let mut parts = vec![
            Frame::BulkString(Bytes::from_static(b"COMMAND")),
            Frame::BulkString(Bytes::from_static(b"GETKEYS")),
        ];
        if let Frame::Array(args) = command.frame() {
            parts.extend(args.iter().cloned());
        }
        let request = Frame::Array(parts);
        let mut failed = FailoverError::NoPrimary;
        let mut reply = None;
        for backend in cluster.primaries_in_turn() {
            let mut conn = match backend.pool.checkout().await {
                Ok(conn) => conn,
                Err(e) => {
                    failed = connection_failover(&e);
                    continue;
                }
            };
            match conn.request(&request, self.command_timeout).await {
                Ok(answer) => {
                    backend.pool.checkin(conn);
                    match reply_failover(&answer) {
                        Some(e) => failed = e,
                        None => {
                            reply = Some(answer);
                            break;
                        }
                    }
                }
                Err(e) => {
                    backend.pool.clear();
                    failed = connection_failover(&e);
                }
            }
        }
        let Some(reply) = reply else {
            return Err(failed.to_reply());
        };
        match reply {
            Frame::Array(keys) => Ok(slot::slot_of_keys(keys.iter().filter_map(|k| match k {
                Frame::BulkString(b) => Some(&b[..]),
                _ => None,
            }))),
            Frame::Error(e) if e.contains("no key arguments") => Ok(KeySlot::Keyless),
            other => Err(other),
        }
    }

    async fn forward(&self, command: &Command) -> Frame {
        if let Routing::Cluster(cluster) = &self.routing {
            match Keyspace::of(command) {
                Some(Keyspace::Scan) => return self.scan(cluster, command).await,
                Some(how) => return self.fan_out(cluster, command, how).await,
                None => {}
            }
        }
        let (routed, slot) = match self.shard_for(command).await {
            Ok(target) => target,
            Err(reply) => return reply,
        };
        self.forward_on(&routed, slot, command).await
    }

    /// Sends `command` to every shard that owns slots, one after the other (each through
    /// its own buffer), and merges the replies (see [`Merge`]): `FLUSHALL` or `SCRIPT LOAD`
    /// everywhere (the first error, else the last reply), `DBSIZE` summed, `KEYS` joined.
    async fn fan_out(&self, cluster: &Cluster, command: &Command, how: Keyspace) -> Frame {
        let map = cluster.map();
        let owning = map.owning();
        if owning.is_empty() {
            return cluster_down();
        }
        let mut merge = Merge::new(how);
        for i in owning {
            let reply = self.forward_on(&map.shards[i], None, command).await;
            if let Err(reply) = merge.add(reply) {
                return reply;
            }
        }
        merge.finish()
    }

    /// A `SCAN` of the whole cluster: the batch of the shard the client's cursor names (or
    /// of the next one owning slots), and a cursor for what follows (see [`ScanCursor`]).
    async fn scan(&self, cluster: &Cluster, command: &Command) -> Frame {
        let Some(arg) = command.args().next() else {
            return error("ERR wrong number of arguments for 'scan' command");
        };
        let Some(cursor) = ScanCursor::parse(arg) else {
            return error("ERR invalid cursor");
        };
        let map = cluster.map();
        let owning = map.owning();
        if owning.is_empty() {
            return cluster_down();
        }
        // The shard named, or (it owns no slot now) the next one that does, from its start.
        let Some(&shard) = owning.iter().find(|&&i| i >= cursor.shard) else {
            // A cursor past the last shard (that shard lost its slots): the end.
            return scan_reply(0, Frame::Array(Vec::new()));
        };
        let node = if shard == cursor.shard {
            cursor.node
        } else {
            0
        };
        let reply = self
            .forward_on(&map.shards[shard], None, &scan_on_node(command, node))
            .await;
        let (next, keys) = match split_scan_reply(reply) {
            Ok(split) => split,
            Err(reply) => return reply,
        };
        let next = match ScanCursor::after(shard, next, &owning) {
            None => 0,
            Some(next) => match next.encode() {
                Some(n) => n,
                None => {
                    return error(&format!(
                        "ERR failover-buffer: the SCAN cursor {} of shard {shard} does not fit in the router's cursor",
                        next.node
                    ));
                }
            },
        };
        scan_reply(next, keys)
    }

    /// Sends `command` to the primary of `routed` (or of the shard owning `slot`), through
    /// the buffer.
    async fn forward_on(
        &self,
        routed: &Arc<RoutedShard>,
        slot: Option<u16>,
        command: &Command,
    ) -> Frame {
        let max_attempts = u32::try_from(self.max_attempts).unwrap_or(u32::MAX);
        let result = self
            .buffer
            .run(
                &routed.shard,
                max_attempts,
                || self.attempt(routed, slot, command),
                |e: &FailoverError| Some(e.cause()),
            )
            .await;
        match result {
            Ok(reply) => reply,
            Err(RunError::Attempt(e)) => {
                count("failover_exhausted");
                tracing::debug!(command = command.name(), error = %e, "attempts used up");
                e.to_reply()
            }
            Err(RunError::Buffer(e)) => {
                count("buffer_error");
                error(&format!("ERR failover-buffer: {e}"))
            }
        }
    }

    /// Where an attempt goes now: the primary of the shard owning `slot` (which may have
    /// changed since the command was routed), else of `routed`.
    fn route_now(&self, routed: &Arc<RoutedShard>, slot: Option<u16>) -> Arc<RoutedShard> {
        match (&self.routing, slot) {
            (Routing::Cluster(cluster), Some(slot)) => cluster
                .shard_of_slot(slot)
                .unwrap_or_else(|| Arc::clone(routed)),
            _ => Arc::clone(routed),
        }
    }

    /// One attempt on the current primary: `Ok` is the client's answer (a reply, or the
    /// error saying a command may or may not have run); `Err` is a failover error on an
    /// attempt that may be made again, because the primary cannot have run it.
    ///
    /// A `-MOVED` to the shard's own replica (promoted under the router) is that shard's
    /// failover error when the buffer holds commands: held until the slot map names the new
    /// primary. With `--no-buffer` nothing would hold it, and three attempts at once are
    /// spent before the map is read again, so the attempt follows the redirect to the node
    /// named, as any cluster client does: the faithful non-buffering baseline.
    async fn attempt(
        &self,
        routed: &Arc<RoutedShard>,
        slot: Option<u16>,
        command: &Command,
    ) -> Result<Frame, FailoverError> {
        let mut ask: Option<SocketAddr> = None;
        // A `-MOVED` followed to the node it names (only without the buffer).
        let mut moved_to: Option<SocketAddr> = None;
        let mut redirects = 0;
        loop {
            let target = self.route_now(routed, slot);
            let backend = match ask.or(moved_to.take()) {
                Some(addr) => self.backends.get(addr),
                None => match target.route.current() {
                    Some(backend) => backend,
                    None => return Err(failover(FailoverError::NoPrimary)),
                },
            };
            let mut conn = match backend.pool.checkout().await {
                Ok(conn) => conn,
                // Nothing was sent: always safe to retry.
                Err(e) => {
                    backend.connection_failed();
                    return Err(failover(connection_failover(&e)));
                }
            };
            let sent = if ask.take().is_some() {
                let asking = resp::command(&["ASKING"]);
                conn.pipeline(&[asking, command.frame().clone()], self.command_timeout)
                    .await
                    .map(|mut replies| replies.pop().unwrap_or(Frame::Null))
            } else {
                conn.request(command.frame(), self.command_timeout).await
            };
            let reply = match sent {
                Ok(reply) => {
                    backend.pool.checkin(conn);
                    reply
                }
                Err(e) if !e.sent || self.replay.may_replay(command) => {
                    backend.pool.clear();
                    backend.connection_failed();
                    return Err(failover(connection_failover(&e)));
                }
                Err(e) => {
                    backend.pool.clear();
                    count("uncertain");
                    tracing::warn!(command = command.name(), primary = %backend.addr, error = %e,
                        "connection lost after the command was sent; not replayed");
                    return Ok(error(&format!(
                        "ERR failover-buffer: the connection to the primary {} failed after {} was sent ({e}); it may or may not have run, so it was not retried",
                        backend.addr,
                        command.name()
                    )));
                }
            };
            if let (Routing::Cluster(cluster), Some(redirect)) =
                (&self.routing, Redirect::of(&reply))
            {
                if redirects < MAX_REDIRECTS {
                    redirects += 1;
                    match redirect {
                        Redirect::Ask(addr) => ask = Some(addr),
                        Redirect::Moved(addr)
                            if !self.buffering && cluster.is_member(&target, addr) =>
                        {
                            cluster.request_refresh();
                            moved_to = Some(addr);
                        }
                        Redirect::Moved(addr) if cluster.is_member(&target, addr) => {
                            // The shard's own replica holds its slots now: the primary was
                            // failed over under us. If the map has moved on already, go
                            // there; else it is this shard's failover error (the command did
                            // not run), and the map is read again at once.
                            let moved_on = target
                                .route
                                .current()
                                .is_some_and(|now| now.addr != backend.addr);
                            if !moved_on {
                                cluster.request_refresh();
                                let text = match &reply {
                                    Frame::Error(t) => t.to_string(),
                                    _ => "MOVED".to_owned(),
                                };
                                return Err(failover(FailoverError::Reply(text)));
                            }
                        }
                        // The slot lives in another shard now: a redirect, not a failover.
                        Redirect::Moved(_) => cluster.refresh(REFRESH_WAIT).await,
                    }
                    continue;
                }
            }
            if matches!(self.routing, Routing::Cluster(_))
                && is_tryagain(&reply)
                && redirects < MAX_REDIRECTS
            {
                // A resharding splits the command's keys for now; it did not run. Not a
                // failover: the shard is not buffered, the command is sent again shortly,
                // and the client gets Redis's `-TRYAGAIN` if the migration outlasts that.
                redirects += 1;
                tokio::time::sleep(TRYAGAIN_DELAY).await;
                continue;
            }
            return match reply_failover(&reply) {
                // Redis refused it without running it: safe to retry.
                Some(e) => {
                    if let (Routing::Cluster(cluster), "clusterdown") = (&self.routing, e.label()) {
                        // The watcher's next poll sees the cluster down, so the shard is
                        // reported not serving, and then serving once the cluster is up.
                        cluster.request_refresh();
                    }
                    Err(failover(e))
                }
                None => {
                    count("ok");
                    Ok(reply)
                }
            };
        }
    }
}

/// A cluster redirect in a reply: `-MOVED <slot> <addr>` or `-ASK <slot> <addr>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Redirect {
    Moved(SocketAddr),
    Ask(SocketAddr),
}

impl Redirect {
    fn of(reply: &Frame) -> Option<Redirect> {
        let Frame::Error(text) = reply else {
            return None;
        };
        let mut parts = text.split(' ');
        let kind = parts.next()?;
        let _slot = parts.next()?;
        let addr: SocketAddr = parts.next()?.parse().ok()?;
        match kind {
            "MOVED" => Some(Redirect::Moved(addr)),
            "ASK" => Some(Redirect::Ask(addr)),
            _ => None,
        }
    }
}

fn is_tryagain(reply: &Frame) -> bool {
    matches!(reply, Frame::Error(text) if text.split(' ').next() == Some("TRYAGAIN"))
}

fn failover(e: FailoverError) -> FailoverError {
    metrics::counter!("redis_router_failover_errors", "kind" => e.label()).increment(1);
    e
}

fn count(outcome: &'static str) {
    metrics::counter!("redis_router_commands", "outcome" => outcome).increment(1);
}

/// Redis Cluster's own reply when no shard serves the slot (or, here, any slot).
fn cluster_down() -> Frame {
    error("CLUSTERDOWN Hash slot not served")
}

fn error(text: &str) -> Frame {
    Frame::Error(text.to_owned().into())
}

/// A running router: a listener, a health watcher and one task per client connection.
///
/// Dropping it stops them all (their tasks are aborted) and closes every client
/// connection.
#[derive(Debug)]
pub struct Router {
    local_addr: SocketAddr,
    core: Arc<Core>,
    tasks: Vec<JoinHandle<()>>,
}

impl Router {
    /// Starts the router: learns the primary (from Sentinel, or by a first `ROLE` poll of
    /// the fixed list), then listens for clients.
    ///
    /// Fails with a clear [`StartError`] when Sentinel is unreachable or does not know the
    /// master, or the address cannot be bound. Must run inside a tokio runtime.
    pub async fn start(config: RouterConfig) -> Result<Router, StartError> {
        let buffer = FailoverBuffer::new(config.buffer.clone()).map_err(StartError::Config)?;
        let backends = Arc::new(Backends::new(config.pool_size, config.connect_timeout));
        let mut tasks = Vec::new();
        let routing = match &config.topology {
            Topology::Cluster { seeds } => {
                let specs = cluster_health::command_specs(seeds, config.connect_timeout)
                    .await
                    .map_err(StartError::Cluster)?;
                let cluster = Arc::new(Cluster::new(specs));
                let mut watcher = ClusterWatcher::new(
                    buffer.clone(),
                    Arc::clone(&backends),
                    Arc::clone(&cluster),
                    seeds.clone(),
                    config.connect_timeout,
                );
                if !watcher.poll().await {
                    return Err(StartError::Cluster(ClusterError::Unreachable(
                        seeds.clone(),
                    )));
                }
                tasks.push(tokio::spawn(watcher.run(config.health_interval)));
                Routing::Cluster(cluster)
            }
            Topology::Fixed(_) | Topology::Sentinel { .. } => {
                let shard_name = match &config.topology {
                    Topology::Sentinel { master, .. } => master.clone(),
                    _ => "0".to_owned(),
                };
                let shard = buffer.register_shard("redis", &shard_name);
                let route = Arc::new(Route::default());
                let mut reporter = Reporter::new(
                    buffer.clone(),
                    shard.clone(),
                    Arc::clone(&route),
                    Arc::clone(&backends),
                );
                match &config.topology {
                    Topology::Sentinel { sentinels, master } => {
                        let (addr, first) =
                            sentinel::resolve(sentinels, master, config.connect_timeout)
                                .await
                                .map_err(StartError::Sentinel)?;
                        tracing::info!(%master, primary = %addr, "Sentinel names the primary");
                        route.set(backends.get(addr));
                        let watcher = SentinelWatcher::new(
                            sentinels.clone(),
                            master.clone(),
                            first,
                            config.health_interval,
                            config.connect_timeout,
                            config.buffer.max_failover_duration,
                        );
                        tasks.push(tokio::spawn(watcher.run(reporter)));
                    }
                    Topology::Fixed(servers) => {
                        if servers.is_empty() {
                            return Err(StartError::NoServers);
                        }
                        let mut watcher =
                            FixedWatcher::new(servers.clone(), config.connect_timeout);
                        watcher.poll(&mut reporter).await;
                        if route.current().is_none() {
                            tracing::warn!(?servers, "no server says it is primary yet");
                        }
                        tasks.push(tokio::spawn(watcher.run(reporter, config.health_interval)));
                    }
                    Topology::Cluster { .. } => unreachable!("handled above"),
                }
                Routing::Single(Arc::new(RoutedShard { shard, route }))
            }
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(StartError::Bind)?;
        let local_addr = listener.local_addr().map_err(StartError::Bind)?;
        let core = Arc::new(Core {
            buffer,
            routing,
            backends,
            replay: config.replay,
            max_attempts: config.max_attempts,
            command_timeout: config.command_timeout,
            buffering: config.buffer.enabled,
        });
        tasks.push(tokio::spawn(accept(listener, Arc::clone(&core))));
        tracing::info!(%local_addr, buffering = config.buffer.enabled, "router listening");
        Ok(Router {
            local_addr,
            core,
            tasks,
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The current primary's address, if one is known. In front of a cluster: the primary
    /// of the first shard registered.
    pub fn primary(&self) -> Option<SocketAddr> {
        self.shards().first().and_then(|s| s.primary)
    }

    /// The buffer's counters for the router's shard (starts, buffered, drained, evicted,
    /// skipped, last failover duration). In front of a cluster: the first shard's; see
    /// [`shards`](Self::shards) for each shard's.
    pub fn stats(&self) -> ShardStats {
        self.shards()
            .first()
            .map(|s| self.core.buffer.stats(&s.shard))
            .unwrap_or_default()
    }

    /// Every buffer shard and its current primary, in registration order: one for Sentinel
    /// or a fixed list, one per cluster shard (named by the slot ranges it owned when first
    /// seen). A cluster shard that was resharded away stays listed, with no primary.
    pub fn shards(&self) -> Vec<ShardRoute> {
        let routed: Vec<Arc<RoutedShard>> = match &self.core.routing {
            Routing::Single(routed) => vec![Arc::clone(routed)],
            Routing::Cluster(cluster) => cluster.map().shards.clone(),
        };
        routed
            .iter()
            .map(|r| ShardRoute {
                shard: r.shard.clone(),
                primary: r.route.current().map(|b| b.addr),
            })
            .collect()
    }

    /// The buffer, for its state and counters.
    pub fn buffer(&self) -> &FailoverBuffer {
        &self.core.buffer
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn accept(listener: TcpListener, core: Arc<Core>) {
    // Client tasks live in this set: aborting the accept task drops it, which aborts them.
    let mut clients = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    clients.spawn(client::serve(Arc::clone(&core), stream, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
        }
    }
}

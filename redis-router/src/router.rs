//! The router: configuration, start, and the per-command path.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use failover_buffer_tokio::{Config, ConfigError, FailoverBuffer, Shard, ShardStats};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::classify::{FailoverError, connection_failover, reply_failover};
use crate::client;
use crate::command::{Command, Handling};
use crate::health::Reporter;
use crate::health::fixed::FixedWatcher;
use crate::health::sentinel::{self, SentinelError, SentinelWatcher};
use crate::replay::ReplayPolicy;
use crate::resp::Frame;
use crate::retry::{self, Attempt, Exhausted};
use crate::route::{Backends, Route};

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
    /// The listening socket could not be bound.
    Bind(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "invalid buffer configuration: {e}"),
            StartError::NoServers => f.write_str("no Redis server given"),
            StartError::Sentinel(e) => write!(f, "{e}"),
            StartError::Bind(e) => write!(f, "cannot listen: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// One buffer shard and where its commands go. A router in front of Sentinel or a fixed
/// list has one; in front of a cluster it would have one per cluster shard.
#[derive(Debug)]
pub(crate) struct RoutedShard {
    pub(crate) shard: Shard,
    pub(crate) route: Arc<Route>,
}

/// What the per-connection tasks share.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) buffer: FailoverBuffer,
    pub(crate) shards: Vec<RoutedShard>,
    pub(crate) replay: ReplayPolicy,
    pub(crate) max_attempts: usize,
    pub(crate) command_timeout: Duration,
}

/// What the client is sent back for one command.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A reply frame.
    Frame(Frame),
    /// `+OK`, then close (`QUIT`).
    Quit,
}

impl Core {
    /// The shard a command belongs to. With one primary, the only one.
    fn shard_for(&self, _command: &Command) -> &RoutedShard {
        &self.shards[0]
    }

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

    async fn forward(&self, command: &Command) -> Frame {
        let routed = self.shard_for(command);
        let result = retry::run(&self.buffer, &routed.shard, self.max_attempts, || {
            self.attempt(routed, command)
        })
        .await;
        match result {
            Ok(reply) => reply,
            Err(Exhausted::Failover(e)) => {
                count("failover_exhausted");
                tracing::debug!(command = command.name(), error = %e, "attempts used up");
                e.to_reply()
            }
            Err(Exhausted::Buffer(e)) => {
                count("buffer_error");
                error(&format!("ERR failover-buffer: {e}"))
            }
        }
    }

    /// One attempt on the current primary, classified for the retry loop.
    async fn attempt(
        &self,
        routed: &RoutedShard,
        command: &Command,
    ) -> Attempt<Frame, FailoverError> {
        let Some(backend) = routed.route.current() else {
            let e = FailoverError::NoPrimary;
            return failover(e);
        };
        let mut conn = match backend.pool.checkout().await {
            Ok(conn) => conn,
            // Nothing was sent: always safe to retry.
            Err(e) => return failover(connection_failover(&e)),
        };
        match conn.request(command.frame(), self.command_timeout).await {
            Ok(reply) => {
                backend.pool.checkin(conn);
                match reply_failover(&reply) {
                    // Redis refused it without running it: safe to retry.
                    Some(e) => failover(e),
                    None => {
                        count("ok");
                        Attempt::Done(reply)
                    }
                }
            }
            Err(e) if !e.sent || self.replay.may_replay(command) => {
                backend.pool.clear();
                failover(connection_failover(&e))
            }
            Err(e) => {
                backend.pool.clear();
                count("uncertain");
                tracing::warn!(command = command.name(), primary = %backend.addr, error = %e,
                    "connection lost after the command was sent; not replayed");
                Attempt::Done(error(&format!(
                    "ERR failover-buffer: the connection to the primary {} failed after {} was sent ({e}); it may or may not have run, so it was not retried",
                    backend.addr,
                    command.name()
                )))
            }
        }
    }
}

fn failover(e: FailoverError) -> Attempt<Frame, FailoverError> {
    metrics::counter!("redis_router_failover_errors", "kind" => e.label()).increment(1);
    Attempt::Failover(e.cause(), e)
}

fn count(outcome: &'static str) {
    metrics::counter!("redis_router_commands", "outcome" => outcome).increment(1);
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
        let route = Arc::new(Route::default());
        let mut tasks = Vec::new();
        let shard_name = match &config.topology {
            Topology::Fixed(_) => "0".to_owned(),
            Topology::Sentinel { master, .. } => master.clone(),
        };
        let shard = buffer.register_shard("redis", &shard_name);
        let mut reporter = Reporter::new(
            buffer.clone(),
            shard.clone(),
            Arc::clone(&route),
            Arc::clone(&backends),
        );
        match &config.topology {
            Topology::Fixed(servers) => {
                if servers.is_empty() {
                    return Err(StartError::NoServers);
                }
                let mut watcher = FixedWatcher::new(servers.clone(), config.connect_timeout);
                watcher.poll(&mut reporter).await;
                if route.current().is_none() {
                    tracing::warn!(?servers, "no server says it is primary yet");
                }
                tasks.push(tokio::spawn(watcher.run(reporter, config.health_interval)));
            }
            Topology::Sentinel { sentinels, master } => {
                let (addr, first) = sentinel::resolve(sentinels, master, config.connect_timeout)
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
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(StartError::Bind)?;
        let local_addr = listener.local_addr().map_err(StartError::Bind)?;
        let core = Arc::new(Core {
            buffer,
            shards: vec![RoutedShard { shard, route }],
            replay: config.replay,
            max_attempts: config.max_attempts,
            command_timeout: config.command_timeout,
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

    /// The current primary's address, if one is known.
    pub fn primary(&self) -> Option<SocketAddr> {
        self.core.shards[0].route.current().map(|b| b.addr)
    }

    /// The buffer's counters for the router's shard (starts, buffered, drained, evicted,
    /// skipped, last failover duration).
    pub fn stats(&self) -> ShardStats {
        self.core.buffer.stats(&self.core.shards[0].shard)
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

//! Real Redis servers and Sentinels for the end-to-end tests, the benchmark and the demo,
//! and the client load that runs through the router.
//!
//! Every process is started on a free loopback port in a directory of its own and killed by
//! its pid when its guard drops, also when a test fails. Nothing here touches the system's
//! Redis service or its ports.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Whether `redis-server` and `redis-sentinel` are installed. When they are not, this says
/// so loudly and returns `false` (the test then skips), except under `CI=true`, where it
/// panics: CI installs them, so their absence there is a failure.
pub fn redis_available() -> bool {
    installed(
        &["redis-server", "redis-sentinel"],
        "redis-server redis-sentinel",
    )
}

/// Whether every one of `bins` runs (`--version`); if not, says which Debian `packages` to
/// install, loudly, and panics under `CI=true` (see [`redis_available`]).
fn installed(bins: &[&str], packages: &str) -> bool {
    let found = bins.iter().all(|bin| {
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !found {
        let msg = format!(
            "{} not found: install them (apt-get install {packages}); .ci/run does",
            bins.join("/")
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("\n*** SKIPPED: {msg} ***\n");
    }
    found
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The end-to-end tests run one at a time: on two cores, two failovers at once would time
/// each other.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

static DIRS: AtomicU64 = AtomicU64::new(0);

fn scratch_dir(kind: &str, port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "failover-buffer-redis-{}-{}-{kind}-{port}",
        std::process::id(),
        DIRS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// One `redis-server` or `redis-sentinel` process, killed by pid on drop.
#[derive(Debug)]
pub struct Process {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Process {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A plain synchronous connection, for set-up and checks.
    pub fn conn(&self) -> redis::Connection {
        let client = redis::Client::open(self.url()).expect("a client");
        client
            .get_connection_with_timeout(Duration::from_secs(2))
            .expect("a connection")
    }

    /// SIGKILL, now (the unplanned failover).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(200)) {
                    if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "process on port {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what the servers and Sentinels logged: their view of a
        // failover (who was judged down, when, who led) is half of what explains it.
        if std::thread::panicking() {
            for log in ["redis.log", "sentinel.log"] {
                if let Ok(text) = std::fs::read_to_string(self.dir.join(log)) {
                    let lines: Vec<&str> = text.lines().collect();
                    let tail = &lines[lines.len().saturating_sub(60)..];
                    eprintln!("--- {log} of port {}:\n{}", self.port, tail.join("\n"));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `redis-server` on a free port with `extra` settings (`["--replicaof", ...]`).
pub fn redis_server(extra: &[&str]) -> Process {
    let port = free_port();
    let dir = scratch_dir("server", port);
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--protected-mode", "no"])
        .args(["--dir", dir.to_str().expect("utf-8 dir")])
        .args(["--logfile", "redis.log"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let process = Process {
        port,
        dir,
        child: Some(child),
    };
    process.wait_ready();
    process
}

/// A primary and one replica of it, in sync.
pub fn primary_and_replica(extra: &[&str]) -> (Process, Process) {
    let primary = redis_server(extra);
    let port = primary.port.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", &port];
    args.extend_from_slice(extra);
    let replica = redis_server(&args);
    wait_until(Duration::from_secs(10), "the replica is in sync", || {
        let mut c = replica.conn();
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut c)
            .unwrap_or_default();
        info.contains("master_link_status:up")
    });
    (primary, replica)
}

/// Starts `n` Sentinels monitoring `primary` as `name` with a quorum of 2 and waits until
/// each knows the replica and the other Sentinels.
pub fn sentinels(n: usize, primary: &Process, name: &str, down_after_ms: u64) -> Vec<Process> {
    let all: Vec<Process> = (0..n)
        .map(|_| {
            let port = free_port();
            let dir = scratch_dir("sentinel", port);
            let conf = dir.join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {dir}\nlogfile sentinel.log\n\
                     sentinel monitor {name} 127.0.0.1 {primary} 2\n\
                     sentinel down-after-milliseconds {name} {down_after_ms}\n\
                     sentinel failover-timeout {name} 5000\n\
                     sentinel parallel-syncs {name} 1\n",
                    dir = dir.display(),
                    primary = primary.port,
                ),
            )
            .expect("sentinel.conf");
            let child = Command::new("redis-sentinel")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-sentinel starts");
            let process = Process {
                port,
                dir,
                child: Some(child),
            };
            process.wait_ready();
            process
        })
        .collect();
    for s in &all {
        wait_until(
            Duration::from_secs(20),
            "Sentinels know each other and the replica",
            || {
                let mut c = s.conn();
                let replicas: Vec<redis::Value> = redis::cmd("SENTINEL")
                    .arg("replicas")
                    .arg(name)
                    .query(&mut c)
                    .unwrap_or_default();
                let others: Vec<redis::Value> = redis::cmd("SENTINEL")
                    .arg("sentinels")
                    .arg(name)
                    .query(&mut c)
                    .unwrap_or_default();
                !replicas.is_empty() && others.len() + 1 == n
            },
        );
    }
    all
}

pub fn wait_until(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The role `ROLE` reports ("master" or "slave"), or `None` if unreachable.
pub fn role(addr: SocketAddr) -> Option<String> {
    let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
    let mut c = client
        .get_connection_with_timeout(Duration::from_millis(300))
        .ok()?;
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut c).ok()?;
    match role.first()? {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// What one client operation saw.
#[derive(Debug, Clone)]
pub struct Op {
    /// When it started, since the load began.
    pub at: Duration,
    /// How long it took.
    pub took: Duration,
    /// Which connection (0..connections).
    pub conn: usize,
    pub kind: OpKind,
    /// `None` if acknowledged, else the client's error.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    Incr,
    /// `INCR` of this key (the cluster load).
    IncrKey(String),
    Set(String),
}

/// The load's record: every operation, in the order each connection ran them.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub ops: Vec<Op>,
    pub elapsed: Duration,
}

impl LoadReport {
    pub fn errors(&self) -> Vec<&Op> {
        self.ops.iter().filter(|o| o.error.is_some()).collect()
    }

    pub fn acked_incrs(&self) -> u64 {
        self.ops
            .iter()
            .filter(|o| o.kind == OpKind::Incr && o.error.is_none())
            .count() as u64
    }

    pub fn failed_incrs(&self) -> u64 {
        self.ops
            .iter()
            .filter(|o| o.kind == OpKind::Incr && o.error.is_some())
            .count() as u64
    }

    pub fn acked_sets(&self) -> Vec<&Op> {
        self.ops
            .iter()
            .filter(|o| matches!(o.kind, OpKind::Set(_)) && o.error.is_none())
            .collect()
    }

    /// Latency quantile (0.0..=1.0) of the operations matching `keep`.
    pub fn quantile(&self, q: f64, keep: impl Fn(&Op) -> bool) -> Duration {
        let mut t: Vec<Duration> = self
            .ops
            .iter()
            .filter(|o| keep(o))
            .map(|o| o.took)
            .collect();
        if t.is_empty() {
            return Duration::ZERO;
        }
        t.sort();
        t[((t.len() - 1) as f64 * q).round() as usize]
    }

    pub fn throughput(&self) -> f64 {
        self.ops.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `connections` client connections against `addr` for `duration`, each alternating
/// `INCR <tag>:counter` and `SET <tag>:<conn>:<i> <i>` (a key written once, ever), one at a time. The
/// client's own response timeout is 30 s: longer than any failover here, so the client
/// library never gives up before the buffer does.
pub async fn run_load(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    tag: &str,
) -> LoadReport {
    run_load_from(Instant::now(), addr, connections, duration, tag).await
}

/// [`run_load`], with times measured from `start`.
pub async fn run_load_from(
    start: Instant,
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    tag: &str,
) -> LoadReport {
    drive(start, addr, connections, duration, tag, |tag, conn, i| {
        if i % 2 == 0 {
            OpKind::Incr
        } else {
            OpKind::Set(format!("{tag}:{conn}:{i}"))
        }
    })
    .await
}

/// The load's loop: `connections` connections to `addr` until `duration` is up, each sending
/// the operation `next(tag, conn, i)` names for its `i`-th command, one at a time, and
/// recording what it saw.
async fn drive(
    start: Instant,
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    tag: &str,
    next: fn(&str, usize, u64) -> OpKind,
) -> LoadReport {
    let client = redis::Client::open(format!("redis://{addr}/")).expect("a client");
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(Duration::from_secs(30)))
        .set_connection_timeout(Some(Duration::from_secs(5)));
    let deadline = Instant::now() + duration;
    let tag: Arc<str> = tag.into();
    let mut tasks = Vec::new();
    for conn in 0..connections {
        let mut c = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .expect("a connection to the router");
        let tag = Arc::clone(&tag);
        tasks.push(tokio::spawn(async move {
            let mut ops = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let began = Instant::now();
                let kind = next(&tag, conn, i);
                let result = match &kind {
                    OpKind::Incr => redis::cmd("INCR")
                        .arg(format!("{tag}:counter"))
                        .query_async::<i64>(&mut c)
                        .await
                        .map(|_| ()),
                    OpKind::IncrKey(key) => redis::cmd("INCR")
                        .arg(key)
                        .query_async::<i64>(&mut c)
                        .await
                        .map(|_| ()),
                    OpKind::Set(key) => {
                        redis::cmd("SET")
                            .arg(key)
                            .arg(i)
                            .query_async::<()>(&mut c)
                            .await
                    }
                };
                ops.push(Op {
                    at: began - start,
                    took: began.elapsed(),
                    conn,
                    kind,
                    error: result.err().map(|e| e.to_string()),
                });
                i += 1;
            }
            ops
        }));
    }
    let mut report = LoadReport::default();
    for t in tasks {
        report.ops.extend(t.await.expect("a load task"));
    }
    report.elapsed = start.elapsed();
    report
}

/// What the primary holds after the load, against what the client was told.
#[derive(Debug)]
pub struct Verdict {
    /// The counter's value.
    pub counter: u64,
    /// Acknowledged `SET` keys missing from the primary.
    pub missing: Vec<Op>,
}

pub fn verify(primary: SocketAddr, tag: &str, report: &LoadReport) -> Verdict {
    let client = redis::Client::open(format!("redis://{primary}/")).expect("a client");
    let mut c = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .expect("the primary");
    let counter: Option<u64> = redis::cmd("GET")
        .arg(format!("{tag}:counter"))
        .query(&mut c)
        .expect("GET counter");
    let sets = report.acked_sets();
    let mut missing = Vec::new();
    for chunk in sets.chunks(500) {
        let mut pipe = redis::pipe();
        for op in chunk {
            if let OpKind::Set(key) = &op.kind {
                pipe.cmd("EXISTS").arg(key);
            }
        }
        let exists: Vec<bool> = pipe.query(&mut c).expect("EXISTS");
        missing.extend(
            chunk
                .iter()
                .zip(exists)
                .filter(|(_, e)| !e)
                .map(|(op, _)| (*op).clone()),
        );
    }
    Verdict {
        counter: counter.unwrap_or(0),
        missing,
    }
}

/// Prints the run's numbers as the README quotes them.
pub fn summary(label: &str, report: &LoadReport, failover_at: Duration) -> String {
    let before = |o: &Op| o.at + o.took < failover_at;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{label}: {} ops in {:.1} s ({:.0} ops/s), {} client errors; latency before the failover p50 {:.2} ms p99 {:.2} ms; whole run p50 {:.2} ms p99 {:.2} ms max {:.0} ms",
        report.ops.len(),
        report.elapsed.as_secs_f64(),
        report.throughput(),
        report.errors().len(),
        ms(report.quantile(0.5, before)),
        ms(report.quantile(0.99, before)),
        ms(report.quantile(0.5, |_| true)),
        ms(report.quantile(0.99, |_| true)),
        ms(report.quantile(1.0, |_| true)),
    )
}

/// When each server's role changed, watched every 5 ms from a thread of its own.
#[derive(Debug)]
pub struct RoleWatch {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<(Option<Duration>, Option<Duration>)>>,
}

impl RoleWatch {
    /// Watches until [`finish`](Self::finish): the first time `promoted` says "master", and
    /// the first time `demoted` no longer does (a replica, or unreachable).
    pub fn start(start: Instant, promoted: SocketAddr, demoted: SocketAddr) -> RoleWatch {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let (mut up, mut down) = (None, None);
            while !flag.load(Ordering::Relaxed) {
                let now = start.elapsed();
                if up.is_none() && role(promoted).as_deref() == Some("master") {
                    up = Some(now);
                }
                if down.is_none() && role(demoted).as_deref() != Some("master") {
                    down = Some(now);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (up, down)
        });
        RoleWatch {
            stop,
            thread: Some(thread),
        }
    }

    /// `(promoted at, demoted at)`, since the watch's start.
    pub fn finish(mut self) -> (Option<Duration>, Option<Duration>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("the role watch"))
            .unwrap_or_default()
    }
}

impl Drop for RoleWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------------
// Redis Cluster

/// A cluster of `redis-server --cluster-enabled yes` processes, created with
/// `redis-cli --cluster create`; every process is killed by pid when it drops.
#[derive(Debug)]
pub struct ClusterNodes {
    pub nodes: Vec<Process>,
    /// Per shard, in slot order (shard 1 owns slot 0): the index in `nodes` of its primary
    /// and of its replica, as created.
    pub shards: Vec<ClusterShard>,
}

#[derive(Debug, Clone)]
pub struct ClusterShard {
    pub primary: usize,
    pub replica: usize,
    /// The slot ranges, as the router names the shard (`0-5460`).
    pub name: String,
    pub first_slot: u16,
    pub last_slot: u16,
}

/// Whether `redis-server` and `redis-cli` are installed (see [`redis_available`]).
pub fn cluster_available() -> bool {
    installed(&["redis-server", "redis-cli"], "redis-server redis-tools")
}

/// Three primaries and three replicas (`cluster-node-timeout` `node_timeout_ms`,
/// `cluster-require-full-coverage no`), created with `redis-cli --cluster create`, and
/// waited for until every node agrees on the shape and every replica is in sync.
pub fn redis_cluster(node_timeout_ms: u64) -> ClusterNodes {
    redis_cluster_of(3, node_timeout_ms)
}

/// [`redis_cluster`] with `primaries` primaries, each with one replica.
pub fn redis_cluster_of(primaries: usize, node_timeout_ms: u64) -> ClusterNodes {
    let timeout = node_timeout_ms.to_string();
    let nodes: Vec<Process> = (0..primaries * 2)
        .map(|_| {
            redis_server(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                &timeout,
                "--cluster-require-full-coverage",
                "no",
            ])
        })
        .collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr().to_string()).collect();
    let out = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli runs");
    assert!(
        out.status.success(),
        "redis-cli --cluster create failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut cluster = ClusterNodes {
        nodes,
        shards: Vec::new(),
    };
    wait_until(
        Duration::from_secs(30),
        "every node sees every primary with a synced replica each",
        || {
            cluster.nodes.iter().all(|n| {
                let view = cluster_view(n.addr());
                view.len() == primaries && view.iter().all(|s| s.replica.is_some())
            }) && cluster.nodes.iter().all(|n| {
                let mut c = n.conn();
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut c)
                    .unwrap_or_default();
                info.contains("role:master") || info.contains("master_link_status:up")
            })
        },
    );
    let port_index = |addr: SocketAddr| {
        cluster
            .nodes
            .iter()
            .position(|n| n.addr() == addr)
            .expect("a node of ours")
    };
    let mut view = cluster_view(cluster.nodes[0].addr());
    view.sort_by_key(|s| s.slots[0].0);
    cluster.shards = view
        .iter()
        .map(|s| ClusterShard {
            primary: port_index(s.primary),
            replica: port_index(s.replica.expect("a replica")),
            name: s
                .slots
                .iter()
                .map(|(a, b)| format!("{a}-{b}"))
                .collect::<Vec<_>>()
                .join(","),
            first_slot: s.slots[0].0,
            last_slot: s.slots[s.slots.len() - 1].1,
        })
        .collect();
    cluster
}

/// A router in front of `cluster`, seeded with its first node, with the default
/// configuration.
pub async fn cluster_router(cluster: &ClusterNodes) -> failover_buffer_redis::Router {
    failover_buffer_redis::Router::start(failover_buffer_redis::RouterConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        failover_buffer_redis::Topology::Cluster {
            seeds: vec![cluster.addr(0)],
        },
    ))
    .await
    .unwrap()
}

/// The buffer's counters, in `router`, of the cluster's shard `index` (0-based), found by
/// name.
pub fn shard_stats(
    router: &failover_buffer_redis::Router,
    cluster: &ClusterNodes,
    index: usize,
) -> failover_buffer_tokio::ShardStats {
    let shards = router.shards();
    let route = shards
        .iter()
        .find(|s| s.shard.name() == cluster.shards[index].name)
        .expect("the shard is registered");
    router.buffer().stats(&route.shard)
}

impl ClusterNodes {
    /// A node that is up, to ask.
    pub fn live_node(&self) -> SocketAddr {
        self.nodes
            .iter()
            .find(|n| n.child.is_some())
            .map(Process::addr)
            .expect("a live node")
    }

    pub fn addr(&self, index: usize) -> SocketAddr {
        self.nodes[index].addr()
    }

    /// Which shard (0-based) owns `slot`, in the shape the cluster was created with.
    pub fn shard_of_slot(&self, slot: u16) -> usize {
        self.shards
            .iter()
            .position(|s| s.first_slot <= slot && slot <= s.last_slot)
            .expect("every slot is owned")
    }

    /// Which shard (0-based) a key was created in.
    pub fn shard_of_key(&self, key: &str) -> usize {
        self.shard_of_slot(failover_buffer_redis::slot::key_slot(key.as_bytes()))
    }
}

/// One primary's part of a node's `CLUSTER NODES` view.
#[derive(Debug, Clone)]
pub struct PrimaryView {
    pub primary: SocketAddr,
    pub replica: Option<SocketAddr>,
    pub slots: Vec<(u16, u16)>,
}

/// What `node` says the shards are (`CLUSTER NODES`): primaries that own slots and are not
/// flagged `fail`, each with a connected replica.
pub fn cluster_view(node: SocketAddr) -> Vec<PrimaryView> {
    let Ok(client) = redis::Client::open(format!("redis://{node}/")) else {
        return Vec::new();
    };
    let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
        return Vec::new();
    };
    let text: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut c)
        .unwrap_or_default();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    let addr = |f: &str| -> SocketAddr { f.split('@').next().unwrap().parse().unwrap() };
    lines
        .iter()
        .filter(|f| f.len() > 8 && f[2].contains("master") && !f[2].contains("fail"))
        .map(|f| PrimaryView {
            primary: addr(f[1]),
            replica: lines
                .iter()
                .find(|r| r[3] == f[0] && r[2].contains("slave") && !r[2].contains("fail"))
                .map(|r| addr(r[1])),
            slots: f[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .map(|s| match s.split_once('-') {
                    Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                    None => (s.parse().unwrap(), s.parse().unwrap()),
                })
                .collect(),
        })
        .collect()
}

/// The node `node` says owns `slot` now.
pub fn owner_of_slot(view: &[PrimaryView], slot: u16) -> Option<SocketAddr> {
    view.iter()
        .find(|p| p.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
        .map(|p| p.primary)
}

/// Runs `connections` client connections against `addr` (the router, as one server: the
/// `redis` crate's plain client, not its cluster client) for `duration`. Each alternates
/// `INCR <tag>:n:<conn>:<j>` (16 counters per connection) and `SET <tag>:s:<conn>:<i>`
/// (a key written once), so that the keys spread over every slot.
pub async fn run_cluster_load(
    start: Instant,
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    tag: &str,
) -> LoadReport {
    drive(start, addr, connections, duration, tag, |tag, conn, i| {
        if i % 2 == 0 {
            OpKind::IncrKey(format!("{tag}:n:{conn}:{}", (i / 2) % 16))
        } else {
            OpKind::Set(format!("{tag}:s:{conn}:{i}"))
        }
    })
    .await
}

/// The same load through a buffered and an unbuffered router at once, timed from `start`.
pub fn cluster_loads(
    start: Instant,
    buffered: SocketAddr,
    unbuffered: SocketAddr,
    connections: usize,
    duration: Duration,
) -> (
    tokio::task::JoinHandle<LoadReport>,
    tokio::task::JoinHandle<LoadReport>,
) {
    (
        tokio::spawn(run_cluster_load(
            start,
            buffered,
            connections,
            duration,
            "with",
        )),
        tokio::spawn(run_cluster_load(
            start,
            unbuffered,
            connections,
            duration,
            "without",
        )),
    )
}

impl Op {
    /// The key this operation wrote.
    pub fn key(&self) -> Option<&str> {
        match &self.kind {
            OpKind::IncrKey(k) | OpKind::Set(k) => Some(k),
            OpKind::Incr => None,
        }
    }
}

/// What the cluster holds after a load, against what the clients were told, per shard.
#[derive(Debug, Default)]
pub struct ClusterVerdict {
    /// Per shard: acknowledged `SET`s missing.
    pub missing_sets: Vec<u64>,
    /// The acknowledged `SET`s missing, for their times.
    pub missing: Vec<Op>,
    /// Per shard: acknowledged `INCR`s missing (a counter below its acknowledged count).
    pub lost_incrs: Vec<u64>,
    /// Per shard: `INCR`s counted more often than they were sent (acknowledged plus failed).
    pub extra_incrs: Vec<u64>,
}

/// Reads every key the load wrote from the primary that owns it now (asked of a live node,
/// directly: not through the router).
pub fn verify_cluster(cluster: &ClusterNodes, report: &LoadReport) -> ClusterVerdict {
    let view = cluster_view(cluster.live_node());
    let mut conns: std::collections::HashMap<SocketAddr, redis::Connection> = Default::default();
    let n = cluster.shards.len();
    let mut verdict = ClusterVerdict {
        missing_sets: vec![0; n],
        missing: Vec::new(),
        lost_incrs: vec![0; n],
        extra_incrs: vec![0; n],
    };
    // Counters: acknowledged and failed INCRs per key.
    let mut counters: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    let mut sets = Vec::new();
    for op in &report.ops {
        match &op.kind {
            OpKind::IncrKey(k) => {
                let e = counters.entry(k).or_default();
                if op.error.is_none() {
                    e.0 += 1
                } else {
                    e.1 += 1
                }
            }
            OpKind::Set(_) if op.error.is_none() => sets.push(op),
            _ => {}
        }
    }
    let mut read = |key: &str| -> Option<i64> {
        let slot = failover_buffer_redis::slot::key_slot(key.as_bytes());
        let owner = owner_of_slot(&view, slot).expect("an owner for every slot");
        let c = conns.entry(owner).or_insert_with(|| {
            redis::Client::open(format!("redis://{owner}/"))
                .unwrap()
                .get_connection_with_timeout(Duration::from_secs(2))
                .expect("the owner")
        });
        redis::cmd("GET")
            .arg(key)
            .query::<Option<i64>>(c)
            .expect("GET")
    };
    for (key, (acked, failed)) in &counters {
        let value = read(key).unwrap_or(0) as u64;
        let shard = cluster.shard_of_key(key);
        verdict.lost_incrs[shard] += acked.saturating_sub(value);
        verdict.extra_incrs[shard] += value.saturating_sub(acked + failed);
    }
    for op in sets {
        let key = op.key().expect("a SET has a key");
        if read(key).is_none() {
            verdict.missing_sets[cluster.shard_of_key(key)] += 1;
            verdict.missing.push(op.clone());
        }
    }
    verdict
}

/// Latency p99 of the operations on shard `index` that started in `[from, to)`.
pub fn p99(
    report: &LoadReport,
    cluster: &ClusterNodes,
    index: usize,
    from: Duration,
    to: Duration,
) -> Duration {
    report.quantile(0.99, |o| {
        o.at >= from && o.at < to && o.key().is_some_and(|k| cluster.shard_of_key(k) == index)
    })
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Per shard: operations, errors, p99 before the failover and in the 2 s from it.
pub fn per_shard(label: &str, report: &LoadReport, cluster: &ClusterNodes, at: Duration) -> String {
    let mut out = format!(
        "{label}: {} ops, {} errors\n",
        report.ops.len(),
        report.errors().len()
    );
    for i in 0..cluster.shards.len() {
        let mine = |o: &&Op| o.key().is_some_and(|k| cluster.shard_of_key(k) == i);
        let ops = report.ops.iter().filter(mine).count();
        let errors = report.errors().into_iter().filter(mine).count();
        out += &format!(
            "  shard {} ({}): {ops} ops, {errors} errors, p99 before {:.1} ms, p99 in the 2 s from the failover {:.1} ms, max {:.0} ms\n",
            i + 1,
            cluster.shards[i].name,
            ms(p99(report, cluster, i, Duration::ZERO, at)),
            ms(p99(report, cluster, i, at, at + Duration::from_secs(2))),
            ms(report.quantile(1.0, |o| o
                .key()
                .is_some_and(|k| cluster.shard_of_key(k) == i))),
        );
    }
    out
}

/// Past the kill's first moments, when commands in flight die with their connections.
const SETTLED: Duration = Duration::from_millis(100);

/// What the simulator needs to replay a killed-primary run as a closed loop, and what the
/// run measured, in the words of the simulator's report (see the router's README, "The
/// simulator's prediction"). `usual` is the median latency before the kill, which the
/// simulator takes as the service time; the connections' think time is what is left of
/// their measured cycle.
pub fn simulator_inputs(
    report: &LoadReport,
    cluster: &ClusterNodes,
    connections: usize,
    killed_at: Duration,
    promoted: Duration,
) -> String {
    let before: Vec<&Op> = report
        .ops
        .iter()
        .filter(|o| o.at + o.took < killed_at)
        .collect();
    let usual = report.quantile(0.5, |o| o.at + o.took < killed_at);
    let cycle = killed_at.mul_f64(connections as f64 / before.len().max(1) as f64);
    let mut out = format!(
        "simulator inputs: {connections} connections, service {:.2} ms (median before the kill), think time {:.2} ms (cycle {:.2} ms), shares",
        ms(usual),
        ms(cycle.saturating_sub(usual)),
        ms(cycle)
    );
    for i in 0..cluster.shards.len() {
        let n = before
            .iter()
            .filter(|o| o.key().is_some_and(|k| cluster.shard_of_key(k) == i))
            .count();
        out += &format!(" {}", n);
    }
    // Commands per second each shard started before the kill and in the outage: a closed
    // loop's rate moves with the latency of what it waits for.
    let outage = promoted.saturating_sub(killed_at);
    out += "; commands/s before the kill | in the outage:";
    for i in 0..cluster.shards.len() {
        let started = |from: Duration, to: Duration| {
            report
                .ops
                .iter()
                .filter(|o| o.at >= from && o.at < to)
                .filter(|o| o.key().is_some_and(|k| cluster.shard_of_key(k) == i))
                .count() as f64
        };
        out += &format!(
            " {:.0} | {:.0}",
            started(Duration::ZERO, killed_at) / killed_at.as_secs_f64(),
            started(killed_at, promoted) / outage.as_secs_f64().max(1e-9)
        );
    }
    let errors = report.errors();
    if let (Some(first), Some(last)) = (
        errors.iter().map(|o| o.at).min(),
        errors.iter().map(|o| o.at + o.took).max(),
    ) {
        out += &format!(
            "; errors from {:.3} s to {:.3} s",
            first.as_secs_f64(),
            last.as_secs_f64()
        );
    }
    let mut added: Vec<Duration> = report
        .ops
        .iter()
        .filter(|o| o.error.is_none())
        .map(|o| o.took.saturating_sub(usual))
        .collect();
    added.sort();
    let at = |q: f64| {
        added
            .get(((added.len().max(1) - 1) as f64 * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    // A failed command spent its attempts on a dead primary: their time is a refusal's.
    let failed = report.quantile(0.5, |o| o.error.is_some() && o.at > killed_at + SETTLED);
    out += &format!(
        "\nmeasured: {} commands, {} errors (median {:.2} ms each, after the first {} ms); added latency over the usual: p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms\n",
        report.ops.len(),
        report.errors().len(),
        ms(failed),
        SETTLED.as_millis(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0))
    );
    out
}

//! A Redis proxy that holds client commands while the primary fails over, then sends them
//! to the new primary: clients see a pause instead of errors.
//!
//! The router accepts RESP2 client connections, forwards each command to the current
//! primary over a small per-server pool, and answers the client. The primary is learned
//! from Redis Sentinel (`get-master-addr-by-name`, `+switch-master` and friends, a periodic
//! `SENTINEL MASTER` + `ROLE` check; the term is `config-epoch`), from a fixed list of
//! servers polled with `ROLE` (the term is a counter bumped when another server becomes
//! primary), or from a Redis Cluster ([`Topology::Cluster`]: one buffer shard per cluster
//! shard, read from `CLUSTER SHARDS`; the term is the shard primary's `configEpoch`; each
//! command goes to its key's hash slot, see [`slot`]). Failover errors (`-READONLY`, `-LOADING`, `-MASTERDOWN`, `-NOREPLICAS`, refused,
//! reset or closed connections) go back through [`failover_buffer_tokio`]'s buffer; every
//! other reply goes straight to the client. While a Sentinel fails the primary over, the
//! router sends nothing to the old primary (it hears every Sentinel's leader announcement),
//! so no write is lost to Sentinel's uncoordinated switch by way of the router.
//!
//! # The replay rule
//!
//! A command is retried only when the primary cannot have run it: see [`replay`]. A
//! command whose connection died after it was sent is answered with an error saying so,
//! unless it is on the [`ReplayPolicy`] allow-list of idempotent commands.
//!
//! # Example
//!
//! ```no_run
//! use failover_buffer_redis::{Router, RouterConfig, Topology};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let topology = Topology::Sentinel {
//!     sentinels: vec!["127.0.0.1:26379".parse()?],
//!     master: "mymaster".into(),
//! };
//! let router = Router::start(RouterConfig::new("127.0.0.1:7000".parse()?, topology)).await?;
//! println!("clients connect to {}", router.local_addr());
//! # Ok(()) }
//! ```
//!
//! # What it does not do
//!
//! Commands that keep state on a server connection (`MULTI`/`EXEC`, `WATCH`, `SUBSCRIBE`,
//! `SELECT`, `HELLO`, `AUTH`, `CLIENT`) are refused with a clear error: a pooled proxy
//! cannot give a client a connection of its own. Inline commands are refused too; every
//! client library sends RESP arrays.
#![forbid(unsafe_code)]

pub mod classify;
mod client;
mod cluster;
pub mod command;
pub mod health;
mod keyspace;
pub mod pool;
pub mod replay;
pub mod resp;
pub mod route;
mod router;
pub mod slot;

pub use classify::FailoverError;
pub use health::cluster::ClusterError;
pub use health::sentinel::SentinelError;
pub use replay::ReplayPolicy;
pub use router::{Router, RouterConfig, ShardRoute, StartError, Topology};

/// The README's Rust examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

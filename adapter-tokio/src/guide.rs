//! A router author's guide: what to report as health, three health watchers, and the traps.
//!
//! This module holds no code, only documentation; every example in it is compiled and run
//! by `cargo test`.
//!
//! # What the buffer needs to hear
//!
//! The buffer holds a shard's requests until it is told the failover is over, by
//! [`FailoverBuffer::health`](crate::FailoverBuffer::health) with a [`HealthStamp`]:
//!
//! * **`primary`**: which server is the shard's primary, as a [`PrimaryId`]. Any stable
//!   identity will do: a Vitess tablet alias, a Redis `run_id` or `host:port`, a Postgres
//!   host, hashed with [`PrimaryId::from_identity`] (a fixed FNV-1a 64, the same in every
//!   process and version). A numeric id the router already has can be used as it is.
//! * **`term`**: a number, per shard, that rises each time the primary changes and never
//!   goes down: Vitess `primary_term_start_timestamp`, a Postgres timeline id, a Redis
//!   Sentinel or Cluster config epoch. Standalone Redis has none: keep a counter in the
//!   watcher and bump it when a different server becomes primary (see the Redis watcher
//!   below). A stamp whose term is below the highest seen is refused as stale.
//! * **`serving`**: the primary accepts writes *now*. When no server is primary (the old one
//!   is gone or read-only, the new one not promoted yet), send `serving: false` with the last
//!   primary and its term: it tells the buffer the failover is under way, and the same
//!   primary serving again later (a failover that was called off) then ends it.
//!
//! A failover ends on a serving stamp with a newer term, or on a serving stamp after a
//! not-serving one. The old primary's last "still serving" (same term) ends nothing.
//!
//! **Report every poll, or only changes**: either works. A repeated stamp is cheap (one short
//! lock) and changes nothing; what matters is that a change is reported as soon as it is
//! seen, since held requests wait for it (at most the `window`, 10 s by default).
//!
//! **Route first, then report.** A serving stamp releases the held requests at once, and
//! their retries go wherever the router sends them. Switch the route to the new primary
//! before calling `health`, or the released retries meet the old primary, fail again, and
//! pause the drain (they are held again, up to `max_failover_duration`).
//!
//! # Three health watchers
//!
//! Each is the part that turns what a poll saw into a stamp; the polling loop around it is
//! the same for all three:
//!
//! ```
//! use std::time::Duration;
//! use failover_buffer_tokio::{FailoverBuffer, HealthStamp, Shard};
//!
//! /// Polls `observe` every 100 ms; routes to each new primary, then reports it.
//! async fn watch(
//!     buffer: FailoverBuffer,
//!     shard: Shard,
//!     mut observe: impl AsyncFnMut() -> Option<HealthStamp>,
//!     mut route_to: impl FnMut(&HealthStamp),
//! ) {
//!     let mut interval = tokio::time::interval(Duration::from_millis(100));
//!     loop {
//!         interval.tick().await;
//!         if let Some(stamp) = observe().await {
//!             if stamp.serving {
//!                 route_to(&stamp); // first the route...
//!             }
//!             let _ = buffer.health(&shard, stamp); // ...then the buffer (a stale stamp is refused)
//!         }
//!     }
//! }
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! #     let buffer = FailoverBuffer::new(failover_buffer_tokio::Config { enabled: true, ..Default::default() }).unwrap();
//! #     let shard = buffer.register_shard("commerce", "0");
//! #     let stamp = HealthStamp { primary: failover_buffer_tokio::PrimaryId(1), term: 1, serving: true };
//! #     let watcher = tokio::spawn(watch(buffer.clone(), shard, async move || Some(stamp), |_| {}));
//! #     tokio::time::sleep(Duration::from_millis(250)).await;
//! #     watcher.abort();
//! # }
//! ```
//!
//! ## Redis (standalone, or behind Sentinel)
//!
//! Ask each node `ROLE` (or `INFO replication`); the node answering `master` is the primary,
//! identified by its `run_id` from `INFO server` (or its `host:port`). Standalone Redis has
//! no epoch, so the watcher keeps the term itself. (With Sentinel, `SENTINEL
//! GET-MASTER-ADDR-BY-NAME` names the primary and its config epoch can serve as the term.)
//!
//! ```
//! use failover_buffer_tokio::{HealthStamp, PrimaryId};
//!
//! #[derive(Debug, Default)]
//! struct RedisWatch {
//!     /// The primary last seen, and the term the watcher gave it.
//!     primary: Option<(PrimaryId, u64)>,
//! }
//!
//! impl RedisWatch {
//!     /// `master`: the `run_id` of the node whose `ROLE` is `master`, or `None` when no node
//!     /// is (every node a replica, or the primary unreachable).
//!     fn observe(&mut self, master: Option<&str>) -> Option<HealthStamp> {
//!         match (master, self.primary) {
//!             (Some(run_id), last) => {
//!                 let primary = PrimaryId::from_identity(run_id.as_bytes());
//!                 let term = match last {
//!                     Some((was, term)) if was == primary => term,
//!                     Some((_, term)) => term + 1, // a different primary: a new term
//!                     None => 1,
//!                 };
//!                 self.primary = Some((primary, term));
//!                 Some(HealthStamp { primary, term, serving: true })
//!             }
//!             // No primary: the last one, not serving.
//!             (None, Some((primary, term))) => Some(HealthStamp { primary, term, serving: false }),
//!             (None, None) => None, // nothing known yet
//!         }
//!     }
//! }
//!
//! let mut watch = RedisWatch::default();
//! let old = watch.observe(Some("8c6c3dd0f0e7b1a2c3d4e5f60718293a4b5c6d7e")).unwrap();
//! let during = watch.observe(None).unwrap(); // FAILOVER in progress: both nodes replicas
//! let new = watch.observe(Some("1f2e3d4c5b6a79880716253443526170f1e2d3c4")).unwrap();
//! assert_eq!((old.term, old.serving), (1, true));
//! assert_eq!((during.primary, during.term, during.serving), (old.primary, 1, false));
//! assert_eq!((new.term, new.serving), (2, true));
//! assert_ne!(new.primary, old.primary);
//! ```
//!
//! ## Postgres
//!
//! Ask the endpoint the router writes to `SELECT pg_is_in_recovery(), timeline_id FROM
//! pg_control_checkpoint()`. A standby promoted to primary leaves recovery and starts a new
//! timeline, so the timeline id is the term. (`pg_control_checkpoint()` shows the new
//! timeline once the promotion's checkpoint is written; the first eight hex digits of
//! `pg_walfile_name(pg_current_wal_lsn())` show it at once, on a primary.) Identify the
//! server by its host, or by `system_identifier` from `pg_control_system()` with the host (a
//! physical standby shares its primary's system identifier).
//!
//! ```
//! use failover_buffer_tokio::{HealthStamp, PrimaryId};
//!
//! /// One poll's answer.
//! struct PgPoll<'a> {
//!     host: &'a str,
//!     in_recovery: bool,
//!     timeline_id: u64,
//! }
//!
//! fn stamp(poll: &PgPoll<'_>) -> HealthStamp {
//!     HealthStamp {
//!         primary: PrimaryId::from_identity(poll.host.as_bytes()),
//!         term: poll.timeline_id,
//!         // A server in recovery is a standby: it accepts no writes.
//!         serving: !poll.in_recovery,
//!     }
//! }
//!
//! let before = stamp(&PgPoll { host: "pg-a:5432", in_recovery: false, timeline_id: 3 });
//! // The router's endpoint now points at the standby, not yet promoted.
//! let during = stamp(&PgPoll { host: "pg-b:5432", in_recovery: true, timeline_id: 3 });
//! let after = stamp(&PgPoll { host: "pg-b:5432", in_recovery: false, timeline_id: 4 });
//! assert!(before.serving && !during.serving && after.serving);
//! assert!(after.term > before.term);
//! ```
//!
//! ## Vitess-style health streams
//!
//! A tablet's `StreamHealth` (or any stream like it) already carries all three: the tablet
//! alias, whether it is the `PRIMARY` and serving, and `primary_term_start_timestamp`, the
//! term Vitess's own buffer uses.
//!
//! ```
//! use failover_buffer_tokio::{HealthStamp, PrimaryId};
//!
//! /// The fields of one `StreamHealthResponse` the buffer needs.
//! struct TabletHealth<'a> {
//!     alias: &'a str,
//!     is_primary: bool,
//!     serving: bool,
//!     primary_term_start_timestamp: u64,
//! }
//!
//! /// A stamp for the shard's primary, or `None` for a replica's report.
//! fn stamp(health: &TabletHealth<'_>) -> Option<HealthStamp> {
//!     health.is_primary.then(|| HealthStamp {
//!         primary: PrimaryId::from_identity(health.alias.as_bytes()),
//!         term: health.primary_term_start_timestamp,
//!         serving: health.serving,
//!     })
//! }
//!
//! let promoted = TabletHealth {
//!     alias: "zone1-0000000102",
//!     is_primary: true,
//!     serving: true,
//!     primary_term_start_timestamp: 1_764_480_000,
//! };
//! assert_eq!(stamp(&promoted).map(|s| s.term), Some(1_764_480_000));
//! let replica = TabletHealth { is_primary: false, ..promoted };
//! assert_eq!(stamp(&replica), None);
//! ```
//!
//! # Traps
//!
//! * **`Config::default()` buffers nothing.** Its `enabled` is `false`, as in Vitess: set
//!   `enabled: true` (or a `mode` per shard), or every request proceeds unbuffered.
//! * **`min_time_between_failovers` (60 s by default).** A failover error within 60 s of the
//!   end of the previous episode, or of a change of primary, is not buffered (counted in
//!   `skipped` as `LastFailoverTooRecent` / `LastReparentTooRecent`): a second failover soon
//!   after the first goes straight to the clients. Drills that fail over twice in a row
//!   need a shorter value (at least 1 s).
//! * **A client library's own timeout.** A request is held up to `window` (10 s by default).
//!   If the client gives up sooner (redis-rs's response timeout is 500 ms by default), it
//!   sees an error anyway, and the buffer only delays it. Make the client's timeout longer
//!   than the window, or the window shorter than the client's timeout.
//! * **Cancel a held request when its client hangs up.** A proxy holds a request for a
//!   client connection; if that client goes away, drop the request's future (with
//!   `tokio::select!` on the connection), or the write runs later, after the client gave up
//!   and perhaps retried elsewhere. Dropping the future cancels a held request and frees its
//!   slot:
//!
//! ```
//! use failover_buffer_tokio::{Config, FailoverBuffer, FailoverCause, Shard};
//! use tokio::sync::oneshot;
//!
//! /// Serves one client request; `hung_up` fires when the client's connection closes.
//! async fn serve(
//!     buffer: &FailoverBuffer,
//!     shard: &Shard,
//!     hung_up: oneshot::Receiver<()>,
//! ) -> Option<Result<u64, String>> {
//!     let classify = |e: &String| e.starts_with("READONLY").then_some(FailoverCause::Reparent);
//!     tokio::select! {
//!         answer = buffer.run(shard, 3, write, classify) => Some(answer.map_err(|e| e.to_string())),
//!         // The client is gone: `run`'s future is dropped here, which cancels the held
//!         // request (or ends its attempt). Nothing is sent after this.
//!         _ = hung_up => None,
//!     }
//! }
//! # async fn write() -> Result<u64, String> { Err("READONLY".into()) }
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! #     let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() }).unwrap();
//! #     let shard = buffer.register_shard("commerce", "0");
//! #     let (hang_up, hung_up) = oneshot::channel();
//! #     let server = tokio::spawn({
//! #         let (buffer, shard) = (buffer.clone(), shard.clone());
//! #         async move { serve(&buffer, &shard, hung_up).await }
//! #     });
//! #     tokio::time::sleep(std::time::Duration::from_millis(100)).await;
//! #     assert_eq!(buffer.queued(&shard), 1);
//! #     hang_up.send(()).unwrap();
//! #     assert_eq!(server.await.unwrap(), None);
//! #     assert_eq!(buffer.held_slots(), 0);
//! # }
//! ```
//!
//! * **Which [`FailoverCause`] a refused connection is.** A connection refused or reset by
//!   the primary while it restarts or is replaced is [`FailoverCause::Reparent`]: the
//!   primary is not serving. Resharding and MoveTables errors have their own causes. Only
//!   classify as failovers the errors a failover causes: a syntax error, a constraint
//!   violation or a timeout of a slow query goes to the client. And since such an episode
//!   ends only when health says so, the watcher must report the primary `serving: false`
//!   while it cannot reach it, and serving again when it can; otherwise a passing network
//!   error holds requests until their window.
//!
//! [`HealthStamp`]: crate::HealthStamp
//! [`PrimaryId`]: crate::PrimaryId
//! [`PrimaryId::from_identity`]: crate::PrimaryId::from_identity
//! [`FailoverCause`]: crate::FailoverCause
//! [`FailoverCause::Reparent`]: crate::FailoverCause::Reparent

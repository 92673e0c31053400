//! Vitess's proactive start (issues 9071, 9112; `ShouldStartBufferingForTarget`): a health
//! stamp saying an idle shard's primary is not serving starts an episode before any request
//! fails, so even first attempts are held.

mod support;

use failover_buffer::{Action, Admission, Config, FailoverCause, ShardState, StopReason, Verdict};
use support::*;

#[test]
fn a_not_serving_stamp_on_an_idle_shard_holds_first_attempts() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    h.health(shard, not_serving(1, 1)).unwrap();
    assert_eq!(
        h.take_actions(),
        [Action::FailoverStarted {
            shard,
            cause: FailoverCause::Reparent
        }]
    );
    assert_eq!(h.state(shard), ShardState::Buffering);
    assert_eq!(h.stats(shard).starts, 1);

    // A first attempt is held, not sent to the primary that is going away.
    let t1 = h.wait(shard, None);
    // The usual rules end it: here the promoted replica, with a newer term.
    h.health(shard, serving(2, 2)).unwrap();
    assert_eq!(h.take_wakes(), [(t1, Verdict::Retry)]);
    h.complete_retries();
    assert_eq!(h.stats(shard).stops[StopReason::NewPrimarySeen], 1);
    h.assert_quiet();
}

/// The stamp itself was a not-serving stamp seen during the episode, so the same primary
/// serving again (a switchover that was called off) ends it too.
#[test]
fn the_same_primary_serving_again_ends_a_proactive_episode() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    h.health(shard, not_serving(1, 1)).unwrap();
    let t1 = h.wait(shard, None);
    h.health(shard, serving(1, 1)).unwrap();
    assert_eq!(h.take_wakes(), [(t1, Verdict::Retry)]);
    h.complete_retries();
    h.assert_quiet();
}

/// The same min-time rules as for a failover error: an episode that ended less than
/// `min_time_between_failovers` ago means this stamp is not a new failover. Nothing is
/// counted as skipped, since no request was refused.
#[test]
fn proactive_start_follows_the_min_time_rules() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    h.wait(shard, FAILOVER);
    h.health(shard, serving(2, 2)).unwrap();
    h.complete_retries();
    assert_eq!(h.state(shard), ShardState::Idle);

    h.advance(secs(30));
    h.health(shard, not_serving(2, 2)).unwrap();
    assert_eq!(h.state(shard), ShardState::Idle);
    assert_eq!(h.stats(shard).starts, 1);
    assert_eq!(h.stats(shard).skipped.total(), 0);

    h.advance(secs(31));
    h.health(shard, not_serving(2, 2)).unwrap();
    assert_eq!(h.state(shard), ShardState::Buffering);
    assert_eq!(h.stats(shard).starts, 2);
}

/// The first stamp of a new primary changes the primary, which is a reparent: as for a
/// failover error right after it, `LastReparentTooRecent` forbids a start. (The demoted
/// primary's own not-serving stamp, which comes first in a switchover, does start one.)
#[test]
fn a_new_primary_not_yet_serving_is_a_reparent_just_seen() {
    let mut h = Harness::new(enabled());
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    h.health(shard, not_serving(2, 2)).unwrap();
    assert_eq!(h.state(shard), ShardState::Idle);
    assert_eq!(h.request(shard, None), Admission::Proceed);
}

#[test]
fn proactive_start_can_be_turned_off() {
    let mut h = Harness::new(Config {
        proactive_start: false,
        ..enabled()
    });
    let shard = h.shard("ks", "0");
    h.health(shard, serving(1, 1)).unwrap();
    h.health(shard, not_serving(1, 1)).unwrap();
    assert_eq!(h.state(shard), ShardState::Idle);
    assert_eq!(h.request(shard, None), Admission::Proceed);
    assert!(h.take_actions().is_empty());
}

/// A disabled shard never buffers; a dry-run shard runs the episode and counts what it would
/// have held, holding nothing.
#[test]
fn only_shards_that_buffer_or_dry_run_start_proactively() {
    let mut h = Harness::new(Config {
        enabled: true,
        dry_run: true,
        filter: "ks/0".parse().unwrap(),
        ..Config::default()
    });
    let real = h.shard("ks", "0");
    let dry = h.shard("ks", "1");
    let mut off = Harness::new(Config::default());
    let disabled = off.shard("ks", "0");

    h.health(dry, not_serving(1, 1)).unwrap();
    assert_eq!(h.state(dry), ShardState::Buffering);
    assert_eq!(h.request(dry, None), Admission::Proceed);
    assert_eq!(h.stats(dry).buffered_dry_run, 1);
    assert_eq!(h.state(real), ShardState::Idle);

    off.health(disabled, not_serving(1, 1)).unwrap();
    assert_eq!(off.state(disabled), ShardState::Idle);
}

//! The small contracts of the public types: formatting, arithmetic, error chains.

use std::error::Error;
use std::time::Duration;

use failover_buffer::{
    ByReason, EvictReason, FailoverCause, InputError, ShardId, Ticket, TicketError, Timestamp,
};

#[test]
fn only_a_ticket_error_has_a_source() {
    let stale = TicketError::Stale(Ticket::from_parts(0, 1));
    let error = InputError::Ticket(stale);
    let source = error.source().expect("a ticket error has a source");
    assert_eq!(source.to_string(), stale.to_string());
    assert!(InputError::UnknownShard.source().is_none());
    assert!(
        InputError::StaleHealthStamp {
            term: 1,
            highest: 2
        }
        .source()
        .is_none()
    );
}

#[test]
fn only_a_reparent_asks_a_router_to_wait_for_a_newer_term() {
    assert!(FailoverCause::Reparent.is_reparent());
    assert!(!FailoverCause::Resharding.is_reparent());
    assert!(!FailoverCause::MoveTables.is_reparent());
}

#[test]
fn ids_and_counters_print_readably() {
    assert_eq!(format!("{:?}", ShardId::from_index(3)), "ShardId(3)");
    assert_eq!(
        format!("{:?}", ByReason::<EvictReason>::default()),
        r#"{"ContextDone": 0, "BufferFull": 0, "WindowExceeded": 0}"#
    );
}

#[test]
fn timestamps_debug_print_as_seconds_like_display() {
    let t = Timestamp::from_millis(1500);
    assert_eq!(format!("{t:?}"), "1.500000000s");
    assert_eq!(format!("{t:?}"), t.to_string());
}

#[test]
fn timestamps_subtract_durations_saturating_at_the_origin() {
    let t = Timestamp::from_secs(3);
    assert_eq!(t - Duration::from_secs(1), Timestamp::from_secs(2));
    assert_eq!(
        t.saturating_sub(Duration::from_millis(500)),
        Timestamp::from_millis(2500)
    );
    assert_eq!(t - Duration::from_secs(4), Timestamp::ZERO);
    assert_eq!(Timestamp::MAX + Duration::from_secs(1), Timestamp::MAX);
}

#[test]
fn stat_samples_name_every_counter_once_with_vitess_names() {
    use failover_buffer::{SampleKind, ShardStats};
    use std::collections::BTreeSet;

    // `ShardStats` is `#[non_exhaustive]`: built only by the buffer, or as a default.
    let mut stats = ShardStats::default();
    stats.buffered = 4;
    stats.last_failover_duration = Duration::from_millis(1500);
    let samples: Vec<_> = stats.samples().collect();
    // 12 plain series, then 5 stop, 3 evict and 5 skip reasons, then the pauses started
    // and 3 reasons a pause ended.
    assert_eq!(samples.len(), 29);
    let keys: BTreeSet<_> = samples.iter().map(|s| (s.name, s.reason)).collect();
    assert_eq!(keys.len(), samples.len(), "a series is named twice");
    let find = |name, reason| {
        samples
            .iter()
            .find(|s| s.name == name && s.reason == reason)
    };
    let buffered = find("failover_buffer_requests_buffered", None).unwrap();
    assert_eq!((buffered.kind, buffered.value), (SampleKind::Counter, 4));
    let last = find("failover_buffer_last_failover_duration_ms", None).unwrap();
    assert_eq!((last.kind, last.value), (SampleKind::Gauge, 1500));
    assert!(
        find(
            "failover_buffer_requests_skipped",
            Some("LastReparentTooRecent")
        )
        .is_some()
    );
    assert!(find("failover_buffer_pauses_ended", Some("Expired")).is_some());
    assert!(find("failover_buffer_pauses_started", None).is_some());
    assert!(
        samples
            .iter()
            .all(|s| s.name.starts_with("failover_buffer_"))
    );
}

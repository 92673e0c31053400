//! The `eviction`, `max_per_shard` and `max_bytes` buffer keys (issue 15): read from a scenario file and
//! from `--sweep`, refused with the key named, and changing what a two-shard failover does.

use failover_buffer::Eviction;
use failover_buffer_sim::{Scenario, enabled_vitess_defaults, run, set_buffer_key};

fn two_shards() -> Scenario {
    Scenario::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/two-shards.toml"
    ))
    .expect("the scenario file is valid")
}

#[test]
fn the_keys_default_to_vitess_and_are_read_from_the_buffer_table() {
    let d = enabled_vitess_defaults();
    assert_eq!(
        (d.eviction, d.max_per_shard),
        (Eviction::OldestOfShard, None)
    );
    let text = "[[shards]]\nname = \"ks/0\"\nrate = 10\n[buffer]\neviction = \"reject_new\"\nmax_per_shard = 7\n";
    let s = Scenario::from_toml_str(text, "test").expect("valid");
    assert_eq!(
        (s.buffer.eviction, s.buffer.max_per_shard),
        (Eviction::RejectNew, Some(7))
    );
}

#[test]
fn a_bad_policy_or_a_zero_cap_is_refused_with_its_key() {
    let text = "[[shards]]\nname = \"ks/0\"\nrate = 10\n[buffer]\neviction = \"oldest\"\n";
    let Err(e) = Scenario::from_toml_str(text, "test") else {
        panic!("accepted");
    };
    assert!(e.to_string().contains("buffer.eviction"), "{e}");
    let text = "[[shards]]\nname = \"ks/0\"\nrate = 10\n[buffer]\nmax_per_shard = 0\n";
    let Err(e) = Scenario::from_toml_str(text, "test") else {
        panic!("accepted");
    };
    assert!(e.to_string().contains("max_per_shard"), "{e}");
    let mut config = enabled_vitess_defaults();
    assert!(set_buffer_key(&mut config, "eviction", "newest").is_err());
    set_buffer_key(&mut config, "max_per_shard", "none").expect("none is no cap");
    assert_eq!(config.max_per_shard, None);
}

/// Under Vitess's policy the second shard to fail over gets `BufferFull` for every failover
/// request; a cap holds them (the first shard pays with its own oldest); `reject_new` evicts
/// nobody.
#[test]
fn a_cap_holds_the_second_shards_requests_instead_of_refusing_them() {
    let scenario = two_shards();
    let with = |eviction, max_per_shard| {
        let config = failover_buffer::Config {
            eviction,
            max_per_shard,
            ..scenario.buffer.clone()
        };
        run(&scenario, &config, 1).expect("runs").errors
    };
    let vitess = with(Eviction::OldestOfShard, None);
    assert!(vitess.buffer_full > 0, "{vitess:?}");
    let capped = with(Eviction::OldestOfShard, Some(700));
    assert_eq!(capped.buffer_full, 0, "{capped:?}");
    assert!(capped.evicted > vitess.evicted);
    let anywhere = with(Eviction::OldestAnywhere, None);
    assert_eq!(anywhere.buffer_full, 0, "{anywhere:?}");
    let reject = with(Eviction::RejectNew, None);
    assert_eq!(reject.evicted, 0, "{reject:?}");
}

/// A replayed trace's sizes count against `max_bytes`: during the failover, 300 bytes are
/// held, and the next 200 would go over a budget of 400, so the 300 make way.
#[test]
fn a_byte_budget_applies_to_a_traces_sizes() {
    let text = "[service]\ndistribution = \"constant\"\ntime = \"10ms\"\n[[shards]]\nname = \"ks/0\"\nrate = 1000\n[[shards.failovers]]\nstart = \"1s\"\nduration = \"1s\"\n[buffer]\nmax_bytes = 400\n";
    let mut scenario = Scenario::from_toml_str(text, "s.toml").expect("valid");
    assert_eq!(scenario.buffer.max_bytes, Some(400));
    let dir =
        std::env::temp_dir().join(format!("failover-buffer-sim-bytes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("sizes.csv");
    std::fs::write(&path, "time,shard,size\n1.1s,ks/0,300\n1.2s,ks/0,200\n").expect("write");
    scenario.trace = Some(path);
    let report = run(&scenario, &scenario.buffer, 1).expect("runs");
    assert_eq!(
        (report.requests, report.errors.evicted, report.ok),
        (2, 1, 1)
    );
    let unlimited = failover_buffer::Config {
        max_bytes: None,
        ..scenario.buffer.clone()
    };
    let report = run(&scenario, &unlimited, 1).expect("runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!((report.errors.total, report.ok), (0, 2));
}

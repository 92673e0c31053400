//! Replays the fuzz targets' committed seed corpora (`fuzz/corpus/<target>/`) and any crash
//! artifacts (`fuzz/artifacts/<target>/`) through the same harness the fuzz targets use, so
//! plain `cargo test` keeps every input a fuzzer ever found interesting passing, on stable
//! and without cargo-fuzz.

#[allow(dead_code)]
#[path = "../../fuzz/harness/ops.rs"]
mod ops;

use std::path::{Path, PathBuf};

fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable fuzz directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every file through `target`, naming the file that fails.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let mut count = 0;
    for kind in ["corpus", "artifacts"] {
        for path in files(kind, target) {
            let data = std::fs::read(&path).expect("readable corpus file");
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(
                outcome.is_ok(),
                "{} fails; reproduce with `cargo +nightly fuzz run {target} {}`",
                path.display(),
                path.display()
            );
            count += 1;
        }
    }
    count
}

#[test]
fn buffer_ops_corpus_passes() {
    let replayed = replay("buffer_ops", ops::fuzz_buffer_ops);
    assert!(replayed > 0, "the buffer_ops seed corpus is missing");
}

#[test]
fn config_corpus_passes() {
    let replayed = replay("config", ops::fuzz_config);
    assert!(replayed > 0, "the config seed corpus is missing");
}

// ----- the buffer_ops seeds, as scenarios -----
//
// The seed files are `arbitrary` encodings of the scenarios below. Any change to the ops or
// the set-up changes how bytes decode, which silently turns seeds into noise; so each seed is
// written down here as what it means, checked by `buffer_ops_seeds_decode_to_their_scenarios`,
// and rewritten by `cargo test -p failover-buffer --test fuzz_corpus -- --ignored
// regenerate_buffer_ops_seeds` when the decoding changes.

use failover_buffer::Eviction;
use ops::{Cause, Op, OpsInput, Reconf, SetUp, Term, TicketRef, Topo};

fn setup(shards: usize, size: usize) -> SetUp {
    SetUp {
        shards,
        size,
        window_ms: 2000,
        max_failover_duration_ms: 4000,
        min_time_between_failovers_ms: 1000,
        drain_concurrency: 1,
        drain_backoff_ms: 250,
        enabled: true,
        dry_run: false,
        filter: "",
        proactive_start: false,
        shutdown_grace_ms: None,
        eviction: Eviction::OldestOfShard,
        max_per_shard: None,
        max_bytes: None,
    }
}

fn request(shard: u8, cause: Option<Cause>) -> Op {
    Op::Request { shard, cause }
}

fn health(shard: u8, primary: u8, term: Term, serving: bool) -> Op {
    Op::Health {
        shard,
        primary,
        term,
        serving,
    }
}

const FAIL: Option<Cause> = Some(Cause::Reparent);

fn seeds() -> Vec<(&'static str, SetUp, Vec<Op>)> {
    let done = Op::RetryDone(TicketRef::Released(0));
    vec![
        (
            "seed-failover-ends-on-new-primary",
            setup(1, 4),
            vec![
                health(0, 1, Term::Same, true),
                request(0, FAIL),
                request(0, None),
                Op::Tick { advance_ms: 250 },
                health(0, 2, Term::Newer, true),
                done,
                done,
            ],
        ),
        (
            "seed-drain-backs-off-when-retry-fails",
            SetUp {
                drain_concurrency: 2,
                drain_backoff_ms: 500,
                ..setup(1, 4)
            },
            vec![
                health(0, 1, Term::Same, true),
                request(0, FAIL),
                request(0, FAIL),
                request(0, FAIL),
                health(0, 2, Term::Newer, true),
                Op::RetryFailed {
                    ticket: TicketRef::Released(0),
                    cause: Cause::Reparent,
                },
                Op::TickAtDeadline,
                done,
                done,
                done,
            ],
        ),
        (
            "seed-full-buffer-evicts-oldest-of-same-shard",
            setup(2, 2),
            vec![
                request(0, FAIL),
                request(0, FAIL),
                request(0, FAIL),
                request(1, FAIL),
                Op::TickAtDeadline,
            ],
        ),
        (
            "seed-shutdown-while-buffering",
            SetUp {
                dry_run: true,
                filter: "ks0/0,ks1",
                ..setup(3, 3)
            },
            vec![
                request(0, FAIL),
                request(1, FAIL),
                request(2, FAIL),
                request(0, None),
                Op::Shutdown,
                request(0, FAIL),
                done,
            ],
        ),
        (
            "seed-stale-forged-and-double-tickets",
            setup(1, 4),
            vec![
                request(0, FAIL),
                request(0, FAIL),
                Op::Cancel(TicketRef::Queued(0)),
                Op::Cancel(TicketRef::Issued(0)),
                Op::RetryDone(TicketRef::Queued(0)),
                Op::RetryDone(TicketRef::Forged {
                    slot: 1,
                    generation: 2,
                }),
                Op::Cancel(TicketRef::Issued(9)),
            ],
        ),
        (
            "seed-window-expiry-then-max-duration",
            SetUp {
                window_ms: 1000,
                max_failover_duration_ms: 2000,
                ..setup(1, 4)
            },
            vec![
                request(0, FAIL),
                Op::Tick { advance_ms: 1000 },
                request(0, FAIL),
                Op::TickAtDeadline,
                Op::TickAtDeadline,
                done,
                done,
            ],
        ),
        (
            "seed-clock-backwards-and-resharding",
            setup(2, 4),
            vec![
                request(0, FAIL),
                Op::Tick { advance_ms: -750 },
                Op::Wait { advance_ms: -1 },
                request(0, FAIL),
                health(0, 1, Term::Newer, true),
                Op::Topology {
                    shard: 0,
                    event: Topo::ShardMissing,
                },
                request(0, FAIL),
                done,
            ],
        ),
        (
            "seed-proactive-start-holds-first-attempts",
            SetUp {
                proactive_start: true,
                ..setup(1, 4)
            },
            vec![
                health(0, 1, Term::Same, true),
                health(0, 1, Term::Same, false),
                request(0, None),
                health(0, 2, Term::Newer, true),
                done,
            ],
        ),
        (
            "seed-refused-request-leaves-the-drain-alone",
            setup(1, 1),
            vec![
                request(0, FAIL),
                health(0, 2, Term::Newer, true),
                request(0, FAIL),
                request(0, None),
                done,
            ],
        ),
        (
            "seed-two-shards-share-under-a-cap",
            setup(2, 3),
            vec![
                request(0, FAIL),
                request(0, FAIL),
                request(0, FAIL),
                Op::Reconfigure(Reconf {
                    size: 3,
                    window: 8,
                    extra: 8,
                    min_time: 2,
                    concurrency: 1,
                    backoff: 1,
                    proactive_start: false,
                    change_mode: false,
                    grace: 15,
                    eviction: 1,
                    max_per_shard: 3,
                    max_bytes: 0,
                    max_pause: 0,
                }),
                request(1, FAIL),
                request(1, FAIL),
                Op::Reconfigure(Reconf {
                    size: 3,
                    window: 8,
                    extra: 8,
                    min_time: 2,
                    concurrency: 1,
                    backoff: 1,
                    proactive_start: false,
                    change_mode: false,
                    grace: 15,
                    eviction: 2,
                    max_per_shard: 2,
                    max_bytes: 5,
                    max_pause: 0,
                }),
                request(1, FAIL),
                health(0, 2, Term::Newer, true),
                done,
            ],
        ),
        (
            "seed-reconfigure-shrinks-and-grows",
            setup(2, 4),
            vec![
                request(0, FAIL),
                request(1, FAIL),
                request(0, FAIL),
                Op::Reconfigure(Reconf {
                    size: 1,
                    window: 2,
                    extra: 4,
                    min_time: 2,
                    concurrency: 2,
                    backoff: 1,
                    proactive_start: true,
                    change_mode: false,
                    grace: 15,
                    eviction: 0,
                    max_per_shard: 0,
                    max_bytes: 0,
                    max_pause: 0,
                }),
                Op::Reconfigure(Reconf {
                    size: 0,
                    window: 2,
                    extra: 4,
                    min_time: 2,
                    concurrency: 2,
                    backoff: 1,
                    proactive_start: true,
                    change_mode: false,
                    grace: 15,
                    eviction: 0,
                    max_per_shard: 0,
                    max_bytes: 0,
                    max_pause: 0,
                }),
                request(1, FAIL),
                Op::TickAtDeadline,
            ],
        ),
        (
            "seed-shutdown-cancelled-while-releasing",
            SetUp {
                shutdown_grace_ms: Some(1000),
                ..setup(2, 4)
            },
            vec![
                health(0, 1, Term::Same, true),
                request(0, FAIL),
                request(0, FAIL),
                request(1, FAIL),
                Op::Shutdown,
                Op::CancelShutdown,
                Op::CancelShutdown,
                request(0, None),
                health(0, 2, Term::Newer, true),
                done,
                Op::Shutdown,
                Op::Tick { advance_ms: 1000 },
                Op::CancelShutdown,
                done,
            ],
        ),
        (
            "seed-operator-pause-with-a-failover",
            setup(2, 4),
            vec![
                health(0, 1, Term::Same, true),
                Op::Pause {
                    shard: 0,
                    all: true,
                    max: 8,
                },
                request(0, None),
                request(1, None),
                request(0, FAIL),
                Op::Resume {
                    shard: 1,
                    all: false,
                },
                health(0, 2, Term::Newer, true),
                Op::Tick { advance_ms: 1000 },
                Op::Resume {
                    shard: 0,
                    all: false,
                },
                done,
                Op::Pause {
                    shard: 1,
                    all: false,
                    max: 2,
                },
                request(1, None),
                Op::TickAtDeadline,
                done,
            ],
        ),
        (
            "seed-end-of-time",
            setup(1, 4),
            vec![
                request(0, FAIL),
                Op::EndOfTime { shard: 0 },
                Op::TickAtDeadline,
                done,
            ],
        ),
    ]
}

fn described(input: &OpsInput) -> String {
    format!("{:?} {:?}", input.setup, input.ops)
}

fn decode(bytes: &[u8]) -> Option<OpsInput> {
    use arbitrary::{Arbitrary, Unstructured};
    OpsInput::arbitrary_take_rest(Unstructured::new(bytes)).ok()
}

/// The tokens of a description: words and numbers whole, other characters one by one.
fn tokens(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        let word = c.is_alphanumeric() || c == '_' || c == '-';
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(at)) => {
                out.push(&s[at..i]);
                start = None;
            }
            _ => {}
        }
        if !word && !c.is_whitespace() {
            out.push(&s[i..i + c.len_utf8()]);
        }
    }
    if let Some(at) = start {
        out.push(&s[at..]);
    }
    out
}

/// Finds bytes that decode to `target`. Decoding is sequential, so bytes are chosen one at
/// a time: the one whose decoding agrees with the target on the most leading tokens (ties:
/// the smallest), or, when no single byte makes progress, the best byte, zeros, byte.
fn encode(target: &OpsInput) -> Vec<u8> {
    let want = described(target);
    let want_tokens = tokens(&want);
    // Leading tokens that agree, then tokens that agree in place (a set-up's fields are not
    // decoded in the order they print).
    let score = |bytes: &[u8]| {
        decode(bytes).map_or((0, 0), |d| {
            let got = described(&d);
            if got == want {
                return (usize::MAX, usize::MAX);
            }
            let got = tokens(&got);
            let pairs = || got.iter().zip(&want_tokens);
            (
                pairs().take_while(|(a, b)| a == b).count(),
                pairs().filter(|(a, b)| a == b).count(),
            )
        })
    };
    let mut bytes = Vec::new();
    let mut current = score(&bytes);
    while current.0 != usize::MAX {
        assert!(bytes.len() < 1024, "no encoding found for {want}");
        let mut best = (current, Vec::new());
        for v in 0..=255u8 {
            bytes.push(v);
            let s = score(&bytes);
            bytes.pop();
            if s > best.0 {
                best = (s, vec![v]);
            }
        }
        // No single byte helps: try a byte, up to 12 zero bytes, and a byte (a multi-byte
        // field, such as an enum's little-endian `u32` tag, decides on its last byte).
        'wider: for zeros in 0..=12 {
            if !best.1.is_empty() {
                break;
            }
            for v in 0..=255u8 {
                for w in 0..=255u8 {
                    let n = bytes.len();
                    bytes.push(v);
                    bytes.extend(std::iter::repeat_n(0, zeros));
                    bytes.push(w);
                    let s = score(&bytes);
                    let tried = bytes.split_off(n);
                    if s > best.0 {
                        best = (s, tried);
                        if s.0 == usize::MAX {
                            break 'wider;
                        }
                    }
                }
            }
        }
        assert!(
            !best.1.is_empty(),
            "stuck encoding {want}\nat {:?}\nafter {bytes:?}",
            decode(&bytes).map(|d| described(&d))
        );
        bytes.extend(&best.1);
        current = best.0;
    }
    bytes
}

fn seed_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus/buffer_ops")
        .join(name)
}

#[test]
fn buffer_ops_seeds_decode_to_their_scenarios() {
    for (name, setup, ops) in seeds() {
        let want = described(&OpsInput { setup, ops });
        let bytes = std::fs::read(seed_path(name)).unwrap_or_default();
        let got = decode(&bytes).map(|d| described(&d));
        assert_eq!(
            got.as_deref(),
            Some(want.as_str()),
            "{name} no longer decodes to its scenario; run the ignored \
             regenerate_buffer_ops_seeds test"
        );
    }
}

#[test]
#[ignore = "rewrites fuzz/corpus/buffer_ops/seed-*; run when the ops' decoding changes"]
fn regenerate_buffer_ops_seeds() {
    for (name, setup, ops) in seeds() {
        let target = OpsInput { setup, ops };
        // The search is slow: keep a seed that still decodes to its scenario.
        let current = std::fs::read(seed_path(name)).unwrap_or_default();
        if decode(&current).is_some_and(|d| described(&d) == described(&target)) {
            continue;
        }
        let bytes = encode(&target);
        std::fs::write(seed_path(name), bytes).expect("writable corpus");
    }
}

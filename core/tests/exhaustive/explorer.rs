//! Breadth-first search of every state a small buffer can reach, through the shared harness.
//!
//! A state is stored as the op that first reached it and its parent, so its input sequence
//! is a shortest one (breadth-first order). `Buffer` is not `Clone`, so a state is rebuilt
//! by replaying its sequence on a fresh [`Harness`] before each input is tried: the cost of
//! a transition grows with the depth, which is what bounds the depth a run can reach.
//!
//! Every transition goes through `Harness::apply`, which compares the core with the
//! reference model (answer, actions, timers, slots, ticket statuses, counters), checks
//! `Buffer::check_invariants` and the history invariants. Every new state is then also shut
//! down and finished (`Harness::finish`): from every reachable state, shutdown ends every
//! request and closes the buffer. A panic in the core is caught and reported like any other
//! failure. The first failure found is a shortest failing input sequence, since every
//! shorter sequence was tried before it (merging states with the same canonical form loses
//! none: they have the same future).

use std::collections::{BTreeSet, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use failover_buffer::{EvictReason, Reason, ShardId, SkipReason, StopReason};

use super::alphabet::{self, Live, Steps};
use super::canonical::{Canonical, canonical};
use super::ops::{Harness, Op, SetUp};

/// What to explore: a set-up, the clock step, and how many inputs deep.
#[derive(Clone, Debug)]
pub(crate) struct Bound {
    pub(crate) setup: SetUp,
    pub(crate) steps: Steps,
    pub(crate) depth: usize,
}

/// What a finished exploration saw.
#[derive(Debug)]
pub(crate) struct Explored {
    /// Distinct states (canonical forms), the initial one included.
    pub(crate) states: usize,
    /// Inputs tried (every input in every state up to `depth - 1`).
    pub(crate) transitions: u64,
    /// New states found at each depth, from 0.
    pub(crate) new_per_depth: Vec<usize>,
    /// Whether a depth added no new state: then every reachable state has been seen, at
    /// any depth, not just up to the bound.
    pub(crate) closed: bool,
    /// The rules some transition exercised (see [`rules_exercised`]).
    pub(crate) rules: BTreeSet<String>,
    /// The kinds of input tried.
    pub(crate) kinds: BTreeSet<&'static str>,
    pub(crate) elapsed: Duration,
}

impl Explored {
    /// The depth explored completely.
    pub(crate) fn depth(&self) -> usize {
        self.new_per_depth.len() - 1
    }
}

/// A shortest input sequence that fails, and how.
#[derive(Debug)]
pub(crate) struct Counterexample {
    pub(crate) ops: Vec<Op>,
    pub(crate) error: String,
}

impl std::fmt::Display for Counterexample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "a shortest failing sequence ({} inputs):",
            self.ops.len()
        )?;
        for (i, op) in self.ops.iter().enumerate() {
            writeln!(f, "  #{i} {op:?}")?;
        }
        write!(f, "fails with: {}", self.error)
    }
}

struct Node {
    parent: u32,
    op: Op,
    live: Live,
}

/// A harness with the harness's clock mirrored, which the canonical form needs and the
/// harness keeps to itself.
struct Run {
    harness: Harness,
    clock_ns: i64,
}

impl Run {
    fn new(setup: &SetUp) -> Result<Run, String> {
        Ok(Run {
            harness: Harness::new(setup)?,
            clock_ns: 0,
        })
    }

    /// `Harness::apply`, moving the mirrored clock as the harness moves its own.
    fn apply(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Tick { advance_ms } | Op::Wait { advance_ms } => {
                self.clock_ns = self
                    .clock_ns
                    .saturating_add(i64::from(advance_ms) * 1_000_000);
            }
            Op::TickAtDeadline => {
                if let Some(at) = self.harness.buffer().poll_timeout() {
                    self.clock_ns = i64::try_from(at.as_nanos()).unwrap_or(i64::MAX);
                }
            }
            _ => {}
        }
        let before = self.harness.buffer().now().as_nanos();
        self.harness.apply(op)?;
        if let Op::Tick { .. } = op {
            // A tick carries the harness clock (zero if below): the mirror must agree.
            let expected = before.max(u64::try_from(self.clock_ns).unwrap_or(0));
            if self.harness.buffer().now().as_nanos() != expected {
                return Err("the explorer's copy of the harness clock is wrong".into());
            }
        }
        Ok(())
    }

    fn canonical(&self) -> Result<Canonical, String> {
        canonical(self.harness.buffer(), self.clock_ns)
    }
}

/// Explores `bound` breadth-first, calling `progress` after each depth.
pub(crate) fn explore(
    bound: &Bound,
    mut progress: impl FnMut(usize, usize, usize),
) -> Result<Explored, Box<Counterexample>> {
    let started = Instant::now();
    let fail = |ops: Vec<Op>, error: String| Box::new(Counterexample { ops, error });
    let root = Run::new(&bound.setup).map_err(|e| fail(Vec::new(), e))?;
    let root_form = root.canonical().map_err(|e| fail(Vec::new(), e))?;
    let mut seen: HashSet<u128> = HashSet::from([root_form.key]);
    let mut nodes = vec![Node {
        parent: u32::MAX,
        op: Op::Shutdown,
        live: live(&root_form),
    }];
    let mut explored = Explored {
        states: 1,
        transitions: 0,
        new_per_depth: vec![1],
        closed: false,
        rules: BTreeSet::new(),
        kinds: BTreeSet::new(),
        elapsed: Duration::ZERO,
    };
    let mut frontier: Vec<u32> = vec![0];
    for depth in 0..bound.depth {
        let mut next = Vec::new();
        for &n in &frontier {
            let path = path_to(&nodes, n);
            for op in alphabet::inputs(&bound.setup, bound.steps, nodes[n as usize].live) {
                explored.transitions += 1;
                explored.kinds.insert(alphabet::kind(&op));
                let mut ops = path.clone();
                ops.push(op);
                let step = catch_unwind(AssertUnwindSafe(|| {
                    transition(&bound.setup, &ops, &mut seen, &mut explored.rules)
                }));
                match step {
                    Ok(Ok(None)) => {}
                    Ok(Ok(Some(form))) => {
                        next.push(nodes.len() as u32);
                        nodes.push(Node {
                            parent: n,
                            op,
                            live: live(&form),
                        });
                    }
                    Ok(Err(e)) => return Err(fail(ops, e)),
                    Err(panic) => return Err(fail(ops, format!("panicked: {}", message(&panic)))),
                }
            }
        }
        explored.states += next.len();
        explored.new_per_depth.push(next.len());
        progress(depth + 1, next.len(), explored.states);
        if next.is_empty() {
            explored.closed = true;
            break;
        }
        frontier = next;
    }
    explored.elapsed = started.elapsed();
    Ok(explored)
}

/// Replays `ops`, the last one new; returns the state reached if it was not seen before,
/// after checking that shutting it down ends every request.
fn transition(
    setup: &SetUp,
    ops: &[Op],
    seen: &mut HashSet<u128>,
    rules: &mut BTreeSet<String>,
) -> Result<Option<Canonical>, String> {
    let (last, prefix) = ops.split_last().expect("at least one op");
    let mut run = Run::new(setup)?;
    for (i, op) in prefix.iter().enumerate() {
        run.apply(op).map_err(|e| {
            format!("replaying op #{i} {op:?} failed, though it passed before: {e}")
        })?;
    }
    run.apply(last)?;
    let form = run.canonical()?;
    rules_exercised(&run.harness, setup.shards, rules);
    if !seen.insert(form.key) {
        return Ok(None);
    }
    run.harness
        .finish()
        .map_err(|e| format!("then shutdown and every retry done: {e}"))?;
    Ok(Some(form))
}

fn live(form: &Canonical) -> Live {
    Live {
        queued: form.queued,
        released: form.released,
        last_ended: form.last_ended,
        clock_offset: form.clock_offset,
    }
}

fn path_to(nodes: &[Node], mut n: u32) -> Vec<Op> {
    let mut ops = Vec::new();
    while n != 0 {
        ops.push(nodes[n as usize].op);
        n = nodes[n as usize].parent;
    }
    ops.reverse();
    ops
}

fn message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

/// Adds to `rules` every rule whose counter is non-zero: a start, each stop, eviction and
/// skip reason, a paused drain, a drain, a closed buffer. A guard against an exploration
/// that quietly tests nothing.
fn rules_exercised(h: &Harness, shards: usize, rules: &mut BTreeSet<String>) {
    let b = h.buffer();
    for shard in 0..shards {
        let Some(s) = b.shard_stats(ShardId::from_index(shard as u32)) else {
            continue;
        };
        let mut hit = |rule: String, count: u64| {
            if count > 0 {
                rules.insert(rule);
            }
        };
        hit("start".into(), s.starts);
        hit("drained".into(), s.drained);
        hit("drain paused".into(), s.drains_paused);
        hit("dry-run buffered".into(), s.buffered_dry_run);
        for &r in StopReason::ALL {
            hit(format!("stop {r}"), s.stops[r]);
        }
        for &r in EvictReason::ALL {
            hit(format!("evict {r}"), s.evicted[r]);
        }
        for &r in SkipReason::ALL {
            hit(format!("skip {r}"), s.skipped[r]);
        }
    }
    if b.is_closed() {
        rules.insert("closed".into());
    }
}

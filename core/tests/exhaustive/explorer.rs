//! Breadth-first search of every state a small buffer can reach, through the shared harness.
//!
//! Every state found is remembered as the op that first reached it and its parent (a few
//! bytes), so its input sequence is a shortest one (breadth-first order). A state of the
//! frontier is rebuilt when it is expanded, as a [`Harness`] in that state (buffer,
//! reference model, ticket history), by cloning its parent and applying its op; the
//! frontier is in order of parent, so one rebuilt parent serves all its children, and a
//! new parent is rebuilt from the last state its input sequence shares with the previous
//! parent's (its grandparent, for a sibling), whose states along the way are kept. A state
//! is then expanded by cloning it once per input, so a transition costs one input whatever its
//! depth. Keeping harnesses (about 10 KB each) for a whole frontier instead would need
//! gigabytes at the depths the two-shard bounds reach. A depth's frontier is expanded by
//! several threads, in chunks merged in frontier order.
//!
//! Every transition goes through `Harness::apply`, which compares the core with the
//! reference model (answer, actions, timers, slots, ticket statuses, counters), checks
//! `Buffer::check_invariants` and the history invariants. Every new state is then also shut
//! down and finished (`Harness::finish`): from every reachable state, shutdown ends every
//! request and closes the buffer. A panic in the core is caught and reported like any other
//! failure. The first failure found is a shortest failing input sequence, since every
//! shorter sequence was tried before it (merging states with the same canonical form loses
//! none: they have the same future).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use failover_buffer::{EvictReason, Reason, SkipReason, StopReason};

use super::alphabet::{self, Live, Steps};
use super::canonical::{Canonical, Look, canonical_of};
use super::ops::{Harness, Op, SetUp};
use failover_buffer::inspect::State;

/// What to explore: a set-up, the clock step, how many inputs deep, and which canonical
/// form merges states.
#[derive(Clone, Debug)]
pub(crate) struct Bound {
    pub(crate) setup: SetUp,
    pub(crate) steps: Steps,
    pub(crate) depth: usize,
    pub(crate) merge: Merge,
    /// Whether the alphabet includes `Op::Reconfigure`.
    pub(crate) reconfigure: bool,
    /// Whether the alphabet includes `Op::Pause` and `Op::Resume`.
    pub(crate) pause: bool,
    /// Whether a transition that leaves everything the form reads as it was takes its
    /// state's form instead of writing one (see [`Look`]); off only to check that this
    /// loses nothing.
    pub(crate) reuse_forms: bool,
    /// Whether an input that is the mirror image of one tried before it in the same state
    /// (on a shard that mirrors an earlier one, or from a primary that mirrors the first)
    /// is left out (see `canonical`, "Inputs left out"); only with [`Merge::Full`], whose
    /// rules 6 and 8 it rests on. Off only to check that this loses nothing.
    pub(crate) mirror_inputs: bool,
}

/// Which canonical form states are merged on (see `canonical`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Merge {
    /// Rules 1–9: the fewest states.
    Full,
    /// Rules 1–5 only, to check that rules 6–9 lose nothing.
    Structural,
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
    /// The full canonical form of every state found (distinct states under `Structural`
    /// may share one), with the first state found that has it.
    pub(crate) classes: HashMap<u128, u32>,
    /// How each state was first reached, by state number: see [`Explored::path`].
    nodes: Vec<Node>,
    pub(crate) elapsed: Duration,
}

impl Explored {
    /// A shortest input sequence to state `node` (a value of `classes`).
    pub(crate) fn path(&self, node: u32) -> Vec<Op> {
        path_to(&self.nodes, node)
    }

    /// The depth explored completely.
    pub(crate) fn depth(&self) -> usize {
        self.new_per_depth.len() - 1
    }
}

/// A shortest input sequence that fails, and how.
#[derive(Debug)]
pub(crate) struct Counterexample {
    pub(crate) ops: Vec<Op>,
    /// The failure came from `Harness::finish` after `ops`: a shutdown, then every
    /// released retry reported done.
    pub(crate) then_finish: bool,
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
        if self.then_finish {
            writeln!(f, "  then Shutdown, and RetryDone of every released ticket")?;
        }
        write!(f, "fails with: {}", self.error)
    }
}

/// A set of states' fingerprints. They are hashes already, so a key's low half is its
/// hash (a SipHash of each key was a twelfth of a transition).
type Keys = HashSet<u128, BuildHasherDefault<LowHalf>>;

/// The [`Hasher`] of [`Keys`]: a fingerprint's low 64 bits.
#[derive(Default)]
struct LowHalf(u64);

impl Hasher for LowHalf {
    fn write(&mut self, bytes: &[u8]) {
        // Only `u128` keys are hashed; any other input is folded in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// How a failure of `Harness::finish` is told apart.
const FINISH_FAILED: &str = "after shutting down: ";

/// How a state was first reached: the input, from which state. Kept for every state, so a
/// counterexample's input sequence can be read back.
#[derive(Debug)]
struct Node {
    parent: u32,
    op: Op,
}

/// A harness with the harness's clock mirrored, which the canonical form needs and the
/// harness keeps to itself.
struct Run {
    harness: Harness,
    clock_ns: i64,
    /// An `Op::EndOfTime` was applied: the harness stamps every input `Timestamp::MAX`.
    end_of_time: bool,
}

impl Clone for Run {
    fn clone(&self) -> Self {
        let Run {
            harness,
            clock_ns,
            end_of_time,
        } = self;
        Run {
            harness: harness.clone(),
            clock_ns: *clock_ns,
            end_of_time: *end_of_time,
        }
    }

    /// Into this run's allocations: each input tried refills one scratch run per thread,
    /// so a transition allocates only where its state holds more than the last one did.
    fn clone_from(&mut self, source: &Self) {
        let Run {
            harness,
            clock_ns,
            end_of_time,
        } = self;
        harness.clone_from(&source.harness);
        *clock_ns = source.clock_ns;
        *end_of_time = source.end_of_time;
    }
}

impl Run {
    fn new(setup: &SetUp) -> Result<Run, String> {
        let mut harness = Harness::new(setup)?;
        // An explored state needs no transcript (the determinism check's), and each step
        // recorded would allocate.
        harness.stop_transcript();
        Ok(Run {
            harness,
            clock_ns: 0,
            end_of_time: false,
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
            Op::EndOfTime { .. } => self.end_of_time = true,
            _ => {}
        }
        let before = self.harness.buffer().now().as_nanos();
        self.harness.apply(op)?;
        if let (Op::Tick { .. }, false) = (op, self.end_of_time) {
            // A tick carries the harness clock (zero if below): the mirror must agree.
            let expected = before.max(u64::try_from(self.clock_ns).unwrap_or(0));
            if self.harness.buffer().now().as_nanos() != expected {
                return Err("the explorer's copy of the harness clock is wrong".into());
            }
        }
        Ok(())
    }

    fn canonical(&self, merge: Merge, reconfigure: bool, print: bool) -> Result<Canonical, String> {
        self.canonical_of(&self.harness.buffer().inspect(), merge, reconfigure, print)
    }

    /// [`Run::canonical`], with the buffer's state already read.
    fn canonical_of(
        &self,
        state: &State,
        merge: Merge,
        reconfigure: bool,
        print: bool,
    ) -> Result<Canonical, String> {
        canonical_of(
            self.harness.buffer(),
            state,
            self.clock(),
            merge == Merge::Structural,
            !reconfigure,
            print,
        )
    }

    /// The harness clock, as the canonical form takes it (`None`: at the end of time).
    fn clock(&self) -> Option<i64> {
        (!self.end_of_time).then_some(self.clock_ns)
    }

    /// What the alphabet needs to know of this state (whose state and form are `state`
    /// and `form`); with `mirror_inputs`, which inputs mirror others.
    fn live(&self, state: &State, form: &Canonical, mirror_inputs: bool) -> Live {
        let b = self.harness.buffer();
        let no_primary = state
            .shards
            .iter()
            .enumerate()
            .filter(|(_, s)| s.primary.is_none())
            .fold(0u8, |bits, (i, _)| bits | 1 << i.min(7));
        let terms_known = b
            .shards()
            .filter(|&id| b.highest_term(id).is_some())
            .fold(0u8, |bits, id| bits | 1 << id.index().min(7));
        Live {
            queued: form.queued,
            released: form.released,
            last_ended: form.last_ended,
            clock_offset: form.clock_offset,
            terms_known,
            timer_ahead: b.poll_timeout().is_some_and(|at| at >= b.now()),
            end_of_time: self.end_of_time,
            mirrors: if mirror_inputs { form.mirrors } else { 0 },
            no_primary: if mirror_inputs { no_primary } else { 0 },
        }
    }
}

/// The threads a depth's frontier is split across: `EXHAUSTIVE_THREADS`, else every core.
fn threads() -> usize {
    std::env::var("EXHAUSTIVE_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1)
}

/// What one thread found expanding a chunk of a depth's frontier, in frontier order.
#[derive(Default)]
struct Expansion {
    /// New states (not seen at an earlier depth, nor earlier in this chunk): their key,
    /// full form's key, parent node and input.
    found: Vec<(u128, u128, u32, Op)>,
    transitions: u64,
    /// The rules exercised (see [`rules_exercised`]).
    rules: u128,
    /// The kinds of input tried, by the address of their name: a set of names compared
    /// as strings per input tried was a thirtieth of a transition. The same name at two
    /// addresses is only listed twice, and merged as a string in [`Explored::kinds`].
    kinds: Vec<&'static str>,
    /// The first failure in this chunk: its parent node, its last input, the error.
    failure: Option<(u32, Op, String)>,
}

/// Explores `bound` breadth-first, calling `progress` after each depth.
///
/// Each state is kept as the input that first reached it and its parent, rebuilt from its
/// parent when expanded (see the module's doc), and expanded by cloning it once per input.
/// A depth's frontier is cut into contiguous chunks, which the threads take in turn (see
/// [`expand_in_parallel`]); each is expanded against the states of earlier depths, and the
/// chunks are then merged in frontier order, so the states found, the path kept to each
/// (the first in frontier and alphabet order) and the counterexample reported do not
/// depend on the number of threads.
pub(crate) fn explore(
    bound: &Bound,
    mut progress: impl FnMut(usize, usize, usize),
) -> Result<Explored, Box<Counterexample>> {
    let started = Instant::now();
    let root = Run::new(&bound.setup).map_err(|e| fail(Vec::new(), e))?;
    let root_form = root
        .canonical(bound.merge, bound.reconfigure, false)
        .map_err(|e| fail(Vec::new(), e))?;
    let mut seen = Keys::default();
    seen.insert(merge_key(&root_form, bound.merge));
    let mut nodes = vec![Node {
        parent: u32::MAX,
        op: Op::Shutdown,
    }];
    let mut explored = Explored {
        states: 1,
        transitions: 0,
        new_per_depth: vec![1],
        closed: false,
        rules: BTreeSet::new(),
        kinds: BTreeSet::new(),
        classes: HashMap::from([(root_form.key, 0)]),
        nodes: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let mut frontier: Vec<u32> = vec![0];
    let threads = threads();
    let print = std::env::var_os("EXHAUSTIVE_PRINT").is_some();
    for depth in 0..bound.depth {
        let expansions = expand_in_parallel(bound, &nodes, &frontier, &seen, threads);
        let mut next = Vec::new();
        for e in expansions {
            explored.transitions += e.transitions;
            explored.rules.extend(rule_names(e.rules));
            explored.kinds.extend(e.kinds);
            if let Some((parent, op, error)) = e.failure {
                let mut ops = path_to(&nodes, parent);
                ops.push(op);
                return Err(fail(ops, error));
            }
            for (key, class, parent, op) in e.found {
                if !seen.insert(key) {
                    continue;
                }
                let node = u32::try_from(nodes.len()).expect("fewer than 2^32 states");
                explored.classes.entry(class).or_insert(node);
                nodes.push(Node { parent, op });
                if print {
                    let ops = path_to(&nodes, node);
                    let form = replay(&bound.setup, &ops)
                        .and_then(|run| run.canonical(bound.merge, bound.reconfigure, true));
                    eprintln!(
                        "new state after {ops:?}: {}",
                        form.map_or_else(|e| e, |f| f.text)
                    );
                }
                next.push(node);
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
    explored.nodes = nodes;
    Ok(explored)
}

fn fail(ops: Vec<Op>, error: String) -> Box<Counterexample> {
    let then_finish = error.starts_with(FINISH_FAILED);
    Box::new(Counterexample {
        ops,
        then_finish,
        error,
    })
}

/// The state `ops` lead to from the initial one.
fn replay(setup: &SetUp, ops: &[Op]) -> Result<Run, String> {
    let mut run = Run::new(setup)?;
    for op in ops {
        run.apply(op)?;
    }
    Ok(run)
}

/// Expands `frontier` on `threads` threads: it is cut into chunks (several per thread, so
/// that a thread whose chunks cost more, or which the machine runs less, does not keep
/// the other waiting), each thread takes the next chunk left until none is, and the
/// chunks' expansions come back in frontier order.
fn expand_in_parallel(
    bound: &Bound,
    nodes: &[Node],
    frontier: &[u32],
    seen: &Keys,
    threads: usize,
) -> Vec<Expansion> {
    const CHUNKS_PER_THREAD: usize = 16;
    let chunk = frontier
        .len()
        .div_ceil(threads * CHUNKS_PER_THREAD)
        .max(MIN_CHUNK);
    let chunks: Vec<&[u32]> = frontier.chunks(chunk).collect();
    let next = AtomicUsize::new(0);
    // The first chunk known to fail: a later one cannot hold the first failure.
    let failed = AtomicUsize::new(usize::MAX);
    let (chunks, next, failed) = (&chunks, &next, &failed);
    let mut done: Vec<(usize, Expansion)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(chunks.len()))
            .map(|_| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(states) = chunks.get(i) else {
                            return mine;
                        };
                        if i > failed.load(Ordering::Relaxed) {
                            continue;
                        }
                        let e = expand(bound, nodes, states, seen);
                        if e.failure.is_some() {
                            failed.fetch_min(i, Ordering::Relaxed);
                        }
                        mine.push((i, e));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("an expansion thread panicked"))
            .collect()
    });
    done.sort_by_key(|&(i, _)| i);
    done.into_iter().map(|(_, e)| e).collect()
}

/// The fewest states a chunk of a frontier holds: each chunk rebuilds its first parent,
/// and its new states are deduplicated against each other's only when merged.
const MIN_CHUNK: usize = 256;

/// Tries every input in each of `states`, in order, stopping at the first failure.
fn expand(bound: &Bound, nodes: &[Node], states: &[u32], seen: &Keys) -> Expansion {
    let mut out = Expansion::default();
    let mut found_here = Keys::default();
    // The parent last rebuilt, with its ancestors: consecutive states of a frontier share
    // their parent, and consecutive parents most of their ancestors.
    let mut line = Line::default();
    // The state being expanded, and the one an input leads to: refilled (`clone_from`) for
    // every state and every input, so their allocations are reused.
    let mut here_run: Option<Run> = None;
    let mut next: Option<Run> = None;
    // The state an input leads to, read into the allocations of the one read before.
    let mut read: Option<State> = None;
    for &node in states {
        let Node { parent: p, op } = nodes[node as usize];
        // Every state of the frontier was reached without failure, and the harness is
        // deterministic (and a clone an exact copy), so its rebuilding passes again.
        let from = line
            .rebuild(&bound.setup, nodes, if node == 0 { 0 } else { p })
            .expect("replaying a passing input sequence passes");
        let run = refill(&mut here_run, from);
        if node != 0 {
            run.apply(&op)
                .expect("replaying a passing input sequence passes");
        }
        let state = run.harness.buffer().inspect();
        let form = run
            .canonical_of(&state, bound.merge, bound.reconfigure, false)
            .expect("a state read once reads again");
        let live = run.live(
            &state,
            &form,
            bound.mirror_inputs && bound.merge == Merge::Full,
        );
        // The rules this state shows, which every input that leaves it as it was shows too.
        out.rules |= rules_exercised(&state);
        let here = Here {
            look: Look::of(
                run.harness.buffer(),
                state,
                run.clock(),
                bound.merge == Merge::Structural,
            ),
            key: merge_key(&form, bound.merge),
            class: form.key,
        };
        for op in alphabet::inputs(
            &bound.setup,
            bound.steps,
            live,
            bound.reconfigure,
            bound.pause,
        ) {
            out.transitions += 1;
            let kind = alphabet::kind(&op);
            if !out.kinds.iter().any(|k| std::ptr::eq(*k, kind)) {
                out.kinds.push(kind);
            }
            let step = catch_unwind(AssertUnwindSafe(|| {
                transition(bound, run, &here, &op, &mut next, &mut read, &mut out.rules)
            }));
            let error = match step {
                Ok(Ok((key, class))) => {
                    // Back where it was tried (about half the inputs): a state seen.
                    if key == here.key || seen.contains(&key) || !found_here.insert(key) {
                        continue;
                    }
                    // A new state: from it, shutting down must end every request.
                    let finished = catch_unwind(AssertUnwindSafe(|| {
                        next.as_mut()
                            .expect("filled by the transition")
                            .harness
                            .finish()
                    }));
                    match finished {
                        Ok(Ok(())) => {
                            out.found.push((key, class, node, op));
                            continue;
                        }
                        Ok(Err(e)) => format!("{FINISH_FAILED}{e}"),
                        Err(panic) => format!("{FINISH_FAILED}panicked: {}", message(&panic)),
                    }
                }
                Ok(Err(e)) => e,
                Err(panic) => format!("panicked: {}", message(&panic)),
            };
            out.failure = Some((node, op, error));
            return out;
        }
    }
    out
}

/// The states along the input sequence to the parent last rebuilt, from the initial one:
/// the next parent is rebuilt from the last state both sequences pass through (a sibling's
/// from their common parent, with one input), not replayed from the initial state. Replaying
/// every parent whole applied 1,162,709 inputs beside the 32,464,163 tried to 9 inputs on
/// two threads (3.6%, the more the deeper: a parent's path is as long as its depth).
#[derive(Default)]
struct Line {
    /// `(node, run)`: the first `len` are the line, root first; the rest keep their
    /// allocations for the next.
    runs: Vec<(u32, Run)>,
    len: usize,
    /// The nodes from the root to the parent being rebuilt (its allocation reused).
    path: Vec<u32>,
}

impl Line {
    /// Node `p`'s state, rebuilt from the last state the line shares with its path.
    fn rebuild(&mut self, setup: &SetUp, nodes: &[Node], p: u32) -> Result<&Run, String> {
        self.path.clear();
        let mut n = p;
        while n != 0 {
            self.path.push(n);
            n = nodes[n as usize].parent;
        }
        self.path.push(0);
        self.path.reverse();
        if self.runs.is_empty() {
            self.runs.push((0, Run::new(setup)?));
        }
        // The root is on every path.
        let shared = self
            .runs
            .iter()
            .take(self.len)
            .zip(&self.path)
            .take_while(|((kept, _), on_path)| kept == *on_path)
            .count()
            .max(1);
        for i in shared..self.path.len() {
            let n = self.path[i];
            let (before, after) = self.runs.split_at_mut(i);
            let from = &before[i - 1].1;
            match after.first_mut() {
                Some((node, run)) => {
                    *node = n;
                    run.clone_from(from);
                }
                None => {
                    let run = from.clone();
                    self.runs.push((n, run));
                }
            }
            self.runs[i].1.apply(&nodes[n as usize].op)?;
        }
        self.len = self.path.len();
        Ok(&self.runs[self.len - 1].1)
    }
}

/// The state being expanded: its look, its merge key and its full form's key.
struct Here {
    look: Look,
    key: u128,
    class: u128,
}

/// `slot`, made a copy of `from`: cloned into its allocations if it has some (a panic
/// may leave it half-written, and it is refilled whole anyway).
fn refill<'a>(slot: &'a mut Option<Run>, from: &Run) -> &'a mut Run {
    match slot {
        Some(run) => {
            run.clone_from(from);
            run
        }
        None => slot.insert(from.clone()),
    }
}

/// Applies `op` to a copy of `from` (which is `here`), made in `next`: its merge key and
/// its full form's key; `next` is left in the state reached. A state whose look is
/// `here`'s has its keys, unwritten and unread; any other is read into `read` (whose
/// allocations `Buffer::inspect_into` reuses).
fn transition(
    bound: &Bound,
    from: &Run,
    here: &Here,
    op: &Op,
    next: &mut Option<Run>,
    read: &mut Option<State>,
    rules: &mut u128,
) -> Result<(u128, u128), String> {
    let run = refill(next, from);
    run.apply(op)?;
    let buffer = run.harness.buffer();
    // Its state as it was (counters included): the rules it shows are `here`'s, already
    // counted (see `expand`).
    if bound.reuse_forms && here.look.is(buffer, run.clock()) {
        return Ok((here.key, here.class));
    }
    let state = match read {
        Some(state) => {
            buffer.inspect_into(state);
            state
        }
        None => read.insert(buffer.inspect()),
    };
    *rules |= rules_exercised(state);
    let form = run.canonical_of(state, bound.merge, bound.reconfigure, false)?;
    Ok((merge_key(&form, bound.merge), form.key))
}

fn merge_key(form: &Canonical, merge: Merge) -> u128 {
    match merge {
        Merge::Full => form.key,
        Merge::Structural => form.structural_key.unwrap_or(form.key),
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

/// The rules the counters of a state (as read) show were exercised, one bit each (see
/// [`rule_name`]): a start,
/// each stop, eviction and skip reason, a paused drain, a drain, a dry-run hold, a closed
/// buffer. A guard against an exploration that quietly tests nothing. Read after every
/// transition, so it is a mask, named only once the exploration ends (formatting a name
/// per counter per transition was a thirteenth of a transition).
fn rules_exercised(state: &State) -> u128 {
    let mut bits = u128::from(state.closed) << CLOSED;
    let mut hit = |bit: usize, count: u64| bits |= u128::from(count > 0) << bit;
    for s in state.shards.iter().map(|shard| &shard.stats) {
        hit(START, s.starts);
        hit(DRAINED, s.drained);
        hit(DRAIN_PAUSED, s.drains_paused);
        hit(DRY_RUN, s.buffered_dry_run);
        for (i, &r) in StopReason::ALL.iter().enumerate() {
            hit(STOPS + i, s.stops[r]);
        }
        for (i, &r) in EvictReason::ALL.iter().enumerate() {
            hit(EVICTS + i, s.evicted[r]);
        }
        for (i, &r) in SkipReason::ALL.iter().enumerate() {
            hit(SKIPS + i, s.skipped[r]);
        }
    }
    bits
}

// The bits of [`rules_exercised`].
const CLOSED: usize = 0;
const START: usize = 1;
const DRAINED: usize = 2;
const DRAIN_PAUSED: usize = 3;
const DRY_RUN: usize = 4;
const STOPS: usize = 5;
const EVICTS: usize = STOPS + StopReason::ALL.len();
const SKIPS: usize = EVICTS + EvictReason::ALL.len();
const _: () = assert!(SKIPS + SkipReason::ALL.len() <= 128, "one bit per rule");

/// The name of a bit of [`rules_exercised`], as the tests ask for it.
fn rule_name(bit: usize) -> String {
    match bit {
        CLOSED => "closed".into(),
        START => "start".into(),
        DRAINED => "drained".into(),
        DRAIN_PAUSED => "drain paused".into(),
        DRY_RUN => "dry-run buffered".into(),
        b if b < EVICTS => format!("stop {}", StopReason::ALL[b - STOPS]),
        b if b < SKIPS => format!("evict {}", EvictReason::ALL[b - EVICTS]),
        b => format!("skip {}", SkipReason::ALL[b - SKIPS]),
    }
}

/// The names of the rules in `bits`.
fn rule_names(bits: u128) -> BTreeSet<String> {
    (0..128)
        .filter(|b| bits & (1 << b) != 0)
        .map(rule_name)
        .collect()
}

//! The canonical form of a state: what the explorer deduplicates on.
//!
//! The state is the whole `Buffer` (read field by field with `Buffer::inspect`, the core's
//! `inspect` feature, which names every field of the core's state-holding structs, so a
//! field added to one does not compile there until it is copied or its omission justified;
//! `core/src/inspect.rs` names the two read by field instead) plus the
//! one piece of the harness's state that the buffer does not hold: the harness's clock,
//! which can run ahead of the buffer's (`Op::Wait`) or behind it (a negative `Op::Tick`).
//! The form is a list of numbers (`Enc`), written field by field in a fixed order, with
//! every list preceded by its length; its fingerprint is what states are merged on, and
//! `EXHAUSTIVE_PRINT` shows it as text, each number named by its field.
//!
//! Two states with the same canonical form behave the same from then on, for every input
//! sequence, up to renaming tickets, shards and primaries, shifting time and terms, and
//! the values of counters and of instants that reach only outputs (rules 4 and 9). Each
//! rewrite is sound for a reason read off the core's code (`core/src/`); a field of the
//! view not named here is written verbatim, which is always sound (it can only keep apart
//! states that could have merged), and what the view leaves out is derived from what it
//! keeps (`inspect::State` says what and why). Two more are left out here: the config in
//! the hot path's units (`Limits`, made from the config, which is kept, by every
//! `reconfigure`), and the shutdown plan's queue of actions and its records of phases not
//! entered since its latest `begin` (rule 7: read by no rule and by no check of the
//! harness; the structural form keeps the whole plan, read off its `Debug` print). The **structural** rules 1–5 rest on properties of the whole design
//! (tickets are opaque names, instants and terms are only compared, counters are only
//! added to); the **full** form adds rules 6–9, which rely on named facts of today's
//! rules, and so may break when a rule changes.
//! `merging_rules_lose_no_state` checks those empirically: exploring with the structural
//! form reaches exactly the same full forms.
//!
//! 1. **Tickets are renamed by order of issue among the live ones** (`#0` is the oldest
//!    live ticket). The core reads a ticket's generation and slot only to tell tickets
//!    apart: which slot the slab picks and which generation comes next change the values
//!    in `Wake` actions and errors, never what happens. So slots, generations and the
//!    queue links are dropped; each shard's queue is kept as the list of its tickets'
//!    ranks, walked from the head. The only fact kept about ended tickets is whether one
//!    exists, since the alphabet names "the most recently ended ticket" as its stale one.
//! 2. **Time is taken relative to the buffer's `now`.** Every rule compares two instants
//!    or an instant with `now` plus a configured duration (`Timestamp::plus_nanos`,
//!    `nanos_since`, `saturating_duration_since` of an earlier instant), and every input
//!    carries the harness clock, which is kept as its offset from `now`. Nothing saturates
//!    at these small values. Shifting every instant by the same amount therefore shifts
//!    every output instant and changes nothing else. (The harness clamps a negative clock
//!    to zero, but the buffer clamps any input below `now` to `now` anyway, so the
//!    difference shows only in `clock_regressions`, a counter; see 4.) At the end of
//!    time (`Op::EndOfTime`) every input is stamped `Timestamp::MAX` and instants
//!    saturate there, so such a state is marked (`clock: end of time`) and never merges
//!    with one before it; among themselves they share `now`, so the shift is zero.
//! 3. **Terms are taken relative to each shard's highest term.** A stamp below the highest
//!    is refused before any other rule reads it, and the harness picks stamp terms
//!    relative to the highest. A highest term of 0 is kept verbatim: there the harness's
//!    "older" stamp saturates to the same term.
//! 4. **Counters are reduced to what rules read**: each shard's balance `buffered -
//!    evicted - drained` (invariant 8 compares it when the shard is quiet) and the
//!    episode's peaks `last_requests_*_max` (its first stop reports them). The others
//!    (`ShardStats`, `InputStats`) are only ever added to, and every change to them is
//!    compared with the model at the step it happens.
//! 5. **What never changes after set-up is dropped**: the shard names. The config and
//!    the limits are kept: `reconfigure` changes them (its mode settings excepted, which
//!    it refuses to change).
//! 6. **Shards of the same mode are interchangeable**: every permutation of them is
//!    printed (renaming `ShardId`s and reordering `Active::pos`) and the least print is
//!    the form. The alphabet offers every input on every shard alike, and a shard's names
//!    only decide its mode. **Not when the alphabet reconfigures**: a reconfiguration that
//!    shrinks the pool evicts the queued request with the earliest deadline across shards,
//!    and breaks a tie by shard index, so two shards holding requests of the same age are
//!    not interchangeable (`merging_rules_lose_no_state` found it: two shards, two slots,
//!    a failover request on each at the same instant, then one slot fewer).
//! 7. **Facts no rule will read again are forgotten**, each for the reason given where it
//!    is done: `last_end`/`last_reparent` older than min time between failovers, a
//!    `last_tick`'s value (only which queued tickets it covers), the deadline of a ticket
//!    released otherwise than by a drain (a drain-released one may be queued again by
//!    `retry_failed`, with its deadline), an episode an
//!    idle shard can no longer reopen, a stopped episode's start once past max duration,
//!    its `saw_not_serving` and `start_term`, a buffering shard's `drain_start`, and the
//!    peaks once the first stop has reported them.
//! 8. **Primaries are anonymous**: a stamp's primary is only compared for equality with
//!    the known one, and the alphabet's two primaries are interchangeable.
//! 9. **Instants that only reach outputs are not kept.** `drain_start` is read by one
//!    rule only, to report `DrainFinished`'s duration; `first_hold` and `last_release`
//!    only to report `last_failover_held_duration`. Once past max failover duration, an
//!    episode's `start` only reaches the `BufferingStopped` duration (every decision just
//!    sees "past"). A deadline or a back-off already past in a buffering shard that has
//!    not ticked since only reaches `poll_timeout` (the next tick acts on every due timer at
//!    once); past deadlines keep their order among themselves, which a requeue's
//!    placement reads. Two states that differ in these alone go through the same states, actions and
//!    answers, except for those reported values, which are compared with the model
//!    whenever they are reported (as counters are, rule 4); the alphabet never feeds a
//!    past `poll_timeout` back into the clock. Without this rule a drain waiting on a retry
//!    while time passes, or a shard that is not ticked, is a new state at every step, and
//!    the state space has no end.
//!
//! **Inputs left out.** Rules 6 and 8 also apply to inputs, with the full form only. A
//! state whose full form is the same under every permutation rule 6 tries is its own
//! image under swapping two shards of the same mode (`Canonical::mirrors`); an input on
//! the second of them is then the image of the same input on the first, in a state with
//! the same form, so it has the same checks (up to the renaming) and leads to a state with
//! the same form: it is left out (`alphabet::inputs`, `Live::mirrors`). Likewise, on a
//! shard that knows no primary, a stamp from the alphabet's second primary is the image of
//! the same stamp from its first under rule 8 (`Live::no_primary`). Either is what merging
//! two states already assumes (an input in the image state is never tried), and since the
//! input left out comes after its image in the alphabet's order, the paths kept are the
//! same. `leaving_out_mirrored_inputs_loses_no_state` explores with and without them and
//! requires the same states by the same paths; the merging check compares against an
//! exploration that leaves out nothing.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::rc::Rc;

use failover_buffer::drain::{DrainPlan, DrainState, PhaseRecord};
use failover_buffer::inspect::{self, Held, State};
use failover_buffer::{
    Buffer, Config, EvictReason, Mode, Reason, ShardId, ShardState, StopReason, TicketStatus,
    Timestamp, Verdict,
};

use super::debug_tree::{self, Value};

/// A state's canonical form, and the facts about it that the alphabet needs.
pub(crate) struct Canonical {
    /// A 128-bit fingerprint of the full form (rules 1–9).
    pub(crate) key: u128,
    /// The fingerprint of the structural form (rules 1–5), if asked for.
    pub(crate) structural_key: Option<u128>,
    /// The full form, printed (if asked for, else empty).
    pub(crate) text: String,
    /// Tickets queued, in all shards.
    pub(crate) queued: usize,
    /// Tickets released to retry whose retries have not been reported.
    pub(crate) released: usize,
    /// The harness index (order of issue) of the most recently ended ticket, if any.
    pub(crate) last_ended: Option<usize>,
    /// The harness clock minus the buffer's `now`, in nanoseconds.
    pub(crate) clock_offset: i128,
    /// Bit `k`: shard `k` is the mirror image of an earlier shard. Rule 6 applies, and
    /// every permutation of shards of the same mode writes the same full form, so the
    /// state is its own image under swapping shard `k` with the first of its mode: an
    /// input on shard `k` is, up to that renaming, the same input on that earlier shard
    /// (see `alphabet::inputs`).
    pub(crate) mirrors: u8,
}

/// The canonical form of `buffer` with the harness clock at `clock_ns` (`None`: at the
/// end of time); with `structural`, the structural form's fingerprint too; with `print`,
/// the full form as text. Rule 6 applies only if `shards_interchangeable`: not when the
/// alphabet reconfigures (see rule 6).
pub(crate) fn canonical(
    buffer: &Buffer,
    clock_ns: Option<i64>,
    structural: bool,
    shards_interchangeable: bool,
    print: bool,
) -> Result<Canonical, String> {
    canonical_of(
        buffer,
        &buffer.inspect(),
        clock_ns,
        structural,
        shards_interchangeable,
        print,
    )
}

/// [`canonical`], with the buffer's state already read (`buffer.inspect()`).
pub(crate) fn canonical_of(
    buffer: &Buffer,
    state: &State,
    clock_ns: Option<i64>,
    structural: bool,
    shards_interchangeable: bool,
    print: bool,
) -> Result<Canonical, String> {
    let now = state.now.as_nanos();
    let config = buffer.config();
    // At the end of time (`None`) every input is stamped `Timestamp::MAX`, which is `now`.
    let clock_offset = clock_ns.map_or(0, |c| i128::from(c) - i128::from(now));
    let pool = Pool::read(state);
    let mut norm = Norm {
        now,
        max_failover_duration: duration_nanos(config.max_failover_duration),
        min_time_between_failovers: duration_nanos(config.min_time_between_failovers),
        full: true,
        symmetric: shards_interchangeable,
    };
    let read = Read {
        state,
        plan: buffer.shutdown_plan(),
        config: config_id(config),
        clock: clock_ns.map(|_| clock_offset),
        pool: &pool,
    };
    let (key, text, mirrored) = read.form(&norm, print)?;
    let mirrors = if mirrored { mirror_shards(state) } else { 0 };
    let structural_key = if structural {
        norm.full = false;
        Some(read.form(&norm, false)?.0)
    } else {
        None
    };
    let queued = pool
        .live
        .iter()
        .filter(|h| h.status == TicketStatus::Queued)
        .count();
    Ok(Canonical {
        key,
        structural_key,
        text,
        queued,
        released: pool.live.len() - queued,
        last_ended: pool.last_ended,
        clock_offset,
        mirrors,
    })
}

/// The shards with an earlier shard of the same mode, as bits: in a state that is its own
/// image under every permutation rule 6 tries, each is a mirror image of that shard.
fn mirror_shards(state: &State) -> u8 {
    let shards = &state.shards;
    (0..shards.len().min(8))
        .filter(|&k| shards[..k].iter().any(|s| s.mode == shards[k].mode))
        .fold(0, |bits, k| bits | 1 << k)
}

fn duration_nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Rule 5: the config is kept (`reconfigure` changes it), as a fingerprint of its `Debug`
/// print, remembered per thread for the few configs an exploration meets.
fn config_id(config: &Config) -> u128 {
    thread_local! {
        static SEEN: RefCell<Vec<(Config, u128)>> = const { RefCell::new(Vec::new()) };
    }
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if let Some((_, id)) = seen.iter().find(|(c, _)| c == config) {
            return *id;
        }
        let id = fingerprint(&format!("{config:?}"));
        seen.push((config.clone(), id));
        id
    })
}

/// Everything [`canonical`] reads of a buffer and the harness clock, as they are, before
/// any rule: two states with the same look have the same form. A transition that leaves
/// the look as it was therefore needs no form of its own. About half the inputs tried
/// lead back to the state they were tried in (most are refused, or ignored as stale), and
/// most of those leave its look as it was.
pub(crate) struct Look {
    state: State,
    config: Config,
    clock_ns: Option<i64>,
    /// What the full form reads of the shutdown plan; with `structural`, its whole print
    /// too (the structural form reads all of it).
    plan: Option<PlanLook>,
}

/// What the form reads of a shutdown plan: its state, history and deadline (the full
/// form), or its whole print (the structural form).
struct PlanLook {
    state: DrainState,
    history: Vec<PhaseRecord>,
    deadline: Option<Timestamp>,
    print: Option<String>,
}

impl PlanLook {
    fn of(plan: &DrainPlan, structural: bool) -> PlanLook {
        PlanLook {
            state: plan.state(),
            history: plan.history().to_vec(),
            deadline: plan.poll_timeout(),
            print: structural.then(|| format!("{plan:?}")),
        }
    }

    fn is(&self, plan: &DrainPlan) -> bool {
        self.state == plan.state()
            && self.history == plan.history()
            && self.deadline == plan.poll_timeout()
            && self
                .print
                .as_ref()
                .is_none_or(|print| *print == format!("{plan:?}"))
    }
}

impl Look {
    /// The look of `buffer`, whose state `state` is (`buffer.inspect()`), with the harness
    /// clock at `clock_ns` (`None`: at the end of time).
    pub(crate) fn of(
        buffer: &Buffer,
        state: State,
        clock_ns: Option<i64>,
        structural: bool,
    ) -> Look {
        Look {
            state,
            config: buffer.config().clone(),
            clock_ns,
            plan: buffer
                .shutdown_plan()
                .map(|plan| PlanLook::of(plan, structural)),
        }
    }

    /// Whether `buffer`, with the harness clock at `clock_ns`, has this look: its state
    /// compared where it is (`Buffer::inspect_is`), not read into a copy first.
    pub(crate) fn is(&self, buffer: &Buffer, clock_ns: Option<i64>) -> bool {
        self.clock_ns == clock_ns
            && buffer.inspect_is(&self.state)
            && self.config == *buffer.config()
            && match (&self.plan, buffer.shutdown_plan()) {
                (None, None) => true,
                (Some(look), Some(plan)) => look.is(plan),
                _ => false,
            }
    }
}

/// The form as numbers, and as text when printing.
struct Enc {
    words: Vec<i128>,
    text: Option<String>,
}

impl Enc {
    fn new(print: bool) -> Enc {
        Enc {
            words: Vec::with_capacity(256),
            text: print.then(String::new),
        }
    }

    /// Empty again, keeping the words' allocation.
    fn reset(&mut self, print: bool) {
        self.words.clear();
        self.text = print.then(String::new);
    }

    /// A number, named `name` in the text.
    fn n(&mut self, name: &str, v: i128) {
        self.words.push(v);
        if let Some(t) = &mut self.text {
            let _ = write!(t, "{name}={v} ");
        }
    }

    /// A value shown in the text by `show` (its `Debug`, or a rule's rendering), written
    /// as `v`.
    fn v(&mut self, name: &str, v: i128, show: &dyn std::fmt::Debug) {
        self.words.push(v);
        if let Some(t) = &mut self.text {
            let _ = write!(t, "{name}={show:?} ");
        }
    }

    /// A section's start, with a tag word (so that sections cannot shift into each other).
    fn open(&mut self, name: &str, tag: i128) {
        self.words.push(tag);
        if let Some(t) = &mut self.text {
            let _ = write!(t, "{name}{{ ");
        }
    }

    /// Another form's numbers and text, after these.
    fn append(&mut self, other: &Enc) {
        self.words.extend_from_slice(&other.words);
        if let (Some(t), Some(o)) = (&mut self.text, &other.text) {
            t.push_str(o);
        }
    }

    fn close(&mut self) {
        if let Some(t) = &mut self.text {
            t.push_str("} ");
        }
    }
}

/// A fingerprint of any value with a `Hash`, for enums with data: the values `h` is
/// given are a few bytes (a discriminant and a field or two), for which a SipHash, set up
/// per value, was a twentieth of a transition.
fn h<T: Hash>(v: &T) -> i128 {
    let mut s = Small::default();
    v.hash(&mut s);
    i128::from(s.finish())
}

/// The [`Hasher`] of [`h`]: each input folded in by a multiply-xorshift step (one per
/// integer, not per byte), finished by a full avalanche.
struct Small(u64);

impl Default for Small {
    fn default() -> Self {
        Small(0x6a09_e667_f3bc_c908)
    }
}

impl Small {
    fn fold(&mut self, x: u64) {
        self.0 = (self.0 ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 ^= self.0 >> 29;
    }
}

impl Hasher for Small {
    fn write(&mut self, bytes: &[u8]) {
        // Whole words, then the rest with its length, so that no two byte strings fold
        // the same words.
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.fold(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.fold(u64::from_le_bytes(tail));
        self.fold(bytes.len() as u64);
    }

    fn write_u8(&mut self, i: u8) {
        self.fold(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.fold(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.fold(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.fold(i as u64);
    }

    fn write_isize(&mut self, i: isize) {
        self.fold(i as u64);
    }

    fn finish(&self) -> u64 {
        avalanche(self.0)
    }
}

/// An optional number: `None` as one word, `Some(x)` as two.
const NONE: i128 = i128::MIN;

/// What the form is made of.
struct Read<'a> {
    state: &'a State,
    plan: Option<&'a DrainPlan>,
    config: u128,
    /// The harness clock minus `now`; `None` at the end of time.
    clock: Option<i128>,
    pool: &'a Pool<'a>,
}

impl Read<'_> {
    /// The form's fingerprint, and its text if `print`: rule 6, the least form over the
    /// permutations of shards of the same mode (only the identity in the structural form).
    ///
    /// The forms are written into buffers kept per thread ([`Scratch`]), not allocated per
    /// call.
    /// Also whether every permutation tried wrote the same form as the identity (and one
    /// other than the identity was tried): the state is then its own image under them.
    fn form(&self, norm: &Norm, print: bool) -> Result<(u128, String, bool), String> {
        SCRATCH.with(|scratch| self.form_in(&mut scratch.borrow_mut(), norm, print))
    }

    fn form_in(
        &self,
        scratch: &mut Scratch,
        norm: &Norm,
        print: bool,
    ) -> Result<(u128, String, bool), String> {
        let Scratch {
            each,
            candidate,
            best,
        } = scratch;
        let shards = &self.state.shards;
        let n = shards.len();
        let all = if norm.full && norm.symmetric {
            permutations(n)
        } else {
            identity(n)
        };
        // Each shard's own form names no shard: written once, reordered per permutation.
        let revivable = self.revivable();
        each.truncate(n);
        each.resize_with(n, || Enc::new(print));
        for (i, (sh, enc)) in shards.iter().zip(each.iter_mut()).enumerate() {
            let saved = revivable.iter().find(|(j, _)| *j == i).map(|&(_, s)| s);
            enc.reset(print);
            shard(enc, sh, self.pool, norm, saved)?;
        }
        // Two shards of one mode: the two forms agree up to the shards' own forms, written
        // one after the other in either order, and then the same length; so unless the two
        // orders give the same words, the first difference between the forms lies there,
        // and only the least order's form need be written.
        let all: &[Vec<usize>] = if n == 2 && all.len() == 2 && shards[0].mode == shards[1].mode {
            let (a, b) = (&each[0].words, &each[1].words);
            // `perm[0]` is shard 0's new place: 0 keeps the order, 1 swaps.
            let keeping = |keep: bool| all.iter().position(|p| (p[0] == 0) == keep);
            let least = match a.iter().chain(b).cmp(b.iter().chain(a)) {
                Ordering::Less => keeping(true),
                Ordering::Greater => keeping(false),
                Ordering::Equal => None,
            };
            match least {
                Some(i) => std::slice::from_ref(&all[i]),
                None => &all[..],
            }
        } else {
            &all[..]
        };
        let mut found = false;
        // Every permutation tried so far wrote the same words, and how many were tried.
        let (mut all_same, mut tried) = (true, 0);
        for perm in all {
            // perm[old] = new; only permutations that keep every shard's mode.
            if (0..n).any(|i| shards[i].mode != shards[perm[i]].mode) {
                continue;
            }
            tried += 1;
            candidate.reset(print);
            self.write(candidate, each, norm, perm)?;
            if found && candidate.words != best.words {
                all_same = false;
            }
            if !found || candidate.words < best.words {
                std::mem::swap(candidate, best);
                found = true;
            }
        }
        if !found {
            return Err("no permutation keeps the modes".into());
        }
        Ok((
            fingerprint_words(&best.words),
            best.text.take().unwrap_or_default(),
            all_same && tried > 1,
        ))
    }

    /// The whole form, with shard `i` renamed `perm[i]`.
    fn write(&self, e: &mut Enc, each: &[Enc], norm: &Norm, perm: &[usize]) -> Result<(), String> {
        let s = self.state;
        let id = |shard: ShardId| perm.get(shard.index()).map_or(-1, |&p| p as i128);
        match self.clock {
            Some(offset) => e.n("clock", offset),
            None => e.v("clock", NONE, &"end of time"),
        }
        e.v("config", self.config as i128, &"_");
        // The shards, in their new order (found by search: a few shards, and no allocation).
        e.n("shards", perm.len() as i128);
        for new in 0..perm.len() {
            let old = perm
                .iter()
                .position(|&p| p == new)
                .ok_or("not a permutation")?;
            e.append(&each[old]);
        }
        // `Active::list`, its ids renamed (its `pos` is its inverse).
        e.open("active", 1);
        e.n("len", s.active.len() as i128);
        for &a in &s.active {
            e.n("shard", id(a));
        }
        e.close();
        self.pool.canonical(e, norm, s, &id);
        e.n("pending_actions", s.pending_actions as i128);
        last_tick(e, s.last_tick, self.pool, norm);
        e.v("shut_down", i128::from(s.shut_down), &s.shut_down);
        e.v("closed", i128::from(s.closed), &s.closed);
        self.shutdown(e, norm, &id)
    }

    /// The shards a cancel would put back: while a shutdown runs (`shut_down`, not
    /// `closed`), those its `stopped` list names (`Shutdown::stopped`: each shard the
    /// shutdown stopped while it buffered, with what `unstop` restores), each with whether
    /// the episode it puts back had stopped (`Unstop::stopped`).
    fn revivable(&self) -> Vec<(usize, bool)> {
        let s = self.state;
        match &s.shutdown {
            Some(shutdown) if s.shut_down && !s.closed => shutdown
                .stopped
                .iter()
                .map(|(id, saved)| (id.index(), saved.stopped.is_some()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The buffer's shutdown (`Shutdown`: its `DrainPlan`, the grace it was built with, and
    /// what a cancel restores of each shard it stopped).
    ///
    /// Rule 4: the plan's `stats` are counters (begun, cancelled, refused, clock
    /// regressions), only ever added to. The full form also keeps of the plan only what its
    /// rules or the harness read: its `state`, the phases `entered`, its current phase's
    /// max-wait `deadline` (an instant like any other, rule 2; `Timestamp::MAX`, "never",
    /// stays as it is), and for each phase entered why it was left (`PhaseEnd`: the harness
    /// reads whether the grace ran out). Rule 9: the phase records' instants, `begun_at`,
    /// `ended_at` and the remaining work last reported reach only `history`/`progress`
    /// (outputs), and the plan's own `now` only clamps its inputs, which are the buffer's
    /// `now` (never behind it). Rule 7: its `actions` queue (`poll_shutdown_action`) is read
    /// by no rule and by no check of the harness, nor are the records of phases not entered
    /// since the latest `begin`. The phases are fixed by the grace, which is kept.
    ///
    /// Of each stopped shard's saved episode (`Unstop`), what `unstop` restores is kept,
    /// each field by the rule the shard's own copy follows: `last_end` by rule 7 (`recent`:
    /// once older than min time between failovers, as good as none), `drain_start` not at
    /// all (rule 9: only `DrainFinished` reports it), a `resume_at` already past as `due`
    /// (rule 9: `unstop` ticks at once, and a tick fires every due resume).
    fn shutdown(
        &self,
        e: &mut Enc,
        norm: &Norm,
        id: &dyn Fn(ShardId) -> i128,
    ) -> Result<(), String> {
        let Some(shutdown) = &self.state.shutdown else {
            e.v("shutdown", NONE, &"None");
            return Ok(());
        };
        let plan = self.plan.ok_or("a shutdown without a plan")?;
        e.open("shutdown", 2);
        e.v("grace", h(&shutdown.grace), &shutdown.grace);
        if norm.full {
            e.v("state", h(&plan.state()), &plan.state());
            let history = plan.history();
            e.n("entered", history.len() as i128);
            for r in history {
                let left = r.left.map(|(_, end)| end);
                e.v("left", left.map_or(NONE, |end| h(&end)), &left);
            }
            match plan.poll_timeout() {
                None => e.v("deadline", NONE, &"None"),
                Some(d) if d.as_nanos() >= u64::MAX / 2 => e.v("deadline", NONE + 1, &"never"),
                Some(d) => norm.instant(e, "deadline", d),
            }
            e.n("stopped", shutdown.stopped.len() as i128);
            for (shard, saved) in &shutdown.stopped {
                e.open("unstop", 3);
                e.n("shard", id(*shard));
                reason(e, "stopped", saved.stopped);
                reason(e, "last_stop", saved.last_stop);
                match saved.resume_at {
                    Some(t) if t.as_nanos() < norm.now => e.v("resume_at", NONE + 2, &"due"),
                    t => norm.maybe(e, "resume_at", t),
                }
                e.v("drain_start", NONE + 3, &"_");
                recent(e, "last_end", saved.last_end, norm);
                e.close();
            }
        } else {
            // The whole plan but its counters, instants relative to `now`, off its print.
            let tree = debug_tree::parse(&format!("{plan:#?}"))?;
            let Value::Struct(name, fields) = tree else {
                return Err("DrainPlan does not print as a struct".into());
            };
            let kept: Vec<(String, Value)> = fields
                .into_iter()
                .filter(|(n, _)| n != "stats")
                .map(|(n, v)| (n, norm.tree(&v)))
                .collect();
            let text = format!("{:?}", Value::Struct(name, kept));
            e.v("plan", fingerprint(&text) as i128, &text);
            e.n("stopped", shutdown.stopped.len() as i128);
            for (shard, saved) in &shutdown.stopped {
                e.open("unstop", 3);
                e.n("shard", id(*shard));
                reason(e, "stopped", saved.stopped);
                reason(e, "last_stop", saved.last_stop);
                norm.maybe(e, "resume_at", saved.resume_at);
                norm.instant(e, "drain_start", saved.drain_start);
                norm.maybe(e, "last_end", saved.last_end);
                e.close();
            }
        }
        e.close();
        Ok(())
    }
}

/// The buffers [`Read::form`] writes forms into, one set per thread: each shard's form,
/// the form under the permutation being tried, and the least one so far.
struct Scratch {
    each: Vec<Enc>,
    candidate: Enc,
    best: Enc,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        each: Vec::new(),
        candidate: Enc::new(false),
        best: Enc::new(false),
    });
}

/// The identity permutation of `0..n` alone, made once per thread.
fn identity(n: usize) -> Rc<Vec<Vec<usize>>> {
    thread_local! {
        static MADE: RefCell<Vec<Rc<Vec<Vec<usize>>>>> = const { RefCell::new(Vec::new()) };
    }
    MADE.with(|made| {
        let mut made = made.borrow_mut();
        while made.len() <= n {
            let next = Rc::new(vec![(0..made.len()).collect()]);
            made.push(next);
        }
        Rc::clone(&made[n])
    })
}

/// Every permutation of `0..n`, as `perm[old] = new`, made once per thread.
fn permutations(n: usize) -> Rc<Vec<Vec<usize>>> {
    thread_local! {
        static MADE: RefCell<Vec<Rc<Vec<Vec<usize>>>>> = const { RefCell::new(Vec::new()) };
    }
    MADE.with(|made| {
        let mut made = made.borrow_mut();
        while made.len() <= n {
            let next = Rc::new(make_permutations(made.len()));
            made.push(next);
        }
        Rc::clone(&made[n])
    })
}

fn make_permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in make_permutations(n - 1) {
        for at in 0..n {
            let mut q: Vec<usize> = p.iter().map(|&x| if x >= at { x + 1 } else { x }).collect();
            q.push(at);
            out.push(q);
        }
    }
    out
}

fn reason(e: &mut Enc, name: &str, r: Option<StopReason>) {
    e.v(name, r.map_or(NONE, |r| r.index() as i128), &r);
}

/// Rule 7 (`last_tick`): read only by invariant 5, which flags the head of a buffering
/// queue whose deadline is at or before it. Tickets issued later have deadlines after
/// `now`, so all it can ever tell is which of the tickets queued now have deadlines at or
/// before it: that set (by rank) is kept instead of the instant, and an empty set is the
/// same as no tick at all.
fn last_tick(e: &mut Enc, t: Option<Timestamp>, pool: &Pool<'_>, norm: &Norm) {
    let Some(t) = t.filter(|_| norm.full) else {
        norm.maybe(e, "last_tick", t);
        return;
    };
    let covered: Vec<usize> = pool
        .live
        .iter()
        .enumerate()
        .filter(|(_, h)| h.status == TicketStatus::Queued && h.deadline <= t)
        .map(|(r, _)| r)
        .collect();
    if covered.is_empty() {
        norm.maybe(e, "last_tick", None);
        return;
    }
    e.open("last_tick covers", 4);
    e.n("len", covered.len() as i128);
    for r in covered {
        e.n("#", r as i128);
    }
    e.close();
}

/// The rewrites that apply anywhere (instants relative to `now`), and what the other rules
/// need.
struct Norm {
    now: u64,
    max_failover_duration: u64,
    min_time_between_failovers: u64,
    /// The full form (rules 1–9), or the structural one (1–5).
    full: bool,
    /// Rule 6 applies.
    symmetric: bool,
}

impl Norm {
    /// Rule 2: an instant relative to `now`.
    fn rel(&self, t: Timestamp) -> i128 {
        i128::from(t.as_nanos()) - i128::from(self.now)
    }

    fn instant(&self, e: &mut Enc, name: &str, t: Timestamp) {
        e.n(name, self.rel(t));
    }

    fn maybe(&self, e: &mut Enc, name: &str, t: Option<Timestamp>) {
        match t {
            Some(t) => {
                e.words.push(1);
                self.instant(e, name, t);
            }
            None => e.v(name, NONE, &"None"),
        }
    }

    /// Rule 2 on a parsed `Debug` print (the plan, in the structural form).
    fn tree(&self, v: &Value) -> Value {
        match v {
            Value::Atom(a) => match timestamp_nanos(a) {
                Some(t) => Value::Atom(format!("t{:+}", i128::from(t) - i128::from(self.now))),
                None => v.clone(),
            },
            Value::Struct(name, fields) => Value::Struct(
                name.clone(),
                fields
                    .iter()
                    .map(|(n, v)| (n.clone(), self.tree(v)))
                    .collect(),
            ),
            Value::Tuple(name, items) => {
                Value::Tuple(name.clone(), items.iter().map(|v| self.tree(v)).collect())
            }
            Value::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| (self.tree(k), self.tree(v)))
                    .collect(),
            ),
            Value::List(items) => Value::List(items.iter().map(|v| self.tree(v)).collect()),
            Value::Set(items) => Value::Set(items.iter().map(|v| self.tree(v)).collect()),
        }
    }
}

/// `12.000500000s` (`Timestamp`'s `Debug`) as nanoseconds; `None` for anything else.
fn timestamp_nanos(atom: &str) -> Option<u64> {
    let (secs, frac) = atom.strip_suffix('s')?.split_once('.')?;
    if frac.len() != 9 || !secs.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // A `Duration::MAX` (an unlimited shutdown grace) prints the same way but is no
    // instant: it does not fit in nanoseconds, and stays as it is.
    secs.parse::<u64>()
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(frac.parse::<u64>().ok()?)
}

/// The live tickets, oldest first (rule 1: a ticket's rank is its name).
struct Pool<'a> {
    live: &'a [Held],
    /// The harness index of the most recently ended ticket: generations are handed out
    /// 1, 2, 3, ..., so the n-th ticket issued (the harness's index n) has generation n + 1,
    /// and the newest one not live has ended.
    last_ended: Option<usize>,
}

impl<'a> Pool<'a> {
    fn read(state: &'a State) -> Pool<'a> {
        let live = &state.tickets[..];
        let last_ended = (1..=state.tickets_issued)
            .rev()
            .find(|g| !live.iter().any(|h| h.ticket.id() == *g))
            .map(|g| (g - 1) as usize);
        Pool { live, last_ended }
    }

    /// A ticket's rank among the live, or `None` if it is not live.
    fn rank(&self, t: failover_buffer::Ticket) -> Option<usize> {
        self.live.iter().position(|h| h.ticket == t)
    }

    /// The live entries by rank. Rule 7: the deadline of a ticket released other than by a
    /// drain is never read again (only queued tickets' deadlines are, and only a
    /// drain-released ticket queues again, through `retry_failed`, keeping its deadline).
    /// A queued ticket's deadline equal to `now` while its shard drains is read only by a
    /// drain back-off, which releases every such ticket at once, in queue order (a
    /// draining shard has no timer to show it), or by a requeue's placement, which puts
    /// the requeued ticket (whose deadline is at most this one: it was ahead in the queue)
    /// before it either way. Rule 9: a deadline already past is compared with `now` (past,
    /// whatever its value), with `now` plus the window (earlier), and with the other
    /// deadlines (a requeued ticket goes before the first queued one whose deadline is not
    /// earlier): so past deadlines are kept as their order among the past ones
    /// (`due#0` the earliest, equal ones alike), and their values show only in
    /// `poll_timeout` and in the order of the `Wake`s of the next tick, which releases every
    /// due ticket at once. Of the rest of an entry, its size (`bytes`, which the harness
    /// cycles through `REQUEST_BYTES`) is read only against a byte budget, which the
    /// alphabet never sets (`reconfigurations` keeps no budget), and when it was queued
    /// (`held_at`) by no rule: only the wait histograms, which no rule reads either.
    fn canonical(&self, e: &mut Enc, norm: &Norm, state: &State, id: &dyn Fn(ShardId) -> i128) {
        let mut past: Vec<u64> = self
            .live
            .iter()
            .map(|h| h.deadline.as_nanos())
            .filter(|&d| d < norm.now)
            .collect();
        past.sort_unstable();
        past.dedup();
        e.open("live", 5);
        e.n("len", self.live.len() as i128);
        for held in self.live {
            let queued = held.status == TicketStatus::Queued;
            let in_drain = matches!(
                held.status,
                TicketStatus::Retrying(failover_buffer::ReleaseReason::Drain(_))
            );
            let draining = state
                .shards
                .get(held.shard.index())
                .is_some_and(|s| s.state == ShardState::Draining);
            e.open("", 6);
            e.v("status", h(&held.status), &held.status);
            e.n("shard", id(held.shard));
            let d = held.deadline.as_nanos();
            if norm.full && !queued && !in_drain {
                e.v("deadline", NONE, &"_");
            } else if norm.full && d < norm.now {
                let k = past.partition_point(|&p| p < d);
                e.v("deadline", NONE + 1 + k as i128, &format_args!("due#{k}"));
            } else if norm.full && d == norm.now && draining && queued {
                e.v("deadline", NONE + 100_000, &"due");
            } else {
                norm.instant(e, "deadline", held.deadline);
            }
            e.close();
        }
        e.close();
        let some_ended = self.last_ended.is_some();
        e.v("some_ended", i128::from(some_ended), &some_ended);
    }
}

/// A shard: names dropped, queue as ranks, terms relative, counters reduced, and in the
/// full form, primary anonymous and facts no rule will read again forgotten.
fn shard(
    e: &mut Enc,
    s: &inspect::Shard,
    pool: &Pool<'_>,
    norm: &Norm,
    revivable: Option<bool>,
) -> Result<(), String> {
    let episode = Episode::read(s, norm, revivable);
    e.open("shard", 7);
    e.v("mode", h(&s.mode), &s.mode);
    e.v("state", h(&s.state), &s.state);
    e.open("queue", 8);
    e.n("len", s.queue.len() as i128);
    for &t in &s.queue {
        let r = pool.rank(t).ok_or("a queued ticket is not live")?;
        e.n("#", r as i128);
    }
    e.close();
    e.n("drain_in_flight", s.drain_in_flight as i128);
    e.n("drain_excess", s.drain_excess as i128);
    episode.canonical(e, &s.episode, s.highest_term, norm);
    recent(e, "last_end", s.last_end, norm);
    match s.pause {
        None => e.v("pause", NONE, &"None"),
        // Rule 7: a pause's `since` is read only to bound it by a lower `max_pause` (a
        // `reconfigure`, none of which changes it: see `reconfigurations`) and by the
        // invariant that the pause ends within `max_pause` of it, which holds of each state
        // reached. Rule 9: an `until` already past is only asked "due?" by the next tick,
        // which ends the pause (its value shows only in `poll_timeout`).
        Some(p) => {
            e.open("pause", 9);
            if norm.full {
                e.v("since", NONE + 7, &"_");
            } else {
                norm.instant(e, "since", p.since);
            }
            if norm.full && p.until.as_nanos() < norm.now {
                e.v("until", NONE + 2, &"due");
            } else {
                norm.instant(e, "until", p.until);
            }
            e.v("under", h(&p.under), &p.under);
            e.close();
        }
    }
    e.v("pause_drain", i128::from(s.pause_drain), &s.pause_drain);
    recent(e, "last_reparent", s.last_reparent, norm);
    // Rule 8.
    match s.primary {
        None => e.v("primary", NONE, &"None"),
        Some(_) if norm.full => e.v("primary", NONE + 1, &"known"),
        Some(p) => e.n("primary", i128::from(p.0)),
    }
    term(e, "highest_term", s.highest_term, s.highest_term, norm.full);
    counters_read_by_rules(e, s, !norm.full || episode.peaks_read_again());
    e.close();
    Ok(())
}

/// Rule 7 (`last_end`, `last_reparent`): read only by the min-time rule, `now - t <
/// min_time_between_failovers`. `now` never goes back, so once that is false it stays
/// false, which is what `None` gives too.
fn recent(e: &mut Enc, name: &str, t: Option<Timestamp>, norm: &Norm) {
    match t {
        Some(t)
            if norm.full
                && norm.now.saturating_sub(t.as_nanos()) >= norm.min_time_between_failovers =>
        {
            norm.maybe(e, name, None)
        }
        _ => norm.maybe(e, name, t),
    }
}

/// What the canonical form needs to know about a shard's episode.
struct Episode {
    /// Whether a rule can still read the episode: it is in progress, or it drained but a
    /// failed retry may still reopen it (`may_reopen`: enabled, stopped because the
    /// failover seemed over, younger than max failover duration).
    alive: bool,
    /// The episode has stopped; for a shard a running shutdown stopped while it buffered,
    /// whether the episode a cancel puts back (`Buffer::cancel_shutdown`, `Unstop`) had:
    /// such an episode is not forgotten for being idle or stopped by the shutdown.
    stopped: bool,
    /// `now` is after `start + max_failover_duration` (strictly: at that instant exactly,
    /// the max-duration timer is due now, and `poll_timeout` shows it as now, which the
    /// alphabet reads).
    max_passed: bool,
}

impl Episode {
    fn read(shard: &inspect::Shard, norm: &Norm, revivable: Option<bool>) -> Episode {
        let start = shard.episode.start.as_nanos();
        let past_max = norm.now >= start.saturating_add(norm.max_failover_duration);
        let seemed_over = matches!(
            shard.episode.stopped,
            Some(StopReason::NewPrimarySeen | StopReason::MoveTablesSwitchedTraffic)
        );
        // The machine's own phase: under a pause, what lies under it. A pause over an idle
        // machine, and the drain of what it held (`pause_drain`), belong to no episode:
        // the last one is read then as on an idle shard (every rule reads `phase`, a
        // failover request or not-serving stamp starts a fresh episode, and the pause's
        // drain sets what it releases with, `Retry`, itself).
        let phase = shard.pause.map_or(shard.state, |p| p.under);
        let idle =
            phase == ShardState::Idle || (shard.pause_drain && phase == ShardState::Draining);
        let alive = revivable.is_some()
            || !idle
            || (shard.mode == Mode::Enabled && seemed_over && !past_max);
        Episode {
            alive,
            // A cancel restores the saved `stopped`; until then (shut down) no stamp or stop
            // reads the episode.
            stopped: revivable.unwrap_or(shard.episode.stopped.is_some()),
            max_passed: norm.now > start.saturating_add(norm.max_failover_duration),
        }
    }

    /// `last_requests_*_max` are read by the episode's first stop only; `start` resets them.
    /// (A cancelled shutdown restores the episode's `stopped`: if it was `None`, its next
    /// stop is a first one again.)
    fn peaks_read_again(&self) -> bool {
        self.alive && !self.stopped
    }

    /// Rule 7 (the episode). An episode no rule can read again is forgotten: an idle
    /// shard's next episode starts afresh (`Episode::new` sets every field). Within a live
    /// episode:
    /// * `start` is read to compare with max failover duration (once past, always past),
    ///   by `poll_timeout` while buffering, and at the first stop only, to report the
    ///   duration (rule 9: once past max, only outputs read its value);
    /// * a `resume_at` already past is only asked "due?" by the next tick (rule 9: its
    ///   value shows only in `poll_timeout`);
    /// * once stopped, `saw_not_serving` and `start_term` are never read: a stopped episode
    ///   buffers again only through a drain back-off, which sets `resume_at`, and while it
    ///   is set any serving stamp ends buffering whatever they say;
    /// * a buffering shard's `drain_start` is overwritten by the stop that ends buffering
    ///   before any drain reports it (and rule 9 drops it while draining);
    /// * `first_hold` and `last_release` are read only to report
    ///   `last_failover_held_duration` at a stop (rule 9), and `first_hold` by
    ///   `get_or_insert` (only whether it is set).
    fn canonical(&self, e: &mut Enc, ep: &inspect::Episode, highest: Option<u64>, norm: &Norm) {
        let full = norm.full;
        if full && !self.alive {
            e.v("episode", NONE, &"over");
            return;
        }
        const FORGOTTEN: i128 = NONE + 7;
        e.open("episode", 10);
        if full && self.max_passed {
            e.v("start", FORGOTTEN, &"_");
        } else {
            norm.instant(e, "start", ep.start);
        }
        if full && self.stopped {
            e.v("start_term", FORGOTTEN, &"_");
            e.v("saw_not_serving", FORGOTTEN, &"_");
        } else {
            term(e, "start_term", ep.start_term, highest, full);
            e.v(
                "saw_not_serving",
                i128::from(ep.saw_not_serving),
                &ep.saw_not_serving,
            );
        }
        reason(e, "stopped", ep.stopped);
        reason(e, "last_stop", ep.last_stop);
        match ep.release {
            Verdict::Retry => e.v("release", NONE, &ep.release),
            Verdict::Fail(err) => e.v("release", h(&err), &ep.release),
        }
        if full {
            // Rule 9 while draining, rule 7 while buffering.
            e.v("drain_start", FORGOTTEN, &"_");
        } else {
            norm.instant(e, "drain_start", ep.drain_start);
        }
        match ep.resume_at {
            Some(t) if full && t.as_nanos() < norm.now => e.v("resume_at", NONE + 2, &"due"),
            t => norm.maybe(e, "resume_at", t),
        }
        if full {
            // Rule 9: read only for that report, and by `get_or_insert` (whether it is set).
            let set = ep.first_hold.is_some();
            e.v(
                "first_hold",
                i128::from(set),
                &if set { "Some(_)" } else { "None" },
            );
            // Rule 9: read only to report `last_failover_held_duration`.
            e.v("last_release", FORGOTTEN, &"_");
        } else {
            norm.maybe(e, "first_hold", ep.first_hold);
            norm.instant(e, "last_release", ep.last_release);
        }
        e.close();
    }
}

/// Rule 4: of the counters, what a rule reads: each shard's balance `buffered - evicted -
/// drained` (invariant 8), and the episode's peaks while its first stop may still report
/// them (rule 7; always, in the structural form).
fn counters_read_by_rules(e: &mut Enc, s: &inspect::Shard, peaks: bool) {
    let st = &s.stats;
    let evicted: u64 = EvictReason::ALL.iter().map(|&r| st.evicted[r]).sum();
    let balance = i128::from(st.buffered) - i128::from(evicted) - i128::from(st.drained);
    e.open("stats", 11);
    e.n("balance", balance);
    if peaks {
        e.n(
            "last_requests_in_flight_max",
            i128::from(st.last_requests_in_flight_max),
        );
        e.n(
            "last_requests_dry_run_max",
            i128::from(st.last_requests_dry_run_max),
        );
    } else {
        e.words.push(NONE);
    }
    e.close();
}

/// Rule 3: a term relative to the shard's highest. In the full form a `start_term` below
/// the highest is just "below" (rule 7: an accepted stamp is at least the highest, so it
/// is newer than any such start term, whatever its value). A highest term of 0 is kept
/// verbatim: there the harness's "older" stamp saturates to the same term.
fn term(e: &mut Enc, name: &str, t: Option<u64>, highest: Option<u64>, full: bool) {
    match (t, highest) {
        (None, _) => e.v(name, NONE, &"None"),
        (Some(t), None | Some(0)) => {
            e.words.push(1);
            e.n(name, i128::from(t));
        }
        (Some(t), Some(h)) if t < h && full => e.v(name, NONE + 1, &"H-"),
        (Some(t), Some(h)) => {
            e.words.push(2);
            e.v(
                name,
                i128::from(t) - i128::from(h),
                &format_args!("H{:+}", i128::from(t) - i128::from(h)),
            );
        }
    }
}

/// A 128-bit fingerprint of a form: two 64-bit hashes of its words, each a folded
/// multiply (the 128-bit product of two 64-bit operands, its halves xored, as wyhash and
/// foldhash do) of each word's two halves, with the running value xored into one operand.
/// Each hash runs four lanes over every fourth word, so that four chains of dependent
/// multiplications run side by side, each a quarter as long (the four multiply-xorshift
/// lanes before, each over every word, a SipHash before them, were a tenth and a twelfth
/// of a transition). Each half of the result mixes its hash's four lanes and the length
/// through a full avalanche; the two hashes use other constants and swap the halves.
fn fingerprint_words(words: &[i128]) -> u128 {
    const A: [u64; 4] = [
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    ];
    const B: [u64; 4] = [
        0x4528_21e6_38d0_1377,
        0xbe54_66cf_34e9_0c6c,
        0xc0ac_29b7_c97c_50dd,
        0x3f84_d5b5_b547_0917,
    ];
    const KA: u64 = 0x9e37_79b9_7f4a_7c15;
    const KB: u64 = 0xd6e8_feb8_6659_fd93;
    let (mut a, mut b) = (A, B);
    let mut chunks = words.chunks_exact(4);
    for chunk in &mut chunks {
        for lane in 0..4 {
            let w = chunk[lane];
            let (lo, hi) = (w as u64, (w >> 64) as u64);
            a[lane] = fold(a[lane] ^ lo ^ A[lane], hi ^ KA);
            b[lane] = fold(b[lane] ^ hi ^ B[lane], lo ^ KB);
        }
    }
    for (lane, &w) in chunks.remainder().iter().enumerate() {
        let (lo, hi) = (w as u64, (w >> 64) as u64);
        a[lane] = fold(a[lane] ^ lo ^ A[lane], hi ^ KA);
        b[lane] = fold(b[lane] ^ hi ^ B[lane], lo ^ KB);
    }
    let len = words.len() as u64;
    let mix = |l: [u64; 4], k: u64| {
        avalanche(fold(l[0] ^ l[1].rotate_left(29), l[2] ^ l[3].rotate_left(43) ^ k) ^ len)
    };
    (u128::from(mix(a, KB)) << 64) | u128::from(mix(b, KA))
}

/// The 128-bit product of `x` and `y`, its two halves xored.
fn fold(x: u64, y: u64) -> u64 {
    let p = u128::from(x) * u128::from(y);
    (p as u64) ^ ((p >> 64) as u64)
}

/// splitmix64's finaliser: every input bit flips about half the output bits.
fn avalanche(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Two independent 64-bit SipHashes of `value`.
fn fingerprint<T: Hash + ?Sized>(value: &T) -> u128 {
    let half = |salt: u64| {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        value.hash(&mut h);
        h.finish()
    };
    (u128::from(half(0x5eed_0001)) << 64) | u128::from(half(0x5eed_0002))
}

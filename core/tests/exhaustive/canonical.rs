//! The canonical form of a state: what the explorer deduplicates on.
//!
//! The state is the whole `Buffer` (read off its `{:#?}` print, see `debug_tree`) plus the
//! one piece of the harness's state that the buffer does not hold: the harness's clock,
//! which can run ahead of the buffer's (`Op::Wait`) or behind it (a negative `Op::Tick`).
//!
//! Two states with the same canonical form behave the same from then on, for every input
//! sequence, up to renaming tickets, shards and primaries, shifting time and terms, and
//! the values of counters and of instants that reach only outputs (rules 4 and 9). Each
//! rewrite is sound for a reason read off the core's code (`core/src/`); a field not named
//! here is kept verbatim, which is always sound (it can only keep apart states that could
//! have merged). The **structural** rules 1–5 rest on properties of the whole design
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

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use failover_buffer::Buffer;

use super::debug_tree::{self, Value};

/// A state's canonical form, and the facts about it that the alphabet needs.
pub(crate) struct Canonical {
    /// A 128-bit fingerprint of `text`: the full form (rules 1–9).
    pub(crate) key: u128,
    /// The fingerprint of the structural form (rules 1–5), if asked for.
    pub(crate) structural_key: Option<u128>,
    /// The full form, printed.
    pub(crate) text: String,
    /// Tickets queued, in all shards.
    pub(crate) queued: usize,
    /// Tickets released to retry whose retries have not been reported.
    pub(crate) released: usize,
    /// The harness index (order of issue) of the most recently ended ticket, if any.
    pub(crate) last_ended: Option<usize>,
    /// The harness clock minus the buffer's `now`, in nanoseconds.
    pub(crate) clock_offset: i128,
}

/// The canonical form of `buffer` with the harness clock at `clock_ns` (`None`: at the
/// end of time); with `structural`, the structural form's fingerprint too. Rule 6 applies
/// only if `shards_interchangeable`: not when the alphabet reconfigures (see rule 6).
pub(crate) fn canonical(
    buffer: &Buffer,
    clock_ns: Option<i64>,
    structural: bool,
    shards_interchangeable: bool,
) -> Result<Canonical, String> {
    let tree = debug_tree::parse(&format!("{buffer:#?}"))?;
    let now = tree
        .field("now")
        .and_then(Value::atom)
        .and_then(timestamp_nanos)
        .ok_or("Buffer has no `now`")?;
    let limits = tree.field("limits").ok_or("Buffer has no `limits`")?;
    let pool = Pool::read(tree.field("pool").ok_or("Buffer has no `pool`")?)?;
    // At the end of time (`None`) every input is stamped `Timestamp::MAX`, which is `now`.
    let clock_offset = clock_ns.map_or(0, |c| i128::from(c) - i128::from(now));
    let clock = match clock_ns {
        Some(_) => format!("{clock_offset:+}"),
        None => "end of time".into(),
    };
    let mut norm = Norm {
        now,
        max_failover_duration: number(limits.field("max_failover_duration"), "max duration")?,
        min_time_between_failovers: number(
            limits.field("min_time_between_failovers"),
            "min time between failovers",
        )?,
        full: true,
        symmetric: shards_interchangeable,
    };
    let text = form(&tree, &pool, &norm, &clock)?;
    let structural_key = if structural {
        norm.full = false;
        Some(fingerprint(&form(&tree, &pool, &norm, &clock)?))
    } else {
        None
    };
    let queued = pool.live.iter().filter(|e| e.status == "Queued").count();
    Ok(Canonical {
        key: fingerprint(&text),
        structural_key,
        queued,
        released: pool.live.len() - queued,
        last_ended: pool.last_ended,
        clock_offset,
        text,
    })
}

/// The printed form of a parsed `Buffer`.
fn form(tree: &Value, pool: &Pool, norm: &Norm, clock: &str) -> Result<String, String> {
    let Value::Struct(_, fields) = tree else {
        return Err("Buffer does not print as a struct".into());
    };
    let mut shards = Vec::new();
    let mut rest = vec![("clock".to_string(), Value::Atom(clock.to_string()))];
    for (name, value) in fields {
        let kept = match name.as_str() {
            "names" | "input_stats" | "now" => continue,
            // The deadline index caches each shard's own next deadline (its versions and
            // heap layout are bookkeeping); `check_invariants` checks it agrees with the
            // shards, and ties fire by shard id, so it adds no state of its own.
            "timers" => continue,
            "shards" => {
                let Value::List(list) = value else {
                    return Err("`shards` is not a list".into());
                };
                let revivable = revivable(tree);
                for (i, s) in list.iter().enumerate() {
                    let saved = revivable.iter().find(|(j, _)| *j == i).map(|&(_, s)| s);
                    shards.push(shard(s, pool, norm, saved)?);
                }
                continue;
            }
            "pool" => pool.canonical(norm, &draining(tree)),
            "shutdown" => shutdown(value, pool, norm),
            "last_tick" => last_tick(value, pool, norm),
            _ => norm.value(value, pool),
        };
        rest.push((name.clone(), kept));
    }
    Ok(symmetric_minimum(
        &shards,
        &rest,
        norm.full && norm.symmetric,
    ))
}

/// The indices of the shards that are draining.
fn draining(tree: &Value) -> Vec<usize> {
    match tree.field("shards") {
        Some(Value::List(shards)) => (0..shards.len())
            .filter(|&i| shards[i].field("state").and_then(Value::atom) == Some("Draining"))
            .collect(),
        _ => Vec::new(),
    }
}

/// Rule 6: the least print over the permutations of shards of the same mode (only the
/// identity in the structural form).
fn symmetric_minimum(shards: &[Value], rest: &[(String, Value)], full: bool) -> String {
    let modes: Vec<Option<&Value>> = shards.iter().map(|s| s.field("mode")).collect();
    let identity: Vec<usize> = (0..shards.len()).collect();
    let perms = if full {
        permutations(shards.len())
    } else {
        vec![identity]
    };
    let mut best: Option<String> = None;
    for perm in perms {
        // perm[old] = new; only permutations that keep every shard's mode.
        if (0..shards.len()).any(|i| modes[i] != modes[perm[i]]) {
            continue;
        }
        let mut reordered = vec![Value::Atom(String::new()); shards.len()];
        for (old, s) in shards.iter().enumerate() {
            reordered[perm[old]] = s.clone();
        }
        let mut out = vec![("shards".to_string(), Value::List(reordered))];
        out.extend(
            rest.iter()
                .map(|(n, v)| (n.clone(), rename_shards(v, &perm))),
        );
        let text = format!("{:?}", Value::Struct(String::new(), out));
        if best.as_ref().is_none_or(|b| text < *b) {
            best = Some(text);
        }
    }
    best.unwrap_or_default()
}

/// Every permutation of `0..n`, as `perm[old] = new`.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for at in 0..n {
            let mut q: Vec<usize> = p.iter().map(|&x| if x >= at { x + 1 } else { x }).collect();
            q.push(at);
            out.push(q);
        }
    }
    out
}

/// `ShardId(i)` as `ShardId(perm[i])`, and a per-shard list (`Active::pos`) reordered.
fn rename_shards(v: &Value, perm: &[usize]) -> Value {
    match v {
        Value::Tuple(name, items) if name == "ShardId" => match items.as_slice() {
            [Value::Atom(a)] => match a.parse::<usize>() {
                Ok(i) if i < perm.len() => {
                    Value::Tuple(name.clone(), vec![Value::Atom(perm[i].to_string())])
                }
                _ => v.clone(),
            },
            _ => v.clone(),
        },
        Value::Struct(name, fields) => Value::Struct(
            name.clone(),
            fields
                .iter()
                .map(|(n, fv)| match (n.as_str(), fv) {
                    ("pos", Value::List(items)) if items.len() == perm.len() => {
                        let mut out = items.clone();
                        for (old, item) in items.iter().enumerate() {
                            out[perm[old]] = item.clone();
                        }
                        (n.clone(), Value::List(out))
                    }
                    _ => (n.clone(), rename_shards(fv, perm)),
                })
                .collect(),
        ),
        Value::Tuple(name, items) => Value::Tuple(
            name.clone(),
            items.iter().map(|x| rename_shards(x, perm)).collect(),
        ),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, x)| (rename_shards(k, perm), rename_shards(x, perm)))
                .collect(),
        ),
        Value::List(items) => Value::List(items.iter().map(|x| rename_shards(x, perm)).collect()),
        Value::Set(items) => Value::Set(items.iter().map(|x| rename_shards(x, perm)).collect()),
        Value::Atom(_) => v.clone(),
    }
}

fn none() -> Value {
    Value::Atom("None".into())
}

/// Rule 7 (`last_tick`): read only by invariant 5, which flags the head of a buffering
/// queue whose deadline is at or before it. Tickets issued later have deadlines after
/// `now`, so all it can ever tell is which of the tickets queued now have deadlines at or
/// before it: that set (by rank) is kept instead of the instant, and an empty set is the
/// same as no tick at all.
fn last_tick(v: &Value, pool: &Pool, norm: &Norm) -> Value {
    if !norm.full {
        return norm.value(v, pool);
    }
    let Some(t) = v
        .option()
        .flatten()
        .and_then(Value::atom)
        .and_then(timestamp_nanos)
    else {
        return norm.value(v, pool);
    };
    let covered: Vec<Value> = pool
        .live
        .iter()
        .enumerate()
        .filter(|(_, e)| e.status == "Queued" && e.deadline.is_some_and(|d| d <= t))
        .map(|(r, _)| Value::Atom(format!("#{r}")))
        .collect();
    if covered.is_empty() {
        none()
    } else {
        Value::Tuple("Covers".into(), covered)
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

/// The rewrites that apply anywhere (instants relative to `now`, tickets by rank), and
/// what the other rules need.
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
    fn value(&self, v: &Value, pool: &Pool) -> Value {
        match v {
            Value::Atom(a) => match timestamp_nanos(a) {
                Some(t) => Value::Atom(format!("t{:+}", i128::from(t) - i128::from(self.now))),
                None => v.clone(),
            },
            Value::Tuple(name, items) if name == "Ticket" => match items.as_slice() {
                [Value::Atom(a)] => Value::Atom(pool.rename(a)),
                _ => v.clone(),
            },
            Value::Struct(name, fields) => Value::Struct(
                name.clone(),
                fields
                    .iter()
                    .map(|(n, v)| (n.clone(), self.value(v, pool)))
                    .collect(),
            ),
            Value::Tuple(name, items) => Value::Tuple(
                name.clone(),
                items.iter().map(|v| self.value(v, pool)).collect(),
            ),
            Value::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| (self.value(k, pool), self.value(v, pool)))
                    .collect(),
            ),
            Value::List(items) => Value::List(items.iter().map(|v| self.value(v, pool)).collect()),
            Value::Set(items) => Value::Set(items.iter().map(|v| self.value(v, pool)).collect()),
        }
    }
}

/// One live slab entry.
struct Entry {
    generation: u64,
    next: Option<u32>,
    status: String,
    /// Released by a drain: a failed retry may queue it again, with its deadline.
    in_drain: bool,
    deadline: Option<u64>,
    shard: Option<usize>,
    /// Every field but the generation and the links, normalised later.
    rest: Vec<(String, Value)>,
}

/// The slab of live tickets, read off `Pool`'s print.
struct Pool {
    /// Live entries, oldest first.
    live: Vec<Entry>,
    /// Slot → index in `live`.
    by_slot: HashMap<u32, usize>,
    /// Generation → rank among the live.
    rank: HashMap<u64, usize>,
    last_ended: Option<usize>,
}

/// `u32::MAX`: the queue links' "none".
const NIL: u32 = u32::MAX;

fn number<T: std::str::FromStr>(v: Option<&Value>, what: &str) -> Result<T, String> {
    v.and_then(Value::atom)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("expected a number for {what}"))
}

impl Pool {
    fn read(v: &Value) -> Result<Pool, String> {
        let Some(Value::Map(entries)) = v.field("entries") else {
            return Err("Pool has no `entries` map (print it with {:#?})".into());
        };
        let next_generation: u64 = number(v.field("next_generation"), "next_generation")?;
        let mut read = Vec::new();
        for (k, e) in entries {
            let slot: u32 = number(Some(k), "a slot")?;
            let Value::Struct(_, fields) = e else {
                return Err("a slab entry is not a struct".into());
            };
            let next: u32 = number(e.field("next"), "next")?;
            let entry = Entry {
                generation: number(e.field("generation"), "generation")?,
                next: (next != NIL).then_some(next),
                status: e.field("status").and_then(Value::atom).unwrap_or("").into(),
                in_drain: e
                    .field("status")
                    .is_some_and(|s| format!("{s:?}").starts_with("Retrying(Drain(")),
                deadline: e
                    .field("deadline")
                    .and_then(Value::atom)
                    .and_then(timestamp_nanos),
                shard: match e.field("shard") {
                    Some(Value::Tuple(_, id)) => id
                        .first()
                        .and_then(Value::atom)
                        .and_then(|a| a.parse().ok()),
                    _ => None,
                },
                // The buffer-wide FIFO's links (`all_prev`, `all_next`) are the queued
                // entries in deadline order, which the shards' queues already hold; only
                // `Eviction::OldestAnywhere` reads them. A request's size (`bytes`, which the
                // harness cycles through `REQUEST_BYTES`) is read only against a byte budget.
                // The alphabet sets neither (`reconfigurations` keeps the default policy and
                // no budget), so both are bookkeeping here. When it was queued (`held_at`)
                // is read by no rule: only the wait histograms, which no rule reads either.
                rest: fields
                    .iter()
                    .filter(|(n, _)| {
                        !matches!(
                            n.as_str(),
                            "generation"
                                | "prev"
                                | "next"
                                | "all_prev"
                                | "all_next"
                                | "bytes"
                                | "held_at"
                        )
                    })
                    .cloned()
                    .collect(),
            };
            read.push((slot, entry));
        }
        read.sort_by_key(|(_, e)| e.generation);
        let by_slot = read.iter().enumerate().map(|(r, (s, _))| (*s, r)).collect();
        let rank = read
            .iter()
            .enumerate()
            .map(|(r, (_, e))| (e.generation, r))
            .collect();
        let live: Vec<Entry> = read.into_iter().map(|(_, e)| e).collect();
        // Generations are handed out 1, 2, 3, ..: the n-th ticket issued (the harness's
        // index n) has generation n + 1, and the newest one not live has ended.
        let last_ended = (1..next_generation)
            .rev()
            .find(|g| !live.iter().any(|e| e.generation == *g))
            .map(|g| (g - 1) as usize);
        Ok(Pool {
            live,
            by_slot,
            rank,
            last_ended,
        })
    }

    /// `#generation@slot` as `#rank`, or `#ended` for a ticket no longer live.
    fn rename(&self, ticket: &str) -> String {
        let generation = ticket
            .strip_prefix('#')
            .and_then(|t| t.split('@').next())
            .and_then(|g| g.parse::<u64>().ok());
        match generation.and_then(|g| self.rank.get(&g)) {
            Some(r) => format!("#{r}"),
            None => "#ended".into(),
        }
    }

    /// The ranks along a queue, from its head slot.
    fn walk(&self, head: u32) -> Result<Value, String> {
        let mut ranks = Vec::new();
        let mut at = (head != NIL).then_some(head);
        while let Some(slot) = at {
            let &r = self
                .by_slot
                .get(&slot)
                .ok_or("a queue links a slot with no entry")?;
            if ranks.len() > self.live.len() {
                return Err("a queue's links form a cycle".into());
            }
            ranks.push(Value::Atom(format!("#{r}")));
            at = self.live[r].next;
        }
        Ok(Value::List(ranks))
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
    /// due ticket at once.
    fn canonical(&self, norm: &Norm, draining: &[usize]) -> Value {
        let mut past: Vec<u64> = self
            .live
            .iter()
            .filter_map(|e| e.deadline.filter(|&d| d < norm.now))
            .collect();
        past.sort_unstable();
        past.dedup();
        let live = self
            .live
            .iter()
            .map(|e| {
                let queued = e.status == "Queued";
                let forgotten = norm.full && !queued && !e.in_drain;
                let fields = e
                    .rest
                    .iter()
                    .filter(|(n, _)| !(forgotten && n == "deadline"))
                    .map(|(n, v)| {
                        let draining = e.shard.is_some_and(|s| draining.contains(&s));
                        let v = match e.deadline {
                            Some(d) if norm.full && n == "deadline" && d < norm.now => {
                                let k = past.partition_point(|&p| p < d);
                                Value::Atom(format!("due#{k}"))
                            }
                            Some(d)
                                if norm.full
                                    && n == "deadline"
                                    && d == norm.now
                                    && draining
                                    && queued =>
                            {
                                Value::Atom("due".into())
                            }
                            _ => norm.value(v, self),
                        };
                        (n.clone(), v)
                    })
                    .collect();
                Value::Struct(String::new(), fields)
            })
            .collect();
        Value::Struct(
            String::new(),
            vec![
                ("live".into(), Value::List(live)),
                (
                    "some_ended".into(),
                    Value::Atom(self.last_ended.is_some().to_string()),
                ),
            ],
        )
    }
}

/// A `ShardBuffer`: names dropped, queue as ranks, terms relative, counters reduced, and
/// in the full form, primary anonymous and facts no rule will read again forgotten.
fn shard(v: &Value, pool: &Pool, norm: &Norm, revivable: Option<bool>) -> Result<Value, String> {
    let Value::Struct(name, fields) = v else {
        return Err("a shard is not a struct".into());
    };
    let highest = match v.field("highest_term").and_then(Value::option) {
        Some(h) => h
            .map(|h| number::<u64>(Some(h), "highest_term"))
            .transpose()?,
        None => return Err("a shard has no `highest_term`".into()),
    };
    let episode = Episode::read(v, norm, revivable)?;
    let mut out = Vec::new();
    for (n, value) in fields {
        let kept = match n.as_str() {
            "keyspace" | "shard" => continue,
            "queue" => pool.walk(number(value.field("head"), "queue head")?)?,
            "stats" => counters_read_by_rules(value, !norm.full || episode.peaks_read_again()),
            "highest_term" => term(highest, highest, norm.full),
            // Rule 8.
            "primary" if norm.full => match value.option() {
                Some(Some(_)) => Value::Atom("Some(known)".into()),
                _ => norm.value(value, pool),
            },
            "last_end" | "last_reparent" => recent(value, pool, norm),
            "episode" => episode.canonical(value, highest, pool, norm)?,
            _ => norm.value(value, pool),
        };
        out.push((n.clone(), kept));
    }
    Ok(Value::Struct(name.clone(), out))
}

/// Rule 7 (`last_end`, `last_reparent`): read only by the min-time rule, `now - t <
/// min_time_between_failovers`. `now` never goes back, so once that is false it stays
/// false, which is what `None` gives too.
fn recent(v: &Value, pool: &Pool, norm: &Norm) -> Value {
    let at = v
        .option()
        .flatten()
        .and_then(Value::atom)
        .and_then(timestamp_nanos);
    match at {
        Some(t) if norm.full && norm.now.saturating_sub(t) >= norm.min_time_between_failovers => {
            none()
        }
        _ => norm.value(v, pool),
    }
}

/// The shards a cancel would put back: while a shutdown runs (`shut_down`, not `closed`),
/// those its `stopped` list names (`Shutdown::stopped`: each shard the shutdown stopped
/// while it buffered, with what `unstop` restores), each with whether the episode it puts
/// back had stopped (`Unstop::stopped`).
fn revivable(tree: &Value) -> Vec<(usize, bool)> {
    let atom = |n: &str| tree.field(n).and_then(Value::atom);
    if atom("shut_down") != Some("true") || atom("closed") != Some("false") {
        return Vec::new();
    }
    let Some(Some(shutdown)) = tree.field("shutdown").and_then(Value::option) else {
        return Vec::new();
    };
    let Some(Value::List(stopped)) = shutdown.field("stopped") else {
        return Vec::new();
    };
    stopped
        .iter()
        .filter_map(|pair| match pair {
            Value::Tuple(_, items) => match (items.first(), items.get(1)) {
                (Some(Value::Tuple(_, id)), Some(saved)) => {
                    let stopped = saved.field("stopped")?.option()?.is_some();
                    Some((id.first()?.atom()?.parse().ok()?, stopped))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The buffer's shutdown (`Shutdown`: its `DrainPlan`, the grace it was built with, and
/// what a cancel restores of each shard it stopped).
///
/// Rule 4: the plan's `stats` are counters (begun, cancelled, refused, clock regressions),
/// only ever added to. The full form also keeps of the plan only what its rules or the
/// harness read: its `state`, the phases `entered`, its current phase's max-wait
/// `deadline` (an instant like any other, rule 2; `Timestamp::MAX`, "never", stays as it
/// is), and for each phase entered why it was left (`PhaseEnd`: the harness reads whether
/// the grace ran out). Rule 9: the phase records' instants, `begun_at`, `ended_at` and
/// the remaining work last reported reach only `history`/`progress` (outputs), and the
/// plan's own `now` only clamps its inputs, which are the buffer's `now` (never behind
/// it). Rule 7: its `actions` queue (`poll_shutdown_action`) is read by no rule and by no
/// check of the harness. The phases are fixed by the grace, which is kept.
///
/// Of each stopped shard's saved episode (`Unstop`), what `unstop` restores is kept, each
/// field by the rule the shard's own copy follows: `last_end` by rule 7 (`recent`: once
/// older than min time between failovers, as good as none), `drain_start` not at all
/// (rule 9: only `DrainFinished` reports it), a `resume_at` already past as `due` (rule 9:
/// `unstop` ticks at once, and a tick fires every due resume).
fn shutdown(v: &Value, pool: &Pool, norm: &Norm) -> Value {
    let Some(Some(Value::Struct(name, fields))) = v.option() else {
        return norm.value(v, pool);
    };
    let kept = fields
        .iter()
        .map(|(n, fv)| {
            let kept = match n.as_str() {
                "plan" => plan(fv, pool, norm),
                "stopped" if norm.full => match fv {
                    Value::List(items) => Value::List(
                        items
                            .iter()
                            .map(|pair| match pair {
                                Value::Tuple(t, items) => Value::Tuple(
                                    t.clone(),
                                    items.iter().map(|x| unstop(x, pool, norm)).collect(),
                                ),
                                _ => norm.value(pair, pool),
                            })
                            .collect(),
                    ),
                    _ => norm.value(fv, pool),
                },
                _ => norm.value(fv, pool),
            };
            (n.clone(), kept)
        })
        .collect();
    Value::Tuple("Some".into(), vec![Value::Struct(name.clone(), kept)])
}

/// The shutdown's `DrainPlan` (see [`shutdown`]).
fn plan(v: &Value, pool: &Pool, norm: &Norm) -> Value {
    let Value::Struct(name, fields) = v else {
        return norm.value(v, pool);
    };
    let entered: usize = v
        .field("entered")
        .and_then(Value::atom)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let kept = fields
        .iter()
        .filter(|(n, _)| n != "stats")
        .filter(|(n, _)| {
            !norm.full || matches!(n.as_str(), "records" | "entered" | "state" | "deadline")
        })
        .map(|(n, fv)| {
            let kept = match (n.as_str(), fv) {
                ("records", Value::List(records)) if norm.full => Value::List(
                    records
                        .iter()
                        .take(entered)
                        .map(|r| match r.field("left").and_then(Value::option) {
                            Some(Some(Value::Tuple(_, end))) => {
                                end.get(1).cloned().unwrap_or_else(none)
                            }
                            _ => none(),
                        })
                        .collect(),
                ),
                ("deadline", d) if far(d) => Value::Atom("Some(never)".into()),
                _ => norm.value(fv, pool),
            };
            (n.clone(), kept)
        })
        .collect();
    Value::Struct(name.clone(), kept)
}

/// `Some(t)` with `t` at or past the end of time (a max wait that saturates).
fn far(v: &Value) -> bool {
    v.option()
        .flatten()
        .and_then(Value::atom)
        .and_then(timestamp_nanos)
        .is_some_and(|t| t >= u64::MAX / 2)
}

/// A shard's saved episode (`Unstop`; see [`shutdown`]).
fn unstop(v: &Value, pool: &Pool, norm: &Norm) -> Value {
    let Value::Struct(name, fields) = v else {
        return norm.value(v, pool);
    };
    let kept = fields
        .iter()
        .map(|(n, fv)| {
            let kept = match n.as_str() {
                "last_end" => recent(fv, pool, norm),
                "drain_start" => Value::Atom("_".into()),
                "resume_at"
                    if fv
                        .option()
                        .flatten()
                        .and_then(Value::atom)
                        .and_then(timestamp_nanos)
                        .is_some_and(|t| t < norm.now) =>
                {
                    Value::Atom("Some(due)".into())
                }
                _ => norm.value(fv, pool),
            };
            (n.clone(), kept)
        })
        .collect();
    Value::Struct(name.clone(), kept)
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
    fn read(shard: &Value, norm: &Norm, revivable: Option<bool>) -> Result<Episode, String> {
        let atom = |v: Option<&Value>| v.and_then(Value::atom).unwrap_or("").to_string();
        let state = atom(shard.field("state"));
        let mode = atom(shard.field("mode"));
        let e = shard.field("episode").ok_or("a shard has no `episode`")?;
        let start = e
            .field("start")
            .and_then(Value::atom)
            .and_then(timestamp_nanos)
            .ok_or("an episode has no `start`")?;
        let stopped = e
            .field("stopped")
            .and_then(Value::option)
            .ok_or("an episode has no `stopped`")?
            .and_then(Value::atom)
            .map(str::to_string);
        let past_max = norm.now >= start.saturating_add(norm.max_failover_duration);
        let seemed_over = matches!(
            stopped.as_deref(),
            Some("NewPrimarySeen" | "MoveTablesSwitchedTraffic")
        );
        let alive = revivable.is_some()
            || state != "Idle"
            || (mode == "Enabled" && seemed_over && !past_max);
        Ok(Episode {
            alive,
            // A cancel restores the saved `stopped`; until then (shut down) no stamp or stop
            // reads the episode.
            stopped: revivable.unwrap_or(stopped.is_some()),
            max_passed: norm.now > start.saturating_add(norm.max_failover_duration),
        })
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
    fn canonical(
        &self,
        v: &Value,
        highest: Option<u64>,
        pool: &Pool,
        norm: &Norm,
    ) -> Result<Value, String> {
        if norm.full && !self.alive {
            return Ok(Value::Atom("over".into()));
        }
        let Value::Struct(name, fields) = v else {
            return Ok(norm.value(v, pool));
        };
        let mut out = Vec::new();
        for (n, fv) in fields {
            let forget = norm.full
                && match n.as_str() {
                    "start" => self.max_passed,
                    "saw_not_serving" | "start_term" => self.stopped,
                    // Rule 9 while draining, rule 7 while buffering.
                    "drain_start" => true,
                    // Rule 9: read only to report `last_failover_held_duration`.
                    "last_release" => true,
                    _ => false,
                };
            // Rule 9: read only for that report, and by `get_or_insert` (whether it is set).
            if norm.full && n == "first_hold" {
                let set = fv.option().is_some_and(|t| t.is_some());
                out.push((
                    n.clone(),
                    Value::Atom(if set { "Some(_)" } else { "None" }.into()),
                ));
                continue;
            }
            let due = norm.full
                && n == "resume_at"
                && fv
                    .option()
                    .flatten()
                    .and_then(Value::atom)
                    .and_then(timestamp_nanos)
                    .is_some_and(|t| t < norm.now);
            let kept = if forget {
                Value::Atom("_".into())
            } else if due {
                Value::Atom("Some(due)".into())
            } else if n == "start_term" {
                let t = fv
                    .option()
                    .and_then(|t| t.map(|t| number::<u64>(Some(t), "start_term")))
                    .transpose()?;
                term(t, highest, norm.full)
            } else {
                norm.value(fv, pool)
            };
            out.push((n.clone(), kept));
        }
        Ok(Value::Struct(name.clone(), out))
    }
}

/// Rule 4: of the counters, what a rule reads: each shard's balance `buffered - evicted -
/// drained` (invariant 8), and the episode's peaks while its first stop may still report
/// them (rule 7; always, in the structural form).
fn counters_read_by_rules(stats: &Value, peaks: bool) -> Value {
    let Value::Struct(name, fields) = stats else {
        return stats.clone();
    };
    let count = |v: &Value| -> i128 {
        match v {
            Value::Atom(a) => a.parse().unwrap_or(0),
            Value::Map(entries) => entries
                .iter()
                .map(|(_, c)| c.atom().and_then(|c| c.parse::<i128>().ok()).unwrap_or(0))
                .sum(),
            _ => 0,
        }
    };
    let get = |n: &str| {
        fields
            .iter()
            .find(|(f, _)| f == n)
            .map_or(0, |(_, v)| count(v))
    };
    let balance = get("buffered") - get("evicted") - get("drained");
    let mut out = vec![("balance".to_string(), Value::Atom(balance.to_string()))];
    if peaks {
        out.extend(
            fields
                .iter()
                .filter(|(n, _)| {
                    matches!(
                        n.as_str(),
                        "last_requests_in_flight_max" | "last_requests_dry_run_max"
                    )
                })
                .cloned(),
        );
    }
    Value::Struct(name.clone(), out)
}

/// Rule 3: a term relative to the shard's highest. In the full form a `start_term` below
/// the highest is just "below" (rule 7: an accepted stamp is at least the highest, so it
/// is newer than any such start term, whatever its value).
fn term(t: Option<u64>, highest: Option<u64>, full: bool) -> Value {
    let text = match (t, highest) {
        (None, _) => "None".to_string(),
        (Some(t), None | Some(0)) => t.to_string(),
        (Some(t), Some(h)) if t < h && full => "H-".into(),
        (Some(t), Some(h)) if t < h => format!("H-{}", h - t),
        (Some(t), Some(h)) => format!("H+{}", t - h),
    };
    Value::Atom(text)
}

/// Two independent 64-bit SipHashes of `text`.
fn fingerprint(text: &str) -> u128 {
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        text.hash(&mut h);
        h.finish()
    };
    (u128::from(half(0x5eed_0001)) << 64) | u128::from(half(0x5eed_0002))
}

//! The canonical form of a state: what the explorer deduplicates on.
//!
//! The state is the whole `Buffer` (read off its `{:#?}` print, see `debug_tree`) plus the
//! one piece of the harness's state that the buffer does not hold: the harness's clock,
//! which can run ahead of the buffer's (`Op::Wait`) or behind it (a negative `Op::Tick`).
//!
//! Two states with the same canonical form behave the same from then on, for every input
//! sequence, up to renaming tickets, shifting time and shifting terms, and up to the values
//! of counters that only ever grow. Each rewrite below is sound for a reason read off the
//! core's code (`core/src/`); a field not named here is kept verbatim, which is always sound
//! (it can only keep apart states that could have merged):
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
//!    difference shows only in `clock_regressions`, a counter; see 4.)
//! 3. **Terms are taken relative to each shard's highest term.** A stamp below the highest
//!    is refused before any other rule reads it, so an accepted stamp's term is compared
//!    only with the highest term and with the episode's `start_term` (which is at most the
//!    highest); the harness picks stamp terms relative to the highest, too. So the highest
//!    becomes `H`, and a `start_term` below it becomes `H-` (below the highest, every
//!    accepted stamp is newer than it, whatever its value). A highest term of 0 is kept
//!    verbatim: there the harness's "older" stamp saturates to the same term.
//! 4. **Counters are dropped**, except `last_requests_in_flight_max` and
//!    `last_requests_dry_run_max`, the only ones a rule reads (`stop` reports them). The
//!    others (`ShardStats`, `InputStats`) are only ever added to, and every change to them
//!    is compared with the model at the step it happens, so two states that differ only
//!    in them have the same future up to those offsets.
//! 5. **What never changes after set-up is dropped**: the config, the limits and the
//!    shard names.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use failover_buffer::Buffer;

use super::debug_tree::{self, Value};

/// A state's canonical form, and the facts about it that the alphabet needs.
pub(crate) struct Canonical {
    /// A 128-bit fingerprint of `text`.
    pub(crate) key: u128,
    /// The canonical form, printed.
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

/// The canonical form of `buffer` with the harness clock at `clock_ns`.
pub(crate) fn canonical(buffer: &Buffer, clock_ns: i64) -> Result<Canonical, String> {
    let tree = debug_tree::parse(&format!("{buffer:#?}"))?;
    let Value::Struct(_, fields) = &tree else {
        return Err("Buffer does not print as a struct".into());
    };
    let now = tree
        .field("now")
        .and_then(Value::atom)
        .and_then(timestamp_nanos)
        .ok_or("Buffer has no `now`")?;
    let limits = tree.field("limits").ok_or("Buffer has no `limits`")?;
    let pool = Pool::read(tree.field("pool").ok_or("Buffer has no `pool`")?)?;
    let norm = Norm {
        now,
        max_failover_duration: number(limits.field("max_failover_duration"), "max duration")?,
        min_time_between_failovers: number(
            limits.field("min_time_between_failovers"),
            "min time between failovers",
        )?,
    };
    let clock_offset = i128::from(clock_ns) - i128::from(now);

    let mut shards = Vec::new();
    let mut rest = vec![(
        "clock".to_string(),
        Value::Atom(format!("{clock_offset:+}")),
    )];
    for (name, value) in fields {
        let kept = match name.as_str() {
            "config" | "limits" | "names" | "input_stats" | "now" => continue,
            "shards" => {
                let Value::List(list) = value else {
                    return Err("`shards` is not a list".into());
                };
                for s in list {
                    shards.push(shard(s, &pool, &norm)?);
                }
                continue;
            }
            "pool" => pool.canonical(&norm),
            "last_tick" => last_tick(value, &pool, &norm),
            _ => norm.value(value, &pool),
        };
        rest.push((name.clone(), kept));
    }
    let text = symmetric_minimum(&shards, &rest);
    let queued = pool.live.iter().filter(|e| e.status == "Queued").count();
    Ok(Canonical {
        key: fingerprint(&text),
        queued,
        released: pool.live.len() - queued,
        last_ended: pool.last_ended,
        clock_offset,
        text,
    })
}

/// Rule 6: shards of the same mode are interchangeable. Every permutation of such shards
/// is printed, renaming `ShardId`s to match, and the least print is the canonical form.
/// Sound because the alphabet offers every input on every shard alike, and a shard's
/// names only decide its mode.
fn symmetric_minimum(shards: &[Value], rest: &[(String, Value)]) -> String {
    let modes: Vec<Option<&Value>> = shards.iter().map(|s| s.field("mode")).collect();
    let mut best: Option<String> = None;
    for perm in permutations(shards.len()) {
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

/// Rule 7 (`last_tick`): read only by invariant 5, against the head of a buffering queue.
/// Before every live ticket's deadline it can never flag anything (tickets issued later
/// have deadlines after `now`), so it is then the same as no tick at all.
fn last_tick(v: &Value, pool: &Pool, norm: &Norm) -> Value {
    let at = v
        .option()
        .flatten()
        .and_then(Value::atom)
        .and_then(timestamp_nanos);
    match at {
        Some(t) if pool.live.iter().any(|e| e.deadline.is_some_and(|d| d <= t)) => {
            norm.value(v, pool)
        }
        _ => Value::Atom("None".into()),
    }
}

/// `12.000500000s` (`Timestamp`'s `Debug`) as nanoseconds.
fn timestamp_nanos(atom: &str) -> Option<u64> {
    let (secs, frac) = atom.strip_suffix('s')?.split_once('.')?;
    if frac.len() != 9 || !secs.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(secs.parse::<u64>().ok()? * 1_000_000_000 + frac.parse::<u64>().ok()?)
}

/// The rewrites that apply anywhere: instants relative to `now`, tickets by rank.
struct Norm {
    now: u64,
    max_failover_duration: u64,
    min_time_between_failovers: u64,
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
    deadline: Option<u64>,
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
        let mut live = Vec::new();
        let mut slots = Vec::new();
        for (k, e) in entries {
            let slot: u32 = number(Some(k), "a slot")?;
            let Value::Struct(_, fields) = e else {
                return Err("a slab entry is not a struct".into());
            };
            let next: u32 = number(e.field("next"), "next")?;
            live.push(Entry {
                generation: number(e.field("generation"), "generation")?,
                next: (next != NIL).then_some(next),
                status: e.field("status").and_then(Value::atom).unwrap_or("").into(),
                deadline: e
                    .field("deadline")
                    .and_then(Value::atom)
                    .and_then(timestamp_nanos),
                rest: fields
                    .iter()
                    .filter(|(n, _)| !matches!(n.as_str(), "generation" | "prev" | "next"))
                    .cloned()
                    .collect(),
            });
            slots.push(slot);
        }
        let mut order: Vec<usize> = (0..live.len()).collect();
        order.sort_by_key(|&i| live[i].generation);
        let mut by_slot = HashMap::new();
        let mut sorted = Vec::new();
        let mut taken: Vec<Option<Entry>> = live.into_iter().map(Some).collect();
        for (rank, &i) in order.iter().enumerate() {
            by_slot.insert(slots[i], rank);
            sorted.push(taken[i].take().expect("each entry once"));
        }
        let rank = sorted
            .iter()
            .enumerate()
            .map(|(r, e)| (e.generation, r))
            .collect();
        // Generations are handed out 1, 2, 3, ..: the n-th ticket issued (the harness's
        // index n) has generation n + 1, and the newest one not live has ended.
        let last_ended = (1..next_generation)
            .rev()
            .find(|g| !sorted.iter().any(|e| e.generation == *g))
            .map(|g| (g - 1) as usize);
        Ok(Pool {
            live: sorted,
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

    fn canonical(&self, norm: &Norm) -> Value {
        let live = self
            .live
            .iter()
            .map(|e| Value::Struct(String::new(), norm_fields(&e.rest, norm, self)))
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

fn norm_fields(fields: &[(String, Value)], norm: &Norm, pool: &Pool) -> Vec<(String, Value)> {
    fields
        .iter()
        .map(|(n, v)| (n.clone(), norm.value(v, pool)))
        .collect()
}

/// A `ShardBuffer`: names dropped, queue as ranks, terms relative, primary anonymous,
/// counters reduced to what rules read, and facts that no rule will read again forgotten.
fn shard(v: &Value, pool: &Pool, norm: &Norm) -> Result<Value, String> {
    let Value::Struct(name, fields) = v else {
        return Err("a shard is not a struct".into());
    };
    let highest = match v.field("highest_term").and_then(Value::option) {
        Some(h) => h
            .map(|h| number::<u64>(Some(h), "highest_term"))
            .transpose()?,
        None => return Err("a shard has no `highest_term`".into()),
    };
    let episode = Episode::read(v, norm)?;
    let mut out = Vec::new();
    for (n, value) in fields {
        let kept = match n.as_str() {
            "keyspace" | "shard" => continue,
            "queue" => pool.walk(number(value.field("head"), "queue head")?)?,
            "stats" => counters_read_by_rules(value, episode.peak_read_again()),
            "highest_term" => term(highest, highest),
            // Rule 8: only compared with a stamp's primary, and the alphabet's two primaries
            // are interchangeable.
            "primary" => match value.option() {
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
        Some(t) if norm.now.saturating_sub(t) >= norm.min_time_between_failovers => {
            Value::Atom("None".into())
        }
        _ => norm.value(v, pool),
    }
}

/// What the canonical form needs to know about a shard's episode.
struct Episode {
    /// Whether a rule can still read the episode: it is in progress, or it drained but a
    /// failed retry may still reopen it (`may_reopen`: enabled, stopped because the
    /// failover seemed over, younger than max failover duration).
    alive: bool,
    stopped: bool,
    past_max: bool,
    buffering: bool,
}

impl Episode {
    fn read(shard: &Value, norm: &Norm) -> Result<Episode, String> {
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
        let alive = state != "Idle" || (mode == "Enabled" && seemed_over && !past_max);
        Ok(Episode {
            alive,
            stopped: stopped.is_some(),
            past_max,
            buffering: state == "Buffering",
        })
    }

    /// `last_requests_*_max` are read by the episode's first stop only; `start` resets them.
    fn peak_read_again(&self) -> bool {
        self.alive && !self.stopped
    }

    /// Rule 7 (the episode): an episode no rule can read again is forgotten (an idle
    /// shard's next episode starts afresh: `start` overwrites every field). Within a live
    /// episode, `start` is read to compare with max failover duration (past it, always
    /// past) and, at the first stop only, to report the duration; `drain_start` is
    /// overwritten by the stop that ends buffering before any drain reports it.
    fn canonical(
        &self,
        v: &Value,
        highest: Option<u64>,
        pool: &Pool,
        norm: &Norm,
    ) -> Result<Value, String> {
        if !self.alive {
            return Ok(Value::Atom("over".into()));
        }
        let Value::Struct(name, fields) = v else {
            return Ok(norm.value(v, pool));
        };
        let mut out = Vec::new();
        for (n, fv) in fields {
            let kept = match n.as_str() {
                "start" if self.past_max && self.stopped => Value::Atom("past max".into()),
                "drain_start" if self.buffering => continue,
                "start_term" => {
                    let t = fv
                        .option()
                        .and_then(|t| t.map(|t| number::<u64>(Some(t), "start_term")))
                        .transpose()?;
                    term(t, highest)
                }
                _ => norm.value(fv, pool),
            };
            out.push((n.clone(), kept));
        }
        Ok(Value::Struct(name.clone(), out))
    }
}

/// Rule 4: of the counters, what a rule reads: each shard's balance `buffered - evicted -
/// drained` (invariant 8 compares them), and the episode's peaks while its first stop may
/// still report them.
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

/// A term relative to the shard's highest (rule 3).
fn term(t: Option<u64>, highest: Option<u64>) -> Value {
    let text = match (t, highest) {
        (None, _) => "None".to_string(),
        (Some(t), None | Some(0)) => t.to_string(),
        (Some(t), Some(h)) if t < h => "H-".into(),
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

//! A profiling aid, not a benchmark: runs the tokio benchmark's 100,000-task failover (or
//! a floor) several times and lets `perf` record only the release phase, through perf's
//! control fifo. It prints the median wall-clock and CPU time of that phase.
//!
//! ```sh
//! cargo build --profile bench -p failover-buffer-benches --example drain_profile
//! mkfifo /tmp/ctl && exec 3<>/tmp/ctl   # keep the fifo open between commands
//! PERF_CTL=/tmp/ctl perf record -g --control=fifo:/tmp/ctl -D -1 -o drain.data -- \
//!     target/release/examples/drain_profile adapter 1 20 multi
//! ```
//!
//! Interleaved ratios, no perf (`drain_profile ratios ROUNDS multi|current`): each round runs
//! the adapter's failover at drain concurrency 1 and 16 and tokio's floors (one release chain,
//! 16 chains) as the `tokio` benchmark does, one after the other (the order reversed every
//! other round), and prints, by CPU time, the median and range over the rounds of each ratio
//! taken within a round: enqueue / the floor's enqueue, drain 1 / one chain, drain 16 / 16
//! chains, drain 16 / one chain. A round of each runs first, uncounted. With a third
//! argument `warm` (`ratios 10 multi warm`) the adapter's failovers reuse one buffer per
//! drain concurrency, made once, as a router's buffer lives across failovers.
//!
//! The skeleton of any buffer (`drain_profile skeleton ROUNDS multi|current`): interleaved
//! rounds of tokio's floor, of [`Skeleton`] (one lock over a FIFO of parked wakers, a clock
//! read per input, a released flag read without the lock: what any buffer that paces a
//! drain must do, with no bookkeeping at all) and of the adapter, at drain concurrency 1 and
//! 16; prints, by CPU time, the median and range of skeleton / floor, adapter / floor and
//! adapter / skeleton, so the adapter's excess over the floor is split into what the shape
//! costs and what the buffer's own work costs; and the same three ratios of the enqueue
//! (spawning the 100,000 requests until every one is queued). With the environment variable
//! `NO_CLOCK` set, the skeleton reads no clock (the adapter still does): what the read costs.
//!
//! The longest enqueues (`drain_profile stalls ROUNDS current`): each round makes a buffer of
//! 100,000 slots and polls 100,000 held requests' futures once each, by hand, timing each
//! first poll (the lock, the core's request, the waiter's slot); prints the slowest five
//! polls of each round, in microseconds.
//!
//! Arguments: what (`adapter`, `floor`: the oneshot release chain, `arrival`: a chain in the
//! order the tasks first parked, through a `Mutex<Vec<oneshot::Sender>>`, `sizes`: print the
//! task futures' sizes), drain concurrency, rounds, `multi` (2 workers) or `current`, and the
//! phase to record: `release` (the default) or `enqueue` (spawning the tasks until every one
//! is queued).
//! Built with the environment variable `PAD` set, each `floor` task carries
//! `SAME_SIZE_PAD` words of dead weight: as large as a held request's task. Without `PERF_CTL` it only times. Written quickly for issue 16's profile; see
//! `benches/README.md`.
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use failover_buffer_benches::held::{
    Phase, Progress, SAME_SIZE_PAD, failover, failover_on, floor, floor_request, held_request,
    process_cpu_time,
};
use failover_buffer_benches::{config, serving};
use failover_buffer_tokio::FailoverBuffer;
use tokio::sync::oneshot;

const HELD: usize = 100_000;
const PAD: usize = match option_env!("PAD") {
    Some(_) => SAME_SIZE_PAD,
    None => 0,
};

/// The process's CPU time so far, in milliseconds.
fn cpu() -> f64 {
    process_cpu_time().map_or(0.0, |t| t.as_secs_f64() * 1e3)
}
static CPU: std::sync::Mutex<Vec<f64>> = std::sync::Mutex::new(Vec::new());
async fn arrival_request(
    queue: Arc<std::sync::Mutex<Vec<Option<oneshot::Sender<()>>>>>,
    progress: Arc<Progress>,
) {
    let (tx, rx) = oneshot::channel();
    let pos = {
        let mut q = queue.lock().unwrap();
        q.push(Some(tx));
        q.len() - 1
    };
    progress.count(&progress.queued, &progress.all_queued);
    rx.await.unwrap();
    let next = queue
        .lock()
        .unwrap()
        .get_mut(pos + 1)
        .and_then(Option::take);
    if let Some(next) = next {
        let _ = next.send(());
    }
    progress.count(&progress.retried, &progress.all_retried);
}

/// Times one of the failover's two phases, with `perf` (and the CPU clock) on for it only:
/// the enqueue (from the first spawn until every request is queued) or the release (from
/// the release until every request has retried).
struct ProfiledPhase {
    enqueue: bool,
    start: Instant,
    took: Option<Duration>,
}

impl ProfiledPhase {
    fn begin(enqueue: bool) -> ProfiledPhase {
        if enqueue {
            ctl("enable\n");
        }
        ProfiledPhase {
            enqueue,
            start: Instant::now(),
            took: None,
        }
    }

    /// Every request is queued: the enqueue ends, or the release begins.
    fn all_queued(&mut self) {
        if self.enqueue {
            self.took = Some(self.start.elapsed());
            ctl("disable\n");
        } else {
            ctl("enable\n");
            self.start = Instant::now();
        }
    }

    /// Every request has retried: the phase's wall time.
    fn all_retried(self) -> Duration {
        match self.took {
            Some(took) => took,
            None => {
                let took = self.start.elapsed();
                ctl("disable\n");
                took
            }
        }
    }
}

fn ctl(msg: &str) {
    if msg.starts_with("enable") {
        CPU.lock().unwrap().push(cpu());
    } else {
        let c = cpu();
        let mut v = CPU.lock().unwrap();
        let last = v.pop().unwrap();
        v.push(c - last);
    }
    if let Ok(path) = std::env::var("PERF_CTL") {
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.write_all(msg.as_bytes()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args[1].clone();
    let conc: usize = args[2].parse().unwrap();
    let flavor = if what == "ratios" {
        args.get(3).map(String::as_str).unwrap_or("multi")
    } else {
        args.get(4).map(String::as_str).unwrap_or("multi")
    };
    let rounds: usize = args.get(3).map_or(0, |r| r.parse().unwrap_or(0));
    let enqueue = args.get(5).map(String::as_str) == Some("enqueue");
    let rt = if flavor == "multi" {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    };
    let mut times = Vec::new();
    if what == "ratios" {
        ratios(
            &rt,
            args[2].parse().unwrap(),
            args.get(4).map(String::as_str) == Some("warm"),
        );
        return;
    }
    if what == "skeleton" {
        skeleton_ratios(&rt, args[2].parse().unwrap());
        return;
    }
    if what == "stalls" {
        stalls(&rt, args[2].parse().unwrap());
        return;
    }
    if what == "sizes" {
        let _g = rt.enter();
        let buffer = FailoverBuffer::new(config(HELD, conc)).unwrap();
        let shard = buffer.register_shard("bench", "0");
        let p = Progress::new(1);
        let (tx, rx) = oneshot::channel();
        println!(
            "held_request {} floor_request {} arrival {} admit {}",
            std::mem::size_of_val(&held_request(buffer.clone(), shard.clone(), p.clone())),
            std::mem::size_of_val(&floor_request::<PAD>(rx, tx, p.clone())),
            std::mem::size_of_val(&arrival_request(
                Arc::new(std::sync::Mutex::new(Vec::new())),
                p.clone()
            )),
            std::mem::size_of_val(&buffer.wait_for_failover_end(&shard, None))
        );
        return;
    }
    for _ in 0..rounds {
        let d = if what == "arrival" {
            rt.block_on(rt.spawn(async move {
                let progress = Progress::new(HELD);
                let queue = Arc::new(std::sync::Mutex::new(Vec::with_capacity(HELD)));
                let mut phase = ProfiledPhase::begin(enqueue);
                for _ in 0..HELD {
                    tokio::spawn(arrival_request(Arc::clone(&queue), Arc::clone(&progress)));
                }
                progress.all_queued.notified().await;
                phase.all_queued();
                let first = queue.lock().unwrap()[0].take().unwrap();
                first.send(()).unwrap();
                progress.all_retried.notified().await;
                phase.all_retried()
            }))
            .unwrap()
        } else if what == "floor" {
            rt.block_on(rt.spawn(async move {
                let progress = Progress::new(HELD);
                let (first, mut receiver) = oneshot::channel();
                let mut phase = ProfiledPhase::begin(enqueue);
                for _ in 0..HELD {
                    let (next, next_receiver) = oneshot::channel();
                    let own = std::mem::replace(&mut receiver, next_receiver);
                    tokio::spawn(floor_request::<PAD>(own, next, Arc::clone(&progress)));
                }
                drop(receiver);
                progress.all_queued.notified().await;
                phase.all_queued();
                first.send(()).unwrap();
                progress.all_retried.notified().await;
                phase.all_retried()
            }))
            .unwrap()
        } else {
            rt.block_on(rt.spawn(async move {
                let buffer = FailoverBuffer::new(config(HELD, conc)).unwrap();
                let shard = buffer.register_shard("bench", "0");
                buffer.health(&shard, serving(1)).unwrap();
                let progress = Progress::new(HELD);
                let mut phase = ProfiledPhase::begin(enqueue);
                for _ in 0..HELD {
                    tokio::spawn(held_request(
                        buffer.clone(),
                        shard.clone(),
                        Arc::clone(&progress),
                    ));
                }
                progress.all_queued.notified().await;
                phase.all_queued();
                buffer.health(&shard, serving(2)).unwrap();
                progress.all_retried.notified().await;
                phase.all_retried()
            }))
            .unwrap()
        };
        times.push(d.as_secs_f64() * 1e3);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mut c = CPU.lock().unwrap().clone();
    c.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{what} c={conc} {flavor}: cpu median {:.1} ms min {:.1}",
        c[c.len() / 2],
        c[0]
    );
    println!(
        "{what} c={conc} {flavor}: median {:.1} ms, all {:?}",
        times[times.len() / 2],
        times
            .iter()
            .map(|t| (t * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
}

/// `rounds` interleaved rounds of the four runs; prints each ratio's median and range.
///
/// With `warm`, the adapter's failovers run on two buffers made once (one per drain
/// concurrency), as a router's buffer lives across failovers, instead of a new buffer each.
fn ratios(rt: &tokio::runtime::Runtime, rounds: usize, warm: bool) {
    let buffers = warm.then(|| {
        let _entered = rt.enter();
        [1, 16].map(|c| FailoverBuffer::new(config(HELD, c)).unwrap())
    });
    let adapter = |chains: usize| match &buffers {
        Some(buffers) => {
            let buffer = buffers[usize::from(chains == 16)].clone();
            rt.block_on(rt.spawn(async move { failover_on(&buffer, HELD).await }))
                .unwrap()
        }
        None => rt.block_on(rt.spawn(failover(HELD, chains))).unwrap(),
    };
    let names = [
        "enqueue / floor enqueue",
        "drain 1 / one chain",
        "drain 16 / 16 chains",
        "drain 16 / one chain",
    ];
    let mut ratios: Vec<[f64; 4]> = Vec::new();
    let mut cpu: Vec<[f64; 5]> = Vec::new();
    let ms = |p: Phase| p.cpu.as_secs_f64() * 1e3;
    // One round of each first, not counted: the first failover of a process also faults in
    // the allocator's memory for the runs after it.
    for chains in [1, 16] {
        adapter(chains);
        rt.block_on(rt.spawn(floor::<0>(HELD, chains))).unwrap();
    }
    for round in 0..rounds {
        let mut runs: Vec<(usize, usize)> = vec![(0, 1), (0, 16), (1, 1), (1, 16)];
        if round % 2 == 1 {
            runs.reverse();
        }
        let mut got = [[0.0; 2]; 4];
        for (kind, chains) in runs {
            let (enqueue, drain) = if kind == 0 {
                adapter(chains)
            } else {
                rt.block_on(rt.spawn(floor::<0>(HELD, chains))).unwrap()
            };
            got[kind * 2 + usize::from(chains == 16)] = [ms(enqueue), ms(drain)];
        }
        let [[enq, d1], [_, d16], [fenq, chain], [_, chains16]] = got;
        ratios.push([enq / fenq, d1 / chain, d16 / chains16, d16 / chain]);
        cpu.push([enq, fenq, d1, d16, chain]);
        println!(
            "round {round}: cpu ms: enqueue {enq:.1} floor {fenq:.1}; drain 1 {d1:.1} 16 {d16:.1}; \
             chain {chain:.1} 16 chains {chains16:.1}"
        );
    }
    for (i, name) in names.iter().enumerate() {
        print_spread(name, ratios.iter().map(|x| x[i]).collect());
    }
}

/// Prints the median and range of a ratio over the rounds.
fn print_spread(name: &str, mut r: Vec<f64>) {
    r.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = if r.len() % 2 == 1 {
        r[r.len() / 2]
    } else {
        (r[r.len() / 2 - 1] + r[r.len() / 2]) / 2.0
    };
    println!(
        "{name}: median {median:.2} range {:.2}-{:.2} over {} rounds",
        r[0],
        r[r.len() - 1],
        r.len()
    );
}

/// `rounds` rounds of 100,000 first polls, timed one by one; prints the slowest five.
fn stalls(rt: &tokio::runtime::Runtime, rounds: usize) {
    use std::future::Future;
    use std::task::{Context, Waker};

    let _entered = rt.enter();
    for round in 0..rounds {
        let buffer = FailoverBuffer::new(config(HELD, 1)).unwrap();
        let shard = buffer.register_shard("bench", "0");
        buffer.health(&shard, serving(1)).unwrap();
        let mut futures: Vec<_> = (0..HELD)
            .map(|_| {
                Box::pin(buffer.wait_for_failover_end(&shard, Some(failover_buffer_benches::CAUSE)))
            })
            .collect();
        let mut took = Vec::with_capacity(HELD);
        for future in &mut futures {
            let start = Instant::now();
            let poll = future
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()));
            took.push(start.elapsed().as_secs_f64() * 1e6);
            assert!(poll.is_pending());
        }
        took.sort_by(|a, b| b.partial_cmp(a).unwrap());
        let median = took[HELD / 2];
        println!(
            "round {round}: slowest first polls (µs) {:?}, median {median:.3}",
            took[..5]
                .iter()
                .map(|t| (t * 10.0).round() / 10.0)
                .collect::<Vec<_>>()
        );
        drop(futures);
    }
}

/// The least any buffer pacing a drain does: one lock over a FIFO of parked requests, a
/// clock read per input (a buffer must time its waits), a released flag set under the lock
/// and read without it, and the next request woken after the lock is released. No
/// counters, no histograms, no tickets, no timers: the floor of the adapter's shape.
struct Skeleton {
    origin: Instant,
    state: std::sync::Mutex<SkeletonState>,
}

struct SkeletonState {
    queue: std::collections::VecDeque<(Arc<std::sync::atomic::AtomicBool>, std::task::Waker)>,
    /// The latest time seen, in nanoseconds (kept, as a buffer keeps its clock).
    now: u64,
}

impl Skeleton {
    /// The clock read per input; with the environment variable `NO_CLOCK` set, none (0),
    /// to weigh the read itself.
    fn now(&self) -> u64 {
        static NO_CLOCK: std::sync::LazyLock<bool> =
            std::sync::LazyLock::new(|| std::env::var_os("NO_CLOCK").is_some());
        if *NO_CLOCK {
            return 0;
        }
        self.origin.elapsed().as_nanos() as u64
    }

    /// Under the lock: releases the next `n` requests; returns their wakers.
    fn release(&self, n: usize) -> Vec<std::task::Waker> {
        let read = self.now();
        let mut state = self.state.lock().unwrap();
        state.now = state.now.max(read);
        let mut woken = Vec::new();
        for _ in 0..n {
            let Some((flag, waker)) = state.queue.pop_front() else {
                break;
            };
            flag.store(true, std::sync::atomic::Ordering::Release);
            woken.push(waker);
        }
        woken
    }

    /// A retry done: releases the next request, woken after the lock.
    fn done(&self) {
        let read = self.now();
        let next = {
            let mut state = self.state.lock().unwrap();
            state.now = state.now.max(read);
            state.queue.pop_front().map(|(flag, waker)| {
                flag.store(true, std::sync::atomic::Ordering::Release);
                waker
            })
        };
        if let Some(waker) = next {
            waker.wake();
        }
    }
}

/// A request's wait in the [`Skeleton`]: queued at its first poll, ready once flagged.
struct SkeletonWait<'a> {
    skeleton: &'a Skeleton,
    flag: Option<Arc<std::sync::atomic::AtomicBool>>,
    progress: &'a Progress,
}

impl std::future::Future for SkeletonWait<'_> {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        use std::sync::atomic::{AtomicBool, Ordering};
        match &self.flag {
            Some(flag) if flag.load(Ordering::Acquire) => std::task::Poll::Ready(()),
            // Spurious: the waker of a task never changes here.
            Some(_) => std::task::Poll::Pending,
            None => {
                let flag = Arc::new(AtomicBool::new(false));
                let read = self.skeleton.now();
                {
                    let mut state = self.skeleton.state.lock().unwrap();
                    state.now = state.now.max(read);
                    state
                        .queue
                        .push_back((Arc::clone(&flag), cx.waker().clone()));
                }
                self.flag = Some(flag);
                self.progress
                    .count(&self.progress.queued, &self.progress.all_queued);
                std::task::Poll::Pending
            }
        }
    }
}

async fn skeleton_request(skeleton: Arc<Skeleton>, progress: Arc<Progress>) {
    SkeletonWait {
        skeleton: &skeleton,
        flag: None,
        progress: &progress,
    }
    .await;
    skeleton.done();
    progress.count(&progress.retried, &progress.all_retried);
}

/// The [`Skeleton`]'s failover: `held` requests queued, then a drain of `chains` at a time.
async fn skeleton_failover(held: usize, chains: usize) -> (Phase, Phase) {
    let skeleton = Arc::new(Skeleton {
        origin: Instant::now(),
        state: std::sync::Mutex::new(SkeletonState {
            queue: std::collections::VecDeque::new(),
            now: 0,
        }),
    });
    let progress = Progress::new(held);
    let enqueued = failover_buffer_benches::held::timed(async {
        for _ in 0..held {
            tokio::spawn(skeleton_request(
                Arc::clone(&skeleton),
                Arc::clone(&progress),
            ));
        }
        progress.all_queued.notified().await;
    })
    .await;
    let drained = failover_buffer_benches::held::timed(async {
        for waker in skeleton.release(chains) {
            waker.wake();
        }
        progress.all_retried.notified().await;
    })
    .await;
    (enqueued, drained)
}

/// `rounds` interleaved rounds of the floor, the skeleton and the adapter, at drain
/// concurrency 1 and 16; prints each ratio's median and range (by CPU time of the drain).
fn skeleton_ratios(rt: &tokio::runtime::Runtime, rounds: usize) {
    let ms = |p: Phase| p.cpu.as_secs_f64() * 1e3;
    // The enqueue's and the drain's CPU time.
    let run = |kind: usize, chains: usize| -> [f64; 2] {
        let (enqueue, drain) = match kind {
            0 => rt.block_on(rt.spawn(floor::<0>(HELD, chains))).unwrap(),
            1 => rt
                .block_on(rt.spawn(skeleton_failover(HELD, chains)))
                .unwrap(),
            _ => rt.block_on(rt.spawn(failover(HELD, chains))).unwrap(),
        };
        [ms(enqueue), ms(drain)]
    };
    // One uncounted round of each first (the allocator's memory faulted in).
    for chains in [1, 16] {
        for kind in 0..3 {
            run(kind, chains);
        }
    }
    let names = ["skeleton / floor", "adapter / floor", "adapter / skeleton"];
    for chains in [1, 16] {
        // Per round: the drain's three ratios, then the enqueue's.
        let mut ratios: Vec<[f64; 6]> = Vec::new();
        for round in 0..rounds {
            let mut kinds = vec![0, 1, 2];
            if round % 2 == 1 {
                kinds.reverse();
            }
            let mut got = [[0.0; 2]; 3];
            for kind in kinds {
                got[kind] = run(kind, chains);
            }
            let [
                [floor_enqueue, floor],
                [skeleton_enqueue, skeleton],
                [enqueue, adapter],
            ] = got;
            println!(
                "concurrency {chains}, round {round}: cpu ms: drain: floor {floor:.1} skeleton \
                 {skeleton:.1} adapter {adapter:.1}; enqueue: floor {floor_enqueue:.1} skeleton \
                 {skeleton_enqueue:.1} adapter {enqueue:.1}"
            );
            ratios.push([
                skeleton / floor,
                adapter / floor,
                adapter / skeleton,
                skeleton_enqueue / floor_enqueue,
                enqueue / floor_enqueue,
                enqueue / skeleton_enqueue,
            ]);
        }
        for (i, name) in names.iter().enumerate() {
            let name = format!("concurrency {chains}: drain: {name}");
            print_spread(&name, ratios.iter().map(|x| x[i]).collect());
        }
        for (i, name) in names.iter().enumerate() {
            let name = format!("concurrency {chains}: enqueue: {name}");
            print_spread(&name, ratios.iter().map(|x| x[3 + i]).collect());
        }
    }
}

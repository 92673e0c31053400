//! A small TCP service whose graceful shutdown is a cancellable [`DrainPlan`]: SIGTERM
//! begins it, SIGHUP calls it off.
//!
//! The service answers three HTTP endpoints: `GET /ready` (200 `ready`, or 503 `draining`
//! while the drain runs: what a load balancer's health check reads), `GET /work?ms=N` (a
//! request that goes through the failover buffer and then takes N ms, as a query to a
//! database primary would) and `GET /status` (`ready=… in_flight=…`).
//!
//! Its shutdown plan, the one DESIGN §6 gives a router:
//!
//! 1. **not ready** (reversible): `/ready` answers 503, so load balancers take the instance
//!    out of rotation. Reverted by answering 200 again.
//! 2. **wait for load balancers** (reversible): `--lb-wait-ms`, default 5 s, for them to
//!    notice. The service still serves every request it receives.
//! 3. **wait for in-flight requests** (reversible): up to `--request-wait-ms`, default 10 s,
//!    ending early once no request is in flight; the count is reported as the phase's
//!    remaining work.
//! 4. **close** (irreversible, the point of no return): stop accepting connections and shut
//!    the failover buffer down.
//! 5. **exit** (irreversible): the process ends.
//!
//! A SIGHUP before the point of no return cancels the drain: the phases entered are
//! reverted in inverse order, `/ready` answers 200 again, and no request was refused or
//! dropped on the way. A SIGTERM after that begins the drain again from the start.
//!
//! ```text
//! cargo run -p failover-buffer-tokio --example graceful_shutdown -- --lb-wait-ms 3000
//! # in another shell, with the port it printed:
//! curl localhost:PORT/ready; kill -TERM <pid>; curl localhost:PORT/ready; kill -HUP <pid>
//! ```
//!
//! Every step of the drain is printed on stdout, one line each (`drain: …`), which the
//! integration test `tests/graceful_shutdown_process.rs` reads.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use failover_buffer_tokio::plan::{Drain, DrainAction, DrainPlan, Phase, PhaseId};
use failover_buffer_tokio::{Config, FailoverBuffer, HealthStamp, PrimaryId, Shard, ShutdownEnd};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// What every connection shares.
struct Service {
    ready: AtomicBool,
    /// Requests in flight; the drain's "wait for in-flight requests" watches it.
    in_flight: watch::Sender<u64>,
    buffer: FailoverBuffer,
    shard: Shard,
}

/// Counts a request in flight until dropped, on every path (a client hanging up included).
struct InFlight<'a>(&'a watch::Sender<u64>);

impl<'a> InFlight<'a> {
    fn new(counter: &'a watch::Sender<u64>) -> Self {
        counter.send_modify(|n| *n += 1);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// `--name value` from the command line, in milliseconds.
fn millis_arg(name: &str, default: u64) -> Result<Duration, Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let ms = match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .ok_or_else(|| format!("{name} needs a value"))?
            .parse()?,
        None => default,
    };
    Ok(Duration::from_millis(ms))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let lb_wait = millis_arg("--lb-wait-ms", 5_000)?;
    let request_wait = millis_arg("--request-wait-ms", 10_000)?;

    let buffer = FailoverBuffer::new(Config {
        enabled: true,
        ..Config::default()
    })?;
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(
        &shard,
        HealthStamp {
            primary: PrimaryId(1),
            term: 1,
            serving: true,
        },
    )?;
    let service = Arc::new(Service {
        ready: AtomicBool::new(true),
        in_flight: watch::Sender::new(0),
        buffer,
        shard,
    });

    let plan = DrainPlan::new([
        Phase::reversible("not ready"),
        Phase::reversible("wait for load balancers").max_wait(lb_wait),
        Phase::reversible("wait for in-flight requests")
            .max_wait(request_wait)
            .until_no_work(),
        Phase::irreversible("close"),
        Phase::irreversible("exit"),
    ])?;
    let (drain, mut actions) = Drain::new(plan);
    let phase = |name| drain.phase_id(name).expect("a phase of the plan");
    let (not_ready, requests, close) = (
        phase("not ready"),
        phase("wait for in-flight requests"),
        phase("close"),
    );

    // Signal handlers before the first line, so a client that read it can signal us.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);

    let stop_accepting = Arc::new(Notify::new());
    let acceptor = tokio::spawn(accept(
        listener,
        Arc::clone(&service),
        Arc::clone(&stop_accepting),
    ));
    let mut reporter: Option<JoinHandle<()>> = None;

    loop {
        tokio::select! {
            _ = sigterm.recv() => match drain.begin() {
                Ok(()) => println!("drain: begun (SIGTERM)"),
                Err(e) => println!("drain: SIGTERM ignored: {e}"),
            },
            _ = sighup.recv() => match drain.cancel() {
                Ok(()) => println!("drain: cancel requested (SIGHUP)"),
                Err(e) => println!("drain: SIGHUP refused: {e}"),
            },
            action = actions.recv() => {
                let Some(action) = action else { break };
                let name = |id: PhaseId| drain.phase(id).map(|p| p.name().to_owned()).unwrap_or_default();
                match action {
                    // Each action is carried out first, then printed: a reader of the line
                    // can count on it having happened.
                    DrainAction::Enter { phase } => {
                        if phase == not_ready {
                            service.ready.store(false, Ordering::SeqCst);
                        } else if phase == requests {
                            reporter = Some(tokio::spawn(report_in_flight(
                                drain.clone(),
                                requests,
                                service.in_flight.subscribe(),
                            )));
                        } else if phase == close {
                            if let Some(r) = reporter.take() {
                                r.abort();
                            }
                            stop_accepting.notify_one();
                            // Every later request proceeds unbuffered; held ones are released.
                            // (The handle only watches it; dropping it does not cancel.)
                            drop(service.buffer.shutdown());
                        }
                        println!("drain: enter {}", name(phase));
                    }
                    DrainAction::Revert { phase } => {
                        if phase == not_ready {
                            service.ready.store(true, Ordering::SeqCst);
                        } else if phase == requests {
                            if let Some(r) = reporter.take() {
                                r.abort();
                            }
                        }
                        println!("drain: revert {}", name(phase));
                    }
                    DrainAction::PointOfNoReturn { phase } => {
                        println!("drain: point of no return at {}", name(phase));
                    }
                    DrainAction::Cancelled { reverted } => {
                        println!("drain: cancelled, {reverted} phases reverted, serving normally");
                    }
                    DrainAction::Finished => {
                        println!("drain: finished");
                        break;
                    }
                }
            },
        }
    }

    for record in drain.history() {
        if let (Some(phase), Some((_, why))) = (drain.phase(record.phase), record.left) {
            println!("drain: history: {} ended: {why}", phase.name());
        }
    }
    acceptor.abort();
    // The buffer's shutdown began at "close"; it ends once no request is held (at once,
    // unless a failover is under way). Bounded, as the whole exit must be.
    match tokio::time::timeout(Duration::from_secs(5), service.buffer.shutdown()).await {
        Ok(ShutdownEnd::Closed) => println!("exit: failover buffer closed"),
        Ok(ShutdownEnd::Cancelled) => println!("exit: failover buffer shutdown was called off"),
        Err(_) => println!("exit: failover buffer still releasing requests; exiting anyway"),
    }
    let left = *service.in_flight.borrow();
    println!("exit: {left} requests still in flight");
    Ok(())
}

/// Reports the number of requests in flight as the phase's remaining work, at once and at
/// every change, until the phase ends (the plan refuses the report) or none is left.
async fn report_in_flight(drain: Drain, phase: PhaseId, mut in_flight: watch::Receiver<u64>) {
    loop {
        let n = *in_flight.borrow_and_update();
        if drain.report(phase, n).is_err() || n == 0 {
            return;
        }
        if in_flight.changed().await.is_err() {
            return;
        }
    }
}

async fn accept(listener: TcpListener, service: Arc<Service>, stop: Arc<Notify>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(serve(stream, Arc::clone(&service)));
                }
            }
            () = stop.notified() => {
                println!("drain: no longer accepting connections");
                return; // drops the listener: new connections are refused
            }
        }
    }
}

/// One HTTP/1.1 request per connection.
async fn serve(mut stream: TcpStream, service: Arc<Service>) {
    let mut request = Vec::new();
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
    }
    let line = String::from_utf8_lossy(&request);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = if path == "/ready" {
        if service.ready.load(Ordering::SeqCst) {
            ("200 OK", "ready".to_owned())
        } else {
            ("503 Service Unavailable", "draining".to_owned())
        }
    } else if path == "/status" {
        (
            "200 OK",
            format!(
                "ready={} in_flight={}",
                service.ready.load(Ordering::SeqCst),
                *service.in_flight.borrow()
            ),
        )
    } else if let Some(ms) = path.strip_prefix("/work?ms=") {
        let _counted = InFlight::new(&service.in_flight);
        let ms = ms.parse().unwrap_or(0u64).min(60_000);
        // A router asks the buffer before every attempt: outside a failover this returns
        // at once; during one it holds the request until the new primary serves.
        match service
            .buffer
            .wait_for_failover_end(&service.shard, None)
            .await
        {
            Ok(_retry) => {
                tokio::time::sleep(Duration::from_millis(ms)).await; // the query
                ("200 OK", "done".to_owned())
            }
            Err(e) => ("503 Service Unavailable", e.to_string()),
        }
    } else {
        ("404 Not Found", "not found".to_owned())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

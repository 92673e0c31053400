//! Runs `examples/graceful_shutdown.rs` as a real process, sends it real signals and checks
//! both paths of its cancellable drain over real TCP: SIGTERM then SIGHUP (the drain is
//! called off: readiness answers 200 again and no request was dropped), and SIGTERM alone
//! (in-flight requests finish, then the process exits cleanly).
//!
//! The example is built first with the `cargo` running this test (a no-op when it is up to
//! date), then found next to this test's binary in `target/<profile>/examples/`. Every wait
//! is bounded; the process is killed by its id on every path, a failing test included.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const LINE_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the example (bounded in time) and returns its path.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/graceful_shutdown_process-<hash>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO")
        .ok()
        .or_else(|| option_env!("CARGO").map(str::to_owned))
        .unwrap_or_else(|| "cargo".to_owned());
    let mut build = Command::new(cargo);
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "-p",
            "failover-buffer-tokio",
            "--example",
            "graceful_shutdown",
        ])
        .stdout(Stdio::null());
    if release {
        build.arg("--release");
    }
    let mut child = build.spawn().expect("cargo runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("cargo's status") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("building the example took over 10 minutes");
        }
        thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "building the example failed: {status}");
    let path = profile_dir
        .join("examples")
        .join(format!("graceful_shutdown{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// The example, running. Killed (by its own id) when dropped, unless it has exited.
struct Service {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    addr: String,
}

impl Service {
    fn start(args: &[&str]) -> Service {
        let mut child = Command::new(example_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the example starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut service = Service {
            child,
            lines,
            seen: Vec::new(),
            addr: String::new(),
        };
        let line = service.expect("listening on ");
        service.addr = line["listening on ".len()..].trim().to_owned();
        service
    }

    /// Waits (bounded) for a line of stdout containing `needle`, and returns it.
    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no line with {needle:?} in {LINE_TIMEOUT:?}; saw {:#?}",
                        self.seen
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("stdout closed before {needle:?}; saw {:#?}", self.seen)
                }
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -s {name} failed");
    }

    fn get(&self, path: &str) -> (u16, String) {
        get(&self.addr, path)
    }

    /// Polls `/status` (bounded) until it shows `in_flight=n`.
    fn wait_in_flight(&self, n: u64) {
        let deadline = Instant::now() + LINE_TIMEOUT;
        let want = format!("in_flight={n}");
        loop {
            let (_, body) = self.get("/status");
            if body.contains(&want) {
                return;
            }
            assert!(Instant::now() < deadline, "never {want}; last {body}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) for the process to exit, and returns whether it succeeded.
    fn wait_exit(&mut self) -> bool {
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("the example's status") {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "the example did not exit; saw {:#?}",
                self.seen
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn is_running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("the example's status")
            .is_none()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// One HTTP request; the status code and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(LINE_TIMEOUT)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: malformed response {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `n` slow requests, each on its own thread.
fn slow_requests(addr: &str, n: usize, ms: u64) -> Vec<JoinHandle<(u16, String)>> {
    (0..n)
        .map(|_| {
            let addr = addr.to_owned();
            thread::spawn(move || get(&addr, &format!("/work?ms={ms}")))
        })
        .collect()
}

#[test]
fn sighup_after_sigterm_calls_the_drain_off_with_nothing_dropped() {
    let mut service = Service::start(&["--lb-wait-ms", "60000", "--request-wait-ms", "60000"]);
    assert_eq!(service.get("/ready"), (200, "ready".into()));
    let slow = slow_requests(&service.addr, 4, 1_500);
    service.wait_in_flight(4);

    service.signal("TERM");
    service.expect("drain: enter wait for load balancers");
    assert_eq!(service.get("/ready"), (503, "draining".into()));
    // Still serving while the load balancers catch up.
    assert_eq!(service.get("/work?ms=1"), (200, "done".into()));

    service.signal("HUP");
    let reverted = [
        service.expect("drain: revert"),
        service.expect("drain: revert"),
    ];
    assert_eq!(
        reverted,
        [
            "drain: revert wait for load balancers",
            "drain: revert not ready"
        ],
        "in inverse order, exactly the phases entered"
    );
    service.expect("drain: cancelled, 2 phases reverted");
    assert_eq!(service.get("/ready"), (200, "ready".into()));

    for request in slow {
        assert_eq!(
            request.join().unwrap(),
            (200, "done".into()),
            "nothing dropped"
        );
    }
    assert!(service.is_running());
    assert!(
        !service
            .seen
            .iter()
            .any(|l| l.contains("wait for in-flight")),
        "never got that far: {:#?}",
        service.seen
    );

    // A second SIGTERM begins the drain again, from the first phase; a SIGHUP calls it off.
    service.signal("TERM");
    service.expect("drain: enter not ready");
    service.expect("drain: enter wait for load balancers");
    assert_eq!(service.get("/ready").0, 503);
    service.signal("HUP");
    service.expect("drain: cancelled, 2 phases reverted");
    assert_eq!(service.get("/ready"), (200, "ready".into()));
    assert!(service.is_running());
}

#[test]
fn sigterm_drains_in_flight_requests_then_the_process_exits() {
    let mut service = Service::start(&["--lb-wait-ms", "300", "--request-wait-ms", "30000"]);
    let slow = slow_requests(&service.addr, 3, 2_000);
    service.wait_in_flight(3);

    service.signal("TERM");
    service.expect("drain: enter not ready");
    assert_eq!(service.get("/ready").0, 503);
    service.expect("drain: enter wait for in-flight requests");
    // A SIGHUP now still cancels, but this test lets the drain run: the requests finish
    // (the phase ends early, on zero work), then the point of no return, then exit.
    service.expect("drain: point of no return at close");
    service.expect("drain: finished");
    service.expect("drain: history: wait for in-flight requests ended: work done");
    service.expect("exit: failover buffer closed");
    service.expect("exit: 0 requests still in flight");
    assert!(service.wait_exit(), "a clean exit");

    for request in slow {
        assert_eq!(
            request.join().unwrap(),
            (200, "done".into()),
            "nothing dropped"
        );
    }
    assert!(
        TcpStream::connect(&service.addr).is_err(),
        "no longer listening"
    );
}

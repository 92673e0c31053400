//! The binary serves Prometheus metrics over HTTP, the buffer's under Vitess's names.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::*;

/// The router binary, killed by pid on drop.
struct Binary(Child);

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exports_vitess_named_metrics_over_http() {
    if !redis_available() {
        return;
    }
    let _serial = serial().await;
    let server = redis_server(&[]);
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_failover-buffer-redis"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--server",
            &server.addr().to_string(),
        ])
        .args(["--metrics", &metrics])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _binary = Binary(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let listen = line
        .trim()
        .strip_prefix("listening on ")
        .expect(&line)
        .to_owned();

    let client = redis::Client::open(format!("redis://{listen}/")).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut c)
        .await
        .unwrap();

    let body = tokio::task::spawn_blocking(move || scrape(&metrics))
        .await
        .unwrap();
    for series in [
        "failover_buffer_starts{keyspace=\"redis\",shard=\"0\"} 0",
        "failover_buffer_requests_buffered{keyspace=\"redis\",shard=\"0\"} 0",
        "failover_buffer_last_failover_duration_ms{keyspace=\"redis\",shard=\"0\"}",
        "redis_router_primary_serving{shard=\"0\"} 1",
        "redis_router_commands{outcome=\"ok\"}",
    ] {
        assert!(body.contains(series), "{series} missing from:\n{body}");
    }
}

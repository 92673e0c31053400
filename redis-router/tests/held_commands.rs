//! A command held by the buffer belongs to its client: a client that hangs up takes its
//! command with it, and one that waits gets it served by the new primary.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use failover_buffer_redis::{Router, RouterConfig, Topology};
use failover_buffer_tokio::EvictReason;
use support::*;

fn send_set(router: std::net::SocketAddr, key: &str) -> TcpStream {
    let mut s = TcpStream::connect(router).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\nv\r\n",
        key.len()
    )
    .unwrap();
    s
}

/// A router in front of one server that has just turned replica (of nobody): every write
/// sent through the router meets `-READONLY` and is held, until the server is promoted.
async fn router_before_a_read_only_server() -> (Process, Router) {
    let server = redis_server(&[]);
    let router = Router::start(RouterConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Topology::Fixed(vec![server.addr()]),
    ))
    .await
    .unwrap();
    let nobody = free_port().to_string();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(&nobody)
        .query(&mut server.conn())
        .unwrap();
    (server, router)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_cancels_its_held_write() {
    if !redis_available() {
        return;
    }
    let _serial = serial().await;
    let (server, router) = router_before_a_read_only_server().await;

    let addr = router.local_addr();
    let (gone, waiting) =
        tokio::task::spawn_blocking(move || (send_set(addr, "gone"), send_set(addr, "waiting")))
            .await
            .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(router.stats().buffered, 2, "both writes are held");

    drop(gone);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = router.stats();
    assert_eq!(
        stats.evicted[EvictReason::ContextDone],
        1,
        "the hung-up client's write left the buffer: {stats:?}"
    );

    // The server is promoted (a new replication id): the waiting write is served.
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut server.conn())
        .unwrap();
    let reply = tokio::task::spawn_blocking(move || {
        let mut waiting = waiting;
        let mut buf = [0u8; 5];
        waiting.read_exact(&mut buf).map(|_| buf)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&reply, b"+OK\r\n");
    let mut c = server.conn();
    assert_eq!(
        redis::cmd("EXISTS")
            .arg("waiting")
            .query::<u32>(&mut c)
            .unwrap(),
        1
    );
    assert_eq!(
        redis::cmd("EXISTS")
            .arg("gone")
            .query::<u32>(&mut c)
            .unwrap(),
        0,
        "never written"
    );
}

/// Replies are sent in order, but a reply that is ready does not wait for the next
/// pipelined command: a multiplexing client (one connection for many callers) gets the
/// answer to its first command while the `SET` it pipelined behind it is held by the
/// buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_reply_is_sent_while_the_command_pipelined_behind_it_is_held() {
    if !redis_available() {
        return;
    }
    let _serial = serial().await;
    let (_server, router) = router_before_a_read_only_server().await;

    let addr = router.local_addr();
    let first = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        // MULTI is answered by the router at once (refused); the SET is held.
        s.write_all(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
            .unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            if let Err(e) = s.read_exact(&mut byte) {
                return (s, Err(e));
            }
            line.push(byte[0]);
        }
        (s, Ok(String::from_utf8_lossy(&line).into_owned()))
    });
    let (_client, read) = first.await.unwrap();
    // The reply may be written before the SET's error comes back and it is held: wait
    // (bounded) for the hold. The reply arriving within its 3 s read timeout, well inside
    // the SET's 10 s window, already shows it did not wait for the SET.
    for _ in 0..100 {
        if router.stats().buffered == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(router.stats().buffered, 1, "the SET is held");
    let line = read.expect("the MULTI's reply arrives while the SET is held");
    assert!(line.starts_with("-ERR failover-buffer: MULTI"), "{line}");
}

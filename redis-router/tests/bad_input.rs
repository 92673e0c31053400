//! Bad input gets a clear error, never a panic, and other clients keep being served.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use failover_buffer_redis::{Router, RouterConfig, SentinelError, StartError, Topology};
use support::*;

fn listen() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_sentinel_is_a_clear_start_error() {
    let nobody = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let topology = Topology::Sentinel {
        sentinels: vec![nobody],
        master: "mymaster".into(),
    };
    let err = Router::start(RouterConfig::new(listen(), topology))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StartError::Sentinel(SentinelError::Unreachable { .. })),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("no Sentinel reachable") && text.contains(&nobody.to_string()),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_name_no_sentinel_knows_is_a_clear_start_error() {
    if !redis_available() {
        return;
    }
    let _serial = serial().await;
    let (primary, _replica) = primary_and_replica(&[]);
    let sentinel = sentinels(1, &primary, "mymaster", 1000);
    let topology = Topology::Sentinel {
        sentinels: vec![sentinel[0].addr()],
        master: "nosuchmaster".into(),
    };
    let err = Router::start(RouterConfig::new(listen(), topology))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StartError::Sentinel(SentinelError::UnknownMaster { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"nosuchmaster\""), "{err}");
}

#[test]
fn the_binary_exits_with_the_error_on_a_bad_sentinel() {
    let nobody = format!("127.0.0.1:{}", free_port());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_failover-buffer-redis"))
        .args(["--listen", "127.0.0.1:0", "--sentinel", &nobody])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no Sentinel reachable"), "{stderr}");
}

/// Sends raw bytes on a new connection and reads until the router closes it.
fn raw_exchange(router: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(router).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(bytes).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_resp_closes_only_that_client() {
    if !redis_available() {
        return;
    }
    let _serial = serial().await;
    let server = redis_server(&[]);
    let router = Router::start(RouterConfig::new(
        listen(),
        Topology::Fixed(vec![server.addr()]),
    ))
    .await
    .unwrap();
    let addr = router.local_addr();
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let mut good = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("before")
        .query_async(&mut good)
        .await
        .unwrap();

    let replies = tokio::task::spawn_blocking(move || {
        [
            raw_exchange(addr, b"PING\r\n"),
            raw_exchange(addr, b"*1\r\n*1\r\n*1\r\n*1\r\n"),
            raw_exchange(addr, b"*1\r\n$99999999999\r\n"),
            raw_exchange(addr, b"*1\r\n$4\r\nPING\r\n*x\r\n"),
        ]
    })
    .await
    .unwrap();
    assert!(
        replies[0].starts_with("-ERR Protocol error: expected '*', got 'P'"),
        "{}",
        replies[0]
    );
    assert!(
        replies[1].starts_with("-ERR Protocol error: expected '$', got '*'"),
        "{}",
        replies[1]
    );
    assert!(
        replies[2].starts_with("-ERR Protocol error: invalid length"),
        "{}",
        replies[2]
    );
    // A good command before the bad bytes is still answered, then the error, then close.
    assert!(
        replies[3].starts_with("+PONG\r\n-ERR Protocol error"),
        "{}",
        replies[3]
    );

    // The well-behaved client never noticed.
    let v: String = redis::cmd("GET")
        .arg("k")
        .query_async(&mut good)
        .await
        .unwrap();
    assert_eq!(v, "before");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_needing_their_own_connection_are_refused_and_the_connection_stays() {
    if !redis_available() {
        return;
    }
    let _serial = serial().await;
    let server = redis_server(&[]);
    let router = Router::start(RouterConfig::new(
        listen(),
        Topology::Fixed(vec![server.addr()]),
    ))
    .await
    .unwrap();
    let client = redis::Client::open(format!("redis://{}/", router.local_addr())).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let err = redis::cmd("MULTI")
        .query_async::<()>(&mut c)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("MULTI needs a server connection of its own"),
        "{err}"
    );
    // An ordinary error reply goes to the client as is.
    let err = redis::cmd("NOSUCHCOMMAND")
        .query_async::<()>(&mut c)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown command"), "{err}");
    let pong: String = redis::cmd("PING").query_async(&mut c).await.unwrap();
    assert_eq!(pong, "PONG");
}

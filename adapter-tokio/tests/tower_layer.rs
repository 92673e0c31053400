//! `FailoverBufferLayer` (feature `tower`), against tower's own mock service and a
//! hyper-shaped HTTP service. Issue 12, item 3.
#![cfg(feature = "tower")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use failover_buffer_tokio::{
    FailoverBuffer, FailoverBufferLayer, FailoverCause, FailoverPolicy, Shard,
};
use support::{config, serving, settle};
use tower::{BoxError, Layer, Service, ServiceExt};

/// An error whose text starts with `READONLY` is a failover error.
#[derive(Clone)]
struct ReadOnly {
    cloneable: bool,
}

impl FailoverPolicy<String, String, BoxError> for ReadOnly {
    fn classify(&mut self, result: &Result<String, BoxError>) -> Option<FailoverCause> {
        match result {
            Err(e) if e.to_string().starts_with("READONLY") => Some(FailoverCause::Reparent),
            _ => None,
        }
    }

    fn clone_request(&mut self, req: &String) -> Option<String> {
        self.cloneable.then(|| req.clone())
    }
}

fn layer(
    buffer: &FailoverBuffer,
    shard: &Shard,
    cloneable: bool,
) -> FailoverBufferLayer<impl Fn(&String) -> Option<Shard> + use<>, ReadOnly> {
    let shard = shard.clone();
    FailoverBufferLayer::new(
        buffer.clone(),
        move |_: &String| Some(shard.clone()),
        ReadOnly { cloneable },
    )
}

#[tokio::test(start_paused = true)]
async fn a_request_that_meets_a_failover_is_held_and_sent_again_to_the_new_primary() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    buffer.health(&shard, serving(1, 1)).unwrap();
    let (mock, mut primary) = tower_test::mock::pair::<String, String>();
    let mut service = layer(&buffer, &shard, true).layer(mock);
    let response = tokio::spawn(async move {
        service
            .ready()
            .await?
            .call("UPDATE t SET x = 1".into())
            .await
    });

    let (request, reply) = primary.next_request().await.unwrap();
    assert_eq!(request, "UPDATE t SET x = 1");
    reply.send_error("READONLY You can't write against a read only replica.");
    settle().await;
    assert_eq!(buffer.queued(&shard), 1, "held, not failed");

    tokio::time::advance(Duration::from_secs(1)).await;
    buffer.health(&shard, serving(2, 2)).unwrap();
    let (request, reply) = primary.next_request().await.unwrap();
    assert_eq!(
        request, "UPDATE t SET x = 1",
        "the same request, sent again"
    );
    reply.send_response("OK".into());
    assert_eq!(response.await.unwrap().unwrap(), "OK");
    settle().await;
    assert_eq!(buffer.held_slots(), 0, "the guard ended with the attempt");
    assert_eq!(buffer.stats(&shard).drained, 1);
}

#[tokio::test(start_paused = true)]
async fn a_request_that_cannot_be_copied_gets_its_first_outcome() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let (mock, mut primary) = tower_test::mock::pair::<String, String>();
    let mut service = layer(&buffer, &shard, false).layer(mock);
    let response = tokio::spawn(async move { service.ready().await?.call("UPDATE".into()).await });
    let (_, reply) = primary.next_request().await.unwrap();
    reply.send_error("READONLY");
    let error = response.await.unwrap().unwrap_err();
    assert!(error.to_string().starts_with("READONLY"));
    assert_eq!(buffer.held_slots(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failover_error_on_the_last_attempt_is_the_answer() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let (mock, mut primary) = tower_test::mock::pair::<String, String>();
    let mut service = layer(&buffer, &shard, true).max_attempts(2).layer(mock);
    let response = tokio::spawn(async move { service.ready().await?.call("UPDATE".into()).await });
    for _ in 0..2 {
        // The primary never comes back; each held retry is released by its window.
        let (_, reply) = primary.next_request().await.unwrap();
        reply.send_error("READONLY");
    }
    let error = response.await.unwrap().unwrap_err();
    assert!(error.to_string().starts_with("READONLY"));
    assert_eq!(buffer.held_slots(), 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_response_future_cancels_a_held_request() {
    let buffer = FailoverBuffer::new(config()).unwrap();
    let shard = buffer.register_shard("commerce", "0");
    let (mock, mut primary) = tower_test::mock::pair::<String, String>();
    let mut service = layer(&buffer, &shard, true).layer(mock);
    // The client hangs up: its server drops the response future.
    let response = tokio::spawn(async move { service.ready().await?.call("UPDATE".into()).await });
    let (_, reply) = primary.next_request().await.unwrap();
    reply.send_error("READONLY");
    settle().await;
    assert_eq!(buffer.queued(&shard), 1);
    response.abort();
    settle().await;
    assert_eq!(buffer.held_slots(), 0, "cancelled in the buffer too");
}

/// A hyper-shaped service: `http::Request` in, `http::Response` out, and a primary that is
/// read-only answers `503` with a `READONLY` body: the failover error is an `Ok` response.
mod hyper_shaped {
    use super::*;
    use http::{Request, Response, StatusCode};

    #[derive(Clone)]
    struct Http503IsFailover;

    impl FailoverPolicy<Request<String>, Response<String>, BoxError> for Http503IsFailover {
        fn classify(
            &mut self,
            result: &Result<Response<String>, BoxError>,
        ) -> Option<FailoverCause> {
            match result {
                Ok(response) if response.status() == StatusCode::SERVICE_UNAVAILABLE => {
                    Some(FailoverCause::Reparent)
                }
                // A refused connection is a failover error too: the primary is not serving.
                Err(e) if e.to_string().contains("connection refused") => {
                    Some(FailoverCause::Reparent)
                }
                _ => None,
            }
        }

        fn clone_request(&mut self, req: &Request<String>) -> Option<Request<String>> {
            let mut copy = Request::new(req.body().clone());
            *copy.method_mut() = req.method().clone();
            *copy.uri_mut() = req.uri().clone();
            *copy.headers_mut() = req.headers().clone();
            Some(copy)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_http_503_from_a_read_only_primary_is_held_and_retried() {
        let buffer = FailoverBuffer::new(config()).unwrap();
        let shard = buffer.register_shard("commerce", "0");
        buffer.health(&shard, serving(1, 1)).unwrap();
        // The fake primary: read-only until `promoted`.
        let promoted = Arc::new(Mutex::new(false));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let primary = tower::service_fn({
            let (promoted, calls) = (promoted.clone(), calls.clone());
            move |req: Request<String>| {
                let (promoted, calls) = (promoted.clone(), calls.clone());
                async move {
                    calls.lock().unwrap().push(req.uri().path().to_owned());
                    let response = if *promoted.lock().unwrap() {
                        Response::new(format!("written: {}", req.body()))
                    } else {
                        let mut r = Response::new("READONLY".to_owned());
                        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                        r
                    };
                    Ok::<_, BoxError>(response)
                }
            }
        });
        let layer = FailoverBufferLayer::new(
            buffer.clone(),
            // Only writes go through the buffer; health checks pass straight through.
            move |req: &Request<String>| (req.uri().path() != "/healthz").then(|| shard.clone()),
            Http503IsFailover,
        );
        let mut service = layer.layer(primary);

        let health = Request::get("/healthz").body(String::new()).unwrap();
        let answer = service.ready().await.unwrap().call(health).await.unwrap();
        assert_eq!(
            answer.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "untouched"
        );

        let write = Request::post("/write").body("x = 1".to_owned()).unwrap();
        let mut writer = service.clone();
        let response = tokio::spawn(async move { writer.ready().await?.call(write).await });
        settle().await;
        let shard = buffer.shard("commerce", "0").unwrap();
        assert_eq!(buffer.queued(&shard), 1, "held after the 503");
        *promoted.lock().unwrap() = true;
        buffer.health(&shard, serving(2, 2)).unwrap();
        let response = response.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body(), "written: x = 1");
        assert_eq!(*calls.lock().unwrap(), ["/healthz", "/write", "/write"]);
    }
}

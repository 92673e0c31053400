//! [`FailoverBufferLayer`]: the buffer as `tower` middleware (feature `tower`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use failover_buffer::FailoverCause;
use tower::util::ServiceExt;
use tower::{BoxError, Layer, Service};

use crate::buffer::{FailoverBuffer, Shard};

/// How [`FailoverBufferLayer`] reads an attempt's outcome, in the style of
/// [`tower::retry::Policy`](https://docs.rs/tower/0.5/tower/retry/trait.Policy.html): which outcomes are failover errors, and how to copy a request
/// for its retry.
///
/// `Res` and `E` are the inner service's response and error. A failover error may be either:
/// a gRPC `UNAVAILABLE` status or an HTTP 503 arrives as an `Ok` response, a refused
/// connection as an `Err`.
pub trait FailoverPolicy<Req, Res, E> {
    /// Whether this attempt failed with a failover error (`Some(cause)`: the next attempt
    /// waits behind the buffer), or its outcome is the answer (`None`).
    fn classify(&mut self, result: &Result<Res, E>) -> Option<FailoverCause>;

    /// A copy of `req` for a later attempt, made before each attempt but the last. `None`
    /// when it cannot be copied (a streaming body, say): that request's first outcome is
    /// its answer, as without the layer.
    fn clone_request(&mut self, req: &Req) -> Option<Req>;
}

/// A [`Layer`] that runs each request's retry loop behind a [`FailoverBuffer`]: the first
/// attempt waits if its shard is failing over, and each attempt that fails with a failover
/// error (as the [`FailoverPolicy`] says) is held until the failover ends, then sent again,
/// at most `max_attempts` times in all (3 unless set, as in Vitess).
///
/// `shard_of` names the shard a request goes to; a request for which it answers `None`
/// passes through untouched. The inner service must be `Clone` (as for `tower::retry`):
/// each call takes the clone that was made ready, and waits for readiness again before a
/// retry. Errors are boxed ([`BoxError`]): the inner service's, or the buffer's
/// [`BufferError`](crate::BufferError) (evicted, buffer full, shard missing), which a
/// caller finds with `downcast_ref`.
///
/// Dropping the response future cancels a held request, or ends its attempt (its
/// [`RetryGuard`](crate::RetryGuard) reports the retry done): a hyper or tonic server that
/// drops the future when its client hangs up cancels the request in the buffer too.
///
/// ```
/// use failover_buffer_tokio::{Config, FailoverBuffer, FailoverBufferLayer, FailoverCause, FailoverPolicy};
/// use tower::{Service, ServiceBuilder, ServiceExt};
///
/// /// The attempt's error says whether the primary is read-only.
/// #[derive(Clone)]
/// struct ReadOnlyIsFailover;
///
/// impl FailoverPolicy<String, String, String> for ReadOnlyIsFailover {
///     fn classify(&mut self, result: &Result<String, String>) -> Option<FailoverCause> {
///         match result {
///             Err(e) if e.starts_with("READONLY") => Some(FailoverCause::Reparent),
///             _ => None,
///         }
///     }
///     fn clone_request(&mut self, req: &String) -> Option<String> {
///         Some(req.clone())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower::BoxError> {
/// let buffer = FailoverBuffer::new(Config { enabled: true, ..Config::default() })?;
/// let shard = buffer.register_shard("commerce", "0");
/// let mut service = ServiceBuilder::new()
///     .layer(FailoverBufferLayer::new(buffer, move |_: &String| Some(shard.clone()), ReadOnlyIsFailover))
///     .service_fn(|query: String| async move { Ok::<_, String>(format!("ok: {query}")) });
/// let answer = service.ready().await?.call("UPDATE t SET x = 1".to_string()).await?;
/// assert_eq!(answer, "ok: UPDATE t SET x = 1");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FailoverBufferLayer<F, P> {
    buffer: FailoverBuffer,
    shard_of: Arc<F>,
    policy: P,
    max_attempts: u32,
}

impl<F, P> FailoverBufferLayer<F, P> {
    /// A layer that holds requests in `buffer`, for the shard `shard_of` names, reading
    /// outcomes with `policy`.
    pub fn new(buffer: FailoverBuffer, shard_of: F, policy: P) -> Self {
        FailoverBufferLayer {
            buffer,
            shard_of: Arc::new(shard_of),
            policy,
            max_attempts: 3,
        }
    }

    /// At most this many attempts per request, the first included (at least one is made).
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }
}

impl<F, P> fmt::Debug for FailoverBufferLayer<F, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailoverBufferLayer")
            .field("buffer", &self.buffer)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl<S, F, P: Clone> Layer<S> for FailoverBufferLayer<F, P> {
    type Service = FailoverBufferService<S, F, P>;

    fn layer(&self, inner: S) -> Self::Service {
        FailoverBufferService {
            inner,
            buffer: self.buffer.clone(),
            shard_of: Arc::clone(&self.shard_of),
            policy: self.policy.clone(),
            max_attempts: self.max_attempts,
        }
    }
}

/// The [`Service`] [`FailoverBufferLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct FailoverBufferService<S, F, P> {
    inner: S,
    buffer: FailoverBuffer,
    shard_of: Arc<F>,
    policy: P,
    max_attempts: u32,
}

impl<S: fmt::Debug, F, P> fmt::Debug for FailoverBufferService<S, F, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailoverBufferService")
            .field("inner", &self.inner)
            .field("buffer", &self.buffer)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl<S, F, P, Req> Service<Req> for FailoverBufferService<S, F, P>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Into<BoxError> + Send + 'static,
    F: Fn(&Req) -> Option<Shard>,
    P: FailoverPolicy<Req, S::Response, S::Error> + Clone + Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        // The service that was made ready serves this call; the clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(shard) = (self.shard_of)(&req) else {
            let attempt = inner.call(req);
            return Box::pin(async move { attempt.await.map_err(Into::into) });
        };
        let (buffer, mut policy) = (self.buffer.clone(), self.policy.clone());
        let max_attempts = self.max_attempts;
        Box::pin(async move {
            let mut guard = buffer.wait_for_failover_end(&shard, None).await?;
            let (mut req, mut attempts) = (req, 1);
            loop {
                let next = if attempts < max_attempts {
                    policy.clone_request(&req)
                } else {
                    None
                };
                // The guard (if any) lives across the attempt: that paces a drain.
                let result = inner.call(req).await;
                match (policy.classify(&result), next) {
                    (Some(cause), Some(next)) => {
                        guard = buffer.wait_to_retry(&shard, guard, cause).await?;
                        inner.ready().await.map_err(Into::into)?;
                        (req, attempts) = (next, attempts + 1);
                    }
                    _ => return result.map_err(Into::into),
                }
            }
        })
    }
}

//! The one middleware every request passes: it gives the request its id (echoed as
//! `X-Request-Id`), counts and times it for `/metrics`, and marks every answer
//! `Cache-Control: no-store`. Written out rather than with
//! `from_fn`, which boxes a future and a service handle per request and layer.

use super::request_id;
use crate::metrics::RoutePattern;
use actix_web::Error;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{self, HeaderValue};

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// Gives each request its id and metrics, and its answer `no-store` unless it has `Cache-Control`.
pub struct Observe;

impl<S, B> Transform<S, ServiceRequest> for Observe
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = ObserveService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ObserveService { service }))
    }
}

/// A service wrapped by [`Observe`].
pub struct ObserveService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for ObserveService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Observed<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let id = request_id::of(&req);
        let method = crate::metrics::method_label(req.method());
        Observed {
            inner: self.service.call(req),
            id: Some(id),
            method,
            start: Instant::now(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of a service wrapped by [`Observe`]; it is counted, timed and stamped when ready.
    pub struct Observed<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
        method: &'static str,
        start: Instant,
    }
}

impl<F, B> Future for Observed<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(res)) => res,
        };
        let route = res
            .request()
            .app_data::<RoutePattern>()
            .map_or("unmatched", |r| r.0);
        crate::metrics::http_request(
            this.method,
            route,
            res.status().as_u16(),
            this.start.elapsed(),
        );
        let headers = res.headers_mut();
        if let Some(id) = this.id.take() {
            headers.insert(request_id::HEADER, id);
        }
        // Every answer may carry a token, a user or a session: no cache keeps one
        // (RFC 6749 §5.1 asks this of token responses; here it holds for all).
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, NO_STORE);
            headers.insert(header::PRAGMA, NO_CACHE);
        }
        Poll::Ready(Ok(res))
    }
}

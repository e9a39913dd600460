//! `GET /health` (the process answers) and `GET /ready` (the session store answers).

use super::AppState;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

/// `UP`; on `/ready` also `DOWN` (the store does not answer) or `DRAINING` (shutting down).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Up,
    Down,
    Draining,
}

/// Liveness: `UP` whenever the process answers.
#[derive(Serialize, ToSchema)]
pub struct Health {
    status: Status,
}

/// Whether this replica should get traffic, and which session store it uses.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    status: Status,
    /// `redis`, `redis-cluster`, `redis-sentinel` or `embedded`.
    #[schema(example = "redis")]
    store: &'static str,
    /// Present on the embedded store.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<&'static str>,
}

/// Prometheus metrics, here unless `METRICS_PORT` moves them to a port of their own.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format (the metrics: docs/operations.md)",
            content_type = "text/plain", body = String),
        (status = 404, description = "`METRICS_PORT` is set: metrics are served on that port only",
            body = crate::error::OAuthError),
    ),
)]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, crate::error::ApiError> {
    if !state.metrics_on_api_port {
        return Err(crate::error::ApiError::NotFound);
    }
    Ok(crate::metrics::scrape().await)
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "The process is running", body = Health)),
)]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: Status::Up })
}

/// 200 while this replica should get traffic: the store answers and shutdown has not begun.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "The session store answers", body = Readiness),
        (status = 503, description = "The store does not answer (`DOWN`, with `Retry-After`) or the replica is shutting down (`DRAINING`)",
            body = Readiness,
            headers(("Retry-After" = u32, description = "seconds; sent with `DOWN`"))),
    ),
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let store = state.store.kind();
    if state.draining.load(std::sync::atomic::Ordering::Acquire) {
        return HttpResponse::ServiceUnavailable().json(Readiness {
            status: Status::Draining,
            store,
            warning: None,
        });
    }
    match state.store.ping().await {
        Ok(()) if store == "embedded" => HttpResponse::Ok().json(Readiness {
            status: Status::Up,
            store,
            warning: Some(
                "embedded store: tokens are neither shared between replicas nor kept across restarts",
            ),
        }),
        Ok(()) => HttpResponse::Ok().json(Readiness {
            status: Status::Up,
            store,
            warning: None,
        }),
        Err(e) => {
            log::warn!("readiness check failed: {}", crate::error::cause_chain(&e));
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .json(Readiness {
                    status: Status::Down,
                    store,
                    warning: None,
                })
        }
    }
}

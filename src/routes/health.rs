//! `GET /health` (the process answers) and `GET /ready` (the session store answers).

use super::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "UP" }))
}

pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let store = state.store.kind();
    if state.draining.load(std::sync::atomic::Ordering::Acquire) {
        return HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "DRAINING", "store": store }));
    }
    match state.store.ping().await {
        Ok(()) if store == "embedded" => HttpResponse::Ok().json(json!({
            "status": "UP",
            "store": store,
            "warning": "embedded store: tokens are neither shared between replicas nor kept across restarts"
        })),
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "UP", "store": store })),
        Err(e) => {
            log::warn!("readiness check failed: {}", crate::error::cause_chain(&e));
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .json(json!({ "status": "DOWN", "store": store }))
        }
    }
}

//! `POST /user/_logout` and `GET`/`POST /user/_details`: what clients and gateways do with an
//! access token.

use super::AppState;
use super::extract;
use crate::domain::token::{Token, TokenKind};
use crate::error::ApiError;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

/// Ends the session of the presented token on every replica before answering. Idempotent: an
/// unknown or already-ended token also answers 200.
pub async fn logout(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = extract::read_body(&req, payload).await?;
    let presented = extract::access_token(&req, &body)?
        .ok_or_else(|| ApiError::InvalidRequest("access_token is required".into()))?;
    if let Some(token) = Token::parse(&presented)
        && state.store.end_session(&token, None).await?
    {
        crate::metrics::logout("logout");
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(logout_body()))
}

/// DIGIT's logout answer.
pub fn logout_body() -> serde_json::Value {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    json!({
        "apiId": "", "ver": "", "ts": ts, "resMsgId": "", "msgId": "",
        "status": "Logout successfully"
    })
}

/// The user of a live access token. A store outage is 503, never 401: gateways log users out
/// on a 401.
pub async fn details(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = extract::read_body(&req, payload).await?;
    let token = extract::access_token(&req, &body)?
        .and_then(|t| Token::parse(&t))
        .filter(|t| t.kind() == TokenKind::Access)
        .ok_or(ApiError::InvalidAccessToken)?;
    let user = state
        .store
        .validate_access(&token)
        .await?
        .ok_or(ApiError::InvalidAccessToken)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/json")
        .body(user))
}

//! `POST /user/_logout` and `GET`/`POST /user/_details`: what clients and gateways do with an
//! access token.

use super::AppState;
use super::extract;
use crate::domain::token::Token;
use crate::domain::user::PublicUser;
use crate::error::ApiError;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};
use utoipa::ToSchema;

/// DIGIT's logout answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogoutResponse {
    api_id: &'static str,
    ver: &'static str,
    /// Epoch milliseconds.
    ts: u64,
    res_msg_id: &'static str,
    msg_id: &'static str,
    #[schema(example = "Logout successfully")]
    status: &'static str,
}

impl LogoutResponse {
    /// The logout answer, stamped with the current time.
    pub fn now() -> Self {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        LogoutResponse {
            api_id: "",
            ver: "",
            ts,
            res_msg_id: "",
            msg_id: "",
            status: "Logout successfully",
        }
    }
}

/// Ends the session of the presented token on every replica before answering. Idempotent: an
/// unknown or already-ended token also answers 200.
#[utoipa::path(
    post,
    path = "/user/_logout",
    tag = "sessions",
    request_body(
        description = "The access token may also come in the body",
        content(
            (Option<super::doc_types::AccessTokenForm> = "application/x-www-form-urlencoded"),
            (Option<super::doc_types::AccessTokenJson> = "application/json"),
        ),
    ),
    security(("bearerToken" = []), ("accessTokenQuery" = []), ("authTokenHeader" = []), ()),
    responses(
        (status = 200, description = "The session has ended (or the token was not live)",
            body = LogoutResponse,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, response = super::doc_types::BadRequest),
        (status = 413, response = super::doc_types::PayloadTooLarge),
        (status = 503, response = super::doc_types::Unavailable),
    ),
)]
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
        crate::metrics::logout(crate::metrics::LogoutKind::Logout, 1);
    }
    Ok(HttpResponse::Ok().json(LogoutResponse::now()))
}

/// The user of a live access token, what gateways call on every request. A store outage is
/// 503, never 401: gateways log users out on a 401.
#[utoipa::path(
    get,
    path = "/user/_details",
    tag = "sessions",
    operation_id = "details_get",
    security(("bearerToken" = []), ("accessTokenQuery" = []), ("authTokenHeader" = [])),
    responses(
        (status = 200, description = "The token's user", body = PublicUser,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, response = super::doc_types::BadRequest),
        (status = 401, response = super::doc_types::InvalidAccessToken),
        (status = 413, response = super::doc_types::PayloadTooLarge),
        (status = 503, response = super::doc_types::Unavailable),
    ),
)]
pub async fn details_get(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    details(req, payload, state).await
}

/// As `GET`, with the token also accepted in the body.
#[utoipa::path(
    post,
    path = "/user/_details",
    tag = "sessions",
    operation_id = "details_post",
    request_body(
        description = "The access token may also come in the body",
        content(
            (Option<super::doc_types::AccessTokenForm> = "application/x-www-form-urlencoded"),
            (Option<super::doc_types::AccessTokenJson> = "application/json"),
        ),
    ),
    security(("bearerToken" = []), ("accessTokenQuery" = []), ("authTokenHeader" = []), ()),
    responses(
        (status = 200, description = "The token's user", body = PublicUser,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, response = super::doc_types::BadRequest),
        (status = 401, response = super::doc_types::InvalidAccessToken),
        (status = 413, response = super::doc_types::PayloadTooLarge),
        (status = 503, response = super::doc_types::Unavailable),
    ),
)]
pub async fn details_post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    details(req, payload, state).await
}

async fn details(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = extract::presented_access_token(&req, payload).await?;
    let user = state
        .store
        .validate_access(&token)
        .await?
        .ok_or(ApiError::InvalidAccessToken)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, super::JSON))
        .body(user))
}

//! A user's own sessions: `GET /user/sessions`, `DELETE /user/sessions/{id}` and
//! `POST /user/_logout_all`, authorised by the caller's live access token.

use super::AppState;
use super::extract;
use super::session::LogoutResponse;
use crate::domain::session::SessionInfo;
use crate::domain::token::SessionId;
use crate::error::{ApiError, OAuthError};
use crate::metrics::LogoutKind;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

/// The caller's user's live sessions, newest first.
#[derive(Serialize, ToSchema)]
pub struct SessionList {
    sessions: Vec<SessionInfo>,
}

/// The logout answer and how many sessions ended.
#[derive(Serialize, ToSchema)]
pub struct LogoutAllResponse {
    #[serde(flatten)]
    logout: LogoutResponse,
    #[serde(rename = "sessionsEnded")]
    sessions_ended: u32,
}

/// The caller's user's live sessions, newest first.
#[utoipa::path(
    get,
    path = "/user/sessions",
    tag = "sessions",
    security(("bearerToken" = []), ("accessTokenQuery" = []), ("authTokenHeader" = [])),
    responses(
        (status = 200, description = "The caller's user's live sessions", body = SessionList,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, response = super::doc_types::BadRequest),
        (status = 401, response = super::doc_types::InvalidAccessToken),
        (status = 413, response = super::doc_types::PayloadTooLarge),
        (status = 503, response = super::doc_types::Unavailable),
    ),
)]
pub async fn list(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = extract::presented_access_token(&req, payload).await?;
    let mut sessions = state
        .store
        .own_sessions(&caller)
        .await?
        .ok_or(ApiError::InvalidAccessToken)?;
    sessions.sort_by_key(|s| std::cmp::Reverse(s.created));
    Ok(HttpResponse::Ok().json(SessionList { sessions }))
}

/// Ends one of the caller's own sessions.
#[utoipa::path(
    delete,
    path = "/user/sessions/{id}",
    tag = "sessions",
    params(("id" = String, Path, description = "A session id from `GET /user/sessions`")),
    security(("bearerToken" = []), ("accessTokenQuery" = []), ("authTokenHeader" = [])),
    responses(
        (status = 204, description = "The session has ended"),
        (status = 400, response = super::doc_types::BadRequest),
        (status = 401, response = super::doc_types::InvalidAccessToken),
        (status = 404, description = "No such session of the caller's user", body = OAuthError,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 413, response = super::doc_types::PayloadTooLarge),
        (status = 503, response = super::doc_types::Unavailable),
    ),
)]
pub async fn end_one(
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = extract::presented_access_token(&req, payload).await?;
    // A malformed id is as unknown as another user's session.
    let target = SessionId::parse(&path.into_inner()).ok_or(ApiError::NoSuchSession)?;
    let ended = state.store.end_own_session(&caller, target).await?;
    if !ended.ok_or(ApiError::InvalidAccessToken)? {
        return Err(ApiError::NoSuchSession);
    }
    crate::metrics::logout(LogoutKind::Session, 1);
    Ok(HttpResponse::NoContent().finish())
}

/// Ends every session of the caller's user, the caller's included.
#[utoipa::path(
    post,
    path = "/user/_logout_all",
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
        (status = 200, description = "Every session of the user has ended",
            body = LogoutAllResponse,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, response = super::doc_types::BadRequest),
        (status = 401, response = super::doc_types::InvalidAccessToken),
        (status = 413, response = super::doc_types::PayloadTooLarge),
        (status = 503, response = super::doc_types::Unavailable),
    ),
)]
pub async fn end_all(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = extract::presented_access_token(&req, payload).await?;
    let n = state
        .store
        .end_own_sessions(&caller)
        .await?
        .ok_or(ApiError::InvalidAccessToken)?;
    crate::metrics::logout(LogoutKind::LogoutAll, u64::from(n));
    log::info!(
        target: "audit",
        "logout of all sessions: {n} session(s) ended, requested by session {}",
        caller.session().id.uuid()
    );
    Ok(HttpResponse::Ok().json(LogoutAllResponse {
        logout: LogoutResponse::now(),
        sessions_ended: n,
    }))
}

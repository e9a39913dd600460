//! A user's own sessions: `GET /user/sessions`, `DELETE /user/sessions/{id}` and
//! `POST /user/_logout_all`, authorised by the caller's live access token.

use super::AppState;
use super::extract;
use super::session::LogoutResponse;
use crate::domain::session::{SessionInfo, SessionsOp, SessionsOutcome};
use crate::domain::token::{SessionId, Token};
use crate::error::{ApiError, OAuthError};
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

async fn run(
    state: &AppState,
    caller: &Token,
    op: SessionsOp,
) -> Result<SessionsOutcome, ApiError> {
    state
        .store
        .user_sessions(caller, op)
        .await?
        .ok_or(ApiError::InvalidAccessToken)
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
    let SessionsOutcome::Listed(mut sessions) = run(&state, &caller, SessionsOp::List).await?
    else {
        return Err(ApiError::bug("session listing answered something else"));
    };
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
    match run(&state, &caller, SessionsOp::End(target)).await? {
        SessionsOutcome::Ended(1) => {
            crate::metrics::logout("session");
            Ok(HttpResponse::NoContent().finish())
        }
        _ => Err(ApiError::NoSuchSession),
    }
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
    let SessionsOutcome::Ended(n) = run(&state, &caller, SessionsOp::EndAll).await? else {
        return Err(ApiError::bug("logout-all answered something else"));
    };
    metrics::counter!(crate::metrics::LOGOUTS, "kind" => "logout_all").increment(u64::from(n));
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

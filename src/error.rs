//! The one place where an error becomes an HTTP status and body. OAuth errors use RFC 6749 §5.2
//! `{"error", "error_description"}`; an invalid access token on `/user/_details` uses DIGIT's
//! `Errors` shape. Server-side failures are logged with their cause chain; clients get a fixed
//! message.

use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    #[error("invalid scope")]
    InvalidScope,
    #[error("client authentication failed")]
    InvalidClient,
    #[error("grant type not allowed for this client")]
    UnauthorizedClient,
    #[error("invalid access token")]
    InvalidAccessToken,
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("not found")]
    NotFound,
    #[error("no such session")]
    NoSuchSession,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("too many login attempts from one address")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("password verification is saturated")]
    Busy,
    #[error("session store unavailable")]
    StoreUnavailable(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

pub const INVALID_CREDENTIALS: &str = "Invalid login credentials";
pub const INACTIVE_ACCOUNT: &str = "Please activate your account";
pub const INVALID_REFRESH_TOKEN: &str = "Invalid refresh token";
pub const ACCOUNT_LOCKED: &str = "Account locked";

fn oauth(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({ "error": error, "error_description": description }))
}

/// An error and all its sources, for logs.
pub fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_)
            | ApiError::InvalidGrant(_)
            | ApiError::UnsupportedGrantType
            | ApiError::UnauthorizedClient
            | ApiError::InvalidScope => StatusCode::BAD_REQUEST,
            ApiError::InvalidClient | ApiError::InvalidAccessToken => StatusCode::UNAUTHORIZED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound | ApiError::NoSuchSession => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::StoreUnavailable(_) | ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            ApiError::InvalidRequest(d) => oauth(status, "invalid_request", d),
            ApiError::InvalidGrant(d) => oauth(status, "invalid_grant", d),
            ApiError::UnsupportedGrantType => oauth(
                status,
                "unsupported_grant_type",
                "grant_type must be password or refresh_token",
            ),
            ApiError::UnauthorizedClient => oauth(
                status,
                "unauthorized_client",
                "this client may not use this grant type",
            ),
            ApiError::InvalidScope => oauth(
                status,
                "invalid_scope",
                "the requested scope exceeds what was granted",
            ),
            ApiError::InvalidClient => {
                let mut res = oauth(status, "invalid_client", "Client authentication failed");
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"oauth2/client\""),
                );
                res
            }
            ApiError::InvalidAccessToken => HttpResponse::Unauthorized()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\""))
                .json(json!({
                    "ResponseInfo": null,
                    "Errors": [{
                        "code": "InvalidAccessTokenException",
                        "message": "Invalid access token",
                        "description": "Invalid Access Token Exception",
                        "params": null
                    }]
                })),
            ApiError::PayloadTooLarge(limit) => oauth(
                status,
                "invalid_request",
                &format!("request body is larger than {limit} bytes"),
            ),
            ApiError::NotFound => oauth(status, "not_found", "no such endpoint"),
            ApiError::NoSuchSession => oauth(status, "not_found", "no such session"),
            ApiError::MethodNotAllowed => oauth(
                status,
                "invalid_request",
                "this method is not allowed on this endpoint",
            ),
            ApiError::TooManyAttempts { retry_after_secs } => {
                let mut res = oauth(
                    status,
                    "too_many_requests",
                    &format!(
                        "too many login attempts from this address; retry in {retry_after_secs} s"
                    ),
                );
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
                res
            }
            ApiError::Busy => {
                let mut res = oauth(
                    status,
                    "temporarily_unavailable",
                    "too many logins at once; retry shortly",
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                res
            }
            ApiError::StoreUnavailable(e) => {
                log::error!("session store unavailable: {}", cause_chain(e));
                let mut res = oauth(
                    status,
                    "temporarily_unavailable",
                    "the session store is unavailable; retry shortly",
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                res
            }
            ApiError::Internal(detail) => {
                log::error!("internal error: {detail}");
                oauth(status, "server_error", "internal server error")
            }
        }
    }
}
